//! Settlement: after an order's wire deadline the merchant asks the exchange which wire
//! transfer paid each of its deposits (`GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT/$COIN_PUB`,
//! signed by the instance, purpose 1103), checks the exchange's answer (purpose 1036) against
//! its signing keys, reads the transfer (`GET /transfers/$WTID`: its total and wire fee, for
//! this merchant), and records it; an order is `wired` when all its deposits are.
//! [`track_step`] is one pass of the settlement worker (`crate::worker::settlement`);
//! [`transfers`] lists what arrived per transfer with the fees per order.
//!
//! A deposit the exchange has not wired yet is asked about again at the execution time the
//! exchange names (at least a second later, at most an hour); one the exchange does not answer
//! about, after [`RETRY`].

use std::collections::HashMap;
use std::time::Duration;

use cardcash_api::exchange::TrackTransferResponse;
use cardcash_api::merchant::settlement::{TransferDetails, TransferList, TransferOrder};
use cardcash_client::{DepositQuery, DepositStatus};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ConfirmWire, TrackTransaction};
use cardcash_http::Step;
use cardcash_util::{BaseUrl, RelativeTime, ShortHashCode, Timestamp};

use crate::db::instances::InstanceRow;
use crate::db::settlement::{DepositToTrack, Wired};
use crate::error::MerchantError;
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
        let transfer = client
            .transfer(&answer.wtid)
            .await
            .map_err(|e| crate::exchanges::exchange_unavailable(&e))?;
        if transfer.merchant_pub != d.merchant_pub {
            return Err(MerchantError::Internal(format!(
                "transfer {} names another merchant",
                answer.wtid
            )));
        }
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

/// `GET /private/transfers`.
pub async fn transfers(
    merchant: &Merchant,
    instance: &InstanceRow,
) -> Result<TransferList, MerchantError> {
    let rows = merchant.store().transfers(instance.serial).await?;
    Ok(TransferList {
        transfers: rows
            .into_iter()
            .map(|t| TransferDetails {
                credit_amount: t.total,
                wtid: t.wtid,
                payto_uri: t.payto_uri,
                exchange_url: t.exchange_url,
                transfer_serial_id: u64::try_from(t.serial).unwrap_or_default(),
                execution_time: t.execution_time,
                verified: true,
                confirmed: false,
                wire_fee: t.wire_fee,
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
            .collect(),
    })
}
