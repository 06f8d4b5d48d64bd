//! One way to start a world: any set of cardcash services (the bank, the card processor,
//! C2EC) on `127.0.0.1:0` (or the configured addresses), each on its own database, with their
//! URLs and credentials wired together. `cardcash demo`, the benchmark's services
//! (`cardcash c2ec bench`) and the integration tests all start their services here, so the
//! set-up exists once.
//!
//! What the world wires:
//! - **databases**: [`Storage`] — SQLite files `<service>.db` in a directory (a fresh temporary
//!   one by default), or one fresh database created on a PostgreSQL server
//!   ([`cardcash_store::create_fresh_pg_database`]) in which each service keeps its own schema;
//!   or, for a world read from a configuration, each service's `DATABASE` as configured;
//! - **the bank**: an admin token, and the exchange's account (`exchange`, an exchange
//!   account with a password, so its Wire Gateway API works) plus any other accounts asked
//!   for; existing accounts are kept (a resumed demo);
//! - **the card processor**: a `terminal` user (the point of sale pays with it) and a
//!   `reader` user (C2EC attests with it), random MAC secrets; with the bank in the world (and
//!   an exchange account there), payouts: the processor's settlement account
//!   ([`CARDPROC_BANK_ACCOUNT`], a large debit limit: it stands for the card networks' money
//!   arriving) pays the captured card payments out to the exchange's account after
//!   [`WORLD_PAYOUT_DELAY`] (change `payout` in [`WorldBuilder::configure_cardproc`]);
//! - **C2EC**: its provider is the world's card processor as the `reader` user (or any
//!   [`CardProvider`], e.g. C2EC's in-memory one), the exchange's account and Wire Gateway
//!   credentials, and one registered terminal (reused when the configuration names one that
//!   is still active).
//!
//! ```no_run
//! # async fn demo() -> Result<(), cardcash_world::WorldError> {
//! use cardcash_world::{Storage, World};
//! let world = World::builder()
//!     .storage(Storage::TempSqlite)
//!     .bank()
//!     .cardproc()
//!     .c2ec()
//!     .start()
//!     .await?;
//! let config = world.c2ec().terminal_client().config().await.expect("C2EC answers");
//! # let _ = config;
//! world.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! [`World::from_config`] starts the services a Taler INI configuration describes (the demo's
//! `cardcash.conf`), and [`World::write_config`] writes back where they run, so that the
//! operator commands (`cardcash -c …`) find them.

mod config;
mod exchange;
mod handles;
mod merchant;
mod payout;
mod storefront;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cardcash_api::cardproc::mac::MacKey;
use cardcash_bank::admin::{AccountName, NewAccount, Password};
use cardcash_bank::{BankConfig, BankError};
use cardcash_c2ec::provider::CardProvider;
use cardcash_c2ec::{C2ecConfig, C2ecError, ProviderConfig, StartError, WireGatewayAuth};
use cardcash_cardproc::{
    ApiUserConfig, BankCredentials, BuildError, CardprocConfig, PayoutConfig, Role,
};
use cardcash_client::{ClientError, HttpClient};
use cardcash_util::{Amount, BaseUrl, Currency, PaytoUri};

pub use cardcash_store::Engine;
pub use exchange::{
    BANK_ACCOUNT_SECTION, C2EC_ACCOUNT_SECTION, C2EC_CARD_ACCOUNT, C2EC_CARD_ACCOUNT_SECTION,
    Exchange,
};
pub use handles::{Bank, C2ec, Cardproc, CardprocUser, Credentials, TerminalCredentials};
pub use merchant::{Merchant, SHOP_ACCOUNT, SHOP_NAME, WORLD_EXCHANGE_SECTION};
pub use storefront::Storefront;

/// The exchange's account at C2EC in a programmatic world. Its receiver name has no character
/// that needs percent-encoding (GNU Taler's 2022 exchange refuses `%`).
pub const EXCHANGE_ACCOUNT: &str =
    "payto://x-taler-bank/c2ec.localhost/exchange?receiver-name=Exchange";
/// The exchange's user name at the bank and on C2EC's Wire Gateway.
pub const EXCHANGE_USER: &str = "exchange";
/// The card processor's user id of the point of sale (role `terminal`).
pub const CARDPROC_TERMINAL_ID: u64 = 1;
/// The card processor's user id C2EC attests with (role `reader`).
pub const CARDPROC_READER_ID: u64 = 2;
/// The card processor's settlement account at the bank, from which it pays out.
pub const CARDPROC_BANK_ACCOUNT: &str = "cardproc";
/// How long after capture the world's card processor pays out (a short settlement delay, so a
/// demo's exchange has the money before its wire deadline).
pub const WORLD_PAYOUT_DELAY: Duration = Duration::from_secs(1);
/// The debit limit of [`CARDPROC_BANK_ACCOUNT`] (in units of the currency): it stands for the
/// card networks' money arriving, which the bank does not model.
pub const CARDPROC_DEBIT_LIMIT: u64 = 1 << 40;

/// The name of the terminal a world registers at C2EC unless told otherwise.
pub const TERMINAL_NAME: &str = "counter 1";

/// Why a world could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The services asked for do not fit together (e.g. C2EC attesting with a card processor
    /// that has no `reader` user).
    #[error("{0}")]
    Setup(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("preparing the databases: {0}")]
    Storage(String),
    #[error("starting the bank: {0}")]
    Bank(BankError),
    #[error("setting up the bank's accounts: {0}")]
    BankAccounts(BankError),
    #[error("starting the card processor: {0}")]
    Cardproc(BuildError),
    #[error("starting C2EC: {0}")]
    C2ec(StartError),
    #[error("registering C2EC's terminal: {0}")]
    Terminal(C2ecError),
    #[error("shutting down the bank: {0}")]
    BankShutdown(BankError),
    #[error("creating clients: {0}")]
    Client(ClientError),
}

/// Where the services' databases live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// SQLite files `<service>.db` in a fresh temporary directory, removed with the world.
    TempSqlite,
    /// SQLite files `<service>.db` in this directory (created if missing).
    SqliteDir(PathBuf),
    /// A fresh database created on this PostgreSQL server (a URL of a role that may create
    /// databases); each service keeps its own schema in it.
    Postgres(String),
    /// Each service's database URL as its configuration says (a world read with
    /// [`World::from_config`]).
    Configured,
}

type Adjust<T> = Box<dyn FnOnce(&mut T) + Send>;

/// One account the world makes sure exists at the bank.
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount {
    pub name: String,
    pub legal_name: Option<String>,
    pub is_exchange: bool,
    /// Set on every start when given (also on an account that existed already).
    pub password: Option<String>,
    /// How far below zero it may go, when created; `None`: the bank's default.
    pub debit_limit: Option<Amount>,
}

impl std::fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAccount")
            .field("name", &self.name)
            .field("legal_name", &self.legal_name)
            .field("is_exchange", &self.is_exchange)
            .field("password", &self.password.as_ref().map(|_| "…redacted…"))
            .field("debit_limit", &self.debit_limit)
            .finish()
    }
}

impl BankAccount {
    /// A customer's or merchant's account without a password.
    pub fn new(name: impl Into<String>, legal_name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            legal_name: Some(legal_name.into()),
            is_exchange: false,
            password: None,
            debit_limit: None,
        }
    }

    /// An exchange's account with the password of its Wire Gateway API.
    pub fn exchange(
        name: impl Into<String>,
        legal_name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            legal_name: Some(legal_name.into()),
            is_exchange: true,
            password: Some(password.into()),
            debit_limit: None,
        }
    }
}

struct BankPlan {
    /// `None`: built at start from the world's currency and storage.
    config: Option<BankConfig>,
    adjust: Vec<Adjust<BankConfig>>,
    accounts: Vec<BankAccount>,
    /// The exchange's account (one of `accounts`): the default one, another, or none.
    exchange: ExchangeAccount,
}

enum ExchangeAccount {
    /// `exchange` with a random password.
    Default,
    /// The first exchange account of `accounts`.
    Given,
    None,
}

struct CardprocPlan {
    config: Option<CardprocConfig>,
    adjust: Vec<Adjust<CardprocConfig>>,
}

/// Who attests C2EC's card payments.
enum Provider {
    /// The world's card processor, as its `reader` user.
    Reader,
    /// The world's card processor at its actual URL, with the configured credentials.
    WorldUrl,
    /// As configured (a card processor outside the world).
    Configured,
    /// Any provider (C2EC's in-memory one in tests).
    Custom(Arc<dyn CardProvider>),
}

struct C2ecPlan {
    config: Option<C2ecConfig>,
    adjust: Vec<Adjust<C2ecConfig>>,
    provider: Provider,
    /// `None`: no terminal.
    terminal_name: Option<String>,
    /// Credentials to reuse when C2EC still has them active.
    terminal_existing: Option<(String, String)>,
}

/// Starts a [`World`]: choose the storage and the services, adjust their configurations, then
/// [`WorldBuilder::start`]. Services not asked for are not started.
pub struct WorldBuilder {
    currency: Currency,
    storage: Storage,
    bank: Option<BankPlan>,
    cardproc: Option<CardprocPlan>,
    c2ec: Option<C2ecPlan>,
    exchange: Option<exchange::ExchangePlan>,
    merchant: Option<merchant::MerchantPlan>,
    storefront: Option<storefront::StorefrontPlan>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WorldBuilder {
    /// No services yet, currency `CHF`, SQLite in a temporary directory.
    pub fn new() -> Self {
        Self {
            currency: Currency::new("CHF").unwrap_or_else(|_| unreachable!("CHF is a currency")),
            storage: Storage::TempSqlite,
            bank: None,
            cardproc: None,
            c2ec: None,
            exchange: None,
            merchant: None,
            storefront: None,
        }
    }

    /// The currency of every service (default `CHF`).
    pub fn currency(mut self, currency: Currency) -> Self {
        self.currency = currency;
        self
    }

    /// Where the databases live (default [`Storage::TempSqlite`]).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// The bank, with an admin token and the exchange's account (`exchange`, random
    /// password).
    pub fn bank(mut self) -> Self {
        self.bank.get_or_insert_with(|| BankPlan {
            config: None,
            adjust: Vec::new(),
            accounts: Vec::new(),
            exchange: ExchangeAccount::Default,
        });
        self
    }

    /// The bank with only its `admin` account (tests that create every account themselves).
    pub fn bare_bank(mut self) -> Self {
        self = self.bank();
        if let Some(plan) = &mut self.bank {
            plan.exchange = ExchangeAccount::None;
        }
        self
    }

    /// Another account the bank must have (created if missing; its password set when given).
    /// An exchange account given here replaces the default exchange account.
    pub fn bank_account(mut self, account: BankAccount) -> Self {
        self = self.bank();
        if let Some(plan) = &mut self.bank {
            if account.is_exchange && !matches!(plan.exchange, ExchangeAccount::Given) {
                plan.exchange = ExchangeAccount::Given;
            }
            plan.accounts.push(account);
        }
        self
    }

    /// Changes the bank's configuration after the world filled it in (bind, database, …).
    pub fn configure_bank(mut self, adjust: impl FnOnce(&mut BankConfig) + Send + 'static) -> Self {
        self = self.bank();
        if let Some(plan) = &mut self.bank {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// The card processor, with an admin token, a `terminal` user
    /// ([`CARDPROC_TERMINAL_ID`]) and a `reader` user ([`CARDPROC_READER_ID`]).
    pub fn cardproc(mut self) -> Self {
        self.cardproc.get_or_insert_with(|| CardprocPlan {
            config: None,
            adjust: Vec::new(),
        });
        self
    }

    /// Changes the card processor's configuration after the world filled it in. The world's
    /// `terminal` and `reader` credentials are the first users of those roles afterwards.
    pub fn configure_cardproc(
        mut self,
        adjust: impl FnOnce(&mut CardprocConfig) + Send + 'static,
    ) -> Self {
        self = self.cardproc();
        if let Some(plan) = &mut self.cardproc {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// C2EC attesting with the world's card processor (as its `reader` user; add
    /// [`Self::cardproc`] too), with one registered terminal ([`TERMINAL_NAME`]).
    pub fn c2ec(mut self) -> Self {
        self.c2ec.get_or_insert_with(|| C2ecPlan {
            config: None,
            adjust: Vec::new(),
            provider: Provider::Reader,
            terminal_name: Some(TERMINAL_NAME.to_owned()),
            terminal_existing: None,
        });
        self
    }

    /// C2EC attesting with `provider` instead of a card processor (e.g. C2EC's in-memory
    /// provider in tests).
    pub fn c2ec_with_provider(mut self, provider: Arc<dyn CardProvider>) -> Self {
        self = self.c2ec();
        if let Some(plan) = &mut self.c2ec {
            plan.provider = Provider::Custom(provider);
        }
        self
    }

    /// The name of C2EC's terminal (`None`: register none).
    pub fn c2ec_terminal(mut self, name: Option<&str>) -> Self {
        self = self.c2ec();
        if let Some(plan) = &mut self.c2ec {
            plan.terminal_name = name.map(str::to_owned);
        }
        self
    }

    /// Changes C2EC's configuration after the world filled it in (the provider's URL and
    /// credentials are filled in at start, after this).
    pub fn configure_c2ec(mut self, adjust: impl FnOnce(&mut C2ecConfig) + Send + 'static) -> Self {
        self = self.c2ec();
        if let Some(plan) = &mut self.c2ec {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// The exchange: four RSA denominations, the bank's exchange account (if the world has a
    /// bank) and C2EC's (if it has C2EC) with their Wire Gateways, a master key (kept in the
    /// data directory of a [`Storage::SqliteDir`] world), and the offline routine run at start.
    pub fn exchange(mut self) -> Self {
        self.exchange.get_or_insert_with(|| exchange::ExchangePlan {
            config: None,
            master_file: None,
            adjust: Vec::new(),
        });
        self
    }

    /// Changes the exchange's configuration after the world filled it in.
    pub fn configure_exchange(
        mut self,
        adjust: impl FnOnce(&mut cardcash_exchange::ExchangeConfig) + Send + 'static,
    ) -> Self {
        self = self.exchange();
        if let Some(plan) = &mut self.exchange {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// The merchant backend, trusting the world's exchange, with the shop instance
    /// ([`SHOP_NAME`], instance `default`) paid to the bank account [`SHOP_ACCOUNT`] (created
    /// when the world has a bank).
    pub fn merchant(mut self) -> Self {
        self.merchant.get_or_insert_with(|| merchant::MerchantPlan {
            config: None,
            adjust: Vec::new(),
        });
        self
    }

    /// Changes the merchant backend's configuration after the world filled it in.
    pub fn configure_merchant(
        mut self,
        adjust: impl FnOnce(&mut cardcash_merchant::MerchantConfig) + Send + 'static,
    ) -> Self {
        self = self.merchant();
        if let Some(plan) = &mut self.merchant {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// The storefront (Pretty Pianos) on the world's merchant backend (added too).
    pub fn storefront(mut self) -> Self {
        self = self.merchant();
        self.storefront
            .get_or_insert_with(|| storefront::StorefrontPlan {
                config: None,
                adjust: Vec::new(),
            });
        self
    }

    /// Changes the storefront's configuration after the world filled it in.
    pub fn configure_storefront(
        mut self,
        adjust: impl FnOnce(&mut cardcash_storefront::StorefrontConfig) + Send + 'static,
    ) -> Self {
        self = self.storefront();
        if let Some(plan) = &mut self.storefront {
            plan.adjust.push(Box::new(adjust));
        }
        self
    }

    /// Starts the services (bank, card processor, C2EC, in that order), sets them up, and
    /// returns the running world. On an error, the services started so far are shut down.
    pub async fn start(self) -> Result<World, WorldError> {
        let http = HttpClient::new().map_err(WorldError::Client)?;
        let (databases, temp, engine) = Databases::prepare(&self.storage).await?;
        let mut world = World {
            engine,
            chose_databases: self.storage != Storage::Configured,
            http,
            bank: None,
            cardproc: None,
            c2ec: None,
            exchange: None,
            merchant: None,
            storefront: None,
            exchange_temp: None,
            temp,
        };
        match self.start_into(&mut world, &databases).await {
            Ok(()) => {
                if !world.chose_databases {
                    let first = world
                        .bank
                        .as_ref()
                        .map(Bank::database_url)
                        .or(world.cardproc.as_ref().map(Cardproc::database_url))
                        .or(world.c2ec.as_ref().map(C2ec::database_url));
                    world.engine = first.map_or(Engine::Sqlite, engine_of);
                }
                Ok(world)
            }
            Err(e) => {
                if let Err(shutdown) = world.shutdown_services().await {
                    tracing::warn!(error = %shutdown, "shutting down a world that did not start");
                }
                Err(e)
            }
        }
    }

    async fn start_into(
        mut self,
        world: &mut World,
        databases: &Databases,
    ) -> Result<(), WorldError> {
        let currency = self.currency;
        if self.merchant.is_some()
            && let Some(bank) = &mut self.bank
            && !bank.accounts.iter().any(|a| a.name == SHOP_ACCOUNT)
        {
            bank.accounts
                .push(BankAccount::new(SHOP_ACCOUNT, SHOP_NAME));
        }
        let settlement_password = match (&mut self.bank, &self.cardproc) {
            (Some(bank), Some(cardproc)) => settlement_account(bank, cardproc, currency)?,
            _ => None,
        };
        if let Some(plan) = self.bank {
            world.bank = Some(start_bank(plan, currency, databases, &world.http).await?);
        }
        if let (Some(password), Some(bank), Some(plan)) =
            (settlement_password, &world.bank, &mut self.cardproc)
        {
            payout_to_exchange(plan, bank, currency, password)?;
        }
        if let Some(plan) = self.cardproc {
            world.cardproc = Some(start_cardproc(plan, currency, databases, &world.http).await?);
        }
        if let Some(plan) = self.c2ec {
            world.c2ec = Some(
                start_c2ec(
                    plan,
                    currency,
                    databases,
                    world.cardproc.as_ref(),
                    &world.http,
                )
                .await?,
            );
        }
        if let Some(plan) = self.exchange {
            let (data_dir, persistent) = match (&databases.base, &world.temp) {
                (Some(DatabaseBase::SqliteDir(dir)), None) => (dir.clone(), true),
                (Some(DatabaseBase::SqliteDir(dir)), Some(_)) => (dir.clone(), false),
                _ => {
                    let dir = tempfile::Builder::new()
                        .prefix("cardcash-exchange-")
                        .tempdir()
                        .map_err(|e| WorldError::Storage(e.to_string()))?;
                    let path = dir.path().to_path_buf();
                    world.exchange_temp = Some(dir);
                    (path, false)
                }
            };
            world.exchange = Some(
                exchange::start_exchange(
                    plan,
                    exchange::ExchangeSetup {
                        currency,
                        database_url: databases.url("exchange"),
                        data_dir,
                        persistent,
                        bank: world.bank.as_ref(),
                        c2ec: world.c2ec.as_ref(),
                        http: &world.http,
                    },
                )
                .await?,
            );
        }
        if let Some(plan) = self.merchant {
            world.merchant = Some(
                merchant::start_merchant(
                    plan,
                    merchant::MerchantSetup {
                        currency,
                        database_url: databases.url("merchant"),
                        bank: world.bank.as_ref(),
                        exchange: world.exchange.as_ref(),
                        http: &world.http,
                    },
                )
                .await?,
            );
        }
        if let Some(plan) = self.storefront {
            world.storefront =
                Some(storefront::start_storefront(plan, currency, world.merchant.as_ref()).await?);
        }
        Ok(())
    }
}

/// Each service's database URL.
struct Databases {
    /// `None`: as configured.
    base: Option<DatabaseBase>,
}

enum DatabaseBase {
    SqliteDir(PathBuf),
    Postgres(String),
}

impl Databases {
    async fn prepare(
        storage: &Storage,
    ) -> Result<(Self, Option<tempfile::TempDir>, Engine), WorldError> {
        let storage_error = |e: &dyn std::fmt::Display| WorldError::Storage(e.to_string());
        Ok(match storage {
            Storage::TempSqlite => {
                // 0700, like every temporary directory tempfile creates.
                let dir = tempfile::Builder::new()
                    .prefix("cardcash-world-")
                    .tempdir()
                    .map_err(|e| storage_error(&e))?;
                let base = DatabaseBase::SqliteDir(dir.path().to_path_buf());
                (Self { base: Some(base) }, Some(dir), Engine::Sqlite)
            }
            Storage::SqliteDir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| WorldError::Storage(format!("creating {}: {e}", dir.display())))?;
                let base = DatabaseBase::SqliteDir(dir.clone());
                (Self { base: Some(base) }, None, Engine::Sqlite)
            }
            Storage::Postgres(server) => {
                let url = cardcash_store::create_fresh_pg_database(server, "world")
                    .await
                    .map_err(|e| storage_error(&e))?;
                let base = DatabaseBase::Postgres(url);
                (Self { base: Some(base) }, None, Engine::Postgres)
            }
            Storage::Configured => (Self { base: None }, None, Engine::Sqlite),
        })
    }

    /// The URL of `service`'s database, or `None` to keep the configured one.
    fn url(&self, service: &str) -> Option<String> {
        match self.base.as_ref()? {
            DatabaseBase::SqliteDir(dir) => Some(format!(
                "sqlite:{}",
                dir.join(format!("{service}.db")).display()
            )),
            // One database; each service in its own schema.
            DatabaseBase::Postgres(url) => Some(url.clone()),
        }
    }
}

/// The engine of a database URL.
fn engine_of(url: &str) -> Engine {
    if url.starts_with("postgres") {
        Engine::Postgres
    } else {
        Engine::Sqlite
    }
}

/// 32 random bytes.
fn random32() -> Result<[u8; 32], WorldError> {
    cardcash_crypto::random_bytes::<32>()
        .map_err(|e| WorldError::Setup(format!("no randomness: {e}")))
}

/// A random secret as base32 text (passwords, tokens).
pub fn secret_text() -> Result<String, WorldError> {
    Ok(cardcash_util::base32::encode(&random32()?))
}

/// A random admin token (`secret-token:…`).
fn token() -> Result<String, WorldError> {
    Ok(format!("secret-token:{}", secret_text()?))
}

/// A random card-processor MAC key.
fn mac_key() -> Result<MacKey, WorldError> {
    MacKey::from_bytes(random32()?.to_vec()).map_err(|e| WorldError::Setup(format!("MAC key: {e}")))
}

async fn start_bank(
    plan: BankPlan,
    currency: Currency,
    databases: &Databases,
    http: &HttpClient,
) -> Result<Bank, WorldError> {
    let mut config = match plan.config {
        Some(config) => config,
        None => {
            let mut config = BankConfig::new(currency, String::new());
            config.admin_token = Some(token()?);
            config
        }
    };
    if let Some(url) = databases.url("bank") {
        config.database_url = url;
    }
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let mut accounts = plan.accounts;
    if matches!(plan.exchange, ExchangeAccount::Default) {
        accounts.insert(
            0,
            BankAccount::exchange(EXCHANGE_USER, "Exchange", secret_text()?),
        );
    }
    let exchange = match plan.exchange {
        ExchangeAccount::None => None,
        _ => accounts.iter().find(|a| a.is_exchange).and_then(|a| {
            a.password.as_ref().map(|password| Credentials {
                username: a.name.clone(),
                password: password.clone(),
            })
        }),
    };
    let admin_token = config.admin_token.clone();
    let database_url = config.database_url.clone();
    let app = cardcash_bank::App::build(config)
        .await
        .map_err(WorldError::Bank)?;
    let bank = Bank::new(app, admin_token, exchange, database_url, http.clone());
    if let Err(e) = ensure_accounts(bank.app().ledger(), &accounts).await {
        if let Err(shutdown) = bank.shutdown().await {
            tracing::warn!(error = %shutdown, "bank shutdown");
        }
        return Err(e);
    }
    Ok(bank)
}

/// Creates the accounts that do not exist yet; sets the given passwords (also on accounts an
/// earlier run created, maybe with another one).
async fn ensure_accounts(
    ledger: &cardcash_bank::Ledger,
    accounts: &[BankAccount],
) -> Result<(), WorldError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let existing = cardcash_bank::admin::list_accounts(ledger)
        .await
        .map_err(WorldError::BankAccounts)?;
    for account in accounts {
        let name: AccountName = account.name.parse().map_err(|_| {
            WorldError::Setup(format!("{:?} is not a bank account name", account.name))
        })?;
        let password = account
            .password
            .as_ref()
            .map(|p| Password::new(p.clone()))
            .transpose()
            .map_err(|e| WorldError::Setup(format!("password of {}: {e}", account.name)))?;
        if existing.iter().any(|a| a.name == name) {
            if let Some(password) = password {
                cardcash_bank::admin::set_password(ledger, &name, password)
                    .await
                    .map_err(WorldError::BankAccounts)?;
            }
            continue;
        }
        let mut new = NewAccount::new(name);
        new.is_exchange = account.is_exchange;
        new.legal_name.clone_from(&account.legal_name);
        new.password = password;
        new.debit_limit = account.debit_limit;
        cardcash_bank::admin::create_account(ledger, new)
            .await
            .map_err(WorldError::BankAccounts)?;
    }
    Ok(())
}

/// When the world runs the bank (with an exchange account) and the card processor (with no
/// payouts configured): adds the processor's settlement account to the bank's plan and returns
/// its password.
fn settlement_account(
    bank: &mut BankPlan,
    cardproc: &CardprocPlan,
    currency: Currency,
) -> Result<Option<String>, WorldError> {
    let has_exchange = match bank.exchange {
        ExchangeAccount::Default => true,
        ExchangeAccount::Given => bank.accounts.iter().any(|a| a.is_exchange),
        ExchangeAccount::None => false,
    };
    let configured = cardproc.config.as_ref().is_some_and(|c| c.payout.is_some());
    if !has_exchange || configured {
        return Ok(None);
    }
    let password = secret_text()?;
    let limit = Amount::new(currency, CARDPROC_DEBIT_LIMIT, 0)
        .map_err(|e| WorldError::Setup(format!("settlement debit limit: {e}")))?;
    bank.accounts.retain(|a| a.name != CARDPROC_BANK_ACCOUNT);
    bank.accounts.push(BankAccount {
        name: CARDPROC_BANK_ACCOUNT.to_owned(),
        // No space: it becomes the payto URI's receiver-name, which stays free of
        // percent-encoding (GNU Taler's 2022 exchange refuses `%`).
        legal_name: Some("CardProcessor".to_owned()),
        // The bank bounces a Core Bank API transfer into an exchange account unless its subject
        // is a reserve key or it comes from another exchange account (no bounce between
        // exchanges): a payout is neither a top-up nor to be bounced, so the settlement
        // account is flagged like an exchange's.
        is_exchange: true,
        password: Some(password.clone()),
        debit_limit: Some(limit),
    });
    Ok(Some(password))
}

/// Points the card processor's payouts at the world's exchange account (before the plan's own
/// adjustments, which may change or remove them).
fn payout_to_exchange(
    plan: &mut CardprocPlan,
    bank: &Bank,
    currency: Currency,
    password: String,
) -> Result<(), WorldError> {
    let Some(exchange) = bank.exchange() else {
        return Ok(());
    };
    let payto = bank
        .app()
        .ledger()
        .payto()
        .account_uri(&exchange.username, "Exchange")
        .map_err(|e| WorldError::Setup(format!("the exchange's bank account: {e}")))?;
    let mut payout = PayoutConfig::new(
        bank.base_url().clone(),
        CARDPROC_BANK_ACCOUNT,
        BankCredentials::Password(password),
        payto,
        currency,
    );
    payout.delay = WORLD_PAYOUT_DELAY;
    plan.adjust.insert(
        0,
        Box::new(move |c: &mut CardprocConfig| c.payout = Some(payout)),
    );
    Ok(())
}

async fn start_cardproc(
    plan: CardprocPlan,
    currency: Currency,
    databases: &Databases,
    http: &HttpClient,
) -> Result<Cardproc, WorldError> {
    let mut config = match plan.config {
        Some(config) => config,
        None => {
            let mut config = CardprocConfig::new(currency, String::new());
            config.admin_token = Some(token()?);
            config.users = vec![
                ApiUserConfig {
                    id: CARDPROC_TERMINAL_ID,
                    secret: mac_key()?,
                    role: Role::Terminal,
                },
                ApiUserConfig {
                    id: CARDPROC_READER_ID,
                    secret: mac_key()?,
                    role: Role::Reader,
                },
            ];
            config
        }
    };
    if let Some(url) = databases.url("cardproc") {
        config.database_url = url;
    }
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let user = |role: Role| {
        config
            .users
            .iter()
            .find(|u| u.role == role)
            .map(|u| CardprocUser {
                id: u.id,
                secret: u.secret.to_base64(),
            })
    };
    let (terminal, reader) = (user(Role::Terminal), user(Role::Reader));
    let admin_token = config.admin_token.clone();
    let space_id = config.space_id;
    let database_url = config.database_url.clone();
    let app = cardcash_cardproc::App::build(config)
        .await
        .map_err(WorldError::Cardproc)?;
    Ok(Cardproc::new(
        app,
        handles::CardprocSetup {
            admin_token,
            space_id,
            terminal,
            reader,
            database_url,
        },
        http.clone(),
    ))
}

/// C2EC's configuration in a programmatic world; the provider is filled in at start.
fn default_c2ec_config(currency: Currency) -> Result<C2ecConfig, WorldError> {
    let exchange_account: PaytoUri = EXCHANGE_ACCOUNT
        .parse()
        .map_err(|e| WorldError::Setup(format!("{EXCHANGE_ACCOUNT}: {e}")))?;
    Ok(C2ecConfig {
        bind: ([127, 0, 0, 1], 0).into(),
        base_url: None,
        database: String::new(),
        currency,
        exchange_base_url: None,
        exchange_account,
        wire_gateway: WireGatewayAuth {
            username: Some(EXCHANGE_USER.to_owned()),
            password: Some(secret_text()?),
            token: None,
        },
        admin_token: Some(token()?),
        withdrawal_fees: Amount::zero(&currency),
        registration_window: Duration::from_secs(120),
        check_window: Duration::from_secs(300),
        attestation_max_retries: 10,
        attestation_retry_delay: Duration::from_millis(50),
        provider: placeholder_provider(),
    })
}

/// A provider section to parse or build a configuration with before the card processor runs;
/// replaced at start.
fn placeholder_provider() -> ProviderConfig {
    ProviderConfig {
        name: "cardcash card processor".to_owned(),
        base_url: BaseUrl::parse("http://127.0.0.1:1/")
            .unwrap_or_else(|_| unreachable!("a valid URL")),
        user_id: CARDPROC_READER_ID,
        secret: String::new(),
        space_id: 1,
    }
}

async fn start_c2ec(
    plan: C2ecPlan,
    currency: Currency,
    databases: &Databases,
    cardproc: Option<&Cardproc>,
    http: &HttpClient,
) -> Result<C2ec, WorldError> {
    let mut config = match plan.config {
        Some(config) => config,
        None => default_c2ec_config(currency)?,
    };
    if let Some(url) = databases.url("c2ec") {
        config.database = url;
    }
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let needs_cardproc = || {
        cardproc.ok_or_else(|| {
            WorldError::Setup(
                "C2EC attests with the world's card processor, but the world has none: add \
                 the card processor, or give C2EC another provider"
                    .to_owned(),
            )
        })
    };
    let custom = match plan.provider {
        Provider::Reader => {
            let cardproc = needs_cardproc()?;
            let reader = cardproc.reader_user().ok_or_else(|| {
                WorldError::Setup("the card processor has no reader user for C2EC".to_owned())
            })?;
            config.provider.base_url = cardproc.base_url().clone();
            config.provider.user_id = reader.id;
            config.provider.secret = reader.secret.clone();
            config.provider.space_id = cardproc.space_id();
            None
        }
        Provider::WorldUrl => {
            config.provider.base_url = needs_cardproc()?.base_url().clone();
            None
        }
        Provider::Configured => None,
        Provider::Custom(provider) => Some(provider),
    };
    let setup = handles::C2ecSetup {
        exchange_account: config.exchange_account.clone(),
        wire_gateway: config.wire_gateway.clone(),
        admin_token: config.admin_token.clone(),
        database_url: config.database.clone(),
        provider_url: custom.is_none().then(|| config.provider.base_url.clone()),
    };
    let app = match custom {
        Some(provider) => cardcash_c2ec::App::build_with_provider(config, provider).await,
        None => cardcash_c2ec::App::build(config).await,
    }
    .map_err(WorldError::C2ec)?;
    let terminal = match &plan.terminal_name {
        None => Ok(None),
        Some(name) => ensure_terminal(&app, name, plan.terminal_existing)
            .await
            .map(Some),
    };
    match terminal {
        Ok(terminal) => Ok(C2ec::new(app, setup, terminal, http.clone())),
        Err(e) => {
            app.shutdown().await;
            Err(e)
        }
    }
}

/// The configured terminal if C2EC still has it active; a newly registered one otherwise.
async fn ensure_terminal(
    app: &cardcash_c2ec::App,
    name: &str,
    existing: Option<(String, String)>,
) -> Result<TerminalCredentials, WorldError> {
    if let Some((user, secret)) = existing {
        let terminals = cardcash_c2ec::admin::list_terminals(app.db())
            .await
            .map_err(WorldError::Terminal)?;
        if let Some(t) = terminals
            .iter()
            .find(|t| t.active && format!("T-{}", t.terminal_id) == user)
        {
            return Ok(TerminalCredentials {
                user,
                secret,
                name: t.name.clone(),
            });
        }
    }
    let terminal = cardcash_c2ec::admin::add_terminal(app.db(), name)
        .await
        .map_err(WorldError::Terminal)?;
    Ok(TerminalCredentials {
        user: terminal.user,
        secret: terminal.secret,
        name: name.to_owned(),
    })
}

/// Running services, wired together. Shut it down with [`World::shutdown`]; dropping it
/// aborts the services less gracefully and removes a temporary data directory.
pub struct World {
    engine: Engine,
    /// Whether the databases are the world's choice (not a configuration's).
    chose_databases: bool,
    http: HttpClient,
    bank: Option<Bank>,
    cardproc: Option<Cardproc>,
    c2ec: Option<C2ec>,
    exchange: Option<Exchange>,
    merchant: Option<Merchant>,
    storefront: Option<Storefront>,
    /// The exchange's keys when the databases are not in a directory of the world's.
    exchange_temp: Option<tempfile::TempDir>,
    /// Declared last: removed after the services let go of their files.
    temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("engine", &self.engine)
            .field(
                "bank",
                &self.bank.as_ref().map(|b| b.base_url().to_string()),
            )
            .field(
                "cardproc",
                &self.cardproc.as_ref().map(|c| c.base_url().to_string()),
            )
            .field(
                "c2ec",
                &self.c2ec.as_ref().map(|c| c.base_url().to_string()),
            )
            .finish_non_exhaustive()
    }
}

impl World {
    /// A builder with no services yet (see [`WorldBuilder`]).
    pub fn builder() -> WorldBuilder {
        WorldBuilder::new()
    }

    /// The database engine the services run on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The HTTP client pool every ready-made client of this world shares.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The bank. Panics if the world has none (a test's set-up mistake).
    pub fn bank(&self) -> &Bank {
        self.bank
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no bank (WorldBuilder::bank)"))
    }

    /// The card processor. Panics if the world has none.
    pub fn cardproc(&self) -> &Cardproc {
        self.cardproc
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no card processor (WorldBuilder::cardproc)"))
    }

    /// C2EC. Panics if the world has none.
    pub fn c2ec(&self) -> &C2ec {
        self.c2ec
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no C2EC (WorldBuilder::c2ec)"))
    }

    /// The storefront. Panics if the world has none.
    pub fn storefront(&self) -> &Storefront {
        self.storefront
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no storefront (WorldBuilder::storefront)"))
    }

    /// The merchant backend. Panics if the world has none.
    pub fn merchant(&self) -> &Merchant {
        self.merchant
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no merchant (WorldBuilder::merchant)"))
    }

    /// The exchange. Panics if the world has none.
    pub fn exchange(&self) -> &Exchange {
        self.exchange
            .as_ref()
            .unwrap_or_else(|| panic!("this world has no exchange (WorldBuilder::exchange)"))
    }

    /// The customer pays `amount` for C2EC's withdrawal `wopid` at the point of sale with the
    /// processor's approving test card, and the terminal tells C2EC (as the terminal app does
    /// after a payment). Returns the card processor's transaction id. Needs the card processor
    /// and C2EC with its terminal.
    pub async fn pay_by_card(&self, wopid: &str, amount: &Amount) -> Result<u64, WorldError> {
        let c2ec = self.c2ec();
        let terminal_user = c2ec
            .terminal()
            .ok_or_else(|| WorldError::Setup("C2EC has no terminal (WorldBuilder::c2ec)".into()))?
            .user
            .clone();
        let pos = self.cardproc().pos();
        let tx = pos
            .create_transaction(&cardcash_api::cardproc::CreateTransactionRequest {
                currency: *amount.currency(),
                amount: amount.into(),
                merchant_reference: wopid.to_owned(),
                terminal_id: Some(terminal_user),
                meta_data: Default::default(),
            })
            .await
            .map_err(WorldError::Client)?;
        pos.process_card(
            tx.id,
            &cardcash_api::cardproc::ProcessCardRequest {
                pan: cardcash_api::cardproc::CardNumber(
                    cardcash_cardproc::processing::CARD_APPROVE.into(),
                ),
                expiry_month: 12,
                expiry_year: 2099,
                cvc: Some("123".into()),
            },
        )
        .await
        .map_err(WorldError::Client)?;
        c2ec.terminal_client()
            .check(wopid, &tx.id.to_string())
            .await
            .map_err(WorldError::Client)?;
        Ok(tx.id)
    }

    pub fn try_exchange(&self) -> Option<&Exchange> {
        self.exchange.as_ref()
    }

    /// Takes the exchange out of the world (to stop and restart it).
    pub fn take_exchange(&mut self) -> Option<Exchange> {
        self.exchange.take()
    }

    pub fn try_bank(&self) -> Option<&Bank> {
        self.bank.as_ref()
    }

    pub fn try_cardproc(&self) -> Option<&Cardproc> {
        self.cardproc.as_ref()
    }

    pub fn try_c2ec(&self) -> Option<&C2ec> {
        self.c2ec.as_ref()
    }

    /// Takes the bank out of the world (to shut it down alone); the rest keeps running.
    pub fn take_bank(&mut self) -> Option<Bank> {
        self.bank.take()
    }

    /// Takes the card processor out of the world (e.g. to show C2EC an unreachable one).
    pub fn take_cardproc(&mut self) -> Option<Cardproc> {
        self.cardproc.take()
    }

    /// Takes C2EC out of the world.
    pub fn take_c2ec(&mut self) -> Option<C2ec> {
        self.c2ec.take()
    }

    /// Stops C2EC, the card processor and the bank (in that order: who calls comes first),
    /// each letting in-flight requests finish, then removes a temporary data directory.
    pub async fn shutdown(mut self) -> Result<(), WorldError> {
        let result = self.shutdown_services().await;
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_path_buf();
            if let Err(e) = temp.close() {
                tracing::warn!(error = %e, path = %path.display(), "removing the world's data");
            }
        }
        result
    }

    async fn shutdown_services(&mut self) -> Result<(), WorldError> {
        if let Some(storefront) = self.storefront.take() {
            storefront.shutdown().await;
        }
        if let Some(merchant) = self.merchant.take() {
            merchant.shutdown().await;
        }
        if let Some(exchange) = self.exchange.take() {
            exchange.shutdown().await;
        }
        if let Some(c2ec) = self.c2ec.take() {
            c2ec.shutdown().await;
        }
        if let Some(cardproc) = self.cardproc.take() {
            cardproc.shutdown().await;
        }
        match self.bank.take() {
            Some(bank) => bank.shutdown().await,
            None => Ok(()),
        }
    }
}
