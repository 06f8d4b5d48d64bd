//! Recoup (docs.taler.net core/api-exchange "Recoup"; the C exchange's
//! `taler-exchange-httpd_recoup.c` and `…_recoup-refresh.c`, protocol v23): when the offline key
//! revoked a denomination, its coins are worth nothing for spending, and each pays what is left
//! of it back where it came from: a withdrawn coin into its reserve (`POST
//! /coins/$COIN_PUB/recoup`), a coin made by a refresh into the coin that was melted (`POST
//! /coins/$COIN_PUB/recoup-refresh`).
//!
//! The checks, in the C exchange's order (each a refusal with its code):
//! 1. the denomination: unknown 404 (signed, as for every operation); past its deposit
//!    expiration, not valid yet, or not revoked: 410 with the signed "expired" statement
//!    (purpose 1043, `oper` `RECOUP` / `RECOUP-REFRESH`) and `EXCHANGE_GENERIC_DENOMINATION_
//!    EXPIRED`, `…_VALIDITY_IN_FUTURE`, `EXCHANGE_RECOUP[_REFRESH]_NOT_ELIGIBLE` — all 410, as
//!    the C exchange's `TEH_RESPONSE_reply_expired_denom_pub_hash` answers them;
//! 2. the denomination's signature over the coin: 403 `EXCHANGE_DENOMINATION_SIGNATURE_INVALID`
//!    (also for a claimed age commitment: no denomination here is age-restricted);
//! 3. the coin's signature over the request (purpose 1203 / 1206 over `h_denom_pub ‖ bks`):
//!    403 `EXCHANGE_RECOUP[_REFRESH]_SIGNATURE_INVALID`;
//! 4. the coin blinded again with its revealed secret (RSA: `FDH(h_coin_pub) · r^e`; CS: the
//!    blinding secrets derived from the seed, the exchange's `R` values and the session nonce
//!    of the request): the envelope hash names the withdrawal (or reveal). Values that cannot
//!    blind (an `ewv` of the other cipher, a CS coin without nonce) are the C exchange's 500
//!    `EXCHANGE_RECOUP[_REFRESH]_BLINDING_FAILED`;
//! 5. then one transaction (`db::recoup`): a coin known with another denomination 409
//!    `EXCHANGE_GENERIC_COIN_CONFLICTING_DENOMINATION_KEY`; no withdrawal (reveal) of that
//!    envelope 404 `EXCHANGE_RECOUP_WITHDRAW_NOT_FOUND` (`…_REFRESH_MELT_NOT_FOUND`); nothing
//!    left of the coin 409 `EXCHANGE_GENERIC_INSUFFICIENT_FUNDS` with `coin_pub` and
//!    `h_denom_pub`, unless it was recouped before: then it is a replay and gets the same
//!    answer again, without money.
//!
//! What was recouped shows in the reserve's history (`RECOUP`) and the coin's (`RECOUP`), each
//! with the exchange's confirmation (purpose 1039); a recoup-refresh in the fresh coin's history
//! (`RECOUP-REFRESH`) and the old coin's (`OLD-COIN-RECOUP`), with the confirmation 1041. The
//! confirmations are made when the history is read, as the C exchange does. The old coin can
//! then be refreshed again (also past its denomination's deposit expiry: a "zombie").

use cardcash_api::exchange::{
    ExchangeWithdrawValues, RecoupRefreshResponse, RecoupRequest, RecoupWithdrawResponse,
    UnblindedSignature,
};
use cardcash_crypto::coin::{coin_envelope_hash, coin_envelope_hash_cs, h_coin_pub};
use cardcash_crypto::purpose::{
    Recoup, RecoupConfirmation, RecoupRefresh, RecoupRefreshConfirmation,
};
use cardcash_crypto::{cs, rsa};
use cardcash_util::{Amount, EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, Timestamp};
use serde_json::json;

use crate::db::{
    DenominationRow, NewRecoup, NewRecoupRefresh, RecoupOutcome, RecoupRefreshOutcome,
};
use crate::denomination::{Use, signed_refusal};
use crate::error::ExchangeError;
use crate::keys::state::KeySnapshot;
use crate::keys::store::DenominationPublic;
use crate::service::Exchange;

/// Which recoup: of a withdrawn coin, or of a coin made by a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Withdraw,
    Refresh,
}

impl Kind {
    fn operation(self) -> Use {
        match self {
            Self::Withdraw => Use::Recoup,
            Self::Refresh => Use::RecoupRefresh,
        }
    }

    fn not_eligible(self) -> ErrorCode {
        match self {
            Self::Withdraw => ErrorCode::ExchangeRecoupNotEligible,
            Self::Refresh => ErrorCode::ExchangeRecoupRefreshNotEligible,
        }
    }

    fn signature_invalid(self) -> ErrorCode {
        match self {
            Self::Withdraw => ErrorCode::ExchangeRecoupSignatureInvalid,
            Self::Refresh => ErrorCode::ExchangeRecoupRefreshSignatureInvalid,
        }
    }

    fn blinding_failed(self) -> ErrorCode {
        match self {
            Self::Withdraw => ErrorCode::ExchangeRecoupBlindingFailed,
            Self::Refresh => ErrorCode::ExchangeRecoupRefreshBlindingFailed,
        }
    }
}

/// Why a denomination's coins cannot be recouped now (step 1 for a known denomination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// Past its deposit expiration: its coins are worthless for good.
    Expired,
    /// Not valid yet.
    InFuture,
    /// Not revoked: its coins are spent normally.
    NotRevoked,
}

/// Whether coins of `d` may be recouped at `now` (pure; the C exchange's order of checks).
pub fn eligibility(d: &DenominationRow, now: Timestamp) -> Result<(), Ineligible> {
    if now >= d.stamp_expire_deposit {
        return Err(Ineligible::Expired);
    }
    if now < d.stamp_start {
        return Err(Ineligible::InFuture);
    }
    if d.revocation.is_none() {
        return Err(Ineligible::NotRevoked);
    }
    Ok(())
}

/// The denomination `h` if its coins may be recouped now, else the signed refusal.
fn recoupable<'a>(
    exchange: &Exchange,
    snapshot: &'a KeySnapshot,
    h: &HashCode,
    kind: Kind,
    now: Timestamp,
) -> Result<&'a DenominationRow, ExchangeError> {
    let Some(d) = snapshot.denominations.get(h) else {
        return Err(signed_refusal(
            exchange,
            snapshot,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown denomination",
            h,
            None,
            now,
        ));
    };
    let (code, hint) = match eligibility(d, now) {
        Ok(()) => return Ok(d),
        Err(Ineligible::Expired) => (
            ErrorCode::ExchangeGenericDenominationExpired,
            "the denomination expired: its coins can no longer be recouped",
        ),
        Err(Ineligible::InFuture) => (
            ErrorCode::ExchangeGenericDenominationValidityInFuture,
            "the denomination is not valid yet",
        ),
        Err(Ineligible::NotRevoked) => (
            kind.not_eligible(),
            "the denomination was not revoked: spend its coins instead",
        ),
    };
    let mut e = signed_refusal(
        exchange,
        snapshot,
        code,
        hint,
        h,
        Some(kind.operation()),
        now,
    );
    // The C exchange answers all three with 410 (`TEH_RESPONSE_reply_expired_denom_pub_hash`),
    // whatever status the registry gives the code.
    if let ExchangeError::Refused(r) = &mut e {
        r.status = Some(axum::http::StatusCode::GONE);
    }
    Err(e)
}

/// The unblinded denomination signature in storage form (RSA bytes, or CS `R ‖ s`), as a
/// deposit stores it with the coin.
fn stored_coin_signature(sig: &UnblindedSignature) -> Vec<u8> {
    match sig {
        UnblindedSignature::Rsa { rsa_signature } => rsa_signature.as_bytes().to_vec(),
        UnblindedSignature::Cs {
            cs_signature_r,
            cs_signature_s,
        } => {
            let mut out = cs_signature_r.as_bytes().to_vec();
            out.extend_from_slice(cs_signature_s.as_bytes());
            out
        }
    }
}

/// The envelope hash of the planchet the wallet sent when it withdrew (or revealed) the coin
/// `coin_pub` of denomination `h_denom_pub`, recomputed from the coin's blinding secret `bks`,
/// the exchange's values `ewv` and, for CS, the session `nonce` (pure). `None` when these
/// cannot blind for the denomination's cipher (the C exchange's `TALER_denom_blind` failing).
pub fn envelope_hash(
    public: &DenominationPublic,
    h_denom_pub: &HashCode,
    coin_pub: &EddsaPublicKey,
    bks: &[u8; 32],
    ewv: &ExchangeWithdrawValues,
    nonce: Option<&[u8; 32]>,
) -> Option<HashCode> {
    let msg = h_coin_pub(coin_pub);
    match (public, ewv) {
        (DenominationPublic::Rsa(k), ExchangeWithdrawValues::Rsa) => {
            let bks = rsa::BlindingKeySecret::from_bytes(*bks);
            let blinded = rsa::blind(k, msg.as_bytes(), &bks).ok()?;
            Some(coin_envelope_hash(h_denom_pub, &blinded))
        }
        (DenominationPublic::Cs(k), ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 }) => {
            let nonce = nonce?;
            let secrets = cs::blinding_secrets(bks);
            let r_pub = [*r_pub_0.as_bytes(), *r_pub_1.as_bytes()];
            let (c, _) = cs::blind(&secrets, &r_pub, k, msg.as_bytes()).ok()?;
            Some(coin_envelope_hash_cs(h_denom_pub, nonce, &c))
        }
        _ => None,
    }
}

/// A recoup request that passed steps 1–4: the denomination and the envelope hash.
struct Checked<'a> {
    denomination: &'a DenominationRow,
    h_blind_ev: HashCode,
}

/// Steps 1–4 (everything before the database).
fn check<'a>(
    exchange: &Exchange,
    snapshot: &'a KeySnapshot,
    coin_pub: &EddsaPublicKey,
    r: &RecoupRequest,
    kind: Kind,
    now: Timestamp,
) -> Result<Checked<'a>, ExchangeError> {
    let d = recoupable(exchange, snapshot, &r.denom_pub_hash, kind, now)?;
    if crate::denomination::claims_age_commitment(r.h_age_commitment.as_ref())
        || !crate::deposit::denomination_signature_valid(&d.public, coin_pub, &r.denom_sig)
    {
        return Err(ExchangeError::refused(
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "the denomination's signature over the coin is invalid",
        ));
    }
    let message = Recoup {
        h_denom_pub: d.h_denom_pub,
        coin_bks: *r.coin_blind_key_secret.as_bytes(),
    };
    let verified = match kind {
        Kind::Withdraw => cardcash_crypto::verify(coin_pub, &r.coin_sig, &message),
        Kind::Refresh => cardcash_crypto::verify(
            coin_pub,
            &r.coin_sig,
            &RecoupRefresh {
                h_denom_pub: message.h_denom_pub,
                coin_bks: message.coin_bks,
            },
        ),
    };
    verified.map_err(|_| {
        ExchangeError::refused(
            kind.signature_invalid(),
            "the coin's signature over the recoup request is invalid",
        )
    })?;
    let h_blind_ev = envelope_hash(
        &d.public,
        &d.h_denom_pub,
        coin_pub,
        r.coin_blind_key_secret.as_bytes(),
        &r.ewv,
        r.nonce.as_ref().map(|n| n.as_bytes()),
    )
    .ok_or_else(|| {
        ExchangeError::refused(
            kind.blinding_failed(),
            "the coin cannot be blinded again with these values (cipher of ewv, CS nonce)",
        )
    })?;
    Ok(Checked {
        denomination: d,
        h_blind_ev,
    })
}

fn insufficient(coin_pub: &EddsaPublicKey, h_denom_pub: &HashCode) -> ExchangeError {
    ExchangeError::refused_with(
        ErrorCode::ExchangeGenericInsufficientFunds,
        "nothing is left of the coin",
        json!({ "coin_pub": coin_pub, "h_denom_pub": h_denom_pub }),
    )
}

fn coin_conflict(coin_pub: &EddsaPublicKey) -> ExchangeError {
    ExchangeError::refused_with(
        ErrorCode::ExchangeGenericCoinConflictingDenominationKey,
        "the coin is known with another denomination",
        json!({ "coin_pub": coin_pub }),
    )
}

/// `POST /coins/$COIN_PUB/recoup`.
pub async fn recoup(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    r: RecoupRequest,
) -> Result<RecoupWithdrawResponse, ExchangeError> {
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    let checked = check(exchange, &snapshot, &coin_pub, &r, Kind::Withdraw, now)?;
    let d = checked.denomination;
    let currency = *exchange.store().currency();
    if d.value.currency() != &currency {
        return Err(ExchangeError::Internal(
            "denomination in another currency".into(),
        ));
    }
    // Whole seconds: the histories show the time as `{t_s}` and the confirmations sign it.
    let stamp = now;
    let outcome = exchange
        .store()
        .recoup(NewRecoup {
            coin_pub,
            denom_serial: d.serial,
            denom_sig: stored_coin_signature(&r.denom_sig),
            coin_value: d.value,
            h_blind_ev: checked.h_blind_ev,
            coin_sig: r.coin_sig,
            coin_blind: *r.coin_blind_key_secret.as_bytes(),
            now: stamp,
            reserve_expiration: stamp.saturating_add(exchange.config().reserve_closing_delay),
        })
        .await?;
    match outcome {
        RecoupOutcome::Done { reserve_pub, .. } | RecoupOutcome::Replay { reserve_pub } => {
            Ok(RecoupWithdrawResponse { reserve_pub })
        }
        RecoupOutcome::WithdrawalNotFound => Err(ExchangeError::refused(
            ErrorCode::ExchangeRecoupWithdrawNotFound,
            "this exchange never signed the blinded coin in a withdrawal",
        )),
        RecoupOutcome::CoinConflict => Err(coin_conflict(&coin_pub)),
        RecoupOutcome::InsufficientFunds => Err(insufficient(&coin_pub, &d.h_denom_pub)),
    }
}

/// `POST /coins/$COIN_PUB/recoup-refresh`.
pub async fn recoup_refresh(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    r: RecoupRequest,
) -> Result<RecoupRefreshResponse, ExchangeError> {
    let snapshot = exchange.keys();
    let now = Timestamp::now();
    let checked = check(exchange, &snapshot, &coin_pub, &r, Kind::Refresh, now)?;
    let d = checked.denomination;
    if d.value.currency() != exchange.store().currency() {
        return Err(ExchangeError::Internal(
            "denomination in another currency".into(),
        ));
    }
    let outcome = exchange
        .store()
        .recoup_refresh(NewRecoupRefresh {
            coin_pub,
            denom_serial: d.serial,
            denom_sig: stored_coin_signature(&r.denom_sig),
            coin_value: d.value,
            h_coin_ev: checked.h_blind_ev,
            coin_sig: r.coin_sig,
            coin_blind: *r.coin_blind_key_secret.as_bytes(),
            now,
        })
        .await?;
    match outcome {
        RecoupRefreshOutcome::Done { old_coin_pub, .. }
        | RecoupRefreshOutcome::Replay { old_coin_pub } => {
            Ok(RecoupRefreshResponse { old_coin_pub })
        }
        RecoupRefreshOutcome::MeltNotFound => Err(ExchangeError::refused(
            ErrorCode::ExchangeRecoupRefreshMeltNotFound,
            "this exchange never signed the blinded coin in a refresh",
        )),
        RecoupRefreshOutcome::CoinConflict => Err(coin_conflict(&coin_pub)),
        RecoupRefreshOutcome::InsufficientFunds => Err(insufficient(&coin_pub, &d.h_denom_pub)),
    }
}

/// The exchange's confirmation of a recoup of the fresh coin `coin_pub` into the coin
/// `old_coin_pub` it was refreshed from (purpose 1041): what both coins' histories show
/// (`RECOUP-REFRESH` on the fresh coin, `OLD-COIN-RECOUP` on the old one).
pub fn confirm_recoup_refresh(
    exchange: &Exchange,
    timestamp: Timestamp,
    amount: Amount,
    coin_pub: EddsaPublicKey,
    old_coin_pub: EddsaPublicKey,
) -> Result<(EddsaPublicKey, EddsaSignature), ExchangeError> {
    sign(
        exchange,
        &RecoupRefreshConfirmation {
            timestamp,
            recoup_amount: amount,
            coin_pub,
            old_coin_pub,
        },
    )
}

/// The exchange's confirmation of a recoup into a reserve (purpose 1039), with the current
/// signing key: what the reserve's and the coin's history show with each `RECOUP`.
pub fn confirm_recoup(
    exchange: &Exchange,
    timestamp: Timestamp,
    amount: Amount,
    coin_pub: EddsaPublicKey,
    reserve_pub: EddsaPublicKey,
) -> Result<(EddsaPublicKey, EddsaSignature), ExchangeError> {
    sign(
        exchange,
        &RecoupConfirmation {
            timestamp,
            recoup_amount: amount,
            coin_pub,
            reserve_pub,
        },
    )
}

fn sign(
    exchange: &Exchange,
    message: &impl cardcash_crypto::SignedMessage,
) -> Result<(EddsaPublicKey, EddsaSignature), ExchangeError> {
    let key = exchange
        .keys()
        .signing_key
        .as_ref()
        .map(|k| k.exchange_pub)
        .ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeGenericKeysMissing,
                "no online signing key is signed by the master key",
            )
        })?;
    let sig = exchange
        .keystore()
        .sign_with(&key, message)
        .ok_or_else(|| {
            ExchangeError::Internal("the signing key's private key is missing".into())
        })?;
    Ok((key, sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_api::exchange::CsPoint;
    use cardcash_crypto::EddsaPrivateKey;

    fn kudos(s: &str) -> Amount {
        format!("KUDOS:{s}").parse().unwrap()
    }

    fn denomination(revoked: bool, start: u64, expire_deposit: u64) -> DenominationRow {
        DenominationRow {
            serial: 1,
            h_denom_pub: HashCode::from_bytes([1; 64]),
            public: DenominationPublic::Cs([9; 32]),
            section: "coin_kudos_1".into(),
            value: kudos("1"),
            fee_withdraw: kudos("0.01"),
            fee_deposit: kudos("0.01"),
            fee_refresh: kudos("0.01"),
            fee_refund: kudos("0.01"),
            stamp_start: Timestamp::from_secs(start),
            stamp_expire_withdraw: Timestamp::from_secs(start + 10),
            stamp_expire_deposit: Timestamp::from_secs(expire_deposit),
            stamp_expire_legal: Timestamp::from_secs(expire_deposit + 100),
            master_sig: EddsaSignature::from_bytes([2; 64]),
            revocation: revoked.then(|| EddsaSignature::from_bytes([3; 64])),
        }
    }

    #[test]
    fn only_revoked_denominations_in_their_spending_window_recoup() {
        let now = Timestamp::from_secs(1_000);
        assert_eq!(eligibility(&denomination(true, 500, 2_000), now), Ok(()));
        assert_eq!(
            eligibility(&denomination(false, 500, 2_000), now),
            Err(Ineligible::NotRevoked)
        );
        // Expiry is checked before anything else (the C exchange's order), revoked or not.
        assert_eq!(
            eligibility(&denomination(true, 500, 1_000), now),
            Err(Ineligible::Expired)
        );
        assert_eq!(
            eligibility(&denomination(false, 500, 900), now),
            Err(Ineligible::Expired)
        );
        assert_eq!(
            eligibility(&denomination(true, 1_001, 2_000), now),
            Err(Ineligible::InFuture)
        );
    }

    #[test]
    fn rsa_envelope_is_the_wallets() {
        let private = rsa::RsaPrivateKey::generate(1024).unwrap();
        let public = private.public().clone();
        let h = public.h_denom_pub(0);
        let coin = EddsaPrivateKey::generate().unwrap().public();
        let bks = rsa::BlindingKeySecret::generate().unwrap();
        let wallet = coin_envelope_hash(
            &h,
            &rsa::blind(&public, h_coin_pub(&coin).as_bytes(), &bks).unwrap(),
        );
        let d = DenominationPublic::Rsa(public);
        let ewv = ExchangeWithdrawValues::Rsa;
        assert_eq!(
            envelope_hash(&d, &h, &coin, bks.as_bytes(), &ewv, None),
            Some(wallet)
        );
        // Another secret or coin is another envelope; CS values cannot blind for RSA.
        assert_ne!(
            envelope_hash(&d, &h, &coin, &[7; 32], &ewv, None),
            Some(wallet)
        );
        let other = EddsaPrivateKey::generate().unwrap().public();
        assert_ne!(
            envelope_hash(&d, &h, &other, bks.as_bytes(), &ewv, None),
            Some(wallet)
        );
        let cs_values = ExchangeWithdrawValues::Cs {
            r_pub_0: CsPoint::from_bytes([0; 32]),
            r_pub_1: CsPoint::from_bytes([0; 32]),
        };
        assert_eq!(
            envelope_hash(&d, &h, &coin, bks.as_bytes(), &cs_values, None),
            None
        );
    }

    #[test]
    fn cs_envelope_is_the_wallets_and_needs_the_nonce() {
        let private = cs::generate_private().unwrap();
        let public = cs::public(&private);
        let h = cs::h_denom_pub(&public, 0);
        let coin = EddsaPrivateKey::generate().unwrap().public();
        let nonce = [4u8; 32];
        let r_pub = cs::r_public(&nonce, cs::R_SEED_WITHDRAW, &private);
        let seed = [5u8; 32];
        let (c, _) = cs::blind(
            &cs::blinding_secrets(&seed),
            &r_pub,
            &public,
            h_coin_pub(&coin).as_bytes(),
        )
        .unwrap();
        let wallet = coin_envelope_hash_cs(&h, &nonce, &c);
        let d = DenominationPublic::Cs(public);
        let ewv = ExchangeWithdrawValues::Cs {
            r_pub_0: CsPoint::from_bytes(r_pub[0]),
            r_pub_1: CsPoint::from_bytes(r_pub[1]),
        };
        assert_eq!(
            envelope_hash(&d, &h, &coin, &seed, &ewv, Some(&nonce)),
            Some(wallet)
        );
        assert_eq!(envelope_hash(&d, &h, &coin, &seed, &ewv, None), None);
        assert_ne!(
            envelope_hash(&d, &h, &coin, &seed, &ewv, Some(&[6; 32])),
            Some(wallet)
        );
        assert_eq!(
            envelope_hash(
                &d,
                &h,
                &coin,
                &seed,
                &ExchangeWithdrawValues::Rsa,
                Some(&nonce)
            ),
            None
        );
    }
}
