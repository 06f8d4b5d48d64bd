//! SQL of the Wire Gateway tables `taler_incoming` and `taler_outgoing`.
//!
//! A bank transfer is booked in the same transaction that accepts it, so every row of
//! `taler_outgoing` is a transfer in state `success`, and its transaction id serves as both the
//! transfer's and the outgoing history's row id.

use cardcash_util::{Amount, Currency, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor};

use super::{amount_col, bytes_col, col, time_col};
use crate::error::{BankError, Result};
use cardcash_api::wire_gateway::HistoryParams;

/// An incoming (reserve) transaction of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub debit_payto: String,
    pub reserve_pub: EddsaPublicKey,
}

/// An outgoing transfer of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRow {
    pub row_id: i64,
    pub date: Timestamp,
    pub amount: Amount,
    pub credit_payto: String,
    pub wtid: ShortHashCode,
    pub exchange_base_url: String,
    pub request_uid: HashCode,
}

/// Records a credit of an exchange as a reserve top-up.
pub async fn insert_incoming(
    conn: &mut AnyConnection,
    tx_id: i64,
    exchange_account_id: i64,
    reserve_pub: &EddsaPublicKey,
    debit_payto: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO taler_incoming (tx_id, exchange_account_id, reserve_pub, debit_payto) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(tx_id)
    .bind(exchange_account_id)
    .bind(reserve_pub.as_bytes().as_slice())
    .bind(debit_payto)
    .execute(conn)
    .await
    .map_err(BankError::race_on_unique)?;
    Ok(())
}

/// Whether some incoming transaction already carries `reserve_pub`.
pub async fn reserve_pub_used<'c, E>(exec: E, reserve_pub: &EddsaPublicKey) -> Result<bool>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query("SELECT tx_id FROM taler_incoming WHERE reserve_pub = $1")
        .bind(reserve_pub.as_bytes().as_slice())
        .fetch_optional(exec)
        .await?;
    Ok(row.is_some())
}

/// Records a debit of an exchange as a Wire Gateway transfer.
pub async fn insert_outgoing(
    conn: &mut AnyConnection,
    tx_id: i64,
    exchange_account_id: i64,
    request_uid: &HashCode,
    wtid: &ShortHashCode,
    exchange_base_url: &str,
    credit_payto: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO taler_outgoing (tx_id, exchange_account_id, request_uid, wtid, \
         exchange_base_url, credit_payto) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tx_id)
    .bind(exchange_account_id)
    .bind(request_uid.as_bytes().as_slice())
    .bind(wtid.as_bytes().as_slice())
    .bind(exchange_base_url)
    .bind(credit_payto)
    .execute(conn)
    .await
    .map_err(BankError::race_on_unique)?;
    Ok(())
}

macro_rules! outgoing_select {
    () => {
        "SELECT o.tx_id, t.created_at, t.amount_val, t.amount_frac, o.credit_payto, o.wtid, \
         o.exchange_base_url, o.request_uid \
         FROM taler_outgoing o JOIN transactions t ON t.tx_id = o.tx_id "
    };
}

macro_rules! incoming_select {
    () => {
        "SELECT i.tx_id, t.created_at, t.amount_val, t.amount_frac, i.debit_payto, i.reserve_pub \
         FROM taler_incoming i JOIN transactions t ON t.tx_id = i.tx_id "
    };
}

fn outgoing_from_row(row: &AnyRow, currency: &Currency) -> Result<OutgoingRow> {
    Ok(OutgoingRow {
        row_id: col(row, "tx_id")?,
        date: time_col(row, "created_at")?,
        amount: amount_col(row, "amount", currency)?,
        credit_payto: col(row, "credit_payto")?,
        wtid: ShortHashCode::from_bytes(bytes_col(row, "wtid")?),
        exchange_base_url: col(row, "exchange_base_url")?,
        request_uid: HashCode::from_bytes(bytes_col(row, "request_uid")?),
    })
}

fn incoming_from_row(row: &AnyRow, currency: &Currency) -> Result<IncomingRow> {
    Ok(IncomingRow {
        row_id: col(row, "tx_id")?,
        date: time_col(row, "created_at")?,
        amount: amount_col(row, "amount", currency)?,
        debit_payto: col(row, "debit_payto")?,
        reserve_pub: EddsaPublicKey::from_bytes(bytes_col(row, "reserve_pub")?),
    })
}

/// The exchange's earlier transfer with this request_uid, if any.
pub async fn outgoing_by_request_uid<'c, E>(
    exec: E,
    exchange_account_id: i64,
    request_uid: &HashCode,
    currency: &Currency,
) -> Result<Option<OutgoingRow>>
where
    E: Executor<'c, Database = Any>,
{
    const SQL: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.request_uid = $2"
    );
    let row = sqlx::query(SQL)
        .bind(exchange_account_id)
        .bind(request_uid.as_bytes().as_slice())
        .fetch_optional(exec)
        .await?;
    row.map(|r| outgoing_from_row(&r, currency)).transpose()
}

/// The exchange's transfer `tx_id`, if it made one with that id.
pub async fn outgoing_by_id<'c, E>(
    exec: E,
    exchange_account_id: i64,
    tx_id: i64,
    currency: &Currency,
) -> Result<Option<OutgoingRow>>
where
    E: Executor<'c, Database = Any>,
{
    const SQL: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id = $2"
    );
    let row = sqlx::query(SQL)
        .bind(exchange_account_id)
        .bind(tx_id)
        .fetch_optional(exec)
        .await?;
    row.map(|r| outgoing_from_row(&r, currency)).transpose()
}

/// Whether the exchange already used `wtid` for a transfer.
pub async fn wtid_used<'c, E>(
    exec: E,
    exchange_account_id: i64,
    wtid: &ShortHashCode,
) -> Result<bool>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query(
        "SELECT tx_id FROM taler_outgoing WHERE exchange_account_id = $1 AND wtid = $2",
    )
    .bind(exchange_account_id)
    .bind(wtid.as_bytes().as_slice())
    .fetch_optional(exec)
    .await?;
    Ok(row.is_some())
}

/// One page of the exchange's incoming history.
pub async fn incoming_history<'c, E>(
    exec: E,
    exchange_account_id: i64,
    page: &HistoryParams,
    currency: &Currency,
) -> Result<Vec<IncomingRow>>
where
    E: Executor<'c, Database = Any>,
{
    const ASC: &str = concat!(
        incoming_select!(),
        "WHERE i.exchange_account_id = $1 AND i.tx_id > $2 ORDER BY i.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        incoming_select!(),
        "WHERE i.exchange_account_id = $1 AND i.tx_id < $2 ORDER BY i.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    let rows = sqlx::query(sql)
        .bind(exchange_account_id)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(exec)
        .await?;
    rows.iter()
        .map(|r| incoming_from_row(r, currency))
        .collect()
}

/// One page of the exchange's outgoing history.
pub async fn outgoing_history<'c, E>(
    exec: E,
    exchange_account_id: i64,
    page: &HistoryParams,
    currency: &Currency,
) -> Result<Vec<OutgoingRow>>
where
    E: Executor<'c, Database = Any>,
{
    const ASC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id > $2 ORDER BY o.tx_id ASC LIMIT $3"
    );
    const DESC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = $1 AND o.tx_id < $2 ORDER BY o.tx_id DESC LIMIT $3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    let rows = sqlx::query(sql)
        .bind(exchange_account_id)
        .bind(page.start())
        .bind(page.count())
        .fetch_all(exec)
        .await?;
    rows.iter()
        .map(|r| outgoing_from_row(r, currency))
        .collect()
}
