//! Instances, authentication, login tokens and bank accounts, on both engines.

use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{HashCode, WireSalt};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::Env;

const IBAN: &str = "payto://iban/CH9300762011623852957";

/// `method {base}{path}` with an optional `Authorization` header and JSON body: status and
/// JSON body (`Value::Null` when empty).
async fn call(
    env: &Env,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = env.http.request(method, format!("{}{path}", env.base));
    if let Some(auth) = auth {
        r = r.header("Authorization", auth);
    }
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn bearer(secret: &str) -> String {
    format!("Bearer secret-token:{secret}")
}

/// `Basic base64(user:password)` (a small encoder: the crate does not depend on base64).
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// The guide's Pretty Pianos request, exactly as written (seed 003, "Pre-Sales Configuration").
fn pretty_pianos() -> Value {
    serde_json::from_str(
        r#"{
          "accounts": [{"payto_uri":"payto://iban/CH9300762011623852957"}],
          "id": "default",
          "name": "Pretty Pianos",
          "auth":
          {
            "method": "external",
            "token": "secret-token:eighty-eight-keys"
          },
          "default_max_wire_fee": "KUDOS:5.0",
          "default_wire_fee_amortization": 1,
          "default_max_deposit_fee": "KUDOS:10.0",
          "default_wire_transfer_delay": "2 days",
          "default_pay_delay": "5 hours"
        }"#,
    )
    .unwrap()
}

/// Creates instance `id` protected by `password` (current protocol shape).
async fn token_instance(env: &Env, id: &str, password: &str) {
    let (status, body) = call(
        env,
        Method::POST,
        "management/instances",
        None,
        Some(json!({
            "id": id,
            "name": format!("Shop {id}"),
            "auth": {"method": "token", "password": password},
            "address": {"country": "CH", "town": "Bern"},
            "jurisdiction": {"country": "CH"},
            "use_stefan": true,
            "default_pay_delay": {"d_us": 3_600_000_000u64},
            "default_refund_delay": {"d_us": 0},
            "default_wire_transfer_delay": {"d_us": "forever"},
            "email": "shop@example.com",
            "website": "https://shop.example/",
            "phone_number": "+41 31 000 00 00",
            "logo": "data:image/png;base64,AAAA"
        })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

/// A login token of `scope` for instance `id`, logged in with its password (HTTP Basic).
async fn login(env: &Env, id: &str, password: &str, scope: &str, extra: Value) -> Value {
    let mut req = json!({"scope": scope, "description": format!("{scope} for tests")});
    req.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, body) = call(
        env,
        Method::POST,
        &format!("instances/{id}/private/token"),
        Some(&basic(id, password)),
        Some(req),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn access(token: &Value) -> String {
    format!("Bearer {}", token["access_token"].as_str().unwrap())
}

engine_test!(
    /// The guide's pre-sales configuration request works exactly as written: 204, the instance
    /// serves its settings (durations as the protocol writes them), its account's h_wire is
    /// the hash of the payto URI and its salt, a replay is a no-op and a different request 409.
    async fn the_guides_pretty_pianos_request_creates_the_default_instance(engine: Engine) {
        let env = Env::new(engine).await;
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(pretty_pianos()),
        )
        .await;
        assert_eq!(status, 204, "{body}");

        // External auth: the private API needs nothing (a proxy would guard it).
        let (status, me) = env.get("private").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["name"], "Pretty Pianos");
        assert_eq!(me["auth"], json!({"method": "external"}));
        assert_eq!(me["default_max_wire_fee"], "KUDOS:5");
        assert_eq!(me["default_max_deposit_fee"], "KUDOS:10");
        assert_eq!(me["default_wire_fee_amortization"], 1);
        assert_eq!(
            me["default_wire_transfer_delay"],
            json!({"d_us": 2u64 * 86_400_000_000})
        );
        assert_eq!(
            me["default_pay_delay"],
            json!({"d_us": 5u64 * 3_600_000_000})
        );
        assert!(!me.to_string().contains("eighty-eight-keys"), "{me}");
        let account = &me["accounts"][0];
        assert_eq!(account["payto_uri"], IBAN);
        let salt: WireSalt = serde_json::from_value(account["salt"].clone()).unwrap();
        let h_wire: HashCode = serde_json::from_value(account["h_wire"].clone()).unwrap();
        assert_eq!(h_wire, cardcash_crypto::wire::h_wire(IBAN, &salt));
        // The same at /instances/default/.
        let (status, again) = env.get("instances/default/private").await;
        assert_eq!(status, 200);
        assert_eq!(again["merchant_pub"], me["merchant_pub"]);

        // A replay changes nothing (not even the key).
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(pretty_pianos()),
        )
        .await;
        assert_eq!(status, 204);
        assert_eq!(
            env.get("private").await.1["merchant_pub"],
            me["merchant_pub"]
        );
        // A different request for the same id is a conflict.
        let mut other = pretty_pianos();
        other["name"] = json!("Plain Pianos");
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(other),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (409, Some(2600)), "{body}");
        let mut other = pretty_pianos();
        other["accounts"] = json!([]);
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(other),
        )
        .await;
        assert_eq!(status, 409);

        let (status, list) = env.get("management/instances").await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["instances"][0]["id"], "default");
        assert_eq!(list["instances"][0]["payment_targets"], json!(["iban"]));
        assert_eq!(list["instances"][0]["deleted"], false);
    }
);

engine_test!(
    /// Today's request shape: auth by password (or the legacy `token`), address, jurisdiction,
    /// STEFAN, `{"d_us"}` delays; bad ids and bad auth blocks are refused; GET never shows the
    /// password; the instance's private API wants its password (extra spaces after Bearer are
    /// fine), and management wants the default instance's credentials once it has some.
    async fn instances_in_the_current_shape_are_protected_by_their_password(engine: Engine) {
        let env = Env::new(engine).await;
        token_instance(&env, "shop", "hunter2").await;
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(json!({
                "id": "legacy",
                "name": "Legacy",
                "auth": {"method": "token", "token": "secret-token:old-style"},
                "payto_uris": [IBAN],
                "default_pay_delay": {"d_us": 1},
                "default_wire_transfer_delay": {"d_us": 2}
            })),
        )
        .await;
        assert_eq!(status, 204, "{body}");

        for bad_id in ["x", "-shop", "a/b", "shop!"] {
            let (status, _) = call(
                &env,
                Method::POST,
                "management/instances",
                None,
                Some(json!({"id": bad_id, "name": "n", "auth": {"method": "external"}})),
            )
            .await;
            assert_eq!(status, 400, "{bad_id}");
        }
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(json!({"id": "nopass", "name": "n", "auth": {"method": "token"}})),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(2601)), "{body}");

        // The private API: no credentials / wrong ones 401; the password opens it.
        let (status, body) = env.get("instances/shop/private").await;
        assert_eq!((status, body["code"].as_u64()), (401, Some(2015)), "{body}");
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&bearer("wrong")),
            None,
        )
        .await;
        assert_eq!(status, 401);
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some("Bearer hunter2"),
            None,
        )
        .await;
        assert_eq!(status, 401);
        let (status, me) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some("Bearer    secret-token:hunter2"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["auth"], json!({"method": "token"}));
        assert_eq!(me["use_stefan"], true);
        assert_eq!(me["address"]["town"], "Bern");
        assert_eq!(me["default_pay_delay"], json!({"d_us": 3_600_000_000u64}));
        assert_eq!(
            me["default_wire_transfer_delay"],
            json!({"d_us": "forever"})
        );
        assert_eq!(me["email"], "shop@example.com");
        assert!(!me.to_string().contains("hunter2"));
        // Another instance's password opens nothing here.
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&bearer("old-style")),
            None,
        )
        .await;
        assert_eq!(status, 401);
        let (status, legacy) = call(
            &env,
            Method::GET,
            "instances/legacy/private",
            Some(&bearer("old-style")),
            None,
        )
        .await;
        assert_eq!(status, 200, "{legacy}");
        assert_eq!(legacy["accounts"][0]["payto_uri"], IBAN);
        // The replay of a password instance needs the same password.
        let mut replay = json!({"id": "legacy", "name": "Legacy",
            "auth": {"method": "token", "password": "old-style"}, "payto_uris": [IBAN],
            "default_pay_delay": {"d_us": 1}, "default_wire_transfer_delay": {"d_us": 2}});
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(replay.clone()),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        replay["auth"]["password"] = json!("other");
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(replay),
        )
        .await;
        assert_eq!(status, 409);

        // Once the default instance has a password, management wants it.
        token_instance(&env, "default", "admin-pw").await;
        let (status, _) = env.get("management/instances").await;
        assert_eq!(status, 401);
        let (status, list) = call(
            &env,
            Method::GET,
            "management/instances",
            Some(&bearer("admin-pw")),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(list["instances"].as_array().unwrap().len(), 3);
        let (status, shop) = call(
            &env,
            Method::GET,
            "management/instances/shop",
            Some(&bearer("admin-pw")),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(shop["name"], "Shop shop");
        let (status, body) = call(
            &env,
            Method::GET,
            "management/instances/nope",
            Some(&bearer("admin-pw")),
            None,
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (404, Some(2000)));
    }
);

engine_test!(
    /// PATCH (management and /private) changes only what it names; DELETE hides the instance
    /// but keeps its id taken (409 PURGE_REQUIRED) until `?purge=YES`.
    async fn instances_are_patched_deleted_and_purged(engine: Engine) {
        let env = Env::new(engine).await;
        token_instance(&env, "shop", "pw").await;
        let auth = bearer("pw");
        let (status, body) = call(
            &env,
            Method::PATCH,
            "management/instances/shop",
            None,
            Some(json!({"name": "Pretty Pianos", "default_pay_delay": "5 hours"})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = call(
            &env,
            Method::PATCH,
            "instances/shop/private",
            Some(&auth),
            Some(
                json!({"website": "https://pianos.example/", "default_max_deposit_fee": "KUDOS:1"}),
            ),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let (_, me) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(me["name"], "Pretty Pianos");
        assert_eq!(
            me["default_pay_delay"],
            json!({"d_us": 5u64 * 3_600_000_000})
        );
        assert_eq!(me["website"], "https://pianos.example/");
        assert_eq!(me["default_max_deposit_fee"], "KUDOS:1");
        assert_eq!(me["email"], "shop@example.com");
        let (status, _) = call(
            &env,
            Method::PATCH,
            "instances/shop/private",
            Some(&auth),
            Some(json!({"default_max_wire_fee": "EUR:1"})),
        )
        .await;
        assert_eq!(status, 400);

        // Soft delete.
        let (status, _) = call(
            &env,
            Method::DELETE,
            "instances/shop/private",
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (_, list) = env.get("management/instances").await;
        assert_eq!(list["instances"][0]["deleted"], true);
        let recreate = json!({"id": "shop", "name": "New", "auth": {"method": "external"}});
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(recreate.clone()),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (409, Some(2603)), "{body}");
        // Purge, then the id is free again.
        let (status, _) = call(
            &env,
            Method::DELETE,
            "management/instances/shop?purge=YES",
            None,
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            &env,
            Method::DELETE,
            "management/instances/shop?purge=YES",
            None,
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(recreate),
        )
        .await;
        assert_eq!(status, 204);
        let (_, me) = env.get("instances/shop/private").await;
        assert_eq!(me["name"], "New");
    }
);

engine_test!(
    /// Login tokens: Basic login with the password, scopes enforced (a read-only token reads
    /// but cannot write; an order token cannot touch the instance: 403), listing, revocation by
    /// serial and by the token itself, expiry (401), refresh only from a refreshable token and
    /// never to a wider scope; wrong Basic credentials 401.
    async fn login_tokens_carry_scopes_and_expire(engine: Engine) {
        let env = Env::new(engine).await;
        token_instance(&env, "shop", "pw").await;
        let readonly = login(&env, "shop", "pw", "readonly", json!({})).await;
        assert_eq!(readonly["scope"], "readonly");
        assert_eq!(readonly["refreshable"], false);
        assert!(
            readonly["access_token"]
                .as_str()
                .unwrap()
                .starts_with("secret-token:")
        );
        assert!(readonly["expiration"]["t_s"].as_u64().is_some());
        let ro = access(&readonly);

        let (status, _) = call(&env, Method::GET, "instances/shop/private", Some(&ro), None).await;
        assert_eq!(status, 200);
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private/accounts",
            Some(&ro),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let (status, body) = call(
            &env,
            Method::PATCH,
            "instances/shop/private",
            Some(&ro),
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (403, Some(16)), "{body}");
        // A token is the instance's own: it opens nothing elsewhere.
        token_instance(&env, "other", "pw").await;
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/other/private",
            Some(&ro),
            None,
        )
        .await;
        assert_eq!(status, 401);

        // An order-creating token for a shop plugin cannot change or read the instance.
        let orders = login(&env, "shop", "pw", "order-simple", json!({})).await;
        let (status, _) = call(
            &env,
            Method::PATCH,
            "instances/shop/private",
            Some(&access(&orders)),
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = call(
            &env,
            Method::POST,
            "instances/shop/private/accounts",
            Some(&access(&orders)),
            Some(json!({"payto_uri": IBAN})),
        )
        .await;
        assert_eq!(status, 403);
        // … while an `all` token can (extra spaces after Bearer are fine here too).
        let all = login(&env, "shop", "pw", "all", json!({})).await;
        let spaced = format!("Bearer   {}", all["access_token"].as_str().unwrap());
        let (status, body) = call(
            &env,
            Method::PATCH,
            "instances/shop/private",
            Some(&spaced),
            Some(json!({"name": "Renamed"})),
        )
        .await;
        assert_eq!(status, 204, "{body}");

        // The list shows every live token, never the token itself.
        let (status, list) = call(
            &env,
            Method::GET,
            "instances/shop/private/tokens",
            Some(&bearer("pw")),
            None,
        )
        .await;
        assert_eq!(status, 200, "{list}");
        let tokens = list["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[0]["scope"], "readonly");
        assert_eq!(tokens[0]["description"], "readonly for tests");
        assert!(
            !list
                .to_string()
                .contains(readonly["access_token"].as_str().unwrap())
        );
        // Revoked by serial: the read-only token stops working.
        let serial = tokens[0]["serial"].as_i64().unwrap();
        let (status, _) = call(
            &env,
            Method::DELETE,
            &format!("instances/shop/private/tokens/{serial}"),
            Some(&bearer("pw")),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(&env, Method::GET, "instances/shop/private", Some(&ro), None).await;
        assert_eq!(status, 401);
        // Revoked by itself (logout).
        let (status, _) = call(
            &env,
            Method::DELETE,
            "instances/shop/private/token",
            Some(&access(&orders)),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private/tokens",
            Some(&access(&orders)),
            None,
        )
        .await;
        assert_eq!(status, 401);

        // Expired: 401 GENERIC_TOKEN_EXPIRED.
        let expired = login(&env, "shop", "pw", "all", json!({"duration": {"d_us": 0}})).await;
        let (status, body) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&access(&expired)),
            None,
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (401, Some(42)), "{body}");

        // Refresh: only from a refreshable token, never wider.
        let refresh = login(&env, "shop", "pw", "order-pos:refreshable", json!({})).await;
        assert_eq!(refresh["scope"], "order-pos:refreshable");
        assert_eq!(refresh["refreshable"], true);
        let (status, _) = call(
            &env,
            Method::POST,
            "instances/shop/private/token",
            Some(&access(&refresh)),
            Some(json!({"scope": "all"})),
        )
        .await;
        assert_eq!(status, 403);
        let (status, body) = call(
            &env,
            Method::POST,
            "instances/shop/private/token",
            Some(&access(&refresh)),
            Some(json!({"scope": "order-simple"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = call(
            &env,
            Method::POST,
            "instances/shop/private/token",
            Some(&access(&body)),
            Some(json!({"scope": "order-simple"})),
        )
        .await;
        assert_eq!(status, 403, "a non-refreshable token cannot refresh");

        // Wrong or missing login credentials.
        for auth in [
            Some(basic("shop", "wrong")),
            Some(basic("other", "pw")),
            None,
        ] {
            let (status, _) = call(
                &env,
                Method::POST,
                "instances/shop/private/token",
                auth.as_deref(),
                Some(json!({"scope": "readonly"})),
            )
            .await;
            assert_eq!(status, 401, "{auth:?}");
        }
        let (status, _) = call(
            &env,
            Method::POST,
            "instances/shop/private/token",
            Some(&basic("shop", "pw")),
            Some(json!({"scope": "superuser"})),
        )
        .await;
        assert_eq!(status, 400);
    }
);

engine_test!(
    /// Changing the password (at /private/auth or through management) takes effect at once and
    /// revokes the login tokens made with the old one; switching to `external` opens the
    /// instance, whose API then ignores even a malformed Authorization header.
    async fn auth_changes_replace_password_and_tokens(engine: Engine) {
        let env = Env::new(engine).await;
        token_instance(&env, "shop", "old").await;
        let token = login(&env, "shop", "old", "all", json!({})).await;
        let (status, body) = call(
            &env,
            Method::POST,
            "instances/shop/private/auth",
            Some(&bearer("old")),
            Some(json!({"method": "token", "password": "new"})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        for (auth, want) in [
            (bearer("old"), 401),
            (access(&token), 401),
            (bearer("new"), 200),
        ] {
            let (status, _) = call(
                &env,
                Method::GET,
                "instances/shop/private",
                Some(&auth),
                None,
            )
            .await;
            assert_eq!(status, want, "{auth}");
        }
        let (status, body) = call(
            &env,
            Method::POST,
            "instances/shop/private/auth",
            Some(&bearer("new")),
            Some(json!({"method": "token"})),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(2602)), "{body}");

        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances/shop/auth",
            None,
            Some(json!({"method": "external"})),
        )
        .await;
        assert_eq!(status, 204);
        for auth in [None, Some("Bearer nonsense"), Some("Garbage")] {
            let (status, _) = call(&env, Method::GET, "instances/shop/private", auth, None).await;
            assert_eq!(status, 200, "{auth:?}");
        }
    }
);

engine_test!(
    /// The admin token (`TALER_MERCHANT_TOKEN` / `[merchant] ADMIN_TOKEN`) opens management and
    /// every instance; without it a fresh backend's management is closed.
    async fn the_admin_token_opens_everything(engine: Engine) {
        let env = Env::with(engine, |c| {
            c.admin_token = Some("secret-token:admin".into())
        })
        .await;
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            None,
            Some(pretty_pianos()),
        )
        .await;
        assert_eq!(status, 401);
        let (status, _) = call(
            &env,
            Method::POST,
            "management/instances",
            Some(&bearer("admin")),
            Some(pretty_pianos()),
        )
        .await;
        assert_eq!(status, 204);
        let (status, body) = call(
            &env,
            Method::POST,
            "management/instances",
            Some(&bearer("admin")),
            Some(json!({"id": "shop", "name": "S", "auth": {"method": "token", "password": "pw"}})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let (status, _) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&bearer("admin")),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
);

engine_test!(
    /// Bank accounts: added with a fresh salt (h_wire = hash of payto and salt), an identical
    /// addition answers the same account, a different credit facade 409, listed, read, patched,
    /// deactivated (and added again: active with the same h_wire); unknown ones 404.
    async fn bank_accounts_are_added_patched_and_deactivated(engine: Engine) {
        let env = Env::new(engine).await;
        token_instance(&env, "shop", "pw").await;
        let auth = bearer("pw");
        let path = "instances/shop/private/accounts";
        let (status, added) = call(
            &env,
            Method::POST,
            path,
            Some(&auth),
            Some(json!({"payto_uri": IBAN})),
        )
        .await;
        assert_eq!(status, 200, "{added}");
        let salt: WireSalt = serde_json::from_value(added["salt"].clone()).unwrap();
        let h_wire: HashCode = serde_json::from_value(added["h_wire"].clone()).unwrap();
        assert_eq!(h_wire, cardcash_crypto::wire::h_wire(IBAN, &salt));
        let (status, again) = call(
            &env,
            Method::POST,
            path,
            Some(&auth),
            Some(json!({"payto_uri": IBAN})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(again, added);
        let (status, body) = call(
            &env,
            Method::POST,
            path,
            Some(&auth),
            Some(json!({"payto_uri": IBAN, "credit_facade_url": "https://bank.example/"})),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (409, Some(2627)), "{body}");
        let (status, body) = call(
            &env,
            Method::POST,
            path,
            Some(&auth),
            Some(json!({"payto_uri": "payto://iban/CH9300762011623852958"})),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(24)), "{body}");

        let one = format!("{path}/{h_wire}");
        let (status, body) = call(
            &env,
            Method::PATCH,
            &one,
            Some(&auth),
            Some(json!({"credit_facade_url": "https://bank.example/facade/",
                        "credit_facade_credentials": {"type": "none"}})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let (status, detail) = call(&env, Method::GET, &one, Some(&auth), None).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["payto_uri"], IBAN);
        assert_eq!(detail["credit_facade_url"], "https://bank.example/facade/");
        assert_eq!(detail["active"], true);
        assert_eq!(detail["salt"], added["salt"]);

        let (status, _) = call(&env, Method::DELETE, &one, Some(&auth), None).await;
        assert_eq!(status, 204);
        let (_, list) = call(&env, Method::GET, path, Some(&auth), None).await;
        assert_eq!(list["accounts"][0]["active"], false);
        let (_, me) = call(
            &env,
            Method::GET,
            "instances/shop/private",
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(me["accounts"], json!([]));
        let (status, back) = call(
            &env,
            Method::POST,
            path,
            Some(&auth),
            Some(json!({"payto_uri": IBAN})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(back["h_wire"], added["h_wire"]);
        let (_, list) = call(&env, Method::GET, path, Some(&auth), None).await;
        assert_eq!(list["accounts"][0]["active"], true);

        let unknown = format!("{path}/{}", cardcash_crypto::sha512(b"nothing"));
        for method in [Method::GET, Method::DELETE] {
            let (status, body) = call(&env, method, &unknown, Some(&auth), None).await;
            assert_eq!((status, body["code"].as_u64()), (404, Some(2626)), "{body}");
        }
        let (status, _) = call(
            &env,
            Method::GET,
            &format!("{path}/not-a-hash"),
            Some(&auth),
            None,
        )
        .await;
        assert_eq!(status, 400);
    }
);
