//! Operator functions behind `cardcash bank account add NAME [--exchange] [--password P]`,
//! `cardcash bank account list` and friends. They work on the database directly (no server
//! needed), with the same rules as the HTTP API.
//!
//! ```no_run
//! # async fn demo(config: cardcash_bank::BankConfig) -> Result<(), cardcash_bank::BankError> {
//! use cardcash_bank::admin;
//! let bank = admin::open(&config).await?;
//! let name: admin::AccountName = "exchange".parse().expect("a valid account name");
//! let mut new = admin::NewAccount::new(name);
//! new.is_exchange = true;
//! new.password = Some(admin::Password::new("secret").expect("a non-empty password"));
//! let info = admin::create_account(&bank, new).await?;
//! println!("{} {}", info.name, info.payto_uri);
//! # Ok(()) }
//! ```

use std::time::Duration;

use cardcash_store::Database;

pub use crate::account::{AccountInfo, AccountName, NewAccount};
pub use crate::auth::Scope;
use crate::config::BankConfig;
use crate::error::{BankError, Result};
use crate::ledger::{Booked, InternalTransfer, Ledger};
use crate::metrics::BankMetrics;
pub use crate::password::Password;

/// Opens (and migrates) the bank's database and makes sure the `admin` account exists.
pub async fn open(config: &BankConfig) -> Result<Ledger> {
    let db = crate::db::connect(&config.database_url).await?;
    open_with_db(config, db).await
}

/// Like [`open`] on an already opened database.
pub async fn open_with_db(config: &BankConfig, db: Database) -> Result<Ledger> {
    let ledger = crate::ledger_for(config, db, BankMetrics::default())?;
    ledger.ensure_admin(config.admin_debit_limit).await?;
    Ok(ledger)
}

/// Creates an account; `admin` is reserved (409 `BANK_RESERVED_USERNAME_CONFLICT`).
pub async fn create_account(bank: &Ledger, new: NewAccount) -> Result<AccountInfo> {
    if new.name.is_admin() {
        return Err(BankError::NameReserved(new.name.to_string()));
    }
    bank.create_account(new).await
}

/// Every account, by name.
pub async fn list_accounts(bank: &Ledger) -> Result<Vec<AccountInfo>> {
    bank.accounts().await
}

/// One account.
pub async fn account(bank: &Ledger, name: &AccountName) -> Result<AccountInfo> {
    bank.account(name).await
}

/// Sets or replaces an account's password (also `admin`'s, enabling Basic admin login).
pub async fn set_password(bank: &Ledger, name: &AccountName, password: Password) -> Result<()> {
    bank.set_password(name, password).await
}

/// Issues a bearer token `secret-token:…` for an account; returns it with its expiry.
pub async fn create_token(
    bank: &Ledger,
    name: &AccountName,
    scope: Scope,
    duration: Duration,
) -> Result<(String, cardcash_util::Timestamp)> {
    bank.create_token(name, scope, duration).await
}

/// Moves `amount` from one account to another (e.g. `admin` funding a demo customer), with the
/// same rules as `POST /accounts/{from}/transactions` (limits, exchange reserve/bounce logic).
pub async fn transfer(
    bank: &Ledger,
    from: &AccountName,
    to: &AccountName,
    amount: cardcash_util::Amount,
    subject: &str,
) -> Result<Booked> {
    let creditor = bank
        .payto()
        .account_uri(to.as_str(), to.as_str())
        .map_err(|e| BankError::Invariant(e.to_string()))?;
    let transfer = InternalTransfer {
        creditor,
        amount,
        subject: subject.to_owned(),
        request_uid: None,
    };
    bank.internal_transfer(from, &transfer).await
}

/// Checks double entry: the sum of all balances must be zero. Returns the sum in 1e-8 units
/// as an error if it is not (which would be a bug).
pub async fn check_balances(bank: &Ledger) -> Result<()> {
    match bank.balance_sum().await? {
        0 => Ok(()),
        sum => Err(BankError::Invariant(format!(
            "balances sum to {sum} units instead of zero"
        ))),
    }
}
