//! HMAC-SHA512 for request authentication outside Taler proper (the card processor's
//! Wallee-style MAC). Kept here so that this crate stays the only one touching primitives.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;

fn keyed(key: &[u8], message: &[u8]) -> Hmac<Sha512> {
    // HMAC accepts keys of any length (longer ones are hashed first), so this cannot fail.
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac
}

/// `HMAC-SHA512(key, message)`.
pub fn hmac_sha512(key: &[u8], message: &[u8]) -> [u8; 64] {
    keyed(key, message).finalize().into_bytes().into()
}

/// Whether `tag` is `HMAC-SHA512(key, message)`, compared in constant time.
pub fn hmac_sha512_verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    keyed(key, message).verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe").
    #[test]
    fn rfc4231_known_answer() {
        let tag = hmac_sha512(b"Jefe", b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        assert!(hmac_sha512_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
        let mut bad = tag;
        bad[63] ^= 1;
        assert!(!hmac_sha512_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &bad
        ));
        assert!(!hmac_sha512_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag[..32]
        ));
    }
}
