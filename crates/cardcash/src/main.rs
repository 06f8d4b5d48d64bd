//! `cardcash`: the one binary. It parses arguments, loads configuration and calls into the
//! service crates; it holds no business logic of its own (see ARCHITECTURE.md).

mod bank_cmd;
mod bench;
mod c2ec_cmd;
mod cardproc_cmd;
mod config_file;
mod demo;
mod exchange_bench;
mod exchange_cmd;
mod exchange_offline;
mod listen;
mod merchant_bench;
mod merchant_cmd;
mod storefront_cmd;
mod terminal_cmd;
mod wallet_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Pay with a card, get GNU Taler digital cash.
///
/// cardcash runs the services of a card-funded Taler withdrawal: a bank with the Taler Wire
/// Gateway API, a card processor, and C2EC (cashless2ecash), which sells e-cash at a shop
/// terminal for a card payment. Start with `cardcash demo`: it needs no configuration.
#[derive(Debug, Parser)]
#[command(name = "cardcash", version, propagate_version = true)]
struct Cli {
    /// Configuration file (GNU Taler INI dialect) of the service, operator and terminal commands;
    /// `demo` writes its own and refuses this. Default: $CARDCASH_CONFIG, else ./cardcash.conf.
    #[arg(short = 'c', long = "config", global = true, env = "CARDCASH_CONFIG")]
    config: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text (also: CARDCASH_LOG_JSON=1).
    #[arg(long, global = true, env = "CARDCASH_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole story on localhost, no configuration needed.
    ///
    /// Starts the bank, the card processor and C2EC on SQLite, then plays a card-funded
    /// withdrawal: a terminal sells CHF 20 of e-cash for a test-card payment, a wallet registers
    /// its reserve key, C2EC attests the payment, and the exchange finds the reserve in C2EC's
    /// incoming history. Exits 0 when every step succeeded.
    Demo(demo::DemoArgs),
    /// The bank: accounts, transfers and the Taler Wire Gateway API.
    #[command(subcommand)]
    Bank(bank_cmd::BankCommand),
    /// The card processor (the terminals' payment backend).
    #[command(subcommand)]
    Cardproc(cardproc_cmd::CardprocCommand),
    /// C2EC (cashless2ecash): terminal, bank-integration and wire-gateway APIs.
    #[command(subcommand)]
    C2ec(c2ec_cmd::C2ecCommand),
    /// The exchange: keys, reserves, withdrawal, deposits, refunds and settlement (GNU Taler
    /// protocol v23), its offline key, audit and benchmark.
    #[command(subcommand)]
    Exchange(exchange_cmd::ExchangeCommand),
    /// The merchant backend: instances, inventory, orders, payments, refunds (GNU Taler
    /// merchant protocol); operator commands for instances.
    #[command(subcommand)]
    Merchant(merchant_cmd::MerchantCommand),
    /// Pretty Pianos, a web shop on the merchant backend (design document 007's paywall, a
    /// piano cart with inventory locks).
    #[command(subcommand)]
    Storefront(storefront_cmd::StorefrontCommand),
    /// Play a shop terminal against C2EC and the card processor.
    #[command(subcommand)]
    Terminal(terminal_cmd::TerminalCommand),
    /// A GNU Taler wallet: withdraw coins from a taler://withdraw URI or by wire transfer,
    /// balance, transactions, coins (its own SQLite file; see --wallet-db).
    Wallet(wallet_cmd::WalletArgs),
}

/// An error the command already explained on its own output; `main` only sets the exit code.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(reported above)")
    }
}

impl std::error::Error for Reported {}

/// One line for an error and its causes. A cause whose text its parent already shows (thiserror's
/// `"…: {0}"` with `#[from]`) is not repeated, so nothing is said twice.
fn render_error(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// `demo` writes its own configuration into its data directory; it refuses `-c` instead of
/// silently ignoring it. (`$CARDCASH_CONFIG` is meant for the operator commands and is ignored.)
fn refuse_config_for_demo(path: &std::path::Path) -> ! {
    let resume = match (path.file_name(), path.parent()) {
        (Some(name), Some(dir)) if name == "cardcash.conf" => {
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            format!(
                " To run the demo again on the data directory that holds {}, use \
                 `cardcash demo --data-dir {}`.",
                path.display(),
                dir.display()
            )
        }
        _ => String::new(),
    };
    Cli::command()
        .error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "`cardcash demo` does not read -c/--config: it writes its own configuration to \
                 DIR/cardcash.conf in its data directory (--data-dir DIR).{resume} The operator \
                 commands (`cardcash -c FILE bank|cardproc|c2ec|terminal …`) are the ones that read -c."
            ),
        )
        .exit()
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let config_on_command_line = matches.value_source("config") == Some(ValueSource::CommandLine);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Demo(_), true, Some(path)) =
        (&cli.command, config_on_command_line, &cli.config)
    {
        refuse_config_for_demo(path);
    }
    // Servers log every request; interactive commands only warnings, so their progress shows.
    let default_log = match cli.command {
        Command::Demo(_) | Command::Terminal(_) | Command::Wallet(_) => "warn",
        _ => "info",
    };
    cardcash_http::init_tracing_with_default(cli.log_json, default_log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let config = config_file::ConfigSource::new(cli.config);
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Bank(cmd) => bank_cmd::run(cmd, &config).await,
            Command::Cardproc(cmd) => cardproc_cmd::run(cmd, &config).await,
            Command::C2ec(cmd) => c2ec_cmd::run(cmd, &config).await,
            Command::Exchange(cmd) => exchange_cmd::run(cmd, &config).await,
            Command::Merchant(cmd) => merchant_cmd::run(cmd, &config).await,
            Command::Storefront(cmd) => storefront_cmd::run(cmd, &config).await,
            Command::Terminal(cmd) => terminal_cmd::run(cmd, &config).await,
            Command::Wallet(args) => wallet_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn an_error_chain_says_each_thing_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        // What `#[error("listener: {0}")] Io(#[from] io::Error)` renders: the source inside.
        #[derive(Debug)]
        struct Listener(std::io::Error);
        impl std::fmt::Display for Listener {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "listener: {}", self.0)
            }
        }
        impl std::error::Error for Listener {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Listener(io)).context("starting C2EC");
        assert_eq!(
            super::render_error(&e),
            "starting C2EC: listener: Address already in use"
        );
    }
}
