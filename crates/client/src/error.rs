//! The one error of every client: what went wrong, with whom, and whether trying again helps.
//!
//! Every error names the service ("C2EC", "the card processor", …) and the URL it was talking
//! to, so that the message alone tells an operator where to look:
//!
//! - `cannot reach C2EC at http://127.0.0.1:9/terminal/config: connection refused (is it
//!   running, and is the URL right?)`
//! - `C2EC at http://…/withdrawals/…/check answered 409 Conflict: BANK_CONFIRM_ABORT_CONFLICT
//!   (5114): the withdrawal was aborted`
//!
//! A Taler error body (`{code, hint, detail}`, docs.taler.net "Common Taler HTTP API
//! conventions") is kept parsed, and kept whole as JSON for the errors that say more than
//! `code` and `hint` (an exchange's insufficient-funds answer carries the reserve's balance:
//! [`ClientError::body_as`]); any other error body is kept as a short text.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cardcash_api::ErrorDetail;
use cardcash_util::ErrorCode;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// Longest piece of a non-Taler error body kept for the message (an HTML error page, say).
pub(crate) const MAX_ERROR_TEXT: usize = 200;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was never sent: a bad base URL, a path segment that cannot be a segment, a
    /// body that does not serialize, a secret that does not decode. A programming or
    /// configuration error; retrying cannot help.
    InvalidRequest(String),
    /// No answer: connection refused, DNS failure, TLS failure, connection reset.
    Unreachable(String),
    /// No (complete) answer within the time limit.
    Timeout(Duration),
    /// The service answered with an error status (anything but 2xx; redirects are not
    /// followed).
    Status {
        /// The HTTP status.
        status: u16,
        /// The Taler error body, when the body was one.
        error: Option<ErrorDetail>,
        /// The start of the body when it was not a Taler error body (empty when there was
        /// none).
        text: String,
    },
    /// A success answer that is not what the API promises (not JSON, wrong shape).
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        reason: String,
    },
    /// The answer's body exceeded the client's limit; it was not read further.
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// An error of any client in this crate. Cheap to move (one box).
pub struct ClientError(Box<Inner>);

struct Inner {
    /// Who we were talking to ("C2EC", "the card processor", …).
    service: Arc<str>,
    /// The request method, for logs (`GET`).
    method: String,
    /// The URL of the request (empty when none could be built).
    url: String,
    kind: ErrorKind,
    /// The transport error behind `Unreachable`/`Timeout`, for `source()`.
    source: Option<reqwest::Error>,
    /// The whole JSON body of a Taler error answer (with the fields beyond `ErrorDetail`).
    body: Option<serde_json::Value>,
}

impl ClientError {
    pub(crate) fn new(
        service: &Arc<str>,
        method: &str,
        url: &str,
        kind: ErrorKind,
        source: Option<reqwest::Error>,
    ) -> Self {
        Self(Box::new(Inner {
            service: service.clone(),
            method: method.to_owned(),
            url: url.to_owned(),
            kind,
            source,
            body: None,
        }))
    }

    /// The same error, keeping the whole JSON body of the Taler error answer.
    pub(crate) fn with_body(mut self, body: serde_json::Value) -> Self {
        self.0.body = Some(body);
        self
    }

    /// An error before any request existed (building a client, decoding a secret).
    pub fn invalid_setup(service: &str, reason: impl Into<String>) -> Self {
        Self::new(
            &Arc::from(service),
            "",
            "",
            ErrorKind::InvalidRequest(reason.into()),
            None,
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The service the client was talking to.
    pub fn service(&self) -> &str {
        &self.0.service
    }

    /// The request's URL (empty when the request could not be built).
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The request's method (empty when the request could not be built).
    pub fn method(&self) -> &str {
        &self.0.method
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match &self.0.kind {
            ErrorKind::Status { status, .. } | ErrorKind::Malformed { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Taler error body, when the service sent one.
    pub fn detail(&self) -> Option<&ErrorDetail> {
        match &self.0.kind {
            ErrorKind::Status { error, .. } => error.as_ref(),
            _ => None,
        }
    }

    /// The Taler error code number, when the service sent one (codes newer than our table
    /// included).
    pub fn code(&self) -> Option<u32> {
        self.detail().map(|e| e.code)
    }

    /// The Taler error code, when the service sent one we know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.detail().and_then(ErrorDetail::error_code)
    }

    /// The service's hint, when it gave one.
    pub fn hint(&self) -> Option<&str> {
        self.detail().and_then(|e| e.hint.as_deref())
    }

    /// The whole JSON body of a Taler error answer, with the fields some errors add to `code`
    /// and `hint` (a reserve's balance, a coin's key, an exchange signature).
    pub fn body(&self) -> Option<&serde_json::Value> {
        self.0.body.as_ref()
    }

    /// The Taler error body read as `T` (e.g. the exchange's
    /// `ReserveInsufficientBalanceResponse` of a 409); `None` when there was no Taler error
    /// body or it is not a `T`.
    pub fn body_as<T: DeserializeOwned>(&self) -> Option<T> {
        self.body().and_then(|b| T::deserialize(b).ok())
    }

    /// Whether the same request may succeed later: no answer, a timeout, 5xx, 408, 429, or a
    /// garbled success answer (which says nothing about the outcome, so ask again).
    pub fn is_retryable(&self) -> bool {
        match &self.0.kind {
            ErrorKind::Unreachable(_) | ErrorKind::Timeout(_) | ErrorKind::Malformed { .. } => true,
            ErrorKind::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            ErrorKind::InvalidRequest(_) | ErrorKind::ResponseTooLarge { .. } => false,
        }
    }

    /// 404: the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 409: the request conflicts with the stored state.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// 401 or 403: the credentials were refused; an operator must fix the configuration.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// Any other 4xx answer: the service refused this request, and will refuse it again.
    pub fn is_client_error(&self) -> bool {
        self.status().is_some_and(|s| (400..500).contains(&s))
    }
}

fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            service, url, kind, ..
        } = &*self.0;
        match kind {
            ErrorKind::InvalidRequest(reason) if url.is_empty() => {
                write!(f, "{service}: {reason}")
            }
            ErrorKind::InvalidRequest(reason) => {
                write!(f, "invalid request to {service} at {url}: {reason}")
            }
            ErrorKind::Unreachable(reason) => write!(
                f,
                "cannot reach {service} at {url}: {reason} (is it running, and is the URL right?)"
            ),
            ErrorKind::Timeout(after) => write!(
                f,
                "{service} at {url} did not answer within {:.1} s",
                after.as_secs_f64()
            ),
            ErrorKind::Status {
                status,
                error: Some(error),
                ..
            } => {
                write!(f, "{service} at {url} answered {}: ", status_text(*status))?;
                match error.error_code() {
                    Some(code) => write!(f, "{code}")?,
                    None => write!(f, "error code {}", error.code)?,
                }
                if let Some(hint) = &error.hint {
                    write!(f, ": {hint}")?;
                }
                if let Some(detail) = &error.detail {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            ErrorKind::Status { status, text, .. } => {
                write!(f, "{service} at {url} answered {}", status_text(*status))?;
                if !text.is_empty() {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
            ErrorKind::Malformed { status, reason } => write!(
                f,
                "{service} at {url} answered {} with a malformed body: {reason}",
                status_text(*status)
            ),
            ErrorKind::ResponseTooLarge { limit } => write!(
                f,
                "{service} at {url} sent a response larger than the limit of {limit} bytes"
            ),
        }
    }
}

impl fmt::Debug for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientError")
            .field("service", &self.0.service)
            .field("method", &self.0.method)
            .field("url", &self.0.url)
            .field("kind", &self.0.kind)
            .finish()
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The kind of a transport failure, in words a person can act on: the innermost cause
/// (`connection refused`, a DNS or TLS message) rather than reqwest's outer "error sending
/// request".
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let mut cause: &dyn StdError = e;
    let mut innermost = e.to_string();
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            return match io.kind() {
                Io::ConnectionRefused => "connection refused".to_owned(),
                Io::ConnectionReset => "connection reset by the peer".to_owned(),
                Io::ConnectionAborted => "connection aborted".to_owned(),
                Io::TimedOut => "connection timed out".to_owned(),
                Io::AddrNotAvailable => "address not available".to_owned(),
                _ => io.to_string(),
            };
        }
        innermost = next.to_string();
        cause = next;
    }
    if e.is_connect() && !innermost.contains("connect") {
        format!("connection failed: {innermost}")
    } else {
        innermost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> ClientError {
        ClientError::new(
            &Arc::from("C2EC"),
            "POST",
            "http://c2ec.example/terminal/withdrawals/W/check",
            kind,
            None,
        )
    }

    #[test]
    fn taler_errors_name_service_url_code_and_hint() {
        let e = err(ErrorKind::Status {
            status: 409,
            error: Some(ErrorDetail {
                code: ErrorCode::BankAbortConfirmConflict.code(),
                hint: Some("the withdrawal was aborted".into()),
                detail: Some("W".into()),
            }),
            text: String::new(),
        });
        assert_eq!(
            e.to_string(),
            format!(
                "C2EC at http://c2ec.example/terminal/withdrawals/W/check answered 409 Conflict: \
                 BANK_ABORT_CONFIRM_CONFLICT ({}): the withdrawal was aborted (W)",
                ErrorCode::BankAbortConfirmConflict.code()
            )
        );
        assert_eq!(e.error_code(), Some(ErrorCode::BankAbortConfirmConflict));
        assert_eq!(e.hint(), Some("the withdrawal was aborted"));
        assert!(e.is_conflict() && e.is_client_error() && !e.is_retryable());
    }

    #[test]
    fn unknown_codes_and_plain_bodies_still_read_well() {
        let e = err(ErrorKind::Status {
            status: 400,
            error: Some(ErrorDetail {
                code: 999_999,
                hint: None,
                detail: None,
            }),
            text: String::new(),
        });
        assert!(
            e.to_string()
                .ends_with("400 Bad Request: error code 999999"),
            "{e}"
        );
        assert_eq!(e.code(), Some(999_999));
        assert_eq!(e.error_code(), None);
        let e = err(ErrorKind::Status {
            status: 502,
            error: None,
            text: "<html>bad gateway</html>".into(),
        });
        assert!(
            e.to_string()
                .ends_with("502 Bad Gateway: <html>bad gateway</html>")
        );
        assert!(e.is_retryable());
        assert_eq!(e.code(), None);
    }

    #[test]
    fn retryability() {
        assert!(err(ErrorKind::Unreachable("connection refused".into())).is_retryable());
        assert!(err(ErrorKind::Timeout(Duration::from_secs(1))).is_retryable());
        assert!(
            err(ErrorKind::Malformed {
                status: 200,
                reason: "x".into()
            })
            .is_retryable()
        );
        for (status, retry) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
        ] {
            let e = err(ErrorKind::Status {
                status,
                error: None,
                text: String::new(),
            });
            assert_eq!(e.is_retryable(), retry, "{status}");
        }
        assert!(!err(ErrorKind::ResponseTooLarge { limit: 1 }).is_retryable());
        assert!(!ClientError::invalid_setup("C2EC", "bad base URL").is_retryable());
        assert_eq!(
            ClientError::invalid_setup("C2EC", "bad base URL").to_string(),
            "C2EC: bad base URL"
        );
    }

    #[test]
    fn errors_stay_small() {
        assert_eq!(
            std::mem::size_of::<ClientError>(),
            std::mem::size_of::<usize>()
        );
    }
}
