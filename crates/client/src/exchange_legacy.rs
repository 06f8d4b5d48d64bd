//! Client of an exchange's face for wallets of late 2022 (protocol v12–14: wallet-core 0.9 and
//! the C exchange `14:0:2`; our exchange serves it under `<base URL>legacy/`), and the checks
//! wallet-core 0.9 makes before it trusts such an exchange ([`verify_keys_v12`]). The wire types
//! are `cardcash_api::exchange::v12`; refusals are [`ClientError`]s as for the v23 client.

use std::time::Duration;

use cardcash_api::exchange::v12::{
    BatchWithdrawRequest, BatchWithdrawResponse, DenominationPublicKey, DepositRequest,
    DepositResponse, ExchangeKeysResponse, ExchangeWireResponse, LinkResponse, MeltRequest,
    MeltResponse, ReserveStatusResponse, RevealRequest, RevealResponse, WithdrawRequest,
    WithdrawResponse,
};
use cardcash_api::exchange::{DenominationGroupKeys, RefundRequest, RefundResponse};
use cardcash_crypto::purpose::{
    DenominationValidity, GlobalFees, KeySet, SigningKeyValidity, WireAccountV12, WireFee,
};
use cardcash_util::{BaseUrl, EddsaPublicKey, HashCode};

use crate::error::ClientError;
use crate::exchange_route as route;
use crate::http::{Auth, Endpoint, HttpClient};

/// A client of one exchange's legacy face; `base` is the face's own base URL (for our exchange
/// `<base URL>legacy/`).
#[derive(Debug, Clone)]
pub struct LegacyExchangeClient {
    endpoint: Endpoint,
}

impl LegacyExchangeClient {
    /// A client of the legacy face at `base` with its own pool.
    pub fn new(base: BaseUrl) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl) -> Self {
        Self {
            endpoint: Endpoint::new(http, "the exchange (legacy face)", base, Auth::None),
        }
    }

    /// The face's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// `GET /keys` (flat `denoms`), read with
    /// [`KEYS_MAX_RESPONSE_BYTES`](crate::exchange::KEYS_MAX_RESPONSE_BYTES) as the bound.
    pub async fn keys(&self) -> Result<ExchangeKeysResponse, ClientError> {
        route::keys(&self.endpoint).await
    }

    /// `GET /wire`: the accounts (v12 signatures) and wire fees.
    pub async fn wire(&self) -> Result<ExchangeWireResponse, ClientError> {
        self.endpoint.get(&["wire"]).json_response().await
    }

    /// `GET /reserves/$RESERVE_PUB[?timeout_ms=…]`; an unknown reserve is a 404
    /// `EXCHANGE_RESERVES_STATUS_UNKNOWN`.
    pub async fn reserve(
        &self,
        reserve_pub: &EddsaPublicKey,
        timeout: Duration,
    ) -> Result<ReserveStatusResponse, ClientError> {
        route::reserve(&self.endpoint, reserve_pub, timeout).await
    }

    /// `POST /reserves/$RESERVE_PUB/withdraw`: one coin.
    pub async fn withdraw(
        &self,
        reserve_pub: &EddsaPublicKey,
        request: &WithdrawRequest,
    ) -> Result<WithdrawResponse, ClientError> {
        route::post_reserve(&self.endpoint, reserve_pub, "withdraw", request).await
    }

    /// `POST /reserves/$RESERVE_PUB/batch-withdraw`.
    pub async fn batch_withdraw(
        &self,
        reserve_pub: &EddsaPublicKey,
        request: &BatchWithdrawRequest,
    ) -> Result<BatchWithdrawResponse, ClientError> {
        route::post_reserve(&self.endpoint, reserve_pub, "batch-withdraw", request).await
    }

    /// `POST /coins/$COIN_PUB/deposit`: one coin (v12 signatures).
    pub async fn deposit(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &DepositRequest,
    ) -> Result<DepositResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "deposit", request).await
    }

    /// `POST /coins/$COIN_PUB/melt`.
    pub async fn melt(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &MeltRequest,
    ) -> Result<MeltResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "melt", request).await
    }

    /// `POST /refreshes/$RC/reveal`.
    pub async fn reveal(
        &self,
        rc: &HashCode,
        request: &RevealRequest,
    ) -> Result<RevealResponse, ClientError> {
        route::reveal(&self.endpoint, rc, request).await
    }

    /// `GET /coins/$COIN_PUB/link`.
    pub async fn link(&self, coin_pub: &EddsaPublicKey) -> Result<LinkResponse, ClientError> {
        route::link(&self.endpoint, coin_pub).await
    }

    /// `POST /coins/$COIN_PUB/refund`.
    pub async fn refund(
        &self,
        coin_pub: &EddsaPublicKey,
        request: &RefundRequest,
    ) -> Result<RefundResponse, ClientError> {
        route::post_coin(&self.endpoint, coin_pub, "refund", request).await
    }
}

/// What in a legacy `/keys` or `/wire` does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyKeysError {
    #[error("the exchange's master key is {found}, not the expected {expected}")]
    WrongMaster {
        expected: EddsaPublicKey,
        found: EddsaPublicKey,
    },
    #[error("no denominations")]
    NoDenominations,
    #[error("the protocol version {0} is not one wallet-core 0.9 (12:0:0) accepts")]
    Version(String),
    #[error("denomination {0}: its key does not decode, or it is not RSA without age restriction")]
    BadDenominationKey(usize),
    #[error("denomination {0}: the master signature is invalid")]
    Denomination(HashCode),
    #[error("signing key {0}: the master signature is invalid")]
    SigningKey(EddsaPublicKey),
    #[error("global fees from {0}: the master signature is invalid")]
    GlobalFees(u64),
    #[error("account {0}: the master signature (v12 layout) is invalid")]
    Account(String),
    #[error("wire fee of {0} from {1}: the master signature is invalid")]
    WireFee(String, u64),
    #[error("the key set signature ({0}) is missing or invalid")]
    KeySet(&'static str),
}

/// Checks a legacy face's `/keys` and `/wire` as wallet-core 0.9 does before it uses the
/// exchange (`updateExchangeFromUrlHandler`: the version, every denomination's 1025 from `denoms`
/// with the hash it computes itself, the 1022 of the global fees, the 1030 of every account in
/// the v12 layout and the 1028 of every wire fee), plus what the 2022 C clients check and the
/// wallet does not: the signing keys' 1024 and the two 1035 key-set signatures (`eddsa_sig`
/// over the `denoms`' hashes in order, `denominations_sig` over the XOR of the groups' hashes).
/// Returns each `denoms` entry's hash in order.
pub fn verify_keys_v12(
    keys: &ExchangeKeysResponse,
    wire: &ExchangeWireResponse,
    expected_master: Option<&EddsaPublicKey>,
) -> Result<Vec<HashCode>, LegacyKeysError> {
    let master = keys.master_public_key;
    if let Some(expected) = expected_master
        && *expected != master
    {
        return Err(LegacyKeysError::WrongMaster {
            expected: *expected,
            found: master,
        });
    }
    let version: cardcash_util::LibtoolVersion = keys
        .version
        .parse()
        .map_err(|_| LegacyKeysError::Version(keys.version.clone()))?;
    if !(version.current >= 12 && version.current - version.age.min(version.current) <= 12) {
        return Err(LegacyKeysError::Version(keys.version.clone()));
    }
    if keys.denoms.is_empty() {
        return Err(LegacyKeysError::NoDenominations);
    }
    let mut hashes = Vec::with_capacity(keys.denoms.len());
    for (i, d) in keys.denoms.iter().enumerate() {
        let DenominationPublicKey::Rsa {
            rsa_public_key,
            age_mask: 0,
        } = &d.denom_pub
        else {
            return Err(LegacyKeysError::BadDenominationKey(i));
        };
        let h = cardcash_crypto::rsa::RsaPublicKey::decode(rsa_public_key.as_bytes())
            .map_err(|_| LegacyKeysError::BadDenominationKey(i))?
            .h_denom_pub(0);
        let validity = DenominationValidity {
            master_pub: master,
            start: d.stamp_start,
            expire_withdraw: d.stamp_expire_withdraw,
            expire_deposit: d.stamp_expire_deposit,
            expire_legal: d.stamp_expire_legal,
            value: d.value,
            fee_withdraw: d.fee_withdraw,
            fee_deposit: d.fee_deposit,
            fee_refresh: d.fee_refresh,
            fee_refund: d.fee_refund,
            h_denom_pub: h,
        };
        cardcash_crypto::verify(&master, &d.master_sig, &validity)
            .map_err(|_| LegacyKeysError::Denomination(h))?;
        hashes.push(h);
    }
    for k in &keys.signkeys {
        let validity = SigningKeyValidity {
            start: k.stamp_start,
            expire: k.stamp_expire,
            end: k.stamp_end,
            signkey_pub: k.key,
        };
        cardcash_crypto::verify(&master, &k.master_sig, &validity)
            .map_err(|_| LegacyKeysError::SigningKey(k.key))?;
    }
    for f in &keys.global_fees {
        let message = GlobalFees {
            start: f.start_date,
            end: f.end_date,
            purse_timeout: f.purse_timeout,
            history_expiration: f.history_expiration,
            history_fee: f.history_fee,
            account_fee: f.account_fee,
            purse_fee: f.purse_fee,
            purse_account_limit: f.purse_account_limit,
        };
        cardcash_crypto::verify(&master, &f.master_sig, &message)
            .map_err(|_| LegacyKeysError::GlobalFees(f.start_date.as_secs()))?;
    }
    for a in &wire.accounts {
        let payto = a.payto_uri.to_string();
        let message = WireAccountV12 {
            h_payto: cardcash_crypto::h_payto(&payto),
        };
        cardcash_crypto::verify(&master, &a.master_sig, &message)
            .map_err(|_| LegacyKeysError::Account(payto.clone()))?;
    }
    for (method, fees) in &wire.fees {
        for f in fees {
            let message = WireFee::new(method, f.start_date, f.end_date, f.wire_fee, f.closing_fee);
            cardcash_crypto::verify(&master, &f.sig, &message)
                .map_err(|_| LegacyKeysError::WireFee(method.clone(), f.start_date.as_secs()))?;
        }
    }
    // What the 2022 C clients check beyond the wallet.
    let signer = keys
        .eddsa_pub
        .filter(|p| keys.signkeys.iter().any(|k| k.key == *p))
        .ok_or(LegacyKeysError::KeySet("eddsa_pub"))?;
    let mut flat = cardcash_crypto::Sha512Hasher::new();
    for h in &hashes {
        flat.update(h.as_bytes());
    }
    let key_set = |hc| KeySet {
        list_issue_date: keys.list_issue_date,
        hc,
    };
    let eddsa_sig = keys.eddsa_sig.ok_or(LegacyKeysError::KeySet("eddsa_sig"))?;
    cardcash_crypto::verify(&signer, &eddsa_sig, &key_set(flat.finalize()))
        .map_err(|_| LegacyKeysError::KeySet("eddsa_sig"))?;
    let mut grouped = [0u8; 64];
    for g in &keys.denominations {
        let DenominationGroupKeys::Rsa { denoms } = &g.group.keys else {
            return Err(LegacyKeysError::KeySet("denominations"));
        };
        let mut xor = [0u8; 64];
        for d in denoms {
            let h = cardcash_crypto::rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes())
                .map_err(|_| LegacyKeysError::KeySet("denominations"))?
                .h_denom_pub(0);
            for (x, y) in xor.iter_mut().zip(h.as_bytes()) {
                *x ^= y;
            }
        }
        if &xor != g.hash.as_bytes() {
            return Err(LegacyKeysError::KeySet("denominations (group hash)"));
        }
        for (x, y) in grouped.iter_mut().zip(xor.iter()) {
            *x ^= y;
        }
    }
    let denominations_sig = keys
        .denominations_sig
        .ok_or(LegacyKeysError::KeySet("denominations_sig"))?;
    cardcash_crypto::verify(
        &signer,
        &denominations_sig,
        &key_set(HashCode::from_bytes(grouped)),
    )
    .map_err(|_| LegacyKeysError::KeySet("denominations_sig"))?;
    Ok(hashes)
}
