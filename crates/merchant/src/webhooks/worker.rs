//! The two background workers of [`crate::webhooks`], on `cardcash_http::WorkerRunner`:
//!
//! - [`run_sequencer`] gives captured order events their `event_serial` and makes their
//!   webhook deliveries (one transaction), then notifies the event streams and the delivery
//!   worker. It wakes on the capture trigger's `pg_notify` (PostgreSQL) and on the order
//!   notifications our own writes send (both engines); on SQLite, whose triggers cannot notify,
//!   a one-second safety net also catches changes made by other processes (an operator's SQL),
//!   so the latency is one notification hop, or at most a second for foreign writes.
//! - [`run_deliveries`] attempts the due deliveries (concurrently, at most [`BATCH`] per step),
//!   records each outcome and sleeps until the next one is due or new deliveries are made.
//!
//! Neither ever runs on a request's path: a slow or dead receiver delays only its own retries.

use std::time::Duration;

use cardcash_http::worker::{Step, WorkerMetrics, WorkerRunner};
use cardcash_store::Engine;
use cardcash_util::{RelativeTime, Timestamp};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    Delivery, GIVE_UP_AFTER, LEASE, MAX_ATTEMPTS, MAX_ERROR_BODY, build_delivery, destination,
    retry_delay,
};
use crate::db::TOPIC_ORDER;
use crate::db::webhooks::{DeliveryJob, DeliveryOutcome, TOPIC_DELIVERY, TOPIC_EVENT_CAPTURED};
use crate::error::MerchantError;
use crate::service::Merchant;

/// Events sequenced, or deliveries attempted, per step at most.
pub const BATCH: u32 = 64;
/// The sequencer's safety net on SQLite (writes of other processes notify nobody).
const SQLITE_SAFETY_NET: Duration = Duration::from_secs(1);
/// How often the sequencer prunes old events.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the sequencer until `stop` fires.
pub async fn run_sequencer(merchant: Merchant, stop: CancellationToken, metrics: WorkerMetrics) {
    let notifier = merchant.store().notifier();
    let subscriptions = (
        notifier.subscribe_topic(TOPIC_EVENT_CAPTURED),
        notifier.subscribe_topic(TOPIC_ORDER),
    );
    let idle = match merchant.store().engine() {
        Engine::Sqlite => SQLITE_SAFETY_NET,
        Engine::Postgres => Duration::from_secs(60),
    };
    let mut last_prune = None;
    WorkerRunner::new("order-events")
        .metrics(metrics)
        .idle(idle)
        .run(
            stop,
            subscriptions,
            |s, d| {
                let (captured, changed) = (&mut s.0, &mut s.1);
                Box::pin(async move {
                    tokio::select! {
                        woken = captured.wait(d) => woken,
                        woken = changed.wait(d) => woken,
                    }
                })
            },
            || {
                let merchant = merchant.clone();
                let prune = prune_due(&mut last_prune);
                async move {
                    // Pruning failing is no reason not to sequence.
                    if prune && let Err(e) = prune_step(&merchant).await {
                        tracing::warn!(error = %e, "order events: pruning failed");
                    }
                    sequence_step(merchant).await
                }
            },
        )
        .await;
}

/// Whether pruning is due (and if so, starts its next period).
fn prune_due(last: &mut Option<std::time::Instant>) -> bool {
    let due = last.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
    if due {
        *last = Some(std::time::Instant::now());
    }
    due
}

/// Deletes events older than [`super::EVENT_RETENTION`] that no pending delivery needs.
async fn prune_step(merchant: &Merchant) -> Result<(), MerchantError> {
    let before = Timestamp::now()
        .saturating_sub_relative(RelativeTime::from_duration(super::EVENT_RETENTION));
    loop {
        let n = merchant
            .store()
            .prune_order_events(before, PRUNE_BATCH)
            .await?;
        if n < PRUNE_BATCH as usize {
            return Ok(());
        }
    }
}

/// Events deleted per transaction at most while pruning.
const PRUNE_BATCH: u32 = 1000;

/// Sequences what was captured.
pub async fn sequence_step(merchant: Merchant) -> Result<Step, MerchantError> {
    let n = merchant
        .store()
        .sequence_events(Timestamp::now(), BATCH)
        .await?;
    Ok(if n >= BATCH as usize {
        Step::After(Duration::ZERO)
    } else {
        Step::Idle
    })
}

/// Runs the delivery worker until `stop` fires.
pub async fn run_deliveries(merchant: Merchant, stop: CancellationToken, metrics: WorkerMetrics) {
    let client = match destination::client(merchant.config().webhook_allow_private_addresses) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; deliveries stay pending");
            return;
        }
    };
    let subscription = merchant.store().notifier().subscribe_topic(TOPIC_DELIVERY);
    WorkerRunner::new("webhooks")
        .metrics(metrics)
        .idle(Duration::from_secs(60))
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || delivery_step(merchant.clone(), client.clone()),
        )
        .await;
}

/// Attempts the deliveries due now.
pub async fn delivery_step(
    merchant: Merchant,
    client: reqwest::Client,
) -> Result<Step, MerchantError> {
    let store = merchant.store();
    let now = Timestamp::now();
    let lease_until = now.saturating_add(RelativeTime::from_duration(LEASE));
    let jobs = store.claim_deliveries(now, lease_until, BATCH).await?;
    let full = jobs.len() >= BATCH as usize;
    let mut attempts = JoinSet::new();
    for job in jobs {
        attempts.spawn(attempt(merchant.clone(), client.clone(), job));
    }
    let mut failed = None;
    while let Some(done) = attempts.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(e) => failed = Some(MerchantError::Internal(format!("delivery task: {e}"))),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if full {
        return Ok(Step::After(Duration::ZERO));
    }
    Ok(match store.next_delivery_due().await? {
        Some(at) => Step::After(
            at.saturating_sub(Timestamp::now())
                .to_duration()
                .unwrap_or(Duration::ZERO),
        ),
        None => Step::Idle,
    })
}

/// One attempt of one delivery, and its outcome recorded.
async fn attempt(
    merchant: Merchant,
    client: reqwest::Client,
    job: DeliveryJob,
) -> Result<(), MerchantError> {
    let store = merchant.store();
    let now = Timestamp::now();
    let now_secs = now.as_micros() / 1_000_000;
    let allow_private = merchant.config().webhook_allow_private_addresses;
    let sent = match build_delivery(store, &job, now_secs) {
        Ok(d) => send(&client, d, allow_private).await,
        Err(e) => Err(format!("cannot build the request: {e}")),
    };
    let outcome = match sent {
        Ok((status, _)) if status.is_success() => DeliveryOutcome::Delivered {
            status: status.as_u16(),
        },
        Ok((status, answer)) => failure(&merchant, &job, now, Some(status.as_u16()), answer),
        Err(error) => failure(&merchant, &job, now, None, error),
    };
    match &outcome {
        DeliveryOutcome::Delivered { status } => tracing::debug!(
            webhook = %job.webhook.id, event = job.event.serial, status, "webhook delivered"
        ),
        DeliveryOutcome::Retry { error, .. } => tracing::info!(
            webhook = %job.webhook.id, event = job.event.serial, attempts = job.attempts + 1,
            error = %error, "webhook delivery failed; will retry"
        ),
        DeliveryOutcome::GaveUp { error, .. } => tracing::warn!(
            webhook = %job.webhook.id, event = job.event.serial, attempts = job.attempts + 1,
            error = %error, "webhook delivery failed for the last time"
        ),
    }
    store.record_delivery(job.serial, outcome).await?;
    Ok(())
}

/// Sends one attempt: the status and (for a failure) `HTTP <status>` with the start of the
/// answer, or why nothing was answered (`refused: …` for a destination webhooks may not reach).
async fn send(
    client: &reqwest::Client,
    d: Delivery,
    allow_private: bool,
) -> std::result::Result<(reqwest::StatusCode, String), String> {
    // An IP literal never reaches the resolver: its check is here (the URL was checked when
    // stored, but the option may have changed since).
    let url =
        destination::check_url(&d.url, allow_private).map_err(|why| format!("refused: {why}"))?;
    let method = reqwest::Method::from_bytes(d.method.as_bytes())
        .map_err(|e| format!("method {:?}: {e}", d.method))?;
    let mut request = client.request(method, url).body(d.body);
    for (name, value) in &d.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok((status, String::new()));
    }
    // The start of the answer only: reading stops after MAX_ERROR_BODY bytes, whatever the
    // receiver sends.
    let mut start = Vec::new();
    while start.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => start.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    start.truncate(MAX_ERROR_BODY);
    let text: String = String::from_utf8_lossy(&start)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    Ok((
        status,
        if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        },
    ))
}

/// A transport failure in words: `refused: …` when the resolver refused every address, else
/// the chain of causes (without the URL, which may carry a shared secret: shop plugins put them
/// there).
fn transport_error(e: reqwest::Error) -> String {
    if let Some(refused) = destination::address_refused(&e) {
        return format!("refused: {refused}");
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Retry later, or give up (too many attempts, or the next one would be too late).
fn failure(
    merchant: &Merchant,
    job: &DeliveryJob,
    now: Timestamp,
    status: Option<u16>,
    error: String,
) -> DeliveryOutcome {
    let attempts = job.attempts.saturating_add(1);
    let base = merchant
        .config()
        .webhook_retry_delay
        .to_duration()
        .unwrap_or(super::MAX_RETRY_DELAY);
    let at = now.saturating_add(RelativeTime::from_duration(retry_delay(base, attempts)));
    let deadline = job
        .created_at
        .saturating_add(RelativeTime::from_duration(GIVE_UP_AFTER));
    if attempts >= MAX_ATTEMPTS || at > deadline {
        DeliveryOutcome::GaveUp { status, error }
    } else {
        DeliveryOutcome::Retry { status, error, at }
    }
}
