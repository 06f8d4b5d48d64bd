//! The world's storefront (Pretty Pianos): on the world's merchant backend as its shop
//! instance, with the admin token as its bearer token, random cookie and `/admin` secrets.

use cardcash_storefront::{App, StorefrontConfig};
use cardcash_util::{BaseUrl, Currency};

use crate::{Adjust, Merchant, WorldError, secret_text};

pub(crate) struct StorefrontPlan {
    pub(crate) adjust: Vec<Adjust<StorefrontConfig>>,
}

/// A running storefront of a world.
#[derive(Debug)]
pub struct Storefront {
    app: App,
    admin_password: String,
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
        &self.admin_password
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
    let admin_password = secret_text()?;
    let mut config = StorefrontConfig::new(
        currency,
        merchant.base_url().clone(),
        merchant.admin_token(),
        secret_text()?.into_bytes(),
        admin_password.clone(),
    );
    for adjust in plan.adjust {
        adjust(&mut config);
    }
    let admin_password = config.admin_password.clone();
    let app = App::build(config)
        .await
        .map_err(|e| WorldError::Setup(format!("starting the storefront: {e}")))?;
    Ok(Storefront {
        app,
        admin_password,
    })
}
