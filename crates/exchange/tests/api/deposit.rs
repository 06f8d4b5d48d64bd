//! The money path after withdrawal: batch deposit by a merchant key, double spending refused,
//! partial refund, aggregation after the wire deadline, the merchant's bank account credited
//! with the right amount after fees, deposit and transfer tracking, and the audit equations.

use std::time::Duration;

use cardcash_api::exchange::{BatchWithdrawRequest, DepositLongPollTarget, RefundRequest};
use cardcash_client::{DepositQuery, DepositStatus};
use cardcash_crypto::purpose::{
    DepositConfirmationV23, MerchantRefund, RefundConfirmation, TrackTransaction,
};
use cardcash_exchange::audit;
use cardcash_exchange::config::CipherConfig;
use cardcash_testkit::BankAccount;
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{ErrorCode, HashCode, RelativeTime, Timestamp};

use crate::helpers::{coin, kudos};
use crate::wallet::{self, Coin, Contract};
use crate::withdraw::{funded_reserve, pick};

async fn world_with_merchant(engine: Engine) -> World {
    cardcash_testkit::world(engine)
        .currency("KUDOS".parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("merchant", "Merchant"))
        .configure_exchange(|c| {
            c.denominations = vec![
                coin(
                    "coin_kudos_5",
                    CipherConfig::Rsa { bits: 1024 },
                    "5",
                    "0.01",
                ),
                coin("coin_kudos_cs_2", CipherConfig::Cs, "2", "0.02"),
            ];
        })
        .start()
        .await
        .unwrap()
}

/// Withdraws a 5 (RSA) and a 2 (CS) coin.
async fn two_coins(world: &World) -> Vec<Coin> {
    let client = world.exchange().client();
    let denoms = wallet::denominations(&client.keys().await.unwrap());
    let reserve = funded_reserve(world, "10").await;
    let planchets = [
        wallet::planchet(&client, &reserve, pick(&denoms, "5", false)).await,
        wallet::planchet(&client, &reserve, pick(&denoms, "2", true)).await,
    ];
    let response = client
        .batch_withdraw(
            &reserve.public(),
            &BatchWithdrawRequest {
                planchets: planchets.iter().map(|p| p.request.clone()).collect(),
            },
        )
        .await
        .unwrap();
    planchets
        .iter()
        .zip(&response.ev_sigs)
        .map(|(p, s)| p.unblind(&s.ev_sig))
        .collect()
}

fn refund_request(contract: &Contract, coin: &Coin, rtid: u64, amount: &str) -> RefundRequest {
    let refund_amount = kudos(amount);
    RefundRequest {
        refund_amount,
        h_contract_terms: contract.h_contract_terms,
        merchant_pub: contract.merchant.public(),
        rtransaction_id: rtid,
        merchant_sig: contract.merchant.sign(&MerchantRefund {
            h_contract_terms: contract.h_contract_terms,
            coin_pub: coin.coin_pub,
            rtransaction_id: rtid,
            refund_amount,
        }),
    }
}

engine_test!(
    /// Deposit 5 + 2 (fees 0.01 + 0.02), refund 1 of the 5, wire: the merchant receives
    /// 4.99 − 1 + 1.98 − 0.01 (wire fee) = 5.96.
    async fn deposit_refund_aggregate_and_track(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let client = world.exchange().client();
        let coins = two_coins(&world).await;
        let merchant_payto = world
            .bank()
            .app()
            .ledger()
            .payto()
            .account_uri("merchant", "Merchant")
            .unwrap();
        let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs())
            .saturating_add(RelativeTime::from_secs(2));
        let contract = Contract::new(merchant_payto.clone(), wire_deadline);
        let request = contract.deposit(&[(&coins[0], kudos("5")), (&coins[1], kudos("2"))]);
        let confirmation = client.batch_deposit(&request).await.unwrap();
        let message = DepositConfirmationV23 {
            h_contract_terms: contract.h_contract_terms,
            h_wire: contract.h_wire(),
            h_policy: HashCode::from_bytes([0; 64]),
            exchange_timestamp: confirmation.exchange_timestamp,
            wire_deadline,
            refund_deadline: contract.refund_deadline,
            total_without_fee: kudos("6.97"),
            h_coin_sigs: cardcash_crypto::coin::h_coin_sigs(
                request.coins.iter().map(|c| &c.coin_sig),
            ),
            merchant_pub: contract.merchant.public(),
        };
        cardcash_crypto::verify(
            &confirmation.exchange_pub,
            &confirmation.exchange_sig,
            &message,
        )
        .expect("the deposit confirmation verifies");
        // A replay gets the same answer.
        assert_eq!(client.batch_deposit(&request).await.unwrap(), confirmation);

        // Spending the 5 coin again for another contract: refused, with the coin named.
        let other = Contract::new(merchant_payto.clone(), wire_deadline);
        let err = client
            .batch_deposit(&other.deposit(&[(&coins[0], kudos("5"))]))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericInsufficientFunds)
        );
        assert_eq!(
            err.body().unwrap()["coin_pub"],
            coins[0].coin_pub.to_string()
        );

        // Partial refund of the 5 coin; a replay is fine, another amount with the same id not,
        // nor more than the coin paid.
        let refund = refund_request(&contract, &coins[0], 1, "1");
        let answer = client.refund(&coins[0].coin_pub, &refund).await.unwrap();
        cardcash_crypto::verify(
            &answer.exchange_pub,
            &answer.exchange_sig,
            &RefundConfirmation {
                h_contract_terms: contract.h_contract_terms,
                coin_pub: coins[0].coin_pub,
                merchant_pub: contract.merchant.public(),
                rtransaction_id: 1,
                refund_amount: kudos("1"),
            },
        )
        .expect("the refund confirmation verifies");
        client.refund(&coins[0].coin_pub, &refund).await.unwrap();
        let err = client
            .refund(
                &coins[0].coin_pub,
                &refund_request(&contract, &coins[0], 1, "2"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeRefundInconsistentAmount)
        );
        let err = client
            .refund(
                &coins[0].coin_pub,
                &refund_request(&contract, &coins[0], 2, "4.5"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeRefundConflictDepositInsufficient)
        );
        let mut forged = refund_request(&contract, &coins[0], 3, "0.5");
        forged.merchant_sig = other.merchant.sign(&MerchantRefund {
            h_contract_terms: contract.h_contract_terms,
            coin_pub: coins[0].coin_pub,
            rtransaction_id: 3,
            refund_amount: kudos("0.5"),
        });
        let err = client
            .refund(&coins[0].coin_pub, &forged)
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeRefundMerchantSignatureInvalid)
        );

        // Tracking: pending until the wire deadline, then wired (long poll wakes on it).
        let query = DepositQuery {
            h_wire: contract.h_wire(),
            merchant_pub: contract.merchant.public(),
            h_contract_terms: contract.h_contract_terms,
            coin_pub: coins[0].coin_pub,
            merchant_sig: contract.merchant.sign(&TrackTransaction {
                h_contract_terms: contract.h_contract_terms,
                h_wire: contract.h_wire(),
                coin_pub: coins[0].coin_pub,
            }),
        };
        let wired = cardcash_testkit::wait_for(Duration::from_secs(30), || async {
            match client
                .deposit(&query, Duration::from_secs(10), DepositLongPollTarget::Ok)
                .await
                .unwrap()
            {
                DepositStatus::Wired(w) => Some(w),
                DepositStatus::Pending(_) => None,
            }
        })
        .await;
        assert_eq!(wired.coin_contribution, kudos("3.99"));
        let transfer = client.transfer(&wired.wtid).await.unwrap();
        assert_eq!(transfer.total, kudos("5.96"));
        assert_eq!(transfer.wire_fee, kudos("0.01"));
        assert_eq!(transfer.deposits.len(), 2);
        // A merchant verifies the transfer (1037) from the answer alone.
        let confirmation = transfer.signed_message();
        cardcash_crypto::verify(
            &transfer.exchange_pub,
            &transfer.exchange_sig,
            &confirmation,
        )
        .expect("the transfer's signature verifies from the answer");

        // The bank executes it: the merchant's account receives 5.96.
        let bank = world.bank().admin();
        cardcash_testkit::wait_until(Duration::from_secs(30), || async {
            bank.account("merchant").await.unwrap().balance.amount == kudos("5.96")
        })
        .await;
        // Too late for refunds now.
        let err = client
            .refund(
                &coins[1].coin_pub,
                &refund_request(&contract, &coins[1], 9, "1"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeRefundMerchantAlreadyPaid)
        );

        let report = audit::audit(world.exchange().app().exchange().store())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        assert_eq!(report.sums.wired, kudos("5.96"));
        assert_eq!(report.sums.coin_remaining, kudos("0.99"));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Two merchants race to deposit the same coin in full: exactly one wins, and the coin
    /// never pays out more than its value.
    async fn racing_double_spend(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let client = world.exchange().client();
        let coins = two_coins(&world).await;
        let payto = world
            .bank()
            .app()
            .ledger()
            .payto()
            .account_uri("merchant", "Merchant")
            .unwrap();
        let far = Timestamp::now().saturating_add(RelativeTime::from_secs(3600));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let request = Contract::new(payto.clone(), far).deposit(&[(&coins[0], kudos("5"))]);
            let client = client.clone();
            tasks.spawn(async move { client.batch_deposit(&request).await });
        }
        let mut won = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert_eq!(
                    e.error_code(),
                    Some(ErrorCode::ExchangeGenericInsufficientFunds)
                ),
            }
        }
        assert_eq!(won, 1);
        let report = audit::audit(world.exchange().app().exchange().store())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        assert_eq!(report.sums.deposits_with_fee, kudos("5"));
        world.shutdown().await.unwrap();
    }
);
