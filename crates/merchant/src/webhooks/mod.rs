//! Webhooks and the order event stream (issue 10, "beyond the C merchant"): what integrators
//! asked for, since the C merchant's webhooks carry no signature (plugins put shared secrets in
//! the URL) and shops poll for payments on timers.
//!
//! # Events
//! Triggers on `orders` (migration 0006) capture `order_created`, `pay` (paid 0 → 1),
//! `refund` (the refunded total grows) and `order_settled` (wired 0 → 1) in the transaction of
//! the change, whoever makes it; the sequencer ([`worker`]) numbers committed events
//! (`event_serial`, gap-free in visibility order) and makes the webhook deliveries. Both the
//! webhooks and `GET /private/orders/events` (Server-Sent Events, [`crate::http::webhooks`])
//! read only sequenced events.
//!
//! # Webhooks
//! `POST/GET /private/webhooks`, `GET/PATCH/DELETE /private/webhooks/$ID` with the C merchant's
//! `{webhook_id, event_type, url, http_method, header_template?, body_template?}`. Every
//! delivery is an HTTP request to `url` with `http_method` and:
//! - body: `body_template` with `{{name}}` replaced (see [`template_vars`]), or by default the
//!   event as JSON ([`cardcash_api::merchant::webhooks::OrderEvent`]);
//! - headers: each `Name: value` line of `header_template` (after substitution), then
//!   `Taler-Webhook-Event-Id: <event id>` (the same on every attempt: receivers deduplicate by
//!   it), `Taler-Webhook-Event-Type`, `Taler-Webhook-Timestamp: <unix seconds of the attempt>`
//!   and `Taler-Webhook-Signature: v1=<hex HMAC-SHA512(secret, "<timestamp>.<body>")>`.
//!
//! A receiver verifies by recomputing the HMAC over the timestamp header, a dot and the raw body,
//! comparing in constant time, and refusing timestamps too far from its clock (replays). The
//! secret (our addition, `secret` in the creation request, at least 16 characters) is
//! generated when absent and answered once, in the creation response; `PATCH` may rotate it;
//! `GET` never shows it.
//!
//! # Destinations
//! A webhook reaches public addresses only, unless `[merchant] WEBHOOK_ALLOW_PRIVATE_ADDRESSES
//! = yes` ([`destination`]: instance owners are tenants and must not make the backend reach its
//! own network). A URL that is not http(s), carries `user:password@` or names a refused IP
//! literal is refused at creation and change (400 `GENERIC_PARAMETER_MALFORMED`, hint naming
//! `url`); a name is resolved at every attempt, and only to public addresses.
//!
//! # Retries
//! A 2xx ends a delivery; redirects are not followed and at most [`MAX_ERROR_BODY`] bytes of a
//! failed answer are read (into the recorded error). Any other answer, a transport failure or a
//! refused destination (`refused: …` in the log and the delivery's `last_error`; DNS may change,
//! so may the option) is retried after `WEBHOOK_RETRY_DELAY` (default 10 s), doubling per
//! attempt up to [`MAX_RETRY_DELAY`]; after [`MAX_ATTEMPTS`] attempts or [`GIVE_UP_AFTER`] since the event, the delivery is marked failed.
//! Delivery is at least once: an attempt is leased ([`LEASE`]) and repeated if the worker dies
//! before recording its outcome. Deliveries never run on a request's path.
//!
//! # Retention
//! Events older than [`EVENT_RETENTION`] that no pending delivery needs are deleted (hourly, by
//! the sequencer), never the newest one, so the numbering never restarts.

pub mod destination;
pub mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use cardcash_api::merchant::webhooks::{
    OrderEvent, WebhookAddDetails, WebhookCreatedResponse, WebhookDetails, WebhookEntry,
    WebhookPatchDetails, WebhookSummaryResponse,
};
use cardcash_util::{Amount, ErrorCode, Timestamp};

use crate::db::MerchantStore;
use crate::db::instances::InstanceRow;
use crate::db::webhooks::{
    CreateWebhook, DeliveryJob, OrderEventRow, WebhookChange, WebhookRow, WebhookSecret,
    payload_amount,
};
use crate::error::MerchantError;
use crate::service::Merchant;

/// The event types a webhook can subscribe to.
pub const EVENT_TYPES: [&str; 4] = ["order_created", "pay", "refund", "order_settled"];
/// Methods a webhook may use.
const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "GET", "DELETE"];
/// Shortest secret accepted from a client.
const MIN_SECRET_LEN: usize = 16;

/// Longest pause between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Attempts at most per delivery.
pub const MAX_ATTEMPTS: u32 = 40;
/// No attempt later than this after the event.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long an attempt holds its delivery (longer than the request timeout).
pub const LEASE: Duration = Duration::from_secs(60);
/// Events are kept this long (then deleted unless a delivery still needs them): an event
/// stream resumed after longer starts at the oldest event kept.
pub const EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The request timeout of an attempt (resolution, connection, answer and what is read of it).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// The most read of a failed attempt's answer (kept in its error); a 2xx answer is not read.
pub const MAX_ERROR_BODY: usize = 256;

pub const HEADER_EVENT_ID: &str = "Taler-Webhook-Event-Id";
pub const HEADER_EVENT_TYPE: &str = "Taler-Webhook-Event-Type";
pub const HEADER_TIMESTAMP: &str = "Taler-Webhook-Timestamp";
pub const HEADER_SIGNATURE: &str = "Taler-Webhook-Signature";

type Result<T> = std::result::Result<T, MerchantError>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `v1=<hex HMAC-SHA512(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "v1={}",
        hex(&cardcash_crypto::mac::hmac_sha512(
            secret.as_bytes(),
            &message
        ))
    )
}

/// Whether `header` (a `Taler-Webhook-Signature` value) signs `body` at `timestamp` with
/// `secret` (constant-time). For receivers and tests.
pub fn verify_signature(secret: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(tag_hex) = header.strip_prefix("v1=") else {
        return false;
    };
    let Some(tag) = unhex(tag_hex) else {
        return false;
    };
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    cardcash_crypto::mac::hmac_sha512_verify(secret.as_bytes(), &message, &tag)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Replaces each `{{ name }}` of `template` by `vars[name]` (unknown names by nothing).
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some(value) = vars.get(name) {
                    out.push_str(value);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The public form of an event of `instance_id`.
pub fn order_event(
    store: &MerchantStore,
    instance_id: &str,
    row: &OrderEventRow,
) -> Result<OrderEvent> {
    let p = &row.payload;
    let text = |name: &str| p.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let amount = payload_amount(store, p, "amount")?
        .ok_or_else(|| MerchantError::Internal("event without amount".into()))?;
    let total = payload_amount(store, p, "refund_total")?;
    let before = payload_amount(store, p, "refund_before")?;
    let refund_amount = match (&total, &before) {
        (Some(t), Some(b)) => Some(
            t.checked_sub(b)
                .map_err(|e| MerchantError::Internal(format!("refund increase: {e}")))?,
        ),
        _ => None,
    };
    Ok(OrderEvent {
        event_id: u64::try_from(row.serial).unwrap_or(0),
        event_type: row.event_type.clone(),
        instance: instance_id.to_owned(),
        order_id: row.order_id.clone(),
        timestamp: row.created_at,
        summary: text("summary").unwrap_or_default(),
        amount,
        fulfillment_url: text("fulfillment_url"),
        session_id: text("session_id"),
        refund_amount,
        refund_total: total,
        reason: text("reason"),
    })
}

/// The `{{name}}` variables of a delivery's templates: `event_id`, `event_type`, `instance`,
/// `order_id`, `timestamp` (seconds), `summary`, `amount`, `fulfillment_url`, `session_id`,
/// `refund_amount`, `refund_total`, `reason`, `contract_terms` (JSON text) and `event` (the
/// default body, JSON text).
pub fn template_vars(
    event: &OrderEvent,
    contract_terms: Option<&str>,
) -> BTreeMap<&'static str, String> {
    let amount = |a: &Option<Amount>| a.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut vars = BTreeMap::new();
    vars.insert("event_id", event.event_id.to_string());
    vars.insert("event_type", event.event_type.clone());
    vars.insert("instance", event.instance.clone());
    vars.insert("order_id", event.order_id.clone());
    vars.insert("timestamp", timestamp_secs(event.timestamp).to_string());
    vars.insert("summary", event.summary.clone());
    vars.insert("amount", event.amount.to_string());
    vars.insert(
        "fulfillment_url",
        event.fulfillment_url.clone().unwrap_or_default(),
    );
    vars.insert("session_id", event.session_id.clone().unwrap_or_default());
    vars.insert("refund_amount", amount(&event.refund_amount));
    vars.insert("refund_total", amount(&event.refund_total));
    vars.insert("reason", event.reason.clone().unwrap_or_default());
    vars.insert(
        "contract_terms",
        contract_terms.unwrap_or("null").to_owned(),
    );
    vars.insert("event", serde_json::to_string(event).unwrap_or_default());
    vars
}

fn timestamp_secs(t: Timestamp) -> u64 {
    t.as_micros() / 1_000_000
}

/// What one attempt sends.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub method: String,
    pub url: String,
    /// Template headers, then ours.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Builds the request of an attempt at `now` (seconds since the epoch).
pub fn build_delivery(store: &MerchantStore, job: &DeliveryJob, now_secs: u64) -> Result<Delivery> {
    let event = order_event(store, &job.instance_id, &job.event)?;
    let vars = template_vars(&event, job.contract_terms.as_deref());
    let body = match &job.webhook.body_template {
        Some(t) => render(t, &vars).into_bytes(),
        None => serde_json::to_vec(&event)
            .map_err(|e| MerchantError::Internal(format!("event JSON: {e}")))?,
    };
    let mut headers = Vec::new();
    if job.webhook.body_template.is_none() {
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    }
    if let Some(t) = &job.webhook.header_template {
        for line in render(t, &vars).lines() {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                // Our headers are ours: a template cannot forge or shadow them.
                let reserved = name.to_ascii_lowercase().starts_with("taler-webhook-");
                if !name.is_empty() && !reserved {
                    headers.push((name.to_owned(), value.trim().to_owned()));
                }
            }
        }
    }
    headers.push((HEADER_EVENT_ID.to_owned(), event.event_id.to_string()));
    headers.push((HEADER_EVENT_TYPE.to_owned(), event.event_type.clone()));
    headers.push((HEADER_TIMESTAMP.to_owned(), now_secs.to_string()));
    headers.push((
        HEADER_SIGNATURE.to_owned(),
        signature(&job.webhook.secret.0, now_secs, &body),
    ));
    Ok(Delivery {
        method: job.webhook.http_method.clone(),
        url: job.webhook.url.clone(),
        headers,
        body,
    })
}

/// The pause after the `attempts`-th failed attempt (1-based): `base`, doubling, capped.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(MAX_RETRY_DELAY)
}

// ----- the private API's domain calls -----

fn unknown(id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericWebhookUnknown,
        format!("no webhook {id:?}"),
    )
}

fn check_settings(m: &Merchant, event_type: &str, url: &str, http_method: &str) -> Result<()> {
    if !EVENT_TYPES.contains(&event_type) {
        return Err(MerchantError::malformed(&format!(
            "event_type (one of {})",
            EVENT_TYPES.join(", ")
        )));
    }
    // GENERIC_PARAMETER_MALFORMED naming the field, as the C merchant answers a field it
    // cannot parse.
    destination::check_url(url, m.config().webhook_allow_private_addresses)
        .map_err(|why| MerchantError::malformed(&format!("url: {why}")))?;
    if !METHODS.contains(&http_method) {
        return Err(MerchantError::malformed("http_method"));
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(MerchantError::malformed(&format!(
            "secret (at least {MIN_SECRET_LEN} characters)"
        )));
    }
    Ok(())
}

fn generate_secret() -> Result<String> {
    let bytes = cardcash_crypto::random::random_bytes::<32>()
        .map_err(|e| MerchantError::Internal(format!("randomness: {e}")))?;
    Ok(format!("whsec_{}", hex(&bytes)))
}

/// `POST /private/webhooks`: `Some` (with the secret) when created, `None` for a replay.
pub async fn create_webhook(
    m: &Merchant,
    instance: &InstanceRow,
    req: WebhookAddDetails,
) -> Result<Option<WebhookCreatedResponse>> {
    if req.webhook_id.is_empty() || req.webhook_id.contains('/') {
        return Err(MerchantError::malformed("webhook_id"));
    }
    check_settings(m, &req.event_type, &req.url, &req.http_method)?;
    let secret_given = req.secret.is_some();
    let secret = match req.secret {
        Some(s) => {
            check_secret(&s)?;
            s
        }
        None => generate_secret()?,
    };
    let row = WebhookRow {
        serial: 0,
        id: req.webhook_id.clone(),
        event_type: req.event_type,
        url: req.url,
        http_method: req.http_method,
        header_template: req.header_template,
        body_template: req.body_template,
        secret: WebhookSecret(secret.clone()),
    };
    match m
        .store()
        .create_webhook(instance.serial, row, secret_given)
        .await?
    {
        CreateWebhook::Created => Ok(Some(WebhookCreatedResponse {
            webhook_id: req.webhook_id,
            secret,
        })),
        CreateWebhook::Same => Ok(None),
        CreateWebhook::Conflict => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostWebhooksConflictWebhookExists,
            format!("another webhook {:?} exists", req.webhook_id),
        )),
    }
}

pub async fn list_webhooks(m: &Merchant, instance: &InstanceRow) -> Result<WebhookSummaryResponse> {
    Ok(WebhookSummaryResponse {
        webhooks: m
            .store()
            .webhooks(instance.serial)
            .await?
            .into_iter()
            .map(|w| WebhookEntry {
                webhook_id: w.id,
                event_type: w.event_type,
            })
            .collect(),
    })
}

pub async fn get_webhook(m: &Merchant, instance: &InstanceRow, id: &str) -> Result<WebhookDetails> {
    let w = m
        .store()
        .webhook(instance.serial, id)
        .await?
        .ok_or_else(|| unknown(id))?;
    Ok(WebhookDetails {
        event_type: w.event_type,
        url: w.url,
        http_method: w.http_method,
        header_template: w.header_template,
        body_template: w.body_template,
    })
}

pub async fn patch_webhook(
    m: &Merchant,
    instance: &InstanceRow,
    id: &str,
    req: WebhookPatchDetails,
) -> Result<()> {
    check_settings(m, &req.event_type, &req.url, &req.http_method)?;
    if let Some(s) = &req.secret {
        check_secret(s)?;
    }
    let change = WebhookChange {
        event_type: req.event_type,
        url: req.url,
        http_method: req.http_method,
        header_template: req.header_template,
        body_template: req.body_template,
        secret: req.secret.map(WebhookSecret),
    };
    if m.store()
        .update_webhook(instance.serial, id, change)
        .await?
    {
        Ok(())
    } else {
        Err(unknown(id))
    }
}

pub async fn delete_webhook(m: &Merchant, instance: &InstanceRow, id: &str) -> Result<()> {
    if m.store().delete_webhook(instance.serial, id).await? {
        Ok(())
    } else {
        Err(unknown(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_replace_known_names_and_drop_unknown_ones() {
        let mut vars = BTreeMap::new();
        vars.insert("order_id", "2026.340-X".to_owned());
        vars.insert("amount", "KUDOS:1.5".to_owned());
        assert_eq!(
            render(
                "{\"o\":\"{{order_id}}\",\"a\":\"{{ amount }}\",\"x\":\"{{nope}}\"} {{",
                &vars
            ),
            "{\"o\":\"2026.340-X\",\"a\":\"KUDOS:1.5\",\"x\":\"\"} {{"
        );
    }

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let s = signature("whsec_test_secret_123", 1_700_000_000, b"{\"a\":1}");
        assert!(s.starts_with("v1=") && s.len() == 3 + 128, "{s}");
        assert!(verify_signature(
            "whsec_test_secret_123",
            1_700_000_000,
            b"{\"a\":1}",
            &s
        ));
        assert!(!verify_signature(
            "whsec_test_secret_123",
            1_700_000_001,
            b"{\"a\":1}",
            &s
        ));
        assert!(!verify_signature(
            "whsec_test_secret_123",
            1_700_000_000,
            b"{\"a\":2}",
            &s
        ));
        assert!(!verify_signature(
            "another_secret_12345",
            1_700_000_000,
            b"{\"a\":1}",
            &s
        ));
        // Known answer (Python's hmac.new(secret, b"1700000000.{\"a\":1}", sha512)).
        assert_eq!(
            s,
            "v1=0db21160dc243b24d52bdc14881c596724370f86aeef47d0f51962a19ee423c8\
             ffaaa47b2fbe62617d183edba760dd8856a5fde784d2f236134cc3f3c232e1e6"
        );
    }

    #[test]
    fn the_retry_delay_is_configured_in_the_merchant_section() {
        let cfg = cardcash_util::TalerConfig::parse_str(
            "[merchant]\nCURRENCY = KUDOS\nWEBHOOK_RETRY_DELAY = 2 minutes\n",
        )
        .unwrap();
        let c = crate::MerchantConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(
            c.webhook_retry_delay,
            cardcash_util::RelativeTime::from_secs(120)
        );
        let cfg = cardcash_util::TalerConfig::parse_str("[merchant]\nCURRENCY = KUDOS\n").unwrap();
        let c = crate::MerchantConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(
            c.webhook_retry_delay,
            cardcash_util::RelativeTime::from_secs(10)
        );
    }

    #[test]
    fn retries_double_from_the_base_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let d: Vec<_> = (1..=4).map(|n| retry_delay(base, n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800]);
        assert_eq!(retry_delay(Duration::from_secs(10), 30), MAX_RETRY_DELAY);
    }
}
