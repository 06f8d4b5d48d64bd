//! A small typed client of the Taler Wire Gateway API, for the exchange and the C2EC demo (and
//! this crate's tests). It speaks to any Wire Gateway (this bank, C2EC, libeufin): give it the
//! gateway's base URL (`…/accounts/{name}/taler-wire-gateway/`) and credentials.
//!
//! Non-2xx answers become [`ClientError::Taler`] with the server's Taler error code; an empty
//! history (204) is an empty `Vec`.

use std::time::Duration;

use cardcash_util::{BaseUrl, ErrorCode};
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::types::{
    AddIncomingRequest, AddIncomingResponse, IncomingBankTransaction, IncomingHistory,
    OutgoingBankTransaction, OutgoingHistory, TransferRequest, TransferResponse, WireConfig,
};

/// How the client authenticates.
#[derive(Clone)]
pub enum ClientAuth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// Sent as `Authorization: Bearer <token>` (include the `secret-token:` prefix).
    Bearer(String),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, …)"),
            Self::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

/// Why a Wire Gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Network, TLS, timeout, or an undecodable body.
    #[error("wire gateway request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered with a Taler error.
    #[error("wire gateway answered {status}: {code:?} {hint}")]
    Taler {
        status: StatusCode,
        /// The error code; `None` if the body had no known code.
        code: Option<ErrorCode>,
        hint: String,
    },
    /// The endpoint URL could not be built.
    #[error("bad wire gateway URL: {0}")]
    Url(String),
}

impl ClientError {
    /// The Taler error code of a server error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Taler { code, .. } => *code,
            _ => None,
        }
    }

    /// The HTTP status of a server error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Taler { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Paging and long polling of a history request (see [`crate::history`] for the semantics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Page size; negative = newest first. `None` = the server default (−20).
    pub limit: Option<i64>,
    /// Exclusive start row.
    pub offset: Option<u64>,
    /// Long-poll timeout (only meaningful with a positive limit).
    pub timeout: Option<Duration>,
}

impl HistoryRequest {
    /// The next `limit` rows after `offset`, waiting up to `timeout` for the first one.
    pub fn after(offset: Option<u64>, limit: i64, timeout: Option<Duration>) -> Self {
        Self {
            limit: Some(limit),
            offset,
            timeout,
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        if let Some(offset) = self.offset {
            q.push(("offset", offset.to_string()));
        }
        if let Some(t) = self.timeout {
            q.push(("timeout_ms", t.as_millis().to_string()));
        }
        q
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    #[serde(default)]
    hint: String,
}

/// A Wire Gateway client bound to one gateway base URL and credentials.
#[derive(Debug, Clone)]
pub struct WireGatewayClient {
    http: reqwest::Client,
    base: BaseUrl,
    auth: ClientAuth,
}

/// Extra time granted on top of a long poll before the client gives up on the server.
const LONG_POLL_GRACE: Duration = Duration::from_secs(10);
/// Timeout of ordinary requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl WireGatewayClient {
    /// A client for the gateway at `base` (`…/taler-wire-gateway/`).
    pub fn new(base: BaseUrl, auth: ClientAuth) -> Self {
        Self::with_http(reqwest::Client::new(), base, auth)
    }

    /// Like [`Self::new`] with a shared `reqwest::Client`.
    pub fn with_http(http: reqwest::Client, base: BaseUrl, auth: ClientAuth) -> Self {
        Self { http, base, auth }
    }

    pub fn base_url(&self) -> &BaseUrl {
        &self.base
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Url(e.to_string()))
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            ClientAuth::None => req,
            ClientAuth::Basic { user, password } => req.basic_auth(user, Some(password)),
            ClientAuth::Bearer(token) => req.bearer_auth(token),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = self.authorize(req).send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let (code, hint) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => (e.code.and_then(ErrorCode::from_code), e.hint),
            Err(_) => (None, String::from_utf8_lossy(&body).into_owned()),
        };
        Err(ClientError::Taler { status, code, hint })
    }

    async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        Ok(resp.json().await?)
    }

    /// `GET config`.
    pub async fn config(&self) -> Result<WireConfig, ClientError> {
        let req = self.http.get(self.url("config")?).timeout(REQUEST_TIMEOUT);
        Self::json(self.send(req).await?).await
    }

    /// `POST transfer` (idempotent per `request_uid`).
    pub async fn transfer(&self, body: &TransferRequest) -> Result<TransferResponse, ClientError> {
        let req = self
            .http
            .post(self.url("transfer")?)
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        Self::json(self.send(req).await?).await
    }

    /// `POST admin/add-incoming` (test and demo helper of the bank).
    pub async fn add_incoming(
        &self,
        body: &AddIncomingRequest,
    ) -> Result<AddIncomingResponse, ClientError> {
        let req = self
            .http
            .post(self.url("admin/add-incoming")?)
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        Self::json(self.send(req).await?).await
    }

    fn history_request(
        &self,
        path: &str,
        h: &HistoryRequest,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let timeout = REQUEST_TIMEOUT + h.timeout.unwrap_or_default() + LONG_POLL_GRACE;
        let mut url = self.url(path)?;
        for (key, value) in h.query() {
            url.query_pairs_mut().append_pair(key, &value);
        }
        Ok(self.http.get(url).timeout(timeout))
    }

    /// `GET history/incoming`; an empty page (204) is an empty `Vec`.
    pub async fn incoming_history(
        &self,
        h: &HistoryRequest,
    ) -> Result<Vec<IncomingBankTransaction>, ClientError> {
        let resp = self
            .send(self.history_request("history/incoming", h)?)
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let page: IncomingHistory = Self::json(resp).await?;
        Ok(page.incoming_transactions)
    }

    /// `GET history/outgoing`; an empty page (204) is an empty `Vec`.
    pub async fn outgoing_history(
        &self,
        h: &HistoryRequest,
    ) -> Result<Vec<OutgoingBankTransaction>, ClientError> {
        let resp = self
            .send(self.history_request("history/outgoing", h)?)
            .await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let page: OutgoingHistory = Self::json(resp).await?;
        Ok(page.outgoing_transactions)
    }
}
