//! Reserve closing (the C exchange's `taler-exchange-closer` and `reserves_close`): storage of
//! the closer (`crate::worker::closer`) and of its transfer worker, both engines
//! (`sqlite/closing.rs`, `postgres/closing.rs`, migration `0004_closing.sql`).
//!
//! # Money rules held here
//! - A reserve is closed in ONE transaction that re-checks, with the reserve row locked on
//!   PostgreSQL (alone on SQLite's writer), that it is still what the closer decided on: a
//!   balance left, expired, the same number of closings before and the same most recent credit.
//!   It takes the whole balance (`amount`), keeps `min(closing fee, amount)` and records the
//!   rest to be transferred, and empties the reserve. A withdrawal racing it locks the same
//!   row: whichever comes second sees what the first left, so the reserve never goes below
//!   zero and no money is both withdrawn and sent back.
//! - The transfer back is fixed in that transaction: `request_uid` derived from the reserve and
//!   the closing's number ([`closing_request_uid`]), the WTID ([`closing_wtid`]), amount,
//!   receiver, paying account and base URL. Every attempt is then the same request, so the
//!   gateway executes it once, also after a crash between its answer and its recording.
//! - Per closing, closing fee + transferred = amount; over the reserves, credits = withdrawals
//!   + closings + balances (`crate::audit`).
//! - A reserve that cannot be closed (see [`CloseWaitRow`]) stays open with its balance; a
//!   withdrawal or a new credit works on it as on any reserve.

use cardcash_store::{Database, StoreError};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};

use super::{ExchangeStore, Outgoing, postgres, sqlite};

/// Notification topic: a closing with something to transfer was recorded (key: empty); the
/// closing transfer worker sends it.
pub const TOPIC_CLOSING: &str = "closing";

/// The Wire Gateway `request_uid` of the transfer back of the `close_number`-th closing of a
/// reserve (0 for its first): fixed by what it closes, so every attempt (after a crash, by
/// another exchange process on the same database) is the same request.
pub fn closing_request_uid(reserve_pub: &EddsaPublicKey, close_number: u32) -> HashCode {
    let mut message = b"cardcash-exchange close\0".to_vec();
    message.extend_from_slice(reserve_pub.as_bytes());
    message.extend_from_slice(&close_number.to_be_bytes());
    cardcash_crypto::sha512(&message)
}

/// The WTID of a closing's transfer back: the reserve's public key for its first closing (as
/// the C exchange does, so the transfer's subject names the reserve), derived from the
/// request for later ones (a reserve credited again after a closing and closed once more: the
/// bank keeps WTIDs unique per exchange account).
pub fn closing_wtid(
    reserve_pub: &EddsaPublicKey,
    close_number: u32,
    request_uid: &HashCode,
) -> ShortHashCode {
    if close_number == 0 {
        ShortHashCode::from_bytes(*reserve_pub.as_bytes())
    } else {
        cardcash_crypto::hash::sha512_short(request_uid.as_bytes())
    }
}

/// The execution date a closing made at `now` records and signs: protocol timestamps are whole
/// seconds (`{"t_s"}` in JSON), and the 1040 signature must cover what the wallet is shown.
pub fn closing_date(now: Timestamp) -> Timestamp {
    Timestamp::from_secs(now.as_secs())
}

/// Where a reserve's money came from: its most recent credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveOrigin {
    /// The credit's row (`reserves_in`); a closing re-checks that it is still the latest.
    pub credit_serial: i64,
    /// Who sent it: where the closing sends the money back (at C2EC a
    /// `payto://card-transaction/…` URI, refunded to the card).
    pub debit_payto: String,
    /// The exchange account that received it: its Wire Gateway is where the money is.
    pub account_section: String,
}

/// A reserve past its expiration date with a balance left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredReserveRow {
    pub reserve_pub: EddsaPublicKey,
    pub balance: Amount,
    pub expiration: Timestamp,
    /// Closings of this reserve so far (the number of the next one).
    pub close_number: u32,
    /// `None` when the reserve has no recorded credit (it cannot be closed back to anyone).
    pub origin: Option<ReserveOrigin>,
    /// Failed attempts to close it so far (0 unless it is waiting).
    pub failures: u32,
}

/// A closing to record (see [`ExchangeStore::close_reserve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClosing {
    pub reserve_pub: EddsaPublicKey,
    /// The closings before it, as read ([`ExpiredReserveRow::close_number`]).
    pub close_number: u32,
    /// The most recent credit as read ([`ReserveOrigin::credit_serial`]).
    pub origin_serial: i64,
    pub now: Timestamp,
    /// Where the money goes (the origin's payto URI, as stored).
    pub receiver_payto: String,
    /// The exchange account whose Wire Gateway sends it.
    pub account_section: String,
    /// The closing fee of the receiver's wire method (the exchange keeps at most the balance).
    pub closing_fee: Amount,
    pub exchange_base_url: String,
}

/// A recorded closing and its transfer back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingRow {
    pub serial: i64,
    pub reserve_pub: EddsaPublicKey,
    pub close_number: u32,
    /// When the reserve was closed (the timestamp of the 1040 signature; whole seconds,
    /// [`closing_date`]).
    pub execution_date: Timestamp,
    pub receiver_payto: String,
    pub account_section: String,
    pub wtid: ShortHashCode,
    pub request_uid: HashCode,
    /// The whole balance taken from the reserve.
    pub amount: Amount,
    /// What the exchange kept.
    pub closing_fee: Amount,
    /// What goes back: amount − closing fee.
    pub transferred: Amount,
    pub exchange_base_url: String,
    /// The gateway's row of the transfer, once it accepted it.
    pub gateway_row_id: Option<u64>,
    /// Transferred, or nothing to transfer.
    pub done: bool,
    pub failures: u32,
}

/// The outcome of [`ExchangeStore::close_reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed(Box<ClosingRow>),
    /// The reserve changed since it was read (withdrawn empty, credited, closed by another
    /// process): nothing was recorded.
    NotDue,
}

/// An expired reserve that could not be closed: it stays open and is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseWaitRow {
    pub reserve_pub: EddsaPublicKey,
    /// What is missing, as the closer logged it.
    pub reason: String,
    /// The first failed attempt.
    pub since: Timestamp,
    pub next_attempt: Timestamp,
    pub failures: u32,
}

/// When the closer has work next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseWake {
    /// The earliest expiration of a reserve with a balance that is not waiting, or the
    /// earliest next attempt of one that is.
    pub next: Option<Timestamp>,
    /// Reserves with a balance that wait because they could not be closed.
    pub waiting: u64,
}

/// The audit's sums over the closings (part of [`super::AuditSums`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingSums {
    /// Σ amounts taken from reserves by closings.
    pub closed: Amount,
    /// Σ closing fees kept (exchange revenue).
    pub fees: Amount,
    /// Σ transferred back (accepted by the gateway).
    pub transferred: Amount,
    /// Σ to be transferred back, not accepted yet.
    pub pending: Amount,
    /// Closings whose closing fee + transferred differ from their amount (should be none).
    pub off_balance: Vec<i64>,
}

impl ClosingSums {
    pub fn zero(currency: &cardcash_util::Currency) -> Self {
        let zero = Amount::zero(currency);
        Self {
            closed: zero,
            fees: zero,
            transferred: zero,
            pending: zero,
            off_balance: Vec::new(),
        }
    }
}

macro_rules! closing_read {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Database::Sqlite(db) => {
                let currency = $self.currency;
                db.read(move |c| sqlite::closing::$f(c, currency $(, $arg)*))
            }
            Database::Postgres(db) => postgres::closing::$f(db, $self.currency $(, $arg)*).await,
        }
    };
}

macro_rules! closing_write {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Database::Sqlite(db) => {
                let currency = $self.currency;
                db.write(move |tx| sqlite::closing::$f(tx, currency $(, $arg)*)).await
            }
            Database::Postgres(db) => postgres::closing::$f(db, $self.currency $(, $arg)*).await,
        }
    };
}

impl ExchangeStore {
    /// Reserves with a balance whose expiration date is at or before `now`, the earliest
    /// first, at most `limit`; those waiting after a failed attempt only once their next
    /// attempt is due, unless `include_waiting`.
    pub async fn expired_reserves(
        &self,
        now: Timestamp,
        include_waiting: bool,
        limit: u32,
    ) -> Result<Vec<ExpiredReserveRow>, StoreError> {
        closing_read!(self, expired_reserves(now, include_waiting, limit))
    }

    /// When the closer has work next, and how many reserves wait.
    pub async fn next_close_wake(&self) -> Result<CloseWake, StoreError> {
        closing_read!(self, next_close_wake())
    }

    /// Closes a reserve in one transaction (see the module docs): `NotDue` when it changed
    /// since it was read.
    pub async fn close_reserve(&self, closing: NewClosing) -> Result<CloseOutcome, StoreError> {
        closing_write!(self, close_reserve(closing))
    }

    /// Records that an expired reserve could not be closed (`reason`), to be tried again at
    /// `next_attempt`; counts the failure.
    pub async fn close_wait(
        &self,
        reserve_pub: EddsaPublicKey,
        reason: String,
        now: Timestamp,
        next_attempt: Timestamp,
    ) -> Result<(), StoreError> {
        closing_write!(self, close_wait(reserve_pub, reason, now, next_attempt))
    }

    /// The reserves with a balance that wait because they could not be closed.
    pub async fn close_waits(&self) -> Result<Vec<CloseWaitRow>, StoreError> {
        closing_read!(self, close_waits())
    }

    /// The closing fee of `method` in force at `at` (from the stored, master-signed fees).
    pub async fn closing_fee(
        &self,
        method: String,
        at: Timestamp,
    ) -> Result<Option<Amount>, StoreError> {
        closing_read!(self, closing_fee(method, at))
    }

    /// Closings not done whose next attempt is due at `now`, oldest first.
    pub async fn pending_closings(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClosingRow>, StoreError> {
        closing_read!(self, pending_closings(now, limit))
    }

    /// The earliest next attempt of the closings not done.
    pub async fn next_closing_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        dispatch_read!(self, next_attempt(Outgoing::Closings))
    }

    /// The gateway accepted a closing's transfer.
    pub async fn closing_done(&self, serial: i64, gateway_row_id: u64) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_done(Outgoing::Closings, serial, gateway_row_id)
        )
    }

    /// A closing's transfer failed; try again at `next_attempt`.
    pub async fn closing_failed(
        &self,
        serial: i64,
        next_attempt: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_failed(Outgoing::Closings, serial, next_attempt)
        )
    }

    /// A reserve's closings, oldest first.
    pub async fn closings(
        &self,
        reserve_pub: EddsaPublicKey,
    ) -> Result<Vec<ClosingRow>, StoreError> {
        closing_read!(self, closings(reserve_pub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_closing_names_the_reserve_later_ones_differ() {
        let reserve = EddsaPublicKey::from_bytes([7; 32]);
        let first = closing_request_uid(&reserve, 0);
        let second = closing_request_uid(&reserve, 1);
        assert_ne!(first, second);
        assert_ne!(
            first,
            closing_request_uid(&EddsaPublicKey::from_bytes([8; 32]), 0)
        );
        assert_eq!(
            closing_wtid(&reserve, 0, &first).as_bytes(),
            reserve.as_bytes()
        );
        let later = closing_wtid(&reserve, 1, &second);
        assert_ne!(later.as_bytes(), reserve.as_bytes());
        assert_eq!(later, closing_wtid(&reserve, 1, &second));
    }
}
