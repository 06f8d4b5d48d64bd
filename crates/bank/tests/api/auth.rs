//! Authentication and authorisation: 401 without or with wrong credentials, 403 for the wrong
//! account or scope, and nothing changes on a refused request.

use cardcash_testkit::{Engine, engine_test};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Cred, TestBank, assert_taler_error, request_uid, wtid};

engine_test!(
    async fn wire_gateway_needs_the_owner_or_admin(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("alice", "alice-pw", false).await;
        bank.add_incoming(
            "exchange",
            "KUDOS:10",
            1,
            "payto://iban/DE89370400440532013000",
        )
        .await;
        let transfer = bank.wg("exchange", "transfer");
        let body = json!({
            "request_uid": request_uid(1).to_string(),
            "amount": "KUDOS:1",
            "exchange_base_url": "https://exchange.example/",
            "wtid": wtid(1).to_string(),
            "credit_account": bank.payto("alice"),
        });

        // No credentials: 401 with a Basic challenge.
        let resp = bank
            .http
            .post(bank.url(&transfer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "[{engine}]");
        assert!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("Basic")),
            "[{engine}]"
        );
        let refused = [
            (
                bank.post(&transfer, &Cred::Basic("exchange", "wrong"), &body)
                    .await,
                StatusCode::UNAUTHORIZED,
                40,
            ),
            (
                bank.post(&transfer, &Cred::Basic("nobody", "pw"), &body)
                    .await,
                StatusCode::UNAUTHORIZED,
                40,
            ),
            (
                bank.post(
                    &transfer,
                    &Cred::Bearer("secret-token:forged".into()),
                    &body,
                )
                .await,
                StatusCode::UNAUTHORIZED,
                40,
            ),
            (
                bank.post(&transfer, &Cred::Bearer("garbage".into()), &body)
                    .await,
                StatusCode::UNAUTHORIZED,
                40,
            ),
            (
                bank.post(&transfer, &Cred::Basic("alice", "alice-pw"), &body)
                    .await,
                StatusCode::FORBIDDEN,
                44,
            ),
        ];
        for (got, status, code) in &refused {
            assert_taler_error(&engine, got, *status, *code);
        }
        let history = bank
            .get(
                &bank.wg("exchange", "history/incoming"),
                &Cred::Basic("alice", "alice-pw"),
            )
            .await;
        assert_taler_error(&engine, &history, StatusCode::FORBIDDEN, 44);
        let add = bank
            .post(
                &bank.wg("exchange", "admin/add-incoming"),
                &Cred::Basic("alice", "alice-pw"),
                &json!({"amount": "KUDOS:1", "reserve_pub": crate::helpers::reserve_pub(9).to_string(), "debit_account": bank.payto("alice")}),
            )
            .await;
        assert_taler_error(&engine, &add, StatusCode::FORBIDDEN, 44);
        let peek = bank
            .get("/accounts/exchange", &Cred::Basic("alice", "alice-pw"))
            .await;
        assert_taler_error(&engine, &peek, StatusCode::FORBIDDEN, 44);

        // Nothing moved and nothing was recorded.
        bank.assert_balance("exchange", "KUDOS:10").await;
        bank.assert_balance("alice", "KUDOS:0").await;
        let (status, _) = bank
            .get(
                &bank.wg("exchange", "history/outgoing"),
                &Cred::Basic("exchange", "exchange-pw"),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "[{engine}]");

        // The owner and the admin may.
        let ok = bank
            .post(&transfer, &Cred::Basic("exchange", "exchange-pw"), &body)
            .await;
        assert_eq!(ok.0, StatusCode::OK, "[{engine}] {}", ok.1);
        let replay_as_admin = bank.post(&transfer, &Cred::Admin, &body).await;
        assert_eq!(replay_as_admin, ok, "[{engine}]");
        bank.assert_balance("alice", "KUDOS:1").await;
        bank.shutdown().await;
    }
);

engine_test!(
    async fn bearer_tokens_have_scopes(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("alice", "alice-pw", false).await;
        bank.add_incoming(
            "exchange",
            "KUDOS:10",
            1,
            "payto://iban/DE89370400440532013000",
        )
        .await;

        let token = |scope: &'static str| {
            let bank = &bank;
            async move {
                let (status, body) = bank
                    .post(
                        "/accounts/exchange/token",
                        &Cred::Basic("exchange", "exchange-pw"),
                        &json!({"scope": scope}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let t = body["access_token"].as_str().unwrap().to_owned();
                assert!(t.starts_with("secret-token:"));
                assert!(body["expiration"]["t_s"].as_u64().is_some());
                t
            }
        };
        let ro = Cred::Bearer(token("readonly").await);
        let rw = Cred::Bearer(token("readwrite").await);

        let (status, body) = bank
            .get(&bank.wg("exchange", "history/incoming"), &ro)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let body = json!({
            "request_uid": request_uid(1).to_string(),
            "amount": "KUDOS:1",
            "exchange_base_url": "https://exchange.example/",
            "wtid": wtid(1).to_string(),
            "credit_account": bank.payto("alice"),
        });
        let denied = bank
            .post(&bank.wg("exchange", "transfer"), &ro, &body)
            .await;
        assert_taler_error(&engine, &denied, StatusCode::FORBIDDEN, 44);
        bank.assert_balance("alice", "KUDOS:0").await;
        let ok = bank
            .post(&bank.wg("exchange", "transfer"), &rw, &body)
            .await;
        assert_eq!(ok.0, StatusCode::OK, "[{engine}] {}", ok.1);
        // A token only opens its own account.
        let other = bank.get("/accounts/alice", &rw).await;
        assert_taler_error(&engine, &other, StatusCode::FORBIDDEN, 44);
        let bad_scope = bank
            .post(
                "/accounts/exchange/token",
                &rw,
                &json!({"scope": "everything"}),
            )
            .await;
        assert_taler_error(&engine, &bad_scope, StatusCode::BAD_REQUEST, 26);
        bank.shutdown().await;
    }
);

/// The value of an unlabelled series on the bank's `/metrics`.
async fn metric(bank: &crate::helpers::TestBank, series: &str) -> u64 {
    let text = bank
        .http
        .get(bank.url("/metrics"))
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
    /// Passwords are checked by the shared credential verifier: an unknown account costs one hash
    /// like a wrong password (no enumeration by timing), a right password is hashed once and then
    /// answered from the cache, and concurrent wrong guesses never run more hashes at once than the
    /// process allows (one per core), so they cannot grow memory.
    async fn password_checks_are_uniform_bounded_and_cached(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        let start = metric(&bank, "credential_hashes_total").await;
        let (status, _) = bank
            .get("/accounts/alice", &Cred::Basic("nobody", "alice-pw"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "[{engine}]");
        assert_eq!(
            metric(&bank, "credential_hashes_total").await,
            start + 1,
            "[{engine}] an unknown account costs one hash"
        );
        let (status, _) = bank
            .get("/accounts/alice", &Cred::Basic("alice", "wrong"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "[{engine}]");
        assert_eq!(metric(&bank, "credential_hashes_total").await, start + 2);

        for _ in 0..3 {
            let (status, body) = bank
                .get("/accounts/alice", &Cred::Basic("alice", "alice-pw"))
                .await;
            assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        }
        assert_eq!(metric(&bank, "credential_hashes_total").await, start + 3);
        assert_eq!(metric(&bank, "credential_cache_hits_total").await, 2);

        let guesses = (0..40).map(|i| {
            let bank = &bank;
            async move {
                let password: &'static str = if i % 2 == 0 { "guess-a" } else { "guess-b" };
                let user = if i % 3 == 0 { "nobody" } else { "alice" };
                bank.get("/accounts/alice", &Cred::Basic(user, password))
                    .await
                    .0
            }
        });
        for status in futures_util::future::join_all(guesses).await {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "[{engine}]");
        }
        assert_eq!(metric(&bank, "credential_hashes_total").await, start + 43);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let peak = metric(&bank, "credential_hashes_in_flight_max").await;
        assert!(
            (1..=cores).contains(&peak),
            "[{engine}] {peak} hashes at once on {cores} cores"
        );
        // The cached success survived the wrong guesses.
        let (status, _) = bank
            .get("/accounts/alice", &Cred::Basic("alice", "alice-pw"))
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}]");
        assert_eq!(metric(&bank, "credential_cache_hits_total").await, 3);
    }
);
