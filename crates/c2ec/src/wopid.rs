//! The withdrawal operation id (WOPID): 32 random bytes, Crockford base32 (52 characters).
//!
//! The WOPID is the wallet's only credential for the bank-integration endpoints (anyone who
//! knows it may register a reserve), so it carries 256 bits from the OS random generator
//! (thesis, terminal API chapter; our notes `spec/c2ec.md` §2.2). Never does IO beyond reading
//! entropy through `cardcash_crypto`.

use std::fmt;
use std::str::FromStr;

use cardcash_util::base32::{self, Base32Error};

/// A withdrawal operation id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wopid([u8; 32]);

impl Wopid {
    /// Length of the text form.
    pub const TEXT_LEN: usize = 52;

    /// A fresh random WOPID.
    pub fn random() -> Result<Self, cardcash_crypto::CryptoError> {
        cardcash_crypto::random::random_bytes::<32>().map(Self)
    }

    /// Wraps raw bytes (from the database).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Copies from a slice; `None` when it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Wopid {
    type Err = Base32Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        base32::decode_fixed::<32>(s).map(Self)
    }
}

impl fmt::Display for Wopid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(&self.0))
    }
}

impl fmt::Debug for Wopid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wopid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_is_52_chars_and_round_trips() {
        let w = Wopid::random().unwrap();
        let s = w.to_string();
        assert_eq!(s.len(), Wopid::TEXT_LEN);
        assert_eq!(s.parse::<Wopid>().unwrap(), w);
    }

    #[test]
    fn malformed_text_is_refused() {
        let s = Wopid::from_bytes([7; 32]).to_string();
        assert!(s[..51].parse::<Wopid>().is_err());
        assert!(format!("{s}0").parse::<Wopid>().is_err());
        assert!("not-base32!".parse::<Wopid>().is_err());
        assert!("".parse::<Wopid>().is_err());
    }

    #[test]
    fn random_wopids_differ() {
        assert_ne!(Wopid::random().unwrap(), Wopid::random().unwrap());
    }
}
