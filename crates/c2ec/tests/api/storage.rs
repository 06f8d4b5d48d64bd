//! What the storage promises beyond single requests: the number of write transactions a
//! withdrawal costs, and that several C2EC instances on one database never attest the same
//! operation twice.

use std::sync::atomic::Ordering;

use cardcash_c2ec::App;
use cardcash_store::Database;
use reqwest::{Method, StatusCode};

use crate::helpers::{Card, Engine, Env, Options, TestProcessor, config, engine_test, reserve_pub};

/// On SQLite a whole withdrawal (setup, long polls, registration, check, attestation,
/// confirmation) costs five write transactions — setup, registration, check, the
/// attestation's claim and the confirmation — as the table in `db/mod.rs` counts; everything
/// else (terminal authentication, long polls) reads. The workers' metrics are served.
#[tokio::test]
async fn a_withdrawal_costs_five_write_transactions_on_sqlite() {
    let env = Env::new(Engine::Sqlite, Options::default()).await;
    let Database::Sqlite(sqlite) = &env.db else {
        unreachable!("a SQLite database")
    };
    let sqlite = sqlite.clone();
    // The workers' first rounds (a claim, an expiry sweep) are done before counting.
    for worker in ["attestation", "expiry", "refund"] {
        env.wait_for_first_step(worker).await;
    }
    let (_, before) = sqlite.writer_stats().snapshot();

    let (wopid, _) = env.setup("CHF:20").await;
    let terminal_poll = env
        .terminal(
            Method::GET,
            &format!("terminal/withdrawals/{wopid}?old_state=pending&timeout_ms=10000"),
        )
        .send();
    let (polled, registered) = tokio::join!(terminal_poll, async {
        env.register(&wopid, &reserve_pub()).await.status()
    });
    assert_eq!(registered, StatusCode::OK);
    let polled: serde_json::Value = polled.unwrap().json().await.unwrap();
    assert_eq!(polled["status"], "selected");
    let tx = env.pay(&wopid, "CHF:20", Card::Approved);
    assert_eq!(
        env.check(&wopid, &tx).await.status(),
        StatusCode::NO_CONTENT
    );
    let done: serde_json::Value = env
        .terminal(
            Method::GET,
            &format!("terminal/withdrawals/{wopid}?old_state=selected&timeout_ms=10000"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "confirmed");

    let (_, after) = sqlite.writer_stats().snapshot();
    assert_eq!(after - before, 5, "write transactions of one withdrawal");
    env.stop().await;
}

/// Operations of [`two_instances_never_attest_the_same_operation`].
const N: usize = 24;

engine_test!(
    /// Two C2EC instances on one database (each with its own connection, as two processes), with
    /// checks arriving at both: every operation is attested exactly once (one provider read each)
    /// and confirmed once, because a worker claims the operations it attests.
    async fn two_instances_never_attest_the_same_operation(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let url = env.world().c2ec().database_url().to_owned();
        let processor: std::sync::Arc<TestProcessor> = env.processor.clone();
        let second_db = cardcash_c2ec::admin::open_db(&url).await.unwrap();
        let second = App::build_on(config(&Options::default()), processor.clone(), second_db)
            .await
            .unwrap();
        let second_base = second.base_url().as_str().to_owned();

        let mut operations = Vec::new();
        for _ in 0..N {
            let (wopid, _) = env.setup("CHF:20").await;
            assert_eq!(
                env.register(&wopid, &reserve_pub()).await.status(),
                StatusCode::OK
            );
            let tx = env.pay(&wopid, "CHF:20", Card::Approved);
            operations.push((wopid, tx));
        }
        let reads_before = processor.reads.load(Ordering::SeqCst);
        let checks = operations.iter().enumerate().map(|(i, (wopid, tx))| {
            let base = if i % 2 == 0 {
                env.base.clone()
            } else {
                second_base.clone()
            };
            let request = env
                .http
                .post(format!("{base}terminal/withdrawals/{wopid}/check"))
                .basic_auth(&env.terminal_user, Some(&env.terminal_secret))
                .json(&serde_json::json!({ "provider_transaction_id": tx }))
                .send();
            async move { request.await.unwrap().status() }
        });
        for status in futures_util::future::join_all(checks).await {
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        for (wopid, _) in &operations {
            assert_eq!(env.wait_leaving(wopid, "selected").await, "confirmed");
        }
        assert_eq!(env.incoming().await.len(), N);
        assert_eq!(
            processor.reads.load(Ordering::SeqCst) - reads_before,
            N as u64,
            "one provider read per operation"
        );
        second.shutdown().await;
        env.stop().await;
    }
);
