//! Client of a Taler exchange, protocol v23 (docs.taler.net core/api-exchange; the wire types
//! and their sources are in `cardcash_api::exchange`): what a wallet asks (keys, reserves,
//! withdrawals), what a merchant asks (deposits, refunds, settlement tracking), and, through
//! [`ManagementClient`], what the offline key uploads (`/management/…`).
//!
//! The exchange's public endpoints need no credentials; requests carry signatures instead.
//! The two history requests take their signature as a value for the header
//! ([`RESERVE_HISTORY_SIGNATURE_HEADER`], [`COIN_HISTORY_SIGNATURE_HEADER`]); computing it is the
//! caller's (`cardcash-crypto`).
//!
//! Refusals are [`ClientError`]s with the status and the Taler code. Where the exchange says
//! more than `code` and `hint`, the whole body is kept: read it with [`ClientError::body_as`],
//! e.g. `err.body_as::<ReserveInsufficientBalanceResponse>()` for a batch withdrawal's 409,
//! `CoinInsufficientFundsResponse` for a double spend, `DenominationErrorResponse` for a 404/410
//! about a denomination. Nothing here retries.

use std::time::Duration;

use cardcash_api::exchange::{
    BatchDepositRequest, BatchDepositResponse, BatchWithdrawRequest, BatchWithdrawResponse,
    COIN_HISTORY_SIGNATURE_HEADER, CoinHistoryResponse, CsrWithdrawRequest, CsrWithdrawResponse,
    DenominationRevocationRequest, DepositLongPollTarget, ExchangeConfigResponse,
    ExchangeKeysResponse, FutureKeysResponse, GlobalFeesRequest, MasterSignaturesRequest,
    RESERVE_HISTORY_SIGNATURE_HEADER, RecoupRefreshResponse, RecoupRequest, RecoupWithdrawResponse,
    RefundRequest, RefundResponse, ReserveHistoryResponse, ReserveSummaryResponse,
    SignKeyRevocationRequest, TrackTransactionAcceptedResponse, TrackTransactionResponse,
    TrackTransferResponse, WireFeeSetupRequest, WireSetupRequest, WireTeardownRequest,
};
use cardcash_api::exchange::{
    CsrMeltRequest, CsrMeltResponse, LinkResponse, MeltRequest, MeltResponse, RevealRequest,
    RevealResponse,
};
use cardcash_util::{BaseUrl, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode};
use reqwest::StatusCode;

use crate::error::ClientError;
use crate::exchange_route as route;
use crate::http::{Auth, Endpoint, HttpClient};

/// Bound on a `/keys` answer: an exchange with years of denominations lists thousands of keys
/// (about 1 KiB each for RSA-2048), far above the default bound.
pub const KEYS_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// The merchant's question about one deposited coin (`GET /deposits/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepositQuery {
    /// The merchant's wire hash (payto URI and salt) the coin was deposited with.
    pub h_wire: HashCode,
    /// The merchant.
    pub merchant_pub: EddsaPublicKey,
    /// The contract.
    pub h_contract_terms: HashCode,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// The merchant's signature (purpose 1103) over contract, wire hash and coin.
    pub merchant_sig: EddsaSignature,
}

/// What the exchange says about a deposited coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositStatus {
    /// 200: the coin was wired to the merchant.
    Wired(TrackTransactionResponse),
    /// 202: not yet (the exchange names its planned execution time).
    Pending(TrackTransactionAcceptedResponse),
}

/// The exchange's terms of service (`GET /terms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeTerms {
    /// Their version (the `ETag` without quotes); `None` when the exchange has none configured.
    pub etag: Option<String>,
    /// The media type of `text`.
    pub content_type: Option<String>,
    /// The document.
    pub text: String,
}

/// A client of one exchange.
#[derive(Debug, Clone)]
pub struct ExchangeClient {
    endpoint: Endpoint,
}

impl ExchangeClient {
    /// A client of the exchange at `base` with its own pool.
    pub fn new(base: BaseUrl) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl) -> Self {
        Self::from_endpoint(Endpoint::new(http, "the exchange", base, Auth::None))
    }

    /// A client over an endpoint built elsewhere.
    pub fn from_endpoint(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// The same client, called `service` in error messages.
    pub fn named(self, service: &str) -> Self {
        Self::from_endpoint(self.endpoint.named(service))
    }

    /// The exchange's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// The `/management/…` endpoints of the same exchange, on the same pool.
    pub fn management(&self) -> ManagementClient {
        ManagementClient::from_endpoint(self.endpoint.clone())
    }

    /// `GET /config`.
    pub async fn config(&self) -> Result<ExchangeConfigResponse, ClientError> {
        self.endpoint.get(&["config"]).json_response().await
    }

    /// `GET /keys`, read with [`KEYS_MAX_RESPONSE_BYTES`] as the bound.
    pub async fn keys(&self) -> Result<ExchangeKeysResponse, ClientError> {
        route::keys(&self.endpoint).await
    }

    /// `GET /terms`: the terms of service in the first of the `accept`ed media types the
    /// exchange has (e.g. `"text/plain"`), with their version (the `ETag`).
    pub async fn terms(&self, accept: &str) -> Result<ExchangeTerms, ClientError> {
        let response = self
            .endpoint
            .get(&["terms"])
            .header("Accept", accept.to_owned())
            .send()
            .await?;
        Ok(ExchangeTerms {
            etag: response.etag().map(|e| e.trim_matches('"').to_owned()),
            content_type: response.content_type().map(str::to_owned),
            text: String::from_utf8_lossy(response.body()).into_owned(),
        })
    }

    /// `GET /reserves/$RESERVE_PUB`: the reserve's balance, waiting up to `timeout` for the
    /// reserve to appear (`Duration::ZERO`: answer at once). An unknown reserve is a 404
    /// `EXCHANGE_GENERIC_RESERVE_UNKNOWN` once the window is over.
    pub async fn reserve(
        &self,
        reserve_pub: &EddsaPublicKey,
        timeout: Duration,
    ) -> Result<ReserveSummaryResponse, ClientError> {
        route::reserve(&self.endpoint, reserve_pub, timeout).await
    }

    /// `GET /reserves/$RESERVE_PUB/history?start=…` with the reserve's `signature` over `start`
    /// in [`RESERVE_HISTORY_SIGNATURE_HEADER`]. `None` when nothing is newer than `start`
    /// (204).
    pub async fn reserve_history(
        &self,
        reserve_pub: &EddsaPublicKey,
        start: u64,
        signature: &EddsaSignature,
    ) -> Result<Option<ReserveHistoryResponse>, ClientError> {
        self.endpoint
            .get(&["reserves", &reserve_pub.to_string(), "history"])
            .query_opt("start", (start != 0).then_some(start))
            .header(RESERVE_HISTORY_SIGNATURE_HEADER, signature.to_string())
            .json_or_empty()
            .await
    }

    /// `GET /coins/$COIN_PUB/history?start=…` with the coin's `signature` over `start` in
    /// [`COIN_HISTORY_SIGNATURE_HEADER`] (the proof a wallet asks for after a double-spending
    /// 409). `None` when nothing is newer than `start` (204).
    pub async fn coin_history(
        &self,
        coin_pub: &EddsaPublicKey,
        start: u64,
        signature: &EddsaSignature,
    ) -> Result<Option<CoinHistoryResponse>, ClientError> {
        self.endpoint
            .get(&["coins", &coin_pub.to_string(), "history"])
            .query_opt("start", (start != 0).then_some(start))
            .header(COIN_HISTORY_SIGNATURE_HEADER, signature.to_string())
            .json_or_empty()
            .await
    }

    /// `POST /csr-withdraw`: the exchange's `R` values for one CS planchet.
    pub async fn csr_withdraw(
        &self,
        request: &CsrWithdrawRequest,
    ) -> Result<CsrWithdrawResponse, ClientError> {
        route::post(&self.endpoint, &["csr-withdraw"], request).await
    }

    /// `POST /reserves/$RESERVE_PUB/batch-withdraw`: one blind signature per planchet, in
    /// order. Idempotent: the same batch again gets the same signatures.
    pub async fn batch_withdraw(
        &self,
        reserve_pub: &EddsaPublicKey,
        request: &BatchWithdrawRequest,
    ) -> Result<BatchWithdrawResponse, ClientError> {
        route::post_reserve(&self.endpoint, reserve_pub, "batch-withdraw", request).await
    }

    /// `POST /batch-deposit`: the coins of one payment, for one merchant and contract.
    pub async fn batch_deposit(
        &self,
        request: &BatchDepositRequest,
    ) -> Result<BatchDepositResponse, ClientError> {
        route::post(&self.endpoint, &["batch-deposit"], request).await
    }

    /// `POST /coins/$COIN_PUB/refund`: gives back (part of) a deposited coin.
    pub async fn refund(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &RefundRequest,
    ) -> Result<RefundResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "refund", request).await
    }

    /// `POST /csr-melt`: the exchange's `R` values for fresh Clause-Schnorr coins of a refresh
    /// (their nonces derive from the refresh master secret and each coin's index).
    pub async fn csr_melt(&self, request: &CsrMeltRequest) -> Result<CsrMeltResponse, ClientError> {
        route::post(&self.endpoint, &["csr-melt"], request).await
    }

    /// `POST /coins/$COIN_PUB/melt`: melts (part of) a coin against the commitment `rc`; the
    /// answer names the set the wallet keeps secret. Idempotent: the same melt again gets the
    /// same answer.
    pub async fn melt(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &MeltRequest,
    ) -> Result<MeltResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "melt", request).await
    }

    /// `POST /refreshes/$RC/reveal`: reveals the other sets' transfer keys and gets the kept
    /// set's fresh coins signed. Idempotent: the same reveal again gets the same signatures.
    pub async fn reveal(
        &self,
        rc: &HashCode,
        request: &RevealRequest,
    ) -> Result<RevealResponse, ClientError> {
        route::reveal(&self.endpoint, rc, request).await
    }

    /// `GET /coins/$COIN_PUB/link`: the fresh coins of every revealed melt of the coin, which
    /// its private key re-derives (a wallet restoring from its old coins).
    pub async fn link(&self, coin_pub: &EddsaPublicKey) -> Result<LinkResponse, ClientError> {
        route::link(&self.endpoint, coin_pub).await
    }

    /// `POST /coins/$COIN_PUB/recoup`: a withdrawn coin of a revoked denomination pays its
    /// remaining value back into its reserve (named in the answer).
    pub async fn recoup(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &RecoupRequest,
    ) -> Result<RecoupWithdrawResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "recoup", request).await
    }

    /// `POST /coins/$COIN_PUB/recoup-refresh`: a refreshed coin of a revoked denomination pays
    /// its remaining value back into the coin it was refreshed from (named in the answer).
    pub async fn recoup_refresh(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &RecoupRequest,
    ) -> Result<RecoupRefreshResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "recoup-refresh", request).await
    }

    /// `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB?merchant_sig=…`: which
    /// transfer paid the coin, waiting up to `timeout` for `target` (`Duration::ZERO`: answer
    /// at once).
    pub async fn deposit(
        &self,
        query: &DepositQuery,
        timeout: Duration,
        target: DepositLongPollTarget,
    ) -> Result<DepositStatus, ClientError> {
        let mut request = self
            .endpoint
            .get(&[
                "deposits",
                &query.h_wire.to_string(),
                &query.merchant_pub.to_string(),
                &query.h_contract_terms.to_string(),
                &query.coin_pub.to_string(),
            ])
            .query("merchant_sig", query.merchant_sig);
        if !timeout.is_zero() {
            request = route::long_poll(request, timeout).query("lpt", target.as_query());
        }
        let response = request.send().await?;
        if response.status() == StatusCode::ACCEPTED {
            response.json().map(DepositStatus::Pending)
        } else {
            response.json().map(DepositStatus::Wired)
        }
    }

    /// `GET /transfers/$WTID`: what one wire transfer paid for.
    pub async fn transfer(
        &self,
        wtid: &ShortHashCode,
    ) -> Result<TrackTransferResponse, ClientError> {
        self.endpoint
            .get(&["transfers", &wtid.to_string()])
            .json_response()
            .await
    }
}

/// A client of an exchange's `/management/…` endpoints: how the offline key's signatures reach
/// the online exchange. The C exchange needs no credentials there (the master signatures
/// authorise every upload); [`Auth`] is for deployments that put them behind a proxy that
/// asks for some.
#[derive(Debug, Clone)]
pub struct ManagementClient {
    endpoint: Endpoint,
}

impl ManagementClient {
    /// A client of the exchange at `base` (its root, not `…/management/`) with its own pool.
    pub fn new(base: BaseUrl, auth: Auth) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base, auth))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl, auth: Auth) -> Self {
        Self::from_endpoint(Endpoint::new(http, "the exchange", base, auth))
    }

    /// A client over an endpoint built elsewhere (the exchange's root).
    pub fn from_endpoint(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// The exchange's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// `GET /management/keys`: the denominations and signing keys waiting for the master
    /// key's signature, with the security modules' signatures over them.
    pub async fn future_keys(&self) -> Result<FutureKeysResponse, ClientError> {
        self.endpoint
            .get(&["management", "keys"])
            .max_response_bytes(KEYS_MAX_RESPONSE_BYTES)
            .json_response()
            .await
    }

    /// `POST /management/keys`: the master signatures over proposed keys.
    pub async fn upload_keys(&self, request: &MasterSignaturesRequest) -> Result<(), ClientError> {
        self.post(&["management", "keys"], request).await
    }

    /// `POST /management/wire`: enables a bank account.
    pub async fn enable_wire(&self, request: &WireSetupRequest) -> Result<(), ClientError> {
        self.post(&["management", "wire"], request).await
    }

    /// `POST /management/wire/disable`: disables a bank account.
    pub async fn disable_wire(&self, request: &WireTeardownRequest) -> Result<(), ClientError> {
        self.post(&["management", "wire", "disable"], request).await
    }

    /// `POST /management/wire-fee`: the wire fees of one method for a period.
    pub async fn set_wire_fee(&self, request: &WireFeeSetupRequest) -> Result<(), ClientError> {
        self.post(&["management", "wire-fee"], request).await
    }

    /// `POST /management/global-fee` (singular, as the C exchange routes it): the global fees
    /// for a period.
    pub async fn set_global_fees(&self, request: &GlobalFeesRequest) -> Result<(), ClientError> {
        self.post(&["management", "global-fee"], request).await
    }

    /// `POST /management/denominations/$H_DENOM_PUB/revoke`.
    pub async fn revoke_denomination(
        &self,
        h_denom_pub: &HashCode,
        request: &DenominationRevocationRequest,
    ) -> Result<(), ClientError> {
        let h = h_denom_pub.to_string();
        self.post(&["management", "denominations", &h, "revoke"], request)
            .await
    }

    /// `POST /management/signkeys/$EXCHANGE_PUB/revoke`.
    pub async fn revoke_signkey(
        &self,
        exchange_pub: &EddsaPublicKey,
        request: &SignKeyRevocationRequest,
    ) -> Result<(), ClientError> {
        let key = exchange_pub.to_string();
        self.post(&["management", "signkeys", &key, "revoke"], request)
            .await
    }

    async fn post<B: serde::Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<(), ClientError> {
        self.endpoint.post(segments).json(body).no_content().await
    }
}

#[cfg(test)]
mod tests {
    //! Against a canned HTTP server on 127.0.0.1:0 (the exchange service is another crate):
    //! what each call puts on the wire, how answers and refusals come back.

    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    use cardcash_api::exchange::{
        CoinInsufficientFundsResponse, DenominationErrorResponse, ReserveHistoryEntry,
        ReserveInsufficientBalanceResponse, WithdrawPlanchet,
    };
    use cardcash_util::{ErrorCode, Timestamp};

    use super::*;

    /// One request as the server saw it.
    #[derive(Debug)]
    struct Seen {
        method: String,
        target: String,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    }

    impl Seen {
        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    /// A server that answers the given `(status, body)` pairs in order, one connection each,
    /// and reports every request it read.
    struct Canned {
        base: BaseUrl,
        seen: mpsc::Receiver<Seen>,
    }

    impl Canned {
        fn start(answers: Vec<(u16, String)>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = BaseUrl::parse(&format!(
                "http://{}/exchange/",
                listener.local_addr().unwrap()
            ))
            .unwrap();
            let (tx, seen) = mpsc::channel();
            thread::spawn(move || {
                for (status, body) in answers {
                    let (stream, _) = listener.accept().unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap().to_owned();
                    let target = parts.next().unwrap().to_owned();
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
                    }
                    let length = headers
                        .get("content-length")
                        .map_or(0, |n| n.parse().unwrap());
                    let mut request_body = vec![0; length];
                    reader.read_exact(&mut request_body).unwrap();
                    let mut stream = stream;
                    write!(
                        stream,
                        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                    stream.flush().unwrap();
                    tx.send(Seen {
                        method,
                        target,
                        headers,
                        body: request_body,
                    })
                    .unwrap();
                }
            });
            Self { base, seen }
        }

        fn client(&self) -> ExchangeClient {
            ExchangeClient::new(self.base.clone()).unwrap()
        }

        fn next(&self) -> Seen {
            self.seen.recv().unwrap()
        }
    }

    const PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    const SHORT: &str = "YVZ49476F3D8Y07PPF4K7TYNV2H0F7P18HQA2CC0JHP8PNVAWMM0";
    const HASH: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";
    const SIG: &str = HASH;

    fn key() -> EddsaPublicKey {
        PUB.parse().unwrap()
    }

    fn sig() -> EddsaSignature {
        SIG.parse().unwrap()
    }

    fn hash() -> HashCode {
        HASH.parse().unwrap()
    }

    fn error_body(code: ErrorCode, extra: &str) -> String {
        format!(r#"{{"code":{},"hint":"refused"{extra}}}"#, code.code())
    }

    /// `EXCHANGE_GENERIC_RESERVE_UNKNOWN`, which v23 answers for an unknown reserve and our
    /// table does not list yet.
    const RESERVE_UNKNOWN: u32 = 1027;

    #[tokio::test]
    async fn reserve_status_long_polls_and_an_unknown_reserve_keeps_its_code() {
        let server = Canned::start(vec![
            (200, r#"{"balance":"KUDOS:5"}"#.into()),
            (
                404,
                format!(r#"{{"code":{RESERVE_UNKNOWN},"hint":"reserve unknown"}}"#),
            ),
        ]);
        let client = server.client();
        let summary = client
            .reserve(&key(), Duration::from_millis(1500))
            .await
            .unwrap();
        assert_eq!(summary.balance.to_string(), "KUDOS:5");
        let seen = server.next();
        assert_eq!(seen.method, "GET");
        assert_eq!(
            seen.target,
            format!("/exchange/reserves/{PUB}?timeout_ms=1500")
        );
        let err = client.reserve(&key(), Duration::ZERO).await.unwrap_err();
        assert_eq!(server.next().target, format!("/exchange/reserves/{PUB}"));
        assert!(err.is_not_found() && !err.is_retryable());
        assert_eq!(err.code(), Some(RESERVE_UNKNOWN));
        assert_eq!(err.hint(), Some("reserve unknown"));
        assert!(err.to_string().starts_with("the exchange at "), "{err}");
    }

    #[tokio::test]
    async fn reserve_history_sends_the_signature_header_and_reads_204_as_nothing_new() {
        let history = format!(
            r#"{{"balance":"KUDOS:4","history":[{{"type":"CREDIT","timestamp":{{"t_s":1}},
            "sender_account_url":"payto://x-taler-bank/b/alice","wire_reference":3,"amount":"KUDOS:5"}},
            {{"type":"WITHDRAW","reserve_sig":"{SIG}","h_coin_envelope":"{HASH}","h_denom_pub":"{HASH}",
            "withdraw_fee":"KUDOS:0","amount":"KUDOS:1"}}]}}"#
        );
        let server = Canned::start(vec![(200, history), (204, String::new())]);
        let client = server.client();
        let h = client
            .reserve_history(&key(), 0, &sig())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            h.history[0],
            ReserveHistoryEntry::Credit {
                wire_reference: 3,
                ..
            }
        ));
        let seen = server.next();
        assert_eq!(seen.target, format!("/exchange/reserves/{PUB}/history"));
        assert_eq!(
            seen.headers
                .get("taler-reserve-history-signature")
                .map(String::as_str),
            Some(SIG)
        );
        assert_eq!(
            client.reserve_history(&key(), 2, &sig()).await.unwrap(),
            None
        );
        assert_eq!(
            server.next().target,
            format!("/exchange/reserves/{PUB}/history?start=2")
        );
    }

    #[tokio::test]
    async fn batch_withdraw_posts_the_planchets_and_a_409_keeps_the_balance() {
        let code = ErrorCode::ExchangeWithdrawInsufficientFunds;
        let server = Canned::start(vec![
            (
                200,
                r#"{"ev_sigs":[{"ev_sig":{"cipher":"RSA","blinded_rsa_signature":"04"}}]}"#.into(),
            ),
            (
                409,
                error_body(
                    code,
                    r#","balance":"KUDOS:0.5","requested_amount":"KUDOS:1.01""#,
                ),
            ),
        ]);
        let client = server.client();
        let request = BatchWithdrawRequest {
            planchets: vec![WithdrawPlanchet {
                denom_pub_hash: hash(),
                reserve_sig: sig(),
                coin_ev: cardcash_api::exchange::CoinEnvelope::Rsa {
                    rsa_blinded_planchet: cardcash_util::Base32Bytes::from_bytes(vec![1, 2, 3]),
                },
            }],
        };
        let answer = client.batch_withdraw(&key(), &request).await.unwrap();
        assert_eq!(answer.ev_sigs.len(), 1);
        let seen = server.next();
        assert_eq!(
            (seen.method.as_str(), seen.target.as_str()),
            (
                "POST",
                format!("/exchange/reserves/{PUB}/batch-withdraw").as_str()
            )
        );
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.json(), serde_json::to_value(&request).unwrap());

        let err = client.batch_withdraw(&key(), &request).await.unwrap_err();
        assert!(err.is_conflict());
        assert_eq!(err.error_code(), Some(code));
        let body: ReserveInsufficientBalanceResponse = err.body_as().unwrap();
        assert_eq!(body.balance.to_string(), "KUDOS:0.5");
        assert_eq!(body.requested_amount.to_string(), "KUDOS:1.01");
        // the body does not read as an unrelated error shape
        assert!(err.body_as::<CoinInsufficientFundsResponse>().is_none());
    }

    #[tokio::test]
    async fn deposit_refund_and_a_double_spend() {
        let code = ErrorCode::ExchangeGenericInsufficientFunds;
        let server = Canned::start(vec![
            (
                409,
                error_body(
                    code,
                    &format!(r#","coin_pub":"{PUB}","h_denom_pub":"{HASH}""#),
                ),
            ),
            (
                200,
                format!(r#"{{"exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#),
            ),
            (
                410,
                error_body(
                    ErrorCode::ExchangeGenericDenominationExpired,
                    &format!(
                        r#","oper":"deposit","timestamp":{{"t_s":1}},"exchange_pub":"{PUB}",
                        "exchange_sig":"{SIG}","h_denom_pub":"{HASH}""#
                    ),
                ),
            ),
        ]);
        let client = server.client();
        let deposit: BatchDepositRequest = serde_json::from_value(serde_json::json!({
            "merchant_payto_uri": "payto://x-taler-bank/b/shop",
            "wire_salt": "000G40R40M30E209185GR38E1W",
            "merchant_pub": PUB, "h_contract_terms": HASH,
            "coins": [{"contribution": "KUDOS:1", "denom_pub_hash": HASH,
                "ub_sig": {"cipher": "RSA", "rsa_signature": "04"}, "coin_pub": PUB,
                "coin_sig": SIG}],
            "timestamp": {"t_s": 1}, "wire_transfer_deadline": {"t_s": 2}
        }))
        .unwrap();
        let err = client.batch_deposit(&deposit).await.unwrap_err();
        let seen = server.next();
        assert_eq!(seen.target, "/exchange/batch-deposit");
        assert_eq!(seen.json(), serde_json::to_value(&deposit).unwrap());
        assert_eq!(err.error_code(), Some(code));
        let spent: CoinInsufficientFundsResponse = err.body_as().unwrap();
        assert_eq!(spent.coin_pub, key());

        let refund = RefundRequest {
            refund_amount: "KUDOS:0.5".parse().unwrap(),
            h_contract_terms: hash(),
            merchant_pub: key(),
            rtransaction_id: 7,
            merchant_sig: sig(),
        };
        client.refund(&key(), &refund).await.unwrap();
        let seen = server.next();
        assert_eq!(seen.target, format!("/exchange/coins/{PUB}/refund"));
        assert_eq!(seen.json()["rtransaction_id"], 7);

        let err = client.batch_deposit(&deposit).await.unwrap_err();
        server.next();
        assert_eq!(err.status(), Some(410));
        let gone: DenominationErrorResponse = err.body_as().unwrap();
        assert_eq!(gone.oper.as_deref(), Some("deposit"));
    }

    #[tokio::test]
    async fn deposit_tracking_tells_wired_from_pending() {
        let server = Canned::start(vec![
            (
                200,
                format!(
                    r#"{{"wtid":"{SHORT}","execution_time":{{"t_s":5}},"coin_contribution":"KUDOS:0.99",
                    "exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
                ),
            ),
            (202, r#"{"kyc_ok":true,"execution_time":{"t_s":9}}"#.into()),
        ]);
        let client = server.client();
        let query = DepositQuery {
            h_wire: hash(),
            merchant_pub: key(),
            h_contract_terms: hash(),
            coin_pub: key(),
            merchant_sig: sig(),
        };
        let wired = client
            .deposit(&query, Duration::ZERO, DepositLongPollTarget::Ok)
            .await
            .unwrap();
        assert!(matches!(wired, DepositStatus::Wired(t) if t.wtid.to_string() == SHORT));
        assert_eq!(
            server.next().target,
            format!("/exchange/deposits/{HASH}/{PUB}/{HASH}/{PUB}?merchant_sig={SIG}")
        );
        let pending = client
            .deposit(
                &query,
                Duration::from_secs(2),
                DepositLongPollTarget::KycRequiredOrOk,
            )
            .await
            .unwrap();
        assert!(matches!(pending, DepositStatus::Pending(p)
            if p.execution_time == Timestamp::from_secs(9)));
        assert_eq!(
            server.next().target,
            format!(
                "/exchange/deposits/{HASH}/{PUB}/{HASH}/{PUB}?merchant_sig={SIG}&timeout_ms=2000&lpt=1"
            )
        );
    }

    #[tokio::test]
    async fn keys_config_csr_and_transfers() {
        let server = Canned::start(vec![
            (
                200,
                r#"{"name":"taler-exchange","version":"23:0:6","currency":"KUDOS",
                "currency_specification":{"name":"Kudos","num_fractional_input_digits":2,
                "num_fractional_normal_digits":2,"num_fractional_trailing_zero_digits":2,
                "alt_unit_names":{"0":"KUDOS"}}}"#
                    .into(),
            ),
            (
                404,
                error_body(ErrorCode::ExchangeTransfersGetWtidNotFound, ""),
            ),
            (
                200,
                format!(r#"{{"ewv":{{"cipher":"CS","r_pub_0":"{PUB}","r_pub_1":"{PUB}"}}}}"#),
            ),
        ]);
        let client = server.client();
        assert_eq!(client.config().await.unwrap().currency.as_str(), "KUDOS");
        assert_eq!(server.next().target, "/exchange/config");
        let err = client.transfer(&SHORT.parse().unwrap()).await.unwrap_err();
        assert_eq!(server.next().target, format!("/exchange/transfers/{SHORT}"));
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeTransfersGetWtidNotFound)
        );
        let csr = CsrWithdrawRequest {
            nonce: cardcash_api::exchange::CsNonce::from_bytes([1; 32]),
            denom_pub_hash: hash(),
        };
        client.csr_withdraw(&csr).await.unwrap();
        let seen = server.next();
        assert_eq!(seen.target, "/exchange/csr-withdraw");
        assert_eq!(seen.json(), serde_json::to_value(&csr).unwrap());
    }

    #[tokio::test]
    async fn management_routes() {
        let server = Canned::start(vec![(204, String::new()); 7]);
        let management = server.client().management();
        management
            .upload_keys(&MasterSignaturesRequest {
                denom_sigs: vec![],
                signkey_sigs: vec![],
            })
            .await
            .unwrap();
        let fees: GlobalFeesRequest = serde_json::from_value(serde_json::json!({
            "master_sig": SIG, "fee_start": {"t_s": 1}, "fee_end": {"t_s": 2},
            "history_fee": "KUDOS:0", "account_fee": "KUDOS:0", "purse_fee": "KUDOS:0",
            "purse_timeout": {"d_us": 1}, "history_expiration": {"d_us": 1},
            "purse_account_limit": 1
        }))
        .unwrap();
        management.set_global_fees(&fees).await.unwrap();
        let wire_fee: WireFeeSetupRequest = serde_json::from_value(serde_json::json!({
            "wire_method": "iban", "master_sig": SIG, "fee_start": {"t_s": 1},
            "fee_end": {"t_s": 2}, "wire_fee": "KUDOS:0", "closing_fee": "KUDOS:0"
        }))
        .unwrap();
        management.set_wire_fee(&wire_fee).await.unwrap();
        let setup: WireSetupRequest = serde_json::from_value(serde_json::json!({
            "payto_uri": "payto://x-taler-bank/b/exchange", "credit_restrictions": [],
            "debit_restrictions": [], "master_sig_add": SIG, "master_sig_wire": SIG,
            "validity_start": {"t_s": 1}
        }))
        .unwrap();
        management.enable_wire(&setup).await.unwrap();
        let teardown: WireTeardownRequest = serde_json::from_value(serde_json::json!({
            "payto_uri": "payto://x-taler-bank/b/exchange", "master_sig_del": SIG,
            "validity_end": {"t_s": 2}
        }))
        .unwrap();
        management.disable_wire(&teardown).await.unwrap();
        management
            .revoke_denomination(
                &hash(),
                &DenominationRevocationRequest { master_sig: sig() },
            )
            .await
            .unwrap();
        management
            .revoke_signkey(&key(), &SignKeyRevocationRequest { master_sig: sig() })
            .await
            .unwrap();
        let targets: Vec<String> = (0..7)
            .map(|_| {
                let seen = server.next();
                assert_eq!(seen.method, "POST");
                seen.target
            })
            .collect();
        assert_eq!(
            targets,
            [
                "/exchange/management/keys".to_owned(),
                "/exchange/management/global-fee".to_owned(),
                "/exchange/management/wire-fee".to_owned(),
                "/exchange/management/wire".to_owned(),
                "/exchange/management/wire/disable".to_owned(),
                format!("/exchange/management/denominations/{HASH}/revoke"),
                format!("/exchange/management/signkeys/{PUB}/revoke"),
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_management_upload_keeps_its_code() {
        let code = ErrorCode::ExchangeManagementWireFeeSignatureInvalid;
        let server = Canned::start(vec![(403, error_body(code, ""))]);
        let wire_fee: WireFeeSetupRequest = serde_json::from_value(serde_json::json!({
            "wire_method": "iban", "master_sig": SIG, "fee_start": {"t_s": 1},
            "fee_end": {"t_s": 2}, "wire_fee": "KUDOS:0", "closing_fee": "KUDOS:0"
        }))
        .unwrap();
        let err = server
            .client()
            .management()
            .set_wire_fee(&wire_fee)
            .await
            .unwrap_err();
        assert!(err.is_unauthorized());
        assert_eq!(err.error_code(), Some(code));
        assert_eq!(err.body().unwrap()["hint"], "refused");
    }
}
