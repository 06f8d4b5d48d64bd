//! Checking an exchange's `/keys` before trusting it: every denomination (purpose 1025),
//! signing key (1024) and bank account (1030, v23) must carry the master key's signature, and
//! the whole key set the online signing key's (1035, over the denominations' master signatures
//! in response order). A wallet checks this before it withdraws; the tests check our exchange
//! with it. Pure: no IO.

use cardcash_api::exchange::{DenominationGroupKeys, ExchangeKeysResponse};
use cardcash_crypto::purpose::{DenominationValidity, KeySet, SigningKeyValidity, WireAccountV23};
use cardcash_util::{EddsaPublicKey, EddsaSignature, HashCode, Timestamp};

/// What in `/keys` does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("the exchange's master key is {found}, not the expected {expected}")]
    WrongMaster {
        expected: EddsaPublicKey,
        found: EddsaPublicKey,
    },
    #[error("denomination {0}: its key does not decode")]
    BadDenominationKey(usize),
    #[error("denomination {0}: the master signature is invalid")]
    Denomination(HashCode),
    #[error("signing key {0}: the master signature is invalid")]
    SigningKey(EddsaPublicKey),
    #[error("account {0}: the master signature is invalid")]
    Account(String),
    #[error("the key set is signed by {0}, which is not one of the listed signing keys")]
    UnknownSigner(EddsaPublicKey),
    #[error("the key set signature (exchange_sig) is invalid")]
    KeySet,
    #[error("a denomination group of an unsupported kind (age restriction)")]
    Unsupported,
}

/// Checks every signature of `keys` (see the module documentation); with `expected_master`,
/// also that the exchange is the one the caller trusts. Returns each denomination's hash in
/// response order.
pub fn verify_keys(
    keys: &ExchangeKeysResponse,
    expected_master: Option<&EddsaPublicKey>,
) -> Result<Vec<HashCode>, KeysError> {
    let master = keys.master_public_key;
    if let Some(expected) = expected_master
        && *expected != master
    {
        return Err(KeysError::WrongMaster {
            expected: *expected,
            found: master,
        });
    }
    let mut sigs: Vec<EddsaSignature> = Vec::new();
    let mut hashes = Vec::new();
    for group in &keys.denominations {
        let entries: Vec<(HashCode, EddsaSignature, [Timestamp; 4])> = match &group.keys {
            DenominationGroupKeys::Rsa { denoms } => denoms
                .iter()
                .map(|d| {
                    let public = cardcash_crypto::rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes())
                        .map_err(|_| KeysError::BadDenominationKey(hashes.len()))?;
                    Ok((
                        public.h_denom_pub(0),
                        d.master_sig,
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                            d.stamp_expire_legal,
                        ],
                    ))
                })
                .collect::<Result<_, KeysError>>()?,
            DenominationGroupKeys::Cs { denoms } => denoms
                .iter()
                .map(|d| {
                    (
                        cardcash_crypto::cs::h_denom_pub(d.cs_pub.as_bytes(), 0),
                        d.master_sig,
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                            d.stamp_expire_legal,
                        ],
                    )
                })
                .collect(),
            _ => return Err(KeysError::Unsupported),
        };
        for (h, sig, [start, withdraw, deposit, legal]) in entries {
            let validity = DenominationValidity {
                master_pub: master,
                start,
                expire_withdraw: withdraw,
                expire_deposit: deposit,
                expire_legal: legal,
                value: group.value,
                fee_withdraw: group.fee_withdraw,
                fee_deposit: group.fee_deposit,
                fee_refresh: group.fee_refresh,
                fee_refund: group.fee_refund,
                h_denom_pub: h,
            };
            cardcash_crypto::verify(&master, &sig, &validity)
                .map_err(|_| KeysError::Denomination(h))?;
            sigs.push(sig);
            hashes.push(h);
        }
    }
    for k in &keys.signkeys {
        let validity = SigningKeyValidity {
            start: k.stamp_start,
            expire: k.stamp_expire,
            end: k.stamp_end,
            signkey_pub: k.key,
        };
        cardcash_crypto::verify(&master, &k.master_sig, &validity)
            .map_err(|_| KeysError::SigningKey(k.key))?;
    }
    for a in &keys.accounts {
        let payto = a.payto_uri.to_string();
        let json = |r| serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
        let message = WireAccountV23::new(
            &payto,
            a.conversion_url.as_deref(),
            &json(&a.debit_restrictions),
            &json(&a.credit_restrictions),
        )
        .map_err(|_| KeysError::Account(payto.clone()))?;
        cardcash_crypto::verify(&master, &a.master_sig, &message)
            .map_err(|_| KeysError::Account(payto.clone()))?;
    }
    if !keys.signkeys.iter().any(|k| k.key == keys.exchange_pub) {
        return Err(KeysError::UnknownSigner(keys.exchange_pub));
    }
    let key_set = KeySet {
        list_issue_date: keys.list_issue_date,
        hc: KeySet::denominations_hash(sigs.iter()),
    };
    cardcash_crypto::verify(&keys.exchange_pub, &keys.exchange_sig, &key_set)
        .map_err(|_| KeysError::KeySet)?;
    Ok(hashes)
}
