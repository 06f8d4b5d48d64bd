//! Wire-related hashes (spec §2.2). C strings are hashed with their terminating NUL.

use cardcash_util::{HashCode, ShortHashCode, WireSalt};

use crate::hash::{Sha512Hasher, sha512_short};
use crate::kdf::kdf_array;

fn with_nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// The merchant's salted wire hash: `HKDF(salt = wire_salt, ikm = payto ‖ 0x00,
/// info = "merchant-wire-signature", 64)`.
pub fn h_wire(payto: &str, salt: &WireSalt) -> HashCode {
    HashCode::from_bytes(kdf_array(
        salt.as_bytes(),
        &with_nul(payto),
        &[b"merchant-wire-signature"],
    ))
}

/// The exchange's account hash: `SHA-512(payto ‖ 0x00)[0..32]`.
pub fn h_payto(payto: &str) -> ShortHashCode {
    sha512_short(&with_nul(payto))
}

/// The wire-method hash of wire fees: `SHA-512(method ‖ 0x00)`, e.g. `"iban"`.
pub fn h_wire_method(method: &str) -> HashCode {
    hash_c_string(method)
}

/// `SHA-512(s ‖ 0x00)`, e.g. the v23 conversion-URL hash or an exchange base URL hash.
pub fn hash_c_string(s: &str) -> HashCode {
    let mut h = Sha512Hasher::new();
    h.update(s.as_bytes()).update(&[0]);
    h.finalize()
}
