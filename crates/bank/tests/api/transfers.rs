//! Core Bank API internal transfers: balances, idempotency, errors, transfers to exchanges.

use cardcash_testkit::{Engine, engine_test};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Cred, TestBank, assert_taler_error, bytes32, reserve_pub};

const ALICE: Cred = Cred::Basic("alice", "alice-pw");

fn uid(label: u8) -> String {
    cardcash_util::ShortHashCode::from_bytes(bytes32(label)).to_string()
}

async fn pay(
    bank: &TestBank,
    to: &str,
    amount: &str,
    message: &str,
    uid: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({
        "payto_uri": format!("{}?message={message}", bank.payto(to)),
        "amount": amount,
    });
    if let Some(uid) = uid {
        body["request_uid"] = json!(uid);
    }
    bank.post("/accounts/alice/transactions", &ALICE, &body)
        .await
}

engine_test!(
    async fn internal_transfer_moves_money_both_ways_and_sums_to_zero(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("bob", "bob-pw", false).await;
        bank.fund("alice", "KUDOS:100").await;
        bank.assert_balance("admin", "-KUDOS:100").await;

        let (status, body) = pay(&bank, "bob", "KUDOS:30.5", "rent", None).await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let row_id = body["row_id"].as_u64().unwrap();
        bank.assert_balance("alice", "KUDOS:69.5").await;
        bank.assert_balance("bob", "KUDOS:30.5").await;

        // The amount may also travel inside the payto URI.
        let (status, body) = bank
            .post(
                "/accounts/alice/transactions",
                &ALICE,
                &json!({"payto_uri": format!("{}?message=more&amount=KUDOS:0.5", bank.payto("bob"))}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        bank.assert_balance("bob", "KUDOS:31").await;
        bank.assert_balances_sum_to_zero().await;

        // Both parties see the transaction, with directions and payto URIs.
        let (status, body) = bank
            .get(
                &format!("/accounts/bob/transactions/{row_id}"),
                &Cred::Basic("bob", "bob-pw"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        assert_eq!(body["direction"], "credit");
        assert_eq!(body["subject"], "rent");
        assert_eq!(body["amount"], "KUDOS:30.5");
        assert_eq!(
            body["debtor_payto_uri"],
            "payto://x-taler-bank/localhost/alice?receiver-name=alice%20legal"
        );
        let (_, body) = bank
            .get("/accounts/alice/transactions?limit=-10", &ALICE)
            .await;
        let txs = body["transactions"].as_array().unwrap();
        // Newest first: "more", "rent", then the funding.
        let subjects: Vec<&str> = txs.iter().map(|t| t["subject"].as_str().unwrap()).collect();
        assert_eq!(subjects, ["more", "rent", "funding"], "[{engine}]");
        assert_eq!(txs[1]["direction"], "debit");
        assert_eq!(txs[2]["direction"], "credit");

        // A transaction of others is not visible to bob.
        let foreign = bank
            .get(
                "/accounts/bob/transactions/1",
                &Cred::Basic("bob", "bob-pw"),
            )
            .await;
        assert_taler_error(&engine, &foreign, StatusCode::NOT_FOUND, 5107);
        bank.shutdown().await;
    }
);

engine_test!(
    async fn internal_transfer_is_idempotent_on_request_uid(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("bob", "bob-pw", false).await;
        bank.fund("alice", "KUDOS:10").await;

        let first = pay(&bank, "bob", "KUDOS:1", "once", Some(&uid(1))).await;
        assert_eq!(first.0, StatusCode::OK, "[{engine}] {}", first.1);
        let replay = pay(&bank, "bob", "KUDOS:1", "once", Some(&uid(1))).await;
        assert_eq!(replay, first, "[{engine}] replay must answer the same row");
        bank.assert_balance("bob", "KUDOS:1").await;

        let conflict = pay(&bank, "bob", "KUDOS:2", "once", Some(&uid(1))).await;
        assert_taler_error(&engine, &conflict, StatusCode::CONFLICT, 5112);
        let conflict = pay(&bank, "bob", "KUDOS:1", "twice", Some(&uid(1))).await;
        assert_taler_error(&engine, &conflict, StatusCode::CONFLICT, 5112);
        bank.assert_balance("bob", "KUDOS:1").await;

        // A fresh uid is a new transfer.
        let other = pay(&bank, "bob", "KUDOS:1", "once", Some(&uid(2))).await;
        assert_eq!(other.0, StatusCode::OK);
        assert_ne!(other.1["row_id"], first.1["row_id"]);
        bank.assert_balance("bob", "KUDOS:2").await;

        // A malformed request_uid is a 400 and books nothing.
        let bad = pay(&bank, "bob", "KUDOS:1", "x", Some("not-base32!")).await;
        assert_taler_error(&engine, &bad, StatusCode::BAD_REQUEST, 22);
        bank.assert_balance("bob", "KUDOS:2").await;
        bank.shutdown().await;
    }
);

engine_test!(
    async fn internal_transfer_errors_change_nothing(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("bob", "bob-pw", false).await;
        bank.fund("alice", "KUDOS:5").await;

        let cases = [
            (
                pay(&bank, "nobody", "KUDOS:1", "x", None).await,
                StatusCode::CONFLICT,
                5124,
            ),
            (
                pay(&bank, "bob", "KUDOS:5.01", "x", None).await,
                StatusCode::CONFLICT,
                5102,
            ),
            (
                pay(&bank, "alice", "KUDOS:1", "x", None).await,
                StatusCode::CONFLICT,
                5101,
            ),
            (
                pay(&bank, "admin", "KUDOS:1", "x", None).await,
                StatusCode::CONFLICT,
                5142,
            ),
            (
                pay(&bank, "bob", "EUR:1", "x", None).await,
                StatusCode::BAD_REQUEST,
                30,
            ),
            (
                pay(&bank, "bob", "KUDOS:0", "x", None).await,
                StatusCode::BAD_REQUEST,
                26,
            ),
        ];
        for (got, status, code) in &cases {
            assert_taler_error(&engine, got, *status, *code);
        }
        // Another bank's account is an unknown creditor too.
        let elsewhere = bank
            .post(
                "/accounts/alice/transactions",
                &ALICE,
                &json!({"payto_uri": "payto://x-taler-bank/other.example/bob?message=x", "amount": "KUDOS:1"}),
            )
            .await;
        assert_taler_error(&engine, &elsewhere, StatusCode::CONFLICT, 5124);
        // No subject.
        let no_subject = bank
            .post(
                "/accounts/alice/transactions",
                &ALICE,
                &json!({"payto_uri": bank.payto("bob"), "amount": "KUDOS:1"}),
            )
            .await;
        assert_taler_error(&engine, &no_subject, StatusCode::BAD_REQUEST, 25);
        // Amounts that disagree.
        let disagree = bank
            .post(
                "/accounts/alice/transactions",
                &ALICE,
                &json!({"payto_uri": format!("{}?message=x&amount=KUDOS:2", bank.payto("bob")), "amount": "KUDOS:1"}),
            )
            .await;
        assert_taler_error(&engine, &disagree, StatusCode::BAD_REQUEST, 26);

        bank.assert_balance("alice", "KUDOS:5").await;
        bank.assert_balance("bob", "KUDOS:0").await;
        bank.assert_balances_sum_to_zero().await;
        bank.shutdown().await;
    }
);

engine_test!(
    async fn transfer_to_exchange_becomes_reserve_or_bounces(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("exchange", "exchange-pw", true).await;
        bank.fund("alice", "KUDOS:50").await;
        let history = bank.wg("exchange", "history/incoming?limit=10");
        let ex = Cred::Basic("exchange", "exchange-pw");

        // A subject with a reserve public key: an incoming reserve transaction.
        let key = reserve_pub(7).to_string();
        let (status, body) = pay(
            &bank,
            "exchange",
            "KUDOS:20",
            &format!("Taler%20{key}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let row_id = body["row_id"].as_u64().unwrap();
        let (status, body) = bank.get(&history, &ex).await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let txs = body["incoming_transactions"].as_array().unwrap();
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0]["type"], "RESERVE");
        assert_eq!(txs[0]["row_id"].as_u64(), Some(row_id));
        assert_eq!(txs[0]["reserve_pub"], key.as_str());
        assert_eq!(txs[0]["amount"], "KUDOS:20");
        assert_eq!(
            txs[0]["debit_account"],
            "payto://x-taler-bank/localhost/alice?receiver-name=alice%20legal"
        );
        bank.assert_balance("exchange", "KUDOS:20").await;

        // No key in the subject: the bank sends the money back at once.
        let (status, body) = pay(&bank, "exchange", "KUDOS:5", "no%20key%20here", None).await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let bounced = body["row_id"].as_u64().unwrap();
        // The same key again: a reserve public key is used once only, so this bounces too.
        let (status, _) = pay(&bank, "exchange", "KUDOS:3", &key, None).await;
        assert_eq!(status, StatusCode::OK);
        bank.assert_balance("alice", "KUDOS:30").await;
        bank.assert_balance("exchange", "KUDOS:20").await;
        let (_, body) = bank.get(&history, &ex).await;
        assert_eq!(
            body["incoming_transactions"].as_array().unwrap().len(),
            1,
            "[{engine}]"
        );
        let (_, body) = bank
            .get("/accounts/alice/transactions?limit=-1", &ALICE)
            .await;
        let refund = &body["transactions"][0];
        assert_eq!(refund["direction"], "credit");
        assert_eq!(refund["amount"], "KUDOS:3");
        assert!(
            refund["subject"].as_str().unwrap().starts_with("Bounce "),
            "[{engine}] {refund}"
        );
        let (_, body) = bank
            .get(
                &format!("/accounts/alice/transactions?limit=1&offset={bounced}"),
                &ALICE,
            )
            .await;
        assert_eq!(
            body["transactions"][0]["subject"].as_str().unwrap(),
            format!(
                "Bounce {bounced}: the subject contains no reserve public key (52 base32 characters)"
            )
        );
        bank.assert_balances_sum_to_zero().await;
        bank.shutdown().await;
    }
);
