//! The `/management/…` endpoints, protocol v23: the online exchange proposes keys
//! (`GET /management/keys`), the offline master key signs them and uploads its signatures, wire
//! accounts, fees and revocations.
//!
//! Sources: the C exchange's `taler-exchange-httpd_keys.c`
//! (`TEH_keys_management_get_keys_handler`) and `taler-exchange-httpd_management_*.c`; its
//! client `exchange_api_management_*.c`. The endpoints need no credentials: every upload is
//! authorised by the master signatures it carries. Every `POST` answers 204 on success.
//!
//! | route | body | refusals |
//! |---|---|---|
//! | `GET /management/keys` | → [`FutureKeysResponse`] | 503 `EXCHANGE_GENERIC_KEYS_MISSING`, 502 `EXCHANGE_DENOMINATION_HELPER_UNAVAILABLE`/`EXCHANGE_SIGNKEY_HELPER_UNAVAILABLE` |
//! | `POST /management/keys` | [`MasterSignaturesRequest`] | 404 `EXCHANGE_GENERIC_DENOMINATION_KEY_UNKNOWN`/`EXCHANGE_MANAGEMENT_KEYS_SIGNKEY_UNKNOWN`, 403 `…_DENOMKEY_ADD_SIGNATURE_INVALID`/`…_SIGNKEY_ADD_SIGNATURE_INVALID` |
//! | `POST /management/wire` | [`WireSetupRequest`] | 403 `EXCHANGE_MANAGEMENT_WIRE_ADD_SIGNATURE_INVALID`/`…_WIRE_DETAILS_SIGNATURE_INVALID`, 409 `…_WIRE_MORE_RECENT_PRESENT`, 400 `GENERIC_PAYTO_URI_MALFORMED` |
//! | `POST /management/wire/disable` | [`WireTeardownRequest`] | 403 `…_WIRE_DEL_SIGNATURE_INVALID`, 404 `…_WIRE_NOT_FOUND`, 409 `…_WIRE_MORE_RECENT_PRESENT` |
//! | `POST /management/wire-fee` | [`WireFeeSetupRequest`] | 403 `…_WIRE_FEE_SIGNATURE_INVALID`, 409 `…_WIRE_FEE_MISMATCH` |
//! | `POST /management/global-fee` | [`GlobalFeesRequest`] | 403 `…_GLOBAL_FEE_SIGNATURE_INVALID`, 409 `…_GLOBAL_FEE_MISMATCH` |
//! | `POST /management/denominations/$H_DENOM_PUB/revoke` | [`DenominationRevocationRequest`] | 403 `…_DENOMINATION_REVOKE_SIGNATURE_INVALID` |
//! | `POST /management/signkeys/$EXCHANGE_PUB/revoke` | [`SignKeyRevocationRequest`] | 403 `…_SIGNKEY_REVOKE_SIGNATURE_INVALID` |
//!
//! Differences from our notes and the issue: the C exchange takes the global fees at
//! **`/management/global-fee`** (singular; its client posts there too), while docs.taler.net
//! names the route `/management/global-fees`, so a server should route both; the future keys
//! carry the security modules' signatures (`denom_secmod_sig`, `signkey_secmod_sig`, purposes
//! 1250–1252) and public keys (all-zero when a helper has no keys), and each future
//! denomination names its configuration `section_name`; its `denom_pub` is the v23 key object
//! (`rsa_pub`/`cs_pub` with `age_mask`). A wire account is set up with two master signatures:
//! `master_sig_add` (purpose 1021 over `validity_start`, the payto hash, the conversion URL and
//! both restriction lists) and `master_sig_wire` (purpose 1030, v23 layout, the one `/keys`
//! shows); `priority` is optional on input (0). Our extension: `master_sig_wire_v12`, the same
//! account signed in the v12–14 layout (purpose 1030 over the payto hash only), which the
//! legacy face's `/wire` shows to wallets of 2022. The 2022 C exchange (`14:0:2`) took
//! `{payto_uri, master_sig_add, master_sig_wire, validity_start}` with both signatures in their
//! v12–14 layouts (1021 over start and payto hash; 1030 over the payto hash); our v23 route
//! needs the v23 signatures and takes the v12 one beside them.

use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri, RelativeTime, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::denom::DenominationPublicKey;
use super::keys::AccountRestriction;

/// `GET /management/keys`: the keys the online exchange has but the master key has not signed
/// yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutureKeysResponse {
    /// Denominations waiting for their master signature.
    pub future_denoms: Vec<FutureDenomination>,
    /// Signing keys waiting for their master signature.
    pub future_signkeys: Vec<FutureSignKey>,
    /// The master public key the exchange is configured with.
    pub master_pub: EddsaPublicKey,
    /// The RSA security module's key (signs `denom_secmod_sig` of RSA denominations).
    pub denom_secmod_public_key: EddsaPublicKey,
    /// The CS security module's key (signs `denom_secmod_sig` of CS denominations).
    pub denom_secmod_cs_public_key: EddsaPublicKey,
    /// The signing-key security module's key.
    pub signkey_secmod_public_key: EddsaPublicKey,
}

/// A denomination the exchange proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutureDenomination {
    /// The coins' value.
    pub value: Amount,
    /// When withdrawing starts.
    pub stamp_start: Timestamp,
    /// When withdrawing ends.
    pub stamp_expire_withdraw: Timestamp,
    /// When depositing ends.
    pub stamp_expire_deposit: Timestamp,
    /// Until when records are kept.
    pub stamp_expire_legal: Timestamp,
    /// The public key.
    pub denom_pub: DenominationPublicKey,
    /// Fee charged when withdrawing one coin.
    pub fee_withdraw: Amount,
    /// Fee charged when depositing one coin.
    pub fee_deposit: Amount,
    /// Fee charged when refreshing one coin.
    pub fee_refresh: Amount,
    /// Fee charged when refunding a deposit of one coin.
    pub fee_refund: Amount,
    /// The security module's signature over the key, its section name and validity (purpose
    /// 1250 RSA, 1252 CS).
    pub denom_secmod_sig: EddsaSignature,
    /// The configuration section the denomination comes from (`coin_kudos_1`, …).
    pub section_name: String,
}

/// A signing key the exchange proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutureSignKey {
    /// The public key.
    pub key: EddsaPublicKey,
    /// When the exchange starts signing with it.
    pub stamp_start: Timestamp,
    /// When the exchange stops signing with it.
    pub stamp_expire: Timestamp,
    /// Until when its signatures must be honoured.
    pub stamp_end: Timestamp,
    /// The security module's signature over the key and its validity (purpose 1251).
    pub signkey_secmod_sig: EddsaSignature,
}

/// `POST /management/keys`: the master key's signatures over proposed keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterSignaturesRequest {
    /// Signatures over denominations.
    pub denom_sigs: Vec<DenominationSignature>,
    /// Signatures over signing keys.
    pub signkey_sigs: Vec<SignKeySignature>,
}

/// The master signature over one denomination (purpose 1025).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationSignature {
    /// The denomination.
    pub h_denom_pub: HashCode,
    /// The signature.
    pub master_sig: EddsaSignature,
}

/// The master signature over one signing key (purpose 1024).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignKeySignature {
    /// The signing key.
    pub exchange_pub: EddsaPublicKey,
    /// The signature.
    pub master_sig: EddsaSignature,
}

/// `POST /management/wire`: enable a bank account of the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSetupRequest {
    /// The account, as a full payto URI.
    pub payto_uri: PaytoUri,
    /// Base URL of a conversion service in front of the account, exactly as signed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversion_url: Option<String>,
    /// Restrictions on accounts the exchange accepts money from.
    pub credit_restrictions: Vec<AccountRestriction>,
    /// Restrictions on accounts the exchange wires to.
    pub debit_restrictions: Vec<AccountRestriction>,
    /// Master signature (purpose 1021) over `validity_start`, the payto URI, the conversion URL
    /// and both restriction lists.
    pub master_sig_add: EddsaSignature,
    /// Master signature (purpose 1030, v23 layout) over the account details; shown in `/keys`.
    pub master_sig_wire: EddsaSignature,
    /// Our extension: the master signature (purpose 1030, v12–14 layout: the payto hash only)
    /// that wallets of 2022 verify in the legacy face's `/wire`. The C exchange ignores it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub master_sig_wire_v12: Option<EddsaSignature>,
    /// From when the account is valid; a later disable or enable wins.
    pub validity_start: Timestamp,
    /// Label for the bank in wallets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bank_label: Option<String>,
    /// Ordering hint for wallets: higher first.
    #[serde(default)]
    pub priority: i64,
}

/// `POST /management/wire/disable`: disable a bank account of the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTeardownRequest {
    /// The account.
    pub payto_uri: PaytoUri,
    /// Master signature (purpose 1023) over the payto URI and `validity_end`.
    pub master_sig_del: EddsaSignature,
    /// From when the account is no longer valid.
    pub validity_end: Timestamp,
}

/// `POST /management/wire-fee`: wire and closing fees of one wire method for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFeeSetupRequest {
    /// The wire method (payto target type).
    pub wire_method: String,
    /// Master signature (purpose 1028).
    pub master_sig: EddsaSignature,
    /// First day of validity.
    pub fee_start: Timestamp,
    /// End of validity (exclusive).
    pub fee_end: Timestamp,
    /// Fee per aggregated transfer to a merchant.
    pub wire_fee: Amount,
    /// Fee for closing a reserve.
    pub closing_fee: Amount,
}

/// `POST /management/global-fee`: the global fees for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalFeesRequest {
    /// Master signature (purpose 1022).
    pub master_sig: EddsaSignature,
    /// First day of validity.
    pub fee_start: Timestamp,
    /// End of validity (exclusive).
    pub fee_end: Timestamp,
    /// Fee for a reserve history request.
    pub history_fee: Amount,
    /// Fee for opening an account.
    pub account_fee: Amount,
    /// Fee for a purse without an account.
    pub purse_fee: Amount,
    /// How long an unmerged purse lives.
    pub purse_timeout: RelativeTime,
    /// How long histories are kept.
    pub history_expiration: RelativeTime,
    /// Purses an account may have open without paying `purse_fee`.
    pub purse_account_limit: u32,
}

/// `POST /management/denominations/$H_DENOM_PUB/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationRevocationRequest {
    /// Master signature (purpose 1029) over the denomination hash.
    pub master_sig: EddsaSignature,
}

/// `POST /management/signkeys/$EXCHANGE_PUB/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignKeyRevocationRequest {
    /// Master signature (purpose 1020) over the signing key.
    pub master_sig: EddsaSignature,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SIG, assert_round_trip, b32};

    /// A future key set as `TEH_keys_management_get_keys_handler` writes it.
    #[test]
    fn future_keys_round_trip() {
        let text = format!(
            r#"{{"future_denoms":[
              {{"value":"KUDOS:1","stamp_start":{{"t_s":1700000000}},"stamp_expire_withdraw":{{"t_s":1800000000}},
                "stamp_expire_deposit":{{"t_s":1900000000}},"stamp_expire_legal":{{"t_s":2000000000}},
                "denom_pub":{{"cipher":"RSA","age_mask":0,"rsa_pub":"{}"}},
                "fee_withdraw":"KUDOS:0.01","fee_deposit":"KUDOS:0.01","fee_refresh":"KUDOS:0.01",
                "fee_refund":"KUDOS:0.01","denom_secmod_sig":"{SIG}","section_name":"coin_kudos_1"}},
              {{"value":"KUDOS:5","stamp_start":{{"t_s":1700000000}},"stamp_expire_withdraw":{{"t_s":1800000000}},
                "stamp_expire_deposit":{{"t_s":1900000000}},"stamp_expire_legal":{{"t_s":2000000000}},
                "denom_pub":{{"cipher":"CS","age_mask":0,"cs_pub":"{}"}},
                "fee_withdraw":"KUDOS:0","fee_deposit":"KUDOS:0","fee_refresh":"KUDOS:0",
                "fee_refund":"KUDOS:0","denom_secmod_sig":"{SIG}","section_name":"coin_kudos_cs_5"}}],
            "future_signkeys":[{{"key":"{PUB}","stamp_start":{{"t_s":1700000000}},
              "stamp_expire":{{"t_s":1800000000}},"stamp_end":{{"t_s":1900000000}},
              "signkey_secmod_sig":"{SIG}"}}],
            "master_pub":"{PUB}","denom_secmod_public_key":"{PUB}",
            "denom_secmod_cs_public_key":"{PUB}","signkey_secmod_public_key":"{PUB}"}}"#,
            b32(&[1, 0, 0, 3, 0xc5, 1, 0, 1]),
            b32(&[9; 32])
        );
        let keys: FutureKeysResponse = assert_round_trip(&text);
        assert_eq!(keys.future_denoms.len(), 2);
        assert!(matches!(
            keys.future_denoms[1].denom_pub,
            DenominationPublicKey::Cs { .. }
        ));
        assert_eq!(keys.future_denoms[0].section_name, "coin_kudos_1");
    }

    #[test]
    fn master_signatures_round_trip() {
        let req: MasterSignaturesRequest = assert_round_trip(&format!(
            r#"{{"denom_sigs":[{{"h_denom_pub":"{HASH}","master_sig":"{SIG}"}}],
            "signkey_sigs":[{{"exchange_pub":"{PUB}","master_sig":"{SIG}"}}]}}"#
        ));
        assert_eq!((req.denom_sigs.len(), req.signkey_sigs.len()), (1, 1));
        let _: MasterSignaturesRequest =
            assert_round_trip(r#"{"denom_sigs":[],"signkey_sigs":[]}"#);
    }

    #[test]
    fn wire_setup_and_teardown() {
        let setup: WireSetupRequest = assert_round_trip(&format!(
            r#"{{"payto_uri":"payto://iban/DE89370400440532013000?receiver-name=Exchange",
            "debit_restrictions":[],"credit_restrictions":[{{"type":"deny"}}],
            "conversion_url":"https://conversion.example/","bank_label":"Bank","priority":3,
            "master_sig_add":"{SIG}","master_sig_wire":"{SIG}","validity_start":{{"t_s":1700000000}}}}"#
        ));
        assert_eq!(setup.priority, 3);
        // conversion URL, bank label and priority are optional
        let bare: WireSetupRequest = serde_json::from_str(&format!(
            r#"{{"payto_uri":"payto://iban/DE89370400440532013000?receiver-name=Exchange",
            "debit_restrictions":[],"credit_restrictions":[],
            "master_sig_add":"{SIG}","master_sig_wire":"{SIG}","validity_start":{{"t_s":1700000000}}}}"#
        ))
        .unwrap();
        assert_eq!((bare.priority, bare.conversion_url), (0, None));
        assert_eq!(bare.master_sig_wire_v12, None);
        let both: WireSetupRequest = assert_round_trip(&format!(
            r#"{{"payto_uri":"payto://iban/DE89370400440532013000?receiver-name=Exchange",
            "debit_restrictions":[],"credit_restrictions":[],"priority":0,
            "master_sig_add":"{SIG}","master_sig_wire":"{SIG}","master_sig_wire_v12":"{SIG}",
            "validity_start":{{"t_s":1700000000}}}}"#
        ));
        assert!(both.master_sig_wire_v12.is_some());
        let _: WireTeardownRequest = assert_round_trip(&format!(
            r#"{{"master_sig_del":"{SIG}","payto_uri":"payto://iban/DE89370400440532013000",
            "validity_end":{{"t_s":1800000000}}}}"#
        ));
    }

    #[test]
    fn fees_and_revocations() {
        let _: WireFeeSetupRequest = assert_round_trip(&format!(
            r#"{{"master_sig":"{SIG}","wire_method":"iban","fee_start":{{"t_s":1704067200}},
            "fee_end":{{"t_s":1735689600}},"wire_fee":"KUDOS:0.01","closing_fee":"KUDOS:0.01"}}"#
        ));
        let fees: GlobalFeesRequest = assert_round_trip(&format!(
            r#"{{"master_sig":"{SIG}","fee_start":{{"t_s":1704067200}},"fee_end":{{"t_s":1735689600}},
            "history_fee":"KUDOS:0","account_fee":"KUDOS:0","purse_fee":"KUDOS:0",
            "purse_timeout":{{"d_us":3600000000}},"history_expiration":{{"d_us":"forever"}},
            "purse_account_limit":5}}"#
        ));
        assert!(fees.history_expiration.is_forever());
        let _: DenominationRevocationRequest =
            assert_round_trip(&format!(r#"{{"master_sig":"{SIG}"}}"#));
        let _: SignKeyRevocationRequest =
            assert_round_trip(&format!(r#"{{"master_sig":"{SIG}"}}"#));
    }
}
