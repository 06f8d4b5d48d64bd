//! Products and locks on PostgreSQL (semantics: `db/inventory.rs`). Every writer of stock
//! locks the product rows first (`FOR UPDATE`, ascending serial).

use cardcash_store::columns::pg_amount;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::super::inventory::{
    DeleteProduct, InsertProduct, LockProduct, NewLock, OutOfStock, ProductRow, UpdateProduct,
};
use super::super::sqlite::inventory::{available, check_update, same_product};
use super::super::{cols, corrupt, json, micros, time_opt};

macro_rules! product_columns {
    () => {
        "product_serial, product_id, product_name, description, description_i18n, unit, \
         price_val, price_frac, image, taxes, categories, total_stock, total_sold, total_lost, \
         address, next_restock, minimum_age, forgettable"
    };
}

fn product_row(row: &PgRow, currency: Currency) -> Result<ProductRow, StoreError> {
    let forgettable: Vec<String> = serde_json::from_str(row.try_get("forgettable")?)
        .map_err(|e| corrupt(format!("forgettable list: {e}")))?;
    let minimum_age: Option<i32> = row.try_get("minimum_age")?;
    Ok(ProductRow {
        serial: row.try_get("product_serial")?,
        product_id: row.try_get("product_id")?,
        product_name: row.try_get("product_name")?,
        description: row.try_get("description")?,
        description_i18n: json(row.try_get("description_i18n")?)?,
        unit: row.try_get("unit")?,
        price: pg_amount(row, "price", currency)?,
        image: row.try_get("image")?,
        taxes: json(row.try_get("taxes")?)?,
        categories: json(row.try_get("categories")?)?,
        total_stock: row.try_get("total_stock")?,
        total_sold: row.try_get("total_sold")?,
        total_lost: row.try_get("total_lost")?,
        address: json(row.try_get("address")?)?,
        next_restock: time_opt(row.try_get("next_restock")?)?,
        minimum_age: minimum_age
            .map(u32::try_from)
            .transpose()
            .map_err(|_| corrupt("minimum_age"))?,
        forgettable,
    })
}

fn forgettable_text(row: &ProductRow) -> String {
    serde_json::to_string(&row.forgettable).unwrap_or_else(|_| "[]".to_owned())
}

fn age(row: &ProductRow) -> Option<i32> {
    row.minimum_age.and_then(|a| i32::try_from(a).ok())
}

async fn product_in(
    conn: &mut PgConnection,
    currency: Currency,
    instance_serial: i64,
    id: &str,
    for_update: bool,
) -> Result<Option<ProductRow>, StoreError> {
    let query = if for_update {
        sqlx::query(concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE instance_serial = $1 AND product_id = $2 FOR UPDATE"
        ))
    } else {
        sqlx::query(concat!(
            "SELECT ",
            product_columns!(),
            " FROM products WHERE instance_serial = $1 AND product_id = $2"
        ))
    };
    query
        .bind(instance_serial)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(|r| product_row(&r, currency))
        .transpose()
}

/// Units of `product_serial` locked now (see `sqlite::inventory::locked`).
pub(crate) async fn locked(
    conn: &mut PgConnection,
    product_serial: i64,
    now: Timestamp,
    exclude_uuids: &[String],
) -> Result<i64, StoreError> {
    let carts: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(quantity), 0)::BIGINT FROM product_locks \
         WHERE product_serial = $1 AND expires_at > $2 AND lock_uuid <> ALL($3)",
    )
    .bind(product_serial)
    .bind(micros(now))
    .bind(exclude_uuids)
    .fetch_one(&mut *conn)
    .await?;
    let ordered: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(l.quantity), 0)::BIGINT FROM order_locks l \
         JOIN orders o ON o.order_serial = l.order_serial \
         WHERE l.product_serial = $1 AND o.paid = 0 AND o.pay_deadline > $2",
    )
    .bind(product_serial)
    .bind(micros(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(carts + ordered)
}

pub(crate) async fn product_with_stock(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    id: &str,
    now: Timestamp,
) -> Result<Option<(ProductRow, i64)>, StoreError> {
    let mut conn = db.pool().acquire().await?;
    let Some(row) = product_in(&mut conn, currency, instance_serial, id, false).await? else {
        return Ok(None);
    };
    let held = locked(&mut conn, row.serial, now, &[]).await?;
    let available = available(&row, held);
    Ok(Some((row, available)))
}

pub(crate) async fn insert_product(
    db: &PgDb,
    currency: Currency,
    instance_serial: i64,
    row: &ProductRow,
) -> Result<InsertProduct, StoreError> {
    let (price_val, price_frac) = cols(&row.price);
    let inserted = sqlx::query(
        "INSERT INTO products (instance_serial, product_id, product_name, description, \
         description_i18n, unit, price_val, price_frac, image, taxes, categories, total_stock, \
         address, next_restock, minimum_age, forgettable) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (instance_serial, product_id) DO NOTHING",
    )
    .bind(instance_serial)
    .bind(&row.product_id)
    .bind(&row.product_name)
    .bind(&row.description)
    .bind(row.description_i18n.to_string())
    .bind(&row.unit)
    .bind(price_val)
    .bind(price_frac)
    .bind(&row.image)
    .bind(row.taxes.to_string())
    .bind(row.categories.to_string())
    .bind(row.total_stock)
    .bind(row.address.to_string())
    .bind(row.next_restock.map(micros))
    .bind(age(row))
    .bind(forgettable_text(row))
    .execute(db.pool())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(InsertProduct::Created);
    }
    let mut conn = db.pool().acquire().await?;
    let existing = product_in(&mut conn, currency, instance_serial, &row.product_id, false).await?;
    Ok(match existing {
        Some(existing) if same_product(&existing, row) => InsertProduct::Same,
        _ => InsertProduct::Conflict,
    })
}

pub(crate) async fn products(
    db: &PgDb,
    instance_serial: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = if limit >= 0 {
        sqlx::query(
            "SELECT product_id, product_serial FROM products WHERE instance_serial = $1 \
             AND product_serial > $2 ORDER BY product_serial ASC LIMIT $3",
        )
        .bind(instance_serial)
        .bind(offset)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
    } else {
        sqlx::query(
            "SELECT product_id, product_serial FROM products WHERE instance_serial = $1 \
             AND product_serial < $2 ORDER BY product_serial DESC LIMIT $3",
        )
        .bind(instance_serial)
        .bind(offset)
        .bind(-limit)
        .fetch_all(db.pool())
        .await?
    };
    rows.iter()
        .map(|r| Ok((r.try_get("product_id")?, r.try_get("product_serial")?)))
        .collect()
}

pub(crate) async fn update_product(
    db: &PgDb,
    instance_serial: i64,
    row: &ProductRow,
    now: Timestamp,
) -> Result<UpdateProduct, StoreError> {
    let mut tx = db.begin().await?;
    let old = sqlx::query(
        "SELECT product_serial, total_stock, total_sold, total_lost FROM products \
         WHERE instance_serial = $1 AND product_id = $2 FOR UPDATE",
    )
    .bind(instance_serial)
    .bind(&row.product_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(old) = old else {
        tx.rollback().await?;
        return Ok(UpdateProduct::Unknown);
    };
    let serial: i64 = old.try_get("product_serial")?;
    let old_row = ProductRow {
        serial,
        total_stock: old.try_get("total_stock")?,
        total_sold: old.try_get("total_sold")?,
        total_lost: old.try_get("total_lost")?,
        ..row.clone()
    };
    let held = locked(tx.conn(), serial, now, &[]).await?;
    if let Some(refusal) = check_update(&old_row, row, held) {
        tx.rollback().await?;
        return Ok(refusal);
    }
    let (price_val, price_frac) = cols(&row.price);
    sqlx::query(
        "UPDATE products SET product_name = $1, description = $2, description_i18n = $3, \
         unit = $4, price_val = $5, price_frac = $6, image = $7, taxes = $8, categories = $9, \
         total_stock = $10, total_lost = $11, address = $12, next_restock = $13, \
         minimum_age = $14, forgettable = $15 WHERE product_serial = $16",
    )
    .bind(&row.product_name)
    .bind(&row.description)
    .bind(row.description_i18n.to_string())
    .bind(&row.unit)
    .bind(price_val)
    .bind(price_frac)
    .bind(&row.image)
    .bind(row.taxes.to_string())
    .bind(row.categories.to_string())
    .bind(row.total_stock)
    .bind(row.total_lost)
    .bind(row.address.to_string())
    .bind(row.next_restock.map(micros))
    .bind(age(row))
    .bind(forgettable_text(row))
    .bind(serial)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(UpdateProduct::Updated)
}

pub(crate) async fn delete_product(
    db: &PgDb,
    instance_serial: i64,
    id: &str,
    now: Timestamp,
) -> Result<DeleteProduct, StoreError> {
    let mut tx = db.begin().await?;
    let serial: Option<i64> = sqlx::query_scalar(
        "SELECT product_serial FROM products WHERE instance_serial = $1 AND product_id = $2 \
         FOR UPDATE",
    )
    .bind(instance_serial)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(serial) = serial else {
        tx.rollback().await?;
        return Ok(DeleteProduct::Unknown);
    };
    if locked(tx.conn(), serial, now, &[]).await? > 0 {
        tx.rollback().await?;
        return Ok(DeleteProduct::Locked);
    }
    sqlx::query("DELETE FROM order_locks WHERE product_serial = $1")
        .bind(serial)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM products WHERE product_serial = $1")
        .bind(serial)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(DeleteProduct::Deleted)
}

pub(crate) async fn lock_product(db: &PgDb, lock: &NewLock) -> Result<LockProduct, StoreError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT product_serial, total_stock, total_sold, total_lost, next_restock FROM products \
         WHERE instance_serial = $1 AND product_id = $2 FOR UPDATE",
    )
    .bind(lock.instance_serial)
    .bind(&lock.product_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(LockProduct::Unknown);
    };
    let serial: i64 = row.try_get("product_serial")?;
    // Expired locks of this product count no more: they go (bounded by the index).
    sqlx::query("DELETE FROM product_locks WHERE product_serial = $1 AND expires_at <= $2")
        .bind(serial)
        .bind(micros(lock.now))
        .execute(tx.conn())
        .await?;
    if lock.quantity == 0 {
        sqlx::query("DELETE FROM product_locks WHERE lock_uuid = $1 AND product_serial = $2")
            .bind(&lock.lock_uuid)
            .bind(serial)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        return Ok(LockProduct::Unlocked);
    }
    let quantity = i64::try_from(lock.quantity).map_err(|_| corrupt("lock quantity"))?;
    let stock: i64 = row.try_get("total_stock")?;
    if stock >= 0 {
        let sold: i64 = row.try_get("total_sold")?;
        let lost: i64 = row.try_get("total_lost")?;
        let held = locked(
            tx.conn(),
            serial,
            lock.now,
            std::slice::from_ref(&lock.lock_uuid),
        )
        .await?;
        let available = (stock - sold - lost - held).max(0);
        if quantity > available {
            tx.rollback().await?;
            return Ok(LockProduct::OutOfStock(OutOfStock {
                product_id: lock.product_id.clone(),
                requested: lock.quantity,
                available: u64::try_from(available).unwrap_or(0),
                restock_expected: time_opt(row.try_get("next_restock")?)?,
            }));
        }
    }
    sqlx::query(
        "INSERT INTO product_locks (lock_uuid, product_serial, quantity, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (lock_uuid, product_serial) \
         DO UPDATE SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at",
    )
    .bind(&lock.lock_uuid)
    .bind(serial)
    .bind(quantity)
    .bind(micros(lock.expires_at))
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(LockProduct::Locked)
}

/// Locks the product rows of an order (ascending serial) and checks their stock with the
/// front-end locks of `lock_uuids` left out; `None` when everything is available. `locks` must
/// be sorted by serial.
pub(crate) async fn check_order_stock(
    conn: &mut PgConnection,
    locks: &[(i64, u64)],
    lock_uuids: &[String],
    now: Timestamp,
) -> Result<Option<OutOfStock>, StoreError> {
    for &(serial, quantity) in locks {
        let row = sqlx::query(
            "SELECT product_id, total_stock, total_sold, total_lost, next_restock FROM products \
             WHERE product_serial = $1 FOR UPDATE",
        )
        .bind(serial)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(Some(OutOfStock {
                product_id: format!("#{serial}"),
                requested: quantity,
                available: 0,
                restock_expected: None,
            }));
        };
        let stock: i64 = row.try_get("total_stock")?;
        if stock < 0 {
            continue;
        }
        let sold: i64 = row.try_get("total_sold")?;
        let lost: i64 = row.try_get("total_lost")?;
        let held = locked(conn, serial, now, lock_uuids).await?;
        let available = u64::try_from((stock - sold - lost - held).max(0)).unwrap_or(0);
        if quantity > available {
            return Ok(Some(OutOfStock {
                product_id: row.try_get("product_id")?,
                requested: quantity,
                available,
                restock_expected: time_opt(row.try_get("next_restock")?)?,
            }));
        }
    }
    Ok(None)
}

/// Moves stock into a new order (after [`check_order_stock`], same transaction).
pub(crate) async fn take_order_locks(
    conn: &mut PgConnection,
    order_serial: i64,
    locks: &[(i64, u64)],
    lock_uuids: &[String],
) -> Result<(), StoreError> {
    if !lock_uuids.is_empty() {
        sqlx::query("DELETE FROM product_locks WHERE lock_uuid = ANY($1)")
            .bind(lock_uuids)
            .execute(&mut *conn)
            .await?;
    }
    for &(serial, quantity) in locks {
        let quantity = i64::try_from(quantity).map_err(|_| corrupt("order lock quantity"))?;
        sqlx::query(
            "INSERT INTO order_locks (order_serial, product_serial, quantity) VALUES ($1, $2, $3)",
        )
        .bind(order_serial)
        .bind(serial)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// For the payment (H4), in the transaction that marks the order paid: the order's locks
/// become `total_sold` (product rows locked in ascending serial first) and are deleted.
/// Returns the units sold.
pub async fn sell_order_locks(
    conn: &mut PgConnection,
    order_serial: i64,
) -> Result<i64, StoreError> {
    sqlx::query(
        "SELECT p.product_serial FROM products p JOIN order_locks l \
         ON l.product_serial = p.product_serial WHERE l.order_serial = $1 \
         ORDER BY p.product_serial FOR UPDATE OF p",
    )
    .bind(order_serial)
    .fetch_all(&mut *conn)
    .await?;
    let sold: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(quantity), 0)::BIGINT FROM order_locks WHERE order_serial = $1",
    )
    .bind(order_serial)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE products p SET total_sold = p.total_sold + l.quantity FROM order_locks l \
         WHERE l.order_serial = $1 AND l.product_serial = p.product_serial",
    )
    .bind(order_serial)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM order_locks WHERE order_serial = $1")
        .bind(order_serial)
        .execute(&mut *conn)
        .await?;
    Ok(sold)
}
