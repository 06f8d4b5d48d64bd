//! `cardcash exchange bench`: withdraw and deposit over HTTP against an exchange in a child
//! process (not written yet: the arguments are settled, the load generator is to come).

use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Coins to withdraw (and then deposit).
    #[arg(long, default_value = "2000")]
    pub n: usize,
    /// Requests in flight at once.
    #[arg(long, default_value = "32")]
    pub concurrency: usize,
    /// A PostgreSQL server (a role that may create databases): the run gets a fresh database
    /// there. Default: temporary SQLite files.
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchWorldArgs {
    /// A PostgreSQL server on which a fresh database is created.
    #[arg(long)]
    pub database: Option<String>,
}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the exchange benchmark is not written yet")
}

pub async fn run_world(_args: BenchWorldArgs) -> anyhow::Result<()> {
    anyhow::bail!("the exchange benchmark is not written yet")
}
