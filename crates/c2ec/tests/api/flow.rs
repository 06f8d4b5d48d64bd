//! The arrows of the C2EC sequence diagram (seed 000), both abort branches included.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Card, Engine, Env, Options, WAIT, code, engine_test, reserve_pub, uid, wait_until,
};

engine_test!(
    /// (0) setup → WOPID, (1) QR, terminal long poll, (2) wallet registers, (3) long poll ends with
    /// `selected`, (5/6) card payment, (7) check, (8) attestation, (9a) confirmed, (10) the exchange
    /// sees the reserve exactly once.
    async fn happy_path_end_to_end(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, uri) = env.setup("CHF:20").await;
        assert_eq!(wopid.len(), 52);
        let host = env.base.trim_start_matches("http://").trim_end_matches('/');
        assert_eq!(
            uri,
            format!("taler+http://withdraw/{host}/taler-integration/{wopid}")
        );

        // Terminal starts long polling (old_state=pending).
        let subscribed = env.subscribers();
        let poll = env
            .terminal(
                Method::GET,
                &format!("terminal/withdrawals/{wopid}?old_state=pending&timeout_ms=10000"),
            )
            .send();
        let poll = tokio::spawn(poll);
        env.wait_subscribed(subscribed).await;

        // Wallet scans: pending, amount fixed, legacy booleans present.
        let st = env.wallet_status(&wopid, "").await;
        assert_eq!(st["status"], "pending");
        assert_eq!(st["amount"], "CHF:20");
        assert_eq!(st["selection_done"], false);
        assert_eq!(st["transfer_done"], false);
        assert_eq!(st["aborted"], false);
        assert_eq!(st["wire_types"], json!(["x-taler-bank"]));
        assert_eq!(st["suggested_exchange"], "https://exchange.test/");

        let reserve = reserve_pub();
        let started = Instant::now();
        let r = env.register(&wopid, &reserve).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "selected");
        assert_eq!(body["transfer_done"], false);

        let polled = poll.await.unwrap().unwrap();
        assert_eq!(polled.status(), StatusCode::OK);
        let polled: Value = polled.json().await.unwrap();
        assert_eq!(polled["status"], "selected");
        assert_eq!(polled["selected_reserve_pub"], reserve.as_str());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "long poll did not end promptly"
        );

        // Card payment at the processor, then the terminal's check.
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        let r = env.check(&wopid, &tx).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");

        let st = env.wallet_status(&wopid, "").await;
        assert_eq!(st["transfer_done"], true);
        assert_eq!(st["selection_done"], true);
        assert_eq!(
            st["sender_wire"],
            format!("payto://card-transaction/cardproc.test/{tx}")
        );

        let incoming = env.incoming().await;
        assert_eq!(incoming.len(), 1, "exactly one credit");
        assert_eq!(incoming[0]["reserve_pub"], reserve.as_str());
        assert_eq!(incoming[0]["amount"], "CHF:20");
        assert_eq!(incoming[0]["type"], "RESERVE");
        assert_eq!(
            incoming[0]["debit_account"],
            format!("payto://card-transaction/cardproc.test/{tx}")
        );

        // Replayed check after confirmation: still 204, still one credit.
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        // Nothing was scheduled again: no second attestation can credit it twice.
        let row = env.withdrawal(&wopid).await;
        assert_eq!(row.status.to_string(), "confirmed");
        assert_eq!(row.next_attempt_at, None, "no attestation scheduled");
        assert_eq!(env.incoming().await.len(), 1);

        // Abort after confirmation is refused; nothing changes.
        let r = env
            .http
            .post(env.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}/abort"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5116);
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "confirmed");

        // Audit trail: setup, selection, check, confirmation.
        let w: cardcash_c2ec::Wopid = wopid.parse().unwrap();
        let store = cardcash_c2ec::db::C2ecStore::new(env.db.clone(), "CHF".parse().unwrap());
        let row = store.withdrawal(&w).await.unwrap().unwrap();
        let events: Vec<(Option<String>, String, String)> = store
            .events(row.withdrawal_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.old_status.map(|s| s.as_str().to_owned()),
                    e.new_status.as_str().to_owned(),
                    e.actor,
                )
            })
            .collect();
        assert_eq!(
            events,
            vec![
                (None, "pending".into(), "terminal".into()),
                (Some("pending".into()), "selected".into(), "wallet".into()),
                (
                    Some("selected".into()),
                    "selected".into(),
                    "terminal".into()
                ),
                (
                    Some("selected".into()),
                    "confirmed".into(),
                    "attestation".into()
                ),
            ]
        );
        env.stop().await;
    }
);

engine_test!(
    /// Setup is idempotent on request_uid; a different body under the same uid is a 409.
    async fn setup_is_idempotent(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let u = uid();
        let (a, _) = env
            .setup_body(json!({"request_uid": u, "amount": "CHF:5"}))
            .await;
        let (b, _) = env
            .setup_body(json!({"request_uid": u, "amount": "CHF:5"}))
            .await;
        assert_eq!(a, b);
        let r = env
            .terminal(Method::POST, "terminal/withdrawals")
            .json(&json!({"request_uid": u, "amount": "CHF:6"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5112);
        env.stop().await;
    }
);

engine_test!(
    /// Suggested amount: the wallet may choose; the choice becomes the fixed amount.
    async fn suggested_amount_is_chosen_by_the_wallet(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:10"}))
            .await;
        let st = env.wallet_status(&wopid, "").await;
        // `amount` is what a wallet that names none withdraws (v0 wallets require it).
        assert_eq!(st["amount"], "CHF:10");
        assert_eq!(st["suggested_amount"], "CHF:10");
        let r = env
            .http
            .post(env.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
            .json(&json!({"reserve_pub": reserve_pub(), "selected_exchange": crate::helpers::EXCHANGE_ACCOUNT, "amount": "CHF:7.5"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(env.wallet_status(&wopid, "").await["amount"], "CHF:7.5");
        let tx = env.pay(&wopid, "CHF:7.5", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(env.incoming().await[0]["amount"], "CHF:7.5");
        env.stop().await;
    }
);

engine_test!(
    /// The terminal aborts before any wallet registered; the wallet then gets 409, abort is
    /// idempotent for both sides.
    async fn terminal_abort_before_registration(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        let r = env
            .terminal(Method::POST, &format!("terminal/withdrawals/{wopid}/abort"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = env
            .terminal(Method::DELETE, &format!("terminal/withdrawals/{wopid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let st = env.wallet_status(&wopid, "").await;
        assert_eq!(st["status"], "aborted");
        assert_eq!(st["aborted"], true);
        let r = env.register(&wopid, &reserve_pub()).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5153);
        let r = env
            .http
            .post(env.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}/abort"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        env.stop().await;
    }
);

engine_test!(
    /// Diagram "authorization not successful": the card is declined at the terminal, which then
    /// aborts; nothing is credited and nothing refunded.
    async fn abort_after_failed_authorization(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let _declined = env.pay(&wopid, "CHF:20", Card::Declined);
        let r = env
            .terminal(Method::POST, &format!("terminal/withdrawals/{wopid}/abort"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "aborted");
        assert!(env.incoming().await.is_empty());
        assert_eq!(env.processor.refund_count(), 0);
        env.stop().await;
    }
);

engine_test!(
    /// (9b) The terminal reports a declined transaction: attestation aborts, no credit.
    async fn declined_card_aborts(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:20", Card::Declined);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        assert!(env.incoming().await.is_empty());
        // Decided by the abort or the refund worker: nothing was captured, nothing goes back.
        assert_ne!(
            env.wait_refund_decided(&wopid).await,
            cardcash_c2ec::db::RefundState::Done
        );
        assert_eq!(env.processor.refund_count(), 0);
        env.stop().await;
    }
);

engine_test!(
    /// The card was charged a different amount: abort, and the captured money goes back.
    async fn amount_mismatch_aborts_and_refunds(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:19.99", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        assert!(env.incoming().await.is_empty());
        assert_eq!(
            env.wait_refund(&tx).await.map(|a| a.to_string()),
            Some("CHF:19.99".into())
        );
        env.stop().await;
    }
);

engine_test!(
    /// A payment for another WOPID cannot confirm this one, and is not refunded by us.
    async fn payment_bound_to_another_wopid_is_refused(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay("SOMEONE-ELSES-WOPID", "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        assert_ne!(
            env.wait_refund_decided(&wopid).await,
            cardcash_c2ec::db::RefundState::Done
        );
        assert_eq!(env.processor.refund_count(), 0);
        env.stop().await;
    }
);

engine_test!(
    /// Finality arrives late: attestation retries until the payment is final, then confirms.
    async fn delayed_finality_confirms_after_retries(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:20", Card::DelayedFinality);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert!(
            env.processor
                .reads
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 2
        );
        assert_eq!(env.incoming().await.len(), 1);
        env.stop().await;
    }
);

engine_test!(
    /// The processor is down when the terminal checks, and comes back: confirmed once it is up.
    async fn processor_down_then_back(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        env.processor.set_down(true);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        // Retried while the processor is down, and no decision meanwhile.
        wait_until(WAIT, || async {
            env.processor
                .reads
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 2
        })
        .await;
        assert_eq!(env.wallet_status(&wopid, "").await["status"], "selected");
        env.processor.set_down(false);
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(env.incoming().await.len(), 1);
        env.stop().await;
    }
);

engine_test!(
    /// The processor stays down beyond the retry budget: aborted, and the refund worker returns
    /// the captured payment once the processor is back.
    async fn retries_exhausted_aborts_and_refunds_later(engine: Engine) {
        let opts = Options {
            max_retries: 3,
            retry_delay: Duration::from_millis(10),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (wopid, _) = env.setup("CHF:20").await;
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        env.processor.set_down(true);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        env.processor.set_down(false);
        assert_eq!(
            env.wait_refund(&tx).await.map(|a| a.to_string()),
            Some("CHF:20".into())
        );
        env.stop().await;
    }
);
