//! JSON Schemas (`schemars`) of the protocol values whose serde form is hand-written, so the
//! merchant's OpenAPI document describes their wire form exactly: `Amount` (`"CUR:V.F"`),
//! `Currency`, `Timestamp` (`{"t_s": n | "never"}`), `RelativeTime` (`{"d_us": n | "forever"}`),
//! the base32 fixed-size values (strings of a fixed length), `BaseUrl` and `LibtoolVersion`.
//! Describes what we send; the lenient input forms (legacy `t_ms`/`d_ms`) are noted only.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::{
    Amount, Base32Bytes, BaseUrl, Currency, EcdhePublicKey, EddsaPublicKey, EddsaSignature,
    HashCode, LibtoolVersion, RelativeTime, ShortHashCode, Timestamp, WireSalt, Wopid,
};

/// The regular expression of an amount's text (`CUR:V` or `CUR:V.F`, at most 8 fraction digits).
pub const AMOUNT_PATTERN: &str = r"^[A-Z]{1,11}:[0-9]{1,16}(\.[0-9]{1,8})?$";

/// The regular expression of a Crockford base32 text of `len` bytes.
pub fn base32_pattern(len: usize) -> String {
    format!("^[0-9A-Za-z]{{{}}}$", (len * 8).div_ceil(5))
}

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": "An amount: currency, value and up to 8 fraction digits, e.g. \"KUDOS:10.5\"",
        })
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[A-Z]{1,11}$"})
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "properties": {
                "t_s": {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "never"}]},
            },
            "required": ["t_s"],
            "description": "Seconds since the Unix epoch, or \"never\" (the legacy {\"t_ms\"} is accepted on input)",
        })
    }
}

impl JsonSchema for RelativeTime {
    fn schema_name() -> Cow<'static, str> {
        "RelativeTime".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "properties": {
                "d_us": {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "forever"}]},
            },
            "required": ["d_us"],
            "description": "Microseconds, or \"forever\" (the legacy {\"d_ms\"} is accepted on input)",
        })
    }
}

impl JsonSchema for BaseUrl {
    fn schema_name() -> Cow<'static, str> {
        "BaseUrl".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "uri", "description": "An http(s) base URL ending in /"})
    }
}

impl JsonSchema for LibtoolVersion {
    fn schema_name() -> Cow<'static, str> {
        "LibtoolVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[0-9]+:[0-9]+:[0-9]+$"})
    }
}

impl JsonSchema for Base32Bytes {
    fn schema_name() -> Cow<'static, str> {
        "Base32".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[0-9A-Za-z]*$", "description": "Crockford base32"})
    }
}

macro_rules! fixed_schema {
    ($($name:ident),+) => {$(
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": base32_pattern($name::LEN),
                    "description": format!("{} bytes, Crockford base32", $name::LEN),
                })
            }
        }
    )+};
}

fixed_schema!(
    EddsaPublicKey,
    EddsaSignature,
    EcdhePublicKey,
    HashCode,
    ShortHashCode,
    WireSalt,
    Wopid
);

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` matches `schema` as far as these schemas go: `type`, `pattern` (anchored, checked
    /// by hand for the few shapes used here), `required`, `oneOf` with `const`.
    fn matches(schema: &serde_json::Value, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        if let Some(c) = schema.get("const") {
            return c == value;
        }
        if let Some(Value::Array(alts)) = schema.get("oneOf") {
            return alts.iter().filter(|s| matches(s, value)).count() == 1;
        }
        match schema["type"].as_str() {
            Some("string") => {
                let Some(s) = value.as_str() else {
                    return false;
                };
                match schema["pattern"].as_str() {
                    Some(AMOUNT_PATTERN) => amount_text(s),
                    Some("^[A-Z]{1,11}$") => {
                        (1..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
                    }
                    Some(p) if p.starts_with("^[0-9A-Za-z]{") => {
                        let n: usize = p["^[0-9A-Za-z]{".len()..p.len() - 2].parse().unwrap();
                        s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric())
                    }
                    Some(p) => panic!("pattern {p} not covered"),
                    None => true,
                }
            }
            Some("integer") => value
                .as_u64()
                .is_some_and(|n| schema["minimum"].as_u64().is_none_or(|m| n >= m)),
            Some("object") => {
                let Some(o) = value.as_object() else {
                    return false;
                };
                let required = schema["required"].as_array().cloned().unwrap_or_default();
                required.iter().all(|k| o.contains_key(k.as_str().unwrap()))
                    && o.iter()
                        .all(|(k, v)| schema["properties"].get(k).is_some_and(|s| matches(s, v)))
            }
            other => panic!("type {other:?} not covered"),
        }
    }

    /// [`AMOUNT_PATTERN`] by hand.
    fn amount_text(s: &str) -> bool {
        let Some((cur, num)) = s.split_once(':') else {
            return false;
        };
        let (v, f) = num
            .split_once('.')
            .map_or((num, None), |(v, f)| (v, Some(f)));
        (1..=11).contains(&cur.len())
            && cur.bytes().all(|b| b.is_ascii_uppercase())
            && (1..=16).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_digit())
            && f.is_none_or(|f| (1..=8).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
    }

    fn check<T: JsonSchema + serde::Serialize>(value: &T) {
        let schema = serde_json::to_value(T::json_schema(&mut SchemaGenerator::default())).unwrap();
        let json = serde_json::to_value(value).unwrap();
        assert!(matches(&schema, &json), "{json} does not match {schema}");
    }

    #[test]
    fn serialized_values_match_their_schemas() {
        for a in [
            "KUDOS:0",
            "KUDOS:10.5",
            "EUR:4503599627370496.00000001",
            "A:1.01",
        ] {
            check(&a.parse::<Amount>().unwrap());
        }
        check(&"KUDOS".parse::<Currency>().unwrap());
        check(&Timestamp::from_secs(1_700_000_000));
        check(&Timestamp::NEVER);
        check(&RelativeTime::from_secs(3600));
        check(&RelativeTime::FOREVER);
        check(&EddsaPublicKey::from_bytes([7; 32]));
        check(&HashCode::from_bytes([255; 64]));
        check(&WireSalt::from_bytes([0; 16]));
    }

    #[test]
    fn the_checker_refuses_other_shapes() {
        let amount =
            serde_json::to_value(Amount::json_schema(&mut SchemaGenerator::default())).unwrap();
        for bad in [
            serde_json::json!("KUDOS"),
            serde_json::json!("kudos:1"),
            serde_json::json!("KUDOS:1.123456789"),
            serde_json::json!(1),
        ] {
            assert!(!matches(&amount, &bad), "{bad}");
        }
        let ts =
            serde_json::to_value(Timestamp::json_schema(&mut SchemaGenerator::default())).unwrap();
        for bad in [
            serde_json::json!({"t_s": "forever"}),
            serde_json::json!({"t_ms": 1}),
            serde_json::json!(5),
        ] {
            assert!(!matches(&ts, &bad), "{bad}");
        }
    }
}
