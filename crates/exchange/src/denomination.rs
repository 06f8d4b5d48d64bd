//! Which denomination a request may use, and the signed refusals when it may not
//! (docs.taler.net core/api-exchange: the 404/410/412 bodies carry the exchange's signature
//! over the denomination and the time, purposes 1042 and 1043, so a wallet can prove to an
//! auditor that the exchange refused).

use cardcash_crypto::purpose::{DenominationExpired, DenominationUnknown, operation_name};
use cardcash_util::{ErrorCode, HashCode, Timestamp};
use serde_json::json;

use crate::db::DenominationRow;
use crate::error::ExchangeError;
use crate::keys::state::KeySnapshot;
use crate::service::Exchange;

/// What the denomination is used for: withdrawal needs the withdrawal window, deposits the
/// spending window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Withdraw,
    CsrWithdraw,
    Deposit,
    Refund,
    /// Melting a coin (its legal expiry; the deposit expiry is the melt's own rule: zombies).
    Melt,
    /// A fresh coin of a reveal (the withdrawal window).
    Reveal,
    CsrMelt,
    Recoup,
    RecoupRefresh,
}

impl Use {
    /// The operation name the C exchange puts in `oper` and signs.
    fn name(self) -> &'static str {
        match self {
            Self::Withdraw => "WITHDRAW",
            Self::CsrWithdraw => "csr-withdraw",
            Self::Deposit => "DEPOSIT",
            Self::Refund => "REFUND",
            Self::Melt => "MELT",
            Self::Reveal => "REVEAL",
            Self::CsrMelt => "csr-melt",
            Self::Recoup => "RECOUP",
            Self::RecoupRefresh => "RECOUP-REFRESH",
        }
    }
}

/// The denomination `h` if it may be used for `use_` at `now`; else the signed refusal.
pub fn usable<'a>(
    exchange: &Exchange,
    snapshot: &'a KeySnapshot,
    h: &HashCode,
    use_: Use,
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
    if d.revocation.is_some() && use_ != Use::Refund {
        return Err(signed_refusal(
            exchange,
            snapshot,
            ErrorCode::ExchangeGenericDenominationRevoked,
            "the denomination was revoked",
            h,
            Some(use_),
            now,
        ));
    }
    if now < d.stamp_start {
        return Err(signed_refusal(
            exchange,
            snapshot,
            ErrorCode::ExchangeGenericDenominationValidityInFuture,
            "the denomination is not valid yet",
            h,
            Some(use_),
            now,
        ));
    }
    let end = match use_ {
        Use::Withdraw | Use::CsrWithdraw => d.stamp_expire_withdraw,
        Use::Deposit | Use::Recoup | Use::RecoupRefresh => d.stamp_expire_deposit,
        Use::Refund | Use::Melt => d.stamp_expire_legal,
        Use::Reveal | Use::CsrMelt => d.stamp_expire_withdraw,
    };
    if now >= end {
        return Err(signed_refusal(
            exchange,
            snapshot,
            ErrorCode::ExchangeGenericDenominationExpired,
            "the denomination expired for this operation",
            h,
            Some(use_),
            now,
        ));
    }
    Ok(d)
}

/// The signed 404 of an operation that the denomination's cipher does not support (code 1016
/// with the "denomination unknown" statement, purpose 1042, as the C exchange answers it).
/// Whether a request claims an age commitment for its coin: a hash given and not all zero. The
/// C clients send zeros for "none" (its `TALER_coin_pub_hash` treats a null or zero hash alike),
/// so zeros are no claim. No denomination here is age-restricted, so a real claim means a coin
/// hash that no denomination signed.
pub fn claims_age_commitment(h: Option<&cardcash_util::ShortHashCode>) -> bool {
    h.is_some_and(|h| h.as_bytes().iter().any(|b| *b != 0))
}

pub fn wrong_cipher(exchange: &Exchange, snapshot: &KeySnapshot, h: &HashCode) -> ExchangeError {
    let mut e = signed_refusal(
        exchange,
        snapshot,
        ErrorCode::ExchangeGenericInvalidDenominationCipherForOperation,
        "the denomination's cipher does not support this operation",
        h,
        None,
        Timestamp::now(),
    );
    if let ExchangeError::Refused(r) = &mut e {
        r.status = Some(axum::http::StatusCode::NOT_FOUND);
    }
    e
}

/// A refusal with the exchange's signature over the denomination (1042 unknown, 1043 other).
pub(crate) fn signed_refusal(
    exchange: &Exchange,
    snapshot: &KeySnapshot,
    code: ErrorCode,
    hint: &str,
    h: &HashCode,
    use_: Option<Use>,
    now: Timestamp,
) -> ExchangeError {
    let timestamp = now.round_down_to_secs();
    let Some(signkey) = &snapshot.signing_key else {
        return ExchangeError::refused(code, hint);
    };
    let signature = match use_ {
        None => exchange.keystore().sign_with(
            &signkey.exchange_pub,
            &DenominationUnknown {
                timestamp,
                h_denom_pub: *h,
            },
        ),
        Some(u) => exchange.keystore().sign_with(
            &signkey.exchange_pub,
            &DenominationExpired {
                timestamp,
                operation: operation_name(u.name()),
                h_denom_pub: *h,
            },
        ),
    };
    let Some(exchange_sig) = signature else {
        return ExchangeError::refused(code, hint);
    };
    let mut extra = json!({
        "timestamp": timestamp,
        "exchange_pub": signkey.exchange_pub,
        "exchange_sig": exchange_sig,
        "h_denom_pub": h,
    });
    if let Some(u) = use_ {
        extra["oper"] = json!(u.name());
    }
    ExchangeError::refused_with(code, hint, extra)
}

#[cfg(test)]
mod tests {
    use cardcash_util::ShortHashCode;

    use super::claims_age_commitment;

    #[test]
    fn only_a_non_zero_hash_claims_an_age_commitment() {
        assert!(!claims_age_commitment(None));
        // The 2022 C clients send zeros for "no age commitment".
        assert!(!claims_age_commitment(Some(&ShortHashCode::from_bytes(
            [0; 32]
        ))));
        let mut one = [0; 32];
        one[31] = 1;
        assert!(claims_age_commitment(Some(&ShortHashCode::from_bytes(one))));
    }
}
