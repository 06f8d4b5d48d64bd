//! Refresh, protocol v23 (docs.taler.net core/api-exchange "Refreshing coins"; the C exchange's
//! `taler-exchange-httpd_melt.c`, `…_refreshes_reveal.c`, `…_link.c`, `…_csr.c`): a wallet
//! melts (part of) a coin into fresh coins it can spend unlinkably, κ = 3 cut-and-choose.
//!
//! - **melt** (`POST /coins/$COIN_PUB/melt`): the old coin's denomination (legal expiry; past
//!   its deposit expiry only a known zombie coin melts), its denomination signature, its
//!   signature over the commitment `rc` (1202), then ONE transaction that debits the coin by
//!   `value_with_fee` and stores `rc` with a `noreveal_index` chosen at random once; a replay
//!   gets the stored index. The answer is signed (1034).
//! - **reveal** (`POST /refreshes/$RC/reveal`): the wallet reveals the κ−1 transfer private keys
//!   it need not keep and sends the kept set's envelopes. The exchange re-derives the revealed
//!   sets' envelopes from those keys and the old coin's public key, recomputes `rc` over all κ
//!   sets (the kept one as sent) and refuses a mismatch (409 with `rc_expected`) before signing
//!   anything; then checks that the fresh coins' values and withdraw fees plus the melt fee fit
//!   in what was melted, the link signatures (1204), signs the kept envelopes and stores them
//!   once. A replay (same transfer keys and envelopes) gets the stored signatures.
//! - **link** (`GET /coins/$COIN_PUB/link`): for each revealed melt of the coin, the kept
//!   set's transfer public key and the fresh coins (denomination, blind signature, `R` values,
//!   link signature, CS nonce), from which the old coin's owner re-derives them.
//! - **csr-melt** (`POST /csr-melt`): the `R` values of fresh Clause-Schnorr coins, for the
//!   nonces the wallet derives from its refresh master secret and the coin index (seed "rm").
//!
//! Clause-Schnorr nonces: the exchange takes each CS envelope's nonce from the kept set (the
//! wallet uses the same nonce for a coin in all κ sets, C `TALER_EXCHANGE_get_melt_data_`), and
//! a nonce signs one envelope per denomination (stored lock, refresh domain); a refresh master
//! secret belongs to one melt. Like the C exchange, we do not require the nonces to be those of
//! the master secret: the lock is what keeps the key safe.
//!
//! Where we differ from the C exchange: a melt of a coin whose denomination was revoked is
//! refused (410 `EXCHANGE_GENERIC_DENOMINATION_REVOKED`, signed, as our deposits; such coins are
//! recouped); a refresh master secret used by another melt is 409
//! `EXCHANGE_WITHDRAW_NONCE_REUSE` (C: an assertion, 500); a reveal's envelope signed before in
//! another refresh is 400 `GENERIC_PARAMETER_MALFORMED` and a reused CS nonce 400
//! `EXCHANGE_WITHDRAW_NONCE_REUSE` (C: database errors). Replays of a reveal are answered from
//! storage, also after the fresh denominations expired.

use cardcash_api::exchange::CsNonce;
use cardcash_api::exchange::{
    CoinEnvelope, CsPoint, CsrMeltRequest, CsrMeltResponse, CsrMeltValues, ExchangeWithdrawValues,
    LinkCoin, LinkResponse, LinkSession, MeltRequest, MeltResponse, RevealRequest, RevealResponse,
    WithdrawSignature,
};
use cardcash_crypto::EcdhePrivateKey;
use cardcash_crypto::purpose::{Link, Melt, MeltConfirmation};
use cardcash_crypto::refresh::{
    FreshKey, KAPPA, RefreshEnvelope, RefreshMasterSecret, cs_refresh_nonce,
    fresh_envelope_own_key, melt_commitment_v23, transfer_secret_from_transfer_key,
};
use cardcash_util::{Amount, EcdhePublicKey, EddsaPublicKey, ErrorCode, HashCode, Timestamp};
use serde_json::json;

use crate::db::{DenominationRow, MeltOutcome, NewFreshCoin, NewMelt, NewReveal, RevealOutcome};
use crate::denomination::{Use, signed_refusal, usable, wrong_cipher};
use crate::deposit::{denomination_signature_valid, sign, stored_coin_signature};
use crate::error::ExchangeError;
use crate::keys::store::{BlindedPlanchet, DenominationPublic};
use crate::management::denomination_public_key;
use crate::service::Exchange;
use crate::withdraw::{encode_blind_signature, wire_blind_signature};

/// A refresh makes fewer fresh coins than this (C `TALER_MAX_FRESH_COINS`).
pub const MAX_FRESH_COINS: usize = 256;

fn refused(code: ErrorCode, hint: impl Into<String>) -> ExchangeError {
    ExchangeError::refused(code, hint)
}

/// The set the wallet keeps, uniformly at random in `0..κ`.
fn random_noreveal_index() -> Result<u32, ExchangeError> {
    // Rejection sampling keeps it exactly uniform.
    loop {
        let [b] = cardcash_crypto::random_bytes::<1>()
            .map_err(|e| ExchangeError::Internal(format!("randomness: {e}")))?;
        if usize::from(b) < 255 - 255 % KAPPA {
            return Ok(u32::from(b) % KAPPA as u32);
        }
    }
}

// ---------------------------------------------------------------- melt

/// `POST /coins/$COIN_PUB/melt`.
pub async fn melt(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    r: MeltRequest,
) -> Result<MeltResponse, ExchangeError> {
    let currency = *exchange.store().currency();
    if r.value_with_fee.currency() != &currency {
        return Err(refused(
            ErrorCode::GenericJsonInvalid,
            format!("amounts must be in {currency}"),
        ));
    }
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    let d = usable(exchange, &snapshot, &r.denom_pub_hash, Use::Melt, now)?;
    if d.fee_refresh.to_units() > r.value_with_fee.to_units() {
        return Err(refused(
            ErrorCode::ExchangeMeltFeesExceedContribution,
            "the melt fee exceeds the melted value",
        ));
    }
    // No denomination here is age-restricted: a coin claiming an age commitment has a coin
    // hash no denomination signed (C: `TALER_test_coin_valid` fails, 403 1006), and so has a
    // signature of another cipher.
    if crate::denomination::claims_age_commitment(r.age_commitment_hash.as_ref())
        || !denomination_signature_valid(&d.public, &coin_pub, &r.denom_sig)
    {
        return Err(refused(
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "the coin's denomination signature is invalid",
        ));
    }
    let message = Melt {
        rc: r.rc,
        h_denom_pub: d.h_denom_pub,
        h_age_commitment: [0; 32],
        amount_with_fee: r.value_with_fee,
        melt_fee: d.fee_refresh,
    };
    cardcash_crypto::verify(&coin_pub, &r.confirm_sig, &message).map_err(|_| {
        refused(
            ErrorCode::ExchangeMeltCoinSignatureInvalid,
            "the coin's signature over the melt is invalid",
        )
    })?;
    let outcome = exchange
        .store()
        .melt(NewMelt {
            rc: r.rc,
            coin_pub,
            denom_serial: d.serial,
            denom_sig: stored_coin_signature(&r.denom_sig),
            coin_value: d.value,
            coin_sig: r.confirm_sig,
            amount_with_fee: r.value_with_fee,
            melt_fee: d.fee_refresh,
            noreveal_index: random_noreveal_index()?,
            rms: r.rms.map(|rms| *rms.as_bytes()),
            zombie_required: now >= d.stamp_expire_deposit,
            now: crate::db::now(),
        })
        .await?;
    match outcome {
        MeltOutcome::Done { noreveal_index } => {
            let (exchange_pub, exchange_sig) = sign(
                exchange,
                &MeltConfirmation {
                    rc: r.rc,
                    noreveal_index,
                },
            )?;
            Ok(MeltResponse {
                noreveal_index,
                exchange_sig,
                exchange_pub,
                refresh_base_url: None,
            })
        }
        MeltOutcome::InsufficientFunds => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeGenericInsufficientFunds,
            "the coin has not enough value left (double spending?)",
            json!({ "coin_pub": coin_pub, "h_denom_pub": d.h_denom_pub }),
        )),
        MeltOutcome::CoinConflict => Err(ExchangeError::refused_with(
            ErrorCode::ExchangeGenericCoinConflictingDenominationKey,
            "the coin is known with another denomination",
            json!({ "coin_pub": coin_pub }),
        )),
        MeltOutcome::RcConflict => Err(refused(
            ErrorCode::GenericParameterMalformed,
            "this commitment was melted by another coin",
        )),
        MeltOutcome::UnknownCoin => Err(signed_refusal(
            exchange,
            &snapshot,
            ErrorCode::ExchangeGenericDenominationExpired,
            "the denomination's deposit period is over and the coin was never seen",
            &d.h_denom_pub,
            Some(Use::Melt),
            now,
        )),
        MeltOutcome::NoZombie => Err(refused(
            ErrorCode::ExchangeMeltCoinExpiredNoZombie,
            "the denomination's deposit period is over and the coin got no value back from a \
             recoup",
        )),
        MeltOutcome::RmsReuse => Err(refused(
            ErrorCode::ExchangeWithdrawNonceReuse,
            "the refresh master secret belongs to another melt",
        )),
    }
}

// ---------------------------------------------------------------- reveal

/// The request's shape, before anything is looked up (C `TEH_handler_reveal`,
/// `handle_refreshes_reveal_json`).
pub fn check_reveal_shape(r: &RevealRequest) -> Result<(), ExchangeError> {
    if r.transfer_privs.len() + 1 != KAPPA {
        return Err(refused(
            ErrorCode::ExchangeRefreshesRevealCncTransferArraySizeInvalid,
            format!("{} transfer private keys are revealed", KAPPA - 1),
        ));
    }
    let n = r.new_denoms_h.len();
    if n == 0 || n >= MAX_FRESH_COINS {
        return Err(refused(
            ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive,
            format!(
                "a refresh makes 1 to {} coins, not {n}",
                MAX_FRESH_COINS - 1
            ),
        ));
    }
    if r.coin_evs.len() != n {
        return Err(refused(
            ErrorCode::ExchangeRefreshesRevealNewDenomsArraySizeMismatch,
            "new_denoms_h and coin_evs differ in length",
        ));
    }
    if r.link_sigs.len() != n {
        return Err(refused(
            ErrorCode::ExchangeRefreshesRevealNewDenomsArraySizeMismatch,
            "new_denoms_h and link_sigs differ in length",
        ));
    }
    if r.old_age_commitment.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(refused(
            ErrorCode::ExchangeRefreshesRevealAgeRestrictionCommitmentInvalid,
            "this exchange has no age-restricted denominations",
        ));
    }
    Ok(())
}

/// An envelope of the wire in the crypto crate's form.
pub fn refresh_envelope(ev: &CoinEnvelope) -> RefreshEnvelope {
    match ev {
        CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } => RefreshEnvelope::Rsa(rsa_blinded_planchet.as_bytes().to_vec()),
        CoinEnvelope::Cs {
            cs_nonce,
            cs_blinded_c0,
            cs_blinded_c1,
        } => RefreshEnvelope::Cs {
            nonce: *cs_nonce.as_bytes(),
            c: [*cs_blinded_c0.as_bytes(), *cs_blinded_c1.as_bytes()],
        },
    }
}

/// The transfer key of each of the κ sets: the kept set's public key as sent, the others'
/// private keys in order (`None` at `noreveal_index`).
pub fn revealed_sets(noreveal_index: usize, privs: &[[u8; 32]]) -> Vec<Option<EcdhePrivateKey>> {
    let mut privs = privs.iter();
    (0..KAPPA)
        .map(|k| {
            if k == noreveal_index {
                None
            } else {
                privs.next().map(|p| EcdhePrivateKey::from_bytes(*p))
            }
        })
        .collect()
}

/// What the commitment is recomputed from.
struct Commitment {
    noreveal_index: usize,
    transfer_pub: EcdhePublicKey,
    transfer_privs: Vec<[u8; 32]>,
    old_coin_pub: EddsaPublicKey,
    amount_with_fee: Amount,
    rms: Option<RefreshMasterSecret>,
    new_denoms: Vec<HashCode>,
    /// Per fresh coin: its key and, for CS, its nonce and `R` values.
    keys: Vec<FreshKeyOwned>,
    kept: Vec<RefreshEnvelope>,
}

enum FreshKeyOwned {
    Rsa(cardcash_crypto::rsa::RsaPublicKey),
    Cs {
        public: [u8; 32],
        nonce: [u8; 32],
        r_pub: [[u8; 32]; 2],
    },
}

impl FreshKeyOwned {
    fn as_key(&self) -> FreshKey<'_> {
        match self {
            Self::Rsa(k) => FreshKey::Rsa(k),
            Self::Cs {
                public,
                nonce,
                r_pub,
            } => FreshKey::Cs {
                public,
                nonce: *nonce,
                r_pub: *r_pub,
            },
        }
    }
}

/// `rc` as the revealed values give it (C `check_commitment`): the revealed sets re-derived
/// from their transfer keys, the kept set as sent. `None` if a revealed key gives no transfer
/// secret with the old coin (then nothing can match).
fn recompute_commitment(c: &Commitment) -> Result<Option<HashCode>, ExchangeError> {
    let mut transfer_pubs = Vec::with_capacity(KAPPA);
    let mut envelopes = Vec::with_capacity(KAPPA);
    for set in revealed_sets(c.noreveal_index, &c.transfer_privs) {
        match set {
            None => {
                transfer_pubs.push(c.transfer_pub);
                envelopes.push(c.kept.clone());
            }
            Some(private) => {
                transfer_pubs.push(private.public());
                let Ok(secret) = transfer_secret_from_transfer_key(&private, &c.old_coin_pub)
                else {
                    return Ok(None);
                };
                let mut row = Vec::with_capacity(c.keys.len());
                for (j, key) in c.keys.iter().enumerate() {
                    let j =
                        u32::try_from(j).map_err(|_| ExchangeError::Internal("index".into()))?;
                    row.push(
                        fresh_envelope_own_key(&secret, j, &key.as_key())
                            .map_err(|e| ExchangeError::Internal(format!("re-blinding: {e}")))?,
                    );
                }
                envelopes.push(row);
            }
        }
    }
    let rc = melt_commitment_v23(
        c.rms.as_ref(),
        &transfer_pubs,
        &c.new_denoms,
        &c.old_coin_pub,
        &c.amount_with_fee,
        &envelopes,
    )
    .map_err(|e| ExchangeError::Internal(format!("commitment: {e}")))?;
    Ok(Some(rc))
}

/// What the fresh coins cost: their values and withdraw fees plus the melt fee (C
/// `check_commitment`, "check amounts add up"); `None` on overflow.
pub fn refresh_cost<'a>(
    melt_fee: &Amount,
    fresh: impl IntoIterator<Item = (&'a Amount, &'a Amount)>,
) -> Option<Amount> {
    let mut cost = *melt_fee;
    for (value, fee) in fresh {
        cost = cost.checked_add(value).ok()?.checked_add(fee).ok()?;
    }
    Some(cost)
}

/// The wire form of `stored` blind signatures of fresh coins of `denoms`.
fn reveal_response(
    denoms: &[&DenominationRow],
    stored: &[Vec<u8>],
) -> Result<RevealResponse, ExchangeError> {
    if denoms.len() != stored.len() {
        return Err(ExchangeError::Internal(
            "stored reveal has another number of coins".into(),
        ));
    }
    let ev_sigs = denoms
        .iter()
        .zip(stored)
        .map(|(d, s)| {
            Ok(WithdrawSignature {
                ev_sig: wire_blind_signature(&d.public, s)?,
            })
        })
        .collect::<Result<_, ExchangeError>>()?;
    Ok(RevealResponse { ev_sigs })
}

/// `POST /refreshes/$RC/reveal`.
pub async fn reveal(
    exchange: &Exchange,
    rc: HashCode,
    r: RevealRequest,
) -> Result<RevealResponse, ExchangeError> {
    check_reveal_shape(&r)?;
    let session = exchange.store().melt_session(rc).await?.ok_or_else(|| {
        refused(
            ErrorCode::ExchangeRefreshesRevealSessionUnknown,
            "no melt with this commitment",
        )
    })?;
    let noreveal_index = usize::try_from(session.noreveal_index)
        .ok()
        .filter(|i| *i < KAPPA)
        .ok_or_else(|| ExchangeError::Internal("stored noreveal index out of range".into()))?;
    let snapshot = exchange.keys();
    let kept: Vec<RefreshEnvelope> = r.coin_evs.iter().map(refresh_envelope).collect();
    let h_coin_evs: Vec<HashCode> = kept
        .iter()
        .zip(&r.new_denoms_h)
        .map(|(ev, h)| ev.hash(h))
        .collect();
    let privs: Vec<[u8; 32]> = r.transfer_privs.iter().map(|p| *p.as_bytes()).collect();

    // A replay: the same kept set and revealed keys as stored; the stored signatures.
    if let Some(stored) = &session.reveal {
        let same = stored.transfer_pub == r.transfer_pub
            && stored.transfer_privs == privs
            && stored.coins.len() == h_coin_evs.len()
            && stored
                .coins
                .iter()
                .zip(h_coin_evs.iter().zip(&r.new_denoms_h))
                .all(|(c, (h_ev, h_denom))| c.h_coin_ev == *h_ev && c.h_denom_pub == *h_denom);
        if same {
            let denoms = r
                .new_denoms_h
                .iter()
                .map(|h| {
                    snapshot.denominations.get(h).ok_or_else(|| {
                        ExchangeError::Internal("a revealed coin's denomination is gone".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sigs: Vec<Vec<u8>> = stored.coins.iter().map(|c| c.ev_sig.clone()).collect();
            return reveal_response(&denoms, &sigs);
        }
    }

    let now = Timestamp::now();
    if !snapshot
        .denominations
        .contains_key(&session.old_h_denom_pub)
    {
        return Err(signed_refusal(
            exchange,
            &snapshot,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "the melted coin's denomination is unknown",
            &session.old_h_denom_pub,
            None,
            now,
        ));
    }
    let mut denoms = Vec::with_capacity(r.new_denoms_h.len());
    for h in &r.new_denoms_h {
        let d = usable(exchange, &snapshot, h, Use::Reveal, now)?;
        if matches!(d.public, DenominationPublic::Cs(_)) && r.rms.is_none() {
            return Err(refused(
                ErrorCode::GenericParameterMissing,
                "rms is missing (a fresh coin is Clause-Schnorr)",
            ));
        }
        denoms.push(d);
    }
    for (j, (sig, (h_ev, h_denom))) in r
        .link_sigs
        .iter()
        .zip(h_coin_evs.iter().zip(&r.new_denoms_h))
        .enumerate()
    {
        let message = Link {
            h_denom_pub: *h_denom,
            transfer_pub: r.transfer_pub,
            h_age_commitment: [0; 32],
            coin_envelope_hash: *h_ev,
        };
        cardcash_crypto::verify(&session.old_coin_pub, sig, &message).map_err(|_| {
            refused(
                ErrorCode::ExchangeRefreshesRevealLinkSignatureInvalid,
                format!("the link signature of fresh coin {j} is invalid"),
            )
        })?;
    }
    let mut keys = Vec::with_capacity(denoms.len());
    // CS: the R values of each envelope's nonce (refresh domain), also stored for link.
    let mut ewvs: Vec<Option<[u8; 64]>> = Vec::with_capacity(denoms.len());
    for (d, ev) in denoms.iter().zip(&kept) {
        keys.push(match (&d.public, ev) {
            (DenominationPublic::Rsa(k), RefreshEnvelope::Rsa(_)) => {
                ewvs.push(None);
                FreshKeyOwned::Rsa(k.clone())
            }
            (DenominationPublic::Cs(public), RefreshEnvelope::Cs { nonce, .. }) => {
                let r_pub = exchange
                    .keystore()
                    .cs_r_pub_for_melt(&d.h_denom_pub, nonce)?;
                ewvs.push(Some([r_pub[0], r_pub[1]].concat().try_into().map_err(
                    |_| ExchangeError::Internal("R values are 64 bytes".into()),
                )?));
                FreshKeyOwned::Cs {
                    public: *public,
                    nonce: *nonce,
                    r_pub,
                }
            }
            _ => {
                return Err(refused(
                    ErrorCode::ExchangeGenericCipherMismatch,
                    "an envelope's cipher is not its denomination's",
                ));
            }
        });
    }

    // Cut and choose, off the executor: every revealed set re-derived.
    let commitment = Commitment {
        noreveal_index,
        transfer_pub: r.transfer_pub,
        transfer_privs: privs.clone(),
        old_coin_pub: session.old_coin_pub,
        amount_with_fee: session.amount_with_fee,
        rms: r
            .rms
            .map(|rms| RefreshMasterSecret::from_bytes(*rms.as_bytes())),
        new_denoms: r.new_denoms_h.clone(),
        keys,
        kept: kept.clone(),
    };
    let expected = tokio::task::spawn_blocking(move || recompute_commitment(&commitment))
        .await
        .map_err(|e| ExchangeError::Internal(format!("commitment task: {e}")))??;
    if expected != Some(rc) {
        let hint = "the revealed values do not give the melt's commitment";
        return Err(match expected {
            Some(rc_expected) => ExchangeError::refused_with(
                ErrorCode::ExchangeRefreshesRevealCommitmentViolation,
                hint,
                json!({ "rc_expected": rc_expected }),
            ),
            None => refused(ErrorCode::ExchangeRefreshesRevealCommitmentViolation, hint),
        });
    }
    let cost = refresh_cost(
        &session.melt_fee,
        denoms.iter().map(|d| (&d.value, &d.fee_withdraw)),
    )
    .ok_or_else(|| {
        refused(
            ErrorCode::ExchangeRefreshesRevealCostCalculationOverflow,
            "the fresh coins' total overflows",
        )
    })?;
    if cost.to_units() > session.amount_with_fee.to_units() {
        return Err(refused(
            ErrorCode::ExchangeRefreshesRevealAmountInsufficient,
            format!(
                "the fresh coins and the melt fee cost {cost}, the melt was {}",
                session.amount_with_fee
            ),
        ));
    }

    let planchets = denoms
        .iter()
        .zip(&kept)
        .map(|(d, ev)| {
            (
                d.h_denom_pub,
                match ev {
                    RefreshEnvelope::Rsa(bm) => BlindedPlanchet::Rsa(bm.clone()),
                    RefreshEnvelope::Cs { nonce, c } => BlindedPlanchet::Cs {
                        nonce: *nonce,
                        c: *c,
                    },
                },
            )
        })
        .collect();
    let sigs = exchange.keystore().sign_blinded_for_melt(planchets).await?;
    let mut coins = Vec::with_capacity(denoms.len());
    for (((((d, ev), h_coin_ev), link_sig), sig), ewv) in denoms
        .iter()
        .zip(&kept)
        .zip(&h_coin_evs)
        .zip(&r.link_sigs)
        .zip(&sigs)
        .zip(ewvs)
    {
        let cs_nonce = match ev {
            RefreshEnvelope::Rsa(_) => None,
            RefreshEnvelope::Cs { nonce, .. } => Some(*nonce),
        };
        coins.push(NewFreshCoin {
            denom_serial: d.serial,
            coin_ev: crate::db::refresh::envelope_bytes(ev),
            h_coin_ev: *h_coin_ev,
            link_sig: *link_sig,
            ev_sig: encode_blind_signature(sig),
            ewv,
            cs_nonce,
            amount_with_fee: d.value.checked_add(&d.fee_withdraw).map_err(|_| {
                refused(
                    ErrorCode::ExchangeRefreshesRevealCostCalculationOverflow,
                    "a fresh coin's value and fee overflow",
                )
            })?,
        });
    }
    let n = coins.len();
    let outcome = exchange
        .store()
        .reveal(NewReveal {
            melt_serial: session.melt_serial,
            transfer_pub: r.transfer_pub,
            transfer_privs: privs,
            now: crate::db::now(),
            coins,
        })
        .await?;
    match outcome {
        RevealOutcome::Done(stored) => {
            exchange.metrics().coins_signed.inc_by(n as u64);
            reveal_response(&denoms, &stored)
        }
        // Revealed by a concurrent identical request (the commitment fixes everything we
        // sign): its signatures.
        RevealOutcome::Replay(stored) => reveal_response(&denoms, &stored),
        RevealOutcome::UnknownMelt => Err(refused(
            ErrorCode::ExchangeRefreshesRevealSessionUnknown,
            "no melt with this commitment",
        )),
        RevealOutcome::EnvelopeConflict { index } => Err(refused(
            ErrorCode::GenericParameterMalformed,
            format!("the envelope of fresh coin {index} was signed in another refresh"),
        )),
        RevealOutcome::NonceReuse { index } => Err(ExchangeError::refused_status(
            axum::http::StatusCode::BAD_REQUEST,
            ErrorCode::ExchangeWithdrawNonceReuse,
            format!("fresh coin {index} reuses a Clause-Schnorr nonce"),
        )),
    }
}

// ---------------------------------------------------------------- link

/// `GET /coins/$COIN_PUB/link`.
pub async fn link(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
) -> Result<LinkResponse, ExchangeError> {
    let rows = exchange.store().link(coin_pub).await?;
    if rows.is_empty() {
        return Err(refused(
            ErrorCode::ExchangeLinkCoinUnknown,
            "the coin was never melted and revealed here",
        ));
    }
    let mut sessions: Vec<(i64, LinkSession)> = Vec::new();
    for row in rows {
        let ewv = match (&row.public, row.ewv) {
            (DenominationPublic::Rsa(_), _) => ExchangeWithdrawValues::Rsa,
            (DenominationPublic::Cs(_), Some(r)) => {
                let (r0, r1) = r.split_at(32);
                ExchangeWithdrawValues::Cs {
                    r_pub_0: CsPoint::from_bytes(r0.try_into().expect("32 bytes")),
                    r_pub_1: CsPoint::from_bytes(r1.try_into().expect("32 bytes")),
                }
            }
            (DenominationPublic::Cs(_), None) => {
                return Err(ExchangeError::Internal(
                    "a fresh CS coin without R values".into(),
                ));
            }
        };
        let cs_nonce = match &row.public {
            DenominationPublic::Rsa(_) => None,
            DenominationPublic::Cs(_) => Some(CsNonce::from_bytes(
                row.coin_ev
                    .get(..32)
                    .and_then(|n| <[u8; 32]>::try_from(n).ok())
                    .ok_or_else(|| {
                        ExchangeError::Internal("a stored CS envelope is short".into())
                    })?,
            )),
        };
        let coin = LinkCoin {
            denom_pub: denomination_public_key(&row.public),
            ev_sig: wire_blind_signature(&row.public, &row.ev_sig)?,
            coin_idx: row.coin_idx,
            ewv,
            link_sig: row.link_sig,
            cs_nonce,
        };
        match sessions.last_mut() {
            Some((serial, session)) if *serial == row.melt_serial => session.new_coins.push(coin),
            _ => sessions.push((
                row.melt_serial,
                LinkSession {
                    new_coins: vec![coin],
                    transfer_pub: row.transfer_pub,
                },
            )),
        }
    }
    Ok(sessions.into_iter().map(|(_, s)| s).collect())
}

// ---------------------------------------------------------------- csr-melt

/// `POST /csr-melt`: the `R` values of the fresh CS coins' nonces (derived from `rms` and each
/// coin's index).
pub fn csr_melt(exchange: &Exchange, r: &CsrMeltRequest) -> Result<CsrMeltResponse, ExchangeError> {
    let n = r.nks.len();
    if n == 0 || n >= MAX_FRESH_COINS {
        return Err(refused(
            ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive,
            format!("1 to {} coins, not {n}", MAX_FRESH_COINS - 1),
        ));
    }
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    let rms = RefreshMasterSecret::from_bytes(*r.rms.as_bytes());
    let mut ewvs = Vec::with_capacity(n);
    for nk in &r.nks {
        let d = usable(exchange, &snapshot, &nk.denom_pub_hash, Use::CsrMelt, now)?;
        if !matches!(d.public, DenominationPublic::Cs(_)) {
            return Err(wrong_cipher(exchange, &snapshot, &nk.denom_pub_hash));
        }
        let nonce = cs_refresh_nonce(&rms, nk.coin_offset);
        let [r0, r1] = exchange
            .keystore()
            .cs_r_pub_for_melt(&nk.denom_pub_hash, &nonce)?;
        ewvs.push(CsrMeltValues {
            ewv: ExchangeWithdrawValues::Cs {
                r_pub_0: CsPoint::from_bytes(r0),
                r_pub_1: CsPoint::from_bytes(r1),
            },
        });
    }
    Ok(CsrMeltResponse { ewvs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_api::exchange::TransferPrivateKey;
    use cardcash_util::{Base32Bytes, EddsaSignature};

    fn k(s: &str) -> Amount {
        format!("KUDOS:{s}").parse().unwrap()
    }

    fn request(privs: usize, denoms: usize, evs: usize, sigs: usize) -> RevealRequest {
        RevealRequest {
            transfer_pub: EcdhePublicKey::from_bytes([1; 32]),
            transfer_privs: vec![TransferPrivateKey::from_bytes([2; 32]); privs],
            link_sigs: vec![EddsaSignature::from_bytes([3; 64]); sigs],
            coin_evs: vec![
                CoinEnvelope::Rsa {
                    rsa_blinded_planchet: Base32Bytes::from_bytes(vec![4; 8]),
                };
                evs
            ],
            new_denoms_h: vec![HashCode::from_bytes([5; 64]); denoms],
            old_age_commitment: None,
            rms: None,
        }
    }

    fn code(r: Result<(), ExchangeError>) -> Option<ErrorCode> {
        match r {
            Ok(()) => None,
            Err(ExchangeError::Refused(r)) => Some(r.code),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn reveal_shapes_are_checked_in_the_c_exchange_order() {
        assert_eq!(code(check_reveal_shape(&request(2, 3, 3, 3))), None);
        assert_eq!(
            code(check_reveal_shape(&request(3, 3, 3, 3))),
            Some(ErrorCode::ExchangeRefreshesRevealCncTransferArraySizeInvalid)
        );
        assert_eq!(
            code(check_reveal_shape(&request(1, 0, 0, 0))),
            Some(ErrorCode::ExchangeRefreshesRevealCncTransferArraySizeInvalid)
        );
        assert_eq!(
            code(check_reveal_shape(&request(2, 0, 0, 0))),
            Some(ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive)
        );
        assert_eq!(
            code(check_reveal_shape(&request(2, 256, 256, 256))),
            Some(ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive)
        );
        assert_eq!(code(check_reveal_shape(&request(2, 255, 255, 255))), None);
        assert_eq!(
            code(check_reveal_shape(&request(2, 3, 2, 3))),
            Some(ErrorCode::ExchangeRefreshesRevealNewDenomsArraySizeMismatch)
        );
        assert_eq!(
            code(check_reveal_shape(&request(2, 3, 3, 4))),
            Some(ErrorCode::ExchangeRefreshesRevealNewDenomsArraySizeMismatch)
        );
        let mut aged = request(2, 1, 1, 1);
        aged.old_age_commitment = Some(vec![EddsaPublicKey::from_bytes([6; 32])]);
        assert_eq!(
            code(check_reveal_shape(&aged)),
            Some(ErrorCode::ExchangeRefreshesRevealAgeRestrictionCommitmentInvalid)
        );
        aged.old_age_commitment = Some(Vec::new());
        assert_eq!(code(check_reveal_shape(&aged)), None);
    }

    #[test]
    fn revealed_keys_fill_every_set_but_the_kept_one() {
        let privs = [[1u8; 32], [2u8; 32]];
        for kept in 0..KAPPA {
            let sets = revealed_sets(kept, &privs);
            assert_eq!(sets.len(), KAPPA);
            assert!(sets[kept].is_none());
            let revealed: Vec<[u8; 32]> = sets.iter().flatten().map(|p| p.to_bytes()).collect();
            assert_eq!(revealed, privs.to_vec(), "kept {kept}");
        }
    }

    #[test]
    fn the_fresh_coins_and_the_melt_fee_must_fit() {
        let fresh = [(k("1"), k("0.01")), (k("2"), k("0.02"))];
        let cost = refresh_cost(&k("0.03"), fresh.iter().map(|(v, f)| (v, f))).unwrap();
        assert_eq!(cost, k("3.06"));
        let huge = Amount::max(&"KUDOS".parse().unwrap());
        assert!(refresh_cost(&huge, fresh.iter().map(|(v, f)| (v, f))).is_none());
        assert_eq!(refresh_cost(&k("0"), std::iter::empty()).unwrap(), k("0"));
    }

    #[test]
    fn the_noreveal_index_is_one_of_the_sets_and_varies() {
        let picks: std::collections::HashSet<u32> =
            (0..200).map(|_| random_noreveal_index().unwrap()).collect();
        assert!(picks.iter().all(|i| (*i as usize) < KAPPA));
        assert_eq!(picks.len(), KAPPA, "200 draws hit every set");
    }

    #[test]
    fn the_commitment_of_honest_reveals_matches_and_a_wrong_key_does_not() {
        use cardcash_crypto::refresh::{FreshPlanchet, transfer_keypair};
        let public = cardcash_crypto::rsa::RsaPrivateKey::generate(1024)
            .unwrap()
            .public()
            .clone();
        let coin = cardcash_crypto::EddsaPrivateKey::from_bytes(&[9; 32]);
        let h = DenominationPublic::Rsa(public.clone()).hash();
        let amount = k("1.5");
        let sets: Vec<_> = (0..KAPPA as u32)
            .map(|i| transfer_keypair(&[3; 32], i))
            .collect();
        let envelopes: Vec<Vec<RefreshEnvelope>> = sets
            .iter()
            .map(|(private, _)| {
                let secret = transfer_secret_from_transfer_key(private, &coin.public()).unwrap();
                (0..2)
                    .map(|j| {
                        FreshPlanchet::derive(&secret, j, &FreshKey::Rsa(&public))
                            .unwrap()
                            .envelope
                    })
                    .collect()
            })
            .collect();
        let tps: Vec<EcdhePublicKey> = sets.iter().map(|(_, p)| *p).collect();
        let rc =
            melt_commitment_v23(None, &tps, &[h, h], &coin.public(), &amount, &envelopes).unwrap();
        for kept in 0..KAPPA {
            let privs: Vec<[u8; 32]> = (0..KAPPA)
                .filter(|i| *i != kept)
                .map(|i| sets[i].0.to_bytes())
                .collect();
            let mut c = Commitment {
                noreveal_index: kept,
                transfer_pub: tps[kept],
                transfer_privs: privs,
                old_coin_pub: coin.public(),
                amount_with_fee: amount,
                rms: None,
                new_denoms: vec![h, h],
                keys: vec![
                    FreshKeyOwned::Rsa(public.clone()),
                    FreshKeyOwned::Rsa(public.clone()),
                ],
                kept: envelopes[kept].clone(),
            };
            assert_eq!(recompute_commitment(&c).unwrap(), Some(rc), "kept {kept}");
            c.transfer_privs[0] = [7; 32];
            let wrong = recompute_commitment(&c).unwrap();
            assert!(wrong.is_some() && wrong != Some(rc));
        }
    }
}
