//! The one error type of the crypto crate.
//!
//! Crypto failures carry no HTTP status or Taler code of their own: the same failure (a bad
//! signature, say) maps to different official codes depending on what was being checked, so each
//! service maps `CryptoError` in its own error enum.

use thiserror::Error;

/// Everything that can go wrong in this crate. Bad input always ends here, never in a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// An EdDSA or RSA signature did not verify.
    #[error("signature is invalid")]
    InvalidSignature,
    /// Bytes that should be a curve point or an RSA public key are not one.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),
    /// Bytes that should be an RSA private key are not one.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// A value had the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    InvalidLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The RSA public key is malicious: a full-domain hash or blinding factor shares a factor
    /// with the modulus (GNUnet `rsa_gcd_validate`).
    #[error("RSA public key is malicious (gcd check failed)")]
    MaliciousRsaKey,
    /// An RSA input (blinded message or signature) is not smaller than the modulus.
    #[error("RSA input is not smaller than the modulus")]
    RsaInputTooLarge,
    /// A key derivation was asked for more output than HKDF can give, or KDF-mod gave up.
    #[error("key derivation failed: {0}")]
    Kdf(&'static str),
    /// The Diffie-Hellman result was the neutral element (small-order peer key).
    #[error("key exchange produced the all-zero secret")]
    WeakKeyExchange,
    /// JSON that cannot be hashed canonically (floats, unsafe integers, bad keys, bad forgettable markers).
    #[error("JSON cannot be canonicalised: {0}")]
    Json(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// OpenSSL reported an error (key generation or a private-key operation).
    #[error("OpenSSL error: {0}")]
    OpenSsl(String),
}

impl From<openssl::error::ErrorStack> for CryptoError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        CryptoError::OpenSsl(e.to_string())
    }
}
