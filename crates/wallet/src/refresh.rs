//! Refresh (docs.taler.net core/api-exchange "Refreshing"; protocol v23 as the C client does
//! it): a coin is melted into fresh coins worth what it was worth minus the melt fee and the
//! fresh coins' withdraw fees. State machine over the wallet database: `melting → revealing →
//! done`.
//!
//! The old coin is marked spent in the transaction that creates the refresh, before the melt
//! leaves. Every transfer key and fresh coin derives from the refresh master secret stored with
//! the group (`cardcash_crypto::refresh`), so a melt or reveal retried after a crash is the
//! same request and the exchange answers it the same way (same `noreveal_index`, same
//! signatures). The melt takes exactly what the fresh coins cost plus the melt fee (what no
//! fresh coin fits stays on the old coin at the exchange; the wallet does not track such
//! remainders yet).

use std::collections::HashMap;

use cardcash_api::exchange::{
    BlindedDenominationSignature, CoinEnvelope, CsNonce, CsPoint, CsScalar, CsrMeltCoin,
    CsrMeltRequest, ExchangeWithdrawValues, MeltRequest, RefreshMasterSecret as WireRms,
    RevealRequest, TransferPrivateKey, UnblindedSignature,
};
use cardcash_crypto::coin::h_coin_pub;
use cardcash_crypto::purpose::{Link, Melt};
use cardcash_crypto::refresh::{
    FreshBlinding, FreshKey, FreshPlanchet, KAPPA, RefreshEnvelope, RefreshMasterSecret,
    cs_refresh_nonce, melt_commitment_v23, transfer_priv_v23, transfer_secret_from_transfer_key,
};
use cardcash_crypto::{EcdhePrivateKey, cs, rsa};
use cardcash_util::{Amount, Base32Bytes, EcdhePublicKey, EddsaPublicKey, HashCode, Timestamp};

use crate::db::{CoinRow, CoinStatus, RefreshGroupRow, RefreshState};
use crate::denom::{Denom, DenomKey, select_withdrawal};
use crate::error::{WalletError, WalletResult};
use crate::{Notification, Step, Wallet};

/// `txn:refresh:<id>`.
pub fn refresh_transaction_id(refresh_id: &str) -> String {
    format!("txn:refresh:{refresh_id}")
}

/// Everything derived for a melt and its reveal.
struct Prepared {
    fresh: Vec<Denom>,
    uses_cs: bool,
    transfer_privs: Vec<EcdhePrivateKey>,
    transfer_pubs: Vec<EcdhePublicKey>,
    /// `planchets[k][j]`: fresh coin `j` under transfer key `k`.
    planchets: Vec<Vec<FreshPlanchet>>,
    rc: HashCode,
}

impl Wallet {
    /// Refreshes each of `coins` (fresh coins of this wallet) into fresh coins; returns the
    /// refresh transactions, run to the end.
    pub async fn force_refresh(&self, coins: &[EddsaPublicKey]) -> WalletResult<Vec<String>> {
        let mut ids = Vec::new();
        for coin_pub in coins {
            let coin = self
                .store()
                .coin(coin_pub)?
                .ok_or_else(|| WalletError::BadRequest(format!("unknown coin {coin_pub}")))?;
            if coin.status != CoinStatus::Fresh {
                return Err(WalletError::BadRequest(format!(
                    "coin {coin_pub} is {}",
                    coin.status.as_str()
                )));
            }
            ids.push(self.start_refresh(&coin).await?);
        }
        for id in &ids {
            self.process_refresh(id).await?;
        }
        Ok(ids.iter().map(|id| refresh_transaction_id(id)).collect())
    }

    /// Creates the refresh of what is left of `coin` (its [`CoinRow::remaining`]): fresh coins
    /// for it minus the melt fee, chosen from current keys. Returns the refresh id; the
    /// refresh itself runs in [`Self::process_refresh`].
    pub(crate) async fn start_refresh(&self, coin: &CoinRow) -> WalletResult<String> {
        // Fresh coins of current keys only.
        self.refresh_keys_if_stale(&coin.exchange).await?;
        let denoms = self.store().denominations(&coin.exchange)?;
        let old = find_denom(&denoms, &coin.h_denom_pub)?;
        let budget = coin.remaining.checked_sub(&old.fee_refresh).map_err(|_| {
            WalletError::DenominationsInsufficient(format!(
                "{} (the melt fee is {})",
                coin.remaining, old.fee_refresh
            ))
        })?;
        let lasting = self.lasting_denominations(&coin.exchange)?;
        let selection = select_withdrawal(&budget, &lasting, Timestamp::now());
        if selection.coins.is_empty() {
            return Err(WalletError::DenominationsInsufficient(budget.to_string()));
        }
        let amount = selection
            .total_cost()
            .checked_add(&old.fee_refresh)
            .map_err(|e| WalletError::BadRequest(format!("melt amount: {e}")))?;
        let refresh_id = cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>()?);
        let row = RefreshGroupRow {
            refresh_id: refresh_id.clone(),
            state: RefreshState::Melting,
            exchange: coin.exchange.clone(),
            old_coin_pub: coin.coin_pub,
            rms: cardcash_crypto::random_bytes::<32>()?,
            amount,
            noreveal_index: None,
            created: Timestamp::now(),
            finished: None,
            last_error: None,
        };
        let fresh = selection
            .planchet_denoms()
            .iter()
            .map(|d| d.h_denom_pub)
            .collect();
        if !self
            .store()
            .create_refresh(row, fresh, coin.remaining)
            .await?
        {
            return Err(WalletError::BadRequest(format!(
                "coin {} changed meanwhile (spent or refreshed)",
                coin.coin_pub
            )));
        }
        self.notify(Notification::TransactionStateTransition {
            transaction_id: refresh_transaction_id(&refresh_id),
            old_state: "none".into(),
            new_state: RefreshState::Melting.as_str().into(),
        });
        self.notify(Notification::BalanceChange);
        Ok(refresh_id)
    }

    /// Refreshes every fresh coin whose denomination expires within the expiry margin (while
    /// the exchange still takes it), each on its own; a coin no fresh coin fits into is left
    /// as it is. Returns the refresh transactions.
    pub async fn refresh_expiring_coins(&self) -> WalletResult<Vec<String>> {
        let now = Timestamp::now();
        let margin = self.expiry_margin();
        let mut denoms: HashMap<cardcash_util::BaseUrl, Vec<Denom>> = HashMap::new();
        let mut ids = Vec::new();
        for coin in self.store().coins()? {
            if coin.status != CoinStatus::Fresh {
                continue;
            }
            if !denoms.contains_key(&coin.exchange) {
                // A revoked denomination's coins cannot be melted (they need a recoup).
                let revoked = self.store().revoked_denominations(&coin.exchange)?;
                let mut list = self.store().denominations(&coin.exchange)?;
                list.retain(|d| !revoked.contains(&d.h_denom_pub));
                denoms.insert(coin.exchange.clone(), list);
            }
            let Some(d) = denoms[&coin.exchange]
                .iter()
                .find(|d| d.h_denom_pub == coin.h_denom_pub)
            else {
                continue;
            };
            if !d.expires_within(now, margin) || d.stamp_expire_deposit <= now {
                continue;
            }
            match self.force_refresh(&[coin.coin_pub]).await {
                Ok(mut done) => ids.append(&mut done),
                Err(WalletError::DenominationsInsufficient(why)) => {
                    tracing::info!(coin = %coin.coin_pub, why, "expiring coin too small to refresh");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ids)
    }

    /// Runs one refresh to the end: melt, reveal, fresh coins stored. A failure is recorded
    /// and returned; the next run starts where it stopped.
    pub(crate) async fn process_refresh(&self, refresh_id: &str) -> WalletResult<()> {
        loop {
            let g = self
                .store()
                .refresh(refresh_id)?
                .ok_or_else(|| WalletError::UnknownTransaction(refresh_id.to_owned()))?;
            let step = match g.state {
                RefreshState::Done => return Ok(()),
                RefreshState::Melting => self.melt(&g).await,
                RefreshState::Revealing => self.reveal(&g).await,
            };
            match step {
                Ok(()) => {
                    let now = self
                        .store()
                        .refresh(refresh_id)?
                        .map_or(g.state, |n| n.state);
                    if now != g.state {
                        self.notify(Notification::TransactionStateTransition {
                            transaction_id: refresh_transaction_id(refresh_id),
                            old_state: g.state.as_str().into(),
                            new_state: now.as_str().into(),
                        });
                    }
                }
                Err(e) => {
                    self.store()
                        .record_refresh_error(refresh_id, e.to_string())
                        .await?;
                    return Err(e);
                }
            }
        }
    }

    /// Derives the κ sets of fresh coins (CS ones with the exchange's `R` values).
    async fn prepare_refresh(&self, g: &RefreshGroupRow, old: &CoinRow) -> WalletResult<Prepared> {
        let denoms = self.store().denominations(&g.exchange)?;
        let fresh: Vec<Denom> = self
            .store()
            .refresh_planchets(&g.refresh_id)?
            .iter()
            .map(|h| find_denom(&denoms, h).cloned())
            .collect::<WalletResult<_>>()?;
        let rms = RefreshMasterSecret::from_bytes(g.rms);
        let cs_coins: Vec<(u32, &Denom)> = (0u32..)
            .zip(&fresh)
            .filter(|(_, d)| matches!(d.key, DenomKey::Cs(_)))
            .collect();
        let mut r_pubs: Vec<Option<cs::ClausePair>> = vec![None; fresh.len()];
        if !cs_coins.is_empty() {
            let answer = self
                .exchange_client(&g.exchange)
                .csr_melt(&CsrMeltRequest {
                    rms: WireRms::from_bytes(g.rms),
                    nks: cs_coins
                        .iter()
                        .map(|(j, d)| CsrMeltCoin {
                            coin_offset: *j,
                            denom_pub_hash: d.h_denom_pub,
                        })
                        .collect(),
                })
                .await?;
            if answer.ewvs.len() != cs_coins.len() {
                return Err(WalletError::MalformedResponse(
                    "/csr-melt answered another number of values".into(),
                ));
            }
            for ((j, _), v) in cs_coins.iter().zip(answer.ewvs) {
                match v.ewv {
                    ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } => {
                        r_pubs[*j as usize] = Some([*r_pub_0.as_bytes(), *r_pub_1.as_bytes()]);
                    }
                    ExchangeWithdrawValues::Rsa => {
                        return Err(WalletError::MalformedResponse(
                            "/csr-melt answered RSA values for a CS denomination".into(),
                        ));
                    }
                }
            }
        }
        let uses_cs = !cs_coins.is_empty();
        let old_priv = old.coin_priv.clone();
        let old_pub = old.coin_pub;
        let amount = g.amount;
        // Key derivation and blinding: CPU work, off the executor.
        tokio::task::spawn_blocking(move || {
            let transfer_privs: Vec<EcdhePrivateKey> = (0..KAPPA as u32)
                .map(|k| transfer_priv_v23(&rms, &old_priv, k))
                .collect();
            let transfer_pubs: Vec<EcdhePublicKey> =
                transfer_privs.iter().map(|p| p.public()).collect();
            let mut planchets = Vec::with_capacity(KAPPA);
            for tp in &transfer_privs {
                let secret = transfer_secret_from_transfer_key(tp, &old_pub)?;
                let row = (0u32..)
                    .zip(&fresh)
                    .map(|(j, d)| {
                        let key = match &d.key {
                            DenomKey::Rsa(k) => FreshKey::Rsa(k),
                            DenomKey::Cs(public) => FreshKey::Cs {
                                public,
                                nonce: cs_refresh_nonce(&rms, j),
                                r_pub: r_pubs[j as usize].ok_or_else(|| {
                                    WalletError::Incomplete("CS values missing".into())
                                })?,
                            },
                        };
                        Ok(FreshPlanchet::derive(&secret, j, &key)?)
                    })
                    .collect::<WalletResult<Vec<_>>>()?;
                planchets.push(row);
            }
            let envelopes: Vec<Vec<RefreshEnvelope>> = planchets
                .iter()
                .map(|row| row.iter().map(|p| p.envelope.clone()).collect())
                .collect();
            let hs: Vec<HashCode> = fresh.iter().map(|d| d.h_denom_pub).collect();
            let rc = melt_commitment_v23(
                uses_cs.then_some(&rms),
                &transfer_pubs,
                &hs,
                &old_pub,
                &amount,
                &envelopes,
            )?;
            Ok(Prepared {
                fresh,
                uses_cs,
                transfer_privs,
                transfer_pubs,
                planchets,
                rc,
            })
        })
        .await
        .map_err(|e| WalletError::Incomplete(format!("refresh derivation: {e}")))?
    }

    fn old_coin(&self, g: &RefreshGroupRow) -> WalletResult<(CoinRow, Denom)> {
        let old = self.store().coin(&g.old_coin_pub)?.ok_or_else(|| {
            WalletError::Store(cardcash_store::StoreError::Corrupt(format!(
                "refresh {} without its coin",
                g.refresh_id
            )))
        })?;
        let denom =
            find_denom(&self.store().denominations(&g.exchange)?, &old.h_denom_pub)?.clone();
        Ok((old, denom))
    }

    /// Sends the melt (again, after a crash: the same request) and records the exchange's
    /// choice of the set to keep.
    async fn melt(&self, g: &RefreshGroupRow) -> WalletResult<()> {
        let (old, old_denom) = self.old_coin(g)?;
        let p = self.prepare_refresh(g, &old).await?;
        let request = MeltRequest {
            denom_pub_hash: old.h_denom_pub,
            denom_sig: old.denom_sig.clone(),
            confirm_sig: old.coin_priv.sign(&Melt {
                rc: p.rc,
                h_denom_pub: old.h_denom_pub,
                h_age_commitment: [0; 32],
                amount_with_fee: g.amount,
                melt_fee: old_denom.fee_refresh,
            }),
            value_with_fee: g.amount,
            rc: p.rc,
            age_commitment_hash: None,
            rms: p.uses_cs.then(|| WireRms::from_bytes(g.rms)),
        };
        let answer = self
            .exchange_client(&g.exchange)
            .melt(&old.coin_pub, &request)
            .await?;
        self.at_step(Step::AfterMelt)?;
        if answer.noreveal_index as usize >= KAPPA {
            return Err(WalletError::MalformedResponse(format!(
                "noreveal_index {} is not below {KAPPA}",
                answer.noreveal_index
            )));
        }
        self.store()
            .melted(&g.refresh_id, answer.noreveal_index)
            .await?;
        Ok(())
    }

    /// Sends the reveal for the kept set, unblinds and verifies the fresh coins, and stores
    /// them with the refresh done, in one transaction.
    async fn reveal(&self, g: &RefreshGroupRow) -> WalletResult<()> {
        let kept = g.noreveal_index.ok_or_else(|| {
            WalletError::Incomplete("revealing without the exchange's choice".into())
        })? as usize;
        let (old, _) = self.old_coin(g)?;
        let p = self.prepare_refresh(g, &old).await?;
        let transfer_pub = p.transfer_pubs[kept];
        let mut link_sigs = Vec::new();
        let mut coin_evs = Vec::new();
        for (planchet, d) in p.planchets[kept].iter().zip(&p.fresh) {
            link_sigs.push(old.coin_priv.sign(&Link {
                h_denom_pub: d.h_denom_pub,
                transfer_pub,
                h_age_commitment: [0; 32],
                coin_envelope_hash: planchet.envelope.hash(&d.h_denom_pub),
            }));
            coin_evs.push(wire_envelope(&planchet.envelope));
        }
        let request = RevealRequest {
            transfer_pub,
            transfer_privs: (0..KAPPA)
                .filter(|k| *k != kept)
                .map(|k| TransferPrivateKey::from_bytes(p.transfer_privs[k].to_bytes()))
                .collect(),
            link_sigs,
            coin_evs,
            new_denoms_h: p.fresh.iter().map(|d| d.h_denom_pub).collect(),
            old_age_commitment: None,
            rms: p.uses_cs.then(|| WireRms::from_bytes(g.rms)),
        };
        let answer = self
            .exchange_client(&g.exchange)
            .reveal(&p.rc, &request)
            .await?;
        self.at_step(Step::AfterReveal)?;
        if answer.ev_sigs.len() != p.fresh.len() {
            return Err(WalletError::MalformedResponse(format!(
                "{} signatures for {} fresh coins",
                answer.ev_sigs.len(),
                p.fresh.len()
            )));
        }
        let now = Timestamp::now();
        let origin = refresh_transaction_id(&g.refresh_id);
        let mut coins = Vec::with_capacity(p.fresh.len());
        for ((j, planchet), (d, sig)) in (0u32..)
            .zip(&p.planchets[kept])
            .zip(p.fresh.iter().zip(&answer.ev_sigs))
        {
            coins.push(CoinRow {
                denom_sig: unblind(planchet, d, &sig.ev_sig)?,
                coin_pub: planchet.coin_pub,
                coin_priv: planchet.coin_priv.clone(),
                exchange: g.exchange.clone(),
                h_denom_pub: d.h_denom_pub,
                value: d.value,
                status: CoinStatus::Fresh,
                origin: origin.clone(),
                index: j,
                created: now,
                // A refreshed coin's recoup (recoup-refresh) is not supported yet.
                cs_r: None,
                remaining: d.value,
            });
        }
        self.store().apply_revealed(&g.refresh_id, coins).await?;
        self.notify(Notification::BalanceChange);
        Ok(())
    }

    /// The fresh coins' value of each refresh (for balances and transactions).
    pub(crate) fn refresh_effective(&self, g: &RefreshGroupRow) -> WalletResult<Amount> {
        let values: HashMap<HashCode, Amount> = self
            .store()
            .denominations(&g.exchange)?
            .into_iter()
            .map(|d| (d.h_denom_pub, d.value))
            .collect();
        let currency = *g.amount.currency();
        self.store()
            .refresh_planchets(&g.refresh_id)?
            .iter()
            .try_fold(Amount::zero(&currency), |acc, h| {
                acc.checked_add(values.get(h).unwrap_or(&Amount::zero(&currency)))
            })
            .map_err(|e| WalletError::MalformedResponse(format!("refresh value: {e}")))
    }
}

fn find_denom<'d>(denoms: &'d [Denom], h: &HashCode) -> WalletResult<&'d Denom> {
    denoms
        .iter()
        .find(|d| d.h_denom_pub == *h)
        .ok_or_else(|| WalletError::Incomplete(format!("denomination {h} is no longer known")))
}

fn wire_envelope(envelope: &RefreshEnvelope) -> CoinEnvelope {
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

/// A fresh coin's signature from the exchange's blind signature, verified.
fn unblind(
    p: &FreshPlanchet,
    denom: &Denom,
    sig: &BlindedDenominationSignature,
) -> WalletResult<UnblindedSignature> {
    let msg = h_coin_pub(&p.coin_pub);
    let bad = || WalletError::CoinSignatureInvalid(denom.h_denom_pub.to_string());
    match (&p.blinding, sig, &denom.key) {
        (
            FreshBlinding::Rsa(bks),
            BlindedDenominationSignature::Rsa {
                blinded_rsa_signature,
            },
            DenomKey::Rsa(k),
        ) => {
            let s = rsa::unblind(k, blinded_rsa_signature.as_bytes(), bks).map_err(|_| bad())?;
            rsa::verify(k, msg.as_bytes(), &s).map_err(|_| bad())?;
            Ok(UnblindedSignature::Rsa {
                rsa_signature: Base32Bytes::from_bytes(s),
            })
        }
        (
            FreshBlinding::Cs {
                secrets, r_blind, ..
            },
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
