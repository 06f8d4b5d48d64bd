//! The world's storefront (Pretty Pianos): on the world's merchant backend as its shop
//! instance, with the admin token as its bearer token, random cookie and `/admin` secrets.

use cardcash_storefront::{App, StorefrontConfig};
use cardcash_util::{BaseUrl, Currency};

use crate::{Adjust, Merchant, WorldError, secret_text};

pub(crate) struct StorefrontPlan {
    /// `None`: built at start. A configured one is pointed at the world's merchant.
    pub(crate) config: Option<StorefrontConfig>,
    pub(crate) adjust: Vec<Adjust<StorefrontConfig>>,
}

/// A running storefront of a world.
#[derive(Debug)]
pub struct Storefront {
    app: App,
    config: StorefrontConfig,
}

impl Storefront {
    pub fn app(&self) -> &App {
        &self.app
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.app.base_url()
    }

    /// The password of `/admin` (HTTP Basic, user `admin`).
    pub fn admin_password(&self) -> &str {
        &self.config.admin_password
    }

    /// The configuration it runs with (its secrets included).
    pub fn config(&self) -> &StorefrontConfig {
        &self.config
    }

    pub async fn shutdown(self) {
        if let Err(e) = self.app.shutdown().await {
            tracing::warn!(error = %e, "storefront shutdown");
        }
    }
}

pub(crate) async fn start_storefront(
    plan: StorefrontPlan,
    currency: Currency,
    merchant: Option<&Merchant>,
) -> Result<Storefront, WorldError> {
    let merchant = merchant.ok_or_else(|| {
        WorldError::Setup(
            "the storefront needs the merchant backend (WorldBuilder::merchant)".into(),
        )
    })?;
    let mut config = match plan.config {
        Some(mut config) => {
            config.merchant_base_url = merchant.base_url().clone();
            config
        }
        None => StorefrontConfig::new(
            currency,
            merchant.base_url().clone(),
            merchant.admin_token(),
            secret_text()?.into_bytes(),
            secret_text()?,
        ),
    };
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let app = App::build(config.clone())
        .await
        .map_err(|e| WorldError::Setup(format!("starting the storefront: {e}")))?;
    Ok(Storefront { app, config })
}
