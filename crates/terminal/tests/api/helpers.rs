//! The test environment: card processor + C2EC + a registered terminal, and the wallet.

use std::time::Duration;

use cardcash_api::cardproc::mac::MacKey;
use cardcash_c2ec::{C2ecConfig, ProviderConfig, WireGatewayAuth};
use cardcash_cardproc::config::{ApiUserConfig, CardprocConfig, Role};
use cardcash_client::{C2ecTerminalClient, CardprocClient};
use cardcash_terminal::{FlowError, FlowEvent, FlowOptions, FlowReport, TerminalFlow};
use cardcash_util::{BaseUrl, Currency};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const EXCHANGE_ACCOUNT: &str = "payto://x-taler-bank/c2ec.test/exchange?receiver-name=Exchange";
const TERMINAL_USER_ID: u64 = 1;
const READER_USER_ID: u64 = 2;
/// Any whole test stops after this long.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    MacKey::from_bytes(bytes.to_vec()).unwrap().to_base64()
}

/// A running card processor and C2EC with one terminal.
pub struct Env {
    _dir: tempfile::TempDir,
    pub cardproc: cardcash_cardproc::App,
    pub c2ec: cardcash_c2ec::App,
    /// The processor as C2EC sees it (a reader), to inspect transactions.
    pub reader: CardprocClient,
    pub flow: TerminalFlow,
    pub http: reqwest::Client,
}

impl Env {
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let chf: Currency = "CHF".parse().unwrap();
        let terminal_secret = secret();
        let reader_secret = secret();

        let mut cp = CardprocConfig::new(
            chf,
            format!("sqlite:{}", dir.path().join("cardproc.db").display()),
        );
        cp.delay_finality = cardcash_util::RelativeTime::from_duration(Duration::from_millis(500));
        cp.users = vec![
            ApiUserConfig {
                id: TERMINAL_USER_ID,
                secret: MacKey::from_base64(&terminal_secret).unwrap(),
                role: Role::Terminal,
            },
            ApiUserConfig {
                id: READER_USER_ID,
                secret: MacKey::from_base64(&reader_secret).unwrap(),
                role: Role::Reader,
            },
        ];
        let space_id = cp.space_id;
        let cardproc = cardcash_cardproc::App::build(cp).await.unwrap();
        let cardproc_base = cardproc.base_url().clone();

        let config = C2ecConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            base_url: None,
            database: format!("sqlite:{}", dir.path().join("c2ec.db").display()),
            currency: chf,
            exchange_base_url: Some(BaseUrl::parse("https://exchange.test/").unwrap()),
            exchange_account: EXCHANGE_ACCOUNT.parse().unwrap(),
            wire_gateway: WireGatewayAuth {
                username: Some("exchange".into()),
                password: Some("wire-secret".into()),
                token: None,
            },
            admin_token: None,
            withdrawal_fees: "CHF:0.25".parse().unwrap(),
            registration_window: Duration::from_secs(120),
            check_window: Duration::from_secs(120),
            attestation_max_retries: 50,
            attestation_retry_delay: Duration::from_millis(50),
            provider: ProviderConfig {
                name: "cardcash card processor".into(),
                base_url: cardproc_base.clone(),
                user_id: READER_USER_ID,
                secret: reader_secret.clone(),
                space_id,
            },
        };
        let c2ec = cardcash_c2ec::App::build(config).await.unwrap();
        let terminal = cardcash_c2ec::admin::add_terminal(c2ec.db(), "counter 1")
            .await
            .unwrap();

        let terminal_base = c2ec.base_url().join_base("terminal/").unwrap();
        let client =
            C2ecTerminalClient::new(terminal_base, terminal.user, terminal.secret).unwrap();
        let card = CardprocClient::new(
            cardproc_base.as_str(),
            TERMINAL_USER_ID,
            &terminal_secret,
            space_id,
        )
        .unwrap();
        let reader = CardprocClient::new(
            cardproc_base.as_str(),
            READER_USER_ID,
            &reader_secret,
            space_id,
        )
        .unwrap();
        Env {
            _dir: dir,
            cardproc,
            c2ec,
            reader,
            flow: TerminalFlow::new(client, card),
            http: reqwest::Client::new(),
        }
    }

    /// `{c2ec}/taler-integration/…`, the wallet's API.
    fn integration_url(&self, path: &str) -> String {
        format!("{}taler-integration/{path}", self.c2ec.base_url())
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
        self.c2ec.shutdown().await;
        self.cardproc.shutdown().await;
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
