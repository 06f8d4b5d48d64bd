//! The core every client shares: one connection pool with time limits, a service's address and
//! credentials, and requests whose answers are read with a size bound and turned into typed
//! values or a [`ClientError`].
//!
//! - [`HttpClient`]: a `reqwest` client (clone it to share the pool) and its
//!   [`ClientOptions`]. Redirects are never followed: a Taler service answers where it is
//!   configured, and a redirect would carry credentials elsewhere.
//! - [`Endpoint`]: a service's name (for messages), base URL and [`Auth`]. URLs are built from
//!   path segments, each percent-encoded, so an id from the network (a WOPID, an account name)
//!   can never change the path or add a query.
//! - [`Request`]: method, URL, query, JSON body, extra headers and a time limit; `send` reads
//!   the whole answer (at most [`ClientOptions::max_response_bytes`]) and maps every non-2xx
//!   status to [`ErrorKind::Status`] with the Taler error body parsed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cardcash_api::ErrorDetail;
use cardcash_util::BaseUrl;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ClientError, ErrorKind, MAX_ERROR_TEXT, describe_transport};

/// Default time limit of one request (connecting, sending, reading the whole answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit for establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default extra time a long poll gets beyond its window: the server answers at the end of the
/// window, and the answer needs time to arrive.
pub const DEFAULT_LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// Default bound on a response body. A Wire Gateway history page of the largest size (1024
/// rows) is well below it; the exchange's `/keys` client will ask for more.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Limits of an [`HttpClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time limit of an ordinary request.
    pub timeout: Duration,
    /// Time limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Added to a long poll's window to get its time limit.
    pub long_poll_margin: Duration,
    /// Largest response body read; a larger one is [`ErrorKind::ResponseTooLarge`].
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            long_poll_margin: DEFAULT_LONG_POLL_MARGIN,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A connection pool with its limits. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    options: ClientOptions,
}

impl HttpClient {
    /// A client with the default limits.
    pub fn new() -> Result<Self, ClientError> {
        Self::with_options(ClientOptions::default())
    }

    /// A client with the given limits.
    pub fn with_options(options: ClientOptions) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ClientError::invalid_setup("HTTP client", format!("cannot be built: {e}"))
            })?;
        Ok(Self { client, options })
    }

    /// The limits.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }
}

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password (zeroized on drop, never printed).
        password: Zeroizing<String>,
    },
    /// `Authorization: Bearer <token>`; Taler tokens include their `secret-token:` prefix.
    Bearer(Zeroizing<String>),
}

impl Auth {
    /// HTTP Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// A bearer token (with its `secret-token:` prefix where the API wants one).
    pub fn bearer(token: impl Into<String>) -> Self {
        Self::Bearer(Zeroizing::new(token.into()))
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::None => request,
            Self::Basic { username, password } => {
                request.basic_auth(username, Some(password.as_str()))
            }
            Self::Bearer(token) => request.bearer_auth(token.as_str()),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// One service: its name in messages, its base URL, its credentials, and the pool to use.
/// Cheap to clone (one `Arc`), so typed clients stay small and cloneable.
#[derive(Debug, Clone)]
pub struct Endpoint(Arc<EndpointParts>);

#[derive(Debug)]
struct EndpointParts {
    http: HttpClient,
    service: Arc<str>,
    base: BaseUrl,
    auth: Auth,
}

impl Endpoint {
    /// The service called `service` in messages (`"C2EC"`, `"the bank"`) at `base`.
    pub fn new(http: HttpClient, service: &str, base: BaseUrl, auth: Auth) -> Self {
        Self(Arc::new(EndpointParts {
            http,
            service: Arc::from(service),
            base,
            auth,
        }))
    }

    /// The same endpoint under another name in messages.
    pub fn named(self, service: &str) -> Self {
        Self::new(
            self.0.http.clone(),
            service,
            self.0.base.clone(),
            self.0.auth.clone(),
        )
    }

    /// The service's name in messages.
    pub fn service(&self) -> &str {
        &self.0.service
    }

    /// The base URL.
    pub fn base_url(&self) -> &BaseUrl {
        &self.0.base
    }

    /// The credentials.
    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    /// The pool.
    pub fn http(&self) -> &HttpClient {
        &self.0.http
    }

    /// The same service below `segments` of this base (e.g. an account's Wire Gateway below
    /// the bank), with the same pool and credentials.
    pub fn below(&self, segments: &[&str], service: &str) -> Result<Self, ClientError> {
        let url = self.url(segments)?;
        let mut text = url.to_string();
        text.push('/');
        let base = BaseUrl::parse(&text).map_err(|e| self.invalid("", &text, e.to_string()))?;
        Ok(Self::new(
            self.0.http.clone(),
            service,
            base,
            self.0.auth.clone(),
        ))
    }

    /// The base URL with `segments` appended, each percent-encoded as exactly one path segment.
    /// Empty, `.` and `..` segments are refused.
    pub fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let base = &self.0.base;
        let mut url = base.as_url().clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| self.invalid("", base.as_str(), "the base URL cannot have a path"))?;
            // The base ends in '/', which leaves an empty last segment to replace.
            path.pop_if_empty();
            for segment in segments {
                if segment.is_empty() || *segment == "." || *segment == ".." {
                    return Err(self.invalid(
                        "",
                        base.as_str(),
                        format!("invalid path segment {segment:?}"),
                    ));
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    /// A request to the URL of `segments` (see [`Self::url`]).
    pub fn request(&self, method: Method, segments: &[&str]) -> Request<'_> {
        let url = self.url(segments);
        Request::new(self, method, url)
    }

    /// `GET` of `segments`.
    pub fn get(&self, segments: &[&str]) -> Request<'_> {
        self.request(Method::GET, segments)
    }

    /// `POST` to `segments`.
    pub fn post(&self, segments: &[&str]) -> Request<'_> {
        self.request(Method::POST, segments)
    }

    /// A request to a URL the caller built (below this endpoint's base, for its messages to
    /// be right).
    pub fn request_url(&self, method: Method, url: Url) -> Request<'_> {
        Request::new(self, method, Ok(url))
    }

    fn invalid(&self, method: &str, url: &str, reason: impl Into<String>) -> ClientError {
        ClientError::new(
            &self.0.service,
            method,
            url,
            ErrorKind::InvalidRequest(reason.into()),
            None,
        )
    }
}

/// A request being built; nothing is sent before [`Request::send`] (or one of the typed
/// senders). Building errors (a bad segment, a body that does not serialize) surface there.
#[must_use = "a request does nothing until it is sent"]
pub struct Request<'a> {
    endpoint: &'a Endpoint,
    method: Method,
    url: Result<Url, ClientError>,
    body: Option<Result<Vec<u8>, String>>,
    headers: Vec<(&'static str, String)>,
    timeout: Duration,
    max_response_bytes: usize,
    authenticate: bool,
    /// A non-2xx status read as an answer rather than an error (see [`Request::accept_status`]).
    accepted: Option<StatusCode>,
}

impl<'a> Request<'a> {
    fn new(endpoint: &'a Endpoint, method: Method, url: Result<Url, ClientError>) -> Self {
        let options = endpoint.0.http.options;
        Self {
            endpoint,
            method,
            url,
            body: None,
            headers: Vec::new(),
            timeout: options.timeout,
            max_response_bytes: options.max_response_bytes,
            authenticate: true,
            accepted: None,
        }
    }

    /// Appends `key=value` to the query (percent-encoded).
    pub fn query(mut self, key: &str, value: impl fmt::Display) -> Self {
        if let Ok(url) = &mut self.url {
            url.query_pairs_mut().append_pair(key, &value.to_string());
        }
        self
    }

    /// Appends `key=value` when `value` is `Some`.
    pub fn query_opt(self, key: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// The URL as it will be requested (with the query so far); `None` when it could not be
    /// built. Request signatures (the card processor's MAC) are computed over it.
    pub fn url(&self) -> Option<&Url> {
        self.url.as_ref().ok()
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The headers added so far (credentials of the endpoint are added when sending).
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// Sends `body` as JSON.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        self.body = Some(serde_json::to_vec(body).map_err(|e| e.to_string()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Replaces the time limit of this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A long poll that the server may hold for `window`: the time limit becomes the window
    /// plus [`ClientOptions::long_poll_margin`]. The caller adds the API's own window
    /// parameter (`timeout_ms`).
    pub fn long_poll(mut self, window: Duration) -> Self {
        self.timeout = window.saturating_add(self.endpoint.0.http.options.long_poll_margin);
        self
    }

    /// Replaces the bound on the response body of this request.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Sends the request without the endpoint's credentials (public endpoints, or requests
    /// that carry their own, like the card processor's MAC headers).
    pub fn without_auth(mut self) -> Self {
        self.authenticate = false;
        self
    }

    /// Reads an answer with `status` like a success (its body is an answer, not an error):
    /// the merchant's public order status answers an unpaid order with 402 and a JSON body
    /// that is not a Taler error.
    pub fn accept_status(mut self, status: StatusCode) -> Self {
        self.accepted = Some(status);
        self
    }

    /// Sends the request and reads the whole answer. Any status but 2xx (and the one given to
    /// [`Self::accept_status`]) is an error.
    pub async fn send(self) -> Result<Response, ClientError> {
        let endpoint = &*self.endpoint.0;
        let service = &endpoint.service;
        let method = self.method.as_str().to_owned();
        let url = self.url?;
        let shown = url.to_string();
        let fail = |kind, source| ClientError::new(service, &method, &shown, kind, source);
        let body = match self.body {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(e)) => {
                return Err(fail(
                    ErrorKind::InvalidRequest(format!("request body: {e}")),
                    None,
                ));
            }
        };
        let mut request = endpoint
            .http
            .client
            .request(self.method, url)
            .timeout(self.timeout);
        if self.authenticate {
            request = endpoint.auth.apply(request);
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                fail(ErrorKind::Timeout(self.timeout), Some(e))
            } else if e.is_builder() {
                fail(ErrorKind::InvalidRequest(e.to_string()), Some(e))
            } else {
                fail(ErrorKind::Unreachable(describe_transport(&e)), Some(e))
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let header_text = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header_text(reqwest::header::ETAG);
        let content_type = header_text(reqwest::header::CONTENT_TYPE);
        let limit = self.max_response_bytes;
        let mut bytes = Vec::new();
        let mut too_large = response.content_length().is_some_and(|n| n > limit as u64);
        while !too_large {
            match response.chunk().await.map_err(transport)? {
                Some(chunk) if bytes.len() + chunk.len() > limit => too_large = true,
                Some(chunk) => bytes.extend_from_slice(&chunk),
                None => break,
            }
        }
        if status.is_success() || self.accepted == Some(status) {
            if too_large {
                return Err(fail(ErrorKind::ResponseTooLarge { limit }, None));
            }
            return Ok(Response {
                service: service.clone(),
                method,
                url: shown,
                status,
                etag,
                content_type,
                body: bytes,
            });
        }
        // An oversize error body is dropped; the status still says what happened. A Taler
        // error body is also kept whole, for the errors that carry more than code and hint.
        let taler_error = if too_large {
            None
        } else {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|body| Some((ErrorDetail::deserialize(&body).ok()?, body)))
        };
        let (error, text, body) = match taler_error {
            Some((detail, body)) => (Some(detail), String::new(), Some(body)),
            None if too_large => (None, String::new(), None),
            None => (
                None,
                String::from_utf8_lossy(&bytes)
                    .trim()
                    .chars()
                    .take(MAX_ERROR_TEXT)
                    .collect(),
                None,
            ),
        };
        let err = fail(
            ErrorKind::Status {
                status: status.as_u16(),
                error,
                text,
            },
            None,
        );
        Err(match body {
            Some(body) => err.with_body(body),
            None => err,
        })
    }

    /// Sends the request and decodes the JSON answer.
    pub async fn json_response<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        self.send().await?.json()
    }

    /// Sends the request and decodes the JSON answer; `204 No Content` is `None` (the empty
    /// pages of Taler's histories).
    pub async fn json_or_empty<T: DeserializeOwned>(self) -> Result<Option<T>, ClientError> {
        let response = self.send().await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        response.json().map(Some)
    }

    /// Sends the request; any 2xx answer is success and its body is ignored.
    pub async fn no_content(self) -> Result<(), ClientError> {
        self.send().await.map(drop)
    }
}

/// A success answer, read completely.
#[derive(Debug)]
pub struct Response {
    service: Arc<str>,
    method: String,
    url: String,
    status: StatusCode,
    etag: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Response {
    /// The HTTP status (2xx).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `ETag` header, when the service sent one.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The `Content-Type` header, when the service sent one.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let reason = if self.body.is_empty() {
                "no body where JSON was expected".to_owned()
            } else {
                e.to_string()
            };
            self.malformed(reason)
        })
    }

    /// An error about this answer (it is not what the API promises).
    pub fn malformed(&self, reason: impl Into<String>) -> ClientError {
        ClientError::new(
            &self.service,
            &self.method,
            &self.url,
            ErrorKind::Malformed {
                status: self.status.as_u16(),
                reason: reason.into(),
            },
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(base: &str) -> Endpoint {
        Endpoint::new(
            HttpClient::new().unwrap(),
            "C2EC",
            BaseUrl::parse(base).unwrap(),
            Auth::basic("T-1", "s3cret"),
        )
    }

    #[test]
    fn segments_join_below_the_base_and_stay_segments() {
        let e = endpoint("https://pay.example/c2ec/terminal");
        assert_eq!(
            e.url(&["withdrawals", "W", "abort"]).unwrap().as_str(),
            "https://pay.example/c2ec/terminal/withdrawals/W/abort"
        );
        let hostile = e.url(&["withdrawals", "a/../b?x=1#f", "check"]).unwrap();
        assert_eq!(
            hostile.as_str(),
            "https://pay.example/c2ec/terminal/withdrawals/a%2F..%2Fb%3Fx=1%23f/check"
        );
        assert_eq!(hostile.query(), None);
        for bad in ["", ".", ".."] {
            let err = e.url(&["withdrawals", bad]).unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InvalidRequest(_)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn below_makes_a_sub_endpoint_with_the_same_credentials() {
        let bank = endpoint("http://bank.example/");
        let wg = bank
            .below(
                &["accounts", "exchange", "taler-wire-gateway"],
                "the bank's Wire Gateway",
            )
            .unwrap();
        assert_eq!(
            wg.base_url().as_str(),
            "http://bank.example/accounts/exchange/taler-wire-gateway/"
        );
        assert_eq!(wg.service(), "the bank's Wire Gateway");
        assert!(matches!(wg.auth(), Auth::Basic { username, .. } if username == "T-1"));
    }

    #[test]
    fn query_values_are_encoded() {
        let e = endpoint("http://c2ec.example/terminal/");
        let r = e
            .get(&["withdrawals", "W"])
            .query("old_state", "selected")
            .query_opt("timeout_ms", Some(30_000))
            .query_opt("x", None::<u8>)
            .query("odd", "a&b=c");
        assert_eq!(
            r.url().unwrap().as_str(),
            "http://c2ec.example/terminal/withdrawals/W?old_state=selected&timeout_ms=30000&odd=a%26b%3Dc"
        );
    }

    #[test]
    fn credentials_are_never_printed() {
        let shown = format!(
            "{:?} {:?}",
            Auth::basic("T-1", "s3cret"),
            Auth::bearer("secret-token:abc")
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(shown.contains("T-1"));
        let shown = format!("{:?}", endpoint("http://c2ec.example/"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn endpoints_are_one_pointer() {
        // Typed clients embed one; keeping it small keeps them cheap to clone and to put in
        // enums.
        assert_eq!(
            std::mem::size_of::<Endpoint>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn long_polls_get_their_window_plus_the_margin() {
        let e = endpoint("http://c2ec.example/");
        let r = e.get(&["x"]).long_poll(Duration::from_secs(20));
        assert_eq!(
            r.timeout,
            Duration::from_secs(20) + DEFAULT_LONG_POLL_MARGIN
        );
        assert_eq!(e.get(&["x"]).timeout, DEFAULT_TIMEOUT);
    }
}
