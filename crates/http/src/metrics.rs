//! Prometheus metrics: one registry per service (no global state, so `cardcash demo` can run
//! every service in one process), HTTP request counters and latency histograms labelled by the
//! *matched route* (never the raw path, which would explode cardinality) and by method (the
//! standard ones, every other name as `other`), and the `/metrics` handler in OpenMetrics text
//! format. Label values are thus bounded by the route table: no request can add a time series.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Content type of the `/metrics` response.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Route label for requests that matched no route (a fixed value keeps cardinality bounded).
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// Method label for every method outside the standard ones (clients choose method names
/// freely; each new name would otherwise be a new time series).
pub const OTHER_METHOD: &str = "other";

/// The method label of a request: one of the nine standard methods, or [`OTHER_METHOD`].
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// The route label of a request: its matched route template (`/items/{id}`), never the raw
/// path, or [`UNMATCHED_ROUTE`].
pub fn route_label(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s: covers fast lookups and full 30 s long polls.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The handles the middleware updates; cheap to clone (all `Arc` inside).
#[derive(Clone)]
struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily,
    in_flight: Gauge,
}

/// A service's metrics registry with the standard HTTP metrics already registered.
///
/// Register service-specific metrics with [`Metrics::registry_mut`] (or [`Metrics::register`])
/// before handing it to [`crate::ServiceRouter`]; keep a clone of each metric handle to update it.
pub struct Metrics {
    registry: Registry,
    http: HttpMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route and status",
            http.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by method and matched route",
            http.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being processed",
            http.in_flight.clone(),
        );
        Self { registry, http }
    }

    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Registers a service metric; keep a clone of `metric` to update it.
    pub fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.registry.register(name, help, metric);
    }

    /// Renders the registry in OpenMetrics text format.
    pub fn encode(&self) -> String {
        encode_registry(&self.registry)
    }

    /// Splits into the middleware handles and the shared registry for the `/metrics` handler.
    pub(crate) fn into_parts(self) -> (MetricsLayerState, Arc<Registry>) {
        (
            MetricsLayerState { http: self.http },
            Arc::new(self.registry),
        )
    }
}

fn encode_registry(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail except through a bug in an encoder; an empty or partial
    // exposition is still better than failing the scrape.
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        tracing::error!("failed to encode metrics");
    }
    text
}

/// State of the request-counting middleware.
#[derive(Clone)]
pub(crate) struct MetricsLayerState {
    http: HttpMetrics,
}

/// Decrements the in-flight gauge even when the handler future is dropped (client went away).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `axum::middleware::from_fn_with_state` middleware; must be added with `Router::layer` so the
/// matched route is known.
pub(crate) async fn track(
    State(state): State<MetricsLayerState>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    let route = route_label(&request).to_owned();
    state.http.in_flight.inc();
    let _guard = InFlight(state.http.in_flight.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    state
        .http
        .duration
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(elapsed);
    state
        .http
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Handler for `GET /metrics`.
pub(crate) async fn serve_metrics(State(registry): State<Arc<Registry>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
        )],
        encode_registry(&registry),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_metrics_appear() {
        let mut metrics = Metrics::new();
        let withdrawals: Counter = Counter::default();
        metrics.register("withdrawals", "Withdrawals confirmed", withdrawals.clone());
        withdrawals.inc_by(3);
        let text = metrics.encode();
        assert!(text.contains("withdrawals_total 3"), "{text}");
        assert!(text.contains("http_requests_in_flight 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
