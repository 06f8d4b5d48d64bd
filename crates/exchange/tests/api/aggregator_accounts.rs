//! The account a merchant is paid from, on both engines. The world configures three exchange
//! accounts: the bank's (pays merchants, receives transfers), C2EC's (receives card
//! withdrawals) and the debit-only `payto://card-transaction/…` account on C2EC's Wire Gateway
//! (sends closed reserves back to cards). Here the card account is listed FIRST, so an
//! aggregator that pays from the first debit account would send a bank merchant's money
//! through C2EC, which cannot pay it. The aggregator picks the debit account of the merchant's
//! wire method instead (as the C exchange), with that method's wire fee. A merchant whose
//! method no account serves (an `iban` account: the offline key set a fee for it, but no
//! account may pay it) is not paid: its deposits wait, the refusal is counted, it is tried
//! again later, and the other merchants are paid meanwhile.

use std::time::Duration;

use cardcash_api::exchange::{BatchWithdrawRequest, DepositLongPollTarget};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::{DepositQuery, DepositStatus};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::TrackTransaction;
use cardcash_exchange::config::{CipherConfig, DenominationConfig, ExchangeConfig};
use cardcash_testkit::{BankAccount, Engine, WAIT, World, engine_test};
use cardcash_util::{Amount, BaseUrl, PaytoUri, RelativeTime, Timestamp};

use crate::helpers::coin;
use crate::wallet::{self, Coin, Contract};

/// The world's account sections (`cardcash_world`'s constants).
const BANK_ACCOUNT_SECTION: &str = "exchange-account-1";
const CARD_ACCOUNT_SECTION: &str = "exchange-account-card";

fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().unwrap()
}

/// One denomination of CHF 5 without fees; the debit-only card account listed first.
fn configure(c: &mut ExchangeConfig) {
    c.denominations = vec![DenominationConfig {
        value: chf("5"),
        fee_withdraw: chf("0"),
        fee_deposit: chf("0"),
        fee_refresh: chf("0"),
        fee_refund: chf("0"),
        ..coin("coin_chf_5", CipherConfig::Rsa { bits: 1024 }, "5", "0")
    }];
    c.accounts
        .sort_by_key(|a| a.section != CARD_ACCOUNT_SECTION);
}

/// Bank (with two merchants), card processor, C2EC and the exchange.
async fn start(engine: Engine) -> World {
    let world = cardcash_testkit::world(engine)
        .currency("CHF".parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("shop", "Shop"))
        .bank_account(BankAccount::new("kiosk", "Kiosk"))
        .cardproc()
        .c2ec()
        .configure_exchange(configure)
        .start()
        .await
        .unwrap();
    let accounts = world.exchange().accounts();
    let first_debit = accounts.iter().find(|a| a.enable_debit).unwrap();
    assert_eq!(
        (
            first_debit.section.as_str(),
            first_debit.payto.target_type()
        ),
        (CARD_ACCOUNT_SECTION, "card-transaction"),
        "the debit-only card account comes first"
    );
    world
}

/// `n` coins of CHF 5 withdrawn from a reserve funded by a bank transfer.
async fn coins(world: &World, n: usize) -> Vec<Coin> {
    let client = world.exchange().client();
    let reserve = EddsaPrivateKey::generate().unwrap();
    let bank = world.bank();
    bank.exchange_wire_gateway()
        .add_incoming(&AddIncomingRequest {
            amount: chf(&(5 * n).to_string()),
            reserve_pub: reserve.public(),
            debit_account: bank
                .app()
                .ledger()
                .payto()
                .account_uri("admin", "Admin")
                .unwrap(),
        })
        .await
        .unwrap();
    cardcash_testkit::wait_until(WAIT, || async {
        client
            .reserve(&reserve.public(), Duration::from_secs(5))
            .await
            .is_ok_and(|r| r.balance == chf(&(5 * n).to_string()))
    })
    .await;
    let denoms = wallet::denominations(&client.keys().await.unwrap());
    let five = denoms.iter().find(|d| d.value == chf("5")).unwrap();
    let mut planchets = Vec::new();
    for _ in 0..n {
        planchets.push(wallet::planchet(&client, &reserve, five).await);
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
        .iter()
        .zip(&response.ev_sigs)
        .map(|(p, s)| p.unblind(&s.ev_sig))
        .collect()
}

/// The payto URI of the bank account `name` (legal name `legal`).
fn bank_merchant(world: &World, name: &str, legal: &str) -> PaytoUri {
    world
        .bank()
        .app()
        .ledger()
        .payto()
        .account_uri(name, legal)
        .unwrap()
}

/// A contract with `payto` whose wire deadline is a second away, paid in full with `coin`.
async fn deposit(world: &World, payto: PaytoUri, coin: &Coin) -> Contract {
    let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs() + 1);
    let contract = Contract::new(payto, wire_deadline);
    world
        .exchange()
        .client()
        .batch_deposit(&contract.deposit(&[(coin, chf("5"))]))
        .await
        .unwrap();
    contract
}

/// The deposit's tracking status now (no long poll).
async fn tracking(world: &World, contract: &Contract, coin: &Coin) -> DepositStatus {
    let query = DepositQuery {
        h_wire: contract.h_wire(),
        merchant_pub: contract.merchant.public(),
        h_contract_terms: contract.h_contract_terms,
        coin_pub: coin.coin_pub,
        merchant_sig: contract.merchant.sign(&TrackTransaction {
            h_contract_terms: contract.h_contract_terms,
            h_wire: contract.h_wire(),
            coin_pub: coin.coin_pub,
        }),
    };
    world
        .exchange()
        .client()
        .deposit(&query, Duration::ZERO, DepositLongPollTarget::Ok)
        .await
        .unwrap()
}

/// Waits until the bank account `name` holds `balance`.
async fn paid(world: &World, name: &str, balance: Amount) {
    let bank = world.bank().admin();
    cardcash_testkit::wait_until(WAIT, || async {
        bank.account(name).await.unwrap().balance.amount == balance
    })
    .await;
}

/// The wire fee of `method` in force now, as `/keys` publishes it.
async fn wire_fee(world: &World, method: &str) -> Amount {
    let keys = world.exchange().client().keys().await.unwrap();
    let now = Timestamp::now();
    keys.wire_fees[method]
        .iter()
        .find(|f| f.start_date <= now && now < f.end_date)
        .unwrap()
        .wire_fee
}

/// The exchange's `/metrics` value of `name` (`None`: not exported).
async fn metric(base_url: &BaseUrl, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base_url}metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

engine_test!(
    /// With the card account listed first, a merchant's x-taler-bank account is paid from the
    /// bank account, charged the x-taler-bank wire fee: 5 − 0.01 arrive, and the recorded
    /// transfer names the bank account.
    async fn a_bank_merchant_is_paid_from_the_bank_account(engine: Engine) {
        let world = start(engine).await;
        let coins = coins(&world, 1).await;
        let contract = deposit(&world, bank_merchant(&world, "shop", "Shop"), &coins[0]).await;
        let fee = wire_fee(&world, "x-taler-bank").await;
        let expected = chf("5").checked_sub(&fee).unwrap();
        paid(&world, "shop", expected).await;

        let DepositStatus::Wired(wired) = tracking(&world, &contract, &coins[0]).await else {
            panic!("the deposit is wired");
        };
        let store = world.exchange().app().exchange().store();
        // The bank shows the money as soon as it booked it; the transfer worker records the
        // bank's row id a moment later.
        cardcash_testkit::wait_until(WAIT, || async {
            store
                .wire_out(wired.wtid)
                .await
                .unwrap()
                .is_some_and(|(row, _)| row.gateway_row_id.is_some())
        })
        .await;
        let (row, deposits) = store.wire_out(wired.wtid).await.unwrap().unwrap();
        assert_eq!(row.account_section, BANK_ACCOUNT_SECTION);
        assert_eq!((row.amount, row.wire_fee), (expected, fee));
        assert!(row.gateway_row_id.is_some(), "the bank accepted it");
        assert_eq!(deposits.len(), 1);
        let transfer = world
            .exchange()
            .client()
            .transfer(&wired.wtid)
            .await
            .unwrap();
        assert_eq!((transfer.total, transfer.wire_fee), (expected, fee));
        assert_eq!(
            metric(
                world.exchange().base_url(),
                "exchange_wire_out_refusals_total"
            )
            .await,
            Some(0.0)
        );
        let report = cardcash_exchange::audit::audit(store).await.unwrap();
        assert!(report.is_clean(), "{:#?}", report.differences);
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// The offline key set a wire fee for iban, but no exchange account may pay an iban
    /// account: the iban merchant's deposit stays unpaid (counted, the merchant account shown
    /// as waiting, tried again later), while the bank merchants deposited with it and after it
    /// are paid.
    async fn a_merchant_no_account_serves_waits_and_the_others_are_paid(engine: Engine) {
        let world = start(engine).await;
        let exchange = world.exchange();
        let now = Timestamp::now();
        let management = exchange.client().management();
        management
            .set_wire_fee(&exchange.master().wire_fee(
                "iban",
                Timestamp::from_secs(now.as_secs() - 3600),
                now.saturating_add(RelativeTime::from_secs(365 * 86_400)),
                chf("0.02"),
                chf("0.02"),
            ))
            .await
            .unwrap();
        cardcash_testkit::wait_until(WAIT, || async {
            exchange
                .client()
                .keys()
                .await
                .is_ok_and(|k| k.wire_fees.contains_key("iban"))
        })
        .await;
        let coins = coins(&world, 3).await;
        let iban: PaytoUri = "payto://iban/DE75512108001245126199?receiver-name=Shop"
            .parse()
            .unwrap();
        // The iban deposit first: its batch is the oldest due.
        let waiting = deposit(&world, iban, &coins[0]).await;
        deposit(&world, bank_merchant(&world, "shop", "Shop"), &coins[1]).await;
        let fee = wire_fee(&world, "x-taler-bank").await;
        let expected = chf("5").checked_sub(&fee).unwrap();
        paid(&world, "shop", expected).await;

        // Counted, and tried again later (backoff from one second).
        let base_url = exchange.base_url();
        cardcash_testkit::wait_until(WAIT, || async {
            metric(base_url, "exchange_wire_out_refusals_total")
                .await
                .is_some_and(|n| n >= 2.0)
        })
        .await;
        assert_eq!(
            metric(base_url, "exchange_merchant_accounts_unpayable").await,
            Some(1.0)
        );
        assert!(
            matches!(
                tracking(&world, &waiting, &coins[0]).await,
                DepositStatus::Pending(_)
            ),
            "the iban merchant's deposit waits"
        );

        // The aggregator keeps running: a merchant deposited after it is paid too.
        deposit(&world, bank_merchant(&world, "kiosk", "Kiosk"), &coins[2]).await;
        paid(&world, "kiosk", expected).await;
        assert!(matches!(
            tracking(&world, &waiting, &coins[0]).await,
            DepositStatus::Pending(_)
        ));
        assert_eq!(
            metric(base_url, "exchange_merchant_accounts_unpayable").await,
            Some(1.0)
        );
        let store = exchange.app().exchange().store();
        let report = cardcash_exchange::audit::audit(store).await.unwrap();
        assert!(report.is_clean(), "{:#?}", report.differences);
        assert_eq!(report.sums.wired, expected.checked_add(&expected).unwrap());
        world.shutdown().await.unwrap();
    }
);
