//! Canonical JSON: what is rejected, how strings are escaped, and stability properties.

use cardcash_crypto::CryptoError;
use cardcash_crypto::contract::{
    canonical_json, h_contract_terms, json_hash, scrub, validate_forgettable,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn rejects(v: Value) {
    assert!(
        matches!(canonical_json(&v), Err(CryptoError::Json(_))),
        "{v}"
    );
    assert!(h_contract_terms(&v).is_err());
}

#[test]
fn floats_unsafe_integers_and_bad_keys_are_rejected() {
    rejects(json!({"a": 1.5}));
    rejects(json!({"a": 1.0}));
    rejects(json!([9007199254740992u64]));
    rejects(json!([-9007199254740992i64]));
    rejects(json!({"a-b": 1}));
    rejects(json!({"": 1}));
    rejects(json!({"$other": 1}));
    rejects(json!({"ok": {"bad key": 1}}));
    assert_eq!(
        canonical_json(&json!([9007199254740991u64, -9007199254740991i64])).expect("safe"),
        "[9007199254740991,-9007199254740991]"
    );
}

/// Issue 6 §10: jansson reads the JSON text `-0` as the integer 0 and wallet-core's
/// `JSON.stringify(-0)` is `"0"`; both hash it as `0` (we used to refuse it as a float).
#[test]
fn negative_zero_hashes_as_the_integer_zero() {
    let parse = |text: &str| serde_json::from_str::<Value>(text).expect("json");
    let top = parse(r#"{"a":-0}"#);
    assert_eq!(canonical_json(&top).expect("-0 is 0"), r#"{"a":0}"#);
    // Known answer: SHA-512 of `{"a":0}` and NUL, computed independently (Python hashlib).
    assert_eq!(
        h_contract_terms(&top).expect("hash").to_string(),
        "Z2GYPX0D6N81J4EEEJW8G244PERXD2VK1A1A0GY1PFND9W4PN8MYQVV8766DX0Q3W6M41JTW84WXPV6APR3HA9EZPFKK2PVJ3XXDH88"
    );
    let nested = parse(r#"[{"x":[-0,1]}]"#);
    assert_eq!(
        canonical_json(&nested).expect("nested -0"),
        r#"[{"x":[0,1]}]"#
    );
    assert_eq!(
        h_contract_terms(&nested).expect("hash").to_string(),
        "V1CNT4APN4X3VA3DRTV8B9FZRR7JGF7SP9ZTJGR1140DMK93TS2YGVCQPCT02RW9NPF0GMZH5YWXKRV97C0RESFX505F0NGHCFTVYWG"
    );
    // A forgettable member holding -0 is salted and hashed as 0 too.
    let forgettable = parse(r#"{"a":-0,"$forgettable":{"a":"SALT"}}"#);
    let plain = parse(r#"{"a":0,"$forgettable":{"a":"SALT"}}"#);
    assert_eq!(
        h_contract_terms(&forgettable).expect("hash"),
        h_contract_terms(&plain).expect("hash")
    );
    // Every other float is still refused, including the zero written as a float.
    for text in ["0.0", "1.0", "-1.5", "1e3", "-0.5", "5e-324"] {
        rejects(parse(&format!(r#"{{"a":{text}}}"#)));
    }
}

#[test]
fn strings_are_escaped_like_json_stringify() {
    let v = json!({"s": "q\"b\\\u{8}\t\n\u{c}\r\u{1}\u{1f}\u{7f}é✓/"});
    assert_eq!(
        canonical_json(&v).expect("ok"),
        "{\"s\":\"q\\\"b\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u{7f}é✓/\"}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut v = json!(1);
    for _ in 0..200 {
        v = json!([v]);
    }
    assert!(canonical_json(&v).is_err());
    assert!(scrub(&v).is_err());
}

#[test]
fn malformed_forgettable_markers_are_rejected() {
    for bad in [
        json!({"a": 1, "$forgettable": true}),
        json!({"a": 1, "$forgettable": {"a": true}}),
        json!({"$forgettable": {"a": "SALT"}}),
        json!({"a": 1, "$forgettable": {"a": "SALT"}, "$forgotten": []}),
    ] {
        assert!(matches!(scrub(&bad), Err(CryptoError::Json(_))), "{bad}");
    }
}

/// SHA-512 of `{}` and NUL (Python hashlib, independent of this crate).
const H_EMPTY_OBJECT: &str = "R2ZV38GDA2PJ7W14K1AD0F3HRNHP9HQVV60QZ43V6D9D2JRTTXV9WC3YZKEDE5XT32WXPV94SW38QFW32QVXV3D1QW6VEQWY2ZGJYR0";

/// Issue 6 §10: an empty `$forgettable` is dropped with nothing added, as wallet-core and the C
/// merchant do (we used to emit `"$forgotten":{}` and so hashed differently).
#[test]
fn empty_forgettable_leaves_no_trace() {
    for empty in [json!({"$forgettable": {}}), json!({"$forgettable": []})] {
        assert_eq!(scrub(&empty).expect("scrub"), json!({}), "{empty}");
        assert_eq!(
            h_contract_terms(&empty).expect("hash").to_string(),
            H_EMPTY_OBJECT,
            "{empty}"
        );
    }
    // Nested, in arrays, beside other members: `{"a":[{}],"b":1}` (Python hashlib).
    let nested = json!({"a": [{"$forgettable": {}}], "b": 1, "$forgettable": []});
    assert_eq!(scrub(&nested).expect("scrub"), json!({"a": [{}], "b": 1}));
    assert_eq!(
        h_contract_terms(&nested).expect("hash").to_string(),
        "RKCEGP9NB0WBX0J44EREHYRKKSTNC33NYP29V7HF21Z5JQVB27FRECQQQQ1DFEANW3Z8KKX9FMMQ4MDBG9AZRCRVW63T4C80RYY3WG0"
    );
    // An existing (even empty) `$forgotten` stays; it is not invented.
    assert_eq!(
        scrub(&json!({"$forgettable": {}, "$forgotten": {}})).expect("scrub"),
        json!({"$forgotten": {}})
    );
}

/// Issue 6 §10: the C merchant drops a member named in `$forgotten` before hashing; we hash
/// what it hashes. wallet-core refuses such a contract up front: `validate_forgettable`.
#[test]
fn member_both_present_and_forgotten_is_dropped_like_the_c_merchant() {
    let contract = json!({"a": 1, "b": 2, "$forgotten": {"a": "H"}});
    assert_eq!(
        scrub(&contract).expect("scrub"),
        json!({"b": 2, "$forgotten": {"a": "H"}})
    );
    // SHA-512 of `{"$forgotten":{"a":"H"},"b":2}` and NUL (Python hashlib).
    assert_eq!(
        h_contract_terms(&contract).expect("hash").to_string(),
        "G1PZY3AVZK37HS2EAHEXW6EBKPH0KBD82VQHVR1CQW3A4NNHEYBERG6K03B1KRFXSMC8NN386VD02N8KEKX9JQ7FT6BFXNV9P8AT1P8"
    );
    // Also when it is salted too: the existing entry wins and the member goes.
    let salted = json!({"a": 1, "$forgettable": {"a": "S"}, "$forgotten": {"a": "H"}});
    assert_eq!(
        scrub(&salted).expect("scrub"),
        json!({"$forgotten": {"a": "H"}})
    );
    // A salt for a field forgotten earlier needs no member (both implementations accept it).
    let gone = json!({"$forgettable": {"a": "S"}, "$forgotten": {"a": "H"}});
    assert_eq!(
        scrub(&gone).expect("scrub"),
        json!({"$forgotten": {"a": "H"}})
    );
    assert!(matches!(
        validate_forgettable(&contract),
        Err(CryptoError::Json(_))
    ));
    assert!(validate_forgettable(&scrub(&contract).expect("scrub")).is_err()); // "H" is no hash
}

#[test]
fn forgettable_inputs_the_two_implementations_read_differently_are_refused() {
    for bad in [
        // wallet-core keeps a non-object `$forgettable` in the hash, the C merchant drops it.
        json!({"a": 1, "$forgettable": "S"}),
        json!({"a": 1, "$forgettable": 0}),
        json!({"a": 1, "$forgettable": null}),
        json!({"a": 1, "$forgettable": ["S"]}),
        // A `$forgotten` that is not an object (jansson shares `null`/`true` singletons).
        json!({"a": null, "$forgotten": null}),
        json!({"a": true, "$forgotten": true}),
        // wallet-core recomputes a falsy `$forgotten` entry, the C merchant keeps it.
        json!({"a": 1, "$forgettable": {"a": "S"}, "$forgotten": {"a": ""}}),
        json!({"a": 1, "$forgettable": {"a": "S"}, "$forgotten": {"a": 0}}),
        // A salt without its member (wallet-core fails, the C merchant ignores the salt).
        json!({"$forgettable": {"a": "S"}, "$forgotten": {"b": "H"}}),
    ] {
        assert!(matches!(scrub(&bad), Err(CryptoError::Json(_))), "{bad}");
        assert!(h_contract_terms(&bad).is_err(), "{bad}");
    }
}

#[test]
fn validate_forgettable_is_wallet_cores_check() {
    let salted = json!({
        "k1": 1,
        "$forgettable": {"k1": "SALT"},
        "k2": {"n1": true, "$forgettable": {"n1": "salt"}},
        "k3": {"n1": "string", "$forgettable": []},
    });
    validate_forgettable(&salted).expect("salted contract");
    let scrubbed = scrub(&salted).expect("scrub");
    validate_forgettable(&scrubbed).expect("scrubbed contract");
    assert_eq!(
        json_hash(&scrubbed).expect("hash"),
        h_contract_terms(&salted).expect("hash")
    );
    for bad in [
        json!({"$forgettable": {"a": "S"}}),
        json!({"a": 1, "$forgettable": {"a": true}}),
        json!({"a": 1, "$forgettable": "S"}),
        json!({"$forgotten": {"a": "SHORT"}}),
        json!({"$forgotten": {"a": 1}}),
        json!({"$forgotten": []}),
        json!({"a-b": 1}),
        json!({"$other": 1}),
        json!([{"a": 1.5}]),
    ] {
        assert!(
            matches!(validate_forgettable(&bad), Err(CryptoError::Json(_))),
            "{bad}"
        );
    }
}

#[test]
fn forgetting_is_recursive_and_keeps_existing_entries() {
    let nested = json!({"outer": {"x": 1, "y": 2, "$forgettable": {"y": "S"}}});
    let scrubbed = scrub(&nested).expect("scrub");
    assert!(scrubbed["outer"].get("y").is_none());
    assert!(scrubbed["outer"]["$forgotten"]["y"].is_string());
    assert!(scrubbed["outer"].get("$forgettable").is_none());
    // An already forgotten entry is kept as is.
    let pre = json!({"y": 2, "$forgettable": {"y": "S"}, "$forgotten": {"y": "KEEP"}});
    assert_eq!(
        scrub(&pre).expect("scrub"),
        json!({"$forgotten": {"y": "KEEP"}})
    );
    // Forgetting a field keeps the contract hash: the hash commits to the forgotten form.
    assert_eq!(
        h_contract_terms(&nested).expect("h"),
        h_contract_terms(&scrubbed).expect("h")
    );
}

fn key_strategy() -> impl Strategy<Value = String> {
    "[0-9A-Za-z_]{1,8}"
}

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-9_007_199_254_740_991i64..=9_007_199_254_740_991i64).prop_map(|i| json!(i)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key_strategy(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The same value with every object's keys inserted in reverse order.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            let mut entries: Vec<_> = map.iter().collect();
            entries.reverse();
            for (k, child) in entries {
                out.insert(k.clone(), reversed(child));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn canonical_json_is_valid_json_of_the_same_value(v in json_strategy()) {
        let text = canonical_json(&v).expect("legal input");
        let back: Value = serde_json::from_str(&text).expect("parses");
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(canonical_json(&back).expect("again"), text.clone());
        prop_assert!(!text.contains('\n'));
    }

    #[test]
    fn canonical_json_ignores_key_order(v in json_strategy()) {
        prop_assert_eq!(canonical_json(&reversed(&v)).expect("ok"), canonical_json(&v).expect("ok"));
        prop_assert_eq!(h_contract_terms(&reversed(&v)).expect("ok"), h_contract_terms(&v).expect("ok"));
    }

    #[test]
    fn canonical_json_never_panics_on_parsed_input(text in "\\PC{0,64}") {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            let _ = canonical_json(&v);
            let _ = scrub(&v);
        }
    }
}
