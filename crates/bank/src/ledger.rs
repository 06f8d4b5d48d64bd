//! The bank's operations: accounts, money movements and their histories.
//!
//! Every money movement is one write transaction: both accounts are locked first (in id order,
//! so two opposite transfers cannot deadlock, and before the idempotency checks, so racing
//! replays queue behind the first one and see its row), both balances checked and updated (double entry: what
//! leaves one account enters the other, so the sum of all balances stays zero), the transaction
//! row and its Wire Gateway row written, and the long pollers notified at commit. Retryable
//! requests are idempotent: a replay of a `request_uid` answers with the stored row, a
//! conflicting replay is a 409 (docs.taler.net api-bank-wire "transfer"; libeufin
//! `libeufin-bank-procedures.sql` `taler_transfer`).
//!
//! Incoming transfers to an exchange account made with the Core Bank API become reserve
//! top-ups when their subject holds a fresh reserve public key; otherwise they are **bounced**
//! (sent back in the same database transaction with subject `Bounce {row}: {cause}`), as
//! libeufin does (`TransactionDAO.create`). The sender's request succeeds either way.
//!
//! Long polls subscribe to the store's notifier before reading, then wait; never a polling loop.
//! This module knows nothing of HTTP.

use std::time::Duration;

use cardcash_http::wait_for_change_until;
use cardcash_store::{Db, Tx};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, HashCode, PaytoUri, ShortHashCode, Timestamp,
};
use tokio_util::sync::CancellationToken;

use crate::account::{AccountInfo, AccountName, NewAccount};
use crate::db;
use crate::db::account::{AccountRow, InsertAccount};
use crate::db::history::AccountTransactionRow;
use crate::db::taler::{IncomingRow, OutgoingRow};
use crate::db::transaction::InsertTransaction;
use crate::error::{BankError, Result};
use crate::metrics::BankMetrics;
use crate::password::{self, Password};
use crate::payto::BankPayto;
use crate::subject;
use cardcash_api::wire_gateway::HistoryParams;

/// Notification topic: a new transaction of account `key` (its id).
pub const TOPIC_TX: &str = "tx";
/// Notification topic: a new incoming (reserve) transaction of exchange account `key`.
pub const TOPIC_INCOMING: &str = "incoming";
/// Notification topic: a new outgoing transfer of exchange account `key`.
pub const TOPIC_OUTGOING: &str = "outgoing";

/// The result of a money movement: its row and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booked {
    pub row_id: i64,
    pub timestamp: Timestamp,
    /// False when the request was a replay of an earlier one.
    pub new: bool,
}

/// A Core Bank API transfer from one account to another.
#[derive(Debug, Clone)]
pub struct InternalTransfer {
    pub creditor: PaytoUri,
    pub amount: Amount,
    pub subject: String,
    pub request_uid: Option<ShortHashCode>,
}

/// A Wire Gateway `POST transfer`.
#[derive(Debug, Clone)]
pub struct WireTransfer {
    pub request_uid: HashCode,
    pub amount: Amount,
    pub exchange_base_url: BaseUrl,
    pub wtid: ShortHashCode,
    pub credit_account: PaytoUri,
}

/// A Wire Gateway `POST admin/add-incoming`.
#[derive(Debug, Clone)]
pub struct AddIncoming {
    pub amount: Amount,
    pub reserve_pub: EddsaPublicKey,
    pub debit_account: PaytoUri,
}

/// The bank's state shared by all requests: database, currency, payto host, limits, metrics.
#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
    currency: Currency,
    payto: BankPayto,
    default_debit_limit: Amount,
    metrics: BankMetrics,
    /// Cancelled at shutdown: waiting long polls answer at once instead of holding the graceful
    /// shutdown up for their whole timeout.
    shutdown: CancellationToken,
}

/// One side of a movement, before the accounts are locked.
struct Movement<'a> {
    debtor_id: i64,
    creditor_id: i64,
    amount: &'a Amount,
    subject: &'a str,
    now: Timestamp,
    request_uid: Option<&'a [u8]>,
    bounce_of: Option<i64>,
}

impl Ledger {
    pub fn new(
        db: Db,
        currency: Currency,
        payto: BankPayto,
        default_debit_limit: Amount,
        metrics: BankMetrics,
    ) -> Self {
        Self {
            db,
            currency,
            payto,
            default_debit_limit,
            metrics,
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends waiting long polls when `token` is cancelled (the server's shutdown token).
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub fn payto(&self) -> &BankPayto {
        &self.payto
    }

    fn check_currency(&self, what: &'static str, amount: &Amount) -> Result<()> {
        if amount.currency() == &self.currency {
            Ok(())
        } else {
            Err(BankError::CurrencyMismatch {
                what,
                got: amount.currency().to_string(),
                expected: self.currency.to_string(),
            })
        }
    }

    /// The payto URI of a stored account.
    fn account_payto(&self, name: &str, legal_name: &str) -> Result<PaytoUri> {
        self.payto
            .account_uri(name, legal_name)
            .map_err(|e| BankError::Invariant(format!("payto of {name:?}: {e}")))
    }

    /// The payto URI of a stored account, as text.
    fn uri(&self, name: &str, legal_name: &str) -> Result<String> {
        self.account_payto(name, legal_name).map(|u| u.to_string())
    }

    fn info(&self, row: &AccountRow) -> Result<AccountInfo> {
        Ok(AccountInfo {
            name: row
                .name
                .parse()
                .map_err(|_| BankError::Invariant(format!("stored name {:?}", row.name)))?,
            legal_name: row.legal_name.clone(),
            payto_uri: self.uri(&row.name, &row.legal_name)?,
            balance: row.balance,
            debit_threshold: row.debit_limit,
            is_taler_exchange: row.is_exchange,
        })
    }

    // ----- accounts -----

    /// Creates an account (password hashed off the executor).
    pub async fn create_account(&self, new: NewAccount) -> Result<AccountInfo> {
        let limit = new.debit_limit.unwrap_or(self.default_debit_limit);
        self.check_currency("debit_limit", &limit)?;
        let hash = match new.password {
            Some(p) => Some(
                password::hash(p)
                    .await
                    .map_err(|e| BankError::Password(e.to_string()))?,
            ),
            None => None,
        };
        let legal_name = new
            .legal_name
            .clone()
            .unwrap_or_else(|| new.name.to_string());
        let insert = InsertAccount {
            name: new.name.as_str(),
            legal_name: &legal_name,
            password_hash: hash.as_deref(),
            is_exchange: new.is_exchange,
            debit_limit: &limit,
            created_at: Timestamp::now(),
        };
        let insert = &insert;
        self.db
            .retry_write(|tx| Box::pin(async move { db::account::insert(tx.conn(), insert).await }))
            .await?;
        self.account(&new.name).await
    }

    /// Creates the `admin` funding account if it does not exist yet (at startup).
    pub async fn ensure_admin(&self, debit_limit: Amount) -> Result<()> {
        let admin = AccountName::admin();
        if db::account::by_name(self.db.pool(), admin.as_str(), &self.currency)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let mut new = NewAccount::new(admin);
        new.legal_name = Some("Bank".to_owned());
        new.debit_limit = Some(debit_limit);
        match self.create_account(new).await {
            // Another instance created it in the meantime.
            Ok(_) | Err(BankError::NameTaken(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces an account's password.
    pub async fn set_password(&self, name: &AccountName, password: Password) -> Result<()> {
        let hash = password::hash(password)
            .await
            .map_err(|e| BankError::Password(e.to_string()))?;
        let (name_str, hash) = (name.as_str(), hash.as_str());
        let found = self
            .db
            .retry_write(|tx| {
                Box::pin(async move { db::account::set_password(tx.conn(), name_str, hash).await })
            })
            .await?;
        if found {
            Ok(())
        } else {
            Err(BankError::UnknownAccount(name.to_string()))
        }
    }

    async fn row(&self, name: &AccountName) -> Result<AccountRow> {
        db::account::by_name(self.db.pool(), name.as_str(), &self.currency)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(name.to_string()))
    }

    /// The account called `name`.
    pub async fn account(&self, name: &AccountName) -> Result<AccountInfo> {
        self.info(&self.row(name).await?)
    }

    /// The stored password hash of `name`: `Ok(None)` for an unknown account or one without a
    /// password.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        Ok(db::account::by_name(self.db.pool(), name, &self.currency)
            .await?
            .and_then(|row| row.password_hash))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountInfo>> {
        db::account::list(self.db.pool(), &self.currency)
            .await?
            .iter()
            .map(|row| self.info(row))
            .collect()
    }

    // ----- money movements -----

    /// Locks one or two accounts (in id order) for the rest of the transaction. Done before any
    /// idempotency or uniqueness check: at READ COMMITTED a concurrent replay then waits for the
    /// first request to commit and sees its row, instead of racing it (PostgreSQL; SQLite write
    /// transactions are exclusive anyway, where this is a cheap read).
    async fn lock_accounts(&self, tx: &mut Tx, a: i64, b: Option<i64>) -> Result<()> {
        let engine = tx.engine();
        let (first, second) = match b {
            Some(b) if b < a => (b, Some(a)),
            Some(b) if b == a => (a, None),
            other => (a, other),
        };
        db::account::lock(tx.conn(), engine, first, &self.currency).await?;
        if let Some(second) = second {
            db::account::lock(tx.conn(), engine, second, &self.currency).await?;
        }
        Ok(())
    }

    /// Moves `m.amount` between two distinct accounts inside `tx`; returns the new row id.
    async fn move_money(&self, tx: &mut Tx, m: &Movement<'_>) -> Result<i64> {
        if m.debtor_id == m.creditor_id {
            return Err(BankError::SameAccount);
        }
        let engine = tx.engine();
        // Lock in id order so that concurrent opposite transfers cannot deadlock.
        let (low, high) = if m.debtor_id < m.creditor_id {
            (m.debtor_id, m.creditor_id)
        } else {
            (m.creditor_id, m.debtor_id)
        };
        let low = db::account::lock(tx.conn(), engine, low, &self.currency).await?;
        let high = db::account::lock(tx.conn(), engine, high, &self.currency).await?;
        let (debtor, creditor) = if low.id == m.debtor_id {
            (low, high)
        } else {
            (high, low)
        };
        let debtor_balance = debtor.balance.debit(m.amount, &debtor.debit_limit)?;
        let creditor_balance = creditor.balance.credit(m.amount)?;
        db::account::set_balance(tx.conn(), debtor.id, &debtor_balance).await?;
        db::account::set_balance(tx.conn(), creditor.id, &creditor_balance).await?;
        let row_id = db::transaction::insert(
            tx.conn(),
            &InsertTransaction {
                debit_account_id: debtor.id,
                credit_account_id: creditor.id,
                subject: m.subject,
                amount: m.amount,
                created_at: m.now,
                request_uid: m.request_uid,
                bounce_of: m.bounce_of,
            },
        )
        .await?;
        tx.notify(TOPIC_TX, &debtor.id.to_string());
        tx.notify(TOPIC_TX, &creditor.id.to_string());
        Ok(row_id)
    }

    /// A Core Bank API transfer from `debtor` to the account named by `t.creditor`.
    pub async fn internal_transfer(
        &self,
        debtor: &AccountName,
        t: &InternalTransfer,
    ) -> Result<Booked> {
        self.check_currency("amount", &t.amount)?;
        if t.amount.is_zero() {
            return Err(BankError::BadParameter {
                name: "amount",
                reason: "the amount must not be zero".to_owned(),
            });
        }
        let creditor_name = self
            .payto
            .local_account(&t.creditor)
            .ok_or_else(|| BankError::UnknownCreditor(t.creditor.to_string()))?;
        let creditor_name = &creditor_name;
        let (booked, incoming) = self
            .db
            .retry_write(|tx| {
                Box::pin(async move {
                    self.internal_transfer_tx(tx, debtor, creditor_name, t)
                        .await
                })
            })
            .await?;
        if booked.new {
            self.metrics.transfers.inc();
            if incoming {
                self.metrics.incoming.inc();
            }
        }
        Ok(booked)
    }

    async fn internal_transfer_tx(
        &self,
        tx: &mut Tx,
        debtor: &AccountName,
        creditor: &AccountName,
        t: &InternalTransfer,
    ) -> Result<(Booked, bool)> {
        let debtor = db::account::by_name(tx.conn(), debtor.as_str(), &self.currency)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(debtor.to_string()))?;
        let creditor = db::account::by_name(tx.conn(), creditor.as_str(), &self.currency)
            .await?
            .ok_or_else(|| BankError::UnknownCreditor(t.creditor.to_string()))?;
        self.lock_accounts(tx, debtor.id, Some(creditor.id)).await?;
        let uid = t.request_uid.as_ref().map(|u| u.as_bytes().as_slice());
        if let Some(uid) = uid {
            let earlier =
                db::transaction::by_request_uid(tx.conn(), debtor.id, uid, &self.currency).await?;
            if let Some(earlier) = earlier {
                let same = earlier.credit_account_id == creditor.id
                    && earlier.amount == t.amount
                    && earlier.subject == t.subject;
                if !same {
                    return Err(BankError::RequestUidReused);
                }
                let booked = Booked {
                    row_id: earlier.id,
                    timestamp: earlier.created_at,
                    new: false,
                };
                return Ok((booked, false));
            }
        }
        if creditor.name == crate::account::ADMIN {
            return Err(BankError::AdminCreditor);
        }
        let now = Timestamp::now();
        let row_id = self
            .move_money(
                tx,
                &Movement {
                    debtor_id: debtor.id,
                    creditor_id: creditor.id,
                    amount: &t.amount,
                    subject: &t.subject,
                    now,
                    request_uid: uid,
                    bounce_of: None,
                },
            )
            .await?;
        let mut incoming = false;
        if creditor.is_exchange && debtor.is_exchange {
            // No bounce between exchanges: two exchanges could bounce each other forever.
            tracing::warn!(
                row_id,
                "exchange-to-exchange Core API transfer, not a reserve"
            );
        } else if creditor.is_exchange {
            let bounce_cause = match subject::parse_reserve_pub(&t.subject) {
                Err(e) => Some(e.to_string()),
                Ok(reserve_pub) => {
                    if db::taler::reserve_pub_used(tx.conn(), &reserve_pub).await? {
                        Some("reserve public key reuse".to_owned())
                    } else {
                        let debit_payto = self.uri(&debtor.name, &debtor.legal_name)?;
                        db::taler::insert_incoming(
                            tx.conn(),
                            row_id,
                            creditor.id,
                            &reserve_pub,
                            &debit_payto,
                        )
                        .await?;
                        tx.notify(TOPIC_INCOMING, &creditor.id.to_string());
                        incoming = true;
                        None
                    }
                }
            };
            if let Some(cause) = bounce_cause {
                tracing::info!(row_id, %cause, "bouncing a transfer to an exchange");
                let subject = format!("Bounce {row_id}: {cause}");
                self.move_money(
                    tx,
                    &Movement {
                        debtor_id: creditor.id,
                        creditor_id: debtor.id,
                        amount: &t.amount,
                        subject: &subject,
                        now,
                        request_uid: None,
                        bounce_of: Some(row_id),
                    },
                )
                .await?;
            }
        }
        let booked = Booked {
            row_id,
            timestamp: now,
            new: true,
        };
        Ok((booked, incoming))
    }

    async fn exchange_row(&self, tx: &mut Tx, exchange: &AccountName) -> Result<AccountRow> {
        let row = db::account::by_name(tx.conn(), exchange.as_str(), &self.currency)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(exchange.to_string()))?;
        if !row.is_exchange {
            return Err(BankError::NotAnExchange(exchange.to_string()))?;
        }
        Ok(row)
    }

    /// Wire Gateway `POST transfer`: the exchange pays an account of this bank.
    pub async fn wire_transfer(&self, exchange: &AccountName, t: &WireTransfer) -> Result<Booked> {
        self.check_currency("amount", &t.amount)?;
        if t.amount.is_zero() {
            return Err(BankError::BadParameter {
                name: "amount",
                reason: "the amount must not be zero".to_owned(),
            });
        }
        let booked = self
            .db
            .retry_write(|tx| Box::pin(async move { self.wire_transfer_tx(tx, exchange, t).await }))
            .await?;
        if booked.new {
            self.metrics.transfers.inc();
        }
        Ok(booked)
    }

    async fn wire_transfer_tx(
        &self,
        tx: &mut Tx,
        exchange: &AccountName,
        t: &WireTransfer,
    ) -> Result<Booked> {
        let exchange = self.exchange_row(tx, exchange).await?;
        let credit_payto = t.credit_account.to_string();
        let creditor = match self.payto.local_account(&t.credit_account) {
            Some(name) => db::account::by_name(tx.conn(), name.as_str(), &self.currency).await?,
            None => None,
        };
        self.lock_accounts(tx, exchange.id, creditor.as_ref().map(|c| c.id))
            .await?;
        let earlier = db::taler::outgoing_by_request_uid(
            tx.conn(),
            exchange.id,
            &t.request_uid,
            &self.currency,
        )
        .await?;
        if let Some(earlier) = earlier {
            let same = earlier.amount == t.amount
                && earlier.credit_payto == credit_payto
                && earlier.exchange_base_url == t.exchange_base_url.as_str()
                && earlier.wtid == t.wtid;
            if !same {
                return Err(BankError::RequestUidReused);
            }
            return Ok(Booked {
                row_id: earlier.row_id,
                timestamp: earlier.date,
                new: false,
            });
        }
        if db::taler::wtid_used(tx.conn(), exchange.id, &t.wtid).await? {
            return Err(BankError::WtidReused);
        }
        let creditor = creditor.ok_or_else(|| BankError::UnknownCreditor(credit_payto.clone()))?;
        if creditor.is_exchange {
            return Err(BankError::IsAnExchange(creditor.name));
        }
        let now = Timestamp::now();
        let subject = subject::outgoing_subject(&t.wtid, t.exchange_base_url.as_str());
        let row_id = self
            .move_money(
                tx,
                &Movement {
                    debtor_id: exchange.id,
                    creditor_id: creditor.id,
                    amount: &t.amount,
                    subject: &subject,
                    now,
                    request_uid: None,
                    bounce_of: None,
                },
            )
            .await?;
        db::taler::insert_outgoing(
            tx.conn(),
            row_id,
            exchange.id,
            &t.request_uid,
            &t.wtid,
            t.exchange_base_url.as_str(),
            &credit_payto,
        )
        .await?;
        tx.notify(TOPIC_OUTGOING, &exchange.id.to_string());
        Ok(Booked {
            row_id,
            timestamp: now,
            new: true,
        })
    }

    /// Wire Gateway `POST admin/add-incoming`: credit the exchange with a reserve top-up,
    /// debiting the named local account, or the bank's `admin` funding account when the debit
    /// account is not one of ours (an external sender, e.g. a card payment in the C2EC demo).
    pub async fn add_incoming(&self, exchange: &AccountName, a: &AddIncoming) -> Result<Booked> {
        self.check_currency("amount", &a.amount)?;
        if a.amount.is_zero() {
            return Err(BankError::BadParameter {
                name: "amount",
                reason: "the amount must not be zero".to_owned(),
            });
        }
        let booked = self
            .db
            .retry_write(|tx| Box::pin(async move { self.add_incoming_tx(tx, exchange, a).await }))
            .await?;
        self.metrics.incoming.inc();
        Ok(booked)
    }

    async fn add_incoming_tx(
        &self,
        tx: &mut Tx,
        exchange: &AccountName,
        a: &AddIncoming,
    ) -> Result<Booked> {
        let exchange = self.exchange_row(tx, exchange).await?;
        let (debtor, debit_payto) = match self.payto.local_account(&a.debit_account) {
            Some(name) => {
                let debtor = db::account::by_name(tx.conn(), name.as_str(), &self.currency)
                    .await?
                    .ok_or_else(|| BankError::UnknownDebtor(a.debit_account.to_string()))?;
                if debtor.is_exchange {
                    return Err(BankError::IsAnExchange(debtor.name));
                }
                let payto = self.uri(&debtor.name, &debtor.legal_name)?;
                (debtor, payto)
            }
            None => {
                let admin = db::account::by_name(tx.conn(), crate::account::ADMIN, &self.currency)
                    .await?
                    .ok_or_else(|| BankError::Invariant("the admin account is missing".into()))?;
                (admin, a.debit_account.to_string())
            }
        };
        self.lock_accounts(tx, debtor.id, Some(exchange.id)).await?;
        if db::taler::reserve_pub_used(tx.conn(), &a.reserve_pub).await? {
            return Err(BankError::ReservePubReused);
        }
        let now = Timestamp::now();
        let subject = subject::incoming_subject(&a.reserve_pub);
        let row_id = self
            .move_money(
                tx,
                &Movement {
                    debtor_id: debtor.id,
                    creditor_id: exchange.id,
                    amount: &a.amount,
                    subject: &subject,
                    now,
                    request_uid: None,
                    bounce_of: None,
                },
            )
            .await?;
        db::taler::insert_incoming(tx.conn(), row_id, exchange.id, &a.reserve_pub, &debit_payto)
            .await?;
        tx.notify(TOPIC_INCOMING, &exchange.id.to_string());
        Ok(Booked {
            row_id,
            timestamp: now,
            new: true,
        })
    }

    // ----- histories -----

    /// Reads a page; if it is empty and the client long-polls, waits for `topic`/`key` and reads
    /// again until something comes, the timeout passes or the bank shuts down (the shared
    /// long-poll helper; subscribed before the first read, so no row is missed).
    async fn page_with_long_poll<T, F, Fut>(
        &self,
        params: &HistoryParams,
        topic: &'static str,
        key: i64,
        mut read: F,
    ) -> Result<Vec<T>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        if !params.long_polls() {
            return read().await;
        }
        let mut sub = self.db.notifier().subscribe(topic, &key.to_string());
        wait_for_change_until(
            Some(&self.shutdown),
            params.timeout,
            &mut sub,
            read,
            |rows: &Vec<T>| !rows.is_empty(),
            |sub, timeout| Box::pin(sub.wait(timeout)),
        )
        .await
    }

    /// Wire Gateway `history/incoming` of an exchange: `(its payto, rows)`.
    pub async fn incoming_history(
        &self,
        exchange: &AccountName,
        params: &HistoryParams,
    ) -> Result<(PaytoUri, Vec<IncomingRow>)> {
        let row = self.history_exchange(exchange).await?;
        let rows = self
            .page_with_long_poll(params, TOPIC_INCOMING, row.id, || {
                db::taler::incoming_history(self.db.pool(), row.id, params, &self.currency)
            })
            .await?;
        Ok((self.account_payto(&row.name, &row.legal_name)?, rows))
    }

    /// Wire Gateway `history/outgoing` of an exchange: `(its payto, rows)`.
    pub async fn outgoing_history(
        &self,
        exchange: &AccountName,
        params: &HistoryParams,
    ) -> Result<(PaytoUri, Vec<OutgoingRow>)> {
        let row = self.history_exchange(exchange).await?;
        let rows = self
            .page_with_long_poll(params, TOPIC_OUTGOING, row.id, || {
                db::taler::outgoing_history(self.db.pool(), row.id, params, &self.currency)
            })
            .await?;
        Ok((self.account_payto(&row.name, &row.legal_name)?, rows))
    }

    async fn history_exchange(&self, exchange: &AccountName) -> Result<AccountRow> {
        let row = self.row(exchange).await?;
        if !row.is_exchange {
            return Err(BankError::NotAnExchange(exchange.to_string()));
        }
        Ok(row)
    }

    /// The Core Bank API transaction history of an account.
    pub async fn account_history(
        &self,
        name: &AccountName,
        params: &HistoryParams,
    ) -> Result<Vec<AccountTransactionRow>> {
        let row = self.row(name).await?;
        self.page_with_long_poll(params, TOPIC_TX, row.id, || {
            db::history::page(self.db.pool(), row.id, params, &self.currency)
        })
        .await
    }

    /// One transaction of an account.
    pub async fn account_transaction(
        &self,
        name: &AccountName,
        row_id: i64,
    ) -> Result<AccountTransactionRow> {
        let row = self.row(name).await?;
        db::history::get(self.db.pool(), row.id, row_id, &self.currency)
            .await?
            .ok_or(BankError::UnknownTransaction(row_id))
    }

    // ----- tokens -----

    /// Issues a bearer token `secret-token:<base32>` for `name`, valid for `duration`.
    pub async fn create_token(
        &self,
        name: &AccountName,
        scope: crate::auth::Scope,
        duration: Duration,
    ) -> Result<(String, Timestamp)> {
        let row = self.row(name).await?;
        let secret = cardcash_crypto::random_bytes::<32>()
            .map_err(|e| BankError::Startup(format!("no randomness: {e}")))?;
        let token = format!(
            "{}{}",
            crate::auth::TOKEN_PREFIX,
            cardcash_util::base32::encode(&secret)
        );
        let hash = crate::auth::token_hash(&token);
        let now = Timestamp::now();
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let expires = now.saturating_add(cardcash_util::RelativeTime::from_micros(micros));
        let (hash, scope_str) = (hash.as_slice(), scope.as_str());
        self.db
            .retry_write(|tx| {
                Box::pin(async move {
                    db::token::insert(tx.conn(), hash, row.id, scope_str, now, expires).await
                })
            })
            .await?;
        Ok((token, expires))
    }

    /// The owner and scope of a bearer token, if it exists and has not expired.
    pub async fn token_owner(&self, token: &str) -> Result<Option<(String, crate::auth::Scope)>> {
        let hash = crate::auth::token_hash(token);
        let Some(row) = db::token::find(self.db.pool(), &hash).await? else {
            return Ok(None);
        };
        if row.expires_at <= Timestamp::now() {
            return Ok(None);
        }
        let scope = crate::auth::Scope::parse(&row.scope)
            .ok_or_else(|| BankError::Invariant(format!("token scope {:?}", row.scope)))?;
        Ok(Some((row.account_name, scope)))
    }

    /// The sum of all balances in 1e-8 units; zero unless double entry was broken.
    pub async fn balance_sum(&self) -> Result<i128> {
        let accounts = db::account::list(self.db.pool(), &self.currency).await?;
        Ok(accounts.iter().map(|a| a.balance.to_signed_units()).sum())
    }
}
