//! A wallet stopped in the middle of a withdrawal (a test hook stands in for a crash) and
//! opened again from its file resumes: the same reserve, the same coins, no second withdrawal.

use std::time::Duration;

use cardcash_testkit::{Engine, engine_test};
use cardcash_wallet::{Step, WalletConfig};
use serde_json::json;

use crate::helpers::*;

engine_test!(
    /// Stopped right after registering the reserve with C2EC: reopened, the wallet waits for
    /// the card payment and withdraws from that reserve.
    async fn resumes_after_registration(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let (uri, wopid) = terminal_setup(&world, "20").await;
        let args = json!({
            "talerWithdrawUri": uri,
            "exchangeBaseUrl": world.exchange().base_url().to_string(),
        });
        {
            let wallet = open_wallet(
                &path,
                WalletConfig {
                    halt_at: Some(Step::AfterRegistration),
                    ..WalletConfig::default()
                },
            );
            let err = wallet
                .handle("acceptBankIntegratedWithdrawal", args.clone())
                .await
                .unwrap_err();
            assert_eq!(err.to_json()["code"], 7015, "{}", err.to_json());
            wallet.close();
        }
        let wallet = open_wallet(&path, WalletConfig::default());
        let tx = only_transaction(&wallet).await;
        assert_eq!(tx["state"], "waiting-confirmation", "{tx}");
        let status = world
            .c2ec()
            .integration()
            .withdrawal_operation(&wopid, None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            status.selected_reserve_pub.unwrap().to_string(),
            tx["reservePub"].as_str().unwrap()
        );
        // Accepting again after the restart is the same transaction.
        let again = wallet
            .handle("acceptBankIntegratedWithdrawal", args)
            .await
            .unwrap();
        assert_eq!(again["transactionId"], tx["transactionId"]);

        pay_by_card(&world, &wopid, "20").await;
        run_until_done(&wallet).await;
        assert_twenty_withdrawn(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Stopped after the exchange signed the coins but before the wallet stored them: the
    /// reserve is empty at the exchange. Reopened, the wallet sends the same batch again and
    /// gets the same signatures (a different request would find the reserve empty).
    async fn resumes_after_the_withdraw_request(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let (uri, wopid) = terminal_setup(&world, "20").await;
        let reserve_pub = {
            let wallet = open_wallet(
                &path,
                WalletConfig {
                    halt_at: Some(Step::AfterWithdrawRequest),
                    ..WalletConfig::default()
                },
            );
            wallet
                .handle(
                    "acceptBankIntegratedWithdrawal",
                    json!({
                        "talerWithdrawUri": uri,
                        "exchangeBaseUrl": world.exchange().base_url().to_string(),
                    }),
                )
                .await
                .unwrap();
            pay_by_card(&world, &wopid, "20").await;
            let err = wallet
                .handle("runUntilDone", json!({ "timeoutMs": 120_000 }))
                .await
                .unwrap_err();
            assert_eq!(err.to_json()["code"], 7015, "{}", err.to_json());
            let tx = only_transaction(&wallet).await;
            assert_eq!(tx["state"], "withdrawing", "{tx}");
            assert!(coins(&wallet).await.is_empty());
            wallet.close();
            tx["reservePub"].as_str().unwrap().parse().unwrap()
        };
        // The exchange did withdraw (the first batch: the 5s, 1s, quarters and cents all fit
        // in one batch of 28).
        let left = world
            .exchange()
            .client()
            .reserve(&reserve_pub, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(left.balance, chf("0"));

        let wallet = open_wallet(&path, WalletConfig::default());
        assert_eq!(balance(&wallet).await, (chf("0"), chf("19.93")));
        run_until_done(&wallet).await;
        assert_twenty_withdrawn(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);
