//! `cardcash cardproc …`: serve the card processor, manage its API users.

use cardcash_cardproc::{App, CardprocConfig, Role, admin};
use clap::{Args, Subcommand};

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum CardprocCommand {
    /// Serve the card processor's transaction API ([cardproc] section).
    Serve,
    /// Manage API users (terminals and readers such as C2EC).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an API user; prints its id and MAC secret (base64, shown once).
    Add(AddUser),
    /// List API users.
    List,
}

#[derive(Debug, Args)]
pub struct AddUser {
    /// `terminal` (create and process card transactions) or `reader` (read and refund: C2EC).
    #[arg(long, default_value = "terminal")]
    pub role: Role,
}

pub async fn run(cmd: CardprocCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let config = CardprocConfig::from_taler_config(&source.load()?)?;
    match cmd {
        CardprocCommand::Serve => {
            crate::listen::check("the card processor", "cardproc", config.bind, source.path())?;
            let app = App::build(config).await?;
            println!("card processor listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await;
        }
        CardprocCommand::User(UserCommand::Add(add)) => {
            let (id, secret) = admin::create_user(&config, add.role).await?;
            println!("user id: {id}");
            println!("secret:  {secret}");
            println!("space:   {}", config.space_id);
        }
        CardprocCommand::User(UserCommand::List) => {
            for (id, role, space) in admin::list_users(&config).await? {
                println!("{id}\t{role}\tspace {space}");
            }
        }
    }
    Ok(())
}
