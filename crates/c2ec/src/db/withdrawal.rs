//! Withdrawal operations: their rows, the state changes of the protocol (setup, registration,
//! check, abort, expiry, attestation) and their audit trail. Each state change is one storage
//! call: one writer closure on SQLite, one statement on PostgreSQL.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, Currency, EddsaPublicKey, PaytoUri, Timestamp, Wopid};

use super::{C2ecStore, postgres, sqlite};
use crate::state::{
    AbortDecision, CheckDecision, Registration, RegistrationDecision, RegistrationView, Status,
};

/// Where the refund of an operation's own card transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    /// Nothing to refund (no transaction bound when the operation ended, or it was confirmed).
    None,
    /// The refund worker must return the captured payment (or find out there is none).
    Due,
    Done,
    /// Decided that nothing goes back (no captured payment for this operation, refused).
    NotNeeded,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Due => "due",
            Self::Done => "done",
            Self::NotNeeded => "not_needed",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "none" => Self::None,
            "due" => Self::Due,
            "done" => Self::Done,
            "not_needed" => Self::NotNeeded,
            other => return Err(super::corrupt(format!("refund state {other:?}"))),
        })
    }
}

/// A stored withdrawal operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRow {
    pub withdrawal_id: i64,
    pub wopid: Wopid,
    pub terminal_id: i64,
    /// Fixed by the terminal at setup, or at registration (wallet's choice or the suggestion).
    pub amount: Option<Amount>,
    pub suggested_amount: Option<Amount>,
    /// Card (terminal) fees charged on top of the amount.
    pub card_fees: Amount,
    pub status: Status,
    pub reserve_pub: Option<EddsaPublicKey>,
    pub exchange_account: Option<PaytoUri>,
    pub provider_tx_id: Option<String>,
    pub created_at: Timestamp,
    pub selected_at: Option<Timestamp>,
    pub checked_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Attestation attempts that were postponed.
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub abort_reason: Option<String>,
    pub refund_state: RefundState,
    pub refund_id: Option<String>,
    pub refund_attempts: u32,
}

impl WithdrawalRow {
    /// What the card must be charged: amount plus card fees (`None` while the amount is open,
    /// or for a row whose sum is no amount, which only data written before setup and
    /// registration checked the sums can hold).
    pub fn charge(&self) -> Option<Amount> {
        self.amount
            .as_ref()
            .and_then(|a| crate::state::charge(a, &self.card_fees))
    }
}

/// A further card transaction reported for an operation (table `extra_payments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPaymentRow {
    pub extra_id: i64,
    pub provider_tx_id: String,
    pub refund_attempts: u32,
    pub withdrawal_id: i64,
    pub wopid: Wopid,
    /// The status of the operation it was reported for.
    pub status: Status,
}

/// A new operation from `POST /terminal/withdrawals`.
#[derive(Debug, Clone)]
pub struct NewWithdrawal {
    pub wopid: Wopid,
    pub terminal_id: i64,
    pub request_uid: String,
    /// What makes two setups with the same `request_uid` "the same request".
    pub request_hash: Vec<u8>,
    pub amount: Option<Amount>,
    pub suggested_amount: Option<Amount>,
    pub card_fees: Amount,
    pub now: Timestamp,
}

/// Outcome of a setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    Created(Wopid),
    /// Same `request_uid` and the same request: the original operation.
    Replay(Wopid),
    /// Same `request_uid`, different request.
    Conflict,
}

/// Outcome of a wallet's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    NotFound,
    /// The rules' decision, applied (`Select`: the operation is selected now).
    Decided(RegistrationDecision),
    /// The reserve public key is used by another operation or an incoming row.
    ReservePubTaken,
}

/// Outcome of a terminal's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// No such operation, or another terminal's.
    NotFound,
    /// The rules' decision, applied.
    Decided(CheckDecision),
}

/// An abort to apply.
#[derive(Debug, Clone)]
pub struct AbortRequest {
    /// Only this terminal's operation (`None`: anyone holding the WOPID).
    pub terminal: Option<i64>,
    /// Only a selected operation (the attestation worker's verdicts).
    pub only_selected: bool,
    pub actor: &'static str,
    pub reason: String,
    /// The provider's transaction data behind a verdict.
    pub evidence: Option<String>,
}

/// Outcome of an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortOutcome {
    NotFound,
    /// The operation was in `from`; `aborted` tells whether it is aborted now by this call
    /// (otherwise [`crate::state::decide_abort`] of `from` says why not).
    Decided {
        from: Status,
        aborted: bool,
    },
}

/// Operations claimed for attestation, and when the next one falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub rows: Vec<WithdrawalRow>,
    /// The earliest scheduled attempt among the operations not claimed now.
    pub next_due: Option<Timestamp>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub old_status: Option<Status>,
    pub new_status: Status,
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

/// A confirmed withdrawal (or an admin row) as the exchange sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRow {
    pub row_id: i64,
    pub reserve_pub: EddsaPublicKey,
    pub amount: Amount,
    pub debit_account: PaytoUri,
    pub created_at: Timestamp,
}

/// Outcome of adding an incoming row directly (admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddIncomingOutcome {
    Added { row_id: i64, created_at: Timestamp },
    ReservePubReuse,
}

/// What a `withdrawal` notification's message says about the operation's new status, so that a
/// woken long poll can answer without reading the row again (see [`WithdrawalRow::after_news`]).
///
/// Messages: `selected <reserve_pub hex> <amount value> <amount fraction> <exchange account>`,
/// `confirmed`, `aborted` (PostgreSQL's functions write the same text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusNews {
    Selected {
        reserve_pub: EddsaPublicKey,
        amount: Amount,
        exchange_account: PaytoUri,
    },
    Confirmed,
    Aborted,
}

/// The message of a `pending → selected` change.
pub(super) fn selected_message(
    reserve_pub: &EddsaPublicKey,
    amount: &Amount,
    exchange_account: &str,
) -> String {
    let (val, frac) = super::cols(amount);
    format!(
        "selected {} {val} {frac} {exchange_account}",
        super::hex(reserve_pub.as_bytes())
    )
}

/// The message of a change to `confirmed`.
pub(super) const CONFIRMED_MESSAGE: &str = "confirmed";
/// The message of a change to `aborted`.
pub(super) const ABORTED_MESSAGE: &str = "aborted";

impl StatusNews {
    /// Parses a message; `None` for anything this version did not write.
    pub fn parse(currency: Currency, text: &str) -> Option<Self> {
        let mut parts = text.splitn(5, ' ');
        match parts.next()? {
            "confirmed" => parts.next().is_none().then_some(Self::Confirmed),
            "aborted" => parts.next().is_none().then_some(Self::Aborted),
            "selected" => {
                let reserve_pub = EddsaPublicKey::from_slice(&super::unhex(parts.next()?)?)?;
                let val: i64 = parts.next()?.parse().ok()?;
                let frac: i64 = parts.next()?.parse().ok()?;
                let amount = super::amount(currency, val, frac).ok()?;
                let exchange_account = parts.next()?.parse().ok()?;
                Some(Self::Selected {
                    reserve_pub,
                    amount,
                    exchange_account,
                })
            }
            _ => None,
        }
    }
}

impl WithdrawalRow {
    /// The row after the changes `messages` announce (in delivery order), if they tell the
    /// whole story: each must be the next step from the status reached so far (`pending →
    /// selected`, `selected → confirmed | aborted`) or old news (a status already reached or
    /// passed, which the row includes). Anything else — an unreadable message, `pending →
    /// aborted` (it may have passed `selected`, whose message could come later), a jump over a
    /// step — is `None`: read the row again.
    pub fn after_news(&self, currency: Currency, messages: &[String]) -> Option<Self> {
        let mut row = self.clone();
        for message in messages {
            let news = StatusNews::parse(currency, message)?;
            match (row.status, news) {
                (
                    Status::Pending,
                    StatusNews::Selected {
                        reserve_pub,
                        amount,
                        exchange_account,
                    },
                ) => {
                    row.status = Status::Selected;
                    row.reserve_pub = Some(reserve_pub);
                    row.amount = Some(amount);
                    row.exchange_account = Some(exchange_account);
                }
                (Status::Selected, StatusNews::Confirmed) => row.status = Status::Confirmed,
                (Status::Selected, StatusNews::Aborted) => row.status = Status::Aborted,
                // Old news: the row already includes it.
                (
                    Status::Selected | Status::Confirmed | Status::Aborted,
                    StatusNews::Selected { .. },
                )
                | (Status::Confirmed, StatusNews::Confirmed)
                | (Status::Aborted, StatusNews::Aborted) => {}
                _ => return None,
            }
        }
        Some(row)
    }
}

/// What the registration rules need from a row.
pub(super) fn registration_view(row: &WithdrawalRow) -> RegistrationView {
    RegistrationView {
        status: row.status,
        reserve_pub: row.reserve_pub,
        exchange_account: row.exchange_account.as_ref().map(ToString::to_string),
        amount: row.amount,
        suggested_amount: row.suggested_amount,
        card_fees: row.card_fees,
    }
}

/// Whether an abort request applies to an operation in `from`.
pub(super) fn abort_applies(from: Status, only_selected: bool) -> bool {
    crate::state::decide_abort(from) == AbortDecision::Abort
        && (!only_selected || from == Status::Selected)
}

impl C2ecStore {
    /// Creates an operation, idempotently on `(terminal, request_uid)`.
    pub async fn setup(&self, new: NewWithdrawal) -> Result<SetupOutcome, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let new = Arc::new(new);
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| sqlite::setup(tx, &new))
                })
                .await
            }
            Database::Postgres(db) => retry(|| postgres::setup(db, &new)).await,
        }
    }

    /// The operation with this WOPID.
    pub async fn withdrawal(&self, wopid: &Wopid) -> Result<Option<WithdrawalRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::withdrawal_by_wopid(conn, self.currency, wopid))
            }
            Database::Postgres(db) => postgres::withdrawal(db, self.currency, wopid).await,
        }
    }

    /// A wallet registers its reserve (see [`crate::state::decide_registration`]).
    /// `registration.exchange_account` is the configured exchange account's text.
    pub async fn register(
        &self,
        wopid: &Wopid,
        registration: Registration,
        now: Timestamp,
    ) -> Result<RegisterOutcome, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let registration = Arc::new(registration);
                let (currency, wopid) = (self.currency, *wopid);
                retry(|| {
                    let registration = registration.clone();
                    db.write(move |tx| sqlite::register(tx, currency, &wopid, &registration, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::register(db, self.currency, wopid, &registration, now)).await
            }
        }
    }

    /// A terminal reports the card transaction (see [`crate::state::decide_check`]).
    pub async fn check(
        &self,
        wopid: &Wopid,
        terminal_id: i64,
        tx_id: &str,
        now: Timestamp,
    ) -> Result<CheckOutcome, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let (wopid, tx_id): (Wopid, Arc<str>) = (*wopid, Arc::from(tx_id));
                retry(|| {
                    let tx_id = tx_id.clone();
                    db.write(move |tx| sqlite::check(tx, &wopid, terminal_id, &tx_id, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::check(db, wopid, terminal_id, tx_id, now)).await
            }
        }
    }

    /// Aborts an operation if the request applies to its status (see [`AbortRequest`]). When
    /// a card transaction is bound to it at that moment, its refund becomes due.
    pub async fn abort(
        &self,
        wopid: &Wopid,
        request: AbortRequest,
        now: Timestamp,
    ) -> Result<AbortOutcome, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let (wopid, request) = (*wopid, Arc::new(request));
                retry(|| {
                    let request = request.clone();
                    db.write(move |tx| sqlite::abort(tx, &wopid, &request, now))
                })
                .await
            }
            Database::Postgres(db) => retry(|| postgres::abort(db, wopid, &request, now)).await,
        }
    }

    /// Expiry: aborts up to `limit` operations pending since `pending_before` or selected
    /// without a card transaction since `selected_before`; returns them with the status they
    /// had.
    pub async fn expire(
        &self,
        pending_before: Timestamp,
        selected_before: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<(Wopid, Status)>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    db.write(move |tx| {
                        sqlite::expire(tx, pending_before, selected_before, limit, now)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::expire(db, pending_before, selected_before, limit, now)).await
            }
        }
    }

    /// When the oldest pending operation was created and the oldest selected one without a
    /// card transaction was selected (when the next expiry can happen).
    pub async fn oldest_open(&self) -> Result<(Option<Timestamp>, Option<Timestamp>), StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::oldest_open),
            Database::Postgres(db) => postgres::oldest_open(db).await,
        }
    }

    /// Claims up to `limit` operations whose attestation is due at `now`: they are not due
    /// again before `lease_until` (unless rescheduled), so several workers, also in other
    /// processes, never attest the same operation at once.
    pub async fn claim_attestations(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Claimed, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let currency = self.currency;
                retry(|| {
                    db.write(move |tx| {
                        sqlite::claim_attestations(tx, currency, now, limit, lease_until)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::claim_attestations(db, self.currency, now, limit, lease_until))
                    .await
            }
        }
    }

    /// `selected → confirmed` with the incoming-history row, atomically (the reserve is
    /// credited exactly once). `None` if the operation was no longer selected.
    pub async fn confirm(
        &self,
        withdrawal_id: i64,
        debit_account: &str,
        evidence: &str,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let (debit, evidence) = (debit_account.to_owned(), evidence.to_owned());
        match &self.db {
            Database::Sqlite(db) => {
                let texts: Arc<(String, String)> = Arc::new((debit, evidence));
                retry(|| {
                    let texts = texts.clone();
                    db.write(move |tx| sqlite::confirm(tx, withdrawal_id, &texts.0, &texts.1, now))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::confirm(db, withdrawal_id, &debit, &evidence, now)).await
            }
        }
    }

    /// Reschedules a selected operation's attestation (provider unreachable, payment not
    /// final, or the attempt failed) with its audit event.
    pub async fn reschedule_attestation(
        &self,
        withdrawal_id: i64,
        attempts: u32,
        next_at: Timestamp,
        note: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let note: Arc<str> = Arc::from(note);
                retry(|| {
                    let note = note.clone();
                    db.write(move |tx| {
                        sqlite::reschedule(tx, withdrawal_id, attempts, next_at, &note, now)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::reschedule(db, withdrawal_id, attempts, next_at, note, now))
                    .await
            }
        }
    }

    /// The audit trail of one operation, oldest first.
    pub async fn events(&self, withdrawal_id: i64) -> Result<Vec<EventRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::events(conn, withdrawal_id)),
            Database::Postgres(db) => postgres::events(db, withdrawal_id).await,
        }
    }

    /// Incoming history page: `limit > 0` ascending after `offset`, `< 0` descending before it.
    pub async fn incoming_history(
        &self,
        limit: i64,
        offset: Option<i64>,
    ) -> Result<Vec<IncomingRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::incoming_history(conn, self.currency, limit, offset))
            }
            Database::Postgres(db) => {
                postgres::incoming_history(db, self.currency, limit, offset).await
            }
        }
    }

    /// Adds an incoming row without a withdrawal (admin/add-incoming: tests and recovery),
    /// unless the reserve key is used already.
    pub async fn add_incoming(
        &self,
        reserve_pub: &EddsaPublicKey,
        amount: &Amount,
        debit_account: &PaytoUri,
        now: Timestamp,
    ) -> Result<AddIncomingOutcome, StoreError> {
        let (reserve_pub, amount, debit) = (*reserve_pub, *amount, debit_account.to_string());
        let row_id = match &self.db {
            Database::Sqlite(db) => {
                let debit: Arc<str> = Arc::from(debit);
                retry(|| {
                    let debit = debit.clone();
                    db.write(move |tx| sqlite::add_incoming(tx, &reserve_pub, &amount, &debit, now))
                })
                .await?
            }
            Database::Postgres(db) => {
                retry(|| postgres::add_incoming(db, &reserve_pub, &amount, &debit, now)).await?
            }
        };
        Ok(match row_id {
            Some(row_id) => AddIncomingOutcome::Added {
                row_id,
                created_at: now,
            },
            None => AddIncomingOutcome::ReservePubReuse,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chf() -> Currency {
        "CHF".parse().unwrap()
    }

    fn pending() -> WithdrawalRow {
        WithdrawalRow {
            withdrawal_id: 1,
            wopid: Wopid::from_bytes([1; 32]),
            terminal_id: 1,
            amount: None,
            suggested_amount: Some("CHF:5".parse().unwrap()),
            card_fees: "CHF:0.5".parse().unwrap(),
            status: Status::Pending,
            reserve_pub: None,
            exchange_account: None,
            provider_tx_id: None,
            created_at: Timestamp::from_micros(1),
            selected_at: None,
            checked_at: None,
            finished_at: None,
            attempts: 0,
            next_attempt_at: None,
            abort_reason: None,
            refund_state: RefundState::None,
            refund_id: None,
            refund_attempts: 0,
        }
    }

    fn news(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn news_round_trip_through_their_text() {
        let reserve = EddsaPublicKey::from_bytes([0xAB; 32]);
        let amount: Amount = "CHF:7.25".parse().unwrap();
        let account = "payto://x-taler-bank/h/exchange?receiver-name=Ex";
        let text = selected_message(&reserve, &amount, account);
        assert_eq!(
            StatusNews::parse(chf(), &text),
            Some(StatusNews::Selected {
                reserve_pub: reserve,
                amount,
                exchange_account: account.parse().unwrap(),
            })
        );
        assert_eq!(
            StatusNews::parse(chf(), CONFIRMED_MESSAGE),
            Some(StatusNews::Confirmed)
        );
        assert_eq!(
            StatusNews::parse(chf(), ABORTED_MESSAGE),
            Some(StatusNews::Aborted)
        );
        for bad in [
            "",
            "pending",
            "confirmed now",
            "selected",
            "selected abab 1 2 payto://x/y",
            &text.replace(" 7 ", " x "),
        ] {
            assert_eq!(StatusNews::parse(chf(), bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_row_follows_its_news_only_step_by_step() {
        let reserve = EddsaPublicKey::from_bytes([2; 32]);
        let amount: Amount = "CHF:5".parse().unwrap();
        let account = "payto://x-taler-bank/h/exchange";
        let selected = selected_message(&reserve, &amount, account);

        let row = pending().after_news(chf(), &news(&[&selected])).unwrap();
        assert_eq!(row.status, Status::Selected);
        assert_eq!(row.reserve_pub, Some(reserve));
        assert_eq!(row.amount, Some(amount));
        assert_eq!(row.exchange_account, Some(account.parse().unwrap()));
        // The rest of the row stays as read.
        assert_eq!(row.card_fees, pending().card_fees);

        let confirmed = row.after_news(chf(), &news(&["confirmed"])).unwrap();
        assert_eq!(confirmed.status, Status::Confirmed);
        assert_eq!(confirmed.reserve_pub, Some(reserve));
        // Both steps at once; old news changes nothing.
        assert_eq!(
            pending()
                .after_news(chf(), &news(&[&selected, "confirmed"]))
                .unwrap(),
            confirmed
        );
        assert_eq!(
            confirmed
                .after_news(chf(), &news(&[&selected, "confirmed"]))
                .unwrap(),
            confirmed
        );
        assert_eq!(row.after_news(chf(), &[]).unwrap(), row);
        let aborted = row.after_news(chf(), &news(&["aborted"])).unwrap();
        assert_eq!(aborted.status, Status::Aborted);

        // Not the whole story: read again.
        for (from, list) in [
            // It may have been selected on the way (that message could still come).
            (pending(), news(&["aborted"])),
            (pending(), news(&["confirmed"])),
            (pending(), news(&["confirmed", &selected])),
            (confirmed.clone(), news(&["aborted"])),
            (aborted.clone(), news(&["confirmed"])),
            (row.clone(), news(&["garbage"])),
        ] {
            assert_eq!(
                from.after_news(chf(), &list),
                None,
                "{:?} {list:?}",
                from.status
            );
        }
    }
}
