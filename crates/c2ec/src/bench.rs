//! The C2EC benchmark: N concurrent withdrawals through setup → register → check → confirmed,
//! over real HTTP against an in-process `App`, reporting operations per second and long-poll
//! wake-up latency (p50/p99).
//!
//! The card payments go to C2EC's in-memory provider or to a running card processor that the
//! caller started ([`BenchProcessor::Cardproc`]): C2EC talks to the processor over HTTP only
//! and never links it (the binary, which links every service, starts it).
//!
//! Each withdrawal plays the diagram: the terminal sets up and starts a long poll, the wallet
//! registers (the wake-up latency is the time from the registration's answer to the terminal's
//! long poll answering), the card is paid at the processor, the terminal checks, and the
//! terminal's second long poll ends when attestation confirmed. Exposed to the binary as
//! `cardcash c2ec bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cardcash_util::{Amount, BaseUrl, Currency};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::{C2ecConfig, ProviderConfig, WireGatewayAuth};
use cardcash_api::cardproc::{CardNumber, CreateTransactionRequest, ProcessCardRequest};
use cardcash_client::CardprocClient;

use crate::provider::memory::{Card, MemoryProvider};
use crate::{App, admin};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Number of withdrawals.
    pub n: usize,
    /// How many run at the same time.
    pub concurrency: usize,
    /// Database URL: `postgres://…` names a server on which a fresh database is created for the
    /// run (the role must be allowed to create databases); `sqlite:…` a file; `None` a
    /// temporary SQLite file.
    pub database: Option<String>,
    /// Who runs the card payments.
    pub processor: BenchProcessor,
}

/// Who runs the benchmark's card payments.
#[derive(Clone, Default)]
pub enum BenchProcessor {
    /// C2EC's in-memory provider: measures C2EC alone.
    #[default]
    InMemory,
    /// A running card processor: the terminal pays through `terminal` (a client of a
    /// `terminal` user) and C2EC attests through `provider` (a `reader` user). Start a fresh
    /// processor per run: its transaction ids must be new to the fresh C2EC database.
    Cardproc {
        /// The terminal's signed client.
        terminal: CardprocClient,
        /// C2EC's `[c2ec-provider-cardproc]`.
        provider: ProviderConfig,
    },
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            n: 200,
            concurrency: 32,
            database: None,
            processor: BenchProcessor::InMemory,
        }
    }
}

impl std::fmt::Debug for BenchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InMemory => f.write_str("InMemory"),
            Self::Cardproc { terminal, .. } => f
                .debug_struct("Cardproc")
                .field("terminal", terminal)
                .finish_non_exhaustive(),
        }
    }
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub engine: String,
    pub processor: &'static str,
    pub n: usize,
    pub concurrency: usize,
    pub confirmed: usize,
    pub elapsed: Duration,
    /// Complete withdrawals (setup → confirmed) per second.
    pub ops_per_sec: f64,
    /// Registration answered → terminal long poll answered.
    pub wake_p50: Duration,
    pub wake_p99: Duration,
    pub wake_max: Duration,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "c2ec bench [{}, {} processor]: {} withdrawals ({} concurrent), {} confirmed in {:.2} s = {:.0} withdrawals/s; \
             long-poll wake-up p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.engine,
            self.processor,
            self.n,
            self.concurrency,
            self.confirmed,
            self.elapsed.as_secs_f64(),
            self.ops_per_sec,
            self.wake_p50.as_secs_f64() * 1e3,
            self.wake_p99.as_secs_f64() * 1e3,
            self.wake_max.as_secs_f64() * 1e3,
        )
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("benchmark failed: {0}")]
pub struct BenchError(String);

fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}

const EXCHANGE: &str = "payto://x-taler-bank/c2ec.bench/exchange";

/// Runs the benchmark.
pub async fn run(cfg: BenchConfig) -> Result<BenchReport, BenchError> {
    let tmp = tempdir()?;
    // A fresh database every run: the in-process card processor starts its transaction ids at
    // 1 again, which an old C2EC database has already bound to earlier withdrawals.
    let database = match &cfg.database {
        Some(u) if u.starts_with("postgres") => {
            cardcash_store::testing::create_fresh_pg_database(u, "bench")
                .await
                .map_err(fail)?
        }
        Some(u) => u.clone(),
        None => format!("sqlite:{}/c2ec-bench.db", tmp.display()),
    };
    let engine = if database.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    }
    .to_owned();
    let currency: Currency = "CHF".parse().map_err(fail)?;
    let config = C2ecConfig {
        bind: "127.0.0.1:0".parse().map_err(fail)?,
        base_url: None,
        database: database.clone(),
        currency,
        exchange_base_url: None,
        exchange_account: EXCHANGE.parse().map_err(fail)?,
        wire_gateway: WireGatewayAuth {
            username: Some("exchange".into()),
            password: Some("bench".into()),
            token: None,
        },
        admin_token: None,
        withdrawal_fees: Amount::zero(&currency),
        registration_window: Duration::from_secs(600),
        check_window: Duration::from_secs(600),
        attestation_max_retries: 10,
        attestation_retry_delay: Duration::from_millis(50),
        provider: ProviderConfig {
            name: "in-memory".into(),
            base_url: BaseUrl::parse("http://127.0.0.1:1/").map_err(fail)?,
            user_id: 0,
            secret: String::new(),
            space_id: 0,
        },
    };
    let db = admin::open_db(&database).await.map_err(fail)?;
    let terminal = admin::add_terminal(&db, "bench").await.map_err(fail)?;
    let (payer, app) = if let BenchProcessor::Cardproc { terminal, provider } = &cfg.processor {
        let mut config = config;
        config.provider = provider.clone();
        let app = App::build_on_db(config, db).await.map_err(fail)?;
        (Payer::Cardproc(terminal.clone()), app)
    } else {
        let processor = MemoryProvider::new();
        let app = App::build_on(config, processor.clone(), db)
            .await
            .map_err(fail)?;
        (Payer::Memory(processor), app)
    };
    let base = app.base_url().as_str().to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(cfg.concurrency * 2 + 4)
        .build()
        .map_err(fail)?;
    let ctx = Arc::new(Ctx {
        http,
        base,
        user: terminal.user,
        secret: terminal.secret,
        payer,
    });
    // Warm-up: caches the terminal's argon2 verification and opens connections.
    one(&ctx, usize::MAX).await?;

    let sem = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.n);
    for i in 0..cfg.n {
        let permit = sem.clone().acquire_owned().await.map_err(fail)?;
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let r = one(&ctx, i).await;
            drop(permit);
            r
        }));
    }
    let mut wakes = Vec::with_capacity(cfg.n);
    let mut confirmed = 0;
    for t in tasks {
        let (wake, ok) = t.await.map_err(fail)??;
        wakes.push(wake);
        confirmed += usize::from(ok);
    }
    let elapsed = started.elapsed();
    app.shutdown().await;
    let _ = std::fs::remove_dir_all(&tmp);
    wakes.sort();
    let pct = |p: f64| -> Duration {
        if wakes.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((wakes.len() as f64 - 1.0) * p).round() as usize;
        wakes[idx.min(wakes.len() - 1)]
    };
    Ok(BenchReport {
        engine,
        processor: match cfg.processor {
            BenchProcessor::Cardproc { .. } => "cardproc",
            BenchProcessor::InMemory => "in-memory",
        },
        n: cfg.n,
        concurrency: cfg.concurrency,
        confirmed,
        elapsed,
        ops_per_sec: cfg.n as f64 / elapsed.as_secs_f64(),
        wake_p50: pct(0.5),
        wake_p99: pct(0.99),
        wake_max: wakes.last().copied().unwrap_or_default(),
    })
}

struct Ctx {
    http: reqwest::Client,
    base: String,
    user: String,
    secret: String,
    payer: Payer,
}

/// Who runs the card payment.
enum Payer {
    Memory(Arc<MemoryProvider>),
    /// The terminal's signed client at the real processor.
    Cardproc(CardprocClient),
}

impl Payer {
    async fn pay(&self, wopid: &str) -> Result<String, BenchError> {
        match self {
            Payer::Memory(p) => {
                let amount: Amount = "CHF:20".parse().map_err(fail)?;
                Ok(p.pay(wopid, amount, Card::Approved))
            }
            Payer::Cardproc(pos) => {
                let tx = pos
                    .create_transaction(&CreateTransactionRequest {
                        currency: "CHF".parse().map_err(fail)?,
                        amount: "20.00".parse().map_err(fail)?,
                        merchant_reference: wopid.to_owned(),
                        terminal_id: Some("bench".into()),
                        meta_data: Default::default(),
                    })
                    .await
                    .map_err(fail)?;
                let card = ProcessCardRequest {
                    pan: CardNumber("4000000000000002".into()),
                    expiry_month: 12,
                    expiry_year: 2099,
                    cvc: None,
                };
                pos.process_card(tx.id, &card).await.map_err(fail)?;
                Ok(tx.id.to_string())
            }
        }
    }
}

fn tempdir() -> Result<std::path::PathBuf, BenchError> {
    let bytes = cardcash_crypto::random::random_bytes::<8>().map_err(fail)?;
    let dir = std::env::temp_dir().join(format!(
        "c2ec-bench-{}",
        cardcash_util::base32::encode(&bytes)
    ));
    std::fs::create_dir_all(&dir).map_err(fail)?;
    Ok(dir)
}

/// One withdrawal; returns (wake-up latency, confirmed?).
async fn one(ctx: &Ctx, i: usize) -> Result<(Duration, bool), BenchError> {
    let setup: Value = ctx
        .http
        .post(format!("{}terminal/withdrawals", ctx.base))
        .basic_auth(&ctx.user, Some(&ctx.secret))
        .json(&json!({"request_uid": format!("bench-{i}-{}", std::process::id()), "amount": "CHF:20"}))
        .send()
        .await
        .map_err(fail)?
        .json()
        .await
        .map_err(fail)?;
    let wopid = setup["withdrawal_id"]
        .as_str()
        .ok_or_else(|| fail(format!("setup failed: {setup}")))?
        .to_owned();
    let status_url = format!("{}terminal/withdrawals/{wopid}", ctx.base);

    // The terminal waits for the wallet.
    let poll = ctx
        .http
        .get(format!("{status_url}?old_state=pending&timeout_ms=30000"))
        .basic_auth(&ctx.user, Some(&ctx.secret))
        .send();
    let poll = tokio::spawn(async move {
        let r = poll.await;
        (Instant::now(), r)
    });
    // Give the poll time to be waiting before the wallet acts (otherwise we would measure a
    // poll that never waited).
    tokio::time::sleep(Duration::from_millis(5)).await;

    let mut key = [0u8; 32];
    let rnd = cardcash_crypto::random::random_bytes::<32>().map_err(fail)?;
    key.copy_from_slice(&rnd);
    let reg = ctx
        .http
        .post(format!("{}taler-integration/withdrawal-operation/{wopid}", ctx.base))
        .json(&json!({"reserve_pub": cardcash_util::base32::encode(&key), "selected_exchange": EXCHANGE}))
        .send()
        .await
        .map_err(fail)?;
    let registered = Instant::now();
    if !reg.status().is_success() {
        return Err(fail(format!("registration failed: {}", reg.status())));
    }
    let (woke, polled) = poll.await.map_err(fail)?;
    let polled: Value = polled.map_err(fail)?.json().await.map_err(fail)?;
    if polled["status"] != "selected" {
        return Err(fail(format!("long poll ended with {polled}")));
    }
    let wake = woke.saturating_duration_since(registered);

    let tx = ctx.payer.pay(&wopid).await?;
    let done = ctx
        .http
        .get(format!("{status_url}?old_state=selected&timeout_ms=30000"))
        .basic_auth(&ctx.user, Some(&ctx.secret))
        .send();
    let done = tokio::spawn(done);
    let check = ctx
        .http
        .post(format!("{status_url}/check"))
        .basic_auth(&ctx.user, Some(&ctx.secret))
        .json(&json!({"provider_transaction_id": tx}))
        .send()
        .await
        .map_err(fail)?;
    if check.status().as_u16() != 204 {
        let status = check.status();
        let body = check.text().await.unwrap_or_default();
        return Err(fail(format!("check failed: {status} {body}")));
    }
    let done: Value = done
        .await
        .map_err(fail)?
        .map_err(fail)?
        .json()
        .await
        .map_err(fail)?;
    Ok((wake, done["status"] == "confirmed"))
}
