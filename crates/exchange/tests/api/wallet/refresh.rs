//! The test wallet's refresh, as the v23 C client does it (`exchange_api_refresh_common.c`):
//! a random refresh master secret, transfer keys from it and the old coin's key, fresh coins
//! from each transfer secret (CS ones with the `R` values of `/csr-melt`), the commitment over
//! all κ sets, the melt and reveal requests, unblinding, and recovering the fresh coins from
//! `/coins/$PUB/link`. All derivations are `cardcash_crypto::refresh`'s.

use cardcash_api::exchange::{
    BlindedDenominationSignature, CoinEnvelope, CsNonce, CsPoint, CsScalar, CsrMeltCoin,
    CsrMeltRequest, DenominationPublicKey, ExchangeWithdrawValues, LinkResponse, MeltRequest,
    RefreshMasterSecret as WireRms, RevealRequest, TransferPrivateKey,
};
use cardcash_client::ExchangeClient;
use cardcash_crypto::coin::h_coin_pub;
use cardcash_crypto::purpose::{Link, Melt};
use cardcash_crypto::refresh::{
    FreshBlinding, FreshKey, FreshPlanchet, KAPPA, RefreshEnvelope, RefreshMasterSecret,
    cs_refresh_nonce, melt_commitment_v23, transfer_priv_v23, transfer_secret_from_coin_key,
    transfer_secret_from_transfer_key,
};
use cardcash_crypto::{EcdhePrivateKey, EddsaPrivateKey, cs, rsa};
use cardcash_util::{Amount, Base32Bytes, EcdhePublicKey, HashCode};

use super::{Coin, CoinSignature, Denom, DenomKey};

/// A refresh of one coin in the making: everything the wallet derives before the melt.
pub struct Refresh {
    pub old: Coin,
    pub fresh: Vec<Denom>,
    pub rms: RefreshMasterSecret,
    /// Whether a fresh coin is CS (then `rms` is part of `rc` and sent).
    pub uses_cs: bool,
    pub transfer_privs: Vec<EcdhePrivateKey>,
    pub transfer_pubs: Vec<EcdhePublicKey>,
    /// `planchets[k][j]`: fresh coin `j` under transfer key `k`.
    pub planchets: Vec<Vec<FreshPlanchet>>,
    /// Per fresh coin: the CS `R` values (`None` for RSA).
    pub r_pubs: Vec<Option<[[u8; 32]; 2]>>,
    pub amount_with_fee: Amount,
    pub rc: HashCode,
}

/// A fresh coin with what its recoup-refresh would reveal.
pub struct FreshCoin {
    pub coin: Coin,
    pub blinding: FreshBlinding,
    pub ewv: ExchangeWithdrawValues,
    pub cs_nonce: Option<[u8; 32]>,
}

impl FreshCoin {
    /// What the coin was blinded with: secret (or CS seed), exchange values, CS nonce.
    pub fn blinding(&self) -> ([u8; 32], ExchangeWithdrawValues, Option<[u8; 32]>) {
        let bks = match &self.blinding {
            FreshBlinding::Rsa(bks) => *bks.as_bytes(),
            FreshBlinding::Cs { seed, .. } => *seed,
        };
        (bks, self.ewv.clone(), self.cs_nonce)
    }
}

/// What `denom`'s coins cost in a refresh: value + withdraw fee.
pub fn cost(denom: &Denom) -> Amount {
    denom.value.checked_add(&denom.fee_withdraw).unwrap()
}

fn fresh_key<'a>(
    denom: &'a Denom,
    j: usize,
    rms: &RefreshMasterSecret,
    r: Option<[[u8; 32]; 2]>,
) -> FreshKey<'a> {
    match &denom.key {
        DenomKey::Rsa(k) => FreshKey::Rsa(k),
        DenomKey::Cs(public) => FreshKey::Cs {
            public,
            nonce: cs_refresh_nonce(rms, j as u32),
            r_pub: r.expect("R values of a CS coin"),
        },
    }
}

impl Refresh {
    /// Prepares the refresh of `old` into one coin of each of `fresh`, melting exactly their
    /// values and withdraw fees plus the melt fee (CS coins ask `/csr-melt` first).
    pub async fn prepare(client: &ExchangeClient, old: &Coin, fresh: &[Denom]) -> Self {
        let mut amount = old.denom.fee_refresh;
        for d in fresh {
            amount = amount.checked_add(&cost(d)).unwrap();
        }
        Self::prepare_melting(client, old, fresh, amount).await
    }

    /// [`Self::prepare`] melting `amount_with_fee` (it may exceed what the coins cost).
    pub async fn prepare_melting(
        client: &ExchangeClient,
        old: &Coin,
        fresh: &[Denom],
        amount_with_fee: Amount,
    ) -> Self {
        let rms = RefreshMasterSecret::generate().unwrap();
        let cs_coins: Vec<(usize, &Denom)> = fresh
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d.key, DenomKey::Cs(_)))
            .collect();
        let mut r_pubs: Vec<Option<[[u8; 32]; 2]>> = vec![None; fresh.len()];
        if !cs_coins.is_empty() {
            let answer = client
                .csr_melt(&CsrMeltRequest {
                    rms: WireRms::from_bytes(*rms.as_bytes()),
                    nks: cs_coins
                        .iter()
                        .map(|(j, d)| CsrMeltCoin {
                            coin_offset: *j as u32,
                            denom_pub_hash: d.h,
                        })
                        .collect(),
                })
                .await
                .unwrap();
            for ((j, _), v) in cs_coins.iter().zip(answer.ewvs) {
                let ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } = v.ewv else {
                    panic!("CS values expected")
                };
                r_pubs[*j] = Some([*r_pub_0.as_bytes(), *r_pub_1.as_bytes()]);
            }
        }
        let transfer_privs: Vec<EcdhePrivateKey> = (0..KAPPA as u32)
            .map(|k| transfer_priv_v23(&rms, &old.coin_priv, k))
            .collect();
        let transfer_pubs: Vec<EcdhePublicKey> =
            transfer_privs.iter().map(|p| p.public()).collect();
        let planchets: Vec<Vec<FreshPlanchet>> = transfer_privs
            .iter()
            .map(|tp| {
                let secret = transfer_secret_from_transfer_key(tp, &old.coin_pub).unwrap();
                fresh
                    .iter()
                    .enumerate()
                    .map(|(j, d)| {
                        FreshPlanchet::derive(&secret, j as u32, &fresh_key(d, j, &rms, r_pubs[j]))
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        let uses_cs = !cs_coins.is_empty();
        let envelopes: Vec<Vec<RefreshEnvelope>> = planchets
            .iter()
            .map(|row| row.iter().map(|p| p.envelope.clone()).collect())
            .collect();
        let hs: Vec<HashCode> = fresh.iter().map(|d| d.h).collect();
        let rc = melt_commitment_v23(
            uses_cs.then_some(&rms),
            &transfer_pubs,
            &hs,
            &old.coin_pub,
            &amount_with_fee,
            &envelopes,
        )
        .unwrap();
        Self {
            old: old.clone(),
            fresh: fresh.to_vec(),
            rms,
            uses_cs,
            transfer_privs,
            transfer_pubs,
            planchets,
            r_pubs,
            amount_with_fee,
            rc,
        }
    }

    /// The melt request, signed by the old coin (1202).
    pub fn melt_request(&self) -> MeltRequest {
        MeltRequest {
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
            rms: self
                .uses_cs
                .then(|| WireRms::from_bytes(*self.rms.as_bytes())),
        }
    }

    /// The reveal for the exchange's `noreveal_index`: the other sets' transfer private keys,
    /// the kept set's envelopes and their link signatures (1204).
    pub fn reveal_request(&self, noreveal_index: u32) -> RevealRequest {
        let kept = noreveal_index as usize;
        let transfer_pub = self.transfer_pubs[kept];
        let mut link_sigs = Vec::new();
        let mut coin_evs = Vec::new();
        for (p, d) in self.planchets[kept].iter().zip(&self.fresh) {
            link_sigs.push(self.old.coin_priv.sign(&Link {
                h_denom_pub: d.h,
                transfer_pub,
                h_age_commitment: [0; 32],
                coin_envelope_hash: p.envelope.hash(&d.h),
            }));
            coin_evs.push(wire_envelope(&p.envelope));
        }
        RevealRequest {
            transfer_pub,
            transfer_privs: (0..KAPPA)
                .filter(|k| *k != kept)
                .map(|k| TransferPrivateKey::from_bytes(self.transfer_privs[k].to_bytes()))
                .collect(),
            link_sigs,
            coin_evs,
            new_denoms_h: self.fresh.iter().map(|d| d.h).collect(),
            old_age_commitment: None,
            rms: self
                .uses_cs
                .then(|| WireRms::from_bytes(*self.rms.as_bytes())),
        }
    }

    /// Unblinds and verifies the reveal's signatures: the fresh coins.
    pub fn coins(
        &self,
        noreveal_index: u32,
        ev_sigs: &[BlindedDenominationSignature],
    ) -> Vec<FreshCoin> {
        let kept = noreveal_index as usize;
        assert_eq!(ev_sigs.len(), self.fresh.len());
        self.planchets[kept]
            .iter()
            .zip(&self.fresh)
            .zip(ev_sigs)
            .enumerate()
            .map(|(j, ((p, d), sig))| {
                let ewv = match self.r_pubs[j] {
                    None => ExchangeWithdrawValues::Rsa,
                    Some([r0, r1]) => ExchangeWithdrawValues::Cs {
                        r_pub_0: CsPoint::from_bytes(r0),
                        r_pub_1: CsPoint::from_bytes(r1),
                    },
                };
                let cs_nonce = match &p.envelope {
                    RefreshEnvelope::Cs { nonce, .. } => Some(*nonce),
                    RefreshEnvelope::Rsa(_) => None,
                };
                FreshCoin {
                    coin: unblind(p, d, sig),
                    blinding: p.blinding.clone(),
                    ewv,
                    cs_nonce,
                }
            })
            .collect()
    }
}

/// The wire form of an envelope.
pub fn wire_envelope(envelope: &RefreshEnvelope) -> CoinEnvelope {
    match envelope {
        RefreshEnvelope::Rsa(bm) => CoinEnvelope::Rsa {
            rsa_blinded_planchet: Base32Bytes::from_bytes(bm.clone()),
        },
        RefreshEnvelope::Cs { nonce, c } => CoinEnvelope::Cs {
            cs_nonce: CsNonce::from_bytes(*nonce),
            cs_blinded_c0: CsScalar::from_bytes(c[0]),
            cs_blinded_c1: CsScalar::from_bytes(c[1]),
        },
    }
}

/// The fresh coin of `p` for `denom` from the exchange's blind signature (verified).
fn unblind(p: &FreshPlanchet, denom: &Denom, sig: &BlindedDenominationSignature) -> Coin {
    let msg = h_coin_pub(&p.coin_pub);
    let signature = match (&p.blinding, sig, &denom.key) {
        (
            FreshBlinding::Rsa(bks),
            BlindedDenominationSignature::Rsa {
                blinded_rsa_signature,
            },
            DenomKey::Rsa(k),
        ) => {
            let s = rsa::unblind(k, blinded_rsa_signature.as_bytes(), bks).unwrap();
            rsa::verify(k, msg.as_bytes(), &s).expect("a valid RSA fresh coin");
            CoinSignature::Rsa(s)
        }
        (
            FreshBlinding::Cs {
                secrets, r_blind, ..
            },
            BlindedDenominationSignature::Cs { b, s },
            DenomKey::Cs(k),
        ) => {
            let (r, s) = cs::unblind_signature(secrets, r_blind, *b, s.as_bytes()).unwrap();
            cs::verify(k, &r, &s, msg.as_bytes()).expect("a valid CS fresh coin");
            CoinSignature::Cs { r, s }
        }
        (_, other, _) => panic!("signature does not fit the fresh coin: {other:?}"),
    };
    Coin {
        denom: denom.clone(),
        coin_priv: EddsaPrivateKey::from_bytes(&p.coin_priv.to_bytes()),
        coin_pub: p.coin_pub,
        signature,
    }
}

/// The fresh coins `link` shows for `old`, re-derived from the old coin's private key alone
/// (as a wallet restoring its coins does): every link signature and blind signature checked.
/// `denoms` are the exchange's denominations (from `/keys`).
pub fn coins_from_link(old: &Coin, link: &LinkResponse, denoms: &[Denom]) -> Vec<Vec<Coin>> {
    link.iter()
        .map(|session| {
            let secret =
                transfer_secret_from_coin_key(&old.coin_priv, &session.transfer_pub).unwrap();
            session
                .new_coins
                .iter()
                .map(|c| {
                    let h = match &c.denom_pub {
                        DenominationPublicKey::Rsa { rsa_pub, .. } => {
                            rsa::RsaPublicKey::decode(rsa_pub.as_bytes())
                                .unwrap()
                                .h_denom_pub(0)
                        }
                        DenominationPublicKey::Cs { cs_pub, .. } => {
                            cs::h_denom_pub(cs_pub.as_bytes(), 0)
                        }
                    };
                    let denom = denoms
                        .iter()
                        .find(|d| d.h == h)
                        .expect("a denomination of /keys");
                    let key = match (&denom.key, &c.ewv, &c.cs_nonce) {
                        (DenomKey::Rsa(k), ExchangeWithdrawValues::Rsa, None) => FreshKey::Rsa(k),
                        (
                            DenomKey::Cs(public),
                            ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 },
                            Some(nonce),
                        ) => FreshKey::Cs {
                            public,
                            nonce: *nonce.as_bytes(),
                            r_pub: [*r_pub_0.as_bytes(), *r_pub_1.as_bytes()],
                        },
                        other => panic!("link values do not fit the denomination: {other:?}"),
                    };
                    let p = FreshPlanchet::derive(&secret, c.coin_idx, &key).unwrap();
                    cardcash_crypto::verify(
                        &old.coin_pub,
                        &c.link_sig,
                        &Link {
                            h_denom_pub: h,
                            transfer_pub: session.transfer_pub,
                            h_age_commitment: [0; 32],
                            coin_envelope_hash: p.envelope.hash(&h),
                        },
                    )
                    .expect("the link signature verifies");
                    unblind(&p, denom, &c.ev_sig)
                })
                .collect()
        })
        .collect()
}
