//! `GET /openapi.json`: the document is well-formed, every route it names is served, and every
//! route the router serves is in it (so the document cannot drift from the code).

use std::collections::BTreeSet;

use cardcash_testkit::{Engine, engine_test};
use serde_json::{Value, json};

use crate::helpers::Env;

const ADMIN: &str = "secret-token:openapi-admin";

/// Whether an answer means "the router has no such route" (rather than a handler's answer, such
/// as a Taler 404 for an unknown order): a 405, or a 404 without a Taler code or with
/// `GENERIC_ENDPOINT_UNKNOWN` (21, the router's fallback).
fn no_route(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body["code"].as_u64().is_none_or(|c| c == 21))
}

/// `method {base}{path}` with the admin token and, for POST/PATCH, `{}`: status and JSON body
/// (`Null` for non-JSON answers, whose body is not read: the event stream never ends).
async fn call(env: &Env, method: &str, path: &str) -> (u16, Value) {
    call_as(env, method, path, Some(ADMIN)).await
}

/// [`call`] presenting `token` (none: no `Authorization` header).
async fn call_as(env: &Env, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("{}{}", env.base.trim_end_matches('/'), path);
    let method: reqwest::Method = method.to_uppercase().parse().expect("method");
    let mut req = env
        .http
        .request(method.clone(), url)
        .header("Accept", "application/json");
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    if method == reqwest::Method::POST || method == reqwest::Method::PATCH {
        req = req.json(&json!({}));
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let json = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = if json {
        r.json().await.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    (status, body)
}

/// Every `"$ref"` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => out.push(s),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The path strings of every `.route("…"` in the merchant's router sources.
fn routed_paths() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("source");
        for (i, _) in src.match_indices(".route(") {
            let rest = src[i + ".route(".len()..].trim_start();
            let rest = rest
                .strip_prefix('"')
                .expect("a literal path after .route(");
            let end = rest.find('"').expect("closing quote");
            paths.insert(rest[..end].to_owned());
        }
    }
    paths
}

engine_test!(
    /// The document is OpenAPI 3.1 whose references resolve; every documented operation is
    /// served (at `/…` and under `/instances/{instance}/…`); every routed path is documented.
    async fn openapi_document_matches_the_router(engine: Engine) {
        let env = Env::with(engine, |c| c.admin_token = Some(ADMIN.to_owned())).await;
        let (status, doc) = env.get("openapi.json").await;
        assert_eq!(status, 200, "{doc}");

        // (a) Well-formed.
        assert_eq!(doc["openapi"], "3.1.0");
        let (_, config) = env.get("config").await;
        assert_eq!(doc["info"]["version"], config["version"]);
        assert!(doc["info"]["title"].is_string());
        assert_eq!(doc["servers"][0]["url"], env.base.as_str());
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() > 30, "{}", paths.len());
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} is not a component schema"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );

        // The discriminator below does tell a missing route from a handler's answer.
        let (s, b) = call(&env, "get", "/no/such/route").await;
        assert!(no_route(s, &b), "{s} {b}");
        let (s, b) = call(&env, "put", "/config").await;
        assert!(no_route(s, &b), "{s} {b}");
        let (s, b) = call(&env, "get", "/private/orders/nosuch").await;
        assert!(!no_route(s, &b), "{s} {b}");

        // (b) Every documented operation is served.
        let mut operations = 0;
        for (path, item) in paths {
            let concrete = path
                .replace("{instance}", "nosuch")
                .replace("{order_id}", "nosuch-order")
                .replace("{product_id}", "nosuch-product")
                .replace("{webhook_id}", "nosuch-webhook")
                .replace("{serial}", "1")
                .replace("{tid}", "1")
                .replace("{session_id}", "nosuch-session")
                .replace("{h_wire}", &"0".repeat(103));
            assert!(!concrete.contains('{'), "unfilled parameter in {path}");
            for (method, op) in item.as_object().expect("path item") {
                assert!(op["summary"].is_string(), "{method} {path}");
                assert!(op["responses"].is_object(), "{method} {path}");
                let (status, body) = call(&env, method, &concrete).await;
                assert!(
                    !no_route(status, &body),
                    "{method} {path} is documented but not served: {status} {body}"
                );
                operations += 1;
            }
        }
        assert!(operations > 60, "{operations}");

        // Every operation that documents a bearer requirement refuses a request without
        // credentials (401 2015) or with a wrong token, before it reads anything else.
        let password_hash = cardcash_crypto::password::hash(b"pw").unwrap();
        crate::helpers::create_instance(&env, "default", None, |row| {
            row.auth = cardcash_merchant::db::instances::InstanceAuth::Token { password_hash };
        })
        .await;
        let mut guarded = 0;
        for (path, item) in paths {
            if path.starts_with("/instances/") {
                continue;
            }
            let concrete = path
                .replace("{order_id}", "nosuch-order")
                .replace("{product_id}", "nosuch-product")
                .replace("{webhook_id}", "nosuch-webhook")
                .replace("{serial}", "1")
                .replace("{tid}", "1")
                .replace("{session_id}", "nosuch-session")
                .replace("{h_wire}", &"0".repeat(103));
            for (method, op) in item.as_object().expect("path item") {
                if !matches!(method.as_str(), "get" | "delete")
                    || op
                        .get("security")
                        .is_none_or(|s| s.as_array().is_none_or(Vec::is_empty))
                {
                    continue;
                }
                for token in [None, Some("secret-token:wrong")] {
                    let (status, body) = call_as(&env, method, &concrete, token).await;
                    assert_eq!(
                        (status, body["code"].as_u64()),
                        (401, Some(2015)),
                        "{method} {path} with {token:?}: {body}"
                    );
                }
                guarded += 1;
            }
        }
        assert!(guarded > 20, "{guarded}");

        // (c) Every routed path is documented (instance-relative ones under both prefixes).
        let routed = routed_paths();
        assert!(routed.contains("/private/orders"), "{routed:?}");
        for path in &routed {
            assert!(
                paths.contains_key(path.as_str()),
                "{path} is routed but not in the OpenAPI document"
            );
            if path.starts_with("/private") || path.starts_with("/orders") {
                let nested = format!("/instances/{{instance}}{path}");
                assert!(paths.contains_key(&nested), "{nested} is not documented");
            }
        }
    }
);
