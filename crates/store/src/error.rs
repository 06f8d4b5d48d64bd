//! The store's one error type, and helpers that classify database errors the same way on SQLite
//! and PostgreSQL (unique violations, busy/serialization failures, constraint names).
//!
//! Services wrap `StoreError` in their own error enum; they never match on driver error codes
//! themselves. The constraint-name helper follows realworld-axum-sqlx's `ResultExt::on_constraint`.

use std::borrow::Cow;

use cardcash_util::ErrorCode;
use sqlx::error::{DatabaseError, ErrorKind};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An error of PostgreSQL or its driver (sqlx), passed through unchanged.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The configuration cannot work (unknown URL scheme, invalid service name, a migration
    /// that fails or was edited after it was applied, …).
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// A stored value does not decode into its protocol type (the schema's invariants are
    /// broken: a bug or a hand-edited database).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// An error of the embedded SQLite engine (rusqlite).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store is shutting down and takes no more writes.
    #[error("the database is closed")]
    Closed,
    /// A bug in a storage closure (e.g. it panicked); logged, never echoed.
    #[error("storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    /// The Taler error code for a response when a service passes this error on (it is always
    /// an internal error: logged once, never echoed). Services that know which step failed
    /// (store vs. commit) may pick a more precise `GENERIC_DB_*` code themselves.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Config(_) => ErrorCode::GenericDbSetupFailed,
            StoreError::Corrupt(_) | StoreError::Internal(_) => {
                ErrorCode::GenericDbInvariantFailure
            }
            StoreError::Closed => ErrorCode::GenericDbStartFailed,
            _ if self.is_busy_or_serialization() => ErrorCode::GenericDbSoftFailure,
            // A constraint the service did not map to a client error is a broken invariant.
            _ if self.as_database_error().is_some_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::UniqueViolation
                        | ErrorKind::ForeignKeyViolation
                        | ErrorKind::NotNullViolation
                        | ErrorKind::CheckViolation
                )
            }) =>
            {
                ErrorCode::GenericDbInvariantFailure
            }
            StoreError::Sqlx(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_),
            ) => ErrorCode::GenericDbStartFailed,
            StoreError::Sqlx(_) => ErrorCode::GenericDbFetchFailed,
            StoreError::Sqlite(e) if sqlite_constraint_violation(e) => {
                ErrorCode::GenericDbInvariantFailure
            }
            StoreError::Sqlite(_) => ErrorCode::GenericDbFetchFailed,
        }
    }

    /// A copy of this error for every caller of a failed group transaction: SQLite failures
    /// keep their result code (so busy stays retryable), others keep their text.
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            StoreError::Closed => StoreError::Closed,
            StoreError::Config(m) => StoreError::Config(m.clone()),
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            other => StoreError::Internal(other.to_string()),
        }
    }

    /// The HTTP status belonging to [`StoreError::code`] (500).
    pub fn status(&self) -> u16 {
        self.code().http_status()
    }

    /// The PostgreSQL error inside, if this is one.
    pub fn as_database_error(&self) -> Option<&(dyn DatabaseError + 'static)> {
        match self {
            StoreError::Sqlx(sqlx::Error::Database(e)) => Some(&**e),
            _ => None,
        }
    }

    /// A UNIQUE or PRIMARY KEY constraint was violated (on either engine).
    pub fn is_unique_violation(&self) -> bool {
        if let Some((code, _)) = self.sqlite_failure() {
            return matches!(
                i64::from(code.extended_code),
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            );
        }
        self.as_database_error()
            .is_some_and(|e| matches!(e.kind(), ErrorKind::UniqueViolation))
    }

    /// A FOREIGN KEY constraint was violated (on either engine).
    pub fn is_foreign_key_violation(&self) -> bool {
        if let Some((code, _)) = self.sqlite_failure() {
            return i64::from(code.extended_code) == SQLITE_CONSTRAINT_FOREIGNKEY;
        }
        self.as_database_error()
            .is_some_and(|e| matches!(e.kind(), ErrorKind::ForeignKeyViolation))
    }

    /// The transaction lost a race and may simply be run again: SQLite BUSY/LOCKED (another
    /// process held the write lock beyond `busy_timeout`; rusqlite's primary code covers
    /// BUSY_SNAPSHOT, LOCKED_SHAREDCACHE, …), PostgreSQL `40001` serialization_failure or
    /// `40P01` deadlock_detected.
    pub fn is_busy_or_serialization(&self) -> bool {
        if let Some((code, _)) = self.sqlite_failure() {
            return matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            );
        }
        self.as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "40001" || code == "40P01")
    }

    /// The name of the violated constraint, in PostgreSQL's naming on both engines.
    ///
    /// PostgreSQL reports the constraint name itself. SQLite only reports the columns
    /// (`UNIQUE constraint failed: withdrawal.wopid`), so that is mapped to the name PostgreSQL
    /// gives such a constraint by default: `<table>_<col>[_<col>…]_key` for UNIQUE,
    /// `<table>_pkey` for a primary key. CHECK constraints are reported by their name when the
    /// schema names them (`CONSTRAINT x CHECK (…)` in both migrations). So a service writes its
    /// PostgreSQL migration with default constraint names and matches on those names only.
    pub fn constraint(&self) -> Option<Cow<'_, str>> {
        if let Some((code, message)) = self.sqlite_failure() {
            return sqlite_constraint_name(i64::from(code.extended_code), message?);
        }
        self.as_database_error()?.constraint().map(Cow::Borrowed)
    }

    fn sqlite_failure(&self) -> Option<(&rusqlite::ffi::Error, Option<&str>)> {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                Some((code, message.as_deref()))
            }
            _ => None,
        }
    }

    /// Whether this error is a violation of the constraint `name` (see [`StoreError::constraint`]).
    pub fn is_constraint(&self, name: &str) -> bool {
        self.constraint().is_some_and(|c| c == name)
    }
}

fn sqlite_constraint_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation)
}

// SQLite extended result codes for constraint failures.
const SQLITE_CONSTRAINT_CHECK: i64 = 275;
const SQLITE_CONSTRAINT_PRIMARYKEY: i64 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i64 = 2067;
const SQLITE_CONSTRAINT_FOREIGNKEY: i64 = 787;

fn sqlite_constraint_name(code: i64, message: &str) -> Option<Cow<'_, str>> {
    let (_, detail) = message.split_once("constraint failed: ")?;
    match code {
        SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
            // "t.a, t.b" → table t, columns a, b.
            let mut table = None;
            let mut columns = Vec::new();
            for part in detail.split(", ") {
                let (t, c) = part.split_once('.')?;
                table.get_or_insert(t);
                columns.push(c);
            }
            let table = table?;
            if code == SQLITE_CONSTRAINT_PRIMARYKEY {
                Some(Cow::Owned(format!("{table}_pkey")))
            } else {
                Some(Cow::Owned(format!("{table}_{}_key", columns.join("_"))))
            }
        }
        SQLITE_CONSTRAINT_CHECK => Some(Cow::Borrowed(detail)),
        _ => None,
    }
}

/// Turn specific database errors into a service's own errors, in the spirit of
/// realworld-axum-sqlx's `ResultExt::on_constraint`.
pub trait ResultExt<T> {
    /// Map a violation of constraint `name` (see [`StoreError::constraint`]) to `f(err)`;
    /// every other error becomes `E::from(StoreError)`.
    fn on_constraint<E: From<StoreError>>(
        self,
        name: &str,
        f: impl FnOnce(StoreError) -> E,
    ) -> Result<T, E>;

    /// Map any UNIQUE/PRIMARY KEY violation to `f(err)`.
    fn on_unique_violation<E: From<StoreError>>(
        self,
        f: impl FnOnce(StoreError) -> E,
    ) -> Result<T, E>;
}

impl<T, S: Into<StoreError>> ResultExt<T> for Result<T, S> {
    fn on_constraint<E: From<StoreError>>(
        self,
        name: &str,
        f: impl FnOnce(StoreError) -> E,
    ) -> Result<T, E> {
        self.map_err(|e| {
            let e = e.into();
            if e.is_constraint(name) {
                f(e)
            } else {
                E::from(e)
            }
        })
    }

    fn on_unique_violation<E: From<StoreError>>(
        self,
        f: impl FnOnce(StoreError) -> E,
    ) -> Result<T, E> {
        self.map_err(|e| {
            let e = e.into();
            if e.is_unique_violation() {
                f(e)
            } else {
                E::from(e)
            }
        })
    }
}

/// Errors that [`retry`] and `PgDb::retry_write` know how to classify. Implement it for a
/// service error enum by delegating to the wrapped [`StoreError`].
pub trait Retryable: From<StoreError> {
    /// Whether running the whole transaction again may succeed.
    fn is_retryable(&self) -> bool;
}

/// Attempts of [`retry_if`] (the first included).
const MAX_ATTEMPTS: u32 = 10;

/// Runs a whole unit of work `f` (one transaction, one statement or one stored-function call)
/// again while it fails with an error `lost_race` accepts — a lost race, never a rule: SQLite
/// busy (another process held the file's write lock, e.g. the CLI), PostgreSQL serialization
/// failure or deadlock, or a unique violation that a concurrent insert caused and a fresh
/// attempt will see as a row. Bounded, with a short growing pause and jitter.
pub async fn retry_if<T, E, F, Fut>(lost_race: impl Fn(&E) -> bool, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(error) if attempt < MAX_ATTEMPTS && lost_race(&error) => {
                tracing::debug!(attempt, "storage work lost a race; retrying");
                tokio::time::sleep(crate::postgres::retry_pause(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// [`retry_if`] with [`Retryable::is_retryable`] (busy, serialization failure, deadlock).
pub async fn retry<T, E, F, Fut>(f: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    retry_if(E::is_retryable, f).await
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        self.is_busy_or_serialization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unique_maps_to_pg_default_name() {
        assert_eq!(
            sqlite_constraint_name(
                SQLITE_CONSTRAINT_UNIQUE,
                "UNIQUE constraint failed: withdrawal.wopid"
            )
            .as_deref(),
            Some("withdrawal_wopid_key")
        );
        assert_eq!(
            sqlite_constraint_name(
                SQLITE_CONSTRAINT_UNIQUE,
                "UNIQUE constraint failed: t.a, t.b"
            )
            .as_deref(),
            Some("t_a_b_key")
        );
        assert_eq!(
            sqlite_constraint_name(
                SQLITE_CONSTRAINT_PRIMARYKEY,
                "UNIQUE constraint failed: account.id"
            )
            .as_deref(),
            Some("account_pkey")
        );
        assert_eq!(
            sqlite_constraint_name(
                SQLITE_CONSTRAINT_CHECK,
                "CHECK constraint failed: balance_nonneg"
            )
            .as_deref(),
            Some("balance_nonneg")
        );
        assert_eq!(
            sqlite_constraint_name(787, "FOREIGN KEY constraint failed"),
            None
        );
    }
}
