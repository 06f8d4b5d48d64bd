//! The test environment: card processor + C2EC + a registered terminal, and the wallet.

use std::time::Duration;

use cardcash_client::CardprocClient;
use cardcash_terminal::{FlowError, FlowEvent, FlowOptions, FlowReport, TerminalFlow};
use cardcash_testkit::World;
use cardcash_util::BaseUrl;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const EXCHANGE_ACCOUNT: &str = "payto://x-taler-bank/c2ec.test/exchange?receiver-name=Exchange";
/// Any whole flow stops after this long (generous: the machine may be loaded).
pub const TEST_LIMIT: Duration = Duration::from_secs(120);

/// A running card processor and C2EC with one terminal (the test kit's world on SQLite).
pub struct Env {
    world: World,
    /// The processor as C2EC sees it (a reader), to inspect transactions.
    pub reader: CardprocClient,
    pub flow: TerminalFlow,
    pub http: reqwest::Client,
}

impl Env {
    pub async fn start() -> Env {
        let world = World::builder()
            .cardproc()
            .configure_cardproc(|c| {
                c.delay_finality =
                    cardcash_util::RelativeTime::from_duration(Duration::from_millis(500));
            })
            .c2ec()
            .configure_c2ec(|c| {
                c.exchange_base_url = Some(BaseUrl::parse("https://exchange.test/").unwrap());
                c.exchange_account = EXCHANGE_ACCOUNT.parse().unwrap();
                c.withdrawal_fees = "CHF:0.25".parse().unwrap();
                c.registration_window = Duration::from_secs(120);
                c.check_window = Duration::from_secs(120);
                c.attestation_max_retries = 50;
                c.attestation_retry_delay = Duration::from_millis(50);
            })
            .start()
            .await
            .unwrap();
        let flow = TerminalFlow::new(world.c2ec().terminal_client(), world.cardproc().pos());
        Env {
            reader: world.cardproc().reader(),
            flow,
            http: reqwest::Client::new(),
            world,
        }
    }

    /// How many subscriptions C2EC's notifier has (a long poll subscribes before its first
    /// read): tests wait on it instead of sleeping.
    pub fn c2ec_subscribers(&self) -> usize {
        self.world.c2ec().app().db().notifier().subscriber_count()
    }

    /// `{c2ec}/taler-integration/…`, the wallet's API.
    fn integration_url(&self, path: &str) -> String {
        format!("{}{path}", self.world.c2ec().integration_url())
    }

    /// The wallet's view of the operation (no long poll).
    pub async fn wallet_status(&self, wopid: &str) -> Value {
        let r = self
            .http
            .get(self.integration_url(&format!("withdrawal-operation/{wopid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json().await.unwrap()
    }

    /// The wallet: registers a fresh reserve public key (32 random bytes) at the exchange
    /// account, optionally choosing the amount. Returns the key in base32.
    pub async fn register(&self, wopid: &str, amount: Option<&str>) -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap();
        let reserve_pub = cardcash_util::base32::encode(&key);
        let mut body = json!({"reserve_pub": reserve_pub, "selected_exchange": EXCHANGE_ACCOUNT});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        let r = self
            .http
            .post(self.integration_url(&format!("withdrawal-operation/{wopid}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{:?}", r.text().await);
        reserve_pub
    }

    /// Runs the flow on its own task (the observer is a channel, which also proves the flow's
    /// future is `Send`) while this task plays the wallet: when the WOPID appears it registers,
    /// unless `wallet` is `None`. Returns the report and every event.
    pub async fn run(
        &self,
        options: FlowOptions,
        wallet: Option<Option<&str>>,
    ) -> (
        Result<FlowReport, FlowError>,
        Vec<FlowEvent>,
        Option<String>,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let flow = self.flow.clone();
        let task = tokio::spawn(async move {
            let mut observer = tx;
            flow.run(&options, &mut observer).await
        });
        let mut events = Vec::new();
        let mut reserve = None;
        let collect = async {
            while let Some(event) = rx.recv().await {
                if let (FlowEvent::WithdrawalCreated { wopid, .. }, Some(amount)) = (&event, wallet)
                {
                    reserve = Some(self.register(wopid, amount).await);
                }
                events.push(event);
            }
        };
        tokio::time::timeout(TEST_LIMIT, collect)
            .await
            .expect("flow did not finish in time");
        let report = task.await.unwrap();
        (report, events, reserve)
    }

    pub async fn stop(self) {
        self.world.shutdown().await.unwrap();
    }
}

/// The names of the events, in order, for asserting the sequence.
pub fn names(events: &[FlowEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            FlowEvent::Configured { .. } => "Configured",
            FlowEvent::WithdrawalCreated { .. } => "WithdrawalCreated",
            FlowEvent::WaitingForWallet { .. } => "WaitingForWallet",
            FlowEvent::WalletRegistered { .. } => "WalletRegistered",
            FlowEvent::CardPayment { .. } => "CardPayment",
            FlowEvent::CheckSent { .. } => "CheckSent",
            FlowEvent::Outcome { .. } => "Outcome",
            FlowEvent::Receipt { .. } => "Receipt",
        })
        .collect()
}
