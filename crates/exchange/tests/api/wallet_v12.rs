//! The test wallet speaking protocol v12 (wallet-core 0.9's shapes and signatures) to the
//! legacy face: denominations from the flat `denoms`, single and batch withdraw bodies, the
//! 392-byte deposit signature (1201 without `wallet_data_hash`) and the check of the 312-byte
//! single-coin deposit confirmation (1033). Planchets and unblinding are the v23 test wallet's
//! (the same for RSA in both protocols).

use cardcash_api::exchange::v12::{
    DenominationPublicKey, DepositRequest, DepositResponse, ExchangeKeysResponse, WithdrawRequest,
};
use cardcash_crypto::purpose::{DepositConfirmationV12, DepositRequestV12};
use cardcash_crypto::rsa;
use cardcash_util::{Amount, EddsaPublicKey, HashCode};

use crate::wallet::{Coin, Contract, Denom, DenomKey, Planchet};

/// Every denomination of the legacy `/keys` (`denoms`: RSA, age mask 0), as wallet-core reads
/// them: the hash computed from `denom_pub`.
pub fn denominations(keys: &ExchangeKeysResponse) -> Vec<Denom> {
    keys.denoms
        .iter()
        .map(|d| {
            let DenominationPublicKey::Rsa {
                rsa_public_key,
                age_mask: 0,
            } = &d.denom_pub
            else {
                panic!("the legacy face lists RSA without age restriction only")
            };
            let key = rsa::RsaPublicKey::decode(rsa_public_key.as_bytes()).unwrap();
            Denom {
                h: key.h_denom_pub(0),
                value: d.value,
                fee_withdraw: d.fee_withdraw,
                fee_deposit: d.fee_deposit,
                fee_refresh: d.fee_refresh,
                key: DenomKey::Rsa(key),
            }
        })
        .collect()
}

/// The legacy withdraw body of a planchet (the same fields as one planchet of a batch).
pub fn withdraw_request(p: &Planchet) -> WithdrawRequest {
    WithdrawRequest {
        denom_pub_hash: p.request.denom_pub_hash,
        reserve_sig: p.request.reserve_sig,
        coin_ev: p.request.coin_ev.clone(),
    }
}

/// The coin's v12 signature over a deposit of `contribution` under `contract`.
pub fn deposit_message(
    contract: &Contract,
    coin: &Coin,
    contribution: Amount,
) -> DepositRequestV12 {
    DepositRequestV12 {
        h_contract_terms: contract.h_contract_terms,
        h_age_commitment: [0; 32],
        h_policy: HashCode::from_bytes([0; 64]),
        h_wire: contract.h_wire(),
        h_denom_pub: coin.denom.h,
        wallet_timestamp: contract.timestamp,
        refund_deadline: contract.refund_deadline,
        amount_with_fee: contribution,
        deposit_fee: coin.denom.fee_deposit,
        merchant_pub: contract.merchant.public(),
    }
}

/// `POST /coins/$COIN_PUB/deposit` of `contribution` of `coin`, signed as wallet-core 0.9 signs.
pub fn deposit(contract: &Contract, coin: &Coin, contribution: Amount) -> DepositRequest {
    DepositRequest {
        contribution,
        merchant_payto_uri: contract.payto.clone(),
        wire_salt: contract.salt,
        h_contract_terms: contract.h_contract_terms,
        denom_pub_hash: coin.denom.h,
        ub_sig: coin.ub_sig(),
        timestamp: contract.timestamp,
        wire_transfer_deadline: contract.wire_deadline,
        refund_deadline: Some(contract.refund_deadline),
        merchant_pub: contract.merchant.public(),
        coin_sig: coin
            .coin_priv
            .sign(&deposit_message(contract, coin, contribution)),
        h_age_commitment: None,
    }
}

/// Checks the exchange's v12 deposit confirmation (as a 2022 merchant checks it): the 312-byte
/// 1033 over the coin and its contribution without the deposit fee, by `signer`.
#[track_caller]
pub fn assert_deposit_confirmed(
    contract: &Contract,
    coin: &Coin,
    contribution: Amount,
    answer: &DepositResponse,
    signer: &EddsaPublicKey,
) {
    assert_eq!(
        &answer.exchange_pub, signer,
        "signed by the current signing key"
    );
    let message = DepositConfirmationV12 {
        h_contract_terms: contract.h_contract_terms,
        h_wire: contract.h_wire(),
        h_policy: HashCode::from_bytes([0; 64]),
        exchange_timestamp: answer.exchange_timestamp,
        wire_deadline: contract.wire_deadline,
        refund_deadline: contract.refund_deadline,
        amount_without_fee: contribution.checked_sub(&coin.denom.fee_deposit).unwrap(),
        coin_pub: coin.coin_pub,
        merchant_pub: contract.merchant.public(),
    };
    cardcash_crypto::verify(&answer.exchange_pub, &answer.exchange_sig, &message)
        .expect("the v12 deposit confirmation (1033, 312 bytes) verifies");
}
