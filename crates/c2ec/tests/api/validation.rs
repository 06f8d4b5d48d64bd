//! Free-form inputs are bounded: identifiers with control characters or beyond their length,
//! transaction ids that would not fit into a payto URI, oversized exchange accounts and
//! amounts of zero are refused with 400 `GENERIC_PARAMETER_MALFORMED`, and change nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    EXCHANGE_ACCOUNT, Engine, Env, Options, code, engine_test, reserve_pub, sql_count, uid,
};

async fn count(env: &Env, sql: &'static str) -> i64 {
    sql_count(&env.db, sql, vec![]).await
}

engine_test!(
    async fn request_uid_is_bounded_and_printable(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let long = "u".repeat(129);
        for bad in [
            "",
            "req\n1",
            "req\u{0}",
            "\treq",
            "req\u{7f}",
            "req\u{85}",
            &long,
        ] {
            let r = env
                .terminal(Method::POST, "terminal/withdrawals")
                .json(&json!({"request_uid": bad, "amount": "CHF:5"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(code(r).await, 26, "{bad:?}");
        }
        assert_eq!(count(&env, "SELECT COUNT(*) FROM withdrawals").await, 0);
        // Printable text of the longest allowed length, Unicode included, is fine.
        let ok = format!("{}é", "u".repeat(126));
        env.setup_body(json!({"request_uid": ok, "amount": "CHF:5"}))
            .await;
        env.stop().await;
    }
);

engine_test!(
    async fn provider_transaction_id_is_bounded_and_payto_safe(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let long = "7".repeat(101);
        for bad in [
            "", "12\n", "12\u{0}", "1 2", "1/2", "1?a=b", "12#", "%31", &long,
        ] {
            let r = env.check(&wopid, bad).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(code(r).await, 26, "{bad:?}");
        }
        assert_eq!(
            count(
                &env,
                "SELECT COUNT(*) FROM withdrawals WHERE provider_tx_id IS NOT NULL"
            )
            .await,
            0
        );
        assert_eq!(count(&env, "SELECT COUNT(*) FROM extra_payments").await, 0);
        env.stop().await;
    }
);

engine_test!(
    async fn selected_exchange_is_bounded(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        // The exchange account itself, padded to 100 KB with a receiver name.
        let huge = format!("{EXCHANGE_ACCOUNT}{}", "x".repeat(100_000));
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
            .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": huge}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 26);
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "pending");
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        env.stop().await;
    }
);

engine_test!(
    /// `CHF:0` cannot be withdrawn: not as the terminal's amount or suggestion, nor as the
    /// wallet's choice.
    async fn zero_amounts_are_refused(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        for body in [
            json!({"request_uid": uid(), "amount": "CHF:0"}),
            json!({"request_uid": uid(), "suggested_amount": "CHF:0"}),
            json!({"request_uid": uid(), "suggested_amount": "CHF:0", "terminal_fees": "CHF:1"}),
        ] {
            let r = env
                .terminal(Method::POST, "terminal/withdrawals")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(code(r).await, 26, "{body}");
        }
        let (wopid, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:5"}))
            .await;
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
            .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": EXCHANGE_ACCOUNT, "amount": "CHF:0"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 26);
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "pending");
        env.stop().await;
    }
);
