//! The expiry sweeper: aborts pending operations no wallet registered within
//! `REGISTRATION_WINDOW` (a short window also limits QR-code hijacking) and selected ones whose
//! terminal never reported a card payment within `CHECK_WINDOW`.
//!
//! It sleeps exactly until the earliest possible expiry; a new operation cannot expire before
//! the shortest window has passed, so sleeping at most that long misses nothing. Each sweep
//! aborts a whole batch with one storage call (one statement on PostgreSQL, skipping rows
//! another transaction holds).

use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::RelativeTime;
use tokio_util::sync::CancellationToken;

use crate::error::C2ecError;
use crate::service::C2ec;

#[derive(Debug, Clone, Copy)]
pub struct ExpirySettings {
    pub registration_window: Duration,
    pub check_window: Duration,
}

/// Pause after a failed sweep, doubled per consecutive failure up to [`ERROR_MAX`].
const ERROR_BASE: Duration = Duration::from_millis(500);
const ERROR_MAX: Duration = Duration::from_secs(60);
const BATCH: u32 = 256;

pub async fn run(
    c2ec: C2ec,
    settings: ExpirySettings,
    metrics: WorkerMetrics,
    stop: CancellationToken,
) {
    WorkerRunner::new("expiry")
        .metrics(metrics)
        .backoff(Backoff {
            initial: ERROR_BASE,
            max: ERROR_MAX,
        })
        .run_on_timer(stop, || {
            let c2ec = c2ec.clone();
            async move { Ok::<_, C2ecError>(Step::After(sweep(&c2ec, &settings).await?)) }
        })
        .await;
}

/// Aborts what is due; returns how long until the next operation can expire.
async fn sweep(c2ec: &C2ec, s: &ExpirySettings) -> Result<Duration, C2ecError> {
    let registration = RelativeTime::from_duration(s.registration_window);
    let check = RelativeTime::from_duration(s.check_window);
    loop {
        let now = crate::db::now();
        let expired = c2ec
            .store
            .expire(
                now.saturating_sub_relative(registration),
                now.saturating_sub_relative(check),
                BATCH,
                now,
            )
            .await?;
        for (wopid, status) in &expired {
            c2ec.metrics.finished("aborted");
            tracing::info!(%wopid, reason = %format!("expired while {status}"), "withdrawal expired");
        }
        // A full batch: more may be due right now.
        if expired.len() < BATCH as usize {
            break;
        }
    }
    let (pending, selected) = c2ec.store.oldest_open().await?;
    let shortest = s.registration_window.min(s.check_window);
    let next = [
        pending.map(|t| t.saturating_add(registration)),
        selected.map(|t| t.saturating_add(check)),
    ]
    .into_iter()
    .flatten()
    .min();
    Ok(match next {
        Some(t) => {
            t.saturating_sub(crate::db::now())
                .to_duration()
                .unwrap_or(shortest)
                .min(shortest)
                + Duration::from_millis(5)
        }
        None => shortest,
    })
}
