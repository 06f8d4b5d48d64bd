//! `cardcash exchange …`: serve the exchange, the offline key's commands, the audit and the
//! benchmark.

use cardcash_exchange::{App, ExchangeConfig};
use clap::Subcommand;

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// Serve the exchange ([exchange], [coin_*], [exchange-account-*] sections): keys,
    /// reserves, withdrawal, deposits, refunds, tracking, management; with wirewatch, the
    /// aggregator and the transfer worker.
    Serve,
    /// The offline master key: create it, sign what the exchange proposes (keys, accounts,
    /// fees, revocations) and upload the signatures (GNU Taler's `taler-exchange-offline`).
    #[command(subcommand)]
    Offline(crate::exchange_offline::OfflineCommand),
    /// Check the money equations on the exchange's database and list every difference
    /// (exit code 1 when there is one).
    Audit,
    /// Benchmark withdraw and deposit over HTTP (see `cardcash exchange bench --help`).
    Bench(crate::exchange_bench::BenchArgs),
    /// The benchmark's exchange (started by `bench`).
    #[command(hide = true)]
    BenchWorld(crate::exchange_bench::BenchWorldArgs),
}

pub async fn run(cmd: ExchangeCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let load = || -> anyhow::Result<ExchangeConfig> {
        Ok(ExchangeConfig::from_taler_config(&source.load()?)?)
    };
    match cmd {
        ExchangeCommand::Serve => {
            let config = load()?;
            crate::listen::check("the exchange", "exchange", config.bind, source.path())?;
            if config.master_public_key.is_none() {
                eprintln!(
                    "warning: [exchange] MASTER_PUBLIC_KEY is not set in {}: /keys stays empty \
                     until it is. Create the master key with `cardcash exchange offline setup` \
                     (on the offline machine), set the public key it prints, restart, then sign \
                     the keys with `cardcash exchange offline sync` (or download/sign/upload).",
                    source.path().display()
                );
            }
            let app = App::build(config).await?;
            println!("exchange listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await?;
        }
        ExchangeCommand::Offline(cmd) => crate::exchange_offline::run(cmd, source).await?,
        ExchangeCommand::Audit => {
            let config = load()?;
            let db = cardcash_exchange::db::connect(&config.database_url).await?;
            let store = cardcash_exchange::db::ExchangeStore::new(db, config.currency);
            let report = cardcash_exchange::audit::audit(&store).await?;
            store.close().await;
            let s = &report.sums;
            println!("reserves in:          {}", s.reserves_in);
            println!("reserve balances:     {}", s.reserve_balances);
            println!("withdrawn (with fee): {}", s.withdrawn_with_fee);
            println!("deposited (with fee): {}", s.deposits_with_fee);
            println!("refunded:             {}", s.refunds);
            println!("melted (with fee):    {}", s.refresh.melted);
            println!("  revealed:           {}", s.refresh.revealed_melted);
            println!("  fresh coins issued: {}", s.refresh.refreshed);
            println!("  melt fees:          {}", s.refresh.revealed_melt_fees);
            println!("recouped to reserves: {}", s.recoup.to_reserves);
            println!("recouped to coins:    {}", s.recoup.to_coins);
            println!("wired to merchants:   {}", s.wired);
            println!("wire fees:            {}", s.wire_fees);
            println!("bounced in:           {}", s.bounced_in);
            println!("  sent back:          {}", s.bounced_returned);
            println!("  closing fees kept:  {}", s.bounce_fees);
            println!("  pending:            {}", s.bounces_pending);
            println!("reserves closed:      {}", s.closing.closed);
            println!("  sent back:          {}", s.closing.transferred);
            println!("  closing fees:       {}", s.closing.fees);
            println!("  pending:            {}", s.closing.pending);
            if report.is_clean() {
                println!("all equations hold");
            } else {
                for d in &report.differences {
                    println!("DIFFERENCE: {d}");
                }
                return Err(crate::Reported.into());
            }
        }
        ExchangeCommand::Bench(args) => crate::exchange_bench::run(args).await?,
        ExchangeCommand::BenchWorld(args) => crate::exchange_bench::run_world(args).await?,
    }
    Ok(())
}
