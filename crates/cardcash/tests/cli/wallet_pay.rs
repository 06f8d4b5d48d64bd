//! `cardcash wallet` paying a shop on the real binary: a world (bank, exchange, merchant
//! backend) runs in this test's process, two wallet files withdraw CHF 20 each with `withdraw
//! manual` + `run-until-done`, and pay an order of the merchant with `handle-uri … -y`. One
//! wallet is killed (SIGKILL) after the merchant answered `/pay` (then `run-until-done`) and,
//! on another order, after it answered the claim (then the same URI again); each time it ends
//! holding exactly what the wallet that was not killed holds. A second order of the same
//! fulfillment URL is not paid again.

use cardcash_api::corebank::CreateTransactionRequest as BankTransfer;
use cardcash_client::{Auth, Endpoint};
use cardcash_util::{Amount, PaytoUri, RelativeTime};
use cardcash_world::{BankAccount, World};
use serde_json::{Value, json};

use super::wallet::{kill_wallet_at, wallet_json};

fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().expect("amount")
}

/// A manual withdrawal of CHF 20 into the wallet file `db`, wired by `payer`.
fn fund(rt: &tokio::runtime::Runtime, world: &World, db: &std::path::Path) {
    let created = wallet_json(
        db,
        &[
            "withdraw",
            "manual",
            "--exchange",
            world.exchange().base_url().as_str(),
            "--amount",
            "CHF:20",
        ],
    );
    let payto = world.bank().app().ledger().payto();
    let exchange = payto.account_uri("exchange", "Exchange").expect("payto");
    let target: PaytoUri = created["exchangePaytoUris"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|p| {
            p.as_str()
                .expect("text")
                .parse::<PaytoUri>()
                .expect("payto")
        })
        .find(|p| p.same_account(&exchange))
        .expect("the exchange's account at the bank");
    let payer = payto.account_uri("payer", "Payer").expect("payto");
    let admin = world.bank().admin();
    rt.block_on(async {
        admin
            .create_transaction(
                "admin",
                &BankTransfer {
                    payto_uri: payer.with_param("message", "pocket money"),
                    amount: Some(chf("20")),
                    request_uid: None,
                },
            )
            .await
            .expect("pocket money");
        admin
            .create_transaction(
                "payer",
                &BankTransfer {
                    payto_uri: target,
                    amount: None,
                    request_uid: None,
                },
            )
            .await
            .expect("wire to the exchange");
    });
    wallet_json(db, &["run-until-done", "--timeout-secs", "120"]);
}

/// An order of CHF 3.50 for `fulfillment`: its id and `taler://pay` URI.
fn order(rt: &tokio::runtime::Runtime, world: &World, fulfillment: &str) -> (String, String) {
    let m = world.merchant();
    let api = Endpoint::new(
        m.http().clone(),
        "the merchant",
        m.base_url().clone(),
        Auth::bearer(m.admin_token()),
    );
    rt.block_on(async {
        let created: Value = api
            .post(&["private", "orders"])
            .json(&json!({
                "order": {
                    "amount": "CHF:3.5",
                    "summary": "Beethoven Sonatas",
                    "fulfillment_url": fulfillment,
                },
                "refund_delay": RelativeTime::from_secs(3600),
            }))
            .json_response()
            .await
            .expect("order");
        let id = created["order_id"].as_str().expect("id").to_owned();
        let status: Value = api
            .get(&["private", "orders", &id])
            .json_response()
            .await
            .expect("status");
        let uri = status["taler_pay_uri"].as_str().expect("URI").to_owned();
        (id, uri)
    })
}

fn available(db: &std::path::Path) -> String {
    let b = wallet_json(db, &["balance"]);
    b["balances"][0]["available"]
        .as_str()
        .unwrap_or_else(|| panic!("{b}"))
        .to_owned()
}

fn payments(db: &std::path::Path) -> Vec<Value> {
    wallet_json(db, &["transactions"])["transactions"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|t| t["type"] == "payment")
        .cloned()
        .collect()
}

#[test]
fn a_wallet_killed_after_the_merchant_answered_pays_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt
        .block_on(
            World::builder()
                .bank()
                .bank_account(BankAccount::new("payer", "Payer"))
                .exchange()
                .merchant()
                .start(),
        )
        .expect("world");
    let dir = tempfile::tempdir().expect("temp dir");
    let (killed, calm) = (
        dir.path().join("killed.sqlite3"),
        dir.path().join("calm.sqlite3"),
    );
    fund(&rt, &world, &killed);
    fund(&rt, &world, &calm);
    let before = available(&calm);
    assert_eq!(available(&killed), before);

    let (_, uri) = order(&rt, &world, "https://shop.example/sonatas");
    let paid = wallet_json(&calm, &["handle-uri", &uri, "-y"]);
    assert!(paid["balances"].is_array(), "ends with the balance: {paid}");
    let calm_payment = payments(&calm).remove(0);
    assert_eq!(calm_payment["state"], "done", "{calm_payment}");
    assert_eq!(calm_payment["amountRaw"], "CHF:3.5");
    // The price and the deposit fees the merchant does not cover (its max_fee is 0 here).
    let effective: Amount =
        serde_json::from_value(calm_payment["amountEffective"].clone()).expect("amount");
    assert!(
        effective >= chf("3.5") && effective < chf("3.6"),
        "{calm_payment}"
    );

    let (_, uri) = order(&rt, &world, "https://shop.example/sonatas");
    kill_wallet_at(&killed, "after-pay", &["handle-uri", &uri, "-y"]);
    assert_eq!(payments(&killed)[0]["state"], "paying");
    wallet_json(&killed, &["run-until-done", "--timeout-secs", "120"]);
    let payment = payments(&killed).remove(0);
    assert_eq!(payment["state"], "done", "{payment}");
    assert_eq!(payment["amountEffective"], calm_payment["amountEffective"]);
    assert_eq!(available(&killed), available(&calm));
    assert_ne!(available(&calm), before);

    // The same fulfillment URL again: not paid, the balance unchanged.
    let (_, uri) = order(&rt, &world, "https://shop.example/sonatas");
    let after = available(&calm);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardcash"))
        .arg("wallet")
        .arg("--wallet-db")
        .arg(&calm)
        .args(["handle-uri", &uri, "-y"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run the wallet");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Already paid"), "{text}");
    assert_eq!(available(&calm), after);
    assert_eq!(payments(&calm).len(), 2);

    // Killed after the merchant answered the claim, before the contract was stored: the same
    // URI again claims with the stored nonce (the merchant answers the same contract, not
    // "claimed by another wallet") and pays once, like the wallet that was not killed.
    let (_, uri) = order(&rt, &world, "https://shop.example/etudes");
    wallet_json(&calm, &["handle-uri", &uri, "-y"]);
    let (id, uri) = order(&rt, &world, "https://shop.example/etudes");
    kill_wallet_at(&killed, "after-claim", &["handle-uri", &uri, "-y"]);
    assert!(
        payments(&killed).iter().all(|p| p["state"] == "done"),
        "nothing paid at the claim"
    );
    wallet_json(&killed, &["handle-uri", &uri, "-y"]);
    let etudes = payments(&killed);
    assert_eq!(etudes.len(), payments(&calm).len() - 1, "{etudes:?}");
    assert!(etudes.iter().all(|p| p["state"] == "done"), "{etudes:?}");
    assert_eq!(available(&killed), available(&calm));
    let status: Value = rt.block_on(async {
        let m = world.merchant();
        Endpoint::new(
            m.http().clone(),
            "the merchant",
            m.base_url().clone(),
            Auth::bearer(m.admin_token()),
        )
        .get(&["private", "orders", &id])
        .json_response()
        .await
        .expect("status")
    });
    assert_eq!(status["order_status"], "paid", "{status}");
    rt.block_on(world.shutdown()).expect("shutdown");
}
