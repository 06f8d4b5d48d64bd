//! Webhooks (`/private/webhooks[/$ID]`) and the order event stream
//! (`/private/orders/events`).
//!
//! Field names follow docs.taler.net core/merchant post-private-webhooks
//! (`WebhookAddDetails`, `WebhookPatchDetails`, `WebhookSummaryResponse`,
//! `WebhookDetails`). Our additions: the optional `secret` of a webhook (the HMAC key of the
//! `Taler-Webhook-Signature` header; generated when absent and shown once, in
//! [`WebhookCreatedResponse`]) and [`OrderEvent`], the default body of a delivery and the `data`
//! of each Server-Sent Event.

use cardcash_util::{Amount, Timestamp};
use serde::{Deserialize, Serialize};

/// `POST /private/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookAddDetails {
    pub webhook_id: String,
    /// `order_created`, `pay`, `refund` or `order_settled`.
    pub event_type: String,
    pub url: String,
    /// `POST` (usual), `PUT`, `PATCH`, `GET`, `DELETE`.
    pub http_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_template: Option<String>,
    /// Our addition: the signing secret (at least 16 characters); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The answer to a `POST /private/webhooks` that created the webhook (our addition; the C
/// merchant answers 204): its signing secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookCreatedResponse {
    pub webhook_id: String,
    pub secret: String,
}

/// `PATCH /private/webhooks/$ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookPatchDetails {
    pub event_type: String,
    pub url: String,
    pub http_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_template: Option<String>,
    /// Our addition: a new signing secret (rotation); absent keeps the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET /private/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookSummaryResponse {
    pub webhooks: Vec<WebhookEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookEntry {
    pub webhook_id: String,
    pub event_type: String,
}

/// `GET /private/webhooks/$ID` (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookDetails {
    pub event_type: String,
    pub url: String,
    pub http_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_template: Option<String>,
}

/// One change of an order: the default webhook body and the `data` of a Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderEvent {
    /// Increases in the order events became visible; the SSE `id` and the
    /// `Taler-Webhook-Event-Id` header.
    pub event_id: u64,
    /// `order_created`, `pay`, `refund` or `order_settled`.
    pub event_type: String,
    pub instance: String,
    pub order_id: String,
    pub timestamp: Timestamp,
    pub summary: String,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_url: Option<String>,
    /// `pay`: the session the order was paid in (empty when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `refund`: what this refund added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<Amount>,
    /// `refund`: everything refunded of the order so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_total: Option<Amount>,
    /// `refund`: the reason given with the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
