//! Card processing rules: card data parsing (Luhn, expiry), the deterministic test cards, the
//! [`Authorizer`] seam, and the transaction state machine including delayed finality.
//!
//! Spec: docs/CARDPROC-API.md "Test cards" and "Transactions". Pure logic: no IO, no SQL, no
//! axum. The [`Authorizer`] trait is where a card network plugs in later: the processor asks it
//! for a decision and applies that decision itself, so every processor shares one state machine.
//!
//! Delayed finality: an approved transaction may be `AUTHORIZED` with a `fulfill_at` time. Its
//! state is derived from the clock on every read ([`effective`]) and a background task persists
//! due transitions, so no reader ever sees a stale `AUTHORIZED` after `fulfill_at`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use cardcash_util::Amount;

use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::{
    DecimalAmount, FailureReason, ProcessCardRequest, RefundType, TransactionState,
};

/// Approved; immediately `FULFILL`.
pub const CARD_APPROVE: &str = "4000000000000002";
/// Declined by the issuer (`DECLINED`).
pub const CARD_DECLINE: &str = "4000000000000010";
/// Declined for lack of funds (`INSUFFICIENT_FUNDS`).
pub const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";
/// Approved, but stays `AUTHORIZED` for the configured delay before `FULFILL`.
pub const CARD_DELAY_FINALITY: &str = "4000000000000028";
/// A processing error (`FAILED`, `PROCESSING_ERROR`).
pub const CARD_PROCESSING_ERROR: &str = "4000000000000036";

/// Why card data was rejected before any authorization (HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The PAN has characters other than digits (spaces are not accepted either).
    #[error("card number must consist of digits only")]
    NotDigits,
    /// The PAN is not 12–19 digits long.
    #[error("card number must have 12 to 19 digits")]
    Length,
    /// The Luhn check digit is wrong.
    #[error("card number fails the Luhn check")]
    Luhn,
    /// Month not in 1–12 or year not four digits.
    #[error("card expiry date is invalid")]
    BadExpiry,
    /// The card expired before the current month.
    #[error("card has expired")]
    Expired,
    /// The CVC is not 3–4 digits.
    #[error("card verification code must be 3 or 4 digits")]
    BadCvc,
}

/// A syntactically valid, Luhn-checked primary account number. Never printed in full.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(String);

/// The Luhn (mod 10) check over ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

impl Pan {
    /// Checks digits, length (12–19) and the Luhn digit.
    pub fn parse(text: &str) -> Result<Self, CardError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
            return Err(CardError::NotDigits);
        }
        if !(12..=19).contains(&text.len()) {
            return Err(CardError::Length);
        }
        if !luhn_valid(text) {
            return Err(CardError::Luhn);
        }
        Ok(Self(text.to_owned()))
    }

    /// The digits (for authorizers only; never log this).
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// First six and last four digits, the rest as `*` (PCI DSS display rule).
    pub fn masked(&self) -> String {
        let len = self.0.len();
        let head = self.0.get(..6).unwrap_or("");
        let tail = self.0.get(len.saturating_sub(4)..).unwrap_or("");
        format!("{head}{}{tail}", "*".repeat(len.saturating_sub(10)))
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Card data after parsing, ready for an [`Authorizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The account number.
    pub pan: Pan,
    /// Expiry month 1–12.
    pub expiry_month: u8,
    /// Expiry year (four digits).
    pub expiry_year: u16,
    /// Whether a CVC was presented (its value is checked for shape and then dropped).
    pub cvc_present: bool,
}

/// `(year, month)` of an instant, UTC.
fn year_month(now: IsoTime) -> (u16, u8) {
    // Reuse the RFC 3339 formatter rather than a second calendar implementation.
    let text = now.to_string();
    let year = text
        .get(0..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(u16::MAX);
    let month = text.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(12);
    (year, month)
}

impl Card {
    /// Parses the terminal's card data; a card is valid through the last day of its expiry month.
    pub fn parse(req: &ProcessCardRequest, now: IsoTime) -> Result<Self, CardError> {
        let pan = Pan::parse(&req.pan.0)?;
        if !(1..=12).contains(&req.expiry_month) || !(1000..=9999).contains(&req.expiry_year) {
            return Err(CardError::BadExpiry);
        }
        if (req.expiry_year, req.expiry_month) < year_month(now) {
            return Err(CardError::Expired);
        }
        if let Some(cvc) = &req.cvc
            && (!(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(CardError::BadCvc);
        }
        Ok(Self {
            pan,
            expiry_month: req.expiry_month,
            expiry_year: req.expiry_year,
            cvc_present: req.cvc.is_some(),
        })
    }
}

/// What an [`Authorizer`] is asked.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The processor's transaction id.
    pub transaction_id: u64,
    /// The card.
    pub card: &'a Card,
    /// The amount to authorize.
    pub amount: Amount,
    /// The merchant's reference.
    pub merchant_reference: &'a str,
}

/// An authorizer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved. `final_after`: `None` = captured and final at once; `Some(d)` = stays
    /// `AUTHORIZED` for `d`, then becomes `FULFILL`.
    Approved {
        /// Delay before finality.
        final_after: Option<Duration>,
    },
    /// The issuer said no (`DECLINE`).
    Declined(FailureReason),
    /// Processing failed (`FAILED`).
    Failed(FailureReason),
}

/// The authorizer could not answer at all (network down); the transaction stays `PENDING` and
/// the terminal may present the card again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authorizer unavailable: {0}")]
pub struct AuthorizerError(pub String);

/// A boxed future, so that `Authorizer` stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Decides whether a card payment is authorized. The test-card implementation is
/// [`TestCardAuthorizer`]; a card network (later issue) implements it by asking the issuer.
pub trait Authorizer: Send + Sync + 'static {
    /// Asks for a decision. Called outside any database transaction.
    fn authorize<'a>(
        &'a self,
        request: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<Decision, AuthorizerError>>;

    /// The decision for `card` when it depends on the card alone (not on the amount, the
    /// transaction or anybody's answer), at no cost and with no effect elsewhere. `process-card`
    /// then applies it without reading the transaction first (one round trip instead of two);
    /// the conditional apply still leaves a transaction that is no longer `PENDING` as it is.
    /// `None` (the default): ask [`Authorizer::authorize`] with the stored transaction.
    fn decide_by_card(&self, _card: &Card) -> Option<Decision> {
        None
    }
}

/// Deterministic outcomes by card number (docs/CARDPROC-API.md "Test cards"); any other
/// Luhn-valid card is approved at once.
#[derive(Debug, Clone)]
pub struct TestCardAuthorizer {
    delay: Duration,
}

impl TestCardAuthorizer {
    /// `delay` is how long [`CARD_DELAY_FINALITY`] stays `AUTHORIZED`.
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }

    /// The decision for a card, synchronously.
    pub fn decide(&self, card: &Card) -> Decision {
        match card.pan.digits() {
            CARD_DECLINE => Decision::Declined(FailureReason::Declined),
            CARD_INSUFFICIENT_FUNDS => Decision::Declined(FailureReason::InsufficientFunds),
            CARD_PROCESSING_ERROR => Decision::Failed(FailureReason::ProcessingError),
            CARD_DELAY_FINALITY => Decision::Approved {
                final_after: Some(self.delay),
            },
            _ => Decision::Approved { final_after: None },
        }
    }
}

impl Authorizer for TestCardAuthorizer {
    fn authorize<'a>(
        &'a self,
        request: AuthorizationRequest<'a>,
    ) -> BoxFuture<'a, Result<Decision, AuthorizerError>> {
        let decision = self.decide(request.card);
        Box::pin(async move { Ok(decision) })
    }

    fn decide_by_card(&self, card: &Card) -> Option<Decision> {
        Some(self.decide(card))
    }
}

/// The stored effect of a decision on a `PENDING` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// New stored state.
    pub state: TransactionState,
    /// Captured amount (the authorization amount when `FULFILL`, else zero).
    pub captured: bool,
    /// Failure reason for `DECLINE`/`FAILED`.
    pub failure_reason: Option<FailureReason>,
    /// When authorized (approvals).
    pub authorized_at: Option<IsoTime>,
    /// When captured (immediate approvals).
    pub completed_at: Option<IsoTime>,
    /// When failed.
    pub failed_at: Option<IsoTime>,
    /// When a delayed approval becomes `FULFILL`.
    pub fulfill_at: Option<IsoTime>,
}

/// What a decision does to a `PENDING` transaction at `now`.
pub fn transition(decision: Decision, now: IsoTime) -> Transition {
    let none = Transition {
        state: TransactionState::Pending,
        captured: false,
        failure_reason: None,
        authorized_at: None,
        completed_at: None,
        failed_at: None,
        fulfill_at: None,
    };
    match decision {
        Decision::Approved { final_after: None } => Transition {
            state: TransactionState::Fulfill,
            captured: true,
            authorized_at: Some(now),
            completed_at: Some(now),
            ..none
        },
        Decision::Approved {
            final_after: Some(delay),
        } => {
            let delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
            Transition {
                state: TransactionState::Authorized,
                authorized_at: Some(now),
                fulfill_at: Some(IsoTime::from_micros(
                    now.as_micros().saturating_add(delay_us),
                )),
                ..none
            }
        }
        Decision::Declined(reason) => Transition {
            state: TransactionState::Decline,
            failure_reason: Some(reason),
            failed_at: Some(now),
            ..none
        },
        Decision::Failed(reason) => Transition {
            state: TransactionState::Failed,
            failure_reason: Some(reason),
            failed_at: Some(now),
            ..none
        },
    }
}

/// The state a reader must see: a stored `AUTHORIZED` whose `fulfill_at` has passed is
/// `FULFILL`, completed at `fulfill_at`. Returns `(state, completed_at if it became due)`.
pub fn effective(
    stored: TransactionState,
    fulfill_at: Option<IsoTime>,
    now: IsoTime,
) -> (TransactionState, Option<IsoTime>) {
    match (stored, fulfill_at) {
        (TransactionState::Authorized, Some(due)) if due <= now => {
            (TransactionState::Fulfill, Some(due))
        }
        _ => (stored, None),
    }
}

/// Why a refund cannot be booked on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRefusal {
    /// Only `FULFILL` (captured and final) transactions can be refunded.
    NotRefundable(TransactionState),
    /// `refunded + amount` would exceed the captured amount.
    ExceedsCompleted,
}

/// The refunded total after refunding `amount` of a transaction in `state` that captured
/// `completed` and refunded `refunded` so far: never more than was captured. The storage layer
/// applies this rule under the transaction's row lock (PostgreSQL's `cardproc_refund` states
/// the same rule in SQL; the refund tests hold both engines to it).
pub fn book_refund(
    state: TransactionState,
    completed: &Amount,
    refunded: &Amount,
    amount: &Amount,
) -> Result<Amount, RefundRefusal> {
    if state != TransactionState::Fulfill {
        return Err(RefundRefusal::NotRefundable(state));
    }
    refunded
        .checked_add(amount)
        .ok()
        .filter(|total| total.partial_cmp(completed).is_some_and(|o| o.is_le()))
        .ok_or(RefundRefusal::ExceedsCompleted)
}

/// What identifies a refund request beyond its `externalId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundTerms<'a> {
    /// The refunded transaction.
    pub transaction: u64,
    /// The amount.
    pub amount: DecimalAmount,
    /// The refund type.
    pub refund_type: RefundType,
    /// The merchant reference.
    pub merchant_reference: Option<&'a str>,
}

/// Whether a request under a used `externalId` repeats the stored refund (a replay: answer
/// with the stored refund) rather than asking for another one (a conflicting reuse: 409).
pub fn is_refund_replay(stored: RefundTerms<'_>, requested: RefundTerms<'_>) -> bool {
    stored == requested
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_api::cardproc::CardNumber;

    fn req(pan: &str, month: u8, year: u16, cvc: Option<&str>) -> ProcessCardRequest {
        ProcessCardRequest {
            pan: CardNumber(pan.into()),
            expiry_month: month,
            expiry_year: year,
            cvc: cvc.map(Into::into),
        }
    }

    // 2026-11-22T07:00:00Z
    const NOW: IsoTime = IsoTime::from_micros(1_795_330_800_000_000);

    #[test]
    fn test_cards_are_luhn_valid() {
        for pan in [
            CARD_APPROVE,
            CARD_DECLINE,
            CARD_INSUFFICIENT_FUNDS,
            CARD_DELAY_FINALITY,
            CARD_PROCESSING_ERROR,
        ] {
            assert!(luhn_valid(pan), "{pan}");
        }
        // Well-known public test numbers.
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("5555555555554444"));
        assert!(!luhn_valid("4111111111111112"));
    }

    #[test]
    fn pan_parsing() {
        assert_eq!(Pan::parse("4000 0000 0000 0002"), Err(CardError::NotDigits));
        assert_eq!(Pan::parse(""), Err(CardError::NotDigits));
        assert_eq!(Pan::parse("42"), Err(CardError::Length));
        assert_eq!(Pan::parse("40000000000000000000"), Err(CardError::Length));
        assert_eq!(Pan::parse("4000000000000003"), Err(CardError::Luhn));
        let pan = Pan::parse(CARD_APPROVE).unwrap();
        assert_eq!(pan.masked(), "400000******0002");
        assert_eq!(format!("{pan:?}"), "Pan(400000******0002)");
    }

    #[test]
    fn expiry_and_cvc() {
        assert!(Card::parse(&req(CARD_APPROVE, 11, 2026, None), NOW).is_ok());
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 10, 2026, None), NOW),
            Err(CardError::Expired)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 12, 2025, None), NOW),
            Err(CardError::Expired)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 13, 2030, None), NOW),
            Err(CardError::BadExpiry)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 0, 2030, None), NOW),
            Err(CardError::BadExpiry)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 1, 30, None), NOW),
            Err(CardError::BadExpiry)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 1, 2030, Some("12")), NOW),
            Err(CardError::BadCvc)
        );
        assert_eq!(
            Card::parse(&req(CARD_APPROVE, 1, 2030, Some("12a")), NOW),
            Err(CardError::BadCvc)
        );
        assert!(
            Card::parse(&req(CARD_APPROVE, 1, 2030, Some("1234")), NOW)
                .unwrap()
                .cvc_present
        );
    }

    #[test]
    fn test_card_decisions() {
        let auth = TestCardAuthorizer::new(Duration::from_millis(300));
        let decide = |pan: &str| auth.decide(&Card::parse(&req(pan, 12, 2030, None), NOW).unwrap());
        assert_eq!(
            decide(CARD_APPROVE),
            Decision::Approved { final_after: None }
        );
        assert_eq!(
            decide("4111111111111111"),
            Decision::Approved { final_after: None }
        );
        assert_eq!(
            decide(CARD_DECLINE),
            Decision::Declined(FailureReason::Declined)
        );
        assert_eq!(
            decide(CARD_INSUFFICIENT_FUNDS),
            Decision::Declined(FailureReason::InsufficientFunds)
        );
        assert_eq!(
            decide(CARD_PROCESSING_ERROR),
            Decision::Failed(FailureReason::ProcessingError)
        );
        assert_eq!(
            decide(CARD_DELAY_FINALITY),
            Decision::Approved {
                final_after: Some(Duration::from_millis(300))
            }
        );
    }

    #[test]
    fn transitions_and_delayed_finality() {
        let t = transition(Decision::Approved { final_after: None }, NOW);
        assert_eq!(
            (t.state, t.captured, t.completed_at),
            (TransactionState::Fulfill, true, Some(NOW))
        );
        let t = transition(Decision::Declined(FailureReason::InsufficientFunds), NOW);
        assert_eq!(
            (t.state, t.failure_reason, t.failed_at),
            (
                TransactionState::Decline,
                Some(FailureReason::InsufficientFunds),
                Some(NOW)
            )
        );
        let t = transition(Decision::Failed(FailureReason::ProcessingError), NOW);
        assert_eq!(t.state, TransactionState::Failed);
        let t = transition(
            Decision::Approved {
                final_after: Some(Duration::from_secs(3)),
            },
            NOW,
        );
        assert_eq!((t.state, t.captured), (TransactionState::Authorized, false));
        let due = t.fulfill_at.unwrap();
        assert_eq!(due.as_micros() - NOW.as_micros(), 3_000_000);
        let before = IsoTime::from_micros(due.as_micros() - 1);
        assert_eq!(
            effective(t.state, t.fulfill_at, before),
            (TransactionState::Authorized, None)
        );
        assert_eq!(
            effective(t.state, t.fulfill_at, due),
            (TransactionState::Fulfill, Some(due))
        );
        // Final states never change with time.
        assert_eq!(
            effective(TransactionState::Decline, Some(due), due),
            (TransactionState::Decline, None)
        );
    }

    #[test]
    fn refunds_never_exceed_the_captured_amount() {
        let chf = |s: &str| -> Amount { format!("CHF:{s}").parse().unwrap() };
        let fulfill = TransactionState::Fulfill;
        assert_eq!(
            book_refund(fulfill, &chf("20"), &chf("5"), &chf("15")),
            Ok(chf("20"))
        );
        assert_eq!(
            book_refund(fulfill, &chf("20"), &chf("0.5"), &chf("0.75")),
            Ok(chf("1.25"))
        );
        assert_eq!(
            book_refund(fulfill, &chf("20"), &chf("5"), &chf("15.00000001")),
            Err(RefundRefusal::ExceedsCompleted)
        );
        // The sum itself overflowing the amount range is an over-refund, not a panic.
        let max = chf("4503599627370496");
        assert_eq!(
            book_refund(fulfill, &max, &max, &chf("1")),
            Err(RefundRefusal::ExceedsCompleted)
        );
        for state in [
            TransactionState::Pending,
            TransactionState::Authorized,
            TransactionState::Decline,
            TransactionState::Voided,
        ] {
            assert_eq!(
                book_refund(state, &chf("20"), &chf("0"), &chf("1")),
                Err(RefundRefusal::NotRefundable(state))
            );
        }
    }

    #[test]
    fn refund_replays_repeat_every_term() {
        let stored = RefundTerms {
            transaction: 1,
            amount: "5.00".parse().unwrap(),
            refund_type: RefundType::MerchantInitiatedOnline,
            merchant_reference: Some("W"),
        };
        assert!(is_refund_replay(stored, stored));
        assert!(is_refund_replay(
            stored,
            RefundTerms {
                amount: "5".parse().unwrap(),
                ..stored
            }
        ));
        for other in [
            RefundTerms {
                transaction: 2,
                ..stored
            },
            RefundTerms {
                amount: "5.01".parse().unwrap(),
                ..stored
            },
            RefundTerms {
                refund_type: RefundType::CustomerInitiatedManual,
                ..stored
            },
            RefundTerms {
                merchant_reference: None,
                ..stored
            },
        ] {
            assert!(!is_refund_replay(stored, other), "{other:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn pan_parse_never_panics(text in "\\PC{0,30}") {
            let _ = Pan::parse(&text);
        }

        #[test]
        fn one_wrong_digit_breaks_luhn(digits in "[0-9]{15}", pos in 0usize..16, bump in 1u8..10) {
            // Append the check digit that makes it valid, then change one digit.
            let check = (0..10u8).find(|d| luhn_valid(&format!("{digits}{d}"))).unwrap();
            let valid = format!("{digits}{check}");
            prop_assert!(Pan::parse(&valid).is_ok());
            let mut bytes = valid.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + bump) % 10;
            prop_assert!(!luhn_valid(std::str::from_utf8(&bytes).unwrap()));
        }

        #[test]
        fn masked_pan_keeps_only_six_and_four(digits in "[0-9]{11,18}") {
            let check = (0..10u8).find(|d| luhn_valid(&format!("{digits}{d}"))).unwrap();
            let pan = Pan::parse(&format!("{digits}{check}")).unwrap();
            let masked = pan.masked();
            prop_assert_eq!(masked.len(), pan.digits().len());
            prop_assert_eq!(&masked[..6], &pan.digits()[..6]);
            prop_assert_eq!(&masked[masked.len() - 4..], &pan.digits()[pan.digits().len() - 4..]);
            prop_assert!(masked[6..masked.len() - 4].bytes().all(|b| b == b'*'));
        }
    }
}
