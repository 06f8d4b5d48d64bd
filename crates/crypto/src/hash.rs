//! SHA-512, the hash used for every Taler `HashCode` (spec §2).
//!
//! A "short hash" (payto hash) is the first 32 bytes of SHA-512, not SHA-512/256.

use cardcash_util::{HashCode, ShortHashCode};
use sha2::{Digest, Sha512};

/// SHA-512 of `data`.
pub fn sha512(data: &[u8]) -> HashCode {
    HashCode::from_bytes(sha512_raw(data))
}

/// SHA-512 of `data` truncated to 32 bytes (Taler's `ShortHashCode`).
pub fn sha512_short(data: &[u8]) -> ShortHashCode {
    let full = sha512_raw(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    ShortHashCode::from_bytes(out)
}

pub(crate) fn sha512_raw(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// Incremental SHA-512 (GNUnet's `hash_context`).
#[derive(Clone, Default)]
pub struct Sha512Hasher(Sha512);

impl Sha512Hasher {
    pub fn new() -> Self {
        Self(Sha512::new())
    }

    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    pub fn finalize(self) -> HashCode {
        HashCode::from_bytes(self.0.finalize().into())
    }
}

impl std::fmt::Debug for Sha512Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha512Hasher")
    }
}
