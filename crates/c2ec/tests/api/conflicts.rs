//! Races, replays, conflicts, expiry and refunds through the wire gateway.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Arg, Card, Engine, Env, Options, code, engine_test, reserve_pub, sql_exec};

engine_test!(
    /// Two wallets race to register the same WOPID: exactly one wins, the other gets 409 5113.
    async fn two_wallets_racing(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        for _ in 0..5 {
            let (wopid, _) = env.setup("CHF:20").await;
            let (a, b) = (reserve_pub(), reserve_pub());
            let (ra, rb) = tokio::join!(env.register(&wopid, &a), env.register(&wopid, &b));
            let (sa, sb) = (ra.status(), rb.status());
            let ok = [sa, sb].iter().filter(|s| **s == StatusCode::OK).count();
            assert_eq!(ok, 1, "exactly one registration wins: {sa} {sb}");
            let loser = if sa == StatusCode::OK { rb } else { ra };
            assert_eq!(loser.status(), StatusCode::CONFLICT);
            assert_eq!(code(loser).await, 5113);
            let winner = if sa == StatusCode::OK { &a } else { &b };
            let st = env.wallet_status(&wopid, "").await;
            assert_eq!(st["selected_reserve_pub"], winner.as_str());
            // The winner may repeat its registration (idempotent).
            assert_eq!(env.register(&wopid, winner).await.status(), StatusCode::OK);
        }
        env.stop().await;
    }
);

engine_test!(
    /// A reserve public key cannot fund two withdrawals; a foreign exchange account is refused.
    async fn registration_conflicts(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (w1, _) = env.setup("CHF:20").await;
        let (w2, _) = env.setup("CHF:20").await;
        let key = reserve_pub();
        assert_eq!(env.register(&w1, &key).await.status(), StatusCode::OK);
        let r = env.register(&w2, &key).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5114);
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{w2}")))
            .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": "payto://x-taler-bank/c2ec.test/mallory"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5127);
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{w2}")))
            .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": crate::helpers::EXCHANGE_ACCOUNT, "amount": "CHF:21"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5148);
        assert_eq!(env.wallet_status(&w2, "").await["status"], "pending");
        env.stop().await;
    }
);

engine_test!(
    /// Check before registration, replayed check, conflicting check, one transaction for two WOPIDs.
    async fn replayed_and_conflicting_check(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let tx = env.pay(&wopid, "CHF:20", Card::DelayedFinality);
        let r = env.check(&wopid, &tx).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5130, "check before registration");
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT,
            "replay"
        );
        let other = env.pay(&wopid, "CHF:20", Card::Approved);
        let r = env.check(&wopid, &other).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "different transaction");
        // The same card transaction cannot serve a second withdrawal.
        let (w2, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&w2, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let r = env.check(&w2, &tx).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(env.incoming().await.len(), 1);
        env.stop().await;
    }
);

engine_test!(
    /// Pending operations expire after the registration window, selected ones without a check
    /// after the check window; late registrations and checks are refused.
    async fn expiry_of_pending_and_selected(engine: Engine) {
        let opts = Options {
            registration_window: Duration::from_millis(300),
            check_window: Duration::from_millis(600),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (pending, _) = env.setup("CHF:20").await;
        let (selected, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&selected, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        assert_eq!(env.wait_leaving(&pending, "pending").await, "aborted");
        assert_eq!(env.wait_leaving(&selected, "selected").await, "aborted");
        let r = env.register(&pending, &reserve_pub()).await;
        assert_eq!(code(r).await, 5153);
        let tx = env.pay(&selected, "CHF:20", Card::Approved);
        let r = env.check(&selected, &tx).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5117);
        env.stop().await;
    }
);

fn hash(n: u8) -> String {
    cardcash_util::base32::encode(&[n; 64])
}

fn short(n: u8) -> String {
    cardcash_util::base32::encode(&[n; 32])
}

engine_test!(
    /// The exchange sends money back (closed reserve): C2EC refunds the card, idempotently.
    async fn refund_through_transfer(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        let debit = env.incoming().await[0]["debit_account"]
            .as_str()
            .unwrap()
            .to_owned();

        let body = json!({
            "request_uid": hash(1), "amount": "CHF:19.5", "exchange_base_url": "https://exchange.test/",
            "wtid": short(2), "credit_account": debit,
        });
        let r = env
            .exchange(Method::POST, "transfer")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let first: Value = r.json().await.unwrap();
        assert_eq!(
            env.wait_refund(&tx).await.map(|a| a.to_string()),
            Some("CHF:19.5".into())
        );

        let r = env
            .exchange(Method::POST, "transfer")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let again: Value = r.json().await.unwrap();
        assert_eq!(
            again["row_id"], first["row_id"],
            "replay returns the same transfer"
        );
        let mut changed = body.clone();
        changed["amount"] = json!("CHF:1");
        let r = env
            .exchange(Method::POST, "transfer")
            .json(&changed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5112);
        // Neither the replay nor the conflict recorded a second transfer to refund.
        assert_eq!(env.transfer_count().await, 1);
        assert_eq!(
            env.processor.refunded(&tx).unwrap().to_string(),
            "CHF:19.5",
            "refunded once"
        );

        // More than is left is refused up front (nothing is recorded, nothing refunded).
        let over = json!({
            "request_uid": hash(3), "amount": "CHF:1", "exchange_base_url": "https://exchange.test/",
            "wtid": short(4), "credit_account": debit,
        });
        let r = env
            .exchange(Method::POST, "transfer")
            .json(&over)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5102, "BANK_UNALLOWED_DEBIT");
        assert_eq!(env.processor.refunded(&tx).unwrap().to_string(), "CHF:19.5");

        let r = env
            .exchange(Method::GET, "history/outgoing?limit=10")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let out: Value = r.json().await.unwrap();
        let rows = out["outgoing_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["amount"], "CHF:19.5");
        assert_eq!(rows[0]["wtid"], short(2));
        assert_eq!(rows[0]["credit_account"], debit.as_str());
        env.stop().await;
    }
);

engine_test!(
    /// The database itself refuses transitions that are not edges of the state machine, whoever
    /// issues them.
    async fn database_refuses_illegal_transitions(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let w: cardcash_c2ec::Wopid = wopid.parse().unwrap();
        let illegal = |to: &'static str| {
            let db = env.db.clone();
            let key = w.as_bytes().to_vec();
            async move {
                sql_exec(
                    &db,
                    "UPDATE withdrawals SET status = $1 WHERE wopid = $2",
                    vec![Arg::Text(to.to_owned()), Arg::Bytes(key)],
                )
                .await
                .is_err()
            }
        };
        // pending → confirmed skips the machine (and lacks a reserve): refused.
        assert!(illegal("confirmed").await);
        assert!(illegal("bogus").await);
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        assert!(illegal("pending").await, "selected → pending");
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert!(illegal("aborted").await, "confirmed → aborted");
        assert!(illegal("selected").await, "confirmed → selected");
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "confirmed");
        env.stop().await;
    }
);
