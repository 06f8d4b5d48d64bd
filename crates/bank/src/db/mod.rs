//! All of the bank's SQL, behind one typed storage struct, [`BankStore`], over
//! `cardcash_store::Database`: each operation is implemented once per engine (`sqlite.rs`: sync
//! functions run inline for reads or in ONE writer closure for writes; `postgres.rs`: typed sqlx,
//! ONE statement per operation). Rows come out as domain types ([`AccountName`], `Amount`,
//! [`Balance`], `Timestamp`, `PaytoUri`, [`Scope`], key types); refusals that are decided inside a
//! money movement ("insufficient funds", "request_uid reused", …) are values ([`Refusal`]),
//! computed inside the same transaction. No transaction and no driver type leaves this module.
//!
//! Tables (see `migrations/`): `accounts` (balance as magnitude + `has_debt`), `transactions`
//! (one row per money movement, both sides), `taler_incoming` / `taler_outgoing` (the Wire
//! Gateway view of some transactions), `tokens`. On PostgreSQL each money movement is one call of
//! a PL/pgSQL function of the migration (`bank_internal_transfer`, `bank_wire_transfer`,
//! `bank_add_incoming`, sharing `bank_move`); on SQLite the same steps run in Rust in one writer
//! closure, with the balance arithmetic of [`crate::balance`].
//!
//! # Database round trips per hot request (steady state)
//!
//! PostgreSQL: statements sent (each one network round trip). SQLite: reads run inline on the
//! request's thread (no hop, no round trip), writes cost one hop to the writer thread for the
//! whole transaction (group commit with whatever else is queued).
//!
//! | request | PostgreSQL | SQLite |
//! |---|---|---|
//! | `POST /accounts/{name}/transactions` (Core API transfer; a reserve top-up or a bounce included) | 2: credential read (password hash or token; none with the admin token) + `bank_internal_transfer` | 1 inline read (none with the admin token) + 1 writer closure |
//! | Wire Gateway `POST /transfer` | 2: the account's row (it also holds the password hash Basic login needs) + `bank_wire_transfer` (+1 token read with an account's bearer token) | 1 inline read + 1 writer closure |
//! | Wire Gateway `POST /admin/add-incoming` | 2: the account's row + `bank_add_incoming` | 1 inline read + 1 writer closure |
//! | Wire Gateway `GET /history/incoming`, `/history/outgoing`, `/transfers` | 2: the account's row + one page `SELECT` (+1 per long-poll wake-up) | 2 inline reads (+1 per wake-up) |
//! | Wire Gateway `GET /transfers/{id}` | 2: the account's row + one `SELECT` | 2 inline reads |
//! | `GET /accounts/{name}/transactions` | 3: credential read + the account's row + one page `SELECT` (+1 per wake-up) | 3 inline reads (+1 per wake-up) |
//!
//! (Measured on PostgreSQL as transactions per request in `pg_stat_database`: 2.0 for a Wire
//! Gateway transfer with Basic credentials.) A replayed or refused request costs the same: the
//! function answers without writing. Passwords are verified against the stored hash through the
//! credential verifier's cache of recent successes, so the credential read is the only database
//! cost of authentication. Notifications cost nothing extra: `pg_notify` runs inside the
//! functions; on SQLite they are in-process. Not counted: sqlx prepares each statement once per
//! pooled connection (one extra round trip the first time), and sqlx's pool pings a connection
//! taken from its idle set unless the pool is built with `test_before_acquire(false)` (the
//! store's `PgDb` keeps sqlx's default, so today each statement above also costs one ping).

mod postgres;
mod sqlite;

use std::future::Future;
use std::sync::Arc;

use cardcash_api::wire_gateway::HistoryParams;
use cardcash_store::{Database, DbConfig, Engine, Notifier, Schema, StoreError};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, HashCode, PaytoUri, ShortHashCode, Timestamp,
};

use crate::account::AccountName;
use crate::auth::Scope;
use crate::balance::Balance;
use crate::payto::BankPayto;

/// The service name: PostgreSQL schema and notification channel (`cardcash_bank`).
pub const SERVICE: &str = "bank";

/// The bank's migrations for both engines.
pub static SCHEMA: Schema = cardcash_store::schema![1 => "0001_init.sql"];

/// Notification topic: a new transaction of account `key` (its id). The PostgreSQL functions
/// send the same topic names.
pub const TOPIC_TX: &str = "tx";
/// Notification topic: a new incoming (reserve) transaction of exchange account `key`.
pub const TOPIC_INCOMING: &str = "incoming";
/// Notification topic: a new outgoing transfer of exchange account `key`.
pub const TOPIC_OUTGOING: &str = "outgoing";

/// Opens (and migrates) the bank's database at `url` (`sqlite:…` or `postgres://…`).
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

/// The database id of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(i64);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A row of `accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: AccountId,
    pub name: AccountName,
    pub legal_name: String,
    pub password_hash: Option<String>,
    pub is_exchange: bool,
    pub balance: Balance,
    pub debit_limit: Amount,
}

/// What [`BankStore::insert_account`] stores (the balance starts at zero).
#[derive(Debug, Clone)]
pub struct NewAccountRow {
    pub name: AccountName,
    pub legal_name: String,
    pub password_hash: Option<String>,
    pub is_exchange: bool,
    pub debit_limit: Amount,
    pub created_at: Timestamp,
}

/// A stored bearer token with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub account_name: AccountName,
    pub scope: Scope,
    pub expires_at: Timestamp,
}

/// An incoming (reserve) transaction of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub debit_account: PaytoUri,
    pub reserve_pub: EddsaPublicKey,
}

/// An outgoing transfer of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub credit_account: PaytoUri,
    pub wtid: ShortHashCode,
    pub exchange_base_url: BaseUrl,
    pub request_uid: HashCode,
}

/// A transaction seen from one account (Core Bank API history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTransactionRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub subject: String,
    pub debtor: PaytoUri,
    pub creditor: PaytoUri,
    /// Whether the account was the debtor (money went out).
    pub is_debit: bool,
}

/// The result of a money movement: its row and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booked {
    pub row_id: i64,
    pub timestamp: Timestamp,
    /// False when the request was a replay of an earlier one.
    pub new: bool,
}

/// Why a money movement was refused, decided inside its transaction (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account the request is about does not exist.
    UnknownAccount,
    /// The account the request is about is not an exchange account.
    NotAnExchange,
    /// The creditor is not an account of this bank.
    UnknownCreditor,
    /// The named debtor is not an account of this bank.
    UnknownDebtor,
    /// The counterparty is an exchange account where that is not allowed.
    IsAnExchange,
    SameAccount,
    /// The bank's `admin` account cannot be credited by a Core API transfer.
    AdminCreditor,
    /// The debit would exceed the debtor's debit limit.
    InsufficientFunds,
    RequestUidReused,
    WtidReused,
    ReservePubReused,
    /// A balance would leave the range of an amount.
    Overflow,
}

impl Refusal {
    /// The outcome text of the PostgreSQL functions.
    fn from_outcome(text: &str) -> Option<Self> {
        Some(match text {
            "unknown_account" => Self::UnknownAccount,
            "not_an_exchange" => Self::NotAnExchange,
            "unknown_creditor" => Self::UnknownCreditor,
            "unknown_debtor" => Self::UnknownDebtor,
            "is_an_exchange" => Self::IsAnExchange,
            "same_account" => Self::SameAccount,
            "admin_creditor" => Self::AdminCreditor,
            "insufficient_funds" => Self::InsufficientFunds,
            "request_uid_reused" => Self::RequestUidReused,
            "wtid_reused" => Self::WtidReused,
            "reserve_pub_reused" => Self::ReservePubReused,
            "overflow" => Self::Overflow,
            _ => return None,
        })
    }
}

/// What a new Core API transfer did for an exchange creditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeCredit {
    /// The creditor is not an exchange.
    None,
    /// A reserve top-up (an incoming Wire Gateway row).
    Reserve,
    /// Sent back at once (no usable, fresh reserve public key in the subject).
    Bounced,
    /// Between two exchanges: neither a reserve nor bounced.
    BetweenExchanges,
}

/// A Core API transfer, as [`BankStore::internal_transfer`] books it.
#[derive(Debug, Clone)]
pub struct NewInternalTransfer {
    pub debtor: AccountName,
    pub creditor: AccountName,
    pub amount: Amount,
    pub subject: String,
    pub request_uid: Option<ShortHashCode>,
    /// The reserve public key of the subject, or why there is none (the bounce's cause), used
    /// when the creditor is an exchange.
    pub reserve_pub: Result<EddsaPublicKey, String>,
    pub now: Timestamp,
}

/// A Wire Gateway transfer, as [`BankStore::wire_transfer`] books it.
#[derive(Debug, Clone)]
pub struct NewWireTransfer {
    pub exchange: AccountId,
    /// The local account `credit_account` names, if it names one of ours.
    pub creditor: Option<AccountName>,
    pub credit_account: PaytoUri,
    pub request_uid: HashCode,
    pub amount: Amount,
    pub exchange_base_url: BaseUrl,
    pub wtid: ShortHashCode,
    pub subject: String,
    pub now: Timestamp,
}

/// Who pays an `admin/add-incoming`.
#[derive(Debug, Clone)]
pub enum IncomingDebtor {
    /// An account of this bank.
    Local(AccountName),
    /// A sender outside this bank: the bank's `admin` account pays, the URI is recorded.
    External(PaytoUri),
}

/// A Wire Gateway `admin/add-incoming`, as [`BankStore::add_incoming`] books it.
#[derive(Debug, Clone)]
pub struct NewIncoming {
    pub exchange: AccountId,
    pub debtor: IncomingDebtor,
    pub amount: Amount,
    pub reserve_pub: EddsaPublicKey,
    pub subject: String,
    pub now: Timestamp,
}

/// How stored values become domain values (the currency of every amount, the payto URIs of
/// local accounts).
#[derive(Debug)]
struct Codec {
    currency: Currency,
    payto: BankPayto,
}

impl Codec {
    fn name(&self, text: &str) -> Result<AccountName, StoreError> {
        text.parse()
            .map_err(|_| StoreError::Corrupt(format!("stored account name {text:?}")))
    }

    fn local_payto(&self, name: &str, legal_name: &str) -> Result<PaytoUri, StoreError> {
        self.payto
            .account_uri(name, legal_name)
            .map_err(|e| StoreError::Corrupt(format!("payto of account {name:?}: {e}")))
    }

    fn payto(&self, text: &str) -> Result<PaytoUri, StoreError> {
        text.parse()
            .map_err(|e| StoreError::Corrupt(format!("stored payto {text:?}: {e}")))
    }

    fn base_url(&self, text: &str) -> Result<BaseUrl, StoreError> {
        BaseUrl::parse(text)
            .map_err(|e| StoreError::Corrupt(format!("stored base URL {text:?}: {e}")))
    }

    fn scope(&self, text: &str) -> Result<Scope, StoreError> {
        Scope::parse(text).ok_or_else(|| StoreError::Corrupt(format!("token scope {text:?}")))
    }

    fn time(&self, micros: i64) -> Result<Timestamp, StoreError> {
        Timestamp::from_sql_micros(micros)
            .map_err(|e| StoreError::Corrupt(format!("timestamp {micros}: {e}")))
    }
}

fn fixed<T>(
    what: &str,
    bytes: &[u8],
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    from(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("stored {what} has {} bytes", bytes.len())))
}

/// The bank's storage: every query and money movement, on either engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct BankStore {
    db: Database,
    codec: Arc<Codec>,
}

/// Runs a write again when it lost a race: SQLite busy (another process held the file's write
/// lock, e.g. the CLI), PostgreSQL serialization failure or deadlock, and a unique violation (on
/// PostgreSQL, a concurrent transaction on other accounts took the same reserve public key; the
/// next attempt sees its row and answers as the rules say). Each attempt is one whole
/// transaction, so a retry repeats nothing that was kept.
async fn retrying<T, F, Fut>(attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    cardcash_store::retry_if(
        |e: &StoreError| e.is_busy_or_serialization() || e.is_unique_violation(),
        attempt,
    )
    .await
}

impl BankStore {
    /// The store of `db`, whose amounts are in `currency` and whose local accounts have payto
    /// URIs under `payto`'s host.
    pub fn new(db: Database, currency: Currency, payto: BankPayto) -> Self {
        Self {
            db,
            codec: Arc::new(Codec { currency, payto }),
        }
    }

    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// The notifier of the topics above (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        self.db.notifier()
    }

    /// Graceful shutdown: no more writes, queued ones still commit.
    pub async fn close(&self) {
        self.db.close().await;
    }

    // ----- accounts -----

    /// The account called `name`, if any.
    pub async fn account(&self, name: &AccountName) -> Result<Option<AccountRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::account_by_name(conn, &self.codec, name))
            }
            Database::Postgres(db) => postgres::account_by_name(db, &self.codec, name).await,
        }
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::accounts(conn, &self.codec)),
            Database::Postgres(db) => postgres::accounts(db, &self.codec).await,
        }
    }

    /// Creates an account with a zero balance; `None` if the name is taken.
    pub async fn insert_account(
        &self,
        new: NewAccountRow,
    ) -> Result<Option<AccountRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let new = Arc::new(new);
                retrying(|| {
                    let (new, codec) = (new.clone(), self.codec.clone());
                    db.write(move |tx| sqlite::insert_account(tx, &codec, &new))
                })
                .await
            }
            Database::Postgres(db) => {
                retrying(|| postgres::insert_account(db, &self.codec, &new)).await
            }
        }
    }

    /// Replaces the password hash of `name`; false if there is no such account.
    pub async fn set_password(&self, name: &AccountName, hash: &str) -> Result<bool, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retrying(|| {
                    let (name, hash) = (name.clone(), hash.to_owned());
                    db.write(move |tx| sqlite::set_password(tx, &name, &hash))
                })
                .await
            }
            Database::Postgres(db) => retrying(|| postgres::set_password(db, name, hash)).await,
        }
    }

    // ----- tokens -----

    /// Stores a bearer token (by its hash) for `account`.
    pub async fn insert_token(
        &self,
        token_hash: &[u8],
        account: AccountId,
        scope: Scope,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retrying(|| {
                    let hash = token_hash.to_vec();
                    db.write(move |tx| {
                        sqlite::insert_token(tx, &hash, account, scope, created_at, expires_at)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retrying(|| {
                    postgres::insert_token(db, token_hash, account, scope, created_at, expires_at)
                })
                .await
            }
        }
    }

    /// The token with this hash and its owner, if any (expired ones included: the caller
    /// decides).
    pub async fn token(&self, token_hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::token(conn, &self.codec, token_hash)),
            Database::Postgres(db) => postgres::token(db, &self.codec, token_hash).await,
        }
    }

    // ----- money movements -----

    /// A Core API transfer between two accounts (by name), idempotent on the debtor's
    /// `request_uid`; a credit of an exchange becomes a reserve top-up or is bounced at once.
    /// Refusals: `UnknownAccount` (debtor), `UnknownCreditor`, `RequestUidReused`,
    /// `AdminCreditor`, `SameAccount`, `InsufficientFunds`, `Overflow`.
    pub async fn internal_transfer(
        &self,
        t: NewInternalTransfer,
    ) -> Result<Result<(Booked, ExchangeCredit), Refusal>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let t = Arc::new(t);
                retrying(|| {
                    let (t, codec) = (t.clone(), self.codec.clone());
                    db.write(move |tx| sqlite::internal_transfer(tx, &codec, &t))
                })
                .await
            }
            Database::Postgres(db) => {
                retrying(|| postgres::internal_transfer(db, &self.codec, &t)).await
            }
        }
    }

    /// A Wire Gateway transfer from an exchange account, idempotent on its `request_uid`.
    /// Refusals: `UnknownAccount`, `NotAnExchange`, `RequestUidReused`, `WtidReused`,
    /// `UnknownCreditor`, `IsAnExchange` (creditor), `InsufficientFunds`, `Overflow`.
    pub async fn wire_transfer(
        &self,
        t: NewWireTransfer,
    ) -> Result<Result<Booked, Refusal>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let t = Arc::new(t);
                retrying(|| {
                    let (t, codec) = (t.clone(), self.codec.clone());
                    db.write(move |tx| sqlite::wire_transfer(tx, &codec, &t))
                })
                .await
            }
            Database::Postgres(db) => {
                retrying(|| postgres::wire_transfer(db, &self.codec, &t)).await
            }
        }
    }

    /// A reserve top-up of an exchange account (`admin/add-incoming`). Refusals:
    /// `UnknownAccount`, `NotAnExchange`, `UnknownDebtor`, `IsAnExchange` (debtor),
    /// `ReservePubReused`, `InsufficientFunds`, `Overflow`.
    pub async fn add_incoming(
        &self,
        a: NewIncoming,
    ) -> Result<Result<Booked, Refusal>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let a = Arc::new(a);
                retrying(|| {
                    let (a, codec) = (a.clone(), self.codec.clone());
                    db.write(move |tx| sqlite::add_incoming(tx, &codec, &a))
                })
                .await
            }
            Database::Postgres(db) => {
                retrying(|| postgres::add_incoming(db, &self.codec, &a)).await
            }
        }
    }

    // ----- histories -----

    /// One page of an exchange's incoming history.
    pub async fn incoming_page(
        &self,
        exchange: AccountId,
        page: &HistoryParams,
    ) -> Result<Vec<IncomingRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::incoming_page(conn, &self.codec, exchange, page))
            }
            Database::Postgres(db) => {
                postgres::incoming_page(db, &self.codec, exchange, page).await
            }
        }
    }

    /// One page of an exchange's outgoing history (= its transfers, all successful).
    pub async fn outgoing_page(
        &self,
        exchange: AccountId,
        page: &HistoryParams,
    ) -> Result<Vec<OutgoingRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::outgoing_page(conn, &self.codec, exchange, page))
            }
            Database::Postgres(db) => {
                postgres::outgoing_page(db, &self.codec, exchange, page).await
            }
        }
    }

    /// The exchange's transfer `row_id`, if it made one with that id.
    pub async fn outgoing_transfer(
        &self,
        exchange: AccountId,
        row_id: i64,
    ) -> Result<Option<OutgoingRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::outgoing_transfer(conn, &self.codec, exchange, row_id))
            }
            Database::Postgres(db) => {
                postgres::outgoing_transfer(db, &self.codec, exchange, row_id).await
            }
        }
    }

    /// One page of the transactions `account` took part in.
    pub async fn account_history(
        &self,
        account: AccountId,
        page: &HistoryParams,
    ) -> Result<Vec<AccountTransactionRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::account_history(conn, &self.codec, account, page))
            }
            Database::Postgres(db) => {
                postgres::account_history(db, &self.codec, account, page).await
            }
        }
    }

    /// Transaction `row_id`, if `account` took part in it.
    pub async fn account_transaction(
        &self,
        account: AccountId,
        row_id: i64,
    ) -> Result<Option<AccountTransactionRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::account_transaction(conn, &self.codec, account, row_id))
            }
            Database::Postgres(db) => {
                postgres::account_transaction(db, &self.codec, account, row_id).await
            }
        }
    }
}
