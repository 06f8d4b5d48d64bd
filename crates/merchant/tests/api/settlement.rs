//! Settlement: after the wire deadline the exchange aggregates the deposits of paid orders and
//! wires them to the merchant's bank account; the merchant's worker learns which transfer paid
//! each deposit, marks the orders wired and lists the transfers with the fees per order. The
//! bank reports transfers that arrived (confirmed, reconciled with the exchange's statement,
//! conflicts kept); a session tells which order it paid.

use cardcash_api::merchant::settlement::TransferInformation;
use cardcash_merchant::config::DEFAULT_INSTANCE;
use cardcash_store::Database;
use cardcash_testkit::coins;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{Amount, ShortHashCode, Timestamp};
use serde_json::{Value, json};

use crate::payments::{PayWorld, kudos, pay_world};

fn amount(v: &Value) -> Amount {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

engine_test!(
    /// Two orders (4.99 paid with a 5, 1.99 with a 2; deposit fees 0.01 each) reach their
    /// wire deadline: the exchange wires 4.99 + 1.99 − wire fees to the merchant's account,
    /// both orders become wired, and /private/transfers shows what arrived per transfer with
    /// each order's deposits, fees and share — adding up to the bank's balance.
    async fn wired_orders_are_reconciled_with_the_exchanges_transfers(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("5"), kudos("2")]).await;
        let deadline = Timestamp::from_secs(Timestamp::now().as_secs() + 2);
        let first = w
            .claimed_order("4.99", json!({"wire_transfer_deadline": deadline}), None)
            .await;
        let second = w
            .claimed_order("1.99", json!({"wire_transfer_deadline": deadline}), None)
            .await;
        assert_eq!(w.pay(&first, &[(&coins[0], kudos("5"))]).await.status, 200);
        assert_eq!(w.pay(&second, &[(&coins[1], kudos("2"))]).await.status, 200);

        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        for order in [&first, &second] {
            let id = order.order_id.clone();
            cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
                store
                    .pay_order(instance.serial, &id)
                    .await
                    .unwrap()
                    .unwrap()
                    .wired
            })
            .await;
        }
        let list = w.get("private/transfers").await;
        assert_eq!(list.status, 200, "{:?}", list.body);
        let transfers = list.body["transfers"].as_array().unwrap();
        assert!(!transfers.is_empty(), "{transfers:?}");
        let mut credited = kudos("0");
        let mut orders = Vec::new();
        for t in transfers {
            let credit = amount(&t["credit_amount"]);
            let fee = amount(&t["wire_fee"]);
            let carried = t["orders"]
                .as_array()
                .unwrap()
                .iter()
                .fold(kudos("0"), |s, o| {
                    s.checked_add(&amount(&o["wired"])).unwrap()
                });
            // What arrived is what the orders carried less the transfer's wire fee.
            assert_eq!(credit.checked_add(&fee).unwrap(), carried, "{t}");
            assert_eq!(t["exchange_url"], w.world.exchange().base_url().to_string());
            assert_eq!(t["payto_uri"], w.payto.to_string());
            credited = credited.checked_add(&credit).unwrap();
            orders.extend(t["orders"].as_array().unwrap().iter().cloned());
        }
        orders.sort_by_key(|o| o["order_id"].as_str().map(str::to_owned));
        let find = |id: &str| {
            orders
                .iter()
                .find(|o| o["order_id"] == id)
                .unwrap_or_else(|| panic!("order {id} in no transfer: {orders:?}"))
                .clone()
        };
        let a = find(&first.order_id);
        assert_eq!(amount(&a["deposit_total"]), kudos("5"));
        assert_eq!(amount(&a["deposit_fees"]), kudos("0.01"));
        assert_eq!(amount(&a["wired"]), kudos("4.99"));
        let b = find(&second.order_id);
        assert_eq!(amount(&b["deposit_total"]), kudos("2"));
        assert_eq!(amount(&b["deposit_fees"]), kudos("0.01"));
        assert_eq!(amount(&b["wired"]), kudos("1.99"));
        assert_eq!(orders.len(), 2, "{orders:?}");

        // The bank: the merchant's account received exactly what the transfers say.
        let bank = w.world.bank().admin();
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            bank.account("merchant").await.unwrap().balance.amount == credited
        })
        .await;
        // 6.98 carried, one wire fee of 0.01 per transfer.
        let fees = kudos("6.98").checked_sub(&credited).unwrap();
        assert!(
            fees == kudos("0.01") || fees == kudos("0.02"),
            "wire fees {fees}"
        );
        w.shutdown().await;
    }
);

/// `s` percent-encoded for a query string.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// TEST-ONLY SQL on the merchant's database: `sqlite` or `postgres` by engine.
async fn test_sql(w: &PayWorld, sqlite: &str, postgres: &str) {
    match w.env.app.merchant().store().database() {
        Database::Sqlite(db) => {
            let sql = sqlite.to_owned();
            db.write(move |tx| {
                tx.execute_batch(&sql)?;
                Ok(())
            })
            .await
            .unwrap();
        }
        Database::Postgres(db) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                .execute(db.pool())
                .await
                .unwrap();
        }
    }
}

/// A world whose one order (4.99, paid with a 5) was wired: the world and the transfer as
/// `GET /private/transfers` lists it.
async fn wired_world(engine: Engine) -> (PayWorld, Value) {
    let w = pay_world(engine).await;
    let coins = coins::withdraw(&w.world, &[kudos("5")]).await;
    let deadline = Timestamp::from_secs(Timestamp::now().as_secs() + 2);
    let order = w
        .claimed_order("4.99", json!({"wire_transfer_deadline": deadline}), None)
        .await;
    assert_eq!(w.pay(&order, &[(&coins[0], kudos("5"))]).await.status, 200);
    let store = w.env.app.merchant().store();
    let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
    cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
        store
            .pay_order(instance.serial, &order.order_id)
            .await
            .unwrap()
            .unwrap()
            .wired
    })
    .await;
    let list = w.get("private/transfers").await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let transfers = list.body["transfers"].as_array().unwrap().clone();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    (w, transfers[0].clone())
}

/// The bank's report of `t` (a listed transfer) with `credit_amount`.
fn report(w: &PayWorld, t: &Value, credit_amount: &Amount) -> Value {
    json!({
        "credit_amount": credit_amount,
        "wtid": t["wtid"],
        "payto_uri": w.payto.to_string(),
        "exchange_url": t["exchange_url"],
    })
}

async fn delete(w: &PayWorld, serial: &Value) -> (u16, Value) {
    let r = w
        .http
        .delete(format!("{}private/transfers/{serial}", w.env.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn transfers(w: &PayWorld, query: &str) -> Vec<Value> {
    let list = w.get(&format!("private/transfers{query}")).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    list.body["transfers"].as_array().unwrap().clone()
}

engine_test!(
    /// The bank reports the transfer the exchange made: 204, and it is listed confirmed and
    /// verified; the same report again answers the same. A report to an account the instance
    /// does not have is refused (2555). A report the exchange knows nothing of is kept
    /// confirmed but unverified, and can be deleted (then it is unknown); a transfer orders
    /// were reconciled with cannot (2556).
    async fn reported_transfers_are_confirmed_and_verified(engine: Engine) {
        let (w, t) = wired_world(engine).await;
        assert_eq!(t["confirmed"], false, "{t}");
        assert_eq!(t["verified"], true, "{t}");
        assert_eq!(t["expected"], true, "{t}");
        let credit = amount(&t["credit_amount"]);
        let body = report(&w, &t, &credit);
        for _ in 0..2 {
            let r = w.post("private/transfers", &body).await;
            assert_eq!(r.status, 204, "{:?}", r.body);
        }
        // The bank may name the account without its parameters: the same report.
        let mut bare = body.clone();
        bare["payto_uri"] = json!(w.payto.normalized().to_string());
        assert_ne!(bare["payto_uri"], body["payto_uri"]);
        let r = w.post("private/transfers", &bare).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let listed = transfers(&w, "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let c = &listed[0];
        assert_eq!(c["transfer_serial_id"], t["transfer_serial_id"]);
        assert_eq!(c["payto_uri"], body["payto_uri"]);
        assert_eq!(c["confirmed"], true, "{c}");
        assert_eq!(c["verified"], true, "{c}");
        assert_eq!(amount(&c["credit_amount"]), credit);
        assert_eq!(amount(&c["exchange_credit_amount"]), credit);
        assert_eq!(c["orders"].as_array().unwrap().len(), 1, "{c}");
        assert_eq!(transfers(&w, "?confirmed=yes&verified=yes").await.len(), 1);
        assert!(transfers(&w, "?confirmed=no").await.is_empty());
        assert!(transfers(&w, "?verified=no").await.is_empty());
        let payto = w.payto.to_string();
        let encoded = enc(&payto);
        assert_eq!(
            transfers(&w, &format!("?payto_uri={encoded}")).await.len(),
            1
        );
        assert!(
            transfers(&w, "?payto_uri=payto%3A%2F%2Fx-taler-bank%2Fb%2Fnobody")
                .await
                .is_empty()
        );

        // An account the instance does not have.
        let mut elsewhere = body.clone();
        elsewhere["payto_uri"] =
            json!("payto://x-taler-bank/bank.example/someone?receiver-name=Someone");
        let r = w.post("private/transfers", &elsewhere).await;
        assert_eq!((r.status, r.code()), (404, Some(2555)), "{:?}", r.body);

        // A transfer the exchange does not know (yet): confirmed, not verified, deletable.
        let unknown_wtid = ShortHashCode::from_slice(&[7u8; 32]).unwrap();
        let mut unknown = body.clone();
        unknown["wtid"] = json!(unknown_wtid);
        unknown["credit_amount"] = json!(kudos("1.23"));
        let r = w.post("private/transfers", &unknown).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let listed = transfers(&w, "?expected=no").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let u = &listed[0];
        assert_eq!(u["wtid"], json!(unknown_wtid));
        assert_eq!(u["confirmed"], true, "{u}");
        assert_eq!(u["expected"], false, "{u}");
        assert!(
            u.get("verified").is_none() && u.get("execution_time").is_none(),
            "{u}"
        );
        // Newest first by default; a positive limit pages forwards.
        assert_eq!(transfers(&w, "").await[0]["wtid"], json!(unknown_wtid));
        assert_eq!(transfers(&w, "?limit=1").await[0]["wtid"], t["wtid"]);
        let (status, _) = delete(&w, &u["transfer_serial_id"]).await;
        assert_eq!(status, 204);
        let (status, b) = delete(&w, &u["transfer_serial_id"]).await;
        assert_eq!((status, b["code"].as_u64()), (404, Some(2017)), "{b}");
        let (status, b) = delete(&w, &t["transfer_serial_id"]).await;
        assert_eq!((status, b["code"].as_u64()), (409, Some(2556)), "{b}");
        let (status, _) = delete(&w, &json!("x")).await;
        assert_eq!(status, 400);
        assert_eq!(transfers(&w, "").await.len(), 1);

        // A shop's client sees and says the same.
        let client = cardcash_client::MerchantClient::new(
            w.env.base.parse().unwrap(),
            DEFAULT_INSTANCE,
            "secret-token:external-auth-checks-nothing",
        )
        .unwrap();
        let listed = client.transfers(-20, None).await.unwrap().transfers;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let listed = &listed[0];
        assert!(
            listed.confirmed && listed.verified == Some(true),
            "{listed:?}"
        );
        client
            .report_transfer(&TransferInformation {
                credit_amount: credit,
                wtid: listed.wtid,
                payto_uri: w.payto.to_string(),
                exchange_url: t["exchange_url"].as_str().unwrap().parse().unwrap(),
            })
            .await
            .unwrap();
        let refused = client
            .delete_transfer(listed.transfer_serial_id)
            .await
            .unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(409), Some(2556)));
        w.shutdown().await;
    }
);

engine_test!(
    /// The bank reports a transfer the backend has not stored a statement of: the backend asks
    /// the exchange (`GET /transfers/$WTID`, its signature checked) and records it verified.
    async fn a_report_before_the_statement_asks_the_exchange(engine: Engine) {
        let (w, t) = wired_world(engine).await;
        // Forget the worker's statement (its deposits keep the WTID).
        test_sql(&w, "DELETE FROM transfers", "DELETE FROM transfers").await;
        assert!(transfers(&w, "").await.is_empty());
        let credit = amount(&t["credit_amount"]);
        let r = w.post("private/transfers", &report(&w, &t, &credit)).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let listed = transfers(&w, "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let c = &listed[0];
        assert_eq!(
            (&c["confirmed"], &c["verified"], &c["expected"]),
            (&json!(true), &json!(true), &json!(true)),
            "{c}"
        );
        assert_eq!(c["execution_time"], t["execution_time"]);
        assert_eq!(c["wire_fee"], t["wire_fee"]);
        assert_eq!(c["orders"].as_array().unwrap().len(), 1, "{c}");
        w.shutdown().await;
    }
);

engine_test!(
    /// The bank reports another amount than the exchange says it wired: 409 (2557), and both
    /// facts stay: the transfer is listed confirmed with the reported amount, the exchange's
    /// beside it, and not verified. The same report again answers the same; a corrected
    /// report conflicts with the first one (delete it first — not possible once orders were
    /// reconciled with the transfer).
    async fn a_wrong_amount_is_a_conflict_that_is_kept(engine: Engine) {
        let (w, t) = wired_world(engine).await;
        let credit = amount(&t["credit_amount"]);
        let wrong = credit.checked_add(&kudos("0.01")).unwrap();
        let body = report(&w, &t, &wrong);
        for _ in 0..2 {
            let r = w.post("private/transfers", &body).await;
            assert_eq!((r.status, r.code()), (409, Some(2557)), "{:?}", r.body);
            assert_eq!(
                amount(&r.body["exchange_credit_amount"]),
                credit,
                "{:?}",
                r.body
            );
        }
        let listed = transfers(&w, "?verified=no").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let c = &listed[0];
        assert_eq!(c["confirmed"], true, "{c}");
        assert_eq!(c["verified"], false, "{c}");
        assert_eq!(amount(&c["credit_amount"]), wrong);
        assert_eq!(amount(&c["exchange_credit_amount"]), credit);
        assert!(transfers(&w, "?verified=yes").await.is_empty());
        let r = w.post("private/transfers", &report(&w, &t, &credit)).await;
        assert_eq!((r.status, r.code()), (409, Some(2557)), "{:?}", r.body);
        assert_eq!(
            amount(&r.body["previous_credit_amount"]),
            wrong,
            "{:?}",
            r.body
        );
        w.shutdown().await;
    }
);

engine_test!(
    /// `GET /sessions/$SESSION_ID?fulfillment_url=…`: 404 before the session paid, 200 with
    /// the order once it did (a long poll is woken by the payment); 202 for an order created
    /// for the session but unpaid; 400 without the fulfillment URL.
    async fn a_session_tells_which_order_it_paid(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("5")]).await;
        let url = "https://shop.example/sonatas";
        let order = w
            .claimed_order("4.99", json!({"fulfillment_url": url}), None)
            .await;
        let encoded = enc(url);
        let path = format!("sessions/session-1?fulfillment_url={encoded}");
        let r = w.get(&path).await;
        assert_eq!((r.status, r.code()), (404, Some(2005)), "{:?}", r.body);
        let r = w.get("sessions/session-1").await;
        assert_eq!((r.status, r.code()), (400, Some(25)), "{:?}", r.body);

        // A long poll, answered by the payment (which binds the order to session-1).
        let waiting = {
            let http = w.http.clone();
            let url = format!("{}{path}&timeout_ms=30000", w.env.base);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let r = http.get(url).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap(), started.elapsed())
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(w.pay(&order, &[(&coins[0], kudos("5"))]).await.status, 200);
        let (status, body, took) = waiting.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["order_id"], order.order_id);
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
        let r = w.get(&path).await;
        assert_eq!(
            (r.status, r.body["order_id"].as_str()),
            (200, Some(order.order_id.as_str()))
        );
        // Another fulfillment URL of the same session: nothing paid.
        let r = w
            .get("sessions/session-1?fulfillment_url=https%3A%2F%2Fshop.example%2Fother")
            .await;
        assert_eq!(r.status, 404, "{:?}", r.body);

        // An order created for a session, not paid: 202.
        let created = w
            .post(
                "private/orders",
                &json!({"order": {"amount": "KUDOS:1", "summary": "Etudes",
                                  "fulfillment_url": "https://shop.example/etudes"},
                        "session_id": "session-2"}),
            )
            .await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        let r = w
            .get("sessions/session-2?fulfillment_url=https%3A%2F%2Fshop.example%2Fetudes")
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.body["order_id"], created.body["order_id"]);
        w.shutdown().await;
    }
);

engine_test!(
    /// A report stored before the exchange's statement (the exchange did not know the WTID
    /// yet) is reconciled when the settlement worker learns of the transfer: the same row
    /// becomes expected and verified and carries the order.
    async fn a_transfer_reported_first_is_reconciled_by_the_worker(engine: Engine) {
        let (w, t) = wired_world(engine).await;
        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let wtid: ShortHashCode = serde_json::from_value(t["wtid"].clone()).unwrap();
        let hex: String = wtid.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let (val, frac) = cardcash_store::columns::amount_to_columns(&amount(&t["credit_amount"]));
        let exchange_url = t["exchange_url"].as_str().unwrap();
        let payto = w.payto.to_string();
        // Back to before the worker learned of the transfer, with the bank's report stored
        // (what a report the exchange could not answer about leaves).
        let reset = "DELETE FROM transfers; \
             UPDATE deposits SET wtid = NULL, execution_time = NULL, wired_val = NULL, \
             wired_frac = NULL, next_check = 0; UPDATE orders SET wired = 0;";
        let insert = |wtid: String| {
            format!(
                "INSERT INTO transfers (instance_serial, exchange_url, wtid, credit_payto_uri, \
                 credit_val, credit_frac) VALUES ({}, '{exchange_url}', {wtid}, '{payto}', \
                 {val}, {frac});",
                instance.serial
            )
        };
        test_sql(
            &w,
            &format!("{reset} {}", insert(format!("X'{hex}'"))),
            &format!("{reset} {}", insert(format!("'\\x{hex}'::bytea"))),
        )
        .await;
        let before = transfers(&w, "").await;
        assert_eq!(before.len(), 1, "{before:?}");
        assert_eq!(
            (&before[0]["confirmed"], &before[0]["expected"]),
            (&json!(true), &json!(false))
        );
        // Any order change wakes the worker.
        w.claimed_order("1", json!({}), None).await;
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            transfers(&w, "?expected=yes").await.len() == 1
        })
        .await;
        let after = transfers(&w, "").await;
        assert_eq!(after.len(), 1, "{after:?}");
        let c = &after[0];
        assert_eq!(c["transfer_serial_id"], before[0]["transfer_serial_id"]);
        assert_eq!(
            (&c["confirmed"], &c["verified"]),
            (&json!(true), &json!(true)),
            "{c}"
        );
        assert_eq!(c["execution_time"], t["execution_time"]);
        assert_eq!(c["orders"].as_array().unwrap().len(), 1, "{c}");
        w.shutdown().await;
    }
);
