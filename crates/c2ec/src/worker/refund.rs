//! The refund worker: sends money back to cards.
//!
//! Three sources: transfers the exchange asked for (`POST /transfer` to a card-transaction
//! payto, e.g. a closed reserve); aborted operations with a card transaction bound to them,
//! whatever the order of events (amount mismatch, abort by terminal or wallet before or after
//! `/check`, expiry before `/check`, attestation given up); and further card transactions a
//! terminal reported for an operation that already had one. The rule: a card payment that
//! does not become a confirmed withdrawal goes back to the card, in full, once. Every refund
//! carries an idempotency key derived from the transfer, the WOPID or the transaction id, so a
//! retry after a lost answer cannot refund twice. Wakes on the `refund` notification and on
//! its retry timer; failures back off exponentially.

use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::{Amount, RelativeTime, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::attest::backoff;
use crate::db::TOPIC_REFUND;
use crate::db::transfer::{RefundSettlement, TransferRow, TransferSettlement, TransferStatus};
use crate::db::withdrawal::{ExtraPaymentRow, RefundState, WithdrawalRow};
use crate::error::C2ecError;
use crate::provider::{ProviderError, ProviderTxState};
use crate::service::C2ec;
use crate::state::Status;

#[derive(Debug, Clone, Copy)]
pub struct RefundSettings {
    pub retry_delay: Duration,
    pub max_delay: Duration,
}

const IDLE: Duration = Duration::from_secs(60);
/// Rows of each kind handled per round.
const BATCH: u32 = 64;

pub async fn run(
    c2ec: C2ec,
    settings: RefundSettings,
    metrics: WorkerMetrics,
    stop: CancellationToken,
) {
    // Subscribe before the first round, so a refund queued meanwhile wakes the next wait.
    let queued = c2ec.store.notifier().subscribe_topic(TOPIC_REFUND);
    WorkerRunner::new("refund")
        .idle(IDLE)
        .metrics(metrics)
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
    let work = c2ec.store.refund_work(crate::db::now(), BATCH).await?;
    let full =
        [work.transfers.len(), work.refunds.len(), work.extras.len()].contains(&(BATCH as usize));
    let mut unhandled = 0;
    for t in &work.transfers {
        if let Err(e) = transfer_one(c2ec, s, t).await {
            tracing::error!(row_id = t.row_id, error = %e, "transfer refund failed");
            unhandled += 1;
        }
    }
    for w in &work.refunds {
        if let Err(e) = own_refund(c2ec, s, w).await {
            tracing::error!(wopid = %w.wopid, error = %e, "card refund failed");
            unhandled += 1;
        }
    }
    for x in &work.extras {
        if let Err(e) = extra_refund(c2ec, s, x).await {
            tracing::error!(wopid = %x.wopid, error = %e, "card refund failed");
            unhandled += 1;
        }
    }
    if full {
        // More is due right now.
        return Ok((Duration::ZERO, unhandled));
    }
    let sleep = match c2ec.store.next_refund_at().await? {
        Some(t) => t
            .saturating_sub(crate::db::now())
            .to_duration()
            .unwrap_or(IDLE)
            .min(IDLE),
        None => IDLE,
    };
    Ok((sleep, unhandled))
}

fn next_at(s: &RefundSettings, attempts: u32) -> Timestamp {
    let d = backoff(s.retry_delay, attempts.saturating_add(1), s.max_delay);
    crate::db::now().saturating_add(RelativeTime::from_duration(d))
}

async fn transfer_one(c2ec: &C2ec, s: &RefundSettings, t: &TransferRow) -> Result<(), C2ecError> {
    let failed = |note: &str| TransferSettlement {
        status: TransferStatus::Failed,
        refund_id: None,
        failure: Some(note.to_owned()),
        next: None,
    };
    let Some(tx_id) = t.target_tx_id.as_deref() else {
        return settle_transfer(c2ec, t, failed("not a card transaction")).await;
    };
    // Never more than the reserve was credited with, minus what went back already.
    let (credited, done) = c2ec.store.refund_room(tx_id, t.row_id).await?;
    let Some(credited) = credited else {
        c2ec.metrics.refund("failed");
        return settle_transfer(
            c2ec,
            t,
            failed("no confirmed withdrawal for this card transaction"),
        )
        .await;
    };
    let left = credited
        .checked_sub(&done)
        .unwrap_or_else(|_| Amount::zero(c2ec.store.currency()));
    if t.amount > left {
        c2ec.metrics.refund("failed");
        tracing::warn!(row_id = t.row_id, "transfer exceeds what the card paid in");
        return settle_transfer(c2ec, t, failed("amount exceeds the original card payment")).await;
    }
    let key = format!(
        "t-{}",
        cardcash_util::base32::encode(
            cardcash_crypto::hash::sha512_short(t.request_uid.as_bytes()).as_bytes()
        )
    );
    let settlement = match c2ec.provider.refund(tx_id, &t.amount, &key).await {
        Ok(r) => {
            c2ec.metrics.refund("refunded");
            tracing::info!(row_id = t.row_id, tx_id, refund = %r.id, "transfer refunded to card");
            TransferSettlement {
                status: TransferStatus::Refunded,
                refund_id: Some(r.id),
                failure: None,
                next: None,
            }
        }
        Err(e) if e.is_transient() => TransferSettlement {
            status: TransferStatus::Pending,
            refund_id: None,
            failure: Some(e.to_string()),
            next: Some(next_at(s, t.attempts)),
        },
        Err(e) => {
            c2ec.metrics.refund("failed");
            tracing::error!(row_id = t.row_id, error = %e, "card refund refused");
            failed(&e.to_string())
        }
    };
    settle_transfer(c2ec, t, settlement).await
}

async fn settle_transfer(
    c2ec: &C2ec,
    t: &TransferRow,
    settlement: TransferSettlement,
) -> Result<(), C2ecError> {
    c2ec.store
        .settle_transfer(t.row_id, settlement, crate::db::now())
        .await?;
    Ok(())
}

fn settled(state: RefundState, note: impl Into<String>) -> RefundSettlement {
    RefundSettlement {
        state,
        refund_id: None,
        next: None,
        note: note.into(),
    }
}

fn retry_later(s: &RefundSettings, attempts: u32, note: impl Into<String>) -> RefundSettlement {
    RefundSettlement {
        state: RefundState::Due,
        refund_id: None,
        next: Some(next_at(s, attempts)),
        note: note.into(),
    }
}

/// Returns the full captured amount of card transaction `tx_id` if, and only if, the provider
/// says it was captured for operation `wopid` and it did not fund a confirmed withdrawal. The
/// provider executes one refund per `key`, so a retry after a lost answer refunds nothing more.
async fn refund_captured(
    c2ec: &C2ec,
    s: &RefundSettings,
    tx_id: &str,
    wopid: &str,
    key: &str,
    attempts: u32,
) -> Result<RefundSettlement, C2ecError> {
    if c2ec.store.incoming_for_tx(tx_id).await?.is_some() {
        return Ok(settled(
            RefundState::NotNeeded,
            "the transaction funded a confirmed withdrawal",
        ));
    }
    let ptx = match c2ec.provider.get_transaction(tx_id).await {
        Ok(ptx) => ptx,
        Err(ProviderError::NotFound) => {
            return Ok(settled(RefundState::NotNeeded, "card transaction unknown"));
        }
        Err(e) => return Ok(retry_later(s, attempts, format!("refund retry: {e}"))),
    };
    match ptx.state {
        ProviderTxState::Success if ptx.merchant_reference.as_deref() == Some(wopid) => {
            match c2ec.provider.refund(tx_id, &ptx.amount, key).await {
                Ok(r) => {
                    c2ec.metrics.refund("refunded");
                    tracing::info!(%wopid, tx_id, refund = %r.id, "card payment refunded");
                    Ok(RefundSettlement {
                        state: RefundState::Done,
                        refund_id: Some(r.id),
                        next: None,
                        note: format!("refunded {} to the card", ptx.amount),
                    })
                }
                Err(e) if e.is_transient() => {
                    Ok(retry_later(s, attempts, format!("refund retry: {e}")))
                }
                Err(e) => {
                    c2ec.metrics.refund("failed");
                    tracing::error!(%wopid, tx_id, error = %e, "card refund refused; operator action needed");
                    Ok(settled(
                        RefundState::NotNeeded,
                        format!("refund refused: {e}"),
                    ))
                }
            }
        }
        ProviderTxState::Pending => Ok(retry_later(s, attempts, "payment not final; refund later")),
        _ => Ok(settled(
            RefundState::NotNeeded,
            "no captured payment for this operation",
        )),
    }
}

/// The refund of an aborted operation's own card transaction (key `w-<WOPID>`).
async fn own_refund(c2ec: &C2ec, s: &RefundSettings, w: &WithdrawalRow) -> Result<(), C2ecError> {
    let outcome = match w.provider_tx_id.as_deref() {
        None => settled(RefundState::NotNeeded, "no card transaction"),
        // Defence in depth: the state machine never lets a confirmed operation be aborted.
        Some(_) if w.status == Status::Confirmed => {
            settled(RefundState::NotNeeded, "the withdrawal is confirmed")
        }
        Some(tx_id) => {
            let wopid = w.wopid.to_string();
            let key = format!("w-{wopid}");
            refund_captured(c2ec, s, tx_id, &wopid, &key, w.refund_attempts).await?
        }
    };
    c2ec.store
        .settle_refund(w.withdrawal_id, outcome, crate::db::now())
        .await?;
    Ok(())
}

/// The refund of a further card transaction reported for an operation that already had one
/// (key derived from the transaction id, so each such payment is refunded at most once).
async fn extra_refund(
    c2ec: &C2ec,
    s: &RefundSettings,
    e: &ExtraPaymentRow,
) -> Result<(), C2ecError> {
    let wopid = e.wopid.to_string();
    let key = format!(
        "x-{}",
        cardcash_util::base32::encode(
            cardcash_crypto::hash::sha512_short(e.provider_tx_id.as_bytes()).as_bytes()
        )
    );
    let outcome =
        refund_captured(c2ec, s, &e.provider_tx_id, &wopid, &key, e.refund_attempts).await?;
    c2ec.store
        .settle_extra_refund(e, outcome, crate::db::now())
        .await?;
    Ok(())
}
