//! GNUnet's key derivation (`GNUNET_CRYPTO_kdf`) and KDF-mod (`GNUNET_CRYPTO_kdf_mod_mpi`), spec §2.
//!
//! The KDF is RFC 5869 HKDF with HMAC-SHA512 for extract and HMAC-SHA256 for expand; the
//! context chunks are simply concatenated into `info`. KDF-mod draws a uniform number below a
//! modulus by rejection sampling with a big-endian `u16` counter appended to `info`.

use hkdf::Hkdf;
use sha2::{Sha256, Sha512};

use crate::error::CryptoError;

/// Largest output the SHA-256 expand step can give (255 blocks of 32 bytes).
pub const MAX_KDF_OUTPUT: usize = 255 * 32;

/// `GNUNET_CRYPTO_kdf(out, out_len, salt, ikm, info…)`.
pub fn kdf(
    out_len: usize,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
) -> Result<Vec<u8>, CryptoError> {
    if out_len > MAX_KDF_OUTPUT {
        return Err(CryptoError::Kdf("output longer than 8160 bytes"));
    }
    let mut out = vec![0u8; out_len];
    kdf_into(&mut out, salt, ikm, info)?;
    Ok(out)
}

/// [`kdf`] into a fixed-size array; `N` is checked at compile time.
pub fn kdf_array<const N: usize>(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; N] {
    const { assert!(N <= MAX_KDF_OUTPUT) };
    let mut out = [0u8; N];
    kdf_into(&mut out, salt, ikm, info)
        .expect("the only failure is an over-long output, excluded at compile time");
    out
}

fn kdf_into(out: &mut [u8], salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Result<(), CryptoError> {
    let (prk, _) = Hkdf::<Sha512>::extract(Some(salt), ikm);
    // A 64-byte PRK is a valid HMAC-SHA256 key as is (HMAC hashes only keys longer than its block).
    let expand = Hkdf::<Sha256>::from_prk(&prk).map_err(|_| CryptoError::Kdf("bad PRK length"))?;
    expand
        .expand_multi_info(info, out)
        .map_err(|_| CryptoError::Kdf("output longer than 8160 bytes"))
}

/// `GNUNET_CRYPTO_kdf_mod_mpi`: a number uniformly below `n`, derived from `salt`, `ikm`, `info`.
///
/// `n` is big-endian (leading zeros allowed). The result is big-endian with exactly as many
/// bytes as `n` needs (`ceil(bitlen(n) / 8)`), so it may start with zero bytes.
pub fn kdf_mod(n: &[u8], salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let first = n
        .iter()
        .position(|&b| b != 0)
        .ok_or(CryptoError::Kdf("modulus is zero"))?;
    let n = &n[first..];
    let top = n[0];
    let nbits = n.len() * 8 - top.leading_zeros() as usize;
    let blen = n.len();
    if blen > MAX_KDF_OUTPUT {
        return Err(CryptoError::Kdf("modulus too large"));
    }
    let spare_bits = blen * 8 - nbits;
    let mask: u8 = 0xff >> spare_bits;
    let mut buf = vec![0u8; blen];
    for ctr in 0..=u16::MAX {
        let ctr_be = ctr.to_be_bytes();
        kdf_into(&mut buf, salt, ikm, &[info, &ctr_be])?;
        buf[0] &= mask;
        // Equal-length big-endian byte strings compare like the numbers they encode.
        if buf.as_slice() < n {
            return Ok(buf);
        }
    }
    Err(CryptoError::Kdf(
        "no value below the modulus after 65536 tries",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_salt_equals_64_zero_bytes() {
        // HMAC zero-pads short keys, so GNUnet's "no salt" and an all-zero salt agree.
        let a = kdf(64, b"", b"ikm", &[b"info"]).expect("kdf");
        let b = kdf(64, &[0u8; 64], b"ikm", &[b"info"]).expect("kdf");
        assert_eq!(a, b);
        assert_ne!(a, kdf(64, &[1u8], b"ikm", &[b"info"]).expect("kdf"));
    }

    #[test]
    fn output_is_a_prefix_of_longer_output() {
        let long = kdf(100, b"s", b"k", &[b"i"]).expect("kdf");
        assert_eq!(kdf(33, b"s", b"k", &[b"i"]).expect("kdf"), long[..33]);
        let arr: [u8; 32] = kdf_array(b"s", b"k", &[b"i"]);
        assert_eq!(arr[..], long[..32]);
    }

    #[test]
    fn kdf_mod_masks_to_the_bit_length_and_ignores_leading_zeros() {
        // n = 0x01_00_01: 17 bits, so results fit in 17 bits and are below n.
        let n = [0x01, 0x00, 0x01];
        for i in 0..50u8 {
            let r = kdf_mod(&n, b"s", &[i], b"x").expect("kdf_mod");
            assert_eq!(r.len(), 3);
            assert!(r[0] <= 0x01 && r.as_slice() < &n[..]);
            assert_eq!(
                kdf_mod(&[0, 0, 0x01, 0x00, 0x01], b"s", &[i], b"x").expect("kdf_mod"),
                r
            );
        }
        assert!(kdf_mod(&[], b"s", b"k", b"x").is_err());
        // n = 1 admits only 0.
        assert_eq!(kdf_mod(&[1], b"s", b"k", b"x").expect("kdf_mod"), vec![0]);
    }
}
