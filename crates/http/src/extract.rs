//! Extractors whose rejections are Taler errors instead of axum's plain-text ones.
//!
//! Wallets and the exchange branch on the numeric `code`, so a malformed body must say
//! `GENERIC_JSON_INVALID` (400), an oversized one `GENERIC_UPLOAD_EXCEEDS_LIMIT` (413) and a bad
//! query or path parameter `GENERIC_PARAMETER_MALFORMED` (400), with the parser's message as
//! `detail`. These types do no validation of their own: the target types parse themselves.
//! Bodies sent with `Content-Encoding: deflate`/`gzip` arrive here decompressed (router layers);
//! the size limit counts decompressed bytes, and a corrupt stream is `GENERIC_COMPRESSION_INVALID`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{CompressedBody, ErrorCode, TalerError};

/// JSON request body (Taler errors on rejection) and JSON response body.
#[derive(Debug, Clone, Copy, Default)]
pub struct TalerJson<T>(pub T);

impl<T, S> FromRequest<S> for TalerJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = TalerError;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let compressed = req.extensions().get::<CompressedBody>().copied();
        // GNU Taler's C services parse a POST body as JSON whatever its Content-Type, and some
        // clients send none: a missing type is JSON; a wrong one is still refused (415).
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            req.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection, compressed)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection, compressed: Option<CompressedBody>) -> TalerError {
    match rejection {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            TalerError::bad_request(ErrorCode::GenericJsonInvalid, "malformed JSON body")
                .with_detail(rejection.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => TalerError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::GenericHttpHeadersMalformed,
            "expected Content-Type: application/json",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => TalerError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::GenericUploadExceedsLimit,
            "request body too large",
        ),
        // The body could not be read: with a compressed body, that is a corrupt stream.
        _ if compressed.is_some() => TalerError::bad_request(
            ErrorCode::GenericCompressionInvalid,
            "the compressed request body could not be decompressed",
        )
        .with_detail(rejection.body_text()),
        _ => TalerError::bad_request(ErrorCode::GenericJsonInvalid, "could not read body")
            .with_detail(rejection.body_text()),
    }
}

impl<T: Serialize> IntoResponse for TalerJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            Err(e) => TalerError::internal(
                ErrorCode::GenericInternalInvariantFailure,
                format!("failed to serialise response: {e}"),
            )
            .into_response(),
        }
    }
}

/// Query string (Taler errors on rejection).
#[derive(Debug, Clone, Copy, Default)]
pub struct TalerQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for TalerQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = TalerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> TalerError {
    let detail = rejection.body_text();
    // serde reports absent fields as "missing field `x`"; Taler has a code for exactly that.
    if detail.contains("missing field") {
        TalerError::bad_request(
            ErrorCode::GenericParameterMissing,
            "missing query parameter",
        )
        .with_detail(detail)
    } else {
        TalerError::bad_request(
            ErrorCode::GenericParameterMalformed,
            "malformed query parameter",
        )
        .with_detail(detail)
    }
}

/// Path parameters (Taler errors on rejection).
#[derive(Debug, Clone, Copy, Default)]
pub struct TalerPath<T>(pub T);

impl<T, S> FromRequestParts<S> for TalerPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = TalerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> TalerError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(_) => TalerError::bad_request(
            ErrorCode::GenericPathSegmentMalformed,
            "malformed path segment",
        )
        .with_detail(rejection.body_text()),
        // A handler asked for parameters its route does not have: a bug on our side.
        _ => TalerError::internal(
            ErrorCode::GenericInternalInvariantFailure,
            rejection.body_text(),
        ),
    }
}
