//! Refresh derivations as wallet-core does them for protocol v12 (spec §5): transfer keys,
//! the transfer secret from both sides, fresh coins from the transfer secret, and the melt
//! commitment `rc`. The exchange's link and reveal depend on exactly these derivations.

use cardcash_util::{Amount, EcdhePublicKey, EddsaPublicKey, HashCode};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ecdh::{EcdhePrivateKey, ecdh_ecdhe_eddsa, ecdh_eddsa_ecdhe};
use crate::eddsa::EddsaPrivateKey;
use crate::error::CryptoError;
use crate::hash::Sha512Hasher;
use crate::kdf::kdf_array;
use crate::rsa::{BlindingKeySecret, CIPHER_RSA};

/// The cut-and-choose parameter κ.
pub const KAPPA: usize = 3;

/// The 64-byte secret shared by the old coin and one transfer key. Zeroized on drop; compared
/// in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TransferSecret([u8; 64]);

impl PartialEq for TransferSecret {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl Eq for TransferSecret {}

impl TransferSecret {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl std::fmt::Debug for TransferSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferSecret(<redacted>)")
    }
}

/// Transfer key number `k` of a refresh session:
/// `HKDF(salt = u32be(k), ikm = session_seed, info = "taler-transfer-pub-derivation", 32)`.
pub fn transfer_keypair(session_seed: &[u8; 32], k: u32) -> (EcdhePrivateKey, EcdhePublicKey) {
    let private = EcdhePrivateKey::from_bytes(kdf_array(
        &k.to_be_bytes(),
        session_seed,
        &[b"taler-transfer-pub-derivation"],
    ));
    let public = private.public();
    (private, public)
}

/// The wallet's side: transfer private key × old coin public key.
pub fn transfer_secret_from_transfer_key(
    transfer_priv: &EcdhePrivateKey,
    old_coin_pub: &EddsaPublicKey,
) -> Result<TransferSecret, CryptoError> {
    Ok(TransferSecret(
        *ecdh_ecdhe_eddsa(transfer_priv, old_coin_pub)?.as_bytes(),
    ))
}

/// The link side: old coin private key × transfer public key. Equals
/// [`transfer_secret_from_transfer_key`].
pub fn transfer_secret_from_coin_key(
    old_coin_priv: &EddsaPrivateKey,
    transfer_pub: &EcdhePublicKey,
) -> Result<TransferSecret, CryptoError> {
    Ok(TransferSecret(
        *ecdh_eddsa_ecdhe(old_coin_priv, transfer_pub)?.as_bytes(),
    ))
}

/// Fresh coin number `i` from a transfer secret: `pms = HKDF(u32be(i), ts,
/// "taler-coin-derivation", 32)`, then `coin_priv = HKDF(salt "coin", pms)` and
/// `bks = HKDF(salt "bks", pms)` (32 bytes each, empty info).
pub fn fresh_coin(secret: &TransferSecret, i: u32) -> (EddsaPrivateKey, BlindingKeySecret) {
    let mut pms: [u8; 32] = kdf_array(
        &i.to_be_bytes(),
        secret.as_bytes(),
        &[b"taler-coin-derivation"],
    );
    let mut coin: [u8; 32] = kdf_array(b"coin", &pms, &[]);
    let bks: [u8; 32] = kdf_array(b"bks", &pms, &[]);
    let result = (
        EddsaPrivateKey::from_bytes(&coin),
        BlindingKeySecret::from_bytes(bks),
    );
    pms.zeroize();
    coin.zeroize();
    result
}

/// The melt commitment `rc` in wallet-core's v12 order: all κ transfer public keys, the
/// `h_denom_pub` of every fresh coin, the old coin's public key, `amount_with_fee`, then for each
/// κ and each fresh coin `u32be(1) ‖ rsa_blinded_planchet`.
///
/// `blinded_planchets[k][j]` is fresh coin `j`'s envelope under transfer key `k`; every row must
/// have one envelope per entry of `new_denoms`.
pub fn melt_commitment_v12(
    transfer_pubs: &[EcdhePublicKey],
    new_denoms: &[HashCode],
    old_coin_pub: &EddsaPublicKey,
    amount_with_fee: &Amount,
    blinded_planchets: &[Vec<Vec<u8>>],
) -> Result<HashCode, CryptoError> {
    if blinded_planchets.len() != transfer_pubs.len() {
        return Err(CryptoError::InvalidLength {
            what: "blinded planchet rows (one per transfer key)",
            expected: transfer_pubs.len(),
            got: blinded_planchets.len(),
        });
    }
    if let Some(row) = blinded_planchets
        .iter()
        .find(|row| row.len() != new_denoms.len())
    {
        return Err(CryptoError::InvalidLength {
            what: "blinded planchets per transfer key (one per fresh coin)",
            expected: new_denoms.len(),
            got: row.len(),
        });
    }
    let mut h = Sha512Hasher::new();
    for tp in transfer_pubs {
        h.update(tp.as_bytes());
    }
    for denom in new_denoms {
        h.update(denom.as_bytes());
    }
    h.update(old_coin_pub.as_bytes());
    h.update(&amount_with_fee.to_nbo());
    for row in blinded_planchets {
        for planchet in row {
            h.update(&CIPHER_RSA.to_be_bytes()).update(planchet);
        }
    }
    Ok(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha512;

    fn amount() -> Amount {
        "KUDOS:3.03".parse().expect("amount")
    }

    #[test]
    fn melt_commitment_hashes_the_documented_concatenation() {
        let seed = [5u8; 32];
        let tps: Vec<EcdhePublicKey> = (0..KAPPA as u32)
            .map(|k| transfer_keypair(&seed, k).1)
            .collect();
        let denoms = [HashCode::from_bytes([1; 64]), HashCode::from_bytes([2; 64])];
        let old = EddsaPublicKey::from_bytes([3; 32]);
        let planchets: Vec<Vec<Vec<u8>>> = (0..KAPPA as u8)
            .map(|k| vec![vec![10 + k; 5], vec![20 + k; 7]])
            .collect();
        let rc = melt_commitment_v12(&tps, &denoms, &old, &amount(), &planchets).expect("rc");

        let mut expected = Vec::new();
        for tp in &tps {
            expected.extend_from_slice(tp.as_bytes());
        }
        expected.extend_from_slice(&[1; 64]);
        expected.extend_from_slice(&[2; 64]);
        expected.extend_from_slice(&[3; 32]);
        expected.extend_from_slice(&amount().to_nbo());
        for row in &planchets {
            for p in row {
                expected.extend_from_slice(&[0, 0, 0, 1]);
                expected.extend_from_slice(p);
            }
        }
        assert_eq!(rc, sha512(&expected));

        let mut swapped = planchets.clone();
        swapped.swap(0, 1);
        assert_ne!(
            melt_commitment_v12(&tps, &denoms, &old, &amount(), &swapped).expect("rc"),
            rc
        );
        assert!(melt_commitment_v12(&tps, &denoms, &old, &amount(), &planchets[..2]).is_err());
        let mut short = planchets;
        short[1].pop();
        assert!(melt_commitment_v12(&tps, &denoms, &old, &amount(), &short).is_err());
    }

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(
            TransferSecret::from_bytes([1; 64]),
            TransferSecret::from_bytes([1; 64])
        );
        assert_ne!(
            TransferSecret::from_bytes([1; 64]),
            TransferSecret::from_bytes([2; 64])
        );
        assert!(format!("{:?}", TransferSecret::from_bytes([7; 64])).contains("redacted"));
    }
}
