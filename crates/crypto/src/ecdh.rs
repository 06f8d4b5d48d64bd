//! Elliptic-curve Diffie-Hellman as GNUnet does it (spec §3, used by refresh).
//!
//! ECDHE keys are X25519 scalars. Both mixed directions give `SHA-512(X25519 shared point)`:
//! ECDHE-private × EdDSA-public converts the Ed25519 point to Montgomery form; EdDSA-private ×
//! ECDHE-public uses the clamped `SHA-512(seed)[0..32]` as the scalar. An all-zero shared point
//! (a small-order peer key) is rejected.

use cardcash_util::{EcdhePublicKey, EddsaPublicKey, HashCode};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::eddsa::EddsaPrivateKey;
use crate::error::CryptoError;
use crate::hash::sha512;

/// An X25519 private key (32 bytes, clamped when used). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EcdhePrivateKey([u8; 32]);

impl EcdhePrivateKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(crate::random::random_bytes::<32>()?))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// X25519 base-point multiplication.
    pub fn public(&self) -> EcdhePublicKey {
        EcdhePublicKey::from_bytes(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
}

impl std::fmt::Debug for EcdhePrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EcdhePrivateKey(<redacted>)")
    }
}

fn hash_shared(point: MontgomeryPoint) -> Result<HashCode, CryptoError> {
    let bytes = point.to_bytes();
    if bytes == [0u8; 32] {
        return Err(CryptoError::WeakKeyExchange);
    }
    Ok(sha512(&bytes))
}

/// ECDHE × ECDHE (`GNUNET_CRYPTO_ecc_ecdh`).
pub fn ecdh(private: &EcdhePrivateKey, public: &EcdhePublicKey) -> Result<HashCode, CryptoError> {
    hash_shared(MontgomeryPoint(*public.as_bytes()).mul_clamped(private.0))
}

/// ECDHE-private × EdDSA-public (`GNUNET_CRYPTO_ecdh_eddsa`).
pub fn ecdh_ecdhe_eddsa(
    private: &EcdhePrivateKey,
    public: &EddsaPublicKey,
) -> Result<HashCode, CryptoError> {
    let point = CompressedEdwardsY(*public.as_bytes())
        .decompress()
        .ok_or(CryptoError::InvalidPublicKey("not an Ed25519 point"))?;
    hash_shared(point.to_montgomery().mul_clamped(private.0))
}

/// EdDSA-private × ECDHE-public (`GNUNET_CRYPTO_eddsa_ecdh`).
pub fn ecdh_eddsa_ecdhe(
    private: &EddsaPrivateKey,
    public: &EcdhePublicKey,
) -> Result<HashCode, CryptoError> {
    let mut scalar = private.ecdh_scalar_bytes();
    let shared = MontgomeryPoint(*public.as_bytes()).mul_clamped(scalar);
    scalar.zeroize();
    hash_shared(shared)
}
