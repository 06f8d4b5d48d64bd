//! Order events, webhooks and deliveries on SQLite.

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::Timestamp;

use super::super::webhooks::{
    ALL, CreateWebhook, DeliveryJob, DeliveryOutcome, NewWebhook, OrderEventRow, TOPIC_DELIVERY,
    TOPIC_EVENT, WebhookChange, WebhookRow, WebhookSecret,
};
use super::super::{corrupt, json, micros};
use super::{execute, ts};

const WEBHOOK_COLUMNS: &str = "webhook_serial, webhook_id, event_type, url, http_method, \
     header_template, body_template, secret";

fn webhook_row(row: &Row<'_>, at: usize) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow {
        serial: row.get(at)?,
        id: row.get(at + 1)?,
        event_type: row.get(at + 2)?,
        url: row.get(at + 3)?,
        http_method: row.get(at + 4)?,
        header_template: row.get(at + 5)?,
        body_template: row.get(at + 6)?,
        secret: WebhookSecret(row.get(at + 7)?),
    })
}

const EVENT_COLUMNS: &str =
    "e.event_serial, e.instance_serial, e.order_id, e.event_type, e.created_at, e.payload";

fn event_row(row: &Row<'_>, at: usize) -> Result<OrderEventRow, StoreError> {
    Ok(OrderEventRow {
        serial: row.get(at)?,
        instance_serial: row.get(at + 1)?,
        order_id: row.get(at + 2)?,
        event_type: row.get(at + 3)?,
        created_at: ts(row, at + 4)?,
        payload: json(&row.get::<_, String>(at + 5)?)?,
    })
}

pub(crate) fn create_webhook(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    new: &NewWebhook,
    secret_given: bool,
) -> Result<CreateWebhook, StoreError> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE instance_serial = ?1 AND webhook_id = ?2"
    );
    if let Some(old) = query_opt(tx, &sql, params![instance_serial, new.id], |r| {
        webhook_row(r, 0)
    })? {
        let same = old.event_type == new.event_type
            && old.url == new.url
            && old.http_method == new.http_method
            && old.header_template == new.header_template
            && old.body_template == new.body_template
            && (!secret_given || old.secret == new.secret);
        return Ok(if same {
            CreateWebhook::Same
        } else {
            CreateWebhook::Conflict
        });
    }
    execute(
        tx,
        "INSERT INTO webhooks (instance_serial, webhook_id, event_type, url, http_method, \
         header_template, body_template, secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            instance_serial,
            new.id,
            new.event_type,
            new.url,
            new.http_method,
            new.header_template,
            new.body_template,
            new.secret.0
        ],
    )?;
    Ok(CreateWebhook::Created)
}

pub(crate) fn webhooks(
    conn: &Connection,
    instance_serial: i64,
    id: Option<&str>,
) -> Result<Vec<WebhookRow>, StoreError> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE instance_serial = ?1 \
         AND (?2 IS NULL OR webhook_id = ?2) ORDER BY webhook_id"
    );
    query_all(conn, &sql, params![instance_serial, id], |r| {
        webhook_row(r, 0)
    })
}

pub(crate) fn update_webhook(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    id: &str,
    c: &WebhookChange,
) -> Result<bool, StoreError> {
    let n = execute(
        tx,
        "UPDATE webhooks SET event_type = ?3, url = ?4, http_method = ?5, header_template = ?6, \
         body_template = ?7, secret = COALESCE(?8, secret) \
         WHERE instance_serial = ?1 AND webhook_id = ?2",
        params![
            instance_serial,
            id,
            c.event_type,
            c.url,
            c.http_method,
            c.header_template,
            c.body_template,
            c.secret.as_ref().map(|s| s.0.as_str())
        ],
    )?;
    Ok(n == 1)
}

pub(crate) fn delete_webhook(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    id: &str,
) -> Result<bool, StoreError> {
    // Deliveries go with it (ON DELETE CASCADE needs foreign keys on; be explicit).
    execute(
        tx,
        "DELETE FROM webhook_deliveries WHERE webhook_serial IN \
         (SELECT webhook_serial FROM webhooks WHERE instance_serial = ?1 AND webhook_id = ?2)",
        params![instance_serial, id],
    )?;
    let n = execute(
        tx,
        "DELETE FROM webhooks WHERE instance_serial = ?1 AND webhook_id = ?2",
        params![instance_serial, id],
    )?;
    Ok(n == 1)
}

pub(crate) fn sequence_events(
    tx: &mut SqliteTx<'_>,
    now: Timestamp,
    limit: u32,
) -> Result<usize, StoreError> {
    // The writer runs alone: nobody else sequences meanwhile, and what this transaction sees
    // commits in capture order.
    let max: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(event_serial), 0) FROM order_events")?
        .query_row([], |r| r.get(0))?;
    let ids: Vec<i64> = query_all(
        tx,
        "SELECT event_id FROM order_events WHERE event_serial IS NULL ORDER BY event_id LIMIT ?1",
        params![limit],
        |r| Ok(r.get(0)?),
    )?;
    let mut serial = max;
    for id in &ids {
        serial += 1;
        execute(
            tx,
            "UPDATE order_events SET event_serial = ?2 WHERE event_id = ?1",
            params![id, serial],
        )?;
    }
    let n = ids.len();
    if n == 0 {
        return Ok(0);
    }
    let made = execute(
        tx,
        "INSERT INTO webhook_deliveries (event_serial, webhook_serial, created_at, next_attempt) \
         SELECT e.event_serial, w.webhook_serial, ?2, ?2 FROM order_events e \
         JOIN webhooks w ON w.instance_serial = e.instance_serial AND w.event_type = e.event_type \
         WHERE e.event_serial > ?1 ON CONFLICT DO NOTHING",
        params![max, micros(now)],
    )?;
    tx.notify(TOPIC_EVENT, ALL);
    if made > 0 {
        tx.notify(TOPIC_DELIVERY, ALL);
    }
    Ok(n)
}

pub(crate) fn order_events_after(
    conn: &Connection,
    instance_serial: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<OrderEventRow>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM order_events e WHERE e.instance_serial = ?1 \
         AND e.event_serial > ?2 ORDER BY e.event_serial LIMIT ?3"
    );
    query_all(conn, &sql, params![instance_serial, after, limit], |r| {
        event_row(r, 0)
    })
}

pub(crate) fn last_event_serial(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(event_serial), 0) FROM order_events")?
        .query_row([], |r| r.get(0))?)
}

pub(crate) fn claim_deliveries(
    tx: &mut SqliteTx<'_>,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<DeliveryJob>, StoreError> {
    let sql = format!(
        "SELECT d.delivery_serial, d.attempts, d.created_at, i.instance_id, \
         (SELECT o.contract_terms FROM orders o WHERE o.instance_serial = e.instance_serial \
          AND o.order_id = e.order_id), \
         {EVENT_COLUMNS}, w.webhook_serial, w.webhook_id, w.event_type, w.url, w.http_method, \
         w.header_template, w.body_template, w.secret \
         FROM webhook_deliveries d \
         JOIN order_events e ON e.event_serial = d.event_serial \
         JOIN webhooks w ON w.webhook_serial = d.webhook_serial \
         JOIN instances i ON i.instance_serial = e.instance_serial \
         WHERE d.state = 'pending' AND d.next_attempt <= ?1 \
         ORDER BY d.next_attempt, d.delivery_serial LIMIT ?2"
    );
    let jobs = query_all(tx, &sql, params![micros(now), limit], |r| {
        let attempts: i64 = r.get(1)?;
        Ok(DeliveryJob {
            serial: r.get(0)?,
            attempts: u32::try_from(attempts).map_err(|_| corrupt("delivery attempts"))?,
            created_at: ts(r, 2)?,
            instance_id: r.get(3)?,
            contract_terms: r.get(4)?,
            event: event_row(r, 5)?,
            webhook: webhook_row(r, 11)?,
        })
    })?;
    for job in &jobs {
        execute(
            tx,
            "UPDATE webhook_deliveries SET next_attempt = ?2 WHERE delivery_serial = ?1",
            params![job.serial, micros(lease_until)],
        )?;
    }
    Ok(jobs)
}

pub(crate) fn record_delivery(
    tx: &mut SqliteTx<'_>,
    serial: i64,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    match outcome {
        DeliveryOutcome::Delivered { status } => execute(
            tx,
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, \
             last_status = ?2, last_error = NULL WHERE delivery_serial = ?1",
            params![serial, status],
        )?,
        DeliveryOutcome::Retry { status, error, at } => execute(
            tx,
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?2, \
             last_error = ?3, next_attempt = ?4 WHERE delivery_serial = ?1",
            params![serial, status, error, micros(*at)],
        )?,
        DeliveryOutcome::GaveUp { status, error } => execute(
            tx,
            "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, \
             last_status = ?2, last_error = ?3 WHERE delivery_serial = ?1",
            params![serial, status, error],
        )?,
    };
    Ok(())
}

pub(crate) fn next_delivery_due(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let at: Option<i64> = conn
        .prepare_cached("SELECT MIN(next_attempt) FROM webhook_deliveries WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?;
    super::super::time_opt(at)
}

pub(crate) fn prune_order_events(
    tx: &mut SqliteTx<'_>,
    before: Timestamp,
    limit: u32,
) -> Result<usize, StoreError> {
    let serials: Vec<i64> = query_all(
        tx,
        "SELECT e.event_serial FROM order_events e WHERE e.event_serial IS NOT NULL \
         AND e.created_at < ?1 \
         AND e.event_serial < (SELECT MAX(event_serial) FROM order_events) \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                         WHERE d.event_serial = e.event_serial AND d.state = 'pending') \
         ORDER BY e.event_serial LIMIT ?2",
        params![micros(before), limit],
        |r| Ok(r.get(0)?),
    )?;
    for serial in &serials {
        execute(
            tx,
            "DELETE FROM webhook_deliveries WHERE event_serial = ?1",
            params![serial],
        )?;
        execute(
            tx,
            "DELETE FROM order_events WHERE event_serial = ?1",
            params![serial],
        )?;
    }
    Ok(serials.len())
}

pub(crate) fn has_unsequenced(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM order_events WHERE event_serial IS NULL)")?
        .query_row([], |r| r.get(0))?)
}
