//! Wire Gateway incoming history: paging in both directions, exclusive offsets, legacy
//! parameter names, 204 on empty pages, and long polling woken by the store's notifier.

use std::time::{Duration, Instant};

use cardcash_client::HistoryRequest;
use cardcash_testkit::{Engine, WAIT, engine_test, wait_until};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Cred, TestBank};

const EX: Cred = Cred::Basic("exchange", "exchange-pw");
const EXTERNAL: &str = "payto://iban/DE89370400440532013000";

/// Waits until a long poll subscribed to the bank's notifier (the bank subscribes for long
/// polls only, before their first read).
async fn long_poll_waiting(bank: &TestBank) {
    let notifier = bank.app().ledger().store().notifier();
    wait_until(WAIT, || async { notifier.subscriber_count() > 0 }).await;
}

fn row_ids(body: &Value) -> Vec<u64> {
    body["incoming_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["row_id"].as_u64().unwrap())
        .collect()
}

async fn page(bank: &TestBank, query: &str) -> (StatusCode, Vec<u64>) {
    let (status, body) = bank
        .get(
            &bank.wg("exchange", &format!("history/incoming?{query}")),
            &EX,
        )
        .await;
    let ids = if status == StatusCode::OK {
        row_ids(&body)
    } else {
        Vec::new()
    };
    (status, ids)
}

engine_test!(
    async fn incoming_history_pages_both_ways(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("other", "other-pw", true).await;

        // Empty history: 204, whatever the direction.
        assert_eq!(
            page(&bank, "").await.0,
            StatusCode::NO_CONTENT,
            "[{engine}]"
        );
        assert_eq!(page(&bank, "limit=5").await.0, StatusCode::NO_CONTENT);

        let mut ids = Vec::new();
        for label in 1..=5u8 {
            ids.push(
                bank.add_incoming("exchange", "KUDOS:1", label, EXTERNAL)
                    .await,
            );
            // Rows of another exchange must never show up in this one's history.
            bank.add_incoming("other", "KUDOS:1", label + 100, EXTERNAL)
                .await;
        }
        let ok = StatusCode::OK;
        assert_eq!(
            page(&bank, "").await,
            (ok, vec![ids[4], ids[3], ids[2], ids[1], ids[0]])
        );
        assert_eq!(
            page(&bank, "limit=2").await,
            (ok, vec![ids[0], ids[1]]),
            "[{engine}]"
        );
        assert_eq!(
            page(&bank, &format!("limit=2&offset={}", ids[1])).await,
            (ok, vec![ids[2], ids[3]]),
            "[{engine}] offset is exclusive"
        );
        assert_eq!(page(&bank, "limit=-2").await, (ok, vec![ids[4], ids[3]]));
        assert_eq!(
            page(&bank, &format!("limit=-2&offset={}", ids[3])).await,
            (ok, vec![ids[2], ids[1]])
        );
        // Legacy names.
        assert_eq!(
            page(&bank, &format!("delta=3&start={}", ids[2])).await,
            (ok, vec![ids[3], ids[4]])
        );
        // Past the end, before the beginning: empty.
        assert_eq!(
            page(&bank, &format!("limit=5&offset={}", ids[4])).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            page(&bank, &format!("limit=-5&offset={}", ids[0])).await.0,
            StatusCode::NO_CONTENT
        );

        // Malformed parameters.
        for bad in [
            "limit=0",
            "limit=abc",
            "offset=-1",
            "timeout_ms=-5",
            "long_poll_ms=x",
        ] {
            let (status, body) = bank
                .get(
                    &bank.wg("exchange", &format!("history/incoming?{bad}")),
                    &EX,
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "[{engine}] {bad}: {body}");
            assert!(
                [25, 26].contains(&body["code"].as_u64().unwrap_or(0)),
                "[{engine}] {bad}: {body}"
            );
        }
        bank.shutdown().await;
    }
);

engine_test!(
    async fn long_poll_wakes_on_new_incoming_and_times_out_otherwise(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        let first = bank.add_incoming("exchange", "KUDOS:1", 1, EXTERNAL).await;
        let client = bank.wg_client("exchange", "exchange-pw");

        // Nothing after `first`: the request waits for the whole timeout, then 204.
        let started = Instant::now();
        let rows = client
            .incoming_history(&HistoryRequest::after(
                Some(first),
                5,
                Some(Duration::from_millis(600)),
            ))
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(rows.is_empty(), "[{engine}]");
        assert!(
            waited >= Duration::from_millis(550),
            "[{engine}] returned after {waited:?}"
        );
        assert!(waited < WAIT, "[{engine}] returned after {waited:?}");

        // A waiting request is answered as soon as a new row is committed.
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let rows = client
                    .incoming_history(&HistoryRequest::after(
                        Some(first),
                        5,
                        Some(Duration::from_secs(20)),
                    ))
                    .await
                    .unwrap();
                (rows, started.elapsed())
            })
        };
        // The request is waiting once it subscribed to the notifier (before its first read):
        // a row committed from now on must wake it.
        long_poll_waiting(&bank).await;
        assert!(
            !waiter.is_finished(),
            "[{engine}] the long poll did not wait"
        );
        let second = bank.add_incoming("exchange", "KUDOS:2", 2, EXTERNAL).await;
        let (rows, waited) = tokio::time::timeout(WAIT, waiter)
            .await
            .expect("the long poll was not woken")
            .unwrap();
        assert_eq!(rows.len(), 1, "[{engine}]");
        assert_eq!(rows[0].row_id(), second);
        assert!(
            waited < Duration::from_secs(20),
            "[{engine}] woke after {waited:?}: by the row, not by its 20 s window"
        );

        // Newest-first requests never wait: old rows cannot appear later.
        let started = Instant::now();
        let (status, _) = bank
            .get(
                &bank.wg(
                    "exchange",
                    &format!("history/incoming?limit=-5&offset={first}&timeout_ms=60000"),
                ),
                &EX,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            started.elapsed() < WAIT,
            "[{engine}] waited for its 60 s window"
        );

        // Outgoing history long-polls too (legacy parameter name).
        let started = Instant::now();
        let (status, _) = bank
            .get(
                &bank.wg("exchange", "history/outgoing?delta=1&long_poll_ms=300"),
                &EX,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "[{engine}]"
        );
        bank.shutdown().await;
    }
);

engine_test!(
    async fn shutdown_ends_waiting_long_polls(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        let client = bank.wg_client("exchange", "exchange-pw");
        let waiter = tokio::spawn(async move {
            client
                .incoming_history(&HistoryRequest::after(
                    None,
                    5,
                    Some(Duration::from_secs(60)),
                ))
                .await
        });
        long_poll_waiting(&bank).await;
        assert!(
            !waiter.is_finished(),
            "[{engine}] the long poll did not wait"
        );
        // Shutdown answers the waiting request at once instead of waiting out its 60 s.
        let started = Instant::now();
        tokio::time::timeout(WAIT, bank.shutdown())
            .await
            .expect("shutdown waited for the long poll");
        assert!(started.elapsed() < WAIT, "[{engine}]");
        // The waiting client got its (empty) answer rather than a hang.
        let rows = tokio::time::timeout(WAIT, waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(rows.is_empty());
    }
);

engine_test!(
    /// The 2022 exchange's wirewatch (Wire Gateway client v0) needs the exchange account in every
    /// row: `credit_account` in incoming, `debit_account` in outgoing transactions.
    async fn every_history_row_names_the_exchange_account(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("shop", "shop-pw", false).await;
        for label in 1..=3u8 {
            bank.add_incoming("exchange", "KUDOS:2", label, EXTERNAL)
                .await;
        }
        let (status, incoming) = bank
            .get(&bank.wg("exchange", "history/incoming?limit=10"), &EX)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {incoming}");
        let account = incoming["credit_account"].as_str().unwrap();
        assert_eq!(
            account,
            "payto://x-taler-bank/localhost/exchange?receiver-name=exchange%20legal"
        );
        let rows = incoming["incoming_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        for row in rows {
            assert_eq!(row["credit_account"], account, "[{engine}] {row}");
            assert_eq!(row["debit_account"], EXTERNAL, "[{engine}] {row}");
        }

        for label in 1..=2u8 {
            let (status, body) = bank
                .post(
                    &bank.wg("exchange", "transfer"),
                    &EX,
                    &serde_json::json!({
                        "request_uid": crate::helpers::request_uid(label).to_string(),
                        "amount": "KUDOS:1",
                        "exchange_base_url": "https://exchange.example/",
                        "wtid": crate::helpers::wtid(label).to_string(),
                        "credit_account": bank.payto("shop"),
                    }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        }
        let (status, outgoing) = bank
            .get(&bank.wg("exchange", "history/outgoing?limit=-10"), &EX)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {outgoing}");
        assert_eq!(outgoing["debit_account"], account);
        let rows = outgoing["outgoing_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert_eq!(row["debit_account"], account, "[{engine}] {row}");
            assert_eq!(
                row["credit_account"],
                bank.payto("shop"),
                "[{engine}] {row}"
            );
        }
        bank.shutdown().await;
    }
);
