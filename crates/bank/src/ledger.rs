//! The bank's operations: accounts, money movements and their histories.
//!
//! Every money movement is one call of the storage ([`BankStore`]), which books it as one
//! database transaction (one PL/pgSQL function call on PostgreSQL, one writer closure on
//! SQLite): both accounts are locked first (in id order, so two opposite transfers cannot
//! deadlock, and before the idempotency checks, so racing replays queue behind the first one
//! and see its row), both balances checked and updated (double entry: what leaves one account
//! enters the other, so the sum of all balances stays zero), the transaction row and its Wire
//! Gateway row written, and the long pollers notified at commit. Retryable requests are
//! idempotent: a replay of a `request_uid` answers with the stored row, a conflicting replay is
//! a 409 (docs.taler.net api-bank-wire "transfer"; libeufin `libeufin-bank-procedures.sql`
//! `taler_transfer`). This module checks what needs no database (currency, zero amounts,
//! whose payto URI it is, the subject's reserve key), then turns the storage's refusals into
//! [`BankError`]s.
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
use cardcash_store::{Database, Subscription};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, HashCode, PaytoUri, ShortHashCode, Timestamp,
};
use tokio_util::sync::CancellationToken;

use crate::account::{AccountInfo, AccountName, NewAccount};
use crate::db::{
    AccountId, AccountRow, AccountTransactionRow, BankStore, ExchangeCredit, IncomingDebtor,
    IncomingRow, NewAccountRow, NewIncoming, NewInternalTransfer, NewWireTransfer, OutgoingRow,
    Refusal,
};
use crate::error::{BankError, Result};
use crate::metrics::BankMetrics;
use crate::password::{self, Password};
use crate::payto::BankPayto;
use crate::subject;
use cardcash_api::wire_gateway::HistoryParams;

pub use crate::db::{Booked, TOPIC_INCOMING, TOPIC_OUTGOING, TOPIC_TX};

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

/// An exchange account whose Wire Gateway a request uses (resolved by [`Ledger::exchange`]).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub id: AccountId,
    pub name: AccountName,
    pub payto: PaytoUri,
}

/// The bank's state shared by all requests: storage, currency, payto host, limits, metrics.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: BankStore,
    currency: Currency,
    payto: BankPayto,
    default_debit_limit: Amount,
    metrics: BankMetrics,
    /// Cancelled at shutdown: waiting long polls answer at once instead of holding the graceful
    /// shutdown up for their whole timeout.
    shutdown: CancellationToken,
}

impl Ledger {
    pub fn new(
        db: Database,
        currency: Currency,
        payto: BankPayto,
        default_debit_limit: Amount,
        metrics: BankMetrics,
    ) -> Self {
        Self {
            store: BankStore::new(db, currency, payto.clone()),
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

    /// The storage.
    pub fn store(&self) -> &BankStore {
        &self.store
    }

    /// Closes the database (queued writes still commit).
    pub async fn close(&self) {
        self.store.close().await;
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub fn payto(&self) -> &BankPayto {
        &self.payto
    }

    fn check_amount(&self, amount: &Amount) -> Result<()> {
        if amount.currency() != &self.currency {
            return Err(BankError::CurrencyMismatch {
                what: "amount",
                got: amount.currency().to_string(),
                expected: self.currency.to_string(),
            });
        }
        if amount.is_zero() {
            return Err(BankError::BadParameter {
                name: "amount",
                reason: "the amount must not be zero".to_owned(),
            });
        }
        Ok(())
    }

    /// The payto URI of a stored account.
    fn account_payto(&self, name: &str, legal_name: &str) -> Result<PaytoUri> {
        self.payto
            .account_uri(name, legal_name)
            .map_err(|e| BankError::Invariant(format!("payto of {name:?}: {e}")))
    }

    fn info(&self, row: AccountRow) -> Result<AccountInfo> {
        Ok(AccountInfo {
            payto_uri: self
                .account_payto(row.name.as_str(), &row.legal_name)?
                .to_string(),
            name: row.name,
            legal_name: row.legal_name,
            balance: row.balance,
            debit_threshold: row.debit_limit,
            is_taler_exchange: row.is_exchange,
        })
    }

    // ----- accounts -----

    /// Creates an account (password hashed off the executor).
    pub async fn create_account(&self, new: NewAccount) -> Result<AccountInfo> {
        let limit = new.debit_limit.unwrap_or(self.default_debit_limit);
        if limit.currency() != &self.currency {
            return Err(BankError::CurrencyMismatch {
                what: "debit_limit",
                got: limit.currency().to_string(),
                expected: self.currency.to_string(),
            });
        }
        let password_hash = match new.password {
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
        let row = self
            .store
            .insert_account(NewAccountRow {
                name: new.name.clone(),
                legal_name,
                password_hash,
                is_exchange: new.is_exchange,
                debit_limit: limit,
                created_at: Timestamp::now(),
            })
            .await?
            .ok_or_else(|| BankError::NameTaken(new.name.to_string()))?;
        self.info(row)
    }

    /// Creates the `admin` funding account if it does not exist yet (at startup).
    pub async fn ensure_admin(&self, debit_limit: Amount) -> Result<()> {
        // Read first: a running bank's CLI neighbours then take no write lock.
        if self.account_row(&AccountName::admin()).await?.is_some() {
            return Ok(());
        }
        let mut new = NewAccount::new(AccountName::admin());
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
        if self.store.set_password(name, &hash).await? {
            Ok(())
        } else {
            Err(BankError::UnknownAccount(name.to_string()))
        }
    }

    /// The stored row of `name`, if the account exists.
    pub async fn account_row(&self, name: &AccountName) -> Result<Option<AccountRow>> {
        Ok(self.store.account(name).await?)
    }

    async fn row(&self, name: &AccountName) -> Result<AccountRow> {
        self.account_row(name)
            .await?
            .ok_or_else(|| BankError::UnknownAccount(name.to_string()))
    }

    /// The account called `name`.
    pub async fn account(&self, name: &AccountName) -> Result<AccountInfo> {
        self.info(self.row(name).await?)
    }

    /// The stored password hash of `name`: `Ok(None)` for an unknown account or one without a
    /// password.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        let Ok(name) = name.parse::<AccountName>() else {
            return Ok(None);
        };
        Ok(self
            .account_row(&name)
            .await?
            .and_then(|row| row.password_hash))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountInfo>> {
        self.store
            .accounts()
            .await?
            .into_iter()
            .map(|row| self.info(row))
            .collect()
    }

    /// The exchange account `name` from its stored row (`None`: no such account): 404 if
    /// unknown, 409 if not an exchange.
    pub fn exchange(&self, name: AccountName, row: Option<AccountRow>) -> Result<Exchange> {
        let row = row.ok_or_else(|| BankError::UnknownAccount(name.to_string()))?;
        if !row.is_exchange {
            return Err(BankError::NotAnExchange(name.to_string()));
        }
        Ok(Exchange {
            id: row.id,
            payto: self.account_payto(row.name.as_str(), &row.legal_name)?,
            name,
        })
    }

    // ----- money movements -----

    /// A Core Bank API transfer from `debtor` to the account named by `t.creditor`.
    pub async fn internal_transfer(
        &self,
        debtor: &AccountName,
        t: &InternalTransfer,
    ) -> Result<Booked> {
        self.check_amount(&t.amount)?;
        let creditor = self
            .payto
            .local_account(&t.creditor)
            .ok_or_else(|| BankError::UnknownCreditor(t.creditor.to_string()))?;
        let outcome = self
            .store
            .internal_transfer(NewInternalTransfer {
                debtor: debtor.clone(),
                creditor,
                amount: t.amount,
                subject: t.subject.clone(),
                request_uid: t.request_uid,
                reserve_pub: subject::parse_reserve_pub(&t.subject).map_err(|e| e.to_string()),
                now: Timestamp::now(),
            })
            .await?;
        let (booked, credit) = outcome.map_err(|refusal| match refusal {
            Refusal::UnknownAccount => BankError::UnknownAccount(debtor.to_string()),
            Refusal::UnknownCreditor => BankError::UnknownCreditor(t.creditor.to_string()),
            other => self.refused(other),
        })?;
        if booked.new {
            self.metrics.transfers.inc();
            match credit {
                ExchangeCredit::None => {}
                ExchangeCredit::Reserve => {
                    self.metrics.incoming.inc();
                }
                ExchangeCredit::Bounced => {
                    tracing::info!(row_id = booked.row_id, "bounced a transfer to an exchange");
                }
                ExchangeCredit::BetweenExchanges => {
                    // Money between exchange-flagged accounts (a card processor's payout to
                    // the exchange's account in a world): kept, not a reserve, not bounced.
                    tracing::info!(
                        row_id = booked.row_id,
                        "exchange-to-exchange Core API transfer, not a reserve"
                    );
                }
            }
        }
        Ok(booked)
    }

    /// Wire Gateway `POST transfer`: the exchange pays an account of this bank.
    pub async fn wire_transfer(&self, exchange: &Exchange, t: &WireTransfer) -> Result<Booked> {
        self.check_amount(&t.amount)?;
        let creditor = self.payto.local_account(&t.credit_account);
        let outcome = self
            .store
            .wire_transfer(NewWireTransfer {
                exchange: exchange.id,
                creditor: creditor.clone(),
                credit_account: t.credit_account.clone(),
                request_uid: t.request_uid,
                amount: t.amount,
                exchange_base_url: t.exchange_base_url.clone(),
                wtid: t.wtid,
                subject: subject::outgoing_subject(&t.wtid, t.exchange_base_url.as_str()),
                now: Timestamp::now(),
            })
            .await?;
        let booked = outcome.map_err(|refusal| match refusal {
            Refusal::UnknownAccount => BankError::UnknownAccount(exchange.name.to_string()),
            Refusal::NotAnExchange => BankError::NotAnExchange(exchange.name.to_string()),
            Refusal::UnknownCreditor => BankError::UnknownCreditor(t.credit_account.to_string()),
            Refusal::IsAnExchange => BankError::IsAnExchange(
                creditor
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            other => self.refused(other),
        })?;
        if booked.new {
            self.metrics.transfers.inc();
        }
        Ok(booked)
    }

    /// Wire Gateway `POST admin/add-incoming`: credit the exchange with a reserve top-up,
    /// debiting the named local account, or the bank's `admin` funding account when the debit
    /// account is not one of ours (an external sender, e.g. a card payment in the C2EC demo).
    pub async fn add_incoming(&self, exchange: &Exchange, a: &AddIncoming) -> Result<Booked> {
        self.check_amount(&a.amount)?;
        let debtor = match self.payto.local_account(&a.debit_account) {
            Some(name) => IncomingDebtor::Local(name),
            None => IncomingDebtor::External(a.debit_account.clone()),
        };
        let outcome = self
            .store
            .add_incoming(NewIncoming {
                exchange: exchange.id,
                debtor: debtor.clone(),
                amount: a.amount,
                reserve_pub: a.reserve_pub,
                subject: subject::incoming_subject(&a.reserve_pub),
                now: Timestamp::now(),
            })
            .await?;
        let booked = outcome.map_err(|refusal| match refusal {
            Refusal::UnknownAccount => BankError::UnknownAccount(exchange.name.to_string()),
            Refusal::NotAnExchange => BankError::NotAnExchange(exchange.name.to_string()),
            Refusal::UnknownDebtor => BankError::UnknownDebtor(a.debit_account.to_string()),
            Refusal::IsAnExchange => BankError::IsAnExchange(match &debtor {
                IncomingDebtor::Local(name) => name.to_string(),
                IncomingDebtor::External(payto) => payto.to_string(),
            }),
            other => self.refused(other),
        })?;
        self.metrics.incoming.inc();
        Ok(booked)
    }

    /// The error of a refusal whose message needs no name.
    fn refused(&self, refusal: Refusal) -> BankError {
        match refusal {
            Refusal::SameAccount => BankError::SameAccount,
            Refusal::AdminCreditor => BankError::AdminCreditor,
            Refusal::InsufficientFunds => BankError::InsufficientFunds,
            Refusal::RequestUidReused => BankError::RequestUidReused,
            Refusal::WtidReused => BankError::WtidReused,
            Refusal::ReservePubReused => BankError::ReservePubReused,
            Refusal::Overflow => {
                BankError::Arithmetic("a balance would exceed the largest amount".to_owned())
            }
            Refusal::UnknownAccount
            | Refusal::NotAnExchange
            | Refusal::UnknownCreditor
            | Refusal::UnknownDebtor
            | Refusal::IsAnExchange => {
                BankError::Invariant(format!("unexpected refusal {refusal:?}"))
            }
        }
    }

    // ----- histories -----

    /// Subscribes to `topic` of account `id` (before reading what the wait is about).
    pub fn subscribe(&self, topic: &'static str, id: AccountId) -> Subscription {
        self.store.notifier().subscribe(topic, &id.to_string())
    }

    /// One page of an exchange's incoming history (the shared Wire Gateway router long polls).
    pub async fn incoming_page(
        &self,
        exchange: &Exchange,
        params: &HistoryParams,
    ) -> Result<Vec<IncomingRow>> {
        Ok(self.store.incoming_page(exchange.id, params).await?)
    }

    /// One page of an exchange's outgoing history (= its transfers, all successful).
    pub async fn outgoing_page(
        &self,
        exchange: &Exchange,
        params: &HistoryParams,
    ) -> Result<Vec<OutgoingRow>> {
        Ok(self.store.outgoing_page(exchange.id, params).await?)
    }

    /// The exchange's transfer `row_id`, if it made one with that id.
    pub async fn outgoing_transfer(
        &self,
        exchange: &Exchange,
        row_id: i64,
    ) -> Result<Option<OutgoingRow>> {
        Ok(self.store.outgoing_transfer(exchange.id, row_id).await?)
    }

    /// The Core Bank API transaction history of an account: a page; if it is empty and the
    /// client long-polls, waits for the account's next transaction and reads again until
    /// something comes, the timeout passes or the bank shuts down (the shared long-poll helper;
    /// subscribed before the first read, so no row is missed).
    pub async fn account_history(
        &self,
        name: &AccountName,
        params: &HistoryParams,
    ) -> Result<Vec<AccountTransactionRow>> {
        let id = self.row(name).await?.id;
        let read = || async { Ok(self.store.account_history(id, params).await?) };
        if !params.long_polls() {
            return read().await;
        }
        let mut sub = self.subscribe(TOPIC_TX, id);
        wait_for_change_until(
            Some(&self.shutdown),
            params.timeout,
            &mut sub,
            read,
            |rows: &Vec<AccountTransactionRow>| !rows.is_empty(),
            |sub, timeout| Box::pin(sub.wait(timeout)),
        )
        .await
    }

    /// One transaction of an account.
    pub async fn account_transaction(
        &self,
        name: &AccountName,
        row_id: i64,
    ) -> Result<AccountTransactionRow> {
        let id = self.row(name).await?.id;
        self.store
            .account_transaction(id, row_id)
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
        self.store
            .insert_token(&hash, row.id, scope, now, expires)
            .await?;
        Ok((token, expires))
    }

    /// The owner and scope of a bearer token, if it exists and has not expired.
    pub async fn token_owner(&self, token: &str) -> Result<Option<(String, crate::auth::Scope)>> {
        let hash = crate::auth::token_hash(token);
        let Some(row) = self.store.token(&hash).await? else {
            return Ok(None);
        };
        if row.expires_at <= Timestamp::now() {
            return Ok(None);
        }
        Ok(Some((row.account_name.to_string(), row.scope)))
    }

    /// The sum of all balances in 1e-8 units; zero unless double entry was broken.
    pub async fn balance_sum(&self) -> Result<i128> {
        let accounts = self.store.accounts().await?;
        Ok(accounts.iter().map(|a| a.balance.to_signed_units()).sum())
    }
}
