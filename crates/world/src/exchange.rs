//! The exchange in a world: its configuration (four RSA denominations, the bank's exchange
//! account for paying merchants and receiving transfers, C2EC's for the card withdrawals, and a
//! debit-only `payto://card-transaction/…` account on C2EC's Wire Gateway through which the
//! closer sends unwithdrawn card-funded reserves back to the card), its key directory and
//! master key, and the offline key's routine run right after start (sign the proposed keys,
//! enable the accounts that receive money, set this year's wire and closing fees for every
//! account's wire method), so that `/keys` is served at once.

use std::path::{Path, PathBuf};

use cardcash_client::{ExchangeClient, HttpClient};
use cardcash_exchange::config::{
    AccountConfig, CipherConfig, DenominationConfig, ExchangeConfig, GatewayAuth, GatewayConfig,
};
use cardcash_exchange::offline::MasterKey;
use cardcash_util::{Amount, BaseUrl, Currency, RelativeTime, Timestamp};

use crate::handles::{Bank, C2ec};
use crate::{Adjust, WorldError};

/// Account section of the bank account (pays merchants, receives transfers).
pub const BANK_ACCOUNT_SECTION: &str = "exchange-account-1";
/// Account section of C2EC's account (receives the card withdrawals).
pub const C2EC_ACCOUNT_SECTION: &str = "exchange-account-2";
/// Account section of the debit-only card-transaction account on C2EC's Wire Gateway: a
/// card-funded reserve's origin is a `payto://card-transaction/…` URI, so closing it needs an
/// account of that wire method (C2EC turns the transfer into a refund to the card).
pub const C2EC_CARD_ACCOUNT_SECTION: &str = "exchange-account-card";
/// The payto URI of [`C2EC_CARD_ACCOUNT_SECTION`] (only its wire method matters: C2EC's
/// `/transfer` pays from the one exchange account it serves).
pub const C2EC_CARD_ACCOUNT: &str = "payto://card-transaction/c2ec.localhost/exchange";

pub(crate) struct ExchangePlan {
    /// `None`: built at start (four RSA denominations, the world's accounts).
    pub(crate) config: Option<ExchangeConfig>,
    /// The offline key's file (`[exchange-offline] MASTER_PRIV_FILE`): loaded, or created.
    pub(crate) master_file: Option<PathBuf>,
    pub(crate) adjust: Vec<Adjust<ExchangeConfig>>,
}

/// The running exchange and its offline key.
pub struct Exchange {
    app: cardcash_exchange::App,
    accounts: Vec<AccountConfig>,
    master: MasterKey,
    database_url: String,
    http: HttpClient,
}

impl Exchange {
    pub fn app(&self) -> &cardcash_exchange::App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The exchange's bank accounts as configured (with their Wire Gateway credentials).
    pub fn accounts(&self) -> &[AccountConfig] {
        &self.accounts
    }

    /// The offline master key (tests sign revocations and further fees with it).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// A client of the exchange on the world's pool.
    pub fn client(&self) -> ExchangeClient {
        ExchangeClient::with_http(self.http.clone(), self.base_url().clone())
    }

    /// Runs the offline key's routine again (e.g. after the key store created new keys).
    pub async fn sign_keys(&self) -> Result<(), WorldError> {
        let management = self.client().management();
        let future = management.future_keys().await.map_err(WorldError::Client)?;
        let signatures = self
            .master
            .sign_future_keys(&future)
            .map_err(|e| WorldError::Setup(format!("offline key: {e}")))?;
        management
            .upload_keys(&signatures)
            .await
            .map_err(WorldError::Client)
    }

    pub async fn shutdown(self) {
        if let Err(e) = self.app.shutdown().await {
            tracing::warn!(error = %e, "exchange shutdown");
        }
    }
}

fn amount(currency: Currency, text: &str) -> Result<Amount, WorldError> {
    format!("{currency}:{text}")
        .parse()
        .map_err(|e| WorldError::Setup(format!("amount {text}: {e}")))
}

/// The exchange's configuration in a programmatic world.
fn default_config(currency: Currency, key_dir: PathBuf) -> Result<ExchangeConfig, WorldError> {
    let mut config = ExchangeConfig::new(currency, String::new(), key_dir);
    // One key per denomination type at start (RSA key generation is the slow part).
    config.lookahead_sign = RelativeTime::from_secs(24 * 3600);
    let coin = |value: &str| -> Result<DenominationConfig, WorldError> {
        Ok(DenominationConfig {
            section: format!("coin_{}_{}", currency.as_str().to_ascii_lowercase(), value),
            cipher: CipherConfig::Rsa { bits: 2048 },
            value: amount(currency, value)?,
            fee_withdraw: amount(currency, "0.01")?,
            fee_deposit: amount(currency, "0.01")?,
            fee_refresh: amount(currency, "0.01")?,
            fee_refund: amount(currency, "0.01")?,
            duration_withdraw: RelativeTime::from_secs(30 * 24 * 3600),
            duration_spend: RelativeTime::from_secs(2 * 365 * 24 * 3600),
            duration_legal: RelativeTime::from_secs(6 * 365 * 24 * 3600),
        })
    };
    config.denominations = vec![coin("1")?, coin("2")?, coin("5")?, coin("10")?];
    Ok(config)
}

/// Loads the master key at `path`, or creates it there.
fn master_key(path: Option<&Path>) -> Result<MasterKey, WorldError> {
    let fail = |e: cardcash_exchange::offline::OfflineError| WorldError::Setup(e.to_string());
    match path {
        Some(p) if p.exists() => MasterKey::load(p).map_err(fail),
        Some(p) => MasterKey::create(p).map_err(fail),
        None => MasterKey::generate().map_err(fail),
    }
}

pub(crate) struct ExchangeSetup<'a> {
    pub(crate) currency: Currency,
    pub(crate) database_url: Option<String>,
    /// Where keys live (and the master key, when `persistent`).
    pub(crate) data_dir: PathBuf,
    pub(crate) persistent: bool,
    pub(crate) bank: Option<&'a Bank>,
    pub(crate) c2ec: Option<&'a C2ec>,
    pub(crate) http: &'a HttpClient,
}

pub(crate) async fn start_exchange(
    plan: ExchangePlan,
    setup: ExchangeSetup<'_>,
) -> Result<Exchange, WorldError> {
    let mut config = match plan.config {
        Some(config) => config,
        None => default_config(setup.currency, setup.data_dir.join("exchange-keys"))?,
    };
    if let Some(url) = setup.database_url {
        config.database_url = url;
    }
    // A configuration with accounts keeps them; otherwise the world's bank and C2EC accounts.
    let wire_accounts = config.accounts.is_empty();
    // A configured account of the world's own bank or C2EC follows the service to wherever it
    // listens now (a resumed demo may have moved a service to another port).
    for account in &mut config.accounts {
        let url = match account.section.as_str() {
            BANK_ACCOUNT_SECTION => setup.bank.and_then(|bank| {
                bank.exchange()
                    .and_then(|c| bank.app().wire_gateway_url(&c.username).ok())
            }),
            C2EC_ACCOUNT_SECTION | C2EC_CARD_ACCOUNT_SECTION => {
                setup.c2ec.map(C2ec::wire_gateway_url)
            }
            _ => None,
        };
        if let (Some(url), Some(gateway)) = (url, account.gateway.as_mut()) {
            gateway.url = url;
        }
    }
    if wire_accounts
        && let Some(bank) = setup.bank
        && let Some(credentials) = bank.exchange()
    {
        let url = bank
            .app()
            .wire_gateway_url(&credentials.username)
            .map_err(|e| WorldError::Setup(e.to_string()))?;
        let payto = bank
            .app()
            .ledger()
            .payto()
            .account_uri(&credentials.username, "Exchange")
            .map_err(|e| WorldError::Setup(format!("the exchange's bank account: {e}")))?;
        config.accounts.push(AccountConfig {
            section: BANK_ACCOUNT_SECTION.into(),
            payto,
            enable_debit: true,
            enable_credit: true,
            gateway: Some(GatewayConfig {
                url,
                auth: GatewayAuth::Basic {
                    username: credentials.username.clone(),
                    password: credentials.password.clone(),
                },
            }),
        });
    }
    if wire_accounts
        && let Some(c2ec) = setup.c2ec
        && let Some(credentials) = c2ec.exchange()
    {
        let gateway = GatewayConfig {
            url: c2ec.wire_gateway_url(),
            auth: GatewayAuth::Basic {
                username: credentials.username,
                password: credentials.password,
            },
        };
        config.accounts.push(AccountConfig {
            section: C2EC_ACCOUNT_SECTION.into(),
            payto: c2ec.exchange_account().clone(),
            enable_debit: false,
            enable_credit: true,
            gateway: Some(gateway.clone()),
        });
        config.accounts.push(AccountConfig {
            section: C2EC_CARD_ACCOUNT_SECTION.into(),
            payto: C2EC_CARD_ACCOUNT
                .parse()
                .map_err(|e| WorldError::Setup(format!("{C2EC_CARD_ACCOUNT}: {e}")))?,
            enable_debit: true,
            enable_credit: false,
            gateway: Some(gateway),
        });
    }
    let master_path = plan.master_file.or_else(|| {
        setup
            .persistent
            .then(|| setup.data_dir.join("exchange-master.priv"))
    });
    let master = master_key(master_path.as_deref())?;
    match config.master_public_key {
        Some(configured) if configured != master.public() => {
            return Err(WorldError::Setup(format!(
                "[exchange] MASTER_PUBLIC_KEY {configured} is not the public key of the master key file ({})",
                master.public()
            )));
        }
        _ => config.master_public_key = Some(master.public()),
    }
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let accounts = config.accounts.clone();
    let currency = config.currency;
    let database_url = config.database_url.clone();
    let app = cardcash_exchange::App::build(config)
        .await
        .map_err(|e| WorldError::Setup(format!("starting the exchange: {e}")))?;
    let exchange = Exchange {
        app,
        accounts: accounts.clone(),
        master,
        database_url,
        http: setup.http.clone(),
    };
    if let Err(e) = offline_routine(&exchange, &accounts, currency).await {
        exchange.shutdown().await;
        return Err(e);
    }
    Ok(exchange)
}

/// Signs the keys, enables every account that receives money (a debit-only account is no
/// place for wallets to send money to, so `/keys` does not list it) and sets this year's fees
/// for every account's wire method (replays are harmless: a resumed world runs it again).
async fn offline_routine(
    exchange: &Exchange,
    accounts: &[AccountConfig],
    currency: Currency,
) -> Result<(), WorldError> {
    exchange.sign_keys().await?;
    let management = exchange.client().management();
    let master = &exchange.master;
    let now = Timestamp::now().as_secs();
    // Fees and accounts from the start of the current day, so a resumed world signs the same.
    let start = Timestamp::from_secs(now - now % 86_400);
    let end = Timestamp::from_secs(start.as_secs() + 366 * 86_400);
    let mut methods = Vec::new();
    for account in accounts {
        if account.enable_credit {
            let request = master
                .enable_account(&account.payto, start, None, 0)
                .map_err(|e| WorldError::Setup(e.to_string()))?;
            management
                .enable_wire(&request)
                .await
                .map_err(WorldError::Client)?;
        }
        let method = account.payto.target_type().to_owned();
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    for method in methods {
        let fee = master.wire_fee(
            &method,
            start,
            end,
            amount(currency, "0.01")?,
            amount(currency, "0.01")?,
        );
        management
            .set_wire_fee(&fee)
            .await
            .map_err(WorldError::Client)?;
    }
    let zero = Amount::zero(&currency);
    let global = master.global_fees(
        start,
        end,
        zero,
        zero,
        zero,
        RelativeTime::from_secs(3600),
        RelativeTime::from_secs(365 * 86_400),
        0,
    );
    management
        .set_global_fees(&global)
        .await
        .map_err(WorldError::Client)?;
    Ok(())
}
