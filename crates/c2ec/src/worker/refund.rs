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

use cardcash_http::{Backoff, Step, WorkerRunner};
use cardcash_util::Amount;
use tokio_util::sync::CancellationToken;

use crate::attest::backoff;
use crate::db::transfer::TransferRow;
use crate::db::withdrawal::{ExtraPaymentRow, WithdrawalRow};
use crate::db::{TOPIC_REFUND, micros, now_micros};
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
    for x in c2ec.store.due_extra_refunds(now, 64).await? {
        if let Err(e) = extra_refund(c2ec, s, &x).await {
            tracing::error!(wopid = %x.wopid, error = %e, "card refund failed");
            unhandled += 1;
        }
    }
    let next = match (
        c2ec.store.next_refund_at().await?,
        c2ec.store.next_extra_refund_at().await?,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let sleep = match next {
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

/// What became of one attempt to return a card payment, to be written back to its row.
struct Settlement {
    /// `done`, `not_needed` or `due` (retry at `next`).
    state: &'static str,
    refund_id: Option<String>,
    next: Option<i64>,
    note: String,
}

impl Settlement {
    fn final_(state: &'static str, note: impl Into<String>) -> Self {
        Self {
            state,
            refund_id: None,
            next: None,
            note: note.into(),
        }
    }

    fn retry(s: &RefundSettings, attempts: i64, note: impl Into<String>) -> Self {
        Self {
            state: "due",
            refund_id: None,
            next: Some(next_at(s, attempts)),
            note: note.into(),
        }
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
    attempts: i64,
) -> Result<Settlement, C2ecError> {
    if c2ec.store.incoming_for_tx(tx_id).await?.is_some() {
        return Ok(Settlement::final_(
            "not_needed",
            "the transaction funded a confirmed withdrawal",
        ));
    }
    let ptx = match c2ec.provider.get_transaction(tx_id).await {
        Ok(ptx) => ptx,
        Err(ProviderError::NotFound) => {
            return Ok(Settlement::final_("not_needed", "card transaction unknown"));
        }
        Err(e) => return Ok(Settlement::retry(s, attempts, format!("refund retry: {e}"))),
    };
    match ptx.state {
        ProviderTxState::Success if ptx.merchant_reference.as_deref() == Some(wopid) => {
            match c2ec.provider.refund(tx_id, &ptx.amount, key).await {
                Ok(r) => {
                    c2ec.metrics.refund("refunded");
                    tracing::info!(%wopid, tx_id, refund = %r.id, "card payment refunded");
                    Ok(Settlement {
                        state: "done",
                        refund_id: Some(r.id),
                        next: None,
                        note: format!("refunded {} to the card", ptx.amount),
                    })
                }
                Err(e) if e.is_transient() => {
                    Ok(Settlement::retry(s, attempts, format!("refund retry: {e}")))
                }
                Err(e) => {
                    c2ec.metrics.refund("failed");
                    tracing::error!(%wopid, tx_id, error = %e, "card refund refused; operator action needed");
                    Ok(Settlement::final_(
                        "not_needed",
                        format!("refund refused: {e}"),
                    ))
                }
            }
        }
        ProviderTxState::Pending => Ok(Settlement::retry(
            s,
            attempts,
            "payment not final; refund later",
        )),
        _ => Ok(Settlement::final_(
            "not_needed",
            "no captured payment for this operation",
        )),
    }
}

/// The refund of an aborted operation's own card transaction (key `w-<WOPID>`).
async fn own_refund(c2ec: &C2ec, s: &RefundSettings, w: &WithdrawalRow) -> Result<(), C2ecError> {
    let outcome = match w.provider_tx_id.as_deref() {
        None => Settlement::final_("not_needed", "no card transaction"),
        // Defence in depth: the state machine never lets a confirmed operation be aborted.
        Some(_) if w.status == Status::Confirmed => {
            Settlement::final_("not_needed", "the withdrawal is confirmed")
        }
        Some(tx_id) => {
            let wopid = w.wopid.to_string();
            let key = format!("w-{wopid}");
            refund_captured(c2ec, s, tx_id, &wopid, &key, w.refund_attempts).await?
        }
    };
    let mut tx = c2ec.store.begin().await?;
    c2ec.store
        .set_refund_state(
            &mut tx,
            w,
            outcome.state,
            outcome.refund_id.as_deref(),
            outcome.next,
            &outcome.note,
            now_micros(),
        )
        .await?;
    tx.commit().await?;
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
    let mut tx = c2ec.store.begin().await?;
    c2ec.store
        .set_extra_refund_state(
            &mut tx,
            e,
            outcome.state,
            outcome.refund_id.as_deref(),
            outcome.next,
            &outcome.note,
            now_micros(),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}
