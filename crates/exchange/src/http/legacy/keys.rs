//! The legacy `GET /keys` and `GET /wire`: the snapshot's pre-serialised bodies, with `ETag` /
//! `If-None-Match`, `Cache-Control` and `Expires` until the snapshot stops being right (at most
//! an hour), as the 2022 C exchange sends them. wallet-core 0.9 reads its cache lifetime from a
//! header literally named `expiry` (it never sees the C exchange's `Expires`, so it falls back
//! to its minimum of one hour); we send both with the same date.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardcash_util::{RelativeTime, Timestamp};

use crate::error::ExchangeError;
use crate::http::AppState;
use crate::http::keys::httpdate;
use crate::keys::legacy::Body;

/// `GET /legacy/keys`.
pub async fn get_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ExchangeError> {
    serve(&state, &headers, |s| &s.legacy.keys).await
}

/// `GET /legacy/wire`.
pub async fn get_wire(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ExchangeError> {
    serve(&state, &headers, |s| &s.legacy.wire).await
}

async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    pick: impl Fn(&crate::keys::state::KeySnapshot) -> &Result<Body, crate::keys::legacy::NotReady>,
) -> Result<Response, ExchangeError> {
    let mut snapshot = state.exchange.keys();
    if snapshot.expires <= Timestamp::now() {
        snapshot = state.exchange.refresh_keys().await?;
    }
    let body = match pick(&snapshot) {
        Ok(body) => body.clone(),
        Err(why) => return Err(ExchangeError::refused(why.code, why.hint.clone())),
    };
    let now = Timestamp::now();
    let max_age = snapshot.expires.saturating_sub(now).as_secs().min(3600);
    let etag = HeaderValue::from_str(&body.etag).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .zip(etag.as_ref())
        .is_some_and(|(given, ours)| given == ours);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.bytes.to_vec(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public,max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(expires) = now
        .saturating_add(RelativeTime::from_secs(max_age))
        .to_system_time()
        && let Ok(v) = HeaderValue::from_str(&httpdate(expires))
    {
        h.insert(header::EXPIRES, v.clone());
        h.insert("expiry", v);
    }
    Ok(response)
}
