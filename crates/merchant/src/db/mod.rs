//! All of the merchant backend's SQL behind one typed storage struct, [`MerchantStore`], over
//! `cardcash_store::Database`. Each operation is implemented once per engine, one file per
//! feature: `db/<feature>.rs` (row types and the `impl MerchantStore` block that picks the
//! engine), `db/sqlite/<feature>.rs` (sync functions: reads inline, each write ONE closure on
//! the store's writer thread, which runs alone and may read, decide and apply without locks)
//! and `db/postgres/<feature>.rs` (typed sqlx; a write that decides on what it reads runs in
//! one transaction that locks the rows it decides on first). Rows come out as domain types.
//! No transaction and no driver type leaves this module.
//!
//! # Money rules held here
//! - An order is paid at most once; its deposits are unique per coin, so a replayed payment
//!   stores nothing new.
//! - Stock is never oversold: taking stock (a lock, an order's lock, a sale) checks what is
//!   available in the same transaction that takes it (on PostgreSQL the product row is locked).
//! - Refunds of an order never exceed what was paid for it.

mod postgres;
mod sqlite;

pub mod instances;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod sessions;
pub mod settlement;
pub mod status;
pub mod webhooks;

use cardcash_store::{Database, DbConfig, Engine, Notifier, Schema, StoreError};
use cardcash_util::{Amount, Currency, Timestamp};

/// The service name: PostgreSQL schema and notification channel (`cardcash_merchant`).
pub const SERVICE: &str = "merchant";

/// The merchant's migrations for both engines.
pub static SCHEMA: Schema = cardcash_store::schema![
    1 => "0001_init.sql",
    5 => "0005_settlement.sql",
    6 => "0006_order_events.sql",
    10 => "0010_settlement_due.sql",
    11 => "0011_transfer_reports.sql",
];

/// Notification topic: an order changed (claimed, paid, refunded, session re-bound, wired).
/// Key: `<instance serial>/<order id>`.
pub const TOPIC_ORDER: &str = "order";

/// The notification key of an order.
pub fn order_key(instance_serial: i64, order_id: &str) -> String {
    format!("{instance_serial}/{order_id}")
}

/// Opens (and migrates) the merchant's database at `url` (`sqlite:…` or `postgres://…`).
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

/// The merchant's storage: every query and state change, on either engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct MerchantStore {
    db: Database,
    currency: Currency,
}

impl MerchantStore {
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
}

// ----- decoding of stored values (shared by both engines and every feature) -----

/// A stored value that our own code could not have written.
pub(crate) fn corrupt(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("merchant row: {msg}"))
}

pub(crate) fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_sql_micros(micros).map_err(|e| corrupt(format!("timestamp {micros}: {e}")))
}

pub(crate) fn time_opt(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(time).transpose()
}

pub(crate) fn micros(t: Timestamp) -> i64 {
    t.to_sql_micros()
}

pub(crate) fn amount(currency: Currency, val: i64, frac: i64) -> Result<Amount, StoreError> {
    cardcash_store::columns::amount_from_columns(currency, val, frac)
}

pub(crate) fn amount_opt(
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

/// `(value, fraction)` columns of an amount.
pub(crate) fn cols(a: &Amount) -> (i64, i32) {
    cardcash_store::columns::amount_to_columns(a)
}

pub(crate) fn cols_opt(a: Option<&Amount>) -> (Option<i64>, Option<i32>) {
    a.map(cols).unzip()
}

pub(crate) fn fixed<T>(
    what: &str,
    bytes: &[u8],
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    from(bytes).ok_or_else(|| corrupt(format!("{what} of {} bytes", bytes.len())))
}

pub(crate) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored JSON: {e}")))
}

/// A relative time stored as microseconds (`forever` as `i64::MAX`).
pub(crate) fn duration(micros: i64) -> Result<cardcash_util::RelativeTime, StoreError> {
    cardcash_util::RelativeTime::from_sql_micros(micros)
        .map_err(|e| corrupt(format!("duration {micros}: {e}")))
}

pub(crate) fn duration_micros(d: cardcash_util::RelativeTime) -> i64 {
    d.to_sql_micros()
}
