//! `cardcash c2ec bench`: the C2EC withdrawal benchmark, with the load generator in its own
//! process.
//!
//! Without `--target`, this process starts a child (`cardcash c2ec bench-world`, hidden) that
//! runs the card processor and C2EC on a fresh database and prints one JSON line: where they
//! are and the credentials of a terminal. This process then plays N terminals and wallets over
//! HTTP, through the same clients the terminal uses, and never shares a runtime (or a core's
//! scheduler) with the services. With `--target URL` it drives a running C2EC instead, taking
//! the terminal's credentials from the `[terminal]` section of the configuration.
//!
//! One withdrawal is the seed's diagram: setup → the terminal's long poll → the wallet
//! registers (the wake-up latency is the time from the registration's answer to the terminal's
//! long poll answering) → card payment at the processor → check → the terminal's second long
//! poll ends with `confirmed` (C2EC attested the payment with the processor).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cardcash_api::bank_integration::{BankWithdrawalOperationPostRequest, WithdrawalStatus};
use cardcash_api::cardproc::{CardNumber, CreateTransactionRequest, ProcessCardRequest};
use cardcash_client::{
    BankIntegrationClient, C2ecTerminalClient, CardprocClient, HttpClient, SetupAmount,
};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey, PaytoUri};
use cardcash_world::{Storage, World};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::terminal_cmd::TerminalSettings;

/// The amount of every benchmark withdrawal.
const AMOUNT: &str = "CHF:20";
/// The test card that approves.
const CARD: &str = "4000000000000002";
/// How long a long poll may wait.
const POLL: Duration = Duration::from_secs(30);
/// Lets the terminal's long poll arrive before the wallet registers, so that the wake-up
/// latency measures a poll that really waited (a real wallet takes seconds).
const POLL_HEAD_START: Duration = Duration::from_millis(5);

/// What the child prints on its first stdout line, and what `--target` reads from the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchTarget {
    pub engine: String,
    pub c2ec_url: BaseUrl,
    pub terminal_user: String,
    pub terminal_secret: String,
    pub exchange_account: PaytoUri,
    pub cardproc_url: BaseUrl,
    pub cardproc_user_id: u64,
    pub cardproc_secret: String,
    pub cardproc_space_id: u64,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub n: usize,
    pub concurrency: usize,
    pub confirmed: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub wake_p50: Duration,
    pub wake_p99: Duration,
    pub wake_max: Duration,
}

impl BenchReport {
    pub fn per_second(&self) -> f64 {
        self.confirmed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The child process running a benchmark's services, and the file its warnings go to (shared
/// by the C2EC and the exchange benchmarks).
pub struct WorldProcess {
    child: Child,
    log: std::path::PathBuf,
}

/// Starts C2EC's benchmark services in a child process and returns it with what it printed.
pub fn spawn_world(database: Option<&str>) -> anyhow::Result<(WorldProcess, BenchTarget)> {
    WorldProcess::spawn(&["c2ec", "bench-world"], database, "cardcash-bench")
}

/// Ends C2EC's benchmark services; their log is kept (path printed) when `keep_log`.
pub fn stop_world(world: WorldProcess, keep_log: bool) {
    world.stop(keep_log, Duration::from_secs(10));
}

impl WorldProcess {
    /// Starts `cardcash <subcommand…> [--database URL]`, its warnings to
    /// `{tmp}/{log_name}-{pid}.log`, and reads the JSON line it prints when it is ready.
    pub fn spawn<T: serde::de::DeserializeOwned>(
        subcommand: &[&str],
        database: Option<&str>,
        log_name: &str,
    ) -> anyhow::Result<(Self, T)> {
        let exe = std::env::current_exe().context("cannot find the cardcash executable")?;
        let mut command = Command::new(exe);
        command.args(subcommand);
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        // The services' logs would flood the report: only warnings, to a file the user can read.
        let log = std::env::temp_dir().join(format!("{log_name}-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = command
            .env("RUST_LOG", "warn")
            .env_remove("CARDCASH_LOG_JSON")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .context("cannot start the benchmark's services")?;
        let stdout = child.stdout.take().context("no stdout of the child")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the services' address")?;
        if line.trim().is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            // The log is kept: it says why.
            bail!(
                "the benchmark's services did not start; their log is {}",
                log.display()
            );
        }
        let target: T = serde_json::from_str(line.trim())
            .with_context(|| format!("the services printed {line:?}"))?;
        Ok((Self { child, log }, target))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child wrote no warning so far.
    pub fn log_is_empty(&self) -> bool {
        std::fs::metadata(&self.log).is_ok_and(|m| m.len() == 0)
    }

    /// Ends the child (closing its stdin tells it to shut down; killed after `grace`). Its log
    /// is removed, or kept with its path printed when `keep_log`.
    pub fn stop(self, keep_log: bool, grace: Duration) {
        let Self { mut child, log } = self;
        drop(child.stdin.take());
        let deadline = Instant::now() + grace;
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        if keep_log {
            eprintln!("the services' log is {}", log.display());
        } else {
            let _ = std::fs::remove_file(&log);
        }
    }
}

/// The target of `--target URL`: the `[terminal]` section of the configuration, with C2EC at
/// `url`, and the exchange account of `[c2ec]`.
pub fn target_from_config(
    cfg: &cardcash_util::TalerConfig,
    url: &BaseUrl,
) -> anyhow::Result<BenchTarget> {
    let terminal = TerminalSettings::from_taler_config(cfg)?;
    let exchange_account = cfg
        .string("c2ec", "EXCHANGE_ACCOUNT")?
        .parse()
        .context("[c2ec] EXCHANGE_ACCOUNT")?;
    Ok(BenchTarget {
        engine: "as configured".to_owned(),
        c2ec_url: url.clone(),
        terminal_user: terminal.terminal_user,
        terminal_secret: terminal.terminal_secret,
        exchange_account,
        cardproc_url: terminal.cardproc_url,
        cardproc_user_id: terminal.cardproc_user_id,
        cardproc_secret: terminal.cardproc_secret,
        cardproc_space_id: terminal.cardproc_space_id,
    })
}

struct Players {
    terminal: C2ecTerminalClient,
    wallet: BankIntegrationClient,
    pos: CardprocClient,
    exchange_account: PaytoUri,
    amount: Amount,
}

/// Drives `n` withdrawals, `concurrency` at a time, against `target`.
pub async fn drive(
    target: &BenchTarget,
    n: usize,
    concurrency: usize,
    progress: impl Fn(usize),
) -> anyhow::Result<BenchReport> {
    let http = HttpClient::new()?;
    let players = Arc::new(Players {
        terminal: C2ecTerminalClient::with_http(
            http.clone(),
            target.c2ec_url.join_base("terminal/")?,
            target.terminal_user.clone(),
            target.terminal_secret.clone(),
        ),
        wallet: BankIntegrationClient::with_http(
            http.clone(),
            target.c2ec_url.join_base("taler-integration/")?,
        ),
        pos: CardprocClient::with_http(
            http,
            target.cardproc_url.clone(),
            target.cardproc_user_id,
            cardcash_api::cardproc::mac::MacKey::from_base64(&target.cardproc_secret)?,
            target.cardproc_space_id,
        ),
        exchange_account: target.exchange_account.clone(),
        amount: AMOUNT.parse()?,
    });
    // Warm-up: the terminal's password check gets cached, connections open.
    one(&players, 0)
        .await
        .context("the first withdrawal failed")?;

    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=n {
        let permit = limit.clone().acquire_owned().await?;
        let players = players.clone();
        tasks.spawn(async move {
            let result = one(&players, i).await;
            drop(permit);
            result
        });
    }
    let mut wakes = Vec::with_capacity(n);
    let (mut confirmed, mut failed) = (0, 0);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok((wake, true)) => {
                wakes.push(wake);
                confirmed += 1;
            }
            Ok((wake, false)) => {
                wakes.push(wake);
                failed += 1;
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
        let done = confirmed + failed;
        if done % 500 == 0 {
            progress(done);
        }
    }
    let elapsed = started.elapsed();
    if let Some(error) = first_error {
        eprintln!("warning: {failed} withdrawals failed; the first: {error:#}");
    }
    wakes.sort_unstable();
    let pct = |p: f64| -> Duration {
        if wakes.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((wakes.len() - 1) as f64 * p).round() as usize;
        wakes[idx.min(wakes.len() - 1)]
    };
    Ok(BenchReport {
        n,
        concurrency,
        confirmed,
        failed,
        elapsed,
        wake_p50: pct(0.5),
        wake_p99: pct(0.99),
        wake_max: wakes.last().copied().unwrap_or_default(),
    })
}

/// One withdrawal: (wake-up latency, confirmed?).
async fn one(p: &Players, i: usize) -> anyhow::Result<(Duration, bool)> {
    let uid = format!("bench-{}-{i}", std::process::id());
    let setup = p
        .terminal
        .setup_withdrawal(&uid, SetupAmount::Fixed(p.amount))
        .await?;
    let wopid = setup.withdrawal_id;

    let waiting = {
        let terminal = p.terminal.clone();
        let wopid = wopid.clone();
        tokio::spawn(async move {
            let status = terminal
                .status(&wopid, Some(WithdrawalStatus::Pending), POLL)
                .await;
            (Instant::now(), status)
        })
    };
    tokio::time::sleep(POLL_HEAD_START).await;
    let reserve_pub = EddsaPublicKey::from_bytes(cardcash_crypto::random::random_bytes::<32>()?);
    p.wallet
        .select(
            &wopid,
            &BankWithdrawalOperationPostRequest {
                reserve_pub,
                selected_exchange: p.exchange_account.clone(),
                amount: None,
            },
        )
        .await?;
    let registered = Instant::now();
    let (woke, status) = waiting.await?;
    let status = status?;
    if status.status != WithdrawalStatus::Selected {
        bail!("the terminal's long poll ended with {:?}", status.status);
    }
    let wake = woke.saturating_duration_since(registered);

    let tx = p
        .pos
        .create_transaction(&CreateTransactionRequest {
            currency: *p.amount.currency(),
            amount: p.amount.into(),
            merchant_reference: wopid.clone(),
            terminal_id: Some("bench".to_owned()),
            meta_data: Default::default(),
        })
        .await?;
    p.pos
        .process_card(
            tx.id,
            &ProcessCardRequest {
                pan: CardNumber(CARD.to_owned()),
                expiry_month: 12,
                expiry_year: 2099,
                cvc: None,
            },
        )
        .await?;
    p.terminal.check(&wopid, &tx.id.to_string()).await?;
    let done = p
        .terminal
        .status(&wopid, Some(WithdrawalStatus::Selected), POLL)
        .await?;
    Ok((wake, done.status == WithdrawalStatus::Confirmed))
}

/// Prints the report; the last line is the throughput alone.
pub fn print_report(target: &BenchTarget, report: &BenchReport) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "engine: {}\nwithdrawals: {} ({} at a time), {} confirmed, {} failed, in {:.2} s",
        target.engine,
        report.n,
        report.concurrency,
        report.confirmed,
        report.failed,
        report.elapsed.as_secs_f64()
    );
    println!(
        "long-poll wake-up: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(report.wake_p50),
        ms(report.wake_p99),
        ms(report.wake_max)
    );
    println!("withdrawals/s: {:.0}", report.per_second());
}

/// The exchange account of the benchmark's C2EC.
const BENCH_EXCHANGE: &str = "payto://x-taler-bank/c2ec.bench/exchange";

/// The child: the card processor and C2EC on a fresh database (`postgres://…` names a server
/// where a fresh database is created, and dropped at the end; otherwise temporary SQLite
/// files), one terminal, and the target printed as one JSON line. Runs until its stdin closes.
pub async fn run_world(database: Option<String>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let server = database.clone().filter(|url| url.starts_with("postgres"));
    let storage = match database {
        Some(url) if url.starts_with("postgres") => Storage::Postgres(url),
        Some(url) => {
            bail!("--database takes a PostgreSQL URL (got {url:?}); SQLite is the default")
        }
        None => Storage::TempSqlite,
    };
    let exchange_account: PaytoUri = BENCH_EXCHANGE.parse()?;
    let world = {
        let exchange_account = exchange_account.clone();
        World::builder()
            .storage(storage)
            .cardproc()
            .c2ec()
            .c2ec_terminal(Some("bench"))
            .configure_c2ec(move |c| {
                c.exchange_account = exchange_account;
                c.registration_window = Duration::from_secs(600);
                c.check_window = Duration::from_secs(600);
                c.attestation_max_retries = 10;
                c.attestation_retry_delay = Duration::from_millis(50);
            })
            .start()
            .await?
    };
    let (c2ec, cardproc) = (world.c2ec(), world.cardproc());
    let terminal = c2ec.terminal().context("the benchmark's terminal")?;
    let pos = cardproc
        .terminal_user()
        .context("the card processor's terminal user")?;
    let target = BenchTarget {
        engine: world.engine().to_string(),
        c2ec_url: c2ec.base_url().clone(),
        terminal_user: terminal.user.clone(),
        terminal_secret: terminal.secret.clone(),
        exchange_account,
        cardproc_url: cardproc.base_url().clone(),
        cardproc_user_id: pos.id,
        cardproc_secret: pos.secret.clone(),
        cardproc_space_id: cardproc.space_id(),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&target)?)?;
        out.flush()?;
    }
    // Serve until the parent closes our stdin (or goes away).
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    })
    .await?;
    let database_url = world.c2ec().database_url().to_owned();
    world.shutdown().await?;
    // The fresh database holds nothing worth keeping: thousands of benchmark withdrawals.
    if let Some(server) = server {
        cardcash_store::drop_pg_database(&server, &database_url)
            .await
            .with_context(|| format!("dropping the benchmark's database {database_url}"))?;
    }
    Ok(())
}
