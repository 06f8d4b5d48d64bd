//! Withdrawing coins, protocol v23: `POST /csr-withdraw` (the exchange's `R` values for a CS
//! planchet) and `POST /reserves/$RESERVE_PUB/batch-withdraw`, with the error bodies that carry
//! more than `{code, hint}`.
//!
//! Sources: the C exchange's `taler-exchange-httpd_csr.c`, `taler-exchange-httpd_withdraw.c`
//! (batch part) and `taler-exchange-httpd_responses.c`; its client
//! `exchange_api_csr_withdraw.c`, `exchange_api_batch_withdraw2.c`.
//!
//! - `/csr-withdraw`: `{nonce, denom_pub_hash}` → `{"ewv": {"cipher":"CS","r_pub_0","r_pub_1"}}`.
//!   A denomination that is not CS gets a 404 [`DenominationErrorResponse`] with code
//!   `EXCHANGE_GENERIC_INVALID_DENOMINATION_CIPHER_FOR_OPERATION`; an expired, not yet valid or
//!   revoked one a 410 with `oper: "csr-withdraw"`; an unknown one a 404
//!   `EXCHANGE_GENERIC_DENOMINATION_KEY_UNKNOWN`.
//! - batch withdraw: one signature per planchet, answers in planchet order. A reserve that
//!   cannot pay the whole batch: 409 [`ReserveInsufficientBalanceResponse`]
//!   (`EXCHANGE_WITHDRAW_INSUFFICIENT_FUNDS`). Replaying a batch returns the stored signatures;
//!   a planchet that was already signed inside a different batch is a 409
//!   `EXCHANGE_WITHDRAW_BATCH_IDEMPOTENT_PLANCHET`, a reused CS nonce a 400
//!   `EXCHANGE_WITHDRAW_NONCE_REUSE`, a bad reserve signature a 403
//!   `EXCHANGE_WITHDRAW_RESERVE_SIGNATURE_INVALID`.
//!
//! Differences from our notes (taler-protocol.md §4.3, §6): the CS answer is nested under
//! `ewv`; the insufficient-funds body is `{code, hint, balance, requested_amount}` (the reserve's
//! balance and the batch's total with fees) and carries no reserve history; the denomination
//! error bodies carry an exchange signature (purposes 1042/1043) over the denomination hash and
//! the time.

use cardcash_util::{Amount, EddsaPublicKey, EddsaSignature, HashCode, Timestamp};
use serde::{Deserialize, Serialize};

use super::denom::{BlindedDenominationSignature, CoinEnvelope, CsNonce, ExchangeWithdrawValues};
use crate::common::ErrorDetail;

/// `POST /csr-withdraw` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrWithdrawRequest {
    /// The session nonce the wallet derived for this planchet.
    pub nonce: CsNonce,
    /// The CS denomination the planchet is for.
    pub denom_pub_hash: HashCode,
}

/// `POST /csr-withdraw` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrWithdrawResponse {
    /// The exchange's `R` values for the nonce.
    pub ewv: ExchangeWithdrawValues,
}

/// One planchet of a batch withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawPlanchet {
    /// The denomination to sign with.
    pub denom_pub_hash: HashCode,
    /// The reserve's signature (purpose 1200) over amount with fee, denomination and envelope
    /// hash.
    pub reserve_sig: EddsaSignature,
    /// The blinded coin.
    pub coin_ev: CoinEnvelope,
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWithdrawRequest {
    /// The planchets, at least one.
    pub planchets: Vec<WithdrawPlanchet>,
}

/// One blind signature of a batch-withdraw answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawSignature {
    /// The exchange's blind signature over the planchet's envelope.
    pub ev_sig: BlindedDenominationSignature,
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw` response (200), in planchet order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWithdrawResponse {
    /// One signature per planchet.
    pub ev_sigs: Vec<WithdrawSignature>,
}

/// The 409 body when a reserve cannot pay a withdrawal
/// (`EXCHANGE_WITHDRAW_INSUFFICIENT_FUNDS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveInsufficientBalanceResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// What the reserve holds.
    pub balance: Amount,
    /// What the request needed (the batch's coins plus their withdraw fees).
    pub requested_amount: Amount,
}

/// The body of the exchange's signed refusals about a denomination: 404 when it is unknown
/// (`EXCHANGE_GENERIC_DENOMINATION_KEY_UNKNOWN`) or of the wrong cipher for the operation
/// (`EXCHANGE_GENERIC_INVALID_DENOMINATION_CIPHER_FOR_OPERATION`), 410 when it is expired, not
/// yet valid or revoked (`EXCHANGE_GENERIC_DENOMINATION_EXPIRED`, `…_VALIDITY_IN_FUTURE`,
/// `…_REVOKED`; then with `oper`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationErrorResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The operation that was refused (410 only): `"csr-withdraw"`, `"withdraw"`, `"deposit"`, ….
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oper: Option<String>,
    /// When the exchange decided.
    pub timestamp: Timestamp,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
    /// The exchange's signature (purpose 1042 unknown, 1043 expired) over the decision.
    pub exchange_sig: EddsaSignature,
    /// The denomination in question.
    pub h_denom_pub: HashCode,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::denom::CsPoint;
    use crate::exchange::test_support::{HASH, PUB, SIG, assert_round_trip, b32};
    use cardcash_util::ErrorCode;

    #[test]
    fn csr_withdraw_request_and_response() {
        let req: CsrWithdrawRequest = assert_round_trip(&format!(
            r#"{{"nonce":"{}","denom_pub_hash":"{HASH}"}}"#,
            b32(&[3; 32])
        ));
        assert_eq!(req.nonce, CsNonce::from_bytes([3; 32]));
        let resp: CsrWithdrawResponse = assert_round_trip(&format!(
            r#"{{"ewv":{{"cipher":"CS","r_pub_0":"{}","r_pub_1":"{}"}}}}"#,
            b32(&[1; 32]),
            b32(&[2; 32])
        ));
        assert_eq!(
            resp.ewv,
            ExchangeWithdrawValues::Cs {
                r_pub_0: CsPoint::from_bytes([1; 32]),
                r_pub_1: CsPoint::from_bytes([2; 32]),
            }
        );
        // the values are nested: a flat answer is not one
        assert!(
            serde_json::from_str::<CsrWithdrawResponse>(&format!(
                r#"{{"cipher":"CS","r_pub_0":"{}","r_pub_1":"{}"}}"#,
                b32(&[1; 32]),
                b32(&[2; 32])
            ))
            .is_err()
        );
    }

    #[test]
    fn batch_withdraw_with_rsa_and_cs_planchets() {
        let rsa = format!(
            r#"{{"reserve_sig":"{SIG}","denom_pub_hash":"{HASH}",
            "coin_ev":{{"cipher":"RSA","rsa_blinded_planchet":"{}"}}}}"#,
            b32(&[5; 256])
        );
        let cs = format!(
            r#"{{"reserve_sig":"{SIG}","denom_pub_hash":"{HASH}",
            "coin_ev":{{"cipher":"CS","cs_nonce":"{}","cs_blinded_c0":"{}","cs_blinded_c1":"{}"}}}}"#,
            b32(&[1; 32]),
            b32(&[2; 32]),
            b32(&[3; 32])
        );
        let req: BatchWithdrawRequest =
            assert_round_trip(&format!(r#"{{"planchets":[{rsa},{cs}]}}"#));
        assert!(matches!(req.planchets[1].coin_ev, CoinEnvelope::Cs { .. }));
        let resp: BatchWithdrawResponse = assert_round_trip(&format!(
            r#"{{"ev_sigs":[{{"ev_sig":{{"cipher":"RSA","blinded_rsa_signature":"{}"}}}},
            {{"ev_sig":{{"cipher":"CS","b":0,"s":"{}"}}}}]}}"#,
            b32(&[6; 256]),
            b32(&[4; 32])
        ));
        assert_eq!(resp.ev_sigs.len(), 2);
    }

    #[test]
    fn insufficient_balance_body() {
        let code = ErrorCode::ExchangeWithdrawInsufficientFunds.code();
        let body: ReserveInsufficientBalanceResponse = assert_round_trip(&format!(
            r#"{{"hint":"insufficient funds","code":{code},"balance":"KUDOS:0.5","requested_amount":"KUDOS:1.01"}}"#
        ));
        assert_eq!(
            body.error.error_code(),
            Some(ErrorCode::ExchangeWithdrawInsufficientFunds)
        );
        assert_eq!(body.requested_amount.to_string(), "KUDOS:1.01");
    }

    #[test]
    fn denomination_error_bodies() {
        let gone: DenominationErrorResponse = assert_round_trip(&format!(
            r#"{{"hint":"denomination expired","code":{},"oper":"csr-withdraw",
            "timestamp":{{"t_s":1700000000}},"exchange_pub":"{PUB}","exchange_sig":"{SIG}",
            "h_denom_pub":"{HASH}"}}"#,
            ErrorCode::ExchangeGenericDenominationExpired.code()
        ));
        assert_eq!(gone.oper.as_deref(), Some("csr-withdraw"));
        let unknown: DenominationErrorResponse = assert_round_trip(&format!(
            r#"{{"hint":"unknown","code":{},"timestamp":{{"t_s":1700000000}},
            "exchange_pub":"{PUB}","exchange_sig":"{SIG}","h_denom_pub":"{HASH}"}}"#,
            ErrorCode::ExchangeGenericDenominationKeyUnknown.code()
        ));
        assert_eq!(unknown.oper, None);
    }
}
