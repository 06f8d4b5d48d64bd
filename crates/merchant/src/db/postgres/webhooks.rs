//! Order events, webhooks and deliveries on PostgreSQL.

use cardcash_store::{PgDb, StoreError};
use cardcash_util::Timestamp;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::webhooks::{
    ALL, CreateWebhook, DeliveryJob, DeliveryOutcome, NewWebhook, OrderEventRow, TOPIC_DELIVERY,
    TOPIC_EVENT, WebhookChange, WebhookRow, WebhookSecret,
};
use super::super::{corrupt, json, micros, time, time_opt};

/// Columns of a webhook row (a macro: sqlx takes only literal SQL).
macro_rules! webhook_columns {
    () => {
        "w.webhook_serial, w.webhook_id, w.event_type, w.url, w.http_method, \
         w.header_template, w.body_template, w.secret"
    };
}

macro_rules! event_columns {
    () => {
        "e.event_serial, e.instance_serial, e.order_id, e.event_type AS e_event_type, \
         e.created_at AS e_created_at, e.payload"
    };
}

fn webhook_row(row: &PgRow) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow {
        serial: row.try_get("webhook_serial")?,
        id: row.try_get("webhook_id")?,
        event_type: row.try_get("event_type")?,
        url: row.try_get("url")?,
        http_method: row.try_get("http_method")?,
        header_template: row.try_get("header_template")?,
        body_template: row.try_get("body_template")?,
        secret: WebhookSecret(row.try_get("secret")?),
    })
}

fn event_row(row: &PgRow) -> Result<OrderEventRow, StoreError> {
    Ok(OrderEventRow {
        serial: row.try_get("event_serial")?,
        instance_serial: row.try_get("instance_serial")?,
        order_id: row.try_get("order_id")?,
        event_type: row.try_get("e_event_type")?,
        created_at: time(row.try_get("e_created_at")?)?,
        payload: json(row.try_get("payload")?)?,
    })
}

pub(crate) async fn create_webhook(
    db: &PgDb,
    instance_serial: i64,
    new: &NewWebhook,
    secret_given: bool,
) -> Result<CreateWebhook, StoreError> {
    let mut tx = db.begin().await?;
    // Lock the instance so that two creations of the same id are serialised.
    sqlx::query("SELECT 1 FROM instances WHERE instance_serial = $1 FOR UPDATE")
        .bind(instance_serial)
        .execute(tx.conn())
        .await?;
    let old = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w WHERE w.instance_serial = $1 AND w.webhook_id = $2"
    ))
    .bind(instance_serial)
    .bind(&new.id)
    .fetch_optional(tx.conn())
    .await?
    .map(|r| webhook_row(&r))
    .transpose()?;
    let outcome = match old {
        Some(old) => {
            let same = old.event_type == new.event_type
                && old.url == new.url
                && old.http_method == new.http_method
                && old.header_template == new.header_template
                && old.body_template == new.body_template
                && (!secret_given || old.secret == new.secret);
            if same {
                CreateWebhook::Same
            } else {
                CreateWebhook::Conflict
            }
        }
        None => {
            sqlx::query(
                "INSERT INTO webhooks (instance_serial, webhook_id, event_type, url, \
                 http_method, header_template, body_template, secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(instance_serial)
            .bind(&new.id)
            .bind(&new.event_type)
            .bind(&new.url)
            .bind(&new.http_method)
            .bind(&new.header_template)
            .bind(&new.body_template)
            .bind(&new.secret.0)
            .execute(tx.conn())
            .await?;
            CreateWebhook::Created
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

pub(crate) async fn webhooks(
    db: &PgDb,
    instance_serial: i64,
    id: Option<&str>,
) -> Result<Vec<WebhookRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks w WHERE w.instance_serial = $1 \
         AND ($2::TEXT IS NULL OR w.webhook_id = $2) ORDER BY w.webhook_id"
    ))
    .bind(instance_serial)
    .bind(id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(webhook_row)
    .collect()
}

pub(crate) async fn update_webhook(
    db: &PgDb,
    instance_serial: i64,
    id: &str,
    c: &WebhookChange,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE webhooks SET event_type = $3, url = $4, http_method = $5, header_template = $6, \
         body_template = $7, secret = COALESCE($8, secret) \
         WHERE instance_serial = $1 AND webhook_id = $2",
    )
    .bind(instance_serial)
    .bind(id)
    .bind(&c.event_type)
    .bind(&c.url)
    .bind(&c.http_method)
    .bind(&c.header_template)
    .bind(&c.body_template)
    .bind(c.secret.as_ref().map(|s| s.0.as_str()))
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub(crate) async fn delete_webhook(
    db: &PgDb,
    instance_serial: i64,
    id: &str,
) -> Result<bool, StoreError> {
    // Its deliveries go with it (ON DELETE CASCADE).
    let n = sqlx::query("DELETE FROM webhooks WHERE instance_serial = $1 AND webhook_id = $2")
        .bind(instance_serial)
        .bind(id)
        .execute(db.pool())
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub(crate) async fn sequence_events(
    db: &PgDb,
    now: Timestamp,
    limit: u32,
) -> Result<usize, StoreError> {
    let mut tx = db.begin().await?;
    // One sequencer at a time (several merchant processes may share the database). The
    // order-changing transactions never take this lock: capturing stays off their path.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cardcash_merchant.order_events'))")
        .execute(tx.conn())
        .await?;
    let max: i64 = sqlx::query("SELECT COALESCE(MAX(event_serial), 0) AS m FROM order_events")
        .fetch_one(tx.conn())
        .await?
        .try_get("m")?;
    // This statement sees only committed captures; one committing later is sequenced by a
    // later run, with a higher serial, so no reader ever sees a gap filled behind it.
    let n = sqlx::query(
        "UPDATE order_events e SET event_serial = $1 + s.n \
         FROM (SELECT event_id, row_number() OVER (ORDER BY event_id) AS n FROM order_events \
               WHERE event_serial IS NULL ORDER BY event_id LIMIT $2) s \
         WHERE e.event_id = s.event_id",
    )
    .bind(max)
    .bind(i64::from(limit))
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 0 {
        tx.rollback().await?;
        return Ok(0);
    }
    // The serials just given, as a closed range: with an open one (`> $1`) the planner, while
    // the table is small and unanalysed, reads all of order_events on every run.
    let made = sqlx::query(
        "INSERT INTO webhook_deliveries (event_serial, webhook_serial, created_at, next_attempt) \
         SELECT e.event_serial, w.webhook_serial, $2, $2 FROM order_events e \
         JOIN webhooks w ON w.instance_serial = e.instance_serial AND w.event_type = e.event_type \
         WHERE e.event_serial BETWEEN $1 + 1 AND $1 + $3 ON CONFLICT DO NOTHING",
    )
    .bind(max)
    .bind(micros(now))
    .bind(i64::try_from(n).map_err(|_| corrupt("sequenced count"))?)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.notify(TOPIC_EVENT, ALL);
    if made > 0 {
        tx.notify(TOPIC_DELIVERY, ALL);
    }
    tx.commit().await?;
    usize::try_from(n).map_err(|_| corrupt("sequenced count"))
}

pub(crate) async fn order_events_after(
    db: &PgDb,
    instance_serial: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<OrderEventRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM order_events e WHERE e.instance_serial = $1 AND e.event_serial > $2 \
         ORDER BY e.event_serial LIMIT $3"
    ))
    .bind(instance_serial)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(event_row)
    .collect()
}

pub(crate) async fn last_event_serial(db: &PgDb) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COALESCE(MAX(event_serial), 0) AS m FROM order_events")
            .fetch_one(db.pool())
            .await?
            .try_get("m")?,
    )
}

pub(crate) async fn claim_deliveries(
    db: &PgDb,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let mut tx = db.begin().await?;
    let serials: Vec<i64> = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt = $2 WHERE delivery_serial IN \
         (SELECT delivery_serial FROM webhook_deliveries WHERE state = 'pending' \
          AND next_attempt <= $1 ORDER BY next_attempt, delivery_serial LIMIT $3 \
          FOR UPDATE SKIP LOCKED) RETURNING delivery_serial",
    )
    .bind(micros(now))
    .bind(micros(lease_until))
    .bind(i64::from(limit))
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(|r| r.try_get("delivery_serial"))
    .collect::<Result<_, _>>()?;
    let rows = sqlx::query(concat!(
        "SELECT d.delivery_serial, d.attempts, d.created_at AS d_created_at, i.instance_id, \
         (SELECT o.contract_terms FROM orders o WHERE o.instance_serial = e.instance_serial \
          AND o.order_id = e.order_id) AS contract_terms, ",
        event_columns!(),
        ", ",
        webhook_columns!(),
        " FROM webhook_deliveries d \
         JOIN order_events e ON e.event_serial = d.event_serial \
         JOIN webhooks w ON w.webhook_serial = d.webhook_serial \
         JOIN instances i ON i.instance_serial = e.instance_serial \
         WHERE d.delivery_serial = ANY($1) ORDER BY d.delivery_serial"
    ))
    .bind(&serials)
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|r| {
            let attempts: i32 = r.try_get("attempts")?;
            Ok(DeliveryJob {
                serial: r.try_get("delivery_serial")?,
                attempts: u32::try_from(attempts).map_err(|_| corrupt("delivery attempts"))?,
                created_at: time(r.try_get("d_created_at")?)?,
                instance_id: r.try_get("instance_id")?,
                contract_terms: r.try_get("contract_terms")?,
                event: event_row(r)?,
                webhook: webhook_row(r)?,
            })
        })
        .collect()
}

pub(crate) async fn record_delivery(
    db: &PgDb,
    serial: i64,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let status = |s: &Option<u16>| s.map(i32::from);
    match outcome {
        DeliveryOutcome::Delivered { status } => sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, \
             last_status = $2, last_error = NULL WHERE delivery_serial = $1",
        )
        .bind(serial)
        .bind(i32::from(*status)),
        DeliveryOutcome::Retry {
            status: s,
            error,
            at,
        } => sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, \
             last_error = $3, next_attempt = $4 WHERE delivery_serial = $1",
        )
        .bind(serial)
        .bind(status(s))
        .bind(error)
        .bind(micros(*at)),
        DeliveryOutcome::GaveUp { status: s, error } => sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, \
             last_status = $2, last_error = $3 WHERE delivery_serial = $1",
        )
        .bind(serial)
        .bind(status(s))
        .bind(error),
    }
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(crate) async fn next_delivery_due(db: &PgDb) -> Result<Option<Timestamp>, StoreError> {
    let at: Option<i64> = sqlx::query(
        "SELECT MIN(next_attempt) AS at FROM webhook_deliveries WHERE state = 'pending'",
    )
    .fetch_one(db.pool())
    .await?
    .try_get("at")?;
    time_opt(at)
}

pub(crate) async fn prune_order_events(
    db: &PgDb,
    before: Timestamp,
    limit: u32,
) -> Result<usize, StoreError> {
    // Their finished deliveries go with them (ON DELETE CASCADE).
    let n = sqlx::query(
        "DELETE FROM order_events WHERE event_serial IN \
         (SELECT e.event_serial FROM order_events e WHERE e.event_serial IS NOT NULL \
          AND e.created_at < $1 \
          AND e.event_serial < (SELECT MAX(event_serial) FROM order_events) \
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                          WHERE d.event_serial = e.event_serial AND d.state = 'pending') \
          ORDER BY e.event_serial LIMIT $2)",
    )
    .bind(micros(before))
    .bind(i64::from(limit))
    .execute(db.pool())
    .await?
    .rows_affected();
    usize::try_from(n).map_err(|_| corrupt("pruned count"))
}

pub(crate) async fn has_unsequenced(db: &PgDb) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM order_events WHERE event_serial IS NULL) AS pending",
    )
    .fetch_one(db.pool())
    .await?
    .try_get("pending")?)
}
