//! The exchanges the merchant trusts (`[merchant-exchange-*]`) and what it knows of them: each
//! one's `/keys`, fetched with `cardcash_client::ExchangeClient`, verified against the
//! configured master key (`cardcash_client::verify_keys`: every denomination, signing key and
//! account signed by the master key, the key set by a listed signing key) and cached. The cache
//! is refreshed when it is older than [`KEYS_MAX_AGE`], and at once (at most every
//! [`MIN_REFETCH`]) when a payment names a denomination or an exchange signing key it does not
//! list — the exchange may have made new keys since. One fetch at a time per exchange: a
//! request that finds a fetch under way waits for its result.
//!
//! An exchange answer that cannot be trusted (keys that do not verify, a master key other than
//! the configured one) is `502 MERCHANT_GENERIC_EXCHANGE_KEYS_FAILURE`; an exchange that does
//! not answer is [`exchange_unavailable`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cardcash_api::exchange::{DenominationGroupKeys, ExchangeKeysResponse, SignKey, WireFee};
use cardcash_client::{ClientError, ErrorKind, ExchangeClient, HttpClient, LegacyExchangeClient};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, ErrorCode, HashCode, Timestamp};
use serde_json::json;
use tokio::sync::Mutex;

use crate::config::TrustedExchange;
use crate::error::MerchantError;

/// Keys older than this are fetched again before use.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown denomination or signing key triggers a new fetch, but not more often than this.
pub const MIN_REFETCH: Duration = Duration::from_secs(2);

/// One denomination as the merchant needs it: its value, fees and deposit validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denomination {
    pub h_denom: HashCode,
    pub value: Amount,
    pub fee_deposit: Amount,
    pub fee_refund: Amount,
    pub stamp_start: Timestamp,
    pub stamp_expire_deposit: Timestamp,
    /// `true` for RSA, `false` for CS.
    pub rsa: bool,
}

/// An exchange's verified `/keys`, as the merchant uses them.
#[derive(Debug)]
pub struct ExchangeKeys {
    pub base_url: BaseUrl,
    pub master_pub: EddsaPublicKey,
    pub denominations: HashMap<HashCode, Denomination>,
    pub signkeys: Vec<SignKey>,
    pub wire_fees: BTreeMap<String, Vec<WireFee>>,
    /// The exchange speaks protocol v12–14 (its legacy face): coins sign and deposit in the v12
    /// layouts ([`crate::legacy`]).
    pub legacy: bool,
    fetched: Instant,
}

impl ExchangeKeys {
    /// Verifies `keys` against `master` and indexes them.
    pub fn verify(
        keys: &ExchangeKeysResponse,
        master: &EddsaPublicKey,
    ) -> Result<ExchangeKeys, cardcash_client::KeysError> {
        let hashes = cardcash_client::verify_keys(keys, Some(master))?;
        let mut denominations = HashMap::with_capacity(hashes.len());
        let mut next = hashes.into_iter();
        for group in &keys.denominations {
            let stamps: Vec<(Timestamp, Timestamp)> = match &group.keys {
                DenominationGroupKeys::Rsa { denoms }
                | DenominationGroupKeys::RsaAgeRestricted { denoms, .. } => denoms
                    .iter()
                    .map(|d| (d.stamp_start, d.stamp_expire_deposit))
                    .collect(),
                DenominationGroupKeys::Cs { denoms }
                | DenominationGroupKeys::CsAgeRestricted { denoms, .. } => denoms
                    .iter()
                    .map(|d| (d.stamp_start, d.stamp_expire_deposit))
                    .collect(),
            };
            let rsa = matches!(
                group.keys,
                DenominationGroupKeys::Rsa { .. } | DenominationGroupKeys::RsaAgeRestricted { .. }
            );
            for (start, expire_deposit) in stamps {
                let Some(h) = next.next() else { break };
                denominations.insert(
                    h,
                    Denomination {
                        h_denom: h,
                        value: group.value,
                        fee_deposit: group.fee_deposit,
                        fee_refund: group.fee_refund,
                        stamp_start: start,
                        stamp_expire_deposit: expire_deposit,
                        rsa,
                    },
                );
            }
        }
        Ok(ExchangeKeys {
            base_url: keys.base_url.clone(),
            master_pub: keys.master_public_key,
            denominations,
            signkeys: keys.signkeys.clone(),
            wire_fees: keys.wire_fees.clone(),
            legacy: false,
            fetched: Instant::now(),
        })
    }

    /// Keys of a legacy face, verified by [`crate::legacy::fetch_keys`].
    pub(crate) fn legacy(
        base_url: BaseUrl,
        master_pub: EddsaPublicKey,
        denominations: HashMap<HashCode, Denomination>,
        signkeys: Vec<SignKey>,
        wire_fees: BTreeMap<String, Vec<WireFee>>,
    ) -> Self {
        ExchangeKeys {
            base_url,
            master_pub,
            denominations,
            signkeys,
            wire_fees,
            legacy: true,
            fetched: Instant::now(),
        }
    }

    /// Whether `key` is a signing key of the exchange valid at `at` (the exchange's own
    /// timestamp of what it signed).
    pub fn signkey_valid(&self, key: &EddsaPublicKey, at: Timestamp) -> bool {
        self.signkeys
            .iter()
            .any(|k| &k.key == key && k.stamp_start <= at && at <= k.stamp_end)
    }

    /// The wire fee of `method` at `at`, if the exchange set one.
    pub fn wire_fee(&self, method: &str, at: Timestamp) -> Option<Amount> {
        self.wire_fees
            .get(method)?
            .iter()
            .find(|f| f.start_date <= at && at < f.end_date)
            .map(|f| f.wire_fee)
    }
}

struct Entry {
    trusted: TrustedExchange,
    client: ExchangeClient,
    /// The same base URL spoken to in protocol v12 (used when its `/keys` is a legacy face's).
    legacy_client: LegacyExchangeClient,
    /// The cache; the lock is held across a fetch, so concurrent requests share it.
    keys: Mutex<Option<Arc<ExchangeKeys>>>,
}

/// The trusted exchanges and their cached keys; cheap to clone.
#[derive(Clone)]
pub struct Exchanges {
    entries: Arc<HashMap<BaseUrl, Arc<Entry>>>,
}

impl std::fmt::Debug for Exchanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Exchanges {
    /// The exchanges of the configuration, talked to over `http`.
    pub fn new(trusted: &[TrustedExchange], http: &HttpClient) -> Self {
        let entries = trusted
            .iter()
            .map(|t| {
                let client = ExchangeClient::with_http(http.clone(), t.base_url.clone());
                let legacy_client =
                    LegacyExchangeClient::with_http(http.clone(), t.base_url.clone());
                (
                    t.base_url.clone(),
                    Arc::new(Entry {
                        trusted: t.clone(),
                        client,
                        legacy_client,
                        keys: Mutex::new(None),
                    }),
                )
            })
            .collect();
        Self {
            entries: Arc::new(entries),
        }
    }

    /// The trusted exchange at `url`, if it is one.
    pub fn trusted(&self, url: &BaseUrl) -> Option<&TrustedExchange> {
        self.entries.get(url).map(|e| &e.trusted)
    }

    fn entry(&self, url: &BaseUrl) -> Result<&Arc<Entry>, MerchantError> {
        self.entries.get(url).ok_or_else(|| untrusted(url))
    }

    /// A client of the trusted exchange at `url`.
    pub fn client(&self, url: &BaseUrl) -> Result<ExchangeClient, MerchantError> {
        Ok(self.entry(url)?.client.clone())
    }

    /// A protocol-v12 client of the trusted exchange at `url` (for a legacy face).
    pub(crate) fn legacy_client(
        &self,
        url: &BaseUrl,
    ) -> Result<LegacyExchangeClient, MerchantError> {
        Ok(self.entry(url)?.legacy_client.clone())
    }

    /// The exchange's verified keys: the cached ones unless older than [`KEYS_MAX_AGE`].
    pub async fn keys(&self, url: &BaseUrl) -> Result<Arc<ExchangeKeys>, MerchantError> {
        let entry = self.entry(url)?;
        let mut cached = entry.keys.lock().await;
        if let Some(keys) = cached.as_ref()
            && keys.fetched.elapsed() < KEYS_MAX_AGE
        {
            return Ok(keys.clone());
        }
        let fresh = fetch(entry).await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Keys fetched again unless the cached ones are younger than [`MIN_REFETCH`] (something
    /// was not in them: a new denomination or signing key).
    async fn refetch(&self, url: &BaseUrl) -> Result<Arc<ExchangeKeys>, MerchantError> {
        let entry = self.entry(url)?;
        let mut cached = entry.keys.lock().await;
        if let Some(keys) = cached.as_ref()
            && keys.fetched.elapsed() < MIN_REFETCH
        {
            return Ok(keys.clone());
        }
        let fresh = fetch(entry).await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Keys that list every denomination of `h_denoms` if the exchange has them: the cached
    /// keys, fetched again once when one is missing.
    pub async fn keys_with_denominations(
        &self,
        url: &BaseUrl,
        h_denoms: impl IntoIterator<Item = &HashCode> + Clone,
    ) -> Result<Arc<ExchangeKeys>, MerchantError> {
        let keys = self.keys(url).await?;
        if h_denoms
            .clone()
            .into_iter()
            .all(|h| keys.denominations.contains_key(h))
        {
            return Ok(keys);
        }
        self.refetch(url).await
    }

    /// Keys that list `signkey` as valid at `at`, if the exchange has it: the cached keys,
    /// fetched again once when it is missing.
    pub async fn keys_with_signkey(
        &self,
        url: &BaseUrl,
        signkey: &EddsaPublicKey,
        at: Timestamp,
    ) -> Result<Arc<ExchangeKeys>, MerchantError> {
        let keys = self.keys(url).await?;
        if keys.signkey_valid(signkey, at) {
            return Ok(keys);
        }
        self.refetch(url).await
    }
}

async fn fetch(entry: &Entry) -> Result<Arc<ExchangeKeys>, MerchantError> {
    let response = match entry.client.keys().await {
        Ok(response) => response,
        // Not a v23 `/keys`: perhaps a legacy face (protocol v12–14).
        Err(e) if matches!(e.kind(), ErrorKind::Malformed { .. }) => {
            return crate::legacy::fetch_keys(&entry.legacy_client, &entry.trusted)
                .await
                .map(Arc::new);
        }
        Err(e) => return Err(exchange_unavailable(&e)),
    };
    if response.currency != entry.trusted.currency {
        return Err(keys_failure(
            &entry.trusted.base_url,
            format!(
                "the exchange's currency is {}, not {}",
                response.currency, entry.trusted.currency
            ),
        ));
    }
    let keys = ExchangeKeys::verify(&response, &entry.trusted.master_pub)
        .map_err(|e| keys_failure(&entry.trusted.base_url, e.to_string()))?;
    tracing::debug!(exchange = %entry.trusted.base_url, denominations = keys.denominations.len(), "exchange keys fetched");
    Ok(Arc::new(keys))
}

/// 400 `MERCHANT_GENERIC_EXCHANGE_UNTRUSTED`: coins of an exchange not in the configuration.
pub fn untrusted(url: &BaseUrl) -> MerchantError {
    MerchantError::refused_with(
        ErrorCode::MerchantGenericExchangeUntrusted,
        format!("the exchange {url} is not trusted by this merchant"),
        json!({ "exchange_url": url }),
    )
}

fn keys_failure(url: &BaseUrl, why: String) -> MerchantError {
    MerchantError::refused_with(
        ErrorCode::MerchantGenericExchangeKeysFailure,
        format!("the keys of the exchange cannot be used: {why}"),
        json!({ "exchange_url": url }),
    )
}

/// An exchange that did not answer usefully: 504 `MERCHANT_GENERIC_EXCHANGE_TIMEOUT` when it
/// took too long, 502 `MERCHANT_GENERIC_EXCHANGE_CONNECT_FAILURE` when it cannot be reached,
/// 502 `MERCHANT_GENERIC_EXCHANGE_REPLY_MALFORMED` for an answer that is not what the
/// protocol says, 502 `MERCHANT_GENERIC_EXCHANGE_UNEXPECTED_STATUS` (with the exchange's
/// status, code and reply) for a refusal the caller did not expect.
pub fn exchange_unavailable(e: &ClientError) -> MerchantError {
    let url = e.url().to_owned();
    match e.kind() {
        ErrorKind::Timeout(_) => MerchantError::refused_status(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::MerchantGenericExchangeTimeout,
            format!("the exchange did not answer in time ({url})"),
        ),
        ErrorKind::Unreachable(_) | ErrorKind::InvalidRequest(_) => MerchantError::refused_status(
            StatusCode::BAD_GATEWAY,
            ErrorCode::MerchantGenericExchangeConnectFailure,
            format!("the exchange cannot be reached ({url})"),
        ),
        ErrorKind::Malformed { .. } | ErrorKind::ResponseTooLarge { .. } => MerchantError::refused(
            ErrorCode::MerchantGenericExchangeReplyMalformed,
            format!("the exchange's answer is malformed ({url})"),
        ),
        _ => MerchantError::refused_with(
            ErrorCode::MerchantGenericExchangeUnexpectedStatus,
            format!("the exchange answered {}", e.status().unwrap_or(0)),
            exchange_reply(e),
        ),
    }
}

/// `{exchange_http_status, exchange_code?, exchange_hint?, exchange_reply?}` of a refusal, as
/// the C merchant passes an exchange's error on.
pub fn exchange_reply(e: &ClientError) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "exchange_http_status".into(),
        json!(e.status().unwrap_or(0)),
    );
    if let Some(code) = e.code() {
        m.insert("exchange_code".into(), json!(code));
    }
    if let Some(hint) = e.hint() {
        m.insert("exchange_hint".into(), json!(hint));
    }
    if let Some(body) = e.body() {
        m.insert("exchange_reply".into(), body.clone());
    }
    serde_json::Value::Object(m)
}
