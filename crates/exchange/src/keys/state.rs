//! The key state: what the master key signed (from the database), joined with the private
//! keys the key store holds, as one immutable snapshot. Handlers look denominations up here and
//! `/keys` is served from the snapshot's pre-serialised body. A snapshot is rebuilt when key
//! material changes (store notification `keys`) and when the next key becomes valid or expires
//! (its `expires` time); readers never wait for a rebuild.
//!
//! `/keys` follows the v23 C exchange (`taler-exchange-httpd_keys.c`): denominations grouped by
//! cipher, value and fees, walked from the latest start time to the earliest; `list_issue_date`
//! is the earliest start among them; `exchange_sig` (purpose 1035) covers the hash over the
//! listed denominations' master signatures in response order and is made with the current
//! online signing key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use cardcash_api::common::CurrencySpecification;
use cardcash_api::exchange::{
    CsDenomination, CsPoint, DenominationGroup, DenominationGroupKeys, EXCHANGE_PROTOCOL_VERSION,
    ExchangeKeysResponse, GlobalFee, Recoup, RsaDenomination, SignKey, WireAccount, WireFee,
};
use cardcash_crypto::purpose::KeySet;
use cardcash_util::{Base32Bytes, BaseUrl, HashCode, Timestamp};

use crate::config::ExchangeConfig;
use crate::db::{DenominationRow, KeyMaterial, SignkeyRow, WireFeeRow};
use crate::keys::store::{DenominationPublic, KeyStore};

/// One consistent view of the exchange's keys.
#[derive(Debug)]
pub struct KeySnapshot {
    /// When it was built.
    pub built_at: Timestamp,
    /// The serialised `/keys` body, or `None` when the exchange cannot serve `/keys` yet (no
    /// master key configured, no signed denomination or no usable signing key).
    pub keys_body: Option<Arc<[u8]>>,
    /// Why `keys_body` is `None`.
    pub not_ready: Option<String>,
    /// Strong validator of `keys_body`.
    pub etag: String,
    /// When this snapshot stops being right (the next start or end of a listed key).
    pub expires: Timestamp,
    /// Every signed denomination by hash (also the expired and revoked ones: handlers decide).
    pub denominations: HashMap<HashCode, DenominationRow>,
    /// The signing key to sign responses with now.
    pub signing_key: Option<SignkeyRow>,
    /// Wire fees by method, sorted by start.
    pub wire_fees: BTreeMap<String, Vec<WireFeeRow>>,
    /// The legacy face's `/keys` and `/wire` (protocol v12–14), built with this snapshot.
    pub legacy: super::legacy::LegacyKeys,
}

impl KeySnapshot {
    /// The wire fee of `method` in force at `when`.
    pub fn wire_fee(&self, method: &str, when: Timestamp) -> Option<&WireFeeRow> {
        self.wire_fees
            .get(method)?
            .iter()
            .find(|f| f.start <= when && when < f.end)
    }
}

/// The current snapshot, swapped as a whole.
#[derive(Debug)]
pub struct KeyState {
    current: RwLock<Arc<KeySnapshot>>,
}

impl KeyState {
    pub fn new(snapshot: KeySnapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<KeySnapshot> {
        self.current.read().expect("key state lock").clone()
    }

    pub fn replace(&self, snapshot: KeySnapshot) {
        *self.current.write().expect("key state lock") = Arc::new(snapshot);
    }
}

/// The revoked denominations a wallet may still recoup (`/keys` `recoup`, both faces).
pub(super) fn recoup_list(material: &KeyMaterial, now: Timestamp) -> Vec<Recoup> {
    material
        .denominations
        .iter()
        .filter(|d| d.revocation.is_some() && d.stamp_expire_deposit > now)
        .map(|d| Recoup {
            h_denom_pub: d.h_denom_pub,
        })
        .collect()
}

/// The global fees not yet ended (`/keys` `global_fees`, both faces).
pub(super) fn global_fees(material: &KeyMaterial, now: Timestamp) -> Vec<GlobalFee> {
    material
        .global_fees
        .iter()
        .filter(|f| f.end > now)
        .map(|f| GlobalFee {
            start_date: f.start,
            end_date: f.end,
            history_fee: f.history_fee,
            account_fee: f.account_fee,
            purse_fee: f.purse_fee,
            history_expiration: f.history_expiration,
            purse_timeout: f.purse_timeout,
            purse_account_limit: f.purse_account_limit,
            master_sig: f.master_sig,
        })
        .collect()
}

/// Builds a snapshot from the database's key material at `now`.
pub fn build(
    config: &ExchangeConfig,
    base_url: &BaseUrl,
    material: KeyMaterial,
    keystore: &KeyStore,
    now: Timestamp,
) -> KeySnapshot {
    let mut expires = Timestamp::NEVER;
    let mut note = |t: Timestamp| {
        if t > now && t < expires {
            expires = t;
        }
    };
    let usable_signkeys: Vec<&SignkeyRow> = material
        .signkeys
        .iter()
        .filter(|k| k.revocation.is_none() && k.stamp_end > now)
        .collect();
    for k in &usable_signkeys {
        note(k.stamp_start);
        note(k.stamp_expire);
    }
    // The signing key: valid now, and its private key is in our store. The latest started.
    let signing_key = usable_signkeys
        .iter()
        .filter(|k| k.stamp_start <= now && now < k.stamp_expire)
        .filter(|k| keystore.signkey(&k.exchange_pub).is_some())
        .max_by_key(|k| k.stamp_start)
        .map(|k| (*k).clone());

    let mut listed: Vec<&DenominationRow> = material
        .denominations
        .iter()
        .filter(|d| d.revocation.is_none() && d.stamp_expire_deposit > now)
        .collect();
    for d in &listed {
        note(d.stamp_start);
        note(d.stamp_expire_withdraw);
        note(d.stamp_expire_deposit);
    }
    // Latest start first; ties broken by hash so the order (and the signed hash) is stable.
    listed.sort_by(|a, b| {
        b.stamp_start
            .cmp(&a.stamp_start)
            .then(a.h_denom_pub.cmp(&b.h_denom_pub))
    });
    let mut groups: Vec<DenominationGroup> = Vec::new();
    let mut signed_order = Vec::new();
    let mut group_members: Vec<Vec<&DenominationRow>> = Vec::new();
    for d in &listed {
        let same = |g: &DenominationGroup| {
            g.value == d.value
                && g.fee_withdraw == d.fee_withdraw
                && g.fee_deposit == d.fee_deposit
                && g.fee_refresh == d.fee_refresh
                && g.fee_refund == d.fee_refund
                && matches!(
                    (&g.keys, &d.public),
                    (
                        DenominationGroupKeys::Rsa { .. },
                        DenominationPublic::Rsa(_)
                    ) | (DenominationGroupKeys::Cs { .. }, DenominationPublic::Cs(_))
                )
        };
        let index = match groups.iter().position(same) {
            Some(i) => i,
            None => {
                groups.push(DenominationGroup {
                    value: d.value,
                    fee_withdraw: d.fee_withdraw,
                    fee_deposit: d.fee_deposit,
                    fee_refresh: d.fee_refresh,
                    fee_refund: d.fee_refund,
                    keys: match d.public {
                        DenominationPublic::Rsa(_) => {
                            DenominationGroupKeys::Rsa { denoms: Vec::new() }
                        }
                        DenominationPublic::Cs(_) => {
                            DenominationGroupKeys::Cs { denoms: Vec::new() }
                        }
                    },
                });
                group_members.push(Vec::new());
                groups.len() - 1
            }
        };
        group_members[index].push(d);
        let lost = keystore.denomination(&d.h_denom_pub).is_none();
        match (&mut groups[index].keys, &d.public) {
            (DenominationGroupKeys::Rsa { denoms }, DenominationPublic::Rsa(k)) => {
                denoms.push(RsaDenomination {
                    rsa_pub: Base32Bytes::from_bytes(k.encode()),
                    master_sig: d.master_sig,
                    stamp_start: d.stamp_start,
                    stamp_expire_withdraw: d.stamp_expire_withdraw,
                    stamp_expire_deposit: d.stamp_expire_deposit,
                    stamp_expire_legal: d.stamp_expire_legal,
                    lost,
                });
            }
            (DenominationGroupKeys::Cs { denoms }, DenominationPublic::Cs(k)) => {
                denoms.push(CsDenomination {
                    cs_pub: CsPoint::from_bytes(*k),
                    master_sig: d.master_sig,
                    stamp_start: d.stamp_start,
                    stamp_expire_withdraw: d.stamp_expire_withdraw,
                    stamp_expire_deposit: d.stamp_expire_deposit,
                    stamp_expire_legal: d.stamp_expire_legal,
                    lost,
                });
            }
            _ => {}
        }
    }
    for members in &group_members {
        signed_order.extend(members.iter().map(|d| d.master_sig));
    }
    let list_issue_date = listed
        .iter()
        .map(|d| d.stamp_start)
        .min()
        .unwrap_or(now)
        .round_down_to_secs();

    let mut wire_fees: BTreeMap<String, Vec<WireFeeRow>> = BTreeMap::new();
    for f in &material.wire_fees {
        wire_fees
            .entry(f.wire_method.clone())
            .or_default()
            .push(f.clone());
    }

    let denominations: HashMap<HashCode, DenominationRow> = material
        .denominations
        .iter()
        .map(|d| (d.h_denom_pub, d.clone()))
        .collect();

    let ready = match (&config.master_public_key, &signing_key) {
        (None, _) => Err("MASTER_PUBLIC_KEY is not configured".to_owned()),
        (_, None) => Err("no online signing key is signed by the master key and valid now".into()),
        _ if groups.is_empty() => Err("no denomination is signed by the master key".into()),
        (Some(master), Some(signkey)) => Ok((*master, signkey.clone())),
    };
    let (keys_body, not_ready) = match ready {
        Err(why) => (None, Some(why)),
        Ok((master, signkey)) => {
            let hc = KeySet::denominations_hash(signed_order.iter());
            let exchange_sig = keystore.sign_with(
                &signkey.exchange_pub,
                &KeySet {
                    list_issue_date,
                    hc,
                },
            );
            match exchange_sig {
                None => (
                    None,
                    Some("the signing key's private key is missing".into()),
                ),
                Some(exchange_sig) => {
                    let response = ExchangeKeysResponse {
                        version: EXCHANGE_PROTOCOL_VERSION
                            .parse()
                            .expect("the protocol version constant parses"),
                        base_url: base_url.clone(),
                        currency: config.currency,
                        currency_specification: CurrencySpecification::two_decimals(
                            &config.currency,
                            config.currency.as_str(),
                        ),
                        hard_limits: Vec::new(),
                        zero_limits: Vec::new(),
                        stefan_abs: config.stefan_abs,
                        stefan_log: config.stefan_log,
                        stefan_lin: config.stefan_lin,
                        asset_type: "fiat".into(),
                        rewards_allowed: false,
                        master_public_key: master,
                        reserve_closing_delay: config.reserve_closing_delay,
                        signkeys: usable_signkeys
                            .iter()
                            .map(|k| SignKey {
                                key: k.exchange_pub,
                                stamp_start: k.stamp_start,
                                stamp_expire: k.stamp_expire,
                                stamp_end: k.stamp_end,
                                master_sig: k.master_sig,
                            })
                            .collect(),
                        recoup: recoup_list(&material, now),
                        wads: Vec::new(),
                        accounts: material
                            .accounts
                            .iter()
                            .filter(|a| a.is_active)
                            .filter_map(|a| {
                                Some(WireAccount {
                                    payto_uri: a.payto_uri.parse().ok()?,
                                    conversion_url: a.conversion_url.clone(),
                                    bank_label: a.bank_label.clone(),
                                    priority: a.priority,
                                    debit_restrictions: serde_json::from_str(&a.debit_restrictions)
                                        .ok()?,
                                    credit_restrictions: serde_json::from_str(
                                        &a.credit_restrictions,
                                    )
                                    .ok()?,
                                    master_sig: a.master_sig_wire,
                                })
                            })
                            .collect(),
                        wire_fees: wire_fees
                            .iter()
                            .map(|(method, fees)| {
                                (
                                    method.clone(),
                                    fees.iter()
                                        .filter(|f| f.end > now)
                                        .map(|f| WireFee {
                                            wire_fee: f.wire_fee,
                                            closing_fee: f.closing_fee,
                                            start_date: f.start,
                                            end_date: f.end,
                                            sig: f.master_sig,
                                        })
                                        .collect(),
                                )
                            })
                            .collect(),
                        denominations: groups,
                        auditors: Vec::new(),
                        global_fees: global_fees(&material, now),
                        list_issue_date,
                        wallet_balance_limit_without_kyc: None,
                        shopping_url: None,
                        tiny_amount: None,
                        extensions: None,
                        extensions_sig: None,
                        exchange_pub: signkey.exchange_pub,
                        exchange_sig,
                    };
                    match serde_json::to_vec(&response) {
                        Ok(bytes) => (Some(Arc::from(bytes)), None),
                        Err(e) => (None, Some(format!("cannot serialise /keys: {e}"))),
                    }
                }
            }
        }
    };
    let legacy = super::legacy::build(
        config,
        base_url,
        &material,
        keystore,
        signing_key.as_ref(),
        now,
    );
    let etag = keys_body.as_ref().map_or_else(
        || "\"none\"".to_owned(),
        |b| {
            let h = cardcash_crypto::sha512(b);
            format!("\"{}\"", &h.to_string()[..26])
        },
    );
    KeySnapshot {
        built_at: now,
        keys_body,
        not_ready,
        etag,
        expires,
        denominations,
        signing_key,
        wire_fees,
        legacy,
    }
}
