//! axum plumbing shared by every cardcash service: Taler error bodies and refusals, extractors
//! with Taler rejections, auth helpers and the credential verifier for hashed secrets, long polling, the
//! background-worker runner, Prometheus metrics with bounded labels, the common router layers
//! (compressed request bodies, URI/body limits, request timeouts, Taler bodies for every error)
//! and serving with connection limits, timeouts and graceful shutdown.
//!
//! This crate holds no business logic and no SQL, and does not depend on the store: long polls
//! and workers take a "wait" function instead of a subscription type.

pub mod auth;
pub mod credential;
pub mod error;
pub mod extract;
pub mod longpoll;
pub mod metrics;
pub mod middleware;
pub mod refusal;
pub mod router;
pub mod serve;
pub mod telemetry;
mod transport;
pub mod wire_gateway;
pub mod worker;

pub use auth::{BasicAuth, BearerToken, basic_auth_matches, constant_time_eq};
pub use cardcash_util::ErrorCode;
pub use credential::{CredentialVerifier, VerifierConfig};
pub use error::{ApiError, TalerError, error_response};
pub use extract::{TalerJson, TalerPath, TalerQuery};
pub use longpoll::{
    LongPoll, MAX_LONG_POLL, shutdown_token, wait_for_change, wait_for_change_until,
};
pub use metrics::Metrics;
pub use middleware::CompressedBody;
pub use refusal::Refusal;
pub use router::{DEFAULT_BODY_LIMIT, ServiceRouter, finish};
pub use serve::{ServeConfig, Server, serve, serve_with};
pub use telemetry::{init_tracing, init_tracing_with_default};
pub use worker::{Backoff, Step, WorkerMetrics, WorkerRunner};

/// What [`refusal_constructors!`] names through `$crate`, so its users need no further imports.
#[doc(hidden)]
pub mod reexport {
    pub use axum::http::StatusCode;
    pub use serde_json::Value;
}
