//! Password and secret hashing: argon2id, stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane (the OWASP minimum for argon2id and the
//! argon2 crate's defaults, so hashes stored by earlier versions of the bank and C2EC verify
//! unchanged). A PHC string carries its own parameters, so raising them later affects only new
//! hashes. The salt is 16 bytes from the operating system's generator.
//!
//! These functions are deliberately slow (tens of milliseconds) and synchronous: callers run
//! them on a blocking thread with a bound on how many run at once (`cardcash_http::credential`),
//! never on the async executor. This is the only module that touches argon2.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::CryptoError;
use crate::random::random_bytes;

/// Memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes.
pub const T_COST: u32 = 2;
/// Degree of parallelism.
pub const P_COST: u32 = 1;

/// Salt length in bytes.
const SALT_LEN: usize = 16;

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|_| CryptoError::Kdf("invalid argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `secret` with a fresh salt into a PHC string. Slow by design; run off the executor.
pub fn hash(secret: &[u8]) -> Result<String, CryptoError> {
    let salt = random_bytes::<SALT_LEN>()?;
    hasher()?
        .hash_password_with_salt(secret, &salt)
        .map(|phc| phc.to_string())
        .map_err(|_| CryptoError::Kdf("argon2id hashing failed"))
}

/// Whether `secret` matches the PHC string `phc`, with the parameters stored in it (compared in
/// constant time by argon2). A malformed PHC string never matches. Slow by design.
pub fn verify(secret: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Only argon2 PHC strings: any other algorithm is refused by the verifier itself.
    Argon2::default().verify_password(secret, &parsed).is_ok()
}

/// A PHC string of a secret nobody knows, with the current parameters. Verifying a presented
/// secret against it costs exactly what a real verification costs, so an unknown user name is
/// not faster to reject than a wrong password (no enumeration by timing). Computed once.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // 32 random bytes: no password can be known to match.
        let secret = random_bytes::<32>().unwrap_or([0x5a; 32]);
        // With valid constant parameters hashing cannot fail; if it ever did, a well-formed
        // string with the same parameters keeps the cost of `verify` equal (it never matches).
        hash(&secret).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(b"correct horse", &phc));
        assert!(!verify(b"correct horsf", &phc));
        assert!(!verify(b"", &phc));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash(b"pw").unwrap(), hash(b"pw").unwrap());
    }

    #[test]
    fn malformed_hash_never_verifies() {
        assert!(!verify(b"pw", "not a phc"));
        assert!(!verify(b"pw", ""));
        assert!(!verify(b"pw", "$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    /// A hash made the way the bank and C2EC made them before (`Argon2::default()`, same PHC
    /// format) still verifies.
    #[test]
    fn verifies_hashes_stored_before() {
        let stored = Argon2::default()
            .hash_password_with_salt(b"s3cret", b"saltsaltsaltsalt")
            .unwrap()
            .to_string();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(b"s3cret", &stored));
        assert!(!verify(b"s3cret ", &stored));
    }

    #[test]
    fn dummy_hash_has_the_same_parameters_and_matches_nothing() {
        let dummy = dummy_hash();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        assert!(PasswordHash::new(dummy).is_ok());
        assert!(!verify(b"", dummy));
        assert!(!verify(b"dummy", dummy));
        assert_eq!(dummy_hash(), dummy, "computed once");
    }
}
