//! Every sum of money is checked where it is formed, and an operation that cannot be attested
//! ends (aborted, captured money refunded) after bounded retries with backoff instead of
//! spinning in the attestation worker.

use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Arg, Card, EXCHANGE_ACCOUNT, Engine, Env, Options, code, engine_test, reserve_pub, sql_count,
    sql_exec, uid,
};

/// 2^52, the largest value part of an amount.
const MAX: &str = "CHF:4503599627370496";

engine_test!(
    /// Setup refuses an amount or a suggestion that cannot be charged together with the terminal's
    /// fees (400 `BANK_NUMBER_TOO_BIG`), and amounts of zero; nothing is created.
    async fn setup_refuses_unchargeable_and_zero_amounts(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        for (body, want) in [
            (
                json!({"request_uid": uid(), "amount": MAX, "terminal_fees": "CHF:1"}),
                5104,
            ),
            (
                json!({"request_uid": uid(), "amount": "CHF:4503599627370496.6", "terminal_fees": "CHF:0.4"}),
                5104,
            ),
            (
                json!({"request_uid": uid(), "suggested_amount": MAX, "terminal_fees": "CHF:1"}),
                5104,
            ),
            (
                json!({"request_uid": uid(), "amount": "CHF:5", "suggested_amount": MAX, "terminal_fees": "CHF:1"}),
                5104,
            ),
            (json!({"request_uid": uid(), "amount": "CHF:0"}), 26),
            (
                json!({"request_uid": uid(), "suggested_amount": "CHF:0"}),
                26,
            ),
        ] {
            let r = env
                .terminal(Method::POST, "terminal/withdrawals")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(code(r).await, want, "{body}");
        }
        // The largest amounts that can still be charged are valid withdrawals.
        env.setup_body(json!({"request_uid": uid(), "amount": MAX}))
            .await;
        env.setup_body(
            json!({"request_uid": uid(), "amount": MAX, "terminal_fees": "CHF:0.99999999"}),
        )
        .await;
        let n = sql_count(&env.db, "SELECT COUNT(*) FROM withdrawals", vec![]).await;
        assert_eq!(n, 2, "only the valid setups created operations");
        env.stop().await;
    }
);

engine_test!(
    /// A wallet choosing an amount on a `suggested_amount` withdrawal: a choice that overflows
    /// with the card fees, or zero, is refused and changes nothing; a sane choice then works.
    async fn wallet_choice_must_be_chargeable(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:10", "terminal_fees": "CHF:0.5"}))
            .await;
        let register = |amount: &'static str| {
            env.http
                .post(env.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
                .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": EXCHANGE_ACCOUNT, "amount": amount}))
                .send()
        };
        // 2^52.6 is an amount; plus the fees of 0.5 it is not.
        let r = register("CHF:4503599627370496.6").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 5104, "BANK_NUMBER_TOO_BIG");
        let r = register("CHF:0").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(code(r).await, 26, "GENERIC_PARAMETER_MALFORMED");
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "pending");
        assert_eq!(register("CHF:12").await.unwrap().status(), StatusCode::OK);
        let tx = env.pay(&wopid, "CHF:12.5", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(env.incoming().await[0]["amount"], "CHF:12");
        env.stop().await;
    }
);

engine_test!(
    /// A row stored before the sums were checked (amount plus fees beyond 2^52): the worker cannot
    /// form the charge, so it aborts at once and the captured payment goes back to the card,
    /// instead of failing "without amount" hundreds of times a second forever.
    async fn unchargeable_stored_operation_is_aborted_and_refunded(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let w: cardcash_c2ec::Wopid = wopid.parse().unwrap();
        sql_exec(
            &env.db,
            "UPDATE withdrawals SET card_fees_val = 4503599627370496 WHERE wopid = $1",
            vec![Arg::Bytes(w.as_bytes().to_vec())],
        )
        .await
        .unwrap();
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        assert_eq!(
            env.wait_refund(&tx).await.map(|a| a.to_string()),
            Some("CHF:20".into())
        );
        assert_eq!(env.processor.refund_count(), 1);
        assert!(env.incoming().await.is_empty());
        env.stop().await;
    }
);

engine_test!(
    /// An attempt that fails inside C2EC (here: confirming hits a reserve key that is already in
    /// the incoming history, a unique violation) counts as a failed attempt: retried with
    /// exponential backoff, then aborted and refunded once the retries are exhausted. The number of
    /// provider reads stays bounded by the retry budget.
    async fn failing_attempts_back_off_then_abort_and_refund(engine: Engine) {
        let opts = Options {
            max_retries: 3,
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let reserve = reserve_pub();
        assert_eq!(
            env.register(&wopid, &reserve).await.status(),
            StatusCode::OK
        );
        let key = cardcash_util::base32::decode(&reserve).unwrap();
        sql_exec(
            &env.db,
            "INSERT INTO incoming (withdrawal_id, reserve_pub, amount_val, amount_frac, debit_account, created_at) \
             VALUES (NULL, $1, 1, 0, 'payto://x-taler-bank/c2ec.test/someone', 0)",
            vec![Arg::Bytes(key)],
        )
        .await
        .unwrap();
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        assert_eq!(
            env.wait_refund(&tx).await.map(|a| a.to_string()),
            Some("CHF:20".into())
        );
        // One read per attempt (1 + 3 retries) and one by the refund worker.
        let reads = env.processor.reads.load(Ordering::SeqCst);
        assert!(reads <= 6, "{reads} provider reads");
        let store = cardcash_c2ec::db::C2ecStore::new(env.db.clone(), "CHF".parse().unwrap());
        let w: cardcash_c2ec::Wopid = wopid.parse().unwrap();
        let row = store.withdrawal(&w).await.unwrap().unwrap();
        assert!(
            row.abort_reason
                .as_deref()
                .unwrap_or("")
                .contains("retries exhausted"),
            "{:?}",
            row.abort_reason
        );
        assert_eq!(row.attempts, 3);
        assert_eq!(env.incoming().await.len(), 1, "only the foreign row");
        env.stop().await;
    }
);
