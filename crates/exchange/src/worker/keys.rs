//! Key rotation: keeps the key store stocked up to `LOOKAHEAD_SIGN` ahead and rebuilds the
//! `/keys` snapshot whenever key material changes (store notification `keys`, from any process
//! on PostgreSQL) or the snapshot's next key event (a start or an expiry) arrives.

use std::time::Duration;

use cardcash_http::worker::{Step, WorkerMetrics, WorkerRunner};
use cardcash_util::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::db::TOPIC_KEYS;
use crate::error::ExchangeError;
use crate::service::Exchange;

/// Runs until `stop` fires.
pub async fn run(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_KEYS);
    WorkerRunner::new("keys")
        .metrics(metrics)
        .idle(Duration::from_secs(3600))
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || step(exchange.clone()),
        )
        .await;
}

async fn step(exchange: Exchange) -> Result<Step, ExchangeError> {
    let now = Timestamp::now();
    let revoked =
        crate::keys::store::Revoked::from_material(&exchange.store().key_material().await?);
    exchange
        .keystore()
        .ensure(exchange.config(), now, &revoked, |section, start| {
            tracing::info!(section, start = %start, "created a key");
        })
        .await?;
    let snapshot = exchange.refresh_keys().await?;
    let until = snapshot.expires.saturating_sub(Timestamp::now());
    Ok(Step::After(
        until
            .to_duration()
            .unwrap_or(Duration::from_secs(3600))
            .max(Duration::from_secs(1)),
    ))
}
