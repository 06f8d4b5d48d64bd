//! A GNU Taler exchange, protocol v23 (`cardcash exchange serve`).
//!
//! Map: [`config`] (INI `[exchange]`, `[coin_*]`, `[exchange-account-*]`), [`error`] (Taler
//! codes), [`keys`] (the online key store that holds private keys and signs, and the key
//! snapshot behind `/keys`), [`management`] (what the offline key signs, checked on upload),
//! [`offline`] (the offline key's side: master key file and signing), [`service`] (the handle
//! handlers and workers share), [`http`] (routes and thin handlers), [`worker`] (key rotation),
//! [`db`] (all SQL, both engines, behind [`db::ExchangeStore`]).

pub mod audit;
pub mod coin_history;
pub mod config;
pub mod db;
pub mod denomination;
pub mod deposit;
pub mod error;
pub mod http;
pub mod keys;
pub mod legal;
pub mod management;
pub mod metrics;
pub mod offline;
pub mod recoup;
pub mod refresh;
pub mod reserve;
pub mod service;
pub mod withdraw;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use cardcash_http::{Metrics, Server, ServiceRouter};
use cardcash_store::Database;
use cardcash_util::{BaseUrl, Timestamp};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::ExchangeConfig;
pub use error::ExchangeError;
pub use service::Exchange;

use crate::db::ExchangeStore;
use crate::keys::store::KeyStore;

/// A running exchange: HTTP server, database, key store and workers.
#[derive(Debug)]
pub struct App {
    server: Server,
    shutdown: CancellationToken,
    exchange: Exchange,
    workers: JoinSet<()>,
}

impl App {
    /// Opens (and migrates) the configured database, then [`App::build_with_db`].
    pub async fn build(config: ExchangeConfig) -> Result<App, ExchangeError> {
        let db = db::connect(&config.database_url).await?;
        Self::build_with_db(config, db).await
    }

    /// Starts the exchange on an already opened database: opens the key store, creates the keys
    /// the configuration needs (logging progress: RSA keys take a while), binds `config.bind`,
    /// serves, and starts the workers.
    pub async fn build_with_db(config: ExchangeConfig, db: Database) -> Result<App, ExchangeError> {
        let keystore = Arc::new(KeyStore::open(&config.key_dir)?);
        let store = ExchangeStore::new(db, config.currency);
        let revoked = keys::store::Revoked::from_material(&store.key_material().await?);
        let created = keystore
            .ensure(&config, Timestamp::now(), &revoked, |section, start| {
                tracing::info!(section, start = %start, "created a key");
            })
            .await?;
        if created > 0 {
            tracing::info!(created, "key store topped up");
        }
        let shutdown = CancellationToken::new();
        let listener_config = config.clone();
        let mut metrics = Metrics::new();
        let worker_metrics = cardcash_http::worker::WorkerMetrics::register(&mut metrics);
        // The base URL needs the bound port: bind first with a router that is filled in below.
        let bound = std::net::TcpListener::bind(config.bind)
            .map_err(|e| ExchangeError::Startup(format!("cannot bind {}: {e}", config.bind)))?;
        let addr = bound
            .local_addr()
            .map_err(|e| ExchangeError::Startup(format!("cannot read bound address: {e}")))?;
        drop(bound);
        let base_url = match &config.base_url {
            Some(url) => url.clone(),
            None => BaseUrl::parse(&format!("http://{addr}/"))
                .map_err(|e| ExchangeError::Startup(format!("base URL: {e}")))?,
        };
        let exchange_metrics = metrics::ExchangeMetrics::register(&mut metrics);
        let exchange =
            Exchange::new(listener_config, base_url, store, keystore, exchange_metrics).await?;
        let state = http::AppState {
            terms: Arc::new(legal::LegalDocuments::load(
                exchange.config().terms.as_ref(),
            )),
            privacy: Arc::new(legal::LegalDocuments::load(
                exchange.config().privacy.as_ref(),
            )),
            exchange: exchange.clone(),
        };
        let router =
            ServiceRouter::with_metrics("exchange", metrics).finish(http::router::router(state));
        let server = cardcash_http::serve(router, addr, shutdown.clone())
            .await
            .map_err(|e| ExchangeError::Startup(format!("cannot bind {addr}: {e}")))?;
        let mut workers = JoinSet::new();
        workers.spawn(worker::keys::run(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(worker::aggregator::run_aggregator(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(worker::aggregator::run_transfers(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(worker::bounce::run(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(worker::closer::run(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        workers.spawn(worker::closer::run_transfers(
            exchange.clone(),
            shutdown.clone(),
            worker_metrics.clone(),
        ));
        for account in exchange
            .config()
            .accounts
            .iter()
            .filter(|a| a.enable_credit)
        {
            match worker::wirewatch::gateway_client(account)? {
                Some(client) => {
                    workers.spawn(worker::wirewatch::run(
                        exchange.clone(),
                        account.clone(),
                        client,
                        shutdown.clone(),
                        worker_metrics.clone(),
                    ));
                }
                None => tracing::warn!(
                    account = %account.section,
                    "credit enabled but no Wire Gateway credentials: incoming transfers are not imported"
                ),
            }
        }
        tracing::info!(addr = %server.addr(), base_url = %exchange.base_url(), "exchange started");
        Ok(App {
            server,
            shutdown,
            exchange,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn base_url(&self) -> &BaseUrl {
        self.exchange.base_url()
    }

    /// The exchange handle (in-process callers: the demo and tests).
    pub fn exchange(&self) -> &Exchange {
        &self.exchange
    }

    /// Stops accepting requests and the workers, lets in-flight requests finish, closes the
    /// database.
    pub async fn shutdown(mut self) -> Result<(), ExchangeError> {
        self.shutdown.cancel();
        let result = self.server.join().await;
        while self.workers.join_next().await.is_some() {}
        self.exchange.store().close().await;
        result.map_err(|e| ExchangeError::Startup(format!("server task failed: {e}")))
    }
}
