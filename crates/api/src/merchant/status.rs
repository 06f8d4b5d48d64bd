//! Order status for the merchant and the wallet (`GET /private/orders/$ID`, `GET /orders/$ID`),
//! claim and `/paid`.
//!
//! Spec: docs.taler.net core/merchant `get-private-orders-ORDER_ID`, `get-orders-ORDER_ID`,
//! `post-orders-ORDER_ID-paid` (our notes: spec/merchant.md §2.6, §2.9). The wallet-facing
//! claim and paid request types and the 200/402 public answers live in the parent module
//! ([`super::ClaimRequest`], [`super::PaidRequest`], [`super::OrderStatusPaid`],
//! [`super::OrderStatusUnpaid`]).

use cardcash_util::{Amount, Timestamp};
use serde::{Deserialize, Serialize};

/// `GET /private/orders/$ORDER_ID`: discriminated by `order_status`. "Claimed" and "paid" are
/// relative to the `session_id` asked about: an order paid under another session is "claimed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "order_status", rename_all = "lowercase")]
pub enum MerchantOrderStatusResponse {
    Unpaid(OrderStatusUnpaidPrivate),
    Claimed(OrderStatusClaimed),
    Paid(Box<OrderStatusPaidPrivate>),
}

/// An order no wallet has paid (nor, usually, claimed) yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderStatusUnpaidPrivate {
    /// The `taler://pay` URI for this request's session.
    pub taler_pay_uri: String,
    pub creation_time: Timestamp,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub total_amount: Option<Amount>,
    /// Another order with the same fulfillment URL already paid in this session (repurchase).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub already_paid_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub already_paid_fulfillment_url: Option<String>,
    /// The public order page (`…/orders/$ID?token=…&session_id=…`).
    pub order_status_url: String,
}

/// Claimed by a wallet but not paid (in this session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderStatusClaimed {
    pub contract_terms: serde_json::Value,
    /// The public order page (`…/orders/$ID?h_contract=…&session_id=…`).
    pub order_status_url: String,
}

/// Paid (in this session, or with no session asked about).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderStatusPaidPrivate {
    /// Whether any refund was granted.
    pub refunded: bool,
    /// Whether a granted refund was not yet picked up by the wallet.
    pub refund_pending: bool,
    /// Whether the exchange's wire transfer for this order was reconciled.
    pub wired: bool,
    /// What the exchange pays us for this order: contributions minus deposit fees.
    pub deposit_total: Amount,
    /// 0 unless tracking the transfer at the exchange failed.
    pub exchange_code: u32,
    pub exchange_http_status: u32,
    /// Total refund granted.
    pub refund_amount: Amount,
    pub contract_terms: serde_json::Value,
    pub last_payment: Timestamp,
    pub wire_details: Vec<TransactionWireTransfer>,
    pub wire_reports: Vec<serde_json::Value>,
    pub refund_details: Vec<RefundDetails>,
    pub order_status_url: String,
}

/// A wire transfer of the exchange that (partly) pays this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransactionWireTransfer {
    pub exchange_url: String,
    /// Wire transfer id (base32, 32 bytes).
    pub wtid: String,
    pub execution_time: Timestamp,
    /// This order's share of the transfer.
    pub amount: Amount,
    /// Whether the transfer was confirmed as received.
    pub confirmed: bool,
}

/// One refund grant of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RefundDetails {
    pub reason: String,
    /// Not yet picked up by the wallet.
    pub pending: bool,
    pub timestamp: Timestamp,
    pub amount: Amount,
}

/// `GET /orders/$ORDER_ID` 202: go elsewhere (no credentials: the order's public reorder page;
/// paid in this session with the claim token: the fulfillment page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct StatusGotoResponse {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_reorder_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_url: Option<String>,
}

/// `POST /orders/$ORDER_ID/paid` 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PaidRefundStatusResponse {
    /// Whether the order was (partly) refunded: a wallet should not show it as fully paid.
    pub refunded: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pos_confirmation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_status_is_tagged_by_order_status() {
        let unpaid = json!({
            "order_status": "unpaid",
            "taler_pay_uri": "taler://pay/shop.example/o1/s1?c=ABC",
            "creation_time": {"t_s": 1700000000},
            "summary": "Sonatas",
            "total_amount": "KUDOS:5",
            "order_status_url": "https://shop.example/orders/o1?token=ABC&session_id=s1",
        });
        let parsed: MerchantOrderStatusResponse = serde_json::from_value(unpaid.clone()).unwrap();
        assert!(matches!(parsed, MerchantOrderStatusResponse::Unpaid(_)));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), unpaid);
        let claimed = json!({
            "order_status": "claimed",
            "contract_terms": {"order_id": "o1"},
            "order_status_url": "https://shop.example/orders/o1?h_contract=X",
        });
        let parsed: MerchantOrderStatusResponse = serde_json::from_value(claimed.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), claimed);
    }

    #[test]
    fn paid_refund_status() {
        let r: PaidRefundStatusResponse =
            serde_json::from_value(json!({"refunded": true})).unwrap();
        assert!(r.refunded);
        assert_eq!(serde_json::to_value(&r).unwrap(), json!({"refunded": true}));
        let goto = StatusGotoResponse {
            public_reorder_url: Some("https://shop.example/a".into()),
            fulfillment_url: None,
        };
        assert_eq!(
            serde_json::to_value(&goto).unwrap(),
            json!({"public_reorder_url": "https://shop.example/a"})
        );
    }
}
