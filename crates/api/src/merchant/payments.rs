//! Pay, abort and refunds (`POST /orders/$ID/pay`, `/abort`, `/refund`, `POST /private/orders/$ID/refund`).
//! The pay request and response themselves are in the parent module (wallet-facing, shared
//! with the claim). Field names from docs.taler.net core/merchant (post-orders-ORDER_ID-abort,
//! post-private-orders-ORDER_ID-refund, post-orders-ORDER_ID-refund) and wallet-core 2022
//! `taler-types.ts` (`AbortRequest`, `MerchantAbortPayRefundStatus`, `MerchantCoinRefundStatus`).

use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, EddsaSignature, HashCode, Timestamp};
use serde::{Deserialize, Serialize};

/// One coin the wallet wants back (`POST /orders/$ID/abort`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbortingCoin {
    pub coin_pub: EddsaPublicKey,
    /// What the coin contributed (deposit fee included).
    pub contribution: Amount,
    pub exchange_url: BaseUrl,
}

/// `POST /orders/$ID/abort` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbortRequest {
    pub h_contract: HashCode,
    pub coins: Vec<AbortingCoin>,
}

/// What the exchange said about one refunded coin of an abort, in the order of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AbortRefundStatus {
    Success {
        /// Always 200.
        exchange_status: u16,
        exchange_sig: EddsaSignature,
        exchange_pub: EddsaPublicKey,
    },
    Failure {
        /// The exchange's HTTP status (0 when it did not answer).
        exchange_status: u16,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exchange_code: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exchange_reply: Option<serde_json::Value>,
    },
}

/// `POST /orders/$ID/abort` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbortResponse {
    pub refunds: Vec<AbortRefundStatus>,
}

/// `POST /private/orders/$ID/refund` body: increase the order's total refund to `refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RefundRequest {
    /// The total refund the order should have (cumulative, not an increment).
    pub refund: Amount,
    pub reason: String,
}

/// `POST /private/orders/$ID/refund` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MerchantRefundResponse {
    /// `taler://refund/{host}{/path}/{order_id}/`: where the wallet picks the refund up.
    pub taler_refund_uri: String,
    pub h_contract: HashCode,
}

/// `POST /orders/$ID/refund` body (the wallet picks up granted refunds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalletRefundRequest {
    pub h_contract: HashCode,
}

/// The outcome of one refunded coin at the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CoinRefundStatus {
    Success {
        /// Always 200.
        exchange_status: u16,
        /// The exchange's confirmation (purpose 1038).
        exchange_sig: EddsaSignature,
        exchange_pub: EddsaPublicKey,
        rtransaction_id: u64,
        coin_pub: EddsaPublicKey,
        /// The refund (refund fee included).
        refund_amount: Amount,
        execution_time: Timestamp,
    },
    Failure {
        exchange_status: u16,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exchange_code: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        exchange_reply: Option<serde_json::Value>,
        rtransaction_id: u64,
        coin_pub: EddsaPublicKey,
        refund_amount: Amount,
        execution_time: Timestamp,
    },
}

/// `POST /orders/$ID/refund` response (200; 204 when nothing was granted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WalletRefundResponse {
    /// The total refunded so far.
    pub refund_amount: Amount,
    pub refunds: Vec<CoinRefundStatus>,
    pub merchant_pub: EddsaPublicKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    const SIG: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        parsed
    }

    #[test]
    fn abort_and_refund_shapes() {
        let _: AbortRequest = round_trip(&format!(
            r#"{{"h_contract":"{SIG}","coins":[{{"coin_pub":"{PUB}","contribution":"KUDOS:1","exchange_url":"https://ex.example/"}}]}}"#
        ));
        let r: AbortResponse = round_trip(&format!(
            r#"{{"refunds":[{{"type":"success","exchange_status":200,"exchange_sig":"{SIG}","exchange_pub":"{PUB}"}},
            {{"type":"failure","exchange_status":404,"exchange_code":1502}}]}}"#
        ));
        assert_eq!(r.refunds.len(), 2);
        let _: RefundRequest = round_trip(r#"{"refund":"KUDOS:2.5","reason":"broken"}"#);
        let w: WalletRefundResponse = round_trip(&format!(
            r#"{{"refund_amount":"KUDOS:1","merchant_pub":"{PUB}","refunds":[{{"type":"success",
            "exchange_status":200,"exchange_sig":"{SIG}","exchange_pub":"{PUB}","rtransaction_id":1,
            "coin_pub":"{PUB}","refund_amount":"KUDOS:1","execution_time":{{"t_s":1700000000}}}}]}}"#
        ));
        assert_eq!(w.refunds.len(), 1);
    }
}
