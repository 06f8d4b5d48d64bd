//! The closer (the C exchange's `taler-exchange-closer`): reserves not emptied within
//! `RESERVE_CLOSING_DELAY` of their last credit are closed and their balance, minus the closing
//! fee, wired back to the account that funded them. For a card-funded reserve (C2EC) that
//! origin is a `payto://card-transaction/…` URI and the transfer becomes a refund to the card.
//!
//! Two workers, as the aggregator and its transfer worker:
//! - [`run`] decides. For each expired reserve with a balance (the earliest first) it picks the
//!   receiver (the sender of the reserve's most recent credit), the closing fee (of the
//!   receiver's wire method, in force at the reserve's expiration date, from the fees the
//!   offline key signed) and the exchange account that pays ([`sending_account`]: one with
//!   `ENABLE_DEBIT`, a Wire Gateway and the receiver's wire method, on the Wire Gateway of the
//!   account that received the money). Then ONE transaction closes the reserve (`db::closing`):
//!   it empties it and fixes the transfer back, request_uid and WTID included. When something
//!   is missing it says what ([`Unclosable`]: a log line, the `exchange_reserves_unclosable`
//!   gauge and `exchange_reserve_close_refusals` counter), leaves the reserve open and tries it
//!   again later with backoff — at once when key material changes (a fee uploaded) and when the
//!   exchange restarts (configuration changed) — and goes on with the other reserves. (GNU
//!   Taler's 2022 closer stops the whole process when it finds no account.) It sleeps until the
//!   next reserve expires, at most `RESERVE_CLOSING_DELAY`: a reserve credited after it looked
//!   expires no earlier than that, so it needs no wake-up per credit.
//! - [`run_transfers`] sends each recorded closing through the Wire Gateway of its account,
//!   every attempt the same request (the gateway executes it once), with backoff per closing;
//!   it wakes on the closer's notification.
//!
//! Never sends a transfer that was not recorded first, and never closes a reserve to anyone but
//! the sender of its most recent credit.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cardcash_api::wire_gateway::TransferRequest;
use cardcash_http::worker::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_util::{BaseUrl, PaytoUri, RelativeTime, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::config::AccountConfig;
use crate::db::closing::{CloseOutcome, ExpiredReserveRow, NewClosing};
use crate::db::{TOPIC_CLOSING, TOPIC_KEYS};
use crate::error::ExchangeError;
use crate::service::Exchange;

/// Reserves (and closings to send) per step at most.
const BATCH: u32 = 50;

/// Backoff of a reserve that cannot be closed. Missing configuration is fixed by the operator:
/// a fee upload wakes the closer at once, a configuration change comes with a restart.
const UNCLOSABLE_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(15 * 60),
};

/// Why an expired reserve cannot be closed now (what the operator must add).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unclosable {
    /// No incoming transfer is recorded for the reserve: nobody to send it back to.
    NoOrigin,
    /// The origin is no payto URI the exchange can name in a transfer.
    BadOrigin { payto: String, error: String },
    /// No account may send it: none with `ENABLE_DEBIT`, a Wire Gateway and the origin's wire
    /// method (on `gateway`, the Wire Gateway of `receiving`, when that account is configured).
    NoAccount {
        method: String,
        receiving: String,
        gateway: Option<String>,
    },
    /// The offline key set no closing fee for the method at the reserve's expiration.
    NoFee { method: String, at: Timestamp },
}

impl fmt::Display for Unclosable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOrigin => write!(
                f,
                "no incoming transfer is recorded for the reserve: there is no account to send its balance back to"
            ),
            Self::BadOrigin { payto, error } => write!(
                f,
                "the reserve's origin {payto:?} is no payto URI a transfer can name ({error})"
            ),
            Self::NoAccount {
                method,
                receiving,
                gateway: Some(url),
            } => write!(
                f,
                "no exchange account may send it back: closing a reserve funded from a {method} \
                 account needs an [exchange-account-…] section with PAYTO_URI = \
                 payto://{method}/…, ENABLE_DEBIT = YES and, in its \
                 [exchange-accountcredentials-…] section, WIRE_GATEWAY_URL = {url} (the Wire \
                 Gateway of {receiving}, which received the money)"
            ),
            Self::NoAccount {
                method,
                receiving,
                gateway: None,
            } => write!(
                f,
                "no exchange account may send it back: {receiving}, which received the money, has \
                 no Wire Gateway configured, and no [exchange-account-…] section has PAYTO_URI = \
                 payto://{method}/…, ENABLE_DEBIT = YES and a Wire Gateway"
            ),
            Self::NoFee { method, at } => write!(
                f,
                "no closing fee for wire method {method} at {at} (the reserve's expiration): the \
                 offline key must set one (`cardcash exchange offline wire-fee YEAR {method} \
                 WIRE_FEE CLOSING_FEE`, then upload)"
            ),
        }
    }
}

/// The account that sends a closing back to a receiver of wire method `method`, when the money
/// arrived at `receiving` (an account section): one with `ENABLE_DEBIT`, a Wire Gateway and
/// `method` (the C exchange: any debit account of the receiver's method), on the Wire Gateway
/// of `receiving` when that account is configured with one — where the money is (at C2EC the
/// card transaction is refunded only by C2EC's own Wire Gateway).
pub fn sending_account<'a>(
    accounts: &'a [AccountConfig],
    method: &str,
    receiving: &str,
) -> Result<&'a AccountConfig, Unclosable> {
    let gateway = accounts
        .iter()
        .find(|a| a.section == receiving)
        .and_then(|a| a.gateway.as_ref())
        .map(|g| g.url.to_string());
    accounts
        .iter()
        .filter(|a| a.enable_debit && a.payto.target_type() == method)
        .find(|a| match (&a.gateway, &gateway) {
            (None, _) => false,
            (Some(own), Some(url)) => own.url.to_string() == *url,
            (Some(_), None) => true,
        })
        .ok_or_else(|| Unclosable::NoAccount {
            method: method.to_owned(),
            receiving: receiving.to_owned(),
            gateway,
        })
}

/// Runs the closer until `stop` fires.
pub async fn run(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_KEYS);
    // Key material changed (e.g. a closing fee uploaded): retry the waiting reserves at once.
    // Set at start too: the configuration may have changed since they were tried.
    let keys_changed = Arc::new(AtomicBool::new(true));
    let flag = keys_changed.clone();
    WorkerRunner::new("closer")
        .metrics(metrics)
        .idle(Duration::from_secs(3600))
        .run(
            stop,
            subscription,
            move |s, d| {
                let flag = flag.clone();
                Box::pin(async move {
                    let notified = s.wait(d).await;
                    if notified {
                        flag.store(true, Ordering::SeqCst);
                    }
                    notified
                })
            },
            || close_expired(exchange.clone(), keys_changed.swap(false, Ordering::SeqCst)),
        )
        .await;
}

/// One pass of the closer over the expired reserves (`retry_waiting`: also those waiting after
/// a failed attempt whose next attempt is not due yet).
pub async fn close_expired(exchange: Exchange, retry_waiting: bool) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let now = crate::db::now();
    let due = store.expired_reserves(now, retry_waiting, BATCH).await?;
    let full = due.len() >= BATCH as usize;
    let mut again = false;
    for reserve in due {
        let (reserve_pub, failures) = (reserve.reserve_pub, reserve.failures);
        match plan(&exchange, &reserve, now).await? {
            Ok(closing) => match store.close_reserve(closing).await? {
                CloseOutcome::Closed(row) => {
                    exchange.metrics().reserves_closed.inc();
                    tracing::info!(
                        reserve = %row.reserve_pub,
                        amount = %row.amount,
                        closing_fee = %row.closing_fee,
                        transferred = %row.transferred,
                        to = %row.receiver_payto,
                        account = %row.account_section,
                        wtid = %row.wtid,
                        expired = %reserve.expiration,
                        "closed an expired reserve"
                    );
                }
                CloseOutcome::NotDue => {
                    // Withdrawn, credited or closed since it was read: look again.
                    again = true;
                }
            },
            Err(why) => {
                exchange.metrics().reserve_close_refusals.inc();
                let delay = UNCLOSABLE_BACKOFF.delay(failures.saturating_add(1));
                let next = now.saturating_add(RelativeTime::from_duration(delay));
                if failures == 0 {
                    tracing::error!(reserve = %reserve_pub, balance = %reserve.balance, expired = %reserve.expiration, reason = %why, retry_in_ms = delay.as_millis() as u64, "an expired reserve cannot be closed: it stays open until this is fixed");
                } else {
                    tracing::warn!(reserve = %reserve_pub, balance = %reserve.balance, expired = %reserve.expiration, reason = %why, failures, retry_in_ms = delay.as_millis() as u64, "an expired reserve still cannot be closed");
                }
                store
                    .close_wait(reserve_pub, why.to_string(), now, next)
                    .await?;
            }
        }
    }
    let wake = store.next_close_wake().await?;
    exchange
        .metrics()
        .reserves_unclosable
        .set(i64::try_from(wake.waiting).unwrap_or(i64::MAX));
    if full || again {
        return Ok(Step::After(Duration::ZERO));
    }
    // A reserve credited from now on expires no earlier than the closing delay from now.
    let cap = exchange
        .config()
        .reserve_closing_delay
        .to_duration()
        .unwrap_or(Duration::from_secs(3600))
        .max(Duration::from_secs(1));
    let later = crate::db::now();
    Ok(Step::After(match wake.next {
        Some(next) => next
            .saturating_sub(later)
            .to_duration()
            .unwrap_or(cap)
            .min(cap),
        None => cap,
    }))
}

/// What closing `reserve` means now, or what is missing.
async fn plan(
    exchange: &Exchange,
    reserve: &ExpiredReserveRow,
    now: Timestamp,
) -> Result<Result<NewClosing, Unclosable>, ExchangeError> {
    let Some(origin) = &reserve.origin else {
        return Ok(Err(Unclosable::NoOrigin));
    };
    let receiver: PaytoUri = match origin.debit_payto.parse() {
        Ok(payto) => payto,
        Err(e) => {
            return Ok(Err(Unclosable::BadOrigin {
                payto: origin.debit_payto.clone(),
                error: e.to_string(),
            }));
        }
    };
    let method = receiver.target_type().to_owned();
    let account = match sending_account(
        &exchange.config().accounts,
        &method,
        &origin.account_section,
    ) {
        Ok(account) => account,
        Err(why) => return Ok(Err(why)),
    };
    // The fee of the expiration date, as the C closer (a late closer charges the fee the
    // reserve expired under).
    let Some(closing_fee) = exchange
        .store()
        .closing_fee(method.clone(), reserve.expiration)
        .await?
    else {
        return Ok(Err(Unclosable::NoFee {
            method,
            at: reserve.expiration,
        }));
    };
    Ok(Ok(NewClosing {
        reserve_pub: reserve.reserve_pub,
        close_number: reserve.close_number,
        origin_serial: origin.credit_serial,
        now,
        receiver_payto: origin.debit_payto.clone(),
        account_section: account.section.clone(),
        closing_fee,
        exchange_base_url: exchange.base_url().to_string(),
    }))
}

/// Runs the closing transfer worker until `stop` fires.
pub async fn run_transfers(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let subscription = exchange.store().notifier().subscribe_topic(TOPIC_CLOSING);
    WorkerRunner::new("closing-transfer")
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

/// One pass over the recorded closings whose transfer is due for an attempt.
pub async fn transfer(exchange: Exchange) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let backoff = Backoff::default();
    let pending = store.pending_closings(crate::db::now(), BATCH).await?;
    let full = pending.len() >= BATCH as usize;
    for row in pending {
        let failed = |why: String| {
            let delay = backoff.delay(row.failures.saturating_add(1));
            let at = crate::db::now().saturating_add(RelativeTime::from_duration(delay));
            (why, delay, at)
        };
        let request = match request(&exchange, &row) {
            Ok(request) => request,
            Err(why) => {
                let (why, delay, at) = failed(why);
                tracing::error!(reserve = %row.reserve_pub, account = %row.account_section, reason = %why, retry_in_ms = delay.as_millis() as u64, "a closed reserve's transfer cannot be sent");
                store.closing_failed(row.serial, at).await?;
                continue;
            }
        };
        let (client, request) = request;
        match client.transfer(&request).await {
            Ok(answer) => {
                store.closing_done(row.serial, answer.row_id).await?;
                exchange.metrics().closing_transfers.inc();
                tracing::info!(reserve = %row.reserve_pub, amount = %row.transferred, to = %row.receiver_payto, wtid = %row.wtid, gateway_row = answer.row_id, "closed reserve's balance sent back");
            }
            Err(e) => {
                let (why, delay, at) = failed(e.to_string());
                tracing::warn!(reserve = %row.reserve_pub, account = %row.account_section, error = %why, failures = row.failures.saturating_add(1), retry_in_ms = delay.as_millis() as u64, "sending a closed reserve's balance back failed");
                store.closing_failed(row.serial, at).await?;
            }
        }
    }
    if full {
        return Ok(Step::After(Duration::ZERO));
    }
    let now = crate::db::now();
    Ok(match store.next_closing_attempt().await? {
        Some(at) => Step::After(
            at.saturating_sub(now)
                .to_duration()
                .unwrap_or(Duration::from_secs(60)),
        ),
        None => Step::Idle,
    })
}

/// The gateway client and the request of a recorded closing (`Err`: why it cannot be sent).
fn request(
    exchange: &Exchange,
    row: &crate::db::closing::ClosingRow,
) -> Result<(cardcash_client::WireGatewayClient, TransferRequest), String> {
    let account = exchange
        .config()
        .accounts
        .iter()
        .find(|a| a.section == row.account_section)
        .ok_or_else(|| {
            format!(
                "the closing is to be paid by {}, which is no longer configured",
                row.account_section
            )
        })?;
    let client = super::wirewatch::gateway_client(account)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} has no Wire Gateway credentials", row.account_section))?;
    let credit_account = row
        .receiver_payto
        .parse()
        .map_err(|e| format!("receiver {:?}: {e}", row.receiver_payto))?;
    let exchange_base_url = BaseUrl::parse(&row.exchange_base_url)
        .map_err(|e| format!("stored base URL {:?}: {e}", row.exchange_base_url))?;
    Ok((
        client,
        TransferRequest {
            request_uid: row.request_uid,
            amount: row.transferred,
            exchange_base_url,
            wtid: row.wtid,
            credit_account,
        },
    ))
}

#[cfg(test)]
mod tests {
    use cardcash_util::BaseUrl;

    use super::*;
    use crate::config::{GatewayAuth, GatewayConfig};

    fn account(section: &str, payto: &str, debit: bool, gateway: Option<&str>) -> AccountConfig {
        AccountConfig {
            section: section.into(),
            payto: payto.parse().unwrap(),
            enable_debit: debit,
            enable_credit: !debit,
            gateway: gateway.map(|url| GatewayConfig {
                url: BaseUrl::parse(url).unwrap(),
                auth: GatewayAuth::None,
            }),
        }
    }

    const BANK: &str = "http://bank.example/accounts/exchange/taler-wire-gateway/";
    const C2EC: &str = "http://c2ec.example/taler-wire-gateway/";

    fn accounts() -> Vec<AccountConfig> {
        vec![
            account(
                "exchange-account-1",
                "payto://x-taler-bank/bank.example/exchange",
                true,
                Some(BANK),
            ),
            account(
                "exchange-account-2",
                "payto://x-taler-bank/c2ec.example/exchange",
                false,
                Some(C2EC),
            ),
            account(
                "exchange-account-card",
                "payto://card-transaction/c2ec.example/exchange",
                true,
                Some(C2EC),
            ),
        ]
    }

    #[test]
    fn the_account_has_the_receivers_method_and_the_receiving_gateway() {
        let accounts = accounts();
        // A card-funded reserve: C2EC's debit-only card account.
        let card = sending_account(&accounts, "card-transaction", "exchange-account-2").unwrap();
        assert_eq!(card.section, "exchange-account-card");
        // A bank-funded reserve: the bank account itself.
        let bank = sending_account(&accounts, "x-taler-bank", "exchange-account-1").unwrap();
        assert_eq!(bank.section, "exchange-account-1");
        // Money that arrived at C2EC from an x-taler-bank account: C2EC's account may not
        // debit, and the bank's is on another gateway.
        let err = sending_account(&accounts, "x-taler-bank", "exchange-account-2").unwrap_err();
        assert_eq!(
            err,
            Unclosable::NoAccount {
                method: "x-taler-bank".into(),
                receiving: "exchange-account-2".into(),
                gateway: Some(C2EC.into()),
            }
        );
        // An account section no longer configured: any debit account of the method (C).
        let gone = sending_account(&accounts, "card-transaction", "exchange-account-9").unwrap();
        assert_eq!(gone.section, "exchange-account-card");
    }

    #[test]
    fn without_the_card_account_the_reason_names_what_to_configure() {
        let mut accounts = accounts();
        accounts.retain(|a| a.section != "exchange-account-card");
        let why = sending_account(&accounts, "card-transaction", "exchange-account-2")
            .unwrap_err()
            .to_string();
        for part in [
            "payto://card-transaction/",
            "ENABLE_DEBIT = YES",
            C2EC,
            "exchange-account-2",
        ] {
            assert!(why.contains(part), "{why:?} lacks {part:?}");
        }
        let fee = Unclosable::NoFee {
            method: "card-transaction".into(),
            at: Timestamp::from_secs(1_700_000_000),
        }
        .to_string();
        assert!(
            fee.contains("closing fee") && fee.contains("card-transaction"),
            "{fee}"
        );
    }
}
