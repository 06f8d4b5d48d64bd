//! Settlement. The aggregator sums, per merchant account, the deposits whose wire deadline
//! passed (minus refunds and deposit fees), subtracts the wire fee and records ONE wire
//! transfer with a fresh WTID, marking the deposits in the same transaction. The transfer
//! worker then asks the paying account's Wire Gateway to execute each recorded transfer, with
//! a `request_uid` derived from the WTID: a retry after a crash (or a lost answer) is the same
//! request to the gateway, which executes it once. Failures back off per transfer.

use std::time::Duration;

use cardcash_api::wire_gateway::TransferRequest;
use cardcash_client::WireGatewayClient;
use cardcash_http::worker::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::{ShortHashCode, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::db::{NewWireOut, TOPIC_DEPOSIT, TOPIC_WIRE_OUT};
use crate::error::ExchangeError;
use crate::service::Exchange;

/// Aggregates per step at most.
const BATCH: u32 = 100;

/// Runs the aggregator until `stop` fires.
pub async fn run_aggregator(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_DEPOSIT);
    let idle = exchange
        .config()
        .aggregator_idle
        .to_duration()
        .unwrap_or(Duration::from_secs(60));
    WorkerRunner::new("aggregator")
        .metrics(metrics)
        .idle(idle)
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || aggregate(exchange.clone()),
        )
        .await;
}

/// One aggregation pass; returns when to look again (the next wire deadline).
pub async fn aggregate(exchange: Exchange) -> Result<Step, ExchangeError> {
    let config = exchange.config();
    let Some(account) = config
        .accounts
        .iter()
        .find(|a| a.enable_debit && a.gateway.is_some())
    else {
        return Ok(Step::Idle);
    };
    let now = Timestamp::now();
    let snapshot = exchange.keys();
    let store = exchange.store();
    let mut skipped = false;
    for aggregate in store.due_aggregates(crate::db::now(), BATCH).await? {
        let method = match aggregate.merchant_payto.parse::<cardcash_util::PaytoUri>() {
            Ok(p) => p.target_type().to_owned(),
            Err(e) => {
                tracing::error!(payto = %aggregate.merchant_payto, error = %e, "stored merchant account does not parse");
                skipped = true;
                continue;
            }
        };
        // Nothing to wire: settle it whatever the fee (no fee may be published yet).
        let fee = match snapshot.wire_fee(&method, now) {
            Some(fee) => fee.wire_fee,
            None if aggregate.total.is_zero() => {
                cardcash_util::Amount::zero(&aggregate.total.currency().clone())
            }
            None => {
                tracing::warn!(%method, "no wire fee for this method now: deposits wait for the offline key to set one");
                skipped = true;
                continue;
            }
        };
        let wtid = ShortHashCode::from_bytes(
            cardcash_crypto::random_bytes::<32>()
                .map_err(|e| ExchangeError::Internal(format!("no randomness: {e}")))?,
        );
        let request_uid = cardcash_crypto::sha512(wtid.as_bytes());
        let recorded = store
            .record_wire_out(NewWireOut {
                aggregate,
                wtid,
                request_uid,
                account_section: account.section.clone(),
                wire_fee: fee,
                now: crate::db::now(),
            })
            .await?;
        if let Some(row) = recorded {
            exchange.metrics().wire_transfers.inc();
            tracing::info!(wtid = %row.wtid, amount = %row.amount, merchant = %row.merchant_payto, "aggregated deposits into a wire transfer");
        }
    }
    // Every aggregate handed to record_wire_out is wired, settled or marked waiting: when the
    // next deadline is already past and nothing was skipped, the page was full — go on at once.
    Ok(match store.next_wire_deadline().await? {
        Some(next) if next > crate::db::now() => Step::After(
            next.saturating_sub(crate::db::now())
                .to_duration()
                .unwrap_or(Duration::from_secs(60)),
        ),
        Some(_) if !skipped => Step::After(Duration::ZERO),
        _ => Step::Idle,
    })
}

/// Runs the transfer worker until `stop` fires.
pub async fn run_transfers(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_WIRE_OUT);
    WorkerRunner::new("transfer")
        .metrics(metrics)
        .idle(Duration::from_secs(60))
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || transfer(exchange.clone()),
        )
        .await;
}

/// One pass over the recorded transfers that are due for an attempt.
pub async fn transfer(exchange: Exchange) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let backoff = Backoff::default();
    let pending = store.pending_wire_outs(crate::db::now(), 50).await?;
    let mut next: Option<Duration> = None;
    for row in pending {
        let Some(account) = exchange
            .config()
            .accounts
            .iter()
            .find(|a| a.section == row.account_section)
        else {
            tracing::error!(account = %row.account_section, "a recorded transfer names an account that is no longer configured");
            continue;
        };
        let Some(client): Option<WireGatewayClient> = super::wirewatch::gateway_client(account)?
        else {
            continue;
        };
        let credit_account = row
            .merchant_payto
            .parse()
            .map_err(|e| ExchangeError::Internal(format!("stored payto: {e}")))?;
        let request = TransferRequest {
            request_uid: row.request_uid,
            amount: row.amount,
            exchange_base_url: exchange.base_url().clone(),
            wtid: row.wtid,
            credit_account,
        };
        match client.transfer(&request).await {
            Ok(answer) => {
                store.wire_out_done(row.serial, answer.row_id).await?;
                tracing::info!(wtid = %row.wtid, gateway_row = answer.row_id, "wire transfer executed");
            }
            Err(e) => {
                let delay = backoff.delay(row.failures.saturating_add(1));
                tracing::warn!(wtid = %row.wtid, error = %e, retry_in_ms = delay.as_millis() as u64, "wire transfer failed");
                let at = crate::db::now()
                    .saturating_add(cardcash_util::RelativeTime::from_duration(delay));
                store.wire_out_failed(row.serial, at).await?;
                next = Some(next.map_or(delay, |n| n.min(delay)));
            }
        }
    }
    Ok(next.map_or(Step::Idle, Step::After))
}
