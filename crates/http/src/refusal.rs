//! A service's refusal of a request: an official Taler error code (GANA), a hint, the HTTP
//! status the registry assigns to the code (or the one the C implementation answers where it
//! differs), and the extra body fields some answers carry by protocol (an insufficient-funds
//! answer its balance, an out-of-stock answer the product and quantities).
//!
//! Services whose error enum has a `Refused(Refusal)` variant (and `From<Refusal>`) get the
//! constructors `refused`, `refused_status`, `refused_with` and `malformed` from
//! [`refusal_constructors!`](crate::refusal_constructors), so they are written once here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::{ApiError, ErrorCode};

/// A refusal with an official code; its status is the code's registered one unless given.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{hint}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub hint: String,
    /// Protocol-defined further fields of the error body.
    pub extra: Option<Map<String, Value>>,
    /// Where the C implementation answers another status than the code's registered one.
    pub status: Option<StatusCode>,
}

impl Refusal {
    /// A refusal with `code` (and its registered HTTP status).
    pub fn new(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self {
            code,
            hint: hint.into(),
            extra: None,
            status: None,
        }
    }

    /// A refusal with `code` and an explicit `status` (the C implementation's, where it differs
    /// from the registry's).
    pub fn with_status(status: StatusCode, code: ErrorCode, hint: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            ..Self::new(code, hint)
        }
    }

    /// A refusal with protocol-defined extra fields in its body (`extra` must be a JSON object;
    /// anything else adds no fields).
    pub fn with_extra(code: ErrorCode, hint: impl Into<String>, extra: Value) -> Self {
        Self {
            extra: match extra {
                Value::Object(map) => Some(map),
                _ => None,
            },
            ..Self::new(code, hint)
        }
    }

    /// `GENERIC_PARAMETER_MALFORMED` naming the parameter.
    pub fn malformed(what: &str) -> Self {
        Self::new(
            ErrorCode::GenericParameterMalformed,
            format!("malformed {what}"),
        )
    }
}

impl ApiError for Refusal {
    /// The explicit status, else the code's registered one, else (a code that registers none,
    /// or a non-error status) 400.
    fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .ok()
                .filter(|s| !s.is_informational() && !s.is_success())
                .unwrap_or(StatusCode::BAD_REQUEST)
        })
    }

    fn code(&self) -> ErrorCode {
        self.code
    }

    fn extra(&self) -> Option<Map<String, Value>> {
        self.extra.clone()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        crate::error_response(&self)
    }
}

/// The refusal constructors of a service's error enum, inside its `impl` block; the enum must
/// implement `From<Refusal>` (a `Refused(#[from] Refusal)` variant):
///
/// ```ignore
/// impl MerchantError {
///     cardcash_http::refusal_constructors!();
/// }
/// ```
#[macro_export]
macro_rules! refusal_constructors {
    () => {
        /// A refusal with `code` (and its registered HTTP status).
        pub fn refused(code: $crate::ErrorCode, hint: impl Into<String>) -> Self {
            $crate::Refusal::new(code, hint).into()
        }

        /// A refusal with `code` and an explicit `status` (the C implementation's, where it
        /// differs from the registry's).
        pub fn refused_status(
            status: $crate::reexport::StatusCode,
            code: $crate::ErrorCode,
            hint: impl Into<String>,
        ) -> Self {
            $crate::Refusal::with_status(status, code, hint).into()
        }

        /// A refusal with protocol-defined extra fields in its body.
        pub fn refused_with(
            code: $crate::ErrorCode,
            hint: impl Into<String>,
            extra: $crate::reexport::Value,
        ) -> Self {
            $crate::Refusal::with_extra(code, hint, extra).into()
        }

        /// `GENERIC_PARAMETER_MALFORMED` naming the parameter.
        pub fn malformed(what: &str) -> Self {
            $crate::Refusal::malformed(what).into()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn status_is_the_registered_one_unless_given() {
        let r = Refusal::new(ErrorCode::ExchangeWithdrawReserveUnknown, "no reserve");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = Refusal::new(ErrorCode::ExchangeRefundMerchantAlreadyPaid, "paid");
        assert_eq!(r.status(), StatusCode::GONE);
        let r = Refusal::with_status(
            StatusCode::BAD_GATEWAY,
            ErrorCode::MerchantGenericExchangeConnectFailure,
            "down",
        );
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        // A code that registers no status (0) is a client error.
        let r = Refusal::new(ErrorCode::None, "?");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = Refusal::malformed("wtid");
        assert_eq!(
            (r.status(), r.code, r.hint.as_str()),
            (
                StatusCode::BAD_REQUEST,
                ErrorCode::GenericParameterMalformed,
                "malformed wtid"
            )
        );
    }

    #[tokio::test]
    async fn extra_fields_join_the_body() {
        let r = Refusal::with_extra(
            ErrorCode::ExchangeWithdrawInsufficientFunds,
            "short",
            serde_json::json!({"balance": "KUDOS:1", "code": 1}),
        );
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let response = r.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let code = ErrorCode::ExchangeWithdrawInsufficientFunds.code();
        assert_eq!(
            body,
            serde_json::json!({"code": code, "hint": "short", "balance": "KUDOS:1"})
        );
        // Anything but an object adds nothing.
        let r = Refusal::with_extra(ErrorCode::GenericParameterMalformed, "x", Value::Null);
        assert!(r.extra.is_none());
    }
}
