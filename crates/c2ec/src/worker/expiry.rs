//! The expiry sweeper: aborts pending operations no wallet registered within
//! `REGISTRATION_WINDOW` (a short window also limits QR-code hijacking) and selected ones whose
//! terminal never reported a card payment within `CHECK_WINDOW`.
//!
//! It sleeps exactly until the earliest possible expiry; a new operation cannot expire before
//! the shortest window has passed, so sleeping at most that long misses nothing.

use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerRunner};
use tokio_util::sync::CancellationToken;

use crate::db::withdrawal::WithdrawalRow;
use crate::db::{micros, now_micros};
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
const BATCH: i64 = 256;

pub async fn run(c2ec: C2ec, settings: ExpirySettings, stop: CancellationToken) {
    WorkerRunner::new("expiry")
        .backoff(Backoff {
            initial: ERROR_BASE,
            max: ERROR_MAX,
        })
        .run_on_timer(stop, || {
            let c2ec = c2ec.clone();
            async move {
                let (sleep, unhandled) = sweep(&c2ec, &settings).await?;
                if unhandled > 0 {
                    // Still due: back off rather than sweeping them again at once.
                    return Err(C2ecError::Internal(format!(
                        "{unhandled} operations could not be expired"
                    )));
                }
                Ok(Step::After(sleep))
            }
        })
        .await;
}

/// Aborts what is due; returns how long until the next operation can expire and how many
/// operations could not be aborted (they are logged and retried after a backoff pause).
async fn sweep(c2ec: &C2ec, s: &ExpirySettings) -> Result<(Duration, usize), C2ecError> {
    let reg = micros(s.registration_window);
    let chk = micros(s.check_window);
    let mut unhandled = 0;
    loop {
        let now = now_micros();
        let rows = c2ec.store.expired(now - reg, now - chk, BATCH).await?;
        let n = rows.len();
        for row in rows {
            if let Err(e) = expire_one(c2ec, &row, now).await {
                tracing::error!(wopid = %row.wopid, error = %e, "could not expire withdrawal");
                unhandled += 1;
            }
        }
        // Unhandled rows are still due: another batch would return them again.
        if (n as i64) < BATCH || unhandled > 0 {
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
    let sleep = match next {
        Some(t) => {
            Duration::from_micros(u64::try_from((t - now).max(0)).unwrap_or(0)).min(shortest)
                + Duration::from_millis(5)
        }
        None => shortest,
    };
    Ok((sleep, unhandled))
}

async fn expire_one(c2ec: &C2ec, row: &WithdrawalRow, now: i64) -> Result<(), C2ecError> {
    let mut tx = c2ec.store.begin().await?;
    let reason = format!("expired while {}", row.status);
    if c2ec
        .store
        .abort(&mut tx, row, row.status, "expiry", &reason, None, true, now)
        .await?
    {
        tx.commit().await?;
        c2ec.metrics.finished("aborted");
        tracing::info!(wopid = %row.wopid, %reason, "withdrawal expired");
    } else {
        tx.rollback().await?;
    }
    Ok(())
}
