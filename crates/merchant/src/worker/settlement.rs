//! The settlement worker: runs `crate::settlement::track_step` when it is due — woken by any
//! order change (a payment schedules new deposits), otherwise at the time the step names.

use std::time::Duration;

use cardcash_http::{WorkerMetrics, WorkerRunner};
use tokio_util::sync::CancellationToken;

use crate::db::TOPIC_ORDER;
use crate::service::Merchant;

/// Runs the settlement worker until `stop` fires.
pub async fn run(merchant: Merchant, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = merchant.store().notifier().subscribe_topic(TOPIC_ORDER);
    WorkerRunner::new("settlement")
        .metrics(metrics)
        .idle(Duration::from_secs(3600))
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || {
                let merchant = merchant.clone();
                async move { crate::settlement::track_step(&merchant).await }
            },
        )
        .await;
}
