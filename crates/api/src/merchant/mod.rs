//! Merchant backend API as the wallet calls it: config, claim, pay, paid, order status.
//! Thinner than the full API; later issues grow it. Spec: /work/shared/spec/taler-protocol.md §6,
//! field names checked against wallet-core 2022 `taler-types.ts` (`codecForMerchantContractTerms`,
//! `codecForMerchantOrderStatusPaid`, …).
//!
//! The wallet hashes the contract terms exactly as received, so [`ClaimResponse`] keeps them as
//! raw JSON; [`ContractTerms`] is the typed view used to build and inspect them.

pub mod instances;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod settlement;
pub mod status;
pub mod webhooks;

use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode, LibtoolVersion,
    RelativeTime, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::exchange::UnblindedSignature;

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MerchantConfig {
    /// Always `"taler-merchant"`.
    pub name: String,
    pub version: LibtoolVersion,
    pub currency: Currency,
}

/// `POST /orders/$ORDER_ID/claim` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimRequest {
    /// The wallet's nonce public key; echoed in the contract terms.
    pub nonce: EddsaPublicKey,
    /// Claim token from the `taler://pay` URI (`c=`), if the order has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<String>,
}

/// `POST /orders/$ORDER_ID/claim` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimResponse {
    /// Raw contract terms; `h_contract_terms` is computed over their canonical form.
    pub contract_terms: serde_json::Value,
    /// Merchant signature (purpose 1101) over `h_contract_terms`.
    pub sig: EddsaSignature,
}

/// Merchant identity inside the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MerchantInfo {
    pub name: String,
}

/// An exchange the merchant accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExchangeHandle {
    pub url: BaseUrl,
    pub master_pub: EddsaPublicKey,
}

/// An auditor the merchant accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditorHandle {
    pub name: String,
    pub auditor_pub: EddsaPublicKey,
    pub url: String,
}

/// Contract terms: the fields wallet-core 2022 requires, plus the common optional ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContractTerms {
    pub order_id: String,
    /// Byte-equal to the base URL the wallet used, ending in `/`.
    pub merchant_base_url: BaseUrl,
    pub h_wire: HashCode,
    /// Payto target type the merchant is paid with (`iban`, `x-taler-bank`).
    pub wire_method: String,
    pub summary: String,
    /// The wallet's claim nonce.
    pub nonce: EddsaPublicKey,
    pub amount: Amount,
    pub max_fee: Amount,
    pub auditors: Vec<AuditorHandle>,
    pub exchanges: Vec<ExchangeHandle>,
    pub pay_deadline: Timestamp,
    /// `{"t_s": 0}` for "no refunds" (wallet-core cannot sign "never").
    pub refund_deadline: Timestamp,
    pub wire_transfer_deadline: Timestamp,
    pub timestamp: Timestamp,
    pub merchant: MerchantInfo,
    pub merchant_pub: EddsaPublicKey,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auto_refund: Option<RelativeTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_wire_fee: Option<Amount>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delivery_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub minimum_age: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extra: Option<serde_json::Value>,
}

/// One coin of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PayCoin {
    pub coin_pub: EddsaPublicKey,
    /// Coin signature (purpose 1201) over the deposit permission.
    pub coin_sig: EddsaSignature,
    pub contribution: Amount,
    pub h_denom: HashCode,
    pub exchange_url: BaseUrl,
    pub ub_sig: UnblindedSignature,
}

/// `POST /orders/$ORDER_ID/pay` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PayRequest {
    pub coins: Vec<PayCoin>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_id: Option<String>,
}

/// `POST /orders/$ORDER_ID/pay` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PayResponse {
    /// Merchant signature (purpose 1104) confirming the payment.
    pub sig: EddsaSignature,
}

/// `POST /orders/$ORDER_ID/paid` body (answered with [`status::PaidRefundStatusResponse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PaidRequest {
    pub sig: EddsaSignature,
    pub h_contract: HashCode,
    pub session_id: String,
}

/// `GET /orders/$ORDER_ID` for a paid order (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderStatusPaid {
    pub refunded: bool,
    pub refund_pending: bool,
    pub refund_amount: Amount,
    pub refund_taken: Amount,
}

/// `GET /orders/$ORDER_ID` for an unpaid order (402).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderStatusUnpaid {
    pub taler_pay_uri: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_url: Option<String>,
    /// Another order with the same fulfillment URL already paid in the asked session.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub already_paid_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub already_paid_fulfillment_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        parsed
    }

    const PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    const HASH: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";

    #[test]
    fn contract_terms_round_trip() {
        let text = format!(
            r#"{{"order_id":"2024.001-A","merchant_base_url":"https://shop.example/","h_wire":"{HASH}",
            "wire_method":"x-taler-bank","summary":"Coffee","nonce":"{PUB}","amount":"KUDOS:3.5",
            "max_fee":"KUDOS:0.1","auditors":[],
            "exchanges":[{{"url":"https://exchange.example/","master_pub":"{PUB}"}}],
            "pay_deadline":{{"t_s":1700003600}},"refund_deadline":{{"t_s":0}},
            "wire_transfer_deadline":{{"t_s":1700086400}},"timestamp":{{"t_s":1700000000}},
            "merchant":{{"name":"Shop"}},"merchant_pub":"{PUB}",
            "fulfillment_url":"https://shop.example/thanks","extra":{{"table":4}}}}"#
        );
        let c: ContractTerms = round_trip(&text);
        assert_eq!(c.amount.to_string(), "KUDOS:3.5");
        assert_eq!(c.exchanges[0].url.as_str(), "https://exchange.example/");
        let claim: ClaimResponse =
            round_trip(&format!(r#"{{"contract_terms":{text},"sig":"{HASH}"}}"#));
        let typed: ContractTerms = serde_json::from_value(claim.contract_terms).unwrap();
        assert_eq!(typed, c);
    }

    #[test]
    fn claim_pay_paid() {
        let _: ClaimRequest = round_trip(&format!(r#"{{"nonce":"{PUB}"}}"#));
        let _: ClaimRequest = round_trip(&format!(r#"{{"nonce":"{PUB}","token":"ABC"}}"#));
        let pay = format!(
            r#"{{"coins":[{{"coin_pub":"{PUB}","coin_sig":"{HASH}","contribution":"KUDOS:1",
            "h_denom":"{HASH}","exchange_url":"https://exchange.example/",
            "ub_sig":{{"cipher":"RSA","rsa_signature":"040000XT"}}}}],"session_id":""}}"#
        );
        let p: PayRequest = round_trip(&pay);
        assert_eq!(p.coins.len(), 1);
        let _: PayResponse = round_trip(&format!(r#"{{"sig":"{HASH}"}}"#));
        let _: PaidRequest = round_trip(&format!(
            r#"{{"sig":"{HASH}","h_contract":"{HASH}","session_id":"s1"}}"#
        ));
    }

    #[test]
    fn config_and_order_status() {
        let c: MerchantConfig = serde_json::from_str(
            r#"{"name":"taler-merchant","version":"2:0:1","currency":"KUDOS","extra":1}"#,
        )
        .unwrap();
        assert_eq!(c.version.to_string(), "2:0:1");
        let paid: OrderStatusPaid = round_trip(
            r#"{"refunded":false,"refund_pending":false,"refund_amount":"KUDOS:0","refund_taken":"KUDOS:0"}"#,
        );
        assert!(!paid.refunded);
        let _: OrderStatusUnpaid =
            round_trip(r#"{"taler_pay_uri":"taler://pay/shop.example/2024.001-A/"}"#);
    }
}
