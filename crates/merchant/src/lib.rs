//! A GNU Taler merchant backend (`cardcash merchant serve`).
//!
//! Map: [`config`] (INI `[merchant]`, `[merchant-exchange-*]`), [`error`] (Taler codes),
//! [`auth`] (which instance a request is for, and whether its credentials allow it),
//! [`service`] (the handle handlers and workers share), [`http`] (routes and thin handlers),
//! [`db`] (all SQL, both engines, behind [`db::MerchantStore`]).

pub mod auth;
pub mod claim;
pub mod config;
pub mod contract;
pub mod db;
pub mod error;
pub mod exchanges;
pub mod http;
pub mod instances;
pub mod inventory;
pub mod legacy;
pub mod openapi;
pub mod orders;
pub mod page;
pub mod pay;
pub mod refund;
pub mod service;
pub mod sessions;
pub mod settlement;
pub mod status;
pub mod webhooks;
pub mod worker;

use std::net::SocketAddr;

use cardcash_http::{Metrics, Server, ServiceRouter};
use cardcash_store::Database;
use cardcash_util::BaseUrl;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::MerchantConfig;
pub use error::MerchantError;
pub use service::Merchant;

use crate::db::MerchantStore;

/// A running merchant backend: HTTP server, database and workers.
#[derive(Debug)]
pub struct App {
    server: Server,
    shutdown: CancellationToken,
    merchant: Merchant,
    workers: JoinSet<()>,
}

impl App {
    /// Opens (and migrates) the configured database, then [`App::build_with_db`].
    pub async fn build(config: MerchantConfig) -> Result<App, MerchantError> {
        let db = db::connect(&config.database_url).await?;
        Self::build_with_db(config, db).await
    }

    /// Starts the backend on an already opened database: binds `config.bind`, serves, and
    /// starts the workers.
    pub async fn build_with_db(config: MerchantConfig, db: Database) -> Result<App, MerchantError> {
        let shutdown = CancellationToken::new();
        let mut metrics = Metrics::new();
        let worker_metrics = cardcash_http::WorkerMetrics::register(&mut metrics);
        // The base URL needs the bound port: bind first with a router that is filled in below.
        let bound = std::net::TcpListener::bind(config.bind)
            .map_err(|e| MerchantError::Startup(format!("cannot bind {}: {e}", config.bind)))?;
        let addr = bound
            .local_addr()
            .map_err(|e| MerchantError::Startup(format!("cannot read bound address: {e}")))?;
        drop(bound);
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => BaseUrl::parse(&format!("http://{addr}/"))
                .map_err(|e| MerchantError::Startup(format!("base URL: {e}")))?,
        };
        let http = cardcash_client::HttpClient::new()
            .map_err(|e| MerchantError::Startup(format!("HTTP client: {e}")))?;
        let store = MerchantStore::new(db, config.currency);
        let merchant = Merchant::new(config, base_url, store, http);
        let state = http::AppState {
            merchant: merchant.clone(),
        };
        let router =
            ServiceRouter::with_metrics("merchant", metrics).finish(http::router::router(state));
        let server = cardcash_http::serve(router, addr, shutdown.clone())
            .await
            .map_err(|e| MerchantError::Startup(format!("cannot bind {addr}: {e}")))?;
        let mut workers = JoinSet::new();
        // Order events: sequenced for the event streams, delivered to webhooks.
        workers.spawn(webhooks::worker::run_sequencer(
            merchant.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(webhooks::worker::run_deliveries(
            merchant.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        // Settlement: which wire transfers paid the deposits once their wire deadline passed.
        workers.spawn(worker::settlement::run(
            merchant.clone(),
            shutdown.clone(),
            worker_metrics,
        ));
        tracing::info!(addr = %server.addr(), base_url = %merchant.base_url(), "merchant backend started");
        Ok(App {
            server,
            shutdown,
            merchant,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.merchant.base_url()
    }

    /// The backend handle (in-process callers: the demo and tests).
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// Stops accepting requests and the workers, lets in-flight requests finish, closes the
    /// database.
    pub async fn shutdown(mut self) -> Result<(), MerchantError> {
        self.shutdown.cancel();
        let result = self.server.join().await;
        while self.workers.join_next().await.is_some() {}
        self.merchant.store().close().await;
        result.map_err(|e| MerchantError::Startup(format!("server task failed: {e}")))
    }
}
