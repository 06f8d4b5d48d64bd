//! `/management/…`: where the offline key fetches what to sign and uploads its signatures
//! (docs.taler.net core/api-exchange "Management operations"). No credentials: every upload is
//! checked against the master public key. Successful uploads answer 204 as the C exchange does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::{
    DenominationRevocationRequest, GlobalFeesRequest, MasterSignaturesRequest,
    SignKeyRevocationRequest, WireFeeSetupRequest, WireSetupRequest, WireTeardownRequest,
};
use cardcash_http::TalerJson;
use cardcash_util::Timestamp;

use super::{AppState, hash_segment, key_segment};
use crate::error::ExchangeError;
use crate::management;

/// `GET /management/keys`.
pub async fn get_keys(State(state): State<AppState>) -> Result<Response, ExchangeError> {
    let ex = &state.exchange;
    let material = ex.store().key_material().await?;
    let future = management::future_keys(ex.config(), ex.keystore(), &material, Timestamp::now())?;
    Ok(TalerJson(future).into_response())
}

async fn done(state: &AppState) -> Result<Response, ExchangeError> {
    state.exchange.refresh_keys().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /management/keys`.
pub async fn post_keys(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<MasterSignaturesRequest>,
) -> Result<Response, ExchangeError> {
    let ex = &state.exchange;
    management::store_master_signatures(ex.config(), ex.keystore(), ex.store(), request).await?;
    done(&state).await
}

/// `POST /management/wire`.
pub async fn post_wire(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<WireSetupRequest>,
) -> Result<Response, ExchangeError> {
    management::enable_account(state.exchange.config(), state.exchange.store(), request).await?;
    done(&state).await
}

/// `POST /management/wire/disable`.
pub async fn post_wire_disable(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<WireTeardownRequest>,
) -> Result<Response, ExchangeError> {
    management::disable_account(state.exchange.config(), state.exchange.store(), request).await?;
    done(&state).await
}

/// `POST /management/wire-fee`.
pub async fn post_wire_fee(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<WireFeeSetupRequest>,
) -> Result<Response, ExchangeError> {
    management::set_wire_fee(state.exchange.config(), state.exchange.store(), request).await?;
    done(&state).await
}

/// `POST /management/global-fees`.
pub async fn post_global_fees(
    State(state): State<AppState>,
    TalerJson(request): TalerJson<GlobalFeesRequest>,
) -> Result<Response, ExchangeError> {
    management::set_global_fees(state.exchange.config(), state.exchange.store(), request).await?;
    done(&state).await
}

/// `POST /management/denominations/$H_DENOM_PUB/revoke`.
pub async fn post_revoke_denomination(
    State(state): State<AppState>,
    Path(h_denom_pub): Path<String>,
    TalerJson(request): TalerJson<DenominationRevocationRequest>,
) -> Result<Response, ExchangeError> {
    let h = hash_segment(&h_denom_pub, "denomination hash")?;
    management::revoke_denomination(
        state.exchange.config(),
        state.exchange.store(),
        h,
        request.master_sig,
    )
    .await?;
    done(&state).await
}

/// `POST /management/signkeys/$EXCHANGE_PUB/revoke`.
pub async fn post_revoke_signkey(
    State(state): State<AppState>,
    Path(exchange_pub): Path<String>,
    TalerJson(request): TalerJson<SignKeyRevocationRequest>,
) -> Result<Response, ExchangeError> {
    let key = key_segment(&exchange_pub, "signing key")?;
    management::revoke_signkey(
        state.exchange.config(),
        state.exchange.store(),
        key,
        request.master_sig,
    )
    .await?;
    done(&state).await
}
