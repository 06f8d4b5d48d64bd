//! The attestation worker: asks the card provider about each reported card transaction and
//! moves `selected → confirmed` (with the incoming-history row, in one transaction) or
//! `selected → aborted`.
//!
//! It wakes on the `attest` notification (a terminal's `/check`) and on its own timer for
//! retries; it never polls the database in a loop. Provider outages, not-yet-final payments and
//! attempts that fail inside C2EC are retried with exponential backoff until
//! `ATTESTATION_MAX_RETRIES`, then the operation is aborted and any captured money is handed to
//! the refund worker; an operation that can never match a payment (no chargeable amount) is
//! aborted at once. Rounds run on the shared `cardcash_http::WorkerRunner`, which backs off
//! when a round fails, so no failure turns into a hot loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerRunner};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::attest::{self, Expectation, Rejection, Verdict};
use crate::db::withdrawal::WithdrawalRow;
use crate::db::{TOPIC_ATTEST, micros, now_micros};
use crate::error::C2ecError;
use crate::provider::ProviderError;
use crate::service::C2ec;
use crate::state::Status;

/// Settings of the worker.
#[derive(Debug, Clone, Copy)]
pub struct AttestationSettings {
    pub max_retries: u32,
    pub retry_delay: Duration,
    pub max_delay: Duration,
    /// Attestations run concurrently (provider round trips dominate).
    pub concurrency: usize,
}

/// Longest the worker sleeps when nothing is scheduled (a safety net, not a poll).
const IDLE: Duration = Duration::from_secs(60);
const BATCH: i64 = 256;

pub async fn run(c2ec: C2ec, settings: AttestationSettings, stop: CancellationToken) {
    // Subscribe before the first round, so a check committed meanwhile wakes the next wait.
    let checks = c2ec.store.db().notifier().subscribe_topic(TOPIC_ATTEST);
    // A failed round (database unreachable, or operations that could not even be rescheduled)
    // is followed by an exponentially growing pause, never by an immediate retry.
    WorkerRunner::new("attestation")
        .idle(IDLE)
        .backoff(Backoff {
            initial: settings.retry_delay,
            max: settings.max_delay,
        })
        .run(
            stop,
            checks,
            |sub, timeout| Box::pin(sub.wait(timeout)),
            || {
                let c2ec = c2ec.clone();
                async move { run_due(&c2ec, &settings).await }
            },
        )
        .await;
}

/// Attests everything due; then waits until the next scheduled attempt. Fails when operations
/// were left unhandled, so that the runner backs off instead of fetching them again at once.
async fn run_due(c2ec: &C2ec, settings: &AttestationSettings) -> Result<Step, C2ecError> {
    let mut unhandled = 0;
    loop {
        let due = c2ec.store.due_attestations(now_micros(), BATCH).await?;
        let n = due.len();
        let failed = AtomicUsize::new(0);
        futures_util::stream::iter(due)
            .for_each_concurrent(settings.concurrency, |row| {
                let failed = &failed;
                async move {
                    if !attest_or_reschedule(c2ec, settings, &row).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await;
        unhandled += failed.into_inner();
        // Unhandled rows are still due: fetching the next batch would return them again.
        if (n as i64) < BATCH || unhandled > 0 {
            break;
        }
    }
    if unhandled > 0 {
        return Err(C2ecError::Internal(format!(
            "{unhandled} operations could be neither attested nor rescheduled"
        )));
    }
    Ok(match c2ec.store.next_attestation_at().await? {
        Some(t) => {
            let wait = t.saturating_sub(now_micros()).max(0);
            Step::After(Duration::from_micros(u64::try_from(wait).unwrap_or(0)))
        }
        None => Step::Idle,
    })
}

/// One attempt at one operation. A failure of the attempt itself (a database error while
/// confirming, say) counts as a failed attempt: the operation is rescheduled with backoff and,
/// once the retries are exhausted, aborted with its captured money refunded, exactly as when
/// the provider stays unreachable. `false` only when not even that bookkeeping succeeded.
async fn attest_or_reschedule(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
) -> bool {
    let Err(e) = attest_one(c2ec, settings, row).await else {
        return true;
    };
    tracing::error!(wopid = %row.wopid, error = %e, "attestation attempt failed");
    match retry(c2ec, settings, row, &format!("attestation failed: {e}")).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(wopid = %row.wopid, error = %e, "could not reschedule attestation");
            false
        }
    }
}

async fn attest_one(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
) -> Result<(), C2ecError> {
    let Some(tx_id) = row.provider_tx_id.as_deref() else {
        return Ok(());
    };
    let Some(charge) = row.charge() else {
        // No amount, or amount plus fees beyond the largest amount: no card payment can ever
        // match, so waiting is pointless. Abort now; the refund worker returns whatever was
        // captured for this operation.
        abort(
            c2ec,
            row,
            "the operation has no chargeable amount (amount plus card fees out of range)",
            None,
            true,
        )
        .await?;
        return Ok(());
    };
    c2ec.metrics.attestation_attempts.inc();
    let wopid = row.wopid.to_string();
    let verdict = match c2ec.provider.get_transaction(tx_id).await {
        Ok(ptx) => {
            let v = attest::judge(
                &ptx,
                &Expectation {
                    wopid: &wopid,
                    charge: &charge,
                },
            );
            Ok((v, ptx.raw.to_string()))
        }
        Err(e) => Err(e),
    };
    let now = now_micros();
    match verdict {
        Ok((Verdict::Confirm, evidence)) => {
            let mut tx = c2ec.store.begin().await?;
            let debit = c2ec.provider.format_payto(tx_id);
            if c2ec
                .store
                .confirm(&mut tx, row, &debit, &evidence, now)
                .await?
                .is_some()
            {
                tx.commit().await?;
                c2ec.metrics.finished("confirmed");
                tracing::info!(%wopid, tx_id, "withdrawal confirmed");
            } else {
                tx.rollback().await?;
            }
        }
        Ok((Verdict::NotYetFinal, _)) => {
            retry(c2ec, settings, row, "card payment not final yet").await?
        }
        Ok((Verdict::Reject { rejection, refund }, evidence)) => {
            abort(c2ec, row, &rejection.reason(), Some(&evidence), refund).await?;
        }
        Err(ProviderError::NotFound) => {
            abort(
                c2ec,
                row,
                &Rejection::UnknownTransaction.reason(),
                None,
                false,
            )
            .await?;
        }
        Err(e) => {
            if !e.is_transient() {
                tracing::error!(%wopid, error = %e, "card provider refused attestation");
            }
            retry(c2ec, settings, row, &format!("{e}")).await?;
        }
    }
    Ok(())
}

/// Aborts the operation; the database marks the bound card transaction for refund (the refund
/// worker re-reads it and returns only money captured for this operation). `refund` only says
/// whether the verdict expects captured money, for the log.
async fn abort(
    c2ec: &C2ec,
    row: &WithdrawalRow,
    reason: &str,
    evidence: Option<&str>,
    refund: bool,
) -> Result<(), C2ecError> {
    let mut tx = c2ec.store.begin().await?;
    if c2ec
        .store
        .abort(
            &mut tx,
            row,
            Status::Selected,
            "attestation",
            reason,
            evidence,
            false,
            now_micros(),
        )
        .await?
    {
        tx.commit().await?;
        c2ec.metrics.finished("aborted");
        tracing::info!(wopid = %row.wopid, reason, refund, "withdrawal aborted by attestation");
    } else {
        tx.rollback().await?;
    }
    Ok(())
}

async fn retry(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
    why: &str,
) -> Result<(), C2ecError> {
    c2ec.metrics.attestation_retries.inc();
    let attempts = row.attempts + 1;
    if attempts > i64::from(settings.max_retries) {
        // Money may have been captured meanwhile: the refund worker re-reads the transaction
        // and refunds only a captured payment bound to this operation.
        return abort(
            c2ec,
            row,
            &format!("attestation retries exhausted ({why})"),
            None,
            true,
        )
        .await;
    }
    let delay = attest::backoff(
        settings.retry_delay,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        settings.max_delay,
    );
    let now = now_micros();
    let mut tx = c2ec.store.begin().await?;
    c2ec.store
        .reschedule_attestation(
            &mut tx,
            row,
            attempts,
            now.saturating_add(micros(delay)),
            &format!("attempt {attempts}: {why}"),
            now,
        )
        .await?;
    tx.commit().await?;
    Ok(())
}
