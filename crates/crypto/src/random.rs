//! Randomness from the operating system (`getrandom`). The only thing in this crate that
//! reaches outside the process, and only to read entropy.

use crate::error::CryptoError;

/// `N` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}
