//! Test environment: a real C2EC started by the test kit's world on a fresh database of one
//! engine (tests are `engine_test!`s: `name::sqlite`, `name::postgres`), with the in-memory
//! card provider (or the world's card processor, `Env::real`), and HTTP clients playing
//! terminal, wallet and exchange.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use cardcash_c2ec::provider::memory::{Card, MemoryProvider as TestProcessor};
use cardcash_c2ec::{C2ecConfig, ProviderConfig, WireGatewayAuth};
use cardcash_store::rusqlite::ToSql;
use cardcash_store::rusqlite::types::ToSqlOutput;
use cardcash_store::{Database, StoreError};
pub use cardcash_testkit::{Engine, WAIT, engine_test, try_wait_for, wait_for, wait_until};
use cardcash_util::{Amount, BaseUrl, Currency};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const EXCHANGE_ACCOUNT: &str = "payto://x-taler-bank/c2ec.test/exchange?receiver-name=Exchange";
pub const WIRE_USER: &str = "exchange";
pub const WIRE_PASSWORD: &str = "wire-secret";
pub const WIRE_TOKEN: &str = "secret-token:wire";
pub const ADMIN_TOKEN: &str = "secret-token:admin";

/// Knobs of one environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub registration_window: Duration,
    pub check_window: Duration,
    pub max_retries: u32,
    pub retry_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            registration_window: Duration::from_secs(120),
            check_window: Duration::from_secs(120),
            max_retries: 50,
            retry_delay: Duration::from_millis(25),
        }
    }
}

/// One running C2EC with its processor and clients.
pub struct Env {
    /// The world running C2EC.
    world: cardcash_testkit::World,
    pub processor: Arc<TestProcessor>,
    pub http: reqwest::Client,
    pub base: String,
    pub terminal_user: String,
    pub terminal_secret: String,
    pub db: Database,
}

pub fn config(opts: &Options) -> C2ecConfig {
    let currency: Currency = "CHF".parse().unwrap();
    C2ecConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        base_url: None,
        database: String::new(),
        currency,
        exchange_base_url: Some(BaseUrl::parse("https://exchange.test/").unwrap()),
        exchange_account: EXCHANGE_ACCOUNT.parse().unwrap(),
        wire_gateway: WireGatewayAuth {
            username: Some(WIRE_USER.into()),
            password: Some(WIRE_PASSWORD.into()),
            token: Some(WIRE_TOKEN.into()),
        },
        admin_token: Some(ADMIN_TOKEN.into()),
        withdrawal_fees: "CHF:0.25".parse().unwrap(),
        registration_window: opts.registration_window,
        check_window: opts.check_window,
        attestation_max_retries: opts.max_retries,
        attestation_retry_delay: opts.retry_delay,
        provider: ProviderConfig {
            name: "unused".into(),
            base_url: BaseUrl::parse("http://127.0.0.1:1/").unwrap(),
            user_id: 1,
            secret: String::new(),
            space_id: 1,
        },
    }
}

/// A value bound to a statement of [`sql_exec`] or [`sql_count`].
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Bytes(Vec<u8>),
}

impl ToSql for Arg {
    fn to_sql(&self) -> cardcash_store::rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Text(v) => ToSqlOutput::from(v.as_str()),
            Arg::Bytes(v) => ToSqlOutput::from(v.as_slice()),
        })
    }
}

fn bind_pg<'q>(
    mut query: cardcash_store::sqlx::query::Query<
        'q,
        cardcash_store::sqlx::Postgres,
        cardcash_store::sqlx::postgres::PgArguments,
    >,
    args: &'q [Arg],
) -> cardcash_store::sqlx::query::Query<
    'q,
    cardcash_store::sqlx::Postgres,
    cardcash_store::sqlx::postgres::PgArguments,
> {
    for a in args {
        query = match a {
            Arg::Text(v) => query.bind(v.as_str()),
            Arg::Bytes(v) => query.bind(v.as_slice()),
        };
    }
    query
}

/// Runs one statement (`$1…` placeholders) directly on the database, behind C2EC's back:
/// tests that forge rows C2EC itself would never write. Returns the rows changed.
pub async fn sql_exec(db: &Database, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError> {
    match db {
        Database::Sqlite(db) => {
            db.write(move |tx| {
                let n = tx
                    .prepare(sql)?
                    .execute(cardcash_store::rusqlite::params_from_iter(args.iter()))?;
                Ok(n as u64)
            })
            .await
        }
        Database::Postgres(db) => Ok(bind_pg(cardcash_store::sqlx::query(sql), &args)
            .execute(db.pool())
            .await?
            .rows_affected()),
    }
}

/// The integer (a `COUNT(*)`, say) that a one-row, one-column query gives.
pub async fn sql_count(db: &Database, sql: &'static str, args: Vec<Arg>) -> i64 {
    match db {
        Database::Sqlite(db) => db
            .read(|conn| {
                Ok(conn.query_row(
                    sql,
                    cardcash_store::rusqlite::params_from_iter(args.iter()),
                    |row| row.get::<_, i64>(0),
                )?)
            })
            .unwrap(),
        Database::Postgres(db) => {
            use cardcash_store::sqlx::Row as _;
            bind_pg(cardcash_store::sqlx::query(sql), &args)
                .fetch_one(db.pool())
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    }
}

/// Sets the environment's knobs and fixed credentials on the world's C2EC configuration.
fn adjust(opts: Options) -> impl FnOnce(&mut C2ecConfig) + Send + 'static {
    move |c| {
        c.withdrawal_fees = "CHF:0.25".parse().unwrap();
        c.registration_window = opts.registration_window;
        c.check_window = opts.check_window;
        c.attestation_max_retries = opts.max_retries;
        c.attestation_retry_delay = opts.retry_delay;
        c.exchange_base_url = Some(BaseUrl::parse("https://exchange.test/").unwrap());
        c.exchange_account = EXCHANGE_ACCOUNT.parse().unwrap();
        c.wire_gateway = WireGatewayAuth {
            username: Some(WIRE_USER.into()),
            password: Some(WIRE_PASSWORD.into()),
            token: Some(WIRE_TOKEN.into()),
        };
        c.admin_token = Some(ADMIN_TOKEN.into());
    }
}

impl Env {
    /// C2EC on a fresh database of `engine`, started by the test kit's world with the
    /// in-memory card provider and one registered terminal.
    pub async fn new(engine: Engine, opts: Options) -> Env {
        let processor = TestProcessor::new();
        let world = cardcash_testkit::world(engine)
            .c2ec_with_provider(processor.clone())
            .configure_c2ec(adjust(opts))
            .start()
            .await
            .unwrap();
        Self::on(world, processor).await
    }

    /// C2EC attesting with the world's real card processor (same engine, own database),
    /// whose payments become final after `delay_finality`.
    pub async fn real(engine: Engine, opts: Options, delay_finality: Duration) -> Env {
        let world = cardcash_testkit::world(engine)
            .cardproc()
            .configure_cardproc(move |c| {
                c.delay_finality = cardcash_util::RelativeTime::from_duration(delay_finality);
            })
            .c2ec()
            .configure_c2ec(adjust(opts))
            .start()
            .await
            .unwrap();
        Self::on(world, TestProcessor::new()).await
    }

    /// The environment of a started world, once C2EC's workers have subscribed to their
    /// notifications (so that a change of [`Self::subscribers`] is a request's).
    async fn on(world: cardcash_testkit::World, processor: Arc<TestProcessor>) -> Env {
        let c2ec = world.c2ec();
        let terminal = c2ec
            .terminal()
            .expect("the world registers a terminal")
            .clone();
        let db = c2ec.app().db().clone();
        let base = c2ec.base_url().as_str().to_owned();
        let env = Env {
            world,
            processor,
            http: reqwest::Client::new(),
            base,
            terminal_user: terminal.user,
            terminal_secret: terminal.secret,
            db,
        };
        for worker in ["attestation", "expiry", "refund"] {
            env.wait_for_first_step(worker).await;
        }
        env
    }

    /// The world running this C2EC (tests on the test kit).
    pub fn world(&self) -> &cardcash_testkit::World {
        &self.world
    }

    /// The value of a series with labels on C2EC's `/metrics` (`name{labels} value`; 0 when
    /// absent).
    pub async fn labelled_metric(&self, series: &str) -> u64 {
        let text = self
            .http
            .get(self.url("metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `worker` has finished at least one step (its first round at start; it
    /// subscribed to its notifications before).
    pub async fn wait_for_first_step(&self, worker: &str) {
        let series = format!("worker_steps_total{{worker=\"{worker}\"}}");
        wait_until(WAIT, || async { self.labelled_metric(&series).await > 0 }).await;
    }

    /// The operation's row as C2EC stored it.
    pub async fn withdrawal(&self, wopid: &str) -> cardcash_c2ec::db::withdrawal::WithdrawalRow {
        cardcash_c2ec::db::C2ecStore::new(self.db.clone(), "CHF".parse().unwrap())
            .withdrawal(&wopid.parse().unwrap())
            .await
            .unwrap()
            .expect("a stored operation")
    }

    /// Waits until the refund of the ended operation is decided (no longer due) and returns
    /// the decision.
    pub async fn wait_refund_decided(&self, wopid: &str) -> cardcash_c2ec::db::RefundState {
        wait_for(WAIT, || async {
            let state = self.withdrawal(wopid).await.refund_state;
            (state != cardcash_c2ec::db::RefundState::Due).then_some(state)
        })
        .await
    }

    /// The number of outgoing transfers C2EC recorded (each refunds at most once).
    pub async fn transfer_count(&self) -> i64 {
        sql_count(&self.db, "SELECT COUNT(*) FROM transfers", vec![]).await
    }

    /// How many waiters (long polls, workers) are subscribed to the store's notifications.
    pub fn subscribers(&self) -> usize {
        self.db.notifier().subscriber_count()
    }

    /// Waits until more than `before` waiters are subscribed (a long poll has started
    /// waiting), instead of sleeping for it.
    pub async fn wait_subscribed(&self, before: usize) {
        wait_until(WAIT, || async { self.subscribers() > before }).await;
    }

    /// A card payment at the processor referencing `reference`; returns the transaction id.
    pub fn pay(&self, reference: &str, amount: &str, card: Card) -> String {
        self.processor.pay(reference, amount.parse().unwrap(), card)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request as the terminal.
    pub fn terminal(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(&self.terminal_user, Some(&self.terminal_secret))
    }

    /// A request as the exchange on the wire gateway.
    pub fn exchange(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("taler-wire-gateway/{path}")))
            .basic_auth(WIRE_USER, Some(WIRE_PASSWORD))
    }

    /// Terminal setup with a fixed amount; returns (WOPID, taler URI).
    pub async fn setup(&self, amount: &str) -> (String, String) {
        self.setup_body(json!({"request_uid": uid(), "amount": amount}))
            .await
    }

    pub async fn setup_body(&self, body: Value) -> (String, String) {
        let r = self
            .terminal(reqwest::Method::POST, "terminal/withdrawals")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        (
            v["withdrawal_id"].as_str().unwrap().to_owned(),
            v["taler_withdraw_uri"].as_str().unwrap().to_owned(),
        )
    }

    /// The wallet registers `reserve_pub` (base32) at the exchange account.
    pub async fn register(&self, wopid: &str, reserve_pub: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("taler-integration/withdrawal-operation/{wopid}")))
            .json(&json!({"reserve_pub": reserve_pub, "selected_exchange": EXCHANGE_ACCOUNT}))
            .send()
            .await
            .unwrap()
    }

    /// The wallet's status view (long polling when `query` says so).
    pub async fn wallet_status(&self, wopid: &str, query: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}?{query}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn check(&self, wopid: &str, tx_id: &str) -> reqwest::Response {
        self.terminal(
            reqwest::Method::POST,
            &format!("terminal/withdrawals/{wopid}/check"),
        )
        .json(&json!({"provider_transaction_id": tx_id}))
        .send()
        .await
        .unwrap()
    }

    /// Waits (long poll, bounded) until the operation leaves `from`; returns the new status.
    pub async fn wait_leaving(&self, wopid: &str, from: &str) -> String {
        for _ in 0..20 {
            let v = self
                .wallet_status(wopid, &format!("old_state={from}&timeout_ms=5000"))
                .await;
            let s = v["status"].as_str().unwrap().to_owned();
            if s != from {
                return s;
            }
        }
        panic!("operation {wopid} stayed {from}");
    }

    /// The incoming history (as the exchange), ascending from the start.
    pub async fn incoming(&self) -> Vec<Value> {
        let r = self
            .exchange(reqwest::Method::GET, "history/incoming?limit=100")
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::NO_CONTENT => vec![],
            StatusCode::OK => {
                let v: Value = r.json().await.unwrap();
                v["incoming_transactions"].as_array().unwrap().clone()
            }
            s => panic!("incoming history: {s}"),
        }
    }

    /// Waits for the refund worker to settle the aborted operation's refund.
    pub async fn wait_refund(&self, tx_id: &str) -> Option<Amount> {
        try_wait_for(WAIT, || async {
            self.processor.refunded(tx_id).filter(|a| !a.is_zero())
        })
        .await
    }

    pub async fn stop(self) {
        self.world.shutdown().await.unwrap();
    }
}

static UID: AtomicU64 = AtomicU64::new(1);

/// A fresh request uid.
pub fn uid() -> String {
    format!(
        "req-{}-{}",
        std::process::id(),
        UID.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh reserve public key in base32 (random bytes are enough for C2EC, which never uses
/// the key cryptographically).
pub fn reserve_pub() -> String {
    let n = UID.fetch_add(1, Ordering::SeqCst);
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[8..16].copy_from_slice(&u64::from(std::process::id()).to_be_bytes());
    b[31] = 0xA5;
    cardcash_util::base32::encode(&b)
}

/// The Taler error code of a response.
pub async fn code(r: reqwest::Response) -> u64 {
    let v: Value = r.json().await.unwrap();
    v["code"].as_u64().unwrap_or(0)
}
