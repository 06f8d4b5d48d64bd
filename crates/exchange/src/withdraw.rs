//! Withdrawal (docs.taler.net core/api-exchange `POST /reserves/$RESERVE_PUB/batch-withdraw`
//! and `POST /csr-withdraw`): every planchet's denomination and reserve signature checked, the
//! reserve's balance read before any signing (an empty reserve cannot make the exchange burn
//! CPU), the planchets signed in parallel by the key store, then ONE database transaction that
//! re-checks the balance, records the planchets and debits the reserve.
//!
//! Idempotent by envelope hash: a planchet signed before gets its stored signature back and
//! costs nothing (also after a restart). The C exchange refuses a batch that mixes signed and
//! new planchets (`EXCHANGE_WITHDRAW_BATCH_IDEMPOTENT_PLANCHET`); we answer it instead, which
//! is what a wallet retrying after a lost response needs.

use cardcash_api::exchange::{
    BatchWithdrawRequest, BatchWithdrawResponse, BlindedDenominationSignature, CoinEnvelope,
    CsPoint, CsScalar, CsrWithdrawRequest, CsrWithdrawResponse, ExchangeWithdrawValues,
    WithdrawSignature,
};
use cardcash_crypto::coin::{coin_envelope_hash, coin_envelope_hash_cs};
use cardcash_crypto::purpose::WithdrawRequestV23;
use cardcash_util::{Amount, Base32Bytes, EddsaPublicKey, ErrorCode, Timestamp};
use serde_json::json;

use crate::db::{NewWithdrawal, StoredWithdrawal, WithdrawOutcome};
use crate::denomination::{Use, usable};
use crate::error::ExchangeError;
use crate::keys::store::{BlindSignature, BlindedPlanchet, DenominationPublic};
use crate::service::Exchange;

/// The most planchets one request may carry.
pub const MAX_PLANCHETS: usize = 1024;

/// The storage form of a blind signature: RSA's bytes, or CS's `b` (u32, big-endian) ‖ `s`.
pub fn encode_blind_signature(sig: &BlindSignature) -> Vec<u8> {
    match sig {
        BlindSignature::Rsa(bytes) => bytes.clone(),
        BlindSignature::Cs { b, s } => {
            let mut out = b.to_be_bytes().to_vec();
            out.extend_from_slice(s);
            out
        }
    }
}

/// The wire form of a stored blind signature of a denomination with `public` key.
pub fn wire_blind_signature(
    public: &DenominationPublic,
    stored: &[u8],
) -> Result<BlindedDenominationSignature, ExchangeError> {
    match public {
        DenominationPublic::Rsa(_) => Ok(BlindedDenominationSignature::Rsa {
            blinded_rsa_signature: Base32Bytes::from_bytes(stored.to_vec()),
        }),
        DenominationPublic::Cs(_) => {
            let (b, s) = stored
                .split_first_chunk::<4>()
                .filter(|(_, s)| s.len() == 32)
                .ok_or_else(|| {
                    ExchangeError::Internal("stored CS signature is malformed".into())
                })?;
            let mut scalar = [0u8; 32];
            scalar.copy_from_slice(s);
            Ok(BlindedDenominationSignature::Cs {
                b: u32::from_be_bytes(*b),
                s: CsScalar::from_bytes(scalar),
            })
        }
    }
}

/// `POST /csr-withdraw`: the exchange's two `R` values for a CS session nonce.
pub fn csr_withdraw(
    exchange: &Exchange,
    request: &CsrWithdrawRequest,
) -> Result<CsrWithdrawResponse, ExchangeError> {
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    let d = usable(
        exchange,
        &snapshot,
        &request.denom_pub_hash,
        Use::CsrWithdraw,
        now,
    )?;
    if !matches!(d.public, DenominationPublic::Cs(_)) {
        return Err(crate::denomination::wrong_cipher(
            exchange,
            &snapshot,
            &request.denom_pub_hash,
        ));
    }
    let r = exchange
        .keystore()
        .cs_r_pub(&request.denom_pub_hash, request.nonce.as_bytes())?;
    Ok(CsrWithdrawResponse {
        ewv: ExchangeWithdrawValues::Cs {
            r_pub_0: CsPoint::from_bytes(r[0]),
            r_pub_1: CsPoint::from_bytes(r[1]),
        },
    })
}

/// The envelope hash of a planchet for denomination `h_denom_pub`, as the wallet computed it.
fn envelope_hash(
    h_denom_pub: &cardcash_util::HashCode,
    coin_ev: &CoinEnvelope,
) -> cardcash_util::HashCode {
    match coin_ev {
        CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } => coin_envelope_hash(h_denom_pub, rsa_blinded_planchet.as_bytes()),
        CoinEnvelope::Cs {
            cs_nonce,
            cs_blinded_c0,
            cs_blinded_c1,
        } => coin_envelope_hash_cs(
            h_denom_pub,
            cs_nonce.as_bytes(),
            &[*cs_blinded_c0.as_bytes(), *cs_blinded_c1.as_bytes()],
        ),
    }
}

/// The stored answer when every planchet of the request was signed before for this reserve;
/// otherwise the planchets signed before (read once per request).
async fn replay(
    exchange: &Exchange,
    snapshot: &crate::keys::state::KeySnapshot,
    reserve_pub: EddsaPublicKey,
    request: &BatchWithdrawRequest,
    hashes: &[cardcash_util::HashCode],
) -> Result<Result<BatchWithdrawResponse, Vec<StoredWithdrawal>>, ExchangeError> {
    let stored = exchange.store().stored_withdrawals(hashes.to_vec()).await?;
    if stored.len() != hashes.len() || stored.iter().any(|s| s.reserve_pub != reserve_pub) {
        return Ok(Err(stored));
    }
    let mut ev_sigs = Vec::with_capacity(hashes.len());
    for (p, h) in request.planchets.iter().zip(hashes) {
        let (Some(s), Some(d)) = (
            stored.iter().find(|s| s.h_blind_ev == *h),
            snapshot.denominations.get(&p.denom_pub_hash),
        ) else {
            return Ok(Err(stored));
        };
        ev_sigs.push(WithdrawSignature {
            ev_sig: wire_blind_signature(&d.public, &s.denom_sig)?,
        });
    }
    Ok(Ok(BatchWithdrawResponse { ev_sigs }))
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw`.
pub async fn batch_withdraw(
    exchange: &Exchange,
    reserve_pub: EddsaPublicKey,
    request: BatchWithdrawRequest,
) -> Result<BatchWithdrawResponse, ExchangeError> {
    let n = request.planchets.len();
    if n == 0 || n > MAX_PLANCHETS {
        return Err(ExchangeError::refused(
            ErrorCode::GenericParameterMalformed,
            format!("a batch has 1 to {MAX_PLANCHETS} planchets, not {n}"),
        ));
    }
    // A planchet twice in one request is malformed (as the C exchange says: "duplicate
    // planchet"); compared by envelope, before anything else.
    let envelope_hashes: Vec<_> = request
        .planchets
        .iter()
        .map(|p| envelope_hash(&p.denom_pub_hash, &p.coin_ev))
        .collect();
    let mut seen = std::collections::HashSet::new();
    if !envelope_hashes.iter().all(|h| seen.insert(*h)) {
        return Err(ExchangeError::refused(
            ErrorCode::GenericParameterMalformed,
            "duplicate planchet in the batch",
        ));
    }
    let snapshot = exchange.keys();
    // A replay first: a batch signed before gets its signatures back even if its denominations
    // expired or were revoked since (the wallet paid for them; C: check_request_idempotent).
    let stored = match replay(exchange, &snapshot, reserve_pub, &request, &envelope_hashes).await? {
        Ok(replayed) => return Ok(replayed),
        Err(stored) => stored,
    };
    let now = Timestamp::now();
    let currency = *exchange.store().currency();
    let mut checked = Vec::with_capacity(n);
    for p in &request.planchets {
        let d = usable(exchange, &snapshot, &p.denom_pub_hash, Use::Withdraw, now)?;
        let (planchet, h_blind_ev, cs_nonce) = match (&p.coin_ev, &d.public) {
            (
                CoinEnvelope::Rsa {
                    rsa_blinded_planchet,
                },
                DenominationPublic::Rsa(_),
            ) => (
                BlindedPlanchet::Rsa(rsa_blinded_planchet.as_bytes().to_vec()),
                coin_envelope_hash(&d.h_denom_pub, rsa_blinded_planchet.as_bytes()),
                None,
            ),
            (
                CoinEnvelope::Cs {
                    cs_nonce,
                    cs_blinded_c0,
                    cs_blinded_c1,
                },
                DenominationPublic::Cs(_),
            ) => {
                let c = [*cs_blinded_c0.as_bytes(), *cs_blinded_c1.as_bytes()];
                let nonce = *cs_nonce.as_bytes();
                (
                    BlindedPlanchet::Cs { nonce, c },
                    coin_envelope_hash_cs(&d.h_denom_pub, &nonce, &c),
                    Some(nonce),
                )
            }
            _ => {
                return Err(ExchangeError::refused(
                    ErrorCode::ExchangeGenericCipherMismatch,
                    "the envelope's cipher is not the denomination's",
                ));
            }
        };
        if d.value.currency() != &currency {
            return Err(ExchangeError::Internal(
                "denomination in another currency".into(),
            ));
        }
        let amount_with_fee = d.value.checked_add(&d.fee_withdraw).map_err(|_| {
            ExchangeError::refused(
                ErrorCode::ExchangeWithdrawAmountFeeOverflow,
                "value plus fee overflows",
            )
        })?;
        let message = WithdrawRequestV23 {
            amount_with_fee,
            h_denom_pub: d.h_denom_pub,
            h_coin_envelope: h_blind_ev,
        };
        cardcash_crypto::verify(&reserve_pub, &p.reserve_sig, &message).map_err(|_| {
            ExchangeError::refused(
                ErrorCode::ExchangeWithdrawReserveSignatureInvalid,
                "the reserve signature over a planchet is invalid",
            )
        })?;
        checked.push((
            d,
            planchet,
            h_blind_ev,
            cs_nonce,
            amount_with_fee,
            p.reserve_sig,
        ));
    }

    // Replays: planchets signed before keep their signature; they must be this reserve's.
    if stored.iter().any(|s| s.reserve_pub != reserve_pub) {
        return Err(ExchangeError::refused(
            ErrorCode::GenericParameterMalformed,
            "a planchet was already withdrawn from another reserve",
        ));
    }
    let is_stored = |h| stored.iter().any(|s| s.h_blind_ev == h);
    let needed: u128 = checked
        .iter()
        .filter(|c| !is_stored(c.2))
        .map(|c| c.4.to_units())
        .sum();
    let Some(reserve) = exchange.store().reserve(reserve_pub).await? else {
        return Err(ExchangeError::refused(
            ErrorCode::ExchangeGenericReserveUnknown,
            "no such reserve (yet): wait for the wire transfer to arrive",
        ));
    };
    if needed > reserve.balance.to_units() {
        return Err(insufficient(&reserve.balance, needed, currency));
    }

    // Sign what is new (off the executor, in parallel), then one transaction.
    let to_sign: Vec<_> = checked
        .iter()
        .filter(|c| !is_stored(c.2))
        .map(|c| (c.0.h_denom_pub, c.1.clone()))
        .collect();
    let fresh_count = to_sign.len();
    let mut fresh = exchange.keystore().sign_blinded(to_sign).await?.into_iter();
    let mut planchets = Vec::with_capacity(n);
    for (d, _, h_blind_ev, cs_nonce, amount_with_fee, reserve_sig) in &checked {
        let denom_sig = match stored.iter().find(|s| s.h_blind_ev == *h_blind_ev) {
            Some(s) => s.denom_sig.clone(),
            None => encode_blind_signature(&fresh.next().ok_or_else(|| {
                ExchangeError::Internal("fewer signatures than planchets".into())
            })?),
        };
        planchets.push(NewWithdrawal {
            h_blind_ev: *h_blind_ev,
            denom_serial: d.serial,
            reserve_sig: *reserve_sig,
            amount_with_fee: *amount_with_fee,
            denom_sig,
            cs_nonce: *cs_nonce,
        });
    }
    let outcome = exchange
        .store()
        .batch_withdraw(reserve_pub, planchets, crate::db::now())
        .await?;
    match outcome {
        WithdrawOutcome::Done(sigs) => {
            exchange
                .metrics()
                .coins_signed
                .inc_by(u64::try_from(fresh_count).unwrap_or(0));
            let mut ev_sigs = Vec::with_capacity(n);
            for ((d, ..), sig) in checked.iter().zip(sigs) {
                ev_sigs.push(WithdrawSignature {
                    ev_sig: wire_blind_signature(&d.public, &sig)?,
                });
            }
            Ok(BatchWithdrawResponse { ev_sigs })
        }
        WithdrawOutcome::UnknownReserve => Err(ExchangeError::refused(
            ErrorCode::ExchangeGenericReserveUnknown,
            "no such reserve",
        )),
        WithdrawOutcome::InsufficientFunds { balance, requested } => {
            Err(insufficient(&balance, requested.to_units(), currency))
        }
        // The C exchange answers 400 here (the registry says 409).
        WithdrawOutcome::NonceReuse { index } => Err(ExchangeError::refused_status(
            axum::http::StatusCode::BAD_REQUEST,
            ErrorCode::ExchangeWithdrawNonceReuse,
            format!("planchet {index} reuses a Clause-Schnorr nonce"),
        )),
    }
}

fn insufficient(
    balance: &Amount,
    needed: u128,
    currency: cardcash_util::Currency,
) -> ExchangeError {
    let requested =
        Amount::from_units(&currency, needed).unwrap_or_else(|_| Amount::max(&currency));
    ExchangeError::refused_with(
        ErrorCode::ExchangeWithdrawInsufficientFunds,
        "the reserve's balance does not cover the withdrawal",
        json!({ "balance": balance, "requested_amount": requested }),
    )
}
