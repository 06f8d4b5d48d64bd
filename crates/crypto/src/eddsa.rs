//! Ed25519 signatures over GNUnet purpose envelopes (spec §3).
//!
//! Taler's EdDSA is plain RFC 8032 Ed25519; the private key is the 32-byte seed. Every signed
//! message is `u32be size ‖ u32be purpose ‖ body` (see [`crate::purpose`]).

use cardcash_util::{EddsaPublicKey, EddsaSignature};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::ZeroizeOnDrop;

use crate::error::CryptoError;
use crate::purpose::SignedMessage;

/// An Ed25519 private key (the 32-byte seed). Zeroized on drop; `Debug` never prints it.
#[derive(Clone, ZeroizeOnDrop)]
pub struct EddsaPrivateKey {
    key: SigningKey,
}

impl EddsaPrivateKey {
    /// The key for a 32-byte seed (libsodium `crypto_sign_seed_keypair`).
    pub fn from_bytes(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The key for a seed of unchecked length.
    pub fn from_slice(seed: &[u8]) -> Result<Self, CryptoError> {
        let seed: &[u8; 32] = seed.try_into().map_err(|_| CryptoError::InvalidLength {
            what: "EdDSA private key",
            expected: 32,
            got: seed.len(),
        })?;
        Ok(Self::from_bytes(seed))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = crate::random::random_bytes::<32>()?;
        let key = Self::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(key)
    }

    /// The seed, for storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public(&self) -> EddsaPublicKey {
        EddsaPublicKey::from_bytes(self.key.verifying_key().to_bytes())
    }

    /// Signs `size ‖ purpose ‖ body` of `message`.
    pub fn sign(&self, message: &impl SignedMessage) -> EddsaSignature {
        self.sign_raw(&message.to_bytes())
    }

    /// Signs raw bytes (a complete purpose envelope, or a GNUnet test vector's `data`).
    pub fn sign_raw(&self, bytes: &[u8]) -> EddsaSignature {
        EddsaSignature::from_bytes(self.key.sign(bytes).to_bytes())
    }

    /// The clamped X25519 scalar `SHA-512(seed)[0..32]` used for ECDH (GNUnet `ecdh_eddsa`).
    pub(crate) fn ecdh_scalar_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&crate::hash::sha512_raw(self.key.as_bytes())[..32]);
        out
    }
}

impl std::fmt::Debug for EddsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EddsaPrivateKey(<redacted>)")
    }
}

fn verifying_key(public: &EddsaPublicKey) -> Result<VerifyingKey, CryptoError> {
    VerifyingKey::from_bytes(public.as_bytes())
        .map_err(|_| CryptoError::InvalidPublicKey("not an Ed25519 point"))
}

/// Verifies `signature` by `public` over `message`'s purpose envelope.
pub fn verify(
    public: &EddsaPublicKey,
    signature: &EddsaSignature,
    message: &impl SignedMessage,
) -> Result<(), CryptoError> {
    verify_raw(public, signature, &message.to_bytes())
}

/// Verifies a signature over raw bytes.
///
/// Uses the strict check (canonical `S`, no small-order keys or `R`), which is what libsodium's
/// `crypto_sign_verify_detached` enforces too; honest signers always pass it.
pub fn verify_raw(
    public: &EddsaPublicKey,
    signature: &EddsaSignature,
    bytes: &[u8],
) -> Result<(), CryptoError> {
    let key = verifying_key(public)?;
    let sig = Signature::from_bytes(signature.as_bytes());
    key.verify_strict(bytes, &sig)
        .map_err(|_| CryptoError::InvalidSignature)
}

/// Verifies many signatures at once (about twice as fast per signature for large batches).
///
/// Each item is `(public key, signature, complete signed bytes)`. The batch fails as a whole;
/// callers that need to know which signature was bad fall back to [`verify_raw`] one by one.
pub fn verify_batch(
    items: &[(&EddsaPublicKey, &EddsaSignature, &[u8])],
) -> Result<(), CryptoError> {
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    for (public, signature, bytes) in items {
        keys.push(verifying_key(public)?);
        sigs.push(Signature::from_bytes(signature.as_bytes()));
        msgs.push(*bytes);
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| CryptoError::InvalidSignature)
}
