//! The customer's phone in `cardcash demo`: a `cardcash-wallet` on `wallet.sqlite3` in the
//! demo's data directory. It scans the terminal's QR code (the `taler://withdraw` URI), chooses
//! the exchange and verifies its keys, registers its own reserve with C2EC, and — once the
//! exchange has the money — withdraws, unblinds and verifies the coins.
//!
//! It talks to the services over HTTP only, through the wallet's public API, exactly as
//! `cardcash wallet` does; the demo only prints what it does. Every run sells new e-cash: a
//! resumed demo adds a withdrawal to the same wallet, and finishes one an interrupted run left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use cardcash_api::exchange::ExchangeKeysResponse;
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, Timestamp};
use cardcash_wallet::denom::{DenomKey, select_withdrawal};
use cardcash_wallet::{Notification, Wallet, WalletConfig};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::{Progress, private};

/// The wallet database's file name in the demo's data directory.
pub const WALLET_FILE: &str = "wallet.sqlite3";

/// How long the wallet may take for its part after the card payment (the exchange's wirewatch
/// and the coins): generous, a demo takes seconds.
const WITHDRAW_DEADLINE: Duration = Duration::from_secs(60);
/// How long a resumed demo works on a withdrawal an earlier, interrupted run left.
const EARLIER_DEADLINE: Duration = Duration::from_secs(10);

/// Opens (or creates, 0600 like every database of the demo) the demo's wallet.
pub fn open(dir: &Path) -> anyhow::Result<(Wallet, PathBuf)> {
    let path = dir.join(WALLET_FILE);
    private::sqlite_file(&format!("sqlite:{}", path.display()))?;
    let wallet = Wallet::open(&path, WalletConfig::default())
        .with_context(|| format!("opening the wallet {}", path.display()))?;
    Ok((wallet, path))
}

/// What the wallet accepted: its transaction and reserve.
pub struct Accepted {
    pub transaction_id: String,
    pub reserve_pub: EddsaPublicKey,
    pub exchange: BaseUrl,
}

/// The customer's phone scans the QR code: reads the operation, chooses the exchange (the
/// one C2EC suggests when it is the demo's exchange's current face; else the demo's exchange,
/// which is where C2EC's money goes), verifies its keys, and registers a fresh reserve.
pub async fn scan_and_register(
    progress: &Progress,
    wallet: &Wallet,
    uri: &str,
    own_exchange: &BaseUrl,
) -> anyhow::Result<Accepted> {
    progress.step(
        "wallet: the customer's phone scans the QR code, chooses the exchange and registers a \
         fresh reserve (Bank Integration API)",
    );
    let details = wallet
        .prepare_bank_integrated_withdrawal(uri)
        .await
        .map_err(|e| anyhow::anyhow!("reading the withdrawal operation: {e}"))?;
    let amount = details
        .amount
        .map_or_else(|| "no amount".to_owned(), |a| a.to_string());
    let suggested = details
        .required_exchange
        .clone()
        .or(details.suggested_exchange.clone());
    progress.info(format!(
        "withdrawal {} at {}: {amount}, exchange suggested: {}",
        details.wopid,
        details.bank_integration_base,
        suggested.as_deref().unwrap_or("none")
    ));
    let exchange = match &suggested {
        Some(url) if url.as_str() == own_exchange.as_str() => own_exchange.clone(),
        Some(url) => {
            progress.info(format!(
                "this wallet speaks the exchange's current protocol (v23) and withdraws from the \
                 demo's exchange {own_exchange}, where C2EC's money goes (not {url})"
            ));
            own_exchange.clone()
        }
        None => own_exchange.clone(),
    };
    let summary = wallet
        .add_exchange(&exchange)
        .await
        .map_err(|e| anyhow::anyhow!("adding the exchange {exchange}: {e}"))?;
    progress.info(format!(
        "exchange {}: /keys verified (master key {}, {} denominations, every signature checked)",
        summary.exchange_base_url, summary.master_pub, summary.denominations
    ));
    let transaction_id = wallet
        .accept_bank_integrated_withdrawal(uri, Some(exchange.clone()), None)
        .await
        .map_err(|e| anyhow::anyhow!("registering the reserve: {e}"))?;
    let tx = wallet
        .get_transactions()?
        .into_iter()
        .find(|t| t.transaction_id == transaction_id)
        .context("the wallet lost the transaction it just created")?;
    ensure!(
        tx.state == "waiting-confirmation",
        "the registration did not go through ({}): {}",
        tx.state,
        tx.error.as_deref().unwrap_or("no error recorded")
    );
    progress.info(format!(
        "reserve {} registered at C2EC for {}; wallet transaction {transaction_id}",
        tx.reserve_pub, tx.amount_raw
    ));
    Ok(Accepted {
        transaction_id,
        reserve_pub: tx.reserve_pub.parse()?,
        exchange,
    })
}

/// Steps 9 and 10: the wallet withdraws the coins the reserve's `balance` buys (the
/// denominations it chooses, their fees, progress per batch), checks them, and shows its
/// balance. `credited` is what C2EC's history credited the reserve with.
pub async fn withdraw(
    progress: &Progress,
    wallet: &Wallet,
    accepted: &Accepted,
    keys: &ExchangeKeysResponse,
    credited: Amount,
    exchange: &cardcash_client::ExchangeClient,
) -> anyhow::Result<()> {
    progress.step("wallet: withdraws the coins (blinds, the exchange signs, unblinds, verifies)");
    // The selection the wallet makes (the same function, on the same /keys).
    let denoms = cardcash_wallet::denom::denominations(keys)?;
    let selection = select_withdrawal(&credited, &denoms, Timestamp::now());
    ensure!(
        !selection.coins.is_empty(),
        "no coin of the exchange fits into {credited}"
    );
    for (denom, count) in &selection.coins {
        let cipher = match denom.key {
            DenomKey::Rsa(_) => "RSA",
            DenomKey::Cs(_) => "CS",
        };
        progress.info(format!(
            "{count:>3} × {:<10} ({cipher}, withdraw fee {} each)",
            denom.value.to_string(),
            denom.fee_withdraw
        ));
    }
    progress.info(format!(
        "{} coins worth {} + withdraw fees {} = {} of the reserve's {credited}",
        selection.count(),
        selection.total_value,
        selection.total_fee,
        selection.total_cost()
    ));

    let mut notes = wallet.subscribe();
    let deadline = Instant::now() + WITHDRAW_DEADLINE;
    let run = wallet.process_withdrawal(&accepted.transaction_id, Some(deadline));
    tokio::pin!(run);
    let state = loop {
        tokio::select! {
            state = &mut run => break state,
            note = notes.recv() => show(progress, &accepted.transaction_id, note),
        }
    };
    while let Ok(note) = notes.try_recv() {
        show(progress, &accepted.transaction_id, Ok(note));
    }
    let state = state.map_err(|e| anyhow::anyhow!("withdrawing: {e}"))?;
    ensure!(
        state.as_str() == "done",
        "the withdrawal ended {}",
        state.as_str()
    );

    progress.step("wallet: checks its coins against the reserve and shows its balance");
    let coins: Vec<_> = wallet
        .list_coins()?
        .into_iter()
        .filter(|c| c.transaction_id == accepted.transaction_id)
        .collect();
    let mut by_value: BTreeMap<u128, (Amount, usize)> = BTreeMap::new();
    for coin in &coins {
        ensure!(
            coin.status == "fresh",
            "coin {} is {}",
            coin.coin_pub,
            coin.status
        );
        by_value
            .entry(coin.value.to_units())
            .or_insert((coin.value, 0))
            .1 += 1;
    }
    let listed: Vec<String> = by_value
        .values()
        .rev()
        .map(|(value, n)| format!("{n} × {value}"))
        .collect();
    let value = sum(&credited, coins.iter().map(|c| c.value))?;
    progress.info(format!(
        "{} fresh coins from {}: {}",
        coins.len(),
        accepted.exchange,
        listed.join(", ")
    ));
    ensure!(
        u32::try_from(coins.len()) == Ok(selection.count()) && value == selection.total_value,
        "the wallet holds {} coins worth {value}, but chose {} worth {}",
        coins.len(),
        selection.count(),
        selection.total_value
    );
    let left = exchange
        .reserve(&accepted.reserve_pub, Duration::ZERO)
        .await
        .context("asking the exchange for the reserve")?
        .balance;
    let accounted = sum(&credited, [value, selection.total_fee, left])?;
    ensure!(
        accounted == credited,
        "the money does not add up: coins {value} + fees {} + left in the reserve {left} = \
         {accounted}, but the reserve was credited {credited}",
        selection.total_fee
    );
    progress.info(format!(
        "paid by card {credited} = coins {value} + withdraw fees {}{}",
        selection.total_fee,
        if left.is_zero() {
            String::new()
        } else {
            format!(" + {left} left in the reserve (no coin fits)")
        }
    ));
    finish_earlier(progress, wallet, &accepted.transaction_id).await;
    for balance in wallet.get_balances()? {
        progress.info(format!(
            "wallet balance: {} available{}",
            balance.available,
            if balance.pending_incoming.is_zero() {
                String::new()
            } else {
                format!(", {} pending", balance.pending_incoming)
            }
        ));
    }
    let done = wallet
        .get_transactions()?
        .iter()
        .filter(|t| t.state == "done")
        .count();
    if done > 1 {
        progress.info(format!(
            "({done} withdrawals in this wallet: every run of the demo buys new e-cash)"
        ));
    }
    Ok(())
}

/// One line per notification of this withdrawal worth showing.
fn show(
    progress: &Progress,
    transaction_id: &str,
    note: Result<Notification, broadcast::error::RecvError>,
) {
    match note {
        Ok(Notification::TransactionStateTransition {
            transaction_id: id,
            old_state,
            new_state,
        }) if id == transaction_id => {
            progress.info(format!("{old_state} → {new_state}"));
        }
        Ok(Notification::WithdrawProgress {
            transaction_id: id,
            withdrawn,
            total,
        }) if id == transaction_id => {
            progress.info(format!(
                "{withdrawn}/{total} coins signed, unblinded and verified"
            ));
        }
        Ok(Notification::Error {
            transaction_id: id,
            error,
        }) if id == transaction_id => {
            progress.info(format!("retrying after: {}", error["hint"]));
        }
        _ => {}
    }
}

/// A resumed demo finishes what an interrupted run left in the wallet (briefly: an operation
/// C2EC never confirmed stays pending, and says so).
async fn finish_earlier(progress: &Progress, wallet: &Wallet, current: &str) {
    let open = match wallet.get_transactions() {
        Ok(list) => list
            .into_iter()
            .filter(|t| t.transaction_id != current && t.state != "done" && t.state != "aborted")
            .count(),
        Err(_) => return,
    };
    if open == 0 {
        return;
    }
    progress.info(format!(
        "the wallet finishes {open} withdrawal(s) an earlier run left unfinished"
    ));
    if let Err(e) = wallet
        .run_until_done(Some(Instant::now() + EARLIER_DEADLINE))
        .await
    {
        progress.info(format!(
            "not yet: {e} (`cardcash wallet run-until-done` continues)"
        ));
    }
}

fn sum(like: &Amount, amounts: impl IntoIterator<Item = Amount>) -> anyhow::Result<Amount> {
    let mut total = Amount::zero(like.currency());
    for a in amounts {
        total = total.checked_add(&a)?;
    }
    Ok(total)
}
