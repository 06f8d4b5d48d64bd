//! A bank with accounts and the Taler Wire Gateway API (`cardcash bank serve`).
//!
//! Accounts (exchange, merchants, customers, and the bank's own `admin` funding account) have
//! signed balances and `payto://x-taler-bank/{host}/{name}` addresses. Money moves by internal
//! transfers (Core Bank API) and, for exchange accounts, through the Taler Wire Gateway API
//! mounted at `/accounts/{name}/taler-wire-gateway/`: the exchange pays merchants with
//! `transfer` and learns about reserve top-ups from `history/incoming` (long polling on the
//! store's notifier). Modelled on libeufin-bank; see `docs/API-CONFORMANCE.md` ("bank").
//!
//! Map: [`config`] (INI `[bank]`), [`error`] (Taler codes), [`ledger`] (every operation, one
//! database transaction per money movement), [`db`] (all SQL, both engines, behind
//! [`db::BankStore`]), [`http`] (router and thin handlers), [`admin`] (operator functions for
//! the CLI). Its clients live in `cardcash_client` (`BankClient`, `WireGatewayClient`). Pure
//! domain modules: [`balance`], [`subject`], [`payto`], [`account`], [`auth`], [`password`].

pub mod account;
pub mod admin;
pub mod auth;
pub mod balance;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod password;
pub mod payto;
pub mod subject;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;

use cardcash_http::{Metrics, Server, ServiceRouter};
use cardcash_store::Database;
use cardcash_util::BaseUrl;
use tokio_util::sync::CancellationToken;

pub use config::BankConfig;
pub use error::BankError;
pub use ledger::Ledger;

use crate::http::AppState;
use crate::metrics::BankMetrics;
use crate::payto::BankPayto;

/// A running bank: HTTP server, database and ledger.
#[derive(Debug)]
pub struct App {
    server: Server,
    shutdown: CancellationToken,
    base_url: BaseUrl,
    ledger: Arc<Ledger>,
}

impl App {
    /// Opens (and migrates) the configured database, then [`App::build_with_db`].
    pub async fn build(config: BankConfig) -> Result<App, BankError> {
        let db = db::connect(&config.database_url).await?;
        Self::build_with_db(config, db).await
    }

    /// Starts the bank on an already opened database (tests use `cardcash_store::testing`):
    /// creates the `admin` funding account if missing and binds `config.bind`.
    pub async fn build_with_db(config: BankConfig, db: Database) -> Result<App, BankError> {
        let mut metrics = Metrics::new();
        let bank_metrics = BankMetrics::register(&mut metrics);
        let shutdown = CancellationToken::new();
        let ledger =
            Arc::new(ledger_for(&config, db, bank_metrics)?.with_shutdown(shutdown.clone()));
        ledger.ensure_admin(config.admin_debit_limit).await?;
        let credentials = cardcash_http::CredentialVerifier::new();
        credentials.register_metrics(&mut metrics);
        let state = AppState {
            ledger: ledger.clone(),
            config: Arc::new(config.clone()),
            credentials,
        };
        let router =
            ServiceRouter::with_metrics("bank", metrics).finish(http::router::router(state));
        let server = cardcash_http::serve(router, config.bind, shutdown.clone())
            .await
            .map_err(|e| BankError::Startup(format!("cannot bind {}: {e}", config.bind)))?;
        let base_url = match config.base_url {
            Some(url) => url,
            None => BaseUrl::parse(&format!("http://{}/", server.addr()))
                .map_err(|e| BankError::Startup(format!("base URL: {e}")))?,
        };
        tracing::info!(addr = %server.addr(), %base_url, "bank started");
        Ok(App {
            server,
            shutdown,
            base_url,
            ledger,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The public base URL (configured, or `http://{addr}/`).
    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }

    /// The Wire Gateway base URL of account `name`: `{base}/accounts/{name}/taler-wire-gateway/`.
    pub fn wire_gateway_url(&self, name: &str) -> Result<BaseUrl, BankError> {
        self.base_url
            .join_base(&format!("accounts/{name}/taler-wire-gateway/"))
            .map_err(|e| BankError::BadParameter {
                name: "name",
                reason: e.to_string(),
            })
    }

    /// The ledger (for in-process callers such as the demo and tests).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Stops accepting requests, lets in-flight ones finish, closes the database.
    pub async fn shutdown(self) -> Result<(), BankError> {
        self.shutdown.cancel();
        let result = self.server.join().await;
        self.ledger.close().await;
        result.map_err(|e| BankError::Startup(format!("server task failed: {e}")))
    }
}

/// A ledger over `db` with the configuration's currency, host name and limits.
pub(crate) fn ledger_for(
    config: &BankConfig,
    db: Database,
    metrics: BankMetrics,
) -> Result<Ledger, BankError> {
    let payto = BankPayto::new(&config.host_name)
        .map_err(|e| BankError::Startup(format!("HOST_NAME: {e}")))?;
    Ok(Ledger::new(
        db,
        config.currency,
        payto,
        config.default_debit_limit,
        metrics,
    ))
}
