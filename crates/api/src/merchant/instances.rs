//! Instances, their authentication, login tokens and bank accounts (`/management/instances`, `/private`, `/private/token`, `/private/accounts`).
//!
//! Field names follow docs.taler.net core/merchant (post-management-instances, post-private-token,
//! post-private-accounts) and, where the 2022 protocol and the merchant guide (seed 003) used
//! other shapes, accept those too:
//! - the guide sends `accounts: [{payto_uri}]` at creation; the 2022 protocol `payto_uris`;
//!   today accounts are added with `POST /private/accounts`. All three are accepted.
//! - the guide writes durations as text (`"2 days"`, `"5 hours"`); the protocol as
//!   `{"d_us": …}`. [`FlexibleDuration`] reads both and writes the protocol form.
//! - `default_max_wire_fee`, `default_max_deposit_fee` and `default_wire_fee_amortization` are
//!   2022 fields (STEFAN fees replaced them); they are accepted, stored and shown.

use cardcash_util::{Amount, EddsaPublicKey, HashCode, RelativeTime, Timestamp, WireSalt};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A relative time as the protocol writes it (`{"d_us": n | "forever"}`) or as the merchant
/// guide does (`"2 days"`, `"5 hours"`, `"forever"`). Serialises in the protocol's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexibleDuration(pub RelativeTime);

impl Serialize for FlexibleDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Described in the protocol's form (what it serialises as); the guide's text is accepted too.
impl schemars::JsonSchema for FlexibleDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RelativeTime".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        RelativeTime::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for FlexibleDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(text) => RelativeTime::parse_duration(&text)
                .map(Self)
                .map_err(serde::de::Error::custom),
            other => RelativeTime::deserialize(other)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl From<RelativeTime> for FlexibleDuration {
    fn from(d: RelativeTime) -> Self {
        Self(d)
    }
}

/// `InstanceAuthConfigurationMessage`: how the instance's private API is protected.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceAuthConfig {
    /// `"external"` (a reverse proxy authenticates) or `"token"`.
    pub method: String,
    /// Deprecated (and the guide's) form of the password: `secret-token:<password>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The password (method `token`), without prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for InstanceAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceAuthConfig")
            .field("method", &self.method)
            .field("token", &self.token.as_ref().map(|_| "…redacted…"))
            .field("password", &self.password.as_ref().map(|_| "…redacted…"))
            .finish()
    }
}

/// One account of the guide's `accounts` list at instance creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceAccount {
    pub payto_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_credentials: Option<Value>,
}

/// `POST /management/instances` (`InstanceConfigurationMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceConfigurationMessage {
    pub id: String,
    pub name: String,
    pub auth: InstanceAuthConfig,
    /// The guide's accounts (current protocol: `POST /private/accounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<InstanceAccount>,
    /// The 2022 protocol's accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payto_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// `Location` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Value>,
    /// `Location` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_stefan: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_wire_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wire_fee_amortization: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_deposit_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wire_transfer_delay: Option<FlexibleDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pay_delay: Option<FlexibleDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_refund_delay: Option<FlexibleDuration>,
}

/// `PATCH /management/instances/$I` and `PATCH /private` (`InstanceReconfigurationMessage`).
/// Every field is optional here: what is left out stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceReconfigurationMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_stefan: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_wire_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wire_fee_amortization: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_deposit_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_wire_transfer_delay: Option<FlexibleDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pay_delay: Option<FlexibleDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_refund_delay: Option<FlexibleDuration>,
}

/// The `auth` block of an instance as shown (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceAuthInfo {
    pub method: String,
}

/// An account as `GET /private` shows it (2022 shape, kept for old clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MerchantAccount {
    pub payto_uri: String,
    pub h_wire: HashCode,
    pub salt: WireSalt,
    pub active: bool,
}

/// `GET /management/instances/$I` and `GET /private` (`QueryInstancesResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueryInstancesResponse {
    pub name: String,
    pub merchant_pub: EddsaPublicKey,
    pub auth: InstanceAuthInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    pub address: Value,
    pub jurisdiction: Value,
    pub use_stefan: bool,
    pub default_wire_transfer_delay: RelativeTime,
    pub default_pay_delay: RelativeTime,
    pub default_refund_delay: RelativeTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_wire_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_deposit_fee: Option<Amount>,
    pub default_wire_fee_amortization: u32,
    /// The active accounts (2022 shape; today's clients use `GET /private/accounts`).
    #[serde(default)]
    pub accounts: Vec<MerchantAccount>,
}

/// One entry of `GET /management/instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceEntry {
    pub id: String,
    pub name: String,
    pub merchant_pub: EddsaPublicKey,
    /// The wire methods of its active accounts (`iban`, `x-taler-bank`, …).
    pub payment_targets: Vec<String>,
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

/// `GET /management/instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstancesResponse {
    pub instances: Vec<InstanceEntry>,
}

/// `POST /private/token` (`LoginTokenRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginTokenRequest {
    /// `readonly`, `write`, `all`, `order-simple`, `order-pos`, `order-mgmt`, `order-full`,
    /// optionally suffixed `:refreshable`.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<RelativeTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Deprecated since v19 (the `:refreshable` suffix replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshable: Option<bool>,
}

/// `POST /private/token` answer (`LoginTokenSuccessResponse`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginTokenSuccessResponse {
    /// `secret-token:…`, for `Authorization: Bearer`.
    pub access_token: String,
    /// Deprecated since v19: the same as `access_token`.
    pub token: String,
    pub scope: String,
    pub expiration: Timestamp,
    pub refreshable: bool,
}

impl std::fmt::Debug for LoginTokenSuccessResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTokenSuccessResponse")
            .field("scope", &self.scope)
            .field("expiration", &self.expiration)
            .field("refreshable", &self.refreshable)
            .finish_non_exhaustive()
    }
}

/// One login token of `GET /private/tokens` (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    pub serial: i64,
    pub creation_time: Timestamp,
    pub expiration: Timestamp,
    pub scope: String,
    pub refreshable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /private/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfos {
    pub tokens: Vec<TokenInfo>,
}

/// `POST /private/accounts` (`AccountAddDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountAddDetails {
    pub payto_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_url: Option<String>,
    /// `{"type": "none"}` or `{"type": "basic", "username", "password"}`; kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_credentials: Option<Value>,
}

/// `POST /private/accounts` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountAddResponse {
    pub h_wire: HashCode,
    pub salt: WireSalt,
}

/// One account of `GET /private/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BankAccountEntry {
    pub payto_uri: String,
    pub h_wire: HashCode,
    pub active: bool,
}

/// `GET /private/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountsSummaryResponse {
    pub accounts: Vec<BankAccountEntry>,
}

/// `GET /private/accounts/$H_WIRE` (`BankAccountDetail`; never the facade credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BankAccountDetail {
    pub payto_uri: String,
    pub h_wire: HashCode,
    pub salt: WireSalt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_url: Option<String>,
    pub active: bool,
}

/// `PATCH /private/accounts/$H_WIRE` (`AccountPatchDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccountPatchDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_facade_credentials: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_pretty_pianos_request_parses() {
        let m: InstanceConfigurationMessage = serde_json::from_str(
            r#"{
              "accounts": [{"payto_uri":"payto://iban/CH9300762011623852957"}],
              "id": "default",
              "name": "Pretty Pianos",
              "auth": {"method": "external", "token": "secret-token:eighty-eight-keys"},
              "default_max_wire_fee": "KUDOS:5.0",
              "default_wire_fee_amortization": 1,
              "default_max_deposit_fee": "KUDOS:10.0",
              "default_wire_transfer_delay": "2 days",
              "default_pay_delay": "5 hours"
            }"#,
        )
        .unwrap();
        assert_eq!(m.accounts.len(), 1);
        assert_eq!(
            m.default_wire_transfer_delay.unwrap().0,
            RelativeTime::from_secs(2 * 24 * 3600)
        );
        assert_eq!(
            m.default_pay_delay.unwrap().0,
            RelativeTime::from_secs(5 * 3600)
        );
    }

    #[test]
    fn durations_are_read_in_both_forms_and_written_in_the_protocols() {
        let d: FlexibleDuration = serde_json::from_str(r#"{"d_us": 3000000}"#).unwrap();
        assert_eq!(d.0, RelativeTime::from_secs(3));
        let d: FlexibleDuration = serde_json::from_str(r#""forever""#).unwrap();
        assert!(d.0.is_forever());
        assert_eq!(
            serde_json::to_string(&FlexibleDuration(RelativeTime::from_secs(1))).unwrap(),
            r#"{"d_us":1000000}"#
        );
        assert!(serde_json::from_str::<FlexibleDuration>(r#""two days""#).is_err());
    }
}
