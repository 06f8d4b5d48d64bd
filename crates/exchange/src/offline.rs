//! The offline key's side (`cardcash exchange offline …`): the master private key and
//! everything it signs. It never touches the exchange's database: it reads what the online
//! exchange proposes (`GET /management/keys`), checks the security modules' announcements,
//! signs, and the result is uploaded over HTTP. The master key file is the 32-byte EdDSA seed,
//! the format of the C exchange's `MASTER_PRIV_FILE`, written 0600.

use std::fs;
use std::io::Write;
use std::path::Path;

use cardcash_api::exchange::{
    AccountRestriction, DenominationPublicKey, DenominationSignature, FutureKeysResponse,
    GlobalFeesRequest, MasterSignaturesRequest, SignKeySignature, WireFeeSetupRequest,
    WireSetupRequest, WireTeardownRequest,
};
use cardcash_crypto::purpose::{
    CsDenominationKeyAnnouncement, DenominationRevocation, DenominationValidity, GlobalFees,
    RsaDenominationKeyAnnouncement, SigningKeyAnnouncement, SigningKeyRevocation,
    SigningKeyValidity, WireAccountV12, WireAccountV23, WireAdd, WireDel, WireFee,
};
use cardcash_crypto::{EddsaPrivateKey, cs, rsa};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, PaytoUri, RelativeTime, Timestamp};
use zeroize::Zeroizing;

/// Errors of the offline tool.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("master key file {path}: {why}")]
    KeyFile { path: String, why: String },
    #[error("the exchange proposes keys for master key {proposed}, ours is {ours}")]
    WrongMaster {
        proposed: EddsaPublicKey,
        ours: EddsaPublicKey,
    },
    #[error("the security module's signature over {0} is invalid: refusing to sign")]
    BadAnnouncement(String),
    #[error("{0}")]
    Invalid(String),
}

/// The master private key.
pub struct MasterKey(EddsaPrivateKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.public())
    }
}

impl MasterKey {
    /// A fresh master key (tests and the demo; operators use [`MasterKey::create`]).
    pub fn generate() -> Result<Self, OfflineError> {
        EddsaPrivateKey::generate()
            .map(Self)
            .map_err(|e| OfflineError::Invalid(format!("no randomness: {e}")))
    }

    /// Creates a new master key file at `path`; refuses to overwrite one.
    pub fn create(path: &Path) -> Result<Self, OfflineError> {
        let fail = |why: String| OfflineError::KeyFile {
            path: path.display().to_string(),
            why,
        };
        let key = Self::generate()?;
        let seed = Zeroizing::new(key.0.to_bytes());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| fail(format!("cannot create (it must not exist yet): {e}")))?;
        file.write_all(seed.as_slice())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail(e.to_string()))?;
        Ok(key)
    }

    /// Loads the master key file at `path`.
    pub fn load(path: &Path) -> Result<Self, OfflineError> {
        let bytes = Zeroizing::new(fs::read(path).map_err(|e| OfflineError::KeyFile {
            path: path.display().to_string(),
            why: e.to_string(),
        })?);
        EddsaPrivateKey::from_slice(&bytes)
            .map(Self)
            .map_err(|_| OfflineError::KeyFile {
                path: path.display().to_string(),
                why: "not a 32-byte EdDSA seed".into(),
            })
    }

    pub fn public(&self) -> EddsaPublicKey {
        self.0.public()
    }

    /// Signs everything `future` proposes, after checking that it is meant for this master
    /// key and that every key carries a valid announcement of the security module that holds
    /// its private key ([`check_future_keys`]).
    pub fn sign_future_keys(
        &self,
        future: &FutureKeysResponse,
    ) -> Result<MasterSignaturesRequest, OfflineError> {
        let ours = self.public();
        if future.master_pub != ours {
            return Err(OfflineError::WrongMaster {
                proposed: future.master_pub,
                ours,
            });
        }
        let hashes = check_future_keys(future)?;
        let denom_sigs = future
            .future_denoms
            .iter()
            .zip(hashes)
            .map(|(d, h_denom_pub)| {
                let validity = DenominationValidity {
                    master_pub: ours,
                    start: d.stamp_start,
                    expire_withdraw: d.stamp_expire_withdraw,
                    expire_deposit: d.stamp_expire_deposit,
                    expire_legal: d.stamp_expire_legal,
                    value: d.value,
                    fee_withdraw: d.fee_withdraw,
                    fee_deposit: d.fee_deposit,
                    fee_refresh: d.fee_refresh,
                    fee_refund: d.fee_refund,
                    h_denom_pub,
                };
                DenominationSignature {
                    h_denom_pub,
                    master_sig: self.0.sign(&validity),
                }
            })
            .collect();
        let signkey_sigs = future
            .future_signkeys
            .iter()
            .map(|k| SignKeySignature {
                exchange_pub: k.key,
                master_sig: self.0.sign(&SigningKeyValidity {
                    start: k.stamp_start,
                    expire: k.stamp_expire,
                    end: k.stamp_end,
                    signkey_pub: k.key,
                }),
            })
            .collect();
        Ok(MasterSignaturesRequest {
            denom_sigs,
            signkey_sigs,
        })
    }

    /// Enables bank account `payto` from `validity_start` on (no restrictions, no conversion).
    /// Besides the v23 signatures it signs the account in the v12–14 layout
    /// (`master_sig_wire_v12`), which the legacy face's `/wire` shows to wallets of 2022.
    pub fn enable_account(
        &self,
        payto: &PaytoUri,
        validity_start: Timestamp,
        bank_label: Option<String>,
        priority: i64,
    ) -> Result<WireSetupRequest, OfflineError> {
        self.enable_account_restricted(
            payto,
            validity_start,
            bank_label,
            priority,
            Vec::new(),
            Vec::new(),
        )
    }

    /// [`MasterKey::enable_account`] with restrictions on the accounts the exchange wires to
    /// (`debit`) and takes money from (`credit`; `[Deny]` for a debit-only account). Both lists
    /// are part of the v23 signatures; the v12 signature covers the payto URI only (the legacy
    /// face does not list accounts that deny every credit).
    pub fn enable_account_restricted(
        &self,
        payto: &PaytoUri,
        validity_start: Timestamp,
        bank_label: Option<String>,
        priority: i64,
        debit: Vec<AccountRestriction>,
        credit: Vec<AccountRestriction>,
    ) -> Result<WireSetupRequest, OfflineError> {
        let text = payto.to_string();
        let json = |r: &Vec<AccountRestriction>| {
            serde_json::to_value(r).map_err(|e| OfflineError::Invalid(e.to_string()))
        };
        let (debit_json, credit_json) = (json(&debit)?, json(&credit)?);
        let add = WireAdd::new(&text, None, &debit_json, &credit_json, validity_start)
            .map_err(|e| OfflineError::Invalid(e.to_string()))?;
        let wire = WireAccountV23::new(&text, None, &debit_json, &credit_json)
            .map_err(|e| OfflineError::Invalid(e.to_string()))?;
        Ok(WireSetupRequest {
            payto_uri: payto.clone(),
            conversion_url: None,
            credit_restrictions: credit,
            debit_restrictions: debit,
            master_sig_add: self.0.sign(&add),
            master_sig_wire: self.0.sign(&wire),
            master_sig_wire_v12: Some(self.0.sign(&WireAccountV12 {
                h_payto: cardcash_crypto::h_payto(&text),
            })),
            validity_start,
            bank_label,
            priority,
        })
    }

    /// Disables bank account `payto` from `validity_end` on.
    pub fn disable_account(
        &self,
        payto: &PaytoUri,
        validity_end: Timestamp,
    ) -> WireTeardownRequest {
        WireTeardownRequest {
            payto_uri: payto.clone(),
            master_sig_del: self.0.sign(&WireDel::new(&payto.to_string(), validity_end)),
            validity_end,
        }
    }

    /// Wire and closing fees of `method` for `[start, end)`.
    pub fn wire_fee(
        &self,
        method: &str,
        start: Timestamp,
        end: Timestamp,
        wire_fee: Amount,
        closing_fee: Amount,
    ) -> WireFeeSetupRequest {
        WireFeeSetupRequest {
            wire_method: method.to_owned(),
            master_sig: self
                .0
                .sign(&WireFee::new(method, start, end, wire_fee, closing_fee)),
            fee_start: start,
            fee_end: end,
            wire_fee,
            closing_fee,
        }
    }

    /// Global fees for `[start, end)` (purses and history are not offered by this exchange:
    /// the fees are stated anyway because wallets require a global fee entry).
    #[expect(clippy::too_many_arguments, reason = "one argument per signed field")]
    pub fn global_fees(
        &self,
        start: Timestamp,
        end: Timestamp,
        history_fee: Amount,
        account_fee: Amount,
        purse_fee: Amount,
        purse_timeout: RelativeTime,
        history_expiration: RelativeTime,
        purse_account_limit: u32,
    ) -> GlobalFeesRequest {
        let message = GlobalFees {
            start,
            end,
            purse_timeout,
            history_expiration,
            history_fee,
            account_fee,
            purse_fee,
            purse_account_limit,
        };
        GlobalFeesRequest {
            master_sig: self.0.sign(&message),
            fee_start: start,
            fee_end: end,
            history_fee,
            account_fee,
            purse_fee,
            purse_timeout,
            history_expiration,
            purse_account_limit,
        }
    }

    /// The revocation of denomination `h_denom_pub`.
    pub fn revoke_denomination(&self, h_denom_pub: HashCode) -> cardcash_util::EddsaSignature {
        self.0.sign(&DenominationRevocation { h_denom_pub })
    }

    /// The revocation of signing key `exchange_pub`.
    pub fn revoke_signkey(&self, exchange_pub: EddsaPublicKey) -> cardcash_util::EddsaSignature {
        self.0.sign(&SigningKeyRevocation { exchange_pub })
    }
}

/// Checks what the online exchange proposes (`GET /management/keys`) without the master key:
/// every denomination and signing key must carry a valid announcement of the security module
/// named in `future`. Returns each proposed denomination's `h_denom_pub`, in order (the
/// offline tool shows them to the operator before signing).
pub fn check_future_keys(future: &FutureKeysResponse) -> Result<Vec<HashCode>, OfflineError> {
    let mut hashes = Vec::with_capacity(future.future_denoms.len());
    for d in &future.future_denoms {
        let duration_withdraw = d.stamp_expire_withdraw.saturating_sub(d.stamp_start);
        let h_denom_pub = match &d.denom_pub {
            DenominationPublicKey::Rsa { age_mask, rsa_pub } => {
                let key = rsa::RsaPublicKey::decode(rsa_pub.as_bytes())
                    .map_err(|e| OfflineError::Invalid(format!("RSA key: {e}")))?;
                let announcement = RsaDenominationKeyAnnouncement::new(
                    &key,
                    &d.section_name,
                    d.stamp_start,
                    duration_withdraw,
                );
                cardcash_crypto::verify(
                    &future.denom_secmod_public_key,
                    &d.denom_secmod_sig,
                    &announcement,
                )
                .map_err(|_| OfflineError::BadAnnouncement(d.section_name.clone()))?;
                key.h_denom_pub(*age_mask)
            }
            DenominationPublicKey::Cs { age_mask, cs_pub } => {
                let announcement = CsDenominationKeyAnnouncement::new(
                    cs_pub.as_bytes(),
                    &d.section_name,
                    d.stamp_start,
                    duration_withdraw,
                );
                cardcash_crypto::verify(
                    &future.denom_secmod_cs_public_key,
                    &d.denom_secmod_sig,
                    &announcement,
                )
                .map_err(|_| OfflineError::BadAnnouncement(d.section_name.clone()))?;
                cs::h_denom_pub(cs_pub.as_bytes(), *age_mask)
            }
        };
        hashes.push(h_denom_pub);
    }
    for k in &future.future_signkeys {
        let announcement = SigningKeyAnnouncement {
            exchange_pub: k.key,
            anchor_time: k.stamp_start,
            duration: k.stamp_expire.saturating_sub(k.stamp_start),
        };
        cardcash_crypto::verify(
            &future.signkey_secmod_public_key,
            &k.signkey_secmod_sig,
            &announcement,
        )
        .map_err(|_| OfflineError::BadAnnouncement(format!("signing key {}", k.key)))?;
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.priv");
        let created = MasterKey::create(&path).unwrap();
        assert_eq!(MasterKey::load(&path).unwrap().public(), created.public());
        assert!(
            MasterKey::create(&path).is_err(),
            "never overwrites a master key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        fs::write(&path, b"short").unwrap();
        assert!(MasterKey::load(&path).is_err());
    }
}
