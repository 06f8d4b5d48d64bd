//! Coins as GNU Taler's wallets of late 2022 (wallet-core 0.9, exchange protocol v12) give
//! them to a merchant: the deposit permission signed in the v12 layout (purpose 1201, 392
//! bytes: no wallet data hash) and the coin named by the exchange's legacy face
//! (`<exchange>legacy/`). The coins themselves are [`crate::coins`]' (the legacy face and the
//! v23 face share denominations and coins).

use cardcash_api::merchant::{PayCoin, PayRequest};
use cardcash_crypto::purpose::DepositRequestV12;
use cardcash_util::{Amount, BaseUrl, HashCode};

use crate::coins::{Coin, DepositContract};

/// The legacy face of the exchange at `exchange` (`<exchange>legacy/`).
pub fn legacy_face(exchange: &BaseUrl) -> BaseUrl {
    exchange
        .join_base("legacy/")
        .expect("the legacy face's URL")
}

/// `coin`'s v12 deposit permission for `contract`, contributing `contribution` (deposit fee
/// included), naming the exchange `exchange_url` (the legacy face).
pub fn pay_coin_v12(
    coin: &Coin,
    contract: &DepositContract,
    contribution: Amount,
    exchange_url: &BaseUrl,
) -> PayCoin {
    let message = DepositRequestV12 {
        h_contract_terms: contract.h_contract_terms,
        h_age_commitment: [0; 32],
        h_policy: HashCode::from_bytes([0; 64]),
        h_wire: contract.h_wire,
        h_denom_pub: coin.denomination.h_denom,
        wallet_timestamp: contract.timestamp,
        refund_deadline: contract.refund_deadline,
        amount_with_fee: contribution,
        deposit_fee: coin.denomination.fee_deposit,
        merchant_pub: contract.merchant_pub,
    };
    PayCoin {
        coin_pub: coin.coin_pub,
        coin_sig: coin.coin_priv.sign(&message),
        contribution,
        h_denom: coin.denomination.h_denom,
        exchange_url: exchange_url.clone(),
        ub_sig: coin.ub_sig.clone(),
    }
}

/// `POST /orders/$ID/pay` of `coins` signed as a 2022 wallet signs them, at `exchange_url`.
pub fn pay_request_v12(
    contract: &DepositContract,
    coins: &[(&Coin, Amount)],
    exchange_url: &BaseUrl,
    session_id: Option<&str>,
) -> PayRequest {
    PayRequest {
        coins: coins
            .iter()
            .map(|(coin, contribution)| pay_coin_v12(coin, contract, *contribution, exchange_url))
            .collect(),
        session_id: session_id.map(str::to_owned),
    }
}
