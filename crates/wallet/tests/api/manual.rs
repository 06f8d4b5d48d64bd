//! A manual withdrawal: the wallet creates a reserve and names the exchange's account and the
//! subject; the customer wires the money through the bank; the wallet withdraws.

use cardcash_api::corebank::CreateTransactionRequest;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::PaytoUri;
use cardcash_wallet::WalletConfig;
use serde_json::json;

use crate::helpers::*;

engine_test!(
    /// CHF 20 wired to the exchange's bank account with the reserve key as subject.
    async fn manual_withdrawal_through_the_bank(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let exchange_url = world.exchange().base_url().to_string();
        // What the wallet will get, before it commits to anything.
        let plan = wallet
            .handle(
                "getWithdrawalDetailsForAmount",
                json!({ "exchangeBaseUrl": exchange_url, "amount": "CHF:20" }),
            )
            .await
            .unwrap();
        assert_eq!(amount(&plan["amountEffective"]), chf("19.93"), "{plan}");
        assert_eq!(amount(&plan["withdrawFees"]), chf("0.07"));
        assert_eq!(amount(&plan["leftInReserve"]), chf("0"));
        let coins: Vec<(String, u64, String)> = plan["coins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["value"].as_str().unwrap().to_owned(),
                    c["count"].as_u64().unwrap(),
                    c["cipher"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("CHF:5", 3, "RSA"),
            ("CHF:1", 4, "RSA"),
            ("CHF:0.25", 3, "CS"),
            ("CHF:0.01", 18, "RSA"),
        ];
        assert_eq!(
            coins,
            expected.map(|(v, n, c)| (v.to_owned(), n, c.to_owned()))
        );
        let created = wallet
            .handle(
                "acceptManualWithdrawal",
                json!({ "exchangeBaseUrl": exchange_url, "amount": "CHF:20" }),
            )
            .await
            .unwrap();
        let reserve_pub = created["reservePub"].as_str().unwrap();
        let bank = world.bank();
        let exchange_account = bank
            .app()
            .ledger()
            .payto()
            .account_uri("exchange", "Exchange")
            .unwrap();
        let target: PaytoUri = created["exchangePaytoUris"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().parse::<PaytoUri>().unwrap())
            .find(|p| p.same_account(&exchange_account))
            .unwrap_or_else(|| panic!("the bank account is not offered: {created}"));
        assert_eq!(target.message(), Some(reserve_pub));
        assert_eq!(target.amount(), Some(chf("20")));
        let tx = only_transaction(&wallet).await;
        assert_eq!(tx["state"], "waiting-funds", "{tx}");
        assert_eq!(tx["withdrawalType"], "manual");

        // The payer gets money and wires it exactly as the wallet said.
        let admin = bank.admin();
        let payer = bank
            .app()
            .ledger()
            .payto()
            .account_uri("payer", "Payer")
            .unwrap();
        admin
            .create_transaction(
                "admin",
                &CreateTransactionRequest {
                    payto_uri: payer.with_param("message", "pocket money"),
                    amount: Some(chf("50")),
                    request_uid: None,
                },
            )
            .await
            .unwrap();
        admin
            .create_transaction(
                "payer",
                &CreateTransactionRequest {
                    payto_uri: target,
                    amount: None,
                    request_uid: None,
                },
            )
            .await
            .unwrap();

        run_until_done(&wallet).await;
        assert_twenty_withdrawn(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Amounts no coin fits, foreign currencies and unknown operations are refused with
    /// Taler codes.
    async fn refusals_carry_taler_codes(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let url = world.exchange().base_url().to_string();
        let code = async |op: &str, args| {
            wallet.handle(op, args).await.unwrap_err().to_json()["code"].clone()
        };
        assert_eq!(
            code(
                "acceptManualWithdrawal",
                json!({ "exchangeBaseUrl": url, "amount": "CHF:0.001" })
            )
            .await,
            7006
        );
        assert_eq!(
            code(
                "acceptManualWithdrawal",
                json!({ "exchangeBaseUrl": url, "amount": "EUR:5" })
            )
            .await,
            26
        );
        assert_eq!(
            code("acceptManualWithdrawal", json!({ "amount": "CHF:5" })).await,
            26
        );
        assert_eq!(code("pay", json!({})).await, 7007);
        // The exchange was added on the way, with its terms' status.
        let listed = wallet.handle("listExchanges", json!({})).await.unwrap();
        assert_eq!(
            listed["exchanges"][0]["exchangeBaseUrl"],
            url.as_str(),
            "{listed}"
        );
        assert_eq!(listed["exchanges"][0]["currency"], "CHF");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A `taler://withdraw-exchange` URI: the exchange it names (with its pinned master key)
    /// and the amount; a URI pinning another master key is refused before the exchange is
    /// stored.
    async fn withdraw_exchange_uris_pin_the_master_key(engine: Engine) {
        use cardcash_util::TalerUri;
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let base = world.exchange().base_url().clone();
        let master = world
            .exchange()
            .client()
            .keys()
            .await
            .unwrap()
            .master_public_key;
        let uri = |pinned| {
            TalerUri::WithdrawExchange {
                exchange_base: base.clone(),
                exchange_pub: Some(pinned),
                amount: Some(chf("20")),
            }
            .to_string()
        };
        let other = cardcash_crypto::EddsaPrivateKey::generate()
            .unwrap()
            .public();
        let err = wallet
            .handle("prepareWithdrawExchange", json!({ "talerUri": uri(other) }))
            .await
            .unwrap_err()
            .to_json();
        assert_eq!(err["code"], 7002, "{err}");
        let listed = wallet.handle("listExchanges", json!({})).await.unwrap();
        assert_eq!(listed["exchanges"], json!([]));

        let prepared = wallet
            .handle(
                "prepareWithdrawExchange",
                json!({ "talerUri": uri(master) }),
            )
            .await
            .unwrap();
        assert_eq!(prepared["exchangeBaseUrl"], base.to_string());
        assert_eq!(prepared["amount"], "CHF:20");
        let created = wallet
            .handle(
                "acceptManualWithdrawal",
                json!({ "exchangeBaseUrl": prepared["exchangeBaseUrl"], "amount": prepared["amount"] }),
            )
            .await
            .unwrap();
        assert!(created["reservePub"].is_string(), "{created}");
        world.shutdown().await.unwrap();
    }
);
