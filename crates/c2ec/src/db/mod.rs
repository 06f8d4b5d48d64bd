//! All of C2EC's SQL, for SQLite and PostgreSQL alike (`$n` placeholders work on both).
//!
//! Money is `(…_val BIGINT, …_frac INTEGER)` in the configured currency, times are BIGINT
//! microseconds, keys are BLOB/BYTEA. State changes are conditional updates
//! (`… WHERE status = 'selected'`): a caller that decided on a stale read sees "0 rows" and
//! re-reads instead of overwriting; a trigger in the migrations refuses every illegal
//! transition anyway. Every state change writes an audit event in the same transaction and
//! queues a notification that is delivered at commit. Handlers never see sqlx types.

pub mod terminal;
pub mod transfer;
pub mod withdrawal;

use cardcash_store::{Db, Migrations, StoreError, Tx};
use cardcash_util::{Amount, Currency};
use sqlx::any::AnyRow;

/// The migrations of the c2ec schema.
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/sqlite"),
    postgres: sqlx::migrate!("migrations/postgres"),
};

/// Notification topic: a withdrawal operation changed (key: the WOPID text).
pub const TOPIC_WITHDRAWAL: &str = "withdrawal";
/// Notification topic: the incoming history grew (key: empty).
pub const TOPIC_INCOMING: &str = "incoming";
/// Notification topic: the outgoing history grew (key: empty).
pub const TOPIC_OUTGOING: &str = "outgoing";
/// Notification topic: a withdrawal became due for attestation (key: empty).
pub const TOPIC_ATTEST: &str = "attest";
/// Notification topic: a transfer or refund became due (key: empty).
pub const TOPIC_REFUND: &str = "refund";

/// C2EC's storage: the database plus the currency every stored amount is in.
#[derive(Clone, Debug)]
pub struct C2ecStore {
    db: Db,
    currency: Currency,
}

impl C2ecStore {
    pub fn new(db: Db, currency: Currency) -> Self {
        Self { db, currency }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        self.db.begin_write().await
    }

    /// Reads an optional amount stored as `{prefix}_val`/`{prefix}_frac`.
    fn amount_opt(&self, row: &AnyRow, prefix: &str) -> Result<Option<Amount>, StoreError> {
        cardcash_store::columns::get_amount_opt(row, prefix, self.currency)
    }

    /// Reads an amount stored as `{prefix}_val`/`{prefix}_frac`.
    fn amount(&self, row: &AnyRow, prefix: &str) -> Result<Amount, StoreError> {
        cardcash_store::columns::get_amount(row, prefix, self.currency)
    }
}

/// `(value, fraction)` columns of an amount.
pub(crate) fn amount_cols(a: &Amount) -> (i64, i64) {
    let (v, f) = cardcash_store::columns::amount_to_columns(a);
    (v, i64::from(f))
}

pub(crate) fn amount_cols_opt(a: Option<&Amount>) -> (Option<i64>, Option<i64>) {
    match a {
        Some(a) => {
            let (v, f) = amount_cols(a);
            (Some(v), Some(f))
        }
        None => (None, None),
    }
}

/// A stored value that our own code could not have written.
pub(crate) fn corrupt(msg: impl Into<String>) -> StoreError {
    StoreError::Corrupt(format!("c2ec row: {}", msg.into()))
}

/// Current time in microseconds since the epoch (the unit of every time column).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Microseconds of a duration, saturating.
pub fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
