//! The bank's storage on PostgreSQL (typed sqlx): every operation is ONE statement on the pool
//! (its own implicit transaction), money movements one call of a PL/pgSQL function of
//! `migrations/postgres/0001_init.sql`, which locks, decides, writes and notifies.

use cardcash_api::wire_gateway::HistoryParams;
use cardcash_store::columns::{amount_to_columns, pg_amount};
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{EddsaPublicKey, HashCode, ShortHashCode, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{
    AccountId, AccountRow, AccountTransactionRow, Booked, Codec, ExchangeCredit, IncomingDebtor,
    IncomingRow, NewAccountRow, NewIncoming, NewInternalTransfer, NewWireTransfer, OutgoingRow,
    Refusal, TokenRow, fixed,
};
use crate::account::{ADMIN, AccountName};
use crate::auth::Scope;
use crate::balance::Balance;

// ----- accounts -----

macro_rules! account_columns {
    () => {
        "account_id, name, legal_name, password_hash, is_exchange, balance_val, balance_frac, \
         has_debt, debit_limit_val, debit_limit_frac"
    };
}

fn account_row(codec: &Codec, row: &PgRow) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        id: AccountId(row.try_get("account_id")?),
        name: codec.name(row.try_get("name")?)?,
        legal_name: row.try_get("legal_name")?,
        password_hash: row.try_get("password_hash")?,
        is_exchange: row.try_get("is_exchange")?,
        balance: Balance::new(
            pg_amount(row, "balance", codec.currency)?,
            row.try_get("has_debt")?,
        ),
        debit_limit: pg_amount(row, "debit_limit", codec.currency)?,
    })
}

pub(super) async fn account_by_name(
    db: &PgDb,
    codec: &Codec,
    name: &AccountName,
) -> Result<Option<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE name = $1"
    );
    sqlx::query(SQL)
        .bind(name.as_str())
        .fetch_optional(db.pool())
        .await?
        .map(|row| account_row(codec, &row))
        .transpose()
}

pub(super) async fn accounts(db: &PgDb, codec: &Codec) -> Result<Vec<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts ORDER BY name"
    );
    sqlx::query(SQL)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| account_row(codec, row))
        .collect()
}

pub(super) async fn insert_account(
    db: &PgDb,
    codec: &Codec,
    new: &NewAccountRow,
) -> Result<Option<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "INSERT INTO accounts (name, legal_name, password_hash, is_exchange, debit_limit_val, \
         debit_limit_frac, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (name) DO NOTHING RETURNING ",
        account_columns!()
    );
    let (limit_val, limit_frac) = amount_to_columns(&new.debit_limit);
    sqlx::query(SQL)
        .bind(new.name.as_str())
        .bind(&new.legal_name)
        .bind(new.password_hash.as_deref())
        .bind(new.is_exchange)
        .bind(limit_val)
        .bind(limit_frac)
        .bind(new.created_at.to_sql_micros())
        .fetch_optional(db.pool())
        .await?
        .map(|row| account_row(codec, &row))
        .transpose()
}

pub(super) async fn set_password(
    db: &PgDb,
    name: &AccountName,
    hash: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE name = $2")
        .bind(hash)
        .bind(name.as_str())
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

// ----- tokens -----

pub(super) async fn insert_token(
    db: &PgDb,
    token_hash: &[u8],
    account: AccountId,
    scope: Scope,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (token_hash, account_id, scope, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(account.0)
    .bind(scope.as_str())
    .bind(created_at.to_sql_micros())
    .bind(expires_at.to_sql_micros())
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(super) async fn token(
    db: &PgDb,
    codec: &Codec,
    token_hash: &[u8],
) -> Result<Option<TokenRow>, StoreError> {
    let row = sqlx::query(
        "SELECT a.name, t.scope, t.expires_at FROM tokens t \
         JOIN accounts a ON a.account_id = t.account_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(TokenRow {
            account_name: codec.name(row.try_get("name")?)?,
            scope: codec.scope(row.try_get("scope")?)?,
            expires_at: codec.time(row.try_get("expires_at")?)?,
        })
    })
    .transpose()
}

// ----- money movements -----

/// What a movement function answered: `booked`, `replay`, or a [`Refusal`].
enum Outcome {
    Booked(Booked),
    Refused(Refusal),
}

/// Decodes `out_outcome`, `out_tx_id`, `out_created_at` of a movement function.
fn outcome(row: &PgRow, codec: &Codec) -> Result<Outcome, StoreError> {
    let text: &str = row.try_get("out_outcome")?;
    let new = match text {
        "booked" => true,
        "replay" => false,
        other => {
            return Refusal::from_outcome(other)
                .map(Outcome::Refused)
                .ok_or_else(|| StoreError::Corrupt(format!("movement outcome {other:?}")));
        }
    };
    let row_id: Option<i64> = row.try_get("out_tx_id")?;
    let created_at: Option<i64> = row.try_get("out_created_at")?;
    match (row_id, created_at) {
        (Some(row_id), Some(created_at)) => Ok(Outcome::Booked(Booked {
            row_id,
            timestamp: codec.time(created_at)?,
            new,
        })),
        _ => Err(StoreError::Corrupt(format!(
            "movement outcome {text:?} without its row"
        ))),
    }
}

fn simple(outcome: Outcome) -> Result<Booked, Refusal> {
    match outcome {
        Outcome::Booked(booked) => Ok(booked),
        Outcome::Refused(refusal) => Err(refusal),
    }
}

pub(super) async fn internal_transfer(
    db: &PgDb,
    codec: &Codec,
    t: &NewInternalTransfer,
) -> Result<Result<(Booked, ExchangeCredit), Refusal>, StoreError> {
    let (val, frac) = amount_to_columns(&t.amount);
    let (reserve_pub, reserve_error) = match &t.reserve_pub {
        Ok(key) => (Some(key.as_bytes().as_slice()), None),
        Err(cause) => (None, Some(cause.as_str())),
    };
    let row = sqlx::query(
        "SELECT out_outcome, out_tx_id, out_created_at, out_credit \
         FROM bank_internal_transfer($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(t.debtor.as_str())
    .bind(t.creditor.as_str())
    .bind(ADMIN)
    .bind(val)
    .bind(frac)
    .bind(&t.subject)
    .bind(t.request_uid.as_ref().map(|u| u.as_bytes().as_slice()))
    .bind(reserve_pub)
    .bind(reserve_error)
    .bind(t.now.to_sql_micros())
    .bind(db.channel())
    .fetch_one(db.pool())
    .await?;
    let booked = match outcome(&row, codec)? {
        Outcome::Booked(booked) => booked,
        Outcome::Refused(refusal) => return Ok(Err(refusal)),
    };
    let credit: Option<&str> = row.try_get("out_credit")?;
    let credit = match credit {
        // A replay reports no credit: it was counted when it was booked.
        None | Some("none") => ExchangeCredit::None,
        Some("reserve") => ExchangeCredit::Reserve,
        Some("bounced") => ExchangeCredit::Bounced,
        Some("between_exchanges") => ExchangeCredit::BetweenExchanges,
        Some(other) => {
            return Err(StoreError::Corrupt(format!("transfer credit {other:?}")));
        }
    };
    Ok(Ok((booked, credit)))
}

pub(super) async fn wire_transfer(
    db: &PgDb,
    codec: &Codec,
    t: &NewWireTransfer,
) -> Result<Result<Booked, Refusal>, StoreError> {
    let (val, frac) = amount_to_columns(&t.amount);
    let row = sqlx::query(
        "SELECT out_outcome, out_tx_id, out_created_at \
         FROM bank_wire_transfer($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(t.exchange.0)
    .bind(t.creditor.as_ref().map(AccountName::as_str))
    .bind(t.credit_account.to_string())
    .bind(t.request_uid.as_bytes().as_slice())
    .bind(val)
    .bind(frac)
    .bind(t.exchange_base_url.as_str())
    .bind(t.wtid.as_bytes().as_slice())
    .bind(&t.subject)
    .bind(t.now.to_sql_micros())
    .bind(db.channel())
    .fetch_one(db.pool())
    .await?;
    Ok(simple(outcome(&row, codec)?))
}

pub(super) async fn add_incoming(
    db: &PgDb,
    codec: &Codec,
    a: &NewIncoming,
) -> Result<Result<Booked, Refusal>, StoreError> {
    let (val, frac) = amount_to_columns(&a.amount);
    let (debtor, debit_payto) = match &a.debtor {
        IncomingDebtor::Local(name) => (Some(name.as_str()), None),
        IncomingDebtor::External(payto) => (None, Some(payto.to_string())),
    };
    let row = sqlx::query(
        "SELECT out_outcome, out_tx_id, out_created_at \
         FROM bank_add_incoming($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(a.exchange.0)
    .bind(debtor)
    .bind(ADMIN)
    .bind(debit_payto)
    .bind(val)
    .bind(frac)
    .bind(a.reserve_pub.as_bytes().as_slice())
    .bind(&a.subject)
    .bind(a.now.to_sql_micros())
    .bind(db.channel())
    .fetch_one(db.pool())
    .await?;
    Ok(simple(outcome(&row, codec)?))
}

// ----- histories -----

macro_rules! outgoing_select {
    () => {
        "SELECT o.tx_id, t.created_at, t.amount_val, t.amount_frac, o.credit_payto, o.wtid, \
         o.exchange_base_url, o.request_uid \
         FROM taler_outgoing o JOIN transactions t ON t.tx_id = o.tx_id "
    };
}

fn outgoing_row(codec: &Codec, row: &PgRow) -> Result<OutgoingRow, StoreError> {
    Ok(OutgoingRow {
        row_id: row.try_get("tx_id")?,
        date: codec.time(row.try_get("created_at")?)?,
        amount: pg_amount(row, "amount", codec.currency)?,
        credit_account: codec.payto(row.try_get("credit_payto")?)?,
        wtid: fixed("wtid", row.try_get("wtid")?, ShortHashCode::from_slice)?,
        exchange_base_url: codec.base_url(row.try_get("exchange_base_url")?)?,
        request_uid: fixed(
            "request_uid",
            row.try_get("request_uid")?,
            HashCode::from_slice,
        )?,
    })
}

fn incoming_row(codec: &Codec, row: &PgRow) -> Result<IncomingRow, StoreError> {
    let debit_payto: Option<&str> = row.try_get("debit_payto")?;
    let debit_account = match debit_payto {
        Some(text) => codec.payto(text)?,
        None => codec.local_payto(
            row.try_get("debtor_name")?,
            row.try_get("debtor_legal_name")?,
        )?,
    };
    Ok(IncomingRow {
        row_id: row.try_get("tx_id")?,
        date: codec.time(row.try_get("created_at")?)?,
        amount: pg_amount(row, "amount", codec.currency)?,
        debit_account,
        reserve_pub: fixed(
            "reserve_pub",
            row.try_get("reserve_pub")?,
            EddsaPublicKey::from_slice,
        )?,
    })
}

pub(super) async fn incoming_page(
    db: &PgDb,
    codec: &Codec,
    exchange: AccountId,
    page: &HistoryParams,
) -> Result<Vec<IncomingRow>, StoreError> {
    macro_rules! select {
        () => {
            "SELECT i.tx_id, t.created_at, t.amount_val, t.amount_frac, i.debit_payto, \
             i.reserve_pub, d.name AS debtor_name, d.legal_name AS debtor_legal_name \
             FROM taler_incoming i JOIN transactions t ON t.tx_id = i.tx_id \
             JOIN accounts d ON d.account_id = t.debit_account_id "
        };
    }
    const ASC: &str = concat!(
        select!(),
        "WHERE i.exchange_account_id = $1 AND i.tx_id > $2 ORDER BY i.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        select!(),
        "WHERE i.exchange_account_id = $1 AND i.tx_id < $2 ORDER BY i.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    sqlx::query(sql)
        .bind(exchange.0)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| incoming_row(codec, row))
        .collect()
}

pub(super) async fn outgoing_page(
    db: &PgDb,
    codec: &Codec,
    exchange: AccountId,
    page: &HistoryParams,
) -> Result<Vec<OutgoingRow>, StoreError> {
    const ASC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id > $2 ORDER BY o.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id < $2 ORDER BY o.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    sqlx::query(sql)
        .bind(exchange.0)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| outgoing_row(codec, row))
        .collect()
}

pub(super) async fn outgoing_transfer(
    db: &PgDb,
    codec: &Codec,
    exchange: AccountId,
    row_id: i64,
) -> Result<Option<OutgoingRow>, StoreError> {
    const SQL: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id = $2"
    );
    sqlx::query(SQL)
        .bind(exchange.0)
        .bind(row_id)
        .fetch_optional(db.pool())
        .await?
        .map(|row| outgoing_row(codec, &row))
        .transpose()
}

macro_rules! history_select {
    () => {
        "SELECT t.tx_id, t.created_at, t.amount_val, t.amount_frac, t.subject, \
         d.name AS debtor_name, d.legal_name AS debtor_legal_name, \
         c.name AS creditor_name, c.legal_name AS creditor_legal_name, t.debit_account_id \
         FROM transactions t \
         JOIN accounts d ON d.account_id = t.debit_account_id \
         JOIN accounts c ON c.account_id = t.credit_account_id "
    };
}

fn history_row(
    codec: &Codec,
    account: AccountId,
    row: &PgRow,
) -> Result<AccountTransactionRow, StoreError> {
    let debit_account_id: i64 = row.try_get("debit_account_id")?;
    Ok(AccountTransactionRow {
        row_id: row.try_get("tx_id")?,
        date: codec.time(row.try_get("created_at")?)?,
        amount: pg_amount(row, "amount", codec.currency)?,
        subject: row.try_get("subject")?,
        debtor: codec.local_payto(
            row.try_get("debtor_name")?,
            row.try_get("debtor_legal_name")?,
        )?,
        creditor: codec.local_payto(
            row.try_get("creditor_name")?,
            row.try_get("creditor_legal_name")?,
        )?,
        is_debit: debit_account_id == account.0,
    })
}

pub(super) async fn account_history(
    db: &PgDb,
    codec: &Codec,
    account: AccountId,
    page: &HistoryParams,
) -> Result<Vec<AccountTransactionRow>, StoreError> {
    const ASC: &str = concat!(
        history_select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id > $2 \
         ORDER BY t.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        history_select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id < $2 \
         ORDER BY t.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    sqlx::query(sql)
        .bind(account.0)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| history_row(codec, account, row))
        .collect()
}

pub(super) async fn account_transaction(
    db: &PgDb,
    codec: &Codec,
    account: AccountId,
    row_id: i64,
) -> Result<Option<AccountTransactionRow>, StoreError> {
    const SQL: &str = concat!(
        history_select!(),
        "WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1) AND t.tx_id = $2"
    );
    sqlx::query(SQL)
        .bind(account.0)
        .bind(row_id)
        .fetch_optional(db.pool())
        .await?
        .map(|row| history_row(codec, account, &row))
        .transpose()
}
