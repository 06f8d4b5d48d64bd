//! Recoup, protocol v23: `POST /coins/$COIN_PUB/recoup` (a withdrawn coin of a revoked
//! denomination pays its remaining value back into the reserve it was withdrawn from) and
//! `POST /coins/$COIN_PUB/recoup-refresh` (a coin made by a refresh pays it back into the coin
//! that was melted).
//!
//! Sources: the C exchange's `taler-exchange-httpd_recoup.c` and
//! `taler-exchange-httpd_recoup-refresh.c` (what it reads and writes), `src/util/
//! wallet_signatures.c` (purposes 1203/1206 over `h_denom_pub ‖ coin_bks`), docs.taler.net
//! core/api-exchange "Recoup".
//!
//! - Both requests are [`RecoupRequest`]: the coin proves it is a coin of the denomination
//!   (`denom_sig`) and reveals its blinding secret, so the exchange can blind the coin again and
//!   find the withdrawal or refresh that signed it (`ewv` and, for CS, `nonce` as at
//!   withdrawal or reveal).
//! - 200: [`RecoupWithdrawResponse`] `{reserve_pub}` or [`RecoupRefreshResponse`]
//!   `{old_coin_pub}`. A replay of a coin recouped before answers the same.
//! - Refusals: a denomination not revoked is a 410 `EXCHANGE_RECOUP_NOT_ELIGIBLE` (or
//!   `…RECOUP_REFRESH_NOT_ELIGIBLE`) signed like the other denomination refusals (purpose 1043,
//!   `oper` `RECOUP`/`RECOUP-REFRESH`); a bad denomination signature 403
//!   `EXCHANGE_DENOMINATION_SIGNATURE_INVALID`; a bad coin signature 403
//!   `EXCHANGE_RECOUP_SIGNATURE_INVALID` (`…RECOUP_REFRESH_SIGNATURE_INVALID`); no withdrawal
//!   (refresh) of the blinded coin 404 `EXCHANGE_RECOUP_WITHDRAW_NOT_FOUND`
//!   (`…RECOUP_REFRESH_MELT_NOT_FOUND`); nothing left of the coin 409
//!   `EXCHANGE_GENERIC_INSUFFICIENT_FUNDS` with `coin_pub` and `h_denom_pub`
//!   ([`super::CoinInsufficientFundsResponse`]).
//!
//! Differences from our notes (taler-protocol.md §6 shows `{denom_pub_hash, denom_sig,
//! coin_sig, coin_blind_key_secret, ewv}`): v23 also reads the optional `h_age_commitment` and
//! `nonce` (the CS session nonce of the withdrawal; required to re-blind a CS coin).

use cardcash_util::{EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode};
use serde::{Deserialize, Serialize};

use super::denom::{BlindingKeySecret, CsNonce, ExchangeWithdrawValues, UnblindedSignature};

/// `POST /coins/$COIN_PUB/recoup` and `POST /coins/$COIN_PUB/recoup-refresh` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoupRequest {
    /// The coin's (revoked) denomination.
    pub denom_pub_hash: HashCode,
    /// The denomination's signature over the coin.
    pub denom_sig: UnblindedSignature,
    /// What the exchange contributed to the blinding (`{"cipher":"RSA"}`, or CS's `R` values).
    pub ewv: ExchangeWithdrawValues,
    /// The coin's blinding key secret (RSA), or the seed of its CS blinding secrets.
    pub coin_blind_key_secret: BlindingKeySecret,
    /// The coin's signature over the request (purpose 1203, or 1206 for recoup-refresh).
    pub coin_sig: EddsaSignature,
    /// Hash of the coin's age commitment, for age-restricted coins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub h_age_commitment: Option<ShortHashCode>,
    /// The CS session nonce the coin was blinded with (CS coins only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<CsNonce>,
}

/// `POST /coins/$COIN_PUB/recoup` (200): the reserve that received the coin's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoupWithdrawResponse {
    /// The reserve the coin was withdrawn from, now credited.
    pub reserve_pub: EddsaPublicKey,
}

/// `POST /coins/$COIN_PUB/recoup-refresh` (200): the coin that received the fresh coin's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoupRefreshResponse {
    /// The melted coin the fresh coin came from, now credited.
    pub old_coin_pub: EddsaPublicKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b32(n: usize, fill: u8) -> String {
        cardcash_util::base32::encode(&vec![fill; n])
    }

    #[test]
    fn rsa_request_round_trips_without_the_optional_fields() {
        let text = format!(
            r#"{{"denom_pub_hash":"{h}","denom_sig":{{"cipher":"RSA","rsa_signature":"{s}"}},
                "ewv":{{"cipher":"RSA"}},"coin_blind_key_secret":"{k}","coin_sig":"{sig}"}}"#,
            h = b32(64, 1),
            s = b32(128, 2),
            k = b32(32, 3),
            sig = b32(64, 4),
        );
        let r: RecoupRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(r.ewv, ExchangeWithdrawValues::Rsa);
        assert_eq!(r.coin_blind_key_secret.as_bytes(), &[3; 32]);
        assert!(r.nonce.is_none() && r.h_age_commitment.is_none());
        let again = serde_json::to_value(&r).unwrap();
        assert!(again.get("nonce").is_none());
        assert_eq!(
            serde_json::from_value::<RecoupRequest>(again).unwrap(),
            r,
            "round trip"
        );
    }

    #[test]
    fn cs_request_carries_its_nonce() {
        let text = format!(
            r#"{{"denom_pub_hash":"{h}",
                "denom_sig":{{"cipher":"CS","cs_signature_r":"{k}","cs_signature_s":"{k}"}},
                "ewv":{{"cipher":"CS","r_pub_0":"{k}","r_pub_1":"{k}"}},
                "coin_blind_key_secret":"{k}","coin_sig":"{sig}","nonce":"{n}"}}"#,
            h = b32(64, 1),
            k = b32(32, 3),
            n = b32(32, 5),
            sig = b32(64, 4),
        );
        let r: RecoupRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(r.nonce, Some(CsNonce::from_bytes([5; 32])));
    }

    #[test]
    fn responses_name_the_credited_key() {
        let key = b32(32, 9);
        let r: RecoupWithdrawResponse =
            serde_json::from_str(&format!(r#"{{"reserve_pub":"{key}"}}"#)).unwrap();
        assert_eq!(r.reserve_pub.to_string(), key);
        let r: RecoupRefreshResponse =
            serde_json::from_str(&format!(r#"{{"old_coin_pub":"{key}"}}"#)).unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({ "old_coin_pub": key })
        );
    }
}
