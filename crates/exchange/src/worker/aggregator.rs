//! Settlement. The aggregator sums, per merchant account, the deposits whose wire deadline
//! passed (minus refunds and deposit fees), subtracts the wire fee and records ONE wire
//! transfer with a fresh WTID, marking the deposits in the same transaction. The transfer
//! worker then asks the paying account's Wire Gateway to execute each recorded transfer, with
//! a `request_uid` derived from the WTID: a retry after a crash (or a lost answer) is the same
//! request to the gateway, which executes it once. Failures back off per transfer.
//!
//! The paying account is chosen per merchant account by wire method, as the C exchange does
//! (`TALER_EXCHANGEDB_find_account_by_payto_uri`: the first account loaded for debit whose
//! method is the merchant's), among the accounts with `ENABLE_DEBIT` and a Wire Gateway
//! ([`paying_account`]); the wire fee is that method's, in force now. So a merchant's
//! `x-taler-bank` account is paid from the bank account, never through the debit-only
//! `card-transaction` account on C2EC's Wire Gateway, whatever order the accounts are
//! configured in. When no account may pay a merchant's method (or the offline key set no wire
//! fee for it, or the stored payto URI does not parse) the C aggregator stops the process; here
//! the merchant's deposits wait ([`Unpayable`]): an error naming what to configure, the
//! `exchange_wire_out_refusals` counter and `exchange_merchant_accounts_unpayable` gauge, and
//! another look with backoff (at once when key material changes, e.g. a fee upload, and when
//! the exchange restarts, e.g. with the missing account configured), while the other merchants
//! are paid. While some merchant account waits, deadlines of the others that are not due yet
//! are seen within `AGGREGATOR_IDLE_SLEEP_INTERVAL` (the C aggregator's only schedule).
//!
//! The transfer worker sends a recorded transfer only through an account of the merchant's
//! wire method that may debit ([`sendable`]); a transfer recorded otherwise (before accounts
//! were chosen by method, or under another configuration) is held back with an error.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardcash_api::wire_gateway::TransferRequest;
use cardcash_client::WireGatewayClient;
use cardcash_http::worker::{Backoff, Step, WorkerMetrics, WorkerRunner};
use cardcash_store::Subscription;
use cardcash_util::{Amount, EddsaPublicKey, PaytoUri, RelativeTime, ShortHashCode, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::config::AccountConfig;
use crate::db::{DueAggregate, NewWireOut, TOPIC_DEPOSIT, TOPIC_KEYS, TOPIC_WIRE_OUT};
use crate::error::ExchangeError;
use crate::service::Exchange;

/// Aggregates per step at most (besides those of the merchant accounts that wait).
const BATCH: u32 = 100;

/// Backoff of a merchant account that cannot be paid. Missing configuration is fixed by the
/// operator: a fee upload wakes the aggregator at once, a new account comes with a restart.
const UNPAYABLE_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(15 * 60),
};

/// Why a merchant account's due deposits cannot be wired now (what the operator must add).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpayable {
    /// The merchant's stored payto URI does not parse.
    BadPayto { payto: String, error: String },
    /// No account may pay it: none with `ENABLE_DEBIT`, a Wire Gateway and the merchant's wire
    /// method. `without_gateway`: an account of the method with `ENABLE_DEBIT` but no Wire
    /// Gateway; `others`: the accounts that may pay, with their methods.
    NoAccount {
        method: String,
        without_gateway: Option<String>,
        others: Vec<(String, String)>,
    },
    /// The offline key set no wire fee for the method now.
    NoFee { method: String },
}

impl fmt::Display for Unpayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPayto { payto, error } => write!(
                f,
                "the merchant's account {payto:?} is no payto URI a transfer can name ({error})"
            ),
            Self::NoAccount {
                method,
                without_gateway,
                others,
            } => {
                write!(
                    f,
                    "no exchange account may pay a {method} account: wiring merchants' {method} \
                     accounts needs an [exchange-account-…] section with PAYTO_URI = \
                     payto://{method}/…, ENABLE_DEBIT = YES and, in its \
                     [exchange-accountcredentials-…] section, the WIRE_GATEWAY_URL of that \
                     account"
                )?;
                if let Some(section) = without_gateway {
                    write!(
                        f,
                        " ([{section}] has the method and ENABLE_DEBIT but no Wire Gateway)"
                    )?;
                }
                if others.is_empty() {
                    write!(f, "; no account may pay any merchant now")
                } else {
                    let others: Vec<String> = others
                        .iter()
                        .map(|(section, method)| format!("[{section}] pays {method} accounts"))
                        .collect();
                    write!(f, "; {}", others.join(", "))
                }
            }
            Self::NoFee { method } => write!(
                f,
                "no wire fee for wire method {method} now: the offline key must set one \
                 (`cardcash exchange offline wire-fee now {method} WIRE_FEE CLOSING_FEE`, then \
                 upload)"
            ),
        }
    }
}

/// May `account` pay out at all: `ENABLE_DEBIT` and a Wire Gateway.
fn may_pay(account: &AccountConfig) -> bool {
    account.enable_debit && account.gateway.is_some()
}

/// The account that wires a merchant's account of wire method `method`: the first configured
/// one with `ENABLE_DEBIT`, a Wire Gateway and that method (the C exchange's
/// `find_account_by_method` over the accounts loaded for debit).
pub fn paying_account<'a>(
    accounts: &'a [AccountConfig],
    method: &str,
) -> Result<&'a AccountConfig, Unpayable> {
    accounts
        .iter()
        .find(|a| may_pay(a) && a.payto.target_type() == method)
        .ok_or_else(|| Unpayable::NoAccount {
            method: method.to_owned(),
            without_gateway: accounts
                .iter()
                .find(|a| a.enable_debit && a.payto.target_type() == method)
                .map(|a| a.section.clone()),
            others: accounts
                .iter()
                .filter(|a| may_pay(a))
                .map(|a| (a.section.clone(), a.payto.target_type().to_owned()))
                .collect(),
        })
}

/// The account and wire fee that wire an aggregate to `merchant_payto` now (`fee`: the wire fee
/// of a method in force now), or why none may.
pub fn plan<'a>(
    accounts: &'a [AccountConfig],
    merchant_payto: &str,
    fee: impl Fn(&str) -> Option<Amount>,
) -> Result<(&'a AccountConfig, Amount), Unpayable> {
    let payto: PaytoUri = merchant_payto.parse().map_err(|e| Unpayable::BadPayto {
        payto: merchant_payto.to_owned(),
        error: format!("{e}"),
    })?;
    let method = payto.target_type();
    let account = paying_account(accounts, method)?;
    let fee = fee(method).ok_or_else(|| Unpayable::NoFee {
        method: method.to_owned(),
    })?;
    Ok((account, fee))
}

/// A merchant account whose deposits wait (key: merchant public key and payto URI, as the
/// aggregates are formed).
#[derive(Debug)]
struct Held {
    failures: u32,
    retry_at: Timestamp,
}

/// What the aggregator remembers between passes: the merchant accounts it cannot pay now.
#[derive(Debug, Default)]
pub struct AggregatorState {
    held: Mutex<HashMap<(EddsaPublicKey, String), Held>>,
    /// Retry every waiting merchant account at the next pass (key material changed, or start).
    retry_all: AtomicBool,
    /// "No account may pay anyone" was said (once per process).
    no_account_said: AtomicBool,
}

impl AggregatorState {
    /// A fresh state: the first pass tries every merchant account.
    pub fn new() -> Self {
        Self {
            retry_all: AtomicBool::new(true),
            ..Self::default()
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<(EddsaPublicKey, String), Held>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The aggregator's wake-ups: a deposit recorded or changed, or key material changed (a wire
/// fee uploaded: the waiting merchant accounts are tried again at once).
struct Wakeups {
    deposits: Subscription,
    keys: Subscription,
}

/// Runs the aggregator until `stop` fires.
pub async fn run_aggregator(exchange: Exchange, stop: CancellationToken, metrics: WorkerMetrics) {
    let notifier = exchange.store().notifier();
    let wakeups = Wakeups {
        deposits: notifier.subscribe_topic(TOPIC_DEPOSIT),
        keys: notifier.subscribe_topic(TOPIC_KEYS),
    };
    let idle = exchange
        .config()
        .aggregator_idle
        .to_duration()
        .unwrap_or(Duration::from_secs(60));
    let state = Arc::new(AggregatorState::new());
    let flag = state.clone();
    WorkerRunner::new("aggregator")
        .metrics(metrics)
        .idle(idle)
        .run(
            stop,
            wakeups,
            move |w, d| {
                let flag = flag.clone();
                Box::pin(async move {
                    tokio::select! {
                        notified = w.deposits.wait(d) => notified,
                        notified = w.keys.wait(d) => {
                            if notified {
                                flag.retry_all.store(true, Ordering::SeqCst);
                            }
                            notified
                        }
                    }
                })
            },
            || aggregate(exchange.clone(), state.clone()),
        )
        .await;
}

/// One aggregation pass; returns when to look again (the next wire deadline, or the next retry
/// of a waiting merchant account).
pub async fn aggregate(
    exchange: Exchange,
    state: Arc<AggregatorState>,
) -> Result<Step, ExchangeError> {
    let config = exchange.config();
    let metrics = exchange.metrics();
    if !config.accounts.iter().any(may_pay) {
        // As the C aggregator, which refuses to start without an account loaded for debit.
        if !state.no_account_said.swap(true, Ordering::SeqCst) {
            tracing::error!(
                "no [exchange-account-…] section has ENABLE_DEBIT = YES and a Wire Gateway \
                 ([exchange-accountcredentials-…] WIRE_GATEWAY_URL): merchants are not paid"
            );
        }
        return Ok(Step::Idle);
    }
    let now = crate::db::now();
    let snapshot = exchange.keys();
    let store = exchange.store();
    let retry_all = state.retry_all.swap(false, Ordering::SeqCst);
    // The waiting merchant accounts come in every page too: the page grows by their number
    // so that they never crowd out the others.
    let waiting = u32::try_from(state.held().len()).unwrap_or(u32::MAX);
    let limit = BATCH.saturating_add(waiting);
    let due = store.due_aggregates(now, limit).await?;
    let complete = due.len() < limit as usize;
    let mut seen = HashSet::with_capacity(due.len());
    for aggregate in due {
        let key = (aggregate.merchant_pub, aggregate.merchant_payto.clone());
        seen.insert(key.clone());
        let failures = match state.held().get(&key) {
            Some(held) if !retry_all && held.retry_at > now => continue,
            Some(held) => held.failures,
            None => 0,
        };
        match plan(&config.accounts, &aggregate.merchant_payto, |method| {
            snapshot.wire_fee(method, now).map(|f| f.wire_fee)
        }) {
            Ok((account, fee)) => {
                state.held().remove(&key);
                let section = account.section.clone();
                record(&exchange, aggregate, section, fee).await?;
            }
            // Nothing to wire: settled whatever the account and fee (the batches owe nothing,
            // so no transfer is recorded and no account is named).
            Err(_) if aggregate.total.is_zero() => {
                state.held().remove(&key);
                let zero = Amount::zero(aggregate.total.currency());
                record(&exchange, aggregate, String::new(), zero).await?;
            }
            Err(why) => {
                metrics.wire_out_refusals.inc();
                let delay = UNPAYABLE_BACKOFF.delay(failures.saturating_add(1));
                let retry_at = now.saturating_add(RelativeTime::from_duration(delay));
                let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                if failures == 0 {
                    tracing::error!(merchant = %aggregate.merchant_pub, payto = %aggregate.merchant_payto, total = %aggregate.total, batches = aggregate.batch_serials.len(), reason = %why, retry_in_ms, "a merchant's due deposits cannot be wired: they wait until this is fixed");
                } else {
                    tracing::warn!(merchant = %aggregate.merchant_pub, payto = %aggregate.merchant_payto, total = %aggregate.total, reason = %why, failures, retry_in_ms, "a merchant's due deposits still cannot be wired");
                }
                state.held().insert(
                    key,
                    Held {
                        failures: failures.saturating_add(1),
                        retry_at,
                    },
                );
            }
        }
    }
    let (held_count, next_retry) = {
        let mut held = state.held();
        if complete {
            // Every due merchant account was in the page: the others owe nothing now.
            held.retain(|key, _| seen.contains(key));
        }
        (held.len(), held.values().map(|h| h.retry_at).min())
    };
    metrics
        .merchant_accounts_unpayable
        .set(i64::try_from(held_count).unwrap_or(i64::MAX));
    if !complete {
        return Ok(Step::After(Duration::ZERO));
    }
    let later = crate::db::now();
    let until = |at: Timestamp| {
        at.saturating_sub(later)
            .to_duration()
            .unwrap_or(Duration::from_secs(60))
    };
    Ok(match (store.next_wire_deadline().await?, next_retry) {
        (Some(next), retry) if next > later => {
            Step::After(until(retry.map_or(next, |r| r.min(next))))
        }
        // Due now although everything due was handled: it became due during the pass.
        (Some(_), None) => Step::After(Duration::ZERO),
        // Past deadlines of waiting merchant accounts hide the next deadline of the others:
        // look again at the next retry (or after the idle interval, whichever comes first).
        (_, Some(retry)) => Step::After(until(retry)),
        (None, None) => Step::Idle,
    })
}

/// Records (and logs) the wire transfer of `aggregate` from `account_section`.
async fn record(
    exchange: &Exchange,
    aggregate: DueAggregate,
    account_section: String,
    wire_fee: Amount,
) -> Result<(), ExchangeError> {
    let wtid = ShortHashCode::from_bytes(
        cardcash_crypto::random_bytes::<32>()
            .map_err(|e| ExchangeError::Internal(format!("no randomness: {e}")))?,
    );
    let request_uid = cardcash_crypto::sha512(wtid.as_bytes());
    let recorded = exchange
        .store()
        .record_wire_out(NewWireOut {
            aggregate,
            wtid,
            request_uid,
            account_section,
            wire_fee,
            now: crate::db::now(),
        })
        .await?;
    if let Some(row) = recorded {
        exchange.metrics().wire_transfers.inc();
        tracing::info!(wtid = %row.wtid, amount = %row.amount, wire_fee = %row.wire_fee, merchant = %row.merchant_payto, account = %row.account_section, "aggregated deposits into a wire transfer");
    }
    Ok(())
}

/// Whether a transfer recorded to `merchant_payto` may leave from `account`: it may debit and
/// has the merchant's wire method (`Err`: why not).
pub fn sendable(account: &AccountConfig, merchant_payto: &PaytoUri) -> Result<(), String> {
    let method = merchant_payto.target_type();
    if !account.enable_debit {
        return Err(format!(
            "[{}] may not debit (ENABLE_DEBIT = NO) but is recorded to pay this transfer",
            account.section
        ));
    }
    if account.payto.target_type() != method {
        return Err(format!(
            "[{}] is a {} account and cannot pay the {method} account {merchant_payto}: the \
             transfer was recorded before accounts were chosen by wire method, or under \
             another configuration",
            account.section,
            account.payto.target_type()
        ));
    }
    Ok(())
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

/// Transfers attempted per step at most.
const TRANSFER_BATCH: u32 = 50;

/// One pass over the recorded transfers that are due for an attempt.
pub async fn transfer(exchange: Exchange) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let backoff = Backoff::default();
    let pending = store
        .pending_wire_outs(crate::db::now(), TRANSFER_BATCH)
        .await?;
    let full = pending.len() >= TRANSFER_BATCH as usize;
    let mut next: Option<Duration> = None;
    for row in pending {
        let delay = backoff.delay(row.failures.saturating_add(1));
        let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let at = crate::db::now().saturating_add(RelativeTime::from_duration(delay));
        match request(&exchange, &row)? {
            Ok((client, request)) => match client.transfer(&request).await {
                Ok(answer) => {
                    store.wire_out_done(row.serial, answer.row_id).await?;
                    tracing::info!(wtid = %row.wtid, account = %row.account_section, gateway_row = answer.row_id, "wire transfer executed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(wtid = %row.wtid, account = %row.account_section, error = %e, retry_in_ms, "wire transfer failed");
                }
            },
            Err(why) => {
                exchange.metrics().wire_out_refusals.inc();
                tracing::error!(wtid = %row.wtid, account = %row.account_section, merchant = %row.merchant_payto, reason = %why, retry_in_ms, "a recorded wire transfer cannot be sent");
            }
        }
        // Tried again later, without holding up the others.
        store.wire_out_failed(row.serial, at).await?;
        next = Some(next.map_or(delay, |n| n.min(delay)));
    }
    if full {
        return Ok(Step::After(Duration::ZERO));
    }
    if next.is_none() {
        // Nothing was due: a transfer may still wait for its next attempt (after a restart,
        // its time is in the database): sleep until then rather than for the idle interval.
        next = store.next_wire_out_attempt().await?.map(|at| {
            at.saturating_sub(crate::db::now())
                .to_duration()
                .unwrap_or(Duration::from_secs(3600))
        });
    }
    Ok(next.map_or(Step::Idle, Step::After))
}

/// The gateway client and request of a recorded transfer (`Ok(Err)`: why it cannot be sent;
/// the outer error fails the step).
fn request(
    exchange: &Exchange,
    row: &crate::db::WireOutRow,
) -> Result<Result<(WireGatewayClient, TransferRequest), String>, ExchangeError> {
    let Some(account) = exchange
        .config()
        .accounts
        .iter()
        .find(|a| a.section == row.account_section)
    else {
        return Ok(Err(format!(
            "the transfer is to be paid by [{}], which is no longer configured",
            row.account_section
        )));
    };
    let credit_account: PaytoUri = match row.merchant_payto.parse() {
        Ok(payto) => payto,
        Err(e) => {
            return Ok(Err(format!(
                "the merchant's account {:?} is no payto URI ({e})",
                row.merchant_payto
            )));
        }
    };
    if let Err(why) = sendable(account, &credit_account) {
        return Ok(Err(why));
    }
    let Some(client) = super::wirewatch::gateway_client(account)? else {
        return Ok(Err(format!(
            "[{}] has no Wire Gateway ([exchange-accountcredentials-…] WIRE_GATEWAY_URL)",
            row.account_section
        )));
    };
    Ok(Ok((
        client,
        TransferRequest {
            request_uid: row.request_uid,
            amount: row.amount,
            exchange_base_url: exchange.base_url().clone(),
            wtid: row.wtid,
            credit_account,
        },
    )))
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
    const MERCHANT: &str = "payto://x-taler-bank/bank.example/shop?receiver-name=Shop";

    /// The world's accounts with the debit-only card account listed first.
    fn accounts() -> Vec<AccountConfig> {
        vec![
            account(
                "exchange-account-card",
                "payto://card-transaction/c2ec.example/exchange",
                true,
                Some(C2EC),
            ),
            account(
                "exchange-account-2",
                "payto://x-taler-bank/c2ec.example/exchange",
                false,
                Some(C2EC),
            ),
            account(
                "exchange-account-1",
                "payto://x-taler-bank/bank.example/exchange",
                true,
                Some(BANK),
            ),
        ]
    }

    fn kudos(text: &str) -> Amount {
        format!("KUDOS:{text}").parse().unwrap()
    }

    /// Fees per method: x-taler-bank 0.05, card-transaction 0.30, iban 0.02.
    fn fee(method: &str) -> Option<Amount> {
        match method {
            "x-taler-bank" => Some(kudos("0.05")),
            "card-transaction" => Some(kudos("0.30")),
            "iban" => Some(kudos("0.02")),
            _ => None,
        }
    }

    #[test]
    fn a_merchant_is_paid_from_an_account_of_its_wire_method_with_its_fee() {
        let accounts = accounts();
        let (account, wire_fee) = plan(&accounts, MERCHANT, fee).unwrap();
        assert_eq!(account.section, "exchange-account-1");
        assert_eq!(wire_fee, kudos("0.05"));
        let (account, wire_fee) =
            plan(&accounts, "payto://card-transaction/c2ec.example/7", fee).unwrap();
        assert_eq!(
            (account.section.as_str(), wire_fee),
            ("exchange-account-card", kudos("0.30"))
        );
    }

    #[test]
    fn without_an_account_of_the_method_the_reason_names_what_to_configure() {
        let accounts = accounts();
        let why = plan(
            &accounts,
            "payto://iban/DE89370400440532013000?receiver-name=S",
            fee,
        )
        .unwrap_err();
        assert!(matches!(&why, Unpayable::NoAccount { method, .. } if method == "iban"));
        let text = why.to_string();
        for part in [
            "[exchange-account-…]",
            "PAYTO_URI = payto://iban/",
            "ENABLE_DEBIT = YES",
            "WIRE_GATEWAY_URL",
            "[exchange-account-1] pays x-taler-bank accounts",
            "[exchange-account-card] pays card-transaction accounts",
        ] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
        // An account of the method that may debit but has no Wire Gateway is named.
        let mut accounts = accounts;
        accounts[2].gateway = None;
        let text = plan(&accounts, MERCHANT, fee).unwrap_err().to_string();
        assert!(
            text.contains(
                "[exchange-account-1] has the method and ENABLE_DEBIT but no Wire Gateway"
            ),
            "{text}"
        );
        // No fee for the method; a payto URI that does not parse.
        assert_eq!(
            plan(&accounts, "payto://card-transaction/c2ec.example/7", |_| {
                None
            })
            .unwrap_err(),
            Unpayable::NoFee {
                method: "card-transaction".into()
            }
        );
        assert!(matches!(
            plan(&accounts, "mailto:shop@example.com", fee).unwrap_err(),
            Unpayable::BadPayto { .. }
        ));
    }

    #[test]
    fn a_recorded_transfer_leaves_only_from_a_debit_account_of_the_merchants_method() {
        let accounts = accounts();
        let merchant: PaytoUri = MERCHANT.parse().unwrap();
        assert!(sendable(&accounts[2], &merchant).is_ok());
        let why = sendable(&accounts[0], &merchant).unwrap_err();
        assert!(
            why.contains("[exchange-account-card] is a card-transaction account")
                && why.contains("x-taler-bank"),
            "{why}"
        );
        let why = sendable(&accounts[1], &merchant).unwrap_err();
        assert!(why.contains("ENABLE_DEBIT = NO"), "{why}");
    }
}
