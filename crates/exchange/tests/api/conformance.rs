//! Conformance of every route (issue 7: "every endpoint's malformed, unauthenticated or wrongly
//! signed request gets the official code and changes nothing"). Raw HTTP, so that bodies can be
//! malformed, oversized or compressed; each refusal is checked for its HTTP status AND its Taler
//! `code`, against what the C exchange (protocol v23, `felixuxx/Flashpay` Dec 2024,
//! `src/exchange/taler-exchange-httpd_*.c`) answers. After the refusals, nothing has changed:
//! the audit sums are the same, the audit is clean, the reserve still withdraws and the coins
//! still deposit.
//!
//! Where cardcash deliberately answers differently from the C exchange, the assertion says so
//! (and `docs/API-CONFORMANCE.md` lists it). The tests at the end of this file pin answers that
//! differed from the C exchange's when these tests were written (fixed since): each asserts the
//! C exchange's answer.

use std::io::Write as _;
use std::time::Duration;

use cardcash_api::exchange::{
    BatchWithdrawRequest, CoinEnvelope, RESERVE_HISTORY_SIGNATURE_HEADER, WithdrawPlanchet,
};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{
    MerchantRefund, ReserveHistoryRequest, TrackTransaction, WithdrawRequestV23,
};
use cardcash_exchange::audit;
use cardcash_exchange::db::{AuditSums, ExchangeStore};
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{
    Amount, BaseUrl, EddsaPublicKey, ErrorCode, HashCode, PaytoUri, RelativeTime, Timestamp, base32,
};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestExchange, kudos};
use crate::wallet::{self, Coin, Contract, Denom};
use crate::withdraw::{bank_and_exchange, funded_reserve, pick};

// ------------------------------------------------------------------------------ raw HTTP

/// An answer as it came over the wire.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body; `Null` when empty; a string when not JSON.
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> Option<u64> {
        self.body.get("code").and_then(Value::as_u64)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and the Taler code, and that the error body has a hint.
    #[track_caller]
    pub fn expect(&self, status: u16, code: ErrorCode, what: &str) {
        self.expect_code(status, code.code(), what);
    }

    /// As [`Answer::expect`] for a code given by number (codes our table does not have).
    #[track_caller]
    pub fn expect_code(&self, status: u16, code: u32, what: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(u64::from(code))),
            "{what}: {}",
            self.body
        );
        assert!(
            self.body.get("hint").is_some_and(Value::is_string),
            "{what}: a Taler error has a hint: {}",
            self.body
        );
    }

    #[track_caller]
    pub fn expect_ok(&self, status: u16, what: &str) -> &Value {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        &self.body
    }
}

/// A plain HTTP client of one exchange.
pub struct Raw {
    http: reqwest::Client,
    base: BaseUrl,
}

impl Raw {
    pub fn new(base: &BaseUrl) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.clone(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let url = self.base.join(path).unwrap();
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, path, headers, None).await
    }

    /// POST of raw text declared as JSON.
    pub async fn post_text(&self, path: &str, text: &str) -> Answer {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Some(text.as_bytes().to_vec()),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_text(path, &body.to_string()).await
    }

    /// POST of `bytes` with `Content-Encoding: encoding`.
    pub async fn post_encoded(&self, path: &str, encoding: &str, bytes: Vec<u8>) -> Answer {
        self.send(
            Method::POST,
            path,
            &[
                ("content-type", "application/json"),
                ("content-encoding", encoding),
            ],
            Some(bytes),
        )
        .await
    }
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

// ------------------------------------------------------------------------------ fixtures

/// A syntactically valid key, hash or signature of `n` bytes that nobody holds.
pub fn b32(n: usize, fill: u8) -> String {
    base32::encode(&vec![fill; n])
}

/// Path segments that are not a 32-byte key: not base32, one byte short, one byte long, empty
/// of meaning (a 64-byte hash where a key belongs).
pub fn bad_keys() -> Vec<String> {
    vec!["not-base32!".into(), b32(31, 7), b32(33, 7), b32(64, 7)]
}

/// The same for 64-byte hashes.
pub fn bad_hashes() -> Vec<String> {
    vec!["not-base32!".into(), b32(63, 7), b32(32, 7)]
}

pub fn store(world: &World) -> &ExchangeStore {
    world.exchange().app().exchange().store()
}

pub async fn sums(world: &World) -> AuditSums {
    store(world).audit_sums().await.unwrap()
}

#[track_caller]
pub fn assert_clean(report: &audit::AuditReport) {
    assert!(report.is_clean(), "audit: {:?}", report.differences);
}

pub async fn audit_clean(world: &World) {
    assert_clean(&audit::audit(store(world)).await.unwrap());
}

pub async fn balance(world: &World, reserve: &EddsaPublicKey) -> Amount {
    world
        .exchange()
        .client()
        .reserve(reserve, Duration::ZERO)
        .await
        .unwrap()
        .balance
}

/// A world with a funded reserve (10 KUDOS) and its denominations.
async fn world_with_reserve(engine: Engine) -> (World, EddsaPrivateKey, Vec<Denom>) {
    let world = bank_and_exchange(engine).await;
    let denoms = wallet::denominations(&world.exchange().client().keys().await.unwrap());
    let reserve = funded_reserve(&world, "10").await;
    (world, reserve, denoms)
}

/// Withdraws a 5 (RSA), a 1 (RSA) and a 2 (CS) coin from `reserve`.
async fn three_coins(world: &World, reserve: &EddsaPrivateKey, denoms: &[Denom]) -> Vec<Coin> {
    let client = world.exchange().client();
    let planchets = [
        wallet::planchet(&client, reserve, pick(denoms, "5", false)).await,
        wallet::planchet(&client, reserve, pick(denoms, "1", false)).await,
        wallet::planchet(&client, reserve, pick(denoms, "2", true)).await,
    ];
    let response = client
        .batch_withdraw(
            &reserve.public(),
            &BatchWithdrawRequest {
                planchets: planchets.iter().map(|p| p.request.clone()).collect(),
            },
        )
        .await
        .unwrap();
    planchets
        .iter()
        .zip(&response.ev_sigs)
        .map(|(p, s)| p.unblind(&s.ev_sig))
        .collect()
}

/// A merchant account the exchange wires to (`x-taler-bank`, which has a wire fee).
fn merchant_payto() -> PaytoUri {
    "payto://x-taler-bank/bank.example/merchant?receiver-name=Merchant"
        .parse()
        .unwrap()
}

/// A contract whose wire deadline is far away (nothing is aggregated during the test).
fn contract() -> Contract {
    Contract::new(
        merchant_payto(),
        Timestamp::now().saturating_add(RelativeTime::from_secs(30 * 24 * 3600)),
    )
}

fn withdraw_body(planchets: &[&WithdrawPlanchet]) -> Value {
    json!({ "planchets": planchets })
}

// ------------------------------------------------------------------------------ /config, /keys, routing

engine_test!(
    /// `/config` has the v23 shape; `/keys` carries `ETag`, `Cache-Control` and `Expires`, and
    /// answers 304 to its own `ETag`; unknown routes are Taler 404s, wrong methods Taler 405s
    /// with `Allow`.
    async fn config_keys_and_routing(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let raw = Raw::new(world.exchange().base_url());

        let config = raw.get("config").await;
        let body = config.expect_ok(200, "GET /config");
        assert_eq!(body["name"], "taler-exchange");
        assert_eq!(
            body["version"],
            cardcash_api::exchange::EXCHANGE_PROTOCOL_VERSION
        );
        let version: Vec<u32> = body["version"]
            .as_str()
            .unwrap()
            .split(':')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(version[0], 23, "protocol v23");
        assert!(version[2] <= version[0]);
        assert_eq!(body["currency"], "KUDOS");
        assert!(
            body["implementation"]
                .as_str()
                .unwrap()
                .starts_with("urn:net:taler:specs:taler-exchange:")
        );
        assert_eq!(body["supported_kyc_requirements"], json!([]));
        let spec = &body["currency_specification"];
        for field in [
            "name",
            "num_fractional_input_digits",
            "num_fractional_normal_digits",
            "num_fractional_trailing_zero_digits",
            "alt_unit_names",
        ] {
            assert!(spec.get(field).is_some(), "currency_specification.{field}");
        }
        assert_eq!(
            config.header("content-type"),
            Some("application/json"),
            "JSON"
        );

        // /keys and its caching headers.
        let keys = raw.get("keys").await;
        keys.expect_ok(200, "GET /keys");
        assert_eq!(keys.header("content-type"), Some("application/json"));
        let etag = keys.header("etag").expect("/keys has an ETag").to_owned();
        let cache_control = keys.header("cache-control").expect("Cache-Control");
        assert!(cache_control.contains("max-age="), "{cache_control}");
        let expires = keys.header("expires").expect("Expires");
        assert!(
            expires.ends_with(" GMT") && expires.len() == 29,
            "IMF-fixdate: {expires}"
        );
        assert!(keys.body["exchange_sig"].is_string());
        let again = raw.get_with("keys", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304, "If-None-Match with our ETag");
        assert_eq!(again.body, Value::Null, "304 has no body");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let other = raw
            .get_with("keys", &[("if-none-match", "\"something-else\"")])
            .await;
        other.expect_ok(200, "If-None-Match with another ETag");
        assert_eq!(other.body, keys.body, "the same /keys");

        // Unknown routes: Taler 404 (the C exchange says 1001/1002 below a known prefix).
        for path in [
            "nope".to_owned(),
            "reserves".to_owned(),
            format!("reserves/{}/nope", b32(32, 1)),
            format!("coins/{}/melt-ish", b32(32, 1)),
            "management".to_owned(),
            "transfers".to_owned(),
            format!("deposits/{}", b32(64, 1)),
        ] {
            raw.get(&path)
                .await
                .expect(404, ErrorCode::GenericEndpointUnknown, &path);
        }
        // Wrong methods: Taler 405 with Allow.
        let key = b32(32, 1);
        for (method, path, allowed) in [
            (Method::POST, "keys".to_owned(), "GET"),
            (Method::POST, "config".to_owned(), "GET"),
            (Method::POST, "terms".to_owned(), "GET"),
            (Method::DELETE, "privacy".to_owned(), "GET"),
            (Method::DELETE, "management/keys".to_owned(), "POST"),
            (Method::GET, "batch-deposit".to_owned(), "POST"),
            (Method::GET, "csr-withdraw".to_owned(), "POST"),
            (Method::DELETE, format!("reserves/{key}"), "GET"),
            (
                Method::GET,
                format!("reserves/{key}/batch-withdraw"),
                "POST",
            ),
            (Method::POST, format!("reserves/{key}/history"), "GET"),
            (Method::GET, format!("coins/{key}/refund"), "POST"),
            (Method::GET, format!("coins/{key}/melt"), "POST"),
            (Method::POST, format!("coins/{key}/link"), "GET"),
            (
                Method::GET,
                format!("refreshes/{}/reveal", b32(64, 1)),
                "POST",
            ),
            (Method::GET, "csr-melt".to_owned(), "POST"),
            (Method::POST, format!("transfers/{}", b32(32, 1)), "GET"),
            (Method::PUT, "management/wire".to_owned(), "POST"),
            (Method::GET, "management/wire-fee".to_owned(), "POST"),
        ] {
            let answer = raw.send(method.clone(), &path, &[], None).await;
            answer.expect(
                405,
                ErrorCode::GenericMethodInvalid,
                &format!("{method} {path}"),
            );
            let allow = answer.header("allow").unwrap_or_default();
            assert!(
                allow.contains(allowed),
                "{method} {path}: Allow {allow:?} names {allowed}"
            );
        }
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ reserves

engine_test!(
    /// `GET /reserves/$PUB` and `GET /reserves/$PUB/history`: malformed keys, unknown
    /// reserves, bad long-poll parameters, a missing, malformed or wrong history signature.
    /// Nothing changes.
    async fn reserve_status_and_history_refusals(engine: Engine) {
        let (world, reserve, _) = world_with_reserve(engine).await;
        let raw = Raw::new(world.exchange().base_url());
        let before = sums(&world).await;
        let reserve_pub = reserve.public();

        for bad in bad_keys() {
            raw.get(&format!("reserves/{bad}")).await.expect(
                400,
                ErrorCode::GenericReservePubMalformed,
                &bad,
            );
            raw.get(&format!("reserves/{bad}/history")).await.expect(
                400,
                ErrorCode::GenericReservePubMalformed,
                &bad,
            );
        }
        let stranger = EddsaPrivateKey::generate().unwrap();
        let unknown = format!("reserves/{}", stranger.public());
        raw.get(&unknown).await.expect(
            404,
            ErrorCode::ExchangeGenericReserveUnknown,
            "unknown reserve",
        );
        raw.get(&format!("{unknown}?timeout_ms=20")).await.expect(
            404,
            ErrorCode::ExchangeGenericReserveUnknown,
            "unknown reserve after a long poll",
        );
        for q in ["timeout_ms=soon", "timeout_ms=-1", "long_poll_ms=x"] {
            raw.get(&format!("{unknown}?{q}")).await.expect(
                400,
                ErrorCode::GenericParameterMalformed,
                q,
            );
        }
        let ok = raw.get(&format!("reserves/{reserve_pub}")).await;
        assert_eq!(ok.expect_ok(200, "reserve")["balance"], "KUDOS:10");

        // History.
        let history = format!("reserves/{reserve_pub}/history");
        let sig = |key: &EddsaPrivateKey, start: u64| {
            key.sign(&ReserveHistoryRequest { start_off: start })
                .to_string()
        };
        raw.get(&history).await.expect(
            400,
            ErrorCode::GenericParameterMissing,
            "no signature header",
        );
        for bad in ["", "abc", &b32(63, 1), &b32(65, 1)] {
            raw.get_with(&history, &[(RESERVE_HISTORY_SIGNATURE_HEADER, bad)])
                .await
                .expect(400, ErrorCode::GenericParameterMalformed, bad);
        }
        raw.get_with(
            &history,
            &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&stranger, 0))],
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeReservesHistoryBadSignature,
            "signed by another key",
        );
        raw.get_with(
            &format!("{history}?start=1"),
            &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&reserve, 0))],
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeReservesHistoryBadSignature,
            "signed for another start",
        );
        raw.get_with(
            &format!("{history}?start=soon"),
            &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&reserve, 0))],
        )
        .await
        .expect(400, ErrorCode::GenericParameterMalformed, "start=soon");
        raw.get_with(
            &format!("{unknown}/history"),
            &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&stranger, 0))],
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericReserveUnknown,
            "history of an unknown reserve",
        );
        let good = raw
            .get_with(
                &history,
                &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&reserve, 0))],
            )
            .await;
        let body = good.expect_ok(200, "history");
        assert_eq!(body["history"].as_array().unwrap().len(), 1);
        let etag = good.header("etag").expect("ETag").to_owned();
        let same = raw
            .get_with(
                &history,
                &[
                    (RESERVE_HISTORY_SIGNATURE_HEADER, &sig(&reserve, 0)),
                    ("if-none-match", &etag),
                ],
            )
            .await;
        assert_eq!(same.status, 304, "If-None-Match with the history's ETag");

        assert_eq!(sums(&world).await, before, "nothing changed");
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ withdrawal

engine_test!(
    /// `POST /reserves/$PUB/batch-withdraw` and `POST /csr-withdraw`: malformed JSON, missing
    /// fields, wrong types, unknown ciphers, empty and oversized batches, unknown reserves and
    /// denominations, signatures by the wrong key or over the wrong amount, cipher mismatches.
    /// Nothing is charged; the reserve still withdraws afterwards.
    async fn withdrawal_refusals(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let before = sums(&world).await;
        let reserve_pub = reserve.public();
        let path = format!("reserves/{reserve_pub}/batch-withdraw");
        let one = pick(&denoms, "1", false);
        let cs = pick(&denoms, "2", true);
        let good = wallet::planchet(&client, &reserve, one).await;
        let good_json = serde_json::to_value(&good.request).unwrap();

        // Malformed JSON and fields: 400 GENERIC_JSON_INVALID, as TALER_MHD_parse_json_data.
        let planchet_without = |field: &str| {
            let mut p = good_json.clone();
            p.as_object_mut().unwrap().remove(field);
            json!({ "planchets": [p] })
        };
        let mut cases: Vec<(String, String)> = vec![
            ("syntax".into(), "{\"planchets\": [".into()),
            ("not an object".into(), "[]".into()),
            ("no planchets".into(), "{}".into()),
            (
                "planchets is an object".into(),
                "{\"planchets\": {}}".into(),
            ),
        ];
        for field in ["reserve_sig", "denom_pub_hash", "coin_ev"] {
            cases.push((format!("no {field}"), planchet_without(field).to_string()));
        }
        let mut variants: Vec<(&str, Value)> = Vec::new();
        let mut p = good_json.clone();
        p["coin_ev"]["cipher"] = json!("FOO");
        variants.push(("unknown cipher", p));
        let mut p = good_json.clone();
        p["coin_ev"]["cipher"] = json!("CS");
        variants.push(("CS envelope without CS fields", p));
        let mut p = good_json.clone();
        p["denom_pub_hash"] = json!(b32(63, 1));
        variants.push(("denom_pub_hash of 63 bytes", p));
        let mut p = good_json.clone();
        p["reserve_sig"] = json!("not base32!");
        variants.push(("reserve_sig not base32", p));
        let mut p = good_json.clone();
        p["reserve_sig"] = json!(42);
        variants.push(("reserve_sig a number", p));
        let mut p = good_json.clone();
        p["coin_ev"]["rsa_blinded_planchet"] = json!("!!");
        variants.push(("envelope not base32", p));
        for (what, p) in variants {
            cases.push((what.into(), json!({ "planchets": [p] }).to_string()));
        }
        for (what, body) in &cases {
            raw.post_text(&path, body)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, what);
        }

        // Empty and too large batches: 400 GENERIC_PARAMETER_MALFORMED (the C exchange's limit
        // is 256 planchets, TALER_MAX_FRESH_COINS; ours 1024).
        raw.post(&path, &json!({ "planchets": [] })).await.expect(
            400,
            ErrorCode::GenericParameterMalformed,
            "no planchets",
        );
        let many: Vec<&WithdrawPlanchet> = std::iter::repeat_n(&good.request, 1025).collect();
        raw.post(&path, &withdraw_body(&many)).await.expect(
            400,
            ErrorCode::GenericParameterMalformed,
            "1025 planchets",
        );

        // Unknown reserve, unknown denomination (signed refusal), wrong signatures, mismatch.
        let stranger = EddsaPrivateKey::generate().unwrap();
        let foreign = wallet::planchet(&client, &stranger, one).await;
        raw.post(
            &format!("reserves/{}/batch-withdraw", stranger.public()),
            &withdraw_body(&[&foreign.request]),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericReserveUnknown,
            "unknown reserve",
        );
        let mut unknown = good.request.clone();
        unknown.denom_pub_hash = HashCode::from_bytes([7; 64]);
        let answer = raw.post(&path, &withdraw_body(&[&unknown])).await;
        answer.expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown denomination",
        );
        for field in ["exchange_sig", "exchange_pub", "h_denom_pub", "timestamp"] {
            assert!(answer.body.get(field).is_some(), "signed refusal: {field}");
        }
        raw.post(&path, &withdraw_body(&[&foreign.request]))
            .await
            .expect(
                403,
                ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
                "signed by another reserve",
            );
        let mut cheap = good.request.clone();
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &good.request.coin_ev
        else {
            panic!("RSA planchet expected")
        };
        cheap.reserve_sig = reserve.sign(&WithdrawRequestV23 {
            amount_with_fee: kudos("0.01"),
            h_denom_pub: one.h,
            h_coin_envelope: cardcash_crypto::coin::coin_envelope_hash(
                &one.h,
                rsa_blinded_planchet.as_bytes(),
            ),
        });
        raw.post(&path, &withdraw_body(&[&cheap])).await.expect(
            403,
            ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
            "signed over another amount",
        );
        // The good planchet and a bad one: the whole batch is refused.
        raw.post(&path, &withdraw_body(&[&good.request, &foreign.request]))
            .await
            .expect(
                403,
                ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
                "one bad planchet in a batch",
            );
        let mut mismatch = good.request.clone();
        mismatch.denom_pub_hash = cs.h;
        raw.post(&path, &withdraw_body(&[&mismatch])).await.expect(
            400,
            ErrorCode::ExchangeGenericCipherMismatch,
            "RSA envelope for a CS denomination",
        );

        // /csr-withdraw.
        for (what, body) in [
            ("syntax", "{".to_owned()),
            ("no nonce", json!({ "denom_pub_hash": cs.h }).to_string()),
            (
                "no denom_pub_hash",
                json!({ "nonce": b32(32, 3) }).to_string(),
            ),
            (
                "nonce of 31 bytes",
                json!({ "nonce": b32(31, 3), "denom_pub_hash": cs.h }).to_string(),
            ),
            (
                "denom_pub_hash a number",
                json!({ "nonce": b32(32, 3), "denom_pub_hash": 5 }).to_string(),
            ),
        ] {
            raw.post_text("csr-withdraw", &body).await.expect(
                400,
                ErrorCode::GenericJsonInvalid,
                what,
            );
        }
        let answer = raw
            .post(
                "csr-withdraw",
                &json!({ "nonce": b32(32, 3), "denom_pub_hash": b32(64, 9) }),
            )
            .await;
        answer.expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "csr-withdraw of an unknown denomination",
        );
        assert!(answer.body["exchange_sig"].is_string(), "signed refusal");
        // An RSA denomination: 404 1016 with the signed statement, as the C exchange answers.
        let answer = raw
            .post(
                "csr-withdraw",
                &json!({ "nonce": b32(32, 3), "denom_pub_hash": one.h }),
            )
            .await;
        answer.expect(
            404,
            ErrorCode::ExchangeGenericInvalidDenominationCipherForOperation,
            "csr-withdraw of an RSA denomination",
        );
        assert!(answer.body["exchange_sig"].is_string(), "signed refusal");
        let ewv = raw
            .post(
                "csr-withdraw",
                &json!({ "nonce": b32(32, 3), "denom_pub_hash": cs.h }),
            )
            .await;
        assert_eq!(ewv.expect_ok(200, "csr-withdraw")["ewv"]["cipher"], "CS");

        // Nothing was charged or recorded; the reserve still withdraws.
        assert_eq!(sums(&world).await, before, "nothing changed");
        assert_eq!(balance(&world, &reserve_pub).await, kudos("10"));
        let answer = raw.post(&path, &withdraw_body(&[&good.request])).await;
        let sigs: cardcash_api::exchange::BatchWithdrawResponse =
            serde_json::from_value(answer.expect_ok(200, "good planchet").clone()).unwrap();
        good.unblind(&sigs.ev_sigs[0].ev_sig);
        assert_eq!(balance(&world, &reserve_pub).await, kudos("8.99"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Request bodies compressed with `deflate` (zlib, what GNU Taler's C clients send) or
    /// `gzip` are accepted; over the limit once decompressed (a "zip bomb" of whitespace whose
    /// compressed form is tiny), oversized when plain, or corrupt, they are refused and charge
    /// nothing.
    async fn compressed_and_oversized_bodies(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let path = format!("reserves/{}/batch-withdraw", reserve.public());
        let one = pick(&denoms, "1", false);

        for (encoding, compress) in [("deflate", zlib as fn(&[u8]) -> Vec<u8>), ("gzip", gzip)] {
            let p = wallet::planchet(&client, &reserve, one).await;
            let body = withdraw_body(&[&p.request]).to_string();
            let answer = raw
                .post_encoded(&path, encoding, compress(body.as_bytes()))
                .await;
            let sigs: cardcash_api::exchange::BatchWithdrawResponse =
                serde_json::from_value(answer.expect_ok(200, encoding).clone()).unwrap();
            p.unblind(&sigs.ev_sigs[0].ev_sig);
        }
        assert_eq!(balance(&world, &reserve.public()).await, kudos("7.98"));
        let before = sums(&world).await;

        // 2 MiB once inflated (the limit is 1 MiB after decompression); a few KiB on the wire.
        let p = wallet::planchet(&client, &reserve, one).await;
        let padded = format!(
            "{{\"planchets\": [{}]{}}}",
            serde_json::to_string(&p.request).unwrap(),
            " ".repeat(2 << 20)
        );
        for (encoding, bytes) in [
            ("deflate", zlib(padded.as_bytes())),
            ("gzip", gzip(padded.as_bytes())),
        ] {
            assert!(bytes.len() < 16 * 1024, "a small upload");
            raw.post_encoded(&path, encoding, bytes).await.expect(
                413,
                ErrorCode::GenericUploadExceedsLimit,
                &format!("{encoding} bomb"),
            );
        }
        raw.post_text(&path, &padded).await.expect(
            413,
            ErrorCode::GenericUploadExceedsLimit,
            "2 MiB plain",
        );
        // A corrupt stream: 400 GENERIC_COMPRESSION_INVALID (the C exchange's JSON parser
        // answers GENERIC_JSON_INVALID); an unknown coding: 415 (C: it would parse the bytes).
        let mut corrupt = zlib(padded.as_bytes());
        corrupt.truncate(40);
        corrupt[20] ^= 0xff;
        raw.post_encoded(&path, "deflate", corrupt).await.expect(
            400,
            ErrorCode::GenericCompressionInvalid,
            "corrupt deflate",
        );
        raw.post_encoded(&path, "gzip", b"not gzip at all".to_vec())
            .await
            .expect(400, ErrorCode::GenericCompressionInvalid, "not gzip");
        raw.post_encoded(&path, "br", withdraw_body(&[&p.request]).to_string().into())
            .await
            .expect(
                415,
                ErrorCode::GenericCompressionInvalid,
                "unsupported coding",
            );

        assert_eq!(sums(&world).await, before, "nothing changed");
        // The refused planchet still withdraws.
        client
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: vec![p.request.clone()],
                },
            )
            .await
            .unwrap();
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ deposit

engine_test!(
    /// `POST /batch-deposit`: malformed JSON and fields, unknown denominations, contributions
    /// above the value or below the fee, a denomination signature of another coin, a coin
    /// signature by another key, a wrong merchant signature, deadlines out of order or never,
    /// unsupported wire methods, repeated coins, oversized batches. Nothing is debited; every
    /// coin deposits afterwards (compressed, as the C merchant sends it).
    async fn deposit_refusals(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let coins = three_coins(&world, &reserve, &denoms).await;
        let (five, one, two) = (&coins[0], &coins[1], &coins[2]);
        let raw = Raw::new(world.exchange().base_url());
        let before = sums(&world).await;
        let c = contract();
        let good = c.deposit(&[(five, kudos("5"))]);
        let good_json = serde_json::to_value(&good).unwrap();
        let path = "batch-deposit";
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut v = good_json.clone();
            edit(&mut v);
            v
        };

        // 400 GENERIC_JSON_INVALID.
        let mut malformed: Vec<(&str, Value)> = Vec::new();
        for field in [
            "merchant_payto_uri",
            "wire_salt",
            "merchant_pub",
            "h_contract_terms",
            "coins",
            "timestamp",
            "wire_transfer_deadline",
        ] {
            malformed.push((
                field,
                with(&|v| {
                    v.as_object_mut().unwrap().remove(field);
                }),
            ));
        }
        for field in [
            "contribution",
            "denom_pub_hash",
            "ub_sig",
            "coin_pub",
            "coin_sig",
        ] {
            malformed.push((
                field,
                with(&|v| {
                    v["coins"][0].as_object_mut().unwrap().remove(field);
                }),
            ));
        }
        malformed.push(("coins an object", with(&|v| v["coins"] = json!({}))));
        malformed.push((
            "timestamp a string",
            with(&|v| v["timestamp"] = json!("yesterday")),
        ));
        malformed.push((
            "not a payto",
            with(&|v| v["merchant_payto_uri"] = json!("mailto:shop@example.com")),
        ));
        malformed.push((
            "unknown ub_sig cipher",
            with(&|v| v["coins"][0]["ub_sig"]["cipher"] = json!("FOO")),
        ));
        malformed.push((
            "contribution not an amount",
            with(&|v| v["coins"][0]["contribution"] = json!("KUDOS:x")),
        ));
        malformed.push((
            "contribution a number",
            with(&|v| v["coins"][0]["contribution"] = json!(5)),
        ));
        malformed.push((
            "coin_pub of 31 bytes",
            with(&|v| v["coins"][0]["coin_pub"] = json!(b32(31, 1))),
        ));
        malformed.push((
            "wire_salt not base32",
            with(&|v| v["wire_salt"] = json!("salt!")),
        ));
        for (what, body) in &malformed {
            raw.post(path, body)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, what);
        }
        raw.post_text(path, "{\"coins\": [").await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "syntax",
        );

        // Refusals with their own codes.
        let expect = |status: u16, code: ErrorCode, what: &'static str, body: Value| {
            (status, code, what, body)
        };
        let c_other = contract();
        let mut forged = c_other.deposit(&[(five, kudos("5"))]);
        forged.h_contract_terms = c.h_contract_terms;
        forged.merchant_pub = c.merchant.public();
        forged.timestamp = c.timestamp;
        forged.wire_salt = c.salt;
        let mut wrong_merchant_sig = good.clone();
        wrong_merchant_sig.merchant_sig = Some(c_other.merchant.sign(
            &cardcash_crypto::purpose::ContractSig {
                h_contract_terms: c.h_contract_terms,
            },
        ));
        let iban = Contract::new(
            "payto://iban/DE75512108001245126199?receiver-name=Shop"
                .parse()
                .unwrap(),
            c.wire_deadline,
        );
        let mut late_refunds = good.clone();
        late_refunds.refund_deadline =
            Some(c.wire_deadline.saturating_add(RelativeTime::from_secs(1)));
        let many: Vec<_> = (0..1025).map(|_| good.coins[0].clone()).collect();
        let cases = vec![
            expect(
                400,
                ErrorCode::GenericParameterMalformed,
                "no coins",
                with(&|v| v["coins"] = json!([])),
            ),
            expect(
                400,
                ErrorCode::GenericParameterMalformed,
                "1025 coins (C: at most 256)",
                with(&|v| v["coins"] = json!(many)),
            ),
            expect(
                404,
                ErrorCode::ExchangeGenericDenominationKeyUnknown,
                "unknown denomination",
                with(&|v| v["coins"][0]["denom_pub_hash"] = json!(b32(64, 5))),
            ),
            expect(
                400,
                ErrorCode::ExchangeGenericAmountExceedsDenominationValue,
                "more than the coin is worth",
                serde_json::to_value(c.deposit(&[(five, kudos("5.01"))])).unwrap(),
            ),
            expect(
                400,
                ErrorCode::ExchangeDepositNegativeValueAfterFee,
                "less than the deposit fee",
                serde_json::to_value(c.deposit(&[(five, kudos("0.001"))])).unwrap(),
            ),
            expect(
                403,
                ErrorCode::ExchangeDenominationSignatureInvalid,
                "the denomination signature of another coin",
                with(&|v| v["coins"][0]["ub_sig"] = serde_json::to_value(one.ub_sig()).unwrap()),
            ),
            expect(
                403,
                ErrorCode::ExchangeDepositCoinSignatureInvalid,
                "coin signature over another contract",
                serde_json::to_value(&forged).unwrap(),
            ),
            expect(
                403,
                ErrorCode::ExchangeDepositCoinSignatureInvalid,
                "coin signature over another contribution",
                with(&|v| v["coins"][0]["contribution"] = json!("KUDOS:4")),
            ),
            expect(
                400,
                ErrorCode::GenericParameterMalformed,
                "merchant_sig by another merchant",
                serde_json::to_value(&wrong_merchant_sig).unwrap(),
            ),
            expect(
                400,
                ErrorCode::ExchangeDepositRefundDeadlineAfterWireDeadline,
                "refund deadline after the wire deadline",
                serde_json::to_value(&late_refunds).unwrap(),
            ),
            expect(
                400,
                ErrorCode::ExchangeDepositWireDeadlineIsNever,
                "wire deadline never",
                with(&|v| {
                    v["wire_transfer_deadline"] = json!({ "t_s": "never" });
                    v["refund_deadline"] = json!({ "t_s": 0 });
                }),
            ),
            // cardcash refuses accounts it cannot wire to (no wire fee for the method); the
            // C exchange accepts the deposit and fails later, in the aggregator.
            expect(
                400,
                ErrorCode::GenericParameterMalformed,
                "an iban account (no wire fee)",
                serde_json::to_value(iban.deposit(&[(five, kudos("5"))])).unwrap(),
            ),
            // cardcash refuses a coin twice in one batch up front.
            expect(
                400,
                ErrorCode::GenericParameterMalformed,
                "the same coin twice",
                serde_json::to_value(c.deposit(&[(five, kudos("2")), (five, kudos("3"))])).unwrap(),
            ),
        ];
        for (status, code, what, body) in cases {
            raw.post(path, &body).await.expect(status, code, what);
        }
        // A batch with one bad coin refuses the good ones too.
        let mut mixed = c.deposit(&[(one, kudos("1")), (two, kudos("2"))]);
        mixed.coins[1].coin_sig = mixed.coins[0].coin_sig;
        raw.post(path, &serde_json::to_value(&mixed).unwrap())
            .await
            .expect(
                403,
                ErrorCode::ExchangeDepositCoinSignatureInvalid,
                "one bad coin in a batch",
            );

        assert_eq!(sums(&world).await, before, "nothing changed");
        // Every coin still deposits in full, the batch compressed as the C merchant sends it.
        let all = c.deposit(&[(five, kudos("5")), (one, kudos("1")), (two, kudos("2"))]);
        let answer = raw
            .post_encoded(
                path,
                "deflate",
                zlib(serde_json::to_string(&all).unwrap().as_bytes()),
            )
            .await;
        answer.expect_ok(200, "the good deposit, deflated");
        audit_clean(&world).await;
        assert_eq!(sums(&world).await.deposits_with_fee, kudos("8"));
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ refund, tracking

fn refund_body(
    merchant: &EddsaPrivateKey,
    h_contract_terms: HashCode,
    coin_pub: EddsaPublicKey,
    rtid: u64,
    amount: &str,
) -> Value {
    let refund_amount = kudos(amount);
    json!({
        "refund_amount": refund_amount,
        "h_contract_terms": h_contract_terms,
        "merchant_pub": merchant.public(),
        "rtransaction_id": rtid,
        "merchant_sig": merchant.sign(&MerchantRefund {
            h_contract_terms,
            coin_pub,
            rtransaction_id: rtid,
            refund_amount,
        }),
    })
}

engine_test!(
    /// `POST /coins/$PUB/refund`, `GET /deposits/…` and `GET /transfers/$WTID`: malformed
    /// paths and bodies, wrong merchant signatures, unknown coins, deposits and transfers,
    /// refunds above the deposit or below the refund fee. Nothing changes; a good refund and
    /// the tracking work afterwards.
    async fn refund_and_tracking_refusals(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let coins = three_coins(&world, &reserve, &denoms).await;
        let five = &coins[0];
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let c = contract();
        client
            .batch_deposit(&c.deposit(&[(five, kudos("5"))]))
            .await
            .unwrap();
        let before = sums(&world).await;
        let merchant = &c.merchant;
        let refund = format!("coins/{}/refund", five.coin_pub);
        let good = refund_body(merchant, c.h_contract_terms, five.coin_pub, 1, "1");

        for bad in bad_keys() {
            raw.post(&format!("coins/{bad}/refund"), &good)
                .await
                .expect(400, ErrorCode::ExchangeGenericCoinsInvalidCoinPub, &bad);
        }
        let mut malformed: Vec<(String, Value)> = Vec::new();
        for field in [
            "refund_amount",
            "h_contract_terms",
            "merchant_pub",
            "rtransaction_id",
            "merchant_sig",
        ] {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove(field);
            malformed.push((format!("no {field}"), v));
        }
        for (field, value) in [
            ("rtransaction_id", json!("one")),
            ("rtransaction_id", json!(-1)),
            ("refund_amount", json!("KUDOS")),
            ("merchant_sig", json!(b32(63, 1))),
        ] {
            let mut v = good.clone();
            v[field] = value.clone();
            malformed.push((format!("{field} = {value}"), v));
        }
        for (what, body) in &malformed {
            raw.post(&refund, body)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, what);
        }
        let other = EddsaPrivateKey::generate().unwrap();
        let mut forged = refund_body(&other, c.h_contract_terms, five.coin_pub, 1, "1");
        forged["merchant_pub"] = json!(merchant.public());
        raw.post(&refund, &forged).await.expect(
            403,
            ErrorCode::ExchangeRefundMerchantSignatureInvalid,
            "signed by another merchant",
        );
        raw.post(
            &refund,
            &refund_body(merchant, c.h_contract_terms, five.coin_pub, 2, "1")
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("refund_amount".into(), json!("KUDOS:2"));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeRefundMerchantSignatureInvalid,
            "signed over another amount",
        );
        let stranger = EddsaPrivateKey::generate().unwrap().public();
        raw.post(
            &format!("coins/{stranger}/refund"),
            &refund_body(merchant, c.h_contract_terms, stranger, 1, "1"),
        )
        .await
        .expect(404, ErrorCode::ExchangeRefundCoinNotFound, "unknown coin");
        raw.post(
            &format!("coins/{}/refund", coins[1].coin_pub),
            &refund_body(merchant, c.h_contract_terms, coins[1].coin_pub, 1, "1"),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeRefundCoinNotFound,
            "a withdrawn coin that was never deposited",
        );
        raw.post(
            &refund,
            &refund_body(
                merchant,
                HashCode::from_bytes([3; 64]),
                five.coin_pub,
                1,
                "1",
            ),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeRefundDepositNotFound,
            "another contract",
        );
        raw.post(
            &refund,
            &refund_body(&other, c.h_contract_terms, five.coin_pub, 1, "1"),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeRefundDepositNotFound,
            "another merchant's refund",
        );
        raw.post(
            &refund,
            &refund_body(merchant, c.h_contract_terms, five.coin_pub, 1, "5.01"),
        )
        .await
        .expect(
            409,
            ErrorCode::ExchangeRefundConflictDepositInsufficient,
            "more than deposited",
        );
        // Below the refund fee (0.01): cardcash refuses it (the C handler leaves it to its
        // database procedure).
        raw.post(
            &refund,
            &refund_body(merchant, c.h_contract_terms, five.coin_pub, 1, "0.001"),
        )
        .await
        .expect(
            400,
            ErrorCode::ExchangeRefundFeeAboveAmount,
            "below the refund fee",
        );

        // Deposit tracking.
        let h_wire = c.h_wire();
        let track_sig = |key: &EddsaPrivateKey, coin: EddsaPublicKey, h_wire: HashCode| {
            key.sign(&TrackTransaction {
                h_contract_terms: c.h_contract_terms,
                h_wire,
                coin_pub: coin,
            })
        };
        let deposit_path = |h_wire: &str, merchant_pub: &str, h_contract: &str, coin: &str| {
            format!("deposits/{h_wire}/{merchant_pub}/{h_contract}/{coin}")
        };
        let (hw, mp, hc, cp) = (
            h_wire.to_string(),
            merchant.public().to_string(),
            c.h_contract_terms.to_string(),
            five.coin_pub.to_string(),
        );
        let sig = track_sig(merchant, five.coin_pub, h_wire).to_string();
        for bad in bad_hashes() {
            for (path, code) in [
                (
                    deposit_path(&bad, &mp, &hc, &cp),
                    ErrorCode::ExchangeDepositsGetInvalidHWire,
                ),
                (
                    deposit_path(&hw, &mp, &bad, &cp),
                    ErrorCode::ExchangeDepositsGetInvalidHContractTerms,
                ),
            ] {
                raw.get(&format!("{path}?merchant_sig={sig}"))
                    .await
                    .expect(400, code, &path);
            }
        }
        for bad in bad_keys() {
            for (path, code) in [
                (
                    deposit_path(&hw, &bad, &hc, &cp),
                    ErrorCode::ExchangeDepositsGetInvalidMerchantPub,
                ),
                (
                    deposit_path(&hw, &mp, &hc, &bad),
                    ErrorCode::ExchangeDepositsGetInvalidCoinPub,
                ),
            ] {
                raw.get(&format!("{path}?merchant_sig={sig}"))
                    .await
                    .expect(400, code, &path);
            }
        }
        let track = deposit_path(&hw, &mp, &hc, &cp);
        raw.get(&track)
            .await
            .expect(400, ErrorCode::GenericParameterMissing, "no merchant_sig");
        raw.get(&format!("{track}?merchant_sig=abc")).await.expect(
            400,
            ErrorCode::GenericParameterMalformed,
            "malformed merchant_sig",
        );
        raw.get(&format!(
            "{track}?merchant_sig={}",
            track_sig(&other, five.coin_pub, h_wire)
        ))
        .await
        .expect(
            403,
            ErrorCode::ExchangeDepositsGetMerchantSignatureInvalid,
            "signed by another merchant",
        );
        raw.get(&format!("{track}?merchant_sig={sig}&timeout_ms=soon"))
            .await
            .expect(400, ErrorCode::GenericParameterMalformed, "timeout_ms=soon");
        let other_h_wire = HashCode::from_bytes([4; 64]);
        raw.get(&format!(
            "{}?merchant_sig={}",
            deposit_path(&other_h_wire.to_string(), &mp, &hc, &cp),
            track_sig(merchant, five.coin_pub, other_h_wire)
        ))
        .await
        .expect(
            404,
            ErrorCode::ExchangeDepositsGetNotFound,
            "another h_wire",
        );
        raw.get(&format!(
            "{}?merchant_sig={}",
            deposit_path(&hw, &mp, &hc, &stranger.to_string()),
            track_sig(merchant, stranger, h_wire)
        ))
        .await
        .expect(404, ErrorCode::ExchangeDepositsGetNotFound, "unknown coin");
        let pending = raw.get(&format!("{track}?merchant_sig={sig}")).await;
        let body = pending.expect_ok(202, "not wired yet");
        assert_eq!(body["kyc_ok"], true);
        assert_eq!(body["execution_time"], json!(c.wire_deadline));

        // Transfers.
        for bad in ["not-base32!".to_owned(), b32(31, 1), b32(33, 1), b32(64, 1)] {
            raw.get(&format!("transfers/{bad}")).await.expect(
                400,
                ErrorCode::ExchangeTransfersGetWtidMalformed,
                &bad,
            );
        }
        raw.get(&format!("transfers/{}", b32(32, 1))).await.expect(
            404,
            ErrorCode::ExchangeTransfersGetWtidNotFound,
            "unknown WTID",
        );

        assert_eq!(sums(&world).await, before, "nothing changed");
        let answer = raw.post(&refund, &good).await;
        answer.expect_ok(200, "the good refund");
        assert!(answer.body["exchange_sig"].is_string());
        audit_clean(&world).await;
        assert_eq!(sums(&world).await.refunds, kudos("1"));
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ management

engine_test!(
    /// `/management/…`: malformed bodies and paths, uploads signed by another key or over other
    /// values, unknown keys and accounts. Nothing is stored: the key material and `/keys` are
    /// unchanged.
    async fn management_refusals(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let raw = Raw::new(world.exchange().base_url());
        let master = world.exchange().master();
        let other = cardcash_exchange::offline::MasterKey::generate().unwrap();
        let material = store(&world).key_material().await.unwrap();
        let etag = raw.get("keys").await.header("etag").unwrap().to_owned();
        let denom = material.denominations[0].h_denom_pub;
        let signkey = material.signkeys[0].exchange_pub;

        // POST /management/keys.
        for (what, body) in [
            ("syntax", "{".to_owned()),
            ("no signkey_sigs", json!({ "denom_sigs": [] }).to_string()),
            (
                "denom_sigs an object",
                json!({ "denom_sigs": {}, "signkey_sigs": [] }).to_string(),
            ),
            (
                "master_sig missing",
                json!({ "denom_sigs": [{ "h_denom_pub": denom }], "signkey_sigs": [] }).to_string(),
            ),
        ] {
            raw.post_text("management/keys", &body).await.expect(
                400,
                ErrorCode::GenericJsonInvalid,
                what,
            );
        }
        let keys_upload = |denoms: Value, signkeys: Value| json!({ "denom_sigs": denoms, "signkey_sigs": signkeys });
        let some_sig = material.denominations[0].master_sig;
        raw.post(
            "management/keys",
            &keys_upload(
                json!([{ "h_denom_pub": b32(64, 2), "master_sig": some_sig }]),
                json!([]),
            ),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown denomination",
        );
        raw.post(
            "management/keys",
            &keys_upload(
                json!([]),
                json!([{ "exchange_pub": b32(32, 2), "master_sig": some_sig }]),
            ),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeManagementKeysSignkeyUnknown,
            "unknown signing key",
        );
        raw.post(
            "management/keys",
            &keys_upload(
                json!([{ "h_denom_pub": denom, "master_sig": material.signkeys[0].master_sig }]),
                json!([]),
            ),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementKeysDenomkeyAddSignatureInvalid,
            "a denomination with another signature",
        );
        raw.post(
            "management/keys",
            &keys_upload(
                json!([]),
                json!([{ "exchange_pub": signkey, "master_sig": some_sig }]),
            ),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementKeysSignkeyAddSignatureInvalid,
            "a signing key with another signature",
        );

        // Accounts.
        let now = Timestamp::from_secs(Timestamp::now().as_secs());
        let account: PaytoUri = "payto://x-taler-bank/bank.example/new?receiver-name=New"
            .parse()
            .unwrap();
        let good_wire =
            serde_json::to_value(master.enable_account(&account, now, None, 0).unwrap()).unwrap();
        let forged_wire =
            serde_json::to_value(other.enable_account(&account, now, None, 0).unwrap()).unwrap();
        let mut bad_add = good_wire.clone();
        bad_add["master_sig_add"] = forged_wire["master_sig_add"].clone();
        raw.post("management/wire", &bad_add).await.expect(
            403,
            ErrorCode::ExchangeManagementWireAddSignatureInvalid,
            "activation signed by another key",
        );
        let mut bad_details = good_wire.clone();
        bad_details["master_sig_wire"] = forged_wire["master_sig_wire"].clone();
        raw.post("management/wire", &bad_details).await.expect(
            403,
            ErrorCode::ExchangeManagementWireDetailsSignatureInvalid,
            "details signed by another key",
        );
        let mut later = good_wire.clone();
        later["validity_start"] = json!({ "t_s": now.as_secs() + 10 });
        raw.post("management/wire", &later).await.expect(
            403,
            ErrorCode::ExchangeManagementWireAddSignatureInvalid,
            "activation signed for another time",
        );
        for (what, edit) in [
            ("no payto_uri", "payto_uri"),
            ("no master_sig_wire", "master_sig_wire"),
            ("no validity_start", "validity_start"),
        ] {
            let mut v = good_wire.clone();
            v.as_object_mut().unwrap().remove(edit);
            raw.post("management/wire", &v)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, what);
        }
        let mut v = good_wire.clone();
        v["payto_uri"] = json!("not a payto");
        raw.post("management/wire", &v).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "payto_uri not a payto",
        );
        raw.post(
            "management/wire/disable",
            &serde_json::to_value(master.disable_account(&account, now)).unwrap(),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeManagementWireNotFound,
            "disable an unknown account",
        );
        let known: PaytoUri = material.accounts[0].payto_uri.parse().unwrap();
        raw.post(
            "management/wire/disable",
            &serde_json::to_value(other.disable_account(&known, now)).unwrap(),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementWireDelSignatureInvalid,
            "disable signed by another key",
        );

        // Fees.
        let end = Timestamp::from_secs(now.as_secs() + 3600);
        let forged_fee = other.wire_fee("x-taler-bank", now, end, kudos("0.05"), kudos("0.01"));
        raw.post(
            "management/wire-fee",
            &serde_json::to_value(&forged_fee).unwrap(),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementWireFeeSignatureInvalid,
            "wire fee signed by another key",
        );
        let mut cheaper =
            serde_json::to_value(master.wire_fee("iban", now, end, kudos("0.05"), kudos("0.01")))
                .unwrap();
        cheaper["wire_fee"] = json!("KUDOS:0.04");
        raw.post("management/wire-fee", &cheaper).await.expect(
            403,
            ErrorCode::ExchangeManagementWireFeeSignatureInvalid,
            "wire fee signed over another amount",
        );
        let mut no_method = cheaper.clone();
        no_method.as_object_mut().unwrap().remove("wire_method");
        raw.post("management/wire-fee", &no_method).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "no wire_method",
        );
        let zero = kudos("0");
        let global = |key: &cardcash_exchange::offline::MasterKey| {
            serde_json::to_value(key.global_fees(
                now,
                end,
                zero,
                zero,
                zero,
                RelativeTime::from_secs(3600),
                RelativeTime::from_secs(3600),
                1,
            ))
            .unwrap()
        };
        for route in ["management/global-fee", "management/global-fees"] {
            raw.post(route, &global(&other)).await.expect(
                403,
                ErrorCode::ExchangeManagementGlobalFeeSignatureInvalid,
                route,
            );
            let mut v = global(master);
            v["purse_account_limit"] = json!(2);
            raw.post(route, &v).await.expect(
                403,
                ErrorCode::ExchangeManagementGlobalFeeSignatureInvalid,
                "global fees signed over another limit",
            );
            let mut v = global(master);
            v["purse_timeout"] = json!("an hour");
            raw.post(route, &v)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, "purse_timeout");
        }

        // Revocations.
        for bad in bad_hashes() {
            raw.post(
                &format!("management/denominations/{bad}/revoke"),
                &json!({ "master_sig": some_sig }),
            )
            .await
            .expect(400, ErrorCode::GenericParameterMalformed, &bad);
        }
        for bad in bad_keys() {
            raw.post(
                &format!("management/signkeys/{bad}/revoke"),
                &json!({ "master_sig": some_sig }),
            )
            .await
            .expect(400, ErrorCode::GenericParameterMalformed, &bad);
        }
        raw.post(
            &format!("management/denominations/{denom}/revoke"),
            &json!({ "master_sig": other.revoke_denomination(denom) }),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementDenominationRevokeSignatureInvalid,
            "denomination revocation signed by another key",
        );
        raw.post(
            &format!("management/denominations/{denom}/revoke"),
            &json!({ "master_sig": master.revoke_signkey(signkey) }),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementDenominationRevokeSignatureInvalid,
            "a signing key's revocation used for a denomination",
        );
        raw.post(
            &format!("management/denominations/{denom}/revoke"),
            &json!({}),
        )
        .await
        .expect(400, ErrorCode::GenericJsonInvalid, "no master_sig");
        raw.post(
            &format!("management/signkeys/{signkey}/revoke"),
            &json!({ "master_sig": other.revoke_signkey(signkey) }),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeManagementSignkeyRevokeSignatureInvalid,
            "signing key revocation signed by another key",
        );
        // Unknown keys, validly signed: cardcash says 404 (the C exchange answers 204 and
        // stores nothing, its insert finding no key).
        let unknown_denom = HashCode::from_bytes([6; 64]);
        raw.post(
            &format!("management/denominations/{unknown_denom}/revoke"),
            &json!({ "master_sig": master.revoke_denomination(unknown_denom) }),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "revoke an unknown denomination",
        );
        let unknown_key = EddsaPrivateKey::generate().unwrap().public();
        raw.post(
            &format!("management/signkeys/{unknown_key}/revoke"),
            &json!({ "master_sig": master.revoke_signkey(unknown_key) }),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeManagementKeysSignkeyUnknown,
            "revoke an unknown signing key",
        );

        assert_eq!(
            store(&world).key_material().await.unwrap(),
            material,
            "nothing was stored"
        );
        let keys = raw.get("keys").await;
        assert_eq!(keys.header("etag"), Some(etag.as_str()), "/keys unchanged");
        // The good uploads still go through.
        raw.post("management/wire", &good_wire)
            .await
            .expect_ok(204, "the good account");
        raw.post(
            "management/wire-fee",
            &serde_json::to_value(master.wire_fee("iban", now, end, kudos("0.05"), kudos("0.01")))
                .unwrap(),
        )
        .await
        .expect_ok(204, "the good wire fee");
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ former bugs
//
// Each test below asserts what the C exchange answers where cardcash answered differently when
// these tests were written (fixed in `exchange: answers as the C exchange gives them`). Most run
// against a bare exchange (no bank): the refusals happen before any money moves.

/// A bare exchange with signed keys and its raw client.
async fn bare(engine: Engine) -> (TestExchange, Raw) {
    let ex = TestExchange::start(engine).await;
    ex.sign_keys().await;
    let raw = Raw::new(ex.client.base_url());
    (ex, raw)
}

/// The RSA and the CS denomination of the bare exchange.
async fn bare_denoms(ex: &TestExchange) -> (Denom, Denom) {
    let denoms = wallet::denominations(&ex.client.keys().await.unwrap());
    let rsa = denoms
        .iter()
        .find(|d| matches!(d.key, wallet::DenomKey::Rsa(_)))
        .unwrap()
        .clone();
    let cs = denoms
        .iter()
        .find(|d| matches!(d.key, wallet::DenomKey::Cs(_)))
        .unwrap()
        .clone();
    (rsa, cs)
}

/// A deposit of one made-up coin of `denom` (the refusals under test come before the coin's
/// signatures are checked).
fn made_up_deposit(denom: &Denom) -> Value {
    let coin_priv = EddsaPrivateKey::generate().unwrap();
    let coin = Coin {
        denom: denom.clone(),
        coin_pub: coin_priv.public(),
        coin_priv,
        signature: match denom.key {
            wallet::DenomKey::Rsa(_) => wallet::CoinSignature::Rsa(vec![1; 128]),
            wallet::DenomKey::Cs(_) => wallet::CoinSignature::Cs {
                r: [1; 32],
                s: [2; 32],
            },
        },
    };
    let c = Contract::new(
        crate::helpers::ACCOUNT.parse().unwrap(),
        Timestamp::now().saturating_add(RelativeTime::from_secs(3600)),
    );
    serde_json::to_value(c.deposit(&[(&coin, denom.value)])).unwrap()
}

engine_test!(
    /// A malformed key in the path gets the code of its position, before the body is read
    /// (the C exchange parses the path when it dispatches, so a body that is merely valid
    /// JSON does not matter).
    async fn malformed_path_keys_get_the_c_exchanges_codes(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let sig = b32(64, 1);
        for bad in bad_keys() {
            raw.get(&format!("reserves/{bad}")).await.expect(
                400,
                ErrorCode::GenericReservePubMalformed,
                "GET /reserves",
            );
            raw.get_with(
                &format!("reserves/{bad}/history"),
                &[(RESERVE_HISTORY_SIGNATURE_HEADER, &sig)],
            )
            .await
            .expect(400, ErrorCode::GenericReservePubMalformed, "history");
            raw.post(&format!("reserves/{bad}/batch-withdraw"), &json!({}))
                .await
                .expect(400, ErrorCode::GenericReservePubMalformed, "batch-withdraw");
            raw.post(&format!("coins/{bad}/refund"), &json!({}))
                .await
                .expect(400, ErrorCode::ExchangeGenericCoinsInvalidCoinPub, "refund");
        }
        let (h, k) = (b32(64, 1), b32(32, 1));
        for (bad_h, bad_k) in bad_hashes().into_iter().zip(bad_keys()) {
            for (path, code) in [
                (
                    format!("deposits/{bad_h}/{k}/{h}/{k}"),
                    ErrorCode::ExchangeDepositsGetInvalidHWire,
                ),
                (
                    format!("deposits/{h}/{bad_k}/{h}/{k}"),
                    ErrorCode::ExchangeDepositsGetInvalidMerchantPub,
                ),
                (
                    format!("deposits/{h}/{k}/{bad_h}/{k}"),
                    ErrorCode::ExchangeDepositsGetInvalidHContractTerms,
                ),
                (
                    format!("deposits/{h}/{k}/{h}/{bad_k}"),
                    ErrorCode::ExchangeDepositsGetInvalidCoinPub,
                ),
            ] {
                raw.get(&format!("{path}?merchant_sig={sig}"))
                    .await
                    .expect(400, code, &path);
            }
        }
        ex.stop().await;
    }
);

engine_test!(
    /// `contribution`, `refund_amount` and the management fees in another currency are
    /// malformed JSON to the C exchange (`TALER_JSON_spec_amount` with `TEH_currency`).
    async fn amounts_in_another_currency_are_malformed_json(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let (rsa, _) = bare_denoms(&ex).await;
        let mut deposit = made_up_deposit(&rsa);
        deposit["coins"][0]["contribution"] = json!("EUR:1");
        raw.post("batch-deposit", &deposit).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "contribution in EUR",
        );
        let coin = EddsaPrivateKey::generate().unwrap().public();
        let mut refund = refund_body(
            &EddsaPrivateKey::generate().unwrap(),
            HashCode::from_bytes([1; 64]),
            coin,
            1,
            "1",
        );
        refund["refund_amount"] = json!("EUR:1");
        raw.post(&format!("coins/{coin}/refund"), &refund)
            .await
            .expect(400, ErrorCode::GenericJsonInvalid, "refund in EUR");
        let now = Timestamp::from_secs(Timestamp::now().as_secs());
        let end = Timestamp::from_secs(now.as_secs() + 60);
        let eur: Amount = "EUR:0.01".parse().unwrap();
        let fee = ex.master.wire_fee("iban", now, end, eur, eur);
        raw.post("management/wire-fee", &serde_json::to_value(&fee).unwrap())
            .await
            .expect(400, ErrorCode::GenericJsonInvalid, "wire fee in EUR");
        let zero: Amount = "EUR:0".parse().unwrap();
        let global = ex.master.global_fees(
            now,
            end,
            zero,
            zero,
            zero,
            RelativeTime::from_secs(1),
            RelativeTime::from_secs(1),
            0,
        );
        raw.post(
            "management/global-fee",
            &serde_json::to_value(&global).unwrap(),
        )
        .await
        .expect(400, ErrorCode::GenericJsonInvalid, "global fees in EUR");
        ex.stop().await;
    }
);

engine_test!(
    /// `TEH_RESPONSE_reply_invalid_denom_cipher_for_operation`: 404, code 1016, and the signed
    /// "denomination unknown" statement (`timestamp`, `exchange_pub`, `exchange_sig`,
    /// `h_denom_pub`).
    async fn csr_withdraw_for_rsa_is_a_signed_404(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let (rsa, _) = bare_denoms(&ex).await;
        let answer = raw
            .post(
                "csr-withdraw",
                &json!({ "nonce": b32(32, 3), "denom_pub_hash": rsa.h }),
            )
            .await;
        answer.expect(
            404,
            ErrorCode::ExchangeGenericInvalidDenominationCipherForOperation,
            "csr-withdraw of an RSA denomination",
        );
        for field in ["timestamp", "exchange_pub", "exchange_sig", "h_denom_pub"] {
            assert!(answer.body.get(field).is_some(), "{field}: {}", answer.body);
        }
        ex.stop().await;
    }
);

engine_test!(
    /// The C exchange compares the ciphers before it verifies the denomination signature.
    async fn deposit_cipher_mismatch(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let (rsa, cs) = bare_denoms(&ex).await;
        for (denom, other) in [(&rsa, &cs), (&cs, &rsa)] {
            let mut body = made_up_deposit(denom);
            body["coins"][0]["ub_sig"] = made_up_deposit(other)["coins"][0]["ub_sig"].clone();
            raw.post("batch-deposit", &body).await.expect(
                400,
                ErrorCode::ExchangeGenericCipherMismatch,
                "ub_sig of the other cipher",
            );
        }
        ex.stop().await;
    }
);

engine_test!(
    /// Without policy extensions the C exchange refuses every `policy` with 1107 (not yet in
    /// `cardcash_util::ErrorCode`: compared by number).
    async fn deposit_policy_not_accepted(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let (rsa, _) = bare_denoms(&ex).await;
        let mut body = made_up_deposit(&rsa);
        body["policy"] = json!({ "type": "escrow" });
        raw.post("batch-deposit", &body)
            .await
            .expect_code(400, 1107, "a deposit policy");
        ex.stop().await;
    }
);

engine_test!(
    /// No denomination of this exchange is age-restricted, so a coin that claims an age
    /// commitment has a denomination signature that cannot verify.
    async fn deposit_with_age_commitment(engine: Engine) {
        let (ex, raw) = bare(engine).await;
        let (rsa, _) = bare_denoms(&ex).await;
        let mut body = made_up_deposit(&rsa);
        body["coins"][0]["h_age_commitment"] = json!(b32(32, 9));
        raw.post("batch-deposit", &body).await.expect(
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "h_age_commitment",
        );
        ex.stop().await;
    }
);

engine_test!(
    /// `TEH_handler_batch_withdraw` compares every planchet with the ones before it:
    /// "duplicate planchet".
    async fn duplicate_planchet_in_a_batch(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let p = wallet::planchet(&client, &reserve, pick(&denoms, "1", false)).await;
        raw.post(
            &format!("reserves/{}/batch-withdraw", reserve.public()),
            &withdraw_body(&[&p.request, &p.request]),
        )
        .await
        .expect(
            400,
            ErrorCode::GenericParameterMalformed,
            "the same planchet twice",
        );
        assert_eq!(balance(&world, &reserve.public()).await, kudos("10"));
        world.shutdown().await.unwrap();
    }
);

/// A Clause-Schnorr planchet of `denom` with the session nonce `nonce` (the test wallet picks
/// its nonces at random).
async fn cs_planchet_with_nonce(
    client: &cardcash_client::ExchangeClient,
    reserve: &EddsaPrivateKey,
    denom: &Denom,
    nonce: [u8; 32],
) -> WithdrawPlanchet {
    use cardcash_api::exchange::{CsNonce, CsScalar, CsrWithdrawRequest, ExchangeWithdrawValues};
    let wallet::DenomKey::Cs(key) = &denom.key else {
        panic!("a CS denomination")
    };
    let coin_pub = EddsaPrivateKey::generate().unwrap().public();
    let ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } = client
        .csr_withdraw(&CsrWithdrawRequest {
            nonce: CsNonce::from_bytes(nonce),
            denom_pub_hash: denom.h,
        })
        .await
        .unwrap()
        .ewv
    else {
        panic!("CS values")
    };
    let secrets =
        cardcash_crypto::cs::blinding_secrets(&cardcash_crypto::random_bytes::<32>().unwrap());
    let (c, _) = cardcash_crypto::cs::blind(
        &secrets,
        &[*r_pub_0.as_bytes(), *r_pub_1.as_bytes()],
        key,
        cardcash_crypto::coin::h_coin_pub(&coin_pub).as_bytes(),
    )
    .unwrap();
    let h_coin_envelope = cardcash_crypto::coin::coin_envelope_hash_cs(&denom.h, &nonce, &c);
    WithdrawPlanchet {
        denom_pub_hash: denom.h,
        reserve_sig: reserve.sign(&WithdrawRequestV23 {
            amount_with_fee: denom.value.checked_add(&denom.fee_withdraw).unwrap(),
            h_denom_pub: denom.h,
            h_coin_envelope,
        }),
        coin_ev: CoinEnvelope::Cs {
            cs_nonce: CsNonce::from_bytes(nonce),
            cs_blinded_c0: CsScalar::from_bytes(c[0]),
            cs_blinded_c1: CsScalar::from_bytes(c[1]),
        },
    }
}

engine_test!(
    /// A second planchet with the nonce of a signed one: refused, nothing charged.
    async fn cs_nonce_reuse_is_a_400(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let path = format!("reserves/{}/batch-withdraw", reserve.public());
        let cs = pick(&denoms, "2", true);
        let nonce = [5u8; 32];
        let first = cs_planchet_with_nonce(&client, &reserve, cs, nonce).await;
        raw.post(&path, &withdraw_body(&[&first]))
            .await
            .expect_ok(200, "the first planchet");
        let second = cs_planchet_with_nonce(&client, &reserve, cs, nonce).await;
        assert_ne!(first, second);
        raw.post(&path, &withdraw_body(&[&second])).await.expect(
            400,
            ErrorCode::ExchangeWithdrawNonceReuse,
            "the nonce again",
        );
        assert_eq!(balance(&world, &reserve.public()).await, kudos("7.98"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// `TEH_RESPONSE_reply_expired_denom_pub_hash(…, DENOMINATION_REVOKED, "WITHDRAW"/"DEPOSIT")`.
    async fn revoked_denomination_refusals_are_signed(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let coins = three_coins(&world, &reserve, &denoms).await;
        let one = pick(&denoms, "1", false);
        let master = world.exchange().master();
        raw.post(
            &format!("management/denominations/{}/revoke", one.h),
            &json!({ "master_sig": master.revoke_denomination(one.h) }),
        )
        .await
        .expect_ok(204, "revocation");
        let p = wallet::planchet(&client, &reserve, one).await;
        let withdraw = raw
            .post(
                &format!("reserves/{}/batch-withdraw", reserve.public()),
                &withdraw_body(&[&p.request]),
            )
            .await;
        let deposit = raw
            .post(
                "batch-deposit",
                &serde_json::to_value(contract().deposit(&[(&coins[1], kudos("1"))])).unwrap(),
            )
            .await;
        for (answer, oper) in [(withdraw, "WITHDRAW"), (deposit, "DEPOSIT")] {
            answer.expect(410, ErrorCode::ExchangeGenericDenominationRevoked, oper);
            assert_eq!(answer.body["oper"], oper);
            for field in ["timestamp", "exchange_pub", "exchange_sig", "h_denom_pub"] {
                assert!(
                    answer.body.get(field).is_some(),
                    "{oper} {field}: {}",
                    answer.body
                );
            }
        }
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A wallet that lost the answer to its withdrawal retries; the planchet was signed and
    /// paid before the revocation, so the retry gets its signature (C: `check_request_idempotent`
    /// before the expired/revoked refusals).
    async fn replays_survive_revocation(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let path = format!("reserves/{}/batch-withdraw", reserve.public());
        let one = pick(&denoms, "1", false);
        let p = wallet::planchet(&client, &reserve, one).await;
        let first = raw.post(&path, &withdraw_body(&[&p.request])).await;
        let first = first.expect_ok(200, "withdrawal").clone();
        raw.post(
            &format!("management/denominations/{}/revoke", one.h),
            &json!({ "master_sig": world.exchange().master().revoke_denomination(one.h) }),
        )
        .await
        .expect_ok(204, "revocation");
        let replay = raw.post(&path, &withdraw_body(&[&p.request])).await;
        assert_eq!(replay.expect_ok(200, "the replay"), &first);
        assert_eq!(balance(&world, &reserve.public()).await, kudos("8.99"));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// `TALER_MHD_parse_post_json` never looks at `Content-Type`.
    async fn bodies_without_content_type_are_parsed(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let p = wallet::planchet(&client, &reserve, pick(&denoms, "1", false)).await;
        let answer = raw
            .send(
                Method::POST,
                &format!("reserves/{}/batch-withdraw", reserve.public()),
                &[],
                Some(withdraw_body(&[&p.request]).to_string().into_bytes()),
            )
            .await;
        answer.expect_ok(200, "no Content-Type");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Refund ids up to 2^63 − 1 work; larger ones are malformed JSON to the C exchange.
    async fn huge_refund_ids_are_malformed(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let coins = three_coins(&world, &reserve, &denoms).await;
        let raw = Raw::new(world.exchange().base_url());
        let c = contract();
        let five = &coins[0];
        world
            .exchange()
            .client()
            .batch_deposit(&c.deposit(&[(five, kudos("5"))]))
            .await
            .unwrap();
        let refund = format!("coins/{}/refund", five.coin_pub);
        let before = sums(&world).await;
        for rtid in [1u64 << 63, u64::MAX] {
            raw.post(
                &refund,
                &refund_body(&c.merchant, c.h_contract_terms, five.coin_pub, rtid, "0.5"),
            )
            .await
            .expect(400, ErrorCode::GenericJsonInvalid, &rtid.to_string());
        }
        assert_eq!(sums(&world).await, before);
        raw.post(
            &refund,
            &refund_body(
                &c.merchant,
                c.h_contract_terms,
                five.coin_pub,
                (1u64 << 63) - 1,
                "0.5",
            ),
        )
        .await
        .expect_ok(200, "2^63 - 1");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// The exchange never signs a wire deadline it will not keep.
    async fn replay_with_another_wire_deadline_conflicts(engine: Engine) {
        let (world, reserve, denoms) = world_with_reserve(engine).await;
        let coins = three_coins(&world, &reserve, &denoms).await;
        let raw = Raw::new(world.exchange().base_url());
        let c = contract();
        let first = serde_json::to_value(c.deposit(&[(&coins[0], kudos("1"))])).unwrap();
        raw.post("batch-deposit", &first)
            .await
            .expect_ok(200, "the deposit");
        let mut later = first.clone();
        later["wire_transfer_deadline"] = json!(
            c.wire_deadline
                .saturating_add(RelativeTime::from_secs(3600))
        );
        let answer = raw.post("batch-deposit", &later).await;
        answer.expect(
            409,
            ErrorCode::ExchangeDepositConflictingContract,
            "the same coins with another wire deadline",
        );
        assert_eq!(answer.body["h_wire"], json!(c.h_wire()));
        assert_eq!(sums(&world).await.deposits_with_fee, kudos("1"));
        world.shutdown().await.unwrap();
    }
);

// ------------------------------------------------------------------------------ the legacy face

engine_test!(
    /// The legacy face (`/legacy/…`, protocol v12–14) refuses as the 2022 C exchange refuses:
    /// malformed path keys (27, 1004), unknown reserves (404 1250 on the status, 1027 on
    /// withdraw), malformed JSON (22), signatures by the wrong key or over the wrong amount
    /// (403 1151), unknown denominations (signed 404 1016), cipher mismatches (400), short
    /// reserves (409 1150 with the balance), v23-layout coin signatures (403 1205: the layouts
    /// are not interchangeable, and the v23 face refuses the v12 one), coins signed by another
    /// denomination key (403 1013), contributions above the coin or below its fee, bad refund
    /// signatures (403 1502) and unknown coins (404 1500), melts signed by another key (403
    /// 1303), malformed coin keys and commitments of melt, reveal and link (1004, 1362), a reveal
    /// of no melt (404 1355), a link of a coin never melted (404 1400), routes it does not serve
    /// (404) and wrong methods (405). Nothing changes: the audit sums are the same, the audit is clean,
    /// and the reserve still withdraws and the coin still deposits on the legacy face.
    async fn legacy_face_refusals_change_nothing(engine: Engine) {
        let (world, reserve, v23_denoms) = world_with_reserve(engine).await;
        let client = world.exchange().client();
        let legacy_url =
            cardcash_exchange::keys::legacy::legacy_base_url(world.exchange().base_url());
        let raw = Raw::new(&legacy_url);
        let legacy = cardcash_client::LegacyExchangeClient::new(legacy_url).unwrap();
        let denoms = crate::wallet_v12::denominations(&legacy.keys().await.unwrap());
        let one = denoms.iter().find(|d| d.value == kudos("1")).unwrap();
        let five = denoms.iter().find(|d| d.value == kudos("5")).unwrap();
        let cs = pick(&v23_denoms, "2", true);
        let reserve_pub = reserve.public();
        // A coin to deposit (1 KUDOS, withdrawn on the legacy face): 10 − 1.01 = 8.99 left.
        let p = wallet::planchet(&client, &reserve, one).await;
        let coin = p.unblind(
            &legacy
                .withdraw(&reserve_pub, &crate::wallet_v12::withdraw_request(&p))
                .await
                .unwrap()
                .ev_sig,
        );
        let before = sums(&world).await;

        // Reserves.
        for bad in bad_keys() {
            raw.get(&format!("reserves/{bad}")).await.expect(
                400,
                ErrorCode::GenericReservePubMalformed,
                &bad,
            );
            raw.post(
                &format!("reserves/{bad}/withdraw"),
                &serde_json::to_value(crate::wallet_v12::withdraw_request(&p)).unwrap(),
            )
            .await
            .expect(400, ErrorCode::GenericReservePubMalformed, &bad);
        }
        raw.get(&format!("reserves/{}", b32(32, 9))).await.expect(
            404,
            ErrorCode::ExchangeReservesStatusUnknown,
            "unknown reserve status",
        );
        raw.get(&format!("reserves/{reserve_pub}?timeout_ms=soon"))
            .await
            .expect(400, ErrorCode::GenericParameterMalformed, "timeout_ms");

        // Withdraw.
        let path = format!("reserves/{reserve_pub}/withdraw");
        let good = wallet::planchet(&client, &reserve, one).await;
        let good_json = serde_json::to_value(crate::wallet_v12::withdraw_request(&good)).unwrap();
        for (what, body) in [
            ("syntax", "{\"denom_pub_hash\":".to_owned()),
            ("not an object", "[]".to_owned()),
            (
                "a batch body",
                json!({ "planchets": [good_json] }).to_string(),
            ),
            ("reserve_sig a number", {
                let mut b = good_json.clone();
                b["reserve_sig"] = json!(7);
                b.to_string()
            }),
            ("unknown cipher", {
                let mut b = good_json.clone();
                b["coin_ev"]["cipher"] = json!("ECDSA");
                b.to_string()
            }),
        ] {
            raw.post_text(&path, &body)
                .await
                .expect(400, ErrorCode::GenericJsonInvalid, what);
        }
        let stranger = EddsaPrivateKey::generate().unwrap();
        let foreign = wallet::planchet(&client, &stranger, one).await;
        let foreign_json =
            serde_json::to_value(crate::wallet_v12::withdraw_request(&foreign)).unwrap();
        raw.post(&path, &foreign_json).await.expect(
            403,
            ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
            "signed by another reserve",
        );
        raw.post(
            &format!("reserves/{}/withdraw", stranger.public()),
            &foreign_json,
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericReserveUnknown,
            "unknown reserve",
        );
        let mut cheap = good_json.clone();
        cheap["reserve_sig"] = json!(reserve.sign(&WithdrawRequestV23 {
            amount_with_fee: kudos("0.01"),
            h_denom_pub: one.h,
            h_coin_envelope: match &good.request.coin_ev {
                CoinEnvelope::Rsa {
                    rsa_blinded_planchet,
                } => cardcash_crypto::coin::coin_envelope_hash(
                    &one.h,
                    rsa_blinded_planchet.as_bytes(),
                ),
                CoinEnvelope::Cs { .. } => unreachable!("RSA"),
            },
        }));
        raw.post(&path, &cheap).await.expect(
            403,
            ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
            "signed over another amount",
        );
        let mut unknown = good_json.clone();
        unknown["denom_pub_hash"] = json!(HashCode::from_bytes([7; 64]));
        let answer = raw.post(&path, &unknown).await;
        answer.expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown denomination",
        );
        for field in ["exchange_sig", "exchange_pub", "h_denom_pub", "timestamp"] {
            assert!(answer.body.get(field).is_some(), "signed refusal: {field}");
        }
        let mut mismatch = good_json.clone();
        mismatch["denom_pub_hash"] = json!(cs.h);
        raw.post(&path, &mismatch).await.expect(
            400,
            ErrorCode::ExchangeGenericCipherMismatch,
            "RSA envelope for a CS denomination",
        );
        let big = [
            wallet::planchet(&client, &reserve, five).await,
            wallet::planchet(&client, &reserve, five).await,
        ];
        let answer = raw
            .post(
                &format!("reserves/{reserve_pub}/batch-withdraw"),
                &json!({ "planchets": big.iter().map(crate::wallet_v12::withdraw_request).collect::<Vec<_>>() }),
            )
            .await;
        answer.expect(
            409,
            ErrorCode::ExchangeWithdrawInsufficientFunds,
            "two 5s from 8.99",
        );
        assert_eq!(answer.body["balance"], json!(kudos("8.99")));
        raw.post(
            &format!("reserves/{reserve_pub}/batch-withdraw"),
            &json!({ "planchets": [] }),
        )
        .await
        .expect(400, ErrorCode::GenericParameterMalformed, "empty batch");

        // Deposit.
        let c = contract();
        let good_deposit =
            serde_json::to_value(crate::wallet_v12::deposit(&c, &coin, kudos("1"))).unwrap();
        let deposit_path = format!("coins/{}/deposit", coin.coin_pub);
        for bad in bad_keys() {
            raw.post(&format!("coins/{bad}/deposit"), &good_deposit)
                .await
                .expect(400, ErrorCode::ExchangeGenericCoinsInvalidCoinPub, &bad);
        }
        let v23_sig = c.deposit(&[(&coin, kudos("1"))]).coins[0].coin_sig;
        let mut v23_layout = good_deposit.clone();
        v23_layout["coin_sig"] = json!(v23_sig);
        raw.post(&deposit_path, &v23_layout).await.expect(
            403,
            ErrorCode::ExchangeDepositCoinSignatureInvalid,
            "the v23 layout on the legacy face",
        );
        let mut v12_on_v23 = serde_json::to_value(c.deposit(&[(&coin, kudos("1"))])).unwrap();
        v12_on_v23["coins"][0]["coin_sig"] = good_deposit["coin_sig"].clone();
        Raw::new(world.exchange().base_url())
            .post("batch-deposit", &v12_on_v23)
            .await
            .expect(
                403,
                ErrorCode::ExchangeDepositCoinSignatureInvalid,
                "the v12 layout on the v23 face",
            );
        raw.post(&format!("coins/{}/deposit", b32(32, 5)), &good_deposit)
            .await
            .expect(
                403,
                ErrorCode::ExchangeDenominationSignatureInvalid,
                "the body of another coin",
            );
        for (what, field, value, code) in [
            (
                "above the coin's value",
                "contribution",
                json!("KUDOS:1.5"),
                ErrorCode::ExchangeGenericAmountExceedsDenominationValue,
            ),
            (
                "below the deposit fee",
                "contribution",
                json!("KUDOS:0.001"),
                ErrorCode::ExchangeDepositNegativeValueAfterFee,
            ),
            (
                "another currency",
                "contribution",
                json!("EUR:1"),
                ErrorCode::GenericJsonInvalid,
            ),
            (
                "refund deadline after the wire deadline",
                "refund_deadline",
                json!(c.wire_deadline.saturating_add(RelativeTime::from_secs(1))),
                ErrorCode::ExchangeDepositRefundDeadlineAfterWireDeadline,
            ),
            (
                "ub_sig a string",
                "ub_sig",
                json!("x"),
                ErrorCode::GenericJsonInvalid,
            ),
        ] {
            let mut body = good_deposit.clone();
            body[field] = value;
            let answer = raw.post(&deposit_path, &body).await;
            assert_eq!(
                answer.code(),
                Some(u64::from(code.code())),
                "{what}: {}",
                answer.body
            );
            assert_eq!(answer.status / 100, 4, "{what}");
        }

        // Refund.
        raw.post(
            &format!("coins/{}/refund", coin.coin_pub),
            &refund_body(&stranger, c.h_contract_terms, coin.coin_pub, 1, "0.5")
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("merchant_pub".into(), json!(c.merchant.public()));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeRefundMerchantSignatureInvalid,
            "signed by another merchant key",
        );
        raw.post(
            &format!("coins/{}/refund", b32(32, 4)),
            &refund_body(
                &c.merchant,
                c.h_contract_terms,
                cardcash_util::EddsaPublicKey::from_bytes([4; 32]),
                1,
                "0.5",
            ),
        )
        .await
        .expect(404, ErrorCode::ExchangeRefundCoinNotFound, "unknown coin");

        // Refresh: melt, reveal, link.
        let refresh = crate::wallet_v12::RefreshV12::prepare(&coin, std::slice::from_ref(one));
        let mut melt = serde_json::to_value(refresh.melt_request()).unwrap();
        let melt_path = format!("coins/{}/melt", coin.coin_pub);
        for bad in bad_keys() {
            raw.post(&format!("coins/{bad}/melt"), &melt).await.expect(
                400,
                ErrorCode::ExchangeGenericCoinsInvalidCoinPub,
                &bad,
            );
            raw.get(&format!("coins/{bad}/link")).await.expect(
                400,
                ErrorCode::ExchangeGenericCoinsInvalidCoinPub,
                &bad,
            );
        }
        raw.post_text(&melt_path, "{\"rc\":").await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "melt syntax",
        );
        melt["confirm_sig"] = json!(stranger.sign(&cardcash_crypto::purpose::Melt {
            rc: refresh.rc,
            h_denom_pub: coin.denom.h,
            h_age_commitment: [0; 32],
            amount_with_fee: refresh.amount_with_fee,
            melt_fee: coin.denom.fee_refresh,
        }));
        raw.post(&melt_path, &melt).await.expect(
            403,
            ErrorCode::ExchangeMeltCoinSignatureInvalid,
            "melt signed by another key",
        );
        let reveal = serde_json::to_value(refresh.reveal_request(0)).unwrap();
        for bad in bad_hashes() {
            raw.post(&format!("refreshes/{bad}/reveal"), &reveal)
                .await
                .expect(400, ErrorCode::ExchangeRefreshesRevealInvalidRch, &bad);
        }
        raw.post(&format!("refreshes/{}/reveal", refresh.rc), &reveal)
            .await
            .expect(
                404,
                ErrorCode::ExchangeRefreshesRevealSessionUnknown,
                "reveal of a melt never made",
            );
        raw.get(&format!("coins/{}/link", coin.coin_pub))
            .await
            .expect(
                404,
                ErrorCode::ExchangeLinkCoinUnknown,
                "link of a coin never melted",
            );

        // Routes the legacy face does not serve, and wrong methods.
        for path in ["batch-deposit", "config", "csr-withdraw", "management/keys"] {
            raw.get(path)
                .await
                .expect(404, ErrorCode::GenericEndpointUnknown, path);
        }
        for (method, path, allowed) in [
            (Method::POST, "keys".to_owned(), "GET"),
            (Method::POST, "wire".to_owned(), "GET"),
            (Method::GET, deposit_path.clone(), "POST"),
            (Method::GET, path.clone(), "POST"),
            (Method::DELETE, format!("reserves/{reserve_pub}"), "GET"),
            (Method::GET, melt_path.clone(), "POST"),
            (Method::POST, format!("coins/{}/link", coin.coin_pub), "GET"),
            (
                Method::GET,
                format!("refreshes/{}/reveal", refresh.rc),
                "POST",
            ),
        ] {
            let answer = raw.send(method.clone(), &path, &[], None).await;
            answer.expect(
                405,
                ErrorCode::GenericMethodInvalid,
                &format!("{method} {path}"),
            );
            assert!(answer.header("allow").unwrap_or_default().contains(allowed));
        }

        // Nothing changed, and the good requests still work.
        assert_eq!(sums(&world).await, before);
        audit_clean(&world).await;
        raw.post(&path, &good_json)
            .await
            .expect_ok(200, "the good planchet after the refusals");
        raw.post(&deposit_path, &good_deposit)
            .await
            .expect_ok(200, "the good deposit after the refusals");
        assert_eq!(balance(&world, &reserve_pub).await, kudos("7.98"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);
