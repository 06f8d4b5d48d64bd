//! Payments and refunds against the world's real exchange, through a small stand-in merchant
//! (until the merchant backend serves claim, pay and refunds: then `merchant.rs` runs the same
//! story against it). The stand-in does what the merchant protocol asks and no more: it signs
//! the contract with the wallet's nonce (1101), deposits the wallet's coins at the exchange
//! with `/batch-deposit` (so the exchange checks every coin signature, 1201), confirms (1104),
//! accepts `/paid` with that confirmation, and has the exchange refund a coin (1102 → 1038).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cardcash_api::exchange::{BatchDepositCoin, BatchDepositRequest, RefundRequest};
use cardcash_api::merchant::{ClaimRequest, PaidRequest, PayRequest};
use cardcash_client::ExchangeClient;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ContractSig, MerchantRefund, PaymentOk};
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri, RelativeTime, Timestamp, WireSalt,
};
use cardcash_wallet::{Step, Wallet, WalletConfig};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::*;

struct Order {
    amount: Amount,
    max_fee: Amount,
    fulfillment_url: String,
    contract: Option<(EddsaPublicKey, Value, HashCode)>,
    paid: Option<(EddsaSignature, Vec<(EddsaPublicKey, Amount)>)>,
    session: Option<String>,
    /// Refunds granted: (rtransaction id, amount), executed at the exchange when the wallet
    /// asks.
    refunds: Vec<(u64, Amount)>,
    /// The contract's `auto_refund` period.
    auto_refund: Option<RelativeTime>,
}

#[derive(Default)]
struct Calls {
    claim: usize,
    pay: usize,
    paid: usize,
    refund: usize,
    /// Every /pay body, as sent.
    pay_bodies: Vec<Value>,
}

struct Shop {
    base: String,
    key: EddsaPrivateKey,
    exchange: ExchangeClient,
    exchange_url: String,
    master_pub: EddsaPublicKey,
    payto: PaytoUri,
    salt: WireSalt,
    orders: HashMap<String, Order>,
    calls: Calls,
    /// Test switch: sign something else than the contract.
    bad_signature: bool,
    /// Test switch: name another base URL in the contract.
    other_base_url: Option<String>,
    /// Test switch: deposit the coins, then fail (502) instead of confirming.
    fail_after_deposit: bool,
}

type Shared = Arc<Mutex<Shop>>;

fn refusal(status: StatusCode, code: u32, hint: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "code": code, "hint": hint })))
}

async fn claim(
    State(shop): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<ClaimRequest>,
) -> (StatusCode, Json<Value>) {
    let mut s = shop.lock().unwrap();
    s.calls.claim += 1;
    let base = s.other_base_url.clone().unwrap_or_else(|| s.base.clone());
    let (key_pub, exchange_url, master_pub) =
        (s.key.public(), s.exchange_url.clone(), s.master_pub);
    let h_wire = cardcash_crypto::h_wire(&s.payto.to_string(), &s.salt);
    let bad = s.bad_signature;
    let Some(order) = s.orders.get_mut(&id) else {
        return refusal(StatusCode::NOT_FOUND, 2300, "unknown order");
    };
    if let Some((nonce, contract, h)) = &order.contract {
        if *nonce != req.nonce {
            return refusal(StatusCode::CONFLICT, 2301, "claimed by another wallet");
        }
        let (contract, h) = (contract.clone(), *h);
        let sig = s.key.sign(&ContractSig {
            h_contract_terms: h,
        });
        return (
            StatusCode::OK,
            Json(json!({ "contract_terms": contract, "sig": sig })),
        );
    }
    let now = Timestamp::now();
    let secs = |t: Timestamp| json!({ "t_s": t.to_sql_micros() / 1_000_000 });
    let contract = json!({
        "order_id": id,
        "merchant_base_url": base,
        "h_wire": h_wire,
        "wire_method": "x-taler-bank",
        "summary": format!("order {id}"),
        "nonce": req.nonce,
        "amount": order.amount,
        "max_fee": order.max_fee,
        "auditors": [],
        "exchanges": [{ "url": exchange_url, "master_pub": master_pub }],
        "pay_deadline": secs(now.saturating_add(RelativeTime::from_secs(3600))),
        "refund_deadline": secs(now.saturating_add(RelativeTime::from_secs(24 * 3600))),
        "wire_transfer_deadline": secs(now.saturating_add(RelativeTime::from_secs(48 * 3600))),
        "timestamp": secs(now),
        "merchant": { "name": "Test shop" },
        "merchant_pub": key_pub,
        "fulfillment_url": order.fulfillment_url,
    });
    let mut contract = contract;
    if let Some(period) = order.auto_refund {
        contract["auto_refund"] = json!(period);
    }
    let h = cardcash_crypto::contract::h_contract_terms(&contract).unwrap();
    order.contract = Some((req.nonce, contract.clone(), h));
    let signed = if bad {
        HashCode::from_bytes([7; 64])
    } else {
        h
    };
    let sig = s.key.sign(&ContractSig {
        h_contract_terms: signed,
    });
    (
        StatusCode::OK,
        Json(json!({ "contract_terms": contract, "sig": sig })),
    )
}

async fn pay(
    State(shop): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let req: PayRequest = serde_json::from_value(body.clone()).unwrap();
    let (deposit, exchange, key) = {
        let mut s = shop.lock().unwrap();
        s.calls.pay += 1;
        s.calls.pay_bodies.push(body);
        let (payto, salt, key) = (s.payto.clone(), s.salt, s.key.clone());
        let Some(order) = s.orders.get(&id) else {
            return refusal(StatusCode::NOT_FOUND, 2005, "unknown order");
        };
        let (_, contract, h) = order.contract.clone().unwrap();
        let ts = |f: &str| serde_json::from_value::<Timestamp>(contract[f].clone()).unwrap();
        let deposit = BatchDepositRequest {
            merchant_payto_uri: payto,
            wire_salt: salt,
            merchant_pub: key.public(),
            merchant_sig: None,
            h_contract_terms: h,
            wallet_data_hash: None,
            coins: req
                .coins
                .iter()
                .map(|c| BatchDepositCoin {
                    contribution: c.contribution,
                    denom_pub_hash: c.h_denom,
                    ub_sig: c.ub_sig.clone(),
                    coin_pub: c.coin_pub,
                    h_age_commitment: None,
                    coin_sig: c.coin_sig,
                })
                .collect(),
            policy: None,
            timestamp: ts("timestamp"),
            refund_deadline: Some(ts("refund_deadline")),
            wire_transfer_deadline: ts("wire_transfer_deadline"),
        };
        (deposit, s.exchange.clone(), key)
    };
    // The exchange checks every coin (and answers an identical replay the same).
    if let Err(e) = exchange.batch_deposit(&deposit).await {
        return refusal(
            StatusCode::BAD_GATEWAY,
            2170,
            &format!("the exchange refused the deposit: {e}"),
        );
    }
    if shop.lock().unwrap().fail_after_deposit {
        return refusal(StatusCode::BAD_GATEWAY, 2170, "lost the exchange's answer");
    }
    let sig = key.sign(&PaymentOk {
        h_contract_terms: deposit.h_contract_terms,
    });
    let mut s = shop.lock().unwrap();
    let order = s.orders.get_mut(&id).unwrap();
    order.paid = Some((
        sig,
        req.coins
            .iter()
            .map(|c| (c.coin_pub, c.contribution))
            .collect(),
    ));
    order.session = req.session_id.clone();
    (StatusCode::OK, Json(json!({ "sig": sig })))
}

async fn paid(
    State(shop): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<PaidRequest>,
) -> (StatusCode, Json<Value>) {
    let mut s = shop.lock().unwrap();
    s.calls.paid += 1;
    let order = s.orders.get_mut(&id).unwrap();
    match &order.paid {
        Some((sig, _)) if *sig == req.sig => {
            order.session = Some(req.session_id);
            (StatusCode::OK, Json(json!({ "refunded": false })))
        }
        _ => refusal(StatusCode::FORBIDDEN, 2157, "not the payment's signature"),
    }
}

async fn refund(
    State(shop): State<Shared>,
    Path(id): Path<String>,
    Json(_): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let (exchange, key, h, grants, coin) = {
        let mut s = shop.lock().unwrap();
        s.calls.refund += 1;
        let key = s.key.clone();
        let exchange = s.exchange.clone();
        let order = s.orders.get(&id).unwrap();
        let (_, _, h) = order.contract.clone().unwrap();
        let coin = order.paid.as_ref().unwrap().1[0].0;
        (exchange, key, h, order.refunds.clone(), coin)
    };
    if grants.is_empty() {
        return (StatusCode::NO_CONTENT, Json(Value::Null));
    }
    let mut refunds = Vec::new();
    let mut total = chf("0");
    for (rtid, amount) in grants {
        total = total.checked_add(&amount).unwrap();
        let answer = exchange
            .refund(
                &coin,
                &RefundRequest {
                    refund_amount: amount,
                    h_contract_terms: h,
                    merchant_pub: key.public(),
                    rtransaction_id: rtid,
                    merchant_sig: key.sign(&MerchantRefund {
                        h_contract_terms: h,
                        coin_pub: coin,
                        rtransaction_id: rtid,
                        refund_amount: amount,
                    }),
                },
            )
            .await
            .unwrap();
        refunds.push(json!({
            "type": "success", "exchange_status": 200, "exchange_sig": answer.exchange_sig,
            "exchange_pub": answer.exchange_pub, "rtransaction_id": rtid, "coin_pub": coin,
            "refund_amount": amount, "execution_time": Timestamp::now(),
        }));
    }
    (
        StatusCode::OK,
        Json(json!({ "refund_amount": total, "refunds": refunds, "merchant_pub": key.public() })),
    )
}

/// Refunds every coin of the abort request in full at the exchange (rtransaction id 0).
async fn abort(
    State(shop): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<cardcash_api::merchant::payments::AbortRequest>,
) -> (StatusCode, Json<Value>) {
    let (exchange, key, h) = {
        let s = shop.lock().unwrap();
        let (_, _, h) = s.orders[&id].contract.clone().unwrap();
        (s.exchange.clone(), s.key.clone(), h)
    };
    assert_eq!(req.h_contract, h);
    let mut refunds = Vec::new();
    for c in &req.coins {
        let answer = exchange
            .refund(
                &c.coin_pub,
                &RefundRequest {
                    refund_amount: c.contribution,
                    h_contract_terms: h,
                    merchant_pub: key.public(),
                    rtransaction_id: 0,
                    merchant_sig: key.sign(&MerchantRefund {
                        h_contract_terms: h,
                        coin_pub: c.coin_pub,
                        rtransaction_id: 0,
                        refund_amount: c.contribution,
                    }),
                },
            )
            .await
            .unwrap();
        refunds.push(json!({
            "type": "success", "exchange_status": 200, "exchange_sig": answer.exchange_sig,
            "exchange_pub": answer.exchange_pub,
        }));
    }
    (StatusCode::OK, Json(json!({ "refunds": refunds })))
}

/// Starts the stand-in merchant on 127.0.0.1 for the world's exchange.
async fn start_shop(world: &World, wallet: &Wallet) -> Shared {
    let exchanges = wallet.handle("listExchanges", json!({})).await.unwrap();
    let master_pub: EddsaPublicKey =
        serde_json::from_value(exchanges["exchanges"][0]["masterPub"].clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let payto = world
        .bank()
        .app()
        .ledger()
        .payto()
        .account_uri("payer", "Payer")
        .unwrap();
    let shop = Arc::new(Mutex::new(Shop {
        base: format!("http://{addr}/"),
        key: EddsaPrivateKey::generate().unwrap(),
        exchange: world.exchange().client(),
        exchange_url: world.exchange().base_url().to_string(),
        master_pub,
        payto,
        salt: WireSalt::from_bytes([3; 16]),
        orders: HashMap::new(),
        calls: Calls::default(),
        bad_signature: false,
        other_base_url: None,
        fail_after_deposit: false,
    }));
    let app = Router::new()
        .route("/orders/{id}/claim", post(claim))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/paid", post(paid))
        .route("/orders/{id}/refund", post(refund))
        .route("/orders/{id}/abort", post(abort))
        .with_state(shop.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    shop
}

/// Creates an order; returns its `taler+http://pay` URI in session `session`.
fn order(shop: &Shared, id: &str, amount: &str, fulfillment: &str, session: &str) -> String {
    let mut s = shop.lock().unwrap();
    s.orders.insert(
        id.to_owned(),
        Order {
            amount: chf(amount),
            max_fee: chf("0.01"),
            fulfillment_url: fulfillment.to_owned(),
            contract: None,
            paid: None,
            session: None,
            refunds: Vec::new(),
            auto_refund: None,
        },
    );
    let host = s.base.trim_start_matches("http://").trim_end_matches('/');
    format!("taler+http://pay/{host}/{id}/{session}")
}

/// The world of [`start_world`] without the card services, a wallet funded there (see
/// [`funded_wallet`]) and the stand-in merchant.
async fn shop_and_funded_wallet(engine: Engine) -> (World, TempDir, PathBuf, Wallet, Shared) {
    let world = start_world(engine, false).await;
    let (dir, path, wallet) = funded_wallet(&world).await;
    let shop = start_shop(&world, &wallet).await;
    (world, dir, path, wallet, shop)
}

engine_test!(
    /// The story of one purchase: CHF 3.50 paid from a 5 (the merchant covers its 0.01
    /// deposit fee up to max_fee), the 1.50 of change refreshed into 1.48 of coins (melt fee
    /// and one withdraw fee: 0.02); the same fulfillment URL in a new session is not paid
    /// again but shown with /paid; a refund of CHF 1 comes back as 0.98 of coins (refund fee
    /// 0.01, melt fee 0.01).
    async fn a_purchase_its_repurchase_and_its_refund(engine: Engine) {
        let (_world, _dir, _, wallet, shop) = shop_and_funded_wallet(engine).await;
        let uri = order(&shop, "O-1", "3.5", "https://shop.example/sonatas", "S1");

        let offer = prepare(&wallet, &uri).await;
        assert_eq!(offer["status"], "payment-possible", "{offer}");
        assert_eq!(amount(&offer["amountRaw"]), chf("3.5"));
        assert_eq!(amount(&offer["amountEffective"]), chf("3.5"));
        assert_eq!(amount(&offer["customerFees"]), chf("0"));
        assert_eq!(offer["summary"], "order O-1");
        // Scanning again claims nothing new.
        let again = prepare(&wallet, &uri).await;
        assert_eq!(again["transactionId"], offer["transactionId"]);
        assert_eq!(shop.lock().unwrap().calls.claim, 1);

        let paid = confirm(&wallet, &offer).await;
        assert_eq!(paid["type"], "done");
        assert_eq!(amount(&paid["amountEffective"]), chf("3.5"));
        assert_eq!(paid["fulfillmentUrl"], "https://shop.example/sonatas");
        assert_eq!(shop.lock().unwrap().calls.pay, 1);
        assert_eq!(
            shop.lock().unwrap().orders["O-1"].session.as_deref(),
            Some("S1")
        );
        // 19.93 − 5 + 1.48: the price and 0.02 of refresh fees left the wallet.
        assert_eq!(balance(&wallet).await, (chf("16.41"), chf("0")));
        let payment = first_transaction(&wallet, "payment").await;
        assert_eq!(payment["state"], "done");
        assert_eq!(payment["orderId"], "O-1");
        assert_eq!(amount(&payment["amountEffective"]), chf("3.5"));

        // The same fulfillment URL as another order, in another session: not paid again.
        let uri2 = order(&shop, "O-2", "3.5", "https://shop.example/sonatas", "S2");
        let repurchase = prepare(&wallet, &uri2).await;
        assert_eq!(repurchase["status"], "already-confirmed", "{repurchase}");
        assert_eq!(repurchase["paid"], true);
        assert_eq!(repurchase["alreadyPaidOrderId"], "O-1");
        assert_eq!(
            repurchase["alreadyPaidFulfillmentUrl"],
            "https://shop.example/sonatas"
        );
        {
            let s = shop.lock().unwrap();
            assert_eq!((s.calls.pay, s.calls.paid), (1, 1));
            assert_eq!(s.orders["O-1"].session.as_deref(), Some("S2"));
            assert!(s.orders["O-2"].paid.is_none());
        }
        assert_eq!(balance(&wallet).await.0, chf("16.41"));

        // A refund of CHF 1 of O-1.
        let none = wallet
            .handle(
                "startRefundQuery",
                json!({ "transactionId": offer["transactionId"] }),
            )
            .await
            .unwrap();
        assert_eq!(amount(&none["amountRefundGranted"]), chf("0"));
        shop.lock()
            .unwrap()
            .orders
            .get_mut("O-1")
            .unwrap()
            .refunds
            .push((1, chf("1")));
        let host = shop
            .lock()
            .unwrap()
            .base
            .trim_start_matches("http://")
            .to_owned();
        let refund_uri = format!("taler+http://refund/{host}O-1/");
        let picked = wallet
            .handle(
                "startRefundQueryForUri",
                json!({ "talerRefundUri": refund_uri }),
            )
            .await
            .unwrap_or_else(|e| panic!("refund: {}", e.to_json()));
        assert_eq!(amount(&picked["amountRefundGranted"]), chf("1"));
        assert_eq!(amount(&picked["amountEffectiveCredited"]), chf("0.99"));
        assert_eq!(amount(&picked["amountRefundGone"]), chf("0.01"));
        // 0.99 refreshed: 0.98 of fresh coins after the melt fee.
        assert_eq!(balance(&wallet).await, (chf("17.39"), chf("0")));
        // Asking again credits nothing twice.
        let again = wallet
            .handle(
                "startRefundQueryForUri",
                json!({ "talerRefundUri": refund_uri }),
            )
            .await
            .unwrap();
        assert_eq!(amount(&again["amountRefundGranted"]), chf("0"));
        assert_eq!(balance(&wallet).await, (chf("17.39"), chf("0")));
        let refund = first_transaction(&wallet, "refund").await;
        assert_eq!(amount(&refund["amountRaw"]), chf("1"));
        assert_eq!(amount(&refund["amountEffective"]), chf("0.99"));
    }
);

engine_test!(
    /// A wallet stopped after /pay was answered (its coins marked spent before the request
    /// left) resumes with the identical request: the exchange took the coin once, the
    /// balance is what one payment leaves.
    async fn a_payment_interrupted_after_the_merchant_answered_resumes_once(engine: Engine) {
        let (_world, _dir, path, wallet, shop) = shop_and_funded_wallet(engine).await;
        let uri = order(&shop, "O-7", "3.5", "https://shop.example/piano", "");
        let offer = prepare(&wallet, &uri).await;
        wallet.close();
        drop(wallet);

        let halting = open_wallet(
            &path,
            WalletConfig {
                halt_at: Some(Step::AfterPay),
                ..WalletConfig::default()
            },
        );
        let stopped = confirm_pay(&halting, &offer).await.unwrap_err();
        assert!(stopped.to_string().contains("AfterPay"), "{stopped}");
        // The coins left the balance before the request did.
        let b = halting.handle("getBalances", json!({})).await.unwrap();
        assert_eq!(amount(&b["balances"][0]["available"]), chf("14.93"));
        assert_eq!(amount(&b["balances"][0]["pendingOutgoing"]), chf("3.5"));
        // The 5's change, to be refreshed once the payment is confirmed.
        assert_eq!(amount(&b["balances"][0]["pendingIncoming"]), chf("1.5"));
        halting.close();
        drop(halting);

        let wallet = open_wallet(&path, WalletConfig::default());
        run_until_done(&wallet).await;
        {
            let s = shop.lock().unwrap();
            assert_eq!(s.calls.pay, 2);
            assert_eq!(
                s.calls.pay_bodies[0], s.calls.pay_bodies[1],
                "the same request"
            );
        }
        let payment = first_transaction(&wallet, "payment").await;
        assert_eq!(payment["state"], "done", "{payment}");
        assert_eq!(balance(&wallet).await, (chf("16.41"), chf("0")));
        // Confirming again pays nothing more.
        confirm(&wallet, &offer).await;
        assert_eq!(shop.lock().unwrap().calls.pay, 2);
    }
);

engine_test!(
    /// A contract whose signature does not verify, one naming another merchant, a payment
    /// beyond the balance and an order another wallet claimed are refused with their codes.
    async fn bad_contracts_and_insufficient_balance_are_refused(engine: Engine) {
        let (world, dir, _, wallet, shop) = shop_and_funded_wallet(engine).await;
        let refused = |e: cardcash_wallet::WalletError| e.to_json()["code"].as_u64().unwrap();

        shop.lock().unwrap().bad_signature = true;
        let uri = order(&shop, "B-1", "1", "https://shop.example/b1", "");
        let e = prepare_pay(&wallet, &uri).await.unwrap_err();
        assert_eq!(refused(e), 7019, "WALLET_CONTRACT_TERMS_SIGNATURE_INVALID");
        shop.lock().unwrap().bad_signature = false;

        shop.lock().unwrap().other_base_url = Some("http://elsewhere.example/".into());
        let uri = order(&shop, "B-2", "1", "https://shop.example/b2", "");
        let e = prepare_pay(&wallet, &uri).await.unwrap_err();
        assert_eq!(refused(e), 7018, "WALLET_CONTRACT_TERMS_BASE_URL_MISMATCH");
        shop.lock().unwrap().other_base_url = None;

        let uri = order(&shop, "B-3", "25", "https://shop.example/b3", "");
        let offer = prepare(&wallet, &uri).await;
        assert_eq!(offer["status"], "insufficient-balance");
        assert_eq!(amount(&offer["balanceAvailable"]), chf("19.93"));
        let e = confirm_pay(&wallet, &offer).await.unwrap_err();
        assert!(e.to_string().contains("insufficient balance"), "{e}");
        assert_eq!(balance(&wallet).await.0, chf("19.93"));

        // Another wallet claimed B-4 first.
        let uri = order(&shop, "B-4", "1", "https://shop.example/b4", "");
        let other = other_wallet(&world, &dir.path().join("other.sqlite3")).await;
        prepare(&other, &uri).await;
        let e = prepare_pay(&wallet, &uri).await.unwrap_err();
        assert_eq!(refused(e), 7014, "WALLET_ORDER_ALREADY_CLAIMED");
    }
);

engine_test!(
    /// A contract with an auto-refund period: run-until-done picks up a refund the merchant
    /// granted without the wallet being told.
    async fn refunds_are_picked_up_during_the_auto_refund_period(engine: Engine) {
        let (_world, _dir, _, wallet, shop) = shop_and_funded_wallet(engine).await;
        let uri = order(&shop, "A-1", "3.5", "https://shop.example/a1", "");
        shop.lock()
            .unwrap()
            .orders
            .get_mut("A-1")
            .unwrap()
            .auto_refund = Some(RelativeTime::from_secs(3600));
        let offer = prepare(&wallet, &uri).await;
        confirm(&wallet, &offer).await;
        assert_eq!(balance(&wallet).await.0, chf("16.41"));
        run_until_done(&wallet).await;
        assert_eq!(
            shop.lock().unwrap().calls.refund,
            1,
            "asked, nothing granted"
        );
        assert_eq!(balance(&wallet).await.0, chf("16.41"));
        shop.lock()
            .unwrap()
            .orders
            .get_mut("A-1")
            .unwrap()
            .refunds
            .push((1, chf("1")));
        run_until_done(&wallet).await;
        assert_eq!(balance(&wallet).await, (chf("17.39"), chf("0")));
    }
);

engine_test!(
    /// The merchant deposited the coins but never confirmed: the wallet aborts, the exchange
    /// refunds the 3.50 in full (the refund fee waived up to the deposit fee), and the 5 is
    /// whole again and refreshed: 19.93 − 5 + 4.95.
    async fn an_unconfirmed_payment_is_aborted_and_its_coins_come_back(engine: Engine) {
        let (_world, _dir, _, wallet, shop) = shop_and_funded_wallet(engine).await;
        let uri = order(&shop, "F-1", "3.5", "https://shop.example/f1", "");
        shop.lock().unwrap().fail_after_deposit = true;
        let offer = prepare(&wallet, &uri).await;
        let e = confirm_pay(&wallet, &offer).await.unwrap_err();
        assert!(e.to_string().contains("502"), "{e}");
        let b = wallet.handle("getBalances", json!({})).await.unwrap();
        assert_eq!(amount(&b["balances"][0]["pendingOutgoing"]), chf("3.5"));
        wallet
            .handle(
                "abortTransaction",
                json!({ "transactionId": offer["transactionId"] }),
            )
            .await
            .unwrap_or_else(|e| panic!("abort: {}", e.to_json()));
        assert_eq!(balance(&wallet).await, (chf("19.88"), chf("0")));
        let payment = first_transaction(&wallet, "payment").await;
        assert_eq!(payment["state"], "aborted");
        let b = wallet.handle("getBalances", json!({})).await.unwrap();
        assert_eq!(amount(&b["balances"][0]["pendingOutgoing"]), chf("0"));
    }
);

engine_test!(
    /// The same offer scanned in session S1, then (before paying) in S3: it is paid in S3.
    async fn an_offer_is_paid_in_the_session_it_was_last_scanned_in(engine: Engine) {
        let (_world, _dir, _, wallet, shop) = shop_and_funded_wallet(engine).await;
        let uri = order(&shop, "S-1", "1", "https://shop.example/s1", "S1");
        prepare(&wallet, &uri).await;
        let rescanned = uri.replace("/S1", "/S3");
        let offer = prepare(&wallet, &rescanned).await;
        confirm(&wallet, &offer).await;
        let s = shop.lock().unwrap();
        assert_eq!(s.orders["S-1"].session.as_deref(), Some("S3"));
        assert_eq!(s.calls.claim, 1);
    }
);
