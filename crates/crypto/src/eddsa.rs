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

/// Whether `bytes` encode a field element `y < p` (the sign bit aside). Together with the
/// small-order check of the strict verification this is libsodium's `ge25519_is_canonical`: the
/// only other non-canonical encodings, `x = 0` with the sign bit set, are small-order points.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    // p = 2^255 − 19 = ed ff … ff 7f (little-endian).
    let top_all_ones = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff);
    !(top_all_ones && bytes[0] >= 0xed)
}

fn verifying_key(public: &EddsaPublicKey) -> Result<VerifyingKey, CryptoError> {
    if !is_canonical_y(public.as_bytes()) {
        return Err(CryptoError::InvalidPublicKey(
            "not a canonical Ed25519 encoding",
        ));
    }
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
/// What libsodium's `crypto_sign_verify_detached` (and so GNUnet) accepts: canonical `S`, a
/// canonically encoded key that is not of small order, an `R` that is not of small order and
/// equals `[S]B − [h]A` byte for byte (so it is canonical too). Honest signers always pass.
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

/// Which item of a batch failed verification first, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature {index} of the batch: {error}")]
pub struct BatchError {
    /// Position of the failed item in the batch.
    pub index: usize,
    /// What [`verify_raw`] said about it.
    pub error: CryptoError,
}

impl From<BatchError> for CryptoError {
    fn from(e: BatchError) -> Self {
        e.error
    }
}

/// Verifies many signatures: accepts exactly when [`verify_raw`] accepts every item, and
/// otherwise names the first item it refuses.
///
/// Each item is `(public key, signature, complete signed bytes)`. This is deliberately a loop
/// of single strict verifications, not ed25519-dalek's batch equation: that equation is weaker.
/// It accepts a small-order key with `R` = identity and `S` = 0 for any message, and even after
/// refusing small-order and non-canonical points up front it accepts some signatures under keys
/// or `R` with a torsion component that the single check refuses (its coefficients are derived
/// from the inputs, so the signer can grind for ones that cancel the torsion). Telling those
/// apart costs a scalar multiplication per item, as much as the batch saves (release build on
/// the project machine: 37 µs single, 15 µs per signature in dalek's batch of 64, 23 µs per
/// torsion check), so a batch that agrees with libsodium and GNUnet on every input is no faster
/// than this loop.
pub fn verify_batch(items: &[(&EddsaPublicKey, &EddsaSignature, &[u8])]) -> Result<(), BatchError> {
    for (index, (public, signature, bytes)) in items.iter().enumerate() {
        verify_raw(public, signature, bytes).map_err(|error| BatchError { index, error })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    use super::*;

    type Item<'a> = (&'a EddsaPublicKey, &'a EddsaSignature, &'a [u8]);

    /// ed25519-dalek's batch equation on its own (what `verify_batch` used to be).
    fn dalek_batch_accepts(items: &[Item<'_>]) -> bool {
        let keys: Vec<VerifyingKey> = items
            .iter()
            .map(|(p, _, _)| VerifyingKey::from_bytes(p.as_bytes()).expect("a point"))
            .collect();
        let sigs: Vec<Signature> = items
            .iter()
            .map(|(_, s, _)| Signature::from_bytes(s.as_bytes()))
            .collect();
        let msgs: Vec<&[u8]> = items.iter().map(|(_, _, m)| *m).collect();
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
    }

    fn honest_items() -> Vec<(EddsaPublicKey, EddsaSignature, Vec<u8>)> {
        (0..4u8)
            .map(|i| {
                let key = EddsaPrivateKey::from_bytes(&[i + 1; 32]);
                let msg = vec![i; 40];
                (key.public(), key.sign_raw(&msg), msg)
            })
            .collect()
    }

    /// Issue 6 §10: a small-order public key with R = identity and S = 0 "signs" every message
    /// for the batch equation; libsodium, GNUnet and our single check refuse it.
    #[test]
    fn small_order_key_with_identity_r_and_zero_s_is_refused_in_a_batch() {
        let identity = EdwardsPoint::default().compress().to_bytes();
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity); // R = identity, S = 0
        let forged = EddsaSignature::from_bytes(forged);
        let identity_key = EddsaPublicKey::from_bytes(identity);
        for msg in [&b""[..], b"any message", b"pay 1000 KUDOS"] {
            assert!(dalek_batch_accepts(&[(&identity_key, &forged, msg)]));
            assert_eq!(
                verify_raw(&identity_key, &forged, msg),
                Err(CryptoError::InvalidSignature)
            );
            assert_eq!(
                verify_batch(&[(&identity_key, &forged, msg)]),
                Err(BatchError {
                    index: 0,
                    error: CryptoError::InvalidSignature
                })
            );
        }
        // Every small-order key, hidden among honest signatures: refused and located.
        let honest = honest_items();
        for torsion in EIGHT_TORSION {
            let key = EddsaPublicKey::from_bytes(torsion.compress().to_bytes());
            let mut items: Vec<Item<'_>> = honest
                .iter()
                .map(|(k, s, m)| (k, s, m.as_slice()))
                .collect();
            items.insert(2, (&key, &forged, b"pay 1000 KUDOS"));
            assert_eq!(
                verify_batch(&items).map_err(|e| e.index),
                Err(2),
                "{torsion:?}"
            );
        }
    }

    /// Refusing small-order and non-canonical points up front is not enough: a key with a
    /// torsion component (A = aB + T) lets its owner make signatures that the single check
    /// refuses but the batch equation, whose coefficients the signer can grind, accepts.
    #[test]
    fn mixed_order_key_gets_the_single_verdict_in_a_batch() {
        let a = Scalar::from_bytes_mod_order([7; 32]);
        let r = Scalar::from_bytes_mod_order([9; 32]);
        let order_two = EIGHT_TORSION[4];
        assert!(order_two.is_small_order() && order_two != EdwardsPoint::default());
        let a_bytes = (EdwardsPoint::mul_base(&a) + order_two)
            .compress()
            .to_bytes();
        let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let key = EddsaPublicKey::from_bytes(a_bytes);
        let mut slipped_through_dalek = 0;
        for k in 0..64 {
            let msg = format!("deposit {k}");
            let h = Scalar::from_bytes_mod_order_wide(
                &Sha512::new()
                    .chain_update(r_bytes)
                    .chain_update(a_bytes)
                    .chain_update(&msg)
                    .finalize()
                    .into(),
            );
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice((r + h * a).as_bytes());
            let sig = EddsaSignature::from_bytes(sig);
            let item = (&key, &sig, msg.as_bytes());
            let single = verify_raw(&key, &sig, msg.as_bytes()).is_ok();
            assert_eq!(verify_batch(&[item]).is_ok(), single, "{msg}");
            if dalek_batch_accepts(&[item]) && !single {
                slipped_through_dalek += 1;
            }
        }
        // About a quarter of the messages (h odd, coefficient even); the inputs are fixed.
        assert!(slipped_through_dalek > 0);
    }

    #[test]
    fn valid_batch_passes_and_the_bad_signature_is_found() {
        let honest = honest_items();
        let items: Vec<Item<'_>> = honest
            .iter()
            .map(|(k, s, m)| (k, s, m.as_slice()))
            .collect();
        assert_eq!(verify_batch(&items), Ok(()));
        assert_eq!(verify_batch(&[]), Ok(()));
        let mut bad = items.clone();
        bad[3].2 = b"another message";
        assert_eq!(
            verify_batch(&bad),
            Err(BatchError {
                index: 3,
                error: CryptoError::InvalidSignature
            })
        );
        assert_eq!(
            CryptoError::from(verify_batch(&bad).expect_err("bad")),
            CryptoError::InvalidSignature
        );
    }

    /// libsodium refuses key encodings with y ≥ p (`ge25519_is_canonical`); ed25519-dalek
    /// reduces them silently.
    #[test]
    fn non_canonical_key_encodings_are_refused_like_libsodium() {
        let sig = EddsaSignature::from_bytes([0; 64]);
        let mut refused = 0;
        for k in 0..=18u8 {
            let mut y = [0xff; 32]; // p + k, little-endian
            y[31] = 0x7f;
            y[0] = 0xed + k;
            assert!(!is_canonical_y(&y));
            let Some(point) = CompressedEdwardsY(y).decompress() else {
                continue;
            };
            let key = EddsaPublicKey::from_bytes(y);
            assert!(matches!(
                verify_raw(&key, &sig, b"m"),
                Err(CryptoError::InvalidPublicKey(_))
            ));
            let canonical = point.compress().to_bytes();
            assert!(is_canonical_y(&canonical));
            if !point.is_small_order() {
                refused += 1;
                let canonical = EddsaPublicKey::from_bytes(canonical);
                assert_eq!(
                    verify_raw(&canonical, &sig, b"m"),
                    Err(CryptoError::InvalidSignature)
                );
            }
        }
        assert!(refused > 0);
        let mut p_minus_one = [0xff; 32];
        p_minus_one[31] = 0x7f;
        p_minus_one[0] = 0xec;
        assert!(is_canonical_y(&p_minus_one));
        p_minus_one[31] = 0xff; // the sign bit does not count
        assert!(is_canonical_y(&p_minus_one));
    }
}
