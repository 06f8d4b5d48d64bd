//! Clause-Schnorr blind signatures over Ed25519 (GNUnet `crypto_cs.c`, spec §4.3).
//!
//! Scalars are 32-byte little-endian values; secrets derived by HKDF are clamped like X25519
//! keys ("mapped to the subgroup") and used modulo the group order L. The exchange derives the
//! two nonces `r0, r1 = HKDF(salt = seed, ikm = private key, info = session nonce)`, the wallet
//! blinds with `α, β` from `HKDF(salt = "alphabeta", ikm = blinding seed)`, the exchange picks the
//! clause `b` from `HKDF(salt = "b", ikm = private key, info = nonce)` and signs
//! `s = r_b + c_b·x`, and the wallet unblinds `s + α_b`. The challenge is the full-domain hash
//! `c' = KDF-mod(L, salt = public key, ikm = SHA-512(R' ‖ msg), info = "Curve25519FDH")`.
//!
//! Protocol v23 (GNUnet `crypto_cs.c` / `crypto_blind_sign.c` as the December 2024 exchange links
//! them): the exchange answers `/csr-withdraw` with [`r_public`] under the seed
//! [`R_SEED_WITHDRAW`] (`"rw"`; `/csr-melt` and melts use [`R_SEED_MELT`], `"rm"`), and signs a
//! withdrawn envelope `(nonce, c0, c1)` with [`sign_blinded`] under the same seed, answering
//! `{"cipher":"CS","b":…,"s":…}`. The envelope hash is [`crate::coin::coin_envelope_hash_cs`].
//! The wallet side: [`blinding_secrets`] from its blinding seed, [`blind`] `h_coin_pub`, send `c`,
//! [`unblind_signature`] the answer, [`verify`] it (as the exchange does on deposit).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;

use crate::error::CryptoError;
use crate::hash::Sha512Hasher;
use crate::kdf::{kdf_array, kdf_mod};

/// The group order L = 2^252 + 27742317777372353535851937790883648493, big-endian.
const GROUP_ORDER_BE: [u8; 32] = [
    0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x14, 0xde, 0xf9, 0xde, 0xa2, 0xf7, 0x9c, 0xd6, 0x58, 0x12, 0x63, 0x1a, 0x5c, 0xf5, 0xd3, 0xed,
];

/// One 32-byte value per clause (scalars or compressed points).
pub type ClausePair = [[u8; 32]; 2];

/// The wallet's blinding secrets `(α, β)` per clause.
pub type BlindingSecrets = [([u8; 32], [u8; 32]); 2];

fn clamp(mut b: [u8; 32]) -> [u8; 32] {
    b[0] &= 248;
    b[31] &= 127;
    b[31] |= 64;
    b
}

fn scalar(b: &[u8; 32]) -> Scalar {
    // libsodium's noclamp operations ignore bit 255 and work modulo L.
    let mut b = *b;
    b[31] &= 0x7f;
    Scalar::from_bytes_mod_order(b)
}

fn point(b: &[u8; 32]) -> Result<EdwardsPoint, CryptoError> {
    CompressedEdwardsY(*b)
        .decompress()
        .ok_or(CryptoError::InvalidPublicKey("not an Ed25519 point"))
}

fn split2(b: &[u8; 64]) -> [[u8; 32]; 2] {
    let mut out = [[0u8; 32]; 2];
    out[0].copy_from_slice(&b[..32]);
    out[1].copy_from_slice(&b[32..]);
    out
}

/// Cipher number of CS in `h_denom_pub` (`GNUNET_CRYPTO_BSA_CS`).
pub const CIPHER_CS: u32 = 2;

/// `h_denom_pub = SHA-512(u32be age_mask ‖ u32be 2 ‖ public key)` (spec §4.2).
pub fn h_denom_pub(public: &[u8; 32], age_mask: u32) -> cardcash_util::HashCode {
    let mut h = Sha512Hasher::new();
    h.update(&age_mask.to_be_bytes())
        .update(&CIPHER_CS.to_be_bytes())
        .update(public);
    h.finalize()
}

/// `priv · G`, the public key of a CS private scalar (also `R = r · G`).
pub fn public(private: &[u8; 32]) -> [u8; 32] {
    EdwardsPoint::mul_base(&scalar(private))
        .compress()
        .to_bytes()
}

/// The `r_derive` seed of withdrawals: `/csr-withdraw` and the blind signature of a
/// batch-withdraw (C `TALER_denom_sign_blinded(for_melt = false)`, secmod `for_melt ? "rm" : "rw"`).
pub const R_SEED_WITHDRAW: &str = "rw";

/// The `r_derive` seed of refreshes: `/csr-melt` and the blind signatures of a reveal.
pub const R_SEED_MELT: &str = "rm";

/// The exchange's two secret nonces for a session: `HKDF(salt = seed, ikm = private, info = nonce)`,
/// each clamped. GNUnet's vector uses the withdraw seed `"rw"`.
pub fn r_derive(nonce: &[u8; 32], seed: &str, private: &[u8; 32]) -> ClausePair {
    let out: [u8; 64] = kdf_array(seed.as_bytes(), private, &[nonce]);
    split2(&out).map(clamp)
}

/// The public pair `(R0, R1)` the exchange returns for a session nonce (`/csr-withdraw` with
/// [`R_SEED_WITHDRAW`], `/csr-melt` with [`R_SEED_MELT`]): `r_derive` then `r·G` for each.
pub fn r_public(nonce: &[u8; 32], seed: &str, private: &[u8; 32]) -> ClausePair {
    r_derive(nonce, seed, private).map(|r| public(&r))
}

/// A fresh CS private key: a uniformly random non-zero scalar modulo L, little-endian (what
/// libsodium's `crypto_core_ed25519_scalar_random` gives GNUnet).
pub fn generate_private() -> Result<[u8; 32], CryptoError> {
    loop {
        let mut wide = crate::random::random_bytes::<64>()?;
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        zeroize::Zeroize::zeroize(&mut wide);
        if s != Scalar::ZERO {
            return Ok(s.to_bytes());
        }
    }
}

/// `SHA-512(public)`: the C exchange's `TALER_CsPubHashP` (`TALER_cs_pub_hash`), which the CS
/// security module signs in its key announcement (purpose 1252); not `h_denom_pub`.
pub fn h_cs_pub(public: &[u8; 32]) -> cardcash_util::HashCode {
    crate::hash::sha512(public)
}

/// The wallet's blinding secrets `[(α0, β0), (α1, β1)]` from a blinding seed.
pub fn blinding_secrets(blind_seed: &[u8; 32]) -> BlindingSecrets {
    let out: [u8; 128] = kdf_array(b"alphabeta", blind_seed, &[]);
    let part = |i: usize| {
        let mut b = [0u8; 32];
        b.copy_from_slice(&out[i * 32..(i + 1) * 32]);
        clamp(b)
    };
    [(part(0), part(1)), (part(2), part(3))]
}

fn full_domain_hash(r: &[u8; 32], msg: &[u8], public: &[u8; 32]) -> Result<Scalar, CryptoError> {
    let mut h = Sha512Hasher::new();
    h.update(r).update(msg);
    let prehash = h.finalize();
    let l_be = GROUP_ORDER_BE;
    let c_be = kdf_mod(&l_be, public, prehash.as_bytes(), b"Curve25519FDH")?;
    let mut c_le = [0u8; 32];
    for (dst, src) in c_le.iter_mut().zip(c_be.iter().rev()) {
        *dst = *src;
    }
    Ok(Scalar::from_bytes_mod_order(c_le))
}

/// Blinds `msg` for both clauses: returns `(c0, c1)` (sent to the exchange) and `(R'0, R'1)`.
pub fn blind(
    secrets: &BlindingSecrets,
    r_pub: &ClausePair,
    public: &[u8; 32],
    msg: &[u8],
) -> Result<(ClausePair, ClausePair), CryptoError> {
    let pub_point = point(public)?;
    let mut c = [[0u8; 32]; 2];
    let mut r_blind = [[0u8; 32]; 2];
    for i in 0..2 {
        let (alpha, beta) = (&secrets[i].0, &secrets[i].1);
        let r_dash =
            point(&r_pub[i])? + EdwardsPoint::mul_base(&scalar(alpha)) + pub_point * scalar(beta);
        r_blind[i] = r_dash.compress().to_bytes();
        c[i] = (full_domain_hash(&r_blind[i], msg, public)? + scalar(beta)).to_bytes();
    }
    Ok((c, r_blind))
}

/// The exchange's blind signature: clause `b` and `s = r_b + c_b · priv`.
pub fn sign(
    private: &[u8; 32],
    r: &[[u8; 32]; 2],
    nonce: &[u8; 32],
    c: &[[u8; 32]; 2],
) -> (u32, [u8; 32]) {
    let bits: [u8; 4] = kdf_array(b"b", private, &[nonce]);
    // GNUnet reads the four bytes as a host-order (little-endian) u32 and takes it mod 2.
    let b = u32::from_le_bytes(bits) % 2;
    let i = b as usize;
    let s = scalar(&r[i]) + scalar(&c[i]) * scalar(private);
    (b, s.to_bytes())
}

/// The exchange's side of a CS withdrawal or reveal: derives `r0, r1` from the envelope's
/// session nonce under `seed` ([`R_SEED_WITHDRAW`] or [`R_SEED_MELT`]) and signs the blinded
/// challenges `c = (c0, c1)`. Returns `(b, s)` for the JSON answer `{"cipher":"CS","b":b,"s":s}`.
///
/// Signing the same `(nonce, c)` twice gives the same answer (everything is derived), which is
/// what makes a replayed withdrawal return the same blind signature.
pub fn sign_blinded(
    private: &[u8; 32],
    seed: &str,
    nonce: &[u8; 32],
    c: &[[u8; 32]; 2],
) -> (u32, [u8; 32]) {
    let r = r_derive(nonce, seed, private);
    sign(private, &r, nonce, c)
}

/// Unblinds the exchange's `s` with `α_b`.
pub fn unblind(blind_s: &[u8; 32], alpha: &[u8; 32]) -> [u8; 32] {
    (scalar(blind_s) + scalar(alpha)).to_bytes()
}

/// The wallet's side of an answer `(b, s)`: the signature `(R'_b, s + α_b)` on the message that
/// [`blind`] blinded, with `r_blind` as [`blind`] returned it (GNUnet
/// `GNUNET_CRYPTO_blind_sig_unblind` for CS). `b` must be 0 or 1.
pub fn unblind_signature(
    secrets: &BlindingSecrets,
    r_blind: &ClausePair,
    b: u32,
    blind_s: &[u8; 32],
) -> Result<([u8; 32], [u8; 32]), CryptoError> {
    let i = match b {
        0 => 0,
        1 => 1,
        _ => return Err(CryptoError::InvalidSignature),
    };
    Ok((r_blind[i], unblind(blind_s, &secrets[i].0)))
}

/// Verifies a signature `(R, s)` on `msg`: `s·G == R + H(R, msg)·pub`.
pub fn verify(
    public: &[u8; 32],
    r: &[u8; 32],
    s: &[u8; 32],
    msg: &[u8],
) -> Result<(), CryptoError> {
    let c = full_domain_hash(r, msg, public)?;
    let lhs = EdwardsPoint::mul_base(&scalar(s));
    let rhs = point(r)? + point(public)? * c;
    if lhs == rhs {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h_denom_pub_covers_mask_cipher_and_key() {
        let key = [9u8; 32];
        let mut expected = vec![0, 0, 0, 5, 0, 0, 0, 2];
        expected.extend_from_slice(&key);
        assert_eq!(h_denom_pub(&key, 5), crate::hash::sha512(&expected));
    }

    #[test]
    fn group_order_constant_is_l() {
        // L ≡ 0 (mod L): reducing its little-endian bytes gives zero, and L − 1 stays as it is.
        let mut le = GROUP_ORDER_BE;
        le.reverse();
        assert_eq!(Scalar::from_bytes_mod_order(le), Scalar::ZERO);
        le[0] -= 1;
        assert_eq!(Scalar::from_bytes_mod_order(le).to_bytes(), le);
    }
}
