//! Helpers shared by the test modules.

use serde_json::Value;

pub const GNUNET_014: &str = include_str!("../vectors/gnunet-0.14-crypto-test-vectors.json");
pub const GNUNET_0193: &str = include_str!("../vectors/gnunet-0.19.3-crypto-tvg.json");
pub const WALLET_CORE: &str = include_str!("../vectors/wallet-core-derived-vectors.json");

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("vector file is JSON")
}

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vector field {key} missing"))
}

/// Decodes Taler base32.
pub fn crock(text: &str) -> Vec<u8> {
    cardcash_util::base32::decode(text).expect("valid base32 in vector")
}

pub fn crock_n<const N: usize>(text: &str) -> [u8; N] {
    cardcash_util::base32::decode_fixed::<N>(text).expect("fixed-size base32 in vector")
}

pub fn field<const N: usize>(v: &Value, key: &str) -> [u8; N] {
    crock_n::<N>(s(v, key))
}

pub fn bytes(v: &Value, key: &str) -> Vec<u8> {
    crock(s(v, key))
}

pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("valid hex in vector")
}

/// `bytes` with byte `i` changed.
pub fn flip(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[i] ^= 0x01;
    out
}

pub fn flip_n<const N: usize>(bytes: &[u8; N], i: usize) -> [u8; N] {
    let mut out = *bytes;
    out[i] ^= 0x01;
    out
}

/// A decimal natural number as big-endian bytes (for the wallet-core vector's private exponent).
pub fn decimal_to_be(dec: &str) -> Vec<u8> {
    let mut out: Vec<u8> = vec![0];
    for digit in dec.bytes() {
        assert!(digit.is_ascii_digit(), "not a decimal digit");
        let mut carry = u32::from(digit - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    out
}
