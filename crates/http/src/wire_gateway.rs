//! The Taler Wire Gateway API (docs.taler.net core/api-bank-wire), served once for every
//! backend: the bank (one gateway per exchange account) and C2EC both implement
//! [`WireGatewayBackend`] and mount [`router`], so they cannot disagree on parameters, paging,
//! long polling, empty answers, per-row accounts or error bodies again.
//!
//! The router owns everything that is protocol: `/config`, authentication order (the backend
//! says who may do what, the router asks it first, before parsing anything), the shared history
//! parameters ([`HistoryParams`]), long polling on the backend's notifications, 204 for empty
//! pages, the account inside every history row (v0 clients need it, see below), row-id parsing
//! and the Taler error bodies of malformed requests. A backend only reads and writes its data.
//!
//! # Version
//! [`VERSION`] is `3:0:3`: we serve v3 (`GET /transfers`, `GET /transfers/$ROW_ID`), v2
//! (`limit`/`offset`/`timeout_ms`), and still everything v0 clients need: the legacy parameter
//! names `delta`/`start`/`long_poll_ms`, and the exchange account inside every history row
//! (`credit_account` of incoming, `debit_account` of outgoing transactions), which the December
//! 2022 exchange's wirewatch requires (its parser fails on the first row without it). v1 added
//! the `KYCAUTH` incoming type: neither backend receives KYC-authentication transfers, so no
//! such row ever appears. We do not claim v4 (account check) or v5 (metadata).
//!
//! This module does no IO of its own and knows no SQL: reads, writes and notifications are the
//! backend's.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cardcash_api::wire_gateway::{
    API_NAME, AddIncomingRequest, AddIncomingResponse, HistoryParamError, HistoryParams,
    HistoryQuery, IncomingHistory, OutgoingHistory, TransferList, TransferRequest,
    TransferResponse, TransferState, TransferStatus, TransfersQuery, WireConfig,
};
use cardcash_util::{Amount, Currency, LibtoolVersion};
use tokio::time::Instant;

use crate::longpoll::{WaitFuture, shutdown_token};

#[cfg(feature = "testing")]
pub mod conformance;
use crate::{ErrorCode, TalerError, TalerJson, TalerQuery};

/// The Wire Gateway protocol version both services announce (see the module docs).
pub const VERSION: LibtoolVersion = LibtoolVersion::new(3, 0, 3);

/// What a request wants to do; the backend decides who may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Histories and transfer status.
    Read,
    /// `POST /transfer`.
    Write,
    /// `POST /admin/add-incoming` (testing).
    Admin,
}

/// Which history a long poll waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    Incoming,
    Outgoing,
}

/// A service that serves the Wire Gateway API through [`router`].
///
/// Methods get the authenticated account and checked parameters (amounts of request bodies are
/// in the gateway's currency and not zero); they never long poll (the
/// router does, with [`Self::subscribe`] and [`Self::wait`]). Row ids leave the backend as
/// `u64`; a stored id that is not one is corruption, reported with [`stored_row_id`].
pub trait WireGatewayBackend: Clone + Send + Sync + 'static {
    /// The authenticated exchange account (the bank: an account of its ledger; C2EC: its one
    /// exchange account).
    type Account: Send + Sync + 'static;
    /// The backend's error; the router only turns it into the response.
    type Error: IntoResponse + Send + 'static;
    /// A subscription to the backend's "history grew" notifications.
    type Subscription: Send + 'static;

    /// The currency of every amount.
    fn currency(&self) -> Currency;

    /// Implementation URN announced in `/config`.
    fn implementation(&self) -> &str;

    /// Authenticates the request for `access` (401/403/404 are the backend's answers). Called
    /// before anything else of the request is looked at.
    fn authenticate(
        &self,
        parts: &mut Parts,
        access: Access,
    ) -> impl Future<Output = Result<Self::Account, Self::Error>> + Send;

    /// `POST /transfer`, idempotent on `request_uid` (the same request again gets the same
    /// answer; another request with the same `request_uid` is a 409).
    fn transfer(
        &self,
        account: &Self::Account,
        request: TransferRequest,
    ) -> impl Future<Output = Result<TransferResponse, Self::Error>> + Send;

    /// One page of `GET /transfers` (an empty `transfers` becomes 204).
    fn transfers(
        &self,
        account: &Self::Account,
        page: &HistoryParams,
        status: Option<TransferState>,
    ) -> impl Future<Output = Result<TransferList, Self::Error>> + Send;

    /// `GET /transfers/$ROW_ID`; `None` becomes 404.
    fn transfer_status(
        &self,
        account: &Self::Account,
        row_id: u64,
    ) -> impl Future<Output = Result<Option<TransferStatus>, Self::Error>> + Send;

    /// Subscribes to new rows of `history`; called before the first read of a long poll, so a
    /// row committed between the read and the wait still wakes it.
    fn subscribe(&self, account: &Self::Account, history: History) -> Self::Subscription;

    /// Waits up to `timeout` for a notification since the subscription or the last wait;
    /// `true` if one came.
    fn wait<'a>(
        &'a self,
        subscription: &'a mut Self::Subscription,
        timeout: Duration,
    ) -> WaitFuture<'a>;

    /// One page of the incoming history (rows need no per-row `credit_account`: the router
    /// adds it).
    fn incoming(
        &self,
        account: &Self::Account,
        page: &HistoryParams,
    ) -> impl Future<Output = Result<IncomingHistory, Self::Error>> + Send;

    /// One page of the outgoing history (successful transfers only; the router adds the
    /// per-row `debit_account`).
    fn outgoing(
        &self,
        account: &Self::Account,
        page: &HistoryParams,
    ) -> impl Future<Output = Result<OutgoingHistory, Self::Error>> + Send;

    /// `POST /admin/add-incoming` (testing).
    fn add_incoming(
        &self,
        account: &Self::Account,
        request: AddIncomingRequest,
    ) -> impl Future<Output = Result<AddIncomingResponse, Self::Error>> + Send;
}

/// A stored row id as the protocol's `SafeUint64`. Row ids come from the database's own
/// sequences, so a negative one is corruption: a 500, never a silent `0`.
pub fn stored_row_id(id: i64) -> Result<u64, CorruptRowId> {
    u64::try_from(id).map_err(|_| CorruptRowId(id))
}

/// A stored row id that no sequence can have produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored row id {0} is negative")]
pub struct CorruptRowId(pub i64);

/// The Wire Gateway routes, relative to the gateway's base URL: mount them with
/// `Router::nest("/taler-wire-gateway", router(backend))` (path captures of the mount point,
/// such as the bank's `/accounts/{name}`, stay visible to [`WireGatewayBackend::authenticate`]).
pub fn router<B: WireGatewayBackend, S>(backend: B) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        // https://docs.taler.net/core/api-bank-wire.html#get--config
        .route("/config", get(get_config::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#post--transfer
        .route("/transfer", post(post_transfer::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#get--transfers
        .route("/transfers", get(get_transfers::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#get--transfers-$ROW_ID
        .route("/transfers/{row_id}", get(get_transfer::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#get--history-incoming
        .route("/history/incoming", get(get_history_incoming::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#get--history-outgoing
        .route("/history/outgoing", get(get_history_outgoing::<B>))
        // https://docs.taler.net/core/api-bank-wire.html#post--admin-add-incoming
        .route("/admin/add-incoming", post(post_admin_add_incoming::<B>))
        .with_state(backend)
}

/// A failed Wire Gateway request: refused by the router (malformed request) or by the backend.
enum WireError<E> {
    Request(TalerError),
    Backend(E),
}

impl<E> From<TalerError> for WireError<E> {
    fn from(e: TalerError) -> Self {
        Self::Request(e)
    }
}

impl<E: IntoResponse> IntoResponse for WireError<E> {
    fn into_response(self) -> Response {
        match self {
            Self::Request(e) => e.into_response(),
            Self::Backend(e) => e.into_response(),
        }
    }
}

type Answer<B> = Result<Response, WireError<<B as WireGatewayBackend>::Error>>;

async fn authenticate<B: WireGatewayBackend>(
    backend: &B,
    parts: &mut Parts,
    access: Access,
) -> Result<B::Account, WireError<B::Error>> {
    backend
        .authenticate(parts, access)
        .await
        .map_err(WireError::Backend)
}

fn param_error(e: &HistoryParamError) -> TalerError {
    TalerError::bad_request(ErrorCode::GenericParameterMalformed, e.to_string())
        .with_detail(e.parameter())
}

/// An amount of a request body: in the gateway's currency and not zero.
fn amount_ok<B: WireGatewayBackend>(backend: &B, amount: &Amount) -> Result<(), TalerError> {
    if *amount.currency() != backend.currency() {
        return Err(TalerError::bad_request(
            ErrorCode::GenericCurrencyMismatch,
            "the amount is not in the currency of this gateway (see /config)",
        )
        .with_detail("amount"));
    }
    if amount.is_zero() {
        return Err(TalerError::bad_request(
            ErrorCode::GenericParameterMalformed,
            "the amount must not be zero",
        )
        .with_detail("amount"));
    }
    Ok(())
}

/// The shared history parameters of the request.
async fn history_params(parts: &mut Parts) -> Result<HistoryParams, TalerError> {
    let TalerQuery(query) = TalerQuery::<HistoryQuery>::from_request_parts(parts, &()).await?;
    HistoryParams::parse(&query).map_err(|e| param_error(&e))
}

/// The `$ROW_ID` path segment: decimal digits of a `u64` (no sign, no spaces).
async fn row_id_param(parts: &mut Parts) -> Result<u64, TalerError> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok();
    let raw = params
        .as_ref()
        .and_then(|p| p.iter().find(|(k, _)| *k == "row_id").map(|(_, v)| v));
    let malformed = || {
        TalerError::bad_request(
            ErrorCode::GenericParameterMalformed,
            "the transfer id must be a non-negative integer",
        )
        .with_detail("row_id")
    };
    let raw = raw.ok_or_else(malformed)?;
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    raw.parse().map_err(|_| malformed())
}

/// `GET /config` (no authentication).
async fn get_config<B: WireGatewayBackend>(State(backend): State<B>) -> Response {
    TalerJson(WireConfig {
        name: API_NAME.to_owned(),
        version: VERSION,
        currency: backend.currency(),
        implementation: Some(backend.implementation().to_owned()),
    })
    .into_response()
}

/// `POST /transfer`.
async fn post_transfer<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    let (mut parts, body) = request.into_parts();
    let account = authenticate(&backend, &mut parts, Access::Write).await?;
    let TalerJson(transfer) =
        TalerJson::<TransferRequest>::from_request(Request::from_parts(parts, body), &()).await?;
    amount_ok(&backend, &transfer.amount)?;
    let answer = backend
        .transfer(&account, transfer)
        .await
        .map_err(WireError::Backend)?;
    Ok(TalerJson(answer).into_response())
}

/// `GET /transfers`: 204 when nothing matches.
async fn get_transfers<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    let (mut parts, _) = request.into_parts();
    let account = authenticate(&backend, &mut parts, Access::Read).await?;
    let TalerQuery(query) =
        TalerQuery::<TransfersQuery>::from_request_parts(&mut parts, &()).await?;
    let page = query.params().map_err(|e| param_error(&e))?;
    let list = backend
        .transfers(&account, &page, query.status)
        .await
        .map_err(WireError::Backend)?;
    if list.transfers.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(TalerJson(list).into_response())
}

/// `GET /transfers/$ROW_ID`.
async fn get_transfer<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    let (mut parts, _) = request.into_parts();
    let account = authenticate(&backend, &mut parts, Access::Read).await?;
    let row_id = row_id_param(&mut parts).await?;
    match backend
        .transfer_status(&account, row_id)
        .await
        .map_err(WireError::Backend)?
    {
        Some(status) => Ok(TalerJson(status).into_response()),
        None => Err(TalerError::not_found(
            ErrorCode::BankTransactionNotFound,
            format!("transfer {row_id} is unknown"),
        )
        .into()),
    }
}

/// A page of either history.
enum Page {
    Incoming(IncomingHistory),
    Outgoing(OutgoingHistory),
}

impl Page {
    fn is_empty(&self) -> bool {
        match self {
            Self::Incoming(h) => h.incoming_transactions.is_empty(),
            Self::Outgoing(h) => h.outgoing_transactions.is_empty(),
        }
    }

    /// 204 when empty; otherwise every row also names the exchange account (v0 clients).
    fn into_response(self) -> Response {
        if self.is_empty() {
            return StatusCode::NO_CONTENT.into_response();
        }
        match self {
            Self::Incoming(mut h) => {
                for row in &mut h.incoming_transactions {
                    row.set_credit_account(&h.credit_account);
                }
                TalerJson(h).into_response()
            }
            Self::Outgoing(mut h) => {
                for row in &mut h.outgoing_transactions {
                    row.debit_account = Some(h.debit_account.clone());
                }
                TalerJson(h).into_response()
            }
        }
    }
}

async fn read_page<B: WireGatewayBackend>(
    backend: &B,
    account: &B::Account,
    history: History,
    params: &HistoryParams,
) -> Result<Page, B::Error> {
    match history {
        History::Incoming => backend.incoming(account, params).await.map(Page::Incoming),
        History::Outgoing => backend.outgoing(account, params).await.map(Page::Outgoing),
    }
}

/// Reads a page; when it is empty and the client long polls (positive `limit`, `timeout_ms`),
/// waits for the backend's notification and reads again, until rows come, the timeout passes
/// or the server shuts down. Subscribes before the first read, so no row is missed.
async fn read_with_long_poll<B: WireGatewayBackend>(
    backend: &B,
    account: &B::Account,
    history: History,
    params: &HistoryParams,
) -> Result<Page, B::Error> {
    if !params.long_polls() {
        return read_page(backend, account, history, params).await;
    }
    let mut subscription = backend.subscribe(account, history);
    let deadline = Instant::now() + params.timeout;
    let shutdown = shutdown_token();
    loop {
        let page = read_page(backend, account, history, params).await?;
        let now = Instant::now();
        let stopping = shutdown.as_ref().is_some_and(|t| t.is_cancelled());
        if !page.is_empty() || now >= deadline || stopping {
            return Ok(page);
        }
        let waiting = backend.wait(&mut subscription, deadline - now);
        let woken = match &shutdown {
            Some(token) => tokio::select! {
                woken = waiting => woken,
                () = token.cancelled() => false,
            },
            None => waiting.await,
        };
        if !woken {
            // Timeout or shutdown: answer with the state as it is now.
            return read_page(backend, account, history, params).await;
        }
    }
}

async fn get_history<B: WireGatewayBackend>(
    backend: &B,
    request: Request,
    history: History,
) -> Answer<B> {
    let (mut parts, _) = request.into_parts();
    let account = authenticate(backend, &mut parts, Access::Read).await?;
    let params = history_params(&mut parts).await?;
    let page = read_with_long_poll(backend, &account, history, &params)
        .await
        .map_err(WireError::Backend)?;
    Ok(page.into_response())
}

/// `GET /history/incoming`: 204 when the page is empty.
async fn get_history_incoming<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    get_history(&backend, request, History::Incoming).await
}

/// `GET /history/outgoing`: 204 when the page is empty.
async fn get_history_outgoing<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    get_history(&backend, request, History::Outgoing).await
}

/// `POST /admin/add-incoming`.
async fn post_admin_add_incoming<B: WireGatewayBackend>(
    State(backend): State<B>,
    request: Request,
) -> Answer<B> {
    let (mut parts, body) = request.into_parts();
    let account = authenticate(&backend, &mut parts, Access::Admin).await?;
    let TalerJson(add) =
        TalerJson::<AddIncomingRequest>::from_request(Request::from_parts(parts, body), &())
            .await?;
    amount_ok(&backend, &add.amount)?;
    let answer = backend
        .add_incoming(&account, add)
        .await
        .map_err(WireError::Backend)?;
    Ok(TalerJson(answer).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::{Method, Request as HttpRequest};
    use cardcash_api::wire_gateway::IncomingBankTransaction;
    use cardcash_util::{EddsaPublicKey, PaytoUri, Timestamp};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tokio::sync::watch;
    use tower::ServiceExt;

    use super::*;

    const ACCOUNT: &str = "payto://x-taler-bank/bank.example/exchange";

    /// A backend with an in-memory incoming history that grows on `rows.send`.
    #[derive(Clone)]
    struct Fake {
        rows: watch::Sender<u64>,
        reads: Arc<AtomicUsize>,
    }

    impl Fake {
        fn new() -> Self {
            Self {
                rows: watch::channel(0).0,
                reads: Arc::new(AtomicUsize::new(0)),
            }
        }
    }

    fn unused<T>() -> Result<T, TalerError> {
        Err(TalerError::internal(
            ErrorCode::GenericInternalInvariantFailure,
            "unused",
        ))
    }

    impl WireGatewayBackend for Fake {
        type Account = ();
        type Error = TalerError;
        type Subscription = watch::Receiver<u64>;

        fn currency(&self) -> Currency {
            "KUDOS".parse().unwrap()
        }

        fn implementation(&self) -> &str {
            "urn:test"
        }

        async fn authenticate(&self, parts: &mut Parts, _: Access) -> Result<(), TalerError> {
            match parts.headers.get("authorization") {
                Some(_) => Ok(()),
                None => Err(TalerError::unauthorized("test", "credentials needed")),
            }
        }

        async fn transfer(
            &self,
            _: &(),
            _: TransferRequest,
        ) -> Result<TransferResponse, TalerError> {
            unused()
        }

        async fn transfers(
            &self,
            _: &(),
            _: &HistoryParams,
            _: Option<TransferState>,
        ) -> Result<TransferList, TalerError> {
            unused()
        }

        async fn transfer_status(
            &self,
            _: &(),
            _: u64,
        ) -> Result<Option<TransferStatus>, TalerError> {
            Ok(None)
        }

        fn subscribe(&self, _: &(), _: History) -> watch::Receiver<u64> {
            self.rows.subscribe()
        }

        fn wait<'a>(
            &'a self,
            rx: &'a mut watch::Receiver<u64>,
            timeout: Duration,
        ) -> WaitFuture<'a> {
            Box::pin(async move { tokio::time::timeout(timeout, rx.changed()).await.is_ok() })
        }

        async fn incoming(
            &self,
            _: &(),
            page: &HistoryParams,
        ) -> Result<IncomingHistory, TalerError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let count = *self.rows.borrow();
            let incoming_transactions = (1..=count)
                .filter(|id| i64::try_from(*id).unwrap() > page.start())
                .map(|row_id| IncomingBankTransaction::Reserve {
                    row_id,
                    date: Timestamp::from_micros(0),
                    amount: "KUDOS:1".parse().unwrap(),
                    credit_fee: None,
                    debit_account: "payto://x-taler-bank/bank.example/alice".parse().unwrap(),
                    credit_account: None,
                    reserve_pub: EddsaPublicKey::from_bytes([7; 32]),
                })
                .collect();
            Ok(IncomingHistory {
                incoming_transactions,
                credit_account: ACCOUNT.parse::<PaytoUri>().unwrap(),
            })
        }

        async fn outgoing(&self, _: &(), _: &HistoryParams) -> Result<OutgoingHistory, TalerError> {
            unused()
        }

        async fn add_incoming(
            &self,
            _: &(),
            _: AddIncomingRequest,
        ) -> Result<AddIncomingResponse, TalerError> {
            unused()
        }
    }

    async fn call(app: &Router, uri: &str, auth: bool) -> (StatusCode, Value) {
        let mut request = HttpRequest::builder().method(Method::GET).uri(uri);
        if auth {
            request = request.header("authorization", "Bearer x");
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn config_announces_v3_serving_v0_clients() {
        let app: Router = router(Fake::new());
        let (status, body) = call(&app, "/config", false).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "taler-wire-gateway");
        assert_eq!(body["version"], "3:0:3");
        assert_eq!(body["currency"], "KUDOS");
        assert!(VERSION.is_compatible(&"0:0:0".parse().unwrap()));
    }

    #[tokio::test]
    async fn authentication_comes_before_parameters() {
        let fake = Fake::new();
        let app: Router = router(fake.clone());
        for uri in [
            "/history/incoming?limit=0",
            "/transfers/-1",
            "/transfers?limit=x",
        ] {
            let (status, body) = call(&app, uri, false).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(body["code"], 40, "{uri}");
        }
        assert_eq!(fake.reads.load(Ordering::SeqCst), 0);
        let (status, body) = call(&app, "/transfers/7", true).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::NOT_FOUND, 5107.into())
        );
    }

    #[tokio::test]
    async fn rows_carry_the_account_and_empty_pages_are_204() {
        let fake = Fake::new();
        let app: Router = router(fake.clone());
        let (status, _) = call(&app, "/history/incoming", true).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        fake.rows.send_replace(2);
        let (status, body) = call(&app, "/history/incoming?limit=5", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["credit_account"], ACCOUNT);
        let rows = body["incoming_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter().all(|r| r["credit_account"] == ACCOUNT),
            "{body}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_wakes_on_the_backend_notification() {
        let fake = Fake::new();
        let app: Router = router(fake.clone());
        let started = Instant::now();
        let waiting = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/history/incoming?limit=5&timeout_ms=30000", true).await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        fake.rows.send_replace(1);
        let (status, body) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // No new row: the long poll ends at its timeout with 204, after two reads only.
        let reads = fake.reads.load(Ordering::SeqCst);
        let started = Instant::now();
        let uri = "/history/incoming?limit=5&offset=1&timeout_ms=1500";
        let (status, _) = call(&app, uri, true).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
        assert_eq!(fake.reads.load(Ordering::SeqCst) - reads, 2);
        // Descending pages never wait (old rows cannot appear later).
        let started = Instant::now();
        let uri = "/history/incoming?limit=-5&offset=1&timeout_ms=1500";
        let (status, _) = call(&app, uri, true).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
