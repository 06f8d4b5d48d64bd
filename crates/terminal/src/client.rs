//! HTTP client for C2EC's Terminal API (docs.taler.net core/api-terminal, protocol v0; our
//! notes spec/c2ec.md §1.2), as the payment terminal uses it.
//!
//! Every request carries the terminal's HTTP Basic credentials. The status request is a long
//! poll: the server holds it for up to `timeout_ms` waiting for a change away from `old_state`,
//! so its HTTP timeout must be the poll window plus a margin, or the client would give up just
//! before the server answers. Error answers keep the Taler error body (`code`, `hint`) so the
//! terminal can show the server's reason; nothing here retries (the flow decides).

use std::fmt;
use std::time::Duration;

use cardcash_api::ErrorDetail;
use cardcash_api::bank_integration::{BankWithdrawalOperationStatus, WithdrawalStatus};
use cardcash_api::terminal::{
    TerminalConfig, TerminalWithdrawalConfirmationRequest, TerminalWithdrawalSetup,
    TerminalWithdrawalSetupResponse,
};
use cardcash_util::{Amount, BaseUrl, ErrorCode};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Time limit of an ordinary (not long-polling) request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit for establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time a long-poll request gets beyond its poll window: the server answers at the end of
/// the window, and the answer needs time to arrive.
pub const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// Longest error body kept in [`ClientError::Http`] (anything more is an HTML error page).
const MAX_ERROR_TEXT: usize = 200;

/// What went wrong talking to C2EC.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused, DNS, TLS, timeout. The request may be retried.
    #[error("C2EC unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// C2EC answered with a Taler error body.
    #[error("C2EC answered HTTP {status}: {} (code {})", .error.hint.as_deref().unwrap_or("no hint"), .error.code)]
    Taler {
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: ErrorDetail,
    },
    /// C2EC (or a proxy in front of it) answered with an error that is not a Taler error body.
    #[error("C2EC answered HTTP {status}: {text}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        text: String,
    },
    /// A success answer that is not what the API promises.
    #[error("C2EC sent an invalid response: {0}")]
    InvalidResponse(String),
    /// The client could not be set up or a URL could not be built (bad base URL, a path
    /// segment that cannot be encoded, no TLS backend).
    #[error("invalid C2EC client setup: {0}")]
    Url(String),
}

impl ClientError {
    /// The HTTP status, when C2EC answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Taler { status, .. } | Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Taler error code number, when C2EC sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Taler { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// The Taler error code, when C2EC sent one we know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Taler { error, .. } => error.error_code(),
            _ => None,
        }
    }

    /// The server's hint, when it gave one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Taler { error, .. } => error.hint.as_deref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: no answer, 5xx, 429, or a garbled answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::InvalidResponse(_) => true,
            Self::Taler { status, .. } | Self::Http { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            Self::Url(_) => false,
        }
    }
}

/// The amount of a new withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupAmount {
    /// A fixed amount the wallet cannot change (what a terminal that knows the amount sends).
    Fixed(Amount),
    /// A suggestion; the wallet picks the amount when it registers.
    Suggested(Amount),
}

impl SetupAmount {
    /// The amount, fixed or suggested.
    pub fn amount(&self) -> &Amount {
        match self {
            Self::Fixed(a) | Self::Suggested(a) => a,
        }
    }
}

/// A terminal's client for C2EC's Terminal API.
#[derive(Clone)]
pub struct C2ecTerminalClient {
    http: reqwest::Client,
    /// `{c2ec}/terminal/`.
    base: BaseUrl,
    terminal_id: String,
    secret: String,
}

impl fmt::Debug for C2ecTerminalClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("C2ecTerminalClient")
            .field("base", &self.base)
            .field("terminal_id", &self.terminal_id)
            .field("secret", &"…redacted…")
            .finish()
    }
}

impl C2ecTerminalClient {
    /// A client for the Terminal API at `c2ec_terminal_base` (e.g. `https://c2ec.example/terminal/`),
    /// authenticating as `terminal_id` (the Basic user name, `T-1`) with `secret`.
    pub fn new(
        c2ec_terminal_base: BaseUrl,
        terminal_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Url(format!("HTTP client: {e}")))?;
        Ok(Self::with_http_client(
            http,
            c2ec_terminal_base,
            terminal_id,
            secret,
        ))
    }

    /// Like [`Self::new`] with a caller-built `reqwest::Client` (shared connection pool). Its
    /// own total timeout, if any, must exceed the long-poll windows used with [`Self::status`].
    pub fn with_http_client(
        http: reqwest::Client,
        c2ec_terminal_base: BaseUrl,
        terminal_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            http,
            base: c2ec_terminal_base,
            terminal_id: terminal_id.into(),
            secret: secret.into(),
        }
    }

    /// The terminal's user name at C2EC.
    pub fn terminal_id(&self) -> &str {
        &self.terminal_id
    }

    /// The Terminal API base URL.
    pub fn base_url(&self) -> &BaseUrl {
        &self.base
    }

    /// The `taler://withdraw` URI of `wopid` when C2EC's setup answer does not carry one (the
    /// field is our extension): C2EC serves the bank-integration API at
    /// `{c2ec}/taler-integration/` beside the Terminal API at `{c2ec}/terminal/`, and the URI
    /// names that base without its scheme (`taler+http://` for plain HTTP; Taler URI spec).
    pub fn withdraw_uri(&self, wopid: &str) -> String {
        let with_host = self.base.host_and_path();
        let root = with_host.strip_suffix("terminal/").unwrap_or(with_host);
        let scheme = if self.base.is_http() {
            "taler+http"
        } else {
            "taler"
        };
        format!("{scheme}://withdraw/{root}taler-integration/{wopid}")
    }

    /// `GET /config`: provider, currency and the exchange's withdrawal fees.
    pub async fn config(&self) -> Result<TerminalConfig, ClientError> {
        let url = self.endpoint(&["config"])?;
        self.send(Method::GET, url, None::<&()>, REQUEST_TIMEOUT)
            .await
    }

    /// `POST /withdrawals`: sets up a withdrawal. Idempotent on `request_uid`: repeating the
    /// same request returns the same WOPID.
    pub async fn setup_withdrawal(
        &self,
        request_uid: &str,
        amount: SetupAmount,
    ) -> Result<TerminalWithdrawalSetupResponse, ClientError> {
        let (amount, suggested_amount) = match amount {
            SetupAmount::Fixed(a) => (Some(a), None),
            SetupAmount::Suggested(a) => (None, Some(a)),
        };
        self.setup(&TerminalWithdrawalSetup {
            request_uid: request_uid.to_owned(),
            amount,
            suggested_amount,
            provider_transaction_id: None,
            terminal_fees: None,
            user_uuid: None,
            lock: None,
        })
        .await
    }

    /// `POST /withdrawals` with every field of the request under the caller's control.
    pub async fn setup(
        &self,
        request: &TerminalWithdrawalSetup,
    ) -> Result<TerminalWithdrawalSetupResponse, ClientError> {
        let url = self.endpoint(&["withdrawals"])?;
        self.send(Method::POST, url, Some(request), REQUEST_TIMEOUT)
            .await
    }

    /// `GET /withdrawals/{wopid}?old_state=…&timeout_ms=…`: the operation's status, waiting up
    /// to `timeout` for it to differ from `old_state` (`None`: answer at once). The HTTP request
    /// itself may take `timeout` plus [`LONG_POLL_MARGIN`].
    pub async fn status(
        &self,
        wopid: &str,
        old_state: Option<WithdrawalStatus>,
        timeout: Duration,
    ) -> Result<BankWithdrawalOperationStatus, ClientError> {
        let url = self.status_url(wopid, old_state, timeout)?;
        self.send(
            Method::GET,
            url,
            None::<&()>,
            timeout.saturating_add(LONG_POLL_MARGIN),
        )
        .await
    }

    /// `POST /withdrawals/{wopid}/check`: reports the card transaction. C2EC verifies it with
    /// the card processor asynchronously; the result shows up in [`Self::status`].
    pub async fn check(
        &self,
        wopid: &str,
        provider_transaction_id: &str,
    ) -> Result<(), ClientError> {
        self.check_with(
            wopid,
            &TerminalWithdrawalConfirmationRequest {
                provider_transaction_id: provider_transaction_id.to_owned(),
                terminal_fees: None,
                user_uuid: None,
                lock: None,
            },
        )
        .await
    }

    /// `POST /withdrawals/{wopid}/check` with every field under the caller's control.
    pub async fn check_with(
        &self,
        wopid: &str,
        request: &TerminalWithdrawalConfirmationRequest,
    ) -> Result<(), ClientError> {
        let url = self.endpoint(&["withdrawals", wopid, "check"])?;
        self.send_no_content(Method::POST, url, Some(request)).await
    }

    /// `POST /withdrawals/{wopid}/abort`: aborts the withdrawal (a no-op if already aborted;
    /// 409 once confirmed).
    pub async fn abort(&self, wopid: &str) -> Result<(), ClientError> {
        let url = self.endpoint(&["withdrawals", wopid, "abort"])?;
        self.send_no_content(Method::POST, url, None::<&()>).await
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment, so a
    /// WOPID from the network can never change the path or add a query.
    fn endpoint(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.as_url().clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::Url("base URL cannot have a path".into()))?;
            // The base ends in '/', which leaves an empty last segment to replace.
            path.pop_if_empty();
            for segment in segments {
                if segment.is_empty() || *segment == "." || *segment == ".." {
                    return Err(ClientError::Url(format!(
                        "invalid path segment {segment:?}"
                    )));
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    fn status_url(
        &self,
        wopid: &str,
        old_state: Option<WithdrawalStatus>,
        timeout: Duration,
    ) -> Result<Url, ClientError> {
        let mut url = self.endpoint(&["withdrawals", wopid])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(old) = old_state {
                query.append_pair("old_state", old.as_str());
            }
            if !timeout.is_zero() {
                query.append_pair("timeout_ms", &timeout.as_millis().to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(&self.terminal_id, Some(&self.secret))
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let mut request = self.request(method, url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(ClientError::Unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(ClientError::Unreachable)?;
        if status == StatusCode::OK {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse(e.to_string()))
        } else {
            Err(error_from_response(status, &bytes))
        }
    }

    async fn send_no_content<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        let mut request = self.request(method, url).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(ClientError::Unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.map_err(ClientError::Unreachable)?;
        Err(error_from_response(status, &bytes))
    }
}

/// Turns a non-success answer into an error, keeping the Taler error body when there is one.
fn error_from_response(status: StatusCode, body: &[u8]) -> ClientError {
    let code = status.as_u16();
    if status.is_success() {
        return ClientError::InvalidResponse(format!("unexpected HTTP {code}"));
    }
    match serde_json::from_slice::<ErrorDetail>(body) {
        Ok(error) => ClientError::Taler {
            status: code,
            error,
        },
        Err(_) => {
            let text: String = String::from_utf8_lossy(body)
                .chars()
                .take(MAX_ERROR_TEXT)
                .collect();
            ClientError::Http { status: code, text }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> C2ecTerminalClient {
        C2ecTerminalClient::new(BaseUrl::parse(base).unwrap(), "T-1", "s3cret").unwrap()
    }

    #[test]
    fn endpoints_join_below_the_terminal_base() {
        let c = client("http://c2ec.example:8082/terminal");
        assert_eq!(
            c.endpoint(&["config"]).unwrap().as_str(),
            "http://c2ec.example:8082/terminal/config"
        );
        assert_eq!(
            c.endpoint(&["withdrawals", "ABC", "check"])
                .unwrap()
                .as_str(),
            "http://c2ec.example:8082/terminal/withdrawals/ABC/check"
        );
        let prefixed = client("https://pay.example/c2ec/terminal/");
        assert_eq!(
            prefixed
                .endpoint(&["withdrawals", "W", "abort"])
                .unwrap()
                .as_str(),
            "https://pay.example/c2ec/terminal/withdrawals/W/abort"
        );
    }

    #[test]
    fn withdraw_uri_fallback_points_at_the_integration_api() {
        assert_eq!(
            client("http://127.0.0.1:8082/terminal/").withdraw_uri("W1"),
            "taler+http://withdraw/127.0.0.1:8082/taler-integration/W1"
        );
        assert_eq!(
            client("https://pay.example/c2ec/terminal/").withdraw_uri("W1"),
            "taler://withdraw/pay.example/c2ec/taler-integration/W1"
        );
    }

    #[test]
    fn a_hostile_wopid_stays_one_path_segment() {
        let c = client("http://c2ec.example/terminal/");
        let url = c
            .endpoint(&["withdrawals", "a/../b?x=1#f", "check"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://c2ec.example/terminal/withdrawals/a%2F..%2Fb%3Fx=1%23f/check"
        );
        assert_eq!(url.query(), None);
        assert!(c.endpoint(&["withdrawals", ".."]).is_err());
        assert!(c.endpoint(&["withdrawals", ""]).is_err());
    }

    #[test]
    fn status_url_carries_old_state_and_timeout() {
        let c = client("http://c2ec.example/terminal/");
        let url = c
            .status_url(
                "W1",
                Some(WithdrawalStatus::Selected),
                Duration::from_secs(30),
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://c2ec.example/terminal/withdrawals/W1?old_state=selected&timeout_ms=30000"
        );
        let immediate = c.status_url("W1", None, Duration::ZERO).unwrap();
        assert_eq!(
            immediate.as_str(),
            "http://c2ec.example/terminal/withdrawals/W1"
        );
    }

    #[test]
    fn taler_error_bodies_are_kept() {
        let body = br#"{"code":5114,"hint":"withdrawal operation unknown","detail":"W1"}"#;
        let err = error_from_response(StatusCode::NOT_FOUND, body);
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.code(), Some(5114));
        assert_eq!(err.hint(), Some("withdrawal operation unknown"));
        assert!(!err.is_retryable());
        assert!(
            err.to_string().contains("withdrawal operation unknown"),
            "{err}"
        );
        let conflict = error_from_response(
            StatusCode::CONFLICT,
            format!(
                r#"{{"code":{}}}"#,
                ErrorCode::BankAbortConfirmConflict.code()
            )
            .as_bytes(),
        );
        assert_eq!(
            conflict.error_code(),
            Some(ErrorCode::BankAbortConfirmConflict)
        );
        assert_eq!(conflict.hint(), None);
    }

    #[test]
    fn other_error_bodies_are_truncated_text() {
        let html = format!("<html>{}</html>", "x".repeat(1000));
        let err = error_from_response(StatusCode::BAD_GATEWAY, html.as_bytes());
        match &err {
            ClientError::Http { status, text } => {
                assert_eq!(*status, 502);
                assert_eq!(text.chars().count(), MAX_ERROR_TEXT);
                assert!(text.starts_with("<html>"));
            }
            other => panic!("expected Http, got {other:?}"),
        }
        assert!(err.is_retryable());
        assert_eq!(err.code(), None);
        let unauthorized = error_from_response(StatusCode::UNAUTHORIZED, b"");
        assert_eq!(unauthorized.status(), Some(401));
        assert!(!unauthorized.is_retryable());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let c = client("http://c2ec.example/terminal/");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"));
        assert!(debug.contains("T-1"));
    }

    #[tokio::test]
    async fn unreachable_server_is_a_retryable_error() {
        // Port 9 (discard) is closed on any sane test machine.
        let c = client("http://127.0.0.1:9/terminal/");
        let err = c.config().await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        assert!(err.is_retryable());
    }
}
