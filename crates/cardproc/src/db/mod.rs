//! All SQL of the card processor: [`CardprocStore`], one typed method per unit of work, each
//! implemented once per engine (`sqlite.rs`: rusqlite closures on the store's writer thread and
//! inline reads; `postgres.rs`: one statement or one stored function per hot write). Rows come
//! out as domain types ([`TransactionRow`], [`RefundRow`], [`ApiUserRow`]); domain outcomes
//! ("processed by another request first", "over-refund", "key already used") are values of the
//! return types, decided inside the same transaction. No transaction escapes this module.
//!
//! Round trips per hot request. Authentication reads no row: the API users are cached
//! (`user_cache`: dropped on every user write here and on the `api_user` notification, which
//! crosses processes on PostgreSQL; at most 2 s old on SQLite, 60 s on PostgreSQL); a miss is
//! one read of `api_user` by primary key (inline on SQLite).
//!
//! | request | PostgreSQL | SQLite |
//! |---|---|---|
//! | create transaction | 1: `INSERT … RETURNING` | 1 writer closure |
//! | process card | 1: `cardproc_apply_decision` (conditional update, or the row as another request left it, and the `pg_notify` of a delayed approval), when the authorizer decides by the card alone (the test cards: [`crate::processing::Authorizer::decide_by_card`]); otherwise 2: a read first (the authorizer needs the amount and is asked outside any transaction) | 1 writer closure (+ 1 inline read when the authorizer needs the transaction) |
//! | read transaction (C2EC's attestation) | 1: `SELECT` | 1 inline read, no writer |
//! | void | 1: `cardproc_void` | 1 writer closure |
//! | refund | 1: `cardproc_refund` (due finality, row lock, key lookup, over-refund check, insert, booking) | 1 writer closure |
//! | read refund | 1: `SELECT … JOIN` | 1 inline read |
//! | delayed-finality sweep | 1: `WITH … UPDATE … RETURNING` that also yields the next due time | 1 writer closure |
//! | make up a payout (worker) | 1 transaction under an advisory lock (`payout.rs`) | 1 writer closure |
//! | mark a payout paid / record a failure (worker) | 1: `UPDATE` | 1 writer closure |
//!
//! The decisions stay pure in [`crate::processing`] (`transition`, `book_refund`,
//! `is_refund_replay`, `effective`): SQLite's closures call them; PostgreSQL's functions state
//! the same rules in SQL (`migrations/postgres/0001_init.sql`), and the integration tests run
//! every rule, including the races, on both engines.

mod payout;
mod postgres;
mod row;
mod sqlite;
mod user_cache;

use std::sync::Arc;

use cardcash_store::{Database, DbConfig, Notifier, Schema, StoreError};

use crate::config::Role;
use crate::processing::Transition;
use cardcash_api::cardproc::mac::MacKey;
use cardcash_api::cardproc::{IsoTime, TransactionState};
use cardcash_util::Currency;

pub use payout::{NewPayout, PayoutRow, subject as payout_subject};
pub use row::{ApiUserRow, NewRefund, NewTransaction, RefundRow, TransactionRow};
use user_cache::{Lookup, UserCache};
pub use user_cache::{POSTGRES_TTL, SQLITE_TTL, TOPIC_API_USER};

/// The service name: PostgreSQL schema `cardproc`, notification channel `cardcash_cardproc`.
pub const SERVICE: &str = "cardproc";

/// The card processor's migrations for both engines.
pub static SCHEMA: Schema = cardcash_store::schema![1 => "0001_init.sql", 2 => "0002_payout.sql"];

/// Store notification topic (key: transaction id) sent when a delayed approval is stored, so
/// the finality worker (of any process, on PostgreSQL) recomputes its next wake-up.
pub const TOPIC_FINALITY_SCHEDULED: &str = "finality_scheduled";

/// Store notification topic (key: payout id) sent when a payout is made up or paid, for
/// whoever waits for money to arrive (the world's `wait_for_payouts`, dashboards).
pub const TOPIC_PAYOUT: &str = "payout";

/// The outcome of a conditional state change of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// The change was applied; the row as it is now.
    Applied(TransactionRow),
    /// The transaction was not in the state the change requires; the row as it is now.
    Unchanged(TransactionRow),
    /// No such transaction in this space.
    NotFound,
}

/// The outcome of [`CardprocStore::refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// A new refund was booked.
    Created(RefundRow),
    /// A refund is stored under this `externalId` already (nothing was booked); the caller
    /// tells a replay from a conflicting reuse with [`RefundRow::terms`].
    Existing(RefundRow),
    /// No such transaction in this space.
    TransactionNotFound,
    /// The transaction is not `FULFILL`.
    NotRefundable(TransactionState),
    /// `refunded + amount` would exceed the captured amount.
    ExceedsCompleted,
}

/// The finality sweep's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Transactions that became `FULFILL`.
    pub finalized: u64,
    /// The earliest delayed finality still pending, if any.
    pub next_due: Option<IsoTime>,
}

/// The card processor's storage; cheap to clone.
#[derive(Debug, Clone)]
pub struct CardprocStore {
    db: Database,
    users: Arc<UserCache>,
}

impl CardprocStore {
    /// Opens (and migrates) the database at `url` (`sqlite:…` or `postgres://…`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config = DbConfig {
            url: url.to_owned(),
            service: SERVICE,
        };
        Ok(Self::new(Database::connect(&config, &SCHEMA).await?))
    }

    /// Wraps an opened database migrated with [`SCHEMA`].
    pub fn new(db: Database) -> Self {
        let users = Arc::new(UserCache::new(db.engine(), db.notifier()));
        Self { db, users }
    }

    /// The database (engine, for tests and diagnostics).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The notifier ([`TOPIC_FINALITY_SCHEDULED`]).
    pub fn notifier(&self) -> &Notifier {
        self.db.notifier()
    }

    /// Graceful shutdown.
    pub async fn close(&self) {
        self.db.close().await;
    }

    // ---- API users ----

    /// Creates or updates a user (configured users are written at every start).
    pub async fn upsert_user(
        &self,
        id: u64,
        secret: &MacKey,
        role: Role,
        space_id: u64,
        now: IsoTime,
    ) -> Result<(), StoreError> {
        let (id, space) = (sql_id(id, "user id")?, sql_id(space_id, "space id")?);
        let secret = secret.to_base64();
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::upsert_user(tx, id, &secret, role, space, now))
                    .await?;
            }
            Database::Postgres(db) => {
                postgres::upsert_user(db, id, &secret, role, space, now).await?;
            }
        }
        self.user_changed(id).await
    }

    /// Creates a user with the next free id; returns the id.
    pub async fn create_user(
        &self,
        secret: &MacKey,
        role: Role,
        space_id: u64,
        now: IsoTime,
    ) -> Result<u64, StoreError> {
        let space = sql_id(space_id, "space id")?;
        let secret = secret.to_base64();
        let id = match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::create_user(tx, &secret, role, space, now))
                    .await?
            }
            Database::Postgres(db) => postgres::create_user(db, &secret, role, space, now).await?,
        };
        self.user_changed(sql_id(id, "user id")?).await?;
        Ok(id)
    }

    /// A user as the authentication needs it: from the cache while fresh (see
    /// `user_cache`), else read (and cached when it exists).
    pub async fn cached_user(&self, id: u64) -> Result<Option<Arc<ApiUserRow>>, StoreError> {
        let Some(key) = row::id_to_sql(id) else {
            return Ok(None);
        };
        let generation = match self.users.get(key) {
            Lookup::Hit(row) => return Ok(Some(row)),
            Lookup::Miss(generation) => generation,
        };
        let Some(row) = self.user(id).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        self.users.put(key, row.clone(), generation);
        Ok(Some(row))
    }

    /// After a user write committed: forget the cached row here, and tell every other process
    /// sharing the database (PostgreSQL).
    async fn user_changed(&self, id: i64) -> Result<(), StoreError> {
        self.users.invalidate(id);
        self.db.notify_now(TOPIC_API_USER, &id.to_string()).await
    }

    /// Looks a user up by id (in the database).
    pub async fn user(&self, id: u64) -> Result<Option<ApiUserRow>, StoreError> {
        let Some(id) = row::id_to_sql(id) else {
            return Ok(None);
        };
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::user(conn, id)),
            Database::Postgres(db) => postgres::user(db, id).await,
        }
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<ApiUserRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::users),
            Database::Postgres(db) => postgres::users(db).await,
        }
    }

    /// Deletes a user; returns whether it existed.
    pub async fn delete_user(&self, id: u64) -> Result<bool, StoreError> {
        let Some(id) = row::id_to_sql(id) else {
            return Ok(false);
        };
        let deleted = match &self.db {
            Database::Sqlite(db) => db.write(move |tx| sqlite::delete_user(tx, id)).await?,
            Database::Postgres(db) => postgres::delete_user(db, id).await?,
        };
        self.user_changed(id).await?;
        Ok(deleted)
    }

    // ---- transactions ----

    /// Inserts a `PENDING` transaction.
    pub async fn create_transaction(
        &self,
        new: NewTransaction,
    ) -> Result<TransactionRow, StoreError> {
        sql_id(new.space_id, "space id")?;
        sql_id(new.created_by, "user id")?;
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::create_transaction(tx, &new))
                    .await
            }
            Database::Postgres(db) => postgres::create_transaction(db, &new).await,
        }
    }

    /// Reads a transaction of `space_id`.
    pub async fn transaction(
        &self,
        space_id: u64,
        id: u64,
    ) -> Result<Option<TransactionRow>, StoreError> {
        let (Some(space), Some(id)) = (row::id_to_sql(space_id), row::id_to_sql(id)) else {
            return Ok(None);
        };
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::transaction(conn, space, id)),
            Database::Postgres(db) => postgres::transaction(db, space, id).await,
        }
    }

    /// Applies an authorizer's decision (as [`crate::processing::transition`] computed it) if
    /// the transaction is still `PENDING`; a delayed approval notifies
    /// [`TOPIC_FINALITY_SCHEDULED`] at commit.
    pub async fn apply_decision(
        &self,
        space_id: u64,
        id: u64,
        change: Transition,
        card_masked: String,
    ) -> Result<StateChange, StoreError> {
        let (Some(space), Some(id)) = (row::id_to_sql(space_id), row::id_to_sql(id)) else {
            return Ok(StateChange::NotFound);
        };
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::apply_decision(tx, space, id, &change, &card_masked))
                    .await
            }
            Database::Postgres(db) => {
                postgres::apply_decision(db, space, id, &change, &card_masked).await
            }
        }
    }

    /// Voids a transaction that is `AUTHORIZED` and not yet due for finality at `now`.
    pub async fn void(
        &self,
        space_id: u64,
        id: u64,
        now: IsoTime,
    ) -> Result<StateChange, StoreError> {
        let (Some(space), Some(id)) = (row::id_to_sql(space_id), row::id_to_sql(id)) else {
            return Ok(StateChange::NotFound);
        };
        match &self.db {
            Database::Sqlite(db) => db.write(move |tx| sqlite::void(tx, space, id, now)).await,
            Database::Postgres(db) => postgres::void(db, space, id, now).await,
        }
    }

    /// Books a refund, all in one transaction: persists the transaction's due delayed
    /// finality (at `new.created_at`), finds a refund stored under the same key, checks
    /// `FULFILL` and `refunded + amount ≤ completed` ([`crate::processing::book_refund`]),
    /// inserts the refund and books the new refunded total. Returns the outcome and how many
    /// transactions became `FULFILL` on the way (0 or 1).
    pub async fn refund(&self, new: NewRefund) -> Result<(RefundOutcome, u64), StoreError> {
        let (Some(_), Some(_)) = (
            row::id_to_sql(new.space_id),
            row::id_to_sql(new.transaction_id),
        ) else {
            return Ok((RefundOutcome::TransactionNotFound, 0));
        };
        sql_id(new.created_by, "user id")?;
        match &self.db {
            Database::Sqlite(db) => db.write(move |tx| sqlite::refund(tx, &new)).await,
            Database::Postgres(db) => postgres::refund(db, &new).await,
        }
    }

    /// Reads a refund of `space_id`.
    pub async fn refund_by_id(
        &self,
        space_id: u64,
        id: u64,
    ) -> Result<Option<RefundRow>, StoreError> {
        let (Some(space), Some(id)) = (row::id_to_sql(space_id), row::id_to_sql(id)) else {
            return Ok(None);
        };
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::refund_by_id(conn, space, id)),
            Database::Postgres(db) => postgres::refund_by_id(db, space, id).await,
        }
    }

    /// Persists delayed finality: every `AUTHORIZED` row whose `fulfill_at` is not after `now`
    /// becomes `FULFILL`, captured at `fulfill_at` (what [`TransactionRow::view`] already
    /// shows); also returns when the next one falls due.
    pub async fn sweep_finality(&self, now: IsoTime) -> Result<Sweep, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.write(move |tx| sqlite::sweep_finality(tx, now)).await,
            Database::Postgres(db) => postgres::sweep_finality(db, now).await,
        }
    }
}

impl CardprocStore {
    // ---- payouts (db/payout.rs) ----

    /// Makes up a payout of the due unpaid captures of `new.currency` and the refunds not yet
    /// netted (see `db/payout.rs`), in one transaction; `None` when no capture is due. Also
    /// returns how many delayed approvals became `FULFILL` on the way.
    pub async fn create_payout(
        &self,
        new: NewPayout,
    ) -> Result<(Option<PayoutRow>, u64), StoreError> {
        sql_id(new.space_id, "space id")?;
        match &self.db {
            Database::Sqlite(db) => db.write(move |tx| sqlite::create_payout(tx, &new)).await,
            Database::Postgres(db) => postgres::create_payout(db, &new).await,
        }
    }

    /// The `PENDING` payouts of `space_id`, oldest first.
    pub async fn pending_payouts(&self, space_id: u64) -> Result<Vec<PayoutRow>, StoreError> {
        let space = sql_id(space_id, "space id")?;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::pending_payouts(conn, space)),
            Database::Postgres(db) => postgres::pending_payouts(db, space).await,
        }
    }

    /// The payouts of `space_id`, newest first, at most `limit`.
    pub async fn payouts(&self, space_id: u64, limit: u32) -> Result<Vec<PayoutRow>, StoreError> {
        let space = sql_id(space_id, "space id")?;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::payouts(conn, space, limit)),
            Database::Postgres(db) => postgres::payouts(db, space, limit).await,
        }
    }

    /// Records that the bank booked payout `id` (only a `PENDING` one; returns whether it was).
    pub async fn mark_payout_paid(
        &self,
        id: u64,
        bank_row_id: u64,
        now: IsoTime,
    ) -> Result<bool, StoreError> {
        let id = sql_id(id, "payout id")?;
        let row = sql_id(bank_row_id, "bank row id")?;
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::mark_payout_paid(tx, id, row, now))
                    .await
            }
            Database::Postgres(db) => {
                let marked = postgres::mark_payout_paid(db, id, row, now).await?;
                if marked {
                    db.notify_now(TOPIC_PAYOUT, &id.to_string()).await?;
                }
                Ok(marked)
            }
        }
    }

    /// Counts a failed attempt to wire payout `id` and keeps the error for operators.
    pub async fn record_payout_failure(&self, id: u64, error: &str) -> Result<(), StoreError> {
        let id = sql_id(id, "payout id")?;
        let error = error.chars().take(1000).collect::<String>();
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| sqlite::record_payout_failure(tx, id, &error))
                    .await
            }
            Database::Postgres(db) => postgres::record_payout_failure(db, id, &error).await,
        }
    }

    /// When the earliest capture of `currency` not yet covered by a payout happened (or, for a
    /// delayed approval, will happen).
    pub async fn next_unpaid_capture(
        &self,
        space_id: u64,
        currency: Currency,
    ) -> Result<Option<IsoTime>, StoreError> {
        let space = sql_id(space_id, "space id")?;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::next_unpaid_capture(conn, space, &currency))
            }
            Database::Postgres(db) => postgres::next_unpaid_capture(db, space, &currency).await,
        }
    }

    /// The ids of the transactions and of the refunds payout `id` covers (for audits and tests).
    pub async fn payout_items(&self, id: u64) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
        let id = sql_id(id, "payout id")?;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::payout_items(conn, id)),
            Database::Postgres(db) => postgres::payout_items(db, id).await,
        }
    }
}

/// An id that must fit a SQL `BIGINT` (configured or stored ids always do).
fn sql_id(id: u64, what: &str) -> Result<i64, StoreError> {
    row::id_to_sql(id).ok_or_else(|| StoreError::Internal(format!("{what} {id} exceeds 2^63")))
}
