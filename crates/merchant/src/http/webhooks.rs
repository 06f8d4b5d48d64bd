//! `POST/GET /private/webhooks`, `GET/PATCH/DELETE /private/webhooks/$ID` and our
//! `GET /private/orders/events` (Server-Sent Events of order changes). Thin handlers: extract →
//! authorize → one call of `crate::webhooks` → response. See `crate::webhooks` for the
//! signature scheme and the event stream's semantics.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cardcash_api::merchant::webhooks::{
    WebhookAddDetails, WebhookDetails, WebhookPatchDetails, WebhookSummaryResponse,
};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use cardcash_store::Subscription;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::auth::{InstanceId, Permission};
use crate::db::webhooks::{OrderEventRow, TOPIC_EVENT};
use crate::error::MerchantError;
use crate::service::Merchant;
use crate::webhooks;

type Result<T> = std::result::Result<T, MerchantError>;

/// Events read from the database per query: all a connection ever buffers (the stream is
/// pulled, so a slow client holds back reading, not memory).
const PAGE: u32 = 64;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Re-read this often even without a notification (a safety net).
const RECHECK: Duration = Duration::from_secs(30);

/// The webhook and event-stream routes of every instance.
pub fn routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/post-private-webhooks.html (and the GET beside)
        .route(
            "/private/webhooks",
            get(get_private_webhooks).post(post_private_webhooks),
        )
        .route(
            "/private/webhooks/{webhook_id}",
            get(get_private_webhook)
                .patch(patch_private_webhook)
                .delete(delete_private_webhook),
        )
        // Ours: Server-Sent Events of order changes. A static segment, so axum prefers it to
        // `/private/orders/{order_id}`.
        .route("/private/orders/events", get(get_private_order_events))
}

#[derive(Debug, Deserialize)]
pub struct WebhookPath {
    pub webhook_id: String,
}

pub async fn post_private_webhooks(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerJson(request): TalerJson<WebhookAddDetails>,
) -> Result<Response> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::WebhooksWrite)
        .await?;
    Ok(
        match webhooks::create_webhook(m, &instance, request).await? {
            Some(created) => TalerJson(created).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

pub async fn get_private_webhooks(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
) -> Result<TalerJson<WebhookSummaryResponse>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::WebhooksRead).await?;
    Ok(TalerJson(webhooks::list_webhooks(m, &instance).await?))
}

pub async fn get_private_webhook(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<WebhookPath>,
) -> Result<TalerJson<WebhookDetails>> {
    let m = &state.merchant;
    let instance = m.authorize(&id, &headers, Permission::WebhooksRead).await?;
    Ok(TalerJson(
        webhooks::get_webhook(m, &instance, &path.webhook_id).await?,
    ))
}

pub async fn patch_private_webhook(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<WebhookPath>,
    TalerJson(request): TalerJson<WebhookPatchDetails>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::WebhooksWrite)
        .await?;
    webhooks::patch_webhook(m, &instance, &path.webhook_id, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_private_webhook(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerPath(path): TalerPath<WebhookPath>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::WebhooksWrite)
        .await?;
    webhooks::delete_webhook(m, &instance, &path.webhook_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Start after this event id (as `Last-Event-ID`, which wins when both are given).
    pub since: Option<i64>,
}

/// `GET /private/orders/events`: `text/event-stream` of the instance's order events
/// (`id: <event id>`, `event: <event type>`, `data: <OrderEvent JSON>`), from after
/// `Last-Event-ID` (or `?since=`), else from now on; every event once, in order.
pub async fn get_private_order_events(
    State(state): State<AppState>,
    id: InstanceId,
    headers: HeaderMap,
    TalerQuery(query): TalerQuery<EventsQuery>,
) -> Result<Response> {
    let m = state.merchant.clone();
    let instance = m.authorize(&id, &headers, Permission::OrdersRead).await?;
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| MerchantError::malformed("Last-Event-ID"))?,
        ),
        None => None,
    };
    // Subscribe before the first read: nothing committed after it can be missed.
    let subscription = m.store().notifier().subscribe_topic(TOPIC_EVENT);
    let cursor = match last.or(query.since) {
        Some(n) => n.max(0),
        None => m.store().last_event_serial().await?,
    };
    let stream = EventStream {
        merchant: m,
        instance_serial: instance.serial,
        instance_id: instance.id,
        cursor,
        buffer: VecDeque::new(),
        subscription,
        stop: cardcash_http::longpoll::shutdown_token().unwrap_or_default(),
    };
    let events = futures_util::stream::unfold(stream, EventStream::next);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The state of one event stream.
struct EventStream {
    merchant: Merchant,
    instance_serial: i64,
    instance_id: String,
    /// The last event sent (or the start).
    cursor: i64,
    buffer: VecDeque<OrderEventRow>,
    subscription: Subscription,
    /// The server's shutdown: the stream ends so that graceful shutdown is not held open.
    stop: CancellationToken,
}

impl EventStream {
    async fn next(mut self) -> Option<(std::result::Result<Event, Infallible>, Self)> {
        loop {
            if let Some(row) = self.buffer.pop_front() {
                self.cursor = row.serial;
                let event = match webhooks::order_event(
                    self.merchant.store(),
                    &self.instance_id,
                    &row,
                )
                .and_then(|e| {
                    serde_json::to_string(&e)
                        .map_err(|e| MerchantError::Internal(format!("event JSON: {e}")))
                }) {
                    Ok(json) => Event::default()
                        .id(row.serial.to_string())
                        .event(row.event_type.as_str())
                        .data(json),
                    Err(e) => {
                        tracing::error!(error = %e, event = row.serial, "event stream: bad event; closing");
                        return None;
                    }
                };
                return Some((Ok(event), self));
            }
            if self.stop.is_cancelled() {
                return None;
            }
            match self
                .merchant
                .store()
                .order_events_after(self.instance_serial, self.cursor, PAGE)
                .await
            {
                Ok(rows) if !rows.is_empty() => {
                    self.buffer.extend(rows);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // The client reconnects with Last-Event-ID and loses nothing.
                    tracing::warn!(error = %e, "event stream: cannot read events; closing");
                    return None;
                }
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                _ = self.subscription.wait(RECHECK) => {}
            }
        }
    }
}
