//! Recoup: the exchange revokes a denomination; the wallet's coins of it go back into their
//! reserve, and the wallet withdraws that money again with other coins.

use cardcash_api::exchange::DenominationRevocationRequest;
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_wallet::{Step, Wallet, WalletConfig};
use serde_json::json;

use crate::helpers::*;

/// The offline key revokes the CHF 5 denomination; returns once `/keys` says so and the
/// wallet has read it.
async fn revoke_the_five(world: &World, wallet: &Wallet) {
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
}

/// After the recoup of the three 5s of a CHF 20 withdrawal and the withdrawal again.
async fn assert_recouped_and_withdrawn_again(world: &World, wallet: &Wallet) {
    let coins = coins(wallet).await;
    let of = |v: &str, status: &str| {
        coins
            .iter()
            .filter(|(a, s)| *a == chf(v) && s == status)
            .count()
    };
    assert_eq!(of("5", "spent"), 3, "{coins:?}");
    assert_eq!(of("5", "fresh") + of("5", "dormant"), 0);
    assert_eq!(
        (of("1", "fresh"), of("0.25", "fresh"), of("0.01", "fresh")),
        (4 + 14, 3 + 3, 18 + 11)
    );
    assert_eq!(balance(wallet).await, (chf("19.79"), chf("0")));
    let t = only_transaction(wallet).await;
    assert_eq!(t["state"], "done", "{t}");
    // What the withdrawal gave in the end: 19.93 − 15 recouped + 14.86 withdrawn again.
    assert_eq!(amount(&t["amountEffective"]), chf("19.79"), "{t}");
    let reserve = t["reservePub"].as_str().unwrap().parse().unwrap();
    let left = world
        .exchange()
        .client()
        .reserve(&reserve, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(left.balance, chf("0"));
}

engine_test!(
    /// Three 5s of a CHF 20 withdrawal are revoked: recouped (CHF 15 back in the reserve) and
    /// withdrawn again as 14 × 1, 3 × 0.25 and 11 × 0.01 (14.86 and 0.14 of fees).
    async fn revoked_coins_are_recouped_and_withdrawn_again(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let wallet = open_wallet(&dir.path().join("wallet.sqlite3"), WalletConfig::default());
        withdraw_manually(&world, &wallet, "20").await;
        revoke_the_five(&world, &wallet).await;
        run_until_done(&wallet).await;
        assert_recouped_and_withdrawn_again(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Stopped after the exchange answered a recoup: the coin is set aside, not spendable;
    /// reopened, the wallet sends the same recoup again, the exchange answers it the same way,
    /// and the money is withdrawn once.
    async fn resumes_after_the_recoup(engine: Engine) {
        let world = start_world(engine, false).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        {
            let wallet = open_wallet(
                &path,
                WalletConfig {
                    halt_at: Some(Step::AfterRecoup),
                    ..WalletConfig::default()
                },
            );
            withdraw_manually(&world, &wallet, "20").await;
            revoke_the_five(&world, &wallet).await;
            let err = wallet
                .handle("runUntilDone", json!({ "timeoutMs": 120_000 }))
                .await
                .unwrap_err();
            assert_eq!(err.to_json()["code"], 7015, "{}", err.to_json());
            // The set-aside 5s no longer count.
            assert_eq!(balance(&wallet).await.0, chf("4.93"));
            wallet.close();
        }
        let wallet = open_wallet(&path, WalletConfig::default());
        run_until_done(&wallet).await;
        assert_recouped_and_withdrawn_again(&world, &wallet).await;
        world.shutdown().await.unwrap();
    }
);
