//! The world's merchant backend: it trusts the world's exchange (its base URL and master key),
//! has a random admin token, and one shop instance (`default`, "Pretty Pianos") paid to the
//! `shop` account at the world's bank (whose wire method the exchange's aggregator can pay).

use cardcash_client::HttpClient;
use cardcash_merchant::config::{DEFAULT_INSTANCE, TrustedExchange};
use cardcash_merchant::db::instances::{CreateInstance, InstanceAuth, NewInstance};
use cardcash_merchant::instances::{new_account, new_instance_row};
use cardcash_merchant::{App, MerchantConfig};
use cardcash_util::{BaseUrl, Currency};

use crate::{Adjust, Bank, Exchange, WorldError, secret_text};

/// The configuration section of the world's exchange at the merchant.
pub const WORLD_EXCHANGE_SECTION: &str = "merchant-exchange-world";

/// The shop's account at the world's bank.
pub const SHOP_ACCOUNT: &str = "shop";
/// The shop's name (instance and bank account holder).
pub const SHOP_NAME: &str = "Pretty Pianos";

pub(crate) struct MerchantPlan {
    pub(crate) config: Option<MerchantConfig>,
    pub(crate) adjust: Vec<Adjust<MerchantConfig>>,
}

/// A running merchant backend of a world.
#[derive(Debug)]
pub struct Merchant {
    app: App,
    database_url: String,
    admin_token: String,
    shop_password: Option<String>,
    http: HttpClient,
}

impl Merchant {
    pub fn app(&self) -> &App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// `secret-token:…` that opens every instance and `/management`.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The shop instance's password (`Authorization: Bearer secret-token:<password>`), when
    /// this start created the instance (a resumed world knows only the admin token).
    pub fn shop_password(&self) -> Option<&str> {
        self.shop_password.as_deref()
    }

    /// The world's HTTP pool.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub async fn shutdown(self) {
        if let Err(e) = self.app.shutdown().await {
            tracing::warn!(error = %e, "merchant shutdown");
        }
    }
}

pub(crate) struct MerchantSetup<'a> {
    pub(crate) currency: Currency,
    pub(crate) database_url: Option<String>,
    pub(crate) bank: Option<&'a Bank>,
    pub(crate) exchange: Option<&'a Exchange>,
    pub(crate) http: &'a HttpClient,
}

pub(crate) async fn start_merchant(
    plan: MerchantPlan,
    setup: MerchantSetup<'_>,
) -> Result<Merchant, WorldError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| WorldError::Setup(format!("{what}: {e}"));
    let mut config = match plan.config {
        Some(config) => config,
        None => MerchantConfig::new(setup.currency, String::new()),
    };
    if let Some(url) = setup.database_url {
        config.database_url = url;
    }
    if let Some(exchange) = setup.exchange {
        // The world's exchange replaces what a configuration said of it (a resumed demo's
        // exchange may listen elsewhere now).
        config
            .exchanges
            .retain(|e| e.base_url != *exchange.base_url() && e.section != WORLD_EXCHANGE_SECTION);
        config.exchanges.push(TrustedExchange {
            section: WORLD_EXCHANGE_SECTION.into(),
            base_url: exchange.base_url().clone(),
            master_pub: exchange.master().public(),
            currency: setup.currency,
        });
    }
    let admin_token = match &config.admin_token {
        Some(token) => token.clone(),
        None => format!("secret-token:{}", secret_text()?),
    };
    config.admin_token = Some(admin_token.clone());
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let database_url = config.database_url.clone();
    let app = App::build(config)
        .await
        .map_err(|e| WorldError::Setup(format!("starting the merchant backend: {e}")))?;
    let mut shop_password = None;
    let store = app.merchant().store();
    let existing = store
        .instance(DEFAULT_INSTANCE)
        .await
        .map_err(|e| fail("reading the shop instance", &e))?;
    if existing.is_none() {
        let password = secret_text()?;
        let password_hash = cardcash_crypto::password::hash(password.as_bytes())
            .map_err(|e| fail("the shop's password", &e))?;
        shop_password = Some(password);
        let mut accounts = Vec::new();
        if let Some(bank) = setup.bank {
            let payto = bank
                .app()
                .ledger()
                .payto()
                .account_uri(SHOP_ACCOUNT, SHOP_NAME)
                .map_err(|e| fail("the shop's bank account", &e))?
                .to_string();
            accounts
                .push(new_account(payto, None, None).map_err(|e| fail("the shop's account", &e))?);
        }
        let row = new_instance_row(
            DEFAULT_INSTANCE,
            SHOP_NAME,
            InstanceAuth::Token { password_hash },
            app.merchant().config(),
        )
        .map_err(|e| fail("the shop instance", &e))?;
        match store
            .create_instance(NewInstance { row, accounts })
            .await
            .map_err(|e| fail("creating the shop instance", &e))?
        {
            CreateInstance::Created { .. } | CreateInstance::Exists { .. } => {}
        }
    }
    Ok(Merchant {
        app,
        database_url,
        admin_token,
        shop_password,
        http: setup.http.clone(),
    })
}
