//! Recoup (`POST /coins/$COIN_PUB/recoup` and `…/recoup-refresh`): after the offline key
//! revoked a denomination, a withdrawn coin of it pays what is left of it back into its reserve,
//! a coin made by a refresh into the coin melted for it — the histories show it with the
//! exchange's confirmation (1039, 1041), the coin is spent, the reserve withdraws (the old coin
//! refreshes) again; a partly spent coin pays only the rest; a replay pays nothing; refusals
//! carry the C exchange's codes and change nothing; a recoup racing a deposit or a melt of the
//! same coin never pays out more than the coin's value; the old coin becomes a zombie. Every
//! test ends with a clean audit.

use std::time::Duration;

use cardcash_api::exchange::{
    BatchWithdrawRequest, CoinHistoryEntry, CoinInsufficientFundsResponse,
    DenominationRevocationRequest, ExchangeWithdrawValues, RecoupRequest, ReserveHistoryEntry,
};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{
    CoinHistoryRequest, RecoupConfirmation, RecoupRefreshConfirmation, ReserveHistoryRequest,
};
use cardcash_exchange::db::{
    DepositOutcome, MeltOutcome, NewBatchDeposit, NewCoinDeposit, NewMelt, NewRecoup, RecoupOutcome,
};
use cardcash_testkit::{Engine, World, engine_test};
use cardcash_util::{Amount, EddsaPublicKey, ErrorCode, HashCode, ShortHashCode, Timestamp};
use serde_json::{Value, json};

use crate::conformance::{Raw, audit_clean, balance, store, sums};
use crate::helpers::kudos;
use crate::wallet::{self, Coin, Denom, Planchet};
use crate::withdraw::{bank_and_exchange, funded_reserve, pick};

/// Withdraws one coin of each denomination in `denoms` from `reserve`; the planchets are kept
/// (they hold what a recoup reveals).
async fn withdraw(
    world: &World,
    reserve: &EddsaPrivateKey,
    denoms: &[&Denom],
) -> Vec<(Planchet, Coin)> {
    let client = world.exchange().client();
    let mut planchets = Vec::new();
    for d in denoms {
        planchets.push(wallet::planchet(&client, reserve, d).await);
    }
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
        .into_iter()
        .zip(&response.ev_sigs)
        .map(|(p, s)| {
            let coin = p.unblind(&s.ev_sig);
            (p, coin)
        })
        .collect()
}

/// The offline key revokes `denom`; returns once `/keys` lists it under `recoup` (the key
/// snapshot is rebuilt on the revocation's notification).
async fn revoke(world: &World, denom: &Denom) {
    let client = world.exchange().client();
    client
        .management()
        .revoke_denomination(
            &denom.h,
            &DenominationRevocationRequest {
                master_sig: world.exchange().master().revoke_denomination(denom.h),
            },
        )
        .await
        .unwrap();
    cardcash_testkit::wait_until(Duration::from_secs(30), || async {
        client
            .keys()
            .await
            .is_ok_and(|k| k.recoup.iter().any(|r| r.h_denom_pub == denom.h))
    })
    .await;
}

fn recoup_path(coin: &Coin) -> String {
    format!("coins/{}/recoup", coin.coin_pub)
}

fn json_of(request: &RecoupRequest) -> Value {
    serde_json::to_value(request).unwrap()
}

/// The reserve's history, every entry (the reserve signs `start = 0`).
async fn reserve_history(world: &World, reserve: &EddsaPrivateKey) -> Vec<ReserveHistoryEntry> {
    world
        .exchange()
        .client()
        .reserve_history(
            &reserve.public(),
            0,
            &reserve.sign(&ReserveHistoryRequest { start_off: 0 }),
        )
        .await
        .unwrap()
        .expect("a reserve with history")
        .history
}

/// The coin's history (balance and entries; the coin signs `start = 0`).
async fn coin_history(world: &World, coin: &Coin) -> (Amount, Vec<CoinHistoryEntry>) {
    let h = world
        .exchange()
        .client()
        .coin_history(
            &coin.coin_pub,
            0,
            &coin.coin_priv.sign(&CoinHistoryRequest { start_off: 0 }),
        )
        .await
        .unwrap()
        .expect("a coin with history");
    (h.balance, h.history)
}

/// The `RECOUP` entries of a reserve's history, each checked against the exchange's signature
/// (purpose 1039 over timestamp, amount, coin and reserve), as `(coin, amount)`.
fn reserve_recoups(
    history: &[ReserveHistoryEntry],
    reserve_pub: EddsaPublicKey,
) -> Vec<(EddsaPublicKey, Amount)> {
    history
        .iter()
        .filter_map(|e| match e {
            ReserveHistoryEntry::Recoup {
                amount,
                exchange_pub,
                exchange_sig,
                timestamp,
                coin_pub,
            } => {
                cardcash_crypto::verify(
                    exchange_pub,
                    exchange_sig,
                    &RecoupConfirmation {
                        timestamp: *timestamp,
                        recoup_amount: *amount,
                        coin_pub: *coin_pub,
                        reserve_pub,
                    },
                )
                .expect("the exchange's confirmation of the recoup");
                Some((*coin_pub, *amount))
            }
            _ => None,
        })
        .collect()
}

engine_test!(
    /// 10 in; a 5 (RSA) and a 2 (CS) coin out (2.97 left); both denominations revoked; both
    /// coins recouped: 9.97 in the reserve, both coins spent, their histories and the reserve's
    /// show the recoups, signed; a replay answers the same and pays nothing; the reserve then
    /// withdraws a coin of the denomination still in force.
    async fn recoup_after_revocation(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "10").await;
        let (five, two) = (pick(&denoms, "5", false), pick(&denoms, "2", true));
        let coins = withdraw(&world, &reserve, &[five, two]).await;
        assert_eq!(balance(&world, &reserve.public()).await, kudos("2.97"));
        revoke(&world, five).await;
        revoke(&world, two).await;

        for (planchet, coin) in &coins {
            let answer = client
                .recoup(&coin.coin_pub, &planchet.recoup_request(coin))
                .await
                .unwrap();
            assert_eq!(answer.reserve_pub, reserve.public());
        }
        assert_eq!(balance(&world, &reserve.public()).await, kudos("9.97"));
        audit_clean(&world).await;

        let recouped = reserve_recoups(&reserve_history(&world, &reserve).await, reserve.public());
        assert_eq!(
            recouped,
            vec![
                (coins[0].1.coin_pub, kudos("5")),
                (coins[1].1.coin_pub, kudos("2"))
            ]
        );
        for ((planchet, coin), value) in coins.iter().zip(["5", "2"]) {
            let (left, history) = coin_history(&world, coin).await;
            assert_eq!(left, kudos("0"), "the coin is spent");
            let [
                CoinHistoryEntry::Recoup {
                    amount,
                    exchange_sig,
                    exchange_pub,
                    reserve_pub,
                    coin_sig,
                    coin_blind,
                    timestamp,
                },
            ] = history.as_slice()
            else {
                panic!("one RECOUP entry expected: {history:?}");
            };
            assert_eq!(*amount, kudos(value));
            assert_eq!(*reserve_pub, reserve.public());
            let request = planchet.recoup_request(coin);
            assert_eq!(*coin_sig, request.coin_sig);
            assert_eq!(*coin_blind, request.coin_blind_key_secret);
            cardcash_crypto::verify(
                exchange_pub,
                exchange_sig,
                &RecoupConfirmation {
                    timestamp: *timestamp,
                    recoup_amount: *amount,
                    coin_pub: coin.coin_pub,
                    reserve_pub: *reserve_pub,
                },
            )
            .unwrap();
        }

        // A wallet that lost the answer asks again: same answer, no money.
        let before = sums(&world).await;
        let again = client
            .recoup(
                &coins[0].1.coin_pub,
                &coins[0].0.recoup_request(&coins[0].1),
            )
            .await
            .unwrap();
        assert_eq!(again.reserve_pub, reserve.public());
        assert_eq!(sums(&world).await, before);
        assert_eq!(balance(&world, &reserve.public()).await, kudos("9.97"));

        // The money is the reserve's again: it withdraws from the denomination in force.
        let one = pick(&denoms, "1", false);
        let fresh = withdraw(&world, &reserve, &[one, one]).await;
        assert_eq!(fresh.len(), 2);
        assert_eq!(balance(&world, &reserve.public()).await, kudos("7.95"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A coin of 5 deposited for 2 (fee included), then its denomination revoked: its recoup
    /// pays 3, the rest, into the reserve; the coin's history lists the deposit and the recoup.
    async fn partial_deposit_then_recoup_credits_the_rest(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "10").await;
        let five = pick(&denoms, "5", false);
        let coins = withdraw(&world, &reserve, &[five]).await;
        let (planchet, coin) = &coins[0];
        let contract = wallet::Contract::new(
            "payto://x-taler-bank/bank.example/merchant?receiver-name=Merchant"
                .parse()
                .unwrap(),
            Timestamp::now().saturating_add(cardcash_util::RelativeTime::from_secs(3600)),
        );
        client
            .batch_deposit(&contract.deposit(&[(coin, kudos("2"))]))
            .await
            .unwrap();
        assert_eq!(balance(&world, &reserve.public()).await, kudos("4.99"));
        revoke(&world, five).await;
        client
            .recoup(&coin.coin_pub, &planchet.recoup_request(coin))
            .await
            .unwrap();
        assert_eq!(balance(&world, &reserve.public()).await, kudos("7.99"));
        let (left, history) = coin_history(&world, coin).await;
        assert_eq!(left, kudos("0"));
        assert!(
            matches!(
                history.as_slice(),
                [CoinHistoryEntry::Deposit { amount: d, .. }, CoinHistoryEntry::Recoup { amount: r, .. }]
                    if *d == kudos("2") && *r == kudos("3")
            ),
            "{history:?}"
        );
        assert_eq!(
            reserve_recoups(&reserve_history(&world, &reserve).await, reserve.public()),
            vec![(coin.coin_pub, kudos("3"))]
        );
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Every refusal has the C exchange's status and code and changes nothing: a denomination
    /// in force (410 1555, signed, `oper` RECOUP), an unknown one (404, signed), another coin's
    /// denomination signature (403 1006), a claimed age commitment (403 1006), a bad coin
    /// signature (403 1550), values of the other cipher or a CS coin without its nonce (500
    /// 1553), a wrong blinding secret (no such withdrawal: 404 1551), a fully deposited coin
    /// (409 1012 `EXCHANGE_GENERIC_INSUFFICIENT_FUNDS` with coin and denomination), a malformed
    /// coin key in the path (400 1004) or body (400 22). Afterwards the coins still recoup.
    async fn refusals_change_nothing(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "20").await;
        let (five, two, one) = (
            pick(&denoms, "5", false),
            pick(&denoms, "2", true),
            pick(&denoms, "1", false),
        );
        let coins = withdraw(&world, &reserve, &[five, two, one, five]).await;
        let (rsa_planchet, rsa_coin) = &coins[0];
        let (cs_planchet, cs_coin) = &coins[1];
        let (one_planchet, one_coin) = &coins[2];
        let (spent_planchet, spent_coin) = &coins[3];
        // The second 5 is spent in full before the revocation.
        let contract = wallet::Contract::new(
            "payto://x-taler-bank/bank.example/merchant?receiver-name=Merchant"
                .parse()
                .unwrap(),
            Timestamp::now().saturating_add(cardcash_util::RelativeTime::from_secs(3600)),
        );
        client
            .batch_deposit(&contract.deposit(&[(spent_coin, kudos("5"))]))
            .await
            .unwrap();

        // Not revoked yet: not eligible, signed like every denomination refusal.
        let answer = raw
            .post(
                &recoup_path(rsa_coin),
                &json_of(&rsa_planchet.recoup_request(rsa_coin)),
            )
            .await;
        answer.expect(
            410,
            ErrorCode::ExchangeRecoupNotEligible,
            "denomination in force",
        );
        assert_eq!(answer.body["oper"], "RECOUP");
        for field in ["timestamp", "exchange_pub", "exchange_sig", "h_denom_pub"] {
            assert!(answer.body.get(field).is_some(), "{field}: {}", answer.body);
        }

        revoke(&world, five).await;
        revoke(&world, two).await;
        let before = sums(&world).await;
        let balance_before = balance(&world, &reserve.public()).await;

        // Unknown denomination.
        let mut r = rsa_planchet.recoup_request(rsa_coin);
        r.denom_pub_hash = HashCode::from_bytes([7; 64]);
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            404,
            ErrorCode::ExchangeGenericDenominationKeyUnknown,
            "unknown denomination",
        );
        // Another coin's denomination signature (the 1's, over another coin).
        let mut r = rsa_planchet.recoup_request(rsa_coin);
        r.denom_sig = one_coin.ub_sig();
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "another coin's denomination signature",
        );
        let mut r = rsa_planchet.recoup_request(rsa_coin);
        r.h_age_commitment = Some(ShortHashCode::from_bytes([1; 32]));
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "an age commitment",
        );
        // The coin's signature by another key, or over another secret.
        let mut r = rsa_planchet.recoup_request(rsa_coin);
        r.coin_sig = rsa_planchet.recoup_request(one_coin).coin_sig;
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeRecoupSignatureInvalid,
            "another coin's signature",
        );
        let mut r = rsa_planchet.recoup_request(rsa_coin);
        r.coin_blind_key_secret = cardcash_api::exchange::BlindingKeySecret::from_bytes([9; 32]);
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeRecoupSignatureInvalid,
            "a secret the coin did not sign",
        );
        // The coin signs a wrong secret: no withdrawal has that envelope.
        let (_, ewv, _) = rsa_planchet.blinding();
        let r = wallet::recoup_request(rsa_coin, [9; 32], ewv, None, false);
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            404,
            ErrorCode::ExchangeRecoupWithdrawNotFound,
            "wrong blinding secret",
        );
        // Values that cannot blind: CS values for an RSA coin, RSA's for a CS coin, no nonce.
        let (bks, _, _) = rsa_planchet.blinding();
        let (seed, cs_ewv, nonce) = cs_planchet.blinding();
        let r = wallet::recoup_request(rsa_coin, bks, cs_ewv.clone(), None, false);
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            500,
            ErrorCode::ExchangeRecoupBlindingFailed,
            "CS values for an RSA coin",
        );
        let r = wallet::recoup_request(cs_coin, seed, ExchangeWithdrawValues::Rsa, nonce, false);
        raw.post(&recoup_path(cs_coin), &json_of(&r)).await.expect(
            500,
            ErrorCode::ExchangeRecoupBlindingFailed,
            "RSA values for a CS coin",
        );
        let r = wallet::recoup_request(cs_coin, seed, cs_ewv.clone(), None, false);
        raw.post(&recoup_path(cs_coin), &json_of(&r)).await.expect(
            500,
            ErrorCode::ExchangeRecoupBlindingFailed,
            "a CS coin without its nonce",
        );
        // A recoup-refresh signature (1206) is no recoup signature.
        let r = wallet::recoup_request(rsa_coin, bks, ExchangeWithdrawValues::Rsa, None, true);
        raw.post(&recoup_path(rsa_coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeRecoupSignatureInvalid,
            "a recoup-refresh signature",
        );
        // Spent in full: nothing to pay back.
        let answer = raw
            .post(
                &recoup_path(spent_coin),
                &json_of(&spent_planchet.recoup_request(spent_coin)),
            )
            .await;
        answer.expect(
            409,
            ErrorCode::ExchangeGenericInsufficientFunds,
            "spent coin",
        );
        let proof: CoinInsufficientFundsResponse = serde_json::from_value(answer.body.clone())
            .unwrap_or_else(|e| panic!("{e}: {}", answer.body));
        assert_eq!(proof.coin_pub, spent_coin.coin_pub);
        // Malformed: the path's coin key, the body.
        for bad in crate::conformance::bad_keys() {
            raw.post(
                &format!("coins/{bad}/recoup"),
                &json_of(&rsa_planchet.recoup_request(rsa_coin)),
            )
            .await
            .expect(400, ErrorCode::ExchangeGenericCoinsInvalidCoinPub, &bad);
        }
        let mut malformed = json_of(&rsa_planchet.recoup_request(rsa_coin));
        malformed.as_object_mut().unwrap().remove("coin_sig");
        raw.post(&recoup_path(rsa_coin), &malformed).await.expect(
            400,
            ErrorCode::GenericJsonInvalid,
            "no coin_sig",
        );
        raw.post(&recoup_path(rsa_coin), &json!({ "denom_pub_hash": 5 }))
            .await
            .expect(400, ErrorCode::GenericJsonInvalid, "a number for a hash");
        // Another coin's request under this coin's key in the path.
        raw.post(
            &recoup_path(rsa_coin),
            &json_of(&cs_planchet.recoup_request(cs_coin)),
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeDenominationSignatureInvalid,
            "coin of the path",
        );

        assert_eq!(sums(&world).await, before, "the refusals changed the books");
        assert_eq!(balance(&world, &reserve.public()).await, balance_before);
        // The 1 is in force: not eligible.
        raw.post(
            &recoup_path(one_coin),
            &json_of(&one_planchet.recoup_request(one_coin)),
        )
        .await
        .expect(
            410,
            ErrorCode::ExchangeRecoupNotEligible,
            "the 1 is in force",
        );
        // And the revoked coins still recoup.
        for (p, c) in [(rsa_planchet, rsa_coin), (cs_planchet, cs_coin)] {
            client
                .recoup(&c.coin_pub, &p.recoup_request(c))
                .await
                .unwrap();
        }
        assert_eq!(
            balance(&world, &reserve.public()).await,
            balance_before.checked_add(&kudos("7")).unwrap()
        );
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A recoup and a deposit of the same coin at once, on the storage directly (over HTTP the
    /// revocation refuses the deposit; a deposit checked against the key snapshot of just
    /// before the revocation can still reach the database): whichever goes first, the coin pays
    /// out exactly its value, never more. Coins the exchange never saw (both race to make the
    /// coin known) and coins seen before (by an earlier deposit).
    async fn recoup_racing_a_deposit_never_pays_more_than_the_coin(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "60").await;
        let five = pick(&denoms, "5", false);
        let coins = withdraw(&world, &reserve, &[five; 10]).await;
        let contract = wallet::Contract::new(
            "payto://x-taler-bank/bank.example/merchant?receiver-name=Merchant"
                .parse()
                .unwrap(),
            Timestamp::now().saturating_add(cardcash_util::RelativeTime::from_secs(3600)),
        );
        // The last five coins are known before the race: 1 of each deposited.
        for (_, coin) in &coins[5..] {
            client
                .batch_deposit(&contract.deposit(&[(coin, kudos("1"))]))
                .await
                .unwrap();
        }
        revoke(&world, five).await;
        let serial = world.exchange().app().exchange().keys().denominations[&five.h].serial;
        let s = store(&world).clone();
        let mut races = Vec::new();
        for (i, (planchet, coin)) in coins.iter().enumerate() {
            let request = planchet.recoup_request(coin);
            let denom_sig = match coin.ub_sig() {
                cardcash_api::exchange::UnblindedSignature::Rsa { rsa_signature } => {
                    rsa_signature.as_bytes().to_vec()
                }
                other => panic!("RSA expected: {other:?}"),
            };
            let recoup = NewRecoup {
                coin_pub: coin.coin_pub,
                denom_serial: serial,
                denom_sig: denom_sig.clone(),
                coin_value: kudos("5"),
                h_blind_ev: planchet_hash(planchet),
                coin_sig: request.coin_sig,
                coin_blind: *request.coin_blind_key_secret.as_bytes(),
                now: Timestamp::now(),
                reserve_expiration: Timestamp::now(),
            };
            let deposit_request = contract.deposit(&[(coin, kudos("3"))]);
            let c = &deposit_request.coins[0];
            let deposit = NewBatchDeposit {
                merchant_pub: deposit_request.merchant_pub,
                h_contract_terms: HashCode::from_bytes([u8::try_from(i).unwrap(); 64]),
                merchant_payto: deposit_request.merchant_payto_uri.to_string(),
                h_payto: cardcash_crypto::h_payto(&deposit_request.merchant_payto_uri.to_string()),
                wire_salt: deposit_request.wire_salt,
                wallet_timestamp: deposit_request.timestamp,
                exchange_timestamp: Timestamp::now(),
                refund_deadline: Timestamp::ZERO,
                wire_deadline: deposit_request.wire_transfer_deadline,
                wallet_data_hash: None,
                h_coin_sigs: cardcash_crypto::coin::h_coin_sigs([&c.coin_sig]),
                total_without_fee: kudos("2.99"),
                coins: vec![NewCoinDeposit {
                    coin_pub: coin.coin_pub,
                    denom_serial: serial,
                    denom_sig,
                    coin_value: kudos("5"),
                    coin_sig: c.coin_sig,
                    amount_with_fee: kudos("3"),
                    deposit_fee: kudos("0.01"),
                }],
            };
            let (s1, s2) = (s.clone(), s.clone());
            races.push(tokio::spawn(async move {
                let (r, d) = tokio::join!(s1.recoup(recoup), s2.batch_deposit(deposit));
                (r.unwrap(), d.unwrap())
            }));
        }
        let mut credited = Amount::zero(&"KUDOS".parse().unwrap());
        for (i, race) in races.into_iter().enumerate() {
            let (recouped, deposited) = race.await.unwrap();
            let before = if i >= 5 { kudos("1") } else { kudos("0") };
            let RecoupOutcome::Done { amount, .. } = recouped else {
                panic!("coin {i}: the recoup always finds something: {recouped:?}");
            };
            let paid = match deposited {
                DepositOutcome::Done { .. } => kudos("3"),
                DepositOutcome::InsufficientFunds { .. } => kudos("0"),
                other => panic!("coin {i}: {other:?}"),
            };
            assert_eq!(
                before
                    .checked_add(&paid)
                    .unwrap()
                    .checked_add(&amount)
                    .unwrap(),
                kudos("5"),
                "coin {i}: deposited {before} + {paid}, recouped {amount}"
            );
            credited = credited.checked_add(&amount).unwrap();
        }
        let expected = kudos("60")
            .checked_sub(&kudos("50.1"))
            .unwrap()
            .checked_add(&credited)
            .unwrap();
        assert_eq!(balance(&world, &reserve.public()).await, expected);
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

/// The envelope hash of `planchet`'s withdrawal (what the exchange recomputes in a recoup).
fn planchet_hash(planchet: &Planchet) -> HashCode {
    match &planchet.request.coin_ev {
        cardcash_api::exchange::CoinEnvelope::Rsa {
            rsa_blinded_planchet,
        } => cardcash_crypto::coin::coin_envelope_hash(
            &planchet.denom.h,
            rsa_blinded_planchet.as_bytes(),
        ),
        other => panic!("RSA expected: {other:?}"),
    }
}

// ------------------------------------------------------------------------------ recoup-refresh

/// A bank and an exchange with RSA 1, 2 and 5 and a CS 1 (all fees 0.01).
async fn refresh_world(engine: Engine) -> World {
    cardcash_testkit::world(engine)
        .currency("KUDOS".parse().unwrap())
        .bank()
        .configure_exchange(|c| {
            let rsa = || cardcash_exchange::config::CipherConfig::Rsa { bits: 1024 };
            c.denominations = vec![
                crate::helpers::coin("coin_kudos_1", rsa(), "1", "0.01"),
                crate::helpers::coin("coin_kudos_2", rsa(), "2", "0.01"),
                crate::helpers::coin("coin_kudos_5", rsa(), "5", "0.01"),
                crate::helpers::coin(
                    "coin_kudos_cs_1",
                    cardcash_exchange::config::CipherConfig::Cs,
                    "1",
                    "0.01",
                ),
            ];
        })
        .start()
        .await
        .unwrap()
}

/// Melts `old` into one coin of each of `fresh` and reveals: the fresh coins.
async fn refresh(world: &World, old: &Coin, fresh: &[Denom]) -> Vec<wallet::refresh::FreshCoin> {
    let client = world.exchange().client();
    let r = wallet::refresh::Refresh::prepare(&client, old, fresh).await;
    let melt = client.melt(&old.coin_pub, &r.melt_request()).await.unwrap();
    let reveal = client
        .reveal(&r.rc, &r.reveal_request(melt.noreveal_index))
        .await
        .unwrap();
    let sigs: Vec<_> = reveal.ev_sigs.into_iter().map(|s| s.ev_sig).collect();
    r.coins(melt.noreveal_index, &sigs)
}

fn recoup_refresh_request(fresh: &wallet::refresh::FreshCoin) -> RecoupRequest {
    let (bks, ewv, nonce) = fresh.blinding();
    wallet::recoup_request(&fresh.coin, bks, ewv, nonce, true)
}

/// `OLD-COIN-RECOUP` entries of an old coin's history, each checked against the exchange's
/// signature (1041), as `(fresh coin, amount)`.
fn old_coin_recoups(
    history: &[CoinHistoryEntry],
    old: EddsaPublicKey,
) -> Vec<(EddsaPublicKey, Amount)> {
    history
        .iter()
        .filter_map(|e| match e {
            CoinHistoryEntry::OldCoinRecoup {
                amount,
                exchange_sig,
                exchange_pub,
                coin_pub,
                timestamp,
            } => {
                cardcash_crypto::verify(
                    exchange_pub,
                    exchange_sig,
                    &RecoupRefreshConfirmation {
                        timestamp: *timestamp,
                        recoup_amount: *amount,
                        coin_pub: *coin_pub,
                        old_coin_pub: old,
                    },
                )
                .expect("the exchange's confirmation of the recoup-refresh");
                Some((*coin_pub, *amount))
            }
            _ => None,
        })
        .collect()
}

engine_test!(
    /// A 5 refreshed into a 2 (RSA) and a 1 (CS): 3.03 melted, 1.97 left. The 2 pays 0.5 to a
    /// merchant; then both fresh denominations are revoked and both fresh coins recouped into
    /// the 5: it gets 1.5 + 1 back (4.47 left), its history shows two OLD-COIN-RECOUPs, the
    /// fresh coins' a RECOUP-REFRESH each (signed, 1041); a replay pays nothing; the 5 is then
    /// refreshed again (into a 1). Refusals: a denomination in force 410 1580, a recoup
    /// signature (1203) 403 1575, a withdrawn coin 404 1576 (and a fresh coin at `/recoup` 404
    /// 1551); they change nothing.
    async fn recoup_refresh_after_refresh(engine: Engine) {
        let world = refresh_world(engine).await;
        let client = world.exchange().client();
        let raw = Raw::new(world.exchange().base_url());
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "20").await;
        let (one, two, five, cs_one) = (
            pick(&denoms, "1", false),
            pick(&denoms, "2", false),
            pick(&denoms, "5", false),
            pick(&denoms, "1", true),
        );
        let withdrawn = withdraw(&world, &reserve, &[five, two]).await;
        let old = &withdrawn[0].1;
        let fresh = refresh(&world, old, &[two.clone(), cs_one.clone()]).await;
        assert_eq!(coin_history(&world, old).await.0, kudos("1.97"));
        let contract = wallet::Contract::new(
            "payto://x-taler-bank/bank.example/merchant?receiver-name=Merchant"
                .parse()
                .unwrap(),
            Timestamp::now().saturating_add(cardcash_util::RelativeTime::from_secs(3600)),
        );
        client
            .batch_deposit(&contract.deposit(&[(&fresh[0].coin, kudos("0.5"))]))
            .await
            .unwrap();

        // Not revoked yet.
        let path = |c: &Coin| format!("coins/{}/recoup-refresh", c.coin_pub);
        raw.post(
            &path(&fresh[0].coin),
            &json_of(&recoup_refresh_request(&fresh[0])),
        )
        .await
        .expect(410, ErrorCode::ExchangeRecoupRefreshNotEligible, "in force");
        revoke(&world, two).await;
        revoke(&world, cs_one).await;
        audit_clean(&world).await;
        let before = sums(&world).await;
        // A recoup signature is no recoup-refresh signature.
        let (bks, ewv, nonce) = fresh[0].blinding();
        let r = wallet::recoup_request(&fresh[0].coin, bks, ewv, nonce, false);
        raw.post(&path(&fresh[0].coin), &json_of(&r)).await.expect(
            403,
            ErrorCode::ExchangeRecoupRefreshSignatureInvalid,
            "a 1203 signature",
        );
        // A withdrawn coin was never revealed; a fresh coin was never withdrawn.
        let (p1, c1) = &withdrawn[1];
        let (bks, ewv, nonce) = p1.blinding();
        let r = wallet::recoup_request(c1, bks, ewv, nonce, true);
        raw.post(&path(c1), &json_of(&r)).await.expect(
            404,
            ErrorCode::ExchangeRecoupRefreshMeltNotFound,
            "a withdrawn coin",
        );
        let (bks, ewv, nonce) = fresh[0].blinding();
        let r = wallet::recoup_request(&fresh[0].coin, bks, ewv, nonce, false);
        raw.post(&recoup_path(&fresh[0].coin), &json_of(&r))
            .await
            .expect(
                404,
                ErrorCode::ExchangeRecoupWithdrawNotFound,
                "a fresh coin at /recoup",
            );
        assert_eq!(sums(&world).await, before, "the refusals changed the books");

        for f in &fresh {
            let answer = client
                .recoup_refresh(&f.coin.coin_pub, &recoup_refresh_request(f))
                .await
                .unwrap();
            assert_eq!(answer.old_coin_pub, old.coin_pub);
        }
        audit_clean(&world).await;
        let (left, history) = coin_history(&world, old).await;
        assert_eq!(left, kudos("4.47"));
        assert_eq!(
            old_coin_recoups(&history, old.coin_pub),
            vec![
                (fresh[0].coin.coin_pub, kudos("1.5")),
                (fresh[1].coin.coin_pub, kudos("1"))
            ]
        );
        for (f, value) in fresh.iter().zip(["1.5", "1"]) {
            let (left, history) = coin_history(&world, &f.coin).await;
            assert_eq!(left, kudos("0"));
            let Some(CoinHistoryEntry::RecoupRefresh {
                amount,
                exchange_sig,
                exchange_pub,
                old_coin_pub,
                coin_sig,
                coin_blind,
                timestamp,
            }) = history.last()
            else {
                panic!("a RECOUP-REFRESH last: {history:?}");
            };
            assert_eq!(*amount, kudos(value));
            assert_eq!(*old_coin_pub, old.coin_pub);
            let request = recoup_refresh_request(f);
            assert_eq!(*coin_sig, request.coin_sig);
            assert_eq!(*coin_blind, request.coin_blind_key_secret);
            cardcash_crypto::verify(
                exchange_pub,
                exchange_sig,
                &RecoupRefreshConfirmation {
                    timestamp: *timestamp,
                    recoup_amount: *amount,
                    coin_pub: f.coin.coin_pub,
                    old_coin_pub: old.coin_pub,
                },
            )
            .unwrap();
        }

        // A replay: the same answer, no money.
        let before = sums(&world).await;
        let again = client
            .recoup_refresh(&fresh[1].coin.coin_pub, &recoup_refresh_request(&fresh[1]))
            .await
            .unwrap();
        assert_eq!(again.old_coin_pub, old.coin_pub);
        assert_eq!(sums(&world).await, before);

        // The old coin's value is spendable again: refreshed into a 1 (1.02 of its 4.47).
        let again = refresh(&world, old, std::slice::from_ref(one)).await;
        assert_eq!(again.len(), 1);
        assert_eq!(coin_history(&world, old).await.0, kudos("3.45"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A melted coin is a zombie (it may melt past its denomination's deposit expiry: the
    /// storage's `zombie_required`) only once a coin refreshed from it was recouped into it.
    async fn recoup_refresh_makes_the_old_coin_a_zombie(engine: Engine) {
        let world = refresh_world(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "10").await;
        let (two, five) = (pick(&denoms, "2", false), pick(&denoms, "5", false));
        let withdrawn = withdraw(&world, &reserve, &[five]).await;
        let old = &withdrawn[0].1;
        let fresh = refresh(&world, old, std::slice::from_ref(two)).await;
        let snapshot = world.exchange().app().exchange().keys();
        let serial = snapshot.denominations[&five.h].serial;
        let zombie_melt = |n: u8| NewMelt {
            rc: HashCode::from_bytes([n; 64]),
            coin_pub: old.coin_pub,
            denom_serial: serial,
            denom_sig: match old.ub_sig() {
                cardcash_api::exchange::UnblindedSignature::Rsa { rsa_signature } => {
                    rsa_signature.as_bytes().to_vec()
                }
                other => panic!("RSA expected: {other:?}"),
            },
            coin_value: kudos("5"),
            coin_sig: cardcash_util::EddsaSignature::from_bytes([n; 64]),
            amount_with_fee: kudos("0.5"),
            melt_fee: kudos("0.01"),
            noreveal_index: 0,
            rms: None,
            zombie_required: true,
            now: Timestamp::now(),
        };
        assert_eq!(
            store(&world).melt(zombie_melt(1)).await.unwrap(),
            MeltOutcome::NoZombie,
            "no recoup into it yet"
        );
        revoke(&world, two).await;
        client
            .recoup_refresh(&fresh[0].coin.coin_pub, &recoup_refresh_request(&fresh[0]))
            .await
            .unwrap();
        assert!(matches!(
            store(&world).melt(zombie_melt(2)).await.unwrap(),
            MeltOutcome::Done { .. }
        ));
        // 5 − 2.02 melted + 2 recouped − 0.5 melted as a zombie.
        assert_eq!(coin_history(&world, old).await.0, kudos("4.48"));
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A recoup and a melt of the same coin at once, on the storage directly (as with a
    /// deposit: a melt checked against the key snapshot of just before the revocation can still
    /// reach the database): whichever goes first, the coin pays out exactly its value.
    async fn recoup_racing_a_melt_never_pays_more_than_the_coin(engine: Engine) {
        let world = bank_and_exchange(engine).await;
        let client = world.exchange().client();
        let denoms = wallet::denominations(&client.keys().await.unwrap());
        let reserve = funded_reserve(&world, "60").await;
        let five = pick(&denoms, "5", false);
        let coins = withdraw(&world, &reserve, &[five; 8]).await;
        revoke(&world, five).await;
        let serial = world.exchange().app().exchange().keys().denominations[&five.h].serial;
        let s = store(&world).clone();
        let mut races = Vec::new();
        for (i, (planchet, coin)) in coins.iter().enumerate() {
            let request = planchet.recoup_request(coin);
            let denom_sig = match coin.ub_sig() {
                cardcash_api::exchange::UnblindedSignature::Rsa { rsa_signature } => {
                    rsa_signature.as_bytes().to_vec()
                }
                other => panic!("RSA expected: {other:?}"),
            };
            let recoup = NewRecoup {
                coin_pub: coin.coin_pub,
                denom_serial: serial,
                denom_sig: denom_sig.clone(),
                coin_value: kudos("5"),
                h_blind_ev: planchet_hash(planchet),
                coin_sig: request.coin_sig,
                coin_blind: *request.coin_blind_key_secret.as_bytes(),
                now: Timestamp::now(),
                reserve_expiration: Timestamp::now(),
            };
            let n = u8::try_from(i).unwrap();
            let melt = NewMelt {
                rc: HashCode::from_bytes([n; 64]),
                coin_pub: coin.coin_pub,
                denom_serial: serial,
                denom_sig,
                coin_value: kudos("5"),
                coin_sig: cardcash_util::EddsaSignature::from_bytes([n; 64]),
                amount_with_fee: kudos("3"),
                melt_fee: kudos("0.01"),
                noreveal_index: 0,
                rms: None,
                zombie_required: false,
                now: Timestamp::now(),
            };
            let (s1, s2) = (s.clone(), s.clone());
            races.push(tokio::spawn(async move {
                let (r, m) = tokio::join!(s1.recoup(recoup), s2.melt(melt));
                (r.unwrap(), m.unwrap())
            }));
        }
        let mut credited = Amount::zero(&"KUDOS".parse().unwrap());
        for (i, race) in races.into_iter().enumerate() {
            let (recouped, melted) = race.await.unwrap();
            let RecoupOutcome::Done { amount, .. } = recouped else {
                panic!("coin {i}: the recoup always finds something: {recouped:?}");
            };
            let paid = match melted {
                MeltOutcome::Done { .. } => kudos("3"),
                MeltOutcome::InsufficientFunds => kudos("0"),
                other => panic!("coin {i}: {other:?}"),
            };
            assert_eq!(
                paid.checked_add(&amount).unwrap(),
                kudos("5"),
                "coin {i}: melted {paid}, recouped {amount}"
            );
            credited = credited.checked_add(&amount).unwrap();
        }
        let expected = kudos("60")
            .checked_sub(&kudos("40.08"))
            .unwrap()
            .checked_add(&credited)
            .unwrap();
        assert_eq!(balance(&world, &reserve.public()).await, expected);
        audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);
