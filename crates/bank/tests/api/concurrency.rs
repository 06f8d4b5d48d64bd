//! Concurrent requests: idempotent replays racing each other, overdraft attempts racing each
//! other, and transfers in both directions at once. Balances must never break the debit limit
//! and must always sum to zero (PostgreSQL runs these at READ COMMITTED with row locks).

use std::sync::Arc;

use cardcash_testkit::{Engine, engine_test};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Cred, TestBank, request_uid, wtid};

engine_test!(
    async fn racing_replays_book_once(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let bank = Arc::new(bank);
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("shop", "shop-pw", false).await;
        bank.add_incoming(
            "exchange",
            "KUDOS:100",
            1,
            "payto://iban/DE89370400440532013000",
        )
        .await;
        // Several rounds, because a race only shows when the requests really overlap.
        let path = bank.wg("exchange", "transfer");
        for round in 0..5u8 {
            let body = json!({
                "request_uid": request_uid(round).to_string(),
                "amount": "KUDOS:7",
                "exchange_base_url": "https://exchange.example/",
                "wtid": wtid(round).to_string(),
                "credit_account": bank.payto("shop"),
            });
            let answers = join_all((0..12).map(|_| {
                let (bank, body, path) = (bank.clone(), body.clone(), path.clone());
                async move { bank.post(&path, &Cred::Admin, &body).await }
            }))
            .await;
            for answer in &answers {
                assert_eq!(
                    answer, &answers[0],
                    "[{engine}] round {round}: same row for all"
                );
            }
            assert_eq!(answers[0].0, StatusCode::OK, "[{engine}] {}", answers[0].1);
        }
        bank.assert_balance("shop", "KUDOS:35").await;

        // The same for Core API transfers with a request_uid.
        let uid = cardcash_util::ShortHashCode::from_bytes(crate::helpers::bytes32(77)).to_string();
        let body = json!({
            "payto_uri": format!("{}?message=once", bank.payto("exchange")),
            "amount": "KUDOS:1",
            "request_uid": uid,
        });
        let answers = join_all((0..12).map(|_| {
            let (bank, body) = (bank.clone(), body.clone());
            async move {
                bank.post(
                    "/accounts/shop/transactions",
                    &Cred::Basic("shop", "shop-pw"),
                    &body,
                )
                .await
            }
        }))
        .await;
        for answer in &answers {
            assert_eq!(answer, &answers[0], "[{engine}] core API replays");
        }
        assert_eq!(answers[0].0, StatusCode::OK, "[{engine}] {}", answers[0].1);
        // That transfer had no reserve key, so it bounced: shop keeps 35, once.
        bank.assert_balance("shop", "KUDOS:35").await;
        bank.assert_balances_sum_to_zero().await;
        shutdown(bank).await;
    }
);

engine_test!(
    async fn racing_debits_never_overdraw(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let bank = Arc::new(bank);
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("bob", "bob-pw", false).await;
        bank.fund("alice", "KUDOS:10").await;
        bank.fund("bob", "KUDOS:10").await;

        // 20 debits of 1 from alice (she has 10) and 6 from bob to alice, all at once.
        let pay = |from: &'static str, to: &'static str, n: u32| {
            let bank = bank.clone();
            async move {
                let cred = if from == "alice" {
                    Cred::Basic("alice", "alice-pw")
                } else {
                    Cred::Basic("bob", "bob-pw")
                };
                let body = json!({
                    "payto_uri": format!("{}?message=race-{n}", bank.payto(to)),
                    "amount": "KUDOS:1",
                });
                (
                    from,
                    bank.post(&format!("/accounts/{from}/transactions"), &cred, &body)
                        .await,
                )
            }
        };
        let mut requests = Vec::new();
        for n in 0..20 {
            requests.push(pay("alice", "bob", n));
        }
        let mut others = Vec::new();
        for n in 0..6 {
            others.push(pay("bob", "alice", n));
        }
        let (alice_results, bob_results) = tokio::join!(join_all(requests), join_all(others));
        let ok = |results: &[(&str, (StatusCode, serde_json::Value))]| {
            results
                .iter()
                .filter(|(_, (s, _))| *s == StatusCode::OK)
                .count()
        };
        for (_, (status, body)) in alice_results.iter().chain(bob_results.iter()) {
            assert!(
                *status == StatusCode::OK
                    || (*status == StatusCode::CONFLICT && body["code"] == 5102),
                "[{engine}] {status} {body}"
            );
        }
        let alice_paid = ok(&alice_results);
        let bob_paid = ok(&bob_results);
        assert_eq!(bob_paid, 6, "[{engine}] bob had enough for all of his");
        // Alice could pay at most 10 + what bob sent her before each of her debits.
        assert!(
            (10..=16).contains(&alice_paid),
            "[{engine}] alice paid {alice_paid}"
        );
        let alice = 10 - i64::try_from(alice_paid).unwrap() + 6;
        let bob = 10 + i64::try_from(alice_paid).unwrap() - 6;
        assert!(alice >= 0);
        bank.assert_balance("alice", &format!("KUDOS:{alice}"))
            .await;
        bank.assert_balance("bob", &format!("KUDOS:{bob}")).await;
        bank.assert_balances_sum_to_zero().await;
        shutdown(bank).await;
    }
);

async fn shutdown(bank: Arc<TestBank>) {
    match Arc::try_unwrap(bank) {
        Ok(bank) => bank.shutdown().await,
        Err(_) => panic!("bank still shared"),
    }
}
