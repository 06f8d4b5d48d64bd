//! HTTP client for the card processor API, used by C2EC (read, refund), the terminal (create,
//! process) and our tests.
//!
//! Spec: docs/CARDPROC-API.md. Every `/api/…` request is signed with Wallee's MAC ([`crate::mac`])
//! over the path starting at `/api/`, as the Wallee SDKs do, so a base URL with a path prefix
//! (behind a reverse proxy) still verifies. Errors separate what a caller should retry
//! ([`ClientError::is_retryable`]: unreachable, timeouts, 5xx, garbled answers) from definite
//! answers (4xx with the Taler error body).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use cardcash_api::cardproc::mac::{MacHeaders, MacKey, MacKeyError};
use cardcash_api::cardproc::{
    ConfigResponse, CreateTransactionRequest, OutageRequest, ProcessCardRequest, Refund,
    RefundRequest, Transaction,
};

/// Default time limit of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong talking to the card processor.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused, DNS, TLS, timeout. Retry later.
    #[error("card processor unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The processor answered 5xx (including 503 during an outage). Retry later.
    #[error("card processor failed with HTTP {status}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The Taler error body, when there was one.
        error: Option<cardcash_api::ErrorDetail>,
    },
    /// The processor refused the request (4xx). Retrying the same request will not help.
    #[error("card processor rejected the request with HTTP {status} (code {})", error.as_ref().map_or(0, |e| e.code))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The Taler error body, when there was one.
        error: Option<cardcash_api::ErrorDetail>,
    },
    /// A 2xx answer that is not the JSON we expect. Says nothing about the payment, so retry.
    #[error("card processor sent an invalid response: {0}")]
    InvalidResponse(String),
    /// The client was built with a bad base URL or secret.
    #[error("invalid card processor client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// Whether the same request may succeed later (network trouble, 5xx, garbled answers).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Server { .. } | Self::InvalidResponse(_) => true,
            Self::Rejected { status, .. } => *status == 429 || *status == 408,
            Self::Config(_) => false,
        }
    }

    /// The HTTP status, when the processor answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } | Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Taler error code, when the processor sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Server { error, .. } | Self::Rejected { error, .. } => {
                error.as_ref().map(|e| e.code)
            }
            _ => None,
        }
    }

    /// 404: the transaction or refund does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 409: the request conflicts with stored state (over-refund, reused `externalId`, state).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}

impl From<MacKeyError> for ClientError {
    fn from(e: MacKeyError) -> Self {
        Self::Config(e.to_string())
    }
}

/// A signed client for one API user in one space.
#[derive(Debug, Clone)]
pub struct CardprocClient {
    http: reqwest::Client,
    /// Base URL without trailing slash.
    base: String,
    user_id: u64,
    key: MacKey,
    space_id: u64,
}

impl CardprocClient {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8083/`), signing as `user_id` with the
    /// base64 `secret`, working in `space_id`.
    pub fn new(
        base_url: &str,
        user_id: u64,
        secret_b64: &str,
        space_id: u64,
    ) -> Result<Self, ClientError> {
        let key = MacKey::from_base64(secret_b64)?;
        let http = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Self::with_http_client(http, base_url, user_id, key, space_id)
    }

    /// Like [`Self::new`] with a caller-built `reqwest::Client` (shared pools, custom timeouts).
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: &str,
        user_id: u64,
        key: MacKey,
        space_id: u64,
    ) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| ClientError::Config(format!("base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.cannot_be_a_base()
        {
            return Err(ClientError::Config(
                "base URL must be http(s) without a query".into(),
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            base,
            user_id,
            key,
            space_id,
        })
    }

    /// The space this client works in.
    pub fn space_id(&self) -> u64 {
        self.space_id
    }

    /// The API user id this client signs as.
    pub fn user_id(&self) -> u64 {
        self.user_id
    }

    /// `POST /api/transaction/create`.
    pub async fn create_transaction(
        &self,
        req: &CreateTransactionRequest,
    ) -> Result<Transaction, ClientError> {
        let path = format!("/api/transaction/create?spaceId={}", self.space_id);
        self.signed(Method::POST, &path, Some(req)).await
    }

    /// `POST /api/transaction/process-card`: presents the card; idempotent per transaction.
    pub async fn process_card(
        &self,
        id: u64,
        card: &ProcessCardRequest,
    ) -> Result<Transaction, ClientError> {
        let path = format!(
            "/api/transaction/process-card?spaceId={}&id={id}",
            self.space_id
        );
        self.signed(Method::POST, &path, Some(card)).await
    }

    /// `POST /api/transaction-void/voidOnline`: cancels an `AUTHORIZED` transaction (→ `VOIDED`).
    pub async fn void_transaction(&self, id: u64) -> Result<Transaction, ClientError> {
        let path = format!(
            "/api/transaction-void/voidOnline?spaceId={}&id={id}",
            self.space_id
        );
        self.signed::<(), _>(Method::POST, &path, None).await
    }

    /// `GET /api/transaction/read`.
    pub async fn read_transaction(&self, id: u64) -> Result<Transaction, ClientError> {
        let path = format!("/api/transaction/read?spaceId={}&id={id}", self.space_id);
        self.signed::<(), _>(Method::GET, &path, None).await
    }

    /// `POST /api/refund/refund`: idempotent on `externalId`.
    pub async fn refund(&self, req: &RefundRequest) -> Result<Refund, ClientError> {
        let path = format!("/api/refund/refund?spaceId={}", self.space_id);
        self.signed(Method::POST, &path, Some(req)).await
    }

    /// `GET /api/refund/read`.
    pub async fn read_refund(&self, id: u64) -> Result<Refund, ClientError> {
        let path = format!("/api/refund/read?spaceId={}&id={id}", self.space_id);
        self.signed::<(), _>(Method::GET, &path, None).await
    }

    /// `GET /config` (unauthenticated).
    pub async fn config(&self) -> Result<ConfigResponse, ClientError> {
        let request = self.http.get(format!("{}/config", self.base));
        Self::finish(request).await
    }

    /// `POST /admin/outage` with the operator's bearer token: `down = true` makes every `/api/…`
    /// call answer 503 until called again with `false`.
    pub async fn admin_set_outage(&self, admin_token: &str, down: bool) -> Result<(), ClientError> {
        let request = self
            .http
            .post(format!("{}/admin/outage", self.base))
            .bearer_auth(admin_token)
            .json(&OutageRequest { down });
        Self::finish::<serde_json::Value>(request).await.map(|_| ())
    }

    async fn signed<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mac = MacHeaders::new(
            &self.key,
            self.user_id,
            now,
            method.as_str(),
            path_and_query,
        );
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        for (name, value) in mac.pairs() {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::finish(request).await
    }

    async fn finish<T: DeserializeOwned>(
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request.send().await.map_err(ClientError::Unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(ClientError::Unreachable)?;
        if status.is_success() {
            // `admin_set_outage` answers 204 with no body; treat "empty" as JSON null.
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(text)
                .map_err(|e| ClientError::InvalidResponse(e.to_string()));
        }
        let error = serde_json::from_slice::<cardcash_api::ErrorDetail>(&bytes).ok();
        let code = status.as_u16();
        if status.is_server_error() {
            Err(ClientError::Server {
                status: code,
                error,
            })
        } else if status.is_client_error() {
            Err(ClientError::Rejected {
                status: code,
                error,
            })
        } else {
            // 1xx/3xx: we never redirect, so this is a misconfigured base URL or proxy.
            Err(ClientError::InvalidResponse(format!(
                "unexpected HTTP {code}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0=";

    #[test]
    fn rejects_bad_configuration() {
        assert!(matches!(
            CardprocClient::new("not a url", 1, SECRET, 1),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            CardprocClient::new("ftp://x/", 1, SECRET, 1),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            CardprocClient::new("http://x/", 1, "%%", 1),
            Err(ClientError::Config(_))
        ));
        let c = CardprocClient::new("http://x/prefix/", 1, SECRET, 7).unwrap();
        assert_eq!(c.base, "http://x/prefix");
        assert_eq!(c.space_id(), 7);
    }

    #[test]
    fn retryability() {
        assert!(
            ClientError::Server {
                status: 503,
                error: None
            }
            .is_retryable()
        );
        assert!(ClientError::InvalidResponse("x".into()).is_retryable());
        let conflict = ClientError::Rejected {
            status: 409,
            error: Some(cardcash_api::ErrorDetail {
                code: 1,
                hint: None,
                detail: None,
            }),
        };
        assert!(!conflict.is_retryable());
        assert!(conflict.is_conflict());
        assert_eq!(conflict.code(), Some(1));
        assert!(
            ClientError::Rejected {
                status: 404,
                error: None
            }
            .is_not_found()
        );
    }

    #[tokio::test]
    async fn unreachable_is_retryable() {
        // Port 9 (discard) on localhost is closed on any sane test machine.
        let c = CardprocClient::new("http://127.0.0.1:9/", 1, SECRET, 1).unwrap();
        let err = c.read_transaction(1).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
        assert!(err.is_retryable());
    }
}
