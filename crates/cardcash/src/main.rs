//! `cardcash`: the one binary. It parses arguments, loads configuration and calls into the
//! service crates; it holds no business logic of its own (see ARCHITECTURE.md).

mod bank_cmd;
mod c2ec_cmd;
mod cardproc_cmd;
mod config_file;
mod demo;
mod terminal_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pay with a card, get GNU Taler digital cash.
///
/// cardcash runs the services of a card-funded Taler withdrawal: a bank with the Taler Wire
/// Gateway API, a card processor, and C2EC (cashless2ecash), which sells e-cash at a shop
/// terminal for a card payment. Start with `cardcash demo`: it needs no configuration.
#[derive(Debug, Parser)]
#[command(name = "cardcash", version, propagate_version = true)]
struct Cli {
    /// Configuration file (GNU Taler INI dialect). Default: $CARDCASH_CONFIG, else ./cardcash.conf.
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
    /// Play a shop terminal against C2EC and the card processor.
    #[command(subcommand)]
    Terminal(terminal_cmd::TerminalCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Servers log every request; interactive commands only warnings, so their progress shows.
    let default_log = match cli.command {
        Command::Demo(_) | Command::Terminal(_) => "warn",
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
            Command::Terminal(cmd) => terminal_cmd::run(cmd, &config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
}
