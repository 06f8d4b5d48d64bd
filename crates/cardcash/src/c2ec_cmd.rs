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
    /// Benchmark concurrent card withdrawals (no configuration needed).
    ///
    /// Starts C2EC and the card processor in a child process on a fresh database (temporary
    /// SQLite files, or a fresh database on the PostgreSQL server of --database), then drives N
    /// withdrawals through setup → register → card payment → check → confirmed from this
    /// process, over HTTP. With --target it drives a running C2EC instead, using the
    /// [terminal] and [c2ec] sections of the configuration (-c). Prints withdrawals per second
    /// (last line) and the terminal's long-poll wake-up latency. Use a release build.
    Bench(BenchArgs),
    /// The benchmark's services (started by `bench`; prints its target as JSON, runs until
    /// stdin closes).
    #[command(hide = true)]
    BenchWorld(BenchWorldArgs),
}

#[derive(Debug, Args)]
pub struct BenchWorldArgs {
    /// A PostgreSQL server on which a fresh database is created.
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of withdrawals.
    #[arg(long, default_value = "1000")]
    pub n: usize,
    /// How many run at the same time.
    #[arg(long, default_value = "32")]
    pub concurrency: usize,
    /// A PostgreSQL server (`postgres://user@host/db`, a role that may create databases): the
    /// run gets a fresh database there. Default: temporary SQLite files.
    #[arg(long, conflicts_with = "target")]
    pub database: Option<String>,
    /// Drive the running C2EC at this base URL (e.g. http://127.0.0.1:8082/) with the
    /// terminal credentials of the configuration's [terminal] section.
    #[arg(long)]
    pub target: Option<cardcash_util::BaseUrl>,
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
    // Only the benchmark runs without a configuration file.
    let load =
        || -> anyhow::Result<C2ecConfig> { Ok(C2ecConfig::from_taler_config(&source.load()?)?) };
    match cmd {
        C2ecCommand::Bench(args) => bench(args, source).await?,
        C2ecCommand::BenchWorld(args) => crate::bench::run_world(args.database).await?,
        C2ecCommand::Serve => {
            let config = load()?;
            crate::listen::check("C2EC", "c2ec", config.bind, source.path())?;
            let app = App::build(config).await?;
            println!("c2ec listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await;
        }
        C2ecCommand::Provider(ProviderAdmin::Check) => {
            println!("{}", admin::check_provider(&load()?).await?);
        }
        C2ecCommand::Terminal(TerminalAdmin::Add(add)) => {
            let db = admin::open_db(&load()?.database).await?;
            let t = admin::add_terminal(&db, &add.name).await?;
            println!("terminal user:   {}", t.user);
            println!("terminal secret: {}", t.secret);
            println!("(the secret is shown only now; C2EC stores an argon2id hash of it)");
        }
        C2ecCommand::Terminal(TerminalAdmin::List) => {
            let db = admin::open_db(&load()?.database).await?;
            for t in admin::list_terminals(&db).await? {
                let state = if t.active { "active" } else { "deactivated" };
                let created = cardcash_terminal::receipt::utc_time(t.created_at);
                println!("T-{}\t{state}\t{}\tsince {created}", t.terminal_id, t.name);
            }
        }
        C2ecCommand::Terminal(TerminalAdmin::Deactivate(d)) => {
            let db = admin::open_db(&load()?.database).await?;
            if admin::deactivate_terminal(&db, &d.terminal).await? {
                println!("{} deactivated", d.terminal);
            } else {
                anyhow::bail!("no terminal {}", d.terminal);
            }
        }
    }
    Ok(())
}

async fn bench(args: BenchArgs, source: &ConfigSource) -> anyhow::Result<()> {
    let (child, target) = match &args.target {
        Some(url) => (
            None,
            crate::bench::target_from_config(&source.load()?, url)?,
        ),
        None => {
            let (child, target) = crate::bench::spawn_world(args.database.as_deref())?;
            (Some(child), target)
        }
    };
    println!(
        "driving {} withdrawals ({} at a time) against C2EC at {} ({})…",
        args.n, args.concurrency, target.c2ec_url, target.engine
    );
    let report = crate::bench::drive(&target, args.n, args.concurrency, |done| {
        eprintln!("  {done} withdrawals done");
    })
    .await;
    if let Some(child) = child {
        let failed = report.as_ref().map_or(true, |r| r.failed > 0);
        crate::bench::stop_world(child, failed);
    }
    crate::bench::print_report(&target, &report?);
    Ok(())
}
