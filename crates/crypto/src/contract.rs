//! Canonical JSON, forgettable-field scrubbing and the contract-terms hash (spec §2.1).
//!
//! `h_contract_terms = SHA-512(canonical_json(scrub(contract)) ‖ 0x00)`. The canonical form has
//! no whitespace, object keys sorted, strings escaped as `JSON.stringify` does (only `"`, `\` and
//! control characters; non-ASCII stays raw UTF-8). Values the wallet and the C code would hash
//! differently, or refuse, are rejected here: floating-point numbers, integers beyond ±(2^53−1),
//! and object keys outside `^[0-9A-Za-z_]+$` other than `$forgettable` / `$forgotten`.
//!
//! The one number that looks like a float but is not refused is `-0`: jansson (the C merchant)
//! reads the JSON text `-0` as the integer 0 and wallet-core's `JSON.stringify(-0)` is `"0"`, so
//! both hash it as `0`. `serde_json` parses `-0` as the float −0.0 and cannot tell it from the
//! text `-0.0`, so that text is accepted as 0 too (as wallet-core does; jansson would refuse it).
//! Every other float, including `0.0` and `1.0`, stays refused.
//!
//! Forgettable fields: [`scrub`] hashes what the C merchant's `TALER_JSON_contract_hash` hashes
//! (exchange `src/json/json.c`), which is what wallet-core's `ContractTermsUtil.scrub` hashes
//! wherever the two agree; inputs they read differently are refused. [`validate_forgettable`] is
//! wallet-core's stricter check of a contract's forgettable structure.

use std::fmt::Write as _;

use cardcash_util::HashCode;
use serde_json::{Map, Number, Value};

use crate::error::CryptoError;
use crate::hash::sha512;
use crate::kdf::kdf_array;

/// Largest integer JavaScript represents exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

const FORGETTABLE: &str = "$forgettable";
const FORGOTTEN: &str = "$forgotten";

fn json_err(msg: impl Into<String>) -> CryptoError {
    CryptoError::Json(msg.into())
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `n` is the float −0.0, which is what `serde_json` makes of the JSON text `-0`.
fn is_negative_zero(n: &Number) -> bool {
    n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative())
}

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// The canonical serialisation of `value` (see the module docs for what is rejected).
pub fn canonical_json(value: &Value) -> Result<String, CryptoError> {
    let mut out = String::new();
    write_canonical(value, &mut out, 0, Keys::Contract)?;
    Ok(out)
}

/// The canonical serialisation with any object key allowed, keys sorted by their UTF-8 bytes
/// (jansson's `JSON_SORT_KEYS`, which is what the C exchange's `TALER_json_hash` dumps).
///
/// For JSON that is not a contract: the v23 account restrictions, for instance, carry
/// `human_hint_i18n` objects keyed by language tags such as `de-CH`, which [`canonical_json`]
/// refuses. Numbers are still limited to safe integers.
pub fn canonical_json_any_keys(value: &Value) -> Result<String, CryptoError> {
    let mut out = String::new();
    write_canonical(value, &mut out, 0, Keys::Any)?;
    Ok(out)
}

/// Which object keys [`write_canonical`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// `^[0-9A-Za-z_]+$`, `$forgettable` and `$forgotten` (what wallet-core accepts in contracts).
    Contract,
    /// Anything (the C exchange's `TALER_json_hash`).
    Any,
}

fn write_canonical(
    value: &Value,
    out: &mut String,
    depth: usize,
    keys_allowed: Keys,
) -> Result<(), CryptoError> {
    if depth > MAX_DEPTH {
        return Err(json_err("JSON nested too deeply"));
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out, depth + 1, keys_allowed)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Contract keys are ASCII (checked below), so byte order equals JS's UTF-16 order;
            // other keys sort by UTF-8 bytes, as jansson's `JSON_SORT_KEYS` does.
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if keys_allowed == Keys::Contract
                    && !is_plain_key(key)
                    && key.as_str() != FORGETTABLE
                    && key.as_str() != FORGOTTEN
                {
                    return Err(json_err(format!("object key {key:?} is not allowed")));
                }
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key.as_str()) {
                    write_canonical(v, out, depth + 1, keys_allowed)?;
                }
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A number as the C merchant and wallet-core print it: safe integers only (and `-0` as `0`).
fn write_number(n: &Number, out: &mut String) -> Result<(), CryptoError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(json_err(format!("integer {u} is not a safe integer")));
        }
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(json_err(format!("integer {i} is not a safe integer")));
        }
        let _ = write!(out, "{i}");
    } else if is_negative_zero(n) {
        // `-0` is the integer 0 to jansson and wallet-core (see the module docs).
        out.push('0');
    } else {
        return Err(json_err("floating-point numbers cannot be hashed"));
    }
    Ok(())
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Replaces every forgettable field by its salted hash in `$forgotten`, at every depth: the
/// form `h_contract_terms` hashes. It produces the C merchant's `TALER_JSON_contract_hash` input
/// (exchange `src/json/json.c`, `forget`), which is wallet-core's `ContractTermsUtil.scrub` on
/// every contract the two read alike; on inputs where they differ it refuses.
///
/// In each object:
/// - For each `field: salt` in `$forgettable`, `$forgotten[field]` becomes
///   `crock(HKDF(salt = salt ‖ 0x00, ikm = canonical_json(scrub(obj[field])) ‖ 0x00, info = "", 64))`
///   unless already present; then the field is removed. The salt is used as text.
/// - `$forgettable` itself is always removed, and nothing is added for it: an empty
///   `$forgettable` (`{}`, or `[]`, which both implementations read as empty) leaves no trace,
///   so `{"$forgettable":{}}` hashes exactly like `{}`. `$forgotten` appears in the result only
///   if it was there or a field was forgotten now.
/// - A member named in `$forgotten` but still present is dropped before hashing, as the C
///   merchant does (wallet-core hashes it as is, but its `validateForgettable` refuses such a
///   contract before hashing; [`validate_forgettable`] is that check).
///
/// Refused, because the C merchant and wallet-core would disagree or fail: a `$forgettable`
/// that is neither an object nor `[]`, a `$forgotten` that is not an object, a salt that is not
/// a string, a salt for a field that is neither present nor already forgotten, and a salted
/// field whose `$forgotten` entry is JavaScript-falsy (`""`, `0`, `false`, `null`: wallet-core
/// recomputes it, the C merchant keeps it).
pub fn scrub(value: &Value) -> Result<Value, CryptoError> {
    scrub_at(value, 0)
}

fn scrub_at(value: &Value, depth: usize) -> Result<Value, CryptoError> {
    if depth > MAX_DEPTH {
        return Err(json_err("JSON nested too deeply"));
    }
    match value {
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|item| scrub_at(item, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        Value::Object(map) => scrub_object(map, depth).map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// The salts of `$forgettable`. `None` when absent or `[]`: both drop it and add nothing.
fn forgettable_salts(marker: Option<&Value>) -> Result<Option<&Map<String, Value>>, CryptoError> {
    match marker {
        None => Ok(None),
        Some(Value::Object(salts)) => Ok(Some(salts)),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(_) => Err(json_err("$forgettable must be an object")),
    }
}

/// Whether JavaScript treats `v` as false (wallet-core tests `!dup.$forgotten[x]`).
fn js_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

fn scrub_object(map: &Map<String, Value>, depth: usize) -> Result<Map<String, Value>, CryptoError> {
    let salts = forgettable_salts(map.get(FORGETTABLE))?;
    let mut forgotten = match map.get(FORGOTTEN) {
        None => None,
        Some(Value::Object(f)) => Some(f.clone()),
        Some(_) => return Err(json_err("$forgotten must be an object")),
    };
    let mut obj = Map::new();
    for (key, member) in map {
        let already_forgotten = forgotten.as_ref().is_some_and(|f| f.contains_key(key));
        // The markers are rebuilt below; a member already forgotten is dropped (C merchant).
        if key == FORGETTABLE || key == FORGOTTEN || already_forgotten {
            continue;
        }
        let Some(salt) = salts.and_then(|s| s.get(key)) else {
            obj.insert(key.clone(), member.clone());
            continue;
        };
        let Value::String(salt) = salt else {
            return Err(json_err(format!(
                "salt of forgettable field {key:?} must be a string"
            )));
        };
        let mut ikm = canonical_json(&scrub_at(member, depth + 1)?)?.into_bytes();
        ikm.push(0);
        let mut salt_bytes = salt.as_bytes().to_vec();
        salt_bytes.push(0);
        let h: [u8; 64] = kdf_array(&salt_bytes, &ikm, &[]);
        forgotten.get_or_insert_with(Map::new).insert(
            key.clone(),
            Value::String(cardcash_util::base32::encode(&h)),
        );
    }
    for field in salts.into_iter().flat_map(Map::keys) {
        match forgotten.as_ref().and_then(|f| f.get(field)) {
            Some(entry) if js_falsy(entry) => {
                return Err(json_err(format!(
                    "$forgotten entry of forgettable field {field:?} must not be empty"
                )));
            }
            Some(_) => {}
            None => {
                return Err(json_err(format!("forgettable field {field:?} is missing")));
            }
        }
    }
    if let Some(forgotten) = forgotten {
        obj.insert(FORGOTTEN.to_owned(), Value::Object(forgotten));
    }
    for (key, child) in obj.iter_mut() {
        if !key.starts_with('$') {
            *child = scrub_at(child, depth + 1)?;
        }
    }
    Ok(obj)
}

/// wallet-core's `ContractTermsUtil.validateForgettable`: whether a wallet accepts the
/// forgettable structure of a contract (it refuses to pay for one that fails). Stricter than
/// [`scrub`], which hashes what the C merchant hashes: here every object key is plain or one of
/// the two markers, numbers are safe integers, each salted field is present with a string salt,
/// and each `$forgotten` entry names a field that is really gone and holds a 64-byte base32
/// hash. A member both present and forgotten, which [`scrub`] drops, is refused here.
pub fn validate_forgettable(value: &Value) -> Result<(), CryptoError> {
    validate_at(value, 0)
}

fn validate_at(value: &Value, depth: usize) -> Result<(), CryptoError> {
    if depth > MAX_DEPTH {
        return Err(json_err("JSON nested too deeply"));
    }
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
        Value::Number(n) => write_number(n, &mut String::new()),
        Value::Array(items) => items.iter().try_for_each(|v| validate_at(v, depth + 1)),
        Value::Object(map) => {
            for (key, member) in map {
                if is_plain_key(key) {
                    validate_at(member, depth + 1)?;
                } else if key == FORGETTABLE {
                    for (field, salt) in forgettable_salts(Some(member))?.into_iter().flatten() {
                        if !is_plain_key(field) || !map.contains_key(field) {
                            return Err(json_err(format!(
                                "forgettable field {field:?} is not a present member"
                            )));
                        }
                        if !salt.is_string() {
                            return Err(json_err(format!(
                                "salt of forgettable field {field:?} must be a string"
                            )));
                        }
                    }
                } else if key == FORGOTTEN {
                    let Value::Object(entries) = member else {
                        return Err(json_err("$forgotten must be an object"));
                    };
                    for (field, hash) in entries {
                        if !is_plain_key(field) || map.contains_key(field) {
                            return Err(json_err(format!(
                                "forgotten field {field:?} is still present"
                            )));
                        }
                        let decoded = hash.as_str().map(cardcash_util::base32::decode);
                        if !matches!(decoded, Some(Ok(bytes)) if bytes.len() == 64) {
                            return Err(json_err(format!(
                                "$forgotten entry of {field:?} is not a 64-byte hash"
                            )));
                        }
                    }
                } else {
                    return Err(json_err(format!("object key {key:?} is not allowed")));
                }
            }
            Ok(())
        }
    }
}

/// `SHA-512(canonical_json(value) ‖ 0x00)` without scrubbing (C `TALER_json_hash`), for JSON
/// whose keys follow the contract rules.
pub fn json_hash(value: &Value) -> Result<HashCode, CryptoError> {
    let mut bytes = canonical_json(value)?.into_bytes();
    bytes.push(0);
    Ok(sha512(&bytes))
}

/// `SHA-512(canonical_json_any_keys(value) ‖ 0x00)`: the C exchange's `TALER_json_hash`
/// (`src/util/util.c`: `json_dumps(JSON_COMPACT | JSON_SORT_KEYS)`, then `TALER_rfc8785encode`,
/// whose length counts the terminating NUL) for any JSON, e.g. account restrictions.
pub fn json_hash_any_keys(value: &Value) -> Result<HashCode, CryptoError> {
    let mut bytes = canonical_json_any_keys(value)?.into_bytes();
    bytes.push(0);
    Ok(sha512(&bytes))
}

/// `h_contract_terms = SHA-512(canonical_json(scrub(contract)) ‖ 0x00)`.
pub fn h_contract_terms(contract: &Value) -> Result<HashCode, CryptoError> {
    json_hash(&scrub(contract)?)
}
