//! The attestation worker: asks the card provider about each reported card transaction and
//! moves `selected → confirmed` (with the incoming-history row, in one transaction) or
//! `selected → aborted`.
//!
//! It wakes on the `attest` notification (a terminal's `/check`) and on its own timer for
//! retries; it never polls the database in a loop. Each round claims the due operations with
//! one statement (on PostgreSQL `FOR UPDATE SKIP LOCKED`, and a lease: a claimed operation is
//! not due again before [`CLAIM_LEASE`] has passed, so several C2EC instances never attest the
//! same operation at once, and one that dies mid-attestation leaves it to the others after the
//! lease); the same statement tells when the next attempt falls due. Provider outages,
//! not-yet-final payments and attempts that fail inside C2EC are retried with exponential
//! backoff until `ATTESTATION_MAX_RETRIES`, then the operation is aborted and any captured
//! money is handed to the refund worker; an operation that can never match a payment (no
//! chargeable amount) is aborted at once. Rounds run on the shared `cardcash_http::WorkerRunner`,
//! which backs off when a round fails, so no failure turns into a hot loop.

use std::sync::Mutex;
use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::{RelativeTime, Timestamp};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::attest::{self, Expectation, Rejection, Verdict};
use crate::db::TOPIC_ATTEST;
use crate::db::withdrawal::{AbortOutcome, AbortRequest, WithdrawalRow};
use crate::error::C2ecError;
use crate::provider::ProviderError;
use crate::service::C2ec;

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
/// Operations claimed per statement.
const BATCH: u32 = 256;
/// How long a claimed operation belongs to the worker that claimed it (longer than a provider
/// request may take, see `cardcash_client`'s timeouts).
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

pub async fn run(
    c2ec: C2ec,
    settings: AttestationSettings,
    metrics: WorkerMetrics,
    stop: CancellationToken,
) {
    // Subscribe before the first round, so a check committed meanwhile wakes the next wait.
    let checks = c2ec.store.notifier().subscribe_topic(TOPIC_ATTEST);
    // A failed round (database unreachable, or operations that could not even be rescheduled)
    // is followed by an exponentially growing pause, never by an immediate retry.
    WorkerRunner::new("attestation")
        .idle(IDLE)
        .metrics(metrics)
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

/// What one round learnt: operations it could not handle, and the earliest retry it scheduled.
#[derive(Default)]
struct Round {
    unhandled: usize,
    earliest_retry: Option<Timestamp>,
}

impl Round {
    fn retry_at(&mut self, at: Timestamp) {
        self.earliest_retry = Some(self.earliest_retry.map_or(at, |t| t.min(at)));
    }
}

/// Attests everything due; then waits until the next scheduled attempt. Fails when operations
/// were left unhandled, so that the runner backs off instead of claiming them again at once.
async fn run_due(c2ec: &C2ec, settings: &AttestationSettings) -> Result<Step, C2ecError> {
    let round = Mutex::new(Round::default());
    let mut next_due;
    loop {
        let now = crate::db::now();
        let claimed = c2ec
            .store
            .claim_attestations(
                now,
                BATCH,
                now.saturating_add(RelativeTime::from_duration(CLAIM_LEASE)),
            )
            .await?;
        next_due = claimed.next_due;
        let n = claimed.rows.len();
        futures_util::stream::iter(claimed.rows)
            .for_each_concurrent(settings.concurrency, |row| {
                let round = &round;
                async move { attest_or_reschedule(c2ec, settings, &row, round).await }
            })
            .await;
        // A full batch: more may be due right now.
        if n < BATCH as usize || lock(&round).unhandled > 0 {
            break;
        }
    }
    let round = round
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if round.unhandled > 0 {
        return Err(C2ecError::Internal(format!(
            "{} operations could be neither attested nor rescheduled",
            round.unhandled
        )));
    }
    let next = match (next_due, round.earliest_retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(match next {
        Some(t) => Step::After(
            t.saturating_sub(crate::db::now())
                .to_duration()
                .unwrap_or(IDLE),
        ),
        None => Step::Idle,
    })
}

fn lock(round: &Mutex<Round>) -> std::sync::MutexGuard<'_, Round> {
    round
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One attempt at one operation. A failure of the attempt itself (a database error while
/// confirming, say) counts as a failed attempt: the operation is rescheduled with backoff and,
/// once the retries are exhausted, aborted with its captured money refunded, exactly as when
/// the provider stays unreachable. Counted as unhandled only when not even that bookkeeping
/// succeeded (the claim's lease then makes it due again later).
async fn attest_or_reschedule(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
    round: &Mutex<Round>,
) {
    let failed = match attest_one(c2ec, settings, row).await {
        Ok(None) => return,
        Ok(Some(retry_at)) => {
            lock(round).retry_at(retry_at);
            return;
        }
        Err(e) => e,
    };
    tracing::error!(wopid = %row.wopid, error = %failed, "attestation attempt failed");
    match retry(
        c2ec,
        settings,
        row,
        &format!("attestation failed: {failed}"),
    )
    .await
    {
        Ok(Some(retry_at)) => lock(round).retry_at(retry_at),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(wopid = %row.wopid, error = %e, "could not reschedule attestation");
            lock(round).unhandled += 1;
        }
    }
}

/// Attests one operation; `Some(t)` when it was rescheduled to `t`.
async fn attest_one(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
) -> Result<Option<Timestamp>, C2ecError> {
    let Some(tx_id) = row.provider_tx_id.as_deref() else {
        return Ok(None);
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
        return Ok(None);
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
    match verdict {
        Ok((Verdict::Confirm, evidence)) => {
            let debit = c2ec.provider.format_payto(tx_id);
            if c2ec
                .store
                .confirm(row.withdrawal_id, &debit, &evidence, crate::db::now())
                .await?
                .is_some()
            {
                c2ec.metrics.finished("confirmed");
                tracing::info!(%wopid, tx_id, "withdrawal confirmed");
            }
            Ok(None)
        }
        Ok((Verdict::NotYetFinal, _)) => {
            retry(c2ec, settings, row, "card payment not final yet").await
        }
        Ok((Verdict::Reject { rejection, refund }, evidence)) => {
            abort(c2ec, row, &rejection.reason(), Some(evidence), refund).await?;
            Ok(None)
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
            Ok(None)
        }
        Err(e) => {
            if !e.is_transient() {
                tracing::error!(%wopid, error = %e, "card provider refused attestation");
            }
            retry(c2ec, settings, row, &format!("{e}")).await
        }
    }
}

/// Aborts the operation if it is still selected; the database marks the bound card
/// transaction for refund (the refund worker re-reads it and returns only money captured for
/// this operation). `refund` only says whether the verdict expects captured money, for the log.
async fn abort(
    c2ec: &C2ec,
    row: &WithdrawalRow,
    reason: &str,
    evidence: Option<String>,
    refund: bool,
) -> Result<(), C2ecError> {
    let request = AbortRequest {
        terminal: None,
        only_selected: true,
        actor: "attestation",
        reason: reason.to_owned(),
        evidence,
    };
    if let AbortOutcome::Decided { aborted: true, .. } = c2ec
        .store
        .abort(&row.wopid, request, crate::db::now())
        .await?
    {
        c2ec.metrics.finished("aborted");
        tracing::info!(wopid = %row.wopid, reason, refund, "withdrawal aborted by attestation");
    }
    Ok(())
}

/// Schedules the next attempt with backoff (`Some(when)`), or aborts once the retries are
/// exhausted (`None`).
async fn retry(
    c2ec: &C2ec,
    settings: &AttestationSettings,
    row: &WithdrawalRow,
    why: &str,
) -> Result<Option<Timestamp>, C2ecError> {
    c2ec.metrics.attestation_retries.inc();
    let attempts = row.attempts.saturating_add(1);
    if attempts > settings.max_retries {
        // Money may have been captured meanwhile: the refund worker re-reads the transaction
        // and refunds only a captured payment bound to this operation.
        abort(
            c2ec,
            row,
            &format!("attestation retries exhausted ({why})"),
            None,
            true,
        )
        .await?;
        return Ok(None);
    }
    let delay = attest::backoff(settings.retry_delay, attempts, settings.max_delay);
    let now = crate::db::now();
    let at = now.saturating_add(RelativeTime::from_duration(delay));
    c2ec.store
        .reschedule_attestation(
            row.withdrawal_id,
            attempts,
            at,
            &format!("attempt {attempts}: {why}"),
            now,
        )
        .await?;
    Ok(Some(at))
}
