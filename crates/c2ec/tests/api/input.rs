//! Malformed and unauthenticated requests (clear Taler errors, nothing changed), configs, long
//! polling wake-up and the legacy parameters.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Card, Engine, Env, Options, WAIT, WIRE_TOKEN, code, engine_test, reserve_pub, uid, wait_until,
};

engine_test!(
    async fn configs_announce_versions_including_zero(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let v: Value = env
            .http
            .get(env.url("taler-integration/config"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["name"], "taler-bank-integration");
        assert_eq!(v["version"], "4:0:4");
        assert_eq!(v["currency"], "CHF");
        assert_eq!(v["currency_specification"]["alt_unit_names"]["0"], "CHF");
        let v: Value = env
            .exchange(Method::GET, "config")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["name"], "taler-wire-gateway");
        assert_eq!(v["currency"], "CHF");
        let v: Value = env
            .terminal(Method::GET, "terminal/config")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["name"], "taler-terminal");
        assert_eq!(v["version"], "0:0:0");
        assert_eq!(v["withdrawal_fees"], "CHF:0.25");
        assert_eq!(v["provider_name"], "in-memory card processor");
        assert_eq!(v["wire_type"], "card-transaction");
        let r = env.http.get(env.url("health")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let m = env
            .http
            .get(env.url("metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("c2ec_long_poll_waiters"));
        env.stop().await;
    }
);

engine_test!(
    async fn malformed_requests_are_clear_taler_errors(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        // Malformed WOPID → 400, unknown WOPID → 404.
        let r = env
            .http
            .get(env.url("taler-integration/withdrawal-operation/not-a-wopid"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 26);
        let unknown = cardcash_util::base32::encode(&[9u8; 32]);
        let r = env
            .http
            .get(env.url(&format!("taler-integration/withdrawal-operation/{unknown}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(code(r).await, 5107);
        let r = env.register(&unknown, &reserve_pub()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Malformed reserve key, malformed JSON, bad old_state, bad timeout.
        let r = env.register(&wopid, "SHORT").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 22);
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
            .body("{not json")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = env
            .http
            .get(env.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}?old_state=done"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = env
            .http
            .get(env.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}?timeout_ms=-1"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // Bad amounts at setup: malformed, wrong currency, none at all.
        for body in [
            json!({"request_uid": uid(), "amount": "CHF:1.123456789"}),
            json!({"request_uid": uid(), "amount": "EUR:5"}),
            json!({"request_uid": uid()}),
            json!({"request_uid": "", "amount": "CHF:5"}),
        ] {
            let r = env
                .terminal(Method::POST, "terminal/withdrawals")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
            assert!(code(r).await > 0);
        }
        // Wire gateway: malformed history parameters and transfer bodies.
        let r = env
            .exchange(Method::GET, "history/incoming?limit=zero")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = env
            .exchange(Method::POST, "transfer")
            .json(&json!({"request_uid": "X", "amount": "CHF:1", "exchange_base_url": "https://e/", "wtid": "Y", "credit_account": "payto://x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // Nothing changed.
        let st = env.wallet_status(&wopid, "").await;
        assert_eq!(st["status"], "pending");
        assert!(env.incoming().await.is_empty());
        let r = env
            .exchange(Method::GET, "history/outgoing")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        env.stop().await;
    }
);

engine_test!(
    async fn unauthenticated_terminals_change_nothing(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let body = json!({"request_uid": uid(), "amount": "CHF:5"});
        let r = env
            .http
            .post(env.url("terminal/withdrawals"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(code(r).await, 40);
        let r = env
            .http
            .post(env.url("terminal/withdrawals"))
            .basic_auth(&env.terminal_user, Some("wrong"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = env
            .http
            .post(env.url("terminal/withdrawals"))
            .basic_auth("T-999", Some("x"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        // Another terminal cannot see or act on this terminal's withdrawal.
        let (wopid, _) = env.setup("CHF:5").await;
        let other = cardcash_c2ec::admin::add_terminal(&env.db, "counter 2")
            .await
            .unwrap();
        let r = env
            .http
            .post(env.url(&format!("terminal/withdrawals/{wopid}/abort")))
            .basic_auth(&other.user, Some(&other.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // Deactivated terminal → 403.
        assert!(
            cardcash_c2ec::admin::deactivate_terminal(&env.db, &env.terminal_user)
                .await
                .unwrap()
        );
        let r = env
            .terminal(Method::POST, "terminal/withdrawals")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = env
            .terminal(Method::POST, &format!("terminal/withdrawals/{wopid}/abort"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let list = cardcash_c2ec::admin::list_terminals(&env.db).await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(!list[0].active && list[1].active);
        assert!(list.iter().all(|t| t.secret_hash.starts_with("$argon2id$")));
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "pending");
        env.stop().await;
    }
);

/// The value of an unlabelled series on C2EC's `/metrics`.
async fn metric(env: &Env, series: &str) -> u64 {
    let text = env
        .http
        .get(env.url("metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

engine_test!(
    /// Terminal secrets go through the shared credential verifier: an unknown terminal id costs the
    /// same argon2 hash as a wrong secret (ids cannot be enumerated by timing), concurrent wrong
    /// secrets never run more hashes at once than there are cores (memory stays flat), and a right
    /// secret is hashed once, then answered from the cache, which wrong secrets do not disturb.
    async fn terminal_secrets_are_checked_uniformly_boundedly_and_cached(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let config = |user: &str, secret: &str| {
            env.http
                .get(env.url("terminal/config"))
                .basic_auth(user, Some(secret))
                .send()
        };
        let start = metric(&env, "credential_hashes_total").await;
        assert_eq!(
            config("T-999", "x").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            metric(&env, "credential_hashes_total").await,
            start + 1,
            "an unknown terminal costs one hash"
        );
        assert_eq!(
            config(&env.terminal_user, "wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(metric(&env, "credential_hashes_total").await, start + 2);

        let guesses = (0..40).map(|i| {
            let user = if i % 2 == 0 {
                env.terminal_user.clone()
            } else {
                format!("T-{}", 1000 + i)
            };
            let request = config(&user, "guess");
            async move { request.await.unwrap().status() }
        });
        for status in futures_util::future::join_all(guesses).await {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(metric(&env, "credential_hashes_total").await, start + 42);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let peak = metric(&env, "credential_hashes_in_flight_max").await;
        assert!(
            (1..=cores).contains(&peak),
            "{peak} hashes at once on {cores} cores"
        );

        for _ in 0..3 {
            let r = config(&env.terminal_user, &env.terminal_secret)
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(metric(&env, "credential_hashes_total").await, start + 43);
        assert_eq!(metric(&env, "credential_cache_hits_total").await, 2);
        // "7" and "T-7" name the same terminal: the same cache entry.
        let bare = env.terminal_user.trim_start_matches("T-").to_owned();
        assert_eq!(
            config(&bare, &env.terminal_secret).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(metric(&env, "credential_cache_hits_total").await, 3);

        // Deactivation takes effect at once, cache or not.
        assert!(
            cardcash_c2ec::admin::deactivate_terminal(&env.db, &env.terminal_user)
                .await
                .unwrap()
        );
        let r = config(&env.terminal_user, &env.terminal_secret)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        env.stop().await;
    }
);

engine_test!(
    async fn wire_gateway_requires_exchange_credentials(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let r = env
            .http
            .get(env.url("taler-wire-gateway/history/incoming"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = env
            .http
            .get(env.url("taler-wire-gateway/history/incoming"))
            .basic_auth("exchange", Some("bad"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = env
            .http
            .get(env.url("taler-wire-gateway/history/incoming"))
            .bearer_auth(WIRE_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        // admin/add-incoming needs the admin token, not the exchange's.
        let body = json!({"amount": "CHF:3", "reserve_pub": reserve_pub(), "debit_account": "payto://x-taler-bank/c2ec.test/somebody"});
        let r = env
            .exchange(Method::POST, "admin/add-incoming")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = env
            .http
            .post(env.url("taler-wire-gateway/admin/add-incoming"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = env
            .http
            .post(env.url("taler-wire-gateway/admin/add-incoming"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(code(r).await, 5114, "reserve_pub reuse");
        assert_eq!(env.incoming().await.len(), 1);
        env.stop().await;
    }
);

engine_test!(
    /// A state change wakes the waiting long poll at once (far before its timeout), and a poll
    /// whose state already differs answers immediately; the legacy `long_poll_ms` works too.
    async fn long_poll_wakes_up_at_once(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let url = env.url(&format!(
            "taler-integration/withdrawal-operation/{wopid}?long_poll_ms=20000"
        ));
        let subscribed = env.subscribers();
        let waiter = tokio::spawn(env.http.get(url).send());
        env.wait_subscribed(subscribed).await;
        assert!(
            !waiter.is_finished(),
            "the poll waits while nothing changes"
        );
        let t0 = Instant::now();
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let r = waiter.await.unwrap().unwrap();
        let woke = t0.elapsed();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "selected");
        assert!(woke < Duration::from_secs(1), "woke after {woke:?}");

        let t0 = Instant::now();
        let v = env
            .wallet_status(&wopid, "old_state=pending&timeout_ms=20000")
            .await;
        assert_eq!(v["status"], "selected");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "no wait when the state already differs"
        );

        // A poll with an unchanged state times out with 200 and the current status.
        let t0 = Instant::now();
        let v = env
            .wallet_status(&wopid, "old_state=selected&timeout_ms=300")
            .await;
        assert_eq!(v["status"], "selected");
        assert!(t0.elapsed() >= Duration::from_millis(290));

        // Incoming history long poll (legacy delta + long_poll_ms) wakes on confirmation.
        let hist = env.url("taler-wire-gateway/history/incoming?delta=5&long_poll_ms=20000");
        let subscribed = env.subscribers();
        let waiter = tokio::spawn(
            env.http
                .get(hist)
                .basic_auth("exchange", Some("wire-secret"))
                .send(),
        );
        env.wait_subscribed(subscribed).await;
        assert!(!waiter.is_finished());
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        let t0 = Instant::now();
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        let r = waiter.await.unwrap().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(t0.elapsed() < Duration::from_secs(2));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["incoming_transactions"].as_array().unwrap().len(), 1);
        let row = v["incoming_transactions"][0]["row_id"].as_u64().unwrap();
        // Paging after the last row: 204.
        let r = env
            .exchange(
                Method::GET,
                &format!("history/incoming?limit=5&offset={row}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = env
            .exchange(
                Method::GET,
                &format!("history/incoming?delta=-5&start={}", row + 1),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        env.stop().await;
    }
);

engine_test!(
    /// A terminal deactivated by another process (the CLI, with its own connection to the
    /// database) is refused soon after, although C2EC caches terminal rows: on PostgreSQL as soon
    /// as the `terminal` notification arrives; on SQLite, where another process cannot notify this
    /// one, once the cached row expires (`http::auth::SQLITE_TTL`, 2 s).
    async fn deactivation_by_another_process_takes_effect(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let url = env.world().c2ec().database_url().to_owned();
        let config = || env.terminal(Method::GET, "terminal/config").send();
        // Authenticated once: the terminal's row is cached.
        assert_eq!(config().await.unwrap().status(), StatusCode::OK);
        let cli = cardcash_c2ec::admin::open_db(&url).await.unwrap();
        let mut seen = env
            .db
            .notifier()
            .subscribe_topic(cardcash_c2ec::db::TOPIC_TERMINAL);
        assert!(
            cardcash_c2ec::admin::deactivate_terminal(&cli, &env.terminal_user)
                .await
                .unwrap()
        );
        match engine {
            Engine::Postgres => {
                assert!(
                    seen.wait(Duration::from_secs(10)).await,
                    "the deactivation is notified across processes"
                );
                assert_eq!(config().await.unwrap().status(), StatusCode::FORBIDDEN);
            }
            Engine::Sqlite => {
                wait_until(WAIT, || async {
                    let status = config().await.unwrap().status();
                    if status != StatusCode::FORBIDDEN {
                        assert_eq!(status, StatusCode::OK);
                    }
                    status == StatusCode::FORBIDDEN
                })
                .await;
            }
        }
        cli.close().await;
        env.stop().await;
    }
);

engine_test!(
    async fn qr_code_svg_for_known_operations_only(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let r = env
            .http
            .get(env.url(&format!("qr/{wopid}.svg")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert!(r.text().await.unwrap().contains("<svg"));
        let unknown = cardcash_util::base32::encode(&[1u8; 32]);
        let r = env
            .http
            .get(env.url(&format!("qr/{unknown}.svg")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        env.stop().await;
    }
);

engine_test!(
    /// Shutdown does not wait for long polls to time out: they answer with the current state.
    async fn shutdown_ends_waiting_long_polls(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let url = env.url(&format!(
            "taler-integration/withdrawal-operation/{wopid}?timeout_ms=30000"
        ));
        let subscribed = env.subscribers();
        let waiter = tokio::spawn(env.http.get(url).send());
        env.wait_subscribed(subscribed).await;
        let t0 = Instant::now();
        env.stop().await;
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            t0.elapsed()
        );
        let r = waiter.await.unwrap().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "pending");
    }
);
