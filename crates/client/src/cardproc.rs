//! Client of the card processor's Wallee-style API (docs/CARDPROC-API.md), used by C2EC (read,
//! refund), the terminal (create, process) and the tests.
//!
//! Every `/api/…` request is signed with Wallee's MAC (`cardcash_api::cardproc::mac`, whose
//! HMAC-SHA512 is computed in `cardcash_crypto`) over the path starting at `/api/` plus the
//! query, as the Wallee SDKs do, so a base URL with a path prefix (behind a reverse proxy) still
//! verifies. `GET /config` is public; `/admin/…` takes the operator's bearer token.

use std::time::{SystemTime, UNIX_EPOCH};

use cardcash_api::cardproc::mac::{MacHeaders, MacKey};
use cardcash_api::cardproc::{
    ConfigResponse, CreateTransactionRequest, OutageRequest, PayoutListResponse,
    ProcessCardRequest, Refund, RefundRequest, Transaction,
};
use cardcash_util::BaseUrl;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient, Request};

/// How the card processor is called in messages.
const SERVICE: &str = "the card processor";

/// A signed client for one API user in one space.
#[derive(Debug, Clone)]
pub struct CardprocClient {
    endpoint: Endpoint,
    user_id: u64,
    key: MacKey,
    space_id: u64,
}

impl CardprocClient {
    /// A client of the processor at `base_url` (e.g. `http://127.0.0.1:8083/`), signing as
    /// `user_id` with the base64 `secret_b64`, working in `space_id`, with its own pool.
    pub fn new(
        base_url: &str,
        user_id: u64,
        secret_b64: &str,
        space_id: u64,
    ) -> Result<Self, ClientError> {
        let base = BaseUrl::parse(base_url)
            .map_err(|e| ClientError::invalid_setup(SERVICE, format!("base URL: {e}")))?;
        let key = MacKey::from_base64(secret_b64)
            .map_err(|e| ClientError::invalid_setup(SERVICE, e.to_string()))?;
        Ok(Self::with_http(
            HttpClient::new()?,
            base,
            user_id,
            key,
            space_id,
        ))
    }

    /// Like [`Self::new`] on a shared pool, with a decoded key.
    pub fn with_http(
        http: HttpClient,
        base: BaseUrl,
        user_id: u64,
        key: MacKey,
        space_id: u64,
    ) -> Self {
        Self {
            endpoint: Endpoint::new(http, SERVICE, base, Auth::None),
            user_id,
            key,
            space_id,
        }
    }

    /// The processor's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
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
        self.signed(Method::POST, &["transaction", "create"], None, Some(req))
            .await
    }

    /// `POST /api/transaction/process-card`: presents the card; idempotent per transaction.
    pub async fn process_card(
        &self,
        id: u64,
        card: &ProcessCardRequest,
    ) -> Result<Transaction, ClientError> {
        self.signed(
            Method::POST,
            &["transaction", "process-card"],
            Some(id),
            Some(card),
        )
        .await
    }

    /// `POST /api/transaction-void/voidOnline`: cancels an `AUTHORIZED` transaction (→ `VOIDED`).
    pub async fn void_transaction(&self, id: u64) -> Result<Transaction, ClientError> {
        self.signed::<_, ()>(
            Method::POST,
            &["transaction-void", "voidOnline"],
            Some(id),
            None,
        )
        .await
    }

    /// `GET /api/transaction/read`.
    pub async fn read_transaction(&self, id: u64) -> Result<Transaction, ClientError> {
        self.signed::<_, ()>(Method::GET, &["transaction", "read"], Some(id), None)
            .await
    }

    /// `POST /api/refund/refund`: idempotent on `externalId`.
    pub async fn refund(&self, req: &RefundRequest) -> Result<Refund, ClientError> {
        self.signed(Method::POST, &["refund", "refund"], None, Some(req))
            .await
    }

    /// `GET /api/refund/read`.
    pub async fn read_refund(&self, id: u64) -> Result<Refund, ClientError> {
        self.signed::<_, ()>(Method::GET, &["refund", "read"], Some(id), None)
            .await
    }

    /// `GET /api/payout/list`: the space's payouts to the merchant's bank account, newest
    /// first (role `reader`).
    pub async fn payouts(&self) -> Result<PayoutListResponse, ClientError> {
        self.signed::<_, ()>(Method::GET, &["payout", "list"], None, None)
            .await
    }

    /// `GET /config` (unauthenticated).
    pub async fn config(&self) -> Result<ConfigResponse, ClientError> {
        self.endpoint.get(&["config"]).json_response().await
    }

    /// `POST /admin/outage` with the operator's bearer token: `down = true` makes every `/api/…`
    /// call answer 503 until called again with `false`.
    pub async fn admin_set_outage(&self, admin_token: &str, down: bool) -> Result<(), ClientError> {
        self.endpoint
            .post(&["admin", "outage"])
            .header("authorization", format!("Bearer {admin_token}"))
            .json(&OutageRequest { down })
            .no_content()
            .await
    }

    /// `/api/{path}?spaceId=…[&id=…]`, signed, with an optional JSON body.
    async fn signed<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &[&str],
        id: Option<u64>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let segments: Vec<&str> = std::iter::once("api").chain(path.iter().copied()).collect();
        let mut request = self
            .endpoint
            .request(method, &segments)
            .query("spaceId", self.space_id)
            .query_opt("id", id);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.sign(request).json_response().await
    }

    /// Adds the MAC headers over the request's path from `/api/` on plus its query (a request
    /// whose URL could not be built is left alone: sending it reports why).
    fn sign<'a>(&self, request: Request<'a>) -> Request<'a> {
        let Some(url) = request.url() else {
            return request;
        };
        // The URL is the base's path plus our segments, so the part after the base (kept with
        // its leading slash) is `/api/…`, whatever prefix a proxy adds in front.
        let base_len = self.endpoint.base_url().as_url().path().len();
        let path = url.path();
        let from_api = path.get(base_len.saturating_sub(1)..).unwrap_or(path);
        let path_and_query = match url.query() {
            Some(query) => format!("{from_api}?{query}"),
            None => from_api.to_owned(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mac = MacHeaders::new(
            &self.key,
            self.user_id,
            now,
            request.method().as_str(),
            &path_and_query,
        );
        mac.pairs()
            .into_iter()
            .fold(request, |request, (name, value)| {
                request.header(name, value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0=";

    #[test]
    fn rejects_bad_configuration() {
        for (base, secret) in [
            ("not a url", SECRET),
            ("ftp://x/", SECRET),
            ("http://x/?q=1", SECRET),
            ("http://x/", "%%"),
            ("http://x/", ""),
        ] {
            let err = CardprocClient::new(base, 1, secret, 1).unwrap_err();
            assert!(
                matches!(err.kind(), crate::ErrorKind::InvalidRequest(_)),
                "{base} {secret}: {err:?}"
            );
            assert!(err.to_string().starts_with("the card processor: "), "{err}");
        }
        let c = CardprocClient::new("http://x/prefix", 1, SECRET, 7).unwrap();
        assert_eq!(c.base_url().as_str(), "http://x/prefix/");
        assert_eq!((c.space_id(), c.user_id()), (7, 1));
    }

    #[test]
    fn signs_the_path_from_api_on_behind_a_prefix() {
        let key = MacKey::from_base64(SECRET).unwrap();
        let c = CardprocClient::with_http(
            HttpClient::new().unwrap(),
            BaseUrl::parse("https://proxy.example/api/cardproc/").unwrap(),
            3,
            key.clone(),
            9,
        );
        let request = c
            .endpoint
            .request(Method::GET, &["api", "transaction", "read"])
            .query("spaceId", 9)
            .query("id", 42);
        let signed = c.sign(request);
        let (name, value) = signed
            .headers()
            .iter()
            .find(|(n, _)| *n == cardcash_api::cardproc::mac::HEADER_VALUE)
            .cloned()
            .unwrap();
        assert_eq!(name, "x-mac-value");
        let timestamp: u64 = signed
            .headers()
            .iter()
            .find(|(n, _)| *n == cardcash_api::cardproc::mac::HEADER_TIMESTAMP)
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(cardcash_api::cardproc::mac::verify(
            &key,
            3,
            timestamp,
            "GET",
            "/api/transaction/read?spaceId=9&id=42",
            &value
        ));
    }
}
