//! Paying an order (`POST /orders/$ID/pay`) and aborting a payment (`POST /orders/$ID/abort`).
//!
//! A payment is checked in full before any coin leaves for the exchange: the order is claimed
//! and unpaid (a replay of the payment that paid it answers the same signature again), the pay
//! deadline has not passed, every coin's exchange is one the merchant trusts, its denomination
//! is listed in the exchange's verified keys and still valid for deposits, its signature
//! (purpose 1201) covers this contract, this merchant and its contribution, and the
//! contributions pay the price: Σ contribution − max(0, Σ deposit fee − max_fee) ≥ amount
//! (spec §3.3, the fee model without wire-fee amortization: the merchant absorbs deposit fees
//! up to `max_fee`, the customer pays the excess; wire fees are the merchant's).
//!
//! Then the coins go to their exchanges (`POST /batch-deposit`, one per exchange), each
//! confirmation's signature (purpose 1033) is checked against a signing key of the exchange's
//! `/keys`, and ONE transaction stores the deposits, marks the order paid in the session, sells
//! the stock it held and wakes who waits on it. The answer is the instance's signature
//! (purpose 1104) over the contract hash. A coin the exchange refuses as spent gives 409 with the
//! exchange's reply; deposits confirmed by another exchange of the same payment are stored (so
//! that an abort can give them back), the order stays unpaid.
//!
//! An abort refunds, at their exchanges, the coins of an unpaid order the wallet names
//! (`rtransaction_id` 0, the full contribution), and answers each exchange's verdict in the
//! order of the request; a paid order cannot be aborted (412).

use std::collections::{BTreeMap, HashSet};

use cardcash_api::exchange::{BatchDepositCoin, BatchDepositRequest, RefundRequest};
use cardcash_api::merchant::payments::{AbortRefundStatus, AbortRequest, AbortResponse};
use cardcash_api::merchant::{PayCoin, PayRequest, PayResponse};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{
    ContractSig, DepositConfirmationV23, DepositRequestV23, MerchantRefund, PaymentOk,
};
use cardcash_util::{Amount, BaseUrl, ErrorCode, HashCode, PaytoUri, Timestamp};
use serde_json::json;

use crate::db::instances::InstanceRow;
use crate::db::payments::{NewDeposit, PaidMark, PayOrder, RecordPayment};
use crate::error::MerchantError;
use crate::exchanges::{exchange_reply, exchange_unavailable};
use crate::service::Merchant;

/// The instance's signing key.
pub(crate) fn instance_key(instance: &InstanceRow) -> EddsaPrivateKey {
    EddsaPrivateKey::from_bytes(&instance.merchant_priv)
}

fn unknown_order(order_id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericOrderUnknown,
        format!("no order {order_id:?}"),
    )
}

/// The order `order_id` of the instance and its contract hash (set by the claim); 404 when
/// there is none or it is not claimed yet.
pub(crate) async fn claimed_order(
    merchant: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
) -> Result<(PayOrder, HashCode), MerchantError> {
    let order = merchant
        .store()
        .pay_order(instance.serial, order_id)
        .await?
        .ok_or_else(|| unknown_order(order_id))?;
    let h = order.h_contract_terms.ok_or_else(|| {
        MerchantError::refused(
            ErrorCode::MerchantGenericOrderUnknown,
            format!("order {order_id:?} is not claimed yet"),
        )
    })?;
    Ok((order, h))
}

/// What the payment needs of the contract terms beyond the order's columns.
struct ContractView {
    timestamp: Timestamp,
    max_fee: Amount,
}

fn contract_view(
    order: &PayOrder,
    currency: &cardcash_util::Currency,
) -> Result<ContractView, MerchantError> {
    let bad = |what: &str| {
        MerchantError::Internal(format!(
            "order {}: contract terms without a valid {what}",
            order.order_id
        ))
    };
    let timestamp: Timestamp = serde_json::from_value(order.contract_terms["timestamp"].clone())
        .map_err(|_| bad("timestamp"))?;
    let max_fee = match order.contract_terms.get("max_fee") {
        None | Some(serde_json::Value::Null) => Amount::zero(currency),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| bad("max_fee"))?,
    };
    Ok(ContractView { timestamp, max_fee })
}

fn zero_hash() -> HashCode {
    HashCode::from_bytes([0; 64])
}

/// The deposit permission a coin signs (purpose 1201, protocol v23 layout).
pub fn deposit_permission(
    order: &PayOrder,
    h_contract: HashCode,
    wallet_timestamp: Timestamp,
    merchant_pub: cardcash_util::EddsaPublicKey,
    coin: &PayCoin,
    deposit_fee: Amount,
) -> DepositRequestV23 {
    DepositRequestV23 {
        h_contract_terms: h_contract,
        h_age_commitment: [0; 32],
        h_policy: zero_hash(),
        h_wire: order.h_wire,
        h_denom_pub: coin.h_denom,
        wallet_timestamp,
        refund_deadline: order.refund_deadline,
        amount_with_fee: coin.contribution,
        deposit_fee,
        merchant_pub,
        wallet_data_hash: zero_hash(),
    }
}

/// A coin checked against its exchange's keys.
struct CheckedCoin<'a> {
    coin: &'a PayCoin,
    deposit_fee: cardcash_util::Amount,
    refund_fee: cardcash_util::Amount,
}

/// `POST /orders/$ID/pay`.
pub async fn pay(
    merchant: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    request: PayRequest,
) -> Result<PayResponse, MerchantError> {
    let (order, h_contract) = claimed_order(merchant, instance, order_id).await?;
    let key = instance_key(instance);
    if request.coins.is_empty() {
        return Err(MerchantError::refused(
            ErrorCode::GenericParameterMalformed,
            "a payment needs at least one coin",
        ));
    }
    let mut seen = HashSet::new();
    if !request.coins.iter().all(|c| seen.insert(c.coin_pub)) {
        return Err(MerchantError::refused(
            ErrorCode::GenericParameterMalformed,
            "a coin is listed twice",
        ));
    }
    if order.paid {
        // A replay of the payment that paid it gets the same answer; other coins are refused.
        let deposits = merchant.store().deposits(order.serial).await?;
        let replay = request.coins.iter().all(|c| {
            deposits
                .iter()
                .any(|d| d.deposit.coin_pub == c.coin_pub && d.deposit.coin_sig == c.coin_sig)
        });
        if replay {
            return Ok(PayResponse {
                sig: key.sign(&PaymentOk {
                    h_contract_terms: h_contract,
                }),
            });
        }
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayAlreadyPaid,
            "the order is already paid",
        ));
    }
    let now = Timestamp::now();
    if now > order.pay_deadline {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayOfferExpired,
            "the pay deadline of the order has passed",
        ));
    }
    let currency = *merchant.store().currency();
    let contract = contract_view(&order, &currency)?;

    // Group the coins by exchange; every exchange must be trusted.
    let mut by_exchange: BTreeMap<BaseUrl, Vec<&PayCoin>> = BTreeMap::new();
    for coin in &request.coins {
        if merchant.exchanges().trusted(&coin.exchange_url).is_none() {
            return Err(crate::exchanges::untrusted(&coin.exchange_url));
        }
        if coin.contribution.currency() != &currency {
            return Err(MerchantError::refused(
                ErrorCode::GenericCurrencyMismatch,
                format!("coins must pay in {currency}"),
            ));
        }
        by_exchange
            .entry(coin.exchange_url.clone())
            .or_default()
            .push(coin);
    }

    // Check every coin against its exchange's keys and its signature.
    let mut checked: BTreeMap<BaseUrl, Vec<CheckedCoin<'_>>> = BTreeMap::new();
    // Exchanges that speak protocol v12–14 (a legacy face): v12 layouts (crate::legacy).
    let mut legacy = HashSet::new();
    let mut total: u128 = 0;
    let mut fees: u128 = 0;
    for (url, coins) in &by_exchange {
        let keys = merchant
            .exchanges()
            .keys_with_denominations(url, coins.iter().map(|c| &c.h_denom))
            .await?;
        let mut group = Vec::with_capacity(coins.len());
        for coin in coins {
            let Some(denom) = keys.denominations.get(&coin.h_denom) else {
                return Err(MerchantError::refused_with(
                    ErrorCode::MerchantPostOrdersIdPayDenominationKeyNotFound,
                    "the exchange does not list the denomination of a coin",
                    json!({ "h_denom_pub": coin.h_denom, "exchange_url": url }),
                ));
            };
            if now < denom.stamp_start || now >= denom.stamp_expire_deposit {
                return Err(MerchantError::refused_with(
                    ErrorCode::MerchantPostOrdersIdPayDenominationDepositExpired,
                    "the denomination of a coin is not valid for deposits now",
                    json!({ "h_denom_pub": coin.h_denom }),
                ));
            }
            if coin.contribution.to_units() > denom.value.to_units() {
                return Err(MerchantError::refused_with(
                    ErrorCode::GenericParameterMalformed,
                    "a coin contributes more than its value",
                    json!({ "coin_pub": coin.coin_pub }),
                ));
            }
            if coin.contribution.to_units() < denom.fee_deposit.to_units() {
                return Err(MerchantError::refused_with(
                    ErrorCode::MerchantPostOrdersIdPayFeesExceedPayment,
                    "a coin contributes less than its deposit fee",
                    json!({ "coin_pub": coin.coin_pub }),
                ));
            }
            let permission = deposit_permission(
                &order,
                h_contract,
                contract.timestamp,
                instance.merchant_pub,
                coin,
                denom.fee_deposit,
            );
            let signed = if keys.legacy {
                crate::legacy::coin_signature_valid(
                    &order,
                    h_contract,
                    contract.timestamp,
                    instance.merchant_pub,
                    coin,
                    denom.fee_deposit,
                )
            } else {
                cardcash_crypto::verify(&coin.coin_pub, &coin.coin_sig, &permission).is_ok()
            };
            if !signed {
                return Err(MerchantError::refused_with(
                    ErrorCode::MerchantPostOrdersIdPayCoinSignatureInvalid,
                    "a coin's signature does not cover this payment",
                    json!({ "coin_pub": coin.coin_pub }),
                ));
            }
            total += coin.contribution.to_units();
            fees += denom.fee_deposit.to_units();
            group.push(CheckedCoin {
                coin,
                deposit_fee: denom.fee_deposit,
                refund_fee: denom.fee_refund,
            });
        }
        if keys.legacy {
            legacy.insert(url.clone());
        }
        checked.insert(url.clone(), group);
    }
    let price = order.amount.to_units();
    if total < price {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayPaymentInsufficient,
            format!(
                "the coins contribute {}, the order costs {}",
                units(&currency, total),
                order.amount
            ),
        ));
    }
    let customer_fees = fees.saturating_sub(contract.max_fee.to_units());
    if total - customer_fees < price {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayInsufficientDueToFees,
            format!(
                "deposit fees of {} exceed the {} the merchant pays; the coins must cover the rest",
                units(&currency, fees),
                contract.max_fee
            ),
        ));
    }

    // Deposit at each exchange.
    let payto: PaytoUri = order
        .payto_uri
        .parse()
        .map_err(|e| MerchantError::Internal(format!("stored payto URI: {e}")))?;
    let merchant_sig = key.sign(&ContractSig {
        h_contract_terms: h_contract,
    });
    let mut deposits = Vec::with_capacity(request.coins.len());
    for (url, group) in &checked {
        if legacy.contains(url) {
            let coins: Vec<_> = group
                .iter()
                .map(|c| crate::legacy::LegacyCoin {
                    coin: c.coin,
                    deposit_fee: c.deposit_fee,
                    refund_fee: c.refund_fee,
                })
                .collect();
            let d = crate::legacy::LegacyDeposit {
                order: &order,
                h_contract,
                wallet_timestamp: contract.timestamp,
                merchant_pub: instance.merchant_pub,
                payto: &payto,
            };
            match crate::legacy::deposit(merchant, url, &d, &coins).await {
                Ok(confirmed) => deposits.extend(confirmed),
                Err(crate::legacy::DepositFailure::Exchange { error, confirmed }) => {
                    deposits.extend(confirmed);
                    if !deposits.is_empty() {
                        merchant
                            .store()
                            .record_payment(order.serial, std::mem::take(&mut deposits), None)
                            .await?;
                    }
                    return Err(deposit_refused(&error));
                }
                Err(crate::legacy::DepositFailure::Merchant(e)) => return Err(e),
            }
            continue;
        }
        let batch = BatchDepositRequest {
            merchant_payto_uri: payto.clone(),
            wire_salt: order.salt,
            merchant_pub: instance.merchant_pub,
            merchant_sig: Some(merchant_sig),
            h_contract_terms: h_contract,
            wallet_data_hash: None,
            coins: group
                .iter()
                .map(|c| BatchDepositCoin {
                    contribution: c.coin.contribution,
                    denom_pub_hash: c.coin.h_denom,
                    ub_sig: c.coin.ub_sig.clone(),
                    coin_pub: c.coin.coin_pub,
                    h_age_commitment: None,
                    coin_sig: c.coin.coin_sig,
                })
                .collect(),
            policy: None,
            timestamp: contract.timestamp,
            refund_deadline: Some(order.refund_deadline),
            wire_transfer_deadline: order.wire_transfer_deadline,
        };
        let client = merchant.exchanges().client(url)?;
        let confirmation = match client.batch_deposit(&batch).await {
            Ok(c) => c,
            Err(e) => {
                // Keep what other exchanges confirmed: an abort gives it back.
                if !deposits.is_empty() {
                    merchant
                        .store()
                        .record_payment(order.serial, std::mem::take(&mut deposits), None)
                        .await?;
                }
                return Err(deposit_refused(&e));
            }
        };
        let without_fees: u128 = group
            .iter()
            .map(|c| c.coin.contribution.to_units() - c.deposit_fee.to_units())
            .sum();
        let message = DepositConfirmationV23 {
            h_contract_terms: h_contract,
            h_wire: order.h_wire,
            h_policy: zero_hash(),
            exchange_timestamp: confirmation.exchange_timestamp,
            wire_deadline: order.wire_transfer_deadline,
            refund_deadline: order.refund_deadline,
            total_without_fee: Amount::from_units(&currency, without_fees)
                .map_err(|e| MerchantError::Internal(format!("deposit total: {e}")))?,
            h_coin_sigs: cardcash_crypto::coin::h_coin_sigs(
                batch.coins.iter().map(|c| &c.coin_sig),
            ),
            merchant_pub: instance.merchant_pub,
        };
        let keys = merchant
            .exchanges()
            .keys_with_signkey(
                url,
                &confirmation.exchange_pub,
                confirmation.exchange_timestamp,
            )
            .await?;
        if !keys.signkey_valid(&confirmation.exchange_pub, confirmation.exchange_timestamp)
            || cardcash_crypto::verify(
                &confirmation.exchange_pub,
                &confirmation.exchange_sig,
                &message,
            )
            .is_err()
        {
            return Err(MerchantError::refused_with(
                ErrorCode::MerchantPostOrdersIdPayExchangeFailed,
                "the exchange's deposit confirmation does not verify",
                json!({ "exchange_url": url }),
            ));
        }
        for c in group {
            deposits.push(NewDeposit {
                coin_pub: c.coin.coin_pub,
                coin_sig: c.coin.coin_sig,
                exchange_url: url.to_string(),
                h_denom: c.coin.h_denom,
                amount_with_fee: c.coin.contribution,
                deposit_fee: c.deposit_fee,
                refund_fee: c.refund_fee,
                exchange_pub: confirmation.exchange_pub,
                exchange_sig: confirmation.exchange_sig,
                exchange_timestamp: confirmation.exchange_timestamp,
            });
        }
    }
    let outcome = merchant
        .store()
        .record_payment(
            order.serial,
            deposits,
            Some(PaidMark {
                instance_serial: instance.serial,
                order_id: order.order_id.clone(),
                session_id: request.session_id.clone().unwrap_or_default(),
                paid_at: now,
            }),
        )
        .await?;
    if outcome == RecordPayment::Expired {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayOfferExpired,
            "the pay deadline of the order passed during the payment; abort to get the coins back",
        ));
    }
    if outcome == RecordPayment::AlreadyPaid {
        // Another payment won the race after both passed the paid check: these coins are
        // deposited for the contract all the same (recorded, so that settlement accounts for
        // them), but this payment did not pay the order.
        tracing::warn!(order = %order.order_id, "order paid concurrently with other coins");
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdPayAlreadyPaid,
            "the order was paid concurrently with other coins",
        ));
    }
    Ok(PayResponse {
        sig: key.sign(&PaymentOk {
            h_contract_terms: h_contract,
        }),
    })
}

fn units(currency: &cardcash_util::Currency, u: u128) -> String {
    Amount::from_units(currency, u).map_or_else(|_| u.to_string(), |a| a.to_string())
}

/// The exchange refused a batch deposit: 409 `MERCHANT_POST_ORDERS_ID_PAY_INSUFFICIENT_FUNDS`
/// for a coin spent elsewhere (with the exchange's reply, which names the coin), 502
/// `MERCHANT_POST_ORDERS_ID_PAY_EXCHANGE_FAILED` for any other refusal, and the
/// exchange-unavailable answers for no answer.
fn deposit_refused(e: &cardcash_client::ClientError) -> MerchantError {
    match e.status() {
        Some(409) => MerchantError::refused_with(
            ErrorCode::MerchantPostOrdersIdPayInsufficientFunds,
            "the exchange refused a coin as already spent",
            exchange_reply(e),
        ),
        Some(s) if (400..500).contains(&s) => MerchantError::refused_with(
            ErrorCode::MerchantPostOrdersIdPayExchangeFailed,
            format!("the exchange refused the deposit ({s})"),
            exchange_reply(e),
        ),
        _ => exchange_unavailable(e),
    }
}

/// `POST /orders/$ID/abort`.
pub async fn abort(
    merchant: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    request: AbortRequest,
) -> Result<AbortResponse, MerchantError> {
    if request.coins.is_empty() {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdAbortCoinsArrayEmpty,
            "no coins to give back",
        ));
    }
    let order = merchant
        .store()
        .pay_order(instance.serial, order_id)
        .await?
        .ok_or_else(|| {
            MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdAbortContractNotFound,
                format!("no order {order_id:?}"),
            )
        })?;
    if order.h_contract_terms != Some(request.h_contract) {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdAbortContractHashMissmatch,
            "the contract hash does not match the order",
        ));
    }
    if order.paid {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPostOrdersIdAbortRefundRefusedPaymentComplete,
            "the order is paid; ask for a refund instead",
        ));
    }
    let key = instance_key(instance);
    let deposits = merchant.store().deposits(order.serial).await?;
    let mut refunds = Vec::with_capacity(request.coins.len());
    for coin in &request.coins {
        let client = merchant.exchanges().client(&coin.exchange_url)?;
        // Give back what was deposited for this order; a coin the merchant has no deposit of
        // is asked about all the same (the exchange says whether it has one).
        let amount = deposits
            .iter()
            .find(|d| d.deposit.coin_pub == coin.coin_pub)
            .map_or(coin.contribution, |d| d.deposit.amount_with_fee);
        let refund = RefundRequest {
            refund_amount: amount,
            h_contract_terms: request.h_contract,
            merchant_pub: instance.merchant_pub,
            rtransaction_id: 0,
            merchant_sig: key.sign(&MerchantRefund {
                h_contract_terms: request.h_contract,
                coin_pub: coin.coin_pub,
                rtransaction_id: 0,
                refund_amount: amount,
            }),
        };
        refunds.push(match client.refund(&coin.coin_pub, &refund).await {
            Ok(r) => AbortRefundStatus::Success {
                exchange_status: 200,
                exchange_sig: r.exchange_sig,
                exchange_pub: r.exchange_pub,
            },
            Err(e) => AbortRefundStatus::Failure {
                exchange_status: e.status().unwrap_or(0),
                exchange_code: e.code(),
                exchange_reply: e.body().cloned(),
            },
        });
    }
    Ok(AbortResponse { refunds })
}
