//! A minimal wallet and merchant for the crash tests: RSA planchets, unblinding, batch deposits
//! (the exchange's own tests have the full one, with Clause-Schnorr).

use cardcash_api::exchange::{
    BatchDepositCoin, BatchDepositRequest, BatchWithdrawRequest, BlindedDenominationSignature,
    CoinEnvelope, DenominationGroupKeys, ExchangeKeysResponse, UnblindedSignature,
    WithdrawPlanchet,
};
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{DepositRequestV23, WithdrawRequestV23};
use cardcash_crypto::{EddsaPrivateKey, rsa};
use cardcash_util::{Amount, Base32Bytes, EddsaPublicKey, HashCode, PaytoUri, Timestamp, WireSalt};

/// An RSA denomination of `/keys`.
#[derive(Clone, Debug)]
pub struct Denom {
    pub h: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub key: rsa::RsaPublicKey,
}

/// The RSA denomination worth `value` (panics if `/keys` has none).
pub fn denomination(keys: &ExchangeKeysResponse, value: &Amount) -> Denom {
    for g in &keys.denominations {
        if let DenominationGroupKeys::Rsa { denoms } = &g.keys
            && g.value == *value
            && let Some(d) = denoms.first()
        {
            let key = rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes()).expect("an RSA key");
            return Denom {
                h: key.h_denom_pub(0),
                value: g.value,
                fee_withdraw: g.fee_withdraw,
                fee_deposit: g.fee_deposit,
                key,
            };
        }
    }
    panic!("/keys has no RSA denomination of {value}")
}

/// A planchet: the coin's key, the blinding secret and the request part.
pub struct Planchet {
    denom: Denom,
    coin_priv: EddsaPrivateKey,
    bks: rsa::BlindingKeySecret,
    pub request: WithdrawPlanchet,
}

impl Planchet {
    pub fn new(reserve: &EddsaPrivateKey, denom: &Denom) -> Self {
        let coin_priv = EddsaPrivateKey::generate().expect("randomness");
        let bks = rsa::BlindingKeySecret::generate().expect("randomness");
        let blinded = rsa::blind(&denom.key, h_coin_pub(&coin_priv.public()).as_bytes(), &bks)
            .expect("blinding");
        let h_envelope = coin_envelope_hash(&denom.h, &blinded);
        let reserve_sig = reserve.sign(&WithdrawRequestV23 {
            amount_with_fee: denom
                .value
                .checked_add(&denom.fee_withdraw)
                .expect("amount"),
            h_denom_pub: denom.h,
            h_coin_envelope: h_envelope,
        });
        Self {
            denom: denom.clone(),
            coin_priv,
            bks,
            request: WithdrawPlanchet {
                denom_pub_hash: denom.h,
                reserve_sig,
                coin_ev: CoinEnvelope::Rsa {
                    rsa_blinded_planchet: Base32Bytes::from_bytes(blinded),
                },
            },
        }
    }

    /// The coin, once the exchange signed: the unblinded signature must verify.
    pub fn unblind(&self, sig: &BlindedDenominationSignature) -> Coin {
        let BlindedDenominationSignature::Rsa {
            blinded_rsa_signature,
        } = sig
        else {
            panic!("an RSA signature expected, got {sig:?}")
        };
        let coin_pub = self.coin_priv.public();
        let signature = rsa::unblind(&self.denom.key, blinded_rsa_signature.as_bytes(), &self.bks)
            .expect("unblinding");
        rsa::verify(
            &self.denom.key,
            h_coin_pub(&coin_pub).as_bytes(),
            &signature,
        )
        .expect("the exchange's blind signature makes a valid coin");
        Coin {
            denom: self.denom.clone(),
            coin_priv: EddsaPrivateKey::from_bytes(&self.coin_priv.to_bytes()),
            coin_pub,
            signature,
        }
    }
}

/// A batch withdrawal request of `planchets`.
pub fn batch(planchets: &[Planchet]) -> BatchWithdrawRequest {
    BatchWithdrawRequest {
        planchets: planchets.iter().map(|p| p.request.clone()).collect(),
    }
}

/// A withdrawn coin.
pub struct Coin {
    pub denom: Denom,
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    signature: Vec<u8>,
}

/// A merchant's contract: who is paid, the wire hash salt, the deadlines.
pub struct Contract {
    pub merchant: EddsaPrivateKey,
    pub payto: PaytoUri,
    pub salt: WireSalt,
    pub h_contract_terms: HashCode,
    pub timestamp: Timestamp,
    pub wire_deadline: Timestamp,
}

impl Contract {
    pub fn new(payto: PaytoUri, wire_deadline: Timestamp) -> Self {
        Self {
            merchant: EddsaPrivateKey::generate().expect("randomness"),
            payto,
            salt: WireSalt::from_bytes(cardcash_crypto::random_bytes().expect("randomness")),
            h_contract_terms: HashCode::from_bytes(
                cardcash_crypto::random_bytes().expect("randomness"),
            ),
            timestamp: Timestamp::now(),
            wire_deadline,
        }
    }

    pub fn h_wire(&self) -> HashCode {
        cardcash_crypto::h_wire(&self.payto.to_string(), &self.salt)
    }

    /// The batch deposit of `coins`, each spent in full, refundable until the contract's time.
    pub fn deposit(&self, coins: &[&Coin]) -> BatchDepositRequest {
        BatchDepositRequest {
            merchant_payto_uri: self.payto.clone(),
            wire_salt: self.salt,
            merchant_pub: self.merchant.public(),
            merchant_sig: None,
            h_contract_terms: self.h_contract_terms,
            wallet_data_hash: None,
            coins: coins
                .iter()
                .map(|coin| {
                    let message = DepositRequestV23 {
                        h_contract_terms: self.h_contract_terms,
                        h_age_commitment: [0; 32],
                        h_policy: HashCode::from_bytes([0; 64]),
                        h_wire: self.h_wire(),
                        h_denom_pub: coin.denom.h,
                        wallet_timestamp: self.timestamp,
                        refund_deadline: self.timestamp,
                        amount_with_fee: coin.denom.value,
                        deposit_fee: coin.denom.fee_deposit,
                        merchant_pub: self.merchant.public(),
                        wallet_data_hash: HashCode::from_bytes([0; 64]),
                    };
                    BatchDepositCoin {
                        contribution: coin.denom.value,
                        denom_pub_hash: coin.denom.h,
                        ub_sig: UnblindedSignature::Rsa {
                            rsa_signature: Base32Bytes::from_bytes(coin.signature.clone()),
                        },
                        coin_pub: coin.coin_pub,
                        h_age_commitment: None,
                        coin_sig: coin.coin_priv.sign(&message),
                    }
                })
                .collect(),
            policy: None,
            timestamp: self.timestamp,
            refund_deadline: Some(self.timestamp),
            wire_transfer_deadline: self.wire_deadline,
        }
    }
}
