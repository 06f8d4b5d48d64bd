//! Refresh: a coin melted into fresh coins (RSA and CS), the money adding up, and a wallet
//! stopped after the melt resuming without melting twice.

use cardcash_testkit::{Engine, engine_test};
use cardcash_wallet::{Step, Wallet, WalletConfig};
use serde_json::{Value, json};

use crate::helpers::*;

/// The refresh transaction of the wallet.
async fn the_refresh(wallet: &Wallet) -> Value {
    first_transaction(wallet, "refresh").await
}

/// After refreshing a 5 of the CHF 20 withdrawal: the old coin spent, 27 fresh coins
/// (4 × 1, 3 × 0.25 CS, 20 × 0.01) worth 4.95; 5 = 4.95 + 0.01 melt fee + 4 × 0.01 withdraw
/// fees.
async fn assert_five_refreshed(wallet: &Wallet, old: &str) {
    let t = the_refresh(wallet).await;
    assert_eq!(t["state"], "done", "{t}");
    assert_eq!(amount(&t["amountRaw"]), chf("5"));
    assert_eq!(amount(&t["amountEffective"]), chf("4.95"));
    let melt_and_withdraw_fees = chf("0.05");
    assert_eq!(
        amount(&t["amountEffective"])
            .checked_add(&melt_and_withdraw_fees)
            .unwrap(),
        amount(&t["amountRaw"])
    );
    let listed = wallet.handle("listCoins", json!({})).await.unwrap();
    let coins = listed["coins"].as_array().unwrap();
    let old_coin = coins.iter().find(|c| c["coinPub"] == old).unwrap();
    assert_eq!(old_coin["status"], "spent");
    let fresh: Vec<&Value> = coins
        .iter()
        .filter(|c| c["transactionId"] == t["transactionId"])
        .collect();
    assert_eq!(fresh.len(), 27);
    let count = |v: &str| fresh.iter().filter(|c| c["value"] == v).count();
    assert_eq!(
        (count("CHF:1"), count("CHF:0.25"), count("CHF:0.01")),
        (4, 3, 20)
    );
    assert_eq!(
        total(fresh.iter().map(|c| amount(&c["value"]))),
        chf("4.95")
    );
    assert_eq!(balance(wallet).await, (chf("19.88"), chf("0")));
}

engine_test!(
    /// A CHF 5 coin becomes CHF 4.95 of fresh coins; the spent coin cannot be refreshed again.
    async fn a_coin_is_refreshed_into_fresh_coins(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        withdraw_manually(&world, &wallet, "20").await;
        let old = a_fresh_coin(&wallet, "5").await;
        let answer = wallet
            .handle("forceRefresh", json!({ "coinPubList": [old] }))
            .await
            .unwrap();
        assert_eq!(answer["transactionIds"].as_array().unwrap().len(), 1);
        assert_five_refreshed(&wallet, &old).await;
        let again = wallet
            .handle("forceRefresh", json!({ "coinPubList": [old] }))
            .await
            .unwrap_err();
        assert_eq!(again.to_json()["code"], 26, "{}", again.to_json());
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Stopped after the exchange answered the melt: the coin is already spent in the wallet
    /// (marked before the melt left); reopened, the wallet sends the same melt, gets the same
    /// choice, reveals and has the fresh coins.
    async fn resumes_after_the_melt(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let old = {
            let wallet = open_wallet(
                &path,
                WalletConfig {
                    halt_at: Some(Step::AfterMelt),
                    ..WalletConfig::default()
                },
            );
            withdraw_manually(&world, &wallet, "20").await;
            let old = a_fresh_coin(&wallet, "5").await;
            let err = wallet
                .handle("forceRefresh", json!({ "coinPubList": [old] }))
                .await
                .unwrap_err();
            assert_eq!(err.to_json()["code"], 7015, "{}", err.to_json());
            assert_eq!(the_refresh(&wallet).await["state"], "melting");
            // The melted coin no longer counts; the fresh ones are on their way.
            assert_eq!(balance(&wallet).await, (chf("14.93"), chf("4.95")));
            wallet.close();
            old
        };
        let wallet = open_wallet(&path, WalletConfig::default());
        run_until_done(&wallet).await;
        assert_five_refreshed(&wallet, &old).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Coins whose denomination expires within the wallet's margin are refreshed by
    /// runUntilDone into lasting coins, and no new ones are withdrawn. (The 5s here can be
    /// spent for two hours; a wallet with no margin withdraws them, the same wallet opened with
    /// the default week of margin refreshes them.)
    async fn coins_about_to_expire_are_refreshed(engine: Engine) {
        let world = start_world_with(engine, false, |denoms| {
            let five = &mut denoms[0];
            five.duration_withdraw = cardcash_util::RelativeTime::from_secs(3600);
            five.duration_spend = cardcash_util::RelativeTime::from_secs(3600);
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        {
            let wallet = open_wallet(
                &path,
                WalletConfig {
                    expiry_margin: Some(cardcash_util::RelativeTime::ZERO),
                    ..WalletConfig::default()
                },
            );
            withdraw_manually(&world, &wallet, "20").await;
            assert_eq!(balance(&wallet).await, (chf("19.93"), chf("0")));
            wallet.close();
        }
        let wallet = open_wallet(&path, WalletConfig::default());
        // A new withdrawal would take no 5s.
        let plan = wallet
            .handle(
                "getWithdrawalDetailsForAmount",
                json!({
                    "exchangeBaseUrl": world.exchange().base_url().to_string(),
                    "amount": "CHF:20",
                }),
            )
            .await
            .unwrap();
        assert!(
            plan["coins"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["value"] != "CHF:5"),
            "{plan}"
        );
        run_until_done(&wallet).await;
        let coins = coins(&wallet).await;
        let fives: Vec<&String> = coins
            .iter()
            .filter(|(v, _)| *v == chf("5"))
            .map(|(_, s)| s)
            .collect();
        assert_eq!(fives, ["spent", "spent", "spent"]);
        // Each 5 became 4.95 (melt fee 0.01, four 1s with 0.01 each).
        assert_eq!(balance(&wallet).await, (chf("19.78"), chf("0")));
        let t = wallet.handle("getTransactions", json!({})).await.unwrap();
        let refreshes = t["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "refresh" && t["state"] == "done")
            .count();
        assert_eq!(refreshes, 3, "{t}");
        // Nothing more to do: another run refreshes nothing.
        run_until_done(&wallet).await;
        assert_eq!(balance(&wallet).await, (chf("19.78"), chf("0")));
        world.shutdown().await.unwrap();
    }
);
