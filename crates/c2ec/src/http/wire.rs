//! Wire Gateway API (docs.taler.net core/api-bank-wire), under `/taler-wire-gateway/`, for the
//! exchange: confirmed withdrawals as incoming history, transfers (card refunds) as outgoing.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cardcash_api::wire_gateway::{HistoryParams, HistoryQuery};
use cardcash_http::{TalerJson, TalerQuery};
use cardcash_util::{ErrorCode, Timestamp};

use super::AppState;
use super::auth::{check_admin, check_wire_auth};
use crate::api::{
    AddIncomingRequest, AddIncomingResponse, IMPLEMENTATION, IncomingBankTransaction,
    IncomingHistory, OutgoingBankTransaction, OutgoingHistory, TransferRequest, TransferResponse,
    WIRE_VERSION, WireConfig,
};
use crate::error::C2ecError;

/// Checks the shared history parameters (`limit`/`offset`/`timeout_ms` and the legacy
/// `delta`/`start`/`long_poll_ms`); bad values are a 400 naming the parameter.
pub fn history_params(query: &HistoryQuery) -> Result<HistoryParams, C2ecError> {
    HistoryParams::parse(query).map_err(|e| {
        C2ecError::bad_request(
            ErrorCode::GenericParameterMalformed,
            format!("{}: {e}", e.parameter()),
        )
    })
}

fn ts(micros: i64) -> Timestamp {
    Timestamp::from_micros(u64::try_from(micros).unwrap_or(0))
}

fn row_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// `GET /taler-wire-gateway/config`.
pub async fn get_config(State(s): State<AppState>) -> Json<WireConfig> {
    Json(WireConfig {
        name: "taler-wire-gateway".into(),
        version: WIRE_VERSION,
        currency: *s.c2ec.store.currency(),
        implementation: Some(IMPLEMENTATION.into()),
    })
}

/// `POST /taler-wire-gateway/transfer`.
pub async fn post_transfer(
    State(s): State<AppState>,
    headers: HeaderMap,
    TalerJson(req): TalerJson<TransferRequest>,
) -> Result<Json<TransferResponse>, C2ecError> {
    check_wire_auth(&s.wire_auth, &headers)?;
    let (row, created) = s.c2ec.transfer(&req).await?;
    Ok(Json(TransferResponse {
        timestamp: ts(created),
        row_id: row_id(row),
    }))
}

/// `GET /taler-wire-gateway/history/incoming`: one row per confirmed withdrawal; 204 if none.
pub async fn get_history_incoming(
    State(s): State<AppState>,
    headers: HeaderMap,
    TalerQuery(query): TalerQuery<HistoryQuery>,
) -> Result<Response, C2ecError> {
    check_wire_auth(&s.wire_auth, &headers)?;
    let p = history_params(&query)?;
    let rows = s.c2ec.incoming(p.limit, p.offset, p.timeout).await?;
    if rows.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let incoming_transactions = rows
        .into_iter()
        .map(|r| {
            Ok(IncomingBankTransaction::Reserve {
                row_id: row_id(r.row_id),
                date: ts(r.created_at),
                amount: r.amount,
                credit_fee: None,
                debit_account: stored_payto(&r.debit_account)?,
                reserve_pub: r.reserve_pub,
            })
        })
        .collect::<Result<_, C2ecError>>()?;
    Ok(Json(IncomingHistory {
        incoming_transactions,
        credit_account: s.c2ec.exchange_account.clone(),
    })
    .into_response())
}

/// `GET /taler-wire-gateway/history/outgoing`: every accepted transfer; 204 if none.
pub async fn get_history_outgoing(
    State(s): State<AppState>,
    headers: HeaderMap,
    TalerQuery(query): TalerQuery<HistoryQuery>,
) -> Result<Response, C2ecError> {
    check_wire_auth(&s.wire_auth, &headers)?;
    let p = history_params(&query)?;
    let rows = s.c2ec.outgoing(p.limit, p.offset, p.timeout).await?;
    if rows.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let outgoing_transactions = rows
        .into_iter()
        .map(|r| {
            Ok(OutgoingBankTransaction {
                row_id: row_id(r.row_id),
                date: ts(r.created_at),
                amount: r.amount,
                credit_account: stored_payto(&r.credit_account)?,
                wtid: r.wtid,
                exchange_base_url: cardcash_util::BaseUrl::parse(&r.exchange_base_url)
                    .map_err(|e| C2ecError::Internal(format!("stored base URL: {e}")))?,
            })
        })
        .collect::<Result<_, C2ecError>>()?;
    Ok(Json(OutgoingHistory {
        outgoing_transactions,
        debit_account: s.c2ec.exchange_account.clone(),
    })
    .into_response())
}

/// A payto URI we stored ourselves (always valid unless the database was edited by hand).
fn stored_payto(text: &str) -> Result<cardcash_util::PaytoUri, C2ecError> {
    text.parse()
        .map_err(|e| C2ecError::Internal(format!("stored payto URI {text:?}: {e}")))
}

/// `POST /taler-wire-gateway/admin/add-incoming` (admin token; tests and recovery).
pub async fn post_admin_add_incoming(
    State(s): State<AppState>,
    headers: HeaderMap,
    TalerJson(req): TalerJson<AddIncomingRequest>,
) -> Result<Json<AddIncomingResponse>, C2ecError> {
    check_admin(s.admin_token.as_deref(), &headers)?;
    let (row, created) = s.c2ec.add_incoming(&req).await?;
    Ok(Json(AddIncomingResponse {
        timestamp: ts(created),
        row_id: row_id(row),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_http::ApiError as _;

    #[test]
    fn bad_history_params_name_the_parameter() {
        let zero = HistoryQuery {
            limit: Some(0),
            ..Default::default()
        };
        let e = history_params(&zero).unwrap_err();
        assert_eq!(e.code(), ErrorCode::GenericParameterMalformed);
        assert!(e.to_string().contains("limit"), "{e}");
        let legacy = HistoryQuery {
            delta: Some(5),
            start: Some(7),
            long_poll_ms: Some(300),
            ..Default::default()
        };
        let p = history_params(&legacy).unwrap();
        assert_eq!(
            (p.limit, p.offset, p.timeout.as_millis()),
            (5, Some(7), 300)
        );
    }
}
