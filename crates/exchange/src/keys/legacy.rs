//! The legacy face's `/keys` and `/wire` (protocol v12–14, wallets of late 2022), built once per
//! key snapshot beside the v23 body, from the same key material and the same online signing
//! key. Handlers serve the pre-serialised bytes.
//!
//! Shapes follow the 2022-12-19 C exchange (`14:0:2`, `taler-exchange-httpd_keys.c` and
//! `taler-exchange-httpd_wire.c`) and what wallet-core 0.9 parses and verifies
//! (`codecForExchangeKeysJson`, `isValidDenom`, `isValidWireAccount`, `isValidWireFee`,
//! `isValidGlobalFees`):
//! - `/keys`: the flat `denoms` (RSA only, `denom_pub` with `rsa_public_key` and `age_mask: 0`:
//!   the 2022 wallet cannot withdraw CS coins), walked from the latest start to the earliest
//!   (ties by hash), `list_issue_date` the earliest start; the 2022 grouped `denominations`
//!   (each group with `hash`, the XOR of its members' `h_denom_pub`); `eddsa_sig` (purpose
//!   1035 over `list_issue_date` and the SHA-512 of the `denoms`' `h_denom_pub`s in list
//!   order) and `denominations_sig` (1035 over `list_issue_date` and the XOR of the groups'
//!   hashes), both by `eddsa_pub`, the current signing key. A denomination whose private key is
//!   lost is listed only once its withdrawal period is over (a 2022 wallet cannot be told
//!   `lost`). No auditors.
//! - `/wire`: the active accounts that carry a v12 signature (purpose 1030 over the payto hash
//!   only, uploaded as `master_sig_wire_v12`) and take money (no `deny` credit restriction),
//!   the wire fees of their methods (1028) not yet
//!   over, and `master_public_key`. No such account is a 500 `EXCHANGE_WIRE_NO_ACCOUNTS_CONFIGURED`,
//!   a method without fees a 500 `EXCHANGE_WIRE_FEES_NOT_CONFIGURED`, as in 2022.

use std::collections::BTreeMap;
use std::sync::Arc;

use cardcash_api::exchange::v12::{
    self, Denomination, DenominationPublicKey, ExchangeKeysResponse, ExchangeWireResponse,
};
use cardcash_api::exchange::{
    AccountRestriction, DenominationGroup, DenominationGroupKeys, RsaDenomination, SignKey,
};
use cardcash_crypto::Sha512Hasher;
use cardcash_crypto::purpose::KeySet;
use cardcash_util::{Base32Bytes, BaseUrl, ErrorCode, HashCode, Timestamp};

use crate::config::ExchangeConfig;
use crate::db::{DenominationRow, KeyMaterial, SignkeyRow};
use crate::keys::store::{DenominationPublic, KeyStore};

/// The protocol version the legacy face announces: the 2022-12-19 C exchange's. Wallet-core 0.9
/// (`12:0:0`) accepts `c:r:a` iff `c - a <= 12 <= c`.
pub const LEGACY_PROTOCOL_VERSION: &str = "14:0:2";

/// The path the legacy face is served under, relative to the exchange's base URL.
pub const LEGACY_PATH: &str = "legacy/";

/// A pre-serialised response body with its strong validator.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Arc<[u8]>,
    pub etag: String,
}

impl Body {
    fn new(bytes: Vec<u8>) -> Self {
        let h = cardcash_crypto::sha512(&bytes);
        Self {
            etag: format!("\"{}\"", &h.to_string()[..26]),
            bytes: Arc::from(bytes),
        }
    }
}

/// Why a legacy body cannot be served: the code and hint of the refusal.
#[derive(Debug, Clone)]
pub struct NotReady {
    pub code: ErrorCode,
    pub hint: String,
}

/// The legacy face's `/keys` and `/wire` of one key snapshot.
#[derive(Debug, Clone)]
pub struct LegacyKeys {
    pub keys: Result<Body, NotReady>,
    pub wire: Result<Body, NotReady>,
}

fn not_ready(code: ErrorCode, hint: impl Into<String>) -> NotReady {
    NotReady {
        code,
        hint: hint.into(),
    }
}

/// The legacy face's base URL (`<base>legacy/`).
pub fn legacy_base_url(base_url: &BaseUrl) -> BaseUrl {
    base_url
        .join_base(LEGACY_PATH)
        .expect("a fixed relative path joins any base URL")
}

/// Builds both bodies at `now`. `signing_key` is the snapshot's current signing key.
pub fn build(
    config: &ExchangeConfig,
    base_url: &BaseUrl,
    material: &KeyMaterial,
    keystore: &KeyStore,
    signing_key: Option<&SignkeyRow>,
    now: Timestamp,
) -> LegacyKeys {
    LegacyKeys {
        keys: build_keys(config, base_url, material, keystore, signing_key, now),
        wire: build_wire(config, material, now),
    }
}

fn build_keys(
    config: &ExchangeConfig,
    base_url: &BaseUrl,
    material: &KeyMaterial,
    keystore: &KeyStore,
    signing_key: Option<&SignkeyRow>,
    now: Timestamp,
) -> Result<Body, NotReady> {
    let missing = |why: &str| not_ready(ErrorCode::ExchangeGenericKeysMissing, why);
    let master = config
        .master_public_key
        .ok_or_else(|| missing("MASTER_PUBLIC_KEY is not configured"))?;
    let signkey = signing_key.ok_or_else(|| {
        missing("no online signing key is signed by the master key and valid now")
    })?;
    let mut listed: Vec<&DenominationRow> = material
        .denominations
        .iter()
        .filter(|d| matches!(d.public, DenominationPublic::Rsa(_)))
        .filter(|d| d.revocation.is_none() && d.stamp_expire_deposit > now)
        .filter(|d| {
            keystore.denomination(&d.h_denom_pub).is_some() || d.stamp_expire_withdraw <= now
        })
        .collect();
    listed.sort_by(|a, b| {
        b.stamp_start
            .cmp(&a.stamp_start)
            .then(a.h_denom_pub.cmp(&b.h_denom_pub))
    });
    if listed.is_empty() {
        return Err(missing("no RSA denomination is signed by the master key"));
    }
    let list_issue_date = listed
        .iter()
        .map(|d| d.stamp_start)
        .min()
        .unwrap_or(now)
        .round_down_to_secs();

    let mut denoms = Vec::with_capacity(listed.len());
    let mut flat_hash = Sha512Hasher::new();
    let mut groups: Vec<v12::DenominationGroup> = Vec::new();
    for d in &listed {
        let DenominationPublic::Rsa(key) = &d.public else {
            continue;
        };
        let encoded = Base32Bytes::from_bytes(key.encode());
        denoms.push(Denomination {
            value: d.value,
            denom_pub: DenominationPublicKey::Rsa {
                rsa_public_key: encoded.clone(),
                age_mask: 0,
            },
            fee_withdraw: d.fee_withdraw,
            fee_deposit: d.fee_deposit,
            fee_refresh: d.fee_refresh,
            fee_refund: d.fee_refund,
            stamp_start: d.stamp_start,
            stamp_expire_withdraw: d.stamp_expire_withdraw,
            stamp_expire_deposit: d.stamp_expire_deposit,
            stamp_expire_legal: d.stamp_expire_legal,
            master_sig: d.master_sig,
        });
        flat_hash.update(d.h_denom_pub.as_bytes());
        let member = RsaDenomination {
            rsa_pub: encoded,
            master_sig: d.master_sig,
            stamp_start: d.stamp_start,
            stamp_expire_withdraw: d.stamp_expire_withdraw,
            stamp_expire_deposit: d.stamp_expire_deposit,
            stamp_expire_legal: d.stamp_expire_legal,
            lost: false,
        };
        let same = |g: &&mut v12::DenominationGroup| {
            g.group.value == d.value
                && g.group.fee_withdraw == d.fee_withdraw
                && g.group.fee_deposit == d.fee_deposit
                && g.group.fee_refresh == d.fee_refresh
                && g.group.fee_refund == d.fee_refund
        };
        match groups.iter_mut().find(same) {
            Some(g) => {
                g.hash = xor(&g.hash, &d.h_denom_pub);
                if let DenominationGroupKeys::Rsa { denoms } = &mut g.group.keys {
                    denoms.push(member);
                }
            }
            None => groups.push(v12::DenominationGroup {
                group: DenominationGroup {
                    value: d.value,
                    fee_withdraw: d.fee_withdraw,
                    fee_deposit: d.fee_deposit,
                    fee_refresh: d.fee_refresh,
                    fee_refund: d.fee_refund,
                    keys: DenominationGroupKeys::Rsa {
                        denoms: vec![member],
                    },
                },
                hash: d.h_denom_pub,
            }),
        }
    }
    let grouped_hash = groups
        .iter()
        .fold(HashCode::from_bytes([0; 64]), |acc, g| xor(&acc, &g.hash));
    let sign = |hc: HashCode| {
        keystore
            .sign_with(
                &signkey.exchange_pub,
                &KeySet {
                    list_issue_date,
                    hc,
                },
            )
            .ok_or_else(|| missing("the signing key's private key is missing"))
    };
    let eddsa_sig = sign(flat_hash.finalize())?;
    let denominations_sig = sign(grouped_hash)?;
    let response = ExchangeKeysResponse {
        version: LEGACY_PROTOCOL_VERSION.into(),
        base_url: Some(legacy_base_url(base_url).to_string()),
        currency: Some(config.currency.to_string()),
        asset_type: Some("fiat".into()),
        master_public_key: master,
        reserve_closing_delay: config.reserve_closing_delay,
        signkeys: material
            .signkeys
            .iter()
            .filter(|k| k.revocation.is_none() && k.stamp_end > now)
            .map(|k| SignKey {
                key: k.exchange_pub,
                stamp_start: k.stamp_start,
                stamp_expire: k.stamp_expire,
                stamp_end: k.stamp_end,
                master_sig: k.master_sig,
            })
            .collect(),
        recoup: super::state::recoup_list(material, now),
        denoms,
        denominations: groups,
        auditors: Vec::new(),
        global_fees: super::state::global_fees(material, now),
        list_issue_date,
        eddsa_pub: Some(signkey.exchange_pub),
        eddsa_sig: Some(eddsa_sig),
        denominations_sig: Some(denominations_sig),
    };
    serde_json::to_vec(&response).map(Body::new).map_err(|e| {
        not_ready(
            ErrorCode::GenericInternalInvariantFailure,
            format!("cannot serialise the legacy /keys: {e}"),
        )
    })
}

fn build_wire(
    config: &ExchangeConfig,
    material: &KeyMaterial,
    now: Timestamp,
) -> Result<Body, NotReady> {
    let master = config.master_public_key.ok_or_else(|| {
        not_ready(
            ErrorCode::ExchangeGenericKeysMissing,
            "MASTER_PUBLIC_KEY is not configured",
        )
    })?;
    let mut accounts = Vec::new();
    let mut fees: BTreeMap<String, Vec<v12::WireFee>> = BTreeMap::new();
    // v12 has no restrictions: an account that takes no money (`credit_restrictions` with a
    // `deny`, e.g. a debit-only account) is not listed, or a 2022 wallet might pay into it.
    let takes_money = |a: &&crate::db::WireAccountRow| {
        serde_json::from_str::<Vec<AccountRestriction>>(&a.credit_restrictions)
            .is_ok_and(|r| !r.iter().any(|r| matches!(r, AccountRestriction::Deny)))
    };
    for a in material
        .accounts
        .iter()
        .filter(|a| a.is_active)
        .filter(takes_money)
    {
        let (Some(master_sig), Ok(payto_uri)) = (
            a.master_sig_wire_v12,
            a.payto_uri.parse::<cardcash_util::PaytoUri>(),
        ) else {
            continue;
        };
        let method = payto_uri.target_type().to_owned();
        accounts.push(v12::WireAccount {
            payto_uri,
            master_sig,
        });
        if fees.contains_key(&method) {
            continue;
        }
        let of_method: Vec<v12::WireFee> = material
            .wire_fees
            .iter()
            .filter(|f| f.wire_method == method && f.end > now)
            .map(|f| v12::WireFee {
                wire_fee: f.wire_fee,
                closing_fee: f.closing_fee,
                wad_fee: None,
                start_date: f.start,
                end_date: f.end,
                sig: f.master_sig,
            })
            .collect();
        if of_method.is_empty() {
            return Err(not_ready(
                ErrorCode::ExchangeWireFeesNotConfigured,
                format!("no wire fees for {method}"),
            ));
        }
        fees.insert(method, of_method);
    }
    if accounts.is_empty() {
        return Err(not_ready(
            ErrorCode::ExchangeWireNoAccountsConfigured,
            "no account is enabled with a v12 signature (master_sig_wire_v12)",
        ));
    }
    let response = ExchangeWireResponse {
        accounts,
        fees,
        master_public_key: Some(master),
    };
    serde_json::to_vec(&response).map(Body::new).map_err(|e| {
        not_ready(
            ErrorCode::GenericInternalInvariantFailure,
            format!("cannot serialise the legacy /wire: {e}"),
        )
    })
}

fn xor(a: &HashCode, b: &HashCode) -> HashCode {
    let mut out = [0u8; 64];
    for (o, (x, y)) in out.iter_mut().zip(a.as_bytes().iter().zip(b.as_bytes())) {
        *o = x ^ y;
    }
    HashCode::from_bytes(out)
}
