//! Refresh derivations (spec §5): transfer keys, the transfer secret from both sides, fresh
//! coins from the transfer secret, and the melt commitment `rc`. The exchange's link and reveal
//! depend on exactly these derivations.
//!
//! Protocol v12 as wallet-core does it: [`transfer_keypair`], [`fresh_coin`],
//! [`melt_commitment_v12`] (RSA only). Protocol v23 as the C exchange and its client do it
//! (`src/util/crypto.c`, `src/lib/exchange_api_refresh_common.c`, December 2024): the same
//! transfer secret and planchet secret ([`planchet_secret`]), fresh RSA coins as in v12, fresh
//! Clause-Schnorr coins whose key and blinding seed also hash the exchange's `R` values
//! ([`FreshPlanchet`]), CS session nonces from the refresh master secret
//! ([`cs_refresh_nonce`]), and [`melt_commitment_v23`], which prefixes the refresh master secret
//! when a fresh coin is CS and hashes every envelope as `TALER_blinded_planchet_hash_` does. The
//! C client derives its transfer keys from the old coin and the refresh master secret
//! ([`transfer_priv_v23`]); that derivation is the wallet's own business (the exchange only sees
//! the keys), but a wallet that follows it can recover a refresh from the old coin alone.

use cardcash_util::{Amount, EcdhePublicKey, EddsaPublicKey, HashCode};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::coin::{coin_envelope_hash, coin_envelope_hash_cs, h_coin_pub};
use crate::cs::{self, BlindingSecrets, CIPHER_CS, ClausePair};
use crate::ecdh::{EcdhePrivateKey, ecdh_ecdhe_eddsa, ecdh_eddsa_ecdhe};
use crate::eddsa::EddsaPrivateKey;
use crate::error::CryptoError;
use crate::hash::Sha512Hasher;
use crate::kdf::kdf_array;
use crate::rsa::{self, BlindingKeySecret, CIPHER_RSA, RsaPublicKey};

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

// ---------------------------------------------------------------- protocol v23

/// A refresh master secret (`TALER_RefreshMasterSecretP`, 32 bytes): chosen by the wallet per
/// refresh; the seed of the Clause-Schnorr session nonces and, when a fresh coin is CS, the
/// first thing [`melt_commitment_v23`] hashes. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RefreshMasterSecret([u8; 32]);

impl RefreshMasterSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(crate::random::random_bytes()?))
    }
}

impl std::fmt::Debug for RefreshMasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshMasterSecret(<redacted>)")
    }
}

/// Transfer key number `k` as the v23 C client derives it (`TALER_planchet_secret_to_transfer_priv`):
/// `HKDF(salt = u32be(k), ikm = old_coin_priv, info = rms ‖ "taler-transfer-priv-derivation", 32)`.
pub fn transfer_priv_v23(
    rms: &RefreshMasterSecret,
    old_coin_priv: &EddsaPrivateKey,
    k: u32,
) -> EcdhePrivateKey {
    let mut seed = old_coin_priv.to_bytes();
    let private = EcdhePrivateKey::from_bytes(kdf_array(
        &k.to_be_bytes(),
        &seed,
        &[rms.as_bytes(), b"taler-transfer-priv-derivation"],
    ));
    seed.zeroize();
    private
}

/// The secret of fresh coin `j` (`TALER_transfer_secret_to_planchet_secret`, 32 bytes):
/// `HKDF(salt = u32be(j), ikm = transfer secret, info = "taler-coin-derivation")`. Zeroized on
/// drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlanchetSecret([u8; 32]);

impl PlanchetSecret {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PlanchetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanchetSecret(<redacted>)")
    }
}

/// The planchet secret of fresh coin `j` under `secret` (v12 calls it `pms`).
pub fn planchet_secret(secret: &TransferSecret, j: u32) -> PlanchetSecret {
    PlanchetSecret(kdf_array(
        &j.to_be_bytes(),
        secret.as_bytes(),
        &[b"taler-coin-derivation"],
    ))
}

/// The Clause-Schnorr session nonce of fresh coin `j` (`TALER_cs_refresh_nonce_derive`):
/// `HKDF(salt = u32be(j), ikm = "refresh-n", info = rms)`. `/csr-melt` answers the `R` values of
/// exactly these nonces.
pub fn cs_refresh_nonce(rms: &RefreshMasterSecret, j: u32) -> [u8; 32] {
    kdf_array(&j.to_be_bytes(), b"refresh-n", &[rms.as_bytes()])
}

/// The denomination a fresh coin is made for, with what the exchange contributes to a CS coin.
#[derive(Debug, Clone, Copy)]
pub enum FreshKey<'a> {
    Rsa(&'a RsaPublicKey),
    Cs {
        /// The denomination's CS public key.
        public: &'a [u8; 32],
        /// The coin's session nonce ([`cs_refresh_nonce`]; in a reveal, the one the wallet's
        /// envelope carries).
        nonce: [u8; 32],
        /// The exchange's `(R0, R1)` for that nonce (`/csr-melt`, seed "rm").
        r_pub: ClausePair,
    },
}

/// A fresh coin's blinded envelope as the reveal carries it (`coin_evs[j]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshEnvelope {
    /// The blinded RSA message, minimal big-endian.
    Rsa(Vec<u8>),
    /// The session nonce and the two blinded challenges.
    Cs { nonce: [u8; 32], c: ClausePair },
}

impl RefreshEnvelope {
    /// The envelope hash (`TALER_coin_ev_hash`) for the denomination `h_denom_pub`: what the
    /// link signature (1204) covers.
    pub fn hash(&self, h_denom_pub: &HashCode) -> HashCode {
        match self {
            Self::Rsa(bm) => coin_envelope_hash(h_denom_pub, bm),
            Self::Cs { nonce, c } => coin_envelope_hash_cs(h_denom_pub, nonce, c),
        }
    }

    /// `TALER_blinded_planchet_hash_`: `u32be(cipher)` then the RSA bytes, or `c0 ‖ c1 ‖ nonce`.
    fn hash_into(&self, h: &mut Sha512Hasher) {
        match self {
            Self::Rsa(bm) => {
                h.update(&CIPHER_RSA.to_be_bytes()).update(bm);
            }
            Self::Cs { nonce, c } => {
                h.update(&CIPHER_CS.to_be_bytes())
                    .update(&c[0])
                    .update(&c[1])
                    .update(nonce);
            }
        }
    }
}

/// What the wallet keeps to unblind a fresh coin's signature. `Debug` is redacted.
#[derive(Clone)]
pub enum FreshBlinding {
    Rsa(BlindingKeySecret),
    Cs {
        /// The blinding seed the secrets come from (what a recoup-refresh reveals as the
        /// coin's blinding key secret).
        seed: [u8; 32],
        secrets: BlindingSecrets,
        /// The blinded `R'` of both clauses (the unblinded signature's `R` is one of them).
        r_blind: ClausePair,
    },
}

impl std::fmt::Debug for FreshBlinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa(_) => f.write_str("FreshBlinding::Rsa(<redacted>)"),
            Self::Cs { .. } => f.write_str("FreshBlinding::Cs(<redacted>)"),
        }
    }
}

/// Fresh coin `j` of a transfer secret: its key, its blinding and its envelope.
#[derive(Debug)]
pub struct FreshPlanchet {
    pub coin_priv: EddsaPrivateKey,
    pub coin_pub: EddsaPublicKey,
    pub blinding: FreshBlinding,
    pub envelope: RefreshEnvelope,
}

impl FreshPlanchet {
    /// Fresh coin `j` under `secret` for `key`, as the C client (`TALER_planchet_setup_coin_priv`,
    /// `TALER_planchet_blinding_secret_create`, `TALER_planchet_prepare`) and the exchange's
    /// reveal derive it: RSA `coin_priv = HKDF(salt "coin", ps)`, `bks = HKDF(salt "bks", ps)`
    /// (the v12 [`fresh_coin`]); CS the same salts "coin" and "bseed" with `R0 ‖ R1` as info.
    /// RSA blinding checks the key as for a foreign key (the wallet's side).
    pub fn derive(
        secret: &TransferSecret,
        j: u32,
        key: &FreshKey<'_>,
    ) -> Result<Self, CryptoError> {
        Self::derive_with(secret, j, key, false)
    }

    fn derive_with(
        secret: &TransferSecret,
        j: u32,
        key: &FreshKey<'_>,
        own_key: bool,
    ) -> Result<Self, CryptoError> {
        let ps = planchet_secret(secret, j);
        match key {
            FreshKey::Rsa(public) => {
                let mut coin: [u8; 32] = kdf_array(b"coin", ps.as_bytes(), &[]);
                let bks = BlindingKeySecret::from_bytes(kdf_array(b"bks", ps.as_bytes(), &[]));
                let coin_priv = EddsaPrivateKey::from_bytes(&coin);
                coin.zeroize();
                let coin_pub = coin_priv.public();
                let msg = h_coin_pub(&coin_pub);
                let bm = if own_key {
                    rsa::blind_own_key(public, msg.as_bytes(), &bks)?
                } else {
                    rsa::blind(public, msg.as_bytes(), &bks)?
                };
                Ok(Self {
                    coin_priv,
                    coin_pub,
                    blinding: FreshBlinding::Rsa(bks),
                    envelope: RefreshEnvelope::Rsa(bm),
                })
            }
            FreshKey::Cs {
                public,
                nonce,
                r_pub,
            } => {
                let mut coin: [u8; 32] = kdf_array(b"coin", ps.as_bytes(), &[&r_pub[0], &r_pub[1]]);
                let seed: [u8; 32] = kdf_array(b"bseed", ps.as_bytes(), &[&r_pub[0], &r_pub[1]]);
                let coin_priv = EddsaPrivateKey::from_bytes(&coin);
                coin.zeroize();
                let secrets = cs::blinding_secrets(&seed);
                let coin_pub = coin_priv.public();
                let msg = h_coin_pub(&coin_pub);
                let (c, r_blind) = cs::blind(&secrets, r_pub, public, msg.as_bytes())?;
                Ok(Self {
                    coin_priv,
                    coin_pub,
                    blinding: FreshBlinding::Cs {
                        seed,
                        secrets,
                        r_blind,
                    },
                    envelope: RefreshEnvelope::Cs { nonce: *nonce, c },
                })
            }
        }
    }
}

/// The exchange's side of a reveal: the envelope of fresh coin `j` under `secret` for one of
/// its own denominations (RSA blinding without the gcd checks, see [`rsa::blind_own_key`]).
pub fn fresh_envelope_own_key(
    secret: &TransferSecret,
    j: u32,
    key: &FreshKey<'_>,
) -> Result<RefreshEnvelope, CryptoError> {
    Ok(FreshPlanchet::derive_with(secret, j, key, true)?.envelope)
}

/// The melt commitment `rc` of protocol v23 (`TALER_refresh_get_commitment`): SHA-512 over the
/// refresh master secret (only if given: the C client gives it when a fresh coin is CS), the κ
/// transfer public keys, every fresh coin's `h_denom_pub`, the old coin's public key,
/// `amount_with_fee`, then for each κ and each fresh coin the envelope as
/// `TALER_blinded_planchet_hash_` hashes it. For RSA coins without a master secret this is
/// [`melt_commitment_v12`].
///
/// `envelopes[k][j]` is fresh coin `j`'s envelope under transfer key `k`.
pub fn melt_commitment_v23(
    rms: Option<&RefreshMasterSecret>,
    transfer_pubs: &[EcdhePublicKey],
    new_denoms: &[HashCode],
    old_coin_pub: &EddsaPublicKey,
    amount_with_fee: &Amount,
    envelopes: &[Vec<RefreshEnvelope>],
) -> Result<HashCode, CryptoError> {
    if envelopes.len() != transfer_pubs.len() {
        return Err(CryptoError::InvalidLength {
            what: "envelope rows (one per transfer key)",
            expected: transfer_pubs.len(),
            got: envelopes.len(),
        });
    }
    if let Some(row) = envelopes.iter().find(|row| row.len() != new_denoms.len()) {
        return Err(CryptoError::InvalidLength {
            what: "envelopes per transfer key (one per fresh coin)",
            expected: new_denoms.len(),
            got: row.len(),
        });
    }
    let mut h = Sha512Hasher::new();
    if let Some(rms) = rms {
        h.update(rms.as_bytes());
    }
    for tp in transfer_pubs {
        h.update(tp.as_bytes());
    }
    for denom in new_denoms {
        h.update(denom.as_bytes());
    }
    h.update(old_coin_pub.as_bytes());
    h.update(&amount_with_fee.to_nbo());
    for row in envelopes {
        for envelope in row {
            envelope.hash_into(&mut h);
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

    fn rsa_key() -> &'static crate::rsa::RsaPrivateKey {
        static KEY: std::sync::OnceLock<crate::rsa::RsaPrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| crate::rsa::RsaPrivateKey::generate(1024).expect("key"))
    }

    #[test]
    fn v23_without_master_secret_is_v12_for_rsa() {
        let tps: Vec<EcdhePublicKey> = (0..KAPPA as u32)
            .map(|k| transfer_keypair(&[7; 32], k).1)
            .collect();
        let denoms = [HashCode::from_bytes([1; 64])];
        let old = EddsaPublicKey::from_bytes([3; 32]);
        let planchets: Vec<Vec<Vec<u8>>> = (0..KAPPA as u8).map(|k| vec![vec![k + 1; 9]]).collect();
        let envelopes: Vec<Vec<RefreshEnvelope>> = planchets
            .iter()
            .map(|row| row.iter().cloned().map(RefreshEnvelope::Rsa).collect())
            .collect();
        let v12 = melt_commitment_v12(&tps, &denoms, &old, &amount(), &planchets).expect("rc");
        let v23 = melt_commitment_v23(None, &tps, &denoms, &old, &amount(), &envelopes);
        assert_eq!(v23.expect("rc"), v12);
        assert!(
            melt_commitment_v23(None, &tps, &denoms, &old, &amount(), &envelopes[..1]).is_err()
        );
    }

    #[test]
    fn v23_commitment_hashes_master_secret_and_cs_envelopes() {
        let rms = RefreshMasterSecret::from_bytes([9; 32]);
        let tps: Vec<EcdhePublicKey> = (0..KAPPA as u8)
            .map(|k| EcdhePublicKey::from_bytes([40 + k; 32]))
            .collect();
        let denoms = [HashCode::from_bytes([2; 64])];
        let old = EddsaPublicKey::from_bytes([3; 32]);
        let envelopes: Vec<Vec<RefreshEnvelope>> = (0..KAPPA as u8)
            .map(|k| {
                vec![RefreshEnvelope::Cs {
                    nonce: [k; 32],
                    c: [[10 + k; 32], [20 + k; 32]],
                }]
            })
            .collect();
        let rc = melt_commitment_v23(Some(&rms), &tps, &denoms, &old, &amount(), &envelopes)
            .expect("rc");
        let mut expected = vec![9u8; 32];
        for k in 0..KAPPA as u8 {
            expected.extend_from_slice(&[40 + k; 32]);
        }
        expected.extend_from_slice(&[2; 64]);
        expected.extend_from_slice(&[3; 32]);
        expected.extend_from_slice(&amount().to_nbo());
        for k in 0..KAPPA as u8 {
            expected.extend_from_slice(&[0, 0, 0, 2]);
            expected.extend_from_slice(&[10 + k; 32]);
            expected.extend_from_slice(&[20 + k; 32]);
            expected.extend_from_slice(&[k; 32]);
        }
        assert_eq!(rc, sha512(&expected));
        let without = melt_commitment_v23(None, &tps, &denoms, &old, &amount(), &envelopes);
        assert_ne!(without.expect("rc"), rc);
    }

    #[test]
    fn fresh_rsa_coins_are_the_v12_coins_and_the_exchange_blinds_alike() {
        let secret = TransferSecret::from_bytes([5; 64]);
        let public = rsa_key().public();
        for j in 0..3 {
            let planchet = FreshPlanchet::derive(&secret, j, &FreshKey::Rsa(public)).expect("coin");
            let (coin_priv, bks) = fresh_coin(&secret, j);
            assert_eq!(planchet.coin_pub, coin_priv.public());
            let FreshBlinding::Rsa(ours) = &planchet.blinding else {
                panic!("RSA blinding expected")
            };
            assert_eq!(ours.as_bytes(), bks.as_bytes());
            let bm =
                rsa::blind(public, h_coin_pub(&planchet.coin_pub).as_bytes(), &bks).expect("bm");
            assert_eq!(planchet.envelope, RefreshEnvelope::Rsa(bm));
            assert_eq!(
                fresh_envelope_own_key(&secret, j, &FreshKey::Rsa(public)).expect("envelope"),
                planchet.envelope
            );
        }
    }

    #[test]
    fn fresh_cs_coins_unblind_to_valid_signatures() {
        let private = cs::generate_private().expect("key");
        let public = cs::public(&private);
        let rms = RefreshMasterSecret::from_bytes([4; 32]);
        let secret = TransferSecret::from_bytes([6; 64]);
        let nonce = cs_refresh_nonce(&rms, 1);
        assert_ne!(nonce, cs_refresh_nonce(&rms, 0));
        assert_ne!(
            nonce,
            cs_refresh_nonce(&RefreshMasterSecret::from_bytes([5; 32]), 1)
        );
        let r_pub = cs::r_public(&nonce, cs::R_SEED_MELT, &private);
        let key = FreshKey::Cs {
            public: &public,
            nonce,
            r_pub,
        };
        let planchet = FreshPlanchet::derive(&secret, 1, &key).expect("coin");
        assert_eq!(
            fresh_envelope_own_key(&secret, 1, &key).expect("envelope"),
            planchet.envelope
        );
        let RefreshEnvelope::Cs { nonce: n, c } = &planchet.envelope else {
            panic!("CS envelope expected")
        };
        assert_eq!(*n, nonce);
        let (b, s) = cs::sign_blinded(&private, cs::R_SEED_MELT, n, c);
        let FreshBlinding::Cs {
            secrets, r_blind, ..
        } = &planchet.blinding
        else {
            panic!("CS blinding expected")
        };
        let (r, s) = cs::unblind_signature(secrets, r_blind, b, &s).expect("unblind");
        cs::verify(&public, &r, &s, h_coin_pub(&planchet.coin_pub).as_bytes())
            .expect("the fresh CS coin's signature verifies");
        // Other R values (another nonce) make another coin.
        let other = FreshKey::Cs {
            public: &public,
            nonce,
            r_pub: cs::r_public(&[0; 32], cs::R_SEED_MELT, &private),
        };
        assert_ne!(
            FreshPlanchet::derive(&secret, 1, &other)
                .expect("coin")
                .coin_pub,
            planchet.coin_pub
        );
    }

    #[test]
    fn v23_transfer_keys_depend_on_coin_secret_and_index() {
        let coin = EddsaPrivateKey::from_bytes(&[1; 32]);
        let rms = RefreshMasterSecret::from_bytes([2; 32]);
        let keys: Vec<_> = (0..KAPPA as u32)
            .map(|k| transfer_priv_v23(&rms, &coin, k).public())
            .collect();
        assert_ne!(keys[0], keys[1]);
        assert_eq!(transfer_priv_v23(&rms, &coin, 2).public(), keys[2]);
        let other = RefreshMasterSecret::from_bytes([3; 32]);
        assert_ne!(transfer_priv_v23(&other, &coin, 0).public(), keys[0]);
        // Both sides of the transfer secret agree for a v23 transfer key too.
        let tp = transfer_priv_v23(&rms, &coin, 1);
        let other_coin = EddsaPrivateKey::from_bytes(&[8; 32]);
        assert_eq!(
            transfer_secret_from_transfer_key(&tp, &other_coin.public()).expect("ts"),
            transfer_secret_from_coin_key(&other_coin, &tp.public()).expect("ts")
        );
    }
}
