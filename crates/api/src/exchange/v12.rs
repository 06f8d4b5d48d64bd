//! Exchange API, the v12 surface the 2022 wallet-core speaks (`/keys` with `denoms`, `/wire`,
//! single and batch withdraw, per-coin deposit, reserve status). Part 2 of the exchange serves
//! it to wallets of late 2022; the v23 API is in the sibling modules. Spec:
//! /work/shared/spec/taler-protocol.md §6; field names checked against wallet-core
//! `taler-util/src/taler-types.ts` (`codecForExchangeKeysJson` and friends).
//!
//! Shapes shared with v23 are re-exported from there ([`SignKey`], [`Recoup`], [`GlobalFee`],
//! [`AuditorDenominationSignature`], and the cipher-tagged envelope and signatures, whose RSA
//! forms are the same in both; their CS forms are v23's). What differs stays here: the
//! denomination key (`rsa_public_key`/`cs_public_key` with a required `age_mask`), the flat
//! `denoms` entry, the auditor without a name, `/wire`, and the single-coin requests.
//! Signatures and hashes are typed here but verified in `cardcash-crypto`, never in this crate.

use std::collections::BTreeMap;

use cardcash_util::{
    Amount, Base32Bytes, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri,
    RelativeTime, ShortHashCode, Timestamp, WireSalt,
};
use serde::{Deserialize, Serialize};

pub use super::denom::{
    BlindedDenominationSignature, CoinEnvelope, CsNonce, ExchangeWithdrawValues, UnblindedSignature,
};
pub use super::keys::{AuditorDenominationSignature, GlobalFee, Recoup, SignKey};
pub use super::refresh::{MeltResponse, RevealRequest, RevealResponse, TransferPrivateKey};

/// A denomination public key as v12 `/keys` lists it, tagged by `"cipher"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum DenominationPublicKey {
    #[serde(rename = "RSA")]
    Rsa {
        /// GNUnet-encoded RSA public key.
        rsa_public_key: Base32Bytes,
        /// Age restriction groups; `0` (no restriction) is what wallet-core 2022 expects.
        age_mask: u32,
    },
    #[serde(rename = "CS")]
    Cs {
        cs_public_key: Base32Bytes,
        age_mask: u32,
    },
}

/// One entry of `/keys` `denoms` (v12 flat form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denomination {
    pub value: Amount,
    pub denom_pub: DenominationPublicKey,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub fee_refund: Amount,
    pub stamp_start: Timestamp,
    pub stamp_expire_withdraw: Timestamp,
    pub stamp_expire_deposit: Timestamp,
    pub stamp_expire_legal: Timestamp,
    /// Master signature over the denomination (purpose 1025).
    pub master_sig: EddsaSignature,
}

/// An auditor and the denominations it vouches for (v12: no `auditor_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auditor {
    pub auditor_pub: EddsaPublicKey,
    pub auditor_url: String,
    pub denomination_keys: Vec<AuditorDenominationSignature>,
}

/// `GET /keys` (v12 form, as wallet-core 2022 parses it), with the fields the 2022 C exchange
/// (`14:0:2`) also sent and its C clients require (`base_url`, `currency`, `asset_type`, the
/// grouped `denominations`, `eddsa_pub`/`eddsa_sig`, `denominations_sig`); those are optional
/// here because wallet-core ignores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeKeysResponse {
    /// Libtool version; must be compatible with 12 for wallet-core 2022.
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asset_type: Option<String>,
    pub master_public_key: EddsaPublicKey,
    pub reserve_closing_delay: RelativeTime,
    pub signkeys: Vec<SignKey>,
    #[serde(default)]
    pub recoup: Vec<Recoup>,
    /// Non-empty: wallets take the currency from `denoms[0].value`.
    pub denoms: Vec<Denomination>,
    /// The same denominations grouped as the 2022 C exchange grouped them (its C clients read
    /// these, wallet-core reads `denoms`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub denominations: Vec<DenominationGroup>,
    pub auditors: Vec<Auditor>,
    pub global_fees: Vec<GlobalFee>,
    pub list_issue_date: Timestamp,
    /// The online signing key of `eddsa_sig` and `denominations_sig`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eddsa_pub: Option<EddsaPublicKey>,
    /// Purpose 1035 over `list_issue_date` and the SHA-512 of the `denoms`' `h_denom_pub`s in
    /// list order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eddsa_sig: Option<EddsaSignature>,
    /// Purpose 1035 over `list_issue_date` and the XOR of the groups' `hash`es.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub denominations_sig: Option<EddsaSignature>,
}

/// One group of the 2022 `denominations` list: the v23 group (cipher, value, fees, keys)
/// plus `hash`, the XOR of its denominations' `h_denom_pub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationGroup {
    #[serde(flatten)]
    pub group: super::keys::DenominationGroup,
    pub hash: HashCode,
}

/// One bank account of the exchange in `/wire`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAccount {
    pub payto_uri: PaytoUri,
    /// Master signature over the account (purpose 1030 in v12).
    pub master_sig: EddsaSignature,
}

/// Wire fees of one method for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFee {
    pub wire_fee: Amount,
    pub closing_fee: Amount,
    /// Sent by newer exchanges; wallet-core 2022 ignores it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wad_fee: Option<Amount>,
    pub start_date: Timestamp,
    pub end_date: Timestamp,
    pub sig: EddsaSignature,
}

/// `GET /wire`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeWireResponse {
    pub accounts: Vec<WireAccount>,
    /// Fees by wire method (payto target type).
    pub fees: BTreeMap<String, Vec<WireFee>>,
    /// Sent by the 2022 C exchange; wallet-core ignores it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub master_public_key: Option<EddsaPublicKey>,
}

/// `GET /reserves/$RESERVE_PUB` (v12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveStatusResponse {
    pub balance: Amount,
}

/// `POST /reserves/$RESERVE_PUB/withdraw` body, also one planchet of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawRequest {
    pub denom_pub_hash: HashCode,
    /// Reserve signature (purpose 1200) over the withdraw request.
    pub reserve_sig: EddsaSignature,
    pub coin_ev: CoinEnvelope,
}

/// `POST /reserves/$RESERVE_PUB/withdraw` response, also one entry of a batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawResponse {
    pub ev_sig: BlindedDenominationSignature,
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWithdrawRequest {
    pub planchets: Vec<WithdrawRequest>,
}

/// `POST /reserves/$RESERVE_PUB/batch-withdraw` response, in planchet order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWithdrawResponse {
    pub ev_sigs: Vec<WithdrawResponse>,
}

/// `POST /coins/$COIN_PUB/deposit` body (v12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositRequest {
    /// Amount of this coin to deposit, including the deposit fee.
    pub contribution: Amount,
    pub merchant_payto_uri: PaytoUri,
    pub wire_salt: WireSalt,
    pub h_contract_terms: HashCode,
    pub denom_pub_hash: HashCode,
    pub ub_sig: UnblindedSignature,
    pub timestamp: Timestamp,
    pub wire_transfer_deadline: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_deadline: Option<Timestamp>,
    pub merchant_pub: EddsaPublicKey,
    /// Coin signature (purpose 1201) over the deposit.
    pub coin_sig: EddsaSignature,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub h_age_commitment: Option<ShortHashCode>,
}

/// `POST /coins/$COIN_PUB/deposit` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositResponse {
    pub exchange_timestamp: Timestamp,
    /// Exchange signature (purpose 1033) confirming the deposit.
    pub exchange_sig: EddsaSignature,
    pub exchange_pub: EddsaPublicKey,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transaction_base_url: Option<String>,
}

/// `POST /coins/$COIN_PUB/melt` body as wallet-core 0.9 sends it: the v23 melt plus the coin's
/// key, which the exchange takes from the path (the 2022 C exchange ignores it too). The
/// response and the reveal are the v23 ones ([`MeltResponse`], [`RevealRequest`],
/// [`RevealResponse`]): 2022 and v23 agree on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeltRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coin_pub: Option<EddsaPublicKey>,
    pub denom_pub_hash: HashCode,
    pub denom_sig: UnblindedSignature,
    /// The old coin's signature (purpose 1202).
    pub confirm_sig: EddsaSignature,
    pub value_with_fee: Amount,
    pub rc: HashCode,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub age_commitment_hash: Option<ShortHashCode>,
}

/// One fresh coin of a v12 link answer: as v23's, with the v12 denomination key
/// (`rsa_public_key`/`cs_public_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCoin {
    pub denom_pub: DenominationPublicKey,
    pub ev_sig: BlindedDenominationSignature,
    pub coin_idx: u32,
    pub ewv: ExchangeWithdrawValues,
    /// The old coin's link signature (purpose 1204).
    pub link_sig: EddsaSignature,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cs_nonce: Option<CsNonce>,
}

/// One revealed melt of a coin in a v12 link answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSession {
    pub new_coins: Vec<LinkCoin>,
    pub transfer_pub: EcdhePublicKey,
}

/// `GET /coins/$COIN_PUB/link` (v12): one entry per revealed melt of the coin.
pub type LinkResponse = Vec<LinkSession>;

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

    const PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    const HASH: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";
    const SIG: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";

    fn keys_json() -> String {
        format!(
            r#"{{"version":"14:0:2","master_public_key":"{PUB}",
            "reserve_closing_delay":{{"d_us":2419200000000}},
            "signkeys":[{{"key":"{PUB}","stamp_start":{{"t_s":1700000000}},"stamp_expire":{{"t_s":1800000000}},
              "stamp_end":{{"t_s":1900000000}},"master_sig":"{SIG}"}}],
            "recoup":[{{"h_denom_pub":"{HASH}"}}],
            "denoms":[{{"value":"KUDOS:1","denom_pub":{{"cipher":"RSA","rsa_public_key":"040000XT","age_mask":0}},
              "fee_withdraw":"KUDOS:0.01","fee_deposit":"KUDOS:0.01","fee_refresh":"KUDOS:0.01",
              "fee_refund":"KUDOS:0.01","stamp_start":{{"t_s":1700000000}},
              "stamp_expire_withdraw":{{"t_s":1800000000}},"stamp_expire_deposit":{{"t_s":1900000000}},
              "stamp_expire_legal":{{"t_s":2000000000}},"master_sig":"{SIG}"}}],
            "auditors":[],
            "global_fees":[{{"start_date":{{"t_s":1700000000}},"end_date":{{"t_s":1800000000}},
              "history_fee":"KUDOS:0","account_fee":"KUDOS:0","purse_fee":"KUDOS:0",
              "history_expiration":{{"d_us":31536000000000}},"purse_timeout":{{"d_us":3600000000}},
              "purse_account_limit":5,"master_sig":"{SIG}"}}],
            "list_issue_date":{{"t_s":1700000000}}}}"#
        )
    }

    #[test]
    fn keys_v12_round_trip() {
        let keys: ExchangeKeysResponse = round_trip(&keys_json());
        assert_eq!(keys.denoms.len(), 1);
        assert!(matches!(
            keys.denoms[0].denom_pub,
            DenominationPublicKey::Rsa { age_mask: 0, .. }
        ));
        // recoup is optional on input
        let mut v: Value = serde_json::from_str(&keys_json()).unwrap();
        v.as_object_mut().unwrap().remove("recoup");
        let keys: ExchangeKeysResponse = serde_json::from_value(v).unwrap();
        assert!(keys.recoup.is_empty());
    }

    #[test]
    fn denom_pub_requires_known_cipher() {
        let bad = r#"{"cipher":"ECDSA","rsa_public_key":"040000XT","age_mask":0}"#;
        assert!(serde_json::from_str::<DenominationPublicKey>(bad).is_err());
        let no_mask = r#"{"cipher":"RSA","rsa_public_key":"040000XT"}"#;
        assert!(serde_json::from_str::<DenominationPublicKey>(no_mask).is_err());
    }

    #[test]
    fn wire_round_trip() {
        let text = format!(
            r#"{{"accounts":[{{"payto_uri":"payto://x-taler-bank/bank.example/exchange","master_sig":"{SIG}"}}],
            "fees":{{"x-taler-bank":[{{"wire_fee":"KUDOS:0.01","closing_fee":"KUDOS:0.01",
              "start_date":{{"t_s":1700000000}},"end_date":{{"t_s":1800000000}},"sig":"{SIG}"}}]}}}}"#
        );
        let wire: ExchangeWireResponse = round_trip(&text);
        assert_eq!(wire.fees["x-taler-bank"].len(), 1);
    }

    #[test]
    fn withdraw_round_trip() {
        let req = format!(
            r#"{{"denom_pub_hash":"{HASH}","reserve_sig":"{SIG}","coin_ev":{{"cipher":"RSA","rsa_blinded_planchet":"040000XT"}}}}"#
        );
        let w: WithdrawRequest = round_trip(&req);
        let batch: BatchWithdrawRequest = round_trip(&format!(r#"{{"planchets":[{req},{req}]}}"#));
        assert_eq!(batch.planchets, vec![w.clone(), w]);
        let resp: BatchWithdrawResponse = round_trip(
            r#"{"ev_sigs":[{"ev_sig":{"cipher":"RSA","blinded_rsa_signature":"040000XT"}}]}"#,
        );
        assert_eq!(resp.ev_sigs.len(), 1);
        let _: ReserveStatusResponse = round_trip(r#"{"balance":"KUDOS:4.97"}"#);
    }

    #[test]
    fn melt_and_link_round_trip() {
        let melt = format!(
            r#"{{"coin_pub":"{PUB}","confirm_sig":"{SIG}","denom_pub_hash":"{HASH}",
            "denom_sig":{{"cipher":"RSA","rsa_signature":"040000XT"}},"rc":"{HASH}",
            "value_with_fee":"KUDOS:1.02"}}"#
        );
        let m: MeltRequest = round_trip(&melt);
        assert!(m.coin_pub.is_some());
        let link = format!(
            r#"[{{"transfer_pub":"{PUB}","new_coins":[{{"denom_pub":{{"cipher":"RSA",
            "rsa_public_key":"040000XT","age_mask":0}},"ev_sig":{{"cipher":"RSA",
            "blinded_rsa_signature":"040000XT"}},"coin_idx":0,"ewv":{{"cipher":"RSA"}},
            "link_sig":"{SIG}"}}]}}]"#
        );
        let l: LinkResponse = round_trip(&link);
        assert_eq!(l[0].new_coins.len(), 1);
    }

    #[test]
    fn deposit_round_trip() {
        let req = format!(
            r#"{{"contribution":"KUDOS:1","merchant_payto_uri":"payto://x-taler-bank/bank.example/shop",
            "wire_salt":"000G40R40M30E209185GR38E1W","h_contract_terms":"{HASH}","denom_pub_hash":"{HASH}",
            "ub_sig":{{"cipher":"RSA","rsa_signature":"040000XT"}},"timestamp":{{"t_s":1700000000}},
            "wire_transfer_deadline":{{"t_s":1700086400}},"refund_deadline":{{"t_s":0}},
            "merchant_pub":"{PUB}","coin_sig":"{SIG}"}}"#
        );
        let d: DepositRequest = round_trip(&req);
        assert_eq!(d.h_age_commitment, None);
        let _: DepositResponse = round_trip(&format!(
            r#"{{"exchange_timestamp":{{"t_s":1700000001}},"exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
        ));
    }
}
