//! Refunds: the merchant grants them (`POST /private/orders/$ID/refund`), the wallet picks them
//! up (`POST /orders/$ID/refund`).
//!
//! **Semantics of a grant: "increase the total refund to X"** (cumulative, as the C merchant's
//! refund-increase and wallet-core's `test-refund-incremental`: grants of 2.5, 5 and 10 leave
//! the order refunded 10). A request for less than or as much as already granted changes
//! nothing and answers the same; more than the order's price is refused (409
//! `…REFUND_INCONSISTENT_AMOUNT`). The increase is allocated over the deposited coins in the
//! order they were deposited (each coin at most its deposit, deposit fee included), as refund
//! rows of a new `rtransaction_id`. A contract without refunds (refund deadline not after its
//! timestamp) refuses with 403; after the refund deadline or the wire deadline with 410; an
//! unpaid order with 409.
//!
//! The pickup executes the refunds not yet executed at their exchanges (`POST
//! /coins/$COIN/refund` with the instance's signature, purpose 1102), checks each exchange
//! confirmation (purpose 1038) against the exchange's signing keys, stores the answers, marks
//! them obtained and answers every refund of the order (spec §2.7). Refunds the exchange
//! refuses for good are reported as failures; one it does not answer stays pending and the
//! pickup answers 502/504 so that the wallet asks again.

use axum::http::StatusCode;
use cardcash_api::exchange::RefundRequest as ExchangeRefundRequest;
use cardcash_api::merchant::payments::{
    CoinRefundStatus, MerchantRefundResponse, RefundRequest, WalletRefundRequest,
    WalletRefundResponse,
};
use cardcash_crypto::purpose::{MerchantRefund, RefundConfirmation};
use cardcash_util::{BaseUrl, ErrorCode, HashCode, TalerUri, Timestamp};

use crate::db::instances::InstanceRow;
use crate::db::payments::{GrantRefund, PayOrder, RefundOutcome};
use crate::error::MerchantError;
use crate::exchanges::exchange_unavailable;
use crate::pay::instance_key;
use crate::service::Merchant;

fn unknown_order(order_id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericOrderUnknown,
        format!("no order {order_id:?}"),
    )
}

/// `taler://refund/{instance base}/{order_id}/`.
pub fn refund_uri(merchant: &Merchant, instance: &InstanceRow, order_id: &str) -> String {
    TalerUri::Refund {
        merchant_base: merchant.instance_base_url(&instance.id),
        order_id: order_id.to_owned(),
    }
    .to_string()
}

/// `POST /private/orders/$ID/refund`.
pub async fn grant(
    merchant: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    request: RefundRequest,
) -> Result<MerchantRefundResponse, MerchantError> {
    let order = merchant
        .store()
        .pay_order(instance.serial, order_id)
        .await?
        .ok_or_else(|| unknown_order(order_id))?;
    let currency = *merchant.store().currency();
    if request.refund.currency() != &currency {
        return Err(MerchantError::refused(
            ErrorCode::GenericCurrencyMismatch,
            format!("refunds are in {currency}"),
        ));
    }
    let (true, Some(h_contract)) = (order.paid, order.h_contract_terms) else {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostOrdersIdRefundOrderUnpaid,
            "only a paid order can be refunded",
        ));
    };
    let timestamp: Option<Timestamp> =
        serde_json::from_value(order.contract_terms["timestamp"].clone()).ok();
    if timestamp.is_some_and(|t| order.refund_deadline <= t) {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostOrdersIdRefundNotAllowedByContract,
            "the contract allows no refunds",
        ));
    }
    let now = Timestamp::now();
    if now > order.refund_deadline || now > order.wire_transfer_deadline {
        return Err(MerchantError::refused_status(
            StatusCode::GONE,
            ErrorCode::MerchantPrivatePostOrdersIdRefundNotAllowedByContract,
            "the refund deadline of the order has passed",
        ));
    }
    match merchant
        .store()
        .grant_refund(&order, request.refund, &request.reason, now)
        .await?
    {
        GrantRefund::Granted { total } => {
            tracing::info!(order = %order.order_id, %total, "refund granted");
        }
        GrantRefund::Unchanged { .. } => {}
        GrantRefund::Unpaid => {
            return Err(MerchantError::refused(
                ErrorCode::MerchantPrivatePostOrdersIdRefundOrderUnpaid,
                "only a paid order can be refunded",
            ));
        }
        GrantRefund::ExceedsPayment { paid } => {
            return Err(MerchantError::refused(
                ErrorCode::MerchantPrivatePostOrdersIdRefundInconsistentAmount,
                format!("the refund exceeds the {paid} paid"),
            ));
        }
    }
    Ok(MerchantRefundResponse {
        taler_refund_uri: refund_uri(merchant, instance, order_id),
        h_contract,
    })
}

/// The answer to a pickup: `None` when nothing was ever granted (204).
pub async fn pickup(
    merchant: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    request: WalletRefundRequest,
) -> Result<Option<WalletRefundResponse>, MerchantError> {
    let order = merchant
        .store()
        .pay_order(instance.serial, order_id)
        .await?
        .ok_or_else(|| unknown_order(order_id))?;
    let Some(h_contract) = order.h_contract_terms.filter(|h| *h == request.h_contract) else {
        return Err(MerchantError::refused(
            ErrorCode::MerchantGenericContractHashDoesNotMatchOrder,
            "the contract hash does not match the order",
        ));
    };
    let refunds = merchant.store().refunds(order.serial).await?;
    if refunds.is_empty() {
        return Ok(None);
    }
    let key = instance_key(instance);
    let mut outcomes = Vec::new();
    let mut unavailable = None;
    for r in refunds
        .iter()
        .filter(|r| r.outcome == RefundOutcome::Pending)
    {
        match execute(merchant, instance, &key, &order, h_contract, r).await {
            Ok(outcome) => outcomes.push((r.serial, outcome)),
            Err(e) => unavailable = Some(e),
        }
    }
    merchant
        .store()
        .store_refund_outcomes(&order, outcomes, unavailable.is_none())
        .await?;
    if let Some(e) = unavailable {
        return Err(e);
    }
    let refunds = merchant.store().refunds(order.serial).await?;
    let statuses = refunds
        .iter()
        .filter_map(|r| match &r.outcome {
            RefundOutcome::Pending => None,
            RefundOutcome::Confirmed {
                exchange_pub,
                exchange_sig,
            } => Some(CoinRefundStatus::Success {
                exchange_status: 200,
                exchange_sig: *exchange_sig,
                exchange_pub: *exchange_pub,
                rtransaction_id: r.rtransaction_id,
                coin_pub: r.coin_pub,
                refund_amount: r.amount,
                execution_time: r.granted_at,
            }),
            RefundOutcome::Failed { status, reply } => Some(CoinRefundStatus::Failure {
                exchange_status: *status,
                exchange_code: reply
                    .as_ref()
                    .and_then(|r| r.get("code"))
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|c| u32::try_from(c).ok()),
                exchange_reply: reply.clone(),
                rtransaction_id: r.rtransaction_id,
                coin_pub: r.coin_pub,
                refund_amount: r.amount,
                execution_time: r.granted_at,
            }),
        })
        .collect();
    Ok(Some(WalletRefundResponse {
        refund_amount: order.refund_total,
        refunds: statuses,
        merchant_pub: instance.merchant_pub,
    }))
}

/// Executes one refund at its exchange: its confirmation (checked), its final refusal, or an
/// error when the exchange did not answer usefully (the refund stays pending).
async fn execute(
    merchant: &Merchant,
    instance: &InstanceRow,
    key: &cardcash_crypto::EddsaPrivateKey,
    order: &PayOrder,
    h_contract: HashCode,
    r: &crate::db::payments::RefundRow,
) -> Result<RefundOutcome, MerchantError> {
    let url = BaseUrl::parse(&r.exchange_url)
        .map_err(|e| MerchantError::Internal(format!("stored exchange URL: {e}")))?;
    let client = merchant.exchanges().client(&url)?;
    let request = ExchangeRefundRequest {
        refund_amount: r.amount,
        h_contract_terms: h_contract,
        merchant_pub: instance.merchant_pub,
        rtransaction_id: r.rtransaction_id,
        merchant_sig: key.sign(&MerchantRefund {
            h_contract_terms: h_contract,
            coin_pub: r.coin_pub,
            rtransaction_id: r.rtransaction_id,
            refund_amount: r.amount,
        }),
    };
    match client.refund(&r.coin_pub, &request).await {
        Ok(answer) => {
            let message = RefundConfirmation {
                h_contract_terms: h_contract,
                coin_pub: r.coin_pub,
                merchant_pub: instance.merchant_pub,
                rtransaction_id: r.rtransaction_id,
                refund_amount: r.amount,
            };
            let keys = merchant
                .exchanges()
                .keys_with_signkey(&url, &answer.exchange_pub, Timestamp::now())
                .await?;
            if !keys.signkeys.iter().any(|k| k.key == answer.exchange_pub)
                || cardcash_crypto::verify(&answer.exchange_pub, &answer.exchange_sig, &message)
                    .is_err()
            {
                return Err(MerchantError::refused(
                    ErrorCode::MerchantGenericExchangeReplyMalformed,
                    "the exchange's refund confirmation does not verify",
                ));
            }
            Ok(RefundOutcome::Confirmed {
                exchange_pub: answer.exchange_pub,
                exchange_sig: answer.exchange_sig,
            })
        }
        Err(e) => match e.status() {
            Some(s) if (400..500).contains(&s) => {
                tracing::warn!(order = %order.order_id, status = s, "the exchange refused a refund");
                Ok(RefundOutcome::Failed {
                    status: s,
                    reply: e.body().cloned(),
                })
            }
            _ => Err(exchange_unavailable(&e)),
        },
    }
}
