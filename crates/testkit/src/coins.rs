//! Coins for tests and benchmarks of whatever takes payments (the merchant): a reserve funded
//! by a bank transfer to the world's exchange ([`fund_reserve`]), RSA coins withdrawn from it
//! with the real protocol (`/keys`, blinded planchets signed by the reserve, `batch-withdraw`,
//! unblinded and verified: [`withdraw`]), and the deposit permissions a wallet gives a merchant
//! for a contract ([`Coin::pay_coin`], [`pay_request`]: the coin's signature, purpose 1201 in
//! the protocol v23 layout, over the contract hash, wire hash, timestamp, refund deadline,
//! contribution, deposit fee and merchant key).
//!
//! A deliberately small wallet: RSA denominations only (what [`crate::world`]'s exchange
//! offers), no refresh, no coin selection beyond "one coin per value asked for".

use std::time::Duration;

use cardcash_api::exchange::{
    BatchWithdrawRequest, BlindedDenominationSignature, CoinEnvelope, DenominationGroupKeys,
    UnblindedSignature, WithdrawPlanchet,
};
use cardcash_api::merchant::{PayCoin, PayRequest};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::ExchangeClient;
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{DepositRequestV23, WithdrawRequestV23};
use cardcash_crypto::{EddsaPrivateKey, rsa};
use cardcash_util::{Amount, Base32Bytes, BaseUrl, EddsaPublicKey, HashCode, Timestamp};
use cardcash_world::World;

/// An RSA denomination of an exchange's `/keys`.
#[derive(Clone, Debug)]
pub struct Denomination {
    pub h_denom: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refund: Amount,
    pub key: rsa::RsaPublicKey,
}

/// The RSA denominations of the exchange's current `/keys`.
pub async fn denominations(exchange: &ExchangeClient) -> Vec<Denomination> {
    let keys = exchange.keys().await.expect("the exchange's /keys");
    let mut out = Vec::new();
    for group in &keys.denominations {
        if let DenominationGroupKeys::Rsa { denoms } = &group.keys {
            for d in denoms {
                let key = rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes()).expect("an RSA key");
                out.push(Denomination {
                    h_denom: key.h_denom_pub(0),
                    value: group.value,
                    fee_withdraw: group.fee_withdraw,
                    fee_deposit: group.fee_deposit,
                    fee_refund: group.fee_refund,
                    key,
                });
            }
        }
    }
    out
}

/// A withdrawn coin: its key, its denomination and the exchange's (unblinded) signature.
#[derive(Clone)]
pub struct Coin {
    pub exchange_url: BaseUrl,
    pub denomination: Denomination,
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub ub_sig: UnblindedSignature,
}

impl std::fmt::Debug for Coin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coin")
            .field("coin_pub", &self.coin_pub)
            .field("value", &self.denomination.value)
            .finish_non_exhaustive()
    }
}

/// Credits `amount` to a new reserve at the world's exchange (a transfer from the bank's admin
/// account, seen by the exchange's wirewatch) and waits until the exchange shows it.
pub async fn fund_reserve(world: &World, amount: &Amount) -> EddsaPrivateKey {
    let reserve = EddsaPrivateKey::generate().expect("a reserve key");
    let bank = world.bank();
    let debit_account = bank
        .app()
        .ledger()
        .payto()
        .account_uri("admin", "Admin")
        .expect("the admin's payto URI");
    bank.exchange_wire_gateway()
        .add_incoming(&AddIncomingRequest {
            amount: *amount,
            reserve_pub: reserve.public(),
            debit_account,
        })
        .await
        .expect("the bank credits the exchange");
    let client = world.exchange().client();
    let reserve_pub = reserve.public();
    crate::wait_until(crate::WAIT, || async {
        client
            .reserve(&reserve_pub, Duration::from_secs(5))
            .await
            .is_ok_and(|summary| summary.balance == *amount)
    })
    .await;
    reserve
}

/// Withdraws one RSA coin of each of `values` from the world's exchange, from a reserve funded
/// with exactly their values plus withdraw fees.
pub async fn withdraw(world: &World, values: &[Amount]) -> Vec<Coin> {
    let client = world.exchange().client();
    let denoms = denominations(&client).await;
    let chosen: Vec<Denomination> = values
        .iter()
        .map(|v| {
            denoms
                .iter()
                .find(|d| d.value == *v)
                .unwrap_or_else(|| panic!("the exchange has no RSA coin of {v}"))
                .clone()
        })
        .collect();
    let currency = *values.first().expect("at least one coin").currency();
    let total = chosen.iter().fold(Amount::zero(&currency), |sum, d| {
        sum.checked_add(&d.value)
            .and_then(|s| s.checked_add(&d.fee_withdraw))
            .expect("the total of the coins")
    });
    let reserve = fund_reserve(world, &total).await;
    withdraw_from(&client, &reserve, &chosen).await
}

/// Withdraws one coin of each of `denominations` from `reserve`.
pub async fn withdraw_from(
    client: &ExchangeClient,
    reserve: &EddsaPrivateKey,
    denominations: &[Denomination],
) -> Vec<Coin> {
    let mut secrets = Vec::with_capacity(denominations.len());
    let mut planchets = Vec::with_capacity(denominations.len());
    for d in denominations {
        let coin_priv = EddsaPrivateKey::generate().expect("a coin key");
        let coin_pub = coin_priv.public();
        let bks = rsa::BlindingKeySecret::generate().expect("a blinding secret");
        let blinded =
            rsa::blind(&d.key, h_coin_pub(&coin_pub).as_bytes(), &bks).expect("blinding the coin");
        let h_ev = coin_envelope_hash(&d.h_denom, &blinded);
        let amount_with_fee = d.value.checked_add(&d.fee_withdraw).expect("value + fee");
        planchets.push(WithdrawPlanchet {
            denom_pub_hash: d.h_denom,
            reserve_sig: reserve.sign(&WithdrawRequestV23 {
                amount_with_fee,
                h_denom_pub: d.h_denom,
                h_coin_envelope: h_ev,
            }),
            coin_ev: CoinEnvelope::Rsa {
                rsa_blinded_planchet: Base32Bytes::from_bytes(blinded),
            },
        });
        secrets.push((coin_priv, bks));
    }
    let response = client
        .batch_withdraw(&reserve.public(), &BatchWithdrawRequest { planchets })
        .await
        .expect("the exchange signs the planchets");
    denominations
        .iter()
        .zip(secrets)
        .zip(&response.ev_sigs)
        .map(|((d, (coin_priv, bks)), sig)| {
            let BlindedDenominationSignature::Rsa {
                blinded_rsa_signature,
            } = &sig.ev_sig
            else {
                panic!("an RSA signature expected")
            };
            let coin_pub = coin_priv.public();
            let s = rsa::unblind(&d.key, blinded_rsa_signature.as_bytes(), &bks)
                .expect("unblinding the signature");
            rsa::verify(&d.key, h_coin_pub(&coin_pub).as_bytes(), &s)
                .expect("the exchange's signature over the coin");
            Coin {
                exchange_url: client.base_url().clone(),
                denomination: d.clone(),
                coin_priv,
                coin_pub,
                ub_sig: UnblindedSignature::Rsa {
                    rsa_signature: Base32Bytes::from_bytes(s),
                },
            }
        })
        .collect()
}

/// What a coin's deposit permission is about: the fields of the contract terms it signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositContract {
    pub h_contract_terms: HashCode,
    pub h_wire: HashCode,
    pub timestamp: Timestamp,
    pub refund_deadline: Timestamp,
    pub merchant_pub: EddsaPublicKey,
}

impl DepositContract {
    /// The deposit fields of claimed contract terms (as `POST /orders/$ID/claim` answers
    /// them); the contract hash computed as a wallet does.
    pub fn from_contract_terms(terms: &serde_json::Value) -> Self {
        fn parse<T: serde::de::DeserializeOwned>(terms: &serde_json::Value, name: &str) -> T {
            let value = terms
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("contract terms without {name}: {terms}"));
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{name}: {e}"))
        }
        Self {
            h_contract_terms: cardcash_crypto::h_contract_terms(terms)
                .expect("contract terms hash"),
            h_wire: parse(terms, "h_wire"),
            timestamp: parse(terms, "timestamp"),
            refund_deadline: parse(terms, "refund_deadline"),
            merchant_pub: parse(terms, "merchant_pub"),
        }
    }
}

impl Coin {
    /// The coin's deposit permission for `contract`, contributing `contribution` (deposit
    /// fee included).
    pub fn pay_coin(&self, contract: &DepositContract, contribution: Amount) -> PayCoin {
        let message = DepositRequestV23 {
            h_contract_terms: contract.h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire: contract.h_wire,
            h_denom_pub: self.denomination.h_denom,
            wallet_timestamp: contract.timestamp,
            refund_deadline: contract.refund_deadline,
            amount_with_fee: contribution,
            deposit_fee: self.denomination.fee_deposit,
            merchant_pub: contract.merchant_pub,
            wallet_data_hash: HashCode::from_bytes([0; 64]),
        };
        PayCoin {
            coin_pub: self.coin_pub,
            coin_sig: self.coin_priv.sign(&message),
            contribution,
            h_denom: self.denomination.h_denom,
            exchange_url: self.exchange_url.clone(),
            ub_sig: self.ub_sig.clone(),
        }
    }
}

/// `POST /orders/$ID/pay` of `coins` (each with its contribution) for `contract`.
pub fn pay_request(
    contract: &DepositContract,
    coins: &[(&Coin, Amount)],
    session_id: Option<&str>,
) -> PayRequest {
    PayRequest {
        coins: coins
            .iter()
            .map(|(coin, contribution)| coin.pay_coin(contract, *contribution))
            .collect(),
        session_id: session_id.map(str::to_owned),
    }
}
