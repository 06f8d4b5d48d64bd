//! Crash tests (issue 7): the exchange process is killed with SIGKILL at a random point of
//! (a) a burst of withdrawals, (b) a burst of deposits, (c) wirewatch importing many transfers,
//! (d) the aggregator and transfer worker paying many due deposits; then restarted. Afterwards:
//! `cardcash exchange audit` finds no difference; every request replayed gets the answer given
//! before the kill, if any (the same blind signatures, the same deposit timestamp); every
//! incoming transfer is credited exactly once (Σ credited = Σ sent); every deposit is paid to
//! its merchant exactly once (the bank's balances and outgoing history).
//!
//! The bank runs in this process (a `cardcash_world` world); the exchange is a child process
//! with the bank's Wire Gateway as its account (credit and debit). Fees: 0.01 per coin for
//! withdrawal and deposit, wire fee 0, so a merchant's balance is exactly 0.99 per coin. The kill
//! point is drawn at random and printed (`--nocapture` shows it) together with how many
//! requests were in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cardcash_api::exchange::{BatchDepositRequest, BatchDepositResponse, DepositLongPollTarget};
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_client::{ClientError, DepositQuery, DepositStatus, ErrorKind, ExchangeClient};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::TrackTransaction;
use cardcash_util::{Amount, EddsaPublicKey, PaytoUri, ShortHashCode, Timestamp};
use cardcash_world::{BankAccount, Engine, Storage, World};

use super::wallet::{self, Coin, Contract, Denom, Planchet};
use super::{ExchangeProcess, coin_section, run, run_ok, text, wait_for, wait_until};

fn kudos(text: &str) -> Amount {
    format!("KUDOS:{text}").parse().expect("an amount")
}

/// A number in `lo..=hi`, drawn at random.
fn random_in(lo: usize, hi: usize) -> usize {
    let bytes = cardcash_crypto::random_bytes::<8>().expect("randomness");
    lo + (u64::from_le_bytes(bytes) % (hi - lo + 1) as u64) as usize
}

/// The bank (in process) and the exchange (a child process) with its offline key.
struct CrashWorld {
    _dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    world: World,
    exchange: ExchangeProcess,
    /// A client of the running exchange (one connection pool: building one costs ~30 ms).
    client: ExchangeClient,
    merchants: Vec<(String, PaytoUri)>,
    admin_payto: PaytoUri,
    denom: Option<Denom>,
}

impl CrashWorld {
    /// A bank with `merchants` merchant accounts and a signed, running exchange, both on
    /// `engine` (PostgreSQL: one fresh database on `CARDCASH_TEST_PG_URL`'s server, `None`
    /// and a visible skip without it).
    async fn start(merchants: usize, engine: Engine) -> Option<Self> {
        let storage = match engine {
            Engine::Sqlite => Storage::TempSqlite,
            Engine::Postgres => match std::env::var("CARDCASH_TEST_PG_URL") {
                Ok(url) if !url.is_empty() => Storage::Postgres(url),
                _ => {
                    eprintln!("SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL is not set");
                    return None;
                }
            },
        };
        let mut builder = World::builder()
            .currency("KUDOS".parse().unwrap())
            .storage(storage)
            .bank();
        for i in 0..merchants {
            builder = builder.bank_account(BankAccount::new(
                format!("merchant-{i}"),
                format!("Merchant {i}"),
            ));
        }
        let world = builder.start().await.expect("the bank starts");
        let bank = world.bank();
        let payto = |name: &str, legal: &str| {
            bank.app()
                .ledger()
                .payto()
                .account_uri(name, legal)
                .expect("payto")
        };
        let credentials = bank
            .exchange()
            .expect("the exchange's bank account")
            .clone();
        let gateway = bank
            .app()
            .wire_gateway_url(&credentials.username)
            .expect("the Wire Gateway URL");
        let exchange_payto = payto(&credentials.username, "Exchange");
        let merchants = (0..merchants)
            .map(|i| {
                let name = format!("merchant-{i}");
                let uri = payto(&name, &format!("Merchant {i}"));
                (name, uri)
            })
            .collect();
        let admin_payto = payto("admin", "Admin");

        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let master = d.join("master.priv");
        let nowhere = d.join("none.conf");
        let master_pub = run_ok(
            &nowhere,
            &[
                "exchange",
                "offline",
                "setup",
                "--master-key",
                master.to_str().unwrap(),
            ],
        )
        .trim()
        .to_owned();
        let config = d.join("exchange.conf");
        // On PostgreSQL the exchange keeps its schema in the bank's fresh database.
        let database = match engine {
            Engine::Sqlite => format!("sqlite:{}", d.join("exchange.db").display()),
            Engine::Postgres => bank.database_url().to_owned(),
        };
        let mut conf = format!(
            "[exchange]\nCURRENCY = KUDOS\nBIND = 127.0.0.1:0\nDATABASE = {database}\n\
             KEY_DIR = {keys}\nMASTER_PUBLIC_KEY = {master_pub}\nLOOKAHEAD_SIGN = 1 h\n\
             AGGREGATOR_IDLE_SLEEP_INTERVAL = 500 ms\n\n\
             [exchange-offline]\nMASTER_PRIV_FILE = {master}\n\n",
            keys = d.join("keys").display(),
            master = master.display(),
        );
        conf.push_str(&coin_section("coin_kudos_1", "1", "0.01"));
        conf.push_str(&format!(
            "[exchange-account-1]\nPAYTO_URI = {exchange_payto}\nENABLE_DEBIT = YES\n\
             ENABLE_CREDIT = YES\n\n[exchange-accountcredentials-1]\nWIRE_GATEWAY_URL = {gateway}\n\
             WIRE_GATEWAY_AUTH_METHOD = basic\nUSERNAME = {}\nPASSWORD = {}\n",
            credentials.username, credentials.password
        ));
        std::fs::write(&config, conf).unwrap();
        let log = d.join("exchange.log");
        let exchange = ExchangeProcess::start(&config, &log);

        // The offline routine, through the CLI: keys, the account, zero wire fees, global fees.
        let url = exchange.url().to_string();
        let now = Timestamp::now().as_secs();
        let start = format!("@{}", now - 3600);
        let end = format!("@{}", now + 7 * 86_400);
        let exchange_payto = exchange_payto.to_string();
        for args in [
            vec!["sync"],
            vec!["enable-account", &exchange_payto, "--start", &start],
            vec![
                "wire-fee",
                "--start",
                &start,
                "--end",
                &end,
                "x-taler-bank",
                "KUDOS:0",
                "KUDOS:0",
            ],
            vec![
                "global-fee",
                "--start",
                &start,
                "--end",
                &end,
                "KUDOS:0",
                "KUDOS:0",
                "KUDOS:0",
            ],
        ] {
            let mut full = vec!["exchange", "offline"];
            full.extend(args.iter().copied());
            full.extend(["--exchange", &url]);
            if args[0] != "sync" {
                full.push("--upload");
            }
            run_ok(&config, &full);
        }
        let client = exchange.client();
        let mut cw = Self {
            _dir: dir,
            config,
            log,
            world,
            exchange,
            client,
            merchants,
            admin_payto,
            denom: None,
        };
        let client = cw.client();
        let denom = wait_for("/keys is complete", Duration::from_secs(20), || async {
            client
                .keys()
                .await
                .ok()
                .filter(|k| !k.accounts.is_empty() && !k.wire_fees.is_empty())
                .map(|k| wallet::denomination(&k, &kudos("1")))
        })
        .await;
        cw.denom = Some(denom);
        Some(cw)
    }

    fn client(&self) -> ExchangeClient {
        self.client.clone()
    }

    fn denom(&self) -> &Denom {
        self.denom.as_ref().expect("keys loaded")
    }

    /// SIGKILL, then start again on the same configuration and database.
    fn restart(&mut self) {
        self.exchange.kill();
        self.exchange = ExchangeProcess::start(&self.config, &self.log);
        self.client = self.exchange.client();
    }

    /// Pays `amount` into a fresh reserve through the bank (not waiting for the exchange).
    async fn send(&self, amount: Amount, reserve_pub: EddsaPublicKey) {
        self.world
            .bank()
            .exchange_wire_gateway()
            .add_incoming(&AddIncomingRequest {
                amount,
                reserve_pub,
                debit_account: self.admin_payto.clone(),
            })
            .await
            .expect("the bank takes the transfer");
    }

    /// Waits until the exchange shows `reserve` with `balance`.
    async fn expect_reserve(&self, reserve: &EddsaPublicKey, balance: Amount) {
        let client = self.client();
        wait_until(
            &format!("reserve {reserve} holds {balance}"),
            Duration::from_secs(30),
            || async {
                match client.reserve(reserve, Duration::from_secs(5)).await {
                    Ok(summary) => {
                        assert!(
                            summary.balance <= balance,
                            "reserve {reserve} holds {} > {balance}: credited twice?",
                            summary.balance
                        );
                        summary.balance == balance
                    }
                    Err(_) => false,
                }
            },
        )
        .await;
    }

    /// `n` coins (a multiple of 4) withdrawn from one fresh reserve.
    async fn coins(&self, n: usize) -> Vec<Coin> {
        let reserve = EddsaPrivateKey::generate().unwrap();
        let amount = kudos(&format!("{}.{:02}", n + n / 100, n % 100));
        self.send(amount, reserve.public()).await;
        self.expect_reserve(&reserve.public(), amount).await;
        let client = self.client();
        let mut coins = Vec::with_capacity(n);
        for _ in 0..n / 4 {
            let planchets: Vec<Planchet> = (0..4)
                .map(|_| Planchet::new(&reserve, self.denom()))
                .collect();
            let answer = client
                .batch_withdraw(&reserve.public(), &wallet::batch(&planchets))
                .await
                .expect("withdrawal");
            coins.extend(
                planchets
                    .iter()
                    .zip(&answer.ev_sigs)
                    .map(|(p, s)| p.unblind(&s.ev_sig)),
            );
        }
        coins
    }

    /// `cardcash exchange audit` on the live database: no difference. Its output.
    fn audit(&self) -> String {
        let out = run(&self.config, &["exchange", "audit"]);
        let report = text(&out.stdout);
        assert!(
            out.status.success() && report.contains("all equations hold"),
            "the audit found differences:\n{report}{}\nexchange log:\n{}",
            text(&out.stderr),
            self.exchange.log()
        );
        report
    }

    /// The merchants' balances at the bank, by account name.
    async fn merchant_balances(&self) -> BTreeMap<String, Amount> {
        let accounts = self
            .world
            .bank()
            .admin()
            .accounts()
            .await
            .expect("the bank lists its accounts");
        accounts
            .accounts
            .into_iter()
            .filter(|a| a.username.starts_with("merchant-"))
            .map(|a| (a.username, a.balance.amount))
            .collect()
    }
}

/// One test per engine, `name::sqlite` and `name::postgres` (skipped visibly without
/// `CARDCASH_TEST_PG_URL`), as the test kit's `engine_test!` does.
macro_rules! crash_test {
    ($(#[$meta:meta])* async fn $name:ident($engine:ident: Engine) $body:block) => {
        $(#[$meta])*
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                scenario(Engine::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                scenario(Engine::Postgres).await;
            }

            async fn scenario($engine: Engine) $body
        }
    };
}

/// What happened to one request of a burst.
enum Outcome<T> {
    /// The exchange answered (before it was killed).
    Answered(T),
    /// No answer: the request was in flight when the exchange died, or sent after.
    Lost,
}

/// Runs `jobs` with `concurrency` at a time and kills the exchange right after the
/// `kill_after`-th answer. Any refusal is a test failure; a lost connection is an in-flight
/// request.
async fn burst<T, Fut>(
    exchange: &mut ExchangeProcess,
    jobs: Vec<Fut>,
    concurrency: usize,
    kill_after: usize,
) -> Vec<Outcome<T>>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let n = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            (i, job.await)
        });
    }
    let mut outcomes: Vec<Option<Outcome<T>>> = (0..n).map(|_| None).collect();
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("a request task");
        outcomes[i] = Some(match result {
            Ok(answer) => {
                answered += 1;
                if answered == kill_after {
                    exchange.kill();
                }
                Outcome::Answered(answer)
            }
            Err(e) => match e.kind() {
                ErrorKind::Unreachable(_) | ErrorKind::Timeout(_) | ErrorKind::Malformed { .. } => {
                    assert!(
                        answered >= kill_after,
                        "request {i} failed before the kill: {e}\n{}",
                        exchange.log()
                    );
                    Outcome::Lost
                }
                _ => panic!("request {i} was refused: {e}\n{}", exchange.log()),
            },
        });
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every job ran"))
        .collect()
}

crash_test!(
    /// (a) Withdrawals: 32 batches of 4 planchets from 4 reserves, 8 at a time, killed after a
    /// random number of answers. After the restart every batch is replayed: an answered one gets
    /// the very same blind signatures, a lost one is signed now (and again the same on a second
    /// replay); every signature unblinds to a valid coin; each reserve is charged exactly once per
    /// batch.
    async fn exchange_crash_during_withdrawals(engine: Engine) {
        const RESERVES: usize = 4;
        const BATCHES: usize = 32;
        let Some(mut cw) = CrashWorld::start(0, engine).await else {
            return;
        };
        let reserves: Vec<EddsaPrivateKey> = (0..RESERVES)
            .map(|_| EddsaPrivateKey::generate().unwrap())
            .collect();
        for r in &reserves {
            cw.send(kudos("40"), r.public()).await;
        }
        for r in &reserves {
            cw.expect_reserve(&r.public(), kudos("40")).await;
        }
        let batches: Vec<(EddsaPublicKey, Vec<Planchet>)> = (0..BATCHES)
            .map(|i| {
                let reserve = &reserves[i % RESERVES];
                (
                    reserve.public(),
                    (0..4).map(|_| Planchet::new(reserve, cw.denom())).collect(),
                )
            })
            .collect();
        let client = cw.client();
        let jobs = batches
            .iter()
            .map(|(reserve, planchets)| {
                let client = client.clone();
                let reserve = *reserve;
                let request = wallet::batch(planchets);
                async move { client.batch_withdraw(&reserve, &request).await }
            })
            .collect();
        let kill_after = random_in(4, BATCHES * 3 / 4);
        let outcomes = burst(&mut cw.exchange, jobs, 8, kill_after).await;

        cw.restart();
        let client = cw.client();
        let mut lost = 0;
        for (i, ((reserve, planchets), outcome)) in batches.iter().zip(&outcomes).enumerate() {
            let request = wallet::batch(planchets);
            let replay = client
                .batch_withdraw(reserve, &request)
                .await
                .unwrap_or_else(|e| panic!("replay of batch {i}: {e}\n{}", cw.exchange.log()));
            match outcome {
                Outcome::Answered(first) => assert_eq!(
                    &replay, first,
                    "batch {i} got other signatures after the restart"
                ),
                Outcome::Lost => {
                    lost += 1;
                    let again = client.batch_withdraw(reserve, &request).await.unwrap();
                    assert_eq!(again, replay, "batch {i}: a second replay differs");
                }
            }
            for (p, s) in planchets.iter().zip(&replay.ev_sigs) {
                p.unblind(&s.ev_sig);
            }
        }
        eprintln!(
            "withdrawals ({engine:?}): killed after {kill_after} of {BATCHES} answers, {lost} batches without answer"
        );
        // 8 batches of 4 coins at 1.01 each: 32.32 from each reserve, once.
        for r in &reserves {
            cw.expect_reserve(&r.public(), kudos("7.68")).await;
        }
        cw.audit();
    }
);

/// The deposits of a test: which merchant, the contract, the request.
struct Deposit {
    merchant: usize,
    contract: Contract,
    request: BatchDepositRequest,
}

fn deposits(cw: &CrashWorld, coins: &[Coin], wire_deadline: Timestamp) -> Vec<Deposit> {
    coins
        .iter()
        .enumerate()
        .map(|(i, coin)| {
            let merchant = i % cw.merchants.len();
            let contract = Contract::new(cw.merchants[merchant].1.clone(), wire_deadline);
            let request = contract.deposit(&[coin]);
            Deposit {
                merchant,
                contract,
                request,
            }
        })
        .collect()
}

/// Every deposit is paid to its merchant exactly once: the balances reach 0.99 per coin, every
/// deposit is tracked as wired, the bank's outgoing history of the exchange holds each of those
/// wire transfers once and nothing else.
async fn expect_paid_once(cw: &CrashWorld, deposits: &[Deposit]) {
    let mut expected: BTreeMap<String, Amount> = cw
        .merchants
        .iter()
        .map(|(name, _)| (name.clone(), kudos("0")))
        .collect();
    for d in deposits {
        let slot = expected.get_mut(&cw.merchants[d.merchant].0).unwrap();
        *slot = slot.checked_add(&kudos("0.99")).unwrap();
    }
    wait_until(
        "every merchant is paid",
        Duration::from_secs(30),
        || async {
            let balances = cw.merchant_balances().await;
            for (name, amount) in &balances {
                assert!(
                    amount <= &expected[name],
                    "{name} received {amount}, more than the {} deposited: paid twice",
                    expected[name]
                );
            }
            balances == expected
        },
    )
    .await;

    let client = cw.client();
    let mut wtids = BTreeSet::new();
    for d in deposits {
        let coin_pub = d.request.coins[0].coin_pub;
        let c = &d.contract;
        let query = DepositQuery {
            h_wire: c.h_wire(),
            merchant_pub: c.merchant.public(),
            h_contract_terms: c.h_contract_terms,
            coin_pub,
            merchant_sig: c.merchant.sign(&TrackTransaction {
                h_contract_terms: c.h_contract_terms,
                h_wire: c.h_wire(),
                coin_pub,
            }),
        };
        match client
            .deposit(&query, Duration::ZERO, DepositLongPollTarget::Ok)
            .await
            .expect("tracking")
        {
            DepositStatus::Wired(w) => {
                assert_eq!(w.coin_contribution, kudos("0.99"));
                wtids.insert(w.wtid);
            }
            DepositStatus::Pending(p) => panic!("a paid deposit is still pending: {p:?}"),
        }
    }
    let outgoing = cw
        .world
        .bank()
        .exchange_wire_gateway()
        .outgoing_history(&cardcash_client::HistoryRequest::after(None, 1000, None))
        .await
        .expect("the exchange's outgoing history");
    let mut seen: BTreeSet<ShortHashCode> = BTreeSet::new();
    let mut total = kudos("0");
    for row in &outgoing {
        assert!(
            seen.insert(row.wtid),
            "wire transfer {} executed twice",
            row.wtid
        );
        total = total.checked_add(&row.amount).unwrap();
    }
    assert_eq!(
        seen, wtids,
        "the bank executed exactly the exchange's transfers"
    );
    let owed = expected
        .values()
        .try_fold(kudos("0"), |a, b| a.checked_add(b))
        .unwrap();
    assert_eq!(total, owed);
}

/// Replays every deposit after the restart: an answered one gets the same exchange timestamp
/// (and the whole answer); a lost one is accepted now and the same again. Returns the number
/// of lost ones.
async fn replay_deposits(
    cw: &CrashWorld,
    deposits: &[Deposit],
    outcomes: &[Outcome<BatchDepositResponse>],
) -> usize {
    let client = cw.client();
    let mut lost = 0;
    for (i, (d, outcome)) in deposits.iter().zip(outcomes).enumerate() {
        let replay = client
            .batch_deposit(&d.request)
            .await
            .unwrap_or_else(|e| panic!("replay of deposit {i}: {e}\n{}", cw.exchange.log()));
        match outcome {
            Outcome::Answered(first) => {
                assert_eq!(
                    replay.exchange_timestamp, first.exchange_timestamp,
                    "deposit {i}: another timestamp after the restart"
                );
                assert_eq!(
                    &replay, first,
                    "deposit {i}: another answer after the restart"
                );
            }
            Outcome::Lost => {
                lost += 1;
                let again = client.batch_deposit(&d.request).await.unwrap();
                assert_eq!(again, replay, "deposit {i}: a second replay differs");
            }
        }
    }
    lost
}

crash_test!(
    /// (b) Deposits: 40 coins deposited one per contract for 4 merchants, 8 at a time, due for
    /// wiring a second later (so the aggregator pays while the burst runs), killed after a random
    /// number of answers. Replays get the first answers; each merchant is paid exactly once per
    /// coin.
    async fn exchange_crash_during_deposits(engine: Engine) {
        let Some(mut cw) = CrashWorld::start(4, engine).await else {
            return;
        };
        let coins = cw.coins(40).await;
        let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs() + 1);
        let deposits = deposits(&cw, &coins, wire_deadline);
        let client = cw.client();
        let jobs = deposits
            .iter()
            .map(|d| {
                let client = client.clone();
                let request = d.request.clone();
                async move { client.batch_deposit(&request).await }
            })
            .collect();
        let kill_after = random_in(4, 30);
        let outcomes = burst(&mut cw.exchange, jobs, 8, kill_after).await;
        cw.restart();
        let lost = replay_deposits(&cw, &deposits, &outcomes).await;
        eprintln!(
            "deposits ({engine:?}): killed after {kill_after} of 40 answers, {lost} without answer"
        );
        expect_paid_once(&cw, &deposits).await;
        cw.audit();
    }
);

crash_test!(
    /// (c) wirewatch: 200 transfers of distinct amounts to 200 reserves, sent one by one while the
    /// exchange imports them; the exchange is killed as soon as a randomly chosen one shows, and
    /// the rest are sent while it is down. After the restart every reserve holds exactly what was
    /// sent to it, and Σ credited (the audit's reserves in) = Σ sent = what the bank holds for the
    /// exchange.
    async fn exchange_crash_during_wirewatch(engine: Engine) {
        const TRANSFERS: usize = 200;
        let Some(mut cw) = CrashWorld::start(0, engine).await else {
            return;
        };
        let reserves: Vec<(EddsaPublicKey, Amount)> = (0..TRANSFERS)
            .map(|i| {
                (
                    EddsaPrivateKey::generate().unwrap().public(),
                    kudos(&format!("{}.{:02}", 1 + i / 100, i % 100)),
                )
            })
            .collect();
        let gateway = cw.world.bank().exchange_wire_gateway();
        let admin = cw.admin_payto.clone();
        let to_send = reserves.clone();
        let sender = tokio::spawn(async move {
            for (reserve_pub, amount) in to_send {
                gateway
                    .add_incoming(&AddIncomingRequest {
                        amount,
                        reserve_pub,
                        debit_account: admin.clone(),
                    })
                    .await
                    .expect("the bank takes the transfer");
            }
        });
        let kill_at = random_in(TRANSFERS / 10, TRANSFERS / 2);
        cw.expect_reserve(&reserves[kill_at].0, reserves[kill_at].1)
            .await;
        cw.exchange.kill();
        cw.restart();
        sender.await.expect("every transfer sent");
        let mut sent = kudos("0");
        for (reserve, amount) in &reserves {
            cw.expect_reserve(reserve, *amount).await;
            sent = sent.checked_add(amount).unwrap();
        }
        eprintln!(
            "wirewatch ({engine:?}): killed once transfer {kill_at} of {TRANSFERS} was credited"
        );
        let report = cw.audit();
        let credited = report
            .lines()
            .find_map(|l| l.strip_prefix("reserves in:"))
            .expect("the audit prints the reserves' credits")
            .trim()
            .to_owned();
        assert_eq!(credited, sent.to_string(), "Σ credited = Σ sent");
        let accounts = cw.world.bank().admin().accounts().await.unwrap();
        let at_bank = accounts
            .accounts
            .iter()
            .find(|a| a.is_taler_exchange)
            .expect("the exchange's account")
            .balance
            .amount;
        assert_eq!(
            at_bank, sent,
            "the bank holds what was sent for the exchange"
        );
    }
);

crash_test!(
    /// (d) Aggregation: 48 coins deposited for 24 merchants, all due two seconds later; the
    /// exchange is killed once a random number of merchants has been paid, i.e. while the
    /// aggregator and the transfer worker work through the due deposits. After the restart every
    /// merchant is paid exactly once per coin.
    async fn exchange_crash_during_aggregation(engine: Engine) {
        const MERCHANTS: usize = 24;
        let Some(mut cw) = CrashWorld::start(MERCHANTS, engine).await else {
            return;
        };
        let coins = cw.coins(48).await;
        let wire_deadline = Timestamp::from_secs(Timestamp::now().as_secs() + 2);
        let deposits = deposits(&cw, &coins, wire_deadline);
        let client = cw.client();
        let jobs = deposits
            .iter()
            .map(|d| {
                let client = client.clone();
                let request = d.request.clone();
                async move { client.batch_deposit(&request).await }
            })
            .collect();
        // No kill during the deposits (kill_after beyond the last answer).
        let outcomes = burst(&mut cw.exchange, jobs, 8, usize::MAX).await;
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Answered(_))));
        let kill_when_paid = random_in(1, MERCHANTS / 2);
        let paid_at_kill = wait_for(
            "some merchants are paid",
            Duration::from_secs(30),
            || async {
                let paid = cw
                    .merchant_balances()
                    .await
                    .values()
                    .filter(|a| !a.is_zero())
                    .count();
                (paid >= kill_when_paid).then_some(paid)
            },
        )
        .await;
        cw.exchange.kill();
        eprintln!(
            "aggregation ({engine:?}): killed when {paid_at_kill} of {MERCHANTS} merchants were paid (aimed at {kill_when_paid})"
        );
        cw.restart();
        replay_deposits(&cw, &deposits, &outcomes).await;
        expect_paid_once(&cw, &deposits).await;
        cw.audit();
    }
);
