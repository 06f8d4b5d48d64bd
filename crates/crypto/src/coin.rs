//! Coin hashes and withdraw planchets (spec §5).

use cardcash_util::{EddsaPublicKey, HashCode};

use crate::hash::{Sha512Hasher, sha512};
use crate::rsa::CIPHER_RSA;

/// `h_coin_pub = SHA-512(coin_pub)`, the message the denomination key blindly signs.
pub fn h_coin_pub(coin_pub: &EddsaPublicKey) -> HashCode {
    sha512(coin_pub.as_bytes())
}

/// `SHA-512(coin_pub ‖ h_age_commitment)` for age-restricted coins.
pub fn h_coin_pub_with_age(coin_pub: &EddsaPublicKey, h_age_commitment: &[u8; 32]) -> HashCode {
    let mut h = Sha512Hasher::new();
    h.update(coin_pub.as_bytes()).update(h_age_commitment);
    h.finalize()
}

/// `h_coin_envelope = SHA-512(h_denom_pub ‖ u32be(1) ‖ blinded_planchet)` for an RSA envelope
/// (v12 to v23 alike; the blinded planchet is the minimal big-endian `rsa_blinded_planchet`).
///
/// Hash the envelope bytes exactly as received: they are never re-serialised.
pub fn coin_envelope_hash(h_denom_pub: &HashCode, rsa_blinded_planchet: &[u8]) -> HashCode {
    let mut h = Sha512Hasher::new();
    h.update(h_denom_pub.as_bytes())
        .update(&CIPHER_RSA.to_be_bytes())
        .update(rsa_blinded_planchet);
    h.finalize()
}

/// `h_coin_envelope = SHA-512(h_denom_pub ‖ u32be(2) ‖ c0 ‖ c1 ‖ nonce)` for a Clause-Schnorr
/// envelope (C `TALER_coin_ev_hash` → `TALER_blinded_planchet_hash_`, which hashes GNUnet's
/// `struct GNUNET_CRYPTO_CsBlindedMessage { c[2]; nonce; }` as laid out: the two blinded
/// challenges first, then the session nonce). JSON: `cs_blinded_c0`, `cs_blinded_c1`, `cs_nonce`.
pub fn coin_envelope_hash_cs(
    h_denom_pub: &HashCode,
    nonce: &[u8; 32],
    blinded_c: &crate::cs::ClausePair,
) -> HashCode {
    let mut h = Sha512Hasher::new();
    h.update(h_denom_pub.as_bytes())
        .update(&crate::cs::CIPHER_CS.to_be_bytes())
        .update(&blinded_c[0])
        .update(&blinded_c[1])
        .update(nonce);
    h.finalize()
}

/// SHA-512 over the 64-byte coin signatures of a batch deposit in request order: the
/// `h_coin_sigs` of the v23 deposit confirmation (1033, C
/// `TALER_exchange_online_deposit_confirmation_sign`).
pub fn h_coin_sigs<'a>(
    coin_sigs: impl IntoIterator<Item = &'a cardcash_util::EddsaSignature>,
) -> HashCode {
    let mut h = Sha512Hasher::new();
    for sig in coin_sigs {
        h.update(sig.as_bytes());
    }
    h.finalize()
}

/// Deterministic coin secrets from a withdrawal seed (wallet-internal; wallet-core's scheme).
pub mod planchet {
    use crate::eddsa::EddsaPrivateKey;
    use crate::kdf::kdf_array;
    use crate::rsa::BlindingKeySecret;

    const WITHDRAW_INFO: &[u8] = b"taler-withdrawal-coin-derivation";
    const TIP_INFO: &[u8] = b"taler-tip-coin-derivation";

    fn derive_with(
        info: &[u8],
        seed: &[u8; 32],
        index: u32,
    ) -> (EddsaPrivateKey, BlindingKeySecret) {
        let mut out: [u8; 64] = kdf_array(&index.to_be_bytes(), seed, &[info]);
        let mut coin = [0u8; 32];
        let mut bks = [0u8; 32];
        coin.copy_from_slice(&out[..32]);
        bks.copy_from_slice(&out[32..]);
        let result = (
            EddsaPrivateKey::from_bytes(&coin),
            BlindingKeySecret::from_bytes(bks),
        );
        zeroize::Zeroize::zeroize(&mut out);
        zeroize::Zeroize::zeroize(&mut coin);
        result
    }

    /// Coin private key and blinding secret number `index` of a withdrawal group:
    /// `HKDF(salt = u32be(index), ikm = seed, info = "taler-withdrawal-coin-derivation", 64)`.
    pub fn derive(seed: &[u8; 32], index: u32) -> (EddsaPrivateKey, BlindingKeySecret) {
        derive_with(WITHDRAW_INFO, seed, index)
    }

    /// The Clause-Schnorr session nonce of planchet number `index` of a withdrawal group
    /// (wallet-internal, so that a retried CS withdrawal asks `/csr-withdraw` for the same `R`
    /// values and sends the same envelope): `HKDF(salt = u32be(index), ikm = seed,
    /// info = "taler-withdrawal-cs-nonce", 32)`. The blinding seed of a CS planchet is the
    /// blinding secret of [`derive`].
    pub fn derive_cs_nonce(seed: &[u8; 32], index: u32) -> [u8; 32] {
        kdf_array(&index.to_be_bytes(), seed, &[b"taler-withdrawal-cs-nonce"])
    }

    /// The same for tip planchets (`"taler-tip-coin-derivation"`).
    pub fn derive_tip(seed: &[u8; 32], index: u32) -> (EddsaPrivateKey, BlindingKeySecret) {
        derive_with(TIP_INFO, seed, index)
    }
}
