//! Fixtures: a world whose exchange has RSA and CS denominations, a wallet on a file (funded
//! with CHF 20 if asked), the terminal's side of a card withdrawal, the wallet's payment
//! requests, and the wallet's JSON read back as amounts.

use std::path::{Path, PathBuf};

use cardcash_client::SetupAmount;
use cardcash_exchange::config::{CipherConfig, DenominationConfig};
use cardcash_testkit::{BankAccount, Engine, World};
use cardcash_util::{Amount, RelativeTime};
use cardcash_wallet::{Wallet, WalletConfig, WalletError};
use serde_json::{Value, json};

pub fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().unwrap()
}

fn denomination(section: &str, cipher: CipherConfig, value: &str, fee: &str) -> DenominationConfig {
    DenominationConfig {
        section: section.into(),
        cipher,
        value: chf(value),
        fee_withdraw: chf(fee),
        fee_deposit: chf(fee),
        fee_refresh: chf(fee),
        fee_refund: chf(fee),
        duration_withdraw: RelativeTime::from_secs(7 * 24 * 3600),
        duration_spend: RelativeTime::from_secs(365 * 24 * 3600),
        duration_legal: RelativeTime::from_secs(3 * 365 * 24 * 3600),
    }
}

/// The coins of CHF 20 with these denominations: 3 × 5 and 4 × 1 (0.01 fee each), 3 × 0.25
/// (CS, no fee), 18 × 0.01: worth 19.93, 0.07 in fees, nothing left in the reserve.
pub const COINS_OF_20: usize = 28;

/// The exchange's denominations of [`start_world`]: CHF 5 and 1 (RSA, fee 0.01), 0.25 (CS,
/// no fee) and 0.01 (RSA, no fee).
pub fn set_denominations(denominations: &mut Vec<DenominationConfig>) {
    let rsa = || CipherConfig::Rsa { bits: 1024 };
    *denominations = vec![
        denomination("coin_chf_5", rsa(), "5", "0.01"),
        denomination("coin_chf_1", rsa(), "1", "0.01"),
        denomination("coin_chf_quarter", CipherConfig::Cs, "0.25", "0"),
        denomination("coin_chf_cent", rsa(), "0.01", "0"),
    ];
}

/// A world with the bank (and a `payer` account), and with `card` also the card processor and
/// C2EC; the exchange has CHF 5 and 1 (RSA, fee 0.01), 0.25 (CS, no fee) and 0.01 (RSA, no
/// fee).
pub async fn start_world(engine: Engine, card: bool) -> World {
    start_world_with(engine, card, |_| {}).await
}

/// [`start_world`] with the denominations adjusted by `adjust`.
pub async fn start_world_with(
    engine: Engine,
    card: bool,
    adjust: fn(&mut Vec<DenominationConfig>),
) -> World {
    let mut builder = cardcash_testkit::world(engine)
        .currency("CHF".parse().unwrap())
        .bank()
        .bank_account(BankAccount::new("payer", "Payer"))
        .configure_exchange(move |c| {
            set_denominations(&mut c.denominations);
            adjust(&mut c.denominations);
        });
    if card {
        builder = builder.cardproc().c2ec();
    }
    builder.start().await.unwrap()
}

pub fn open_wallet(path: &Path, config: WalletConfig) -> Wallet {
    Wallet::open(path, config).unwrap()
}

/// The terminal starts a card withdrawal of `amount`: its `taler://withdraw` URI and WOPID.
pub async fn terminal_setup(world: &World, amount: &str) -> (String, String) {
    let setup = world
        .c2ec()
        .terminal_client()
        .setup_withdrawal(
            &cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>().unwrap()),
            SetupAmount::Fixed(chf(amount)),
        )
        .await
        .unwrap();
    (setup.taler_withdraw_uri.unwrap(), setup.withdrawal_id)
}

/// The customer pays `amount` by card at the terminal, which tells C2EC.
pub async fn pay_by_card(world: &World, wopid: &str, amount: &str) {
    let amount = format!("CHF:{amount}").parse().unwrap();
    world.pay_by_card(wopid, &amount).await.unwrap();
}

/// Runs every withdrawal to its end (bounded, so a hang fails the test).
pub async fn run_until_done(wallet: &Wallet) {
    if let Err(e) = wallet
        .handle("runUntilDone", json!({ "timeoutMs": 120_000 }))
        .await
    {
        panic!("runUntilDone: {}", e.to_json());
    }
}

pub fn amount(v: &Value) -> Amount {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The only balance: (available, pending incoming).
pub async fn balance(wallet: &Wallet) -> (Amount, Amount) {
    let b = wallet.handle("getBalances", json!({})).await.unwrap();
    let list = b["balances"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{b}");
    (
        amount(&list[0]["available"]),
        amount(&list[0]["pendingIncoming"]),
    )
}

/// The wallet's coins: (value, status) sorted by value.
pub async fn coins(wallet: &Wallet) -> Vec<(Amount, String)> {
    let c = wallet.handle("listCoins", json!({})).await.unwrap();
    let mut out: Vec<(Amount, String)> = c["coins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                amount(&c["value"]),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort_by_key(|(a, _)| std::cmp::Reverse(a.to_units()));
    out
}

/// The sum of amounts.
pub fn total(amounts: impl IntoIterator<Item = Amount>) -> Amount {
    amounts
        .into_iter()
        .fold(chf("0"), |acc, a| acc.checked_add(&a).unwrap())
}

/// The one transaction of the wallet.
pub async fn only_transaction(wallet: &Wallet) -> Value {
    let t = wallet.handle("getTransactions", json!({})).await.unwrap();
    let list = t["transactions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{t}");
    list[0].clone()
}

/// Checks the 28 coins of CHF 20 and that the money adds up: what the reserve was credited
/// equals the coins plus the withdraw fees, and the exchange holds nothing more for it.
pub async fn assert_twenty_withdrawn(world: &World, wallet: &Wallet) {
    let coins = coins(wallet).await;
    assert_eq!(coins.len(), COINS_OF_20, "{coins:?}");
    let count = |v: &str| coins.iter().filter(|(a, _)| *a == chf(v)).count();
    assert_eq!(
        (count("5"), count("1"), count("0.25"), count("0.01")),
        (3, 4, 3, 18)
    );
    assert!(coins.iter().all(|(_, s)| s == "fresh"));
    let value = total(coins.iter().map(|(a, _)| *a));
    let fees = chf("0.07");
    assert_eq!(value.checked_add(&fees).unwrap(), chf("20"));
    assert_eq!(balance(wallet).await, (chf("19.93"), chf("0")));
    let tx = only_transaction(wallet).await;
    assert_eq!(tx["state"], "done", "{tx}");
    assert_eq!(amount(&tx["amountRaw"]), chf("20"));
    assert_eq!(amount(&tx["amountEffective"]), chf("19.93"));
    let reserve_pub = tx["reservePub"].as_str().unwrap().parse().unwrap();
    let left = world
        .exchange()
        .client()
        .reserve(&reserve_pub, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(left.balance, chf("0"));
}

/// A manual withdrawal of CHF `amount` wired through the bank by `payer`, run to the end.
pub async fn withdraw_manually(world: &World, wallet: &Wallet, amount: &str) {
    use cardcash_api::corebank::CreateTransactionRequest as BankTransfer;
    let created = wallet
        .handle(
            "acceptManualWithdrawal",
            json!({
                "exchangeBaseUrl": world.exchange().base_url().to_string(),
                "amount": format!("CHF:{amount}"),
            }),
        )
        .await
        .unwrap();
    let bank = world.bank();
    let payto = bank.app().ledger().payto();
    let exchange_account = payto.account_uri("exchange", "Exchange").unwrap();
    let target: cardcash_util::PaytoUri = created["exchangePaytoUris"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_str()
                .unwrap()
                .parse::<cardcash_util::PaytoUri>()
                .unwrap()
        })
        .find(|p| p.same_account(&exchange_account))
        .unwrap();
    let admin = bank.admin();
    let payer = payto.account_uri("payer", "Payer").unwrap();
    admin
        .create_transaction(
            "admin",
            &BankTransfer {
                payto_uri: payer.with_param("message", "pocket money"),
                amount: Some(chf(amount)),
                request_uid: None,
            },
        )
        .await
        .unwrap();
    admin
        .create_transaction(
            "payer",
            &BankTransfer {
                payto_uri: target,
                amount: None,
                request_uid: None,
            },
        )
        .await
        .unwrap();
    run_until_done(wallet).await;
}

/// A wallet on a file in a temporary directory of its own (alive as long as the returned
/// directory), with the coins of CHF 20 withdrawn at the world's exchange: 19.93 available.
pub async fn funded_wallet(world: &World) -> (tempfile::TempDir, PathBuf, Wallet) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.sqlite3");
    let wallet = open_wallet(&path, WalletConfig::default());
    withdraw_manually(world, &wallet, "20").await;
    assert_eq!(balance(&wallet).await, (chf("19.93"), chf("0")));
    (dir, path, wallet)
}

/// A second, empty wallet on `path` that knows the world's exchange.
pub async fn other_wallet(world: &World, path: &Path) -> Wallet {
    let other = open_wallet(path, WalletConfig::default());
    other
        .handle(
            "addExchange",
            json!({ "exchangeBaseUrl": world.exchange().base_url().to_string() }),
        )
        .await
        .unwrap();
    other
}

/// `preparePayForUri`, which must succeed: the offer.
pub async fn prepare(wallet: &Wallet, uri: &str) -> Value {
    prepare_pay(wallet, uri)
        .await
        .unwrap_or_else(|e| panic!("preparePayForUri {uri}: {}", e.to_json()))
}

/// `preparePayForUri`, as it comes.
pub async fn prepare_pay(wallet: &Wallet, uri: &str) -> Result<Value, WalletError> {
    wallet
        .handle("preparePayForUri", json!({ "talerPayUri": uri }))
        .await
}

/// `confirmPay` of an offer, which must succeed.
pub async fn confirm(wallet: &Wallet, offer: &Value) -> Value {
    confirm_pay(wallet, offer)
        .await
        .unwrap_or_else(|e| panic!("confirmPay: {}", e.to_json()))
}

/// `confirmPay` of an offer, as it comes.
pub async fn confirm_pay(wallet: &Wallet, offer: &Value) -> Result<Value, WalletError> {
    wallet
        .handle(
            "confirmPay",
            json!({ "transactionId": offer["transactionId"] }),
        )
        .await
}

/// The first transaction of the wallet of type `kind` (`"payment"`, `"refund"`, …).
pub async fn first_transaction(wallet: &Wallet, kind: &str) -> Value {
    let t = wallet.handle("getTransactions", json!({})).await.unwrap();
    t["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind}: {t}"))
}

/// The public key of one fresh coin worth `value`.
pub async fn a_fresh_coin(wallet: &Wallet, value: &str) -> String {
    let c = wallet.handle("listCoins", json!({})).await.unwrap();
    c["coins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == format!("CHF:{value}") && c["status"] == "fresh")
        .map(|c| c["coinPub"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no fresh coin of {value}: {c}"))
}
