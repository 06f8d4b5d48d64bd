//! A reserve funded by a card payment: terminal → C2EC → card processor → C2EC's Wire Gateway
//! → the exchange's wirewatch → a funded reserve, then coins withdrawn from it.

use std::time::Duration;

use cardcash_api::bank_integration::BankWithdrawalOperationPostRequest;
use cardcash_api::exchange::BatchWithdrawRequest;
use cardcash_client::SetupAmount;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_exchange::config::{CipherConfig, DenominationConfig};
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::Amount;

use crate::helpers::coin;
use crate::wallet;

fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().unwrap()
}

engine_test!(
    /// CHF 20 paid by card become a reserve of CHF 20 at the exchange, which signs coins.
    async fn card_payment_funds_a_reserve(engine: Engine) {
        let world = cardcash_testkit::world(engine)
            .currency("CHF".parse().unwrap())
            .bank()
            .cardproc()
            .c2ec()
            .configure_exchange(|c| {
                c.denominations = vec![DenominationConfig {
                    value: chf("5"),
                    fee_withdraw: chf("0"),
                    fee_deposit: chf("0"),
                    fee_refresh: chf("0"),
                    fee_refund: chf("0"),
                    ..coin("coin_chf_5", CipherConfig::Rsa { bits: 1024 }, "5", "0")
                }];
            })
            .start()
            .await
            .unwrap();
        let c2ec = world.c2ec();
        let terminal = c2ec.terminal_client();
        let setup = terminal
            .setup_withdrawal(
                &cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>().unwrap()),
                SetupAmount::Fixed(chf("20")),
            )
            .await;
        let setup = match setup {
            Ok(s) => s,
            Err(e) => panic!("setup: {e}"),
        };
        let wopid = setup.withdrawal_id;

        // The wallet registers its reserve key for the exchange's account at C2EC.
        let reserve = EddsaPrivateKey::generate().unwrap();
        c2ec.integration()
            .select(
                &wopid,
                &BankWithdrawalOperationPostRequest {
                    reserve_pub: reserve.public(),
                    selected_exchange: c2ec.exchange_account().clone(),
                    amount: None,
                },
            )
            .await
            .unwrap();

        // The customer pays by card at the terminal; the terminal tells C2EC.
        world
            .pay_by_card(&wopid, &"CHF:20".parse().unwrap())
            .await
            .unwrap();

        // The exchange's wirewatch imports C2EC's incoming history: the reserve appears.
        let exchange = world.exchange().client();
        let summary = exchange
            .reserve(&reserve.public(), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(summary.balance, chf("20"));

        // And the wallet withdraws four 5-franc coins from it.
        let denoms = wallet::denominations(&exchange.keys().await.unwrap());
        let five = denoms.iter().find(|d| d.value == chf("5")).unwrap();
        let mut planchets = Vec::new();
        for _ in 0..4 {
            planchets.push(wallet::planchet(&exchange, &reserve, five).await);
        }
        let response = exchange
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: planchets.iter().map(|p| p.request.clone()).collect(),
                },
            )
            .await
            .unwrap();
        for (p, s) in planchets.iter().zip(&response.ev_sigs) {
            p.unblind(&s.ev_sig);
        }
        let left = exchange
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(left.balance, chf("0"));
        let report = cardcash_exchange::audit::audit(world.exchange().app().exchange().store())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        world.shutdown().await.unwrap();
    }
);
