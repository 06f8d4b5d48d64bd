//! `GET /config` and `GET /keys` of exchange protocol v23: what an exchange announces about
//! itself — currency, denominations grouped by cipher and fees, online signing keys, bank
//! accounts with their restrictions, wire and global fees, auditors, revocations, KYC limits.
//!
//! Source of every field: the C exchange at protocol `23:0:6` (`taler-exchange-httpd_config.c`,
//! `taler-exchange-httpd_keys.c` `create_krd`, `add_wire_account`, `add_wire_fee`,
//! `finish_keys_response`; the C client's parser `src/lib/exchange_api_handle.c` for what is
//! optional on input). Fields the server always writes are required here unless the C client
//! tolerates their absence, in which case they default.
//!
//! Differences from our notes (taler-protocol.md §6, "v23 `/keys`"):
//! - `/config` also carries `wallet_balance_limit_without_kyc` (optional list of amounts);
//!   `implementation` is always sent (`urn:net:taler:specs:taler-exchange:c-reference`), and
//!   `supported_kyc_requirements` is always `[]`.
//! - `/keys` also carries `extensions_sig` (next to `extensions`) and `base_url`; `wads` is
//!   always `[]`; `stefan_lin` is a JSON real (the one float of the protocol: a fee-estimation
//!   factor, never money). `hard_limits` entries are `{rule_name?, operation_type, timeframe,
//!   threshold}`, `zero_limits` entries `{rule_name?, operation_type}`.
//! - A denomination group has `age_mask` only when its cipher is `…+age_restricted`; a
//!   denomination inside it has `lost: true` only when its private key is gone (otherwise the
//!   field is absent). The per-denomination key field is `rsa_pub` or `cs_pub` by the group's
//!   cipher.
//! - Account `priority` is always written (an `i64`, 0 by default); `conversion_url` and
//!   `bank_label` only when set. Restrictions are `{"type":"deny"}` or `{"type":"regex",
//!   payto_regex, human_hint, human_hint_i18n?}`. The v23 `master_sig` of an account covers
//!   the payto URI, the conversion URL and both restriction lists (purpose 1030, 232 bytes), so
//!   `conversion_url` is kept as the exact text that was signed.
//! - `wire_fees` lists, per wire method (payto target type), only methods that have fees.
//!
//! Caching: the C exchange answers `/keys` with `Expires` and `ETag` headers and honours
//! `If-None-Match`; `?last_issue_date=<seconds>` asks for the denominations issued after that
//! time only ("cherry picking"). `/config` carries `Cache-Control: public,max-age=21600`.

use std::collections::BTreeMap;

use cardcash_util::{
    Amount, Base32Bytes, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode,
    LibtoolVersion, PaytoUri, RelativeTime, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::denom::CsPoint;
use crate::common::CurrencySpecification;

/// The protocol version this module describes (`EXCHANGE_PROTOCOL_VERSION` of the C exchange
/// it was checked against).
pub const EXCHANGE_PROTOCOL_VERSION: &str = "23:0:6";

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeConfigResponse {
    /// Always `"taler-exchange"`.
    pub name: String,
    /// Libtool-style protocol version (`"23:0:6"`).
    pub version: LibtoolVersion,
    /// Which implementation answers (an URN); optional on input.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub implementation: Option<String>,
    /// The currency of every amount this exchange handles.
    pub currency: Currency,
    /// How wallets should render amounts.
    pub currency_specification: CurrencySpecification,
    /// Deprecated and always empty in v23.
    #[serde(default)]
    pub supported_kyc_requirements: Vec<String>,
    /// Where to spend the exchange's coins, if the operator set it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shopping_url: Option<String>,
    /// Wallet balances above which KYC is needed (none without KYC rules).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wallet_balance_limit_without_kyc: Option<Vec<Amount>>,
}

/// `GET /keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeKeysResponse {
    /// Libtool-style protocol version (`"23:0:6"`).
    pub version: LibtoolVersion,
    /// The exchange's base URL as configured.
    pub base_url: BaseUrl,
    /// The currency of every amount below.
    pub currency: Currency,
    /// How wallets should render amounts.
    pub currency_specification: CurrencySpecification,
    /// Operations that are forbidden above a threshold, whatever the KYC.
    #[serde(default)]
    pub hard_limits: Vec<AccountLimit>,
    /// Operations that need KYC from the first cent.
    #[serde(default)]
    pub zero_limits: Vec<ZeroLimitedOperation>,
    /// STEFAN fee curve, absolute part.
    pub stefan_abs: Amount,
    /// STEFAN fee curve, logarithmic part.
    pub stefan_log: Amount,
    /// STEFAN fee curve, linear factor: a JSON real (never money; wallets only estimate fees
    /// with it).
    pub stefan_lin: f64,
    /// `"fiat"`, `"regional"`, `"crypto"`, ….
    pub asset_type: String,
    /// Always `false` in v23 (rewards are gone).
    #[serde(default)]
    pub rewards_allowed: bool,
    /// The offline master key that signs denominations, signing keys, accounts and fees.
    pub master_public_key: EddsaPublicKey,
    /// How long an unused reserve stays open before its money goes back.
    pub reserve_closing_delay: RelativeTime,
    /// Online signing keys (master-signed, purpose 1024).
    pub signkeys: Vec<SignKey>,
    /// Revoked denominations: their coins may be recouped.
    #[serde(default)]
    pub recoup: Vec<Recoup>,
    /// Wire gateways of other exchanges (wallet-to-wallet across exchanges); always `[]` in
    /// v23.
    pub wads: Vec<serde_json::Value>,
    /// The exchange's bank accounts (master-signed, purpose 1030).
    pub accounts: Vec<WireAccount>,
    /// Wire and closing fees by wire method (payto target type, `iban`, `x-taler-bank`, …).
    pub wire_fees: BTreeMap<String, Vec<WireFee>>,
    /// Denominations, grouped by cipher, value and fees.
    pub denominations: Vec<DenominationGroup>,
    /// Auditors and the denominations each vouches for.
    pub auditors: Vec<Auditor>,
    /// Fees that do not depend on a denomination (master-signed, purpose 1022).
    pub global_fees: Vec<GlobalFee>,
    /// The time of the latest change listed here (the `last_issue_date` of the next
    /// cherry-picking request).
    pub list_issue_date: Timestamp,
    /// Wallet balances above which KYC is needed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wallet_balance_limit_without_kyc: Option<Vec<Amount>>,
    /// Where to spend the exchange's coins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shopping_url: Option<String>,
    /// Amounts below this are not worth a transaction (absent when zero).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tiny_amount: Option<Amount>,
    /// Configuration of the enabled extensions (age restriction, …); absent without any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
    /// Master signature over `extensions`, when they are signed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extensions_sig: Option<EddsaSignature>,
    /// The signing key that made `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
    /// Online signature (purpose 1035, key set) over `list_issue_date` and the hash of all
    /// denominations' master signatures.
    pub exchange_sig: EddsaSignature,
}

/// What a limit applies to (`operation_type` of hard and zero limits; the C exchange's KYC
/// trigger names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KycOperation {
    /// No operation.
    None,
    /// Withdrawing from a reserve.
    Withdraw,
    /// Depositing coins (merchant side).
    Deposit,
    /// Merging a purse into a reserve (peer-to-peer).
    Merge,
    /// A wallet's balance.
    Balance,
    /// Closing a reserve.
    Close,
    /// Aggregated transfers to a merchant.
    Aggregate,
    /// Any incoming wire transfer.
    Transaction,
    /// Refunds.
    Refund,
}

/// One entry of `hard_limits`: at most `threshold` per `timeframe` for `operation_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimit {
    /// The rule's name, if the operator exposed it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule_name: Option<String>,
    /// The limited operation.
    pub operation_type: KycOperation,
    /// The window the threshold applies to.
    pub timeframe: RelativeTime,
    /// The most that may pass within the window.
    pub threshold: Amount,
}

/// One entry of `zero_limits`: an operation that needs KYC from the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroLimitedOperation {
    /// The rule's name, if the operator exposed it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule_name: Option<String>,
    /// The operation.
    pub operation_type: KycOperation,
}

/// An online signing key of the exchange (also the v12 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignKey {
    /// The public key.
    pub key: EddsaPublicKey,
    /// When the exchange starts signing with it.
    pub stamp_start: Timestamp,
    /// When the exchange stops signing with it.
    pub stamp_expire: Timestamp,
    /// Until when its signatures must be honoured (legal retention).
    pub stamp_end: Timestamp,
    /// Master signature (purpose 1024) over the key and its times.
    pub master_sig: EddsaSignature,
}

/// A revoked denomination (also the v12 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recoup {
    /// Hash of the revoked denomination's public key.
    pub h_denom_pub: HashCode,
}

/// An auditor and the denominations it vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auditor {
    /// The auditor's human-readable name (v23; v12 had none).
    pub auditor_name: String,
    /// The auditor's public key.
    pub auditor_pub: EddsaPublicKey,
    /// The auditor's base URL.
    pub auditor_url: BaseUrl,
    /// The denominations it audits, each with its signature.
    pub denomination_keys: Vec<AuditorDenominationSignature>,
}

/// An auditor's signature over one denomination (purpose 1064).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditorDenominationSignature {
    /// Hash of the denomination's public key.
    pub denom_pub_h: HashCode,
    /// The auditor's signature.
    pub auditor_sig: EddsaSignature,
}

/// Fees that do not depend on a denomination, valid for a period (also the v12 shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalFee {
    /// First day of validity.
    pub start_date: Timestamp,
    /// End of validity (exclusive).
    pub end_date: Timestamp,
    /// Fee for a reserve history request.
    pub history_fee: Amount,
    /// Fee for opening an account (peer-to-peer reserves).
    pub account_fee: Amount,
    /// Fee for a purse without an account.
    pub purse_fee: Amount,
    /// How long histories are kept.
    pub history_expiration: RelativeTime,
    /// How long an unmerged purse lives.
    pub purse_timeout: RelativeTime,
    /// Purses an account may have open without paying `purse_fee`.
    pub purse_account_limit: u32,
    /// Master signature (purpose 1022).
    pub master_sig: EddsaSignature,
}

/// One bank account of the exchange (v23: with restrictions and optional conversion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAccount {
    /// The account, as a full payto URI (`receiver-name` included).
    pub payto_uri: PaytoUri,
    /// Base URL of a currency conversion service in front of the account, exactly as signed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversion_url: Option<String>,
    /// Label for the bank in wallets' account choice.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bank_label: Option<String>,
    /// Ordering hint for wallets: higher first.
    #[serde(default)]
    pub priority: i64,
    /// Restrictions on accounts the exchange wires to (closing reserves, paying merchants).
    pub debit_restrictions: Vec<AccountRestriction>,
    /// Restrictions on accounts the exchange accepts money from.
    pub credit_restrictions: Vec<AccountRestriction>,
    /// Master signature (purpose 1030, v23 layout over payto, conversion URL and
    /// restrictions).
    pub master_sig: EddsaSignature,
}

/// A restriction on the accounts an exchange account deals with, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AccountRestriction {
    /// No account is accepted.
    Deny,
    /// Only accounts whose payto URI matches the POSIX extended regular expression.
    Regex {
        /// The expression (POSIX egrep syntax).
        payto_regex: String,
        /// What the rule means, for people.
        human_hint: String,
        /// The hint translated, by language tag.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        human_hint_i18n: Option<BTreeMap<String, String>>,
    },
}

/// Wire and closing fees of one wire method for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFee {
    /// Fee per aggregated transfer to a merchant.
    pub wire_fee: Amount,
    /// Fee for closing a reserve (sending the rest back).
    pub closing_fee: Amount,
    /// First day of validity.
    pub start_date: Timestamp,
    /// End of validity (exclusive).
    pub end_date: Timestamp,
    /// Master signature (purpose 1028).
    pub sig: EddsaSignature,
}

/// A group of denominations sharing cipher, value and fees (`denominations` of `/keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationGroup {
    /// The coins' value.
    pub value: Amount,
    /// Fee charged when withdrawing one coin.
    pub fee_withdraw: Amount,
    /// Fee charged when depositing one coin.
    pub fee_deposit: Amount,
    /// Fee charged when refreshing one coin.
    pub fee_refresh: Amount,
    /// Fee charged when refunding a deposit of one coin.
    pub fee_refund: Amount,
    /// The cipher (`"cipher"`) with its keys (`"denoms"`).
    #[serde(flatten)]
    pub keys: DenominationGroupKeys,
}

/// The cipher of a group and its denominations, tagged by `"cipher"`. cardcash issues only
/// `Rsa` and `Cs`; the age-restricted groups are parsed so that a peer's `/keys` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum DenominationGroupKeys {
    /// RSA denominations without age restriction.
    #[serde(rename = "RSA")]
    Rsa {
        /// The denominations.
        denoms: Vec<RsaDenomination>,
    },
    /// CS denominations without age restriction.
    #[serde(rename = "CS")]
    Cs {
        /// The denominations.
        denoms: Vec<CsDenomination>,
    },
    /// Age-restricted RSA denominations (never issued by cardcash).
    #[serde(rename = "RSA+age_restricted")]
    RsaAgeRestricted {
        /// The age groups.
        age_mask: u32,
        /// The denominations.
        denoms: Vec<RsaDenomination>,
    },
    /// Age-restricted CS denominations (never issued by cardcash).
    #[serde(rename = "CS+age_restricted")]
    CsAgeRestricted {
        /// The age groups.
        age_mask: u32,
        /// The denominations.
        denoms: Vec<CsDenomination>,
    },
}

impl DenominationGroupKeys {
    /// The age mask of the group (`0` without age restriction).
    pub fn age_mask(&self) -> u32 {
        match self {
            Self::Rsa { .. } | Self::Cs { .. } => 0,
            Self::RsaAgeRestricted { age_mask, .. } | Self::CsAgeRestricted { age_mask, .. } => {
                *age_mask
            }
        }
    }

    /// Number of denominations in the group.
    pub fn len(&self) -> usize {
        match self {
            Self::Rsa { denoms } | Self::RsaAgeRestricted { denoms, .. } => denoms.len(),
            Self::Cs { denoms } | Self::CsAgeRestricted { denoms, .. } => denoms.len(),
        }
    }

    /// Whether the group lists no denomination.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One RSA denomination of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaDenomination {
    /// The GNUnet encoding of the RSA public key.
    pub rsa_pub: Base32Bytes,
    /// Master signature (purpose 1025) over the denomination with its group's value and fees.
    pub master_sig: EddsaSignature,
    /// When withdrawing starts.
    pub stamp_start: Timestamp,
    /// When withdrawing ends.
    pub stamp_expire_withdraw: Timestamp,
    /// When depositing ends.
    pub stamp_expire_deposit: Timestamp,
    /// Until when records are kept.
    pub stamp_expire_legal: Timestamp,
    /// `true` when the private key is lost (the exchange can no longer sign with it); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

/// One CS denomination of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsDenomination {
    /// The CS public key.
    pub cs_pub: CsPoint,
    /// Master signature (purpose 1025).
    pub master_sig: EddsaSignature,
    /// When withdrawing starts.
    pub stamp_start: Timestamp,
    /// When withdrawing ends.
    pub stamp_expire_withdraw: Timestamp,
    /// When depositing ends.
    pub stamp_expire_deposit: Timestamp,
    /// Until when records are kept.
    pub stamp_expire_legal: Timestamp,
    /// `true` when the private key is lost; absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SIG, assert_round_trip, b32};

    fn config_json() -> String {
        r#"{"wallet_balance_limit_without_kyc":["KUDOS:1000"],
            "supported_kyc_requirements":[],
            "currency_specification":{"name":"Kudos (Taler Demonstrator)","currency":"KUDOS",
              "num_fractional_input_digits":2,"num_fractional_normal_digits":2,
              "num_fractional_trailing_zero_digits":2,"alt_unit_names":{"0":"ク"}},
            "currency":"KUDOS","name":"taler-exchange",
            "implementation":"urn:net:taler:specs:taler-exchange:c-reference",
            "version":"23:0:6"}"#
            .to_owned()
    }

    /// A `/keys` answer in the shape `create_krd` writes, one group per cipher and every
    /// optional field present.
    fn keys_json() -> String {
        let rsa_pub = b32(&[1, 0, 0, 3, 0xc5, 0x01, 0x00, 0x01]);
        let cs_pub = b32(&[9; 32]);
        format!(
            r#"{{"version":"23:0:6","base_url":"https://exchange.example/","currency":"KUDOS",
            "currency_specification":{{"name":"Kudos","currency":"KUDOS",
              "num_fractional_input_digits":2,"num_fractional_normal_digits":2,
              "num_fractional_trailing_zero_digits":2,"alt_unit_names":{{"0":"KUDOS"}}}},
            "hard_limits":[{{"rule_name":"monthly-withdraw","operation_type":"WITHDRAW",
              "timeframe":{{"d_us":2592000000000}},"threshold":"KUDOS:5000"}}],
            "zero_limits":[{{"operation_type":"MERGE"}}],
            "stefan_abs":"KUDOS:0","stefan_log":"KUDOS:0","stefan_lin":0.0,
            "asset_type":"fiat","rewards_allowed":false,
            "master_public_key":"{PUB}","reserve_closing_delay":{{"d_us":2419200000000}},
            "signkeys":[{{"stamp_start":{{"t_s":1700000000}},"stamp_expire":{{"t_s":1800000000}},
              "stamp_end":{{"t_s":1900000000}},"master_sig":"{SIG}","key":"{PUB}"}}],
            "recoup":[{{"h_denom_pub":"{HASH}"}}],
            "wads":[],
            "accounts":[{{"payto_uri":"payto://x-taler-bank/bank.example/exchange?receiver-name=Exchange",
              "conversion_url":"https://conversion.example/","bank_label":"Demo bank","priority":5,
              "debit_restrictions":[{{"type":"deny"}}],
              "credit_restrictions":[{{"type":"regex","payto_regex":"payto://x-taler-bank/.*",
                "human_hint":"demo bank accounts only","human_hint_i18n":{{"de":"nur Demobank"}}}}],
              "master_sig":"{SIG}"}}],
            "wire_fees":{{"x-taler-bank":[{{"wire_fee":"KUDOS:0.01","closing_fee":"KUDOS:0.01",
              "start_date":{{"t_s":1700000000}},"end_date":{{"t_s":1800000000}},"sig":"{SIG}"}}]}},
            "denominations":[
              {{"cipher":"RSA","denoms":[{{"master_sig":"{SIG}","stamp_start":{{"t_s":1700000000}},
                "stamp_expire_withdraw":{{"t_s":1800000000}},"stamp_expire_deposit":{{"t_s":1900000000}},
                "stamp_expire_legal":{{"t_s":2000000000}},"rsa_pub":"{rsa_pub}"}},
                {{"master_sig":"{SIG}","lost":true,"stamp_start":{{"t_s":1600000000}},
                "stamp_expire_withdraw":{{"t_s":1700000000}},"stamp_expire_deposit":{{"t_s":1900000000}},
                "stamp_expire_legal":{{"t_s":"never"}},"rsa_pub":"{rsa_pub}"}}],
               "fee_withdraw":"KUDOS:0.01","fee_deposit":"KUDOS:0.01","fee_refresh":"KUDOS:0.01",
               "fee_refund":"KUDOS:0.01","value":"KUDOS:1"}},
              {{"cipher":"CS","denoms":[{{"master_sig":"{SIG}","stamp_start":{{"t_s":1700000000}},
                "stamp_expire_withdraw":{{"t_s":1800000000}},"stamp_expire_deposit":{{"t_s":1900000000}},
                "stamp_expire_legal":{{"t_s":2000000000}},"cs_pub":"{cs_pub}"}}],
               "fee_withdraw":"KUDOS:0","fee_deposit":"KUDOS:0","fee_refresh":"KUDOS:0",
               "fee_refund":"KUDOS:0","value":"KUDOS:5"}}],
            "auditors":[{{"auditor_name":"Audit AG","auditor_pub":"{PUB}",
              "auditor_url":"https://auditor.example/",
              "denomination_keys":[{{"denom_pub_h":"{HASH}","auditor_sig":"{SIG}"}}]}}],
            "global_fees":[{{"start_date":{{"t_s":1700000000}},"end_date":{{"t_s":1800000000}},
              "history_fee":"KUDOS:0","account_fee":"KUDOS:0","purse_fee":"KUDOS:0",
              "history_expiration":{{"d_us":31536000000000}},"purse_timeout":{{"d_us":3600000000}},
              "purse_account_limit":5,"master_sig":"{SIG}"}}],
            "list_issue_date":{{"t_s":1700000000}},
            "wallet_balance_limit_without_kyc":["KUDOS:1000"],
            "shopping_url":"https://shops.example/","tiny_amount":"KUDOS:0.01",
            "extensions":{{"age_restriction":{{"critical":false,"version":"1","config":{{"age_groups":"8:10:12:14:16:18:21"}}}}}},
            "extensions_sig":"{SIG}",
            "exchange_pub":"{PUB}","exchange_sig":"{SIG}"}}"#
        )
    }

    #[test]
    fn config_sample_round_trips() {
        let config: ExchangeConfigResponse = assert_round_trip(&config_json());
        assert_eq!(config.version.to_string(), EXCHANGE_PROTOCOL_VERSION);
        assert_eq!(config.currency.as_str(), "KUDOS");
        assert_eq!(
            config.wallet_balance_limit_without_kyc.unwrap()[0].to_string(),
            "KUDOS:1000"
        );
        // only name, version, currency and currency_specification are required
        let bare = r#"{"name":"taler-exchange","version":"23:0:6","currency":"KUDOS",
            "currency_specification":{"name":"Kudos","num_fractional_input_digits":2,
            "num_fractional_normal_digits":2,"num_fractional_trailing_zero_digits":2,
            "alt_unit_names":{}}}"#;
        let config: ExchangeConfigResponse = serde_json::from_str(bare).unwrap();
        assert!(config.supported_kyc_requirements.is_empty() && config.shopping_url.is_none());
    }

    #[test]
    fn keys_sample_round_trips_with_both_ciphers() {
        let keys: ExchangeKeysResponse = assert_round_trip(&keys_json());
        assert_eq!(keys.denominations.len(), 2);
        let DenominationGroupKeys::Rsa { denoms } = &keys.denominations[0].keys else {
            panic!("first group is RSA: {:?}", keys.denominations[0].keys);
        };
        assert_eq!(denoms.len(), 2);
        assert!(!denoms[0].lost && denoms[1].lost);
        assert!(denoms[1].stamp_expire_legal.is_never());
        assert!(matches!(
            &keys.denominations[1].keys,
            DenominationGroupKeys::Cs { denoms } if denoms[0].cs_pub == CsPoint::from_bytes([9; 32])
        ));
        assert_eq!(keys.denominations[1].value.to_string(), "KUDOS:5");
        assert_eq!(keys.hard_limits[0].operation_type, KycOperation::Withdraw);
        assert_eq!(keys.zero_limits[0].rule_name, None);
        assert_eq!(keys.accounts[0].priority, 5);
        assert_eq!(
            keys.accounts[0].credit_restrictions[0],
            AccountRestriction::Regex {
                payto_regex: "payto://x-taler-bank/.*".into(),
                human_hint: "demo bank accounts only".into(),
                human_hint_i18n: Some(BTreeMap::from([("de".into(), "nur Demobank".into())])),
            }
        );
        assert_eq!(keys.wire_fees["x-taler-bank"].len(), 1);
        assert_eq!(keys.auditors[0].auditor_name, "Audit AG");
    }

    #[test]
    fn keys_without_the_optional_parts() {
        let mut v: serde_json::Value = serde_json::from_str(&keys_json()).unwrap();
        let top = v.as_object_mut().unwrap();
        for optional in [
            "hard_limits",
            "zero_limits",
            "rewards_allowed",
            "recoup",
            "wallet_balance_limit_without_kyc",
            "shopping_url",
            "tiny_amount",
            "extensions",
            "extensions_sig",
        ] {
            top.remove(optional).unwrap();
        }
        let account = top["accounts"][0].as_object_mut().unwrap();
        for optional in ["conversion_url", "bank_label", "priority"] {
            account.remove(optional).unwrap();
        }
        let keys: ExchangeKeysResponse = serde_json::from_value(v.clone()).unwrap();
        assert!(keys.recoup.is_empty() && keys.hard_limits.is_empty() && !keys.rewards_allowed);
        assert_eq!(keys.accounts[0].priority, 0);
        // required fields are required
        for required in [
            "exchange_sig",
            "denominations",
            "accounts",
            "wads",
            "base_url",
        ] {
            let mut broken = v.clone();
            broken.as_object_mut().unwrap().remove(required);
            assert!(
                serde_json::from_value::<ExchangeKeysResponse>(broken).is_err(),
                "{required}"
            );
        }
    }

    #[test]
    fn age_restricted_groups_parse_and_keep_their_mask() {
        let group = format!(
            r#"{{"cipher":"CS+age_restricted","age_mask":8521,"denoms":[{{"master_sig":"{SIG}",
            "stamp_start":{{"t_s":1}},"stamp_expire_withdraw":{{"t_s":2}},"stamp_expire_deposit":{{"t_s":3}},
            "stamp_expire_legal":{{"t_s":4}},"cs_pub":"{}"}}],"fee_withdraw":"KUDOS:0",
            "fee_deposit":"KUDOS:0","fee_refresh":"KUDOS:0","fee_refund":"KUDOS:0","value":"KUDOS:1"}}"#,
            b32(&[9; 32])
        );
        let group: DenominationGroup = assert_round_trip(&group);
        assert_eq!(group.keys.age_mask(), 8521);
        assert_eq!(group.keys.len(), 1);
        // a group of an unknown cipher is an error, not a panic
        let unknown = r#"{"cipher":"ECDSA","denoms":[],"fee_withdraw":"KUDOS:0",
            "fee_deposit":"KUDOS:0","fee_refresh":"KUDOS:0","fee_refund":"KUDOS:0","value":"KUDOS:1"}"#;
        assert!(serde_json::from_str::<DenominationGroup>(unknown).is_err());
        // an RSA key in a CS group is refused
        let mixed = format!(
            r#"{{"cipher":"CS","denoms":[{{"master_sig":"{SIG}","stamp_start":{{"t_s":1}},
            "stamp_expire_withdraw":{{"t_s":2}},"stamp_expire_deposit":{{"t_s":3}},
            "stamp_expire_legal":{{"t_s":4}},"rsa_pub":"{}"}}],"fee_withdraw":"KUDOS:0",
            "fee_deposit":"KUDOS:0","fee_refresh":"KUDOS:0","fee_refund":"KUDOS:0","value":"KUDOS:1"}}"#,
            b32(&[1, 2, 3])
        );
        assert!(serde_json::from_str::<DenominationGroup>(&mixed).is_err());
    }

    #[test]
    fn unknown_restriction_and_limit_types_are_refused() {
        assert!(serde_json::from_str::<AccountRestriction>(r#"{"type":"allow"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<AccountRestriction>(r#"{"type":"deny"}"#).unwrap(),
            AccountRestriction::Deny
        );
        assert!(
            serde_json::from_str::<ZeroLimitedOperation>(r#"{"operation_type":"SPEND"}"#).is_err()
        );
        for op in [
            "NONE",
            "WITHDRAW",
            "DEPOSIT",
            "MERGE",
            "BALANCE",
            "CLOSE",
            "AGGREGATE",
            "TRANSACTION",
            "REFUND",
        ] {
            let _: ZeroLimitedOperation =
                assert_round_trip(&format!(r#"{{"operation_type":"{op}"}}"#));
        }
    }
}
