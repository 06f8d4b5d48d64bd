//! The request guards and response fixes of the shared router layers (wired up in
//! [`crate::router`]):
//!
//! - [`check_request`]: a request target over the URI limit is 414 `GENERIC_URI_TOO_LONG`; a
//!   path that does not percent-decode to UTF-8 is 400 `GENERIC_PATH_SEGMENT_MALFORMED`
//!   (before any handler's `Path` extractor could answer in plain text); a `Content-Encoding`
//!   other than `gzip`, `deflate` (zlib, what GNU Taler's C clients send) or `identity` is 415
//!   `GENERIC_COMPRESSION_INVALID`. Accepted encodings are normalised for the decompression
//!   layer behind it and marked with [`CompressedBody`], so a corrupt stream is reported as a
//!   compression error rather than as malformed JSON.
//! - [`request_timeout`]: a handler that has not answered within the request timeout — plus the
//!   long-poll time the client asked for (`timeout_ms`) — is answered 503 `GENERIC_TIMEOUT`.
//! - [`taler_error_bodies`]: any error response that is not JSON (axum's plain-text
//!   rejections, empty bodies of tower layers) becomes a Taler error with the same status and
//!   headers, the original text as `detail`. Errors are never empty. An HTML page is kept: a
//!   service answers a browser with one on purpose (the merchant's 402 payment page).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use crate::{ErrorCode, LongPoll, TalerError};

/// Default limit of the request target (path and query), in bytes.
pub const DEFAULT_MAX_URI_LEN: usize = 8 * 1024;

/// Default time a handler has to answer (on top of any long-poll time the client asked for).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest plain-text error body kept as `detail` when it is turned into a Taler error.
const MAX_DETAIL_LEN: usize = 1024;

/// Request extension: the body arrived with this `Content-Encoding` and is decompressed by the
/// router layers before any extractor reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressedBody(pub &'static str);

/// Limits checked by [`check_request`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLimits {
    pub(crate) max_uri_len: usize,
}

pub(crate) async fn check_request(
    State(limits): State<RequestLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > limits.max_uri_len {
        return TalerError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::GenericUriTooLong,
            "the request URI is too long",
        )
        .with_detail(format!("at most {} bytes", limits.max_uri_len))
        .into_response();
    }
    if !percent_decodes_to_utf8(request.uri().path()) {
        return TalerError::bad_request(
            ErrorCode::GenericPathSegmentMalformed,
            "the request path is not valid UTF-8",
        )
        .into_response();
    }
    match content_encoding(request.headers()) {
        Ok(None) => {
            request.headers_mut().remove(header::CONTENT_ENCODING);
        }
        Ok(Some(encoding)) => {
            request
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            request.extensions_mut().insert(CompressedBody(encoding));
        }
        Err(()) => {
            return TalerError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::GenericCompressionInvalid,
                "unsupported Content-Encoding (use deflate, gzip or none)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The canonical name of the request's single content coding (`None` for none or `identity`);
/// `Err` for anything unsupported, including lists of codings.
fn content_encoding(headers: &HeaderMap) -> Result<Option<&'static str>, ()> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let value = value.to_str().map_err(|_| ())?.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("identity") {
        Ok(None)
    } else if value.eq_ignore_ascii_case("deflate") {
        Ok(Some("deflate"))
    } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
        Ok(Some("gzip"))
    } else {
        Err(())
    }
}

/// Whether `path` with its `%XX` escapes decoded is UTF-8 (a lone `%` stays as it is, as axum
/// treats it).
fn percent_decodes_to_utf8(path: &str) -> bool {
    if !path.contains('%') {
        return true;
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

pub(crate) async fn request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    // A malformed long-poll parameter is the handler's to reject; it gets the plain timeout.
    let long_poll = LongPoll::from_query(request.uri().query().unwrap_or(""))
        .map(|poll| poll.timeout)
        .unwrap_or_default();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout + long_poll, next.run(request)).await {
        Ok(response) => response,
        Err(_) => TalerError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::GenericTimeout,
            format!(
                "{method} {path} did not answer within {} ms",
                (timeout + long_poll).as_millis()
            ),
        )
        .into_response(),
    }
}

pub(crate) async fn taler_error_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || keeps_body(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut error = TalerError::new(status, code_for_status(status), hint_for_status(status));
    if let Some(detail) = small_text(body).await {
        error = error.with_detail(detail);
    }
    let mut replaced = error.into_response();
    // Keep what the original answer said beyond its body (Allow, Accept-Encoding, challenges).
    let headers = replaced.headers_mut();
    for name in parts.headers.keys() {
        if is_body_header(name) {
            continue;
        }
        headers.remove(name);
        for value in parts.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    replaced
}

fn is_body_header(name: &header::HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_ENCODING
}

/// Whether an error response's body is meant as it is: JSON (a Taler error or a protocol
/// answer such as a 402 order status) or an HTML page for a browser.
fn keeps_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("text/html")
        })
}

/// The body as text if it is short, UTF-8 and not blank.
async fn small_text(body: Body) -> Option<String> {
    let bytes = http_body_util::Limited::new(body, MAX_DETAIL_LEN)
        .collect()
        .await
        .ok()?
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The generic Taler code for an error status that came without a Taler body.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::GenericUnauthorized,
        StatusCode::FORBIDDEN => ErrorCode::GenericForbidden,
        StatusCode::NOT_FOUND => ErrorCode::GenericEndpointUnknown,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::GenericMethodInvalid,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::GenericTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::GenericUploadExceedsLimit,
        StatusCode::URI_TOO_LONG => ErrorCode::GenericUriTooLong,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ErrorCode::GenericHttpHeadersMalformed
        }
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::GenericJsonInvalid,
        s if s.is_server_error() => ErrorCode::GenericInternalInvariantFailure,
        _ => ErrorCode::GenericParameterMalformed,
    }
}

fn hint_for_status(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("request failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert!(percent_decodes_to_utf8("/a/b"));
        assert!(percent_decodes_to_utf8("/a%20b/%C3%A4"));
        assert!(percent_decodes_to_utf8("/100%"));
        assert!(percent_decodes_to_utf8("/%zz"));
        assert!(!percent_decodes_to_utf8("/items/%FF"));
        assert!(!percent_decodes_to_utf8("/%C3"));
        assert!(!percent_decodes_to_utf8("/%c3%28"));
    }

    #[test]
    fn json_and_html_error_bodies_are_kept() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            keeps_body(&h)
        };
        assert!(with("application/json"));
        assert!(with("text/html; charset=utf-8"));
        assert!(!with("text/plain; charset=utf-8"));
        assert!(!keeps_body(&HeaderMap::new()));
    }

    #[test]
    fn content_encodings() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
            content_encoding(&h)
        };
        assert_eq!(content_encoding(&HeaderMap::new()), Ok(None));
        assert_eq!(with("identity"), Ok(None));
        assert_eq!(with("Deflate"), Ok(Some("deflate")));
        assert_eq!(with(" gzip "), Ok(Some("gzip")));
        assert_eq!(with("x-gzip"), Ok(Some("gzip")));
        assert_eq!(with("br"), Err(()));
        assert_eq!(with("gzip, deflate"), Err(()));
        let mut two = HeaderMap::new();
        two.append(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        two.append(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(content_encoding(&two), Err(()));
    }

    #[test]
    fn status_codes_map_to_generic_codes() {
        assert_eq!(
            code_for_status(StatusCode::URI_TOO_LONG),
            ErrorCode::GenericUriTooLong
        );
        assert_eq!(
            code_for_status(StatusCode::BAD_REQUEST),
            ErrorCode::GenericParameterMalformed
        );
        assert_eq!(
            code_for_status(StatusCode::BAD_GATEWAY),
            ErrorCode::GenericInternalInvariantFailure
        );
    }
}
