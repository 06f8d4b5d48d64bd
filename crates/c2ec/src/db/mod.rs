//! All of C2EC's SQL, behind one typed storage struct, [`C2ecStore`], over
//! `cardcash_store::Database`: each operation is implemented once per engine (`sqlite.rs`:
//! sync functions run inline for reads or in ONE writer closure for writes; `postgres.rs`:
//! typed sqlx, ONE statement per operation, each state change a call of a PL/pgSQL function of
//! `migrations/postgres/0001_init.sql` or one CTE). Rows come out as domain types (`Amount`,
//! `Timestamp`, [`Status`], [`RefundState`], [`TransferStatus`], `PaytoUri`, `BaseUrl`, key
//! types). No transaction and no driver type leaves this module.
//!
//! Decisions stay pure: the rules of [`crate::state`] decide registration, check and abort.
//! On SQLite the writer closure reads the row, calls the rule and applies its decision. On
//! PostgreSQL the function locks the row, applies the same rule (mirrored in PL/pgSQL) and
//! returns the row as it was before; the Rust side runs the rule on that pre-image and refuses
//! to go on if the two disagree ([`StoreError::Internal`]), so a drift between the two
//! implementations cannot pass silently. The hot state changes do not notify inside their
//! transaction: they return their notifications, which this process delivers to its own
//! waiters at once and sends to the other processes after the commit, many in one statement
//! (`PgDb::send_notifications`): PostgreSQL serialises notifying transactions through one lock
//! held across their WAL flush, which would cap throughput at one fsync per state change (the
//! migration explains it). A trigger refuses every illegal status transition on both engines;
//! every state change writes its audit event in the same transaction (on PostgreSQL: in the
//! same statement) and notifies once it committed.
//!
//! # Database round trips per withdrawal
//!
//! Terminal setup → terminal long poll → wallet registration → terminal check → attestation →
//! confirmed → the terminal's final long poll (what `cardcash c2ec bench` plays), per request:
//!
//! | request | PostgreSQL | SQLite |
//! |---|---|---|
//! | terminal authentication (every terminal request) | 0 (the active terminal row is cached; 1 read per terminal per 60 s, and after each `terminal` notification) | 0 (1 inline read per terminal per 2 s, and after each `terminal` notification) |
//! | `POST /terminal/withdrawals` (setup) | 1: `c2ec_setup` | 1 writer closure |
//! | `GET /terminal/withdrawals/$WOPID?old_state=pending` (long poll) | 1 `SELECT`; the registration's wake-up is answered from its notification (the new status, reserve, amount and account travel in the message, see [`withdrawal::StatusNews`]) | 1 inline read |
//! | `POST /taler-integration/withdrawal-operation/$WOPID` (registration) | 1: `c2ec_register` | 1 writer closure |
//! | `POST /terminal/withdrawals/$WOPID/check` | 1: `c2ec_check` | 1 writer closure |
//! | attestation: claim due operations | 1 per batch (one CTE for up to 256 operations, with the next due time) | 1 writer closure per batch |
//! | attestation: confirm | 1: `c2ec_confirm` | 1 writer closure |
//! | `GET /terminal/withdrawals/$WOPID?old_state=selected` (final long poll) | 1 `SELECT`; the confirmation's wake-up is answered from its notification (a check changes no status and notifies only the worker) | 1 inline read |
//! | **one withdrawal** | **6 + a share of one claim** | **6 + a share of one claim** (5 of them writer closures, group-committed) |
//!
//! A woken long poll reads the row again when the notifications do not tell the whole story
//! (a notification without a message, a step it cannot follow such as `pending → aborted`),
//! after its timeout and after the PostgreSQL listener reconnected (messages may have been
//! lost). A replayed or refused request costs the same (the function answers without writing).
//! A provider that is not final yet costs one more round trip per retry (`reschedule`: one
//! CTE). Notifications cost no round trip of the request: in-process waiters are woken
//! directly; for other processes one background statement sends whatever notifications are
//! queued (with nothing else going on, one per state change; under load one per batch: 1.5
//! per withdrawal at 32 withdrawals at a time). On SQLite notifications are in-process. Not
//! counted: sqlx prepares each statement once per connection (one extra round trip the first
//! time).
//!
//! With the card payment at the card processor (its own table in `cardproc`'s `db/mod.rs`:
//! create, process card, C2EC's attestation read; authentication cached), a withdrawal costs
//! 10 PostgreSQL statements in both services together: `tests/api/real.rs` counts them
//! through sqlx's statement events (`a_withdrawal_costs_ten_statements_on_postgres`: setup,
//! the poll's read, registration, the transaction insert, card processing, check, the claim,
//! the attestation read, confirmation, the final poll's read); on SQLite
//! `tests/api/storage.rs` asserts the five writer closures.

mod postgres;
mod sqlite;
pub mod terminal;
pub mod transfer;
pub mod withdrawal;

use cardcash_store::{Database, DbConfig, Engine, Notifier, Schema, StoreError};
use cardcash_util::{Amount, BaseUrl, Currency, PaytoUri, Timestamp, Wopid};

pub use transfer::TransferStatus;
pub use withdrawal::RefundState;

use crate::state::Status;

/// The service name: PostgreSQL schema and notification channel (`cardcash_c2ec`).
pub const SERVICE: &str = "c2ec";

/// C2EC's migrations for both engines.
pub static SCHEMA: Schema = cardcash_store::schema![1 => "0001_init.sql"];

/// Opens (and migrates) C2EC's database at `url` (`sqlite:…` or `postgres://…`).
pub async fn connect(url: &str) -> Result<Database, StoreError> {
    Database::connect(
        &DbConfig {
            url: url.to_owned(),
            service: SERVICE,
        },
        &SCHEMA,
    )
    .await
}

/// Notification topic: a withdrawal operation changed status (key: [`withdrawal_key`]).
pub const TOPIC_WITHDRAWAL: &str = "withdrawal";
/// Notification topic: the incoming history grew (key: empty).
pub const TOPIC_INCOMING: &str = "incoming";
/// Notification topic: the outgoing history grew (key: empty).
pub const TOPIC_OUTGOING: &str = "outgoing";
/// Notification topic: a withdrawal became due for attestation (key: empty).
pub const TOPIC_ATTEST: &str = "attest";
/// Notification topic: a transfer or refund became due (key: empty).
pub const TOPIC_REFUND: &str = "refund";
/// Notification topic: a terminal was deactivated (key: its id).
pub const TOPIC_TERMINAL: &str = "terminal";

/// The notification key of an operation: its WOPID in lower-case hex (what PostgreSQL's
/// `encode(wopid, 'hex')` gives, so the stored functions can notify it).
pub fn withdrawal_key(wopid: &Wopid) -> String {
    hex(wopid.as_bytes())
}

/// Lower-case hex (PostgreSQL's `encode(…, 'hex')`).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _infallible = write!(text, "{b:02x}");
    }
    text
}

/// The bytes of [`hex`] text (either case).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The current time to the microsecond (the unit of every time column; `Timestamp::now` rounds
/// down to whole seconds, as the protocol transmits times).
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1));
    Timestamp::from_micros(micros)
}

/// C2EC's storage: every query and state change, on either engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct C2ecStore {
    db: Database,
    currency: Currency,
}

impl C2ecStore {
    /// The store of `db`, whose amounts are all in `currency`.
    pub fn new(db: Database, currency: Currency) -> Self {
        Self { db, currency }
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// The database (operator functions, tests).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The notifier of the topics above (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        self.db.notifier()
    }

    /// Graceful shutdown: no more writes, queued ones still commit.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Whether the database answers (health check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::ping),
            Database::Postgres(db) => postgres::ping(db).await,
        }
    }
}

// ----- decoding of stored values (shared by both engines) -----

/// A stored value that our own code could not have written.
fn corrupt(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("c2ec row: {msg}"))
}

fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_sql_micros(micros).map_err(|e| corrupt(format!("timestamp {micros}: {e}")))
}

fn time_opt(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(time).transpose()
}

fn amount(currency: Currency, val: i64, frac: i64) -> Result<Amount, StoreError> {
    cardcash_store::columns::amount_from_columns(currency, val, frac)
}

fn amount_opt(
    currency: Currency,
    val: Option<i64>,
    frac: Option<i64>,
) -> Result<Option<Amount>, StoreError> {
    match (val, frac) {
        (Some(v), Some(f)) => amount(currency, v, f).map(Some),
        (None, None) => Ok(None),
        _ => Err(corrupt("one of the amount columns is NULL")),
    }
}

fn status(text: &str) -> Result<Status, StoreError> {
    text.parse().map_err(corrupt)
}

fn wopid(bytes: &[u8]) -> Result<Wopid, StoreError> {
    Wopid::from_slice(bytes).ok_or_else(|| corrupt(format!("wopid of {} bytes", bytes.len())))
}

fn fixed<T>(
    what: &str,
    bytes: &[u8],
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    from(bytes).ok_or_else(|| corrupt(format!("{what} of {} bytes", bytes.len())))
}

fn payto(text: &str) -> Result<PaytoUri, StoreError> {
    text.parse()
        .map_err(|e| corrupt(format!("payto URI {text:?}: {e}")))
}

fn base_url(text: &str) -> Result<BaseUrl, StoreError> {
    BaseUrl::parse(text).map_err(|e| corrupt(format!("base URL {text:?}: {e}")))
}

fn count(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| corrupt(format!("counter {n}")))
}

/// `(value, fraction)` columns of an amount.
fn cols(a: &Amount) -> (i64, i32) {
    cardcash_store::columns::amount_to_columns(a)
}

fn cols_opt(a: Option<&Amount>) -> (Option<i64>, Option<i32>) {
    a.map(cols).unzip()
}

/// The amount of `units` (1e-8) in `currency`.
fn units(currency: Currency, units: u128) -> Result<Amount, StoreError> {
    Amount::from_units(&currency, units).map_err(|e| corrupt(format!("sum of amounts: {e}")))
}

/// A decision of the rules that the PostgreSQL function did not follow (or the other way round).
fn disagreement(what: &str, function: &str, rule: impl std::fmt::Debug) -> StoreError {
    StoreError::Internal(format!(
        "{what}: the stored function answered {function:?}, the rules decided {rule:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_keys_are_lower_case_hex() {
        let w = Wopid::from_bytes([0xAB; 32]);
        assert_eq!(withdrawal_key(&w), "ab".repeat(32));
        let w = Wopid::from_bytes(std::array::from_fn(|i| i as u8));
        assert!(withdrawal_key(&w).starts_with("000102030405"));
    }
}
