//! Wire transfer subjects that carry Taler metadata.
//!
//! An incoming transfer to an exchange is a reserve top-up when its subject contains the reserve
//! public key (52 Crockford base32 characters = 32 bytes); an outgoing exchange transfer's subject
//! is `"{wtid} {exchange_base_url}"`. Facts from libeufin `common/.../TxMedatada.kt` (the first
//! run of 52 alphanumerics is the key); our rule is a little stricter: the key must be a whole
//! word (delimited by non-alphanumerics) and must decode to 32 bytes. Pure, no IO.

use cardcash_util::{EddsaPublicKey, ShortHashCode};

/// Length of a 32-byte value in Crockford base32.
const KEY_CHARS: usize = 52;

/// Why a subject carries no usable reserve public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("the subject contains no reserve public key (52 base32 characters)")]
    MissingReservePub,
}

/// Extracts the reserve public key from an incoming transfer's subject.
pub fn parse_reserve_pub(subject: &str) -> Result<EddsaPublicKey, SubjectError> {
    subject
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() == KEY_CHARS)
        .find_map(|word| word.parse::<EddsaPublicKey>().ok())
        .ok_or(SubjectError::MissingReservePub)
}

/// The subject of an incoming transfer created by `admin/add-incoming`.
pub fn incoming_subject(reserve_pub: &EddsaPublicKey) -> String {
    reserve_pub.to_string()
}

/// The subject of an outgoing exchange transfer (what merchants see on their statement).
pub fn outgoing_subject(wtid: &ShortHashCode, exchange_base_url: &str) -> String {
    format!("{wtid} {exchange_base_url}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (EddsaPublicKey, String) {
        let key = EddsaPublicKey::from_bytes([0x5a; 32]);
        let text = key.to_string();
        assert_eq!(text.len(), KEY_CHARS);
        (key, text)
    }

    #[test]
    fn finds_key_anywhere_in_subject() {
        let (key, text) = key();
        assert_eq!(parse_reserve_pub(&text), Ok(key));
        assert_eq!(parse_reserve_pub(&format!("Taler top-up {text}.")), Ok(key));
        assert_eq!(parse_reserve_pub(&format!("{text}\nthanks")), Ok(key));
    }

    #[test]
    fn rejects_missing_or_malformed_key() {
        let (_, text) = key();
        let key = text.as_str();
        assert_eq!(
            parse_reserve_pub("rent for May"),
            Err(SubjectError::MissingReservePub)
        );
        // One character short, and one too long (a longer word is not a key).
        assert!(parse_reserve_pub(&key[1..]).is_err());
        assert!(parse_reserve_pub(&format!("{key}A")).is_err());
    }

    #[test]
    fn round_trip_incoming_subject() {
        let (key, _) = key();
        assert_eq!(parse_reserve_pub(&incoming_subject(&key)), Ok(key));
    }
}
