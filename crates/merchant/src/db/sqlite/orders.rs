//! Orders on SQLite (semantics: `db/orders.rs`).

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::Currency;

use super::super::orders::{CreateOrder, DeleteOrder, NewOrder, OrderFilter, OrderRow};
use super::super::{TOPIC_ORDER, cols, corrupt, micros, order_key};
use super::{am, execute, flag, ts};

/// The columns of [`order_row`]; the status reads further ones after these.
pub(super) const ORDER_COLUMNS: &str = "order_serial, order_id, claim_token, created_at, pay_deadline, \
     refund_deadline, summary, amount_val, amount_frac, fulfillment_url, contract_terms, \
     h_contract_terms, paid, session_id, refund_val, refund_frac, wired";

/// `(order_id, claim_token, h_post_data)` of an earlier order with the same id or key.
type Earlier = (String, Option<[u8; 16]>, Vec<u8>);

fn token(bytes: Option<Vec<u8>>) -> Result<Option<[u8; 16]>, StoreError> {
    bytes
        .map(|b| <[u8; 16]>::try_from(b.as_slice()).map_err(|_| corrupt("claim token length")))
        .transpose()
}

pub(super) fn order_row(row: &Row<'_>, currency: Currency) -> Result<OrderRow, StoreError> {
    let h: Option<Vec<u8>> = row.get(11)?;
    Ok(OrderRow {
        serial: row.get(0)?,
        order_id: row.get(1)?,
        claim_token: token(row.get(2)?)?,
        created_at: ts(row, 3)?,
        pay_deadline: ts(row, 4)?,
        refund_deadline: ts(row, 5)?,
        summary: row.get(6)?,
        amount: am(row, currency, 7)?,
        fulfillment_url: row.get(9)?,
        contract_terms: row.get(10)?,
        h_contract_terms: h
            .map(|b| super::super::fixed("contract hash", &b, cardcash_util::HashCode::from_slice))
            .transpose()?,
        paid: flag(row, 12)?,
        session_id: row.get(13)?,
        refund: am(row, currency, 14)?,
        wired: flag(row, 16)?,
    })
}

/// `(order_id, claim_token, h_post_data)` of an earlier order with this id or key.
fn earlier(conn: &Connection, new: &NewOrder) -> Result<Option<Earlier>, StoreError> {
    let by_id = query_opt(
        conn,
        "SELECT order_id, claim_token, h_post_data FROM orders \
         WHERE instance_serial = ?1 AND order_id = ?2",
        params![new.instance_serial, new.order_id],
        |r| Ok((r.get(0)?, token(r.get(1)?)?, r.get(2)?)),
    )?;
    if by_id.is_some() {
        return Ok(by_id);
    }
    let Some(key) = &new.idempotency_key else {
        return Ok(None);
    };
    query_opt(
        conn,
        "SELECT order_id, claim_token, h_post_data FROM orders \
         WHERE instance_serial = ?1 AND idempotency_key = ?2",
        params![new.instance_serial, key],
        |r| Ok((r.get(0)?, token(r.get(1)?)?, r.get(2)?)),
    )
}

pub(crate) fn create_order(
    tx: &mut SqliteTx<'_>,
    new: &NewOrder,
) -> Result<CreateOrder, StoreError> {
    if let Some((order_id, claim_token, h_post)) = earlier(tx, new)? {
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
        super::inventory::check_order_stock(tx, &new.locks, &new.lock_uuids, new.created_at)?
    {
        return Ok(CreateOrder::OutOfStock(short));
    }
    let (amount_val, amount_frac) = cols(&new.amount);
    execute(
        tx,
        "INSERT INTO orders (instance_serial, order_id, claim_token, h_post_data, \
         idempotency_key, created_at, pay_deadline, refund_deadline, wire_transfer_deadline, \
         summary, amount_val, amount_frac, fulfillment_url, account_serial, contract_terms, \
         session_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            new.instance_serial,
            new.order_id,
            new.claim_token.as_ref().map(|t| t.as_slice()),
            new.h_post_data.as_bytes().as_slice(),
            new.idempotency_key,
            micros(new.created_at),
            micros(new.pay_deadline),
            micros(new.refund_deadline),
            micros(new.wire_transfer_deadline),
            new.summary,
            amount_val,
            amount_frac,
            new.fulfillment_url,
            new.account_serial,
            new.contract_terms,
            new.session_id,
        ],
    )?;
    let order_serial = tx.last_insert_rowid();
    super::inventory::take_order_locks(tx, order_serial, &new.locks, &new.lock_uuids)?;
    tx.notify(TOPIC_ORDER, &order_key(new.instance_serial, &new.order_id));
    Ok(CreateOrder::Created { order_serial })
}

pub(crate) fn order(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    order_id: &str,
) -> Result<Option<OrderRow>, StoreError> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE instance_serial = ?1 AND order_id = ?2");
    query_opt(conn, &sql, params![instance_serial, order_id], |r| {
        order_row(r, currency)
    })
}

pub(crate) fn orders(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    f: &OrderFilter,
) -> Result<Vec<OrderRow>, StoreError> {
    let filters = "AND (?3 IS NULL OR paid = ?3) \
         AND (?4 IS NULL OR ((refund_val > 0 OR refund_frac > 0) = (?4 = 1))) \
         AND (?5 IS NULL OR wired = ?5) \
         AND (?7 IS NULL OR session_id = ?7) \
         AND (?8 IS NULL OR fulfillment_url = ?8)";
    let sql = if f.limit >= 0 {
        format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE instance_serial = ?1 AND order_serial > ?2 \
             {filters} AND (?6 IS NULL OR created_at >= ?6) ORDER BY order_serial ASC LIMIT ?9"
        )
    } else {
        format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE instance_serial = ?1 AND order_serial < ?2 \
             {filters} AND (?6 IS NULL OR created_at <= ?6) ORDER BY order_serial DESC LIMIT ?9"
        )
    };
    let offset = f.offset.unwrap_or(if f.limit >= 0 { 0 } else { i64::MAX });
    query_all(
        conn,
        &sql,
        params![
            instance_serial,
            offset,
            f.paid.as_flag(),
            f.refunded.as_flag(),
            f.wired.as_flag(),
            f.date.map(micros),
            f.session_id,
            f.fulfillment_url,
            f.limit.abs(),
        ],
        |r| order_row(r, currency),
    )
}

pub(crate) fn delete_order(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    order_id: &str,
    force: bool,
) -> Result<DeleteOrder, StoreError> {
    let row = query_opt(
        tx,
        "SELECT order_serial, paid, nonce IS NOT NULL, \
         EXISTS (SELECT 1 FROM deposits d WHERE d.order_serial = orders.order_serial) \
         FROM orders WHERE instance_serial = ?1 AND order_id = ?2",
        params![instance_serial, order_id],
        |r| Ok((r.get::<_, i64>(0)?, flag(r, 1)?, flag(r, 2)?, flag(r, 3)?)),
    )?;
    let Some((serial, paid, claimed, deposited)) = row else {
        return Ok(DeleteOrder::Unknown);
    };
    if paid || deposited {
        return Ok(DeleteOrder::Paid);
    }
    if claimed && !force {
        return Ok(DeleteOrder::Claimed);
    }
    execute(
        tx,
        "DELETE FROM orders WHERE order_serial = ?1",
        params![serial],
    )?;
    tx.notify(TOPIC_ORDER, &order_key(instance_serial, order_id));
    Ok(DeleteOrder::Deleted)
}

pub(crate) fn replace_contract_terms(
    tx: &mut SqliteTx<'_>,
    order_serial: i64,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let n = execute(
        tx,
        "UPDATE orders SET contract_terms = ?1 WHERE order_serial = ?2 AND contract_terms = ?3",
        params![new, order_serial, old],
    )?;
    Ok(n == 1)
}
