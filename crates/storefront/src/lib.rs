//! Pretty Pianos, the storefront of the merchant guide (seed 003) on a GNU Taler merchant
//! backend, following design document 007 (seed 004) for its paywalled file
//! (`cardcash storefront serve`).
//!
//! The shop talks to the backend only over HTTP, through `cardcash_client::MerchantClient`
//! (the private API with the instance's bearer token). It keeps no database: the cookies hold
//! the customer's state (signed), the backend everything else.
//!
//! Map: [`config`] (`[storefront]`), [`error`], [`catalogue`] (the two products and the
//! provisioning of instance and products at start), [`paywall`] (design document 007's steps
//! as pure functions), [`cart`] (the piano cart's rules), [`cookie`] (signed cookies),
//! [`page`] (HTML and stylesheet), [`pdf`] (the file sold), [`service`] (the handle with the
//! IO around the rules), [`http`] (routes and thin handlers).

pub mod cart;
pub mod catalogue;
pub mod config;
pub mod cookie;
pub mod error;
pub mod http;
pub mod page;
pub mod paywall;
pub mod pdf;
pub mod service;

use std::net::SocketAddr;

use cardcash_client::{HttpClient, MerchantClient};
use cardcash_http::{Metrics, Server, ServiceRouter};
use cardcash_util::BaseUrl;
use tokio_util::sync::CancellationToken;

pub use config::StorefrontConfig;
pub use error::StorefrontError;
pub use service::Storefront;

/// A running storefront.
#[derive(Debug)]
pub struct App {
    server: Server,
    shutdown: CancellationToken,
    shop: Storefront,
    provisioned: catalogue::Provisioned,
}

impl App {
    /// Binds `config.bind`, makes sure the backend has the shop's instance and products
    /// (creating what is missing), and serves.
    pub async fn build(config: StorefrontConfig) -> Result<App, StorefrontError> {
        let shutdown = CancellationToken::new();
        // The base URL needs the bound port: learn it first.
        let bound = std::net::TcpListener::bind(config.bind)
            .map_err(|e| StorefrontError::Startup(format!("cannot bind {}: {e}", config.bind)))?;
        let addr = bound
            .local_addr()
            .map_err(|e| StorefrontError::Startup(format!("cannot read bound address: {e}")))?;
        drop(bound);
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => BaseUrl::parse(&format!("http://{addr}/"))
                .map_err(|e| StorefrontError::Startup(format!("base URL: {e}")))?,
        };
        let http =
            HttpClient::new().map_err(|e| StorefrontError::Startup(format!("HTTP client: {e}")))?;
        let mut merchant = MerchantClient::with_http(
            http,
            config.merchant_base_url.clone(),
            &config.instance,
            config.merchant_token.clone(),
        )
        .map_err(|e| StorefrontError::Startup(format!("merchant client: {e}")))?;
        if let Some(token) = &config.merchant_admin_token {
            merchant = merchant.with_management_token(token.clone());
        }
        let provisioned = catalogue::provision(&merchant, &config)
            .await
            .map_err(|e| {
                StorefrontError::Startup(format!(
                    "cannot set up the shop's instance and products at the merchant backend: {e}"
                ))
            })?;
        let shop = Storefront::new(config, base_url, merchant);
        let state = http::AppState { shop: shop.clone() };
        let router = ServiceRouter::with_metrics("storefront", Metrics::new())
            .finish(http::router::router(state));
        let server = cardcash_http::serve(router, addr, shutdown.clone())
            .await
            .map_err(|e| StorefrontError::Startup(format!("cannot bind {addr}: {e}")))?;
        tracing::info!(
            addr = %server.addr(),
            base_url = %shop.base_url(),
            instance_created = provisioned.instance,
            products_created = ?provisioned.products,
            "storefront started"
        );
        Ok(App {
            server,
            shutdown,
            shop,
            provisioned,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.shop.base_url()
    }

    /// What the start had to create at the backend (instance, products).
    pub fn provisioned(&self) -> &catalogue::Provisioned {
        &self.provisioned
    }

    /// The shop handle (in-process callers: the demo and tests).
    pub fn shop(&self) -> &Storefront {
        &self.shop
    }

    /// Stops accepting requests and lets in-flight ones finish.
    pub async fn shutdown(self) -> Result<(), StorefrontError> {
        self.shutdown.cancel();
        self.server
            .join()
            .await
            .map_err(|e| StorefrontError::Startup(format!("server task failed: {e}")))
    }
}
