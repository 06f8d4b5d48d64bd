//! Settlement: after an order's wire deadline the merchant asks the exchange which wire
//! transfer paid each of its deposits (`GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT/$COIN_PUB`,
//! signed by the instance, purpose 1103), checks the exchange's answer (purpose 1036) against
//! its signing keys, reads the transfer (`GET /transfers/$WTID`: its total and wire fee, for
//! this merchant), and records it; an order is `wired` when all its deposits are.
//! [`track_step`] is one pass of the settlement worker (`crate::worker::settlement`);
//! [`transfers`] lists what arrived per transfer with the fees per order.
//!
//! The merchant's bank (or an operator) reports transfers that arrived ([`report_transfer`],
//! `POST /private/transfers`): the report is stored as the bank's confirmation, next to the
//! exchange's statement of the same WTID — the worker's, or else one asked for now
//! (`GET /transfers/$WTID`, its signature (purpose 1037) and merchant checked). When the two
//! disagree both stay stored and the report is answered with a conflict; a transfer the
//! exchange does not know yet is reconciled when the worker learns of it.
//!
//! A deposit the exchange has not wired yet is asked about again at the execution time the
//! exchange names (at least a second later, at most an hour); one the exchange does not answer
//! about, after [`RETRY`].

use std::collections::HashMap;
use std::time::Duration;

use cardcash_api::exchange::TrackTransferResponse;
use cardcash_api::merchant::settlement::{
    TransferDetails, TransferInformation, TransferList, TransferOrder,
};
use cardcash_client::{DepositQuery, DepositStatus};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ConfirmWire, TrackTransaction};
use cardcash_http::Step;
use cardcash_util::{BaseUrl, ErrorCode, PaytoUri, RelativeTime, ShortHashCode, Timestamp};
use serde_json::json;

use crate::db::instances::InstanceRow;
use crate::db::settlement::{
    BankReport, DeleteTransfer, DepositToTrack, ExchangeView, ReportOutcome, TransferFilter,
    TransferRow, Wired, agrees,
};
use crate::error::MerchantError;
use crate::orders::tristate;
use crate::service::Merchant;

/// Deposits asked about per pass.
pub const BATCH: u32 = 100;
/// When a deposit the exchange could not answer about is asked about again.
pub const RETRY: Duration = Duration::from_secs(30);

fn later(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(RelativeTime::from_duration(d))
}

/// One pass: asks the exchanges about the deposits that are due, records what they answer,
/// and says when the next deposit is due.
pub async fn track_step(merchant: &Merchant) -> Result<Step, MerchantError> {
    let store = merchant.store();
    let now = Timestamp::now();
    let due = store.deposits_to_track(now, BATCH).await?;
    let full = due.len() >= BATCH as usize;
    let mut transfers: HashMap<(String, ShortHashCode), TrackTransferResponse> = HashMap::new();
    for deposit in &due {
        match track(merchant, deposit, &mut transfers).await {
            Ok(Some(wired)) => {
                if store.settle_deposit(deposit, &wired).await? {
                    tracing::info!(order = %deposit.order_id, wtid = %wired.wtid, "order wired");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(order = %deposit.order_id, coin = %deposit.coin_pub, error = %e, "deposit tracking failed");
                store
                    .postpone_deposit(deposit.deposit_serial, later(now, RETRY))
                    .await?;
            }
        }
    }
    if full {
        return Ok(Step::After(Duration::ZERO));
    }
    Ok(match store.next_settlement_check().await? {
        Some(next) => Step::After(
            next.saturating_sub(Timestamp::now())
                .to_duration()
                .unwrap_or(Duration::from_secs(3600))
                .max(Duration::from_millis(100)),
        ),
        None => Step::Idle,
    })
}

/// Asks the exchange about one deposit: what paid it, or `None` when it is not wired yet (then
/// the next check is scheduled).
async fn track(
    merchant: &Merchant,
    d: &DepositToTrack,
    transfers: &mut HashMap<(String, ShortHashCode), TrackTransferResponse>,
) -> Result<Option<Wired>, MerchantError> {
    let url = BaseUrl::parse(&d.exchange_url)
        .map_err(|e| MerchantError::Internal(format!("stored exchange URL: {e}")))?;
    let client = merchant.exchanges().client(&url)?;
    let key = EddsaPrivateKey::from_bytes(&d.merchant_priv);
    let query = DepositQuery {
        h_wire: d.h_wire,
        merchant_pub: d.merchant_pub,
        h_contract_terms: d.h_contract_terms,
        coin_pub: d.coin_pub,
        merchant_sig: key.sign(&TrackTransaction {
            h_contract_terms: d.h_contract_terms,
            h_wire: d.h_wire,
            coin_pub: d.coin_pub,
        }),
    };
    let status = client
        .deposit(
            &query,
            Duration::ZERO,
            cardcash_api::exchange::DepositLongPollTarget::Ok,
        )
        .await
        .map_err(|e| crate::exchanges::exchange_unavailable(&e))?;
    let answer = match status {
        DepositStatus::Pending(p) => {
            let now = Timestamp::now();
            let wait = p
                .execution_time
                .saturating_sub(now)
                .to_duration()
                .unwrap_or(Duration::from_secs(3600))
                .clamp(Duration::from_secs(1), Duration::from_secs(3600));
            merchant
                .store()
                .postpone_deposit(d.deposit_serial, later(now, wait))
                .await?;
            return Ok(None);
        }
        DepositStatus::Wired(w) => w,
    };
    let message = ConfirmWire {
        h_wire: d.h_wire,
        h_contract_terms: d.h_contract_terms,
        wtid: *answer.wtid.as_bytes(),
        coin_pub: d.coin_pub,
        execution_time: answer.execution_time,
        coin_contribution: answer.coin_contribution,
    };
    let keys = merchant
        .exchanges()
        .keys_with_signkey(&url, &answer.exchange_pub, answer.execution_time)
        .await?;
    if !keys.signkeys.iter().any(|k| k.key == answer.exchange_pub)
        || cardcash_crypto::verify(&answer.exchange_pub, &answer.exchange_sig, &message).is_err()
    {
        return Err(MerchantError::Internal(format!(
            "the exchange's wire confirmation of coin {} does not verify",
            d.coin_pub
        )));
    }
    let cache_key = (d.exchange_url.clone(), answer.wtid);
    if !transfers.contains_key(&cache_key) {
        // The exchange just named this transfer: not knowing it is an error here.
        let transfer = fetch_transfer(merchant, &client, &url, &answer.wtid, &d.merchant_pub)
            .await?
            .ok_or_else(|| {
                MerchantError::Internal(format!(
                    "the exchange does not know transfer {} it named",
                    answer.wtid
                ))
            })?;
        transfers.insert(cache_key.clone(), transfer);
    }
    let transfer = &transfers[&cache_key];
    Ok(Some(Wired {
        wtid: answer.wtid,
        execution_time: answer.execution_time,
        coin_contribution: answer.coin_contribution,
        total: transfer.total,
        wire_fee: transfer.wire_fee,
    }))
}

/// The longest page of `GET /private/transfers`.
pub const MAX_PAGE: i64 = 200;
/// Its default: the 20 newest.
const DEFAULT_LIMIT: i64 = -20;

/// `GET /private/transfers` query (`before`/`after` in seconds; the tristates `yes`/`no`/`all`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    pub payto_uri: Option<String>,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub verified: Option<String>,
    pub confirmed: Option<String>,
    pub expected: Option<String>,
}

/// `GET /private/transfers`: one bounded page, by `transfer_serial_id`.
pub async fn transfers(
    merchant: &Merchant,
    instance: &InstanceRow,
    q: &ListQuery,
) -> Result<TransferList, MerchantError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(-MAX_PAGE, MAX_PAGE);
    if limit == 0 {
        return Ok(TransferList {
            transfers: Vec::new(),
        });
    }
    if q.offset.is_some_and(|o| o < 0) {
        return Err(MerchantError::malformed("offset"));
    }
    let filter = TransferFilter {
        payto_uri: q.payto_uri.clone(),
        before: q.before.map(Timestamp::from_secs),
        after: q.after.map(Timestamp::from_secs),
        confirmed: tristate("confirmed", q.confirmed.as_deref())?,
        verified: tristate("verified", q.verified.as_deref())?,
        expected: tristate("expected", q.expected.as_deref())?,
        limit,
        offset: q.offset,
    };
    let rows = merchant.store().transfers(instance.serial, &filter).await?;
    rows.into_iter()
        .map(transfer_details)
        .collect::<Result<_, _>>()
        .map(|transfers| TransferList { transfers })
}

fn transfer_details(t: TransferRow) -> Result<TransferDetails, MerchantError> {
    let verified = t.verified();
    let (credit_amount, payto_uri) = match (&t.report, &t.exchange) {
        (Some(r), _) => (r.credit, r.payto_uri.clone()),
        (None, Some(e)) => (e.total, e.payto_uri.clone()),
        (None, None) => {
            return Err(MerchantError::Internal(format!(
                "transfer {} has neither a report nor a statement",
                t.serial
            )));
        }
    };
    let confirmed = t.report.is_some();
    let exchange = t.exchange.as_ref();
    Ok(TransferDetails {
        credit_amount,
        wtid: t.wtid,
        payto_uri,
        exchange_url: t.exchange_url,
        transfer_serial_id: u64::try_from(t.serial).unwrap_or_default(),
        execution_time: exchange.map(|e| e.execution_time),
        verified,
        confirmed,
        expected: exchange.is_some(),
        wire_fee: exchange.map(|e| e.wire_fee),
        exchange_credit_amount: exchange.filter(|_| confirmed).map(|e| e.total),
        exchange_payto_uri: exchange.filter(|_| confirmed).map(|e| e.payto_uri.clone()),
        orders: t
            .orders
            .into_iter()
            .map(|o| TransferOrder {
                order_id: o.order_id,
                deposit_total: o.deposit_total,
                deposit_fees: o.deposit_fees,
                wired: o.wired,
            })
            .collect(),
    })
}

/// How long a report waits for the exchange's statement before it is answered without it.
const INQUIRY_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /private/transfers`: records the bank's report of a transfer and reconciles it with
/// the exchange's statement when there is one. Same report again, same answer.
pub async fn report_transfer(
    merchant: &Merchant,
    instance: &InstanceRow,
    info: TransferInformation,
) -> Result<(), MerchantError> {
    if info.credit_amount.currency() != merchant.store().currency() {
        return Err(MerchantError::malformed("credit_amount"));
    }
    // The account must be one of the instance's (inactive ones too: money may still arrive),
    // compared without parameters (a bank names it without `receiver-name`); the report keeps
    // the instance's form of it, so that it compares with the exchange's statement.
    let reported: PaytoUri = info
        .payto_uri
        .parse()
        .map_err(|_| MerchantError::malformed("payto_uri"))?;
    let accounts = merchant.store().accounts(instance.serial).await?;
    let Some(account) = accounts.iter().find(|a| {
        a.payto_uri
            .parse::<PaytoUri>()
            .is_ok_and(|p| p.same_account(&reported))
    }) else {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostTransfersAccountNotFound,
            format!("{} is not an account of this instance", info.payto_uri),
        ));
    };
    // Only a trusted exchange's transfers are reconciled (its keys verify its statements).
    let client = merchant.exchanges().client(&info.exchange_url)?;
    let exchange_url = info.exchange_url.to_string();
    let report = BankReport {
        payto_uri: account.payto_uri.clone(),
        credit: info.credit_amount,
    };
    let store = merchant.store();
    let (serial, known) = match store
        .report_transfer(instance.serial, &exchange_url, &info.wtid, &report)
        .await?
    {
        ReportOutcome::Conflicting { previous } => {
            return Err(MerchantError::refused_with(
                ErrorCode::MerchantPrivatePostTransfersConflictingSubmission,
                format!(
                    "transfer {} was reported before with {} to {}",
                    info.wtid, previous.credit, previous.payto_uri
                ),
                json!({
                    "previous_credit_amount": previous.credit,
                    "previous_payto_uri": previous.payto_uri,
                }),
            ));
        }
        ReportOutcome::Recorded { serial, exchange } => (serial, exchange),
    };
    let exchange = match known {
        Some(view) => Some(view),
        None => {
            let asked = tokio::time::timeout(
                INQUIRY_TIMEOUT,
                inquire(
                    merchant,
                    instance,
                    &client,
                    &info.exchange_url,
                    &info.wtid,
                    &accounts,
                ),
            )
            .await;
            match asked {
                Ok(Ok(Some(view))) => {
                    store.record_exchange_view(serial, &view).await?;
                    Some(view)
                }
                Ok(Ok(None)) => None,
                Ok(Err(e)) => {
                    tracing::warn!(wtid = %info.wtid, error = %e, "transfer inquiry failed; reconciled when the worker learns of it");
                    None
                }
                Err(_) => {
                    tracing::warn!(wtid = %info.wtid, "transfer inquiry timed out; reconciled when the worker learns of it");
                    None
                }
            }
        }
    };
    match exchange {
        Some(view) if !agrees(&view, &report) => {
            tracing::warn!(wtid = %info.wtid, reported = %report.credit, exchange = %view.total, "the bank's report and the exchange's statement disagree");
            Err(MerchantError::refused_with(
                ErrorCode::MerchantPrivatePostTransfersConflictingSubmission,
                format!(
                    "the exchange says transfer {} carried {} to {}",
                    info.wtid, view.total, view.payto_uri
                ),
                json!({
                    "exchange_credit_amount": view.total,
                    "exchange_payto_uri": view.payto_uri,
                    "execution_time": view.execution_time,
                }),
            ))
        }
        _ => Ok(()),
    }
}

/// `GET /transfers/$WTID` at the exchange: its statement when it knows the transfer, the
/// transfer paid `merchant_pub` and the statement's signature (1037) verifies with one of the
/// exchange's signing keys; `None` when it does not know the transfer (404).
async fn fetch_transfer(
    merchant: &Merchant,
    client: &cardcash_client::ExchangeClient,
    url: &BaseUrl,
    wtid: &ShortHashCode,
    merchant_pub: &cardcash_util::EddsaPublicKey,
) -> Result<Option<TrackTransferResponse>, MerchantError> {
    let transfer = match client.transfer(wtid).await {
        Ok(t) => t,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(crate::exchanges::exchange_unavailable(&e)),
    };
    if transfer.merchant_pub != *merchant_pub {
        return Err(MerchantError::Internal(format!(
            "transfer {wtid} names another merchant"
        )));
    }
    let keys = merchant
        .exchanges()
        .keys_with_signkey(url, &transfer.exchange_pub, transfer.execution_time)
        .await?;
    if !keys.signkeys.iter().any(|k| k.key == transfer.exchange_pub)
        || cardcash_crypto::verify(
            &transfer.exchange_pub,
            &transfer.exchange_sig,
            &transfer.signed_message(),
        )
        .is_err()
    {
        return Err(MerchantError::Internal(format!(
            "the exchange's statement of transfer {wtid} does not verify"
        )));
    }
    Ok(Some(transfer))
}

/// Asks the exchange about a reported transfer (`GET /transfers/$WTID`): its statement when
/// it knows the transfer, paid this instance and signed it; `None` when it does not know it
/// (yet).
async fn inquire(
    merchant: &Merchant,
    instance: &InstanceRow,
    client: &cardcash_client::ExchangeClient,
    url: &BaseUrl,
    wtid: &ShortHashCode,
    accounts: &[crate::db::instances::AccountRow],
) -> Result<Option<ExchangeView>, MerchantError> {
    let Some(transfer) =
        fetch_transfer(merchant, client, url, wtid, &instance.merchant_pub).await?
    else {
        return Ok(None);
    };
    let Some(account) = accounts
        .iter()
        .find(|a| cardcash_crypto::wire::h_payto(&a.payto_uri) == transfer.h_payto)
    else {
        return Err(MerchantError::Internal(format!(
            "transfer {wtid} paid an account this instance does not have"
        )));
    };
    Ok(Some(ExchangeView {
        payto_uri: account.payto_uri.clone(),
        execution_time: transfer.execution_time,
        total: transfer.total,
        wire_fee: transfer.wire_fee,
    }))
}

/// `DELETE /private/transfers/$TID`: a transfer no order was reconciled with.
pub async fn delete_transfer(
    merchant: &Merchant,
    instance: &InstanceRow,
    transfer_serial: i64,
) -> Result<(), MerchantError> {
    match merchant
        .store()
        .delete_transfer(instance.serial, transfer_serial)
        .await?
    {
        DeleteTransfer::Deleted => Ok(()),
        DeleteTransfer::Unknown => Err(MerchantError::refused(
            ErrorCode::MerchantGenericTransferUnknown,
            format!("no transfer {transfer_serial}"),
        )),
        DeleteTransfer::Reconciled => Err(MerchantError::refused(
            ErrorCode::MerchantPrivateDeleteTransfersAlreadyConfirmed,
            format!("orders were reconciled with transfer {transfer_serial}"),
        )),
    }
}
