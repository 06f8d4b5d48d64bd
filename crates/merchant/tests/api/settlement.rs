//! Settlement: after the wire deadline the exchange aggregates the deposits of paid orders and
//! wires them to the merchant's bank account; the merchant's worker learns which transfer paid
//! each deposit, marks the orders wired and lists the transfers with the fees per order.

use cardcash_merchant::config::DEFAULT_INSTANCE;
use cardcash_testkit::coins;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{Amount, Timestamp};
use serde_json::{Value, json};

use crate::payments::{kudos, pay_world};

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
