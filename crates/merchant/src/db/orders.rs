//! Orders as the private API creates, lists, deletes and edits them.
//!
//! - Creation is ONE transaction: replay detection (same `order_id`, or same idempotency key,
//!   with the same request hash → the stored answer; different → conflict), the stock check and
//!   the move of the front-end locks into order locks (`db/inventory.rs`), the insert.
//! - `contract_terms` holds the complete contract terms as created (everything but the wallet's
//!   `nonce`); the claim (H3) adds the nonce, hashes and signs.
//! - `session_id` is the session the order was created for (`POST /private/orders`
//!   `session_id`); the payment and `/paid` overwrite it with the session that paid.
//! - Forgetting rewrites `contract_terms` only if it is still the text that was read (a claim
//!   racing with it is never overwritten).

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, HashCode, Timestamp};

use super::inventory::OutOfStock;
use super::{MerchantStore, postgres, sqlite};

/// A new order, ready to store.
#[derive(Clone, Debug)]
pub struct NewOrder {
    pub instance_serial: i64,
    pub order_id: String,
    pub claim_token: Option<[u8; 16]>,
    /// SHA-512 of the canonical creation request.
    pub h_post_data: HashCode,
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub pay_deadline: Timestamp,
    pub refund_deadline: Timestamp,
    pub wire_transfer_deadline: Timestamp,
    pub summary: String,
    pub amount: Amount,
    pub fulfillment_url: Option<String>,
    pub account_serial: i64,
    /// The contract terms JSON text (no nonce).
    pub contract_terms: String,
    pub session_id: String,
    /// Inventory the order takes: `(product_serial, quantity)`, ascending serial, one entry
    /// per product.
    pub locks: Vec<(i64, u64)>,
    /// Front-end locks the order replaces.
    pub lock_uuids: Vec<String>,
}

/// What creating an order did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOrder {
    Created {
        order_serial: i64,
    },
    /// The same request was made before: its answer.
    Replay {
        order_id: String,
        claim_token: Option<[u8; 16]>,
    },
    /// The order id (or idempotency key) was used for a different request.
    Conflict {
        order_id: String,
    },
    OutOfStock(OutOfStock),
}

/// An order as the private API lists and edits it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRow {
    pub serial: i64,
    pub order_id: String,
    pub claim_token: Option<[u8; 16]>,
    pub created_at: Timestamp,
    pub pay_deadline: Timestamp,
    pub refund_deadline: Timestamp,
    pub summary: String,
    pub amount: Amount,
    pub fulfillment_url: Option<String>,
    pub contract_terms: String,
    pub h_contract_terms: Option<HashCode>,
    pub paid: bool,
    pub session_id: String,
    pub refund: Amount,
    pub wired: bool,
}

/// `yes` / `no` / `all` of the listing filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tristate {
    Yes,
    No,
    #[default]
    All,
}

impl Tristate {
    /// The column value to match (`None` = any).
    pub(crate) fn as_flag(self) -> Option<i32> {
        match self {
            Self::Yes => Some(1),
            Self::No => Some(0),
            Self::All => None,
        }
    }
}

/// A page request of `GET /private/orders`.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub paid: Tristate,
    pub refunded: Tristate,
    pub wired: Tristate,
    /// Ascending: created at or after; descending: created at or before.
    pub date: Option<Timestamp>,
    pub session_id: Option<String>,
    pub fulfillment_url: Option<String>,
    /// Positive: ascending after `offset`; negative: descending before `offset` (row serials);
    /// bounded by the caller.
    pub limit: i64,
    pub offset: Option<i64>,
}

/// What deleting an order did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOrder {
    Deleted,
    Unknown,
    /// Claimed and `force` not given.
    Claimed,
    /// Paid (or coins were deposited for it): kept.
    Paid,
}

impl MerchantStore {
    /// Creates an order (with its inventory locks) in one transaction.
    pub async fn create_order(&self, new: NewOrder) -> Result<CreateOrder, StoreError> {
        let new = Arc::new(new);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| sqlite::orders::create_order(tx, &new))
                })
                .await
            }
            Database::Postgres(db) => {
                // A concurrent insert of the same order id or key shows as a unique violation:
                // run again, and the replay check sees the other order.
                let mut attempt = 0;
                loop {
                    match retry(|| postgres::orders::create_order(db, &new)).await {
                        Err(e) if e.is_unique_violation() && attempt < 3 => attempt += 1,
                        other => return other,
                    }
                }
            }
        }
    }

    /// The order `order_id` of an instance.
    pub async fn order(
        &self,
        instance_serial: i64,
        order_id: &str,
    ) -> Result<Option<OrderRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::orders::order(conn, currency, instance_serial, order_id))
            }
            Database::Postgres(db) => {
                postgres::orders::order(db, currency, instance_serial, order_id).await
            }
        }
    }

    /// One page of an instance's orders.
    pub async fn orders(
        &self,
        instance_serial: i64,
        filter: &OrderFilter,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::orders::orders(conn, currency, instance_serial, filter))
            }
            Database::Postgres(db) => {
                postgres::orders::orders(db, currency, instance_serial, filter).await
            }
        }
    }

    /// Deletes an unpaid order (a claimed one only with `force`); its locks go with it.
    pub async fn delete_order(
        &self,
        instance_serial: i64,
        order_id: &str,
        force: bool,
    ) -> Result<DeleteOrder, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let order_id = order_id.to_owned();
                retry(|| {
                    let order_id = order_id.clone();
                    db.write(move |tx| {
                        sqlite::orders::delete_order(tx, instance_serial, &order_id, force)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::orders::delete_order(db, instance_serial, order_id, force)).await
            }
        }
    }

    /// Replaces an order's contract terms by `new` if they are still `old` (returns whether
    /// they were).
    pub async fn replace_contract_terms(
        &self,
        order_serial: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let (old, new) = (Arc::new(old.to_owned()), Arc::new(new.to_owned()));
                retry(|| {
                    let (old, new) = (old.clone(), new.clone());
                    db.write(move |tx| {
                        sqlite::orders::replace_contract_terms(tx, order_serial, &old, &new)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::orders::replace_contract_terms(db, order_serial, old, new)).await
            }
        }
    }
}
