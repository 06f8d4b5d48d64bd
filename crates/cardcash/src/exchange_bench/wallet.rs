//! The benchmark's wallet and merchant: RSA planchets (coin key, blinding, the reserve's
//! signature), unblinding with a check of every coin, and the coins' deposit signatures. The
//! expensive steps run here, before or after the timed phases, never during them.
//!
//! RSA only: the benchmark measures the exchange against the machine's raw RSA-2048 signing
//! rate. (The exchange's own integration tests carry a wallet with Clause-Schnorr too.)

use anyhow::{Context as _, bail};
use cardcash_api::exchange::{
    BatchDepositCoin, BatchDepositRequest, BlindedDenominationSignature, CoinEnvelope,
    DenominationGroupKeys, ExchangeKeysResponse, UnblindedSignature, WithdrawPlanchet,
};
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{DepositRequestV23, WithdrawRequestV23};
use cardcash_crypto::{EddsaPrivateKey, rsa};
use cardcash_util::{Amount, Base32Bytes, EddsaPublicKey, HashCode, PaytoUri, Timestamp, WireSalt};

/// The RSA denomination the benchmark withdraws.
#[derive(Clone, Debug)]
pub struct Denom {
    pub h: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub key: rsa::RsaPublicKey,
}

impl Denom {
    /// What withdrawing one coin costs the reserve.
    pub fn with_fee(&self) -> anyhow::Result<Amount> {
        Ok(self.value.checked_add(&self.fee_withdraw)?)
    }
}

/// The RSA denomination of `/keys` worth `value` that can be withdrawn now.
pub fn rsa_denomination(keys: &ExchangeKeysResponse, value: &Amount) -> anyhow::Result<Denom> {
    let now = Timestamp::now();
    for group in &keys.denominations {
        if &group.value != value {
            continue;
        }
        let DenominationGroupKeys::Rsa { denoms } = &group.keys else {
            continue;
        };
        for d in denoms {
            if d.stamp_start > now || d.stamp_expire_withdraw <= now {
                continue;
            }
            let key = rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes())
                .context("an RSA key of /keys does not decode")?;
            return Ok(Denom {
                h: key.h_denom_pub(0),
                value: group.value,
                fee_withdraw: group.fee_withdraw,
                fee_deposit: group.fee_deposit,
                key,
            });
        }
    }
    bail!("/keys has no RSA denomination of {value} that can be withdrawn now")
}

/// A planchet ready to send, with what unblinding needs.
pub struct Planchet {
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub request: WithdrawPlanchet,
    blinding: rsa::BlindingKeySecret,
}

/// A fresh planchet of `denom` signed by `reserve`.
pub fn planchet(reserve: &EddsaPrivateKey, denom: &Denom) -> anyhow::Result<Planchet> {
    let coin_priv = EddsaPrivateKey::generate()?;
    let coin_pub = coin_priv.public();
    let blinding = rsa::BlindingKeySecret::generate()?;
    let blinded = rsa::blind(&denom.key, h_coin_pub(&coin_pub).as_bytes(), &blinding)?;
    let h_coin_envelope = coin_envelope_hash(&denom.h, &blinded);
    let reserve_sig = reserve.sign(&WithdrawRequestV23 {
        amount_with_fee: denom.with_fee()?,
        h_denom_pub: denom.h,
        h_coin_envelope,
    });
    Ok(Planchet {
        coin_priv,
        coin_pub,
        request: WithdrawPlanchet {
            denom_pub_hash: denom.h,
            reserve_sig,
            coin_ev: CoinEnvelope::Rsa {
                rsa_blinded_planchet: Base32Bytes::from_bytes(blinded),
            },
        },
        blinding,
    })
}

/// A withdrawn coin: its key and the unblinded denomination signature.
pub struct Coin {
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub signature: Vec<u8>,
}

impl Planchet {
    /// Unblinds the exchange's signature and verifies it: the coin.
    pub fn unblind(
        self,
        denom: &Denom,
        sig: &BlindedDenominationSignature,
    ) -> anyhow::Result<Coin> {
        let BlindedDenominationSignature::Rsa {
            blinded_rsa_signature,
        } = sig
        else {
            bail!("the exchange answered an RSA planchet with another cipher");
        };
        let signature = rsa::unblind(&denom.key, blinded_rsa_signature.as_bytes(), &self.blinding)?;
        // Without the gcd check of `rsa::verify`, which protects a wallet from a malicious
        // modulus and costs more than the rest of the verification: the benchmark trusts the
        // exchange it started, and the exchange checks every coin again when it is deposited.
        rsa::verify_own_key(
            &denom.key,
            h_coin_pub(&self.coin_pub).as_bytes(),
            &signature,
        )
        .context("the exchange's signature does not unblind to a valid coin")?;
        Ok(Coin {
            coin_priv: self.coin_priv,
            coin_pub: self.coin_pub,
            signature,
        })
    }
}

/// The one merchant of the benchmark: its key and account. Every deposit is a contract of its
/// own (a fresh `h_contract_terms`).
pub struct Merchant {
    pub key: EddsaPrivateKey,
    pub payto: PaytoUri,
    pub salt: WireSalt,
    pub h_wire: HashCode,
}

impl Merchant {
    pub fn new(payto: PaytoUri) -> anyhow::Result<Self> {
        let salt = WireSalt::from_bytes(cardcash_crypto::random_bytes()?);
        let h_wire = cardcash_crypto::h_wire(&payto.to_string(), &salt);
        Ok(Self {
            key: EddsaPrivateKey::generate()?,
            payto,
            salt,
            h_wire,
        })
    }

    /// The batch deposit of `coins`, each for its whole value, signed by the coins. The wire
    /// deadline is a day away, so that the aggregator has no work during the benchmark.
    pub fn deposit(&self, denom: &Denom, coins: &[Coin]) -> anyhow::Result<BatchDepositRequest> {
        let h_contract_terms = HashCode::from_bytes(cardcash_crypto::random_bytes()?);
        let now = Timestamp::from_secs(Timestamp::now().as_secs());
        let wire_deadline = Timestamp::from_secs(now.as_secs() + 86_400);
        let coins = coins
            .iter()
            .map(|coin| {
                let message = DepositRequestV23 {
                    h_contract_terms,
                    h_age_commitment: [0; 32],
                    h_policy: HashCode::from_bytes([0; 64]),
                    h_wire: self.h_wire,
                    h_denom_pub: denom.h,
                    wallet_timestamp: now,
                    refund_deadline: now,
                    amount_with_fee: denom.value,
                    deposit_fee: denom.fee_deposit,
                    merchant_pub: self.key.public(),
                    wallet_data_hash: HashCode::from_bytes([0; 64]),
                };
                BatchDepositCoin {
                    contribution: denom.value,
                    denom_pub_hash: denom.h,
                    ub_sig: UnblindedSignature::Rsa {
                        rsa_signature: Base32Bytes::from_bytes(coin.signature.clone()),
                    },
                    coin_pub: coin.coin_pub,
                    h_age_commitment: None,
                    coin_sig: coin.coin_priv.sign(&message),
                }
            })
            .collect();
        Ok(BatchDepositRequest {
            merchant_payto_uri: self.payto.clone(),
            wire_salt: self.salt,
            merchant_pub: self.key.public(),
            merchant_sig: None,
            h_contract_terms,
            wallet_data_hash: None,
            coins,
            policy: None,
            timestamp: now,
            refund_deadline: Some(now),
            wire_transfer_deadline: wire_deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use cardcash_api::exchange::BlindedDenominationSignature;
    use cardcash_crypto::purpose::DepositRequestV23;
    use cardcash_crypto::{EddsaPrivateKey, rsa};
    use cardcash_util::{Base32Bytes, HashCode};

    use super::*;

    fn denom(key: &rsa::RsaPrivateKey) -> Denom {
        Denom {
            h: key.public().h_denom_pub(0),
            value: "CHF:1".parse().unwrap(),
            fee_withdraw: "CHF:0.01".parse().unwrap(),
            fee_deposit: "CHF:0.01".parse().unwrap(),
            key: key.public().clone(),
        }
    }

    #[test]
    fn a_planchet_signed_blindly_unblinds_to_a_coin_the_deposit_signs_for() {
        let key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let denom = denom(&key);
        let reserve = EddsaPrivateKey::generate().unwrap();
        let planchet = planchet(&reserve, &denom).unwrap();
        // The reserve signed the envelope the exchange will hash.
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &planchet.request.coin_ev
        else {
            panic!("an RSA envelope")
        };
        cardcash_crypto::verify(
            &reserve.public(),
            &planchet.request.reserve_sig,
            &WithdrawRequestV23 {
                amount_with_fee: "CHF:1.01".parse().unwrap(),
                h_denom_pub: denom.h,
                h_coin_envelope: coin_envelope_hash(&denom.h, rsa_blinded_planchet.as_bytes()),
            },
        )
        .unwrap();
        let blind = rsa::sign_blinded(&key, rsa_blinded_planchet.as_bytes()).unwrap();
        let coin = planchet
            .unblind(
                &denom,
                &BlindedDenominationSignature::Rsa {
                    blinded_rsa_signature: Base32Bytes::from_bytes(blind),
                },
            )
            .unwrap();
        rsa::verify(
            &denom.key,
            h_coin_pub(&coin.coin_pub).as_bytes(),
            &coin.signature,
        )
        .unwrap();

        let merchant =
            Merchant::new("payto://x-taler-bank/bank/merchant".parse().unwrap()).unwrap();
        let request = merchant
            .deposit(&denom, std::slice::from_ref(&coin))
            .unwrap();
        let c = &request.coins[0];
        cardcash_crypto::verify(
            &coin.coin_pub,
            &c.coin_sig,
            &DepositRequestV23 {
                h_contract_terms: request.h_contract_terms,
                h_age_commitment: [0; 32],
                h_policy: HashCode::from_bytes([0; 64]),
                h_wire: merchant.h_wire,
                h_denom_pub: denom.h,
                wallet_timestamp: request.timestamp,
                refund_deadline: request.refund_deadline.unwrap(),
                amount_with_fee: denom.value,
                deposit_fee: denom.fee_deposit,
                merchant_pub: merchant.key.public(),
                wallet_data_hash: HashCode::from_bytes([0; 64]),
            },
        )
        .unwrap();
        assert!(request.wire_transfer_deadline > request.timestamp);
    }

    #[test]
    fn a_signature_by_another_key_is_no_coin() {
        let key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let other = rsa::RsaPrivateKey::generate(1024).unwrap();
        let denom = denom(&key);
        let reserve = EddsaPrivateKey::generate().unwrap();
        let planchet = planchet(&reserve, &denom).unwrap();
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &planchet.request.coin_ev
        else {
            panic!("an RSA envelope")
        };
        let digits = rsa_blinded_planchet.as_bytes();
        // The other key may be smaller than the envelope: then it cannot sign at all.
        let Ok(blind) = rsa::sign_blinded(&other, digits) else {
            return;
        };
        let sig = BlindedDenominationSignature::Rsa {
            blinded_rsa_signature: Base32Bytes::from_bytes(blind),
        };
        assert!(planchet.unblind(&denom, &sig).is_err());
    }
}
