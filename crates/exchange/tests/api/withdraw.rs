//! Reserves funded through the bank's Wire Gateway (wirewatch), then batch withdrawal with RSA
//! and Clause-Schnorr planchets: signatures unblind to valid coins, replays are free, the
//! reserve is never overdrawn, and every refusal has the official code.

use std::time::Duration;

use cardcash_api::exchange::BatchWithdrawRequest;
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_exchange::config::CipherConfig;
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{Amount, ErrorCode};

use crate::helpers::{coin, kudos};
use crate::wallet::{self, Denom, DenomKey};

/// A world with a bank and an exchange whose denominations are small (RSA 1024 for speed) and
/// include a Clause-Schnorr one.
pub async fn bank_and_exchange(engine: Engine) -> World {
    cardcash_testkit::world(engine)
        .currency("KUDOS".parse().unwrap())
        .bank()
        .configure_exchange(|c| {
            c.denominations = vec![
                coin(
                    "coin_kudos_1",
                    CipherConfig::Rsa { bits: 1024 },
                    "1",
                    "0.01",
                ),
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

/// Funds a fresh reserve with `amount` through the bank and waits until the exchange saw it.
pub async fn funded_reserve(world: &World, amount: &str) -> EddsaPrivateKey {
    let reserve = EddsaPrivateKey::generate().unwrap();
    let bank = world.bank();
    let debit_account = bank
        .app()
        .ledger()
        .payto()
        .account_uri("admin", "Admin")
        .unwrap();
    bank.exchange_wire_gateway()
        .add_incoming(&AddIncomingRequest {
            amount: kudos(amount),
            reserve_pub: reserve.public(),
            debit_account,
        })
        .await
        .unwrap();
    let summary = world
        .exchange()
        .client()
        .reserve(&reserve.public(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(summary.balance, kudos(amount));
    reserve
}

pub fn pick<'a>(denoms: &'a [Denom], value: &str, cs: bool) -> &'a Denom {
    denoms
        .iter()
        .find(|d| d.value == kudos(value) && matches!(d.key, DenomKey::Cs(_)) == cs)
        .unwrap_or_else(|| panic!("no {value} denomination (cs: {cs})"))
}

engine_test!(
    /// 10 KUDOS in; a 5 (RSA) and a 2 (CS) coin out; 2.97 left; a replay costs nothing.
    async fn batch_withdraw_rsa_and_cs(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "10").await;
        let planchets = [
            wallet::planchet(&client, &reserve, pick(&denoms, "5", false)).await,
            wallet::planchet(&client, &reserve, pick(&denoms, "2", true)).await,
        ];
        let request = BatchWithdrawRequest {
            planchets: planchets.iter().map(|p| p.request.clone()).collect(),
        };
        let response = client
            .batch_withdraw(&reserve.public(), &request)
            .await
            .unwrap();
        assert_eq!(response.ev_sigs.len(), 2);
        let coins: Vec<_> = planchets
            .iter()
            .zip(&response.ev_sigs)
            .map(|(p, s)| p.unblind(&s.ev_sig))
            .collect();
        assert_eq!(coins.len(), 2);
        let balance = |b: Amount| b.to_string();
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(balance(summary.balance), "KUDOS:2.97");

        // The same request again: the same signatures, nothing charged.
        let again = client
            .batch_withdraw(&reserve.public(), &request)
            .await
            .unwrap();
        assert_eq!(again, response);
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(balance(summary.balance), "KUDOS:2.97");
        // Prometheus counts the two signatures once.
        let metrics = reqwest::get(format!("{}metrics", client.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("exchange_coins_signed_total 2\n"),
            "{metrics}"
        );
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Refusals: unknown reserve (404 1027), too little money (409 with balance and
    /// requested amount, nothing charged), a wrong reserve signature (403), an unknown
    /// denomination (404, signed by the exchange), a cipher mismatch (400).
    async fn batch_withdraw_refusals(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let five = pick(&denoms, "5", false);

        let stranger = EddsaPrivateKey::generate().unwrap();
        let p = wallet::planchet(&client, &stranger, five).await;
        let err = client
            .batch_withdraw(
                &stranger.public(),
                &BatchWithdrawRequest {
                    planchets: vec![p.request.clone()],
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericReserveUnknown)
        );
        assert_eq!(err.status(), Some(404));

        let reserve = funded_reserve(&world, "6").await;
        let planchets = vec![
            wallet::planchet(&client, &reserve, five).await.request,
            wallet::planchet(&client, &reserve, five).await.request,
        ];
        let err = client
            .batch_withdraw(&reserve.public(), &BatchWithdrawRequest { planchets })
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeWithdrawInsufficientFunds)
        );
        let body = err.body().unwrap();
        assert_eq!(body["balance"], "KUDOS:6");
        assert_eq!(body["requested_amount"], "KUDOS:10.02");
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(summary.balance, kudos("6"), "nothing was charged");

        let mut forged = wallet::planchet(&client, &reserve, five).await.request;
        forged.reserve_sig =
            stranger.sign(&cardcash_crypto::purpose::ReserveHistoryRequest { start_off: 0 });
        let err = client
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: vec![forged],
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeWithdrawReserveSignatureInvalid)
        );

        let mut unknown = wallet::planchet(&client, &reserve, five).await.request;
        unknown.denom_pub_hash = cardcash_util::HashCode::from_bytes([7; 64]);
        let err = client
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: vec![unknown],
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericDenominationKeyUnknown)
        );
        assert!(
            err.body().unwrap()["exchange_sig"].is_string(),
            "a signed refusal"
        );

        let mut mismatch = wallet::planchet(&client, &reserve, five).await.request;
        mismatch.denom_pub_hash = pick(&denoms, "2", true).h;
        let err = client
            .batch_withdraw(
                &reserve.public(),
                &BatchWithdrawRequest {
                    planchets: vec![mismatch],
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericCipherMismatch)
        );
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(summary.balance, kudos("6"), "no refusal charged anything");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Many withdrawals from one reserve at once never overdraw it: with 10 KUDOS and 1.01 per
    /// coin, exactly 9 of 12 concurrent requests succeed.
    async fn concurrent_withdrawals_never_overdraw(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let one = pick(&denoms, "1", false).clone();
        let reserve = funded_reserve(&world, "10").await;
        let mut requests = Vec::new();
        for _ in 0..12 {
            requests.push(wallet::planchet(&client, &reserve, &one).await.request);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for planchet in requests {
            let client = client.clone();
            let reserve_pub = reserve.public();
            tasks.spawn(async move {
                client
                    .batch_withdraw(
                        &reserve_pub,
                        &BatchWithdrawRequest {
                            planchets: vec![planchet],
                        },
                    )
                    .await
            });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(
                    e.error_code(),
                    Some(ErrorCode::ExchangeWithdrawInsufficientFunds)
                ),
            }
        }
        assert_eq!(ok, 9);
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(summary.balance, kudos("0.91"));
        world.shutdown().await.unwrap();
    }
);
