//! Cipher-tagged values of the blind-signature schemes, RSA and Clause-Schnorr (CS): denomination
//! public keys, coin envelopes (blinded planchets), blinded and unblinded denomination
//! signatures, and the exchange's CS withdraw values (`/csr-withdraw`).
//!
//! Every value is a JSON object tagged by `"cipher"` (`"RSA"` or `"CS"`). Field names as the C
//! exchange writes and reads them (GNUnet `json_pack.c`/`json_helper.c`, Taler
//! `src/json/json_pack.c`, protocol v23):
//!
//! | value | RSA | CS |
//! |---|---|---|
//! | denomination key | `rsa_pub` | `cs_pub` (32-byte point) |
//! | coin envelope | `rsa_blinded_planchet` | `cs_nonce`, `cs_blinded_c0`, `cs_blinded_c1` (32 bytes each) |
//! | blinded signature | `blinded_rsa_signature` | `b` (the clause, 0 or 1), `s` (32-byte scalar) |
//! | unblinded signature | `rsa_signature` | `cs_signature_r` (point), `cs_signature_s` (scalar) |
//! | withdraw values | (none) | `r_pub_0`, `r_pub_1` (points) |
//!
//! Differences from our notes (taler-protocol.md §4.3, §6): the v23 denomination key is
//! `rsa_pub`/`cs_pub` (v12's `/keys` said `rsa_public_key`/`cs_public_key`, kept in
//! [`super::v12::DenominationPublicKey`]); `age_mask` is optional on input (absent = 0) and
//! always written. The notes do not name the CS envelope and signature fields; they are above.
//!
//! The RSA values are variable-length big-endian integers ([`Base32Bytes`]); hash and verify the
//! envelope bytes exactly as received. Nothing here checks a signature or a point: that is
//! `cardcash-crypto`'s job.

use std::fmt;
use std::str::FromStr;

use cardcash_util::Base32Bytes;
use cardcash_util::base32::{self, Base32Error};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! cs_bytes {
    ($( $(#[$doc:meta])* $name:ident; )+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; 32]);

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": cardcash_util::schema::base32_pattern(32),
                    "description": "32 bytes, Crockford base32",
                })
            }
        }

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

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl FromStr for $name {
            type Err = Base32Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                base32::decode_fixed::<32>(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&base32::encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
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

cs_bytes! {
    /// A compressed Ed25519 point of the CS scheme (32 bytes): a CS denomination public key,
    /// the exchange's `R` values, the `R` of an unblinded signature.
    CsPoint;
    /// A scalar of the CS scheme modulo the group order (32 bytes, little-endian): the blinded
    /// challenges `c0`/`c1`, the blinded `s`, the unblinded `s`.
    CsScalar;
    /// The CS session nonce (32 bytes) the wallet derives per planchet and sends to
    /// `/csr-withdraw` and in the envelope; the exchange derives its `R` values from it.
    CsNonce;
    /// A coin's 32-byte blinding key secret (`coin_blind` of recoup history entries).
    BlindingKeySecret;
}

/// A denomination public key as the v23 exchange writes it (`GET /management/keys`, the
/// `prev_denom_pub` of a denomination conflict). `/keys` lists keys inside groups instead (see
/// [`super::keys::DenominationGroup`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum DenominationPublicKey {
    /// RSA-FDH.
    #[serde(rename = "RSA", alias = "RSA+age_restricted")]
    Rsa {
        /// Age groups (`0` = no age restriction, the only value cardcash issues).
        #[serde(default)]
        age_mask: u32,
        /// The GNUnet encoding of the RSA public key.
        rsa_pub: Base32Bytes,
    },
    /// Clause-Schnorr.
    #[serde(rename = "CS", alias = "CS+age_restricted")]
    Cs {
        /// Age groups (`0` = no age restriction).
        #[serde(default)]
        age_mask: u32,
        /// The CS public key.
        cs_pub: CsPoint,
    },
}

impl DenominationPublicKey {
    /// The age mask (`0` without age restriction).
    pub fn age_mask(&self) -> u32 {
        match self {
            Self::Rsa { age_mask, .. } | Self::Cs { age_mask, .. } => *age_mask,
        }
    }
}

/// A blinded coin (planchet) the wallet asks the exchange to sign (`coin_ev`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum CoinEnvelope {
    /// RSA: the blinded message `m · r^e mod n`.
    #[serde(rename = "RSA")]
    Rsa {
        /// The blinded message, big-endian, as the wallet sent it.
        rsa_blinded_planchet: Base32Bytes,
    },
    /// CS: the session nonce and the two blinded challenges.
    #[serde(rename = "CS")]
    Cs {
        /// The nonce sent to `/csr-withdraw` for this planchet.
        cs_nonce: CsNonce,
        /// The blinded challenge of clause 0.
        cs_blinded_c0: CsScalar,
        /// The blinded challenge of clause 1.
        cs_blinded_c1: CsScalar,
    },
}

/// The exchange's blind signature over an envelope (`ev_sig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum BlindedDenominationSignature {
    /// RSA: `bm^d mod n`, big-endian.
    #[serde(rename = "RSA")]
    Rsa {
        /// The blinded signature.
        blinded_rsa_signature: Base32Bytes,
    },
    /// CS: the clause the exchange chose and its blinded `s`.
    #[serde(rename = "CS")]
    Cs {
        /// The clause, 0 or 1 (the C exchange writes a number; it reads a `u32`).
        b: u32,
        /// The blinded `s` of that clause.
        s: CsScalar,
    },
}

/// A coin's unblinded denomination signature (`ub_sig`, `denom_sig`): its proof of value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "cipher")]
pub enum UnblindedSignature {
    /// RSA: the signature over the FDH of the coin's public-key hash, big-endian.
    #[serde(rename = "RSA")]
    Rsa {
        /// The signature.
        rsa_signature: Base32Bytes,
    },
    /// CS: the Schnorr signature `(R, s)`.
    #[serde(rename = "CS")]
    Cs {
        /// The unblinded `R`.
        cs_signature_r: CsPoint,
        /// The unblinded `s`.
        cs_signature_s: CsScalar,
    },
}

/// What the exchange contributes to a planchet before the wallet can blind it: nothing for RSA,
/// the two `R` values for CS (`ewv` of `/csr-withdraw`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cipher")]
pub enum ExchangeWithdrawValues {
    /// RSA needs no input from the exchange.
    #[serde(rename = "RSA")]
    Rsa,
    /// CS: the exchange's public nonces for both clauses.
    #[serde(rename = "CS")]
    Cs {
        /// `R` of clause 0.
        r_pub_0: CsPoint,
        /// `R` of clause 1.
        r_pub_1: CsPoint,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{assert_round_trip, b32};

    #[test]
    fn rsa_and_cs_denomination_keys() {
        let rsa = format!(
            r#"{{"cipher":"RSA","age_mask":0,"rsa_pub":"{}"}}"#,
            b32(&[1, 0, 0, 3, 0xc5, 0x01, 0x00, 0x01])
        );
        let key: DenominationPublicKey = assert_round_trip(&rsa);
        assert_eq!(key.age_mask(), 0);
        let cs = format!(
            r#"{{"cipher":"CS","age_mask":0,"cs_pub":"{}"}}"#,
            b32(&[9; 32])
        );
        let key: DenominationPublicKey = assert_round_trip(&cs);
        assert_eq!(
            key,
            DenominationPublicKey::Cs {
                age_mask: 0,
                cs_pub: CsPoint::from_bytes([9; 32])
            }
        );
        // age_mask is optional on input, and the C parser's age-restricted cipher names pass
        let bare = format!(r#"{{"cipher":"CS","cs_pub":"{}"}}"#, b32(&[9; 32]));
        assert_eq!(
            serde_json::from_str::<DenominationPublicKey>(&bare).unwrap(),
            key
        );
        let aged = format!(
            r#"{{"cipher":"RSA+age_restricted","age_mask":8521,"rsa_pub":"{}"}}"#,
            b32(&[1, 2])
        );
        let key: DenominationPublicKey = serde_json::from_str(&aged).unwrap();
        assert_eq!(key.age_mask(), 8521);
    }

    #[test]
    fn cs_values_are_exactly_32_bytes() {
        let short = format!(r#"{{"cipher":"CS","cs_pub":"{}"}}"#, b32(&[9; 31]));
        assert!(serde_json::from_str::<DenominationPublicKey>(&short).is_err());
        let long = format!(r#"{{"cipher":"CS","cs_pub":"{}"}}"#, b32(&[9; 33]));
        assert!(serde_json::from_str::<DenominationPublicKey>(&long).is_err());
        let unknown = r#"{"cipher":"ECDSA","cs_pub":"00"}"#;
        assert!(serde_json::from_str::<DenominationPublicKey>(unknown).is_err());
    }

    #[test]
    fn envelopes_and_signatures_of_both_ciphers() {
        let rsa_ev: CoinEnvelope = assert_round_trip(&format!(
            r#"{{"cipher":"RSA","rsa_blinded_planchet":"{}"}}"#,
            b32(&[0, 1, 2, 3, 4])
        ));
        // leading zero bytes survive: the envelope hash covers the bytes as sent
        assert!(matches!(&rsa_ev, CoinEnvelope::Rsa { rsa_blinded_planchet }
            if rsa_blinded_planchet.as_bytes() == [0, 1, 2, 3, 4]));
        let cs_ev: CoinEnvelope = assert_round_trip(&format!(
            r#"{{"cipher":"CS","cs_nonce":"{}","cs_blinded_c0":"{}","cs_blinded_c1":"{}"}}"#,
            b32(&[1; 32]),
            b32(&[2; 32]),
            b32(&[3; 32])
        ));
        assert_eq!(
            cs_ev,
            CoinEnvelope::Cs {
                cs_nonce: CsNonce::from_bytes([1; 32]),
                cs_blinded_c0: CsScalar::from_bytes([2; 32]),
                cs_blinded_c1: CsScalar::from_bytes([3; 32]),
            }
        );
        let _: BlindedDenominationSignature = assert_round_trip(&format!(
            r#"{{"cipher":"RSA","blinded_rsa_signature":"{}"}}"#,
            b32(&[7; 256])
        ));
        let cs_sig: BlindedDenominationSignature = assert_round_trip(&format!(
            r#"{{"cipher":"CS","b":1,"s":"{}"}}"#,
            b32(&[4; 32])
        ));
        assert!(matches!(
            cs_sig,
            BlindedDenominationSignature::Cs { b: 1, .. }
        ));
        let _: UnblindedSignature = assert_round_trip(&format!(
            r#"{{"cipher":"RSA","rsa_signature":"{}"}}"#,
            b32(&[7; 256])
        ));
        let _: UnblindedSignature = assert_round_trip(&format!(
            r#"{{"cipher":"CS","cs_signature_r":"{}","cs_signature_s":"{}"}}"#,
            b32(&[5; 32]),
            b32(&[6; 32])
        ));
    }

    #[test]
    fn withdraw_values() {
        let rsa: ExchangeWithdrawValues = assert_round_trip(r#"{"cipher":"RSA"}"#);
        assert_eq!(rsa, ExchangeWithdrawValues::Rsa);
        let cs: ExchangeWithdrawValues = assert_round_trip(&format!(
            r#"{{"cipher":"CS","r_pub_0":"{}","r_pub_1":"{}"}}"#,
            b32(&[1; 32]),
            b32(&[2; 32])
        ));
        assert!(matches!(cs, ExchangeWithdrawValues::Cs { r_pub_0, .. }
            if r_pub_0 == CsPoint::from_bytes([1; 32])));
    }
}
