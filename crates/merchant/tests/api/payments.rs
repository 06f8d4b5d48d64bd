//! Paying with real coins of a real exchange (world: bank + exchange), double payment, expired
//! orders, coins of an exchange the merchant does not trust, double spending, refunds (grant,
//! pickup, deadlines) and abort — the money checked at the merchant and at the exchange.

use cardcash_api::exchange::BatchDepositCoin;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{CoinHistoryRequest, PaymentOk, RefundConfirmation};
use cardcash_merchant::config::{DEFAULT_INSTANCE, TrustedExchange};
use cardcash_testkit::coins::{self, Coin, DepositContract};
use cardcash_testkit::{BankAccount, Engine, World, engine_test};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, PaytoUri, RelativeTime, Timestamp,
    WireSalt,
};
use serde_json::{Value, json};

use crate::helpers::{CURRENCY, Env, create_instance};

pub fn kudos(text: &str) -> Amount {
    format!("{CURRENCY}:{text}").parse().unwrap()
}

/// A world (bank with a `merchant` account, exchange) and a merchant backend trusting its
/// exchange, whose default instance is paid to the bank's `merchant` account.
pub struct PayWorld {
    pub world: World,
    pub env: Env,
    pub key: EddsaPrivateKey,
    pub payto: PaytoUri,
    pub salt: WireSalt,
    pub http: reqwest::Client,
}

/// A response's status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> Option<u64> {
        self.body["code"].as_u64()
    }
}

/// A claimed order: its id and its contract terms as the wallet got them.
pub struct Claimed {
    pub order_id: String,
    pub terms: Value,
    pub contract: DepositContract,
}

pub async fn pay_world(engine: Engine) -> PayWorld {
    pay_world_with(engine, |_| {}).await
}

/// [`pay_world`] with the merchant's view of the exchange adjusted (`adjust`).
pub async fn pay_world_with(engine: Engine, adjust: impl FnOnce(&mut TrustedExchange)) -> PayWorld {
    let world = cardcash_testkit::world(engine)
        .currency(CURRENCY.parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("merchant", "Merchant"))
        .exchange()
        .start()
        .await
        .unwrap();
    let exchange = TrustedExchange {
        section: "merchant-exchange-world".into(),
        base_url: world.exchange().base_url().clone(),
        master_pub: world.exchange().master().public(),
        currency: CURRENCY.parse().unwrap(),
    };
    let mut exchange = exchange;
    adjust(&mut exchange);
    let env = Env::with(engine, move |c| c.exchanges = vec![exchange]).await;
    let payto = world
        .bank()
        .app()
        .ledger()
        .payto()
        .account_uri("merchant", "Merchant")
        .unwrap()
        .to_string();
    let row = create_instance(&env, DEFAULT_INSTANCE, Some(&payto), |r| {
        r.default_pay_delay = RelativeTime::from_secs(3600);
        // No refunds unless an order asks for a refund delay.
        r.default_refund_delay = RelativeTime::from_secs(0);
        r.default_wire_transfer_delay = RelativeTime::from_secs(3600);
    })
    .await;
    let key = EddsaPrivateKey::from_bytes(&row.merchant_priv);
    let account = env
        .app
        .merchant()
        .store()
        .accounts(row.serial)
        .await
        .unwrap()
        .remove(0);
    PayWorld {
        world,
        env,
        key,
        payto: payto.parse().unwrap(),
        salt: account.salt,
        http: reqwest::Client::new(),
    }
}

impl PayWorld {
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.env.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        Answer {
            status,
            body: r.json().await.unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let (status, body) = self.env.get(path).await;
        Answer { status, body }
    }

    /// Creates an order (`order` fields beside amount and summary, `refund_delay` in seconds)
    /// and claims it as a wallet does.
    pub async fn claimed_order(
        &self,
        amount: &str,
        extra: Value,
        refund_delay: Option<u64>,
    ) -> Claimed {
        let mut order = json!({"amount": format!("{CURRENCY}:{amount}"), "summary": "Sonatas"});
        if let (Value::Object(o), Value::Object(extra)) = (&mut order, extra) {
            o.extend(extra);
        }
        let mut body = json!({ "order": order });
        if let Some(d) = refund_delay {
            body["refund_delay"] = json!({"d_us": d * 1_000_000});
        }
        let created = self.post("private/orders", &body).await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        let order_id = created.body["order_id"].as_str().unwrap().to_owned();
        let mut claim = json!({"nonce": EddsaPrivateKey::generate().unwrap().public()});
        if let Some(token) = created.body.get("token") {
            claim["token"] = token.clone();
        }
        let claimed = self.post(&format!("orders/{order_id}/claim"), &claim).await;
        assert_eq!(claimed.status, 200, "{:?}", claimed.body);
        let terms = claimed.body["contract_terms"].clone();
        let contract = DepositContract::from_contract_terms(&terms);
        Claimed {
            order_id,
            terms,
            contract,
        }
    }

    pub async fn pay(&self, order: &Claimed, coins: &[(&Coin, Amount)]) -> Answer {
        let request = coins::pay_request(&order.contract, coins, Some("session-1"));
        self.post(
            &format!("orders/{}/pay", order.order_id),
            &serde_json::to_value(request).unwrap(),
        )
        .await
    }

    /// What is left of `coin` at the exchange (its history, signed by the coin; a coin the
    /// exchange knows no transaction of is whole).
    pub async fn coin_balance(&self, coin: &Coin) -> Amount {
        let sig: EddsaSignature = coin.coin_priv.sign(&CoinHistoryRequest { start_off: 0 });
        match self
            .world
            .exchange()
            .client()
            .coin_history(&coin.coin_pub, 0, &sig)
            .await
        {
            Ok(history) => history.expect("the coin has a history").balance,
            Err(e) if e.is_not_found() => coin.denomination.value,
            Err(e) => panic!("coin history: {e}"),
        }
    }

    pub fn h_wire(&self) -> HashCode {
        cardcash_crypto::h_wire(&self.payto.to_string(), &self.salt)
    }

    pub async fn shutdown(self) {
        self.env.app.shutdown().await.unwrap();
        self.world.shutdown().await.unwrap();
    }
}

fn assert_refused(answer: &Answer, status: u16, code: ErrorCode) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(
        answer.code(),
        Some(u64::from(code.code())),
        "{:?}",
        answer.body
    );
}

engine_test!(
    /// A 5 and a 2 pay 6.98 (deposit fees 0.01 each, which the customer pays: max_fee 0).
    /// The merchant's signature covers the contract; the merchant holds both deposits, the
    /// exchange has spent both coins. The same payment again gets the same signature; other
    /// coins for the paid order are refused.
    async fn real_coins_pay_and_the_money_adds_up(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("5"), kudos("2"), kudos("1")]).await;
        // 7 − 0.02 of fees < 6.99: the coins do not pay it.
        let dear = w.claimed_order("6.99", json!({}), None).await;
        let short = w
            .pay(&dear, &[(&coins[0], kudos("5")), (&coins[1], kudos("2"))])
            .await;
        assert_refused(
            &short,
            406,
            ErrorCode::MerchantPostOrdersIdPayInsufficientDueToFees,
        );
        let order = w.claimed_order("6.98", json!({}), None).await;
        let paying = [(&coins[0], kudos("5")), (&coins[1], kudos("2"))];
        let paid = w.pay(&order, &paying).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let sig: EddsaSignature = serde_json::from_value(paid.body["sig"].clone()).unwrap();
        cardcash_crypto::verify(
            &w.key.public(),
            &sig,
            &PaymentOk {
                h_contract_terms: order.contract.h_contract_terms,
            },
        )
        .expect("the payment confirmation verifies");

        // The merchant's books: two deposits of 5 and 2 with fees 0.01 each.
        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let stored = store
            .pay_order(instance.serial, &order.order_id)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.paid);
        assert_eq!(stored.session_id, "session-1");
        let deposits = store.deposits(stored.serial).await.unwrap();
        let total = deposits.iter().fold(kudos("0"), |s, d| {
            s.checked_add(&d.deposit.amount_with_fee).unwrap()
        });
        let fees = deposits.iter().fold(kudos("0"), |s, d| {
            s.checked_add(&d.deposit.deposit_fee).unwrap()
        });
        assert_eq!(
            (deposits.len(), total, fees),
            (2, kudos("7"), kudos("0.02"))
        );
        let status = w.get(&format!("private/orders/{}", order.order_id)).await;
        assert_eq!(status.body["order_status"], "paid", "{:?}", status.body);
        // The exchange's view: both coins are spent.
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("0"));
        assert_eq!(w.coin_balance(&coins[1]).await, kudos("0"));

        // Replay: the same answer.
        let again = w.pay(&order, &paying).await;
        assert_eq!(again.status, 200, "{:?}", again.body);
        assert_eq!(again.body["sig"], paid.body["sig"]);
        // Another coin for the paid order: refused, and the coin stays whole.
        let other = w.pay(&order, &[(&coins[2], kudos("1"))]).await;
        assert_refused(&other, 409, ErrorCode::MerchantPostOrdersIdPayAlreadyPaid);
        assert_eq!(w.coin_balance(&coins[2]).await, kudos("1"));
        w.shutdown().await;
    }
);

engine_test!(
    /// After the pay deadline an order cannot be paid (410) and the coin is not spent; coins
    /// of an exchange the merchant does not trust are refused (400) before any deposit; a
    /// coin signature over another contract is refused (403).
    async fn expired_untrusted_and_forged_payments_are_refused(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("2")]).await;
        let soon = Timestamp::from_secs(Timestamp::now().as_secs() + 2);
        let order = w
            .claimed_order("1", json!({"pay_deadline": soon}), None)
            .await;

        // A coin claiming another exchange.
        let mut request = coins::pay_request(&order.contract, &[(&coins[0], kudos("2"))], None);
        request.coins[0].exchange_url = "https://exchange.elsewhere.example/".parse().unwrap();
        let untrusted = w
            .post(
                &format!("orders/{}/pay", order.order_id),
                &serde_json::to_value(&request).unwrap(),
            )
            .await;
        assert_refused(&untrusted, 400, ErrorCode::MerchantGenericExchangeUntrusted);

        // A deposit permission for another contract.
        let mut other = order.contract.clone();
        other.h_contract_terms = HashCode::from_bytes([7; 64]);
        let forged = coins::pay_request(&other, &[(&coins[0], kudos("2"))], None);
        let forged = w
            .post(
                &format!("orders/{}/pay", order.order_id),
                &serde_json::to_value(&forged).unwrap(),
            )
            .await;
        assert_refused(
            &forged,
            403,
            ErrorCode::MerchantPostOrdersIdPayCoinSignatureInvalid,
        );

        // Too late.
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            Timestamp::now().as_secs() > soon.as_secs()
        })
        .await;
        let late = w.pay(&order, &[(&coins[0], kudos("2"))]).await;
        assert_refused(&late, 410, ErrorCode::MerchantPostOrdersIdPayOfferExpired);
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("2"));
        w.shutdown().await;
    }
);

engine_test!(
    /// A coin already spent for one order cannot pay another: the exchange refuses it, the
    /// merchant answers 409 with the exchange's reply naming the coin, the order stays unpaid.
    async fn a_double_spent_coin_is_refused_with_the_exchanges_reply(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("2")]).await;
        let first = w.claimed_order("1.99", json!({}), None).await;
        let paid = w.pay(&first, &[(&coins[0], kudos("2"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let second = w.claimed_order("1.99", json!({}), None).await;
        let double = w.pay(&second, &[(&coins[0], kudos("2"))]).await;
        assert_refused(
            &double,
            409,
            ErrorCode::MerchantPostOrdersIdPayInsufficientFunds,
        );
        assert_eq!(
            double.body["exchange_code"],
            u64::from(ErrorCode::ExchangeGenericInsufficientFunds.code())
        );
        assert_eq!(
            double.body["exchange_reply"]["coin_pub"],
            coins[0].coin_pub.to_string()
        );
        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let order = store
            .pay_order(instance.serial, &second.order_id)
            .await
            .unwrap()
            .unwrap();
        assert!(!order.paid);
        assert!(store.deposits(order.serial).await.unwrap().is_empty());
        w.shutdown().await;
    }
);

engine_test!(
    /// Refunds raise the order's total refund: 1, then (0.5 changes nothing) the full 4.99;
    /// never more than paid. Each pickup executes the new refunds at the exchange, whose
    /// signatures verify, and the coin regains 1 − 0.01 and then 3.99 − 0.01 (refund fees).
    async fn partial_and_full_refunds_are_picked_up(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("5")]).await;
        let order = w.claimed_order("4.99", json!({}), Some(3600)).await;
        let id = order.order_id.clone();
        let paid = w.pay(&order, &[(&coins[0], kudos("5"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let h = order.contract.h_contract_terms;
        // Nothing granted yet: the pickup has nothing (204).
        let none = w
            .post(&format!("orders/{id}/refund"), &json!({"h_contract": h}))
            .await;
        assert_eq!(none.status, 204, "{:?}", none.body);

        let grant =
            |amount: &str| json!({"refund": format!("{CURRENCY}:{amount}"), "reason": "scratched"});
        let granted = w
            .post(&format!("private/orders/{id}/refund"), &grant("1"))
            .await;
        assert_eq!(granted.status, 200, "{:?}", granted.body);
        assert_eq!(granted.body["h_contract"], json!(h));
        let uri = granted.body["taler_refund_uri"].as_str().unwrap();
        assert!(uri.starts_with("taler+http://refund/"), "{uri}");
        assert!(uri.ends_with(&format!("/{id}/")), "{uri}");
        // Lower than what is granted: nothing changes.
        let lower = w
            .post(&format!("private/orders/{id}/refund"), &grant("0.5"))
            .await;
        assert_eq!(lower.status, 200, "{:?}", lower.body);
        // A wrong contract hash gets nothing.
        let wrong = w
            .post(
                &format!("orders/{id}/refund"),
                &json!({"h_contract": HashCode::from_bytes([1; 64])}),
            )
            .await;
        assert_refused(
            &wrong,
            403,
            ErrorCode::MerchantGenericContractHashDoesNotMatchOrder,
        );

        let picked = w
            .post(&format!("orders/{id}/refund"), &json!({"h_contract": h}))
            .await;
        assert_eq!(picked.status, 200, "{:?}", picked.body);
        assert_eq!(picked.body["refund_amount"], format!("{CURRENCY}:1"));
        assert_eq!(picked.body["merchant_pub"], json!(w.key.public()));
        let refunds = picked.body["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        verify_refund(&refunds[0], h, &w.key.public(), &coins[0].coin_pub, "1");
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("0.99"));

        // Up to the full price; more is refused.
        let more = w
            .post(&format!("private/orders/{id}/refund"), &grant("5"))
            .await;
        assert_refused(
            &more,
            409,
            ErrorCode::MerchantPrivatePostOrdersIdRefundInconsistentAmount,
        );
        let full = w
            .post(&format!("private/orders/{id}/refund"), &grant("4.99"))
            .await;
        assert_eq!(full.status, 200, "{:?}", full.body);
        let picked = w
            .post(&format!("orders/{id}/refund"), &json!({"h_contract": h}))
            .await;
        assert_eq!(picked.status, 200, "{:?}", picked.body);
        assert_eq!(picked.body["refund_amount"], format!("{CURRENCY}:4.99"));
        let refunds = picked.body["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), 2, "{refunds:?}");
        verify_refund(&refunds[1], h, &w.key.public(), &coins[0].coin_pub, "3.99");
        assert_eq!(refunds[1]["rtransaction_id"], 2);
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("4.97"));
        // Picking up again executes nothing new.
        let again = w
            .post(&format!("orders/{id}/refund"), &json!({"h_contract": h}))
            .await;
        assert_eq!(again.body, picked.body);
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("4.97"));
        w.shutdown().await;
    }
);

fn verify_refund(
    entry: &Value,
    h: HashCode,
    merchant_pub: &EddsaPublicKey,
    coin_pub: &EddsaPublicKey,
    amount: &str,
) {
    assert_eq!(entry["type"], "success", "{entry}");
    assert_eq!(entry["refund_amount"], format!("{CURRENCY}:{amount}"));
    let exchange_pub: EddsaPublicKey =
        serde_json::from_value(entry["exchange_pub"].clone()).unwrap();
    let exchange_sig: EddsaSignature =
        serde_json::from_value(entry["exchange_sig"].clone()).unwrap();
    cardcash_crypto::verify(
        &exchange_pub,
        &exchange_sig,
        &RefundConfirmation {
            h_contract_terms: h,
            coin_pub: *coin_pub,
            merchant_pub: *merchant_pub,
            rtransaction_id: entry["rtransaction_id"].as_u64().unwrap(),
            refund_amount: kudos(amount),
        },
    )
    .expect("the exchange's refund confirmation verifies");
}

engine_test!(
    /// Refund rules: an unpaid order cannot be refunded (409), a contract without refunds
    /// refuses them (403), and after the refund deadline they are gone (410).
    async fn refunds_outside_the_contract_are_refused(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("1"), kudos("1")]).await;
        let grant = json!({"refund": format!("{CURRENCY}:0.5"), "reason": "late"});

        let unpaid = w.claimed_order("0.99", json!({}), Some(3600)).await;
        let r = w
            .post(
                &format!("private/orders/{}/refund", unpaid.order_id),
                &grant,
            )
            .await;
        assert_refused(
            &r,
            409,
            ErrorCode::MerchantPrivatePostOrdersIdRefundOrderUnpaid,
        );

        let no_refunds = w.claimed_order("0.99", json!({}), None).await;
        let paid = w.pay(&no_refunds, &[(&coins[0], kudos("1"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let r = w
            .post(
                &format!("private/orders/{}/refund", no_refunds.order_id),
                &grant,
            )
            .await;
        assert_refused(
            &r,
            403,
            ErrorCode::MerchantPrivatePostOrdersIdRefundNotAllowedByContract,
        );

        let brief = w.claimed_order("0.99", json!({}), Some(2)).await;
        let paid = w.pay(&brief, &[(&coins[1], kudos("1"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let deadline: Timestamp =
            serde_json::from_value(brief.terms["refund_deadline"].clone()).unwrap();
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            Timestamp::now().as_secs() > deadline.as_secs()
        })
        .await;
        let r = w
            .post(&format!("private/orders/{}/refund", brief.order_id), &grant)
            .await;
        assert_eq!(r.status, 410, "{:?}", r.body);
        assert_eq!(w.coin_balance(&coins[1]).await, kudos("0"));
        w.shutdown().await;
    }
);

engine_test!(
    /// An abort gives back coins deposited for an unpaid order (as after a payment that failed
    /// half-way): the exchange refunds them (its signature checks out) and the coin regains
    /// its value less the refund fee; a coin never deposited is reported as the exchange's
    /// refusal; a wrong contract hash is refused (403), a paid order cannot be aborted (412).
    async fn abort_refunds_the_deposited_coins(engine: Engine) {
        let w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("2"), kudos("1")]).await;
        let order = w.claimed_order("1.99", json!({}), None).await;
        let h = order.contract.h_contract_terms;
        let wire_deadline: Timestamp =
            serde_json::from_value(order.terms["wire_transfer_deadline"].clone()).unwrap();
        // The deposit a failed payment left at the exchange.
        let coin = order.contract.clone();
        let permission = coins[0].pay_coin(&coin, kudos("2"));
        let client = w.world.exchange().client();
        client
            .batch_deposit(&cardcash_api::exchange::BatchDepositRequest {
                merchant_payto_uri: w.payto.clone(),
                wire_salt: w.salt,
                merchant_pub: w.key.public(),
                merchant_sig: None,
                h_contract_terms: h,
                wallet_data_hash: None,
                coins: vec![BatchDepositCoin {
                    contribution: permission.contribution,
                    denom_pub_hash: permission.h_denom,
                    ub_sig: permission.ub_sig.clone(),
                    coin_pub: permission.coin_pub,
                    h_age_commitment: None,
                    coin_sig: permission.coin_sig,
                }],
                policy: None,
                timestamp: order.contract.timestamp,
                refund_deadline: Some(order.contract.refund_deadline),
                wire_transfer_deadline: wire_deadline,
            })
            .await
            .unwrap();
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("0"));
        assert_eq!(w.h_wire(), order.contract.h_wire);

        let abort = |h: HashCode| {
            json!({"h_contract": h, "coins": [
                {"coin_pub": coins[0].coin_pub, "contribution": format!("{CURRENCY}:2"),
                 "exchange_url": coins[0].exchange_url},
                {"coin_pub": coins[1].coin_pub, "contribution": format!("{CURRENCY}:1"),
                 "exchange_url": coins[1].exchange_url},
            ]})
        };
        let wrong = w
            .post(
                &format!("orders/{}/abort", order.order_id),
                &abort(HashCode::from_bytes([3; 64])),
            )
            .await;
        assert_refused(
            &wrong,
            403,
            ErrorCode::MerchantPostOrdersIdAbortContractHashMissmatch,
        );
        let aborted = w
            .post(&format!("orders/{}/abort", order.order_id), &abort(h))
            .await;
        assert_eq!(aborted.status, 200, "{:?}", aborted.body);
        let refunds = aborted.body["refunds"].as_array().unwrap();
        assert_eq!(refunds[0]["type"], "success", "{refunds:?}");
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
                rtransaction_id: 0,
                refund_amount: kudos("2"),
            },
        )
        .expect("the exchange's refund confirmation verifies");
        assert_eq!(refunds[1]["type"], "failure", "{refunds:?}");
        assert_eq!(refunds[1]["exchange_status"], 404);
        // The whole deposit was refunded: the refund fee is waived up to the deposit fee.
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("2"));

        // A paid order cannot be aborted.
        let paid_order = w.claimed_order("0.99", json!({}), None).await;
        let paid = w.pay(&paid_order, &[(&coins[1], kudos("1"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let r = w
            .post(
                &format!("orders/{}/abort", paid_order.order_id),
                &json!({"h_contract": paid_order.contract.h_contract_terms, "coins": [
                    {"coin_pub": coins[1].coin_pub, "contribution": format!("{CURRENCY}:1"),
                     "exchange_url": coins[1].exchange_url}]}),
            )
            .await;
        assert_refused(
            &r,
            412,
            ErrorCode::MerchantPostOrdersIdAbortRefundRefusedPaymentComplete,
        );
        w.shutdown().await;
    }
);

engine_test!(
    /// An exchange that does not answer: the payment is refused with 502
    /// `MERCHANT_GENERIC_EXCHANGE_CONNECT_FAILURE` and the order stays unpaid.
    async fn an_unreachable_exchange_is_a_bad_gateway(engine: Engine) {
        let mut w = pay_world(engine).await;
        let coins = coins::withdraw(&w.world, &[kudos("1")]).await;
        let order = w.claimed_order("0.99", json!({}), None).await;
        w.world.take_exchange().unwrap().shutdown().await;
        let r = w.pay(&order, &[(&coins[0], kudos("1"))]).await;
        assert_refused(&r, 502, ErrorCode::MerchantGenericExchangeConnectFailure);
        let store = w.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let stored = store
            .pay_order(instance.serial, &order.order_id)
            .await
            .unwrap()
            .unwrap();
        assert!(!stored.paid);
        w.shutdown().await;
    }
);

engine_test!(
    /// Payments racing for one order: the same payment sent three times at once gets the same
    /// signature each time; two wallets paying with different coins at once — exactly one
    /// pays, the other is refused as already paid.
    async fn racing_payments_pay_an_order_once(engine: Engine) {
        let w = std::sync::Arc::new(pay_world(engine).await);
        let coins = coins::withdraw(&w.world, &[kudos("1"), kudos("1"), kudos("1")]).await;
        let order = w.claimed_order("0.99", json!({}), None).await;
        let request = serde_json::to_value(coins::pay_request(
            &order.contract,
            &[(&coins[0], kudos("1"))],
            None,
        ))
        .unwrap();
        let path = format!("orders/{}/pay", order.order_id);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (w, path, request) = (w.clone(), path.clone(), request.clone());
            tasks.spawn(async move { w.post(&path, &request).await });
        }
        let mut sigs = Vec::new();
        while let Some(answer) = tasks.join_next().await {
            let answer = answer.unwrap();
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            sigs.push(answer.body["sig"].clone());
        }
        assert!(sigs.iter().all(|s| *s == sigs[0]), "{sigs:?}");

        let order = w.claimed_order("0.99", json!({}), None).await;
        let path = format!("orders/{}/pay", order.order_id);
        for coin in &coins[1..] {
            let (w, path) = (w.clone(), path.clone());
            let request = serde_json::to_value(coins::pay_request(
                &order.contract,
                &[(coin, kudos("1"))],
                None,
            ))
            .unwrap();
            tasks.spawn(async move { w.post(&path, &request).await });
        }
        let mut statuses = Vec::new();
        while let Some(answer) = tasks.join_next().await {
            let answer = answer.unwrap();
            if answer.status != 200 {
                assert_refused(&answer, 409, ErrorCode::MerchantPostOrdersIdPayAlreadyPaid);
            }
            statuses.push(answer.status);
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409]);
        let w = std::sync::Arc::into_inner(w).expect("no task holds the world");
        w.shutdown().await;
    }
);

engine_test!(
    /// The merchant checks an exchange's keys against the master key it is configured with: an
    /// exchange signed by another master key cannot be paid with (502 KEYS_FAILURE), and no coin
    /// leaves for it.
    async fn an_exchange_with_another_master_key_is_not_trusted(engine: Engine) {
        let w = pay_world_with(engine, |e| {
            e.master_pub = EddsaPrivateKey::generate().unwrap().public();
        })
        .await;
        let coins = coins::withdraw(&w.world, &[kudos("1")]).await;
        let order = w.claimed_order("0.99", json!({}), None).await;
        let r = w.pay(&order, &[(&coins[0], kudos("1"))]).await;
        assert_refused(&r, 502, ErrorCode::MerchantGenericExchangeKeysFailure);
        assert_eq!(w.coin_balance(&coins[0]).await, kudos("1"));
        w.shutdown().await;
    }
);
