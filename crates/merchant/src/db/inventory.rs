//! Inventory: products, the locks front ends hold (carts) and the locks orders hold.
//!
//! # Stock semantics (every feature that touches stock follows them)
//! ```text
//! available = total_stock − total_sold − total_lost
//!             − Σ product_locks.quantity  WHERE expires_at > now
//!             − Σ order_locks.quantity    OF orders WHERE paid = 0 AND pay_deadline > now
//! ```
//! `total_stock = −1` is unlimited: nothing is ever short, but sales and locks are recorded.
//! - A front-end lock (`product_locks`, key `(lock_uuid, product)`) counts until `expires_at`;
//!   expired rows are ignored, and deleted when the product is locked again. Quantity 0
//!   deletes it.
//! - An order created with `inventory_products` takes `order_locks` in the SAME transaction that
//!   inserts the order, after checking availability with the locks of its `lock_uuids` left out;
//!   those front-end locks are deleted in that transaction (all products of those uuids: what
//!   the order does not take is freed).
//! - The order's locks count while the order is unpaid and its pay deadline has not passed.
//!   After the deadline they count no more (the stock is back) and a payment is refused (H4).
//! - **Payment (H4)**: in the transaction that marks the order paid, call
//!   [`sqlite::inventory::sell_order_locks`] / [`postgres::inventory::sell_order_locks`]: it adds
//!   each order lock's quantity to `total_sold` and deletes the order's locks. Stock is thus
//!   taken exactly once. The pay transaction must check the pay deadline itself (a late payment
//!   could otherwise sell stock another order already took).
//! - Deleting an order (cascade) frees its locks.
//! - Concurrency: SQLite runs each write closure alone. PostgreSQL locks the product rows
//!   (`SELECT … FOR UPDATE`, ascending `product_serial`, so two carts cannot deadlock) before it
//!   sums the locks; every writer of stock (lock, order, sale, PATCH) takes that row lock first.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, Timestamp};
use serde_json::Value;

use super::{MerchantStore, postgres, sqlite};

/// A stored product.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductRow {
    pub serial: i64,
    pub product_id: String,
    pub product_name: Option<String>,
    pub description: String,
    /// JSON object.
    pub description_i18n: Value,
    pub unit: String,
    /// Price per unit.
    pub price: Amount,
    pub image: String,
    /// JSON list of `{name, tax}`.
    pub taxes: Value,
    /// JSON list of category ids.
    pub categories: Value,
    /// −1 = unlimited.
    pub total_stock: i64,
    pub total_sold: i64,
    pub total_lost: i64,
    /// JSON object.
    pub address: Value,
    pub next_restock: Option<Timestamp>,
    pub minimum_age: Option<u32>,
    /// Names of the fields a contract may forget.
    pub forgettable: Vec<String>,
}

/// What `POST /private/products` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertProduct {
    Created,
    /// The same product exists with the same data: nothing to do (idempotent).
    Same,
    /// A different product exists under this id.
    Conflict,
}

/// What `PATCH /private/products/$ID` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateProduct {
    Updated,
    Unknown,
    /// `total_stock` below the stored one (or from unlimited to limited below sold + lost +
    /// locked).
    StockReduced,
    LostReduced,
    /// sold + lost + locked would exceed the stock.
    LostExceedsStock,
}

/// What `DELETE /private/products/$ID` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteProduct {
    Deleted,
    Unknown,
    /// Unexpired locks (of carts or of unpaid orders) hold it.
    Locked,
}

/// Stock too short for a lock or an order (410 `OutOfStockResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfStock {
    pub product_id: String,
    pub requested: u64,
    pub available: u64,
    pub restock_expected: Option<Timestamp>,
}

/// What `POST /private/products/$ID/lock` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockProduct {
    Locked,
    Unlocked,
    Unknown,
    OutOfStock(OutOfStock),
}

/// A lock request.
#[derive(Clone, Debug)]
pub struct NewLock {
    pub instance_serial: i64,
    pub product_id: String,
    pub lock_uuid: String,
    /// 0 unlocks.
    pub quantity: u64,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

impl MerchantStore {
    /// Adds a product (`serial`, `total_sold` and `total_lost` of `row` are ignored).
    pub async fn insert_product(
        &self,
        instance_serial: i64,
        row: ProductRow,
    ) -> Result<InsertProduct, StoreError> {
        let row = Arc::new(row);
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let row = row.clone();
                    db.write(move |tx| {
                        sqlite::inventory::insert_product(tx, currency, instance_serial, &row)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::inventory::insert_product(db, currency, instance_serial, &row))
                    .await
            }
        }
    }

    /// The product `id` of an instance, with its available quantity now (−1 = unlimited).
    pub async fn product(
        &self,
        instance_serial: i64,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<(ProductRow, i64)>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::inventory::product_with_stock(conn, currency, instance_serial, id, now)
            }),
            Database::Postgres(db) => {
                postgres::inventory::product_with_stock(db, currency, instance_serial, id, now)
                    .await
            }
        }
    }

    /// A page of the instance's products `(id, serial)`, by serial: `limit` > 0 ascending
    /// after `offset`, < 0 descending before it.
    pub async fn products(
        &self,
        instance_serial: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::inventory::products(conn, instance_serial, limit, offset))
            }
            Database::Postgres(db) => {
                postgres::inventory::products(db, instance_serial, limit, offset).await
            }
        }
    }

    /// Replaces a product's data; `total_lost` only grows, `total_stock` never shrinks.
    pub async fn update_product(
        &self,
        instance_serial: i64,
        row: ProductRow,
        now: Timestamp,
    ) -> Result<UpdateProduct, StoreError> {
        let row = Arc::new(row);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let row = row.clone();
                    db.write(move |tx| {
                        sqlite::inventory::update_product(tx, instance_serial, &row, now)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::inventory::update_product(db, instance_serial, &row, now)).await
            }
        }
    }

    /// Deletes a product no unexpired lock holds (expired order locks of unpaid orders go
    /// with it).
    pub async fn delete_product(
        &self,
        instance_serial: i64,
        id: &str,
        now: Timestamp,
    ) -> Result<DeleteProduct, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let id = id.to_owned();
                retry(|| {
                    let id = id.clone();
                    db.write(move |tx| {
                        sqlite::inventory::delete_product(tx, instance_serial, &id, now)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::inventory::delete_product(db, instance_serial, id, now)).await
            }
        }
    }

    /// Takes, updates or (quantity 0) releases a front-end lock.
    pub async fn lock_product(&self, lock: NewLock) -> Result<LockProduct, StoreError> {
        let lock = Arc::new(lock);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let lock = lock.clone();
                    db.write(move |tx| sqlite::inventory::lock_product(tx, &lock))
                })
                .await
            }
            Database::Postgres(db) => retry(|| postgres::inventory::lock_product(db, &lock)).await,
        }
    }
}
