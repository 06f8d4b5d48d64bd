//! Order events (the outbox the triggers of migration 0006 fill), their sequencing, webhooks
//! and webhook deliveries.
//!
//! Events are captured by triggers on `orders` in the transaction of the change (so every
//! committed change has exactly one event, and a rolled-back one none), then sequenced: the
//! sequencer gives each committed event the next `event_serial` and, in the same transaction,
//! makes one delivery per matching webhook. Readers (SSE, deliveries) see only sequenced
//! events, so "the events after serial N" never misses one committed late.

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, Timestamp};
use serde_json::Value;

use super::{MerchantStore, postgres, sqlite};

/// Notification (PostgreSQL trigger → sequencer): events were captured. Key: instance serial.
/// On SQLite triggers cannot notify; the sequencer wakes on [`super::TOPIC_ORDER`] (every
/// order change our code makes notifies it) and on a short timer (changes by other processes).
pub const TOPIC_EVENT_CAPTURED: &str = "order_event_captured";
/// Notification (sequencer → event streams): events were sequenced. Key: [`ALL`].
pub const TOPIC_EVENT: &str = "order_event";
/// Notification (sequencer → delivery worker): deliveries were made. Key: [`ALL`].
pub const TOPIC_DELIVERY: &str = "webhook_delivery";
/// The one key of [`TOPIC_EVENT`] and [`TOPIC_DELIVERY`].
pub const ALL: &str = "all";

/// A webhook's signing secret (HMAC key). Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…redacted…)")
    }
}

/// A stored webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRow {
    pub serial: i64,
    pub id: String,
    pub event_type: String,
    pub url: String,
    pub http_method: String,
    pub header_template: Option<String>,
    pub body_template: Option<String>,
    pub secret: WebhookSecret,
}

/// What `POST /private/webhooks` stores (the serial is ignored).
pub type NewWebhook = WebhookRow;

/// The outcome of [`MerchantStore::create_webhook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateWebhook {
    Created,
    /// The same webhook exists (a replay).
    Same,
    /// Another webhook has this id.
    Conflict,
}

/// `PATCH /private/webhooks/$ID`: the new settings; `secret: None` keeps the current one.
#[derive(Debug, Clone)]
pub struct WebhookChange {
    pub event_type: String,
    pub url: String,
    pub http_method: String,
    pub header_template: Option<String>,
    pub body_template: Option<String>,
    pub secret: Option<WebhookSecret>,
}

/// A sequenced order event.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEventRow {
    pub serial: i64,
    pub instance_serial: i64,
    pub order_id: String,
    pub event_type: String,
    pub created_at: Timestamp,
    /// What the trigger recorded (amounts as `*_val`/`*_frac` columns).
    pub payload: Value,
}

/// A delivery due for an attempt, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub serial: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at: Timestamp,
    pub instance_id: String,
    pub event: OrderEventRow,
    /// The order's contract terms (as created or as claimed), if the order still exists.
    pub contract_terms: Option<String>,
    pub webhook: WebhookRow,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx: done.
    Delivered { status: u16 },
    /// Failed; try again at `at`.
    Retry {
        status: Option<u16>,
        error: String,
        at: Timestamp,
    },
    /// Failed for the last time.
    GaveUp { status: Option<u16>, error: String },
}

/// The amount of `payload`'s `<name>_val`/`<name>_frac`, if present.
pub(crate) fn payload_amount(
    store: &MerchantStore,
    payload: &Value,
    name: &str,
) -> Result<Option<Amount>, StoreError> {
    let val = payload.get(format!("{name}_val")).and_then(Value::as_i64);
    let frac = payload.get(format!("{name}_frac")).and_then(Value::as_i64);
    super::amount_opt(*store.currency(), val, frac)
}

impl MerchantStore {
    pub async fn create_webhook(
        &self,
        instance_serial: i64,
        new: NewWebhook,
        secret_given: bool,
    ) -> Result<CreateWebhook, StoreError> {
        let new = std::sync::Arc::new(new);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| {
                        sqlite::webhooks::create_webhook(tx, instance_serial, &new, secret_given)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::webhooks::create_webhook(db, instance_serial, &new, secret_given)
                })
                .await
            }
        }
    }

    /// The instance's webhooks, by id.
    pub async fn webhooks(&self, instance_serial: i64) -> Result<Vec<WebhookRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::webhooks::webhooks(conn, instance_serial, None))
            }
            Database::Postgres(db) => postgres::webhooks::webhooks(db, instance_serial, None).await,
        }
    }

    pub async fn webhook(
        &self,
        instance_serial: i64,
        id: &str,
    ) -> Result<Option<WebhookRow>, StoreError> {
        let rows = match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::webhooks::webhooks(conn, instance_serial, Some(id)))?
            }
            Database::Postgres(db) => {
                postgres::webhooks::webhooks(db, instance_serial, Some(id)).await?
            }
        };
        Ok(rows.into_iter().next())
    }

    /// Changes a webhook; `false` when there is none with this id.
    pub async fn update_webhook(
        &self,
        instance_serial: i64,
        id: &str,
        change: WebhookChange,
    ) -> Result<bool, StoreError> {
        let change = std::sync::Arc::new(change);
        let id = std::sync::Arc::new(id.to_owned());
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let (change, id) = (change.clone(), id.clone());
                    db.write(move |tx| {
                        sqlite::webhooks::update_webhook(tx, instance_serial, &id, &change)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::update_webhook(db, instance_serial, &id, &change))
                    .await
            }
        }
    }

    /// Deletes a webhook and its pending deliveries; `false` when there is none with this id.
    pub async fn delete_webhook(&self, instance_serial: i64, id: &str) -> Result<bool, StoreError> {
        let id = std::sync::Arc::new(id.to_owned());
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let id = id.clone();
                    db.write(move |tx| sqlite::webhooks::delete_webhook(tx, instance_serial, &id))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::delete_webhook(db, instance_serial, &id)).await
            }
        }
    }

    /// Sequences up to `limit` committed events (oldest capture first) and makes their
    /// deliveries; notifies [`TOPIC_EVENT`] (and [`TOPIC_DELIVERY`]) when it did. Returns how
    /// many events it sequenced.
    pub async fn sequence_events(&self, now: Timestamp, limit: u32) -> Result<usize, StoreError> {
        // A read first: the usual wake-up finds nothing to do, and then takes no write
        // transaction (nor, on PostgreSQL, the sequencer's lock).
        let pending = match &self.db {
            Database::Sqlite(db) => db.read(sqlite::webhooks::has_unsequenced)?,
            Database::Postgres(db) => postgres::webhooks::has_unsequenced(db).await?,
        };
        if !pending {
            return Ok(0);
        }
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| db.write(move |tx| sqlite::webhooks::sequence_events(tx, now, limit)))
                    .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::sequence_events(db, now, limit)).await
            }
        }
    }

    /// Deletes up to `limit` sequenced events captured before `before` that no pending
    /// delivery needs, with their finished deliveries; never the newest event (its serial is
    /// where the numbering continues). Returns how many it deleted.
    pub async fn prune_order_events(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<usize, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    db.write(move |tx| sqlite::webhooks::prune_order_events(tx, before, limit))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::prune_order_events(db, before, limit)).await
            }
        }
    }

    /// The instance's events with a serial above `after`, oldest first, at most `limit`.
    pub async fn order_events_after(
        &self,
        instance_serial: i64,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OrderEventRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::webhooks::order_events_after(conn, instance_serial, after, limit)
            }),
            Database::Postgres(db) => {
                postgres::webhooks::order_events_after(db, instance_serial, after, limit).await
            }
        }
    }

    /// The highest event serial so far (0 when none): where a new stream starts.
    pub async fn last_event_serial(&self) -> Result<i64, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::webhooks::last_event_serial),
            Database::Postgres(db) => postgres::webhooks::last_event_serial(db).await,
        }
    }

    /// Takes up to `limit` deliveries due at `now` for an attempt: each is leased until
    /// `lease_until` (another worker, or this one after a crash, retries it only then).
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    db.write(move |tx| {
                        sqlite::webhooks::claim_deliveries(tx, now, lease_until, limit)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::claim_deliveries(db, now, lease_until, limit)).await
            }
        }
    }

    /// Records the outcome of an attempt.
    pub async fn record_delivery(
        &self,
        serial: i64,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let outcome = std::sync::Arc::new(outcome);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let outcome = outcome.clone();
                    db.write(move |tx| sqlite::webhooks::record_delivery(tx, serial, &outcome))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::webhooks::record_delivery(db, serial, &outcome)).await
            }
        }
    }

    /// When the next pending delivery is due, if any.
    pub async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::webhooks::next_delivery_due),
            Database::Postgres(db) => postgres::webhooks::next_delivery_due(db).await,
        }
    }
}
