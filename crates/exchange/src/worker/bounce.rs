//! Bounces: sends back the incoming transfers that fund no reserve (KYC-authentication and wad
//! transfers, which this exchange does not support; amounts in another currency), through the
//! Wire Gateway `POST /transfer` of the account that received them, to the account that sent
//! them (a bank account; at C2EC the card transaction, which C2EC refunds to the card). This is
//! not a merchant payout: the receiving account needs a gateway, not `ENABLE_DEBIT`.
//!
//! wirewatch records each such transfer in the transaction of its page, with the `request_uid`
//! and WTID of its transfer back derived from (account, gateway row). Before the first attempt
//! this worker decides, once, what the exchange keeps (the closing fee of the account's wire
//! method now, at most the amount: the C exchange charges the closing fee when it returns
//! money) and what goes back, with the base URL the transfer names; when nothing is left, the
//! transfer is kept whole and nothing is sent. Every attempt is then the same request, so a
//! retry after a crash between the gateway's answer and its recording (or by another exchange
//! process on the same database) is executed by the gateway once. Failures back off per
//! transfer; the worker wakes on wirewatch's notification and on a timer.
//!
//! Never sends a transfer that was not decided first, and never changes a decided one.

use std::collections::HashMap;
use std::time::Duration;

use cardcash_api::wire_gateway::TransferRequest;
use cardcash_client::WireGatewayClient;
use cardcash_http::worker::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::{BaseUrl, PaytoUri, RelativeTime, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::db::{BounceRow, TOPIC_BOUNCE};
use crate::error::ExchangeError;
use crate::service::Exchange;

/// Bounces per step at most.
const BATCH: u32 = 50;

/// Runs the bounce worker until `stop` fires.
pub async fn run(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_BOUNCE);
    WorkerRunner::new("bounce")
        .metrics(metrics)
        .idle(Duration::from_secs(60))
        .run(
            stop,
            subscription,
            |s, d| Box::pin(s.wait(d)),
            || step(exchange.clone()),
        )
        .await;
}

/// What became of one bounce in a step.
enum Attempt {
    /// Sent back, or kept whole: done.
    Done,
    /// Decided by someone else meanwhile: look again at once.
    Again,
    /// Not possible now (failed, or missing configuration): back off.
    Later,
}

/// One pass over the bounces due for an attempt.
pub async fn step(exchange: Exchange) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let backoff = Backoff::default();
    let pending = store.pending_bounces(crate::db::now(), BATCH).await?;
    let full = pending.len() >= BATCH as usize;
    let mut clients = HashMap::new();
    let mut again = false;
    for row in pending {
        let (serial, failures) = (row.serial, row.failures);
        match attempt(&exchange, &mut clients, row).await? {
            Attempt::Done => {}
            Attempt::Again => again = true,
            Attempt::Later => {
                let delay = backoff.delay(failures.saturating_add(1));
                let at = crate::db::now().saturating_add(RelativeTime::from_duration(delay));
                store.bounce_failed(serial, at).await?;
            }
        }
    }
    // A full page: the rest is due now (those that failed were moved to later).
    if full || again {
        return Ok(Step::After(Duration::ZERO));
    }
    // Wake for the earliest retry, also one a previous process scheduled.
    let now = crate::db::now();
    Ok(match store.next_bounce_attempt().await? {
        Some(at) => Step::After(
            at.saturating_sub(now)
                .to_duration()
                .unwrap_or(Duration::from_secs(60)),
        ),
        None => Step::Idle,
    })
}

/// Decides `row` if it is not yet, then sends it back.
async fn attempt(
    exchange: &Exchange,
    clients: &mut HashMap<String, Option<WireGatewayClient>>,
    row: BounceRow,
) -> Result<Attempt, ExchangeError> {
    let Some(account) = exchange
        .config()
        .accounts
        .iter()
        .find(|a| a.section == row.account_section)
    else {
        tracing::error!(account = %row.account_section, wire_reference = row.wire_reference, "a bounced transfer names an account that is no longer configured: it cannot be sent back");
        return Ok(Attempt::Later);
    };
    let row = if row.decision.is_some() {
        row
    } else {
        let method = account.payto.target_type();
        let Some(fee) = exchange.keys().wire_fee(method, Timestamp::now()).cloned() else {
            tracing::warn!(%method, account = %row.account_section, "no closing fee for this method now: bounced transfers wait for the offline key to set one");
            return Ok(Attempt::Later);
        };
        let decided = exchange
            .store()
            .decide_bounce(row.serial, fee.closing_fee, exchange.base_url().to_string())
            .await?;
        match decided {
            Some(decided) => decided,
            None => return Ok(Attempt::Again),
        }
    };
    let Some(decision) = &row.decision else {
        return Err(ExchangeError::Internal(
            "a decided bounce came back undecided".into(),
        ));
    };
    if row.done {
        if row.amount.is_zero() {
            // A transfer in another currency is recorded with a zero amount of ours (its
            // amount in its subject): nothing this exchange can send back.
            tracing::error!(account = %row.account_section, wire_reference = row.wire_reference, subject = %row.subject, debit_account = %row.debit_payto, "a bounced transfer cannot be sent back automatically: return it by hand");
        } else {
            tracing::info!(account = %row.account_section, wire_reference = row.wire_reference, amount = %row.amount, closing_fee = %decision.closing_fee, "bounced transfer kept: nothing left after the closing fee");
        }
        return Ok(Attempt::Done);
    }
    let client = match clients.get(&row.account_section) {
        Some(client) => client.clone(),
        None => {
            let client = super::wirewatch::gateway_client(account)?;
            clients.insert(row.account_section.clone(), client.clone());
            client
        }
    };
    let Some(client) = client else {
        tracing::error!(account = %row.account_section, "the account has no Wire Gateway credentials: bounced transfers cannot be sent back");
        return Ok(Attempt::Later);
    };
    let credit_account: PaytoUri = match row.debit_payto.parse() {
        Ok(payto) => payto,
        Err(e) => {
            tracing::error!(account = %row.account_section, wire_reference = row.wire_reference, payto = %row.debit_payto, error = %e, "the sender of a bounced transfer is no payto URI: it cannot be sent back");
            return Ok(Attempt::Later);
        }
    };
    let exchange_base_url = BaseUrl::parse(&decision.exchange_base_url).map_err(|e| {
        ExchangeError::Internal(format!(
            "stored base URL {:?}: {e}",
            decision.exchange_base_url
        ))
    })?;
    let request = TransferRequest {
        request_uid: row.request_uid,
        amount: decision.returned,
        exchange_base_url,
        wtid: row.wtid,
        credit_account,
    };
    match client.transfer(&request).await {
        Ok(answer) => {
            exchange
                .store()
                .bounce_done(row.serial, answer.row_id)
                .await?;
            tracing::info!(account = %row.account_section, wire_reference = row.wire_reference, returned = %decision.returned, closing_fee = %decision.closing_fee, to = %row.debit_payto, gateway_row = answer.row_id, "bounced transfer sent back");
            Ok(Attempt::Done)
        }
        Err(e) => {
            tracing::warn!(account = %row.account_section, wire_reference = row.wire_reference, error = %e, failures = row.failures.saturating_add(1), "sending back a bounced transfer failed");
            Ok(Attempt::Later)
        }
    }
}
