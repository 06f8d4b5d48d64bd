//! Taler error responses: `{"code": <number>, "hint": "...", "detail"?: "..."}` with an HTTP status.
//!
//! Every service error enum implements [`ApiError`] and turns itself into a response with
//! [`error_response`], so all services agree on the body shape, on logging server errors exactly
//! once, and on never echoing internal details (database messages, paths, upstream bodies) to
//! clients. Spec: docs.taler.net "ErrorDetail" (common API conventions).

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ErrorCode;

/// Realm announced in `WWW-Authenticate` when an error does not name its own challenge.
pub const DEFAULT_REALM: &str = "cardcash";

/// An error a service crate can turn into a Taler error response.
///
/// `hint` is meant for humans and must not contain secrets; for 5xx statuses neither `hint` nor
/// `detail` leaves the process (the client gets the status' reason phrase), they are logged instead.
pub trait ApiError: std::error::Error {
    /// HTTP status of the response.
    fn status(&self) -> StatusCode;
    /// Official Taler error code.
    fn code(&self) -> ErrorCode;
    /// Human-readable explanation (defaults to the `Display` text).
    fn hint(&self) -> String {
        self.to_string()
    }
    /// Optional machine-oriented detail, e.g. the offending field or parser message.
    fn detail(&self) -> Option<String> {
        None
    }
    /// The `WWW-Authenticate` challenge of a 401 (a default Basic challenge is used if `None`).
    fn challenge(&self) -> Option<String> {
        None
    }
    /// Further fields of the error body that the protocol defines for this error (e.g. the
    /// exchange's `balance` of an insufficient-funds answer, or a coin's history). Never sent
    /// with a 5xx status. Keys `code`, `hint` and `detail` are ignored.
    fn extra(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        None
    }
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u32,
    hint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Builds the Taler error response for `e`, logging it once if it is a server error.
pub fn error_response<E: ApiError + ?Sized>(e: &E) -> Response {
    let status = e.status();
    let code = e.code();
    let (hint, detail, extra) = if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            code = code.code(),
            error = %error_chain(e),
            detail = e.detail().as_deref().unwrap_or(""),
            "request failed"
        );
        let reason = status.canonical_reason().unwrap_or("server error");
        (reason.to_owned(), None, None)
    } else {
        let extra = e.extra().map(|mut m| {
            for reserved in ["code", "hint", "detail"] {
                m.remove(reserved);
            }
            m
        });
        (e.hint(), e.detail(), extra)
    };
    let bytes = error_body_with(code, &hint, detail.as_deref(), extra);
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        let challenge = e
            .challenge()
            .unwrap_or_else(|| basic_challenge(DEFAULT_REALM));
        let value = HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"cardcash\""));
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The JSON body `{"code","hint","detail"?}`.
pub(crate) fn error_body(code: ErrorCode, hint: &str, detail: Option<&str>) -> Vec<u8> {
    error_body_with(code, hint, detail, None)
}

fn error_body_with(
    code: ErrorCode,
    hint: &str,
    detail: Option<&str>,
    extra: Option<serde_json::Map<String, serde_json::Value>>,
) -> Vec<u8> {
    let body = ErrorBody {
        code: code.code(),
        hint,
        detail,
        extra,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => bytes,
        // Serialising two strings and a number cannot fail; keep a valid body regardless.
        Err(_) => format!("{{\"code\":{}}}", code.code()).into_bytes(),
    }
}

/// `Basic realm="<realm>"`, with quotes and backslashes in the realm escaped.
pub fn basic_challenge(realm: &str) -> String {
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    format!("Basic realm=\"{escaped}\", charset=\"UTF-8\"")
}

/// `error: cause: cause-of-cause`, for the log line of a server error.
fn error_chain<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// A ready-made Taler error, for plumbing and small handlers that need no enum of their own.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{hint}")]
pub struct TalerError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub hint: String,
    pub detail: Option<String>,
    /// `WWW-Authenticate` value for 401 responses; `None` uses [`DEFAULT_REALM`].
    pub challenge: Option<String>,
}

impl TalerError {
    pub fn new(status: StatusCode, code: ErrorCode, hint: impl Into<String>) -> Self {
        Self {
            status,
            code,
            hint: hint.into(),
            detail: None,
            challenge: None,
        }
    }

    /// An error with the status GANA registers for `code` (500 if it registers none).
    pub fn from_code(code: ErrorCode, hint: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.http_status())
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, code, hint)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn bad_request(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, hint)
    }

    pub fn not_found(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, hint)
    }

    pub fn conflict(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, hint)
    }

    /// 401 `GENERIC_UNAUTHORIZED` with `WWW-Authenticate: Basic realm="<realm>"`.
    pub fn unauthorized(realm: &str, hint: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::GenericUnauthorized,
            hint,
        );
        e.challenge = Some(basic_challenge(realm));
        e
    }

    /// 500; `hint` is logged, never sent.
    pub fn internal(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, hint)
    }
}

impl ApiError for TalerError {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn code(&self) -> ErrorCode {
        self.code
    }
    fn hint(&self) -> String {
        self.hint.clone()
    }
    fn detail(&self) -> Option<String> {
        self.detail.clone()
    }
    fn challenge(&self) -> Option<String> {
        self.challenge.clone()
    }
}

impl IntoResponse for TalerError {
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    }

    #[tokio::test]
    async fn client_error_carries_hint_and_detail() {
        let e = TalerError::bad_request(ErrorCode::GenericParameterMalformed, "bad wopid")
            .with_detail("not base32");
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"code": 26, "hint": "bad wopid", "detail": "not base32"})
        );
    }

    #[tokio::test]
    async fn server_error_hides_hint_and_detail() {
        let e = TalerError::internal(
            ErrorCode::GenericInternalInvariantFailure,
            "password=hunter2 in connection string",
        )
        .with_detail("secret");
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"code": 60, "hint": "Internal Server Error"})
        );
    }

    #[tokio::test]
    async fn unauthorized_has_challenge() {
        let response = TalerError::unauthorized("bank \"x\"", "no").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Basic realm=\"bank \\\"x\\\"\", charset=\"UTF-8\""
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_lists_causes() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
