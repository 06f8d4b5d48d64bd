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
    /// Drives N withdrawals through setup → register → check → confirmed against an in-process
    /// C2EC and card processor; reports withdrawals per second and the terminal's long-poll
    /// wake-up latency (p50/p99/max). Use a release build for meaningful figures.
    Bench(BenchArgs),
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
    /// run gets a fresh database there. Default: a temporary SQLite file.
    #[arg(long)]
    pub database: Option<String>,
    /// Attest against an in-memory processor instead of the real card processor service.
    #[arg(long)]
    pub in_memory_processor: bool,
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
        C2ecCommand::Bench(args) => bench(args).await?,
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
                let created = cardcash_util::Timestamp::from_sql_micros(t.created_at)
                    .map(cardcash_terminal::receipt::utc_time)
                    .unwrap_or_default();
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

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let engine = if args.database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "driving {} withdrawals ({} at a time) on {engine} with the {} processor…",
        args.n,
        args.concurrency,
        if args.in_memory_processor {
            "in-memory"
        } else {
            "real card"
        }
    );
    // The binary links every service; C2EC does not, so the processor is started here.
    let tmp = tempfile::tempdir()?;
    let (cardproc, processor) = if args.in_memory_processor {
        (None, cardcash_c2ec::bench::BenchProcessor::InMemory)
    } else {
        let (app, processor) = bench_cardproc(tmp.path()).await?;
        (Some(app), processor)
    };
    let report = cardcash_c2ec::bench::run(cardcash_c2ec::bench::BenchConfig {
        n: args.n,
        concurrency: args.concurrency,
        database: args.database,
        processor,
    })
    .await;
    if let Some(cardproc) = cardproc {
        cardproc.shutdown().await;
    }
    let report = report?;
    println!("{report}");
    Ok(())
}

/// A fresh card processor for the benchmark (its own SQLite file in `dir`) with a terminal and
/// a reader user on random keys: the terminal's client pays, C2EC attests as the reader.
async fn bench_cardproc(
    dir: &std::path::Path,
) -> anyhow::Result<(cardcash_cardproc::App, cardcash_c2ec::bench::BenchProcessor)> {
    use cardcash_api::cardproc::mac::MacKey;
    use cardcash_cardproc::{ApiUserConfig, CardprocConfig, Role};
    const TERMINAL: u64 = 1;
    const READER: u64 = 2;
    let key = || -> anyhow::Result<MacKey> {
        let bytes = cardcash_crypto::random::random_bytes::<32>()?;
        Ok(MacKey::from_bytes(bytes.to_vec())?)
    };
    let (terminal_key, reader_key) = (key()?, key()?);
    let mut config = CardprocConfig::new(
        "CHF".parse()?,
        format!("sqlite:{}/cardproc.db", dir.display()),
    );
    config.delay_finality =
        cardcash_util::RelativeTime::from_duration(std::time::Duration::from_millis(500));
    config.users = vec![
        ApiUserConfig {
            id: TERMINAL,
            secret: terminal_key.clone(),
            role: Role::Terminal,
        },
        ApiUserConfig {
            id: READER,
            secret: reader_key.clone(),
            role: Role::Reader,
        },
    ];
    let space = config.space_id;
    let app = cardcash_cardproc::App::build(config).await?;
    let base = app.base_url().clone();
    let terminal = cardcash_client::CardprocClient::new(
        base.as_str(),
        TERMINAL,
        &terminal_key.to_base64(),
        space,
    )?;
    let provider = cardcash_c2ec::ProviderConfig {
        name: "cardcash card processor".into(),
        base_url: base,
        user_id: READER,
        secret: reader_key.to_base64(),
        space_id: space,
    };
    Ok((
        app,
        cardcash_c2ec::bench::BenchProcessor::Cardproc { terminal, provider },
    ))
}
