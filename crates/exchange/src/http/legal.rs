//! `GET /terms` and `GET /privacy` (docs.taler.net core/api-exchange "Terms of service").

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::legal::LegalDocuments;

/// Ten days, as the C exchange says.
const CACHE: &str = "public, max-age=864000";

fn serve(docs: &LegalDocuments, headers: &HeaderMap) -> Response {
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let (Some(etag), Some(given)) = (&docs.etag, header_str(header::IF_NONE_MATCH))
        && given.trim_matches('"').eq_ignore_ascii_case(etag)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let (mime, body) = match docs.select(
        header_str(header::ACCEPT),
        header_str(header::ACCEPT_LANGUAGE),
    ) {
        Some(d) => (d.mime, d.body.clone()),
        None => ("text/plain", b"not configured".to_vec()),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language,Accept,Accept-Encoding"),
    );
    if let Some(etag) = docs
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        h.insert(header::ETAG, etag);
    }
    if let Ok(langs) = HeaderValue::from_str(&docs.languages())
        && !docs.documents.is_empty()
    {
        h.insert("Acceptable-Languages", langs);
    }
    response
}

/// `GET /terms`.
pub async fn get_terms(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state.terms, &headers)
}

/// `GET /privacy`.
pub async fn get_privacy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state.privacy, &headers)
}
