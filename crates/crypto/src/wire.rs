//! Wire-related hashes (spec §2.2). C strings are hashed with their terminating NUL.
//!
//! Two payto hashes exist in protocol v23 (C exchange `src/util/payto.c`):
//! - [`h_payto`] is `TALER_full_payto_hash`: the payto URI **exactly as given**, query parameters
//!   such as `?receiver-name=…` included. Every signature that carries an `h_payto` uses this
//!   one: 1021 add wire, 1023 del wire, 1030 wire details (`/keys` `accounts[].master_sig`),
//!   1037 wire deposit (`/transfers/$WTID`) and 1040 reserve closed. Hash the string the signer
//!   saw (the configured or uploaded text), never a re-serialisation of a parsed URI.
//! - [`h_normalized_payto`] is `TALER_normalized_payto_hash`: the C exchange keys its wire
//!   targets and KYC state by it; no signature the exchange makes or checks covers it.

use cardcash_util::{HashCode, ShortHashCode, WireSalt};
use serde_json::Value;

use crate::error::CryptoError;
use crate::hash::{Sha512Hasher, sha512_short};
use crate::kdf::kdf_array;

fn with_nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// The merchant's salted wire hash: `HKDF(salt = wire_salt, ikm = payto ‖ 0x00,
/// info = "merchant-wire-signature", 64)` (C `TALER_merchant_wire_signature_hash`, unchanged in
/// v23). The payto URI is the merchant's full URI as sent in `merchant_payto_uri`.
pub fn h_wire(payto: &str, salt: &WireSalt) -> HashCode {
    HashCode::from_bytes(kdf_array(
        salt.as_bytes(),
        &with_nul(payto),
        &[b"merchant-wire-signature"],
    ))
}

/// The exchange's account hash: `SHA-512(payto ‖ 0x00)[0..32]` over the full payto URI as given
/// (C `TALER_full_payto_hash`; see the module docs for which signatures use it).
pub fn h_payto(payto: &str) -> ShortHashCode {
    sha512_short(&with_nul(payto))
}

/// `TALER_normalized_payto_hash(TALER_payto_normalize(payto))`: `SHA-512(normalized ‖ 0x00)[0..32]`
/// (see [`normalize_payto`]). `None` when the URI cannot be normalised.
pub fn h_normalized_payto(payto: &str) -> Option<ShortHashCode> {
    normalize_payto(payto).map(|n| sha512_short(&with_nul(&n)))
}

/// The C exchange's `TALER_payto_normalize` (v23) for a payto URI that has been validated:
/// the query is dropped, then per method:
/// - `iban`: an optional BIC segment is removed, the prefix lower-cased, the IBAN upper-cased
///   (`None` unless the URI has 3 or 4 slashes);
/// - `x-taler-bank`: lower-cased up to the host, the account path kept as is;
/// - `bitcoin`: lower-cased up to the method, the address kept;
/// - `upi`, `ilp`: lower-cased entirely;
/// - any other method: kept as is.
///
/// Case changes are ASCII only, as C's `tolower`/`toupper` in the C locale. `None` when `payto`
/// does not start with `payto://` (any case) followed by `METHOD/`.
pub fn normalize_payto(payto: &str) -> Option<String> {
    const PREFIX: &str = "payto://";
    let head = payto.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = &payto[PREFIX.len()..];
    let method = &rest[..rest.find('/')?];
    let uri = &payto[..payto.find('?').unwrap_or(payto.len())];
    let bytes = uri.as_bytes();
    let lower_while = |slashes_below: usize| -> Vec<u8> {
        let mut seen = 0;
        bytes
            .iter()
            .map(|&c| {
                if c == b'/' {
                    seen += 1;
                }
                if seen < slashes_below {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    };
    let out: Vec<u8> = if method.eq_ignore_ascii_case("x-taler-bank") {
        lower_while(4)
    } else if method.eq_ignore_ascii_case("iban") {
        let total = bytes.iter().filter(|&&c| c == b'/').count();
        if !(3..=4).contains(&total) {
            return None;
        }
        let have_bic = total == 4;
        let mut seen = 0;
        let mut out = Vec::with_capacity(bytes.len());
        for &c in bytes {
            if c == b'/' {
                seen += 1;
            }
            match seen {
                0..=2 => out.push(c.to_ascii_lowercase()),
                3 if have_bic => {}
                _ => out.push(c.to_ascii_uppercase()),
            }
        }
        out
    } else if method.eq_ignore_ascii_case("upi") || method.eq_ignore_ascii_case("ilp") {
        bytes.to_ascii_lowercase()
    } else if method.eq_ignore_ascii_case("bitcoin") {
        lower_while(3)
    } else {
        bytes.to_vec()
    };
    // Only ASCII bytes changed case, so the result is still UTF-8.
    String::from_utf8(out).ok()
}

/// The wire-method hash of wire fees: `SHA-512(method ‖ 0x00)`, e.g. `"iban"`.
pub fn h_wire_method(method: &str) -> HashCode {
    hash_c_string(method)
}

/// `SHA-512(s ‖ 0x00)`, e.g. the v23 conversion-URL hash or an exchange base URL hash.
pub fn hash_c_string(s: &str) -> HashCode {
    let mut h = Sha512Hasher::new();
    h.update(s.as_bytes()).update(&[0]);
    h.finalize()
}

/// The v23 `h_conversion_url` of purposes 1021 and 1030: `SHA-512(url ‖ 0x00)` of the account's
/// `conversion_url` exactly as signed, or all zero when the account has none.
pub fn h_conversion_url(conversion_url: Option<&str>) -> HashCode {
    conversion_url.map_or(HashCode::from_bytes([0; 64]), hash_c_string)
}

/// The v23 `h_debit_restrictions` / `h_credit_restrictions` of purposes 1021 and 1030: the C
/// exchange's `TALER_json_hash` of the restriction array (`SHA-512(canonical JSON ‖ 0x00)`,
/// any object key allowed). An account without restrictions signs the empty array: `[]`.
pub fn h_restrictions(restrictions: &Value) -> Result<HashCode, CryptoError> {
    crate::contract::json_hash_any_keys(restrictions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_c_exchange() {
        let n = |s: &str| normalize_payto(s);
        assert_eq!(
            n("PAYTO://IBAN/de89370400440532013000?receiver-name=Foo%20Bar").as_deref(),
            Some("payto://iban/DE89370400440532013000")
        );
        assert_eq!(
            n("payto://iban/cobadeffxxx/de89370400440532013000").as_deref(),
            Some("payto://iban/DE89370400440532013000")
        );
        assert_eq!(n("payto://iban/a/b/c"), None);
        assert_eq!(n("payto://iban"), None);
        assert_eq!(
            n("payto://X-Taler-Bank/Bank.Example:8080/Alice/Sub?x=1").as_deref(),
            Some("payto://x-taler-bank/bank.example:8080/Alice/Sub")
        );
        assert_eq!(
            n("payto://BITCOIN/bc1QAbC").as_deref(),
            Some("payto://bitcoin/bc1QAbC")
        );
        assert_eq!(
            n("payto://UPI/Alice@Bank").as_deref(),
            Some("payto://upi/alice@bank")
        );
        assert_eq!(
            n("payto://card-transaction/Proc/TX1?a=b").as_deref(),
            Some("payto://card-transaction/Proc/TX1")
        );
        assert_eq!(n("http://iban/DE1"), None);
        assert_eq!(n("payto://"), None);
        assert_eq!(
            h_normalized_payto("payto://iban/de89370400440532013000?receiver-name=X"),
            Some(h_payto("payto://iban/DE89370400440532013000"))
        );
    }

    #[test]
    fn full_payto_hash_covers_the_query_and_the_nul() {
        let full = "payto://iban/DE89370400440532013000?receiver-name=Foo";
        assert_eq!(h_payto(full), sha512_short(format!("{full}\0").as_bytes()));
        assert_ne!(
            h_payto(full),
            h_payto("payto://iban/DE89370400440532013000")
        );
    }

    #[test]
    fn conversion_url_and_restriction_hashes() {
        assert_eq!(h_conversion_url(None), HashCode::from_bytes([0; 64]));
        assert_eq!(
            h_conversion_url(Some("https://conv.example/")),
            crate::sha512(b"https://conv.example/\0")
        );
        assert_eq!(
            h_restrictions(&serde_json::json!([])).expect("hash"),
            crate::sha512(b"[]\0")
        );
        let r = serde_json::json!([{
            "type": "regex",
            "payto_regex": "payto://iban/CH.*",
            "human_hint": "Swiss only",
            "human_hint_i18n": {"fr": "Suisse", "de-CH": "Schweiz"}
        }]);
        let canonical = concat!(
            r#"[{"human_hint":"Swiss only","human_hint_i18n":{"de-CH":"Schweiz","fr":"Suisse"},"#,
            r#""payto_regex":"payto://iban/CH.*","type":"regex"}]"#,
            "\0"
        );
        assert_eq!(
            h_restrictions(&r).expect("language tags are fine"),
            crate::sha512(canonical.as_bytes())
        );
    }
}
