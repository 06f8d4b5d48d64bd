//! Configuration endpoints and account management.

use cardcash_testkit::{Engine, engine_test};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Cred, TestBank, assert_taler_error};

engine_test!(
    async fn config_endpoints(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let (status, body) = bank.get("/config", &Cred::None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "taler-corebank");
        assert_eq!(body["currency"], "KUDOS");
        assert_eq!(
            body["currency_specification"]["alt_unit_names"]["0"],
            "KUDOS"
        );

        let (status, body) = bank
            .get("/accounts/anyone/taler-wire-gateway/config", &Cred::None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "taler-wire-gateway");
        assert_eq!(body["version"], "3:0:3");
        assert_eq!(body["currency"], "KUDOS");

        // The typed client reads the same.
        let cfg = bank.wg_client("anyone", "x").config().await.unwrap();
        assert_eq!(cfg.currency.as_str(), "KUDOS");
        bank.shutdown().await;
    }
);

engine_test!(
    async fn create_and_read_accounts(engine: Engine) {
        let bank = TestBank::start(engine).await;
        let engine = bank.engine.clone();
        bank.create("alice", "alice-pw", false).await;
        bank.create("exchange", "exchange-pw", true).await;

        // The owner reads her account with her password.
        let (status, body) = bank
            .get("/accounts/alice", &Cred::Basic("alice", "alice-pw"))
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        assert_eq!(body["name"], "alice legal");
        assert_eq!(
            body["payto_uri"],
            "payto://x-taler-bank/localhost/alice?receiver-name=alice%20legal"
        );
        assert_eq!(body["balance"]["amount"], "KUDOS:0");
        assert_eq!(body["balance"]["credit_debit_indicator"], "credit");
        assert_eq!(body["debit_threshold"], "KUDOS:0");
        assert_eq!(body["is_taler_exchange"], false);
        let (_, body) = bank.get("/accounts/exchange", &Cred::Admin).await;
        assert_eq!(body["is_taler_exchange"], true);

        // Name reuse, the reserved admin name, bad names and empty passwords.
        let dup = bank
            .post(
                "/accounts",
                &Cred::Admin,
                &json!({"username": "alice", "password": "x", "name": "Other"}),
            )
            .await;
        assert_taler_error(&engine, &dup, StatusCode::CONFLICT, 5121);
        let admin = bank
            .post(
                "/accounts",
                &Cred::Admin,
                &json!({"username": "admin", "password": "x", "name": "Evil"}),
            )
            .await;
        assert_taler_error(&engine, &admin, StatusCode::CONFLICT, 5120);
        let bad = bank
            .post(
                "/accounts",
                &Cred::Admin,
                &json!({"username": "a/b", "password": "x", "name": "Slash"}),
            )
            .await;
        assert_taler_error(&engine, &bad, StatusCode::BAD_REQUEST, 26);
        let empty = bank
            .post(
                "/accounts",
                &Cred::Admin,
                &json!({"username": "carol", "password": "", "name": "Carol"}),
            )
            .await;
        assert_taler_error(&engine, &empty, StatusCode::BAD_REQUEST, 26);

        // Without registration enabled, only the admin creates accounts.
        let anon = bank
            .post(
                "/accounts",
                &Cred::None,
                &json!({"username": "mallory", "password": "x", "name": "M"}),
            )
            .await;
        assert_taler_error(&engine, &anon, StatusCode::UNAUTHORIZED, 40);
        let customer = bank
            .post(
                "/accounts",
                &Cred::Basic("alice", "alice-pw"),
                &json!({"username": "mallory", "password": "x", "name": "M"}),
            )
            .await;
        assert_taler_error(&engine, &customer, StatusCode::FORBIDDEN, 44);

        // Unknown account (admin asking) is a 404.
        let missing = bank.get("/accounts/nobody", &Cred::Admin).await;
        assert_taler_error(&engine, &missing, StatusCode::NOT_FOUND, 5106);

        // The admin list has the funding account and both new ones, in name order.
        let (status, body) = bank.get("/accounts", &Cred::Admin).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["admin", "alice", "exchange"], "[{engine}]");
        bank.shutdown().await;
    }
);

engine_test!(
    async fn admin_functions_for_the_cli(engine: Engine) {
        use cardcash_bank::admin;
        let bank = TestBank::start(engine).await;
        let ledger = bank.app().ledger();
        let mut new = admin::NewAccount::new("shop".parse().unwrap());
        new.password = Some(admin::Password::new("shop-pw").unwrap());
        let info = admin::create_account(ledger, new).await.unwrap();
        assert_eq!(
            info.payto_uri,
            "payto://x-taler-bank/localhost/shop?receiver-name=shop"
        );
        assert!(!info.is_taler_exchange);
        let taken = admin::create_account(ledger, admin::NewAccount::new("shop".parse().unwrap()))
            .await
            .unwrap_err();
        assert!(matches!(taken, cardcash_bank::BankError::NameTaken(_)));
        let reserved =
            admin::create_account(ledger, admin::NewAccount::new("admin".parse().unwrap()))
                .await
                .unwrap_err();
        assert!(matches!(
            reserved,
            cardcash_bank::BankError::NameReserved(_)
        ));

        // The password set through the CLI function works over HTTP.
        let (status, _) = bank
            .get("/accounts/shop", &Cred::Basic("shop", "shop-pw"))
            .await;
        assert_eq!(status, StatusCode::OK);
        admin::set_password(
            ledger,
            &"shop".parse().unwrap(),
            admin::Password::new("new-pw").unwrap(),
        )
        .await
        .unwrap();
        let (status, _) = bank
            .get("/accounts/shop", &Cred::Basic("shop", "shop-pw"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = bank
            .get("/accounts/shop", &Cred::Basic("shop", "new-pw"))
            .await;
        assert_eq!(status, StatusCode::OK);

        // The CLI can fund the account from the admin account.
        let booked = admin::transfer(
            ledger,
            &"admin".parse().unwrap(),
            &"shop".parse().unwrap(),
            "KUDOS:12".parse().unwrap(),
            "demo money",
        )
        .await
        .unwrap();
        assert!(booked.new);
        bank.assert_balance("shop", "KUDOS:12").await;
        bank.assert_balance("admin", "-KUDOS:12").await;
        admin::check_balances(ledger).await.unwrap();

        let names: Vec<String> = admin::list_accounts(ledger)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name.to_string())
            .collect();
        assert_eq!(names, ["admin", "shop"]);
        bank.shutdown().await;
    }
);

engine_test!(
    async fn open_registration_creates_customers_only(engine: Engine) {
        let bank = TestBank::start_with(engine, |c| c.allow_registration = true).await;
        let engine = bank.engine.clone();
        let (_, cfg) = bank.get("/config", &Cred::None).await;
        assert_eq!(cfg["allow_registrations"], true);
        let (status, body) = bank
            .post(
                "/accounts",
                &Cred::None,
                &json!({"username": "walker", "password": "pw", "name": "Walker"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{engine}] {body}");
        let exchange = bank
            .post(
                "/accounts",
                &Cred::None,
                &json!({"username": "fake-ex", "password": "pw", "name": "F", "is_taler_exchange": true}),
            )
            .await;
        assert_taler_error(&engine, &exchange, StatusCode::FORBIDDEN, 44);
        let limit = bank
            .post(
                "/accounts",
                &Cred::None,
                &json!({"username": "rich", "password": "pw", "name": "R", "debit_threshold": "KUDOS:1000"}),
            )
            .await;
        assert_taler_error(&engine, &limit, StatusCode::FORBIDDEN, 44);
        // Wrong credentials are still refused, registration or not.
        let wrong = bank
            .post(
                "/accounts",
                &Cred::Basic("walker", "nope"),
                &json!({"username": "other", "password": "pw", "name": "O"}),
            )
            .await;
        assert_taler_error(&engine, &wrong, StatusCode::UNAUTHORIZED, 40);
        let (_, me) = bank
            .get("/accounts/walker", &Cred::Basic("walker", "pw"))
            .await;
        assert_eq!(me["debit_threshold"], "KUDOS:0", "[{engine}]");
        assert_eq!(me["is_taler_exchange"], false);
        bank.shutdown().await;
    }
);

/// `App::build` opens the configured database itself; the CLI functions work on the same file
/// while the server runs, and the server sees their accounts.
#[tokio::test]
async fn build_from_config_and_cli_share_the_database() {
    use cardcash_bank::{App, BankConfig, admin};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bank.db").display());
    let mut config = BankConfig::new("KUDOS".parse().unwrap(), url);
    config.admin_token = Some(crate::helpers::ADMIN_TOKEN.to_owned());
    let app = App::build(config.clone()).await.unwrap();
    assert_eq!(app.base_url().as_str(), format!("http://{}/", app.addr()));
    assert_eq!(
        app.wire_gateway_url("exchange").unwrap().as_str(),
        format!(
            "http://{}/accounts/exchange/taler-wire-gateway/",
            app.addr()
        )
    );

    let cli = admin::open(&config).await.unwrap();
    let mut new = admin::NewAccount::new("exchange".parse().unwrap());
    new.is_exchange = true;
    new.password = Some(admin::Password::new("pw").unwrap());
    admin::create_account(&cli, new).await.unwrap();

    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}accounts/exchange", app.base_url()))
        .basic_auth("exchange", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["is_taler_exchange"], true);
    cli.close().await;
    app.shutdown().await.unwrap();
}
