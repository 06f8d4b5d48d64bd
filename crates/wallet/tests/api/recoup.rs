//! Recoup: the exchange revokes a denomination; the wallet's coins of it go back into their
//! reserve, and the wallet withdraws that money again with other coins.

use cardcash_api::exchange::DenominationRevocationRequest;
use cardcash_testkit::{Engine, engine_test};
use cardcash_wallet::WalletConfig;
use serde_json::json;

use crate::helpers::*;

engine_test!(
    /// Three 5s of a CHF 20 withdrawal are revoked: recouped (CHF 15 back in the reserve) and
    /// withdrawn again as 14 × 1, 3 × 0.25 and 11 × 0.01 (14.86 and 0.14 of fees).
    async fn revoked_coins_are_recouped_and_withdrawn_again(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        withdraw_manually(&world, &wallet, "20").await;
        let client = world.exchange().client();
        let five = cardcash_wallet::denom::denominations(&client.keys().await.unwrap())
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
        let url = world.exchange().base_url().to_string();
        wallet
            .handle("addExchange", json!({ "exchangeBaseUrl": url }))
            .await
            .unwrap();
        run_until_done(&wallet).await;

        let coins = coins(&wallet).await;
        let of = |v: &str, status: &str| {
            coins
                .iter()
                .filter(|(a, s)| *a == chf(v) && s == status)
                .count()
        };
        assert_eq!(of("5", "spent"), 3, "{coins:?}");
        assert_eq!(of("5", "fresh"), 0);
        assert_eq!(
            (of("1", "fresh"), of("0.25", "fresh"), of("0.01", "fresh")),
            (4 + 14, 3 + 3, 18 + 11)
        );
        assert_eq!(balance(&wallet).await, (chf("19.79"), chf("0")));
        let t = only_transaction(&wallet).await;
        assert_eq!(t["state"], "done", "{t}");
        // What the withdrawal gave in the end: 19.93 − 15 recouped + 14.86 withdrawn again.
        assert_eq!(amount(&t["amountEffective"]), chf("19.79"), "{t}");
        let reserve = t["reservePub"].as_str().unwrap().parse().unwrap();
        let left = client
            .reserve(&reserve, std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(left.balance, chf("0"));
        world.shutdown().await.unwrap();
    }
);
