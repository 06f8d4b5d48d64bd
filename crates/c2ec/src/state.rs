//! The withdrawal-operation state machine, as pure decisions.
//!
//! ```text
//! pending ──wallet registers──▶ selected ──attestation ok──▶ confirmed
//!    │                             │
//!    └── abort / expiry ──▶ aborted ◀── abort / expiry / decline / mismatch
//! ```
//!
//! Spec: bank-integration API (status values), our notes `spec/c2ec.md` §1.6. Every function here
//! decides from values already loaded; the database then applies the decision with a conditional
//! `UPDATE … WHERE status = <expected>` (and a trigger refusing illegal transitions), so a decision
//! taken on a stale read loses the race instead of corrupting the state. Never does IO.

use std::fmt;
use std::str::FromStr;

use cardcash_util::{Amount, EddsaPublicKey};

/// Status of a withdrawal operation; the values are the bank-integration API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Set up by a terminal, waiting for a wallet to register a reserve.
    Pending,
    /// A wallet registered its reserve; waiting for the card payment and its attestation.
    Selected,
    /// The card payment was attested; the reserve is credited (incoming history).
    Confirmed,
    /// Given up: aborted by terminal or wallet, expired, declined or mismatched.
    Aborted,
}

impl Status {
    /// All statuses, in protocol order.
    pub const ALL: [Status; 4] = [
        Self::Pending,
        Self::Selected,
        Self::Confirmed,
        Self::Aborted,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Selected => "selected",
            Self::Confirmed => "confirmed",
            Self::Aborted => "aborted",
        }
    }

    /// Whether no transition leaves this status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Confirmed | Self::Aborted)
    }

    /// Whether `self → to` is an edge of the machine (staying put is not a transition).
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Self::Pending, Self::Selected)
                | (Self::Pending, Self::Aborted)
                | (Self::Selected, Self::Confirmed)
                | (Self::Selected, Self::Aborted)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown withdrawal status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Longest `request_uid` a terminal may send (bytes).
pub const MAX_REQUEST_UID_LEN: usize = 128;
/// Longest `provider_transaction_id` (bytes).
pub const MAX_PROVIDER_TX_ID_LEN: usize = 100;
/// Longest `selected_exchange` payto URI a wallet may send (bytes, as we render it).
pub const MAX_SELECTED_EXCHANGE_LEN: usize = 1024;

/// A terminal's `request_uid`: 1 to [`MAX_REQUEST_UID_LEN`] bytes of text without control
/// characters (it is free-form, but it ends up in logs, the database and error answers).
pub fn valid_request_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= MAX_REQUEST_UID_LEN && !uid.chars().any(char::is_control)
}

/// A card provider's transaction id: 1 to [`MAX_PROVIDER_TX_ID_LEN`] URI-unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`). It becomes the last path segment of the card transaction's payto
/// URI (`payto://card-transaction/HOST/ID`), the debit account the exchange sees and later
/// sends refunds to, so it must read back as the same id; Wallee-style ids are numbers.
pub fn valid_provider_transaction_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PROVIDER_TX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What the wallet asks for when it registers (`POST withdrawal-operation/$WOPID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub reserve_pub: EddsaPublicKey,
    /// The exchange account the wallet selected, normalised for comparison.
    pub exchange_account: String,
    /// The amount the wallet chose (bank-integration v4); only allowed when not fixed.
    pub amount: Option<Amount>,
}

/// The parts of a stored operation that registration depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationView {
    pub status: Status,
    pub reserve_pub: Option<EddsaPublicKey>,
    pub exchange_account: Option<String>,
    pub amount: Option<Amount>,
    pub suggested_amount: Option<Amount>,
    /// The terminal's card fees, charged on top of whatever amount is fixed.
    pub card_fees: Amount,
}

/// Why a registration is refused (each maps to one HTTP status and official error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationConflict {
    /// Already aborted (409 `BANK_UPDATE_ABORT_CONFLICT`).
    Aborted,
    /// Another reserve or exchange was selected before (409 `…RESERVE_SELECTION_CONFLICT`).
    OtherSelection,
    /// The wallet's amount differs from the fixed one (409 `BANK_AMOUNT_DIFFERS`).
    AmountDiffers,
    /// Neither the terminal nor the wallet gave an amount (409 `BANK_AMOUNT_REQUIRED`).
    NoAmount,
    /// The amount to withdraw would be zero (400 `GENERIC_PARAMETER_MALFORMED`).
    ZeroAmount,
    /// Amount plus card fees exceed the largest amount (400 `BANK_NUMBER_TOO_BIG`): the card
    /// could never be charged, so the operation could never be attested.
    ChargeTooBig,
}

/// The decision for a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationDecision {
    /// Move `pending → selected` with this final amount.
    Select {
        amount: Amount,
    },
    /// The same registration again: answer with the current status, change nothing.
    Replay {
        status: Status,
    },
    Conflict(RegistrationConflict),
}

/// What the card is charged for `amount`: the amount plus the terminal's card fees, `None` when
/// the sum is not a valid amount (above 2^52 or in two currencies). Every sum of money C2EC
/// forms goes through here, at the moment it is formed, so an operation whose charge cannot
/// exist is refused up front instead of failing later in the attestation worker.
pub fn charge(amount: &Amount, card_fees: &Amount) -> Option<Amount> {
    amount.checked_add(card_fees).ok()
}

/// Why the money fields of a terminal's setup are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupAmountProblem {
    /// Neither `amount` nor `suggested_amount` (400 `GENERIC_PARAMETER_MISSING`).
    Missing,
    /// An amount of zero: nothing to withdraw (400 `GENERIC_PARAMETER_MALFORMED`).
    Zero,
    /// An amount plus the card fees exceeds the largest amount (400 `BANK_NUMBER_TOO_BIG`).
    ChargeTooBig,
}

/// Checks the money fields of a setup (currencies are checked by the caller): an amount must
/// be positive and chargeable together with the fees, and so must the suggestion, since a
/// wallet that names no amount withdraws exactly the suggestion.
pub fn check_setup_amounts(
    amount: Option<&Amount>,
    suggested: Option<&Amount>,
    card_fees: &Amount,
) -> Result<(), SetupAmountProblem> {
    if amount.is_none() && suggested.is_none() {
        return Err(SetupAmountProblem::Missing);
    }
    for a in [amount, suggested].into_iter().flatten() {
        if a.is_zero() {
            return Err(SetupAmountProblem::Zero);
        }
        if charge(a, card_fees).is_none() {
            return Err(SetupAmountProblem::ChargeTooBig);
        }
    }
    Ok(())
}

/// Decides a wallet registration. The amount to withdraw is fixed at this point: the terminal's
/// fixed amount, else the wallet's choice, else the terminal's suggestion. Whichever it is, it
/// must be positive and chargeable together with the card fees.
pub fn decide_registration(view: &RegistrationView, req: &Registration) -> RegistrationDecision {
    use RegistrationDecision::*;
    match decide_registration_amount(view, req) {
        Select { amount } if amount.is_zero() => Conflict(RegistrationConflict::ZeroAmount),
        Select { amount } if charge(&amount, &view.card_fees).is_none() => {
            Conflict(RegistrationConflict::ChargeTooBig)
        }
        other => other,
    }
}

fn decide_registration_amount(view: &RegistrationView, req: &Registration) -> RegistrationDecision {
    use RegistrationDecision::*;
    match view.status {
        Status::Aborted => Conflict(RegistrationConflict::Aborted),
        Status::Selected | Status::Confirmed => {
            let same = view.reserve_pub.as_ref() == Some(&req.reserve_pub)
                && view.exchange_account.as_deref() == Some(req.exchange_account.as_str());
            // A replay that names an amount must name the one that was fixed.
            let amount_ok = req.amount.is_none() || req.amount == view.amount;
            match (same, amount_ok) {
                (true, true) => Replay {
                    status: view.status,
                },
                (true, false) => Conflict(RegistrationConflict::AmountDiffers),
                (false, _) => Conflict(RegistrationConflict::OtherSelection),
            }
        }
        Status::Pending => match (&view.amount, &req.amount) {
            (Some(fixed), Some(wanted)) if fixed != wanted => {
                Conflict(RegistrationConflict::AmountDiffers)
            }
            (Some(fixed), _) => Select { amount: *fixed },
            (None, Some(wanted)) => Select { amount: *wanted },
            (None, None) => match &view.suggested_amount {
                Some(s) => Select { amount: *s },
                None => Conflict(RegistrationConflict::NoAmount),
            },
        },
    }
}

/// The `amount` of the wallet-facing status (bank-integration API).
///
/// Why it is also given for an amount the wallet could still change: C2EC announces version
/// `4:0:4`, i.e. it claims to serve every client from v0 to v4, and GNU Taler's 2022 wallet
/// (wallet-core 0.9, bank integration `0:0:0`) is one of them: its status decoder *requires*
/// `amount` (optional only since v4), so a `suggested_amount`-only status made it fail before
/// it could even show the withdrawal. Announcing a version that drops v0 (`4:0:0`) would lock
/// that wallet out of every withdrawal, fixed amounts included. So the status carries what v0
/// defines `amount` to be, "the amount that will be withdrawn with this operation": the fixed
/// amount, else the terminal's suggestion, which is exactly what a wallet that names no amount
/// (every v0 wallet) gets when it registers (see [`decide_registration`]). `suggested_amount`
/// stays in the status, and a wallet may still send its own `amount` when it registers; a v4
/// wallet reading `amount` as fixed simply withdraws the suggestion. Both generations work;
/// the price is that current wallets do not offer to edit a suggested amount.
pub fn amount_for_wallets(amount: Option<&Amount>, suggested: Option<&Amount>) -> Option<Amount> {
    amount.or(suggested).copied()
}

/// The parts of a stored operation that a terminal's `/check` depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckView {
    pub status: Status,
    pub provider_transaction_id: Option<String>,
}

/// Why a `/check` is answered with 409 (the card transaction may still have been recorded, so
/// that its money goes back to the card).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckConflict {
    /// No wallet registered yet (`BANK_CONFIRM_INCOMPLETE`).
    NotSelected,
    /// Already aborted (`BANK_CONFIRM_ABORT_CONFLICT`).
    Aborted,
    /// A different card transaction was reported before.
    OtherTransaction,
}

/// The decision for a terminal's `/check`.
///
/// The rule behind it: a card payment the terminal reports is never forgotten. Either it
/// becomes the operation's transaction (and then confirms it or is refunded when the
/// operation is aborted), or it can never fund the operation and is refunded at once. Only
/// the answer to the terminal differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckDecision {
    /// Bind the transaction to the operation, then answer `answer`: a selected operation is
    /// attested at once (204); a pending one once a wallet registers (409 `NotSelected`, the
    /// terminal may check again); an aborted one gets the payment refunded (409 `Aborted`).
    Record { answer: Result<(), CheckConflict> },
    /// The same transaction again: nothing to change (idempotent), same answer as the first time.
    Replay { answer: Result<(), CheckConflict> },
    /// Another transaction is bound already: this one is recorded for refund and refused.
    RefundExtra { answer: CheckConflict },
}

/// What a `/check` of the operation's own transaction answers in `status`.
fn check_answer(status: Status) -> Result<(), CheckConflict> {
    match status {
        Status::Selected | Status::Confirmed => Ok(()),
        Status::Pending => Err(CheckConflict::NotSelected),
        Status::Aborted => Err(CheckConflict::Aborted),
    }
}

/// Decides a terminal's `/check`: the first report binds the card transaction to the operation.
pub fn decide_check(view: &CheckView, tx_id: &str) -> CheckDecision {
    match (&view.provider_transaction_id, view.status) {
        (Some(known), status) if known == tx_id => CheckDecision::Replay {
            answer: check_answer(status),
        },
        (Some(_), Status::Aborted) => CheckDecision::RefundExtra {
            answer: CheckConflict::Aborted,
        },
        (Some(_), _) => CheckDecision::RefundExtra {
            answer: CheckConflict::OtherTransaction,
        },
        // Confirmation without a transaction id cannot exist (database CHECK); refuse anyway.
        (None, Status::Confirmed) => CheckDecision::RefundExtra {
            answer: CheckConflict::OtherTransaction,
        },
        (None, status) => CheckDecision::Record {
            answer: check_answer(status),
        },
    }
}

/// The decision for an abort by terminal or wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortDecision {
    /// Move to `aborted`.
    Abort,
    /// Already aborted: a no-op that still answers 204.
    AlreadyAborted,
    /// Confirmed operations cannot be aborted (`BANK_ABORT_CONFIRM_CONFLICT`).
    Confirmed,
}

/// Decides an abort request.
pub fn decide_abort(status: Status) -> AbortDecision {
    match status {
        Status::Pending | Status::Selected => AbortDecision::Abort,
        Status::Aborted => AbortDecision::AlreadyAborted,
        Status::Confirmed => AbortDecision::Confirmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chf(v: u64) -> Amount {
        format!("CHF:{v}").parse().unwrap()
    }

    fn key(b: u8) -> EddsaPublicKey {
        EddsaPublicKey::from_bytes([b; 32])
    }

    fn pending(amount: Option<Amount>, suggested: Option<Amount>) -> RegistrationView {
        RegistrationView {
            status: Status::Pending,
            reserve_pub: None,
            exchange_account: None,
            amount,
            suggested_amount: suggested,
            card_fees: chf(1),
        }
    }

    fn reg(b: u8, amount: Option<Amount>) -> Registration {
        Registration {
            reserve_pub: key(b),
            exchange_account: "payto://x-taler-bank/c2ec/exchange".into(),
            amount,
        }
    }

    #[test]
    fn status_round_trips_and_rejects_unknown() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
        }
        assert!("PENDING".parse::<Status>().is_err());
        assert!("".parse::<Status>().is_err());
    }

    #[test]
    fn only_the_four_edges_exist() {
        let mut edges = vec![];
        for a in Status::ALL {
            for b in Status::ALL {
                if a.can_become(b) {
                    edges.push((a.as_str(), b.as_str()));
                }
            }
        }
        assert_eq!(
            edges,
            [
                ("pending", "selected"),
                ("pending", "aborted"),
                ("selected", "confirmed"),
                ("selected", "aborted")
            ]
        );
        assert!(Status::Confirmed.is_final() && Status::Aborted.is_final());
        assert!(!Status::Pending.is_final() && !Status::Selected.is_final());
    }

    #[test]
    fn registration_fixes_the_amount() {
        assert_eq!(
            decide_registration(&pending(Some(chf(20)), None), &reg(1, None)),
            RegistrationDecision::Select { amount: chf(20) }
        );
        assert_eq!(
            decide_registration(&pending(Some(chf(20)), None), &reg(1, Some(chf(20)))),
            RegistrationDecision::Select { amount: chf(20) }
        );
        assert_eq!(
            decide_registration(&pending(Some(chf(20)), None), &reg(1, Some(chf(21)))),
            RegistrationDecision::Conflict(RegistrationConflict::AmountDiffers)
        );
        assert_eq!(
            decide_registration(&pending(None, Some(chf(5))), &reg(1, Some(chf(7)))),
            RegistrationDecision::Select { amount: chf(7) }
        );
        assert_eq!(
            decide_registration(&pending(None, Some(chf(5))), &reg(1, None)),
            RegistrationDecision::Select { amount: chf(5) }
        );
        assert_eq!(
            decide_registration(&pending(None, None), &reg(1, None)),
            RegistrationDecision::Conflict(RegistrationConflict::NoAmount)
        );
    }

    #[test]
    fn free_form_identifiers_are_bounded() {
        assert!(valid_request_uid("3f1c-uid"));
        assert!(valid_request_uid("Kasse 1 / Bon 17 é"));
        assert!(valid_request_uid(&"u".repeat(MAX_REQUEST_UID_LEN)));
        for bad in ["", "a\nb", "a\u{0}", "\t", "a\u{7f}", "a\u{85}"] {
            assert!(!valid_request_uid(bad), "{bad:?}");
        }
        assert!(!valid_request_uid(&"u".repeat(MAX_REQUEST_UID_LEN + 1)));
        assert!(valid_provider_transaction_id("1042"));
        assert!(valid_provider_transaction_id("tx_1.a-b~c"));
        assert!(valid_provider_transaction_id(
            &"7".repeat(MAX_PROVIDER_TX_ID_LEN)
        ));
        for bad in ["", "1 2", "1/2", "1?x", "1#", "%31", "12\n", "é"] {
            assert!(!valid_provider_transaction_id(bad), "{bad:?}");
        }
        assert!(!valid_provider_transaction_id(
            &"7".repeat(MAX_PROVIDER_TX_ID_LEN + 1)
        ));
    }

    #[test]
    fn setup_amounts_must_be_positive_and_chargeable() {
        let max: Amount = "CHF:4503599627370496".parse().unwrap();
        let fees = chf(1);
        assert_eq!(check_setup_amounts(Some(&chf(20)), None, &fees), Ok(()));
        assert_eq!(check_setup_amounts(None, Some(&chf(20)), &fees), Ok(()));
        assert_eq!(
            check_setup_amounts(None, None, &fees),
            Err(SetupAmountProblem::Missing)
        );
        assert_eq!(
            check_setup_amounts(Some(&chf(0)), None, &fees),
            Err(SetupAmountProblem::Zero)
        );
        assert_eq!(
            check_setup_amounts(None, Some(&chf(0)), &fees),
            Err(SetupAmountProblem::Zero)
        );
        assert_eq!(
            check_setup_amounts(Some(&max), None, &fees),
            Err(SetupAmountProblem::ChargeTooBig)
        );
        assert_eq!(
            check_setup_amounts(Some(&chf(5)), Some(&max), &fees),
            Err(SetupAmountProblem::ChargeTooBig)
        );
        // Without fees the largest amount is still chargeable.
        assert_eq!(check_setup_amounts(Some(&max), None, &chf(0)), Ok(()));
        assert_eq!(charge(&max, &fees), None);
        assert_eq!(charge(&chf(20), &fees), Some(chf(21)));
    }

    #[test]
    fn registration_refuses_zero_and_unchargeable_amounts() {
        let max: Amount = "CHF:4503599627370496".parse().unwrap();
        // The wallet's choice plus the fees must be an amount.
        assert_eq!(
            decide_registration(&pending(None, Some(chf(5))), &reg(1, Some(max))),
            RegistrationDecision::Conflict(RegistrationConflict::ChargeTooBig)
        );
        assert_eq!(
            decide_registration(&pending(None, Some(chf(5))), &reg(1, Some(chf(0)))),
            RegistrationDecision::Conflict(RegistrationConflict::ZeroAmount)
        );
        // Rows written before setup checked the sums are refused too.
        assert_eq!(
            decide_registration(&pending(Some(max), None), &reg(1, None)),
            RegistrationDecision::Conflict(RegistrationConflict::ChargeTooBig)
        );
        assert_eq!(
            decide_registration(&pending(None, Some(chf(0))), &reg(1, None)),
            RegistrationDecision::Conflict(RegistrationConflict::ZeroAmount)
        );
    }

    #[test]
    fn wallets_always_see_the_amount_they_would_withdraw() {
        assert_eq!(amount_for_wallets(Some(&chf(20)), None), Some(chf(20)));
        assert_eq!(amount_for_wallets(None, Some(&chf(10))), Some(chf(10)));
        assert_eq!(
            amount_for_wallets(Some(&chf(7)), Some(&chf(10))),
            Some(chf(7))
        );
        // The amount a wallet without a choice registers for is the one it was shown.
        let shown = amount_for_wallets(None, Some(&chf(10))).unwrap();
        assert_eq!(
            decide_registration(&pending(None, Some(chf(10))), &reg(1, None)),
            RegistrationDecision::Select { amount: shown }
        );
    }

    #[test]
    fn registration_replay_and_conflicts() {
        let selected = RegistrationView {
            status: Status::Selected,
            reserve_pub: Some(key(1)),
            exchange_account: Some("payto://x-taler-bank/c2ec/exchange".into()),
            amount: Some(chf(20)),
            suggested_amount: None,
            card_fees: chf(0),
        };
        assert_eq!(
            decide_registration(&selected, &reg(1, None)),
            RegistrationDecision::Replay {
                status: Status::Selected
            }
        );
        assert_eq!(
            decide_registration(&selected, &reg(2, None)),
            RegistrationDecision::Conflict(RegistrationConflict::OtherSelection)
        );
        let mut other_exchange = reg(1, None);
        other_exchange.exchange_account = "payto://x-taler-bank/c2ec/other".into();
        assert_eq!(
            decide_registration(&selected, &other_exchange),
            RegistrationDecision::Conflict(RegistrationConflict::OtherSelection)
        );
        assert_eq!(
            decide_registration(&selected, &reg(1, Some(chf(3)))),
            RegistrationDecision::Conflict(RegistrationConflict::AmountDiffers)
        );
        let confirmed = RegistrationView {
            status: Status::Confirmed,
            ..selected.clone()
        };
        assert_eq!(
            decide_registration(&confirmed, &reg(1, None)),
            RegistrationDecision::Replay {
                status: Status::Confirmed
            }
        );
        let aborted = RegistrationView {
            status: Status::Aborted,
            ..selected
        };
        assert_eq!(
            decide_registration(&aborted, &reg(1, None)),
            RegistrationDecision::Conflict(RegistrationConflict::Aborted)
        );
    }

    #[test]
    fn check_binds_one_transaction_and_never_forgets_a_payment() {
        use CheckConflict::*;
        let v = |status, tx: Option<&str>| CheckView {
            status,
            provider_transaction_id: tx.map(str::to_owned),
        };
        let record = |answer| CheckDecision::Record { answer };
        let replay = |answer| CheckDecision::Replay { answer };
        let extra = |answer| CheckDecision::RefundExtra { answer };
        // First report: always recorded; the answer tells the terminal where things stand.
        assert_eq!(
            decide_check(&v(Status::Selected, None), "42"),
            record(Ok(()))
        );
        assert_eq!(
            decide_check(&v(Status::Pending, None), "42"),
            record(Err(NotSelected))
        );
        assert_eq!(
            decide_check(&v(Status::Aborted, None), "42"),
            record(Err(Aborted))
        );
        // The same id again: same answer, nothing changes.
        assert_eq!(
            decide_check(&v(Status::Selected, Some("42")), "42"),
            replay(Ok(()))
        );
        assert_eq!(
            decide_check(&v(Status::Confirmed, Some("42")), "42"),
            replay(Ok(()))
        );
        assert_eq!(
            decide_check(&v(Status::Pending, Some("42")), "42"),
            replay(Err(NotSelected))
        );
        assert_eq!(
            decide_check(&v(Status::Aborted, Some("42")), "42"),
            replay(Err(Aborted))
        );
        // Another id: refused, and refunded.
        assert_eq!(
            decide_check(&v(Status::Selected, Some("42")), "43"),
            extra(OtherTransaction)
        );
        assert_eq!(
            decide_check(&v(Status::Confirmed, Some("42")), "43"),
            extra(OtherTransaction)
        );
        assert_eq!(
            decide_check(&v(Status::Aborted, Some("42")), "43"),
            extra(Aborted)
        );
    }

    #[test]
    fn abort_rules() {
        assert_eq!(decide_abort(Status::Pending), AbortDecision::Abort);
        assert_eq!(decide_abort(Status::Selected), AbortDecision::Abort);
        assert_eq!(decide_abort(Status::Aborted), AbortDecision::AlreadyAborted);
        assert_eq!(decide_abort(Status::Confirmed), AbortDecision::Confirmed);
    }
}
