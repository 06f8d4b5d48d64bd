//! `cardcash merchant bench`: orders created, claimed and paid per second, the exchange's
//! deposits included, with the services in one process and the load generator in another.
//!
//! This process starts a child (`cardcash merchant bench-world`, hidden) that runs the bank, the
//! exchange (one RSA-2048 denomination of 1, fees 0.01) and the merchant backend (the world's
//! shop instance `default`, trusting the exchange) on a fresh database (temporary SQLite files,
//! or a fresh PostgreSQL database with `--postgres URL`), and prints one JSON line: where they
//! are, the admin token and the credentials of the exchange's Wire Gateway account. Then, off
//! the clock, this process funds reserves (`admin/add-incoming`, wirewatch), withdraws 2 N + 1
//! coins of 1 (batch withdrawals, every coin unblinded and verified) and makes the claims'
//! nonces; one order goes through the whole cycle to warm up (the merchant fetches the
//! exchange's `/keys` then). Every order costs 0.99 and is paid by one coin of 1 contributing
//! all of it (0.99 + the deposit fee of 0.01, which the customer pays: `max_fee` is 0).
//!
//! Two measurements of N orders each:
//! 1. **phases**: N `POST /private/orders` (the admin token), then N `POST /orders/$ID/claim`
//!    (the claim token, a fresh nonce), then, after the wallet's work is done off the clock
//!    (the contract hash and the coins' deposit permissions), N `POST /orders/$ID/pay`; each
//!    phase with `--clients` requests in flight. The full cycle's figure is N over the sum of
//!    the three phases' times (as `cardcash exchange bench` sums its phases).
//! 2. **mixed**: `--clients` clients, each going through whole orders one after another:
//!    create, claim, hash the contract and sign the coin, pay. Orders per second from the first
//!    request to the last answer, with each step's latency.
//!
//! Every claim's signature (1101) and every payment's signature (1104) are verified after the
//! clock stopped. The CPU time of the services' process (and of the PostgreSQL backends of its
//! database) is read from `/proc` around each timed part, as `cardcash exchange bench` does,
//! and the machine's raw EdDSA and RSA rates (one core) are measured before, so that the cost
//! per order can be compared with the signatures an order needs.
//!
//! Progress goes to stderr, with the services' process id and a line when each timed part
//! starts: attach a profiler then (`perf record --call-graph dwarf -p PID`).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cardcash_api::exchange::{BatchWithdrawRequest, BatchWithdrawResponse};
use cardcash_api::merchant::orders::PostOrderResponse;
use cardcash_api::merchant::{ClaimRequest, ClaimResponse, PayRequest, PayResponse};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::{
    Auth, Endpoint, ExchangeClient, HttpClient, MerchantWalletClient, WireGatewayClient,
};
use cardcash_crypto::purpose::{ContractSig, PaymentOk};
use cardcash_crypto::{EddsaPrivateKey, rsa};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri,
};
use cardcash_world::{Storage, World};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::bench::WorldProcess;
use crate::exchange_bench::wallet::{self, Coin, Denom, DepositContract, Planchet};
use crate::exchange_bench::{Phase, cores, par_map, pg_database_name, rss_kib, since_start, timed};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Orders per measurement: N orders in phases (all created, then all claimed, then all
    /// paid) and N more in whole cycles; 2 N + 1 coins are withdrawn before.
    #[arg(long, default_value = "2000")]
    pub orders: usize,
    /// Concurrent clients (requests in flight).
    #[arg(long, default_value = "32")]
    pub clients: usize,
    /// A PostgreSQL server (a role that may create databases): the services get a fresh
    /// database there. Default: temporary SQLite files.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Print the report as one JSON object (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// How long to measure each of the machine's raw signature rates, in seconds.
    #[arg(long, default_value = "0.5")]
    pub raw_secs: f64,
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
    merchant_url: BaseUrl,
    /// Opens every instance (compared as it is, no password hash per request).
    admin_token: String,
    coin_value: Amount,
    /// The services' database URL (on PostgreSQL, its backends' CPU time is counted).
    database_url: String,
}

const CURRENCY: &str = "CHF";
/// The coins' value; each order is paid by one of them.
const COIN_VALUE: &str = "1";
/// How long the parent waits for wirewatch to import one reserve.
const FUNDING_WAIT: Duration = Duration::from_secs(60);
/// Coins per withdraw request (one reserve each).
const WITHDRAW_BATCH: usize = 8;

// ---------------------------------------------------------------------------------------------
// The child: bank + exchange + merchant.

/// The child: the services on a fresh database; the target printed as one JSON line. Runs until
/// its stdin closes.
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
    let admin_limit = Amount::new(currency, 1 << 50, 0)?;
    let world = World::builder()
        .currency(currency)
        .storage(storage)
        .bank()
        .configure_bank(move |c| c.admin_debit_limit = admin_limit)
        .exchange()
        // One RSA-2048 denomination: fewer keys to make at start, one coin per order.
        .configure_exchange(move |c| c.denominations.retain(|d| d.value == coin_value))
        .merchant()
        .start()
        .await?;
    let bank = world.bank();
    let credentials = bank
        .exchange()
        .context("the world's bank has no exchange account")?;
    let payto = bank.app().ledger().payto();
    let merchant = world.merchant();
    let target = BenchTarget {
        engine: world.engine().to_string(),
        exchange_url: world.exchange().base_url().clone(),
        gateway_url: bank.app().wire_gateway_url(&credentials.username)?,
        gateway_user: credentials.username.clone(),
        gateway_password: credentials.password.clone(),
        debit_account: payto.account_uri("admin", "Admin")?,
        merchant_url: merchant.base_url().clone(),
        admin_token: merchant.admin_token().to_owned(),
        coin_value,
        database_url: merchant.database_url().to_owned(),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&target)?)?;
        out.flush()?;
    }
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

// ---------------------------------------------------------------------------------------------
// The report.

/// One timed part.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub orders: usize,
    pub failed: usize,
    pub seconds: f64,
    pub orders_per_second: f64,
    /// Latency per request (per whole order in the mixed run).
    pub latency_ms: Percentiles,
    /// CPU of the services' process, in cores and per order.
    pub services_cores: f64,
    pub services_us_per_order: f64,
    /// CPU of the PostgreSQL backends of the services' database (none on SQLite).
    pub database_cores: Option<f64>,
    pub database_us_per_order: Option<f64>,
    /// CPU of this process (the load generator).
    pub load_generator_cores: f64,
    /// CPU of every other process of the machine meanwhile.
    pub other_processes_cores: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

fn percentiles(latencies: &[Duration]) -> Percentiles {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        sorted[(((sorted.len() - 1) as f64) * p).round() as usize].as_secs_f64() * 1e3
    };
    Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: at(1.0),
    }
}

impl PhaseReport {
    fn of(phase: &Phase, with_db: bool) -> Self {
        let secs = phase.elapsed.as_secs_f64().max(1e-9);
        let done = phase.coins;
        let per_order = |cpu: f64| cpu * 1e6 / done.max(1) as f64;
        Self {
            orders: done,
            failed: phase.failed,
            seconds: phase.elapsed.as_secs_f64(),
            orders_per_second: done as f64 / secs,
            latency_ms: percentiles(&phase.latencies),
            services_cores: phase.child_cpu / secs,
            services_us_per_order: per_order(phase.child_cpu),
            database_cores: with_db.then(|| phase.db_cpu / secs),
            database_us_per_order: with_db.then(|| per_order(phase.db_cpu)),
            load_generator_cores: phase.own_cpu / secs,
            other_processes_cores: phase.others_cpu / secs,
        }
    }
}

/// The machine's raw signature rates on one core (what an order's cryptography costs at least).
#[derive(Debug, Clone, Serialize)]
pub struct RawRates {
    pub eddsa_sign_per_second: f64,
    pub eddsa_verify_per_second: f64,
    pub rsa2048_verify_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MixedReport {
    #[serde(flatten)]
    pub cycle: PhaseReport,
    /// Each step's latency inside the whole orders.
    pub create_ms: Percentiles,
    pub claim_ms: Percentiles,
    /// Hashing the contract and signing the coin (the load generator's own work).
    pub wallet_ms: Percentiles,
    pub pay_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub engine: String,
    pub cores: usize,
    pub orders: usize,
    pub clients: usize,
    pub price: Amount,
    pub coin: Amount,
    /// The 1-minute load average of the machine when the report was made.
    pub load_average: Option<f64>,
    pub raw: RawRates,
    pub setup_seconds: f64,
    pub create: PhaseReport,
    pub claim: PhaseReport,
    pub pay: PhaseReport,
    /// N over the three phases' times.
    pub cycle_per_second: f64,
    /// Services' CPU (PostgreSQL backends included) per order over the three phases.
    pub cycle_services_us_per_order: f64,
    pub mixed: MixedReport,
    /// Payments whose 1104 signature verified (both measurements), of how many were made.
    pub payments_verified: usize,
    pub payments: usize,
    /// Claims whose 1101 signature verified and whose contract echoed the nonce, of how many
    /// were answered.
    pub claims_verified: usize,
    pub claims: usize,
    pub services_rss_mib: Option<f64>,
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn print_phase(name: &str, p: &PhaseReport, clients: usize) {
    println!(
        "{name}: {} orders ({clients} in flight), {} failed, in {:.2} s: {:.0} orders/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.orders,
        p.failed,
        p.seconds,
        p.orders_per_second,
        p.latency_ms.p50,
        p.latency_ms.p90,
        p.latency_ms.p99,
        p.latency_ms.max,
    );
    let database = match (p.database_cores, p.database_us_per_order) {
        (Some(cores), Some(us)) => {
            format!(", PostgreSQL backends {cores:.2} cores ({us:.0} µs per order)")
        }
        _ => String::new(),
    };
    println!(
        "  CPU during {name}: services' process {:.2} cores ({:.0} µs per order){database}, load generator {:.2} cores, other processes {:.2} cores",
        p.services_cores, p.services_us_per_order, p.load_generator_cores, p.other_processes_cores,
    );
}

fn print_report(r: &BenchReport) {
    println!(
        "engine: {} (bank, exchange and merchant in one process, this load generator in another); {} cores, load average {}",
        r.engine,
        r.cores,
        r.load_average
            .map_or_else(|| "?".to_owned(), |l| format!("{l:.2}")),
    );
    println!(
        "orders of {} each paid by one RSA-2048 coin of {} (deposit at the exchange included); {} orders per measurement, {} clients; set-up (funding, withdrawing, warm-up) {:.1} s",
        r.price, r.coin, r.orders, r.clients, r.setup_seconds
    );
    println!(
        "raw rates on one core: EdDSA sign {:.0}/s, EdDSA verify {:.0}/s, RSA-2048 verify {:.0}/s",
        r.raw.eddsa_sign_per_second, r.raw.eddsa_verify_per_second, r.raw.rsa2048_verify_per_second
    );
    print_phase("create", &r.create, r.clients);
    print_phase("claim", &r.claim, r.clients);
    print_phase("pay", &r.pay, r.clients);
    println!(
        "full cycle in phases (create + claim + pay): {:.0} orders/s; services' CPU {:.0} µs per order{}",
        r.cycle_per_second,
        r.cycle_services_us_per_order,
        if r.create.database_cores.is_some() {
            " (PostgreSQL backends included)"
        } else {
            ""
        }
    );
    print_phase("mixed cycles", &r.mixed.cycle, r.clients);
    let steps = [
        ("create", &r.mixed.create_ms),
        ("claim", &r.mixed.claim_ms),
        ("wallet (hash, sign)", &r.mixed.wallet_ms),
        ("pay", &r.mixed.pay_ms),
    ];
    for (name, p) in steps {
        println!(
            "  {name}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            p.p50, p.p90, p.p99, p.max
        );
    }
    println!(
        "claims verified (1101): {} of {}; payments verified (1104): {} of {}",
        r.claims_verified, r.claims, r.payments_verified, r.payments
    );
    if let Some(rss) = r.services_rss_mib {
        println!("memory (services' process RSS) at the end: {rss:.1} MiB");
    }
    println!(
        "orders/s (created + claimed + paid, mixed cycles): {:.0}",
        r.mixed.cycle.orders_per_second
    );
}

// ---------------------------------------------------------------------------------------------
// The load generator.

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.orders == 0 {
        bail!("--orders must be at least 1");
    }
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if let Some(url) = &args.postgres
        && !url.starts_with("postgres")
    {
        bail!("--postgres takes a postgres:// URL (got {url:?})");
    }
    since_start();
    say("starting bank, exchange and merchant (RSA-2048 keys)");
    let (world, target): (WorldProcess, BenchTarget) = WorldProcess::spawn(
        &["merchant", "bench-world"],
        args.postgres.as_deref(),
        "cardcash-merchant-bench",
    )?;
    // The pid lets a profiler attach (`perf record -p PID`) when a timed part starts.
    say(&format!(
        "services on {} in process {}",
        target.engine,
        world.pid()
    ));
    let result = drive(&args, &world, &target).await;
    let keep = result.is_err() || !world.log_is_empty();
    world.stop(keep, Duration::from_secs(30));
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.payments_verified != report.payments
        || report.claims_verified != report.claims
        || report.create.failed
            + report.claim.failed
            + report.pay.failed
            + report.mixed.cycle.failed
            > 0
    {
        bail!("some orders failed or a payment signature did not verify (see above)");
    }
    Ok(())
}

fn say(what: &str) {
    eprintln!("[{}] {what}", since_start());
}

/// The clients of the load generator.
struct Clients {
    exchange: ExchangeClient,
    exchange_url: BaseUrl,
    gateway: WireGatewayClient,
    debit_account: PaytoUri,
    /// The merchant's private API with the admin token.
    private: Endpoint,
    wallet: MerchantWalletClient,
    denom: Denom,
    price: Amount,
}

/// An order the wallet can pay: what the claim answered, the nonce checked.
struct Claimed {
    order_id: String,
    contract: DepositContract,
    /// The claim's merchant signature (1101) verified.
    verified: bool,
}

impl Clients {
    async fn create(&self, i: usize) -> anyhow::Result<PostOrderResponse> {
        let body = serde_json::json!({
            "order": {
                "amount": self.price,
                "summary": format!("benchmark order {i}"),
                "fulfillment_url": "https://shop.example/bench",
                "max_fee": Amount::zero(self.price.currency()),
            }
        });
        Ok(self
            .private
            .post(&["private", "orders"])
            .json(&body)
            .json_response()
            .await?)
    }

    async fn claim(
        &self,
        created: &PostOrderResponse,
        nonce: EddsaPublicKey,
    ) -> anyhow::Result<ClaimResponse> {
        Ok(self
            .wallet
            .claim(
                &created.order_id,
                &ClaimRequest {
                    nonce,
                    token: created.token.clone(),
                },
            )
            .await?)
    }

    async fn pay(&self, order_id: &str, request: &PayRequest) -> anyhow::Result<PayResponse> {
        Ok(self.wallet.pay(order_id, request).await?)
    }

    /// The wallet's side of a claim's answer: the nonce is ours, the merchant's signature
    /// (1101) verifies, and the deposit fields.
    fn check_claim(
        order_id: String,
        nonce: &EddsaPublicKey,
        answer: &ClaimResponse,
    ) -> anyhow::Result<Claimed> {
        let contract = DepositContract::from_contract_terms(&answer.contract_terms)?;
        let echoed: Option<EddsaPublicKey> = answer
            .contract_terms
            .get("nonce")
            .and_then(|n| serde_json::from_value(n.clone()).ok());
        let verified = echoed.as_ref() == Some(nonce)
            && cardcash_crypto::verify(
                &contract.merchant_pub,
                &answer.sig,
                &ContractSig {
                    h_contract_terms: contract.h_contract_terms,
                },
            )
            .is_ok();
        Ok(Claimed {
            order_id,
            contract,
            verified,
        })
    }

    fn pay_request(&self, contract: &DepositContract, coin: &Coin) -> PayRequest {
        contract.pay_request(
            &self.exchange_url,
            &self.denom,
            &[coin],
            self.denom.value,
            None,
        )
    }
}

/// A payment's answer with what it must verify against.
struct Paid {
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    sig: EddsaSignature,
}

fn payment_verifies(p: &Paid) -> bool {
    cardcash_crypto::verify(
        &p.merchant_pub,
        &p.sig,
        &PaymentOk {
            h_contract_terms: p.h_contract_terms,
        },
    )
    .is_ok()
}

async fn drive(
    args: &BenchArgs,
    world: &WorldProcess,
    target: &BenchTarget,
) -> anyhow::Result<BenchReport> {
    let child = world.pid();
    let database = pg_database_name(&target.database_url);
    let n = args.orders;
    let http = HttpClient::new()?;
    let exchange = ExchangeClient::with_http(http.clone(), target.exchange_url.clone());
    let keys = exchange.keys().await.context("GET /keys")?;
    let denom = wallet::rsa_denomination(&keys, &target.coin_value)?;
    let price = denom.value.checked_sub(&denom.fee_deposit)?;
    let clients = Arc::new(Clients {
        exchange,
        exchange_url: target.exchange_url.clone(),
        gateway: WireGatewayClient::with_http(
            http.clone(),
            target.gateway_url.clone(),
            Auth::basic(target.gateway_user.clone(), target.gateway_password.clone()),
        ),
        debit_account: target.debit_account.clone(),
        private: Endpoint::new(
            http.clone(),
            "the merchant backend",
            target.merchant_url.clone(),
            Auth::bearer(target.admin_token.clone()),
        ),
        wallet: MerchantWalletClient::with_http(http, target.merchant_url.clone()),
        denom,
        price,
    });
    let setup = Instant::now();

    say("measuring the raw signature rates");
    let raw = raw_rates(args.raw_secs, &clients.denom)?;

    let mut coins = withdraw(&clients, 2 * n + 1, args.clients).await?;
    say("making the claims' nonces");
    let nonces: Vec<EddsaPublicKey> = par_map((0..2 * n + 1).collect(), |_| {
        Ok(EddsaPrivateKey::generate()?.public())
    })?;
    let mut nonces = nonces.into_iter();

    // Warm-up: one whole order (the merchant fetches /keys, connections open).
    say("warming up with one order");
    let warm_coin = coins.pop().context("no coin")?;
    let warm_nonce = nonces.next().context("no nonce")?;
    let (_, warm) = whole_order(&clients, 0, warm_nonce, warm_coin)
        .await
        .context("the warm-up order failed")?;
    if !payment_verifies(&warm) {
        bail!("the warm-up payment's signature (1104) does not verify");
    }
    let setup_seconds = setup.elapsed().as_secs_f64();

    // 1. Phases.
    say(&format!("creating {n} orders (timed)"));
    let c = clients.clone();
    let (created, create) = timed(
        child,
        database.as_deref(),
        (1..=n).map(|i| (i, 1)).collect(),
        args.clients,
        move |i: usize| {
            let c = c.clone();
            async move { c.create(i).await }
        },
    )
    .await?;
    let created: Vec<PostOrderResponse> = created.into_iter().flatten().collect();

    say(&format!("claiming {} orders (timed)", created.len()));
    let c = clients.clone();
    let claims: Vec<((PostOrderResponse, EddsaPublicKey), usize)> = created
        .into_iter()
        .zip(nonces.by_ref())
        .map(|pair| (pair, 1))
        .collect();
    let (claimed, claim) = timed(
        child,
        database.as_deref(),
        claims,
        args.clients,
        move |(created, nonce): (PostOrderResponse, EddsaPublicKey)| {
            let c = c.clone();
            async move {
                let answer = c.claim(&created, nonce).await?;
                Ok((created.order_id, nonce, answer))
            }
        },
    )
    .await?;

    say("checking the claims, signing the payments");
    let phase_coins: Vec<Coin> = coins.drain(..n).collect();
    let claimed: Vec<(String, EddsaPublicKey, ClaimResponse)> =
        claimed.into_iter().flatten().collect();
    let c = &clients;
    let pays: Vec<(Claimed, PayRequest)> = par_map(
        claimed.into_iter().zip(phase_coins).collect(),
        |((order_id, nonce, answer), coin)| {
            let checked = Clients::check_claim(order_id, &nonce, &answer)?;
            let request = c.pay_request(&checked.contract, &coin);
            Ok((checked, request))
        },
    )?;
    let mut claims_verified = pays.iter().filter(|(c, _)| c.verified).count();
    let mut claims = pays.len();

    say(&format!("paying {} orders (timed)", pays.len()));
    let c = clients.clone();
    let (paid, pay) = timed(
        child,
        database.as_deref(),
        pays.into_iter().map(|p| (p, 1)).collect(),
        args.clients,
        move |(claimed, request): (Claimed, PayRequest)| {
            let c = c.clone();
            async move {
                let answer = c.pay(&claimed.order_id, &request).await?;
                Ok(Paid {
                    merchant_pub: claimed.contract.merchant_pub,
                    h_contract_terms: claimed.contract.h_contract_terms,
                    sig: answer.sig,
                })
            }
        },
    )
    .await?;
    let mut paid: Vec<Paid> = paid.into_iter().flatten().collect();

    // 2. Mixed: whole orders, `clients` at a time.
    say(&format!(
        "{n} whole orders, {} clients (timed)",
        args.clients
    ));
    let c = clients.clone();
    let (mixed, cycle) = timed(
        child,
        database.as_deref(),
        coins
            .into_iter()
            .zip(nonces)
            .enumerate()
            .map(|(i, pair)| ((n + 1 + i, pair), 1))
            .collect(),
        args.clients,
        move |(i, (coin, nonce)): (usize, (Coin, EddsaPublicKey))| {
            let c = c.clone();
            async move { whole_order(&c, i, nonce, coin).await }
        },
    )
    .await?;
    let rss = rss_kib(child);
    let mut steps: [Vec<Duration>; 4] = Default::default();
    for (s, p) in mixed.into_iter().flatten() {
        for (k, d) in s.iter().enumerate() {
            steps[k].push(*d);
        }
        claims_verified += usize::from(s.len() == 4);
        claims += 1;
        paid.push(p);
    }

    say("verifying the payments' signatures");
    let payments = paid.len();
    let payments_verified = par_map(paid, |p| Ok(payment_verifies(&p)))?
        .into_iter()
        .filter(|ok| *ok)
        .count();

    let with_db = database.is_some();
    let (create, claim, pay, cycle) = (
        PhaseReport::of(&create, with_db),
        PhaseReport::of(&claim, with_db),
        PhaseReport::of(&pay, with_db),
        PhaseReport::of(&cycle, with_db),
    );
    let phase_secs = create.seconds + claim.seconds + pay.seconds;
    let services_us = [&create, &claim, &pay]
        .iter()
        .map(|p| p.services_us_per_order + p.database_us_per_order.unwrap_or(0.0))
        .sum();
    Ok(BenchReport {
        engine: target.engine.clone(),
        cores: cores(),
        orders: n,
        clients: args.clients,
        price,
        coin: clients.denom.value,
        load_average: load_average(),
        raw,
        setup_seconds,
        cycle_per_second: pay.orders as f64 / phase_secs.max(1e-9),
        cycle_services_us_per_order: services_us,
        create,
        claim,
        pay,
        mixed: MixedReport {
            cycle,
            create_ms: percentiles(&steps[0]),
            claim_ms: percentiles(&steps[1]),
            wallet_ms: percentiles(&steps[2]),
            pay_ms: percentiles(&steps[3]),
        },
        payments_verified,
        payments,
        claims_verified,
        claims,
        services_rss_mib: rss.map(|k| k as f64 / 1024.0),
    })
}

/// One whole order: create, claim (the claim's signature checked), hash the contract and sign
/// the coin, pay. The latencies of the four steps (three without a verified claim) and the
/// payment to verify.
async fn whole_order(
    c: &Clients,
    i: usize,
    nonce: EddsaPublicKey,
    coin: Coin,
) -> anyhow::Result<(Vec<Duration>, Paid)> {
    let t = Instant::now();
    let created = c.create(i).await.context("creating the order")?;
    let create = t.elapsed();
    let t = Instant::now();
    let answer = c
        .claim(&created, nonce)
        .await
        .context("claiming the order")?;
    let claim = t.elapsed();
    let t = Instant::now();
    let checked = Clients::check_claim(created.order_id, &nonce, &answer)?;
    let request = c.pay_request(&checked.contract, &coin);
    let wallet = t.elapsed();
    let t = Instant::now();
    let answer = c
        .pay(&checked.order_id, &request)
        .await
        .context("paying the order")?;
    let pay = t.elapsed();
    let mut steps = vec![create, claim, wallet, pay];
    if !checked.verified {
        // Counted as unverified by the caller.
        steps.pop();
    }
    Ok((
        steps,
        Paid {
            merchant_pub: checked.contract.merchant_pub,
            h_contract_terms: checked.contract.h_contract_terms,
            sig: answer.sig,
        },
    ))
}

/// Funds reserves and withdraws `count` coins of the benchmark's denomination, `concurrency`
/// requests at a time; every coin unblinded and verified.
async fn withdraw(c: &Clients, count: usize, concurrency: usize) -> anyhow::Result<Vec<Coin>> {
    let requests = count.div_ceil(WITHDRAW_BATCH);
    say(&format!(
        "funding {requests} reserves for {count} coins (add-incoming, wirewatch)"
    ));
    let mut sizes = Vec::with_capacity(requests);
    let mut left = count;
    while left > 0 {
        let size = left.min(WITHDRAW_BATCH);
        sizes.push(size);
        left -= size;
    }
    let reserves = par_map(sizes.clone(), |size| {
        Ok((EddsaPrivateKey::generate()?, size))
    })?;
    let one = c.denom.with_fee()?;
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (reserve, size) in &reserves {
        let permit = limit.clone().acquire_owned().await?;
        let mut amount = Amount::zero(one.currency());
        for _ in 0..*size {
            amount = amount.checked_add(&one)?;
        }
        let gateway = c.gateway.clone();
        let request = AddIncomingRequest {
            amount,
            reserve_pub: reserve.public(),
            debit_account: c.debit_account.clone(),
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
    for (reserve, _) in &reserves {
        let permit = limit.clone().acquire_owned().await?;
        let exchange = c.exchange.clone();
        let reserve_pub = reserve.public();
        tasks.spawn(async move {
            let result = exchange.reserve(&reserve_pub, FUNDING_WAIT).await;
            drop(permit);
            result
                .map(drop)
                .with_context(|| format!("wirewatch did not import {reserve_pub}"))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }

    say(&format!("preparing {count} planchets"));
    let denom = &c.denom;
    let prepared: Vec<(EddsaPublicKey, Vec<Planchet>)> = par_map(reserves, |(reserve, size)| {
        let planchets = (0..size)
            .map(|_| wallet::planchet(&reserve, denom))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((reserve.public(), planchets))
    })?;
    say(&format!("withdrawing {count} coins"));
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (reserve_pub, planchets)) in prepared.iter().enumerate() {
        let permit = limit.clone().acquire_owned().await?;
        let exchange = c.exchange.clone();
        let reserve_pub = *reserve_pub;
        let request = BatchWithdrawRequest {
            planchets: planchets.iter().map(|p| p.request.clone()).collect(),
        };
        tasks.spawn(async move {
            let result: Result<BatchWithdrawResponse, _> =
                exchange.batch_withdraw(&reserve_pub, &request).await;
            drop(permit);
            result
                .map(|r| (i, r))
                .context("the exchange refused a withdrawal")
        });
    }
    let mut answers: Vec<Option<BatchWithdrawResponse>> =
        (0..prepared.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, answer) = joined??;
        answers[i] = Some(answer);
    }
    say("unblinding and checking the coins");
    let coins = par_map(
        prepared.into_iter().zip(answers).collect(),
        |((_, planchets), answer)| {
            let answer = answer.context("a withdrawal without an answer")?;
            if answer.ev_sigs.len() != planchets.len() {
                bail!(
                    "{} signatures for {} planchets",
                    answer.ev_sigs.len(),
                    planchets.len()
                );
            }
            planchets
                .into_iter()
                .zip(&answer.ev_sigs)
                .map(|(p, s)| p.unblind(denom, &s.ev_sig))
                .collect::<anyhow::Result<Vec<_>>>()
        },
    )?;
    Ok(coins.into_iter().flatten().collect())
}

/// The machine's raw rates on one core: EdDSA signatures and verifications, RSA-2048
/// verifications of a coin's denomination signature.
fn raw_rates(secs: f64, denom: &Denom) -> anyhow::Result<RawRates> {
    let run_for = Duration::from_secs_f64(secs.max(0.05));
    let rate = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut done = 0u64;
        loop {
            for _ in 0..16 {
                f()?;
            }
            done += 16;
            if started.elapsed() >= run_for {
                return Ok(done as f64 / started.elapsed().as_secs_f64());
            }
        }
    };
    let key = EddsaPrivateKey::generate()?;
    let message = PaymentOk {
        h_contract_terms: HashCode::from_bytes(cardcash_crypto::random_bytes()?),
    };
    let sig = key.sign(&message);
    let public = key.public();
    // An RSA-2048 signature to verify: our own key of the same size (the denomination's
    // private key is the exchange's).
    let rsa_key = rsa::RsaPrivateKey::generate(u32::try_from(denom.key.bits())?)?;
    let msg = [7u8; 64];
    let bks = rsa::BlindingKeySecret::generate()?;
    let blinded = rsa::blind(rsa_key.public(), &msg, &bks)?;
    let rsa_sig = rsa::unblind(
        rsa_key.public(),
        &rsa::sign_blinded(&rsa_key, &blinded)?,
        &bks,
    )?;
    tokio::task::block_in_place(|| {
        Ok(RawRates {
            eddsa_sign_per_second: rate(&mut || {
                std::hint::black_box(key.sign(&message));
                Ok(())
            })?,
            eddsa_verify_per_second: rate(&mut || {
                Ok(cardcash_crypto::verify(&public, &sig, &message)?)
            })?,
            rsa2048_verify_per_second: rate(&mut || {
                Ok(rsa::verify(rsa_key.public(), &msg, &rsa_sig)?)
            })?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_latencies_in_milliseconds() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&latencies);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (51.0, 90.0, 99.0, 100.0));
        assert_eq!(percentiles(&[]).max, 0.0);
    }
}
