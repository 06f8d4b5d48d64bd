//! Types shared by every Taler API: the error body and the currency rendering hints of `/config`.
//! Spec: docs.taler.net "Common Taler HTTP API conventions" (ErrorDetail, CurrencySpecification).

use std::collections::BTreeMap;

use cardcash_util::{Currency, ErrorCode, LibtoolVersion};
use serde::{Deserialize, Serialize};

/// The body of every Taler error response.
///
/// `code` stays a number so that codes newer than our table still parse on the client side;
/// [`ErrorDetail::error_code`] maps it to the official enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

impl ErrorDetail {
    pub fn new(code: ErrorCode, hint: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            hint: Some(hint.into()),
            detail: None,
        }
    }

    /// The official code, if it is one we know.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }
}

/// How wallets and bank UIs should render amounts of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencySpecification {
    /// Human-readable name, e.g. "Swiss Franc".
    pub name: String,
    /// The currency code. The exchange sends it; libeufin 0.11 does not, hence optional.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub currency: Option<Currency>,
    pub num_fractional_input_digits: u32,
    pub num_fractional_normal_digits: u32,
    pub num_fractional_trailing_zero_digits: u32,
    /// Unit names by power of ten, e.g. `{"0": "CHF"}`.
    pub alt_unit_names: BTreeMap<String, String>,
}

impl CurrencySpecification {
    /// The usual two-decimal rendering with the currency code as the unit name.
    pub fn two_decimals(currency: &Currency, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            currency: Some(*currency),
            num_fractional_input_digits: 2,
            num_fractional_normal_digits: 2,
            num_fractional_trailing_zero_digits: 2,
            alt_unit_names: BTreeMap::from([("0".to_owned(), currency.as_str().to_owned())]),
        }
    }
}

/// The fields every `/config` response starts with; enough to check which API and version a
/// peer speaks before parsing the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    pub name: String,
    pub version: LibtoolVersion,
}

impl VersionResponse {
    /// Whether the peer is the API `name` at a version compatible with `ours`.
    pub fn is_compatible(&self, name: &str, ours: &LibtoolVersion) -> bool {
        self.name == name && self.version.is_compatible(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_round_trip() {
        let text = r#"{"code":5113,"hint":"reserve_pub already used","detail":"x","path":"/y"}"#;
        let e: ErrorDetail = serde_json::from_str(text).unwrap();
        assert_eq!(e.code, 5113);
        assert_eq!(e.hint.as_deref(), Some("reserve_pub already used"));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":5113,"hint":"reserve_pub already used","detail":"x"}"#
        );
        let bare: ErrorDetail = serde_json::from_str(r#"{"code":99999}"#).unwrap();
        assert_eq!(bare.error_code(), None);
        let known = ErrorDetail::new(ErrorCode::GenericJsonInvalid, "bad");
        assert_eq!(
            serde_json::to_value(&known).unwrap(),
            serde_json::json!({"code": 22, "hint": "bad"})
        );
    }

    #[test]
    fn currency_specification_from_libeufin_and_exchange() {
        // libeufin 0.11 omits "currency"
        let libeufin = r#"{"name":"Kudos (Taler Demonstrator)","num_fractional_input_digits":2,
            "num_fractional_normal_digits":2,"num_fractional_trailing_zero_digits":2,
            "alt_unit_names":{"0":"ク"}}"#;
        let spec: CurrencySpecification = serde_json::from_str(libeufin).unwrap();
        assert_eq!(spec.currency, None);
        assert_eq!(spec.alt_unit_names["0"], "ク");
        let exchange = r#"{"name":"Swiss Franc","currency":"CHF","num_fractional_input_digits":2,
            "num_fractional_normal_digits":2,"num_fractional_trailing_zero_digits":2,
            "alt_unit_names":{"0":"Fr.","-2":"Rp."}}"#;
        let spec: CurrencySpecification = serde_json::from_str(exchange).unwrap();
        assert_eq!(spec.currency.as_ref().map(Currency::as_str), Some("CHF"));
        let back: serde_json::Value = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(exchange).unwrap()
        );
    }

    #[test]
    fn version_response_checks_name_and_version() {
        let v: VersionResponse = serde_json::from_str(
            r#"{"name":"taler-wire-gateway","version":"0:2:0","currency":"KUDOS"}"#,
        )
        .unwrap();
        let ours: LibtoolVersion = "0:0:0".parse().unwrap();
        assert!(v.is_compatible("taler-wire-gateway", &ours));
        assert!(!v.is_compatible("taler-bank-integration", &ours));
        let newer: LibtoolVersion = "3:0:0".parse().unwrap();
        assert!(!v.is_compatible("taler-wire-gateway", &newer));
    }
}
