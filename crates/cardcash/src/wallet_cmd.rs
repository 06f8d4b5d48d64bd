//! `cardcash wallet …`: a GNU Taler wallet on the command line, in the manner of
//! `taler-wallet-cli`. Every command is one or more requests to `cardcash_wallet::Wallet::handle`
//! (the same interface an app embeds); this file only parses arguments and prints. Results go
//! to stdout (JSON with `--json`), progress of long work to stderr.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use cardcash_wallet::{Notification, Step, Wallet, WalletConfig, WalletError};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::Reported;

/// The wallet database's file name in the data directory.
const DB_FILE: &str = "wallet.sqlite3";

/// Crash tests: with `CARDCASH_WALLET_CRASH_AT=STEP` (`after-registration`,
/// `after-withdraw-request`, `after-melt`, `after-reveal`, `after-recoup`, `after-claim`,
/// `after-pay`) the wallet stops at that step before storing what it learnt, says so on
/// stderr, and waits to be killed (SIGKILL): what a crash there leaves behind.
const CRASH_AT_VAR: &str = "CARDCASH_WALLET_CRASH_AT";

fn crash_hook(step: Step) {
    if std::env::var(CRASH_AT_VAR).is_ok_and(|v| v == step.name()) {
        eprintln!("{CRASH_AT_VAR}: waiting for SIGKILL at {}", step.name());
        loop {
            std::thread::park();
        }
    }
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    /// The wallet database (an SQLite file, created if missing). Default:
    /// $XDG_DATA_HOME/cardcash/wallet.sqlite3 (~/.local/share/cardcash/…), else ./wallet.sqlite3.
    #[arg(long = "wallet-db", env = "CARDCASH_WALLET_DB", global = true)]
    pub wallet_db: Option<PathBuf>,
    /// Print results as JSON for scripts, one document per line (errors as Taler error
    /// bodies; a command that ends with the balance prints it as a last line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: WalletCommand,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Handle a taler:// URI, e.g. the `taler://withdraw/…` of a terminal's QR code or the
    /// `taler://pay/…` of a shop.
    ///
    /// Shows what the URI offers; with -y (or after you confirm) accepts it and runs it to the
    /// end: for a withdrawal, registers the wallet's reserve with the bank, waits for the
    /// payment, and withdraws the coins. A `taler://withdraw-exchange/…` URI starts a manual
    /// withdrawal from that exchange (its master key checked when the URI names it). A
    /// `taler://pay/…` URI shows the contract (price, fees, summary) and pays it; an order
    /// whose fulfillment URL this wallet paid before is not paid again. A
    /// `taler://refund/…` URI picks up the refunds of an order this wallet paid.
    HandleUri(HandleUriArgs),
    /// Pay a `taler://pay/…` URI (the same as handle-uri with such a URI).
    Pay(HandleUriArgs),
    /// Pick up the refunds of a payment (by its transaction id, see `transactions`).
    CheckRefund {
        /// txn:payment:…
        transaction_id: String,
    },
    /// Give up a payment the merchant has not confirmed: its coins are refunded.
    Abort {
        /// txn:payment:…
        transaction_id: String,
    },
    /// Exchanges: add one (its keys are verified), list them, read and accept their terms.
    #[command(subcommand)]
    Exchanges(ExchangesCommand),
    /// Withdraw coins.
    #[command(subcommand)]
    Withdraw(WithdrawCommand),
    /// The balance per currency: spendable coins, and coins of withdrawals under way.
    Balance,
    /// Every transaction with its state (and the last error of one that is stuck).
    Transactions,
    /// Every coin: value, status, public key.
    Coins,
    /// Refresh coins: melt each into fresh coins of the same exchange (worth its value minus
    /// the melt fee and the fresh coins' withdraw fees), e.g. coins whose keys expire soon.
    Refresh {
        /// Public keys of fresh coins (see `coins`).
        #[arg(required = true)]
        coins: Vec<String>,
    },
    /// Work on every unfinished withdrawal until all are done (waits for money not yet
    /// wired; Ctrl-C stops, and the next run resumes).
    RunUntilDone(RunArgs),
}

#[derive(Debug, Args)]
pub struct HandleUriArgs {
    /// The URI (taler://withdraw/HOST/PATH/WOPID or taler+http://…).
    pub uri: String,
    /// Accept without asking (and accept the exchange's terms of service).
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Withdraw through this exchange instead of the one the bank suggests.
    #[arg(long)]
    pub exchange: Option<String>,
    /// The amount, when the URI leaves it open (e.g. CHF:20).
    #[arg(long)]
    pub amount: Option<String>,
    /// Stop waiting after this many seconds (the withdrawal resumes with run-until-done).
    #[arg(long)]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ExchangesCommand {
    /// Add an exchange by its base URL: fetches /config and /keys and checks every signature;
    /// an exchange that does not verify is refused.
    Add {
        /// e.g. http://localhost:8081/
        url: String,
    },
    /// The exchanges the wallet knows.
    List,
    /// Show an exchange's terms of service and their version.
    Tos {
        url: String,
        /// The media types you prefer, e.g. text/markdown.
        #[arg(long, default_value = "text/plain")]
        format: String,
    },
    /// Accept an exchange's terms of service (the current version, or --etag).
    AcceptTos {
        url: String,
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WithdrawCommand {
    /// Create a reserve at an exchange and print the account and subject to wire the money
    /// to; the coins are withdrawn once the exchange has the money (--wait, or later with
    /// run-until-done).
    Manual {
        /// The exchange's base URL.
        #[arg(long)]
        exchange: String,
        /// How much to wire, e.g. CHF:20.
        #[arg(long)]
        amount: String,
        /// Wait for the money and withdraw right away.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Give up after this many seconds (nothing is lost: the next run resumes).
    #[arg(long)]
    pub timeout_secs: Option<u64>,
}

/// The default database: the user's data directory, else the working directory.
fn default_db() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    match data {
        Some(dir) => dir.join("cardcash").join(DB_FILE),
        None => PathBuf::from(DB_FILE),
    }
}

struct Cli {
    wallet: Wallet,
    json: bool,
}

impl Cli {
    /// One request; a refusal is printed (JSON body or a line for a person) and reported.
    async fn call(&self, op: &str, args: Value) -> anyhow::Result<Value> {
        match self.wallet.handle(op, args).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.print_error(&e);
                Err(Reported.into())
            }
        }
    }

    fn print_error(&self, e: &WalletError) {
        if self.json {
            println!("{}", e.to_json());
        } else {
            eprintln!(
                "error: {e} (Taler code {} {})",
                e.code().code(),
                e.code().name()
            );
        }
    }

    fn print(&self, v: &Value, human: impl FnOnce(&Value)) {
        if self.json {
            println!("{v}");
        } else {
            human(v);
        }
    }

    /// Runs until every withdrawal is done (or the timeout), with progress on stderr.
    async fn run(&self, timeout_secs: Option<u64>) -> anyhow::Result<()> {
        let args = match timeout_secs {
            Some(s) => json!({ "timeoutMs": s * 1000 }),
            None => json!({}),
        };
        self.call("runUntilDone", args).await?;
        Ok(())
    }
}

/// Prints the wallet's notifications to stderr as progress lines.
fn show_progress(wallet: &Wallet) -> tokio::task::JoinHandle<()> {
    let mut notes = wallet.subscribe();
    tokio::spawn(async move {
        while let Ok(n) = notes.recv().await {
            match n {
                Notification::TransactionStateTransition {
                    transaction_id,
                    new_state,
                    ..
                } => eprintln!("{transaction_id}: {new_state}"),
                Notification::WithdrawProgress {
                    withdrawn, total, ..
                } => eprintln!("  coins withdrawn: {withdrawn}/{total}"),
                Notification::Error {
                    transaction_id,
                    error,
                } => eprintln!(
                    "{transaction_id}: {} (retrying if it can help)",
                    error["hint"].as_str().unwrap_or("error")
                ),
                Notification::ExchangeUpdated { exchange_base_url } => {
                    eprintln!("exchange {exchange_base_url}: keys verified")
                }
                Notification::BalanceChange => {}
            }
        }
    })
}

pub async fn run(args: WalletArgs) -> anyhow::Result<()> {
    let path = args.wallet_db.unwrap_or_else(default_db);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the wallet's directory {}", dir.display()))?;
    }
    let config = WalletConfig {
        step_hook: std::env::var_os(CRASH_AT_VAR).map(|_| crash_hook as fn(Step)),
        ..WalletConfig::default()
    };
    let wallet = Wallet::open(&path, config)
        .with_context(|| format!("opening the wallet database {}", path.display()))?;
    let progress = show_progress(&wallet);
    let cli = Cli {
        wallet,
        json: args.json,
    };
    let result = dispatch(&cli, args.command).await;
    progress.abort();
    result
}

async fn dispatch(cli: &Cli, command: WalletCommand) -> anyhow::Result<()> {
    match command {
        WalletCommand::HandleUri(a) => handle_uri(cli, a).await,
        WalletCommand::Pay(a) => pay_uri(cli, a).await,
        WalletCommand::CheckRefund { transaction_id } => {
            let r = cli
                .call(
                    "startRefundQuery",
                    json!({ "transactionId": transaction_id }),
                )
                .await?;
            cli.print(&r, print_refunds);
            print_balance(cli).await
        }
        WalletCommand::Abort { transaction_id } => {
            cli.call(
                "abortTransaction",
                json!({ "transactionId": transaction_id }),
            )
            .await?;
            if !cli.json {
                println!("{transaction_id}: aborted; its coins were refunded");
            }
            print_balance(cli).await
        }
        WalletCommand::Exchanges(c) => exchanges(cli, c).await,
        WalletCommand::Withdraw(WithdrawCommand::Manual {
            exchange,
            amount,
            wait,
        }) => withdraw_manual(cli, &exchange, &amount, wait).await,
        WalletCommand::Balance => print_balance(cli).await,
        WalletCommand::Transactions => {
            let t = cli.call("getTransactions", json!({})).await?;
            cli.print(&t, |v| {
                let list = v["transactions"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("No transactions.");
                }
                for t in list {
                    let kind = match t["withdrawalType"].as_str() {
                        Some(w) => format!("{} ({w})", s(&t["type"])),
                        None => s(&t["type"]).to_owned(),
                    };
                    println!(
                        "{}  {}  {}  raw {}  effective {}  {}",
                        s(&t["transactionId"]),
                        kind,
                        s(&t["state"]),
                        s(&t["amountRaw"]),
                        s(&t["amountEffective"]),
                        s(&t["exchangeBaseUrl"]),
                    );
                    if let Some(order) = t["orderId"].as_str() {
                        println!(
                            "    order {order} at {}: {}",
                            s(&t["merchantBaseUrl"]),
                            s(&t["summary"])
                        );
                    }
                    if let Some(r) = t["refunded"].as_str() {
                        println!("    refunded {r}");
                    }
                    if let Some(o) = t["alreadyPaidOrderId"].as_str() {
                        println!("    already paid as order {o}");
                    }
                    if let Some(e) = t["error"].as_str() {
                        println!("    last error: {e}");
                    }
                    for p in t["exchangePaytoUris"].as_array().into_iter().flatten() {
                        if s(&t["state"]) == "waiting-funds" {
                            println!("    wire to: {}", s(p));
                        }
                    }
                }
            });
            Ok(())
        }
        WalletCommand::Coins => {
            let c = cli.call("listCoins", json!({})).await?;
            cli.print(&c, |v| {
                let list = v["coins"].as_array().cloned().unwrap_or_default();
                for c in &list {
                    println!(
                        "{:>14}  {}  {}  {}",
                        s(&c["value"]),
                        s(&c["status"]),
                        s(&c["coinPub"]),
                        s(&c["exchangeBaseUrl"])
                    );
                }
                println!("{} coins", list.len());
            });
            Ok(())
        }
        WalletCommand::Refresh { coins } => {
            let r = cli
                .call("forceRefresh", json!({ "coinPubList": coins }))
                .await?;
            cli.print(&r, |v| {
                for id in v["transactionIds"].as_array().into_iter().flatten() {
                    println!("{}: done", s(id));
                }
            });
            print_balance(cli).await
        }
        WalletCommand::RunUntilDone(a) => {
            cli.run(a.timeout_secs).await?;
            print_balance(cli).await
        }
    }
}

/// Prints (to stderr, for a person) the coins and fees of withdrawing `amount` from `exchange`.
async fn show_plan(cli: &Cli, exchange: &str, amount: &str) -> anyhow::Result<()> {
    let plan = cli
        .call(
            "getWithdrawalDetailsForAmount",
            json!({ "exchangeBaseUrl": exchange, "amount": amount }),
        )
        .await?;
    if cli.json {
        return Ok(());
    }
    let coins: Vec<String> = plan["coins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} × {} ({})", c["count"], s(&c["value"]), s(&c["cipher"])))
        .collect();
    eprintln!(
        "  coins worth {}: {}; withdraw fees {}; left in the reserve {}",
        s(&plan["amountEffective"]),
        coins.join(", "),
        s(&plan["withdrawFees"]),
        s(&plan["leftInReserve"])
    );
    Ok(())
}

/// Creates a manual withdrawal and prints where to wire the money; with `wait`, withdraws.
async fn withdraw_manual(
    cli: &Cli,
    exchange: &str,
    amount: &str,
    wait: bool,
) -> anyhow::Result<()> {
    show_plan(cli, exchange, amount).await?;
    let created = cli
        .call(
            "acceptManualWithdrawal",
            json!({ "exchangeBaseUrl": exchange, "amount": amount }),
        )
        .await?;
    cli.print(&created, |v| {
        println!("Wire {amount} to the exchange, with the reserve key as subject:");
        for p in v["exchangePaytoUris"].as_array().into_iter().flatten() {
            println!("  {}", p.as_str().unwrap_or_default());
        }
        println!("Subject: {}", v["reservePub"].as_str().unwrap_or_default());
        println!(
            "Transaction: {}",
            v["transactionId"].as_str().unwrap_or_default()
        );
        if !wait {
            println!("Then run `cardcash wallet run-until-done` to withdraw the coins.");
        }
    });
    if wait {
        cli.run(None).await?;
        print_balance(cli).await?;
    }
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

async fn print_balance(cli: &Cli) -> anyhow::Result<()> {
    let b = cli.call("getBalances", json!({})).await?;
    cli.print(&b, |v| {
        let list = v["balances"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("No coins yet.");
        }
        for b in list {
            println!(
                "{} available, {} pending incoming, {} pending outgoing",
                s(&b["available"]),
                s(&b["pendingIncoming"]),
                s(&b["pendingOutgoing"])
            );
        }
    });
    Ok(())
}

async fn exchanges(cli: &Cli, command: ExchangesCommand) -> anyhow::Result<()> {
    let show = |v: &Value| {
        println!(
            "{}  {}  terms: {}  {} denominations",
            s(&v["exchangeBaseUrl"]),
            s(&v["currency"]),
            s(&v["tosStatus"]),
            v["denominations"]
        )
    };
    match command {
        ExchangesCommand::Add { url } => {
            let v = cli
                .call("addExchange", json!({ "exchangeBaseUrl": url }))
                .await?;
            cli.print(&v, |v| {
                show(v);
                println!("  coins and their fees (withdraw / deposit / refresh / refund):");
                for f in v["coinFees"].as_array().into_iter().flatten() {
                    println!(
                        "  {:>12} {:<3}  {} / {} / {} / {}",
                        s(&f["value"]),
                        s(&f["cipher"]),
                        s(&f["feeWithdraw"]),
                        s(&f["feeDeposit"]),
                        s(&f["feeRefresh"]),
                        s(&f["feeRefund"])
                    );
                }
            });
        }
        ExchangesCommand::List => {
            let v = cli.call("listExchanges", json!({})).await?;
            cli.print(&v, |v| {
                let list = v["exchanges"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("No exchanges yet: `cardcash wallet exchanges add URL`.");
                }
                list.iter().for_each(show);
            });
        }
        ExchangesCommand::Tos { url, format } => {
            let v = cli
                .call(
                    "getExchangeTos",
                    json!({ "exchangeBaseUrl": url, "acceptedFormat": format }),
                )
                .await?;
            cli.print(&v, |v| {
                println!("{}", s(&v["content"]));
                println!(
                    "-- version {} ({}); accept with `cardcash wallet exchanges accept-tos {url}`",
                    s(&v["currentEtag"]),
                    s(&v["tosStatus"])
                );
            });
        }
        ExchangesCommand::AcceptTos { url, etag } => {
            let v = cli
                .call(
                    "acceptExchangeTos",
                    json!({ "exchangeBaseUrl": url, "etag": etag }),
                )
                .await?;
            cli.print(&v, show);
        }
    }
    Ok(())
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

async fn handle_uri(cli: &Cli, a: HandleUriArgs) -> anyhow::Result<()> {
    let lower = a.uri.to_ascii_lowercase();
    if lower.starts_with("taler://withdraw-exchange/")
        || lower.starts_with("taler+http://withdraw-exchange/")
    {
        return withdraw_exchange_uri(cli, a).await;
    }
    if lower.starts_with("taler://pay/") || lower.starts_with("taler+http://pay/") {
        return pay_uri(cli, a).await;
    }
    if lower.starts_with("taler://refund/") || lower.starts_with("taler+http://refund/") {
        let r = cli
            .call("startRefundQueryForUri", json!({ "talerRefundUri": a.uri }))
            .await?;
        cli.print(&r, print_refunds);
        return print_balance(cli).await;
    }
    if !(lower.starts_with("taler://withdraw/") || lower.starts_with("taler+http://withdraw/")) {
        let e = WalletError::BadRequest(format!(
            "{}: this wallet handles taler://withdraw, taler://withdraw-exchange, taler://pay \
             and taler://refund URIs",
            a.uri
        ));
        cli.print_error(&e);
        return Err(Reported.into());
    }
    let details = cli
        .call(
            "prepareBankIntegratedWithdrawal",
            json!({ "talerWithdrawUri": a.uri }),
        )
        .await?;
    let exchange = a
        .exchange
        .clone()
        .or_else(|| details["requiredExchange"].as_str().map(str::to_owned))
        .or_else(|| details["suggestedExchange"].as_str().map(str::to_owned));
    if !cli.json {
        eprintln!(
            "Withdrawal of {} from {} (status {}), exchange {}",
            s(&details["amount"]),
            s(&details["bankIntegrationBase"]),
            s(&details["status"]),
            exchange
                .as_deref()
                .unwrap_or("- (give one with --exchange)")
        );
    }
    let amount = a
        .amount
        .clone()
        .or_else(|| details["amount"].as_str().map(str::to_owned));
    if let (Some(url), Some(amount)) = (&exchange, &amount) {
        show_plan(cli, url, amount).await?;
    }
    if !a.yes && !confirm("Accept this withdrawal?") {
        eprintln!("Not accepted.");
        return Err(Reported.into());
    }
    if let Some(url) = &exchange {
        let added = cli
            .call("addExchange", json!({ "exchangeBaseUrl": url }))
            .await?;
        if s(&added["tosStatus"]) != "accepted" && s(&added["tosStatus"]) != "unknown" {
            if a.yes {
                cli.call("acceptExchangeTos", json!({ "exchangeBaseUrl": url }))
                    .await?;
            } else {
                eprintln!(
                    "The exchange has terms of service: `cardcash wallet exchanges tos {url}`; \
                     accept them with `… accept-tos {url}` or use -y."
                );
                return Err(Reported.into());
            }
        }
    }
    let accepted = cli
        .call(
            "acceptBankIntegratedWithdrawal",
            json!({ "talerWithdrawUri": a.uri, "exchangeBaseUrl": exchange, "amount": a.amount }),
        )
        .await?;
    if !cli.json {
        eprintln!(
            "{}: accepted; waiting for the payment",
            s(&accepted["transactionId"])
        );
    }
    cli.run(a.timeout_secs).await?;
    print_balance(cli).await
}

/// `taler://withdraw-exchange/…`: a manual withdrawal from the exchange the URI names.
async fn withdraw_exchange_uri(cli: &Cli, a: HandleUriArgs) -> anyhow::Result<()> {
    let prepared = cli
        .call("prepareWithdrawExchange", json!({ "talerUri": a.uri }))
        .await?;
    let amount = match a
        .amount
        .clone()
        .or_else(|| prepared["amount"].as_str().map(str::to_owned))
    {
        Some(amount) => amount,
        None => {
            let e = WalletError::BadRequest("the URI names no amount: give --amount".into());
            cli.print_error(&e);
            return Err(Reported.into());
        }
    };
    let exchange = s(&prepared["exchangeBaseUrl"]).to_owned();
    if !cli.json {
        eprintln!("Manual withdrawal of {amount} from {exchange}");
    }
    if !a.yes && !confirm("Create the reserve?") {
        eprintln!("Not accepted.");
        return Err(Reported.into());
    }
    withdraw_manual(cli, &exchange, &amount, false).await
}

fn print_refunds(v: &Value) {
    println!(
        "{}: refunds of {} picked up ({} credited to the coins, {} of fees){}",
        s(&v["transactionId"]),
        s(&v["amountRefundGranted"]),
        s(&v["amountEffectiveCredited"]),
        s(&v["amountRefundGone"]),
        match v["pending"].as_u64() {
            Some(n) if n > 0 => format!("; {n} not executed by the exchange yet"),
            _ => String::new(),
        }
    );
}

/// `taler://pay/…`: claims the order, shows the contract, and pays it after confirmation (or
/// says that it was paid before).
async fn pay_uri(cli: &Cli, a: HandleUriArgs) -> anyhow::Result<()> {
    let prepared = cli
        .call("preparePayForUri", json!({ "talerPayUri": a.uri }))
        .await?;
    let status = s(&prepared["status"]).to_owned();
    if !cli.json {
        eprintln!(
            "Order {} at {}: {}",
            s(&prepared["orderId"]),
            s(&prepared["merchantBaseUrl"]),
            s(&prepared["summary"])
        );
        eprintln!(
            "  price {}; you pay {} (deposit fees beyond what the merchant covers: {}); \
             available at its exchanges: {}",
            s(&prepared["amountRaw"]),
            s(&prepared["amountEffective"]),
            s(&prepared["customerFees"]),
            s(&prepared["balanceAvailable"])
        );
    }
    match status.as_str() {
        "already-confirmed" => {
            if prepared["paid"].as_bool() == Some(true) {
                let (order, url) = match prepared["alreadyPaidOrderId"].as_str() {
                    Some(o) => (o, s(&prepared["alreadyPaidFulfillmentUrl"])),
                    None => (s(&prepared["orderId"]), s(&prepared["fulfillmentUrl"])),
                };
                cli.print(&prepared, |_| {
                    println!("Already paid (order {order}); the purchase is at {url}");
                });
                return Ok(());
            }
            // Confirmed before but not answered yet: resume below.
        }
        "insufficient-balance" => {
            let e = WalletError::InsufficientBalance {
                needed: s(&prepared["amountRaw"]).to_owned(),
                available: s(&prepared["balanceAvailable"]).to_owned(),
            };
            cli.print_error(&e);
            return Err(Reported.into());
        }
        _ => {
            if !a.yes && !confirm("Pay?") {
                eprintln!("Not paid.");
                return Err(Reported.into());
            }
        }
    }
    let paid = cli
        .call(
            "confirmPay",
            json!({ "transactionId": prepared["transactionId"] }),
        )
        .await?;
    cli.print(&paid, |v| {
        println!(
            "{}: paid {}; the purchase is at {}",
            s(&v["transactionId"]),
            s(&v["amountEffective"]),
            s(&v["fulfillmentUrl"])
        );
    });
    print_balance(cli).await
}
