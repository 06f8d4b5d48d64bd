//! The attestation worker: asks the card provider about each reported card transaction and
//! moves `selected → confirmed` (with the incoming-history row, in one transaction) or
//! `selected → aborted`.
//!
//! It wakes on the `attest` notification (a terminal's `/check`) and on its own timer for
//! retries; it never polls the database in a loop. Provider outages and not-yet-final payments
//! are retried with exponential backoff until `ATTESTATION_MAX_RETRIES`, then the operation is
//! aborted and any captured money is handed to the refund worker.

use std::time::Duration;

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
    loop {
        let mut sub = c2ec.store.db().notifier().subscribe_topic(TOPIC_ATTEST);
        let sleep = match run_due(&c2ec, &settings).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "attestation round failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = sub.wait(sleep) => {}
        }
    }
}

/// Attests everything due; returns how long to sleep until the next scheduled attempt.
async fn run_due(c2ec: &C2ec, settings: &AttestationSettings) -> Result<Duration, C2ecError> {
    loop {
        let due = c2ec.store.due_attestations(now_micros(), BATCH).await?;
        let n = due.len();
        futures_util::stream::iter(due)
            .for_each_concurrent(settings.concurrency, |row| async move {
                if let Err(e) = attest_one(c2ec, settings, &row).await {
                    tracing::error!(wopid = %row.wopid, error = %e, "attestation failed");
                }
            })
            .await;
        if (n as i64) < BATCH {
            break;
        }
    }
    let next = c2ec.store.next_attestation_at().await?;
    Ok(match next {
        Some(t) => {
            let wait = t.saturating_sub(now_micros()).max(0);
            Duration::from_micros(u64::try_from(wait).unwrap_or(0)).min(IDLE)
        }
        None => IDLE,
    })
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
        return Err(C2ecError::Internal(
            "selected operation without amount".into(),
        ));
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
            refund,
            now_micros(),
        )
        .await?
    {
        tx.commit().await?;
        c2ec.metrics.finished("aborted");
        tracing::info!(wopid = %row.wopid, reason, "withdrawal aborted by attestation");
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
