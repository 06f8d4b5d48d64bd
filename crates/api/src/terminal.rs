//! Terminal API: what a payment terminal uses to set up a card withdrawal and report the card
//! payment (served by c2ec). Spec: docs.taler.net core/api-terminal (v0); the request shapes
//! are from the spec as c2ec implemented it (see /work/shared/spec/c2ec.md §1.2).
//!
//! Deviation: [`TerminalWithdrawalSetupResponse`] also carries `taler_withdraw_uri`, so the
//! terminal need not know the bank-integration base URL to build the QR code.

use cardcash_util::{Amount, Currency, LibtoolVersion};
use serde::{Deserialize, Serialize};

/// `name` of the Terminal API's `/config`.
pub const API_NAME: &str = "taler-terminal";

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalConfig {
    pub name: String,
    pub version: LibtoolVersion,
    /// Display name of the terminal provider.
    pub provider_name: String,
    /// Must equal the wire gateway's currency.
    pub currency: Currency,
    /// The exchange's withdrawal fee the terminal shows and adds (zero if none).
    pub withdrawal_fees: Amount,
    /// Payto target type of the provider's transactions, e.g. `card-transaction`.
    pub wire_type: String,
}

/// `POST /withdrawals` body; idempotent per `request_uid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalWithdrawalSetup {
    /// Client-chosen idempotency key.
    pub request_uid: String,
    /// Fixed amount the wallet cannot change.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount: Option<Amount>,
    /// Amount the wallet may change.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suggested_amount: Option<Amount>,
    /// The provider's transaction id, if the payment already happened.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider_transaction_id: Option<String>,
    /// Fees the terminal charges on top.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub terminal_fees: Option<Amount>,
    /// Unique user id for quotas.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_uuid: Option<String>,
    /// Quota lock id obtained from `/quotas/$UUID/lock`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lock: Option<String>,
}

/// `POST /withdrawals` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalWithdrawalSetupResponse {
    /// The withdrawal operation id (WOPID).
    pub withdrawal_id: String,
    /// cardcash extension: the `taler://withdraw/…` URI for the QR code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub taler_withdraw_uri: Option<String>,
}

/// `POST /withdrawals/$WOPID/check` body: the card payment happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalWithdrawalConfirmationRequest {
    pub provider_transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub terminal_fees: Option<Amount>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lock: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        parsed
    }

    #[test]
    fn config() {
        let c: TerminalConfig = round_trip(
            r#"{"name":"taler-terminal","version":"0:0:0","provider_name":"Wallee",
            "currency":"CHF","withdrawal_fees":"CHF:0","wire_type":"wallee-transaction"}"#,
        );
        assert_eq!(c.name, API_NAME);
        assert!(c.withdrawal_fees.is_zero());
        // withdrawal_fees is required by the spec revision we implement
        let old = r#"{"name":"taler-terminal","version":"0:0:0","provider_name":"W","currency":"CHF","wire_type":"x"}"#;
        assert!(serde_json::from_str::<TerminalConfig>(old).is_err());
    }

    #[test]
    fn setup_minimal_and_full() {
        let s: TerminalWithdrawalSetup = round_trip(r#"{"request_uid":"r-1","amount":"CHF:20"}"#);
        assert_eq!(s.suggested_amount, None);
        let full: TerminalWithdrawalSetup = round_trip(
            r#"{"request_uid":"r-2","suggested_amount":"CHF:50","provider_transaction_id":"TX9",
            "terminal_fees":"CHF:0.3","user_uuid":"u","lock":"l"}"#,
        );
        assert_eq!(full.terminal_fees.unwrap().to_string(), "CHF:0.3");
        let tolerant: TerminalWithdrawalSetup =
            serde_json::from_str(r#"{"request_uid":"r-3","future":1}"#).unwrap();
        assert_eq!(tolerant.request_uid, "r-3");
        assert!(serde_json::from_str::<TerminalWithdrawalSetup>(r#"{"amount":"CHF:1"}"#).is_err());
    }

    #[test]
    fn setup_response_and_confirmation() {
        let plain: TerminalWithdrawalSetupResponse = round_trip(
            r#"{"withdrawal_id":"5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G"}"#,
        );
        assert_eq!(plain.taler_withdraw_uri, None);
        let _: TerminalWithdrawalSetupResponse = round_trip(
            r#"{"withdrawal_id":"W","taler_withdraw_uri":"taler://withdraw/c2ec.example/taler-integration/W"}"#,
        );
        let c: TerminalWithdrawalConfirmationRequest =
            round_trip(r#"{"provider_transaction_id":"TX-77","terminal_fees":"CHF:0.5"}"#);
        assert_eq!(c.provider_transaction_id, "TX-77");
    }
}
