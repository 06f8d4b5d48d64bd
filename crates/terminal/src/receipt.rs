//! The customer's plain-text receipt at the end of a terminal withdrawal (step "show a summary"
//! of the terminal app flow, spec/c2ec.md §1.2).
//!
//! A receipt must never leak what it should not: the card number only masked (first six, last
//! four, as card slips do), the WOPID only in a short form (the full WOPID is a bearer
//! capability for the wallet side of the operation), and the reserve public key only as a short
//! fingerprint the customer can compare with her wallet. Pure formatting, no IO.

use std::fmt;

use cardcash_util::{Amount, EddsaPublicKey, Timestamp};

/// Width of the receipt in characters (a typical 58 mm slip printer prints 32–42).
pub const WIDTH: usize = 40;

/// Width of the label column.
const LABEL_WIDTH: usize = 14;

/// How the withdrawal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// C2EC confirmed the withdrawal: the exchange will credit the wallet's reserve.
    Confirmed,
    /// The withdrawal was aborted.
    Aborted(AbortReason),
    /// The card payment was reported but C2EC had not decided when the terminal stopped
    /// waiting; the status can still change to confirmed or aborted.
    Pending,
}

impl Outcome {
    /// Whether the customer gets her e-cash.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Self::Confirmed)
    }
}

/// Why a withdrawal was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// The card processor declined or failed the payment; the terminal aborted the withdrawal
    /// (the diagram's "authorization not successful" branch). No money was taken.
    CardDeclined {
        /// The processor's transaction state (`DECLINE`, `FAILED`, …).
        state: String,
        /// The processor's failure reason, when it gave one.
        reason: Option<String>,
    },
    /// C2EC aborted after the card payment was reported: it could not verify the payment
    /// (the diagram's "payment not confirmed"). C2EC refunds captured money to the card.
    PaymentNotConfirmed,
    /// No wallet registered in time; the terminal aborted the withdrawal.
    NoWallet,
    /// Aborted by the wallet or by C2EC (expiry) before the card payment.
    AbortedElsewhere,
    /// The terminal aborted because a step failed (e.g. the card processor was unreachable).
    TerminalError(String),
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CardDeclined {
                state,
                reason: Some(r),
            } => write!(f, "card payment {state}: {r}"),
            Self::CardDeclined {
                state,
                reason: None,
            } => write!(f, "card payment {state}"),
            Self::PaymentNotConfirmed => f.write_str("the card payment could not be verified"),
            Self::NoWallet => f.write_str("no wallet scanned the QR code in time"),
            Self::AbortedElsewhere => f.write_str("aborted by the wallet or by C2EC"),
            Self::TerminalError(e) => write!(f, "terminal error: {e}"),
        }
    }
}

impl AbortReason {
    /// What happens to the customer's money, in one sentence.
    pub fn money_note(&self) -> &'static str {
        match self {
            Self::CardDeclined { .. } | Self::NoWallet | Self::AbortedElsewhere => {
                "Your card was not charged."
            }
            Self::PaymentNotConfirmed => "Any amount charged is refunded to your card.",
            Self::TerminalError(_) => "If your card was charged, it will be refunded.",
        }
    }
}

/// Everything a receipt shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// When the receipt was made.
    pub time: Timestamp,
    /// The terminal's user name at C2EC (`T-1`).
    pub terminal_id: String,
    /// The card provider named in C2EC's `/config`.
    pub provider_name: String,
    /// The withdrawal amount (what the wallet's reserve is credited with).
    pub amount: Amount,
    /// The exchange's withdrawal fees (taken from the reserve when the wallet withdraws).
    pub exchange_fees: Amount,
    /// Card fees charged on top of the amount, when the terminal charges any.
    pub card_fees: Option<Amount>,
    /// What the card was charged (amount plus card fees); `None` without a card payment.
    pub charged: Option<Amount>,
    /// The withdrawal operation id (printed shortened).
    pub wopid: String,
    /// The masked card number.
    pub card_masked: Option<String>,
    /// The card processor's transaction id.
    pub provider_transaction_id: Option<String>,
    /// The wallet's reserve public key (printed as a fingerprint).
    pub reserve_pub: Option<EddsaPublicKey>,
    /// How it ended.
    pub outcome: Outcome,
}

/// `Z8WDRS…Q7S0`: enough to find the operation in logs, not enough to act on it.
pub fn short_wopid(wopid: &str) -> String {
    let chars: Vec<char> = wopid.chars().collect();
    if chars.len() <= 12 {
        return wopid.to_owned();
    }
    let head: String = chars.iter().take(6).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}…{tail}")
}

/// `ABCD-EFGH`: the first eight base32 characters of the reserve public key, which the wallet
/// shows too (40 bits: enough to notice a QR code hijacked by another wallet).
pub fn reserve_fingerprint(reserve_pub: &EddsaPublicKey) -> String {
    let text = reserve_pub.to_string();
    let head: Vec<char> = text.chars().take(8).collect();
    let (a, b) = head.split_at(head.len().min(4));
    format!(
        "{}-{}",
        a.iter().collect::<String>(),
        b.iter().collect::<String>()
    )
}

/// Masks a card number like a card slip: first six and last four digits, the rest `*`.
/// Numbers too short to hide anything by that rule keep only their last four digits.
pub fn mask_pan(pan: &str) -> String {
    let digits: Vec<char> = pan.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n >= 13 {
        digits
            .iter()
            .enumerate()
            .map(|(i, d)| if i < 6 || i >= n - 4 { *d } else { '*' })
            .collect()
    } else {
        let keep = n.min(4);
        let mut masked = "*".repeat(n - keep);
        masked.extend(digits.iter().skip(n - keep));
        masked
    }
}

/// `CHF 20.00`: money the way people read it on a slip (exact, from the amount's decimal text).
pub fn money(amount: &Amount) -> String {
    format!("{} {}", amount.currency(), amount.to_decimal_padded(2))
}

/// `2026-11-22 07:00:00 UTC`.
pub fn utc_time(ts: Timestamp) -> String {
    if ts.is_never() {
        return "never".to_owned();
    }
    let secs = ts.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The UTC calendar year of `ts` (for card expiry dates of test cards).
pub(crate) fn utc_year(ts: Timestamp) -> u16 {
    let (y, _, _) = civil_from_days(ts.as_secs().min(u64::from(u32::MAX)) / 86_400);
    u16::try_from(y).unwrap_or(u16::MAX)
}

/// Proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Breaks `text` into lines of at most `width` characters at spaces (longer words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
        let needed = if line.is_empty() {
            0
        } else {
            line.chars().count() + 1
        };
        if needed + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.extend(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

struct Lines(Vec<String>);

impl Lines {
    fn rule(&mut self, c: char) {
        self.0.push(c.to_string().repeat(WIDTH));
    }
    fn centered(&mut self, text: &str) {
        let pad = WIDTH.saturating_sub(text.chars().count()) / 2;
        self.0
            .push(format!("{}{text}", " ".repeat(pad)).trim_end().to_owned());
    }
    /// `Label         value`, value wrapped into the value column.
    fn field(&mut self, label: &str, value: &str) {
        let parts = wrap(value, WIDTH - LABEL_WIDTH);
        let mut first = true;
        for part in parts
            .iter()
            .map(String::as_str)
            .chain(parts.is_empty().then_some(""))
        {
            let label = if first { label } else { "" };
            first = false;
            self.0
                .push(format!("{label:<LABEL_WIDTH$}{part}").trim_end().to_owned());
        }
    }
    /// `Label                      CHF 20.00`, right-aligned like a till slip.
    fn money(&mut self, label: &str, amount: &Amount) {
        let value = money(amount);
        let width = WIDTH.saturating_sub(label.chars().count());
        self.0.push(format!("{label}{value:>width$}"));
    }
    fn text(&mut self, text: &str) {
        self.0.extend(wrap(text, WIDTH));
    }
    fn blank(&mut self) {
        self.0.push(String::new());
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = Lines(Vec::new());
        l.rule('=');
        l.centered("TALER E-CASH WITHDRAWAL");
        l.centered("paid by card");
        l.rule('=');
        l.field("Date", &utc_time(self.time));
        l.field("Terminal", &self.terminal_id);
        l.field("Provider", &self.provider_name);
        l.rule('-');
        l.money("Withdrawal", &self.amount);
        if let Some(fees) = &self.card_fees {
            l.money("Card fees", fees);
        }
        if let Some(charged) = &self.charged {
            l.money("Charged to card", charged);
        }
        l.money("Exchange fees*", &self.exchange_fees);
        l.rule('-');
        if let Some(card) = &self.card_masked {
            l.field("Card", card);
        }
        if let Some(tx) = &self.provider_transaction_id {
            l.field("Card tx", tx);
        }
        l.field("Withdrawal id", &short_wopid(&self.wopid));
        if let Some(pub_key) = &self.reserve_pub {
            l.field("Wallet key", &reserve_fingerprint(pub_key));
        }
        l.rule('-');
        match &self.outcome {
            Outcome::Confirmed => {
                l.field("Result", "CONFIRMED");
                l.text("Your wallet now withdraws the e-cash.");
            }
            Outcome::Aborted(reason) => {
                l.field("Result", "ABORTED");
                l.field("Reason", &reason.to_string());
                l.text(reason.money_note());
            }
            Outcome::Pending => {
                l.field("Result", "PENDING");
                l.text(
                    "The payment is still being verified. Your wallet shows the result; \
                     if it fails, your card is refunded.",
                );
            }
        }
        l.blank();
        l.text("* deducted by the exchange when your wallet withdraws the coins.");
        l.rule('=');
        for line in &l.0 {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn receipt(outcome: Outcome) -> Receipt {
        Receipt {
            // 2026-11-22 07:05:09 UTC
            time: Timestamp::from_secs(1_795_331_109),
            terminal_id: "T-1".into(),
            provider_name: "cardcash card processor".into(),
            amount: amount("CHF:20"),
            exchange_fees: amount("CHF:0.25"),
            card_fees: Some(amount("CHF:0.5")),
            charged: Some(amount("CHF:20.5")),
            wopid: "Z8WDRS0V2MGXHTZNCKK8SPM0W2TMG6CV2M4MEA5DGC3PC3B3Q7S0".into(),
            card_masked: Some("400000******0002".into()),
            provider_transaction_id: Some("42".into()),
            reserve_pub: Some(EddsaPublicKey::from_bytes([0u8; 32])),
            outcome,
        }
    }

    #[test]
    fn confirmed_receipt_shows_every_field_in_its_place() {
        let text = receipt(Outcome::Confirmed).to_string();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines {
            assert!(line.chars().count() <= WIDTH, "too wide: {line:?}");
        }
        let has = |want: &str| lines.contains(&want);
        assert!(has("Date          2026-11-22 07:05:09 UTC"), "{text}");
        assert!(has("Terminal      T-1"));
        assert!(has("Withdrawal                     CHF 20.00"), "{text}");
        assert!(has("Card fees                       CHF 0.50"));
        assert!(has("Charged to card                CHF 20.50"));
        assert!(has("Exchange fees*                  CHF 0.25"));
        assert!(has("Card          400000******0002"));
        assert!(has("Card tx       42"));
        assert!(has("Withdrawal id Z8WDRS…Q7S0"), "{text}");
        // 32 zero bytes encode as 52 '0' characters.
        assert!(has("Wallet key    0000-0000"));
        assert!(has("Result        CONFIRMED"));
        // The full WOPID never appears.
        assert!(!text.contains("Z8WDRS0V2MGXHTZNCKK8SPM0W2TMG6CV2M4MEA5DGC3PC3B3Q7S0"));
    }

    #[test]
    fn declined_receipt_says_why_and_that_no_money_was_taken() {
        let mut r = receipt(Outcome::Aborted(AbortReason::CardDeclined {
            state: "DECLINE".into(),
            reason: Some("INSUFFICIENT_FUNDS".into()),
        }));
        r.charged = None;
        let text = r.to_string();
        assert!(text.contains("Result        ABORTED"), "{text}");
        assert!(
            text.contains("Reason        card payment DECLINE:"),
            "{text}"
        );
        assert!(text.contains("INSUFFICIENT_FUNDS"));
        assert!(text.contains("Your card was not charged."));
        assert!(!text.contains("Charged to card"));
    }

    #[test]
    fn not_confirmed_receipt_promises_a_refund() {
        let text = receipt(Outcome::Aborted(AbortReason::PaymentNotConfirmed)).to_string();
        assert!(
            text.contains("Any amount charged is refunded to your"),
            "{text}"
        );
        let pending = receipt(Outcome::Pending).to_string();
        assert!(pending.contains("Result        PENDING"));
    }

    #[test]
    fn masking_keeps_six_and_four() {
        assert_eq!(mask_pan("4000000000000002"), "400000******0002");
        assert_eq!(mask_pan("4000 0000 0000 0010"), "400000******0010");
        assert_eq!(mask_pan("1234567"), "***4567");
        assert_eq!(mask_pan("12"), "12");
        assert_eq!(mask_pan(""), "");
    }

    #[test]
    fn short_forms() {
        assert_eq!(short_wopid("ABCDEFGHJKMNPQRS"), "ABCDEF…PQRS");
        assert_eq!(short_wopid("SHORT"), "SHORT");
        let key: EddsaPublicKey = "XYZW1234567890ABCDEFGHJKMNPQRSTVWXYZ0123456789ABCDEF"
            .parse()
            .unwrap_or_else(|_| EddsaPublicKey::from_bytes([0xff; 32]));
        let fp = reserve_fingerprint(&key);
        assert_eq!(fp.len(), 9);
        assert_eq!(fp.chars().nth(4), Some('-'));
        assert_eq!(fp.replace('-', ""), key.to_string()[..8]);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_time(Timestamp::from_secs(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_time(Timestamp::from_secs(951_782_400)),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            utc_time(Timestamp::from_secs(1_795_331_109)),
            "2026-11-22 07:05:09 UTC"
        );
        assert_eq!(utc_time(Timestamp::NEVER), "never");
    }

    #[test]
    fn wrapping_never_exceeds_the_width() {
        let long = "a ".repeat(50) + &"b".repeat(70);
        for line in wrap(&long, 26) {
            assert!(line.chars().count() <= 26, "{line}");
        }
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
    }
}
