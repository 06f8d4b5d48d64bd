//! `App::build`: database, provider, router, listener and workers of one C2EC instance.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cardcash_client::CardprocClient;
use cardcash_http::{Metrics, ServiceRouter, WorkerMetrics};
use cardcash_store::Database;
use cardcash_util::{BaseUrl, PaytoUri};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::C2ecConfig;
use crate::db::C2ecStore;
use crate::http::auth::TerminalAuthenticator;
use crate::http::{AppState, router};
use crate::metrics::C2ecMetrics;
use crate::provider::CardProvider;
use crate::provider::cardproc::CardprocProvider;
use crate::service::C2ec;
use crate::worker::{attestation, expiry, refund};

/// Why C2EC could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] cardcash_store::StoreError),
    #[error("card provider: {0}")]
    Provider(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// A running C2EC.
pub struct App {
    addr: SocketAddr,
    base_url: BaseUrl,
    db: Database,
    stop: CancellationToken,
    server: cardcash_http::Server,
    workers: Vec<JoinHandle<()>>,
}

impl App {
    /// Starts C2EC with the card processor named in the configuration.
    pub async fn build(config: C2ecConfig) -> Result<App, StartError> {
        let provider = cardproc_provider(&config)?;
        Self::build_with_provider(config, provider).await
    }

    /// Like [`App::build`] on an already opened database ([`crate::admin::open_db`], tests).
    pub async fn build_on_db(config: C2ecConfig, db: Database) -> Result<App, StartError> {
        let provider = cardproc_provider(&config)?;
        Self::start(config, provider, db).await
    }

    /// Starts C2EC with any provider (other processors, fault injection in tests).
    pub async fn build_with_provider(
        config: C2ecConfig,
        provider: Arc<dyn CardProvider>,
    ) -> Result<App, StartError> {
        let db = crate::db::connect(&config.database).await?;
        Self::start(config, provider, db).await
    }

    /// Starts C2EC with any provider on an already opened database (tests).
    pub async fn build_on(
        config: C2ecConfig,
        provider: Arc<dyn CardProvider>,
        db: Database,
    ) -> Result<App, StartError> {
        Self::start(config, provider, db).await
    }

    async fn start(
        config: C2ecConfig,
        provider: Arc<dyn CardProvider>,
        db: Database,
    ) -> Result<App, StartError> {
        if config.withdrawal_fees.currency() != &config.currency {
            return Err(StartError::Config(
                "WITHDRAWAL_FEES currency differs from CURRENCY".into(),
            ));
        }
        let store = C2ecStore::new(db.clone(), config.currency);
        let mut metrics = Metrics::new();
        let c2ec_metrics = C2ecMetrics::register(&mut metrics);
        let worker_metrics = WorkerMetrics::register(&mut metrics);
        let exchange_account = config.exchange_account.clone();
        let wire_type = exchange_type(&config.exchange_account);
        let stop = CancellationToken::new();
        let c2ec = C2ec {
            store: store.clone(),
            provider,
            metrics: c2ec_metrics,
            exchange_account,
            stopping: stop.clone(),
        };
        let base_url = Arc::new(OnceLock::new());
        let terminal_auth = TerminalAuthenticator::new(store);
        terminal_auth.register_metrics(&mut metrics);
        let state = AppState {
            c2ec: c2ec.clone(),
            terminal_auth,
            wire_auth: Arc::new(config.wire_gateway.clone()),
            admin_token: config.admin_token.as_deref().map(Arc::from),
            base_url: base_url.clone(),
            exchange_base_url: config.exchange_base_url.clone(),
            withdrawal_fees: config.withdrawal_fees,
            wire_types: vec![wire_type],
        };
        let router = ServiceRouter::with_metrics("c2ec", metrics).finish(router::routes(state));
        let server = cardcash_http::serve(router, config.bind, stop.clone()).await?;
        let addr = server.addr();
        let url = match &config.base_url {
            Some(u) => u.clone(),
            None => BaseUrl::parse(&format!("http://{addr}/"))
                .map_err(|e| StartError::Config(e.to_string()))?,
        };
        // Set exactly once, before anybody can know the port.
        let _ = base_url.set(url.clone());
        let max_delay = Duration::from_secs(60).max(config.attestation_retry_delay);
        let workers = vec![
            tokio::spawn(attestation::run(
                c2ec.clone(),
                attestation::AttestationSettings {
                    max_retries: config.attestation_max_retries,
                    retry_delay: config.attestation_retry_delay,
                    max_delay,
                    concurrency: 32,
                },
                worker_metrics.clone(),
                stop.clone(),
            )),
            tokio::spawn(expiry::run(
                c2ec.clone(),
                expiry::ExpirySettings {
                    registration_window: config.registration_window,
                    check_window: config.check_window,
                },
                worker_metrics.clone(),
                stop.clone(),
            )),
            tokio::spawn(refund::run(
                c2ec,
                refund::RefundSettings {
                    retry_delay: config.attestation_retry_delay,
                    max_delay,
                },
                worker_metrics,
                stop.clone(),
            )),
        ];
        tracing::info!(%addr, base_url = %url, "c2ec ready");
        Ok(App {
            addr,
            base_url: url,
            db,
            stop,
            server,
            workers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }

    /// The database (operator functions, tests).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// A token that stops the service when cancelled (signal handlers).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs until the stop token is cancelled, then shuts down.
    pub async fn run_until_stopped(self) {
        self.stop.cancelled().await;
        self.shutdown().await;
    }

    /// Stops listening (in-flight requests finish), stops the workers, closes the database.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(e) = self.server.join().await {
            tracing::warn!(error = %e, "c2ec server ended with an error");
        }
        for w in self.workers {
            let _ = w.await;
        }
        self.db.close().await;
    }
}

/// The provider of `[c2ec-provider-cardproc]`.
fn cardproc_provider(config: &C2ecConfig) -> Result<Arc<dyn CardProvider>, StartError> {
    let client = CardprocClient::new(
        config.provider.base_url.as_str(),
        config.provider.user_id,
        &config.provider.secret,
        config.provider.space_id,
    )
    .map_err(|e| StartError::Provider(e.to_string()))?;
    // The processor's authority names it inside card-transaction payto URIs.
    let host = config
        .provider
        .base_url
        .host_and_path()
        .split('/')
        .next()
        .unwrap_or("cardproc")
        .to_owned();
    Ok(Arc::new(CardprocProvider::new(
        &config.provider.name,
        &host,
        client,
    )))
}

fn exchange_type(p: &PaytoUri) -> String {
    p.target_type().to_owned()
}
