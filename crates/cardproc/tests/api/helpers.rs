//! Test harness: one card processor per database engine with a terminal and a reader user.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cardcash_api::cardproc::mac::{self, MacKey};
use cardcash_api::cardproc::{
    CardNumber, CreateTransactionRequest, ProcessCardRequest, Transaction, TransactionState,
};
use cardcash_cardproc::{ApiUserConfig, App, CardprocConfig, Role};
use cardcash_client::CardprocClient;
use cardcash_testkit::{Engine, World, wait_for};
use cardcash_util::{Currency, RelativeTime};
use serde_json::Value;

pub const SPACE: u64 = 7;
pub const TERMINAL_ID: u64 = 101;
pub const READER_ID: u64 = 202;
pub const TERMINAL_SECRET: &str = "dGVybWluYWwtc2VjcmV0LXRlcm1pbmFsLXNlY3JldC0x";
pub const READER_SECRET: &str = "cmVhZGVyLXNlY3JldC1yZWFkZXItc2VjcmV0LXJlYWRlcg==";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const DELAY: Duration = Duration::from_millis(1000);

pub fn chf() -> Currency {
    Currency::new("CHF").unwrap()
}

pub struct TestApp {
    world: World,
    pub engine: Engine,
    pub terminal: CardprocClient,
    pub reader: CardprocClient,
    pub http: reqwest::Client,
}

impl TestApp {
    /// A processor configured by [`config`] on a fresh database of `engine`.
    pub async fn start(engine: Engine) -> TestApp {
        Self::start_with(engine, config()).await
    }

    /// A processor configured by `config` (its database and address are the world's).
    pub async fn start_with(engine: Engine, config: CardprocConfig) -> TestApp {
        let world = cardcash_testkit::world(engine)
            .cardproc()
            .configure_cardproc(move |c| {
                let (database_url, bind) = (c.database_url.clone(), c.bind);
                *c = config;
                c.database_url = database_url;
                c.bind = bind;
            })
            .start()
            .await
            .unwrap();
        let cardproc = world.cardproc();
        TestApp {
            terminal: cardproc.pos(),
            reader: cardproc.reader(),
            http: reqwest::Client::new(),
            engine,
            world,
        }
    }

    /// The world running the processor.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The running processor.
    pub fn app(&self) -> &App {
        self.world.cardproc().app()
    }

    /// Stops the processor and removes its database.
    pub async fn shutdown(self) {
        self.world.shutdown().await.unwrap();
    }

    pub fn base(&self) -> String {
        self.app()
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn client(&self, user: u64, secret: &str, space: u64) -> CardprocClient {
        CardprocClient::new(self.app().base_url().as_str(), user, secret, space).unwrap()
    }

    /// A PENDING transaction of `amount` CHF.
    pub async fn create(&self, amount: &str) -> Transaction {
        let req = CreateTransactionRequest {
            currency: chf(),
            amount: amount.parse().unwrap(),
            merchant_reference: "WOPID-TEST".into(),
            terminal_id: Some("T-1".into()),
            meta_data: [("wopid".to_owned(), "W".to_owned())].into(),
        };
        let tx = self.terminal.create_transaction(&req).await.unwrap();
        assert_eq!(tx.state, TransactionState::Pending, "{}", self.engine);
        tx
    }

    /// Creates a transaction and presents `pan`.
    pub async fn pay(&self, amount: &str, pan: &str) -> Transaction {
        let tx = self.create(amount).await;
        self.terminal.process_card(tx.id, &card(pan)).await.unwrap()
    }

    /// A request signed as `user` at `timestamp`, returning status and JSON body.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&str>,
        user: u64,
        secret: &str,
        timestamp: u64,
    ) -> (u16, Value) {
        let key = MacKey::from_base64(secret).unwrap();
        let headers = mac::MacHeaders::new(&key, user, timestamp, method.as_str(), path_and_query);
        let mut req = self
            .http
            .request(method, format!("{}{path_and_query}", self.base()));
        for (name, value) in headers.pairs() {
            req = req.header(name, value);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn card(pan: &str) -> ProcessCardRequest {
    ProcessCardRequest {
        pan: CardNumber(pan.into()),
        expiry_month: 12,
        expiry_year: 2099,
        cvc: Some("123".into()),
    }
}

pub fn config() -> CardprocConfig {
    let mut config = CardprocConfig::new(chf(), "unused");
    config.space_id = SPACE;
    config.delay_finality = RelativeTime::from_duration(DELAY);
    config.admin_token = Some(ADMIN_TOKEN.into());
    config.users = vec![
        ApiUserConfig {
            id: TERMINAL_ID,
            secret: MacKey::from_base64(TERMINAL_SECRET).unwrap(),
            role: Role::Terminal,
        },
        ApiUserConfig {
            id: READER_ID,
            secret: MacKey::from_base64(READER_SECRET).unwrap(),
            role: Role::Reader,
        },
    ];
    config
}

/// Reads until `done(tx)` holds (the client's view; there is no notification to wait on
/// across HTTP); panics after `limit`.
pub async fn read_until(
    client: &CardprocClient,
    id: u64,
    limit: Duration,
    done: impl Fn(&Transaction) -> bool,
) -> Transaction {
    wait_for(limit, || async {
        let tx = client.read_transaction(id).await.unwrap();
        done(&tx).then_some(tx)
    })
    .await
}
