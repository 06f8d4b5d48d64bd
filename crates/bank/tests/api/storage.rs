//! The storage itself ([`BankStore`]) on every engine: its balance arithmetic (SQL `NUMERIC` in
//! the PostgreSQL functions, `Balance` in a writer closure on SQLite) against the pure model of
//! `cardcash_bank::balance`, and races that only the database can decide.

use std::sync::Arc;

use cardcash_bank::balance::{Balance, BalanceError};
use cardcash_bank::db::{
    AccountRow, BankStore, ExchangeCredit, IncomingDebtor, NewAccountRow, NewIncoming,
    NewInternalTransfer, Refusal,
};
use cardcash_bank::payto::BankPayto;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{Amount, Currency, EddsaPublicKey, Timestamp};
use futures_util::future::join_all;

use crate::helpers::{CUR, database, reserve_pub};

fn currency() -> Currency {
    CUR.parse().unwrap()
}

/// The storage on a fresh database of `engine`, with the engine's name for messages.
async fn store(engine: Engine) -> (String, BankStore) {
    let payto = BankPayto::new("localhost").unwrap();
    let store = BankStore::new(database(engine).await, currency(), payto);
    (engine.to_string(), store)
}

async fn account(store: &BankStore, name: &str, exchange: bool, limit: Amount) -> AccountRow {
    store
        .insert_account(NewAccountRow {
            name: name.parse().unwrap(),
            legal_name: format!("{name} legal"),
            password_hash: None,
            is_exchange: exchange,
            debit_limit: limit,
            created_at: Timestamp::now(),
        })
        .await
        .unwrap()
        .expect("a fresh name")
}

async fn balance_sum(store: &BankStore) -> i128 {
    let accounts = store.accounts().await.unwrap();
    accounts.iter().map(|a| a.balance.to_signed_units()).sum()
}

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An amount of one of several magnitudes, from 1e-8 to the largest amount.
    fn amount(&mut self, cur: &Currency) -> Amount {
        let max = Amount::max(cur).to_units();
        let units = match self.below(5) {
            0 => u128::from(self.below(100) + 1),
            1 => u128::from(self.below(5_000_000_000) + 1),
            2 => (u128::from(self.next()) << 32 | u128::from(self.next())) % max + 1,
            3 => max - u128::from(self.below(3)),
            _ => max / 2 + u128::from(self.below(3)),
        };
        Amount::from_units(cur, units).unwrap()
    }
}

engine_test!(
    /// Random transfers between accounts with limits from zero to the largest amount, with amounts
    /// from 1e-8 to the largest amount: each is booked or refused exactly as the pure `Balance`
    /// model says (insufficient funds, or a balance that would leave the range of an amount), no
    /// balance ever goes below its limit, and all balances always sum to zero.
    async fn random_transfers_follow_the_balance_model(engine: Engine) {
        let cur = currency();
        let (engine, store) = store(engine).await;
        let limits = [
            Amount::zero(&cur),
            "KUDOS:10".parse().unwrap(),
            Amount::max(&cur),
            Amount::max(&cur),
        ];
        let mut accounts = Vec::new();
        for (i, limit) in limits.iter().enumerate() {
            accounts.push(account(&store, &format!("a{i}"), false, *limit).await);
        }
        let mut model: Vec<Balance> = accounts.iter().map(|_| Balance::zero(&cur)).collect();
        let mut rng = Lcg(0x5eed_0001);
        let (mut booked, mut refused) = (0, 0);
        for step in 0..400 {
            let from = usize::try_from(rng.below(4)).unwrap();
            let to = (from + 1 + usize::try_from(rng.below(3)).unwrap()) % 4;
            let amount = rng.amount(&cur);
            let expected = model[from]
                .debit(&amount, &limits[from])
                .map_err(|e| match e {
                    BalanceError::Insufficient => Refusal::InsufficientFunds,
                    BalanceError::Amount(_) => Refusal::Overflow,
                })
                .and_then(|debtor| match model[to].credit(&amount) {
                    Ok(creditor) => Ok((debtor, creditor)),
                    Err(_) => Err(Refusal::Overflow),
                });
            let got = store
                .internal_transfer(NewInternalTransfer {
                    debtor: accounts[from].name.clone(),
                    creditor: accounts[to].name.clone(),
                    amount,
                    subject: format!("step {step}"),
                    request_uid: None,
                    reserve_pub: Err("not an exchange".to_owned()),
                    now: Timestamp::now(),
                })
                .await
                .unwrap_or_else(|e| panic!("[{engine}] step {step}: {e}"));
            match (expected, got) {
                (Ok((debtor, creditor)), Ok((b, ExchangeCredit::None))) => {
                    assert!(b.new, "[{engine}] step {step}");
                    model[from] = debtor;
                    model[to] = creditor;
                    booked += 1;
                }
                (Err(want), Err(got)) => {
                    assert_eq!(got, want, "[{engine}] step {step}");
                    refused += 1;
                }
                (want, got) => panic!(
                    "[{engine}] step {step}: {amount} from a{from} to a{to}: \
                     expected {want:?}, got {got:?}"
                ),
            }
        }
        assert!(booked > 50 && refused > 50, "[{engine}] {booked}/{refused}");
        for (i, row) in store.accounts().await.unwrap().iter().enumerate() {
            assert_eq!(row.name.as_str(), format!("a{i}"));
            assert_eq!(row.balance, model[i], "[{engine}] balance of a{i}");
            let floor = -i128::try_from(limits[i].to_units()).unwrap();
            assert!(row.balance.to_signed_units() >= floor, "[{engine}] a{i}");
        }
        assert_eq!(balance_sum(&store).await, 0, "[{engine}]");
        store.close().await;
    }
);

engine_test!(
    /// Many requests carrying the same reserve public key to two exchanges at once, from
    /// different customers (so no common row lock orders them): exactly one becomes the reserve;
    /// the other `admin/add-incoming`s are refused and the other Core API transfers bounced. On
    /// PostgreSQL the losers first hit the unique index; the store runs them again and they see
    /// the winner's row: no request fails with a database error.
    async fn one_reserve_pub_racing_to_two_exchanges_is_credited_once(engine: Engine) {
        let cur = currency();
        let (engine, store) = store(engine).await;
        let store = Arc::new(store);
        let limit: Amount = "KUDOS:1000".parse().unwrap();
        let exchanges = [
            account(&store, "ex1", true, Amount::zero(&cur)).await,
            account(&store, "ex2", true, Amount::zero(&cur)).await,
        ];
        let mut customers = Vec::new();
        for i in 0..8 {
            customers.push(account(&store, &format!("c{i}"), false, limit).await);
        }
        for round in 0..6u8 {
            let key: EddsaPublicKey = reserve_pub(round);
            let requests = customers.iter().enumerate().map(|(i, customer)| {
                let store = store.clone();
                let exchange = &exchanges[i % 2];
                let amount: Amount = "KUDOS:1".parse().unwrap();
                let (exchange_id, exchange_name) = (exchange.id, exchange.name.clone());
                let debtor = customer.name.clone();
                async move {
                    if i % 4 < 2 {
                        let got = store
                            .add_incoming(NewIncoming {
                                exchange: exchange_id,
                                debtor: IncomingDebtor::Local(debtor),
                                amount,
                                reserve_pub: key,
                                subject: key.to_string(),
                                now: Timestamp::now(),
                            })
                            .await;
                        match got {
                            Ok(Ok(_)) => Ok(true),
                            Ok(Err(Refusal::ReservePubReused)) => Ok(false),
                            other => Err(format!("add-incoming: {other:?}")),
                        }
                    } else {
                        let got = store
                            .internal_transfer(NewInternalTransfer {
                                debtor,
                                creditor: exchange_name,
                                amount,
                                subject: format!("top-up {key}"),
                                request_uid: None,
                                reserve_pub: Ok(key),
                                now: Timestamp::now(),
                            })
                            .await;
                        match got {
                            Ok(Ok((_, ExchangeCredit::Reserve))) => Ok(true),
                            Ok(Ok((_, ExchangeCredit::Bounced))) => Ok(false),
                            other => Err(format!("transfer: {other:?}")),
                        }
                    }
                }
            });
            let results = join_all(requests).await;
            let winners = results
                .iter()
                .map(|r| {
                    r.clone()
                        .unwrap_or_else(|e| panic!("[{engine}] round {round}: {e}"))
                })
                .filter(|won| *won)
                .count();
            assert_eq!(winners, 1, "[{engine}] round {round}: {results:?}");
        }
        // Each round moved exactly one unit to an exchange for good (bounces sent the rest back).
        let exchange_total: i128 = store
            .accounts()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.is_exchange)
            .map(|a| a.balance.to_signed_units())
            .sum();
        assert_eq!(exchange_total, 6 * 100_000_000, "[{engine}]");
        assert_eq!(balance_sum(&store).await, 0, "[{engine}]");
        store.close().await;
    }
);
