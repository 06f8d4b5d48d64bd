//! Coins of an exchange's legacy face (protocol v12–14: GNU Taler's wallets of late 2022, and
//! our exchange's `<base URL>legacy/`), so that a 2022 wallet can pay at this merchant.
//!
//! A trusted exchange is talked to in the protocol its `/keys` speaks: when the v23 `/keys`
//! does not parse as v23 (no `accounts`, no STEFAN fees, a flat `denoms`), the merchant reads
//! it as the legacy face's (`/keys` + `/wire`) and checks it as wallet-core 0.9 and the 2022 C
//! clients do ([`cardcash_client::verify_keys_v12`], against the configured master key). Coins
//! of such an exchange:
//! - sign their deposit permission in the v12 layout (purpose 1201, 392 bytes: no wallet data
//!   hash), which [`coin_signature_valid`] checks;
//! - are deposited one by one with `POST /coins/$COIN_PUB/deposit` ([`deposit`]), and each
//!   answer's v12 confirmation (purpose 1033, 312 bytes: the coin and its contribution less
//!   the fee) is checked against a signing key of the face's `/keys`;
//! - are refunded, tracked and aborted as on the v23 face: the routes and shapes were the same
//!   in 2022 (the refund signature 1102 and confirmation 1034 too), so those go through the
//!   v23 client at the face's base URL.
//!
//! Never used for an exchange whose `/keys` parses as v23.

use std::collections::HashMap;

use cardcash_api::exchange::v12::{DenominationPublicKey, DepositRequest};
use cardcash_api::exchange::{SignKey, WireFee};
use cardcash_api::merchant::PayCoin;
use cardcash_client::{ClientError, LegacyExchangeClient};
use cardcash_crypto::purpose::{DepositConfirmationV12, DepositRequestV12};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, ErrorCode, HashCode, PaytoUri, Timestamp};
use serde_json::json;

use crate::config::TrustedExchange;
use crate::db::payments::{NewDeposit, PayOrder};
use crate::error::MerchantError;
use crate::exchanges::{Denomination, ExchangeKeys};
use crate::service::Merchant;

/// The legacy face's `/keys` and `/wire`, verified against the configured master key and
/// currency, as the merchant uses them.
pub(crate) async fn fetch_keys(
    client: &LegacyExchangeClient,
    trusted: &TrustedExchange,
) -> Result<ExchangeKeys, MerchantError> {
    let unavailable = |e: ClientError| crate::exchanges::exchange_unavailable(&e);
    let keys = client.keys().await.map_err(unavailable)?;
    let wire = client.wire().await.map_err(unavailable)?;
    let failure = |why: String| {
        MerchantError::refused_with(
            ErrorCode::MerchantGenericExchangeKeysFailure,
            format!("the keys of the exchange (legacy face) cannot be used: {why}"),
            json!({ "exchange_url": trusted.base_url }),
        )
    };
    if keys.currency.as_deref() != Some(trusted.currency.as_str()) {
        return Err(failure(format!(
            "the exchange's currency is {:?}, not {}",
            keys.currency, trusted.currency
        )));
    }
    let hashes = cardcash_client::verify_keys_v12(&keys, &wire, Some(&trusted.master_pub))
        .map_err(|e| failure(e.to_string()))?;
    let denominations: HashMap<HashCode, Denomination> = keys
        .denoms
        .iter()
        .zip(hashes)
        .map(|(d, h)| {
            (
                h,
                Denomination {
                    h_denom: h,
                    value: d.value,
                    fee_deposit: d.fee_deposit,
                    fee_refund: d.fee_refund,
                    stamp_start: d.stamp_start,
                    stamp_expire_deposit: d.stamp_expire_deposit,
                    rsa: matches!(d.denom_pub, DenominationPublicKey::Rsa { .. }),
                },
            )
        })
        .collect();
    let signkeys = keys
        .signkeys
        .iter()
        .map(|k| SignKey {
            key: k.key,
            stamp_start: k.stamp_start,
            stamp_expire: k.stamp_expire,
            stamp_end: k.stamp_end,
            master_sig: k.master_sig,
        })
        .collect();
    let wire_fees = wire
        .fees
        .iter()
        .map(|(method, fees)| {
            let fees = fees
                .iter()
                .map(|f| WireFee {
                    wire_fee: f.wire_fee,
                    closing_fee: f.closing_fee,
                    start_date: f.start_date,
                    end_date: f.end_date,
                    sig: f.sig,
                })
                .collect();
            (method.clone(), fees)
        })
        .collect();
    tracing::debug!(exchange = %trusted.base_url, denominations = denominations.len(), "exchange keys fetched (legacy face)");
    Ok(ExchangeKeys::legacy(
        trusted.base_url.clone(),
        keys.master_public_key,
        denominations,
        signkeys,
        wire_fees,
    ))
}

/// Whether `coin`'s signature is a v12 deposit permission (purpose 1201 without the wallet data
/// hash) for this contract, this merchant and its contribution.
pub(crate) fn coin_signature_valid(
    order: &PayOrder,
    h_contract: HashCode,
    wallet_timestamp: Timestamp,
    merchant_pub: EddsaPublicKey,
    coin: &PayCoin,
    deposit_fee: Amount,
) -> bool {
    let permission = DepositRequestV12 {
        h_contract_terms: h_contract,
        h_age_commitment: [0; 32],
        h_policy: HashCode::from_bytes([0; 64]),
        h_wire: order.h_wire,
        h_denom_pub: coin.h_denom,
        wallet_timestamp,
        refund_deadline: order.refund_deadline,
        amount_with_fee: coin.contribution,
        deposit_fee,
        merchant_pub,
    };
    cardcash_crypto::verify(&coin.coin_pub, &coin.coin_sig, &permission).is_ok()
}

/// A coin checked against the face's keys, ready to deposit.
pub(crate) struct LegacyCoin<'a> {
    pub coin: &'a PayCoin,
    pub deposit_fee: Amount,
    pub refund_fee: Amount,
}

/// Why [`deposit`] stopped: the exchange refused a coin (with the deposits it confirmed before,
/// to record for an abort), or its answer cannot be trusted.
pub(crate) enum DepositFailure {
    Exchange {
        error: ClientError,
        confirmed: Vec<NewDeposit>,
    },
    Merchant(MerchantError),
}

/// What a payment's deposits at the legacy face need of the order.
pub(crate) struct LegacyDeposit<'a> {
    pub order: &'a PayOrder,
    pub h_contract: HashCode,
    pub wallet_timestamp: Timestamp,
    pub merchant_pub: EddsaPublicKey,
    pub payto: &'a PaytoUri,
}

/// Deposits `coins` at the legacy face `url`, one `POST /coins/$COIN_PUB/deposit` each, and
/// checks each v12 confirmation.
pub(crate) async fn deposit(
    merchant: &Merchant,
    url: &BaseUrl,
    d: &LegacyDeposit<'_>,
    coins: &[LegacyCoin<'_>],
) -> Result<Vec<NewDeposit>, DepositFailure> {
    let client = merchant
        .exchanges()
        .legacy_client(url)
        .map_err(DepositFailure::Merchant)?;
    let currency = *merchant.store().currency();
    let mut confirmed = Vec::with_capacity(coins.len());
    for c in coins {
        let request = DepositRequest {
            contribution: c.coin.contribution,
            merchant_payto_uri: d.payto.clone(),
            wire_salt: d.order.salt,
            h_contract_terms: d.h_contract,
            denom_pub_hash: c.coin.h_denom,
            ub_sig: c.coin.ub_sig.clone(),
            timestamp: d.wallet_timestamp,
            wire_transfer_deadline: d.order.wire_transfer_deadline,
            refund_deadline: Some(d.order.refund_deadline),
            merchant_pub: d.merchant_pub,
            coin_sig: c.coin.coin_sig,
            h_age_commitment: None,
        };
        let answer = match client.deposit(&c.coin.coin_pub, &request).await {
            Ok(a) => a,
            Err(error) => return Err(DepositFailure::Exchange { error, confirmed }),
        };
        let without_fee = Amount::from_units(
            &currency,
            c.coin.contribution.to_units() - c.deposit_fee.to_units(),
        )
        .map_err(|e| DepositFailure::Merchant(MerchantError::Internal(format!("{e}"))))?;
        let message = DepositConfirmationV12 {
            h_contract_terms: d.h_contract,
            h_wire: d.order.h_wire,
            h_policy: HashCode::from_bytes([0; 64]),
            exchange_timestamp: answer.exchange_timestamp,
            wire_deadline: d.order.wire_transfer_deadline,
            refund_deadline: d.order.refund_deadline,
            amount_without_fee: without_fee,
            coin_pub: c.coin.coin_pub,
            merchant_pub: d.merchant_pub,
        };
        let keys = merchant
            .exchanges()
            .keys_with_signkey(url, &answer.exchange_pub, answer.exchange_timestamp)
            .await
            .map_err(DepositFailure::Merchant)?;
        if !keys.signkey_valid(&answer.exchange_pub, answer.exchange_timestamp)
            || cardcash_crypto::verify(&answer.exchange_pub, &answer.exchange_sig, &message)
                .is_err()
        {
            return Err(DepositFailure::Merchant(MerchantError::refused_with(
                ErrorCode::MerchantPostOrdersIdPayExchangeFailed,
                "the exchange's deposit confirmation (legacy face) does not verify",
                json!({ "exchange_url": url, "coin_pub": c.coin.coin_pub }),
            )));
        }
        confirmed.push(NewDeposit {
            coin_pub: c.coin.coin_pub,
            coin_sig: c.coin.coin_sig,
            exchange_url: url.to_string(),
            h_denom: c.coin.h_denom,
            amount_with_fee: c.coin.contribution,
            deposit_fee: c.deposit_fee,
            refund_fee: c.refund_fee,
            exchange_pub: answer.exchange_pub,
            exchange_sig: answer.exchange_sig,
            exchange_timestamp: answer.exchange_timestamp,
        });
    }
    Ok(confirmed)
}

/// Whether order `order_id` was paid with coins of a legacy face: then the wallet that paid it
/// is one of 2022 (merchant protocol 2:0:1), whose `POST /orders/$ID/paid` expects exactly
/// `204 No Content` where today's wallets read `200 {refunded}`. A modern wallet cannot hold
/// such coins (it refuses an exchange of protocol 14), so the coins tell the two apart; the
/// request bodies are the same (`sig`, `h_contract`, `session_id`).
pub async fn paid_with_legacy_coins(
    merchant: &Merchant,
    instance_serial: i64,
    order_id: &str,
) -> Result<bool, MerchantError> {
    let Some(order) = merchant
        .store()
        .pay_order(instance_serial, order_id)
        .await?
    else {
        return Ok(false);
    };
    for d in merchant.store().deposits(order.serial).await? {
        let Ok(url) = BaseUrl::parse(&d.deposit.exchange_url) else {
            continue;
        };
        if merchant.exchanges().trusted(&url).is_some()
            && merchant.exchanges().keys(&url).await?.legacy
        {
            return Ok(true);
        }
    }
    Ok(false)
}
