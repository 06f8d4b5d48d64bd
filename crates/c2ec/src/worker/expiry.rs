//! The expiry sweeper: aborts pending operations no wallet registered within
//! `REGISTRATION_WINDOW` (a short window also limits QR-code hijacking) and selected ones whose
//! terminal never reported a card payment within `CHECK_WINDOW`.
//!
//! It sleeps exactly until the earliest possible expiry; a new operation cannot expire before
//! the shortest window has passed, so sleeping at most that long misses nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{micros, now_micros};
use crate::error::C2ecError;
use crate::service::C2ec;

#[derive(Debug, Clone, Copy)]
pub struct ExpirySettings {
    pub registration_window: Duration,
    pub check_window: Duration,
}

pub async fn run(c2ec: C2ec, settings: ExpirySettings, stop: CancellationToken) {
    loop {
        let sleep = match sweep(&c2ec, &settings).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "expiry sweep failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Aborts what is due; returns how long until the next operation can expire.
async fn sweep(c2ec: &C2ec, s: &ExpirySettings) -> Result<Duration, C2ecError> {
    let reg = micros(s.registration_window);
    let chk = micros(s.check_window);
    loop {
        let now = now_micros();
        let rows = c2ec.store.expired(now - reg, now - chk, 256).await?;
        let n = rows.len();
        for row in rows {
            let mut tx = c2ec.store.begin().await?;
            let reason = format!("expired while {}", row.status);
            if c2ec
                .store
                .abort(
                    &mut tx, &row, row.status, "expiry", &reason, None, false, now,
                )
                .await?
            {
                tx.commit().await?;
                c2ec.metrics.finished("aborted");
                tracing::info!(wopid = %row.wopid, %reason, "withdrawal expired");
            } else {
                tx.rollback().await?;
            }
        }
        if n < 256 {
            break;
        }
    }
    let (pending, selected) = c2ec.store.oldest_open().await?;
    let now = now_micros();
    let shortest = s.registration_window.min(s.check_window);
    let next = [pending.map(|t| t + reg), selected.map(|t| t + chk)]
        .into_iter()
        .flatten()
        .min();
    Ok(match next {
        Some(t) => {
            Duration::from_micros(u64::try_from((t - now).max(0)).unwrap_or(0)).min(shortest)
                + Duration::from_millis(5)
        }
        None => shortest,
    })
}
