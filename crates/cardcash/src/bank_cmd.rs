//! `cardcash bank …`: serve the bank, manage its accounts.

use anyhow::Context;
use cardcash_bank::admin::{self, AccountName, NewAccount, Password};
use cardcash_bank::{App, BankConfig};
use clap::{Args, Subcommand};

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Serve the bank's HTTP API ([bank] section of the configuration).
    Serve,
    /// Manage accounts directly in the bank's database.
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its payto URI.
    Add(AddAccount),
    /// List every account with its balance.
    List,
}

#[derive(Debug, Args)]
pub struct AddAccount {
    /// Login name (lower-case letters, digits, `-` and `_`).
    pub name: String,
    /// Password for HTTP Basic login (the Wire Gateway of an exchange account uses it).
    #[arg(long)]
    pub password: Option<String>,
    /// Mark the account as a Taler exchange: it gets a Wire Gateway API.
    #[arg(long)]
    pub exchange: bool,
    /// Legal name shown as `receiver-name` in the payto URI.
    #[arg(long)]
    pub legal_name: Option<String>,
}

pub async fn run(cmd: BankCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let config = BankConfig::from_taler_config(&source.load()?)?;
    match cmd {
        BankCommand::Serve => {
            crate::listen::check("the bank", "bank", config.bind, source.path())?;
            let app = App::build(config).await?;
            println!("bank listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await?;
        }
        BankCommand::Account(AccountCommand::Add(add)) => {
            let ledger = admin::open(&config).await?;
            let name: AccountName = add.name.parse().context("account name")?;
            let mut new = NewAccount::new(name);
            new.is_exchange = add.exchange;
            new.legal_name = add.legal_name;
            new.password = add
                .password
                .map(Password::new)
                .transpose()
                .context("password")?;
            let info = admin::create_account(&ledger, new).await?;
            println!("{}\t{}", info.name, info.payto_uri);
        }
        BankCommand::Account(AccountCommand::List) => {
            let ledger = admin::open(&config).await?;
            for info in admin::list_accounts(&ledger).await? {
                let kind = if info.is_taler_exchange {
                    "exchange"
                } else {
                    "customer"
                };
                let sign = match info.balance.sign {
                    cardcash_bank::balance::Sign::Debit => "-",
                    _ => "",
                };
                println!(
                    "{}\t{kind}\t{sign}{}\t{}",
                    info.name, info.balance.amount, info.payto_uri
                );
            }
        }
    }
    Ok(())
}
