//! One handler per endpoint, named after method and path. Each extracts, makes one `Cardproc`
//! call and returns JSON; all rules live in `service`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cardcash_http::{TalerJson, TalerQuery};
use serde::Deserialize;

use crate::error::CardprocError;
use crate::service::{ApiUser, Cardproc};
use cardcash_api::cardproc::{
    ConfigResponse, CreateTransactionRequest, OutageRequest, PayoutListResponse,
    ProcessCardRequest, Refund, RefundRequest, Transaction,
};

type AppState = State<Arc<Cardproc>>;
type ApiResult<T> = Result<TalerJson<T>, CardprocError>;

/// `?spaceId=…&id=…` (the space was already checked by [`ApiUser`]).
#[derive(Debug, Deserialize)]
pub struct IdQuery {
    /// The object id.
    pub id: u64,
}

/// `GET /config`.
pub async fn get_config(State(s): AppState) -> TalerJson<ConfigResponse> {
    TalerJson(s.config())
}

/// `POST /api/transaction/create`.
pub async fn post_transaction_create(
    State(s): AppState,
    user: ApiUser,
    TalerJson(body): TalerJson<CreateTransactionRequest>,
) -> ApiResult<Transaction> {
    s.create_transaction(&user, &body).await.map(TalerJson)
}

/// `POST /api/transaction/process-card`.
pub async fn post_transaction_process_card(
    State(s): AppState,
    user: ApiUser,
    TalerQuery(q): TalerQuery<IdQuery>,
    TalerJson(body): TalerJson<ProcessCardRequest>,
) -> ApiResult<Transaction> {
    s.process_card(&user, q.id, &body).await.map(TalerJson)
}

/// `POST /api/transaction-void/voidOnline`.
pub async fn post_transaction_void_online(
    State(s): AppState,
    user: ApiUser,
    TalerQuery(q): TalerQuery<IdQuery>,
) -> ApiResult<Transaction> {
    s.void_transaction(&user, q.id).await.map(TalerJson)
}

/// `GET /api/transaction/read`.
pub async fn get_transaction_read(
    State(s): AppState,
    user: ApiUser,
    TalerQuery(q): TalerQuery<IdQuery>,
) -> ApiResult<Transaction> {
    s.read_transaction(&user, q.id).await.map(TalerJson)
}

/// `POST /api/refund/refund`.
pub async fn post_refund_refund(
    State(s): AppState,
    user: ApiUser,
    TalerJson(body): TalerJson<RefundRequest>,
) -> ApiResult<Refund> {
    s.refund(&user, &body).await.map(TalerJson)
}

/// `GET /api/refund/read`.
pub async fn get_refund_read(
    State(s): AppState,
    user: ApiUser,
    TalerQuery(q): TalerQuery<IdQuery>,
) -> ApiResult<Refund> {
    s.read_refund(&user, q.id).await.map(TalerJson)
}

/// `GET /api/payout/list`.
pub async fn get_payout_list(State(s): AppState, user: ApiUser) -> ApiResult<PayoutListResponse> {
    s.list_payouts(&user).await.map(TalerJson)
}

/// `POST /admin/outage` (bearer admin token).
pub async fn post_admin_outage(
    State(s): AppState,
    headers: HeaderMap,
    TalerJson(body): TalerJson<OutageRequest>,
) -> Result<StatusCode, CardprocError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    s.check_admin(token)?;
    s.set_outage(body.down);
    Ok(StatusCode::NO_CONTENT)
}
