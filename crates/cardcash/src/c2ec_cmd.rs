//! `cardcash c2ec …`: serve C2EC, manage terminals, run the withdrawal benchmark.

use cardcash_c2ec::{App, C2ecConfig, admin};
use clap::{Args, Subcommand};

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum C2ecCommand {
    /// Serve the terminal, bank-integration and wire-gateway APIs ([c2ec] section).
    Serve,
    /// Manage the terminals allowed to set up withdrawals.
    #[command(subcommand)]
    Terminal(TerminalAdmin),
    /// The card processor C2EC attests payments with ([c2ec-provider-cardproc]).
    #[command(subcommand)]
    Provider(ProviderAdmin),
}

#[derive(Debug, Subcommand)]
pub enum ProviderAdmin {
    /// Check that the configured card processor is reachable, speaks our currency and accepts
    /// C2EC's credentials (run it after setting up the provider section).
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TerminalAdmin {
    /// Register a terminal; prints its user name and secret (shown once, stored only hashed).
    Add(AddTerminal),
    /// List terminals.
    List,
    /// Deactivate a terminal (`T-<n>`): its requests are refused from now on.
    Deactivate(Deactivate),
}

#[derive(Debug, Args)]
pub struct AddTerminal {
    /// A description, e.g. the shop and counter.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct Deactivate {
    /// The terminal's user name (`T-<n>`).
    pub terminal: String,
}

pub async fn run(cmd: C2ecCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let config = C2ecConfig::from_taler_config(&source.load()?)?;
    match cmd {
        C2ecCommand::Serve => {
            let app = App::build(config).await?;
            println!("c2ec listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await;
        }
        C2ecCommand::Provider(ProviderAdmin::Check) => {
            println!("{}", admin::check_provider(&config).await?);
        }
        C2ecCommand::Terminal(TerminalAdmin::Add(add)) => {
            let db = admin::open_db(&config.database).await?;
            let t = admin::add_terminal(&db, &add.name).await?;
            println!("terminal user:   {}", t.user);
            println!("terminal secret: {}", t.secret);
            println!("(the secret is shown only now; C2EC stores an argon2id hash of it)");
        }
        C2ecCommand::Terminal(TerminalAdmin::List) => {
            let db = admin::open_db(&config.database).await?;
            for t in admin::list_terminals(&db).await? {
                let state = if t.active { "active" } else { "deactivated" };
                let created = cardcash_util::Timestamp::from_sql_micros(t.created_at)
                    .map(cardcash_terminal::receipt::utc_time)
                    .unwrap_or_default();
                println!("T-{}\t{state}\t{}\tsince {created}", t.terminal_id, t.name);
            }
        }
        C2ecCommand::Terminal(TerminalAdmin::Deactivate(d)) => {
            let db = admin::open_db(&config.database).await?;
            if admin::deactivate_terminal(&db, &d.terminal).await? {
                println!("{} deactivated", d.terminal);
            } else {
                anyhow::bail!("no terminal {}", d.terminal);
            }
        }
    }
    Ok(())
}

