//! Products (the merchant guide's pre-sales configuration as written), locks, orders that take
//! stock, and two carts racing for the last piano.

use cardcash_testkit::{Engine, engine_test};
use serde_json::{Value, json};

use crate::helpers::Env;
use crate::orders::{call, pianos, post};

/// The guide's two products, as written (`_forgettable`, the plain `next_restock` date).
async fn pre_sales(env: &Env) {
    let (s, b) = post(
        env,
        "instances/default/private/products",
        &json!({
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
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = post(
        env,
        "instances/default/private/products",
        &json!({
          "product_id": "f001",
          "description": "Beethoven Sonatas",
          "unit": "file",
          "price": "KUDOS:9.87",
          "taxes": [],
          "total_stock": -1
        }),
    )
    .await;
    assert_eq!(s, 204, "{b}");
}

async fn lock(env: &Env, product: &str, uuid: &str, quantity: u64, seconds: u64) -> (u16, Value) {
    post(
        env,
        &format!("private/products/{product}/lock"),
        &json!({"lock_uuid": uuid, "duration": {"d_us": seconds * 1_000_000}, "quantity": quantity}),
    )
    .await
}

async fn available(env: &Env, product: &str) -> i64 {
    let (s, b) = env.get(&format!("private/products/{product}")).await;
    assert_eq!(s, 200, "{b}");
    b["total_available"].as_i64().unwrap()
}

async fn order_count(env: &Env) -> usize {
    let (_, b) = env.get("private/orders?limit=-200").await;
    b["orders"].as_array().unwrap().len()
}

fn piano_order(quantity: u64, lock_uuids: &[&str]) -> Value {
    json!({
        "order": {"amount": format!("KUDOS:{}", 20_000 * quantity), "summary": "pianos"},
        "inventory_products": [{"product_id": "p001", "quantity": quantity}],
        "lock_uuids": lock_uuids,
    })
}

engine_test!(
    /// The guide's pre-sales configuration as written: both products are stored and read back
    /// (restock date, forgettable image, unlimited stock); the same POST again is fine, a
    /// different one under the same id 409.
    async fn the_guides_products_are_stored_as_written(engine: Engine) {
        let (env, _) = pianos(engine).await;
        pre_sales(&env).await;
        let (s, p) = env.get("private/products/p001").await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p["description"], "piano");
        assert_eq!(p["unit"], "unit");
        assert_eq!(p["price"], "KUDOS:20000");
        assert_eq!(p["total_stock"], 3);
        assert_eq!(p["total_sold"], 0);
        assert_eq!(p["total_lost"], 0);
        assert_eq!(p["total_available"], 3);
        assert_eq!(p["next_restock"], json!({"t_s": 1_619_049_600u64}));
        assert_eq!(p["forgettable"], json!(["image"]));
        let (_, f) = env.get("private/products/f001").await;
        assert_eq!(f["total_stock"], -1);
        assert_eq!(f["total_available"], -1);
        assert!(f.get("next_restock").is_none(), "{f}");
        let (_, list) = env.get("private/products").await;
        let ids: Vec<&str> = list["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["product_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["p001", "f001"]);
        pre_sales(&env).await;
        let (s, b) = post(
            &env,
            "private/products",
            &json!({"product_id": "f001", "description": "Moonlight Sonata", "unit": "file",
                    "price": "KUDOS:9.87", "total_stock": -1}),
        )
        .await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2650)), "{b}");
        let (s, b) = env.get("private/products/nope").await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2006)), "{b}");
    }
);

engine_test!(
    /// Locks: a lock takes stock, the same uuid updates it, quantity 0 releases it, an expired
    /// lock counts no more, and what is short is a 410 with the OutOfStockResponse.
    async fn locks_take_update_and_release_stock(engine: Engine) {
        let (env, _) = pianos(engine).await;
        pre_sales(&env).await;
        assert_eq!(lock(&env, "p001", "cart-a", 2, 600).await.0, 204);
        assert_eq!(available(&env, "p001").await, 1);
        let (s, b) = lock(&env, "p001", "cart-b", 2, 600).await;
        assert_eq!((s, b["code"].as_u64()), (410, Some(2670)), "{b}");
        assert_eq!(b["product_id"], "p001");
        assert_eq!(b["requested_quantity"], 2);
        assert_eq!(b["available_quantity"], 1);
        assert_eq!(b["restock_expected"], json!({"t_s": 1_619_049_600u64}));
        // the same uuid updates its lock (its own units do not count against it)
        assert_eq!(lock(&env, "p001", "cart-a", 3, 600).await.0, 204);
        assert_eq!(available(&env, "p001").await, 0);
        assert_eq!(lock(&env, "p001", "cart-a", 1, 600).await.0, 204);
        assert_eq!(lock(&env, "p001", "cart-b", 2, 600).await.0, 204);
        assert_eq!(available(&env, "p001").await, 0);
        // quantity 0 unlocks
        assert_eq!(lock(&env, "p001", "cart-b", 0, 600).await.0, 204);
        assert_eq!(available(&env, "p001").await, 2);
        // a lock of no duration has expired at once: it takes nothing
        assert_eq!(lock(&env, "p001", "cart-c", 2, 0).await.0, 204);
        assert_eq!(available(&env, "p001").await, 2);
        // unlimited stock: always lockable
        assert_eq!(lock(&env, "f001", "cart-a", 1000, 600).await.0, 204);
        assert_eq!(available(&env, "f001").await, -1);
        let (s, b) = lock(&env, "nothing", "cart-a", 1, 600).await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2006)), "{b}");
    }
);

engine_test!(
    /// An order with `inventory_products` and `lock_uuids` takes the stock of its cart's locks
    /// in its own transaction and frees what it does not take; a short order is a 410 and
    /// changes nothing; deleting the order gives the stock back.
    async fn orders_take_stock_with_their_carts_locks(engine: Engine) {
        let (env, pianos) = pianos(engine).await;
        pre_sales(&env).await;
        assert_eq!(lock(&env, "p001", "cart-a", 3, 600).await.0, 204);
        // Another cart cannot order while cart-a holds every piano.
        let (s, b) = post(&env, "private/orders", &piano_order(1, &[])).await;
        assert_eq!((s, b["code"].as_u64()), (410, Some(2670)), "{b}");
        assert_eq!(b["available_quantity"], 0);
        assert_eq!(order_count(&env).await, 0);
        // cart-a checks out two of its three: the third is free again.
        let (s, b) = post(&env, "private/orders", &piano_order(2, &["cart-a"])).await;
        assert_eq!(s, 200, "{b}");
        let order_id = b["order_id"].as_str().unwrap().to_owned();
        assert_eq!(available(&env, "p001").await, 1);
        let t = crate::orders::terms(&env, &pianos, &order_id).await;
        assert_eq!(
            t["products"],
            json!([{"product_id": "p001", "description": "piano", "quantity": 2,
                    "unit": "unit", "price": "KUDOS:40000"}])
        );
        // Two more are short: 410, nothing changes.
        let (s, b) = post(&env, "private/orders", &piano_order(2, &[])).await;
        assert_eq!((s, b["code"].as_u64()), (410, Some(2670)), "{b}");
        assert_eq!(b["requested_quantity"], 2);
        assert_eq!(b["available_quantity"], 1);
        assert_eq!(order_count(&env).await, 1);
        assert_eq!(available(&env, "p001").await, 1);
        // The order's locks keep the product from being deleted.
        let (s, b) = call(
            &env,
            reqwest::Method::DELETE,
            "private/products/p001",
            None,
            &[],
        )
        .await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2680)), "{b}");
        // Deleting the order gives its pianos back.
        let path = format!("private/orders/{order_id}");
        assert_eq!(
            call(&env, reqwest::Method::DELETE, &path, None, &[])
                .await
                .0,
            204
        );
        assert_eq!(available(&env, "p001").await, 3);
        // Digital goods: unlimited, and an unknown product is a 404.
        let (s, b) = post(
            &env,
            "private/orders",
            &json!({"order": {"amount": "KUDOS:9.87", "summary": "Beethoven Sonatas"},
                    "inventory_products": [{"product_id": "f001", "quantity": 1}]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = post(
            &env,
            "private/orders",
            &json!({"order": {"amount": "KUDOS:1", "summary": "x"},
                    "inventory_products": [{"product_id": "nope", "quantity": 1}]}),
        )
        .await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2006)), "{b}");
        assert_eq!(
            call(
                &env,
                reqwest::Method::DELETE,
                "private/products/p001",
                None,
                &[]
            )
            .await
            .0,
            204
        );
        let (s, _) = env.get("private/products/p001").await;
        assert_eq!(s, 404);
    }
);

engine_test!(
    /// Two carts racing for the last piano, as orders and as locks, all at once: exactly one
    /// gets it, every other one a 410.
    async fn two_carts_racing_for_the_last_piano_one_gets_it(engine: Engine) {
        let (env, _) = pianos(engine).await;
        // Several rounds, each for the last piano of its own product, 16 carts at once.
        for round in 0..4 {
            let product = format!("last-{round}");
            let (s, b) = post(
                &env,
                "private/products",
                &json!({"product_id": product, "description": "piano", "unit": "unit",
                        "price": "KUDOS:20000", "total_stock": 1}),
            )
            .await;
            assert_eq!(s, 204, "{b}");
            let orders = (0..16)
                .map(|_| {
                    let body = json!({
                        "order": {"amount": "KUDOS:20000", "summary": "the last piano"},
                        "inventory_products": [{"product_id": product, "quantity": 1}],
                    });
                    ("private/orders".to_owned(), body)
                })
                .collect();
            let statuses = race(&env, orders).await;
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "{statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| **s == 410).count(),
                15,
                "{statuses:?}"
            );
            assert_eq!(order_count(&env).await, round + 1);
        }

        // The same race for a second last piano, with locks.
        let (s, b) = post(
            &env,
            "private/products",
            &json!({"product_id": "p002", "description": "piano", "unit": "unit",
                    "price": "KUDOS:20000", "total_stock": 1}),
        )
        .await;
        assert_eq!(s, 204, "{b}");
        let locks = (0..8)
            .map(|i| {
                let body = json!({"lock_uuid": format!("cart-{i}"),
                                  "duration": {"d_us": 600_000_000u64}, "quantity": 1});
                ("private/products/p002/lock".to_owned(), body)
            })
            .collect();
        let statuses = race(&env, locks).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 204).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 410).count(),
            7,
            "{statuses:?}"
        );
        assert_eq!(available(&env, "p002").await, 0);
    }
);

/// POSTs `(path, body)` requests all at once, each on its own task behind a barrier, so they
/// really overlap; returns their statuses.
async fn race(env: &Env, requests: Vec<(String, Value)>) -> Vec<u16> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(path, body)| {
            let (http, url, barrier) = (
                env.http.clone(),
                format!("{}{path}", env.base),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    statuses
}

engine_test!(
    /// PATCH: the stock only grows, `total_lost` only grows and never beyond what is left;
    /// other fields change freely.
    async fn product_updates_never_shrink_stock_or_losses(engine: Engine) {
        let (env, _) = pianos(engine).await;
        pre_sales(&env).await;
        assert_eq!(lock(&env, "p001", "cart-a", 1, 600).await.0, 204);
        let patch = |body: Value| {
            let env = &env;
            async move {
                call(
                    env,
                    reqwest::Method::PATCH,
                    "private/products/p001",
                    Some(&body),
                    &[],
                )
                .await
            }
        };
        let base = |stock: i64, lost: Option<i64>| {
            let mut b = json!({"description": "grand piano", "unit": "unit",
                               "price": "KUDOS:25000", "total_stock": stock});
            if let Some(lost) = lost {
                b["total_lost"] = json!(lost);
            }
            b
        };
        let (s, b) = patch(base(2, None)).await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2662)), "{b}");
        // 3 in stock, 1 locked: losing 3 leaves too little
        let (s, b) = patch(base(3, Some(3))).await;
        assert_eq!((s, b["code"].as_u64()), (400, Some(2661)), "{b}");
        assert_eq!(patch(base(5, Some(1))).await.0, 204);
        let (s, b) = patch(base(5, Some(0))).await;
        assert_eq!((s, b["code"].as_u64()), (409, Some(2660)), "{b}");
        let (_, p) = env.get("private/products/p001").await;
        assert_eq!(p["description"], "grand piano");
        assert_eq!(p["price"], "KUDOS:25000");
        assert_eq!(p["total_stock"], 5);
        assert_eq!(p["total_lost"], 1);
        assert_eq!(p["total_available"], 3);
        let (s, b) = call(
            &env,
            reqwest::Method::PATCH,
            "private/products/nope",
            Some(&base(1, None)),
            &[],
        )
        .await;
        assert_eq!((s, b["code"].as_u64()), (404, Some(2006)), "{b}");
    }
);
