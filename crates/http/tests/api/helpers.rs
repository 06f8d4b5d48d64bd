//! A small service that uses every extractor, and request helpers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::{self, post};
use cardcash_http::{
    BasicAuth, CredentialVerifier, ErrorCode, LongPoll, Metrics, ServiceRouter, TalerError,
    TalerJson, TalerPath, TalerQuery, VerifierConfig, basic_auth_matches, wait_for_change,
};
use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tower::ServiceExt;

#[derive(Deserialize, Serialize)]
pub struct Echo {
    pub name: String,
    pub count: u32,
}

#[derive(Deserialize)]
struct Page {
    limit: i64,
}

#[derive(Clone)]
struct AppState {
    echoes: Counter,
    version: watch::Receiver<u64>,
    verifier: CredentialVerifier,
    /// `alice`'s stored argon2id hash (of "right").
    alice: Arc<str>,
}

/// Concurrent hashes allowed in the test app.
pub const TEST_HASH_LIMIT: usize = 2;

/// The PHC string of "right", hashed once per test binary.
fn alice_hash() -> Arc<str> {
    static HASH: OnceLock<Arc<str>> = OnceLock::new();
    HASH.get_or_init(|| {
        Arc::from(
            cardcash_crypto::password::hash(b"right")
                .expect("hash")
                .as_str(),
        )
    })
    .clone()
}

async fn post_echo(
    axum::extract::State(state): axum::extract::State<AppState>,
    TalerJson(body): TalerJson<Echo>,
) -> TalerJson<Echo> {
    state.echoes.inc();
    TalerJson(body)
}

async fn get_poll(poll: LongPoll) -> TalerJson<serde_json::Value> {
    TalerJson(serde_json::json!({ "timeout_ms": poll.timeout.as_millis() as u64 }))
}

async fn get_private(auth: BasicAuth) -> Result<&'static str, TalerError> {
    if basic_auth_matches(&auth, "exchange", "secret") {
        Ok("welcome")
    } else {
        Err(TalerError::unauthorized("test", "wrong credentials"))
    }
}

/// Basic auth against hashed secrets: only `alice` exists.
async fn get_login(
    axum::extract::State(state): axum::extract::State<AppState>,
    auth: BasicAuth,
) -> Result<&'static str, TalerError> {
    let stored = (auth.user == "alice").then_some(&*state.alice);
    if state
        .verifier
        .verify(&auth.user, &auth.password, stored)
        .await
    {
        Ok("welcome")
    } else {
        Err(TalerError::unauthorized("test", "wrong user or password"))
    }
}

/// A handler with axum's own (plain-text) path rejection.
async fn get_raw(axum::extract::Path(n): axum::extract::Path<u32>) -> String {
    n.to_string()
}

/// A handler answering an error with an empty body.
async fn get_bare_error() -> StatusCode {
    StatusCode::CONFLICT
}

/// Takes an hour, like a stuck handler.
async fn get_slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "finally"
}

/// Waits `timeout_ms` (a long poll that never sees a change), then answers.
async fn get_wait(poll: LongPoll) -> &'static str {
    tokio::time::sleep(poll.timeout).await;
    "waited"
}

async fn get_item(TalerPath(id): TalerPath<u32>) -> String {
    id.to_string()
}

async fn get_page(TalerQuery(page): TalerQuery<Page>) -> String {
    page.limit.to_string()
}

async fn get_panic() -> &'static str {
    panic!("boom")
}

async fn get_teapot() -> TalerError {
    TalerError::from_code(ErrorCode::GenericForbidden, "no")
}

/// Answers with the version once it is at least `min`, or the current one at the deadline.
async fn get_version(
    axum::extract::State(state): axum::extract::State<AppState>,
    poll: LongPoll,
    TalerQuery(q): TalerQuery<MinVersion>,
) -> String {
    let mut sub = state.version.clone();
    // Mark the current value seen: the subscription starts *before* the read below.
    sub.borrow_and_update();
    let reader = state.version.clone();
    let result = wait_for_change(
        poll.timeout,
        &mut sub,
        || std::future::ready(Ok::<_, TalerError>(*reader.borrow())),
        |v| *v >= q.min,
        |sub, d| Box::pin(async move { tokio::time::timeout(d, sub.changed()).await.is_ok() }),
    )
    .await;
    match result {
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

/// How a service error enum plugs in: `ApiError` + one `IntoResponse` via `error_response`.
#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error("order {0} is unknown")]
    UnknownOrder(String),
    #[error("database failed")]
    Db(#[source] std::io::Error),
}

impl cardcash_http::ApiError for ShopError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownOrder(_) => StatusCode::NOT_FOUND,
            Self::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownOrder(_) => ErrorCode::MerchantGenericOrderUnknown,
            Self::Db(_) => ErrorCode::GenericDbFetchFailed,
        }
    }
}

impl axum::response::IntoResponse for ShopError {
    fn into_response(self) -> axum::response::Response {
        cardcash_http::error_response(&self)
    }
}

async fn get_order(TalerPath(id): TalerPath<String>) -> Result<String, ShopError> {
    match id.as_str() {
        "broken" => Err(ShopError::Db(std::io::Error::other(
            "connection to postgres://secret@db refused",
        ))),
        "known" => Ok("ok".to_owned()),
        _ => Err(ShopError::UnknownOrder(id)),
    }
}

#[derive(Deserialize)]
struct MinVersion {
    min: u64,
}

pub struct TestApp {
    pub router: Router,
    pub version: watch::Sender<u64>,
    pub verifier: CredentialVerifier,
}

pub fn app(body_limit: usize) -> TestApp {
    app_with(body_limit, |router| router)
}

/// The test app with extra settings of the shared layers.
pub fn app_with(
    body_limit: usize,
    configure: impl FnOnce(ServiceRouter) -> ServiceRouter,
) -> TestApp {
    let (version, version_rx) = watch::channel(0);
    let echoes = Counter::default();
    let mut metrics = Metrics::new();
    metrics.register("echoes", "Echo requests served", echoes.clone());
    let verifier = CredentialVerifier::with_config(VerifierConfig {
        max_concurrent: Some(TEST_HASH_LIMIT),
        ..VerifierConfig::default()
    });
    verifier.register_metrics(&mut metrics);
    let state = AppState {
        echoes,
        version: version_rx,
        verifier: verifier.clone(),
        alice: alice_hash(),
    };
    let router = Router::new()
        .route("/echo", post(post_echo))
        .route("/poll", routing::get(get_poll))
        .route("/private", routing::get(get_private))
        .route("/items/{id}", routing::get(get_item))
        .route("/page", routing::get(get_page))
        .route("/panic", routing::get(get_panic))
        .route("/forbidden", routing::get(get_teapot))
        .route("/version", routing::get(get_version))
        .route("/orders/{id}", routing::get(get_order))
        .route("/login", routing::get(get_login))
        .route("/raw/{n}", routing::get(get_raw))
        .route("/bare-error", routing::get(get_bare_error))
        .route("/slow", routing::get(get_slow))
        .route("/wait", routing::get(get_wait))
        .with_state(state);
    let router = configure(ServiceRouter::with_metrics("test", metrics).body_limit(body_limit))
        .finish(router);
    TestApp {
        router,
        version,
        verifier,
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Response<Body> {
    tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request))
        .await
        .expect("request timed out")
        .expect("router is infallible")
}

pub async fn body_bytes(response: Response<Body>) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

/// Asserts a Taler error response and returns its body.
pub async fn taler_error(
    response: Response<Body>,
    status: StatusCode,
    code: u32,
) -> serde_json::Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let body: serde_json::Value =
        serde_json::from_slice(&body_bytes(response).await).expect("JSON error body");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["hint"].is_string(), "{body}");
    body
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}
