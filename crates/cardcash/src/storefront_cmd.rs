//! `cardcash storefront …`: serve Pretty Pianos, the shop on the merchant backend.

use cardcash_storefront::{App, StorefrontConfig};
use clap::Subcommand;

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum StorefrontCommand {
    /// Serve the shop ([storefront] section).
    ///
    /// It talks to the merchant backend at MERCHANT_BASE_URL with MERCHANT_TOKEN and, at start,
    /// creates its instance (INSTANCE) and its two products there when they are missing.
    Serve,
}

pub async fn run(cmd: StorefrontCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let config = StorefrontConfig::from_taler_config(&source.load()?)?;
    match cmd {
        StorefrontCommand::Serve => {
            crate::listen::check("the storefront", "storefront", config.bind, source.path())?;
            let app = App::build(config).await?;
            println!("storefront listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await?;
        }
    }
    Ok(())
}
