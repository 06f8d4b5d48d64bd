//! An exchange whose `/keys` does not verify is refused: a tiny real HTTP server in front of
//! the exchange serves its `/config` and terms as they are and its `/keys` tampered with.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use cardcash_api::exchange::ExchangeKeysResponse;
use cardcash_testkit::{Engine, engine_test};
use cardcash_wallet::WalletConfig;
use serde_json::{Value, json};

use crate::helpers::*;

/// Serves `config` and `keys` on 127.0.0.1; returns the base URL.
async fn serve(config: Value, keys: Value) -> String {
    let (config, keys) = (Arc::new(config), Arc::new(keys));
    let app = Router::new()
        .route(
            "/config",
            get(move || {
                let c = config.clone();
                async move { axum::Json((*c).clone()) }
            }),
        )
        .route(
            "/keys",
            get(move || {
                let k = keys.clone();
                async move { axum::Json((*k).clone()) }
            }),
        )
        .route("/terms", get(|| async { "terms" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

async fn refused(wallet: &cardcash_wallet::Wallet, url: &str) -> Value {
    wallet
        .handle("addExchange", json!({ "exchangeBaseUrl": url }))
        .await
        .unwrap_err()
        .to_json()
}

engine_test!(
    /// A swapped denomination signature and a broken `exchange_sig` are both refused; the
    /// untouched keys served the same way are accepted.
    async fn an_exchange_with_a_bad_master_signature_is_refused(engine: Engine) {
        let world = start_world(engine, false).await;
        let client = world.exchange().client();
        let config = serde_json::to_value(client.config().await.unwrap()).unwrap();
        let keys: ExchangeKeysResponse = client.keys().await.unwrap();
        let good = serde_json::to_value(&keys).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());

        // Denomination 0 carries denomination 1's master signature.
        let mut swapped = good.clone();
        swapped["denominations"][0]["denoms"][0]["master_sig"] =
            good["denominations"][1]["denoms"][0]["master_sig"].clone();
        let err = refused(&wallet, &serve(config.clone(), swapped).await).await;
        assert_eq!(err["code"], 7002, "{err}");
        assert!(
            err["hint"].as_str().unwrap().contains("master signature"),
            "{err}"
        );

        // The key set signed by the exchange is not what it serves.
        let mut resigned = good.clone();
        resigned["exchange_sig"] = good["signkeys"][0]["master_sig"].clone();
        let err = refused(&wallet, &serve(config.clone(), resigned).await).await;
        assert_eq!(err["code"], 7002, "{err}");
        assert!(
            err["hint"].as_str().unwrap().contains("exchange_sig"),
            "{err}"
        );

        let listed = wallet.handle("listExchanges", json!({})).await.unwrap();
        assert_eq!(
            listed["exchanges"],
            json!([]),
            "nothing of a refused exchange is kept"
        );

        // The same server with the real keys is fine.
        let url = serve(config, good).await;
        let added = wallet
            .handle("addExchange", json!({ "exchangeBaseUrl": url }))
            .await
            .unwrap();
        assert_eq!(added["currency"], "CHF");
        assert_eq!(added["denominations"], 4, "{added}");
        // Fees by value, largest first, for a person choosing an exchange.
        let fees: Vec<(&str, &str, &str)> = added["coinFees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["value"].as_str().unwrap(),
                    f["cipher"].as_str().unwrap(),
                    f["feeWithdraw"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            fees,
            [
                ("CHF:5", "RSA", "CHF:0.01"),
                ("CHF:1", "RSA", "CHF:0.01"),
                ("CHF:0.25", "CS", "CHF:0"),
                ("CHF:0.01", "RSA", "CHF:0"),
            ]
        );
        assert!(
            added["currencySpecification"]["num_fractional_input_digits"].is_u64(),
            "{added}"
        );
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// The exchange's terms: shown with their version, accepted by version.
    async fn terms_of_service_by_version(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let url = world.exchange().base_url().to_string();
        wallet
            .handle("addExchange", json!({ "exchangeBaseUrl": url }))
            .await
            .unwrap();
        let tos = wallet
            .handle("getExchangeTos", json!({ "exchangeBaseUrl": url }))
            .await
            .unwrap();
        assert!(tos["content"].is_string(), "{tos}");
        match tos["currentEtag"].as_str() {
            Some(etag) => {
                assert_eq!(tos["tosStatus"], "pending");
                let accepted = wallet
                    .handle("acceptExchangeTos", json!({ "exchangeBaseUrl": url }))
                    .await
                    .unwrap();
                assert_eq!(accepted["tosStatus"], "accepted", "{accepted}");
                assert_eq!(accepted["tosAcceptedVersion"], etag);
            }
            None => {
                // An exchange without terms: nothing to accept.
                assert_eq!(tos["tosStatus"], "unknown");
                let err = wallet
                    .handle("acceptExchangeTos", json!({ "exchangeBaseUrl": url }))
                    .await
                    .unwrap_err();
                assert_eq!(err.to_json()["code"], 26);
            }
        }
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A denomination the exchange revokes after the wallet stored it gets no new coins once
    /// the wallet has read the new /keys.
    async fn revoked_denominations_get_no_new_coins(engine: Engine) {
        use cardcash_api::exchange::DenominationRevocationRequest;
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        let url = world.exchange().base_url().to_string();
        let plan = async || {
            let p = wallet
                .handle(
                    "getWithdrawalDetailsForAmount",
                    json!({ "exchangeBaseUrl": url, "amount": "CHF:20" }),
                )
                .await
                .unwrap();
            p["coins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["value"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert!(plan().await.contains(&"CHF:5".to_owned()));
        // The offline key revokes the 5.
        let client = world.exchange().client();
        let keys = client.keys().await.unwrap();
        let five = cardcash_wallet::denom::denominations(&keys)
            .unwrap()
            .into_iter()
            .find(|d| d.value == chf("5"))
            .unwrap()
            .h_denom_pub;
        client
            .management()
            .revoke_denomination(
                &five,
                &DenominationRevocationRequest {
                    master_sig: world.exchange().master().revoke_denomination(five),
                },
            )
            .await
            .unwrap();
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            client
                .keys()
                .await
                .is_ok_and(|k| k.recoup.iter().any(|r| r.h_denom_pub == five))
        })
        .await;
        wallet
            .handle("addExchange", json!({ "exchangeBaseUrl": url }))
            .await
            .unwrap();
        let coins = plan().await;
        assert!(!coins.contains(&"CHF:5".to_owned()), "{coins:?}");
        assert!(coins.contains(&"CHF:1".to_owned()), "{coins:?}");
        world.shutdown().await.unwrap();
    }
);
