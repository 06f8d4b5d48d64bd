//! wirewatch: imports the incoming wire transfers of every credit-enabled account from its Wire
//! Gateway (`GET …/history/incoming`, long polling) and credits the reserves they name. Each
//! page is credited in ONE transaction together with the account's progress, and every transfer
//! is keyed by (account, gateway row id): whatever crashes or restarts happen between fetching
//! and crediting, a transfer is credited exactly once. Rows that fund no reserve (a KYC or wad
//! transfer, or another currency) are recorded for bouncing. Works with old and new gateways
//! alike (the client fills `credit_account` into every row either way).

use std::time::{Duration, Instant};

use cardcash_api::wire_gateway::IncomingBankTransaction;
use cardcash_client::{Auth, HistoryRequest, HttpClient, WireGatewayClient};
use cardcash_http::worker::{Step, WorkerMetrics, WorkerRunner};
use tokio_util::sync::CancellationToken;

use crate::config::{AccountConfig, GatewayAuth};
use crate::db::IncomingTransfer;
use crate::error::ExchangeError;
use crate::service::Exchange;

/// How long one history request may wait for a first new transfer.
pub const LONG_POLL: Duration = Duration::from_secs(30);
/// Rows per page.
pub const PAGE: i64 = 250;

/// The one connection pool of every Wire Gateway client of this process. Building a client
/// loads the system's root certificates (milliseconds of CPU), so the aggregator, the closer
/// and the bounce worker, which make one per transfer, share this pool instead of building
/// their own each time.
fn shared_http() -> Result<HttpClient, ExchangeError> {
    static HTTP: std::sync::OnceLock<HttpClient> = std::sync::OnceLock::new();
    if let Some(http) = HTTP.get() {
        return Ok(http.clone());
    }
    let http = HttpClient::new().map_err(|e| ExchangeError::Startup(e.to_string()))?;
    Ok(HTTP.get_or_init(|| http).clone())
}

/// The client of an account's gateway (on the process's shared connection pool).
pub fn gateway_client(account: &AccountConfig) -> Result<Option<WireGatewayClient>, ExchangeError> {
    let Some(gateway) = &account.gateway else {
        return Ok(None);
    };
    let auth = match &gateway.auth {
        GatewayAuth::None => Auth::None,
        GatewayAuth::Basic { username, password } => Auth::basic(username, password),
        GatewayAuth::Bearer(token) => Auth::bearer(token),
    };
    Ok(Some(WireGatewayClient::with_http(
        shared_http()?,
        gateway.url.clone(),
        auth,
    )))
}

/// Runs wirewatch for `account` until `stop` fires.
pub async fn run(
    exchange: Exchange,
    account: AccountConfig,
    client: WireGatewayClient,
    stop: CancellationToken,
    metrics: WorkerMetrics,
) {
    let runner = WorkerRunner::new("wirewatch").metrics(metrics);
    let stop_step = stop.clone();
    runner
        .run_on_timer(stop, || {
            step(
                exchange.clone(),
                account.clone(),
                client.clone(),
                stop_step.clone(),
            )
        })
        .await;
}

/// One page: fetch after the stored progress, credit, move the progress.
pub async fn step(
    exchange: Exchange,
    account: AccountConfig,
    client: WireGatewayClient,
    stop: CancellationToken,
) -> Result<Step, ExchangeError> {
    let store = exchange.store();
    let progress = store.wirewatch_progress(account.section.clone()).await?;
    let started = Instant::now();
    let request = HistoryRequest::after(progress, PAGE, Some(LONG_POLL));
    let page = tokio::select! {
        page = client.incoming_history(&request) => page,
        () = stop.cancelled() => return Ok(Step::Idle),
    }
    .map_err(|e| ExchangeError::Internal(format!("{}: {e}", account.section)))?;
    let Some(last) = page.iter().map(IncomingBankTransaction::row_id).max() else {
        // A gateway that does not long-poll answers at once: do not spin.
        let waited = started.elapsed();
        return Ok(Step::After(if waited < Duration::from_secs(1) {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        }));
    };
    let currency = *store.currency();
    let transfers = page
        .into_iter()
        .map(|row| match row {
            IncomingBankTransaction::Reserve {
                row_id,
                date,
                amount,
                debit_account,
                reserve_pub,
                ..
            } => IncomingTransfer {
                wire_reference: row_id,
                reserve_pub: if amount.currency() == &currency {
                    Ok(reserve_pub)
                } else {
                    Err(format!("{reserve_pub} (in {})", amount.currency()))
                },
                amount,
                debit_payto: debit_account.to_string(),
                execution_date: date,
            },
            IncomingBankTransaction::KycAuth {
                row_id,
                date,
                amount,
                debit_account,
                account_pub,
                ..
            } => IncomingTransfer {
                wire_reference: row_id,
                amount,
                debit_payto: debit_account.to_string(),
                execution_date: date,
                reserve_pub: Err(format!("KYC {account_pub}")),
            },
            IncomingBankTransaction::Wad {
                row_id,
                date,
                amount,
                debit_account,
                origin_exchange_url,
                ..
            } => IncomingTransfer {
                wire_reference: row_id,
                amount,
                debit_payto: debit_account.to_string(),
                execution_date: date,
                reserve_pub: Err(format!("WAD from {origin_exchange_url}")),
            },
        })
        // Amounts in another currency cannot be stored in this exchange's columns: bounce
        // them with a zero amount of ours and the original in the subject.
        .map(|mut t| {
            if t.amount.currency() != &currency {
                t.reserve_pub = Err(format!(
                    "{} in a foreign currency: {}",
                    t.reserve_pub.clone().map_or_else(|e| e, |k| k.to_string()),
                    t.amount
                ));
                t.amount = cardcash_util::Amount::zero(&currency);
            }
            t
        })
        .collect();
    let report = store
        .credit_reserves(
            account.section.clone(),
            transfers,
            last,
            exchange.config().reserve_closing_delay,
        )
        .await?;
    exchange
        .metrics()
        .reserves_credited
        .inc_by(u64::try_from(report.credited.len()).unwrap_or(0));
    tracing::info!(
        account = %account.section,
        credited = report.credited.len(),
        bounced = report.bounced,
        duplicates = report.duplicates,
        last_row = last,
        "imported incoming transfers"
    );
    Ok(Step::After(Duration::ZERO))
}
