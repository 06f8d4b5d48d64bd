//! `cardcash merchant …`: serve the merchant backend, create instances from the shell.

use cardcash_api::merchant::instances::{
    InstanceAccount, InstanceAuthConfig, InstanceConfigurationMessage,
};
use cardcash_merchant::db::MerchantStore;
use cardcash_merchant::{App, Merchant, MerchantConfig};
use clap::{Args, Subcommand};

use crate::config_file::ConfigSource;

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Serve the merchant backend ([merchant] and [merchant-exchange-*] sections).
    ///
    /// The default instance is served at `/`, instance I at `/instances/I/`. A fresh backend
    /// has no instance: create one with `POST /management/instances` (open until the default
    /// instance has credentials, unless an admin token is set) or with `cardcash merchant
    /// instance create`. The admin token (`Authorization: Bearer secret-token:…`) opens
    /// `/management/*` and every instance; it comes from --auth, else $TALER_MERCHANT_TOKEN,
    /// else [merchant] ADMIN_TOKEN (as `taler-merchant-httpd --auth` does).
    Serve(ServeArgs),
    /// Manage instances directly in the backend's database (the backend may be running).
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Benchmark orders created, claimed and paid per second, the exchange's deposits included
    /// (no configuration needed; see `cardcash merchant bench --help`).
    Bench(crate::merchant_bench::BenchArgs),
    /// The benchmark's services (started by `bench`; prints its target as JSON, runs until its
    /// stdin closes).
    #[command(hide = true)]
    BenchWorld(crate::merchant_bench::BenchWorldArgs),
    /// Print the backend's OpenAPI 3.1 document (no configuration needed; a running backend
    /// serves the same at `GET /openapi.json`, with its own base URL as server).
    Openapi,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The admin token, `secret-token:…` (RFC 8959).
    #[arg(long, env = "TALER_MERCHANT_TOKEN", hide_env_values = true)]
    pub auth: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create an instance (`default` is the one served at `/`); prints its public key.
    Create(CreateInstance),
    /// List the instances.
    List,
}

#[derive(Debug, Args)]
pub struct CreateInstance {
    /// The instance id (letters, digits, `_ . @ -`; `default` for the one at `/`).
    pub id: String,
    /// The shop's name, shown to customers.
    #[arg(long)]
    pub name: String,
    /// Protect the private API with this password (`Bearer secret-token:<password>`, or a login
    /// token from `POST /private/token`). Without it the instance's auth is `external`: a
    /// reverse proxy must guard `/private`.
    #[arg(long)]
    pub password: Option<String>,
    /// A bank account the instance is paid to (repeatable), e.g.
    /// payto://iban/CH9300762011623852957?receiver-name=Pretty%20Pianos.
    #[arg(long = "payto")]
    pub paytos: Vec<String>,
}

fn admin_token(token: Option<String>) -> anyhow::Result<Option<String>> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) if !t.starts_with("secret-token:") => {
            anyhow::bail!("the admin token must start with secret-token: (RFC 8959)")
        }
        other => Ok(other),
    }
}

/// The backend handle on the configured database, without serving (operator commands).
async fn open(config: MerchantConfig) -> anyhow::Result<Merchant> {
    let db = cardcash_merchant::db::connect(&config.database_url).await?;
    let store = MerchantStore::new(db, config.currency);
    let base_url = match &config.base_url {
        Some(url) => url.clone(),
        None => cardcash_util::BaseUrl::parse(&format!("http://{}/", config.bind))?,
    };
    Ok(Merchant::new(
        config,
        base_url,
        store,
        cardcash_client::HttpClient::new()?,
    ))
}

pub async fn run(cmd: MerchantCommand, source: &ConfigSource) -> anyhow::Result<()> {
    // The benchmark runs without a configuration file.
    let cmd = match cmd {
        MerchantCommand::Bench(args) => return crate::merchant_bench::run(args).await,
        MerchantCommand::BenchWorld(args) => return crate::merchant_bench::run_world(args).await,
        MerchantCommand::Openapi => {
            let doc = cardcash_merchant::openapi::document("/");
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        other => other,
    };
    let mut config = MerchantConfig::from_taler_config(&source.load()?)?;
    match cmd {
        MerchantCommand::Bench(_) | MerchantCommand::BenchWorld(_) | MerchantCommand::Openapi => {
            unreachable!("run above")
        }
        MerchantCommand::Serve(args) => {
            if let Some(token) = admin_token(args.auth)? {
                config.admin_token = Some(token);
            }
            crate::listen::check(
                "the merchant backend",
                "merchant",
                config.bind,
                source.path(),
            )?;
            let app = App::build(config).await?;
            println!("merchant backend listening on {}", app.base_url());
            crate::demo::wait_for_ctrl_c().await;
            app.shutdown().await?;
        }
        MerchantCommand::Instance(InstanceCommand::Create(c)) => {
            let merchant = open(config).await?;
            let req = InstanceConfigurationMessage {
                id: c.id.clone(),
                name: c.name,
                auth: InstanceAuthConfig {
                    method: if c.password.is_some() {
                        "token"
                    } else {
                        "external"
                    }
                    .to_owned(),
                    token: None,
                    password: c.password,
                },
                accounts: c
                    .paytos
                    .into_iter()
                    .map(|payto_uri| InstanceAccount {
                        payto_uri,
                        credit_facade_url: None,
                        credit_facade_credentials: None,
                    })
                    .collect(),
                payto_uris: Vec::new(),
                email: None,
                phone_number: None,
                website: None,
                logo: None,
                address: None,
                jurisdiction: None,
                use_stefan: None,
                default_max_wire_fee: None,
                default_wire_fee_amortization: None,
                default_max_deposit_fee: None,
                default_wire_transfer_delay: None,
                default_pay_delay: None,
                default_refund_delay: None,
            };
            let result = merchant.create_instance(&req).await;
            let row = merchant.store().instance(&c.id).await;
            merchant.store().close().await;
            result?;
            if let Some(row) = row? {
                println!(
                    "instance {} created; merchant public key {}",
                    row.id, row.merchant_pub
                );
            }
        }
        MerchantCommand::Instance(InstanceCommand::List) => {
            let merchant = open(config).await?;
            let rows = merchant.store().instances().await;
            merchant.store().close().await;
            for row in rows? {
                let state = if row.deleted { "deleted" } else { "live" };
                println!("{}\t{state}\t{}\t{}", row.id, row.merchant_pub, row.name);
            }
        }
    }
    Ok(())
}
