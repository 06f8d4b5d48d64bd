//! Edx25519 key derivation (GNUnet `crypto_edx25519.c`), the key scheme under Taler's age
//! restriction: a private key is a 32-byte scalar `a` plus 32 bytes `b` for nonce derivation,
//! and keys can be derived further from a seed by both the private and the public side.
//!
//! - `hc = HKDF(salt = seed, ikm = public key, info = "edx25519-derivation", 64)`, `h = hc mod L`
//!   (GNUnet 0.19 and wallet-core 2022; later GNUnet swapped salt and info);
//! - private: `a' = a · h mod L`, `b' = SHA-512(b ‖ hc)[0..32]`;
//! - public: `P' = h · P`.
//!
//! GNUnet computes `a'` as `(a / 8) · h · 8`; for a clamped `a` (a multiple of 8, as every
//! generated key is) that equals `a · h`. Deriving again from a derived key is where the
//! implementations disagree among themselves, so only first-level derivation is pinned.
//!
//! Age restriction itself is deferred (spec §10); this module exists so the derivation is proven
//! against GNUnet's vector and ready when it is needed.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;
use crate::hash::Sha512Hasher;
use crate::kdf::kdf_array;

const DERIVATION_INFO: &[u8] = b"edx25519-derivation";

/// An Edx25519 private key (`a ‖ b`, 64 bytes). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Edx25519PrivateKey {
    a: [u8; 32],
    b: [u8; 32],
}

impl Edx25519PrivateKey {
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        a.copy_from_slice(&bytes[..32]);
        b.copy_from_slice(&bytes[32..]);
        Self { a, b }
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.a);
        out[32..].copy_from_slice(&self.b);
        out
    }

    fn scalar(&self) -> Scalar {
        // libsodium's `noclamp` base multiplication ignores bit 255; the point only depends on
        // the scalar modulo the group order.
        let mut a = self.a;
        a[31] &= 0x7f;
        Scalar::from_bytes_mod_order(a)
    }

    /// `a · G`.
    pub fn public(&self) -> [u8; 32] {
        EdwardsPoint::mul_base(&self.scalar()).compress().to_bytes()
    }

    /// The private key derived with `seed`.
    pub fn derive(&self, seed: &[u8]) -> Self {
        let hc = derivation_hash(&self.public(), seed);
        let h = Scalar::from_bytes_mod_order_wide(&hc);
        let a = (self.scalar() * h).to_bytes();
        let mut hasher = Sha512Hasher::new();
        hasher.update(&self.b).update(&hc);
        let full = hasher.finalize();
        let mut b = [0u8; 32];
        b.copy_from_slice(&full.as_bytes()[..32]);
        Self { a, b }
    }
}

impl std::fmt::Debug for Edx25519PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Edx25519PrivateKey(<redacted>)")
    }
}

fn derivation_hash(public: &[u8; 32], seed: &[u8]) -> [u8; 64] {
    kdf_array(seed, public, &[DERIVATION_INFO])
}

/// The public key derived with `seed` from `public` (matches [`Edx25519PrivateKey::derive`]).
pub fn derive_public(public: &[u8; 32], seed: &[u8]) -> Result<[u8; 32], CryptoError> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or(CryptoError::InvalidPublicKey("not an Ed25519 point"))?;
    let h = Scalar::from_bytes_mod_order_wide(&derivation_hash(public, seed));
    Ok((point * h).compress().to_bytes())
}
