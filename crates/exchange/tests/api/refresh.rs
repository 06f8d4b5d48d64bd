//! Refresh on both engines: a partially spent coin melted and revealed into fresh coins that
//! verify and can be spent, and recovered from link; a melt racing a deposit of the same coin;
//! replays of melt and reveal; wrong reveals (nothing signed) and malformed or wrongly signed
//! melts and reveals with their official codes (nothing changed); Clause-Schnorr refreshes with
//! `/csr-melt`, and a CS nonce that signs only one envelope.

use cardcash_api::exchange::{BatchWithdrawRequest, CoinEnvelope, TransferPrivateKey};
use cardcash_client::{ClientError, ExchangeClient};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{CoinHistoryRequest, Melt, MeltConfirmation};
use cardcash_crypto::refresh::KAPPA;
use cardcash_exchange::audit;
use cardcash_exchange::config::CipherConfig;
use cardcash_exchange::db::{NewFreshCoin, NewReveal, RevealOutcome};
use cardcash_testkit::{BankAccount, Engine, World, engine_test};
use cardcash_util::{
    EcdhePublicKey, EddsaSignature, ErrorCode, HashCode, PaytoUri, RelativeTime, Timestamp,
};
use serde_json::json;

use crate::conformance::{Raw, audit_clean, b32, store, sums};
use crate::helpers::{coin, kudos};
use crate::wallet::refresh::{FreshCoin, Refresh, coins_from_link};
use crate::wallet::{self, Coin, Contract, Denom};
use crate::withdraw::{funded_reserve, pick};

/// A bank with a merchant account and an exchange with RSA 5 and 1 and a CS 2 denomination
/// (every fee, the refresh fee included, 0.01 for RSA and 0.02 for CS).
async fn world(engine: Engine) -> World {
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
                coin(
                    "coin_kudos_1",
                    CipherConfig::Rsa { bits: 1024 },
                    "1",
                    "0.01",
                ),
                coin("coin_kudos_cs_2", CipherConfig::Cs, "2", "0.02"),
            ];
        })
        .start()
        .await
        .unwrap()
}

fn denoms_of(keys: &cardcash_api::exchange::ExchangeKeysResponse) -> Vec<Denom> {
    wallet::denominations(keys)
}

/// Withdraws `n` RSA 5 coins (from a reserve funded with enough).
async fn fives(world: &World, n: usize) -> Vec<Coin> {
    let client = world.exchange().client();
    let denoms = denoms_of(&client.keys().await.unwrap());
    let reserve = funded_reserve(world, &format!("{}", 6 * n)).await;
    let planchets = {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(wallet::planchet(&client, &reserve, pick(&denoms, "5", false)).await);
        }
        out
    };
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

fn merchant_payto(world: &World) -> PaytoUri {
    world
        .bank()
        .app()
        .ledger()
        .payto()
        .account_uri("merchant", "Merchant")
        .unwrap()
}

/// A contract whose wire deadline is an hour away (no aggregation during the test).
fn contract(world: &World) -> Contract {
    Contract::new(
        merchant_payto(world),
        Timestamp::now().saturating_add(RelativeTime::from_secs(3600)),
    )
}

#[track_caller]
fn expect(err: &ClientError, status: u16, code: ErrorCode) {
    assert_eq!(
        (err.status(), err.error_code()),
        (Some(status), Some(code)),
        "{err:?}"
    );
}

/// `exchange_coins_signed_total` from `/metrics`.
async fn coins_signed(client: &ExchangeClient) -> u64 {
    let text = reqwest::get(format!("{}metrics", client.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("exchange_coins_signed_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Melts and reveals `refresh`: the fresh coins.
async fn melt_and_reveal(client: &ExchangeClient, refresh: &Refresh) -> Vec<FreshCoin> {
    let melted = client
        .melt(&refresh.old.coin_pub, &refresh.melt_request())
        .await
        .unwrap();
    let revealed = client
        .reveal(&refresh.rc, &refresh.reveal_request(melted.noreveal_index))
        .await
        .unwrap();
    let sigs: Vec<_> = revealed.ev_sigs.into_iter().map(|s| s.ev_sig).collect();
    refresh.coins(melted.noreveal_index, &sigs)
}

engine_test!(
    /// A 5 coin pays 2 to a merchant; the other 3 are melted into two 1 coins (2 × 1.01 + 0.01
    /// melt fee ≤ 3). The melt confirmation verifies (1034); the fresh coins verify and one is
    /// deposited; link gives the old coin's owner the same fresh coins; the old coin's history
    /// lists the deposit and the melt with balance 0; a further melt finds nothing left; the
    /// audit balances.
    async fn refresh_of_a_partially_spent_coin_and_link(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let old = fives(&world, 1).await.remove(0);
        let shop = contract(&world);
        client
            .batch_deposit(&shop.deposit(&[(&old, kudos("2"))]))
            .await
            .unwrap();

        let one = pick(&denoms, "1", false);
        let refresh =
            Refresh::prepare_melting(&client, &old, &[one.clone(), one.clone()], kudos("3")).await;
        let melted = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        assert!((melted.noreveal_index as usize) < KAPPA);
        cardcash_crypto::verify(
            &melted.exchange_pub,
            &melted.exchange_sig,
            &MeltConfirmation {
                rc: refresh.rc,
                noreveal_index: melted.noreveal_index,
            },
        )
        .expect("the melt confirmation verifies");
        let revealed = client
            .reveal(&refresh.rc, &refresh.reveal_request(melted.noreveal_index))
            .await
            .unwrap();
        let sigs: Vec<_> = revealed.ev_sigs.iter().map(|s| s.ev_sig.clone()).collect();
        let fresh = refresh.coins(melted.noreveal_index, &sigs);
        assert_eq!(fresh.len(), 2);
        assert_ne!(fresh[0].coin.coin_pub, fresh[1].coin.coin_pub);

        // A fresh coin is money: deposited in full.
        client
            .batch_deposit(&contract(&world).deposit(&[(&fresh[0].coin, kudos("1"))]))
            .await
            .unwrap();

        // Link: the old coin's key alone recovers the same coins.
        let link = client.link(&old.coin_pub).await.unwrap();
        assert_eq!(link.len(), 1);
        let linked = coins_from_link(&old, &link, &denoms);
        assert_eq!(linked[0].len(), 2);
        for (l, f) in linked[0].iter().zip(&fresh) {
            assert_eq!(l.coin_pub, f.coin.coin_pub);
            assert_eq!(l.signature, f.coin.signature);
        }
        // A coin never melted has no link.
        let err = client.link(&fresh[1].coin.coin_pub).await.unwrap_err();
        expect(&err, 404, ErrorCode::ExchangeLinkCoinUnknown);

        // The old coin's history: the deposit, then the melt (signed by the coin), nothing left.
        let history = client
            .coin_history(
                &old.coin_pub,
                0,
                &old.coin_priv.sign(&CoinHistoryRequest { start_off: 0 }),
            )
            .await
            .unwrap()
            .expect("a history");
        assert_eq!(history.balance, kudos("0"));
        assert_eq!(history.history.len(), 2);
        let json = serde_json::to_value(&history.history[1]).unwrap();
        assert_eq!(json["type"], "MELT");
        assert_eq!(json["amount"], "KUDOS:3");
        assert_eq!(json["melt_fee"], "KUDOS:0.01");
        assert_eq!(json["rc"], refresh.rc.to_string());
        let coin_sig: EddsaSignature = json["coin_sig"].as_str().unwrap().parse().unwrap();
        cardcash_crypto::verify(
            &old.coin_pub,
            &coin_sig,
            &Melt {
                rc: refresh.rc,
                h_denom_pub: old.denom.h,
                h_age_commitment: [0; 32],
                amount_with_fee: kudos("3"),
                melt_fee: kudos("0.01"),
            },
        )
        .expect("the history's melt is the coin's");
        assert_eq!(
            serde_json::to_value(&history.history[0]).unwrap()["type"],
            "DEPOSIT"
        );

        // Nothing left to melt.
        let again =
            Refresh::prepare_melting(&client, &old, std::slice::from_ref(one), kudos("1.02")).await;
        let err = client
            .melt(&old.coin_pub, &again.melt_request())
            .await
            .unwrap_err();
        expect(&err, 409, ErrorCode::ExchangeGenericInsufficientFunds);
        assert_eq!(err.body().unwrap()["coin_pub"], old.coin_pub.to_string());
        assert_eq!(err.body().unwrap()["h_denom_pub"], old.denom.h.to_string());

        let report = audit::audit(store(&world)).await.unwrap();
        assert!(report.is_clean(), "{:?}", report.differences);
        assert_eq!(report.sums.refresh.melted, kudos("3"));
        assert_eq!(report.sums.refresh.revealed_melted, kudos("3"));
        assert_eq!(report.sums.refresh.refreshed, kudos("2.02"));
        assert_eq!(report.sums.refresh.revealed_melt_fees, kudos("0.01"));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Four coins, each deposited in full and melted in full at the same moment: for each
    /// coin exactly one of the two wins, the other gets 409 1012, and the coins never pay out
    /// more than their value.
    async fn melt_racing_a_deposit(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let coins = fives(&world, 4).await;
        let one = pick(&denoms, "1", false);
        let mut tasks = tokio::task::JoinSet::new();
        for old in &coins {
            let refresh =
                Refresh::prepare_melting(&client, old, &[one.clone(), one.clone()], kudos("5"))
                    .await;
            let melt = refresh.melt_request();
            let deposit = contract(&world).deposit(&[(old, kudos("5"))]);
            let (a, b) = (client.clone(), client.clone());
            let coin_pub = old.coin_pub;
            tasks.spawn(async move {
                let (melted, deposited) =
                    tokio::join!(a.melt(&coin_pub, &melt), b.batch_deposit(&deposit));
                (melted.map(|_| ()), deposited.map(|_| ()))
            });
        }
        while let Some(outcome) = tasks.join_next().await {
            let (melted, deposited) = outcome.unwrap();
            assert!(
                melted.is_ok() != deposited.is_ok(),
                "exactly one of melt and deposit wins: {melted:?} {deposited:?}"
            );
            for err in [melted.err(), deposited.err()].into_iter().flatten() {
                expect(&err, 409, ErrorCode::ExchangeGenericInsufficientFunds);
            }
        }
        let s = sums(&world).await;
        assert_eq!(
            s.deposits_with_fee.checked_add(&s.refresh.melted).unwrap(),
            kudos("20")
        );
        assert_eq!(s.coin_remaining, kudos("0"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A melt sent again gets the same index and signature and is charged once; a reveal sent
    /// again gets the same signatures and signs nothing new; a melt replayed after the reveal
    /// still gets its first answer.
    async fn replays_of_melt_and_reveal(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let old = fives(&world, 1).await.remove(0);
        let one = pick(&denoms, "1", false);
        let refresh = Refresh::prepare(&client, &old, &[one.clone(), one.clone()]).await;
        let first = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        let second = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(sums(&world).await.refresh.melted, kudos("2.03"));
        assert_eq!(sums(&world).await.coin_remaining, kudos("2.97"));

        let signed_before = coins_signed(&client).await;
        let reveal = refresh.reveal_request(first.noreveal_index);
        let a = client.reveal(&refresh.rc, &reveal).await.unwrap();
        assert_eq!(coins_signed(&client).await, signed_before + 2);
        let b = client.reveal(&refresh.rc, &reveal).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(
            coins_signed(&client).await,
            signed_before + 2,
            "a replay signs nothing"
        );
        let third = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        assert_eq!(third, first);

        // The rest of the coin melts again, in another refresh.
        let more = Refresh::prepare(&client, &old, std::slice::from_ref(one)).await;
        let coins = melt_and_reveal(&client, &more).await;
        assert_eq!(coins.len(), 1);
        assert_eq!(sums(&world).await.coin_remaining, kudos("1.95"));
        assert_eq!(client.link(&old.coin_pub).await.unwrap().len(), 2);
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Reveals that do not fit the melt: a wrong transfer key (409 1353 with `rc_expected`,
    /// nothing signed or stored), too few keys (400 1356), a wrong link signature (403 1361),
    /// an unknown commitment (404 1355), a malformed one in the path (400 1362), fresh coins
    /// worth more than the melt (400 1360), arrays of different lengths (400 1358), no coins
    /// (400 1018), an unknown fresh denomination (404 1005); then the right reveal still works.
    async fn wrong_reveals_sign_nothing(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let coins = fives(&world, 2).await;
        let old = &coins[0];
        let one = pick(&denoms, "1", false);
        let refresh = Refresh::prepare(&client, old, &[one.clone(), one.clone()]).await;
        let melted = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        let good = refresh.reveal_request(melted.noreveal_index);
        let signed_before = coins_signed(&client).await;

        let mut bad = good.clone();
        bad.transfer_privs[0] =
            TransferPrivateKey::from_bytes(cardcash_crypto::random_bytes().unwrap());
        let err = client.reveal(&refresh.rc, &bad).await.unwrap_err();
        expect(
            &err,
            409,
            ErrorCode::ExchangeRefreshesRevealCommitmentViolation,
        );
        let rc_expected: HashCode = err.body().unwrap()["rc_expected"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_ne!(rc_expected, refresh.rc);
        let err = client.link(&old.coin_pub).await.unwrap_err();
        expect(&err, 404, ErrorCode::ExchangeLinkCoinUnknown);

        let mut short = good.clone();
        short.transfer_privs.pop();
        expect(
            &client.reveal(&refresh.rc, &short).await.unwrap_err(),
            400,
            ErrorCode::ExchangeRefreshesRevealCncTransferArraySizeInvalid,
        );
        let mut forged = good.clone();
        forged.link_sigs[1] = EddsaPrivateKey::generate()
            .unwrap()
            .sign(&CoinHistoryRequest { start_off: 1 });
        expect(
            &client.reveal(&refresh.rc, &forged).await.unwrap_err(),
            403,
            ErrorCode::ExchangeRefreshesRevealLinkSignatureInvalid,
        );
        expect(
            &client
                .reveal(&HashCode::from_bytes([7; 64]), &good)
                .await
                .unwrap_err(),
            404,
            ErrorCode::ExchangeRefreshesRevealSessionUnknown,
        );
        let mut uneven = good.clone();
        uneven.coin_evs.pop();
        expect(
            &client.reveal(&refresh.rc, &uneven).await.unwrap_err(),
            400,
            ErrorCode::ExchangeRefreshesRevealNewDenomsArraySizeMismatch,
        );
        let mut none = good.clone();
        none.coin_evs.clear();
        none.link_sigs.clear();
        none.new_denoms_h.clear();
        expect(
            &client.reveal(&refresh.rc, &none).await.unwrap_err(),
            400,
            ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive,
        );
        let mut unknown = good.clone();
        unknown.new_denoms_h[0] = HashCode::from_bytes([9; 64]);
        expect(
            &client.reveal(&refresh.rc, &unknown).await.unwrap_err(),
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
        );
        let mut mismatch = good.clone();
        mismatch.coin_evs[0] = CoinEnvelope::Cs {
            cs_nonce: cardcash_api::exchange::CsNonce::from_bytes([1; 32]),
            cs_blinded_c0: cardcash_api::exchange::CsScalar::from_bytes([2; 32]),
            cs_blinded_c1: cardcash_api::exchange::CsScalar::from_bytes([3; 32]),
        };
        // (the link signature covers the envelope: it fails first, as in the C exchange)
        expect(
            &client.reveal(&refresh.rc, &mismatch).await.unwrap_err(),
            403,
            ErrorCode::ExchangeRefreshesRevealLinkSignatureInvalid,
        );
        let raw = Raw::new(client.base_url());
        for rc in ["not-base32!".to_owned(), b32(32, 1), b32(65, 1)] {
            raw.post(
                &format!("refreshes/{rc}/reveal"),
                &serde_json::to_value(&good).unwrap(),
            )
            .await
            .expect(400, ErrorCode::ExchangeRefreshesRevealInvalidRch, &rc);
        }
        raw.post_text(
            &format!("refreshes/{}/reveal", refresh.rc),
            "{\"transfer_pub\":",
        )
        .await
        .expect(400, ErrorCode::GenericJsonInvalid, "truncated reveal");
        assert_eq!(
            coins_signed(&client).await,
            signed_before,
            "nothing was signed"
        );
        expect(
            &client.link(&old.coin_pub).await.unwrap_err(),
            404,
            ErrorCode::ExchangeLinkCoinUnknown,
        );

        // The honest reveal still works.
        let revealed = client.reveal(&refresh.rc, &good).await.unwrap();
        assert_eq!(revealed.ev_sigs.len(), 2);

        // Fresh coins worth more than the melt: the exchange learns it only at the reveal.
        let greedy =
            Refresh::prepare_melting(&client, &coins[1], &[one.clone(), one.clone()], kudos("2"))
                .await;
        let melted = client
            .melt(&coins[1].coin_pub, &greedy.melt_request())
            .await
            .unwrap();
        expect(
            &client
                .reveal(&greedy.rc, &greedy.reveal_request(melted.noreveal_index))
                .await
                .unwrap_err(),
            400,
            ErrorCode::ExchangeRefreshesRevealAmountInsufficient,
        );
        expect(
            &client.link(&coins[1].coin_pub).await.unwrap_err(),
            404,
            ErrorCode::ExchangeLinkCoinUnknown,
        );
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Melts that are malformed or wrongly signed get the C exchange's codes and change
    /// nothing: malformed coin key 400 1004, malformed JSON 400 22, an amount in another
    /// currency 400 22, an unknown denomination 404 1005, a melt below its fee 400 1302, another
    /// coin's denomination signature or an age commitment 403 1006, a wrong coin signature 403
    /// 1303, more than the coin's value 409 1012; a refresh master secret of another melt 409
    /// 1160.
    async fn malformed_and_wrongly_signed_melts(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let coins = fives(&world, 2).await;
        let old = &coins[0];
        let one = pick(&denoms, "1", false);
        let refresh = Refresh::prepare(&client, old, std::slice::from_ref(one)).await;
        let good = refresh.melt_request();
        let raw = Raw::new(client.base_url());
        let body = serde_json::to_value(&good).unwrap();
        for key in crate::conformance::bad_keys() {
            raw.post(&format!("coins/{key}/melt"), &body).await.expect(
                400,
                ErrorCode::ExchangeGenericCoinsInvalidCoinPub,
                &key,
            );
        }
        let path = format!("coins/{}/melt", old.coin_pub);
        raw.post_text(&path, "{\"rc\":").await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "truncated melt",
        );
        let mut missing = body.clone();
        missing.as_object_mut().unwrap().remove("confirm_sig");
        raw.post(&path, &missing).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "no confirm_sig",
        );
        let mut other_currency = body.clone();
        other_currency["value_with_fee"] = json!("EUR:1.02");
        raw.post(&path, &other_currency).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "another currency",
        );

        let mut unknown = good.clone();
        unknown.denom_pub_hash = HashCode::from_bytes([5; 64]);
        expect(
            &client.melt(&old.coin_pub, &unknown).await.unwrap_err(),
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
        );
        let mut cheap = good.clone();
        cheap.value_with_fee = kudos("0.001");
        expect(
            &client.melt(&old.coin_pub, &cheap).await.unwrap_err(),
            400,
            ErrorCode::ExchangeMeltFeesExceedContribution,
        );
        let mut stolen = good.clone();
        stolen.denom_sig = coins[1].ub_sig();
        expect(
            &client.melt(&old.coin_pub, &stolen).await.unwrap_err(),
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
        );
        let mut aged = good.clone();
        aged.age_commitment_hash = Some(cardcash_util::ShortHashCode::from_bytes([1; 32]));
        expect(
            &client.melt(&old.coin_pub, &aged).await.unwrap_err(),
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
        );
        let mut forged = good.clone();
        forged.confirm_sig = coins[1].coin_priv.sign(&Melt {
            rc: refresh.rc,
            h_denom_pub: old.denom.h,
            h_age_commitment: [0; 32],
            amount_with_fee: good.value_with_fee,
            melt_fee: kudos("0.01"),
        });
        expect(
            &client.melt(&old.coin_pub, &forged).await.unwrap_err(),
            403,
            ErrorCode::ExchangeMeltCoinSignatureInvalid,
        );
        let mut wrong_fee = good.clone();
        wrong_fee.value_with_fee = kudos("1.03");
        expect(
            &client.melt(&old.coin_pub, &wrong_fee).await.unwrap_err(),
            403,
            ErrorCode::ExchangeMeltCoinSignatureInvalid,
        );
        let greedy =
            Refresh::prepare_melting(&client, old, std::slice::from_ref(one), kudos("5.01")).await;
        let err = client
            .melt(&old.coin_pub, &greedy.melt_request())
            .await
            .unwrap_err();
        expect(&err, 409, ErrorCode::ExchangeGenericInsufficientFunds);

        // Nothing changed: the coin is unknown (never spent), nothing melted.
        assert!(store(&world).coin(old.coin_pub).await.unwrap().is_none());
        assert_eq!(sums(&world).await.refresh.melted, kudos("0"));

        // A refresh master secret belongs to one melt.
        let cs2 = pick(&denoms, "2", true);
        let first = Refresh::prepare(&client, old, std::slice::from_ref(cs2)).await;
        client
            .melt(&old.coin_pub, &first.melt_request())
            .await
            .unwrap();
        let second = Refresh::prepare(&client, &coins[1], std::slice::from_ref(cs2)).await;
        let mut reused = second.melt_request();
        reused.rms = first.melt_request().rms;
        expect(
            &client.melt(&coins[1].coin_pub, &reused).await.unwrap_err(),
            409,
            ErrorCode::ExchangeWithdrawNonceReuse,
        );
        assert!(
            store(&world)
                .coin(coins[1].coin_pub)
                .await
                .unwrap()
                .is_none()
        );
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A 5 coin refreshed into a CS 2 and an RSA 1 coin: `/csr-melt` gives the R values, the
    /// reveal signs with them, the CS fresh coin verifies, is deposited, and link recovers both
    /// coins. `/csr-melt` refuses RSA denominations (404 1016) and empty requests (400 1018); a
    /// CS reveal without `rms` is 400 25. In storage, a CS nonce locked to a fresh coin cannot
    /// sign another envelope of its denomination.
    async fn cs_refresh(engine: Engine) {
        let world = world(engine).await;
        let client = world.exchange().client();
        let denoms = denoms_of(&client.keys().await.unwrap());
        let coins = fives(&world, 2).await;
        let old = &coins[0];
        let cs2 = pick(&denoms, "2", true);
        let one = pick(&denoms, "1", false);
        let refresh = Refresh::prepare(&client, old, &[cs2.clone(), one.clone()]).await;
        assert!(refresh.uses_cs);
        let melted = client
            .melt(&old.coin_pub, &refresh.melt_request())
            .await
            .unwrap();
        let mut no_rms = refresh.reveal_request(melted.noreveal_index);
        no_rms.rms = None;
        expect(
            &client.reveal(&refresh.rc, &no_rms).await.unwrap_err(),
            400,
            ErrorCode::GenericParameterMissing,
        );
        let revealed = client
            .reveal(&refresh.rc, &refresh.reveal_request(melted.noreveal_index))
            .await
            .unwrap();
        let sigs: Vec<_> = revealed.ev_sigs.iter().map(|s| s.ev_sig.clone()).collect();
        let fresh = refresh.coins(melted.noreveal_index, &sigs);
        assert!(matches!(
            fresh[0].coin.signature,
            wallet::CoinSignature::Cs { .. }
        ));
        client
            .batch_deposit(&contract(&world).deposit(&[(&fresh[0].coin, kudos("2"))]))
            .await
            .unwrap();
        let link = client.link(&old.coin_pub).await.unwrap();
        let json = serde_json::to_value(&link).unwrap();
        assert_eq!(json[0]["new_coins"][0]["ewv"]["cipher"], "CS");
        assert!(json[0]["new_coins"][0]["cs_nonce"].is_string());
        assert!(json[0]["new_coins"][1].get("cs_nonce").is_none());
        let linked = coins_from_link(old, &link, &denoms);
        for (l, f) in linked[0].iter().zip(&fresh) {
            assert_eq!(
                (l.coin_pub, &l.signature),
                (f.coin.coin_pub, &f.coin.signature)
            );
        }

        // /csr-melt refusals.
        let raw = Raw::new(client.base_url());
        raw.post(
            "csr-melt",
            &json!({"rms": b32(32, 1), "nks": [{"coin_offset": 0, "denom_pub_hash": one.h}]}),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericInvalidDenominationCipherForOperation,
            "csr-melt of an RSA denomination",
        );
        raw.post("csr-melt", &json!({"rms": b32(32, 1), "nks": []}))
            .await
            .expect(
                400,
                ErrorCode::ExchangeGenericNewDenomsArraySizeExcessive,
                "no coins",
            );
        raw.post(
            "csr-melt",
            &json!({"rms": b32(32, 1), "nks": [{"coin_offset": 0, "denom_pub_hash": b32(64, 3)}]}),
        )
        .await
        .expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown",
        );

        // Storage: another melt's reveal reusing the CS nonce of fresh coin 0 with another
        // envelope is refused and stores nothing.
        let other = Refresh::prepare(&client, &coins[1], std::slice::from_ref(one)).await;
        let other_melt = client
            .melt(&coins[1].coin_pub, &other.melt_request())
            .await
            .unwrap();
        let session = store(&world).melt_session(other.rc).await.unwrap().unwrap();
        assert_eq!(session.noreveal_index, other_melt.noreveal_index);
        let serial = world.exchange().app().exchange().keys().denominations[&cs2.h].serial;
        let nonce = fresh[0].cs_nonce.expect("a CS nonce");
        let outcome = store(&world)
            .reveal(NewReveal {
                melt_serial: session.melt_serial,
                transfer_pub: EcdhePublicKey::from_bytes([1; 32]),
                transfer_privs: vec![[2; 32], [3; 32]],
                now: Timestamp::now(),
                coins: vec![NewFreshCoin {
                    denom_serial: serial,
                    coin_ev: [nonce.to_vec(), vec![4; 64]].concat(),
                    h_coin_ev: HashCode::from_bytes([4; 64]),
                    link_sig: EddsaSignature::from_bytes([5; 64]),
                    ev_sig: vec![6; 36],
                    ewv: Some([7; 64]),
                    cs_nonce: Some(nonce),
                    amount_with_fee: kudos("2.02"),
                }],
            })
            .await
            .unwrap();
        assert_eq!(outcome, RevealOutcome::NonceReuse { index: 0 });
        expect(
            &client.link(&coins[1].coin_pub).await.unwrap_err(),
            404,
            ErrorCode::ExchangeLinkCoinUnknown,
        );
        // The honest reveal of that melt works.
        let revealed = client
            .reveal(&other.rc, &other.reveal_request(other_melt.noreveal_index))
            .await
            .unwrap();
        assert_eq!(revealed.ev_sigs.len(), 1);
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);
