//! Creating, listing, deleting and forgetting orders (`POST /private/orders`,
//! `GET /private/orders`, `DELETE /private/orders/$ID`, `PATCH …/forget`).
//!
//! Spec: /work/shared/spec/merchant.md §1.5, §2.2, §2.8. The order itself stays raw JSON
//! ([`PostOrderRequest::order`]): its `extra` is free-form and its `$forgettable` salts are
//! part of the contract, so the backend reads it field by field.

use cardcash_util::{Amount, RelativeTime, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A product taken from the inventory into an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InventoryProduct {
    pub product_id: String,
    pub quantity: u64,
}

/// `POST /private/orders` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PostOrderRequest {
    /// Order v0: `amount`, `summary` and the optional contract fields.
    pub order: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_delay: Option<RelativeTime>,
    /// The wire method (payto target type, e.g. `iban`) to be paid with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_products: Option<Vec<InventoryProduct>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_uuids: Option<Vec<String>>,
    /// Default true: a claim token is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_id: Option<String>,
}

/// `POST /private/orders` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PostOrderResponse {
    pub order_id: String,
    /// The claim token (base32 of 16 bytes), unless `create_token` was false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One order of `GET /private/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderHistoryEntry {
    pub order_id: String,
    /// The cursor: pass it as `offset` for the next page.
    pub row_id: i64,
    pub timestamp: Timestamp,
    pub amount: Amount,
    pub summary: String,
    /// Paid, not wired, refund deadline not passed and not fully refunded.
    pub refundable: bool,
    pub paid: bool,
}

/// `GET /private/orders` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderHistory {
    pub orders: Vec<OrderHistoryEntry>,
}

/// `PATCH /private/orders/$ID/forget` body: JSONPath-like paths (`$.a.b`, `[n]`, `[*]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ForgetRequest {
    pub fields: Vec<String>,
}
