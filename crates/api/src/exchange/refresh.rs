//! Refreshing coins, protocol v23: `POST /coins/$COIN_PUB/melt`, `POST /refreshes/$RC/reveal`,
//! `GET /coins/$COIN_PUB/link` and `POST /csr-melt` (the exchange's `R` values for fresh
//! Clause-Schnorr coins).
//!
//! Sources: the C exchange's `taler-exchange-httpd_melt.c`, `…_refreshes_reveal.c`, `…_link.c`,
//! `…_csr.c` (what it reads and writes) and its client `exchange_api_melt.c`,
//! `exchange_api_refreshes_reveal.c`, `exchange_api_link.c`, `exchange_api_csr_melt.c`.
//!
//! - melt: `{denom_pub_hash, denom_sig, confirm_sig, value_with_fee, rc, age_commitment_hash?,
//!   rms?}` → `{noreveal_index, exchange_sig, exchange_pub}` (purpose 1034 over `rc` and the
//!   index). The coin's key is the path's; `rms` (the refresh master secret) comes when a fresh
//!   coin is CS. A coin without enough value left is 409 `EXCHANGE_GENERIC_INSUFFICIENT_FUNDS`
//!   naming `coin_pub` and `h_denom_pub` ([`super::CoinInsufficientFundsResponse`]).
//! - reveal: `{transfer_pub, transfer_privs[κ−1], link_sigs[], coin_evs[], new_denoms_h[],
//!   old_age_commitment?, rms?}` → `{ev_sigs: [{ev_sig}]}`. A reveal that does not match the
//!   melt's commitment is 409 `EXCHANGE_REFRESHES_REVEAL_COMMITMENT_VIOLATION` with
//!   `rc_expected` ([`RevealCommitmentViolationResponse`]).
//! - link: a list, one entry per revealed melt of the coin: `{transfer_pub, new_coins: [{denom_pub,
//!   ev_sig, coin_idx, ewv, link_sig, cs_nonce?}]}`.
//! - csr-melt: `{rms, nks: [{coin_offset, denom_pub_hash}]}` → `{ewvs: [{ewv}]}`.
//!
//! Differences from our notes (taler-protocol.md §6): the v23 melt body has no `coin_pub` (the
//! path names the coin; an extra field is ignored) and may carry `rms`; the reveal may carry
//! `rms`; the notes do not list the link and csr-melt shapes, they are above.

use cardcash_util::base32::{self, Base32Error};
use cardcash_util::{Amount, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode};
use cardcash_util::{ShortHashCode, base32::decode_fixed};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

use super::denom::{
    BlindedDenominationSignature, CoinEnvelope, CsNonce, DenominationPublicKey,
    ExchangeWithdrawValues, UnblindedSignature,
};
use super::withdraw::WithdrawSignature;
use crate::common::ErrorDetail;

macro_rules! secret_bytes {
    ($( $(#[$doc:meta])* $name:ident; )+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps the 32 bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Base32Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_fixed::<32>(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&base32::encode(&self.0))
            }
        }

        /// Redacted: a secret that is revealed on purpose, but not to logs.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

secret_bytes! {
    /// An ECDHE private key the wallet reveals for a cut-and-choose set it need not keep
    /// (`transfer_privs[]`, 32 bytes).
    TransferPrivateKey;
    /// The refresh master secret (`rms`, 32 bytes) of a refresh with Clause-Schnorr fresh
    /// coins: the seed of their session nonces, and part of the commitment `rc`.
    RefreshMasterSecret;
}

/// `POST /coins/$COIN_PUB/melt` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeltRequest {
    /// The old coin's denomination.
    pub denom_pub_hash: HashCode,
    /// The old coin's denomination signature.
    pub denom_sig: UnblindedSignature,
    /// The old coin's signature (purpose 1202) over `rc`, its denomination, the age commitment
    /// hash, `value_with_fee` and the melt fee.
    pub confirm_sig: EddsaSignature,
    /// What is melted: the fresh coins' values and withdraw fees plus the melt fee.
    pub value_with_fee: Amount,
    /// The commitment to the κ sets of fresh coins.
    pub rc: HashCode,
    /// Hash of the old coin's age commitment, for age-restricted coins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub age_commitment_hash: Option<ShortHashCode>,
    /// The refresh master secret, when a fresh coin is CS.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rms: Option<RefreshMasterSecret>,
}

/// `POST /coins/$COIN_PUB/melt` response (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeltResponse {
    /// The set (0 to κ−1) the wallet keeps secret; it reveals the others.
    pub noreveal_index: u32,
    /// The exchange's confirmation (purpose 1034) over `rc` and `noreveal_index`.
    pub exchange_sig: EddsaSignature,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
    /// Where to reveal, if not at this exchange's base URL (never sent by us).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_base_url: Option<String>,
}

/// `POST /refreshes/$RC/reveal` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealRequest {
    /// The transfer public key of the set the wallet keeps (`noreveal_index`).
    pub transfer_pub: EcdhePublicKey,
    /// The κ−1 other transfer private keys, in set order, skipping `noreveal_index`.
    pub transfer_privs: Vec<TransferPrivateKey>,
    /// Per fresh coin, the old coin's signature (purpose 1204) linking it to `transfer_pub`.
    pub link_sigs: Vec<EddsaSignature>,
    /// The fresh coins' envelopes of the kept set.
    pub coin_evs: Vec<CoinEnvelope>,
    /// The fresh coins' denominations.
    pub new_denoms_h: Vec<HashCode>,
    /// The old coin's age commitment (age-restricted coins only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_age_commitment: Option<Vec<EddsaPublicKey>>,
    /// The refresh master secret, when a fresh coin is CS.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rms: Option<RefreshMasterSecret>,
}

/// `POST /refreshes/$RC/reveal` response (200): one blind signature per fresh coin, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealResponse {
    pub ev_sigs: Vec<WithdrawSignature>,
}

/// The 409 body of a reveal that does not match the melt's commitment
/// (`EXCHANGE_REFRESHES_REVEAL_COMMITMENT_VIOLATION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealCommitmentViolationResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The commitment the revealed values give.
    pub rc_expected: HashCode,
}

/// One fresh coin of a link answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCoin {
    /// The fresh coin's denomination.
    pub denom_pub: DenominationPublicKey,
    /// The exchange's blind signature over the fresh coin's envelope.
    pub ev_sig: BlindedDenominationSignature,
    /// The fresh coin's index in the refresh (the `j` of its derivation).
    pub coin_idx: u32,
    /// The exchange's values the envelope was made with (CS: the `R` values).
    pub ewv: ExchangeWithdrawValues,
    /// The old coin's link signature (purpose 1204) over the envelope.
    pub link_sig: EddsaSignature,
    /// The CS session nonce of the envelope (absent for RSA).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cs_nonce: Option<CsNonce>,
}

/// One revealed melt of a coin in a link answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSession {
    /// The fresh coins, by `coin_idx`.
    pub new_coins: Vec<LinkCoin>,
    /// The transfer public key of the kept set: with the old coin's private key it gives the
    /// transfer secret the fresh coins derive from.
    pub transfer_pub: EcdhePublicKey,
}

/// `GET /coins/$COIN_PUB/link` response (200): one entry per revealed melt of the coin.
pub type LinkResponse = Vec<LinkSession>;

/// One fresh CS coin of a `/csr-melt` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrMeltCoin {
    /// The fresh coin's index `j` (its nonce is derived from `rms` and `j`).
    pub coin_offset: u32,
    /// Its (CS) denomination.
    pub denom_pub_hash: HashCode,
}

/// `POST /csr-melt` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrMeltRequest {
    /// The refresh master secret the nonces derive from.
    pub rms: RefreshMasterSecret,
    /// The fresh CS coins.
    pub nks: Vec<CsrMeltCoin>,
}

/// One answer of `/csr-melt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrMeltValues {
    pub ewv: ExchangeWithdrawValues,
}

/// `POST /csr-melt` response (200), in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrMeltResponse {
    pub ewvs: Vec<CsrMeltValues>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SIG, assert_round_trip, b32};

    #[test]
    fn melt_request_and_response() {
        let body = format!(
            r#"{{"denom_pub_hash":"{HASH}","denom_sig":{{"cipher":"RSA","rsa_signature":"{}"}},
                "confirm_sig":"{SIG}","value_with_fee":"KUDOS:1.5","rc":"{HASH}",
                "rms":"{PUB}"}}"#,
            b32(&[7; 128])
        );
        let request: MeltRequest = assert_round_trip(&body);
        assert_eq!(request.value_with_fee.to_string(), "KUDOS:1.5");
        assert!(request.age_commitment_hash.is_none());
        assert!(request.rms.is_some());
        let response: MeltResponse = assert_round_trip(&format!(
            r#"{{"noreveal_index":2,"exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
        ));
        assert_eq!(response.noreveal_index, 2);
        // The v12 body's extra coin_pub is ignored.
        let v12 = body.replace("\"rms\"", &format!("\"coin_pub\":\"{PUB}\",\"rms\""));
        assert_eq!(serde_json::from_str::<MeltRequest>(&v12).unwrap(), request);
    }

    #[test]
    fn reveal_request_with_rsa_and_cs_envelopes() {
        let body = format!(
            r#"{{"transfer_pub":"{PUB}","transfer_privs":["{PUB}","{PUB}"],
                "link_sigs":["{SIG}","{SIG}"],
                "coin_evs":[{{"cipher":"RSA","rsa_blinded_planchet":"{}"}},
                            {{"cipher":"CS","cs_nonce":"{PUB}","cs_blinded_c0":"{PUB}","cs_blinded_c1":"{PUB}"}}],
                "new_denoms_h":["{HASH}","{HASH}"],"rms":"{PUB}"}}"#,
            b32(&[3; 128])
        );
        let request: RevealRequest = assert_round_trip(&body);
        assert_eq!(request.transfer_privs.len(), 2);
        assert_eq!(
            format!("{:?}", request.transfer_privs[0]),
            "TransferPrivateKey(<redacted>)"
        );
        let short = body.replace(&format!("\"{PUB}\",\"{PUB}\"]"), &format!("\"{PUB}\"]"));
        assert_eq!(
            serde_json::from_str::<RevealRequest>(&short)
                .unwrap()
                .transfer_privs
                .len(),
            1
        );
        assert!(serde_json::from_str::<RevealRequest>(&body.replace(PUB, "XYZ")).is_err());
    }

    #[test]
    fn link_and_csr_melt() {
        let link = format!(
            r#"[{{"new_coins":[{{"denom_pub":{{"cipher":"CS","age_mask":0,"cs_pub":"{PUB}"}},
                "ev_sig":{{"cipher":"CS","b":1,"s":"{PUB}"}},"coin_idx":0,
                "ewv":{{"cipher":"CS","r_pub_0":"{PUB}","r_pub_1":"{PUB}"}},
                "link_sig":"{SIG}","cs_nonce":"{PUB}"}},
               {{"denom_pub":{{"cipher":"RSA","age_mask":0,"rsa_pub":"{}"}},
                "ev_sig":{{"cipher":"RSA","blinded_rsa_signature":"{}"}},"coin_idx":1,
                "ewv":{{"cipher":"RSA"}},"link_sig":"{SIG}"}}],
               "transfer_pub":"{PUB}"}}]"#,
            b32(&[1, 0, 0, 3, 0xc5, 0x01, 0x00, 0x01]),
            b32(&[9; 128])
        );
        let parsed: LinkResponse = assert_round_trip(&link);
        assert_eq!(parsed[0].new_coins.len(), 2);
        assert!(parsed[0].new_coins[1].cs_nonce.is_none());
        let request: CsrMeltRequest = assert_round_trip(&format!(
            r#"{{"rms":"{PUB}","nks":[{{"coin_offset":3,"denom_pub_hash":"{HASH}"}}]}}"#
        ));
        assert_eq!(request.nks[0].coin_offset, 3);
        let _: CsrMeltResponse = assert_round_trip(&format!(
            r#"{{"ewvs":[{{"ewv":{{"cipher":"CS","r_pub_0":"{PUB}","r_pub_1":"{PUB}"}}}}]}}"#
        ));
        let _: RevealCommitmentViolationResponse = assert_round_trip(&format!(
            r#"{{"code":1353,"hint":"no","rc_expected":"{HASH}"}}"#
        ));
    }
}
