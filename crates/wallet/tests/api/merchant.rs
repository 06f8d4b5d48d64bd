//! Payments at the real merchant backend of the world (order creation, claim, pay with
//! `/batch-deposit` at the real exchange, `/paid`, refunds), reached over HTTP like any wallet
//! reaches a shop: the order is created through the merchant's private API with the world's
//! admin token, the wallet gets its `taler://pay` URI from the order status, as a shop's page
//! shows it.

use cardcash_client::{Auth, Endpoint};
use cardcash_testkit::{BankAccount, Engine, World, engine_test};
use cardcash_util::{BaseUrl, RelativeTime};
use cardcash_wallet::{Step, WalletConfig};
use serde_json::{Value, json};

use crate::helpers::*;

/// The world of [`start_world`] (denominations 5 and 1 with 0.01 fees, 0.25 CS and 0.01
/// without) with the merchant backend.
async fn start_world_with_merchant(engine: Engine) -> World {
    cardcash_testkit::world(engine)
        .currency("CHF".parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("payer", "Payer"))
        .configure_exchange(|c| set_denominations(&mut c.denominations))
        .merchant()
        .start()
        .await
        .unwrap()
}

/// The merchant's private API with the admin token.
fn private(world: &World) -> Endpoint {
    let m = world.merchant();
    Endpoint::new(
        m.http().clone(),
        "the merchant",
        m.base_url().clone(),
        Auth::bearer(m.admin_token()),
    )
}

/// Creates an order of CHF `amount` (the merchant covering 0.01 of deposit fees, refunds
/// allowed for a day) and returns its id and the `taler://pay` URI in `session`.
async fn create_order(
    world: &World,
    amount: &str,
    fulfillment: &str,
    session: &str,
) -> (String, String) {
    let api = private(world);
    let created: Value = api
        .post(&["private", "orders"])
        .json(&json!({
            "order": {
                "amount": format!("CHF:{amount}"),
                "summary": "Beethoven Sonatas",
                "fulfillment_url": fulfillment,
                "max_fee": "CHF:0.01",
            },
            "refund_delay": RelativeTime::from_secs(24 * 3600),
        }))
        .json_response()
        .await
        .unwrap();
    let id = created["order_id"].as_str().unwrap().to_owned();
    let status = order_status(world, &id, session).await;
    assert_eq!(status["order_status"], "unpaid", "{status}");
    (id, status["taler_pay_uri"].as_str().unwrap().to_owned())
}

/// `GET /private/orders/$ID?session_id=…`.
async fn order_status(world: &World, id: &str, session: &str) -> Value {
    private(world)
        .get(&["private", "orders", id])
        .query("session_id", session)
        .json_response()
        .await
        .unwrap()
}

engine_test!(
    /// The Sonatas bought at the real merchant: CHF 3.50 from a 5 (the deposit fee is the
    /// merchant's, up to max_fee), the change refreshed (19.93 → 16.41: the price and 0.02 of
    /// refresh fees), the merchant's order paid in session S1; the same fulfillment URL
    /// ordered again in session S2 is not paid but re-bound with /paid (the new order stays
    /// unpaid, the old one is paid in S2); a refund of CHF 1 granted by the merchant comes
    /// back as 0.98 of coins.
    async fn a_purchase_at_the_merchant_its_repurchase_and_refund(engine: Engine) {
        let world = start_world_with_merchant(engine).await;
        let (_dir, _, wallet) = funded_wallet(&world).await;
        let fulfillment = "https://shop.example/sonatas";
        let (id, uri) = create_order(&world, "3.5", fulfillment, "S1").await;

        let offer = prepare(&wallet, &uri).await;
        assert_eq!(offer["status"], "payment-possible", "{offer}");
        assert_eq!(offer["orderId"], id);
        assert_eq!(amount(&offer["amountRaw"]), chf("3.5"));
        assert_eq!(amount(&offer["amountEffective"]), chf("3.5"));
        assert_eq!(
            BaseUrl::parse(offer["merchantBaseUrl"].as_str().unwrap()).unwrap(),
            *world.merchant().base_url()
        );
        let paid = confirm(&wallet, &offer).await;
        assert_eq!(paid["type"], "done");
        assert_eq!(amount(&paid["amountEffective"]), chf("3.5"));
        assert_eq!(balance(&wallet).await, (chf("16.41"), chf("0")));
        let status = order_status(&world, &id, "S1").await;
        assert_eq!(status["order_status"], "paid", "{status}");

        // Another order for the same fulfillment URL in a new browser session.
        let (id2, uri2) = create_order(&world, "3.5", fulfillment, "S2").await;
        let again = prepare(&wallet, &uri2).await;
        assert_eq!(again["status"], "already-confirmed", "{again}");
        assert_eq!(again["alreadyPaidOrderId"], id);
        assert_eq!(again["alreadyPaidFulfillmentUrl"], fulfillment);
        assert_eq!(balance(&wallet).await.0, chf("16.41"));
        let old = order_status(&world, &id, "S2").await;
        assert_eq!(old["order_status"], "paid", "re-bound to S2: {old}");
        let new = order_status(&world, &id2, "S2").await;
        assert_ne!(new["order_status"], "paid", "{new}");

        // The merchant refunds CHF 1 of the first order.
        let granted: Value = private(&world)
            .post(&["private", "orders", &id, "refund"])
            .json(&json!({ "refund": "CHF:1", "reason": "scratched page" }))
            .json_response()
            .await
            .unwrap();
        let refund_uri = granted["taler_refund_uri"].as_str().unwrap();
        let picked = wallet
            .handle(
                "startRefundQueryForUri",
                json!({ "talerRefundUri": refund_uri }),
            )
            .await
            .unwrap_or_else(|e| panic!("refund: {}", e.to_json()));
        assert_eq!(amount(&picked["amountRefundGranted"]), chf("1"), "{picked}");
        assert_eq!(amount(&picked["amountEffectiveCredited"]), chf("0.99"));
        assert_eq!(balance(&wallet).await, (chf("17.39"), chf("0")));
        let t = wallet.handle("getTransactions", json!({})).await.unwrap();
        let kinds: Vec<&str> = t["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["type"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"refund") && kinds.contains(&"payment"),
            "{t}"
        );
    }
);

engine_test!(
    /// Stopped after the merchant answered /pay (the coins marked spent before it left), the
    /// wallet resumes with the identical request: the merchant answers it as paid, the coins
    /// were spent once, and the balance is that of one payment.
    async fn a_payment_stopped_after_the_merchant_answered_resumes(engine: Engine) {
        let world = start_world_with_merchant(engine).await;
        let (_dir, path, wallet) = funded_wallet(&world).await;
        let (id, uri) = create_order(&world, "3.5", "https://shop.example/piano", "").await;
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
        confirm_pay(&halting, &offer).await.unwrap_err();
        halting.close();
        drop(halting);
        // The merchant has the payment; the wallet does not know yet.
        assert_eq!(order_status(&world, &id, "").await["order_status"], "paid");

        let wallet = open_wallet(&path, WalletConfig::default());
        run_until_done(&wallet).await;
        assert_eq!(balance(&wallet).await, (chf("16.41"), chf("0")));
        let coins = wallet.handle("listCoins", json!({})).await.unwrap();
        let spent_fives = coins["coins"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["value"] == "CHF:5" && c["status"] == "spent")
            .count();
        assert_eq!(spent_fives, 1);
    }
);

engine_test!(
    /// An order claimed by another wallet is refused to this one with
    /// WALLET_ORDER_ALREADY_CLAIMED; an order above the balance is insufficient.
    async fn claimed_elsewhere_and_insufficient_balance(engine: Engine) {
        let world = start_world_with_merchant(engine).await;
        let (dir, _, wallet) = funded_wallet(&world).await;
        let (_, uri) = create_order(&world, "1", "https://shop.example/one", "").await;
        let other = other_wallet(&world, &dir.path().join("other.sqlite3")).await;
        prepare(&other, &uri).await;
        let e = prepare_pay(&wallet, &uri).await.unwrap_err();
        assert_eq!(e.to_json()["code"], 7014, "{}", e.to_json());

        let (_, uri) = create_order(&world, "25", "https://shop.example/car", "").await;
        let offer = prepare(&wallet, &uri).await;
        assert_eq!(offer["status"], "insufficient-balance");
        assert!(confirm_pay(&wallet, &offer).await.is_err());
        assert_eq!(balance(&wallet).await.0, chf("19.93"));
    }
);

engine_test!(
    /// Stopped after the merchant answered the claim (the nonce stored before it left), the
    /// wallet claims again with the same nonce: the merchant answers the same contract, not
    /// "claimed by another wallet", and the order is paid.
    async fn a_claim_stopped_after_the_answer_is_repeated_with_its_nonce(engine: Engine) {
        let world = start_world_with_merchant(engine).await;
        let (_dir, path, wallet) = funded_wallet(&world).await;
        wallet.close();
        drop(wallet);
        let (id, uri) = create_order(&world, "1", "https://shop.example/claim", "").await;
        let halting = open_wallet(
            &path,
            WalletConfig {
                halt_at: Some(Step::AfterClaim),
                ..WalletConfig::default()
            },
        );
        let e = prepare_pay(&halting, &uri).await.unwrap_err();
        assert!(e.to_string().contains("AfterClaim"), "{e}");
        halting.close();
        drop(halting);
        assert_eq!(
            order_status(&world, &id, "").await["order_status"],
            "claimed"
        );

        let wallet = open_wallet(&path, WalletConfig::default());
        let offer = prepare(&wallet, &uri).await;
        assert_eq!(offer["status"], "payment-possible", "{offer}");
        confirm(&wallet, &offer).await;
        assert_eq!(order_status(&world, &id, "").await["order_status"], "paid");
    }
);

engine_test!(
    /// The wallet's client reads the public order status: 402 with the pay URI before the
    /// payment (with the claim token), 200 paid after it (with the contract hash).
    async fn the_public_order_status_before_and_after_the_payment(engine: Engine) {
        use cardcash_client::{MerchantWalletClient, OrderStatusQuery, PublicOrderStatus};
        let world = start_world_with_merchant(engine).await;
        let (_dir, _, wallet) = funded_wallet(&world).await;
        let (id, uri) = create_order(&world, "1", "https://shop.example/status", "").await;
        let Ok(cardcash_util::TalerUri::Pay { claim_token, .. }) = uri.parse() else {
            panic!("{uri}");
        };
        let client = MerchantWalletClient::new(world.merchant().base_url().clone()).unwrap();
        let unpaid = client
            .order_status(
                &id,
                &OrderStatusQuery {
                    token: claim_token,
                    ..OrderStatusQuery::default()
                },
            )
            .await
            .unwrap();
        let PublicOrderStatus::Unpaid(unpaid) = unpaid else {
            panic!("{unpaid:?}");
        };
        assert!(unpaid.taler_pay_uri.contains(&id), "{unpaid:?}");
        let offer = prepare(&wallet, &uri).await;
        confirm(&wallet, &offer).await;
        let h_contract = offer["contractTermsHash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let paid = client
            .order_status(
                &id,
                &OrderStatusQuery {
                    h_contract: Some(h_contract),
                    ..OrderStatusQuery::default()
                },
            )
            .await
            .unwrap();
        let PublicOrderStatus::Paid(paid) = paid else {
            panic!("{paid:?}");
        };
        assert!(!paid.refunded);
    }
);
