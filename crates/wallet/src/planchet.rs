//! Planchets of a withdrawal group, derived from the group's seed and the planchet's index
//! (`cardcash_crypto::planchet`): the same seed and index always give the same coin key,
//! blinding and envelope, so a withdrawal retried after a crash sends exactly the request the
//! exchange may already have answered, and gets the same signatures back instead of spending
//! the reserve twice. No IO (the CS `R` values come in from the caller).

use cardcash_api::exchange::{
    BlindedDenominationSignature, CoinEnvelope, CsNonce, CsPoint, CsScalar, UnblindedSignature,
    WithdrawPlanchet,
};
use cardcash_crypto::coin::{coin_envelope_hash, coin_envelope_hash_cs, h_coin_pub};
use cardcash_crypto::purpose::WithdrawRequestV23;
use cardcash_crypto::{EddsaPrivateKey, cs, planchet, rsa};
use cardcash_util::{Base32Bytes, EddsaPublicKey};

use crate::denom::{Denom, DenomKey};
use crate::error::WalletError;

/// The CS session nonce of planchet `index` (what `/csr-withdraw` is asked about).
pub fn cs_nonce(seed: &[u8; 32], index: u32) -> [u8; 32] {
    planchet::derive_cs_nonce(seed, index)
}

/// A planchet ready to send, with what it takes to unblind the exchange's answer.
pub struct Planchet {
    pub index: u32,
    pub denom: Denom,
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub request: WithdrawPlanchet,
    /// The exchange's `R0, R1` of a CS planchet (kept with the coin for a recoup).
    pub cs_r: Option<cs::ClausePair>,
    blinding: Blinding,
}

enum Blinding {
    Rsa(rsa::BlindingKeySecret),
    Cs {
        secrets: Box<cs::BlindingSecrets>,
        r_blind: cs::ClausePair,
    },
}

impl Planchet {
    /// Planchet `index` of the group with `seed`, for `denom`, signed by the group's reserve.
    /// A CS denomination needs the exchange's `R` values for [`cs_nonce`]`(seed, index)`.
    pub fn derive(
        seed: &[u8; 32],
        index: u32,
        denom: &Denom,
        reserve: &EddsaPrivateKey,
        cs_r: Option<cs::ClausePair>,
    ) -> Result<Self, WalletError> {
        let (coin_priv, bks) = planchet::derive(seed, index);
        let coin_pub = coin_priv.public();
        let msg = h_coin_pub(&coin_pub);
        let (coin_ev, h_ev, blinding) = match &denom.key {
            DenomKey::Rsa(k) => {
                let blinded = rsa::blind(k, msg.as_bytes(), &bks)?;
                let h = coin_envelope_hash(&denom.h_denom_pub, &blinded);
                (
                    CoinEnvelope::Rsa {
                        rsa_blinded_planchet: Base32Bytes::from_bytes(blinded),
                    },
                    h,
                    Blinding::Rsa(bks),
                )
            }
            DenomKey::Cs(k) => {
                let r_pub = cs_r.ok_or_else(|| {
                    WalletError::Incomplete("a CS planchet without the exchange's R values".into())
                })?;
                let nonce = cs_nonce(seed, index);
                // The blinding secret doubles as the CS blinding seed (what a recoup reveals).
                let secrets = cs::blinding_secrets(bks.as_bytes());
                let (c, r_blind) = cs::blind(&secrets, &r_pub, k, msg.as_bytes())?;
                let h = coin_envelope_hash_cs(&denom.h_denom_pub, &nonce, &c);
                (
                    CoinEnvelope::Cs {
                        cs_nonce: CsNonce::from_bytes(nonce),
                        cs_blinded_c0: CsScalar::from_bytes(c[0]),
                        cs_blinded_c1: CsScalar::from_bytes(c[1]),
                    },
                    h,
                    Blinding::Cs {
                        secrets: Box::new(secrets),
                        r_blind,
                    },
                )
            }
        };
        let amount_with_fee = denom
            .value
            .checked_add(&denom.fee_withdraw)
            .map_err(|e| WalletError::MalformedResponse(format!("denomination value: {e}")))?;
        let reserve_sig = reserve.sign(&WithdrawRequestV23 {
            amount_with_fee,
            h_denom_pub: denom.h_denom_pub,
            h_coin_envelope: h_ev,
        });
        Ok(Self {
            index,
            denom: denom.clone(),
            coin_priv,
            coin_pub,
            request: WithdrawPlanchet {
                denom_pub_hash: denom.h_denom_pub,
                reserve_sig,
                coin_ev,
            },
            cs_r,
            blinding,
        })
    }

    /// Unblinds the exchange's blind signature and verifies it under the denomination key:
    /// the coin's signature. A signature that does not verify is the exchange's fault.
    pub fn unblind(
        &self,
        sig: &BlindedDenominationSignature,
    ) -> Result<UnblindedSignature, WalletError> {
        let msg = h_coin_pub(&self.coin_pub);
        let bad = || WalletError::CoinSignatureInvalid(self.denom.h_denom_pub.to_string());
        match (&self.blinding, sig, &self.denom.key) {
            (
                Blinding::Rsa(bks),
                BlindedDenominationSignature::Rsa {
                    blinded_rsa_signature,
                },
                DenomKey::Rsa(k),
            ) => {
                let s =
                    rsa::unblind(k, blinded_rsa_signature.as_bytes(), bks).map_err(|_| bad())?;
                rsa::verify(k, msg.as_bytes(), &s).map_err(|_| bad())?;
                Ok(UnblindedSignature::Rsa {
                    rsa_signature: Base32Bytes::from_bytes(s),
                })
            }
            (
                Blinding::Cs { secrets, r_blind },
                BlindedDenominationSignature::Cs { b, s },
                DenomKey::Cs(k),
            ) => {
                let (r, s) =
                    cs::unblind_signature(secrets, r_blind, *b, s.as_bytes()).map_err(|_| bad())?;
                cs::verify(k, &r, &s, msg.as_bytes()).map_err(|_| bad())?;
                Ok(UnblindedSignature::Cs {
                    cs_signature_r: CsPoint::from_bytes(r),
                    cs_signature_s: CsScalar::from_bytes(s),
                })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::{Amount, Timestamp};

    fn rsa_denom(key: &rsa::RsaPrivateKey) -> Denom {
        let chf = |s: &str| -> Amount { format!("CHF:{s}").parse().unwrap() };
        Denom {
            h_denom_pub: key.public().h_denom_pub(0),
            value: chf("1"),
            fee_withdraw: chf("0.01"),
            fee_deposit: chf("0"),
            fee_refresh: chf("0"),
            fee_refund: chf("0"),
            key: DenomKey::Rsa(key.public().clone()),
            stamp_start: Timestamp::now(),
            stamp_expire_withdraw: Timestamp::now(),
            stamp_expire_deposit: Timestamp::now(),
        }
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_request_and_the_coin_verifies() {
        let key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let denom = rsa_denom(&key);
        let reserve = EddsaPrivateKey::generate().unwrap();
        let seed = [7u8; 32];
        let a = Planchet::derive(&seed, 3, &denom, &reserve, None).unwrap();
        let b = Planchet::derive(&seed, 3, &denom, &reserve, None).unwrap();
        assert_eq!(a.request, b.request);
        assert_eq!(a.coin_pub, b.coin_pub);
        let other = Planchet::derive(&seed, 4, &denom, &reserve, None).unwrap();
        assert_ne!(a.coin_pub, other.coin_pub);

        // The exchange's side: sign the blinded envelope; the wallet unblinds a valid coin.
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &a.request.coin_ev
        else {
            panic!("RSA envelope expected")
        };
        let blind_sig = rsa::sign_blinded(&key, rsa_blinded_planchet.as_bytes()).unwrap();
        let ok = a.unblind(&BlindedDenominationSignature::Rsa {
            blinded_rsa_signature: Base32Bytes::from_bytes(blind_sig.clone()),
        });
        assert!(ok.is_ok(), "{ok:?}");
        // The same signature does not fit another planchet.
        let wrong = other.unblind(&BlindedDenominationSignature::Rsa {
            blinded_rsa_signature: Base32Bytes::from_bytes(blind_sig),
        });
        assert!(matches!(wrong, Err(WalletError::CoinSignatureInvalid(_))));
    }

    #[test]
    fn cs_planchets_need_r_values_and_sign_round_trip() {
        let private = cs::generate_private().unwrap();
        let public = cs::public(&private);
        let mut denom = rsa_denom(&rsa::RsaPrivateKey::generate(1024).unwrap());
        denom.key = DenomKey::Cs(public);
        denom.h_denom_pub = cs::h_denom_pub(&public, 0);
        let reserve = EddsaPrivateKey::generate().unwrap();
        let seed = [9u8; 32];
        assert!(Planchet::derive(&seed, 0, &denom, &reserve, None).is_err());
        let nonce = cs_nonce(&seed, 0);
        assert_eq!(nonce, cs_nonce(&seed, 0));
        assert_ne!(nonce, cs_nonce(&seed, 1));
        let r_pub = cs::r_public(&nonce, cs::R_SEED_WITHDRAW, &private);
        let p = Planchet::derive(&seed, 0, &denom, &reserve, Some(r_pub)).unwrap();
        let CoinEnvelope::Cs {
            cs_blinded_c0,
            cs_blinded_c1,
            ..
        } = &p.request.coin_ev
        else {
            panic!("CS envelope expected")
        };
        let c = [*cs_blinded_c0.as_bytes(), *cs_blinded_c1.as_bytes()];
        let (b, s) = cs::sign_blinded(&private, cs::R_SEED_WITHDRAW, &nonce, &c);
        let sig = p
            .unblind(&BlindedDenominationSignature::Cs {
                b,
                s: CsScalar::from_bytes(s),
            })
            .unwrap();
        assert!(matches!(sig, UnblindedSignature::Cs { .. }));
    }
}
