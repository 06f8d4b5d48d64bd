//! The benchmark's wallet and merchant: RSA planchets (coin key, blinding, the reserve's
//! signature), unblinding with a check of every coin, the coins' deposit signatures, and the
//! refresh of what a deposit left (melt and reveal requests, as the v23 C client derives them,
//! with `cardcash_crypto::refresh`), and a coin's payment of a merchant's claimed contract
//! (`POST /orders/$ID/pay`, for `cardcash merchant bench`). The expensive steps run here,
//! before or after the timed phases, never during them.
//!
//! RSA only: the benchmark measures the exchange against the machine's raw RSA-2048 signing
//! rate. (The exchange's own integration tests carry a wallet with Clause-Schnorr too.)

use anyhow::{Context as _, bail};
use cardcash_api::exchange::{
    BatchDepositCoin, BatchDepositRequest, BlindedDenominationSignature, CoinEnvelope,
    DenominationGroupKeys, ExchangeKeysResponse, MeltRequest, RevealRequest, TransferPrivateKey,
    UnblindedSignature, WithdrawPlanchet, WithdrawSignature,
};
use cardcash_api::merchant::{PayCoin, PayRequest};
use cardcash_crypto::coin::{coin_envelope_hash, h_coin_pub};
use cardcash_crypto::purpose::{DepositRequestV23, Link, Melt, WithdrawRequestV23};
use cardcash_crypto::refresh::{
    FreshBlinding, FreshKey, FreshPlanchet, KAPPA, RefreshEnvelope, RefreshMasterSecret,
    melt_commitment_v23, transfer_priv_v23, transfer_secret_from_transfer_key,
};
use cardcash_crypto::{EcdhePrivateKey, EddsaPrivateKey, rsa};
use cardcash_util::{
    Amount, Base32Bytes, BaseUrl, EcdhePublicKey, EddsaPublicKey, HashCode, PaytoUri, Timestamp,
    WireSalt,
};

/// The RSA denomination the benchmark withdraws.
#[derive(Clone, Debug)]
pub struct Denom {
    pub h: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
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
                fee_refresh: group.fee_refresh,
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

impl Coin {
    fn ub_sig(&self) -> UnblindedSignature {
        UnblindedSignature::Rsa {
            rsa_signature: Base32Bytes::from_bytes(self.signature.clone()),
        }
    }
}

/// Unblinds an RSA signature of `denom` for `coin_pub` and checks it (see [`Planchet::unblind`]).
fn unblind_rsa(
    denom: &Denom,
    coin_pub: &EddsaPublicKey,
    blinding: &rsa::BlindingKeySecret,
    sig: &BlindedDenominationSignature,
) -> anyhow::Result<Vec<u8>> {
    let BlindedDenominationSignature::Rsa {
        blinded_rsa_signature,
    } = sig
    else {
        bail!("the exchange answered an RSA planchet with another cipher");
    };
    let signature = rsa::unblind(&denom.key, blinded_rsa_signature.as_bytes(), blinding)?;
    // Without the gcd check of `rsa::verify`, which protects a wallet from a malicious
    // modulus and costs more than the rest of the verification: the benchmark trusts the
    // exchange it started, and the exchange checks every coin again when it is spent.
    rsa::verify_own_key(&denom.key, h_coin_pub(coin_pub).as_bytes(), &signature)
        .context("the exchange's signature does not unblind to a valid coin")?;
    Ok(signature)
}

impl Planchet {
    /// Unblinds the exchange's signature and verifies it: the coin.
    pub fn unblind(
        self,
        denom: &Denom,
        sig: &BlindedDenominationSignature,
    ) -> anyhow::Result<Coin> {
        let signature = unblind_rsa(denom, &self.coin_pub, &self.blinding, sig)?;
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

    /// The batch deposit of `coins`, each contributing `contribution` (deposit fee included),
    /// signed by the coins. The wire deadline is a day away, so that the aggregator has no work
    /// during the benchmark.
    pub fn deposit(
        &self,
        denom: &Denom,
        coins: &[Coin],
        contribution: Amount,
    ) -> anyhow::Result<BatchDepositRequest> {
        let h_contract_terms = HashCode::from_bytes(cardcash_crypto::random_bytes()?);
        let now = Timestamp::from_secs(Timestamp::now().as_secs());
        let wire_deadline = Timestamp::from_secs(now.as_secs() + 86_400);
        let contract = DepositContract {
            h_contract_terms,
            h_wire: self.h_wire,
            timestamp: now,
            refund_deadline: now,
            merchant_pub: self.key.public(),
        };
        let coins = coins
            .iter()
            .map(|coin| {
                let message = contract.permission(denom, contribution);
                BatchDepositCoin {
                    contribution,
                    denom_pub_hash: denom.h,
                    ub_sig: coin.ub_sig(),
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

/// What a coin's deposit permission (purpose 1201, v23 layout) is about: the contract's hash
/// and the fields of the contract terms the exchange checks again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositContract {
    pub h_contract_terms: HashCode,
    pub h_wire: HashCode,
    pub timestamp: Timestamp,
    pub refund_deadline: Timestamp,
    pub merchant_pub: EddsaPublicKey,
}

impl DepositContract {
    /// The deposit fields of the contract terms a merchant's claim answered (`POST
    /// /orders/$ID/claim`), the hash computed over them as a wallet does.
    pub fn from_contract_terms(terms: &serde_json::Value) -> anyhow::Result<Self> {
        fn field<T: serde::de::DeserializeOwned>(
            terms: &serde_json::Value,
            name: &str,
        ) -> anyhow::Result<T> {
            let value = terms
                .get(name)
                .with_context(|| format!("the contract terms have no {name}"))?;
            serde_json::from_value(value.clone())
                .with_context(|| format!("the contract terms' {name}"))
        }
        Ok(Self {
            h_contract_terms: cardcash_crypto::h_contract_terms(terms)
                .context("hashing the contract terms")?,
            h_wire: field(terms, "h_wire")?,
            timestamp: field(terms, "timestamp")?,
            refund_deadline: field(terms, "refund_deadline")?,
            merchant_pub: field(terms, "merchant_pub")?,
        })
    }

    /// What a coin of `denom` contributing `contribution` (deposit fee included) signs.
    fn permission(&self, denom: &Denom, contribution: Amount) -> DepositRequestV23 {
        DepositRequestV23 {
            h_contract_terms: self.h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire: self.h_wire,
            h_denom_pub: denom.h,
            wallet_timestamp: self.timestamp,
            refund_deadline: self.refund_deadline,
            amount_with_fee: contribution,
            deposit_fee: denom.fee_deposit,
            merchant_pub: self.merchant_pub,
            wallet_data_hash: HashCode::from_bytes([0; 64]),
        }
    }

    /// A merchant's `POST /orders/$ID/pay` of `coins` (of `denom`, from the exchange at
    /// `exchange_url`), each contributing `contribution`: the wallet's deposit permissions.
    pub fn pay_request(
        &self,
        exchange_url: &BaseUrl,
        denom: &Denom,
        coins: &[&Coin],
        contribution: Amount,
        session_id: Option<&str>,
    ) -> PayRequest {
        PayRequest {
            coins: coins
                .iter()
                .map(|coin| PayCoin {
                    coin_pub: coin.coin_pub,
                    coin_sig: coin.coin_priv.sign(&self.permission(denom, contribution)),
                    contribution,
                    h_denom: denom.h,
                    exchange_url: exchange_url.clone(),
                    ub_sig: coin.ub_sig(),
                })
                .collect(),
            session_id: session_id.map(str::to_owned),
        }
    }
}

/// The refresh of one coin into one fresh coin of each of `fresh` (RSA), melting exactly what
/// they cost (value + withdraw fee each) plus the melt fee: everything the wallet derives before
/// the melt, the melt request, and what the reveal and the unblinding need afterwards.
pub struct Refresh {
    pub old_pub: EddsaPublicKey,
    old_priv: EddsaPrivateKey,
    fresh: Vec<Denom>,
    transfer_privs: Vec<EcdhePrivateKey>,
    transfer_pubs: Vec<EcdhePublicKey>,
    /// `planchets[k][j]`: fresh coin `j` under transfer key `k`.
    planchets: Vec<Vec<FreshPlanchet>>,
    pub rc: HashCode,
    pub melt: MeltRequest,
}

impl Refresh {
    /// Prepares the refresh of `coin` (of `old`) into `fresh`, as the v23 C client does
    /// without CS coins: a random refresh master secret, κ transfer keys from it and the coin's
    /// key, every fresh planchet of every set, the commitment over all κ sets (without the
    /// master secret), the melt signed by the coin (1202).
    pub fn prepare(coin: &Coin, old: &Denom, fresh: &[Denom]) -> anyhow::Result<Self> {
        let mut amount_with_fee = old.fee_refresh;
        for d in fresh {
            amount_with_fee = amount_with_fee.checked_add(&d.with_fee()?)?;
        }
        let rms = RefreshMasterSecret::generate()?;
        let transfer_privs: Vec<EcdhePrivateKey> = (0..KAPPA as u32)
            .map(|k| transfer_priv_v23(&rms, &coin.coin_priv, k))
            .collect();
        let transfer_pubs: Vec<EcdhePublicKey> =
            transfer_privs.iter().map(|p| p.public()).collect();
        let mut planchets = Vec::with_capacity(KAPPA);
        for tp in &transfer_privs {
            let secret = transfer_secret_from_transfer_key(tp, &coin.coin_pub)?;
            let row = fresh
                .iter()
                .enumerate()
                .map(|(j, d)| FreshPlanchet::derive(&secret, j as u32, &FreshKey::Rsa(&d.key)))
                .collect::<Result<Vec<_>, _>>()?;
            planchets.push(row);
        }
        let envelopes: Vec<Vec<RefreshEnvelope>> = planchets
            .iter()
            .map(|row| row.iter().map(|p| p.envelope.clone()).collect())
            .collect();
        let hs: Vec<HashCode> = fresh.iter().map(|d| d.h).collect();
        let rc = melt_commitment_v23(
            None,
            &transfer_pubs,
            &hs,
            &coin.coin_pub,
            &amount_with_fee,
            &envelopes,
        )?;
        let melt = MeltRequest {
            denom_pub_hash: old.h,
            denom_sig: coin.ub_sig(),
            confirm_sig: coin.coin_priv.sign(&Melt {
                rc,
                h_denom_pub: old.h,
                h_age_commitment: [0; 32],
                amount_with_fee,
                melt_fee: old.fee_refresh,
            }),
            value_with_fee: amount_with_fee,
            rc,
            age_commitment_hash: None,
            rms: None,
        };
        Ok(Self {
            old_pub: coin.coin_pub,
            old_priv: coin.coin_priv.clone(),
            fresh: fresh.to_vec(),
            transfer_privs,
            transfer_pubs,
            planchets,
            rc,
            melt,
        })
    }

    /// The reveal for the exchange's `noreveal_index`: the other sets' transfer private keys,
    /// the kept set's envelopes and their link signatures (1204).
    pub fn reveal(&self, noreveal_index: u32) -> anyhow::Result<RevealRequest> {
        let kept = noreveal_index as usize;
        if kept >= KAPPA {
            bail!("noreveal_index {noreveal_index} is not below κ = {KAPPA}");
        }
        let transfer_pub = self.transfer_pubs[kept];
        let mut link_sigs = Vec::with_capacity(self.fresh.len());
        let mut coin_evs = Vec::with_capacity(self.fresh.len());
        for (p, d) in self.planchets[kept].iter().zip(&self.fresh) {
            let RefreshEnvelope::Rsa(bm) = &p.envelope else {
                bail!("the benchmark refreshes into RSA coins only");
            };
            link_sigs.push(self.old_priv.sign(&Link {
                h_denom_pub: d.h,
                transfer_pub,
                h_age_commitment: [0; 32],
                coin_envelope_hash: p.envelope.hash(&d.h),
            }));
            coin_evs.push(CoinEnvelope::Rsa {
                rsa_blinded_planchet: Base32Bytes::from_bytes(bm.clone()),
            });
        }
        Ok(RevealRequest {
            transfer_pub,
            transfer_privs: (0..KAPPA)
                .filter(|k| *k != kept)
                .map(|k| TransferPrivateKey::from_bytes(self.transfer_privs[k].to_bytes()))
                .collect(),
            link_sigs,
            coin_evs,
            new_denoms_h: self.fresh.iter().map(|d| d.h).collect(),
            old_age_commitment: None,
            rms: None,
        })
    }

    /// Unblinds and checks the reveal's signatures: the fresh coins.
    pub fn coins(
        self,
        noreveal_index: u32,
        ev_sigs: &[WithdrawSignature],
    ) -> anyhow::Result<Vec<Coin>> {
        if ev_sigs.len() != self.fresh.len() {
            bail!(
                "{} signatures for {} fresh coins",
                ev_sigs.len(),
                self.fresh.len()
            );
        }
        let kept = noreveal_index as usize;
        let row = self
            .planchets
            .into_iter()
            .nth(kept)
            .context("noreveal_index out of range")?;
        row.into_iter()
            .zip(&self.fresh)
            .zip(ev_sigs)
            .map(|((p, d), sig)| {
                let FreshBlinding::Rsa(bks) = &p.blinding else {
                    bail!("the benchmark refreshes into RSA coins only");
                };
                let signature = unblind_rsa(d, &p.coin_pub, bks, &sig.ev_sig)?;
                Ok(Coin {
                    coin_priv: p.coin_priv,
                    coin_pub: p.coin_pub,
                    signature,
                })
            })
            .collect()
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
            fee_refresh: "CHF:0.02".parse().unwrap(),
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
            .deposit(&denom, std::slice::from_ref(&coin), denom.value)
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

    /// A payment of claimed contract terms: the coin signs the terms' hash and the fields the
    /// terms name (not the merchant's other fields), for the merchant's key in the terms.
    #[test]
    fn a_pay_request_signs_the_claimed_contract() {
        let key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let denom = denom(&key);
        let reserve = EddsaPrivateKey::generate().unwrap();
        let planchet = planchet(&reserve, &denom).unwrap();
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &planchet.request.coin_ev
        else {
            panic!("an RSA envelope")
        };
        let blind = rsa::sign_blinded(&key, rsa_blinded_planchet.as_bytes()).unwrap();
        let coin = planchet
            .unblind(
                &denom,
                &BlindedDenominationSignature::Rsa {
                    blinded_rsa_signature: Base32Bytes::from_bytes(blind),
                },
            )
            .unwrap();
        let merchant = EddsaPrivateKey::generate().unwrap();
        let h_wire = HashCode::from_bytes([3; 64]);
        let terms = serde_json::json!({
            "amount": "CHF:0.99",
            "summary": "one",
            "order_id": "2026.340-X",
            "h_wire": h_wire,
            "timestamp": {"t_s": 1_700_000_000},
            "refund_deadline": {"t_s": 1_700_000_100},
            "merchant_pub": merchant.public(),
            "nonce": EddsaPrivateKey::generate().unwrap().public(),
        });
        let contract = DepositContract::from_contract_terms(&terms).unwrap();
        assert_eq!(
            contract.h_contract_terms,
            cardcash_crypto::h_contract_terms(&terms).unwrap()
        );
        let exchange: BaseUrl = "http://exchange.example/".parse().unwrap();
        let request = contract.pay_request(&exchange, &denom, &[&coin], denom.value, Some("s"));
        assert_eq!(request.session_id.as_deref(), Some("s"));
        let [paid] = request.coins.as_slice() else {
            panic!("one coin")
        };
        assert_eq!(
            (paid.coin_pub, paid.h_denom, &paid.exchange_url),
            (coin.coin_pub, denom.h, &exchange)
        );
        let signed = |refund_deadline_s: u64| DepositRequestV23 {
            h_contract_terms: contract.h_contract_terms,
            h_age_commitment: [0; 32],
            h_policy: HashCode::from_bytes([0; 64]),
            h_wire,
            h_denom_pub: denom.h,
            wallet_timestamp: Timestamp::from_secs(1_700_000_000),
            refund_deadline: Timestamp::from_secs(refund_deadline_s),
            amount_with_fee: denom.value,
            deposit_fee: denom.fee_deposit,
            merchant_pub: merchant.public(),
            wallet_data_hash: HashCode::from_bytes([0; 64]),
        };
        cardcash_crypto::verify(&coin.coin_pub, &paid.coin_sig, &signed(1_700_000_100)).unwrap();
        assert!(
            cardcash_crypto::verify(&coin.coin_pub, &paid.coin_sig, &signed(1_700_000_000))
                .is_err()
        );
        let mut without = terms.clone();
        without.as_object_mut().unwrap().remove("h_wire");
        assert!(DepositContract::from_contract_terms(&without).is_err());
    }

    /// The exchange's side of a reveal, by hand: the revealed transfer keys re-derive their
    /// sets, the commitment comes out as the melt said, the link signatures verify, and the
    /// kept envelopes, signed, unblind to valid fresh coins.
    #[test]
    fn a_refresh_commits_to_what_its_reveal_shows_and_unblinds_to_fresh_coins() {
        use cardcash_crypto::refresh::{fresh_envelope_own_key, transfer_secret_from_transfer_key};

        let old_key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let fresh_key = rsa::RsaPrivateKey::generate(1024).unwrap();
        let old = denom(&old_key);
        let fresh = Denom {
            value: "CHF:0.5".parse().unwrap(),
            ..denom(&fresh_key)
        };
        let reserve = EddsaPrivateKey::generate().unwrap();
        let planchet = planchet(&reserve, &old).unwrap();
        let CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } = &planchet.request.coin_ev
        else {
            panic!("an RSA envelope")
        };
        let blind = rsa::sign_blinded(&old_key, rsa_blinded_planchet.as_bytes()).unwrap();
        let coin = planchet
            .unblind(
                &old,
                &BlindedDenominationSignature::Rsa {
                    blinded_rsa_signature: Base32Bytes::from_bytes(blind),
                },
            )
            .unwrap();

        let fresh_set = [fresh.clone(), fresh.clone()];
        let refresh = Refresh::prepare(&coin, &old, &fresh_set).unwrap();
        // 2 × (0.5 + 0.01) + the melt fee 0.02
        assert_eq!(refresh.melt.value_with_fee, "CHF:1.04".parse().unwrap());
        cardcash_crypto::verify(
            &coin.coin_pub,
            &refresh.melt.confirm_sig,
            &Melt {
                rc: refresh.rc,
                h_denom_pub: old.h,
                h_age_commitment: [0; 32],
                amount_with_fee: refresh.melt.value_with_fee,
                melt_fee: old.fee_refresh,
            },
        )
        .unwrap();

        let noreveal = 1u32;
        let reveal = refresh.reveal(noreveal).unwrap();
        assert_eq!(reveal.transfer_privs.len(), KAPPA - 1);
        assert!(refresh.reveal(KAPPA as u32).is_err());
        // Rebuild all κ sets as the exchange does and recompute rc.
        let mut revealed = reveal.transfer_privs.iter();
        let mut transfer_pubs = Vec::new();
        let mut envelopes = Vec::new();
        for k in 0..KAPPA as u32 {
            if k == noreveal {
                transfer_pubs.push(reveal.transfer_pub);
                envelopes.push(
                    reveal
                        .coin_evs
                        .iter()
                        .map(|ev| match ev {
                            CoinEnvelope::Rsa {
                                rsa_blinded_planchet,
                            } => RefreshEnvelope::Rsa(rsa_blinded_planchet.as_bytes().to_vec()),
                            _ => panic!("RSA"),
                        })
                        .collect::<Vec<_>>(),
                );
                continue;
            }
            let tp = EcdhePrivateKey::from_bytes(*revealed.next().unwrap().as_bytes());
            transfer_pubs.push(tp.public());
            let secret = transfer_secret_from_transfer_key(&tp, &coin.coin_pub).unwrap();
            envelopes.push(
                (0..2u32)
                    .map(|j| {
                        fresh_envelope_own_key(&secret, j, &FreshKey::Rsa(&fresh.key)).unwrap()
                    })
                    .collect(),
            );
        }
        let rc = melt_commitment_v23(
            None,
            &transfer_pubs,
            &[fresh.h, fresh.h],
            &coin.coin_pub,
            &refresh.melt.value_with_fee,
            &envelopes,
        )
        .unwrap();
        assert_eq!(
            rc, refresh.rc,
            "the reveal must reproduce the melt's commitment"
        );
        let kept = &envelopes[noreveal as usize];
        for (sig, env) in reveal.link_sigs.iter().zip(kept) {
            cardcash_crypto::verify(
                &coin.coin_pub,
                sig,
                &Link {
                    h_denom_pub: fresh.h,
                    transfer_pub: reveal.transfer_pub,
                    h_age_commitment: [0; 32],
                    coin_envelope_hash: env.hash(&fresh.h),
                },
            )
            .unwrap();
        }
        let ev_sigs: Vec<WithdrawSignature> = kept
            .iter()
            .map(|env| {
                let RefreshEnvelope::Rsa(bm) = env else {
                    panic!("RSA")
                };
                WithdrawSignature {
                    ev_sig: BlindedDenominationSignature::Rsa {
                        blinded_rsa_signature: Base32Bytes::from_bytes(
                            rsa::sign_blinded(&fresh_key, bm).unwrap(),
                        ),
                    },
                }
            })
            .collect();
        let other = Refresh::prepare(&coin, &old, &fresh_set).unwrap();
        assert!(other.coins(noreveal, &ev_sigs[..1]).is_err());
        // Another refresh's signatures are not that refresh's coins.
        let other = Refresh::prepare(&coin, &old, &fresh_set).unwrap();
        assert!(other.coins(noreveal, &ev_sigs).is_err());
        let coins = refresh.coins(noreveal, &ev_sigs).unwrap();
        assert_eq!(coins.len(), 2);
        for c in &coins {
            rsa::verify(&fresh.key, h_coin_pub(&c.coin_pub).as_bytes(), &c.signature).unwrap();
        }
        assert_ne!(coins[0].coin_pub, coins[1].coin_pub);
    }
}
