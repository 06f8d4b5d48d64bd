//! Payments with coins of an exchange's legacy face (protocol v12–14, `<exchange>legacy/`), as
//! GNU Taler's wallets of 2022 make them: the merchant reads the face's `/keys` and `/wire`,
//! checks the coins' v12 deposit permissions, deposits each coin with
//! `POST /coins/$COIN_PUB/deposit`, verifies the v12 confirmations, and refunds through the
//! face's refund route.

use cardcash_api::merchant::PayRequest;
use cardcash_crypto::purpose::{PaymentOk, RefundConfirmation};
use cardcash_merchant::config::DEFAULT_INSTANCE;
use cardcash_testkit::coins;
use cardcash_testkit::legacy::{legacy_face, pay_request_v12};
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{EddsaPublicKey, EddsaSignature, ErrorCode};
use serde_json::json;

use crate::helpers::CURRENCY;
use crate::payments::{Answer, PayWorld, kudos, pay_world_with};

async fn pay(w: &PayWorld, order_id: &str, request: &PayRequest) -> Answer {
    w.post(
        &format!("orders/{order_id}/pay"),
        &serde_json::to_value(request).unwrap(),
    )
    .await
}

engine_test!(
    /// The merchant trusts only the legacy face. Its contracts name the face; a coin signed in
    /// the v23 layout is refused there (403, the coin untouched); the same coin signed in the
    /// v12 layout pays (the merchant's 1104 verifies, the exchange has spent the coin, the
    /// merchant holds the deposit with its fee), a replay gets the same signature, `/paid` in
    /// a new session answers 204 (as the 2022 wallets expect), and a
    /// refund picked up is executed at the face (its 1034 verifies, the coin regains the
    /// refund less the refund fee).
    async fn coins_of_the_legacy_face_pay_and_are_refunded(engine: Engine) {
        let w = pay_world_with(engine, |e| {
            e.base_url = legacy_face(&e.base_url);
            e.section = "merchant-exchange-legacy".into();
        })
        .await;
        let legacy = legacy_face(w.world.exchange().base_url());
        let coins = coins::withdraw(&w.world, &[kudos("5")]).await;
        let order = w.claimed_order("4.99", json!({}), Some(3600)).await;
        assert_eq!(order.terms["exchanges"][0]["url"], json!(legacy));
        assert_eq!(
            order.terms["auditors"],
            json!([]),
            "wallet-core 0.9 requires it"
        );

        // Signed as a v23 wallet signs: not a v12 deposit permission.
        let mut v23 = coins::pay_request(&order.contract, &[(&coins[0], kudos("5"))], None);
        v23.coins[0].exchange_url = legacy.clone();
        let refused = pay(&w, &order.order_id, &v23).await;
        assert_eq!(refused.status, 403, "{:?}", refused.body);
        assert_eq!(
            refused.code(),
            Some(u64::from(
                ErrorCode::MerchantPostOrdersIdPayCoinSignatureInvalid.code()
            ))
        );
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("5"));

        // Signed as wallet-core 0.9 signs.
        let request = pay_request_v12(
            &order.contract,
            &[(&coins[0], kudos("5"))],
            &legacy,
            Some("session-1"),
        );
        let paid = pay(&w, &order.order_id, &request).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let sig: EddsaSignature = serde_json::from_value(paid.body["sig"].clone()).unwrap();
        let h = order.contract.h_contract_terms;
        cardcash_crypto::verify(
            &w.key.public(),
            &sig,
            &PaymentOk {
                h_contract_terms: h,
            },
        )
        .expect("the payment confirmation verifies");
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("0"));
        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let stored = store
            .pay_order(instance.serial, &order.order_id)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.paid);
        let deposits = store.deposits(stored.serial).await.unwrap();
        assert_eq!(deposits.len(), 1);
        assert_eq!(deposits[0].deposit.exchange_url, legacy.to_string());
        assert_eq!(
            (
                deposits[0].deposit.amount_with_fee,
                deposits[0].deposit.deposit_fee
            ),
            (kudos("5"), kudos("0.01"))
        );
        let again = pay(&w, &order.order_id, &request).await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        assert_eq!(again.body["sig"], paid.body["sig"]);

        // The same wallet in a new browser session (a repurchase): /paid re-binds the order and
        // answers 204, what the 2022 wallet requires.
        let rebound = w
            .post(
                &format!("orders/{}/paid", order.order_id),
                &json!({"sig": sig, "h_contract": h, "session_id": "session-2"}),
            )
            .await;
        assert_eq!(rebound.status, 204, "{:?}", rebound.body);
        let status = w
            .get(&format!(
                "private/orders/{}?session_id=session-2",
                order.order_id
            ))
            .await;
        assert_eq!(status.body["order_status"], "paid", "{:?}", status.body);

        // A refund of 1, picked up as the 2022 wallet picks it up.
        let id = &order.order_id;
        let granted = w
            .post(
                &format!("private/orders/{id}/refund"),
                &json!({"refund": format!("{CURRENCY}:1"), "reason": "a torn page"}),
            )
            .await;
        assert_eq!(granted.status, 200, "{:?}", granted.body);
        let picked = w
            .post(&format!("orders/{id}/refund"), &json!({"h_contract": h}))
            .await;
        assert_eq!(picked.status, 200, "{:?}", picked.body);
        let refunds = picked.body["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!(refunds[0]["type"], "success", "{refunds:?}");
        assert_eq!(refunds[0]["exchange_status"], 200);
        let exchange_pub: EddsaPublicKey =
            serde_json::from_value(refunds[0]["exchange_pub"].clone()).unwrap();
        let exchange_sig: EddsaSignature =
            serde_json::from_value(refunds[0]["exchange_sig"].clone()).unwrap();
        cardcash_crypto::verify(
            &exchange_pub,
            &exchange_sig,
            &RefundConfirmation {
                h_contract_terms: h,
                coin_pub: coins[0].coin_pub,
                merchant_pub: w.key.public(),
                rtransaction_id: refunds[0]["rtransaction_id"].as_u64().unwrap(),
                refund_amount: kudos("1"),
            },
        )
        .expect("the exchange's refund confirmation verifies");
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("0.99"));
        w.shutdown().await;
    }
);
