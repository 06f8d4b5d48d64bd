//! Bank Integration API: what a Taler wallet uses to register its reserve with a withdrawal
//! operation it learnt from a `taler://withdraw` URI (served by the bank and by c2ec).
//! Spec: docs.taler.net core/api-bank-integration (v4/v5 fields marked), libeufin 0.11
//! `bank/.../TalerMessage.kt`. Old wallets (wallet-core 2022) still read the legacy booleans
//! `aborted`, `selection_done`, `transfer_done` and `wire_types`, so they stay mandatory here.

use cardcash_util::{Amount, Currency, EddsaPublicKey, LibtoolVersion, PaytoUri};
use serde::{Deserialize, Serialize};

use crate::common::CurrencySpecification;

/// `name` of the Bank Integration API's `/config`.
pub const API_NAME: &str = "taler-bank-integration";

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankIntegrationConfig {
    pub name: String,
    pub version: LibtoolVersion,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub implementation: Option<String>,
    pub currency: Currency,
    pub currency_specification: CurrencySpecification,
}

/// Status of a withdrawal operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WithdrawalStatus {
    /// Waiting for the wallet to select exchange and reserve.
    Pending,
    /// The wallet selected; waiting for the payment to be confirmed.
    Selected,
    Aborted,
    /// Money is on its way to the exchange (final).
    Confirmed,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Selected => "selected",
            Self::Aborted => "aborted",
            Self::Confirmed => "confirmed",
        }
    }

    /// Parses the `old_state` query parameter.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "selected" => Some(Self::Selected),
            "aborted" => Some(Self::Aborted),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// `GET /withdrawal-operation/$WOPID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankWithdrawalOperationStatus {
    pub status: WithdrawalStatus,
    /// v2; must be present when `amount` is absent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub currency: Option<Currency>,
    /// Fixed amount (optional since v4, but wallet-core 2022 requires it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount: Option<Amount>,
    /// v4: a suggestion the wallet may change.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suggested_amount: Option<Amount>,
    /// v4
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_amount: Option<Amount>,
    /// v4
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_amount: Option<Amount>,
    /// v4: non-Taler fees the customer pays to the bank / card processor.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_fees: Option<Amount>,
    /// Customer's account (for c2ec: the card transaction's payto).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sender_wire: Option<PaytoUri>,
    /// Exchange base URL the bank suggests.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suggested_exchange: Option<String>,
    /// v4: the only exchange the wallet may use.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub required_exchange: Option<String>,
    /// Page where the customer confirms (absent for c2ec: the terminal confirms).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub confirm_transfer_url: Option<String>,
    /// Payto target types the bank can wire to (e.g. `iban`, `x-taler-bank`).
    pub wire_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selected_reserve_pub: Option<EddsaPublicKey>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selected_exchange_account: Option<PaytoUri>,
    /// v5: the wallet must not send an amount.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub no_amount_to_wallet: Option<bool>,
    /// Legacy: `status == aborted`.
    pub aborted: bool,
    /// Legacy: `status` is `selected` or `confirmed`.
    pub selection_done: bool,
    /// Legacy: `status == confirmed`.
    pub transfer_done: bool,
}

/// The legacy booleans of a status, derived so they can never contradict it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyFlags {
    pub aborted: bool,
    pub selection_done: bool,
    pub transfer_done: bool,
}

impl From<WithdrawalStatus> for LegacyFlags {
    fn from(status: WithdrawalStatus) -> Self {
        Self {
            aborted: status == WithdrawalStatus::Aborted,
            selection_done: matches!(
                status,
                WithdrawalStatus::Selected | WithdrawalStatus::Confirmed
            ),
            transfer_done: status == WithdrawalStatus::Confirmed,
        }
    }
}

impl BankWithdrawalOperationStatus {
    /// A status with the legacy booleans derived from `status` and every optional field empty.
    pub fn new(status: WithdrawalStatus, wire_types: Vec<String>) -> Self {
        let flags = LegacyFlags::from(status);
        Self {
            status,
            currency: None,
            amount: None,
            suggested_amount: None,
            min_amount: None,
            max_amount: None,
            card_fees: None,
            sender_wire: None,
            suggested_exchange: None,
            required_exchange: None,
            confirm_transfer_url: None,
            wire_types,
            selected_reserve_pub: None,
            selected_exchange_account: None,
            no_amount_to_wallet: None,
            aborted: flags.aborted,
            selection_done: flags.selection_done,
            transfer_done: flags.transfer_done,
        }
    }
}

/// `POST /withdrawal-operation/$WOPID` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankWithdrawalOperationPostRequest {
    pub reserve_pub: EddsaPublicKey,
    /// Payto URI of the exchange account to credit.
    pub selected_exchange: PaytoUri,
    /// v4: the amount the wallet chose, if the operation has none fixed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount: Option<Amount>,
}

/// `POST /withdrawal-operation/$WOPID` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankWithdrawalOperationPostResponse {
    pub status: WithdrawalStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub confirm_transfer_url: Option<String>,
    /// Legacy: `status == confirmed`.
    pub transfer_done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        parsed
    }

    const RESERVE_PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";

    #[test]
    fn config_libeufin() {
        let c: BankIntegrationConfig = round_trip(
            r#"{"name":"taler-bank-integration","version":"2:0:2","currency":"KUDOS",
            "currency_specification":{"name":"Kudos","num_fractional_input_digits":2,
            "num_fractional_normal_digits":2,"num_fractional_trailing_zero_digits":2,
            "alt_unit_names":{"0":"ク"}}}"#,
        );
        assert_eq!(c.name, API_NAME);
        assert_eq!(c.version.to_string(), "2:0:2");
    }

    #[test]
    fn status_libeufin_pending_with_legacy_booleans() {
        // libeufin 0.11 answer for a fresh operation (plus an unknown field we must ignore).
        let text = r#"{"status":"pending","amount":"KUDOS:5","wire_types":["x-taler-bank"],
            "suggested_exchange":"https://exchange.demo.taler.net/",
            "confirm_transfer_url":"https://bank.demo.taler.net/webui/#/operation/0f9b",
            "aborted":false,"selection_done":false,"transfer_done":false,"username":"alice"}"#;
        let s: BankWithdrawalOperationStatus = serde_json::from_str(text).unwrap();
        assert_eq!(s.status, WithdrawalStatus::Pending);
        assert_eq!(
            s.amount.as_ref().map(ToString::to_string).as_deref(),
            Some("KUDOS:5")
        );
        assert!(!s.selection_done && !s.transfer_done && !s.aborted);
        let back = serde_json::to_value(&s).unwrap();
        assert!(back.get("username").is_none());
        assert_eq!(back["wire_types"], json!(["x-taler-bank"]));
        assert!(back.get("sender_wire").is_none(), "None fields are omitted");
    }

    #[test]
    fn status_c2ec_selected_round_trip() {
        let text = format!(
            r#"{{"status":"selected","currency":"CHF","suggested_amount":"CHF:20",
            "min_amount":"CHF:1","max_amount":"CHF:200","card_fees":"CHF:0.5",
            "sender_wire":"payto://card-transaction/cardproc.example/TX-123",
            "required_exchange":"https://exchange.example.com/","wire_types":["card-transaction"],
            "selected_reserve_pub":"{RESERVE_PUB}",
            "selected_exchange_account":"payto://iban/CH9300762011623852957?receiver-name=Exchange",
            "aborted":false,"selection_done":true,"transfer_done":false}}"#
        );
        let s: BankWithdrawalOperationStatus = round_trip(&text);
        assert_eq!(s.status, WithdrawalStatus::Selected);
        assert_eq!(s.selected_reserve_pub.unwrap().to_string(), RESERVE_PUB);
        assert_eq!(s.card_fees.unwrap().to_string(), "CHF:0.5");
    }

    #[test]
    fn legacy_booleans_required() {
        // Old wallets need them, so a peer that leaves them out is not speaking our dialect.
        let text = r#"{"status":"pending","wire_types":[]}"#;
        assert!(serde_json::from_str::<BankWithdrawalOperationStatus>(text).is_err());
    }

    #[test]
    fn legacy_flags_follow_status() {
        let cases = [
            (WithdrawalStatus::Pending, (false, false, false)),
            (WithdrawalStatus::Selected, (false, true, false)),
            (WithdrawalStatus::Aborted, (true, false, false)),
            (WithdrawalStatus::Confirmed, (false, true, true)),
        ];
        for (status, (aborted, selection_done, transfer_done)) in cases {
            let s = BankWithdrawalOperationStatus::new(status, vec!["iban".into()]);
            assert_eq!(
                (s.aborted, s.selection_done, s.transfer_done),
                (aborted, selection_done, transfer_done),
                "{status:?}"
            );
            assert_eq!(WithdrawalStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(WithdrawalStatus::parse("PENDING"), None);
    }

    #[test]
    fn post_request_and_response() {
        // wallet-core's registration body
        let text = format!(
            r#"{{"reserve_pub":"{RESERVE_PUB}",
            "selected_exchange":"payto://x-taler-bank/bank.demo.taler.net/exchange"}}"#
        );
        let r: BankWithdrawalOperationPostRequest = round_trip(&text);
        assert_eq!(r.amount, None);
        assert_eq!(r.selected_exchange.target_type(), "x-taler-bank");
        let with_amount = format!(
            r#"{{"reserve_pub":"{RESERVE_PUB}","selected_exchange":"payto://iban/CH9300762011623852957","amount":"CHF:10"}}"#
        );
        let _: BankWithdrawalOperationPostRequest = round_trip(&with_amount);
        // libeufin's IBAN form with a BIC and a receiver name containing a space
        let with_bic = format!(
            r#"{{"reserve_pub":"{RESERVE_PUB}","selected_exchange":"payto://iban/SANDBOXX/DE89370400440532013000?receiver-name=Taler%20Exchange"}}"#
        );
        let r: BankWithdrawalOperationPostRequest = round_trip(&with_bic);
        assert_eq!(r.selected_exchange.receiver_name(), Some("Taler Exchange"));
        let bad = r#"{"reserve_pub":"not-base32!","selected_exchange":"payto://iban/CH9300762011623852957"}"#;
        assert!(serde_json::from_str::<BankWithdrawalOperationPostRequest>(bad).is_err());

        let resp: BankWithdrawalOperationPostResponse =
            round_trip(r#"{"status":"selected","transfer_done":false}"#);
        assert_eq!(resp.status, WithdrawalStatus::Selected);
        let _: BankWithdrawalOperationPostResponse = round_trip(
            r#"{"status":"confirmed","confirm_transfer_url":"https://bank/confirm","transfer_done":true}"#,
        );
    }
}
