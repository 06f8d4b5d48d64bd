//! Orders on PostgreSQL (semantics: `db/orders.rs`).

use cardcash_store::columns::pg_amount;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, HashCode};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::super::orders::{CreateOrder, DeleteOrder, NewOrder, OrderFilter, OrderRow};
use super::super::{TOPIC_ORDER, cols, corrupt, micros, order_key, time};
use super::{bytes_opt, flag};

/// The columns of [`order_row`] (a macro: sqlx takes only literal SQL); the status reads
/// further ones besides.
macro_rules! order_columns {
    () => {
        "order_serial, order_id, claim_token, created_at, pay_deadline, refund_deadline, \
         summary, amount_val, amount_frac, fulfillment_url, contract_terms, h_contract_terms, \
         paid, session_id, refund_val, refund_frac, wired"
    };
}
pub(super) use order_columns;

/// The listing's filters; `$2` cursor, `$3`..`$8` filters, `$9` limit.
macro_rules! order_filters {
    () => {
        " AND ($3::INTEGER IS NULL OR paid = $3) \
         AND ($4::INTEGER IS NULL OR ((refund_val > 0 OR refund_frac > 0) = ($4 = 1))) \
         AND ($5::INTEGER IS NULL OR wired = $5) \
         AND ($7::TEXT IS NULL OR session_id = $7) \
         AND ($8::TEXT IS NULL OR fulfillment_url = $8)"
    };
}

/// `(order_id, claim_token, h_post_data)` of an earlier order with the same id or key.
type Earlier = (String, Option<[u8; 16]>, Vec<u8>);

fn token(row: &PgRow) -> Result<Option<[u8; 16]>, StoreError> {
    bytes_opt(row, "claim_token", |b| <[u8; 16]>::try_from(b).ok())
}

pub(super) fn order_row(row: &PgRow, currency: Currency) -> Result<OrderRow, StoreError> {
    Ok(OrderRow {
        serial: row.try_get("order_serial")?,
        order_id: row.try_get("order_id")?,
        claim_token: token(row)?,
        created_at: time(row.try_get("created_at")?)?,
        pay_deadline: time(row.try_get("pay_deadline")?)?,
        refund_deadline: time(row.try_get("refund_deadline")?)?,
        summary: row.try_get("summary")?,
        amount: pg_amount(row, "amount", currency)?,
        fulfillment_url: row.try_get("fulfillment_url")?,
        contract_terms: row.try_get("contract_terms")?,
        h_contract_terms: bytes_opt(row, "h_contract_terms", HashCode::from_slice)?,
        paid: flag(row, "paid")?,
        session_id: row.try_get("session_id")?,
        refund: pg_amount(row, "refund", currency)?,
        wired: flag(row, "wired")?,
    })
}

async fn earlier(conn: &mut PgConnection, new: &NewOrder) -> Result<Option<Earlier>, StoreError> {
    let by_id = sqlx::query(
        "SELECT order_id, claim_token, h_post_data FROM orders \
         WHERE instance_serial = $1 AND order_id = $2",
    )
    .bind(new.instance_serial)
    .bind(&new.order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let row = match (by_id, &new.idempotency_key) {
        (Some(row), _) => Some(row),
        (None, Some(key)) => {
            sqlx::query(
                "SELECT order_id, claim_token, h_post_data FROM orders \
                 WHERE instance_serial = $1 AND idempotency_key = $2",
            )
            .bind(new.instance_serial)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
        }
        (None, None) => None,
    };
    row.map(|r| {
        Ok((
            r.try_get("order_id")?,
            token(&r)?,
            r.try_get("h_post_data")?,
        ))
    })
    .transpose()
}

pub(crate) async fn create_order(db: &PgDb, new: &NewOrder) -> Result<CreateOrder, StoreError> {
    let mut tx = db.begin().await?;
    if let Some((order_id, claim_token, h_post)) = earlier(tx.conn(), new).await? {
        tx.rollback().await?;
        return Ok(
            if h_post.as_slice() == new.h_post_data.as_bytes().as_slice() {
                CreateOrder::Replay {
                    order_id,
                    claim_token,
                }
            } else {
                CreateOrder::Conflict { order_id }
            },
        );
    }
    if let Some(short) =
        super::inventory::check_order_stock(tx.conn(), &new.locks, &new.lock_uuids, new.created_at)
            .await?
    {
        tx.rollback().await?;
        return Ok(CreateOrder::OutOfStock(short));
    }
    let (amount_val, amount_frac) = cols(&new.amount);
    let order_serial: i64 = sqlx::query_scalar(
        "INSERT INTO orders (instance_serial, order_id, claim_token, h_post_data, \
         idempotency_key, created_at, pay_deadline, refund_deadline, wire_transfer_deadline, \
         summary, amount_val, amount_frac, fulfillment_url, account_serial, contract_terms, \
         session_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         RETURNING order_serial",
    )
    .bind(new.instance_serial)
    .bind(&new.order_id)
    .bind(new.claim_token.as_ref().map(|t| t.as_slice()))
    .bind(new.h_post_data.as_bytes().as_slice())
    .bind(&new.idempotency_key)
    .bind(micros(new.created_at))
    .bind(micros(new.pay_deadline))
    .bind(micros(new.refund_deadline))
    .bind(micros(new.wire_transfer_deadline))
    .bind(&new.summary)
    .bind(amount_val)
    .bind(amount_frac)
    .bind(&new.fulfillment_url)
    .bind(new.account_serial)
    .bind(&new.contract_terms)
    .bind(&new.session_id)
    .fetch_one(tx.conn())
    .await?;
    super::inventory::take_order_locks(tx.conn(), order_serial, &new.locks, &new.lock_uuids)
        .await?;
    tx.notify(TOPIC_ORDER, &order_key(new.instance_serial, &new.order_id));
    tx.commit().await?;
    Ok(CreateOrder::Created { order_serial })
}

pub(crate) async fn order(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<OrderRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE instance_serial = $1 AND order_id = $2"
    ))
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(db.pool())
    .await?
    .map(|r| order_row(&r, currency))
    .transpose()
}

pub(crate) async fn orders(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    f: &OrderFilter,
) -> Result<Vec<OrderRow>, StoreError> {
    let query = if f.limit >= 0 {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE instance_serial = $1 AND order_serial > $2",
            order_filters!(),
            " AND ($6::BIGINT IS NULL OR created_at >= $6) ORDER BY order_serial ASC LIMIT $9"
        ))
    } else {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE instance_serial = $1 AND order_serial < $2",
            order_filters!(),
            " AND ($6::BIGINT IS NULL OR created_at <= $6) ORDER BY order_serial DESC LIMIT $9"
        ))
    };
    let offset = f.offset.unwrap_or(if f.limit >= 0 { 0 } else { i64::MAX });
    query
        .bind(instance_serial)
        .bind(offset)
        .bind(f.paid.as_flag())
        .bind(f.refunded.as_flag())
        .bind(f.wired.as_flag())
        .bind(f.date.map(micros))
        .bind(&f.session_id)
        .bind(&f.fulfillment_url)
        .bind(f.limit.abs())
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| order_row(r, currency))
        .collect()
}

pub(crate) async fn delete_order(
    db: &PgDb,
    instance_serial: i64,
    order_id: &str,
    force: bool,
) -> Result<DeleteOrder, StoreError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT order_serial, paid, (nonce IS NOT NULL)::INTEGER AS claimed, \
         (EXISTS (SELECT 1 FROM deposits d WHERE d.order_serial = orders.order_serial))::INTEGER \
         AS deposited FROM orders WHERE instance_serial = $1 AND order_id = $2 FOR UPDATE",
    )
    .bind(instance_serial)
    .bind(order_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(DeleteOrder::Unknown);
    };
    let serial: i64 = row.try_get("order_serial")?;
    if flag(&row, "paid")? || flag(&row, "deposited")? {
        tx.rollback().await?;
        return Ok(DeleteOrder::Paid);
    }
    if flag(&row, "claimed")? && !force {
        tx.rollback().await?;
        return Ok(DeleteOrder::Claimed);
    }
    sqlx::query("DELETE FROM orders WHERE order_serial = $1")
        .bind(serial)
        .execute(tx.conn())
        .await?;
    tx.notify(TOPIC_ORDER, &order_key(instance_serial, order_id));
    tx.commit().await?;
    Ok(DeleteOrder::Deleted)
}

pub(crate) async fn replace_contract_terms(
    db: &PgDb,
    order_serial: i64,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE orders SET contract_terms = $1 WHERE order_serial = $2 AND contract_terms = $3",
    )
    .bind(new)
    .bind(order_serial)
    .bind(old)
    .execute(db.pool())
    .await?
    .rows_affected();
    if n > 1 {
        return Err(corrupt("order serial not unique"));
    }
    Ok(n == 1)
}
