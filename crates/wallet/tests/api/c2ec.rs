//! The terminal's flow with the wallet on the other side: C2EC's `taler://withdraw` URI →
//! the wallet registers its reserve → card payment → the exchange credits the reserve → the
//! wallet withdraws and verifies 28 coins (RSA and CS).

use std::time::Duration;

use cardcash_api::bank_integration::WithdrawalStatus;
use cardcash_testkit::{Engine, engine_test};
use cardcash_wallet::{Notification, WalletConfig};
use serde_json::json;

use crate::helpers::*;

engine_test!(
    /// CHF 20 paid by card end as CHF 19.93 of coins and 0.07 of fees in the wallet.
    async fn bank_integrated_withdrawal_through_c2ec(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let mut notes = wallet.subscribe();
        let (uri, wopid) = terminal_setup(&world, "20").await;
        let exchange_url = world.exchange().base_url().to_string();

        let details = wallet
            .handle(
                "prepareBankIntegratedWithdrawal",
                json!({ "talerWithdrawUri": uri }),
            )
            .await
            .unwrap();
        assert_eq!(details["status"], "pending", "{details}");
        assert_eq!(amount(&details["amount"]), chf("20"));
        assert_eq!(details["transactionId"], serde_json::Value::Null);

        let accepted = wallet
            .handle(
                "acceptBankIntegratedWithdrawal",
                json!({ "talerWithdrawUri": uri, "exchangeBaseUrl": exchange_url }),
            )
            .await
            .unwrap();
        let id = accepted["transactionId"].as_str().unwrap().to_owned();
        // C2EC has the wallet's reserve, for its own exchange account.
        let status = world
            .c2ec()
            .integration()
            .withdrawal_operation(&wopid, None, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(status.status, WithdrawalStatus::Selected);
        let tx = only_transaction(&wallet).await;
        assert_eq!(tx["state"], "waiting-confirmation", "{tx}");
        assert_eq!(
            status.selected_reserve_pub.unwrap().to_string(),
            tx["reservePub"].as_str().unwrap()
        );
        // Until the coins are there they are pending.
        assert_eq!(balance(&wallet).await, (chf("0"), chf("19.93")));
        // Accepting the same operation again is the same transaction.
        let again = wallet
            .handle(
                "acceptBankIntegratedWithdrawal",
                json!({ "talerWithdrawUri": uri, "exchangeBaseUrl": exchange_url }),
            )
            .await
            .unwrap();
        assert_eq!(again["transactionId"], id.as_str());

        pay_by_card(&world, &wopid, "20").await;
        run_until_done(&wallet).await;
        assert_twenty_withdrawn(&world, &wallet).await;

        // The notification stream told the story.
        let mut states = Vec::new();
        let mut progress = 0;
        while let Ok(n) = notes.try_recv() {
            match n {
                Notification::TransactionStateTransition {
                    transaction_id,
                    new_state,
                    ..
                } if transaction_id == id => states.push(new_state),
                Notification::WithdrawProgress {
                    withdrawn, total, ..
                } => {
                    assert_eq!(total, 28);
                    progress = withdrawn;
                }
                _ => {}
            }
        }
        assert_eq!(
            states,
            [
                "pending-registration",
                "waiting-confirmation",
                "waiting-funds",
                "withdrawing",
                "done"
            ]
        );
        assert_eq!(progress, 28);
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// An operation the terminal aborted is refused with the official code, and nothing is
    /// stored.
    async fn an_aborted_operation_is_refused(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let (uri, wopid) = terminal_setup(&world, "20").await;
        world.c2ec().integration().abort(&wopid).await.unwrap();
        let err = wallet
            .handle(
                "acceptBankIntegratedWithdrawal",
                json!({
                    "talerWithdrawUri": uri,
                    "exchangeBaseUrl": world.exchange().base_url().to_string(),
                }),
            )
            .await
            .unwrap_err()
            .to_json();
        assert_eq!(err["code"], 7012, "{err}");
        let t = wallet.handle("getTransactions", json!({})).await.unwrap();
        assert_eq!(t["transactions"], json!([]));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A manual withdrawal still waiting for its wire transfer does not hold up a card
    /// withdrawal in the same run.
    async fn a_waiting_withdrawal_does_not_hold_up_another(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let exchange_url = world.exchange().base_url().to_string();
        wallet
            .handle(
                "acceptManualWithdrawal",
                json!({ "exchangeBaseUrl": exchange_url, "amount": "CHF:3" }),
            )
            .await
            .unwrap();
        let (uri, wopid) = terminal_setup(&world, "20").await;
        let accepted = wallet
            .handle(
                "acceptBankIntegratedWithdrawal",
                json!({ "talerWithdrawUri": uri, "exchangeBaseUrl": exchange_url }),
            )
            .await
            .unwrap();
        let id = accepted["transactionId"].as_str().unwrap().to_owned();
        let runner = {
            let wallet = wallet.clone();
            tokio::spawn(async move { wallet.run_until_done(None).await })
        };
        pay_by_card(&world, &wopid, "20").await;
        let state_of = async |id: &str| {
            let t = wallet.handle("getTransactions", json!({})).await.unwrap();
            t["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["transactionId"] == id)
                .map(|t| t["state"].as_str().unwrap().to_owned())
                .unwrap()
        };
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            state_of(&id).await == "done"
        })
        .await;
        assert!(
            !runner.is_finished(),
            "the manual withdrawal is still waiting"
        );
        runner.abort();
        let (available, pending) = balance(&wallet).await;
        assert_eq!(available, chf("19.93"));
        // 3 = 2 × 1.01 + 3 × 0.25 + 23 × 0.01 → 2.98 of coins pending.
        assert_eq!(pending, chf("2.98"));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Two tasks of one wallet working on the same withdrawal: one works, the other waits for
    /// it, and both see the withdrawal done (one set of coins).
    async fn two_workers_on_one_withdrawal(engine: Engine) {
        let world = start_world(engine, true).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let (uri, wopid) = terminal_setup(&world, "20").await;
        let accepted = wallet
            .handle(
                "acceptBankIntegratedWithdrawal",
                json!({
                    "talerWithdrawUri": uri,
                    "exchangeBaseUrl": world.exchange().base_url().to_string(),
                }),
            )
            .await
            .unwrap();
        let id = accepted["transactionId"].as_str().unwrap().to_owned();
        pay_by_card(&world, &wopid, "20").await;
        let deadline = Some(tokio::time::Instant::now() + Duration::from_secs(120));
        let (a, b) = tokio::join!(
            wallet.process_withdrawal(&id, deadline),
            wallet.process_withdrawal(&id, deadline)
        );
        assert_eq!(a.unwrap().as_str(), "done");
        assert_eq!(b.unwrap().as_str(), "done");
        assert_twenty_withdrawn(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);
