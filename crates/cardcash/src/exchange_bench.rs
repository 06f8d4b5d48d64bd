//! `cardcash exchange bench`: full coin cycles over HTTP (withdraw, deposit part of the coin,
//! refresh the rest: melt + reveal) against an exchange in a child process, measured against the
//! machine's raw RSA-2048 blind-signing rate.
//!
//! This process starts a child (`cardcash exchange bench-world`, hidden) that runs the bank and
//! the exchange on a fresh database (temporary SQLite files, or a fresh PostgreSQL database) with
//! RSA-2048 denominations of 5, 1 and 0.10 (fees 0.01), and prints one JSON line: where they are
//! and the credentials of the exchange's Wire Gateway account at the bank. Each coin goes the
//! way of GNU Taler's own `taler-exchange-benchmark`: a coin of 5 is withdrawn, 1 of it is
//! deposited, and the rest is refreshed into four fresh coins (1, 1, 1, 0.10). This process then
//! 1. funds one reserve per withdraw request through the bank's `admin/add-incoming` and waits
//!    until the exchange's wirewatch imported each (`GET /reserves/$PUB` long polls);
//! 2. prepares every planchet (coin key, blinding, the reserve's signature) on all cores;
//! 3. measures the raw blind-signing rate of the machine: `cardcash_crypto::rsa::sign_blinded`
//!    with an RSA-2048 key, one thread per core, for `--raw-secs` (the services are idle then);
//! 4. **timed**: sends the batch withdrawals, `--concurrency` requests in flight, and keeps
//!    the answers (nothing is unblinded while the clock runs);
//! 5. unblinds and verifies every coin, and signs the deposits (one merchant, a fresh contract
//!    per request) on all cores;
//! 6. **timed**: sends the batch deposits;
//! 7. prepares each deposited coin's refresh (κ = 3 sets of four fresh planchets, the commitment,
//!    the melt signature) on all cores;
//! 8. **timed**: sends the melts (one per coin);
//! 9. builds the reveals for the exchange's `noreveal_index` (link signatures);
//! 10. **timed**: sends the reveals; then unblinds and verifies every fresh coin.
//!
//! A full coin cycle's figure is the coins that went through all four timed phases over the sum
//! of the four phases' times: how many coins per second the exchange takes from withdrawal to
//! refreshed change when it does nothing else.
//!
//! So the load generator does only HTTP and JSON while the clock runs; its CPU time during each
//! timed phase is printed next to the exchange process's, which says how the two cores were
//! shared. The child's resident memory is read from `/proc` at start, after withdraw and after
//! deposit; `--duration SECS` repeats steps 1–6 until the time is over, sampling it every
//! `--rss-every` seconds. `--no-refresh` stops after the deposits (and `--no-deposit` after the
//! withdrawals). The last line is `withdraw/raw-sign ratio: X%`.

pub(crate) mod wallet;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cardcash_api::exchange::{
    BatchDepositRequest, BatchWithdrawRequest, BatchWithdrawResponse, MeltRequest, MeltResponse,
    RevealRequest, RevealResponse,
};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::{Auth, ExchangeClient, HttpClient, WireGatewayClient};
use cardcash_crypto::{EddsaPrivateKey, rsa};
use cardcash_util::{Amount, BaseUrl, Currency, EddsaPublicKey, HashCode, PaytoUri};
use cardcash_world::{BankAccount, Storage, World};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use wallet::{Coin, Denom, Merchant, Planchet, Refresh};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Coins to withdraw (and then deposit), per round.
    #[arg(long, default_value = "2000")]
    pub n: usize,
    /// Requests in flight at once.
    #[arg(long, default_value = "32")]
    pub concurrency: usize,
    /// A PostgreSQL server (a role that may create databases): the run gets a fresh database
    /// there. Default: temporary SQLite files.
    #[arg(long)]
    pub database: Option<String>,
    /// Planchets per withdraw request (one reserve per request).
    #[arg(long, default_value = "8")]
    pub batch: usize,
    /// Coins per deposit request.
    #[arg(long, default_value = "8")]
    pub deposit_batch: usize,
    /// How long to measure the raw signing rate, in seconds.
    #[arg(long, default_value = "3")]
    pub raw_secs: f64,
    /// Repeat withdraw + deposit rounds of N coins until this many seconds have passed,
    /// sampling the exchange process's memory (the memory-flat check).
    #[arg(long)]
    pub duration: Option<u64>,
    /// With `--duration`: seconds between two memory samples.
    #[arg(long, default_value = "30")]
    pub rss_every: u64,
    /// Withdraw only, no deposits and no refreshes (to profile the withdrawal alone).
    #[arg(long)]
    pub no_deposit: bool,
    /// Withdraw and deposit, no refreshes.
    #[arg(long)]
    pub no_refresh: bool,
}

#[derive(Debug, Args)]
pub struct BenchWorldArgs {
    /// A PostgreSQL server on which a fresh database is created.
    #[arg(long)]
    pub database: Option<String>,
}

/// What the child prints on its first stdout line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BenchTarget {
    engine: String,
    exchange_url: BaseUrl,
    /// The exchange's Wire Gateway at the bank (for `admin/add-incoming`).
    gateway_url: BaseUrl,
    gateway_user: String,
    gateway_password: String,
    /// The account `admin/add-incoming` debits.
    debit_account: PaytoUri,
    merchant_payto: PaytoUri,
    /// The value of the benchmark's denomination.
    coin_value: Amount,
    /// The exchange's database URL (on PostgreSQL, its backends' CPU time is counted).
    database_url: String,
}

/// The currency of the benchmark's world (the world's default).
const CURRENCY: &str = "CHF";
/// The value of the coins the benchmark withdraws.
const COIN_VALUE: &str = "5";
/// What each coin's deposit contributes (deposit fee included).
const DEPOSIT: &str = "1";
/// The fresh coins each refresh makes (those of `taler-exchange-benchmark`); the world's
/// denominations are these and the withdrawn one.
const FRESH: [&str; 4] = ["1", "1", "1", "0.1"];
/// How long the parent waits for wirewatch to import one reserve.
const FUNDING_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The child: bank + exchange.

/// The child: the bank and the exchange on a fresh database, one RSA-2048 denomination, a
/// merchant account at the bank; the target printed as one JSON line. Runs until its stdin
/// closes.
pub async fn run_world(args: BenchWorldArgs) -> anyhow::Result<()> {
    let storage = match args.database {
        Some(url) if url.starts_with("postgres") => Storage::Postgres(url),
        Some(url) => {
            bail!("--database takes a PostgreSQL URL (got {url:?}); SQLite is the default")
        }
        None => Storage::TempSqlite,
    };
    let currency: Currency = CURRENCY.parse()?;
    let coin_value: Amount = format!("{CURRENCY}:{COIN_VALUE}").parse()?;
    let one: Amount = format!("{CURRENCY}:1").parse()?;
    let tenth: Amount = format!("{CURRENCY}:0.1").parse()?;
    // Long runs withdraw more than the admin's default debt limit of 1,000,000.
    let admin_limit = Amount::new(currency, 1 << 50, 0)?;
    let world = World::builder()
        .currency(currency)
        .storage(storage)
        .bank()
        .bank_account(BankAccount::new("merchant", "Merchant"))
        .configure_bank(move |c| c.admin_debit_limit = admin_limit)
        .exchange()
        .configure_exchange(move |c| {
            // RSA-2048 (the world's default size) of 5, 1 and 0.10: the coin and its change.
            c.denominations
                .retain(|d| d.value == coin_value || d.value == one);
            if let Some(d) = c.denominations.iter().find(|d| d.value == one) {
                let mut d = d.clone();
                d.section = format!("{}_0_10", d.section.trim_end_matches("_1"));
                d.value = tenth;
                c.denominations.push(d);
            }
        })
        .start()
        .await?;
    let bank = world.bank();
    let credentials = bank
        .exchange()
        .context("the world's bank has no exchange account")?;
    let payto = bank.app().ledger().payto();
    let target = BenchTarget {
        engine: world.engine().to_string(),
        exchange_url: world.exchange().base_url().clone(),
        gateway_url: bank.app().wire_gateway_url(&credentials.username)?,
        gateway_user: credentials.username.clone(),
        gateway_password: credentials.password.clone(),
        debit_account: payto.account_uri("admin", "Admin")?,
        merchant_payto: payto.account_uri("merchant", "Merchant")?,
        coin_value,
        database_url: world.exchange().database_url().to_owned(),
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
    world.shutdown().await?;
    Ok(())
}

use crate::bench::WorldProcess;

/// Starts `cardcash exchange bench-world` and reads what it printed.
fn spawn_world(database: Option<&str>) -> anyhow::Result<(WorldProcess, BenchTarget)> {
    WorldProcess::spawn(
        &["exchange", "bench-world"],
        database,
        "cardcash-exchange-bench",
    )
}

/// Ends the child; its log is kept (path printed) when something failed or it has warnings.
fn stop_world(world: WorldProcess, failed: bool) {
    let keep = failed || !world.log_is_empty();
    world.stop(keep, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------------
// Process statistics from /proc (Linux).

/// Resident memory of process `pid` in KiB (`VmRSS`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system, all threads) of process `pid` (`None`: this process), in seconds.
pub(crate) fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses; utime and
    // stime are fields 14 and 15, counted in USER_HZ = 100 ticks by the kernel's ABI.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU time the whole machine spent busy (all cores, every process), in seconds.
pub(crate) fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / 100.0)
}

/// The PostgreSQL backends serving database `name` (their process title names it) and
/// their CPU seconds.
pub(crate) fn backends_cpu(name: &str) -> std::collections::HashMap<u32, f64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let needle = format!(" {name} ");
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if title.starts_with("postgres: ")
            && title.contains(&needle)
            && let Some(cpu) = cpu_secs(Some(pid))
        {
            out.insert(pid, cpu);
        }
    }
    out
}

/// The database name of a `postgres://…/NAME` URL.
pub(crate) fn pg_database_name(url: &str) -> Option<String> {
    if !url.starts_with("postgres") {
        return None;
    }
    let path = url.split('?').next()?.rsplit('/').next()?;
    (!path.is_empty()).then(|| path.to_owned())
}

/// Seconds since the benchmark started, for progress lines.
pub(crate) fn since_start() -> String {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    format!(
        "{:7.2} s",
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    )
}

pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// CPU work off the clock: on all cores, in order.

/// `f` over `items` on one thread per core; the results in order.
pub(crate) fn par_map<T: Send, U: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> anyhow::Result<U> + Sync,
) -> anyhow::Result<Vec<U>> {
    let chunk = items.len().div_ceil(cores()).max(1);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut iter = items.into_iter();
    loop {
        let part: Vec<T> = iter.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<_>>()))
                .collect();
            let mut out = Vec::new();
            for handle in handles {
                let results = handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a preparation thread panicked"))?;
                for r in results {
                    out.push(r?);
                }
            }
            Ok(out)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The raw signing rate.

#[derive(Debug, Clone, Copy)]
struct RawRate {
    threads: usize,
    signatures: u64,
    elapsed: Duration,
    /// CPU seconds every other process used meanwhile (the exchange, idle, included).
    others_cpu: f64,
}

impl RawRate {
    fn per_second(&self) -> f64 {
        self.signatures as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// An RSA-2048 key and blinded messages to sign: the same key size and the same function
/// (`cardcash_crypto::rsa::sign_blinded`, OpenSSL) as the exchange's key store.
struct RawSigner {
    key: rsa::RsaPrivateKey,
    blinded: Vec<Vec<u8>>,
}

impl RawSigner {
    fn new() -> anyhow::Result<Self> {
        let key = rsa::RsaPrivateKey::generate(2048)?;
        let mut blinded = Vec::new();
        for _ in 0..64 {
            let msg: [u8; 32] = cardcash_crypto::random_bytes()?;
            let bks = rsa::BlindingKeySecret::generate()?;
            blinded.push(rsa::blind(key.public(), &msg, &bks)?);
        }
        Ok(Self { key, blinded })
    }

    /// Blind signatures per second with one thread per core, for `secs` seconds.
    fn measure(&self, secs: f64) -> anyhow::Result<RawRate> {
        let threads = cores();
        let run_for = Duration::from_secs_f64(secs.max(0.1));
        let barrier = std::sync::Barrier::new(threads + 1);
        let (key, blinded, barrier) = (&self.key, &self.blinded, &barrier);
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || -> anyhow::Result<u64> {
                            barrier.wait();
                            let deadline = Instant::now() + run_for;
                            let mut done = 0u64;
                            let mut i = t;
                            loop {
                                for _ in 0..8 {
                                    rsa::sign_blinded(key, &blinded[i % blinded.len()])?;
                                    i += 1;
                                }
                                done += 8;
                                if Instant::now() >= deadline {
                                    return Ok(done);
                                }
                            }
                        })
                    })
                    .collect();
                let (own_before, machine_before) = (cpu_secs(None), machine_busy_secs());
                barrier.wait();
                let started = Instant::now();
                let mut signatures = 0;
                for handle in handles {
                    signatures += handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
                }
                let elapsed = started.elapsed();
                let others_cpu = match (
                    cpu_secs(None),
                    own_before,
                    machine_busy_secs(),
                    machine_before,
                ) {
                    (Some(oa), Some(ob), Some(ma), Some(mb)) => ((ma - mb) - (oa - ob)).max(0.0),
                    _ => f64::NAN,
                };
                Ok(RawRate {
                    threads,
                    signatures,
                    elapsed,
                    others_cpu,
                })
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Timed phases.

/// What one timed phase measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Phase {
    pub(crate) requests: usize,
    pub(crate) coins: usize,
    pub(crate) failed: usize,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
    /// CPU seconds of the exchange's process, of this one, of the PostgreSQL backends of the
    /// exchange's database, and of every other process (others working on the machine;
    /// PostgreSQL's shared WAL writer and checkpointer) during the phase.
    pub(crate) child_cpu: f64,
    pub(crate) own_cpu: f64,
    pub(crate) db_cpu: f64,
    pub(crate) others_cpu: f64,
}

impl Phase {
    pub(crate) fn coins_per_second(&self) -> f64 {
        self.coins as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
    }

    /// Adds `other` (a later round) to this one.
    fn add(&mut self, other: &Phase) {
        self.requests += other.requests;
        self.coins += other.coins;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        self.latencies.extend_from_slice(&other.latencies);
        self.child_cpu += other.child_cpu;
        self.own_cpu += other.own_cpu;
        self.db_cpu += other.db_cpu;
        self.others_cpu += other.others_cpu;
    }
}

/// Sends `requests` (each with its number of coins) through `send`, `concurrency` at a time,
/// and measures: the answers in request order (`None` for a failed request, whose coins are
/// not counted; the first error is printed).
pub(crate) async fn timed<Q, A, F, Fut>(
    child: u32,
    database: Option<&str>,
    requests: Vec<(Q, usize)>,
    concurrency: usize,
    send: F,
) -> anyhow::Result<(Vec<Option<A>>, Phase)>
where
    Q: Send + 'static,
    A: Send + 'static,
    F: Fn(Q) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<A>> + Send,
{
    let n = requests.len();
    let send = Arc::new(send);
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let (child_before, own_before) = (cpu_secs(Some(child)), cpu_secs(None));
    let machine_before = machine_busy_secs();
    let db_before = database.map(backends_cpu).unwrap_or_default();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (request, coins)) in requests.into_iter().enumerate() {
        let permit = limit.clone().acquire_owned().await?;
        let send = send.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            let answer = send(request).await;
            let latency = t.elapsed();
            drop(permit);
            (i, coins, latency, answer)
        });
    }
    let mut answers: Vec<Option<A>> = (0..n).map(|_| None).collect();
    let mut latencies = Vec::with_capacity(n);
    let (mut coins, mut failed) = (0, 0);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (i, n_coins, latency, answer) = joined?;
        latencies.push(latency);
        match answer {
            Ok(a) => {
                answers[i] = Some(a);
                coins += n_coins;
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = started.elapsed();
    let delta = |after: Option<f64>, before: Option<f64>| match (after, before) {
        (Some(a), Some(b)) => a - b,
        _ => f64::NAN,
    };
    let child_cpu = delta(cpu_secs(Some(child)), child_before);
    let own_cpu = delta(cpu_secs(None), own_before);
    let machine = delta(machine_busy_secs(), machine_before);
    // A backend that appeared during the phase counts from zero.
    let db_cpu: f64 = database
        .map(backends_cpu)
        .unwrap_or_default()
        .iter()
        .map(|(pid, after)| after - db_before.get(pid).copied().unwrap_or(0.0))
        .sum();
    let phase = Phase {
        requests: n,
        coins,
        failed,
        elapsed,
        latencies,
        child_cpu,
        own_cpu,
        db_cpu,
        others_cpu: (machine - child_cpu - own_cpu - db_cpu).max(0.0),
    };
    if let Some(error) = first_error {
        eprintln!("warning: {failed} of {n} requests failed; the first: {error:#}");
    }
    Ok((answers, phase))
}

// ---------------------------------------------------------------------------------------------
// One round: fund, prepare, withdraw, unblind, sign deposits, deposit.

struct Bench {
    args: BenchArgs,
    child: u32,
    /// The PostgreSQL database's name (`None` on SQLite).
    database: Option<String>,
    exchange: ExchangeClient,
    gateway: WireGatewayClient,
    debit_account: PaytoUri,
    denom: Denom,
    /// The fresh coins of each refresh ([`FRESH`]).
    fresh: Vec<Denom>,
    /// What each coin's deposit contributes.
    contribution: Amount,
    merchant: Merchant,
}

/// A round's untimed parts, its four timed phases and the memory after each.
struct Round {
    funding: Duration,
    /// Planchets, unblinding (with verification), deposit signatures, refresh preparation
    /// (planchets, commitment, melt signature), reveal requests, fresh coins' unblinding.
    untimed: [Duration; 6],
    withdraw: Phase,
    deposit: Phase,
    melt: Phase,
    reveal: Phase,
    /// Coins that went through all four timed phases (their fresh coins verified).
    cycles: usize,
    rss_after_withdraw: Option<u64>,
    rss_after_deposit: Option<u64>,
    rss_after_refresh: Option<u64>,
}

impl Bench {
    /// Funds `count` fresh reserves with `amount` each and waits until the exchange knows
    /// them all.
    async fn fund(&self, count: usize, amount: Amount) -> anyhow::Result<Vec<EddsaPrivateKey>> {
        let reserves = par_map((0..count).collect(), |_| Ok(EddsaPrivateKey::generate()?))?;
        let limit = Arc::new(Semaphore::new(self.args.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for reserve in &reserves {
            let permit = limit.clone().acquire_owned().await?;
            let gateway = self.gateway.clone();
            let request = AddIncomingRequest {
                amount,
                reserve_pub: reserve.public(),
                debit_account: self.debit_account.clone(),
            };
            tasks.spawn(async move {
                let result = gateway.add_incoming(&request).await;
                drop(permit);
                result.map(drop).context("admin/add-incoming")
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        for reserve in &reserves {
            let permit = limit.clone().acquire_owned().await?;
            let exchange = self.exchange.clone();
            let reserve_pub = reserve.public();
            tasks.spawn(async move {
                let result = exchange.reserve(&reserve_pub, FUNDING_WAIT).await;
                drop(permit);
                let summary =
                    result.with_context(|| format!("wirewatch did not import {reserve_pub}"))?;
                if summary.balance != amount {
                    bail!("reserve {reserve_pub} holds {}", summary.balance);
                }
                Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        Ok(reserves)
    }

    /// One round of `n` coins. With `raw`, the raw signing rate is measured right before and
    /// right after the timed withdrawal (the services are idle then), so that both see the
    /// same machine.
    async fn round(&self, raw: Option<(&RawSigner, f64)>) -> anyhow::Result<(Round, Vec<RawRate>)> {
        let batch = self.args.batch.max(1);
        let requests = self.args.n.div_ceil(batch);
        // Progress on stderr in the first round (the one that measures the raw rate), which
        // also tells a profiler when the timed phases start.
        let say = |what: &str| {
            if raw.is_some() {
                eprintln!("[{}] {what}", since_start());
            }
        };
        say(&format!("funding {requests} reserves"));
        let t = Instant::now();
        let per_reserve = {
            let one = self.denom.with_fee()?;
            let mut total = Amount::zero(one.currency());
            for _ in 0..batch {
                total = total.checked_add(&one)?;
            }
            total
        };
        let reserves = self.fund(requests, per_reserve).await?;
        let funding = t.elapsed();
        say(&format!("preparing {} planchets", self.args.n));

        let t = Instant::now();
        let denom = &self.denom;
        let mut remaining = self.args.n;
        let sizes: Vec<usize> = (0..requests)
            .map(|_| {
                let size = remaining.min(batch);
                remaining -= size;
                size
            })
            .collect();
        let prepared: Vec<(EddsaPrivateKey, Vec<Planchet>)> = par_map(
            reserves.into_iter().zip(sizes).collect(),
            |(reserve, size)| {
                let planchets = (0..size)
                    .map(|_| wallet::planchet(&reserve, denom))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok((reserve, planchets))
            },
        )?;
        let requests: Vec<_> = prepared
            .iter()
            .map(|(reserve, planchets)| {
                (
                    (
                        reserve.public(),
                        BatchWithdrawRequest {
                            planchets: planchets.iter().map(|p| p.request.clone()).collect(),
                        },
                    ),
                    planchets.len(),
                )
            })
            .collect();
        let preparing = t.elapsed();

        let mut rates = Vec::new();
        if let Some((signer, secs)) = raw {
            say("measuring the raw signing rate");
            rates.push(signer.measure(secs)?);
        }
        say("withdrawing (timed)");

        let exchange = self.exchange.clone();
        let (answers, withdraw) = timed(
            self.child,
            self.database.as_deref(),
            requests,
            self.args.concurrency,
            move |(reserve_pub, request): (_, BatchWithdrawRequest)| {
                let exchange = exchange.clone();
                async move {
                    let response: BatchWithdrawResponse =
                        exchange.batch_withdraw(&reserve_pub, &request).await?;
                    if response.ev_sigs.len() != request.planchets.len() {
                        bail!(
                            "{} signatures for {} planchets",
                            response.ev_sigs.len(),
                            request.planchets.len()
                        );
                    }
                    Ok(response)
                }
            },
        )
        .await?;
        let rss_after_withdraw = rss_kib(self.child);
        if let Some((signer, secs)) = raw {
            say("measuring the raw signing rate again");
            rates.push(signer.measure(secs)?);
        }
        say("unblinding the coins, signing the deposits");

        // Off the clock: every coin unblinded and verified, then the deposits signed.
        let t = Instant::now();
        let answers = if self.args.no_deposit {
            Vec::new()
        } else {
            answers
        };
        let signed: Vec<_> = prepared
            .into_iter()
            .zip(answers)
            .filter_map(|((_, planchets), answer)| answer.map(|a| (planchets, a)))
            .collect();
        let coins: Vec<Coin> = par_map(signed, |(planchets, answer)| {
            planchets
                .into_iter()
                .zip(&answer.ev_sigs)
                .map(|(p, s)| p.unblind(denom, &s.ev_sig))
                .collect::<anyhow::Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        let unblinding = t.elapsed();
        let t = Instant::now();
        let mut groups: Vec<Vec<Coin>> = Vec::new();
        let mut iter = coins.into_iter();
        loop {
            let group: Vec<Coin> = iter.by_ref().take(self.args.deposit_batch.max(1)).collect();
            if group.is_empty() {
                break;
            }
            groups.push(group);
        }
        let merchant = &self.merchant;
        let contribution = self.contribution;
        let deposits: Vec<(BatchDepositRequest, usize)> =
            par_map(groups.iter().collect(), |group: &Vec<Coin>| {
                Ok((merchant.deposit(denom, group, contribution)?, group.len()))
            })?;
        let signing = t.elapsed();

        say("depositing (timed)");
        let exchange = self.exchange.clone();
        let (deposited, deposit) = timed(
            self.child,
            self.database.as_deref(),
            deposits,
            self.args.concurrency,
            move |request: BatchDepositRequest| {
                let exchange = exchange.clone();
                async move { Ok(exchange.batch_deposit(&request).await?) }
            },
        )
        .await?;
        let rss_after_deposit = rss_kib(self.child);

        // The refreshes of what the deposits left, if asked for.
        let coins: Vec<Coin> = if self.args.no_refresh {
            Vec::new()
        } else {
            groups
                .into_iter()
                .zip(deposited)
                .filter_map(|(group, answer)| answer.map(|_| group))
                .flatten()
                .collect()
        };
        let refreshing = !coins.is_empty();
        if refreshing {
            say(&format!("preparing {} refreshes", coins.len()));
        }
        let t = Instant::now();
        let fresh = &self.fresh;
        let refreshes: Vec<Refresh> = par_map(coins, |coin| Refresh::prepare(&coin, denom, fresh))?;
        let melts: Vec<((EddsaPublicKey, MeltRequest), usize)> = refreshes
            .iter()
            .map(|r| ((r.old_pub, r.melt.clone()), 1))
            .collect();
        let preparing_refreshes = t.elapsed();
        if refreshing {
            say("melting (timed)");
        }
        let exchange = self.exchange.clone();
        let (melted, melt) = timed(
            self.child,
            self.database.as_deref(),
            melts,
            self.args.concurrency,
            move |(coin_pub, request): (EddsaPublicKey, MeltRequest)| {
                let exchange = exchange.clone();
                async move { Ok(exchange.melt(&coin_pub, &request).await?) }
            },
        )
        .await?;

        let t = Instant::now();
        let fresh_count = self.fresh.len();
        let pending: Vec<(Refresh, u32, RevealRequest)> = par_map(
            refreshes
                .into_iter()
                .zip(melted)
                .filter_map(|(r, answer): (Refresh, Option<MeltResponse>)| {
                    answer.map(|a| (r, a.noreveal_index))
                })
                .collect(),
            |(refresh, index)| {
                let request = refresh.reveal(index)?;
                Ok((refresh, index, request))
            },
        )?;
        let mut kept = Vec::with_capacity(pending.len());
        let mut reveals: Vec<((HashCode, RevealRequest), usize)> =
            Vec::with_capacity(pending.len());
        for (refresh, index, request) in pending {
            reveals.push(((refresh.rc, request), fresh_count));
            kept.push((refresh, index));
        }
        let building_reveals = t.elapsed();
        if refreshing {
            say("revealing (timed)");
        }
        let exchange = self.exchange.clone();
        let (revealed, reveal) = timed(
            self.child,
            self.database.as_deref(),
            reveals,
            self.args.concurrency,
            move |(rc, request): (HashCode, RevealRequest)| {
                let exchange = exchange.clone();
                async move {
                    let response: RevealResponse = exchange.reveal(&rc, &request).await?;
                    if response.ev_sigs.len() != request.coin_evs.len() {
                        bail!(
                            "{} signatures for {} fresh coins",
                            response.ev_sigs.len(),
                            request.coin_evs.len()
                        );
                    }
                    Ok(response)
                }
            },
        )
        .await?;
        let rss_after_refresh = rss_kib(self.child);

        // Off the clock: every fresh coin unblinded and verified.
        let t = Instant::now();
        let fresh_coins: Vec<Vec<Coin>> = par_map(
            kept.into_iter()
                .zip(revealed)
                .filter_map(|((r, index), answer)| answer.map(|a| (r, index, a)))
                .collect(),
            |(refresh, index, answer): (Refresh, u32, RevealResponse)| {
                refresh.coins(index, &answer.ev_sigs)
            },
        )?;
        let cycles = fresh_coins.len();
        let unblinding_fresh = t.elapsed();
        Ok((
            Round {
                funding,
                untimed: [
                    preparing,
                    unblinding,
                    signing,
                    preparing_refreshes,
                    building_reveals,
                    unblinding_fresh,
                ],
                withdraw,
                deposit,
                melt,
                reveal,
                cycles,
                rss_after_withdraw,
                rss_after_deposit,
                rss_after_refresh,
            },
            rates,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_phase(name: &str, phase: &Phase, args: &BenchArgs, batch: usize, with_db: bool) {
    println!(
        "{name}: {} coins in {} requests ({batch} per request, {} in flight), {} failed, in {:.2} s",
        phase.coins,
        phase.requests,
        args.concurrency,
        phase.failed,
        phase.elapsed.as_secs_f64()
    );
    println!(
        "  {name}: {:.0} coins/s, {:.0} requests/s; latency per request p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        phase.coins_per_second(),
        phase.requests_per_second(),
        ms(phase.percentile(0.5)),
        ms(phase.percentile(0.99)),
        ms(phase.percentile(1.0)),
    );
    let secs = phase.elapsed.as_secs_f64().max(1e-9);
    let per_coin = |cpu: f64| cpu * 1e6 / phase.coins.max(1) as f64;
    let database = if with_db {
        format!(
            ", PostgreSQL backends {:.2} cores ({:.0} µs per coin)",
            phase.db_cpu / secs,
            per_coin(phase.db_cpu)
        )
    } else {
        String::new()
    };
    println!(
        "  CPU during {name}: exchange process {:.2} cores ({:.0} µs per coin){database}, load generator {:.2} cores ({:.0} µs per coin), other processes {:.2} cores",
        phase.child_cpu / secs,
        per_coin(phase.child_cpu),
        phase.own_cpu / secs,
        per_coin(phase.own_cpu),
        phase.others_cpu / secs,
    );
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    since_start();
    let (world, target) = spawn_world(args.database.as_deref())?;
    let result = drive(args, &world, &target).await;
    stop_world(world, result.is_err());
    result
}

async fn drive(args: BenchArgs, world: &WorldProcess, target: &BenchTarget) -> anyhow::Result<()> {
    let child = world.pid();
    let rss_start = rss_kib(child);
    let http = HttpClient::new()?;
    let exchange = ExchangeClient::with_http(http.clone(), target.exchange_url.clone());
    let keys = exchange.keys().await.context("GET /keys")?;
    let denom = wallet::rsa_denomination(&keys, &target.coin_value)?;
    let currency = *target.coin_value.currency();
    let amount = |v: &str| -> anyhow::Result<Amount> { Ok(format!("{currency}:{v}").parse()?) };
    let fresh = FRESH
        .iter()
        .map(|v| wallet::rsa_denomination(&keys, &amount(v)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bench = Bench {
        child,
        database: pg_database_name(&target.database_url),
        exchange,
        gateway: WireGatewayClient::with_http(
            http,
            target.gateway_url.clone(),
            Auth::basic(target.gateway_user.clone(), target.gateway_password.clone()),
        ),
        debit_account: target.debit_account.clone(),
        merchant: Merchant::new(target.merchant_payto.clone())?,
        denom,
        fresh,
        contribution: amount(DEPOSIT)?,
        args,
    };
    let args = &bench.args;
    println!(
        "engine: {} (exchange and bank in process {child}); {} cores; RSA-{} coins of {}: {} of each deposited, the rest refreshed into {}",
        target.engine,
        cores(),
        bench.denom.key.bits(),
        bench.denom.value,
        bench.contribution,
        bench
            .fresh
            .iter()
            .map(|d| d.value.to_string())
            .collect::<Vec<_>>()
            .join(" + "),
    );

    // The first round, with the raw rate measured right before and after its withdrawal.
    let signer = RawSigner::new()?;
    let (first, rates) = bench.round(Some((&signer, args.raw_secs))).await?;
    for (when, r) in ["before", "after"].iter().zip(&rates) {
        println!(
            "raw RSA-2048 blind signing {when} withdraw: {:.0} signatures/s ({} threads, {:.0}/s per core, {:.1} s; other processes {:.2} cores)",
            r.per_second(),
            r.threads,
            r.per_second() / r.threads as f64,
            r.elapsed.as_secs_f64(),
            r.others_cpu / r.elapsed.as_secs_f64().max(1e-9),
        );
    }
    let raw_rate = rates.iter().map(RawRate::per_second).sum::<f64>() / rates.len().max(1) as f64;
    let threads = rates.first().map_or(1, |r| r.threads);
    println!("raw RSA-2048 blind signing (mean): {raw_rate:.0} signatures/s on all cores");
    println!(
        "untimed, on all cores of this process: funding {} reserves {:.2} s (add-incoming, wirewatch); planchets {:.2} s; unblinding and checking the coins {:.2} s; deposit signatures {:.2} s; refreshes (κ sets, commitment, melt signature) {:.2} s; reveal requests {:.2} s; unblinding and checking the fresh coins {:.2} s",
        first.withdraw.requests,
        first.funding.as_secs_f64(),
        first.untimed[0].as_secs_f64(),
        first.untimed[1].as_secs_f64(),
        first.untimed[2].as_secs_f64(),
        first.untimed[3].as_secs_f64(),
        first.untimed[4].as_secs_f64(),
        first.untimed[5].as_secs_f64(),
    );
    print_phase(
        "withdraw",
        &first.withdraw,
        args,
        args.batch,
        bench.database.is_some(),
    );
    if !args.no_deposit {
        print_phase(
            "deposit",
            &first.deposit,
            args,
            args.deposit_batch,
            bench.database.is_some(),
        );
    }
    let refreshing = !args.no_deposit && !args.no_refresh;
    if refreshing {
        print_phase("melt", &first.melt, args, 1, bench.database.is_some());
        print_phase(
            "reveal",
            &first.reveal,
            args,
            bench.fresh.len(),
            bench.database.is_some(),
        );
    }
    let sign_us = 1e6 * threads as f64 / raw_rate.max(1e-9);
    println!("  (RSA signing at the raw rate is {sign_us:.0} µs of CPU per coin on one core)");
    println!(
        "memory (exchange process RSS): start {}, after withdraw {}, after deposit {}, after refresh {}",
        mib(rss_start),
        mib(first.rss_after_withdraw),
        mib(first.rss_after_deposit),
        mib(first.rss_after_refresh),
    );

    let mut withdraw = first.withdraw.clone();
    let mut deposit = first.deposit.clone();
    let mut melt = first.melt.clone();
    let mut reveal = first.reveal.clone();
    let mut cycles = first.cycles;
    if let Some(duration) = args.duration {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(duration);
        let samples = Arc::new(Mutex::new(vec![(Duration::ZERO, rss_kib(child))]));
        let sampler = {
            let samples = samples.clone();
            let every = Duration::from_secs(args.rss_every.max(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    let at = started.elapsed();
                    let rss = rss_kib(child);
                    println!("  t={:>4.0} s  exchange RSS {}", at.as_secs_f64(), mib(rss));
                    samples.lock().expect("samples").push((at, rss));
                }
            })
        };
        let mut rounds = 1;
        while Instant::now() < deadline {
            let (round, _) = bench.round(None).await?;
            withdraw.add(&round.withdraw);
            deposit.add(&round.deposit);
            melt.add(&round.melt);
            reveal.add(&round.reveal);
            cycles += round.cycles;
            rounds += 1;
        }
        sampler.abort();
        let samples = samples.lock().expect("samples").clone();
        let values: Vec<u64> = samples.iter().filter_map(|(_, r)| *r).collect();
        println!(
            "memory over {:.0} s ({rounds} rounds, {} coins withdrawn and deposited): RSS min {}, max {}, first sample {}, last {}",
            started.elapsed().as_secs_f64(),
            withdraw.coins,
            mib(values.iter().min().copied()),
            mib(values.iter().max().copied()),
            mib(values.first().copied()),
            mib(values.last().copied()),
        );
        print_phase(
            "withdraw (all rounds)",
            &withdraw,
            args,
            args.batch,
            bench.database.is_some(),
        );
        if !args.no_deposit {
            print_phase(
                "deposit (all rounds)",
                &deposit,
                args,
                args.deposit_batch,
                bench.database.is_some(),
            );
        }
        if refreshing {
            print_phase(
                "melt (all rounds)",
                &melt,
                args,
                1,
                bench.database.is_some(),
            );
            print_phase(
                "reveal (all rounds)",
                &reveal,
                args,
                bench.fresh.len(),
                bench.database.is_some(),
            );
        }
    }
    if refreshing {
        let refresh_secs = (melt.elapsed + reveal.elapsed).as_secs_f64().max(1e-9);
        println!(
            "refresh (melt + reveal): {:.0} refreshes/s ({} fresh coins each)",
            reveal.requests as f64 / refresh_secs,
            bench.fresh.len()
        );
        let phases = [&withdraw, &deposit, &melt, &reveal];
        let secs: f64 = phases.iter().map(|p| p.elapsed.as_secs_f64()).sum();
        let exchange_cpu: f64 = phases.iter().map(|p| p.child_cpu + p.db_cpu).sum();
        println!(
            "full coin cycle (withdraw, deposit, melt, reveal): {cycles} cycles in {secs:.2} s of timed phases: {:.0} cycles/s, {:.2} ms per cycle; exchange CPU {:.0} µs per cycle{}",
            cycles as f64 / secs.max(1e-9),
            secs * 1e3 / cycles.max(1) as f64,
            exchange_cpu * 1e6 / cycles.max(1) as f64,
            if bench.database.is_some() {
                " (PostgreSQL backends included)"
            } else {
                ""
            },
        );
    }
    if withdraw.failed > 0 || deposit.failed > 0 || melt.failed > 0 || reveal.failed > 0 {
        eprintln!("warning: some requests failed; the figures count only the coins that passed");
    }
    println!(
        "withdraw/raw-sign ratio: {:.0}%",
        100.0 * withdraw.coins_per_second() / raw_rate.max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_see_this_process_and_the_machine() {
        let rss = rss_kib(std::process::id()).expect("VmRSS of this process");
        assert!(rss > 0);
        let before = cpu_secs(None).expect("CPU time of this process");
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_secs(None).unwrap() >= before);
        assert!(cpu_secs(Some(std::process::id())).is_some());
        assert!(machine_busy_secs().is_some());
    }

    #[test]
    fn postgres_database_names() {
        assert_eq!(
            pg_database_name("postgres://postgres@127.0.0.1:54329/world_ab12?options=x").as_deref(),
            Some("world_ab12")
        );
        assert_eq!(pg_database_name("sqlite:/tmp/x/exchange.db"), None);
    }

    #[test]
    fn percentiles_of_latencies() {
        let phase = Phase {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            ..Phase::default()
        };
        assert_eq!(phase.percentile(0.5), Duration::from_millis(51));
        assert_eq!(phase.percentile(0.99), Duration::from_millis(99));
        assert_eq!(phase.percentile(1.0), Duration::from_millis(100));
        assert_eq!(Phase::default().percentile(0.5), Duration::ZERO);
    }
}
