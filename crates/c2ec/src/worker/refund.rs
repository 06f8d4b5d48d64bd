//! The refund worker: sends money back to cards.
//!
//! Two sources: transfers the exchange asked for (`POST /transfer` to a card-transaction payto,
//! e.g. a closed reserve), and operations C2EC aborted after money may have been captured
//! (amount mismatch, terminal abort after `/check`, attestation given up). Every refund carries
//! an idempotency key derived from the transfer or the WOPID, so a retry after a lost answer
//! cannot refund twice. Wakes on the `refund` notification and on its retry timer; failures back
//! off exponentially.

use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerRunner};
use cardcash_util::Amount;
use tokio_util::sync::CancellationToken;

use crate::attest::backoff;
use crate::db::transfer::TransferRow;
use crate::db::withdrawal::WithdrawalRow;
use crate::db::{TOPIC_REFUND, micros, now_micros};
use crate::error::C2ecError;
use crate::provider::{ProviderError, ProviderTxState};
use crate::service::C2ec;

#[derive(Debug, Clone, Copy)]
pub struct RefundSettings {
    pub retry_delay: Duration,
    pub max_delay: Duration,
}

const IDLE: Duration = Duration::from_secs(60);

pub async fn run(c2ec: C2ec, settings: RefundSettings, stop: CancellationToken) {
    // Subscribe before the first round, so a refund queued meanwhile wakes the next wait.
    let queued = c2ec.store.db().notifier().subscribe_topic(TOPIC_REFUND);
    WorkerRunner::new("refund")
        .idle(IDLE)
        .backoff(Backoff {
            initial: settings.retry_delay,
            max: settings.max_delay,
        })
        .run(
            stop,
            queued,
            |sub, timeout| Box::pin(sub.wait(timeout)),
            || {
                let c2ec = c2ec.clone();
                async move {
                    let (sleep, unhandled) = round(&c2ec, &settings).await?;
                    if unhandled > 0 {
                        // Their rows are still due: back off instead of retrying at once.
                        return Err(C2ecError::Internal(format!(
                            "{unhandled} refunds could not be processed"
                        )));
                    }
                    Ok(Step::After(sleep))
                }
            },
        )
        .await;
}

/// One pass over everything due. A refund that fails to be processed is logged and counted;
/// the others still run (one bad row must not block the rest).
async fn round(c2ec: &C2ec, s: &RefundSettings) -> Result<(Duration, usize), C2ecError> {
    let now = now_micros();
    let mut unhandled = 0;
    for t in c2ec.store.due_transfers(now, 64).await? {
        if let Err(e) = transfer_one(c2ec, s, &t).await {
            tracing::error!(row_id = t.row_id, error = %e, "transfer refund failed");
            unhandled += 1;
        }
    }
    for w in c2ec.store.due_refunds(now, 64).await? {
        if let Err(e) = own_refund(c2ec, s, &w).await {
            tracing::error!(wopid = %w.wopid, error = %e, "card refund failed");
            unhandled += 1;
        }
    }
    let sleep = match c2ec.store.next_refund_at().await? {
        Some(t) => {
            Duration::from_micros(u64::try_from((t - now_micros()).max(0)).unwrap_or(0)).min(IDLE)
        }
        None => IDLE,
    };
    Ok((sleep, unhandled))
}

fn next_at(s: &RefundSettings, attempts: i64) -> i64 {
    let d = backoff(
        s.retry_delay,
        u32::try_from(attempts + 1).unwrap_or(u32::MAX),
        s.max_delay,
    );
    now_micros().saturating_add(micros(d))
}

async fn transfer_one(c2ec: &C2ec, s: &RefundSettings, t: &TransferRow) -> Result<(), C2ecError> {
    let Some(tx_id) = t.target_tx_id.as_deref() else {
        return settle_transfer(
            c2ec,
            t,
            "failed",
            None,
            Some("not a card transaction"),
            None,
        )
        .await;
    };
    // Never more than the reserve was credited with, minus what went back already.
    let Some(credited) = c2ec.store.incoming_for_tx(tx_id).await? else {
        c2ec.metrics.refund("failed");
        return settle_transfer(
            c2ec,
            t,
            "failed",
            None,
            Some("no confirmed withdrawal for this card transaction"),
            None,
        )
        .await;
    };
    let done = c2ec.store.refunded_by_transfers(tx_id, t.row_id).await?;
    let left = credited
        .checked_sub(&done)
        .unwrap_or_else(|_| Amount::zero(c2ec.store.currency()));
    if t.amount > left {
        c2ec.metrics.refund("failed");
        tracing::warn!(row_id = t.row_id, "transfer exceeds what the card paid in");
        return settle_transfer(
            c2ec,
            t,
            "failed",
            None,
            Some("amount exceeds the original card payment"),
            None,
        )
        .await;
    }
    let key = format!(
        "t-{}",
        cardcash_util::base32::encode(
            cardcash_crypto::hash::sha512_short(t.request_uid.as_bytes()).as_bytes()
        )
    );
    match c2ec.provider.refund(tx_id, &t.amount, &key).await {
        Ok(r) => {
            c2ec.metrics.refund("refunded");
            tracing::info!(row_id = t.row_id, tx_id, refund = %r.id, "transfer refunded to card");
            settle_transfer(c2ec, t, "refunded", Some(&r.id), None, None).await
        }
        Err(e) if e.is_transient() => {
            settle_transfer(
                c2ec,
                t,
                "pending",
                None,
                Some(&e.to_string()),
                Some(next_at(s, t.attempts)),
            )
            .await
        }
        Err(e) => {
            c2ec.metrics.refund("failed");
            tracing::error!(row_id = t.row_id, error = %e, "card refund refused");
            settle_transfer(c2ec, t, "failed", None, Some(&e.to_string()), None).await
        }
    }
}

async fn settle_transfer(
    c2ec: &C2ec,
    t: &TransferRow,
    status: &str,
    refund_id: Option<&str>,
    failure: Option<&str>,
    next: Option<i64>,
) -> Result<(), C2ecError> {
    let mut tx = c2ec.store.begin().await?;
    c2ec.store
        .set_transfer_state(&mut tx, t.row_id, status, refund_id, failure, next)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn own_refund(c2ec: &C2ec, s: &RefundSettings, w: &WithdrawalRow) -> Result<(), C2ecError> {
    let settle = |state: &'static str, id: Option<String>, next: Option<i64>, note: String| async move {
        let mut tx = c2ec.store.begin().await?;
        c2ec.store
            .set_refund_state(&mut tx, w, state, id.as_deref(), next, &note, now_micros())
            .await?;
        tx.commit().await?;
        Ok::<(), C2ecError>(())
    };
    let Some(tx_id) = w.provider_tx_id.as_deref() else {
        return settle("not_needed", None, None, "no card transaction".into()).await;
    };
    let wopid = w.wopid.to_string();
    match c2ec.provider.get_transaction(tx_id).await {
        Ok(ptx) => match ptx.state {
            ProviderTxState::Success
                if ptx.merchant_reference.as_deref() == Some(wopid.as_str()) =>
            {
                let key = format!("w-{wopid}");
                match c2ec.provider.refund(tx_id, &ptx.amount, &key).await {
                    Ok(r) => {
                        c2ec.metrics.refund("refunded");
                        tracing::info!(%wopid, tx_id, refund = %r.id, "aborted withdrawal refunded to card");
                        settle(
                            "done",
                            Some(r.id),
                            None,
                            format!("refunded {} to the card", ptx.amount),
                        )
                        .await
                    }
                    Err(e) if e.is_transient() => {
                        settle(
                            "due",
                            None,
                            Some(next_at(s, w.refund_attempts)),
                            format!("refund retry: {e}"),
                        )
                        .await
                    }
                    Err(e) => {
                        c2ec.metrics.refund("failed");
                        tracing::error!(%wopid, error = %e, "card refund refused; operator action needed");
                        settle("not_needed", None, None, format!("refund refused: {e}")).await
                    }
                }
            }
            ProviderTxState::Pending => {
                settle(
                    "due",
                    None,
                    Some(next_at(s, w.refund_attempts)),
                    "payment not final; refund later".into(),
                )
                .await
            }
            _ => {
                settle(
                    "not_needed",
                    None,
                    None,
                    "no captured payment for this operation".into(),
                )
                .await
            }
        },
        Err(ProviderError::NotFound) => {
            settle("not_needed", None, None, "card transaction unknown".into()).await
        }
        Err(e) => {
            settle(
                "due",
                None,
                Some(next_at(s, w.refund_attempts)),
                format!("refund retry: {e}"),
            )
            .await
        }
    }
}
