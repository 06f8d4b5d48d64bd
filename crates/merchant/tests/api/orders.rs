//! `POST /private/orders` (the merchant guide's scenario 1 as written, full orders, deadlines,
//! replays and idempotency keys), `GET /private/orders` (filters, cursor pages),
//! `DELETE /private/orders/$ID` and `PATCH …/forget` (the contract hash stays).

use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::contract::{h_contract_terms, validate_forgettable};
use cardcash_merchant::config::{DEFAULT_INSTANCE, TrustedExchange};
use cardcash_merchant::db::instances::InstanceRow;
use cardcash_store::Database;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{Amount, BaseUrl, RelativeTime, Timestamp, base32};
use serde_json::{Value, json};

use crate::helpers::{CURRENCY, Env, create_instance};

pub const PAYTO: &str = "payto://iban/CH9300762011623852957";
const EXCHANGE_MASTER: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";

/// A backend trusting one exchange, with the guide's Pretty Pianos as the default instance
/// (its defaults as the guide's `POST /management/instances` sets them), made through the
/// store.
pub async fn pianos(engine: Engine) -> (Env, InstanceRow) {
    let env = Env::with(engine, |c| {
        c.exchanges.push(TrustedExchange {
            section: "merchant-exchange-kudos".into(),
            base_url: BaseUrl::parse("https://exchange.example/").unwrap(),
            master_pub: EXCHANGE_MASTER.parse().unwrap(),
            currency: CURRENCY.parse().unwrap(),
        });
    })
    .await;
    let row = add_instance(&env, DEFAULT_INSTANCE, Some(PAYTO)).await;
    (env, row)
}

/// An instance `id` (external auth) with the guide's defaults and, if given, one account.
pub async fn add_instance(env: &Env, id: &str, payto: Option<&str>) -> InstanceRow {
    let kudos = |s: &str| Some(format!("{CURRENCY}:{s}").parse::<Amount>().unwrap());
    create_instance(env, id, payto, |r| {
        r.website = Some("https://pianos.example/".into());
        r.default_max_deposit_fee = kudos("10.0");
        r.default_max_wire_fee = kudos("5.0");
        r.default_pay_delay = RelativeTime::from_secs(5 * 3600);
        r.default_refund_delay = RelativeTime::from_secs(0);
        r.default_wire_transfer_delay = RelativeTime::from_secs(2 * 86_400);
    })
    .await
}

/// `METHOD {base}{path}` with an optional JSON body and headers: status and JSON body.
pub async fn call(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = env.http.request(method, format!("{}{path}", env.base));
    if let Some(body) = body {
        r = r.json(body);
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn post(env: &Env, path: &str, body: &Value) -> (u16, Value) {
    call(env, reqwest::Method::POST, path, Some(body), &[]).await
}

/// The stored contract terms of an order (what the claim will sign, less the nonce).
pub async fn terms(env: &Env, instance: &InstanceRow, order_id: &str) -> Value {
    let row = env
        .app
        .merchant()
        .store()
        .order(instance.serial, order_id)
        .await
        .unwrap()
        .expect("order stored");
    serde_json::from_str(&row.contract_terms).unwrap()
}

/// Marks an order claimed (and paid) in the database, as the claim and the payment would.
pub async fn mark(env: &Env, instance: &InstanceRow, order_id: &str, paid: bool) {
    let nonce = vec![1u8; 32];
    let hash = vec![2u8; 64];
    let paid = i32::from(paid);
    match env.app.merchant().store().database() {
        Database::Sqlite(db) => {
            let (order_id, serial) = (order_id.to_owned(), instance.serial);
            db.write(move |tx| {
                tx.execute(
                    "UPDATE orders SET nonce = ?1, h_contract_terms = ?2, paid = ?3 \
                     WHERE instance_serial = ?4 AND order_id = ?5",
                    cardcash_store::rusqlite::params![nonce, hash, paid, serial, order_id],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        }
        Database::Postgres(db) => {
            sqlx::query(
                "UPDATE orders SET nonce = $1, h_contract_terms = $2, paid = $3 \
                 WHERE instance_serial = $4 AND order_id = $5",
            )
            .bind(nonce)
            .bind(hash)
            .bind(paid)
            .bind(instance.serial)
            .bind(order_id)
            .execute(db.pool())
            .await
            .unwrap();
        }
    }
}

fn t_s(v: &Value) -> u64 {
    v["t_s"]
        .as_u64()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

engine_test!(
    /// The guide's scenario 1 as written: `fulfillment_URI` with `${ORDER_ID}`, a generated
    /// order id, a claim token, the instance's defaults for fees and deadlines, and contract
    /// terms complete but for the nonce (a wallet can hash them once the nonce is in).
    async fn the_guides_minimal_order_makes_complete_contract_terms(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        let (status, body) = post(
            &env,
            "instances/default/private/orders",
            &json!({
              "order":
              {
                "amount": "KUDOS:9.87",
                "summary": "Beethoven Sonatas",
                "fulfillment_URI": "https://example.com/f001?${ORDER_ID}"
              },
              "create_token": true
            }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let order_id = body["order_id"].as_str().unwrap().to_owned();
        let token = base32::decode(body["token"].as_str().unwrap()).unwrap();
        assert_eq!(token.len(), 16);
        // YYYY.DDD-<80 random bits>
        assert_eq!(order_id.len(), 8 + 1 + 16, "{order_id}");
        assert_eq!(&order_id[4..5], ".");

        let t = terms(&env, &pianos, &order_id).await;
        assert_eq!(t["order_id"], order_id.as_str());
        assert_eq!(t["summary"], "Beethoven Sonatas");
        assert_eq!(t["amount"], "KUDOS:9.87");
        assert_eq!(
            t["fulfillment_url"],
            format!("https://example.com/f001?{order_id}")
        );
        assert!(t.get("fulfillment_URI").is_none());
        // max_fee 10 + the wire fee share 5 / 1 (the guide's instance defaults)
        assert_eq!(t["max_fee"], "KUDOS:15");
        assert_eq!(t["products"], json!([]));
        let ts = t_s(&t["timestamp"]);
        assert_eq!(t_s(&t["pay_deadline"]), ts + 5 * 3600);
        assert_eq!(t_s(&t["refund_deadline"]), ts, "no refunds");
        assert_eq!(t_s(&t["wire_transfer_deadline"]), ts + 2 * 86_400);
        assert_eq!(t["merchant_pub"], json!(pianos.merchant_pub));
        assert_eq!(t["merchant_base_url"], env.base.as_str());
        assert_eq!(t["merchant"]["name"], "Pretty Pianos");
        assert_eq!(t["merchant"]["website"], "https://pianos.example/");
        let account = env
            .app
            .merchant()
            .store()
            .accounts(pianos.serial)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            t["h_wire"],
            json!(cardcash_crypto::wire::h_wire(PAYTO, &account.salt))
        );
        assert_eq!(t["wire_method"], "iban");
        assert_eq!(
            t["exchanges"],
            json!([{"url": "https://exchange.example/", "priority": 1024, "master_pub": EXCHANGE_MASTER}])
        );
        assert_eq!(t["auditors"], json!([]));
        assert!(t.get("nonce").is_none());
        // The claim adds only the nonce: then the terms hash as a wallet hashes them.
        let mut claimed = t.clone();
        claimed["nonce"] = json!(EddsaPrivateKey::generate().unwrap().public());
        validate_forgettable(&claimed).unwrap();
        h_contract_terms(&claimed).unwrap();

        // create_token false: no token; the same minimal order again gets another id.
        let (status, body) = post(
            &env,
            "private/orders",
            &json!({"order": {"amount": "KUDOS:9.87", "summary": "Beethoven Sonatas",
                    "fulfillment_url": "https://example.com/f001"}, "create_token": false}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("token").is_none(), "{body}");
        assert_ne!(body["order_id"], order_id.as_str());
    }
);

engine_test!(
    /// A full Order v0: products, `extra` with `$forgettable` and the guide's `_forgettable`,
    /// fulfillment message, delivery date, auto refund, explicit fees, minimum age, deadlines,
    /// `refund_delay`, `session_id` and a front end's salt kept.
    async fn a_full_order_keeps_its_fields_and_salts_its_forgettable_ones(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        let now = Timestamp::now().as_secs();
        let (status, body) = post(
            &env,
            "private/orders",
            &json!({
                "order": {
                    "order_id": "full-1",
                    "amount": "KUDOS:20000",
                    "summary": "one piano",
                    "summary_i18n": {"de": "ein Klavier"},
                    "fulfillment_url": "https://pianos.example/track/${ORDER_ID}",
                    "fulfillment_message": "Your piano ships soon",
                    "public_reorder_url": "https://pianos.example/p001",
                    "products": [{"product_id": "p001", "description": "piano", "quantity": 1,
                                  "price": "KUDOS:20000", "image": "data:image/png;base64,AA==",
                                  "$forgettable": {"image": true}}],
                    "extra": {"customer": {"name": "Ada", "street": "Main 1",
                              "_forgettable": ["name", "street"]},
                              "note": "ring twice", "$forgettable": {"note": "MYSALT"}},
                    "delivery_date": {"t_s": now + 86_400},
                    "delivery_location": {"country": "CH"},
                    "auto_refund": {"d_us": 600_000_000u64},
                    "max_fee": "KUDOS:1",
                    "max_wire_fee": "KUDOS:3",
                    "wire_fee_amortization": 3,
                    "minimum_age": 16,
                    "pay_deadline": {"t_s": now + 600},
                    "wire_transfer_deadline": {"t_s": now + 30 * 86_400}
                },
                "refund_delay": {"d_us": 86_400_000_000u64},
                "session_id": "s-1",
            }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["order_id"], "full-1");
        let t = terms(&env, &pianos, "full-1").await;
        assert_eq!(t["fulfillment_url"], "https://pianos.example/track/full-1");
        assert_eq!(t["fulfillment_message"], "Your piano ships soon");
        assert_eq!(t["summary_i18n"]["de"], "ein Klavier");
        assert_eq!(t["public_reorder_url"], "https://pianos.example/p001");
        assert_eq!(t["minimum_age"], 16);
        assert_eq!(t["auto_refund"], json!({"d_us": 600_000_000u64}));
        assert_eq!(t_s(&t["delivery_date"]), now + 86_400);
        assert_eq!(t["delivery_location"]["country"], "CH");
        // 1 + 3 / 3; the old fields do not go into the contract
        assert_eq!(t["max_fee"], "KUDOS:2");
        assert!(t.get("max_wire_fee").is_none() && t.get("wire_fee_amortization").is_none());
        assert_eq!(t_s(&t["pay_deadline"]), now + 600);
        let refund = t_s(&t["refund_deadline"]);
        assert!(refund >= now + 86_400 && refund <= now + 86_400 + 5);
        assert_eq!(t_s(&t["wire_transfer_deadline"]), now + 30 * 86_400);
        // forgettable markers: salts drawn for `true`, a given salt kept, the guide's list read
        let image_salt = t["products"][0]["$forgettable"]["image"].as_str().unwrap();
        assert!(image_salt.len() >= 50, "{image_salt}");
        assert_eq!(t["extra"]["$forgettable"]["note"], "MYSALT");
        let customer = &t["extra"]["customer"];
        assert!(customer.get("_forgettable").is_none());
        assert!(customer["$forgettable"]["name"].is_string());
        assert!(customer["$forgettable"]["street"].is_string());
        validate_forgettable(&t).unwrap();
        let order = env
            .app
            .merchant()
            .store()
            .order(pianos.serial, "full-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.session_id, "s-1");

        // What a wallet could not hash, or a required field made forgettable, is refused.
        for (order, code) in [
            (
                json!({"amount": "KUDOS:1", "summary": "x", "extra": {"a-b": 1}}),
                2502,
            ),
            (
                json!({"amount": "KUDOS:1", "summary": "x", "extra": {"f": 1.5}}),
                2502,
            ),
            (
                json!({"amount": "KUDOS:1", "summary": "x", "$forgettable": {"amount": true}}),
                2502,
            ),
            (
                json!({"amount": "KUDOS:1", "summary": "x", "extra": {"$forgettable": {"gone": true}}}),
                2502,
            ),
            (json!({"amount": "KUDOS:1"}), 25),
            (json!({"amount": "EUR:1", "summary": "x"}), 30),
            (
                json!({"amount": "KUDOS:1", "summary": "x", "order_id": "a/b"}),
                2502,
            ),
        ] {
            let (status, body) = post(&env, "private/orders", &json!({"order": order})).await;
            assert!(status == 400 || status == 409, "{status} {body}");
            assert_eq!(body["code"], code, "{order}: {body}");
        }
    }
);

engine_test!(
    /// Deadlines: a pay deadline in the past, a wire deadline before the refund deadline, or
    /// "never", are refused with their codes; an instance without an account cannot sell.
    async fn deadlines_and_accounts_are_checked(engine: Engine) {
        let (env, _) = pianos(engine).await;
        let now = Timestamp::now().as_secs();
        let order = |extra: Value| {
            let mut o = json!({"amount": "KUDOS:1", "summary": "x"});
            for (k, v) in extra.as_object().unwrap() {
                o[k] = v.clone();
            }
            json!({"order": o})
        };
        for (body, status, code) in [
            (order(json!({"pay_deadline": {"t_s": now - 10}})), 400, 2507),
            (
                order(json!({"refund_deadline": {"t_s": now + 100},
                             "wire_transfer_deadline": {"t_s": now + 50}})),
                400,
                2504,
            ),
            (
                order(json!({"wire_transfer_deadline": {"t_s": "never"}})),
                400,
                2506,
            ),
            (
                order(json!({"refund_deadline": {"t_s": now - 1000}})),
                400,
                2508,
            ),
            (
                order(json!({"delivery_date": {"t_s": now - 1000}})),
                400,
                2505,
            ),
        ] {
            let (s, b) = post(&env, "private/orders", &body).await;
            assert_eq!((s, b["code"].as_u64()), (status, Some(code)), "{body}: {b}");
        }
        for target in ["iban", PAYTO] {
            let mut body = order(json!({}));
            body["payment_target"] = json!(target);
            let (s, b) = post(&env, "private/orders", &body).await;
            assert_eq!(s, 200, "{target}: {b}");
        }
        let mut body = order(json!({}));
        body["refund_delay"] = json!({"d_us": 3_600_000_000u64});
        body["payment_target"] = json!("x-taler-bank");
        let (s, b) = post(&env, "private/orders", &body).await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2500)), "{b}");

        add_instance(&env, "empty", None).await;
        let (s, b) = post(&env, "instances/empty/private/orders", &order(json!({}))).await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2500)), "{b}");
        let (s, b) = post(&env, "instances/nobody/private/orders", &order(json!({}))).await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2000)), "{b}");
    }
);

engine_test!(
    /// Replays: the same order id with the same request answers the same (same token); with
    /// another request 409 ALREADY_EXISTS. Without an order id, an `Idempotency-Key` does the
    /// same.
    async fn replays_answer_the_same_and_conflicts_are_refused(engine: Engine) {
        let (env, _) = pianos(engine).await;
        let body = json!({"order": {"order_id": "G93420934823", "amount": "KUDOS:9.87",
                                    "summary": "Beethoven Sonatas"}});
        let (s1, first) = post(&env, "private/orders", &body).await;
        assert_eq!(s1, 200, "{first}");
        // Same request (keys in another order, other spacing): same answer.
        let same: Value = serde_json::from_str(
            r#"{"order": {"summary": "Beethoven Sonatas", "amount": "KUDOS:9.87",
                "order_id": "G93420934823"}}"#,
        )
        .unwrap();
        let (s2, again) = post(&env, "private/orders", &same).await;
        assert_eq!((s2, &again), (200, &first));
        let mut other = body.clone();
        other["order"]["amount"] = json!("KUDOS:9.88");
        let (s3, conflict) = post(&env, "private/orders", &other).await;
        assert_eq!(
            (s3, conflict["code"].as_u64()),
            (409, Some(2503)),
            "{conflict}"
        );

        let body = json!({"order": {"amount": "KUDOS:3", "summary": "coffee"}});
        let key = [("Idempotency-Key", "cart-4711")];
        let (s1, first) = call(
            &env,
            reqwest::Method::POST,
            "private/orders",
            Some(&body),
            &key,
        )
        .await;
        let (s2, again) = call(
            &env,
            reqwest::Method::POST,
            "private/orders",
            Some(&body),
            &key,
        )
        .await;
        assert_eq!((s1, s2), (200, 200), "{first} {again}");
        assert_eq!(first, again);
        let other = json!({"order": {"amount": "KUDOS:4", "summary": "coffee"}});
        let (s3, conflict) = call(
            &env,
            reqwest::Method::POST,
            "private/orders",
            Some(&other),
            &key,
        )
        .await;
        assert_eq!(
            (s3, conflict["code"].as_u64()),
            (409, Some(2503)),
            "{conflict}"
        );
        // Without the key, the same body makes a new order.
        let (_, fresh) = post(&env, "private/orders", &body).await;
        assert_ne!(fresh["order_id"], first["order_id"]);
    }
);

engine_test!(
    /// Listing: newest first by default, cursor pages by `row_id`, ascending with a positive
    /// limit, filters by paid, session and fulfillment URL, page size bounded.
    async fn orders_are_listed_in_bounded_cursor_pages(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let (s, b) = post(
                &env,
                "private/orders",
                &json!({"order": {"order_id": format!("o{i}"), "amount": format!("KUDOS:{}", i + 1),
                        "summary": format!("order {i}"),
                        "fulfillment_url": if i % 2 == 0 { "https://a.example/" } else { "https://b.example/" }},
                        "session_id": if i == 3 { "s3" } else { "" }}),
            )
            .await;
            assert_eq!(s, 200, "{b}");
            ids.push(format!("o{i}"));
        }
        mark(&env, &pianos, "o1", true).await;
        let names = |b: &Value| -> Vec<String> {
            b["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["order_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (s, b) = env.get("private/orders").await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(names(&b), ["o4", "o3", "o2", "o1", "o0"]);
        assert_eq!(b["orders"][0]["amount"], "KUDOS:5");
        assert_eq!(b["orders"][0]["summary"], "order 4");
        assert_eq!(b["orders"][3]["paid"], true);
        let (_, b) = env.get("private/orders?limit=-2").await;
        assert_eq!(names(&b), ["o4", "o3"]);
        let cursor = b["orders"][1]["row_id"].as_i64().unwrap();
        let (_, b) = env
            .get(&format!("private/orders?limit=-2&offset={cursor}"))
            .await;
        assert_eq!(names(&b), ["o2", "o1"]);
        let (_, b) = env.get("private/orders?limit=2").await;
        assert_eq!(names(&b), ["o0", "o1"]);
        let cursor = b["orders"][1]["row_id"].as_i64().unwrap();
        let (_, b) = env
            .get(&format!("private/orders?limit=10&offset={cursor}"))
            .await;
        assert_eq!(names(&b), ["o2", "o3", "o4"]);
        let (_, b) = env.get("private/orders?paid=yes").await;
        assert_eq!(names(&b), ["o1"]);
        let (_, b) = env.get("private/orders?paid=no&limit=-2").await;
        assert_eq!(names(&b), ["o4", "o3"]);
        let (_, b) = env.get("private/orders?refunded=yes").await;
        assert_eq!(names(&b), Vec::<String>::new());
        let (_, b) = env.get("private/orders?session_id=s3").await;
        assert_eq!(names(&b), ["o3"]);
        let (_, b) = env
            .get("private/orders?fulfillment_url=https%3A%2F%2Fb.example%2F")
            .await;
        assert_eq!(names(&b), ["o3", "o1"]);
        let future = Timestamp::now().as_secs() + 3600;
        let (_, b) = env
            .get(&format!("private/orders?limit=5&date_s={future}"))
            .await;
        assert_eq!(names(&b), Vec::<String>::new());
        let (s, b) = env.get("private/orders?limit=100000").await;
        assert_eq!((s, names(&b).len()), (200, 5));
        let (s, b) = env.get("private/orders?paid=maybe").await;
        assert_eq!((s, b["code"].as_u64()), (400, Some(26)), "{b}");
        assert_eq!(ids.len(), 5);

        // Long polling for the next order after the newest one: an empty page waits (bounded)
        // and is answered by the order created meanwhile.
        let (_, b) = env.get("private/orders?limit=-1").await;
        let newest = b["orders"][0]["row_id"].as_i64().unwrap();
        let (s, b) = env
            .get(&format!(
                "private/orders?limit=5&offset={newest}&timeout_ms=50"
            ))
            .await;
        assert_eq!((s, names(&b).len()), (200, 0), "{b}");
        let url = format!(
            "{}private/orders?limit=5&offset={newest}&timeout_ms=30000",
            env.base
        );
        let http = env.http.clone();
        let poll = tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        });
        let (s, b) = post(
            &env,
            "private/orders",
            &json!({"order": {"order_id": "o5", "amount": "KUDOS:6", "summary": "order 5"}}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let b = poll.await.unwrap();
        assert_eq!(names(&b), ["o5"]);
    }
);

engine_test!(
    /// Deletion: an unclaimed order goes; a claimed one only with `?force=YES`; a paid one
    /// never.
    async fn orders_are_deleted_by_the_rules(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        for id in ["fresh", "claimed", "paid"] {
            let (s, b) = post(
                &env,
                "private/orders",
                &json!({"order": {"order_id": id, "amount": "KUDOS:1", "summary": id}}),
            )
            .await;
            assert_eq!(s, 200, "{b}");
        }
        mark(&env, &pianos, "claimed", false).await;
        mark(&env, &pianos, "paid", true).await;
        let delete = |path: &'static str| call(&env, reqwest::Method::DELETE, path, None, &[]);
        assert_eq!(delete("private/orders/fresh").await.0, 204);
        let (s, b) = delete("private/orders/fresh").await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2005)));
        let (s, b) = delete("private/orders/claimed").await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2520)), "{b}");
        assert_eq!(delete("private/orders/claimed?force=YES").await.0, 204);
        let (s, b) = delete("private/orders/paid?force=YES").await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2521)), "{b}");
        let (_, b) = env.get("private/orders").await;
        assert_eq!(b["orders"].as_array().unwrap().len(), 1, "{b}");
    }
);

engine_test!(
    /// Forgetting: the named fields leave the contract, their salted hashes stay, and the
    /// contract hash (computed as a wallet computes it) is the same before and after.
    async fn forgetting_fields_keeps_the_contract_hash(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        let (s, b) = post(
            &env,
            "private/orders",
            &json!({"order": {"order_id": "gdpr", "amount": "KUDOS:20000", "summary": "piano",
                "products": [{"description": "piano", "image": "data:image/png;base64,AA==",
                              "_forgettable": ["image"]}],
                "extra": {"name": "Ada", "street": "Main 1", "$forgettable": {"name": true, "street": true}}}}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let hash = |t: &Value| {
            let mut claimed = t.clone();
            claimed["nonce"] = json!("5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G");
            validate_forgettable(&claimed).unwrap();
            h_contract_terms(&claimed).unwrap()
        };
        let before = terms(&env, &pianos, "gdpr").await;
        let patch = |fields: Value| {
            let env = &env;
            async move {
                call(
                    env,
                    reqwest::Method::PATCH,
                    "private/orders/gdpr/forget",
                    Some(&json!({ "fields": fields })),
                    &[],
                )
                .await
            }
        };
        let (s, b) = patch(json!([
            "$.extra.name",
            "$.products[*].image",
            "$.not.there"
        ]))
        .await;
        assert_eq!(s, 200, "{b}");
        let after = terms(&env, &pianos, "gdpr").await;
        assert!(after["extra"].get("name").is_none(), "{after}");
        assert_eq!(after["extra"]["street"], "Main 1");
        assert!(after["products"][0].get("image").is_none(), "{after}");
        assert!(after["extra"]["$forgotten"]["name"].is_string());
        assert_eq!(hash(&before), hash(&after));
        // Again: already forgotten.
        assert_eq!(patch(json!(["$.extra.name"])).await.0, 204);
        let (s, b) = patch(json!(["$.summary"])).await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2511)), "{b}");
        for bad in ["extra.street", "$.extra[", "$.products[0]"] {
            let (s, b) = patch(json!([bad])).await;
            assert_eq!((s, b["code"].as_u64()), (400, Some(2510)), "{bad}: {b}");
        }
        // A claimed order too (the claim's terms carry the nonce; it stays).
        mark(&env, &pianos, "gdpr", false).await;
        let (s, _) = patch(json!(["$.extra.street"])).await;
        assert_eq!(s, 200);
        let last = terms(&env, &pianos, "gdpr").await;
        assert_eq!(hash(&before), hash(&last));
        let (s, b) = call(
            &env,
            reqwest::Method::PATCH,
            "private/orders/nothing/forget",
            Some(&json!({"fields": ["$.extra.name"]})),
            &[],
        )
        .await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2005)), "{b}");
    }
);

engine_test!(
    /// The guide's whole story over HTTP, every request as written: the pre-sales
    /// configuration (`POST /management/instances`, both products) and scenario 1's order;
    /// the contract carries the fees the instance set up and the order can be listed.
    async fn the_guides_pre_sales_configuration_and_scenario_1_over_http(engine: Engine) {
        let env = Env::new(engine).await;
        let (s, b) = post(
            &env,
            "management/instances",
            &json!({
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
            }),
        )
        .await;
        assert_eq!(s, 204, "{b}");
        for product in [
            json!({
              "product_id": "p001",
              "description": "piano",
              "unit": "unit",
              "image": "",
              "price": "KUDOS:20000.0",
              "taxes": [],
              "total_stock": 3,
              "next_restock": "2021-04-22",
              "_forgettable": ["image"]
            }),
            json!({
              "product_id": "f001",
              "description": "Beethoven Sonatas",
              "unit": "file",
              "price": "KUDOS:9.87",
              "taxes": [],
              "total_stock": -1
            }),
        ] {
            let (s, b) = post(&env, "instances/default/private/products", &product).await;
            assert_eq!(s, 204, "{b}");
        }
        let (s, b) = post(
            &env,
            "instances/default/private/orders",
            &json!({
              "order":
              {
                "amount": "KUDOS:9.87",
                "summary": "Beethoven Sonatas",
                "fulfillment_URI": "https://example.com/f001?${ORDER_ID}"
              },
              "create_token": true
            }),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let order_id = b["order_id"].as_str().unwrap().to_owned();
        assert!(b["token"].is_string(), "{b}");
        let pianos = env
            .app
            .merchant()
            .store()
            .instance(DEFAULT_INSTANCE)
            .await
            .unwrap()
            .unwrap();
        let t = terms(&env, &pianos, &order_id).await;
        assert_eq!(
            t["fulfillment_url"],
            format!("https://example.com/f001?{order_id}")
        );
        assert_eq!(t["max_fee"], "KUDOS:15");
        assert_eq!(t["wire_method"], "iban");
        let ts = t_s(&t["timestamp"]);
        assert_eq!(t_s(&t["pay_deadline"]), ts + 5 * 3600);
        assert_eq!(t_s(&t["refund_deadline"]), ts);
        assert_eq!(t_s(&t["wire_transfer_deadline"]), ts + 2 * 86_400);
        let (s, b) = env.get("instances/default/private/orders").await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["orders"][0]["order_id"], order_id.as_str());
        assert_eq!(b["orders"][0]["paid"], false);
    }
);
