//! A minimal wallet for the tests: reserve keys, planchets (RSA and CS), unblinding; refresh
//! in [`refresh`].

pub mod refresh;

use cardcash_api::exchange::{
    BatchDepositCoin, BatchDepositRequest, BlindedDenominationSignature, CoinEnvelope, CsNonce,
    CsPoint, CsScalar, CsrWithdrawRequest, DenominationGroupKeys, ExchangeKeysResponse,
    ExchangeWithdrawValues, UnblindedSignature, WithdrawPlanchet,
};
use cardcash_api::exchange::{BlindingKeySecret, RecoupRequest};
use cardcash_client::ExchangeClient;
use cardcash_crypto::coin::{coin_envelope_hash, coin_envelope_hash_cs, h_coin_pub};
use cardcash_crypto::purpose::DepositRequestV23;
use cardcash_crypto::purpose::WithdrawRequestV23;
use cardcash_crypto::purpose::{Recoup, RecoupRefresh};
use cardcash_crypto::{EddsaPrivateKey, cs, rsa};
use cardcash_util::{Amount, Base32Bytes, EddsaPublicKey, HashCode};
use cardcash_util::{HashCode as Hash, PaytoUri, Timestamp, WireSalt};

/// A denomination as the wallet uses it.
#[derive(Clone, Debug)]
pub struct Denom {
    pub h: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub key: DenomKey,
}

#[derive(Clone, Debug)]
pub enum DenomKey {
    Rsa(rsa::RsaPublicKey),
    Cs([u8; 32]),
}

/// Every denomination of `/keys`.
pub fn denominations(keys: &ExchangeKeysResponse) -> Vec<Denom> {
    let mut out = Vec::new();
    for g in &keys.denominations {
        match &g.keys {
            DenominationGroupKeys::Rsa { denoms } => {
                for d in denoms {
                    let k = rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes()).unwrap();
                    out.push(Denom {
                        h: k.h_denom_pub(0),
                        value: g.value,
                        fee_withdraw: g.fee_withdraw,
                        fee_deposit: g.fee_deposit,
                        fee_refresh: g.fee_refresh,
                        key: DenomKey::Rsa(k),
                    });
                }
            }
            DenominationGroupKeys::Cs { denoms } => {
                for d in denoms {
                    let k = *d.cs_pub.as_bytes();
                    out.push(Denom {
                        h: cs::h_denom_pub(&k, 0),
                        value: g.value,
                        fee_withdraw: g.fee_withdraw,
                        fee_deposit: g.fee_deposit,
                        fee_refresh: g.fee_refresh,
                        key: DenomKey::Cs(k),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A planchet in the making, and after the exchange signed it, a coin.
pub struct Planchet {
    pub denom: Denom,
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub request: WithdrawPlanchet,
    secrets: Secrets,
}

#[expect(
    clippy::large_enum_variant,
    reason = "a test planchet's secrets, built once per planchet; boxing would only obscure them"
)]
enum Secrets {
    Rsa(rsa::BlindingKeySecret),
    Cs {
        secrets: cs::BlindingSecrets,
        r_blind: cs::ClausePair,
        /// What a recoup reveals: the seed of the blinding secrets, the session nonce and the
        /// exchange's `R` values.
        seed: [u8; 32],
        nonce: [u8; 32],
        r_pub: cs::ClausePair,
    },
}

/// A coin: its key and the unblinded denomination signature.
#[derive(Clone)]
pub struct Coin {
    pub denom: Denom,
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub signature: CoinSignature,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CoinSignature {
    Rsa(Vec<u8>),
    Cs { r: [u8; 32], s: [u8; 32] },
}

/// A fresh planchet of `denom` for `reserve` (CS asks the exchange for its R values first).
pub async fn planchet(
    exchange: &ExchangeClient,
    reserve: &EddsaPrivateKey,
    denom: &Denom,
) -> Planchet {
    let coin_priv = EddsaPrivateKey::generate().unwrap();
    let coin_pub = coin_priv.public();
    let msg = h_coin_pub(&coin_pub);
    let (coin_ev, h_ev, secrets) = match &denom.key {
        DenomKey::Rsa(k) => {
            let bks = rsa::BlindingKeySecret::generate().unwrap();
            let blinded = rsa::blind(k, msg.as_bytes(), &bks).unwrap();
            let h = coin_envelope_hash(&denom.h, &blinded);
            (
                CoinEnvelope::Rsa {
                    rsa_blinded_planchet: Base32Bytes::from_bytes(blinded),
                },
                h,
                Secrets::Rsa(bks),
            )
        }
        DenomKey::Cs(k) => {
            let nonce: [u8; 32] = cardcash_crypto::random_bytes().unwrap();
            let ewv = exchange
                .csr_withdraw(&CsrWithdrawRequest {
                    nonce: CsNonce::from_bytes(nonce),
                    denom_pub_hash: denom.h,
                })
                .await
                .unwrap()
                .ewv;
            let ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } = ewv else {
                panic!("CS values expected")
            };
            let seed: [u8; 32] = cardcash_crypto::random_bytes().unwrap();
            let secrets = cs::blinding_secrets(&seed);
            let r_pub = [*r_pub_0.as_bytes(), *r_pub_1.as_bytes()];
            let (c, r_blind) = cs::blind(&secrets, &r_pub, k, msg.as_bytes()).unwrap();
            let h = coin_envelope_hash_cs(&denom.h, &nonce, &c);
            (
                CoinEnvelope::Cs {
                    cs_nonce: CsNonce::from_bytes(nonce),
                    cs_blinded_c0: CsScalar::from_bytes(c[0]),
                    cs_blinded_c1: CsScalar::from_bytes(c[1]),
                },
                h,
                Secrets::Cs {
                    secrets,
                    r_blind,
                    seed,
                    nonce,
                    r_pub,
                },
            )
        }
    };
    let amount_with_fee = denom.value.checked_add(&denom.fee_withdraw).unwrap();
    let reserve_sig = reserve.sign(&WithdrawRequestV23 {
        amount_with_fee,
        h_denom_pub: denom.h,
        h_coin_envelope: h_ev,
    });
    Planchet {
        denom: denom.clone(),
        coin_priv,
        coin_pub,
        request: WithdrawPlanchet {
            denom_pub_hash: denom.h,
            reserve_sig,
            coin_ev,
        },
        secrets,
    }
}

impl Planchet {
    /// Unblinds the exchange's signature and checks it: the coin.
    pub fn unblind(&self, sig: &BlindedDenominationSignature) -> Coin {
        let msg = h_coin_pub(&self.coin_pub);
        let signature = match (&self.secrets, sig, &self.denom.key) {
            (
                Secrets::Rsa(bks),
                BlindedDenominationSignature::Rsa {
                    blinded_rsa_signature,
                },
                DenomKey::Rsa(k),
            ) => {
                let s = rsa::unblind(k, blinded_rsa_signature.as_bytes(), bks).unwrap();
                rsa::verify(k, msg.as_bytes(), &s).expect("a valid RSA coin signature");
                CoinSignature::Rsa(s)
            }
            (
                Secrets::Cs {
                    secrets, r_blind, ..
                },
                BlindedDenominationSignature::Cs { b, s },
                DenomKey::Cs(k),
            ) => {
                let (r, s) = cs::unblind_signature(secrets, r_blind, *b, s.as_bytes()).unwrap();
                cs::verify(k, &r, &s, msg.as_bytes()).expect("a valid CS coin signature");
                CoinSignature::Cs { r, s }
            }
            (_, other, _) => panic!("signature does not fit the planchet: {other:?}"),
        };
        Coin {
            denom: self.denom.clone(),
            coin_priv: EddsaPrivateKey::from_bytes(&self.coin_priv.to_bytes()),
            coin_pub: self.coin_pub,
            signature,
        }
    }
}

impl Planchet {
    /// The recoup request of `coin` (this planchet's coin): reveals the blinding secret,
    /// signed by the coin (purpose 1203).
    pub fn recoup_request(&self, coin: &Coin) -> RecoupRequest {
        let (bks, ewv, nonce) = self.blinding();
        recoup_request(coin, bks, ewv, nonce, false)
    }

    /// What the coin was blinded with: secret (or CS seed), exchange values, CS nonce.
    pub fn blinding(&self) -> ([u8; 32], ExchangeWithdrawValues, Option<[u8; 32]>) {
        match &self.secrets {
            Secrets::Rsa(bks) => (*bks.as_bytes(), ExchangeWithdrawValues::Rsa, None),
            Secrets::Cs {
                seed, nonce, r_pub, ..
            } => (
                *seed,
                ExchangeWithdrawValues::Cs {
                    r_pub_0: CsPoint::from_bytes(r_pub[0]),
                    r_pub_1: CsPoint::from_bytes(r_pub[1]),
                },
                Some(*nonce),
            ),
        }
    }
}

/// The recoup (`refresh`: recoup-refresh, purpose 1206; else 1203) request of `coin`, blinded
/// with `bks` (the CS seed for CS), the exchange's values `ewv` and the CS `nonce`.
pub fn recoup_request(
    coin: &Coin,
    bks: [u8; 32],
    ewv: ExchangeWithdrawValues,
    nonce: Option<[u8; 32]>,
    refresh: bool,
) -> RecoupRequest {
    let coin_sig = if refresh {
        coin.coin_priv.sign(&RecoupRefresh {
            h_denom_pub: coin.denom.h,
            coin_bks: bks,
        })
    } else {
        coin.coin_priv.sign(&Recoup {
            h_denom_pub: coin.denom.h,
            coin_bks: bks,
        })
    };
    RecoupRequest {
        denom_pub_hash: coin.denom.h,
        denom_sig: coin.ub_sig(),
        ewv,
        coin_blind_key_secret: BlindingKeySecret::from_bytes(bks),
        coin_sig,
        h_age_commitment: None,
        nonce: nonce.map(CsNonce::from_bytes),
    }
}

impl Coin {
    /// The coin's denomination signature in wire form.
    pub fn ub_sig(&self) -> UnblindedSignature {
        match &self.signature {
            CoinSignature::Rsa(s) => UnblindedSignature::Rsa {
                rsa_signature: Base32Bytes::from_bytes(s.clone()),
            },
            CoinSignature::Cs { r, s } => UnblindedSignature::Cs {
                cs_signature_r: CsPoint::from_bytes(*r),
                cs_signature_s: CsScalar::from_bytes(*s),
            },
        }
    }
}

/// What a merchant's deposit is about.
pub struct Contract {
    pub merchant: EddsaPrivateKey,
    pub payto: PaytoUri,
    pub salt: WireSalt,
    pub h_contract_terms: Hash,
    pub timestamp: Timestamp,
    pub refund_deadline: Timestamp,
    pub wire_deadline: Timestamp,
}

impl Contract {
    pub fn new(payto: PaytoUri, wire_deadline: Timestamp) -> Self {
        let now = Timestamp::now();
        Self {
            merchant: EddsaPrivateKey::generate().unwrap(),
            payto,
            salt: WireSalt::from_bytes(cardcash_crypto::random_bytes().unwrap()),
            h_contract_terms: Hash::from_bytes(cardcash_crypto::random_bytes().unwrap()),
            timestamp: now,
            refund_deadline: now,
            wire_deadline,
        }
    }

    pub fn h_wire(&self) -> Hash {
        cardcash_crypto::h_wire(&self.payto.to_string(), &self.salt)
    }

    /// The batch deposit of `coins` (each with its contribution), signed by the coins.
    pub fn deposit(&self, coins: &[(&Coin, Amount)]) -> BatchDepositRequest {
        BatchDepositRequest {
            merchant_payto_uri: self.payto.clone(),
            wire_salt: self.salt,
            merchant_pub: self.merchant.public(),
            merchant_sig: None,
            h_contract_terms: self.h_contract_terms,
            wallet_data_hash: None,
            coins: coins
                .iter()
                .map(|(coin, contribution)| {
                    let message = DepositRequestV23 {
                        h_contract_terms: self.h_contract_terms,
                        h_age_commitment: [0; 32],
                        h_policy: Hash::from_bytes([0; 64]),
                        h_wire: self.h_wire(),
                        h_denom_pub: coin.denom.h,
                        wallet_timestamp: self.timestamp,
                        refund_deadline: self.refund_deadline,
                        amount_with_fee: *contribution,
                        deposit_fee: coin.denom.fee_deposit,
                        merchant_pub: self.merchant.public(),
                        wallet_data_hash: Hash::from_bytes([0; 64]),
                    };
                    BatchDepositCoin {
                        contribution: *contribution,
                        denom_pub_hash: coin.denom.h,
                        ub_sig: coin.ub_sig(),
                        coin_pub: coin.coin_pub,
                        h_age_commitment: None,
                        coin_sig: coin.coin_priv.sign(&message),
                    }
                })
                .collect(),
            policy: None,
            timestamp: self.timestamp,
            refund_deadline: Some(self.refund_deadline),
            wire_transfer_deadline: self.wire_deadline,
        }
    }
}
