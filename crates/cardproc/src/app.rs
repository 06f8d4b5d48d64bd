//! `App::build`: database, configured users, routes, listener and the delayed-finality worker of
//! one card processor (ARCHITECTURE.md "services" contract).
//!
//! The worker persists due delayed finality (`AUTHORIZED` → `FULFILL`). It sleeps until the
//! earliest `fulfill_at`, or until a new delayed approval is stored (store notification
//! [`crate::service::TOPIC_FINALITY_SCHEDULED`], which also crosses processes on PostgreSQL), or
//! at most [`MAX_WORKER_IDLE`]; it never polls in a tight loop, and failures back off
//! exponentially (the shared `cardcash_http::WorkerRunner`). Readers do not depend on it:
//! the state is derived from the clock on every read.
//!
//! With `[cardproc] PAYOUT_BANK_URL` set, a second worker pays the captured card payments out
//! to the merchant's bank account ([`crate::payout`]): it runs when a capture is stored in this
//! process, when the next capture falls due (capture time + `PAYOUT_DELAY`), or at most every
//! [`MAX_WORKER_IDLE`]; a failed transfer is retried with exponential backoff up to
//! [`MAX_PAYOUT_BACKOFF`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cardcash_http::{
    Backoff, Metrics, Server, ServiceRouter, Step, WorkerMetrics, WorkerRunner, serve,
};
use cardcash_store::{Database, StoreError};
use cardcash_util::BaseUrl;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{CardprocConfig, finality_delay};
use crate::db::{CardprocStore, SERVICE};
use crate::error::CardprocError;
use crate::http::router;
use crate::metrics::CardprocMetrics;
use crate::payout::Payer;
use crate::processing::{Authorizer, TestCardAuthorizer};
use crate::service::{Cardproc, TOPIC_FINALITY_SCHEDULED};
use cardcash_api::cardproc::IsoTime;

/// Longest sleep of the finality worker when nothing is due (a safety net for rows written by
/// another process, which cannot wake this one).
pub const MAX_WORKER_IDLE: Duration = Duration::from_secs(30);
/// Longest pause between retries of a failed payout.
pub const MAX_PAYOUT_BACKOFF: Duration = Duration::from_secs(300);
/// First pause after a failed worker step (doubling while failures repeat, up to
/// [`MAX_WORKER_IDLE`]).
const WORKER_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Why the card processor could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration cannot work.
    #[error("invalid card processor configuration: {0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing configured users failed.
    #[error(transparent)]
    Service(#[from] CardprocError),
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// A running card processor.
#[derive(Debug)]
pub struct App {
    base_url: BaseUrl,
    server: Server,
    worker: JoinHandle<()>,
    payout_worker: Option<JoinHandle<()>>,
    shutdown: CancellationToken,
    state: Arc<Cardproc>,
}

impl App {
    /// Opens `config.database_url`, then [`App::build_with_db`].
    pub async fn build(config: CardprocConfig) -> Result<Self, BuildError> {
        let store = CardprocStore::connect(&config.database_url).await?;
        Self::build_with_store(config, store).await
    }

    /// Serves on an already opened database (migrated with [`crate::db::SCHEMA`], e.g. by
    /// `cardcash_store::testing`) with the test-card authorizer.
    pub async fn build_with_db(config: CardprocConfig, db: Database) -> Result<Self, BuildError> {
        Self::build_with_store(config, CardprocStore::new(db)).await
    }

    async fn build_with_store(
        config: CardprocConfig,
        store: CardprocStore,
    ) -> Result<Self, BuildError> {
        let delay = finality_delay(config.delay_finality).ok_or_else(|| {
            BuildError::Config("delay_finality must be finite and at most a day".into())
        })?;
        Self::build_with(config, store, Arc::new(TestCardAuthorizer::new(delay))).await
    }

    /// Serves with a custom [`Authorizer`] (a card network instead of the test cards).
    pub async fn build_with(
        config: CardprocConfig,
        store: CardprocStore,
        authorizer: Arc<dyn Authorizer>,
    ) -> Result<Self, BuildError> {
        if config.currencies.is_empty() {
            return Err(BuildError::Config(
                "at least one currency is required".into(),
            ));
        }
        if config.space_id == 0 || i64::try_from(config.space_id).is_err() {
            return Err(BuildError::Config(
                "space_id must be a positive 63-bit number".into(),
            ));
        }
        let now = IsoTime::now();
        for user in &config.users {
            store
                .upsert_user(user.id, &user.secret, user.role, config.space_id, now)
                .await?;
        }
        let mut metrics = Metrics::new();
        let service_metrics = CardprocMetrics::register(&mut metrics);
        let worker_metrics = WorkerMetrics::register(&mut metrics);
        let payer = match &config.payout {
            Some(payout) => {
                if !config.accepts(payout.currency()) {
                    return Err(BuildError::Config(format!(
                        "the payout currency {} is not accepted",
                        payout.currency()
                    )));
                }
                Some(
                    Payer::new(payout.clone(), config.space_id)
                        .map_err(|e| BuildError::Config(format!("payout bank client: {e}")))?,
                )
            }
            None => None,
        };
        let state = Arc::new(Cardproc::new(&config, store, authorizer, service_metrics));
        let router =
            ServiceRouter::with_metrics(SERVICE, metrics).finish(router::routes(state.clone()));
        let shutdown = CancellationToken::new();
        let server = serve(router, config.bind, shutdown.clone()).await?;
        let base_url = match config.base_url {
            Some(url) => url,
            None => BaseUrl::parse(&format!("http://{}/", server.addr()))
                .map_err(|e| BuildError::Config(format!("cannot derive base URL: {e}")))?,
        };
        let payout_worker = payer.map(|payer| {
            tokio::spawn(payout_worker(
                state.clone(),
                payer,
                shutdown.clone(),
                worker_metrics.clone(),
            ))
        });
        let worker = tokio::spawn(finality_worker(
            state.clone(),
            shutdown.clone(),
            worker_metrics,
        ));
        tracing::info!(addr = %server.addr(), %base_url, "card processor ready");
        Ok(Self {
            base_url,
            server,
            worker,
            payout_worker,
            shutdown,
            state,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The public base URL (ends in `/`).
    pub fn base_url(&self) -> &BaseUrl {
        &self.base_url
    }

    /// The storage.
    pub fn store(&self) -> &CardprocStore {
        self.state.store()
    }

    /// The shared service state (for the binary's operator commands and tests).
    pub fn service(&self) -> &Arc<Cardproc> {
        &self.state
    }

    /// Stops the listener (draining requests) and the worker, then closes the database
    /// (queued writes still commit).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.server.join().await {
            tracing::warn!(error = %e, "card processor server ended with an error");
        }
        if let Err(e) = self.worker.await {
            tracing::warn!(error = %e, "finality worker ended abnormally");
        }
        if let Some(worker) = self.payout_worker
            && let Err(e) = worker.await
        {
            tracing::warn!(error = %e, "payout worker ended abnormally");
        }
        self.state.store().close().await;
    }

    /// Waits until the server stops (after `shutdown` from elsewhere, e.g. a signal handler
    /// holding [`App::shutdown_token`]).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

async fn finality_worker(
    state: Arc<Cardproc>,
    shutdown: CancellationToken,
    metrics: WorkerMetrics,
) {
    // Subscribe before the first step, so an approval stored meanwhile wakes the next wait.
    let scheduled = state
        .store()
        .notifier()
        .subscribe_topic(TOPIC_FINALITY_SCHEDULED);
    WorkerRunner::new("finality")
        .idle(MAX_WORKER_IDLE)
        .backoff(Backoff {
            initial: WORKER_ERROR_BACKOFF,
            max: MAX_WORKER_IDLE,
        })
        .metrics(metrics)
        .run(
            shutdown,
            scheduled,
            |sub, timeout| Box::pin(sub.wait(timeout)),
            || {
                let state = state.clone();
                async move {
                    Ok::<_, CardprocError>(match state.sweep_finality().await? {
                        Some(due) => {
                            let now = IsoTime::now().as_micros();
                            Step::After(Duration::from_micros(due.as_micros().saturating_sub(now)))
                        }
                        None => Step::Idle,
                    })
                }
            },
        )
        .await;
}

async fn payout_worker(
    state: Arc<Cardproc>,
    payer: Payer,
    shutdown: CancellationToken,
    metrics: WorkerMetrics,
) {
    let wake = state.payout_wake();
    WorkerRunner::new("payout")
        .idle(MAX_WORKER_IDLE)
        .backoff(Backoff {
            initial: WORKER_ERROR_BACKOFF,
            max: MAX_PAYOUT_BACKOFF,
        })
        .metrics(metrics)
        .run(
            shutdown,
            wake,
            |wake, timeout| {
                Box::pin(
                    async move { tokio::time::timeout(timeout, wake.notified()).await.is_ok() },
                )
            },
            || {
                let (state, payer) = (state.clone(), payer.clone());
                async move {
                    let step = payer.pay_due(state.store(), state.metrics()).await?;
                    Ok::<_, CardprocError>(match step.next_due {
                        Some(due) => {
                            let now = IsoTime::now().as_micros();
                            Step::After(Duration::from_micros(due.as_micros().saturating_sub(now)))
                        }
                        None => Step::Idle,
                    })
                }
            },
        )
        .await;
}
