//! Crockford base32 as GNU Taler uses it for every binary value in JSON and URLs.
//!
//! Spec: taler-protocol.md §1.1. The alphabet is `0-9A-Z` without `I L O U`, read MSB-first in
//! 5-bit groups, no padding. Decoding is lenient about letters (case-insensitive, `O`→`0`,
//! `I`/`L`→`1`, `U`→`V`) and ignores leftover padding bits, like the wallet and GNUnet decoders.
//! Fixed-size values are strict about the encoded length. No IO.

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};

/// Why a base32 string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// A character outside the (lenient) Crockford alphabet.
    #[error("invalid base32 character at position {position}")]
    InvalidSymbol {
        /// Byte offset of the offending character.
        position: usize,
    },
    /// The length cannot be the encoding of any byte string (e.g. 1, 3 or 6 characters mod 8).
    #[error("invalid base32 length {len}")]
    InvalidLength {
        /// Length of the input in characters.
        len: usize,
    },
    /// The input decodes to a different number of bytes than the fixed-size type needs.
    #[error(
        "expected {expected} bytes ({expected_chars} base32 characters), got {actual_chars} characters"
    )]
    WrongSize {
        /// Number of bytes the type holds.
        expected: usize,
        /// Number of characters the canonical encoding has.
        expected_chars: usize,
        /// Number of characters received.
        actual_chars: usize,
    },
}

static CROCKFORD: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    spec.translate
        .from
        .push_str("abcdefghjkmnpqrstvwxyzOoIiLlUu");
    spec.translate.to.push_str("ABCDEFGHJKMNPQRSTVWXYZ001111VV");
    spec.check_trailing_bits = false;
    #[expect(
        clippy::expect_used,
        reason = "the specification is a compile-time constant; a unit test builds it"
    )]
    spec.encoding()
        .expect("valid Crockford base32 specification")
});

/// Number of base32 characters for `n` bytes: `ceil(8n / 5)`.
pub const fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

/// Encodes bytes as uppercase Crockford base32 without padding.
pub fn encode(bytes: &[u8]) -> String {
    CROCKFORD.encode(bytes)
}

/// Decodes Crockford base32 leniently (case, `O`/`I`/`L`/`U`, padding bits); the empty string
/// decodes to no bytes.
pub fn decode(s: &str) -> Result<Vec<u8>, Base32Error> {
    CROCKFORD.decode(s.as_bytes()).map_err(|e| match e.kind {
        data_encoding::DecodeKind::Length => Base32Error::InvalidLength { len: s.len() },
        _ => Base32Error::InvalidSymbol {
            position: e.position,
        },
    })
}

/// Decodes exactly `N` bytes; the input must have the canonical length `ceil(8N/5)`.
pub fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], Base32Error> {
    let expected_chars = encoded_len(N);
    let wrong_size = Base32Error::WrongSize {
        expected: N,
        expected_chars,
        actual_chars: s.len(),
    };
    if s.len() != expected_chars {
        return Err(wrong_size);
    }
    let bytes = decode(s)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| wrong_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"Hello, World"), "91JPRV3F5GG5EVVJDHJ0");
        assert_eq!(encode(&[0xff]), "ZW");
        assert_eq!(encode(&[0u8; 32]).len(), 52);
        assert_eq!(encode(&[0u8; 64]).len(), 103);
        assert_eq!(encode(&[0u8; 16]).len(), 26);
        assert_eq!(decode("91JPRV3F5GG5EVVJDHJ0").unwrap(), b"Hello, World");
    }

    /// Values produced by the wallet's own encoder (`/work/shared/vectors`, `outputs.crockford`).
    #[test]
    fn wallet_core_vectors() {
        assert_eq!(encode(b"Hello, GNU Taler"), "91JPRV3F5GG4EKJN41A62V35E8");
        assert_eq!(
            decode("91JPRV3F5GG4EKJN41A62V35E8").unwrap(),
            b"Hello, GNU Taler"
        );
        let expected = [0x00, 0x02, 0x10, 0x87, 0x7b];
        assert_eq!(decode("001111VV").unwrap(), expected);
        assert_eq!(decode("0oIiLlUu").unwrap(), expected);
        assert_eq!(encode(&expected), "001111VV");
    }

    #[test]
    fn lenient_letters_and_trailing_bits() {
        assert_eq!(decode("91jprv3f5gg5evvjdhj0").unwrap(), b"Hello, World");
        assert_eq!(decode("oO").unwrap(), decode("00").unwrap());
        assert_eq!(decode("1i").unwrap(), decode("11").unwrap());
        assert_eq!(decode("Ll").unwrap(), decode("11").unwrap());
        assert_eq!(decode("Uu").unwrap(), decode("VV").unwrap());
        // "ZZ" has non-zero padding bits; Taler decoders drop them.
        assert_eq!(decode("ZZ").unwrap(), vec![0xff]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            decode("0!"),
            Err(Base32Error::InvalidSymbol { position: 1 })
        ));
        assert!(matches!(
            decode("="),
            Err(Base32Error::InvalidLength { .. }) | Err(Base32Error::InvalidSymbol { .. })
        ));
        assert!(matches!(
            decode("0"),
            Err(Base32Error::InvalidLength { len: 1 })
        ));
        assert!(decode("é").is_err());
        assert!(matches!(
            decode_fixed::<32>(&encode(&[1u8; 31])),
            Err(Base32Error::WrongSize {
                expected: 32,
                expected_chars: 52,
                actual_chars: 50
            })
        ));
        assert_eq!(decode_fixed::<32>(&encode(&[7u8; 32])).unwrap(), [7u8; 32]);
    }
}
