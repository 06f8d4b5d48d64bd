//! The layers every service router gets: request ids, tracing, CORS, metrics, Taler bodies for
//! every error, a URI limit, UTF-8 paths, request bodies compressed with `deflate` or `gzip`,
//! a request timeout, a body limit (applied to the decompressed body), panic catching,
//! `/metrics`, and Taler-formatted 404/405 fallbacks.
//!
//! Services build their route table in `router.rs` (spec order), call `.with_state(state)`, and
//! pass the result to [`ServiceRouter::finish`]. Layers are added with `Router::layer`, so they
//! see the matched route and also wrap the fallbacks.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Method, Request, Response};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, Any as AnyOrigin, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::metrics::{UNMATCHED_ROUTE, serve_metrics, track};
use crate::middleware::{
    DEFAULT_MAX_URI_LEN, DEFAULT_REQUEST_TIMEOUT, RequestLimits, check_request, request_timeout,
    taler_error_bodies,
};
use crate::{ErrorCode, Metrics, TalerError};

/// Default limit for request bodies, after decompression (Taler's exchange accepts ~1 MiB JSON
/// uploads).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Header carrying the request id (set when absent, echoed in the response).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Builder for the shared service layers.
pub struct ServiceRouter {
    service: String,
    metrics: Metrics,
    body_limit: usize,
    request_timeout: Duration,
    max_uri_len: usize,
}

impl ServiceRouter {
    pub fn new(service: &str) -> Self {
        Self::with_metrics(service, Metrics::new())
    }

    pub fn with_metrics(service: &str, metrics: Metrics) -> Self {
        Self {
            service: service.to_owned(),
            metrics,
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_uri_len: DEFAULT_MAX_URI_LEN,
        }
    }

    /// The registry, to add service metrics before [`ServiceRouter::finish`].
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// Limit of a request body, counted after decompression (beyond: 413
    /// `GENERIC_UPLOAD_EXCEEDS_LIMIT`).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Time a handler has to answer, on top of the long-poll time the client asked for with
    /// `timeout_ms`/`long_poll_ms` (beyond: 503 `GENERIC_TIMEOUT`).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Longest request target (path and query) in bytes (beyond: 414 `GENERIC_URI_TOO_LONG`).
    pub fn max_uri_len(mut self, bytes: usize) -> Self {
        self.max_uri_len = bytes;
        self
    }

    /// Adds `/metrics`, fallbacks and all layers to a service's (stateless) router.
    pub fn finish(self, router: Router) -> Router {
        let (layer_state, registry) = self.metrics.into_parts();
        let service = self.service;
        let metrics_route = Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(registry);
        let make_span = move |request: &Request<Body>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            let request_id = request
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "request",
                service = %service,
                method = %request.method(),
                route = %route,
                request_id = %request_id,
            )
        };
        let on_response = |response: &Response<Body>, latency: Duration, _span: &Span| {
            tracing::info!(
                status = response.status().as_u16(),
                latency_ms = latency.as_millis() as u64,
                "response"
            );
        };
        // No credentials (cookies) cross-origin, so any origin may call. `Authorization` is not
        // covered by a `*` allow-list, hence mirroring; `expose_headers` lets browser wallets read
        // `ETag` (terms version) and `expiry` (keys cache) cross-origin.
        let cors = CorsLayer::new()
            .allow_origin(AnyOrigin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::PATCH])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(AnyOrigin);
        router
            .merge(metrics_route)
            .fallback(endpoint_unknown)
            .method_not_allowed_fallback(method_invalid)
            .layer(CatchPanicLayer::custom(panic_response))
            // Read by the body extractors, so it limits what they read: the decompressed
            // stream, chunk by chunk (a zip bomb stops at the limit).
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(axum::middleware::from_fn_with_state(
                self.request_timeout,
                request_timeout,
            ))
            // Only the codings `check_request` let through (normalised) arrive here.
            .layer(RequestDecompressionLayer::new().gzip(true).deflate(true))
            .layer(axum::middleware::from_fn_with_state(
                RequestLimits {
                    max_uri_len: self.max_uri_len,
                },
                check_request,
            ))
            .layer(axum::middleware::from_fn(taler_error_bodies))
            .layer(axum::middleware::from_fn_with_state(layer_state, track))
            .layer(cors)
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span)
                    .on_response(on_response)
                    // 5xx are logged once, with their cause, by `error_response`.
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
    }
}

/// Shorthand for `ServiceRouter::with_metrics(service, metrics).finish(router)`.
pub fn finish(router: Router, service: &str, metrics: Metrics) -> Router {
    ServiceRouter::with_metrics(service, metrics).finish(router)
}

async fn endpoint_unknown() -> TalerError {
    TalerError::not_found(
        ErrorCode::GenericEndpointUnknown,
        "there is no endpoint here",
    )
}

async fn method_invalid() -> TalerError {
    TalerError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::GenericMethodInvalid,
        "method not allowed for this endpoint",
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    TalerError::internal(
        ErrorCode::GenericInternalInvariantFailure,
        format!("handler panicked: {message}"),
    )
    .into_response()
}
