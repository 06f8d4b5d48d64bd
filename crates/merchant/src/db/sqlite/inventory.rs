//! Products and locks on SQLite (semantics: `db/inventory.rs`).

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, Timestamp};

use super::super::inventory::{
    DeleteProduct, InsertProduct, LockProduct, NewLock, OutOfStock, ProductRow, UpdateProduct,
};
use super::super::{cols, corrupt, json, micros, time_opt};
use super::{am, execute};

const PRODUCT_COLUMNS: &str = "product_serial, product_id, product_name, description, \
     description_i18n, unit, price_val, price_frac, image, taxes, categories, total_stock, \
     total_sold, total_lost, address, next_restock, minimum_age, forgettable";

fn product_row(row: &Row<'_>, currency: Currency) -> Result<ProductRow, StoreError> {
    let forgettable: Vec<String> = serde_json::from_str(&row.get::<_, String>(17)?)
        .map_err(|e| corrupt(format!("forgettable list: {e}")))?;
    let minimum_age: Option<i64> = row.get(16)?;
    Ok(ProductRow {
        serial: row.get(0)?,
        product_id: row.get(1)?,
        product_name: row.get(2)?,
        description: row.get(3)?,
        description_i18n: json(&row.get::<_, String>(4)?)?,
        unit: row.get(5)?,
        price: am(row, currency, 6)?,
        image: row.get(8)?,
        taxes: json(&row.get::<_, String>(9)?)?,
        categories: json(&row.get::<_, String>(10)?)?,
        total_stock: row.get(11)?,
        total_sold: row.get(12)?,
        total_lost: row.get(13)?,
        address: json(&row.get::<_, String>(14)?)?,
        next_restock: time_opt(row.get(15)?)?,
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

pub(crate) fn product(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    id: &str,
) -> Result<Option<ProductRow>, StoreError> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE instance_serial = ?1 AND product_id = ?2"
    );
    query_opt(conn, &sql, params![instance_serial, id], |r| {
        product_row(r, currency)
    })
}

/// Units of `product_serial` locked now: unexpired front-end locks (except those of
/// `exclude_uuids`) and the locks of unpaid orders before their pay deadline.
pub(crate) fn locked(
    conn: &Connection,
    product_serial: i64,
    now: Timestamp,
    exclude_uuids: &[String],
) -> Result<i64, StoreError> {
    let now = micros(now);
    let mut locked: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(quantity), 0) FROM product_locks \
             WHERE product_serial = ?1 AND expires_at > ?2",
        )?
        .query_row(params![product_serial, now], |r| r.get(0))?;
    for uuid in exclude_uuids {
        let own: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(quantity), 0) FROM product_locks \
                 WHERE product_serial = ?1 AND expires_at > ?2 AND lock_uuid = ?3",
            )?
            .query_row(params![product_serial, now, uuid], |r| r.get(0))?;
        locked -= own;
    }
    let ordered: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(l.quantity), 0) FROM order_locks l \
             JOIN orders o ON o.order_serial = l.order_serial \
             WHERE l.product_serial = ?1 AND o.paid = 0 AND o.pay_deadline > ?2",
        )?
        .query_row(params![product_serial, now], |r| r.get(0))?;
    Ok(locked + ordered)
}

/// Available units (−1 = unlimited) of a product row given what is locked.
pub(crate) fn available(row: &ProductRow, locked: i64) -> i64 {
    if row.total_stock < 0 {
        -1
    } else {
        (row.total_stock - row.total_sold - row.total_lost - locked).max(0)
    }
}

pub(crate) fn product_with_stock(
    conn: &Connection,
    currency: Currency,
    instance_serial: i64,
    id: &str,
    now: Timestamp,
) -> Result<Option<(ProductRow, i64)>, StoreError> {
    let Some(row) = product(conn, currency, instance_serial, id)? else {
        return Ok(None);
    };
    let locked = locked(conn, row.serial, now, &[])?;
    let available = available(&row, locked);
    Ok(Some((row, available)))
}

/// Whether two rows describe the same product (what a replayed POST must match).
pub(crate) fn same_product(a: &ProductRow, b: &ProductRow) -> bool {
    a.product_id == b.product_id
        && a.product_name == b.product_name
        && a.description == b.description
        && a.description_i18n == b.description_i18n
        && a.unit == b.unit
        && a.price == b.price
        && a.image == b.image
        && a.taxes == b.taxes
        && a.categories == b.categories
        && a.total_stock == b.total_stock
        && a.address == b.address
        && a.next_restock == b.next_restock
        && a.minimum_age == b.minimum_age
        && a.forgettable == b.forgettable
}

pub(crate) fn insert_product(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    instance_serial: i64,
    row: &ProductRow,
) -> Result<InsertProduct, StoreError> {
    if let Some(existing) = product(tx, currency, instance_serial, &row.product_id)? {
        return Ok(if same_product(&existing, row) {
            InsertProduct::Same
        } else {
            InsertProduct::Conflict
        });
    }
    let (price_val, price_frac) = cols(&row.price);
    execute(
        tx,
        "INSERT INTO products (instance_serial, product_id, product_name, description, \
         description_i18n, unit, price_val, price_frac, image, taxes, categories, total_stock, \
         address, next_restock, minimum_age, forgettable) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            instance_serial,
            row.product_id,
            row.product_name,
            row.description,
            row.description_i18n.to_string(),
            row.unit,
            price_val,
            price_frac,
            row.image,
            row.taxes.to_string(),
            row.categories.to_string(),
            row.total_stock,
            row.address.to_string(),
            row.next_restock.map(micros),
            row.minimum_age.map(i64::from),
            forgettable_text(row),
        ],
    )?;
    Ok(InsertProduct::Created)
}

pub(crate) fn products(
    conn: &Connection,
    instance_serial: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let map = |r: &Row<'_>| -> Result<(String, i64), StoreError> { Ok((r.get(0)?, r.get(1)?)) };
    if limit >= 0 {
        query_all(
            conn,
            "SELECT product_id, product_serial FROM products WHERE instance_serial = ?1 \
             AND product_serial > ?2 ORDER BY product_serial ASC LIMIT ?3",
            params![instance_serial, offset, limit],
            map,
        )
    } else {
        query_all(
            conn,
            "SELECT product_id, product_serial FROM products WHERE instance_serial = ?1 \
             AND product_serial < ?2 ORDER BY product_serial DESC LIMIT ?3",
            params![instance_serial, offset, -limit],
            map,
        )
    }
}

/// The PATCH rules shared by both engines: what `new` may do to `old` with `locked` units
/// held now.
pub(crate) fn check_update(
    old: &ProductRow,
    new: &ProductRow,
    locked: i64,
) -> Option<UpdateProduct> {
    if new.total_lost < old.total_lost {
        return Some(UpdateProduct::LostReduced);
    }
    if old.total_stock >= 0 && (new.total_stock < old.total_stock && new.total_stock != -1) {
        return Some(UpdateProduct::StockReduced);
    }
    if new.total_stock >= 0 {
        if old.total_stock < 0 && new.total_stock < old.total_sold + old.total_lost + locked {
            // From unlimited to a limit below what is already sold, lost and held.
            return Some(UpdateProduct::StockReduced);
        }
        if old.total_sold + new.total_lost + locked > new.total_stock {
            return Some(UpdateProduct::LostExceedsStock);
        }
    }
    None
}

pub(crate) fn update_product(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    row: &ProductRow,
    now: Timestamp,
) -> Result<UpdateProduct, StoreError> {
    // The currency of the stored price does not matter here: only the stock columns are read.
    let old = query_opt(
        tx,
        "SELECT product_serial, total_stock, total_sold, total_lost FROM products \
         WHERE instance_serial = ?1 AND product_id = ?2",
        params![instance_serial, row.product_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )?;
    let Some((serial, total_stock, total_sold, total_lost)) = old else {
        return Ok(UpdateProduct::Unknown);
    };
    let old_row = ProductRow {
        serial,
        total_stock,
        total_sold,
        total_lost,
        ..row.clone()
    };
    let held = locked(tx, serial, now, &[])?;
    if let Some(refusal) = check_update(&old_row, row, held) {
        return Ok(refusal);
    }
    let (price_val, price_frac) = cols(&row.price);
    execute(
        tx,
        "UPDATE products SET product_name = ?1, description = ?2, description_i18n = ?3, \
         unit = ?4, price_val = ?5, price_frac = ?6, image = ?7, taxes = ?8, categories = ?9, \
         total_stock = ?10, total_lost = ?11, address = ?12, next_restock = ?13, \
         minimum_age = ?14, forgettable = ?15 WHERE product_serial = ?16",
        params![
            row.product_name,
            row.description,
            row.description_i18n.to_string(),
            row.unit,
            price_val,
            price_frac,
            row.image,
            row.taxes.to_string(),
            row.categories.to_string(),
            row.total_stock,
            row.total_lost,
            row.address.to_string(),
            row.next_restock.map(micros),
            row.minimum_age.map(i64::from),
            forgettable_text(row),
            serial,
        ],
    )?;
    Ok(UpdateProduct::Updated)
}

pub(crate) fn delete_product(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    id: &str,
    now: Timestamp,
) -> Result<DeleteProduct, StoreError> {
    let serial: Option<i64> = query_opt(
        tx,
        "SELECT product_serial FROM products WHERE instance_serial = ?1 AND product_id = ?2",
        params![instance_serial, id],
        |r| Ok(r.get(0)?),
    )?;
    let Some(serial) = serial else {
        return Ok(DeleteProduct::Unknown);
    };
    if locked(tx, serial, now, &[])? > 0 {
        return Ok(DeleteProduct::Locked);
    }
    // What is left in order_locks no longer counts (expired unpaid orders): it goes.
    execute(
        tx,
        "DELETE FROM order_locks WHERE product_serial = ?1",
        params![serial],
    )?;
    execute(
        tx,
        "DELETE FROM products WHERE product_serial = ?1",
        params![serial],
    )?;
    Ok(DeleteProduct::Deleted)
}

pub(crate) fn lock_product(
    tx: &mut SqliteTx<'_>,
    lock: &NewLock,
) -> Result<LockProduct, StoreError> {
    let row = query_opt(
        tx,
        "SELECT product_serial, total_stock, total_sold, total_lost, next_restock FROM products \
         WHERE instance_serial = ?1 AND product_id = ?2",
        params![lock.instance_serial, lock.product_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        },
    )?;
    let Some((serial, stock, sold, lost, restock)) = row else {
        return Ok(LockProduct::Unknown);
    };
    // Expired locks of this product count no more: they go (bounded by the index).
    execute(
        tx,
        "DELETE FROM product_locks WHERE product_serial = ?1 AND expires_at <= ?2",
        params![serial, micros(lock.now)],
    )?;
    if lock.quantity == 0 {
        execute(
            tx,
            "DELETE FROM product_locks WHERE lock_uuid = ?1 AND product_serial = ?2",
            params![lock.lock_uuid, serial],
        )?;
        return Ok(LockProduct::Unlocked);
    }
    let quantity = i64::try_from(lock.quantity).map_err(|_| corrupt("lock quantity"))?;
    if stock >= 0 {
        let held = locked(tx, serial, lock.now, std::slice::from_ref(&lock.lock_uuid))?;
        let available = (stock - sold - lost - held).max(0);
        if quantity > available {
            return Ok(LockProduct::OutOfStock(OutOfStock {
                product_id: lock.product_id.clone(),
                requested: lock.quantity,
                available: u64::try_from(available).unwrap_or(0),
                restock_expected: time_opt(restock)?,
            }));
        }
    }
    execute(
        tx,
        "INSERT INTO product_locks (lock_uuid, product_serial, quantity, expires_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (lock_uuid, product_serial) \
         DO UPDATE SET quantity = excluded.quantity, expires_at = excluded.expires_at",
        params![lock.lock_uuid, serial, quantity, micros(lock.expires_at)],
    )?;
    Ok(LockProduct::Locked)
}

/// Checks stock for an order's `locks` `(product_serial, quantity)` with the front-end locks of
/// `lock_uuids` left out; `None` when everything is available. Runs inside the order's write.
pub(crate) fn check_order_stock(
    conn: &Connection,
    locks: &[(i64, u64)],
    lock_uuids: &[String],
    now: Timestamp,
) -> Result<Option<OutOfStock>, StoreError> {
    for &(serial, quantity) in locks {
        let row = query_opt(
            conn,
            "SELECT product_id, total_stock, total_sold, total_lost, next_restock FROM products \
             WHERE product_serial = ?1",
            params![serial],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )?;
        let Some((product_id, stock, sold, lost, restock)) = row else {
            // Deleted since the order was prepared: nothing is available.
            return Ok(Some(OutOfStock {
                product_id: format!("#{serial}"),
                requested: quantity,
                available: 0,
                restock_expected: None,
            }));
        };
        if stock < 0 {
            continue;
        }
        let held = locked(conn, serial, now, lock_uuids)?;
        let available = u64::try_from((stock - sold - lost - held).max(0)).unwrap_or(0);
        if quantity > available {
            return Ok(Some(OutOfStock {
                product_id,
                requested: quantity,
                available,
                restock_expected: time_opt(restock)?,
            }));
        }
    }
    Ok(None)
}

/// Moves stock into a new order: the front-end locks of `lock_uuids` go, `locks` become the
/// order's locks. Call after [`check_order_stock`] in the same write.
pub(crate) fn take_order_locks(
    conn: &Connection,
    order_serial: i64,
    locks: &[(i64, u64)],
    lock_uuids: &[String],
) -> Result<(), StoreError> {
    for uuid in lock_uuids {
        execute(
            conn,
            "DELETE FROM product_locks WHERE lock_uuid = ?1",
            params![uuid],
        )?;
    }
    for &(serial, quantity) in locks {
        let quantity = i64::try_from(quantity).map_err(|_| corrupt("order lock quantity"))?;
        execute(
            conn,
            "INSERT INTO order_locks (order_serial, product_serial, quantity) VALUES (?1, ?2, ?3)",
            params![order_serial, serial, quantity],
        )?;
    }
    Ok(())
}

/// For the payment (H4), in the write that marks the order paid: the order's locks become
/// `total_sold` and are deleted. Returns the units sold.
pub fn sell_order_locks(conn: &Connection, order_serial: i64) -> Result<i64, StoreError> {
    let sold: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(quantity), 0) FROM order_locks WHERE order_serial = ?1",
        )?
        .query_row(params![order_serial], |r| r.get(0))?;
    execute(
        conn,
        "UPDATE products SET total_sold = total_sold + \
         (SELECT quantity FROM order_locks l WHERE l.order_serial = ?1 \
          AND l.product_serial = products.product_serial) \
         WHERE product_serial IN (SELECT product_serial FROM order_locks WHERE order_serial = ?1)",
        params![order_serial],
    )?;
    execute(
        conn,
        "DELETE FROM order_locks WHERE order_serial = ?1",
        params![order_serial],
    )?;
    Ok(sold)
}
