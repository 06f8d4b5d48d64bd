//! Contract-terms JSON as the backend builds and edits it: the guide's `_forgettable` read as
//! `$forgettable`, forgettable markers salted, and fields forgotten by JSONPath-like paths
//! without changing the contract hash.
//!
//! The hash itself is `cardcash_crypto::contract::h_contract_terms` (what wallet-core and the C
//! merchant compute); this module never hashes differently, it only prepares what is hashed.
//! Spec: /work/shared/spec/merchant.md §2.2 (forgettable), §2.3 (hash), §2.8 (forget).

use cardcash_crypto::contract;
use serde_json::{Map, Value};

const FORGETTABLE: &str = "$forgettable";
const FORGOTTEN: &str = "$forgotten";
/// The merchant guide's (seed 003) spelling of `$forgettable`, a list of field names.
const LEGACY_FORGETTABLE: &str = "_forgettable";

/// Why a contract cannot be built or edited as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The order's forgettable markers are malformed (400 `PROPOSAL_PARSE_ERROR`).
    #[error("{0}")]
    Malformed(String),
    /// A forget path is not `$.a.b`, `[n]`, `[*]` ending on a field (400).
    #[error("forget path {0:?}: {1}")]
    PathSyntax(String, String),
    /// A forget path names a field that is not forgettable (409).
    #[error("field at {0:?} is not forgettable")]
    NotForgettable(String),
}

/// Rewrites, at every depth, the guide's `_forgettable` into `$forgettable`: a list of names
/// `["image"]` becomes `{"image": true}` (a salt is drawn by [`salt_forgettable`]); an object
/// is taken as is. Names already in a `$forgettable` of the same object keep that entry.
pub fn normalize_legacy_forgettable(value: &mut Value) -> Result<(), ContractError> {
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(normalize_legacy_forgettable),
        Value::Object(map) => {
            if let Some(legacy) = map.remove(LEGACY_FORGETTABLE) {
                let names: Map<String, Value> = match legacy {
                    Value::Array(items) => items
                        .into_iter()
                        .map(|item| match item {
                            Value::String(name) => Ok((name, Value::Bool(true))),
                            other => Err(ContractError::Malformed(format!(
                                "_forgettable lists field names, not {other}"
                            ))),
                        })
                        .collect::<Result<_, _>>()?,
                    Value::Object(entries) => entries,
                    other => {
                        return Err(ContractError::Malformed(format!(
                            "_forgettable must be a list of field names, not {other}"
                        )));
                    }
                };
                let target = map
                    .entry(FORGETTABLE)
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(target) = target else {
                    return Err(ContractError::Malformed(
                        "$forgettable must be an object".into(),
                    ));
                };
                for (name, marker) in names {
                    target.entry(name).or_insert(marker);
                }
            }
            map.iter_mut()
                .filter(|(k, _)| !k.starts_with('$'))
                .try_for_each(|(_, v)| normalize_legacy_forgettable(v))
        }
        _ => Ok(()),
    }
}

/// Replaces every `true` in a `$forgettable` (at every depth) by a fresh random salt, as the
/// C merchant does at order creation; a string salt given by the front end is kept. Each named
/// field must be present in its object, and no forgettable marker may name a field in
/// `protected` at the top level (fields the contract cannot do without).
pub fn salt_forgettable(
    value: &mut Value,
    protected: &[&str],
    salt: &mut impl FnMut() -> String,
) -> Result<(), ContractError> {
    salt_at(value, protected, salt)
}

fn salt_at(
    value: &mut Value,
    protected: &[&str],
    salt: &mut impl FnMut() -> String,
) -> Result<(), ContractError> {
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(|v| salt_at(v, &[], salt)),
        Value::Object(map) => {
            let present: Vec<String> = map.keys().cloned().collect();
            if let Some(marker) = map.get_mut(FORGETTABLE) {
                match marker {
                    Value::Object(entries) => {
                        for (name, entry) in entries.iter_mut() {
                            if protected.contains(&name.as_str()) {
                                return Err(ContractError::Malformed(format!(
                                    "field {name:?} cannot be forgettable"
                                )));
                            }
                            if !present.contains(name) {
                                return Err(ContractError::Malformed(format!(
                                    "forgettable field {name:?} is not present"
                                )));
                            }
                            match entry {
                                Value::Bool(true) => *entry = Value::String(salt()),
                                Value::String(s) if !s.is_empty() => {}
                                other => {
                                    return Err(ContractError::Malformed(format!(
                                        "forgettable marker of {name:?} must be true or a salt, not {other}"
                                    )));
                                }
                            }
                        }
                    }
                    Value::Array(items) if items.is_empty() => {
                        map.remove(FORGETTABLE);
                    }
                    _ => {
                        return Err(ContractError::Malformed(
                            "$forgettable must be an object".into(),
                        ));
                    }
                }
            }
            map.iter_mut()
                .filter(|(k, _)| !k.starts_with('$'))
                .try_for_each(|(_, v)| salt_at(v, &[], salt))
        }
        _ => Ok(()),
    }
}

/// One step of a forget path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
    All,
}

/// Parses `$.a.b[0].c`, `$.products[*].image`: it must start with `$.` and end on a field.
fn parse_path(path: &str) -> Result<Vec<Step>, ContractError> {
    let bad = |why: &str| ContractError::PathSyntax(path.to_owned(), why.to_owned());
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("must start with `$.`"))?;
    if !rest.starts_with('.') {
        return Err(bad("must start with `$.`"));
    }
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(bad("a field name is empty or not [0-9A-Za-z_]"));
                }
                steps.push(Step::Field(name));
            }
            '[' => {
                let mut index = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(c) => index.push(c),
                        None => return Err(bad("unclosed `[`")),
                    }
                }
                if index == "*" {
                    steps.push(Step::All);
                } else {
                    let n = index
                        .parse::<usize>()
                        .map_err(|_| bad("an index is a number or `*`"))?;
                    steps.push(Step::Index(n));
                }
            }
            _ => return Err(bad("expected `.` or `[`")),
        }
    }
    if !matches!(steps.last(), Some(Step::Field(_))) {
        return Err(bad("must end on an object field"));
    }
    Ok(steps)
}

/// Checks the syntax of every path (before anything is looked up).
pub fn check_paths(paths: &[String]) -> Result<(), ContractError> {
    paths.iter().try_for_each(|p| parse_path(p).map(|_| ()))
}

/// Forgets the fields `paths` name in `terms`: each becomes its salted hash in `$forgotten`
/// (exactly what `h_contract_terms` puts there), its salt leaves `$forgettable` (wallet-core
/// refuses a salt for an absent field), an emptied `$forgettable` is dropped. The contract hash
/// does not change. Paths that name nothing are ignored; a field already forgotten stays so.
/// Returns whether anything changed.
pub fn forget(terms: &mut Value, paths: &[String]) -> Result<bool, ContractError> {
    let mut changed = false;
    for path in paths {
        let steps = parse_path(path)?;
        forget_at(terms, &steps, path, &mut changed)?;
    }
    Ok(changed)
}

fn forget_at(
    value: &mut Value,
    steps: &[Step],
    path: &str,
    changed: &mut bool,
) -> Result<(), ContractError> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(());
    };
    match (step, value) {
        (Step::Field(name), Value::Object(map)) if rest.is_empty() => {
            forget_field(map, name, path, changed)
        }
        (Step::Field(name), Value::Object(map)) => match map.get_mut(name) {
            Some(child) if !name.starts_with('$') => forget_at(child, rest, path, changed),
            _ => Ok(()),
        },
        (Step::Index(i), Value::Array(items)) => match items.get_mut(*i) {
            Some(child) => forget_at(child, rest, path, changed),
            None => Ok(()),
        },
        (Step::All, Value::Array(items)) => items
            .iter_mut()
            .try_for_each(|child| forget_at(child, rest, path, changed)),
        (Step::All, Value::Object(map)) => map
            .iter_mut()
            .filter(|(k, _)| !k.starts_with('$'))
            .try_for_each(|(_, child)| forget_at(child, rest, path, changed)),
        // The path leads nowhere in this contract: ignored, as the C merchant does.
        _ => Ok(()),
    }
}

fn forget_field(
    map: &mut Map<String, Value>,
    name: &str,
    path: &str,
    changed: &mut bool,
) -> Result<(), ContractError> {
    let already = map
        .get(FORGOTTEN)
        .and_then(Value::as_object)
        .is_some_and(|f| f.contains_key(name));
    if already {
        return Ok(());
    }
    let Some(member) = map.get(name) else {
        return Ok(());
    };
    let salt = match map.get(FORGETTABLE).and_then(|f| f.get(name)) {
        Some(Value::String(salt)) => salt.clone(),
        _ => return Err(ContractError::NotForgettable(path.to_owned())),
    };
    // The hash scrub() puts in `$forgotten` for this one field (same salt, same value).
    let mut single = Map::new();
    single.insert(name.to_owned(), member.clone());
    let mut salts = Map::new();
    salts.insert(name.to_owned(), Value::String(salt));
    single.insert(FORGETTABLE.to_owned(), Value::Object(salts));
    let scrubbed = contract::scrub(&Value::Object(single))
        .map_err(|e| ContractError::Malformed(e.to_string()))?;
    let hash = scrubbed
        .get(FORGOTTEN)
        .and_then(|f| f.get(name))
        .cloned()
        .ok_or_else(|| ContractError::Malformed("scrub left no hash".into()))?;
    map.remove(name);
    if let Some(Value::Object(salts)) = map.get_mut(FORGETTABLE) {
        salts.remove(name);
        if salts.is_empty() {
            map.remove(FORGETTABLE);
        }
    }
    let forgotten = map
        .entry(FORGOTTEN)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(forgotten) = forgotten {
        forgotten.insert(name.to_owned(), hash);
    }
    *changed = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn salter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("SALT{n}")
        }
    }

    #[test]
    fn the_guides_forgettable_list_becomes_salted_markers() {
        let mut v = json!({"image": "x", "_forgettable": ["image"], "nested": {"_forgettable": {"a": true}, "a": 1}});
        normalize_legacy_forgettable(&mut v).unwrap();
        salt_forgettable(&mut v, &[], &mut salter()).unwrap();
        assert_eq!(v["$forgettable"], json!({"image": "SALT1"}));
        assert_eq!(v["nested"]["$forgettable"], json!({"a": "SALT2"}));
        assert!(v.get("_forgettable").is_none());
        contract::validate_forgettable(&v).unwrap();
    }

    #[test]
    fn forgettable_markers_are_checked() {
        let mut v = json!({"$forgettable": {"gone": true}});
        assert!(salt_forgettable(&mut v, &[], &mut salter()).is_err());
        let mut v = json!({"amount": "K:1", "$forgettable": {"amount": true}});
        assert!(salt_forgettable(&mut v, &["amount"], &mut salter()).is_err());
        let mut v = json!({"a": 1, "$forgettable": {"a": 5}});
        assert!(salt_forgettable(&mut v, &[], &mut salter()).is_err());
    }

    #[test]
    fn forgetting_keeps_the_hash() {
        let mut v = json!({
            "summary": "s",
            "extra": {"name": "Ada", "street": "Main", "$forgettable": {"name": true, "street": true}},
            "products": [{"description": "piano", "image": "data:", "$forgettable": {"image": true}}]
        });
        salt_forgettable(&mut v, &[], &mut salter()).unwrap();
        let before = contract::h_contract_terms(&v).unwrap();
        assert!(
            forget(
                &mut v,
                &["$.extra.name".into(), "$.products[*].image".into()]
            )
            .unwrap()
        );
        assert!(v["extra"].get("name").is_none());
        assert!(v["products"][0].get("image").is_none());
        assert_eq!(v["extra"]["$forgettable"], json!({"street": "SALT2"}));
        contract::validate_forgettable(&v).unwrap();
        assert_eq!(contract::h_contract_terms(&v).unwrap(), before);
        // again: nothing changes
        assert!(!forget(&mut v, &["$.extra.name".into(), "$.nothing.here".into()]).unwrap());
        assert_eq!(
            forget(&mut v, &["$.summary".into()]),
            Err(ContractError::NotForgettable("$.summary".into()))
        );
    }

    #[test]
    fn paths_are_parsed_strictly() {
        for bad in [
            "extra.name",
            "$extra",
            "$.",
            "$.a[",
            "$.a[x]",
            "$.a[0]",
            "$.a-b",
        ] {
            assert!(check_paths(&[bad.into()]).is_err(), "{bad}");
        }
        check_paths(&["$.a.b".into(), "$.a[3].b".into(), "$.a[*].b".into()]).unwrap();
    }
}
