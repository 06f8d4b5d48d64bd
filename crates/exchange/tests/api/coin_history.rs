//! `GET /coins/$COIN_PUB/history`: after a double-spending 409 the wallet reads its coin's
//! history with the coin's signature and can prove the double spend; a wrong signature is 403,
//! a coin the exchange never saw 404; pages after `start`, ETags, 304 and 204 as the C
//! exchange answers them.

use cardcash_api::exchange::{
    COIN_HISTORY_SIGNATURE_HEADER, CoinHistoryEntry, CoinHistoryResponse,
    CoinInsufficientFundsResponse, RefundRequest,
};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{CoinHistoryRequest, DepositRequestV23, MerchantRefund};
use cardcash_exchange::audit;
use cardcash_exchange::config::CipherConfig;
use cardcash_testkit::{BankAccount, Engine, World, engine_test};
use cardcash_util::{
    Amount, EddsaPublicKey, ErrorCode, HashCode, PaytoUri, RelativeTime, Timestamp,
};

use crate::conformance::{Answer, Raw};
use crate::helpers::{coin, kudos};
use crate::wallet::{self, Coin, Contract};
use crate::withdraw::{funded_reserve, pick};

/// A bank with a merchant account and an exchange with a 5 (RSA, fees 0.01) and a 2 (CS, fees
/// 0.02) denomination.
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
async fn two_coins(world: &World) -> (Coin, Coin) {
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
            &cardcash_api::exchange::BatchWithdrawRequest {
                planchets: planchets.iter().map(|p| p.request.clone()).collect(),
            },
        )
        .await
        .unwrap();
    let mut coins = planchets
        .iter()
        .zip(&response.ev_sigs)
        .map(|(p, s)| p.unblind(&s.ev_sig));
    (coins.next().unwrap(), coins.next().unwrap())
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

/// A contract whose wire deadline is an hour away (nothing is aggregated during the test).
fn contract(world: &World) -> Contract {
    let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs())
        .saturating_add(RelativeTime::from_secs(3600));
    Contract::new(merchant_payto(world), wire_deadline)
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

/// The coin key's signature over `start`, as the header carries it.
fn history_sig(key: &EddsaPrivateKey, start: u64) -> String {
    key.sign(&CoinHistoryRequest { start_off: start })
        .to_string()
}

/// `GET coins/$COIN/history?start=…` signed by the coin, with extra headers.
async fn get_history(raw: &Raw, coin: &Coin, start: u64, extra: &[(&str, &str)]) -> Answer {
    let sig = history_sig(&coin.coin_priv, start);
    let mut headers = vec![(COIN_HISTORY_SIGNATURE_HEADER, sig.as_str())];
    headers.extend_from_slice(extra);
    raw.get_with(
        &format!("coins/{}/history?start={start}", coin.coin_pub),
        &headers,
    )
    .await
}

/// The ETag of an answer as a number (it is `"<offset>"`).
#[track_caller]
fn etag(answer: &Answer) -> u64 {
    let value = answer.header("etag").expect("an ETag");
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ETag {value:?} is a quoted number"))
}

#[track_caller]
fn history_of(answer: &Answer) -> CoinHistoryResponse {
    serde_json::from_value(answer.expect_ok(200, "history").clone()).unwrap()
}

/// The deposit message the coin signed, rebuilt from a `DEPOSIT` entry of its history (what a
/// wallet, an auditor or a court does with the proof).
fn signed_deposit(entry: &CoinHistoryEntry, h_denom_pub: HashCode) -> DepositRequestV23 {
    let CoinHistoryEntry::Deposit {
        amount,
        deposit_fee,
        timestamp,
        refund_deadline,
        merchant_pub,
        h_contract_terms,
        h_wire,
        h_age_commitment: None,
        wallet_data_hash: None,
        h_policy: None,
        ..
    } = entry
    else {
        panic!("a v23 deposit entry without age, wallet data or policy: {entry:?}")
    };
    DepositRequestV23 {
        h_contract_terms: *h_contract_terms,
        h_age_commitment: [0; 32],
        h_policy: HashCode::from_bytes([0; 64]),
        h_wire: *h_wire,
        h_denom_pub,
        wallet_timestamp: *timestamp,
        refund_deadline: refund_deadline.unwrap_or(Timestamp::ZERO),
        amount_with_fee: *amount,
        deposit_fee: *deposit_fee,
        merchant_pub: *merchant_pub,
        wallet_data_hash: HashCode::from_bytes([0; 64]),
    }
}

fn coin_sig_of(entry: &CoinHistoryEntry) -> cardcash_util::EddsaSignature {
    match entry {
        CoinHistoryEntry::Deposit { coin_sig, .. } => *coin_sig,
        other => panic!("a deposit expected: {other:?}"),
    }
}

fn amount_of(entry: &CoinHistoryEntry) -> Amount {
    match entry {
        CoinHistoryEntry::Deposit { amount, .. } | CoinHistoryEntry::Refund { amount, .. } => {
            *amount
        }
        other => panic!("a deposit or refund expected: {other:?}"),
    }
}

async fn assert_audit_clean(world: &World) {
    let report = audit::audit(world.exchange().app().exchange().store())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
}

engine_test!(
    /// The 5 coin pays 3 to one merchant, then the wallet (or a thief with a copy) spends it
    /// again for 3: 409 naming the coin. The coin's owner fetches the history and proves the
    /// double spend: the exchange shows the first deposit with the coin's own signature over
    /// it, and 3 + 3 > 5. A wrong signature is 403, a coin the exchange never saw 404.
    async fn double_spend_proven_from_the_history(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let client = world.exchange().client();
        let (five, two) = two_coins(&world).await;
        let first = contract(&world);
        let paid = first.deposit(&[(&five, kudos("3"))]);
        client.batch_deposit(&paid).await.unwrap();

        let second = contract(&world);
        let err = client
            .batch_deposit(&second.deposit(&[(&five, kudos("3"))]))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::ExchangeGenericInsufficientFunds)
        );
        let conflict: CoinInsufficientFundsResponse = err.body_as().unwrap();
        assert_eq!(conflict.coin_pub, five.coin_pub);

        // The wallet asks with the coin's signature over start = 0.
        let signature = five.coin_priv.sign(&CoinHistoryRequest { start_off: 0 });
        let history = client
            .coin_history(&conflict.coin_pub, 0, &signature)
            .await
            .unwrap()
            .expect("a history");
        assert_eq!(history.h_denom_pub, conflict.h_denom_pub);
        assert_eq!(history.h_denom_pub, five.denom.h);
        assert_eq!(history.balance, kudos("2"));
        assert_eq!(history.history.len(), 1, "{history:?}");
        let entry = &history.history[0];
        assert_eq!(
            entry,
            &CoinHistoryEntry::Deposit {
                amount: kudos("3"),
                deposit_fee: kudos("0.01"),
                timestamp: first.timestamp,
                refund_deadline: Some(first.refund_deadline),
                merchant_pub: first.merchant.public(),
                h_contract_terms: first.h_contract_terms,
                h_wire: first.h_wire(),
                h_age_commitment: None,
                wallet_data_hash: None,
                h_policy: None,
                coin_sig: paid.coins[0].coin_sig,
            }
        );
        // The proof: the coin itself signed the deposit the exchange shows…
        cardcash_crypto::verify(
            &five.coin_pub,
            &coin_sig_of(entry),
            &signed_deposit(entry, history.h_denom_pub),
        )
        .expect("the coin's signature over the listed deposit verifies");
        // …and that deposit plus the refused one exceed the coin's value.
        let spent = amount_of(entry).checked_add(&kudos("3")).unwrap();
        assert!(spent > five.denom.value, "{spent} > {}", five.denom.value);
        assert_eq!(
            history.balance.checked_add(&amount_of(entry)).unwrap(),
            five.denom.value
        );

        // Signed by another key, or over another start: 403, before anything else.
        let raw = Raw::new(world.exchange().base_url());
        let path = format!("coins/{}/history", five.coin_pub);
        let stranger = EddsaPrivateKey::generate().unwrap();
        let err = client
            .coin_history(
                &five.coin_pub,
                0,
                &stranger.sign(&CoinHistoryRequest { start_off: 0 }),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.error_code()),
            (Some(403), Some(ErrorCode::ExchangeCoinHistoryBadSignature))
        );
        raw.get_with(
            &format!("{path}?start=1"),
            &[(
                COIN_HISTORY_SIGNATURE_HEADER,
                &history_sig(&five.coin_priv, 0),
            )],
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeCoinHistoryBadSignature,
            "signed over another start",
        );
        raw.get_with(
            &format!("coins/{}/history", stranger.public()),
            &[(
                COIN_HISTORY_SIGNATURE_HEADER,
                &history_sig(&five.coin_priv, 0),
            )],
        )
        .await
        .expect(
            403,
            ErrorCode::ExchangeCoinHistoryBadSignature,
            "an unknown coin with another coin's signature",
        );

        // Coins the exchange never saw deposited: 404 with a good signature.
        for unknown in [&two.coin_priv, &stranger] {
            let err = client
                .coin_history(
                    &unknown.public(),
                    0,
                    &unknown.sign(&CoinHistoryRequest { start_off: 0 }),
                )
                .await
                .unwrap_err();
            assert_eq!(
                (err.status(), err.error_code()),
                (Some(404), Some(ErrorCode::ExchangeGenericCoinUnknown))
            );
        }

        // Malformed requests.
        raw.get(&path)
            .await
            .expect(400, ErrorCode::GenericParameterMissing, "no signature");
        for bad in ["", "abc", &EddsaPublicKey::from_bytes([1; 32]).to_string()] {
            raw.get_with(&path, &[(COIN_HISTORY_SIGNATURE_HEADER, bad)])
                .await
                .expect(400, ErrorCode::GenericParameterMalformed, bad);
        }
        // (Numbers sscanf's %llu takes, like -1, reach the signature check there: 403.)
        for start in ["soon", "", "1x"] {
            raw.get_with(
                &format!("{path}?start={start}"),
                &[(
                    COIN_HISTORY_SIGNATURE_HEADER,
                    &history_sig(&five.coin_priv, 0),
                )],
            )
            .await
            .expect(400, ErrorCode::GenericParameterMalformed, start);
        }
        for bad in ["x", "AAAA", &"0".repeat(53)] {
            raw.get_with(
                &format!("coins/{bad}/history"),
                &[(
                    COIN_HISTORY_SIGNATURE_HEADER,
                    &history_sig(&five.coin_priv, 0),
                )],
            )
            .await
            .expect(400, ErrorCode::ExchangeGenericCoinsInvalidCoinPub, bad);
        }
        // Reading changed nothing.
        let again = client
            .coin_history(&five.coin_pub, 0, &signature)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, history);
        assert_audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Deposit 2 and refund 1 of it (fee 0.01), read the history and its ETag; If-None-Match
    /// with it (or `start` at it) is 304, a stale ETag with nothing after `start` is 204. Then
    /// another deposit, made after the refund: the page after the ETag is exactly that deposit,
    /// and the whole history has all three, each verifiable.
    async fn pages_etags_and_refunds(engine: Engine) {
        let world = world_with_merchant(engine).await;
        let client = world.exchange().client();
        let (five, _) = two_coins(&world).await;
        let raw = Raw::new(world.exchange().base_url());
        let a = contract(&world);
        let deposit_a = a.deposit(&[(&five, kudos("2"))]);
        client.batch_deposit(&deposit_a).await.unwrap();
        let refund = refund_request(&a, &five, 7, "1");
        client.refund(&five.coin_pub, &refund).await.unwrap();

        let answer = get_history(&raw, &five, 0, &[]).await;
        let e1 = etag(&answer);
        assert_eq!(answer.header("cache-control"), Some("no-cache, public"));
        let h1 = history_of(&answer);
        assert_eq!(h1.balance, kudos("3.99"), "5 − 2 + (1 − 0.01)");
        assert_eq!(h1.history.len(), 2, "{h1:?}");
        assert_eq!(coin_sig_of(&h1.history[0]), deposit_a.coins[0].coin_sig);
        assert_eq!(
            h1.history[1],
            CoinHistoryEntry::Refund {
                amount: kudos("0.99"),
                refund_fee: kudos("0.01"),
                h_contract_terms: a.h_contract_terms,
                merchant_pub: a.merchant.public(),
                rtransaction_id: 7,
                merchant_sig: refund.merchant_sig,
            }
        );
        // The merchant's signature covers the refund with its fee.
        let CoinHistoryEntry::Refund {
            amount,
            refund_fee,
            merchant_sig,
            ..
        } = &h1.history[1]
        else {
            unreachable!()
        };
        cardcash_crypto::verify(
            &a.merchant.public(),
            merchant_sig,
            &MerchantRefund {
                h_contract_terms: a.h_contract_terms,
                coin_pub: five.coin_pub,
                rtransaction_id: 7,
                refund_amount: amount.checked_add(refund_fee).unwrap(),
            },
        )
        .expect("the listed refund is the merchant's");

        // Not modified: the client's ETag, or `start` at the newest entry (the C exchange
        // compares `start` when there is no If-None-Match).
        let e1_tag = format!("\"{e1}\"");
        for (start, tags) in [
            (0, vec![("if-none-match", e1_tag.as_str())]),
            (e1, vec![]),
            (e1, vec![("if-none-match", "W/\"1\"")]),
        ] {
            let answer = get_history(&raw, &five, start, &tags).await;
            assert_eq!(
                answer.status, 304,
                "start {start}, {tags:?}: {}",
                answer.body
            );
            assert_eq!(etag(&answer), e1);
            assert_eq!(answer.body, serde_json::Value::Null);
        }
        // Nothing after `start`, but the client's ETag is stale: 204 with the current ETag.
        let answer = get_history(&raw, &five, e1, &[("if-none-match", "\"0\"")]).await;
        assert_eq!(answer.status, 204, "{}", answer.body);
        assert_eq!(etag(&answer), e1);
        assert_eq!(answer.body, serde_json::Value::Null);
        // So does an offset beyond the history; the client says None for a 204.
        assert_eq!(
            client
                .coin_history(
                    &five.coin_pub,
                    e1 + 5,
                    &five
                        .coin_priv
                        .sign(&CoinHistoryRequest { start_off: e1 + 5 })
                )
                .await
                .unwrap(),
            None
        );

        // A deposit after the refund.
        let b = contract(&world);
        let deposit_b = b.deposit(&[(&five, kudos("1"))]);
        client.batch_deposit(&deposit_b).await.unwrap();
        let answer = get_history(&raw, &five, e1, &[]).await;
        let e2 = etag(&answer);
        assert_ne!(e2, e1);
        let page = history_of(&answer);
        assert_eq!(page.balance, kudos("2.99"));
        assert_eq!(page.history.len(), 1, "only what is new: {page:?}");
        assert_eq!(coin_sig_of(&page.history[0]), deposit_b.coins[0].coin_sig);
        assert_eq!(get_history(&raw, &five, e2, &[]).await.status, 304);
        // The old ETag is stale now: the whole history again, deposits then refunds.
        let answer = get_history(&raw, &five, 0, &[("if-none-match", &e1_tag)]).await;
        assert_eq!(etag(&answer), e2);
        let all = history_of(&answer);
        assert_eq!(all.balance, kudos("2.99"));
        assert_eq!(all.history.len(), 3, "{all:?}");
        assert_eq!(all.history[0], h1.history[0]);
        assert_eq!(all.history[1], page.history[0]);
        assert_eq!(all.history[2], h1.history[1]);
        for entry in &all.history[..2] {
            cardcash_crypto::verify(
                &five.coin_pub,
                &coin_sig_of(entry),
                &signed_deposit(entry, all.h_denom_pub),
            )
            .expect("each listed deposit is the coin's");
        }
        // What the history says adds up to the balance: 5 − 2 − 1 + 0.99.
        let value = five.denom.value.to_units();
        let out: u128 = all.history[..2]
            .iter()
            .map(|e| amount_of(e).to_units())
            .sum();
        let back = amount_of(&all.history[2]).to_units();
        assert_eq!(all.balance.to_units(), value - out + back);
        // Paging through it from 0 with the ETags gives every entry exactly once.
        let mut start = 0;
        let mut seen = Vec::new();
        loop {
            let answer = get_history(&raw, &five, start, &[]).await;
            if answer.status == 304 {
                break;
            }
            seen.extend(history_of(&answer).history);
            start = etag(&answer);
        }
        assert_eq!(seen, all.history);
        assert_audit_clean(&world).await;
        world.shutdown().await.unwrap();
    }
);
