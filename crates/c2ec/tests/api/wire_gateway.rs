//! C2EC's Wire Gateway through the shared router: per-row accounts for v0 clients, transfers
//! refused up front when the card cannot take them (also under races), idempotent replays,
//! transfer outcomes (`GET /transfers`, `GET /transfers/$ROW_ID`) following the refund worker,
//! and the malformed-request answers every gateway gives.

use std::sync::atomic::{AtomicU64, Ordering};

use cardcash_c2ec::provider::CardProvider;
use cardcash_http::wire_gateway::conformance::MALFORMED;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Card, Engine, Env, Options, WAIT, engine_test, reserve_pub, try_wait_for,
};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// `n` unique bytes for this process, in base32.
fn unique(n: usize) -> String {
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    let mut b = vec![0u8; n];
    b[..8].copy_from_slice(&id.to_be_bytes());
    b[8..16].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    b[n - 1] = 0x5A;
    cardcash_util::base32::encode(&b)
}

/// A transfer request with a fresh `request_uid` and `wtid`.
fn transfer(amount: &str, credit_account: &str) -> Value {
    json!({
        "request_uid": unique(64), "amount": amount, "exchange_base_url": "https://exchange.test/",
        "wtid": unique(32), "credit_account": credit_account,
    })
}

/// A confirmed withdrawal of `amount` paid by card; returns (card transaction id, its payto).
async fn confirmed(env: &Env, amount: &str) -> (String, String) {
    let (wopid, _) = env.setup(amount).await;
    assert_eq!(
        env.register(&wopid, &reserve_pub()).await.status(),
        StatusCode::OK
    );
    let tx = env.pay(&wopid, amount, Card::Approved);
    assert_eq!(
        env.check(&wopid, &tx).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
    let debit = env
        .incoming()
        .await
        .iter()
        .filter_map(|row| row["debit_account"].as_str())
        .find(|payto| payto.ends_with(&format!("/{tx}")))
        .expect("the confirmed withdrawal is in the incoming history")
        .to_owned();
    (tx, debit)
}

async fn post_transfer(env: &Env, body: &Value) -> (StatusCode, Value) {
    let r = env
        .exchange(Method::POST, "transfer")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(env: &Env, path: &str) -> (StatusCode, Value) {
    let r = env.exchange(Method::GET, path).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits (bounded) until transfer `row_id` reaches `state`; returns its status object.
async fn wait_state(env: &Env, row_id: &Value, state: &str) -> Value {
    let found = try_wait_for(WAIT, || async {
        let (status, body) = get(env, &format!("transfers/{row_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["status"] == state).then_some(body)
    })
    .await;
    match found {
        Some(body) => body,
        None => panic!(
            "transfer {row_id} never became {state}: {}",
            get(env, &format!("transfers/{row_id}")).await.1
        ),
    }
}

engine_test!(
    /// The 2022 exchange's wirewatch needs the exchange account in every row.
    async fn every_history_row_names_the_exchange_account(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (tx, debit) = confirmed(&env, "CHF:5").await;
        confirmed(&env, "CHF:7").await;
        let (status, incoming) = get(&env, "history/incoming?limit=10").await;
        assert_eq!(status, StatusCode::OK);
        let account = incoming["credit_account"].as_str().unwrap();
        assert_eq!(account, crate::helpers::EXCHANGE_ACCOUNT);
        let rows = incoming["incoming_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert_eq!(row["credit_account"], account, "{row}");
        }

        let (status, body) = post_transfer(&env, &transfer("CHF:2", &debit)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        wait_state(&env, &body["row_id"], "success").await;
        assert_eq!(env.processor.refunded(&tx).unwrap().to_string(), "CHF:2");
        let (status, outgoing) = get(&env, "history/outgoing?limit=-10").await;
        assert_eq!(status, StatusCode::OK);
        let account = outgoing["debit_account"].as_str().unwrap();
        assert_eq!(account, crate::helpers::EXCHANGE_ACCOUNT);
        let rows = outgoing["outgoing_transactions"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["debit_account"], account);
        assert_eq!(rows[0]["credit_account"], debit.as_str());
        assert_eq!(rows[0]["amount"], "CHF:2");
        env.stop().await;
    }
);

engine_test!(
    /// 30 transfers of 1.00 on a 5.00 payment: exactly 5 accepted (and refunded), 25 refused with
    /// 409 up front, whatever order they arrive in.
    async fn transfers_never_exceed_the_card_payment(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (tx, debit) = confirmed(&env, "CHF:5").await;
        let bodies: Vec<Value> = (0..30).map(|_| transfer("CHF:1", &debit)).collect();
        let answers =
            futures_util::future::join_all(bodies.iter().map(|b| post_transfer(&env, b))).await;
        let accepted: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(accepted.len(), 5, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["code"], 5102, "BANK_UNALLOWED_DEBIT: {body}");
        }
        for body in &accepted {
            wait_state(&env, &body["row_id"], "success").await;
        }
        assert_eq!(env.processor.refunded(&tx).unwrap().to_string(), "CHF:5");
        // Every accepted transfer is listed, and only those.
        let (status, list) = get(&env, "transfers?limit=100").await;
        assert_eq!(status, StatusCode::OK);
        let rows = list["transfers"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().all(|r| r["status"] == "success"), "{list}");
        assert_eq!(list["debit_account"], crate::helpers::EXCHANGE_ACCOUNT);
        // Nothing more fits, not even a cent.
        let (status, body) = post_transfer(&env, &transfer("CHF:0.01", &debit)).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::CONFLICT, json!(5102))
        );
        env.stop().await;
    }
);

engine_test!(
    /// Two transfers of 3.00 racing on a 5.00 payment: one wins, the other is refused. Repeated,
    /// so the interleavings vary.
    async fn racing_transfers_cannot_both_pass(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        for _ in 0..5 {
            let (tx, debit) = confirmed(&env, "CHF:5").await;
            let (a, b) = (transfer("CHF:3", &debit), transfer("CHF:3", &debit));
            let (ra, rb) = tokio::join!(post_transfer(&env, &a), post_transfer(&env, &b));
            let mut statuses = [ra.0, rb.0];
            statuses.sort();
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::CONFLICT],
                "{ra:?} {rb:?}"
            );
            let winner = if ra.0 == StatusCode::OK { &ra.1 } else { &rb.1 };
            wait_state(&env, &winner["row_id"], "success").await;
            assert_eq!(env.processor.refunded(&tx).unwrap().to_string(), "CHF:3");
        }
        env.stop().await;
    }
);

engine_test!(
    /// Replays answer the same; a reused `request_uid` or `wtid` and unknown cards are 409s.
    async fn replays_are_idempotent_and_conflicts_refused(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (tx, debit) = confirmed(&env, "CHF:5").await;
        let body = transfer("CHF:4", &debit);
        let (status, first) = post_transfer(&env, &body).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        // The same request again (even after it filled the card up) is the same transfer.
        for _ in 0..3 {
            let (status, again) = post_transfer(&env, &body).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(again, first);
        }
        wait_state(&env, &first["row_id"], "success").await;
        let (status, again) = post_transfer(&env, &body).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));
        assert_eq!(env.processor.refunded(&tx).unwrap().to_string(), "CHF:4");

        // Same request_uid, different request.
        let mut changed = body.clone();
        changed["amount"] = json!("CHF:1");
        let (status, e) = post_transfer(&env, &changed).await;
        assert_eq!(
            (status, e["code"].clone()),
            (StatusCode::CONFLICT, json!(5112))
        );
        // Same wtid, another request_uid.
        let mut wtid = transfer("CHF:1", &debit);
        wtid["wtid"] = body["wtid"].clone();
        let (status, e) = post_transfer(&env, &wtid).await;
        assert_eq!(
            (status, e["code"].clone()),
            (StatusCode::CONFLICT, json!(5154))
        );
        // A refused request refused again, the same way.
        let over = transfer("CHF:2", &debit);
        for _ in 0..2 {
            let (status, e) = post_transfer(&env, &over).await;
            assert_eq!(
                (status, e["code"].clone()),
                (StatusCode::CONFLICT, json!(5102))
            );
        }
        // Not a card transaction of ours, or one without a confirmed withdrawal.
        for credit in [
            "payto://iban/CH9300762011623852957?receiver-name=Somebody".to_owned(),
            debit.replace(&format!("/{tx}"), "/999999"),
        ] {
            let (status, e) = post_transfer(&env, &transfer("CHF:1", &credit)).await;
            assert_eq!(
                (status, e["code"].clone()),
                (StatusCode::CONFLICT, json!(5124)),
                "{credit}"
            );
        }
        let (status, list) = get(&env, "transfers").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["transfers"].as_array().unwrap().len(), 1, "{list}");
        env.stop().await;
    }
);

engine_test!(
    /// Every transfer's outcome is visible: pending → transient_failure while the processor is
    /// unreachable → success; and permanent_failure when the processor refuses the refund (such a
    /// transfer never enters the outgoing history and no longer counts against the card).
    async fn transfer_outcomes_follow_the_refund_worker(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (tx, debit) = confirmed(&env, "CHF:5").await;

        env.processor.set_down(true);
        let (status, t1) = post_transfer(&env, &transfer("CHF:1.5", &debit)).await;
        assert_eq!(status, StatusCode::OK, "{t1}");
        let st = wait_state(&env, &t1["row_id"], "transient_failure").await;
        assert!(
            st["status_msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{st}"
        );
        assert_eq!(st["amount"], "CHF:1.5");
        assert_eq!(st["credit_account"], debit.as_str());
        assert_eq!(st["exchange_base_url"], "https://exchange.test/");
        let (status, _) = get(&env, "history/outgoing").await;
        assert_eq!(status, StatusCode::NO_CONTENT, "not carried out yet");
        let (status, list) = get(&env, "transfers?status=transient_failure").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["transfers"][0]["row_id"], t1["row_id"]);
        env.processor.set_down(false);
        wait_state(&env, &t1["row_id"], "success").await;
        let (status, out) = get(&env, "history/outgoing").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(out["outgoing_transactions"][0]["amount"], "CHF:1.5");

        // The rest of the payment goes back another way (e.g. by the processor's operator):
        // the next refund is refused by the processor, for good.
        env.processor
            .refund(&tx, &"CHF:3.5".parse().unwrap(), "elsewhere")
            .await
            .unwrap();
        let (status, t2) = post_transfer(&env, &transfer("CHF:3", &debit)).await;
        assert_eq!(status, StatusCode::OK, "{t2}");
        let st = wait_state(&env, &t2["row_id"], "permanent_failure").await;
        assert!(
            st["status_msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{st}"
        );
        let (status, out) = get(&env, "history/outgoing?limit=-10").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(out["outgoing_transactions"].as_array().unwrap().len(), 1);
        // A failed transfer no longer holds its share of the payment.
        let (status, t3) = post_transfer(&env, &transfer("CHF:3.5", &debit)).await;
        assert_eq!(status, StatusCode::OK, "{t3}");
        wait_state(&env, &t3["row_id"], "permanent_failure").await;

        // The listing, filtered and paged.
        let (status, list) = get(&env, "transfers?limit=10").await;
        assert_eq!(status, StatusCode::OK);
        let states: Vec<&str> = list["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            states,
            ["success", "permanent_failure", "permanent_failure"]
        );
        let (_, failed) = get(&env, "transfers?status=permanent_failure&limit=-1").await;
        assert_eq!(failed["transfers"].as_array().unwrap().len(), 1);
        assert_eq!(failed["transfers"][0]["row_id"], t3["row_id"]);
        let first = list["transfers"][0]["row_id"].as_u64().unwrap();
        let (_, after) = get(&env, &format!("transfers?limit=10&offset={first}")).await;
        assert_eq!(after["transfers"].as_array().unwrap().len(), 2);
        for state in ["pending", "transient_failure"] {
            let (status, _) = get(&env, &format!("transfers?status={state}")).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{state}");
        }
        env.stop().await;
    }
);

engine_test!(
    /// The malformed requests of the shared conformance table get exactly the answers the bank
    /// gives too (its test suite checks the same table).
    async fn malformed_requests_answer_like_every_wire_gateway(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        for case in MALFORMED {
            let method: Method = case.method.parse().unwrap();
            let mut request = if case.admin {
                env.http
                    .request(
                        method,
                        env.url(&format!("taler-wire-gateway/{}", case.path)),
                    )
                    .bearer_auth(ADMIN_TOKEN)
            } else {
                env.exchange(method, case.path)
            };
            if let Some(body) = case.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let expected: Value = serde_json::from_str(case.answer).unwrap();
            assert_eq!(
                (status, &body),
                (case.status, &expected),
                "{} {}",
                case.method,
                case.path
            );
        }
        env.stop().await;
    }
);
