//! Fixed-size binary protocol values (keys, signatures, hashes, salts) and variable-length
//! byte strings, each carried as Crockford base32 text in JSON and URLs.
//!
//! Spec: taler-protocol.md §1.4. Decoding a fixed-size value is strict about its length
//! (GNUnet's `string_to_data`). Nothing here generates or checks cryptographic material: that is
//! the `crypto` crate's job. No IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::base32::{self, Base32Error};

macro_rules! fixed_bytes {
    ($( $(#[$doc:meta])* $name:ident($len:expr); )+) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// Copies from a slice; `None` when the length is wrong.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The raw bytes as a vector (for storage as a BLOB).
            pub fn to_vec(&self) -> Vec<u8> {
                self.0.to_vec()
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Base32Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                base32::decode_fixed::<$len>(s).map(Self)
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

fixed_bytes! {
    /// An Ed25519 public key (32 bytes): exchange, merchant, coin, reserve and terminal keys.
    EddsaPublicKey(32);
    /// An Ed25519 signature `R ‖ S` (64 bytes).
    EddsaSignature(64);
    /// An X25519 public key (32 bytes).
    EcdhePublicKey(32);
    /// A SHA-512 hash (64 bytes), GNUnet's `HashCode`.
    HashCode(64);
    /// A 32-byte hash (truncated SHA-512 or HKDF output), GNUnet's `ShortHashCode`.
    ShortHashCode(32);
    /// The 16-byte salt of a wire account hash.
    WireSalt(16);
    /// A C2EC withdrawal operation id (WOPID): 32 random bytes. It is the wallet's only
    /// credential for the bank-integration endpoints (anyone who knows it may register a
    /// reserve), so whoever creates one draws it from the OS random generator (thesis, terminal
    /// API chapter; our notes `spec/c2ec.md` §2.2). Other banks' withdrawal ids (libeufin's
    /// UUIDs) are plain strings, not `Wopid`s.
    Wopid(32);
}

/// A variable-length byte string in base32 (RSA public keys and signatures, blinded messages).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Base32Bytes(Vec<u8>);

impl Base32Bytes {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes as a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.clone()
    }

    /// Takes the raw bytes out.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Base32Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Base32Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for Base32Bytes {
    type Err = Base32Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        base32::decode(s).map(Self)
    }
}

impl fmt::Display for Base32Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(&self.0))
    }
}

impl fmt::Debug for Base32Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base32Bytes({self})")
    }
}

impl Serialize for Base32Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Base32Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wopid_text_is_52_chars_and_strict_about_length() {
        let w = Wopid::from_bytes([7; 32]);
        let s = w.to_string();
        assert_eq!(s.len(), 52);
        assert_eq!(s.parse::<Wopid>().unwrap(), w);
        assert!(s[..51].parse::<Wopid>().is_err());
        assert!(format!("{s}0").parse::<Wopid>().is_err());
        assert!("not-base32!".parse::<Wopid>().is_err());
        assert!("".parse::<Wopid>().is_err());
        assert_eq!(format!("{w:?}"), format!("Wopid({s})"));
    }

    #[test]
    fn fixed_round_trip_and_serde() {
        let key = EddsaPublicKey::from_bytes([0xAB; 32]);
        let text = key.to_string();
        assert_eq!(text.len(), 52);
        assert_eq!(text.parse::<EddsaPublicKey>().unwrap(), key);
        assert_eq!(text.to_lowercase().parse::<EddsaPublicKey>().unwrap(), key);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<EddsaPublicKey>(&json).unwrap(), key);
        assert_eq!(format!("{key:?}"), format!("EddsaPublicKey({text})"));
    }

    #[test]
    fn fixed_rejects_wrong_length() {
        let hash = HashCode::from_bytes([1; 64]).to_string();
        assert_eq!(hash.len(), 103);
        assert!(hash.parse::<ShortHashCode>().is_err());
        assert!(hash[..52].parse::<HashCode>().is_err());
        assert!(serde_json::from_str::<WireSalt>("\"00\"").is_err());
        assert!(serde_json::from_str::<WireSalt>("17").is_err());
        assert!(EcdhePublicKey::from_slice(&[0; 31]).is_none());
    }

    #[test]
    fn variable_bytes() {
        let b = Base32Bytes::from_bytes(vec![1, 2, 3, 4, 5]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Base32Bytes>(&json).unwrap(), b);
        assert_eq!(b.len(), 5);
    }
}
