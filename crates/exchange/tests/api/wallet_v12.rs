//! The test wallet speaking protocol v12 (wallet-core 0.9's shapes and signatures) to the
//! legacy face: denominations from the flat `denoms`, single and batch withdraw bodies, the
//! 392-byte deposit signature (1201 without `wallet_data_hash`) and the check of the 312-byte
//! single-coin deposit confirmation (1033), and refresh as wallet-core 0.9 derives it
//! (`deriveRefreshSession`: transfer keys from a session seed, fresh coins from each transfer
//! secret by `fresh_coin`, the v12 commitment `melt_commitment_v12`; link from the old coin's
//! key). Withdraw planchets and unblinding are the v23 test wallet's (the same for RSA in both
//! protocols).

use cardcash_api::exchange::v12::{
    BlindedDenominationSignature, CoinEnvelope, DenominationPublicKey, DepositRequest,
    DepositResponse, ExchangeKeysResponse, ExchangeWithdrawValues, LinkResponse, MeltRequest,
    RevealRequest, TransferPrivateKey, WithdrawRequest,
};
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{DepositConfirmationV12, DepositRequestV12, Link, Melt};
use cardcash_crypto::refresh::{
    KAPPA, fresh_coin, melt_commitment_v12, transfer_keypair, transfer_secret_from_coin_key,
    transfer_secret_from_transfer_key,
};
use cardcash_crypto::{EcdhePrivateKey, EddsaPrivateKey, rsa};
use cardcash_util::{Amount, Base32Bytes, EcdhePublicKey, EddsaPublicKey, HashCode};

use crate::wallet::{Coin, CoinSignature, Contract, Denom, DenomKey, Planchet};

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

/// One fresh coin of a v12 refresh: its key, blinding secret and blinded message.
pub struct FreshV12 {
    pub coin_priv: EddsaPrivateKey,
    pub bks: rsa::BlindingKeySecret,
    pub blinded: Vec<u8>,
}

/// A refresh of one coin as wallet-core 0.9 prepares it (RSA fresh coins only, as it can).
pub struct RefreshV12 {
    pub old: Coin,
    pub fresh: Vec<Denom>,
    pub transfer_privs: Vec<EcdhePrivateKey>,
    pub transfer_pubs: Vec<EcdhePublicKey>,
    /// `planchets[k][j]`: fresh coin `j` under transfer key `k`.
    pub planchets: Vec<Vec<FreshV12>>,
    pub amount_with_fee: Amount,
    pub rc: HashCode,
}

fn rsa_key(d: &Denom) -> &rsa::RsaPublicKey {
    match &d.key {
        DenomKey::Rsa(k) => k,
        DenomKey::Cs(_) => panic!("wallet-core 0.9 refreshes into RSA coins only"),
    }
}

/// Fresh coin `j` of a transfer secret for `denom` (wallet-core's `setupRefreshPlanchet`).
fn fresh(secret: &cardcash_crypto::refresh::TransferSecret, j: u32, denom: &Denom) -> FreshV12 {
    let (coin_priv, bks) = fresh_coin(secret, j);
    let blinded = rsa::blind(
        rsa_key(denom),
        h_coin_pub(&coin_priv.public()).as_bytes(),
        &bks,
    )
    .unwrap();
    FreshV12 {
        coin_priv,
        bks,
        blinded,
    }
}

/// The coin of `p` for `denom` from the exchange's blind signature (verified).
fn unblind_fresh(p: &FreshV12, denom: &Denom, sig: &BlindedDenominationSignature) -> Coin {
    let BlindedDenominationSignature::Rsa {
        blinded_rsa_signature,
    } = sig
    else {
        panic!("an RSA signature expected")
    };
    let key = rsa_key(denom);
    let coin_pub = p.coin_priv.public();
    let s = rsa::unblind(key, blinded_rsa_signature.as_bytes(), &p.bks).unwrap();
    rsa::verify(key, h_coin_pub(&coin_pub).as_bytes(), &s).expect("a valid fresh coin");
    Coin {
        denom: denom.clone(),
        coin_priv: EddsaPrivateKey::from_bytes(&p.coin_priv.to_bytes()),
        coin_pub,
        signature: CoinSignature::Rsa(s),
    }
}

impl RefreshV12 {
    /// Prepares the refresh of `old` into one coin of each of `fresh`, melting their values and
    /// withdraw fees plus the old coin's refresh fee.
    pub fn prepare(old: &Coin, fresh_denoms: &[Denom]) -> Self {
        let mut amount_with_fee = old.denom.fee_refresh;
        for d in fresh_denoms {
            amount_with_fee = amount_with_fee
                .checked_add(&d.value)
                .unwrap()
                .checked_add(&d.fee_withdraw)
                .unwrap();
        }
        let seed: [u8; 32] = cardcash_crypto::random_bytes().unwrap();
        let (transfer_privs, transfer_pubs): (Vec<_>, Vec<_>) = (0..KAPPA as u32)
            .map(|k| transfer_keypair(&seed, k))
            .unzip();
        let planchets: Vec<Vec<FreshV12>> = transfer_privs
            .iter()
            .map(|tp| {
                let secret = transfer_secret_from_transfer_key(tp, &old.coin_pub).unwrap();
                fresh_denoms
                    .iter()
                    .enumerate()
                    .map(|(j, d)| fresh(&secret, j as u32, d))
                    .collect()
            })
            .collect();
        let blinded: Vec<Vec<Vec<u8>>> = planchets
            .iter()
            .map(|row| row.iter().map(|p| p.blinded.clone()).collect())
            .collect();
        let hs: Vec<HashCode> = fresh_denoms.iter().map(|d| d.h).collect();
        let rc = melt_commitment_v12(
            &transfer_pubs,
            &hs,
            &old.coin_pub,
            &amount_with_fee,
            &blinded,
        )
        .unwrap();
        Self {
            old: old.clone(),
            fresh: fresh_denoms.to_vec(),
            transfer_privs,
            transfer_pubs,
            planchets,
            amount_with_fee,
            rc,
        }
    }

    /// The melt body wallet-core 0.9 sends (with the coin's key), signed by the old coin.
    pub fn melt_request(&self) -> MeltRequest {
        MeltRequest {
            coin_pub: Some(self.old.coin_pub),
            denom_pub_hash: self.old.denom.h,
            denom_sig: self.old.ub_sig(),
            confirm_sig: self.old.coin_priv.sign(&Melt {
                rc: self.rc,
                h_denom_pub: self.old.denom.h,
                h_age_commitment: [0; 32],
                amount_with_fee: self.amount_with_fee,
                melt_fee: self.old.denom.fee_refresh,
            }),
            value_with_fee: self.amount_with_fee,
            rc: self.rc,
            age_commitment_hash: None,
        }
    }

    /// The reveal for `noreveal_index` (wallet-core's `assembleRefreshRevealRequest`).
    pub fn reveal_request(&self, noreveal_index: u32) -> RevealRequest {
        let kept = noreveal_index as usize;
        let transfer_pub = self.transfer_pubs[kept];
        RevealRequest {
            transfer_pub,
            transfer_privs: (0..KAPPA)
                .filter(|k| *k != kept)
                .map(|k| TransferPrivateKey::from_bytes(self.transfer_privs[k].to_bytes()))
                .collect(),
            link_sigs: self.planchets[kept]
                .iter()
                .zip(&self.fresh)
                .map(|(p, d)| {
                    self.old.coin_priv.sign(&Link {
                        h_denom_pub: d.h,
                        transfer_pub,
                        h_age_commitment: [0; 32],
                        coin_envelope_hash: coin_envelope_hash(&d.h, &p.blinded),
                    })
                })
                .collect(),
            coin_evs: self.planchets[kept]
                .iter()
                .map(|p| CoinEnvelope::Rsa {
                    rsa_blinded_planchet: Base32Bytes::from_bytes(p.blinded.clone()),
                })
                .collect(),
            new_denoms_h: self.fresh.iter().map(|d| d.h).collect(),
            old_age_commitment: None,
            rms: None,
        }
    }

    /// The fresh coins from the reveal's signatures (unblinded and verified).
    pub fn coins(
        &self,
        noreveal_index: u32,
        ev_sigs: &[BlindedDenominationSignature],
    ) -> Vec<Coin> {
        assert_eq!(ev_sigs.len(), self.fresh.len());
        self.planchets[noreveal_index as usize]
            .iter()
            .zip(&self.fresh)
            .zip(ev_sigs)
            .map(|((p, d), s)| unblind_fresh(p, d, s))
            .collect()
    }
}

/// The fresh coins of every revealed melt of `old`, re-derived from a v12 link answer with the
/// old coin's private key (every link signature checked), as a wallet restoring a backup does.
pub fn coins_from_link(old: &Coin, link: &LinkResponse, denoms: &[Denom]) -> Vec<Vec<Coin>> {
    link.iter()
        .map(|session| {
            let secret =
                transfer_secret_from_coin_key(&old.coin_priv, &session.transfer_pub).unwrap();
            session
                .new_coins
                .iter()
                .map(|c| {
                    let DenominationPublicKey::Rsa {
                        rsa_public_key,
                        age_mask: 0,
                    } = &c.denom_pub
                    else {
                        panic!("a v12 RSA key expected: {:?}", c.denom_pub)
                    };
                    assert_eq!(c.ewv, ExchangeWithdrawValues::Rsa);
                    let h = rsa::RsaPublicKey::decode(rsa_public_key.as_bytes())
                        .unwrap()
                        .h_denom_pub(0);
                    let denom = denoms
                        .iter()
                        .find(|d| d.h == h)
                        .expect("a listed denomination");
                    let p = fresh(&secret, c.coin_idx, denom);
                    cardcash_crypto::verify(
                        &old.coin_pub,
                        &c.link_sig,
                        &Link {
                            h_denom_pub: h,
                            transfer_pub: session.transfer_pub,
                            h_age_commitment: [0; 32],
                            coin_envelope_hash: coin_envelope_hash(&h, &p.blinded),
                        },
                    )
                    .expect("the link signature verifies");
                    unblind_fresh(&p, denom, &c.ev_sig)
                })
                .collect()
        })
        .collect()
}
