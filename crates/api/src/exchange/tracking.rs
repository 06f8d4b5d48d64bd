//! Settlement as merchants see it, protocol v23: `GET /deposits/$H_WIRE/$MERCHANT_PUB/
//! $H_CONTRACT_TERMS/$COIN_PUB` (which wire transfer paid a deposited coin) and
//! `GET /transfers/$WTID` (what one wire transfer paid for).
//!
//! Sources: the C exchange's `taler-exchange-httpd_deposits_get.c` and
//! `taler-exchange-httpd_transfers_get.c`; its client `exchange_api_deposits_get.c`,
//! `exchange_api_transfers_get.c`.
//!
//! Deposit tracking takes the query `merchant_sig` (required: the merchant's signature, purpose
//! 1103, over `h_contract_terms`, `h_wire` and `coin_pub`), `timeout_ms` (long polling) and `lpt`
//! ([`DepositLongPollTarget`], what to wait for; default [`DepositLongPollTarget::Ok`]). It
//! answers 200 [`TrackTransactionResponse`] once the coin was aggregated into a transfer, 202
//! [`TrackTransactionAcceptedResponse`] while it is not, 404
//! `EXCHANGE_DEPOSITS_GET_NOT_FOUND`, 403 `EXCHANGE_DEPOSITS_GET_MERCHANT_SIGNATURE_INVALID`,
//! and 400 `EXCHANGE_DEPOSITS_GET_INVALID_{H_WIRE,MERCHANT_PUB,H_CONTRACT_TERMS,COIN_PUB}` for a
//! malformed path segment.
//!
//! Transfer tracking answers 200 [`TrackTransferResponse`], 404
//! `EXCHANGE_TRANSFERS_GET_WTID_NOT_FOUND`, 400 `EXCHANGE_TRANSFERS_GET_WTID_MALFORMED`.
//!
//! Differences from our notes (which do not describe these endpoints): the query parameter
//! `lpt`; the 202 body `{requirement_row?, account_pub?, kyc_ok, execution_time}`; `h_payto` of a
//! transfer is the 32-byte hash of the merchant's full payto URI, and `refund_total` of a
//! deposit detail is present only when not zero.

use cardcash_crypto::purpose::{WireDepositConfirmation, WireDepositDetail};
use cardcash_util::{Amount, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode, Timestamp};
use serde::{Deserialize, Serialize};

/// What a deposit-tracking long poll waits for (query `lpt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DepositLongPollTarget {
    /// Do not wait.
    None,
    /// Wait until KYC is required or the coin was wired.
    KycRequiredOrOk,
    /// Wait until the coin was wired (the exchange's default).
    #[default]
    Ok,
}

impl DepositLongPollTarget {
    /// The query value.
    pub fn as_query(self) -> u8 {
        match self {
            Self::None => 0,
            Self::KycRequiredOrOk => 1,
            Self::Ok => 2,
        }
    }

    /// The target of a query value; values the exchange does not know mean "do not wait" (as
    /// the C exchange treats them).
    pub fn from_query(value: u64) -> Self {
        match value {
            1 => Self::KycRequiredOrOk,
            2 => Self::Ok,
            _ => Self::None,
        }
    }
}

/// `GET /deposits/…` when the coin was wired (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackTransactionResponse {
    /// The wire transfer identifier.
    pub wtid: ShortHashCode,
    /// When the transfer was made.
    pub execution_time: Timestamp,
    /// The coin's contribution to the transfer (deposit minus fee and refunds).
    pub coin_contribution: Amount,
    /// The exchange's confirmation (purpose 1036).
    pub exchange_sig: EddsaSignature,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
}

/// `GET /deposits/…` when the coin was not wired yet (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackTransactionAcceptedResponse {
    /// The KYC requirement blocking the transfer, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requirement_row: Option<u64>,
    /// The account key the merchant must use for KYC, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub account_pub: Option<EddsaPublicKey>,
    /// Whether the merchant passed KYC (always `true` without KYC).
    pub kyc_ok: bool,
    /// When the exchange plans to wire the money.
    pub execution_time: Timestamp,
}

/// `GET /transfers/$WTID` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackTransferResponse {
    /// The amount wired (sum of the deposits' values minus their fees and refunds, minus the
    /// wire fee).
    pub total: Amount,
    /// The wire fee subtracted.
    pub wire_fee: Amount,
    /// The merchant paid.
    pub merchant_pub: EddsaPublicKey,
    /// Hash of the merchant's full payto URI.
    pub h_payto: ShortHashCode,
    /// When the transfer was made.
    pub execution_time: Timestamp,
    /// The coins the transfer paid for.
    pub deposits: Vec<TrackTransferDetail>,
    /// The exchange's confirmation (purpose 1037).
    pub exchange_sig: EddsaSignature,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
}

impl TrackTransferResponse {
    /// What `exchange_sig` signs (purpose 1037), built from the answer alone: the deposits'
    /// details in the order listed, each with the transfer's execution time.
    pub fn signed_message(&self) -> WireDepositConfirmation {
        let details: Vec<WireDepositDetail> = self
            .deposits
            .iter()
            .map(|d| WireDepositDetail {
                h_contract_terms: d.h_contract_terms,
                execution_time: self.execution_time,
                coin_pub: d.coin_pub,
                deposit_value: d.deposit_value,
                deposit_fee: d.deposit_fee,
            })
            .collect();
        WireDepositConfirmation {
            total: self.total,
            wire_fee: self.wire_fee,
            merchant_pub: self.merchant_pub,
            h_payto: self.h_payto,
            h_details: WireDepositConfirmation::hash_details(details.iter()),
        }
    }
}

/// One deposited coin paid by a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackTransferDetail {
    /// The contract.
    pub h_contract_terms: HashCode,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// The coin's deposit, deposit fee included.
    pub deposit_value: Amount,
    /// The deposit fee.
    pub deposit_fee: Amount,
    /// What was refunded of the deposit (absent when nothing).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_total: Option<Amount>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SHORT, SIG, assert_round_trip};

    #[test]
    fn deposit_tracking_answers() {
        let wired: TrackTransactionResponse = assert_round_trip(&format!(
            r#"{{"wtid":"{SHORT}","execution_time":{{"t_s":1700086400}},
            "coin_contribution":"KUDOS:0.99","exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
        ));
        assert_eq!(wired.coin_contribution.to_string(), "KUDOS:0.99");
        let pending: TrackTransactionAcceptedResponse =
            assert_round_trip(r#"{"kyc_ok":true,"execution_time":{"t_s":1700086400}}"#);
        assert!(pending.kyc_ok && pending.requirement_row.is_none());
        let _: TrackTransactionAcceptedResponse = assert_round_trip(&format!(
            r#"{{"requirement_row":7,"account_pub":"{PUB}","kyc_ok":false,"execution_time":{{"t_s":1}}}}"#
        ));
    }

    #[test]
    fn long_poll_targets() {
        for target in [
            DepositLongPollTarget::None,
            DepositLongPollTarget::KycRequiredOrOk,
            DepositLongPollTarget::Ok,
        ] {
            assert_eq!(
                DepositLongPollTarget::from_query(target.as_query().into()),
                target
            );
        }
        assert_eq!(
            DepositLongPollTarget::from_query(9),
            DepositLongPollTarget::None
        );
        assert_eq!(DepositLongPollTarget::default(), DepositLongPollTarget::Ok);
    }

    #[test]
    fn transfer_tracking_answer() {
        let t: TrackTransferResponse = assert_round_trip(&format!(
            r#"{{"total":"KUDOS:1.47","wire_fee":"KUDOS:0.01","merchant_pub":"{PUB}",
            "h_payto":"{SHORT}","execution_time":{{"t_s":1700086400}},
            "deposits":[{{"h_contract_terms":"{HASH}","coin_pub":"{PUB}","refund_total":"KUDOS:0.5",
              "deposit_value":"KUDOS:1","deposit_fee":"KUDOS:0.01"}},
              {{"h_contract_terms":"{HASH}","coin_pub":"{PUB}",
              "deposit_value":"KUDOS:1","deposit_fee":"KUDOS:0.01"}}],
            "exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
        ));
        assert!(t.deposits[0].refund_total.is_some() && t.deposits[1].refund_total.is_none());
        // h_payto is a 32-byte hash, not a 64-byte one
        let long = serde_json::to_string(&t)
            .unwrap()
            .replace(&format!("\"{SHORT}\""), &format!("\"{HASH}\""));
        assert!(serde_json::from_str::<TrackTransferResponse>(&long).is_err());
    }
}
