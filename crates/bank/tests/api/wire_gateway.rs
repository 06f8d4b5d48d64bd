//! Wire Gateway `transfer`, `admin/add-incoming` and `history/outgoing`.

use cardcash_bank::types::{AddIncomingRequest, TransferRequest};
use cardcash_testkit::{Engine, engine_test};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Cred, TestBank, assert_taler_error, request_uid, reserve_pub, wtid};

const EX: Cred = Cred::Basic("exchange", "exchange-pw");

fn transfer_body(bank: &TestBank, uid: u8, amount: &str, to: &str, wtid_label: u8) -> Value {
    json!({
        "request_uid": request_uid(uid).to_string(),
        "amount": amount,
        "exchange_base_url": "https://exchange.example/",
        "wtid": wtid(wtid_label).to_string(),
        "credit_account": bank.payto(to),
    })
}

async fn setup(bank: &TestBank) {
    bank.create("exchange", "exchange-pw", true).await;
    bank.create("shop", "shop-pw", false).await;
    bank.add_incoming(
        "exchange",
        "KUDOS:100",
        1,
        "payto://iban/DE89370400440532013000",
    )
    .await;
}

engine_test!(
    async fn transfer_pays_merchant_and_is_idempotent(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        setup(&bank).await;
        let path = bank.wg("exchange", "transfer");

        let body = transfer_body(&bank, 1, "KUDOS:12.5", "shop", 1);
        let first = bank.post(&path, &EX, &body).await;
        assert_eq!(first.0, StatusCode::OK, "[{engine}] {}", first.1);
        assert!(first.1["row_id"].as_u64().is_some());
        assert!(first.1["timestamp"]["t_s"].as_u64().is_some());
        bank.assert_balance("shop", "KUDOS:12.5").await;
        bank.assert_balance("exchange", "KUDOS:87.5").await;

        // Same body: same row and timestamp, no second payment.
        let replay = bank.post(&path, &EX, &body).await;
        assert_eq!(replay, first, "[{engine}]");
        bank.assert_balance("shop", "KUDOS:12.5").await;

        // Same request_uid, anything else different: 409.
        for changed in [
            transfer_body(&bank, 1, "KUDOS:12.6", "shop", 1),
            transfer_body(&bank, 1, "KUDOS:12.5", "shop", 2),
            {
                let mut b = body.clone();
                b["exchange_base_url"] = json!("https://other.example/");
                b
            },
        ] {
            let got = bank.post(&path, &EX, &changed).await;
            assert_taler_error(&engine, &got, StatusCode::CONFLICT, 5112);
        }
        // A new request_uid with an old wtid: 409 too.
        let got = bank
            .post(&path, &EX, &transfer_body(&bank, 2, "KUDOS:1", "shop", 1))
            .await;
        assert_taler_error(&engine, &got, StatusCode::CONFLICT, 5154);
        bank.assert_balance("shop", "KUDOS:12.5").await;

        // The typed client books a second transfer.
        let client = bank.wg_client("exchange", "exchange-pw");
        let req: TransferRequest =
            serde_json::from_value(transfer_body(&bank, 3, "KUDOS:2", "shop", 3)).unwrap();
        let second = client.transfer(&req).await.unwrap();
        assert!(second.row_id > first.1["row_id"].as_u64().unwrap());
        assert_eq!(client.transfer(&req).await.unwrap(), second, "[{engine}]");
        bank.assert_balance("shop", "KUDOS:14.5").await;

        // Outgoing history, oldest first, with the wire transfer details.
        let (status, out) = bank
            .get(&bank.wg("exchange", "history/outgoing?limit=5"), &EX)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {out}");
        assert_eq!(
            out["debit_account"],
            "payto://x-taler-bank/localhost/exchange?receiver-name=exchange%20legal"
        );
        let txs = out["outgoing_transactions"].as_array().unwrap();
        assert_eq!(txs.len(), 2);
        assert_eq!(txs[0]["row_id"], first.1["row_id"]);
        assert_eq!(txs[0]["amount"], "KUDOS:12.5");
        assert_eq!(txs[0]["wtid"], wtid(1).to_string());
        assert_eq!(txs[0]["exchange_base_url"], "https://exchange.example/");
        assert_eq!(
            txs[0]["credit_account"],
            "payto://x-taler-bank/localhost/shop"
        );
        assert_eq!(txs[0]["date"], first.1["timestamp"]);
        assert_eq!(txs[1]["row_id"].as_u64(), Some(second.row_id));
        let via_client = client
            .outgoing_history(&cardcash_client::HistoryRequest::after(None, 10, None))
            .await
            .unwrap();
        assert_eq!(via_client.len(), 2);
        assert_eq!(via_client[1].wtid, wtid(3));

        // The merchant sees the subject "WTID exchange-url" on its statement.
        let (_, shop) = bank
            .get(
                "/accounts/shop/transactions?limit=-1",
                &Cred::Basic("shop", "shop-pw"),
            )
            .await;
        assert_eq!(
            shop["transactions"][0]["subject"].as_str().unwrap(),
            format!("{} https://exchange.example/", wtid(3))
        );
        bank.assert_balances_sum_to_zero().await;
        bank.shutdown().await;
    }
);

engine_test!(
    async fn transfer_errors(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        setup(&bank).await;
        bank.create("other-exchange", "pw", true).await;
        let path = bank.wg("exchange", "transfer");

        let unknown = bank
            .post(
                &path,
                &EX,
                &transfer_body(&bank, 10, "KUDOS:1", "nobody", 10),
            )
            .await;
        assert_taler_error(&engine, &unknown, StatusCode::CONFLICT, 5124);
        let mut elsewhere = transfer_body(&bank, 11, "KUDOS:1", "shop", 11);
        elsewhere["credit_account"] = json!("payto://x-taler-bank/bank.elsewhere/shop");
        let got = bank.post(&path, &EX, &elsewhere).await;
        assert_taler_error(&engine, &got, StatusCode::CONFLICT, 5124);
        let mut iban = transfer_body(&bank, 12, "KUDOS:1", "shop", 12);
        iban["credit_account"] = json!("payto://iban/DE89370400440532013000");
        let got = bank.post(&path, &EX, &iban).await;
        assert_taler_error(&engine, &got, StatusCode::CONFLICT, 5124);

        let broke = bank
            .post(
                &path,
                &EX,
                &transfer_body(&bank, 13, "KUDOS:100.01", "shop", 13),
            )
            .await;
        assert_taler_error(&engine, &broke, StatusCode::CONFLICT, 5102);
        let eur = bank
            .post(&path, &EX, &transfer_body(&bank, 14, "EUR:1", "shop", 14))
            .await;
        assert_taler_error(&engine, &eur, StatusCode::BAD_REQUEST, 30);
        let to_exchange = bank
            .post(
                &path,
                &EX,
                &transfer_body(&bank, 15, "KUDOS:1", "other-exchange", 15),
            )
            .await;
        assert_taler_error(&engine, &to_exchange, StatusCode::CONFLICT, 5126);

        // Malformed request_uid / wtid: bad letters and wrong lengths.
        let good = transfer_body(&bank, 16, "KUDOS:1", "shop", 16);
        let short_uid = &request_uid(16).to_string()[..100];
        let short_wtid = &wtid(16).to_string()[..51];
        for (field, value) in [
            ("request_uid", "!!!"),
            ("request_uid", short_uid),
            ("wtid", "not base32 at all"),
            ("wtid", short_wtid),
            ("exchange_base_url", "ftp://exchange.example/"),
            ("credit_account", "http://not-payto"),
        ] {
            let mut body = good.clone();
            body[field] = json!(value);
            let got = bank.post(&path, &EX, &body).await;
            assert_eq!(
                got.0,
                StatusCode::BAD_REQUEST,
                "[{engine}] {field}={value}: {}",
                got.1
            );
            assert!(got.1["code"].as_u64().is_some(), "[{engine}] {}", got.1);
        }

        // A customer account has no wire gateway.
        let not_exchange = bank
            .post(
                &bank.wg("shop", "transfer"),
                &Cred::Basic("shop", "shop-pw"),
                &transfer_body(&bank, 17, "KUDOS:1", "shop", 17),
            )
            .await;
        assert_taler_error(&engine, &not_exchange, StatusCode::CONFLICT, 5127);
        let not_exchange = bank
            .get(
                &bank.wg("shop", "history/incoming"),
                &Cred::Basic("shop", "shop-pw"),
            )
            .await;
        assert_taler_error(&engine, &not_exchange, StatusCode::CONFLICT, 5127);

        bank.assert_balance("exchange", "KUDOS:100").await;
        bank.assert_balance("shop", "KUDOS:0").await;
        let (status, _) = bank
            .get(&bank.wg("exchange", "history/outgoing"), &EX)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "[{engine}]");
        bank.assert_balances_sum_to_zero().await;
        bank.shutdown().await;
    }
);

engine_test!(
    async fn add_incoming_rules(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("exchange", "exchange-pw", true).await;
        bank.create("alice", "alice-pw", false).await;
        bank.fund("alice", "KUDOS:10").await;
        let path = bank.wg("exchange", "admin/add-incoming");

        // From a local customer: her account pays.
        let (status, body) = bank
            .post(
                &path,
                &EX,
                &json!({"amount": "KUDOS:4", "reserve_pub": reserve_pub(1).to_string(), "debit_account": bank.payto("alice")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        bank.assert_balance("alice", "KUDOS:6").await;
        bank.assert_balance("exchange", "KUDOS:4").await;

        // From outside the bank: the admin funding account pays, the history shows the sender.
        let client = bank.wg_client("exchange", "exchange-pw");
        let external = "payto://card-transaction/cardproc.example/tx-42";
        client
            .add_incoming(&AddIncomingRequest {
                amount: "KUDOS:3".parse().unwrap(),
                reserve_pub: reserve_pub(2),
                debit_account: external.parse().unwrap(),
            })
            .await
            .unwrap();
        bank.assert_balance("admin", "-KUDOS:13").await;
        let rows = client
            .incoming_history(&cardcash_client::HistoryRequest::after(None, 10, None))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let cardcash_bank::types::IncomingBankTransaction::Reserve {
            debit_account,
            reserve_pub: key,
            ..
        } = &rows[1]
        else {
            panic!("[{engine}] not a reserve transaction: {:?}", rows[1]);
        };
        assert_eq!(debit_account.to_string(), external);
        assert_eq!(*key, reserve_pub(2));

        // Reserve public key reuse, unknown local debtor, insufficient funds, not an exchange.
        let reuse = bank
            .post(&path, &EX, &json!({"amount": "KUDOS:1", "reserve_pub": reserve_pub(1).to_string(), "debit_account": bank.payto("alice")}))
            .await;
        assert_taler_error(&engine, &reuse, StatusCode::CONFLICT, 5114);
        let unknown = bank
            .post(&path, &EX, &json!({"amount": "KUDOS:1", "reserve_pub": reserve_pub(3).to_string(), "debit_account": bank.payto("nobody")}))
            .await;
        assert_taler_error(&engine, &unknown, StatusCode::CONFLICT, 5125);
        let broke = bank
            .post(&path, &EX, &json!({"amount": "KUDOS:7", "reserve_pub": reserve_pub(4).to_string(), "debit_account": bank.payto("alice")}))
            .await;
        assert_taler_error(&engine, &broke, StatusCode::CONFLICT, 5102);
        let bad_key = bank
            .post(&path, &EX, &json!({"amount": "KUDOS:1", "reserve_pub": "short", "debit_account": bank.payto("alice")}))
            .await;
        assert_eq!(bad_key.0, StatusCode::BAD_REQUEST, "[{engine}]");
        let customer = bank
            .post(
                &bank.wg("alice", "admin/add-incoming"),
                &Cred::Basic("alice", "alice-pw"),
                &json!({"amount": "KUDOS:1", "reserve_pub": reserve_pub(5).to_string(), "debit_account": bank.payto("alice")}),
            )
            .await;
        assert_taler_error(&engine, &customer, StatusCode::CONFLICT, 5127);

        bank.assert_balance("alice", "KUDOS:6").await;
        bank.assert_balance("exchange", "KUDOS:7").await;
        bank.assert_balances_sum_to_zero().await;

        // The counters of the metrics endpoint saw the bookings.
        let text = bank
            .http
            .get(bank.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("bank_incoming_total 2"), "[{engine}] {text}");
        assert!(text.contains("bank_transfers_total 1"), "[{engine}] {text}");
        bank.shutdown().await;
    }
);

engine_test!(
    /// `GET /transfers` and `GET /transfers/$ROW_ID` (Wire Gateway v3): a bank transfer is booked
    /// at once, so every transfer is `success`, under the row id `POST /transfer` answered.
    async fn transfer_status_listing(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        setup(&bank).await;
        bank.create("other", "other-pw", true).await;
        let path = bank.wg("exchange", "transfer");
        let mut ids = Vec::new();
        for label in 1..=3u8 {
            let amount = format!("KUDOS:{label}");
            let (status, body) = bank
                .post(
                    &path,
                    &EX,
                    &transfer_body(&bank, label, &amount, "shop", label),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
            ids.push(body["row_id"].as_u64().unwrap());
        }

        // Newest first by default.
        let (status, list) = bank.get(&bank.wg("exchange", "transfers"), &EX).await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {list}");
        assert_eq!(
            list["debit_account"],
            "payto://x-taler-bank/localhost/exchange?receiver-name=exchange%20legal"
        );
        let rows = list["transfers"].as_array().unwrap();
        let listed: Vec<u64> = rows.iter().map(|r| r["row_id"].as_u64().unwrap()).collect();
        assert_eq!(listed, [ids[2], ids[1], ids[0]], "[{engine}]");
        assert!(
            rows.iter().all(|r| r["status"] == "success"),
            "[{engine}] {list}"
        );
        assert_eq!(rows[2]["amount"], "KUDOS:1");
        assert_eq!(rows[2]["credit_account"], bank.payto("shop"));
        assert!(rows[2]["timestamp"]["t_s"].as_u64().is_some());
        // Paging and the status filter.
        let (_, page) = bank
            .get(
                &bank.wg("exchange", &format!("transfers?limit=5&offset={}", ids[0])),
                &EX,
            )
            .await;
        let listed: Vec<u64> = page["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["row_id"].as_u64().unwrap())
            .collect();
        assert_eq!(listed, [ids[1], ids[2]], "[{engine}]");
        let (status, _) = bank
            .get(
                &bank.wg("exchange", "transfers?status=success&limit=1"),
                &EX,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}]");
        for state in ["pending", "transient_failure", "permanent_failure"] {
            let (status, body) = bank
                .get(
                    &bank.wg("exchange", &format!("transfers?status={state}")),
                    &EX,
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "[{engine}] {state}: {body}");
        }

        // One transfer.
        let (status, one) = bank
            .get(&bank.wg("exchange", &format!("transfers/{}", ids[1])), &EX)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {one}");
        assert_eq!(one["status"], "success");
        assert_eq!(one["amount"], "KUDOS:2");
        assert_eq!(one["wtid"], wtid(2).to_string());
        assert_eq!(one["exchange_base_url"], "https://exchange.example/");
        assert_eq!(one["credit_account"], bank.payto("shop"));
        // Unknown ids, and ids of another exchange's transfers, are 404.
        let got = bank
            .get(&bank.wg("exchange", "transfers/999999"), &EX)
            .await;
        assert_taler_error(&engine, &got, StatusCode::NOT_FOUND, 5107);
        let got = bank
            .get(
                &bank.wg("other", &format!("transfers/{}", ids[1])),
                &Cred::Basic("other", "other-pw"),
            )
            .await;
        assert_taler_error(&engine, &got, StatusCode::NOT_FOUND, 5107);
        let (status, _) = bank
            .get(
                &bank.wg("other", "transfers"),
                &Cred::Basic("other", "other-pw"),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "[{engine}]");
        // Only the owner (or the admin) may look.
        let got = bank
            .get(&bank.wg("exchange", "transfers"), &Cred::None)
            .await;
        assert_taler_error(&engine, &got, StatusCode::UNAUTHORIZED, 40);
        let got = bank
            .get(
                &bank.wg("exchange", "transfers"),
                &Cred::Basic("other", "other-pw"),
            )
            .await;
        assert_taler_error(&engine, &got, StatusCode::FORBIDDEN, 44);
        let (status, _) = bank
            .get(&bank.wg("exchange", "transfers"), &Cred::Admin)
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}]");
        bank.shutdown().await;
    }
);

engine_test!(
    /// The malformed requests of the shared conformance table get exactly the answers C2EC gives
    /// too (its test suite checks the same table).
    async fn malformed_requests_answer_like_every_wire_gateway(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        setup(&bank).await;
        for case in cardcash_http::wire_gateway::conformance::MALFORMED {
            let url = bank.url(&bank.wg("exchange", case.path));
            let method: reqwest::Method = case.method.parse().unwrap();
            // The exchange's owner may also use admin/add-incoming.
            let mut request = bank
                .http
                .request(method, url)
                .basic_auth("exchange", Some("exchange-pw"));
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
                "[{engine}] {} {}",
                case.method,
                case.path
            );
        }
        bank.shutdown().await;
    }
);
