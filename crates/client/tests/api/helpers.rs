//! The real services on 127.0.0.1:0 (each on its own SQLite file in a temporary directory),
//! configured from one INI text as `cardcash demo` does, and clients for them.

use std::time::Duration;

use cardcash_client::{
    Auth, BankClient, BankIntegrationClient, C2ecTerminalClient, CardprocClient, WireGatewayClient,
};
use cardcash_util::{BaseUrl, TalerConfig};

pub const CURRENCY: &str = "CHF";
pub const BANK_ADMIN: &str = "secret-token:bank-admin";
pub const CARDPROC_ADMIN: &str = "secret-token:cardproc-admin";
pub const SPACE: u64 = 1;
pub const TERMINAL_USER: u64 = 1;
pub const TERMINAL_SECRET: &str = "dGVybWluYWwtc2VjcmV0LWZvci1jbGllbnQtdGVzdHM=";
pub const READER_USER: u64 = 2;
pub const READER_SECRET: &str = "cmVhZGVyLXNlY3JldC1mb3ItY2xpZW50LXRlc3RzIQ==";
pub const WIRE_USER: &str = "exchange";
pub const WIRE_PASSWORD: &str = "wire-password";
pub const EXCHANGE_ACCOUNT: &str = "payto://iban/CH9300762011623852957?receiver-name=Exchange";
/// Approved and final at once (the processor's test authorizer).
pub const APPROVED_CARD: &str = "4000000000000002";

fn config(dir: &std::path::Path) -> TalerConfig {
    let db = |name: &str| format!("sqlite:{}/{name}.db", dir.display());
    TalerConfig::parse_str(&format!(
        "[taler]
CURRENCY = {CURRENCY}

[bank]
BIND = 127.0.0.1:0
DATABASE = {bank}
ADMIN_TOKEN = {BANK_ADMIN}

[cardproc]
BIND = 127.0.0.1:0
DATABASE = {cardproc}
SPACE_ID = {SPACE}
DELAY_FINALITY = 60 minutes
ADMIN_TOKEN = {CARDPROC_ADMIN}

[cardproc-user-terminal]
ID = {TERMINAL_USER}
SECRET = {TERMINAL_SECRET}
ROLE = terminal

[cardproc-user-c2ec]
ID = {READER_USER}
SECRET = {READER_SECRET}
ROLE = reader

[c2ec]
CURRENCY = {CURRENCY}
BIND = 127.0.0.1:0
DATABASE = {c2ec}
EXCHANGE_ACCOUNT = {EXCHANGE_ACCOUNT}
WIRE_GATEWAY_USERNAME = {WIRE_USER}
WIRE_GATEWAY_PASSWORD = {WIRE_PASSWORD}
ATTESTATION_RETRY_DELAY = 50 ms

[c2ec-provider-cardproc]
USER_ID = {READER_USER}
SECRET = {READER_SECRET}
SPACE_ID = {SPACE}
",
        bank = db("bank"),
        cardproc = db("cardproc"),
        c2ec = db("c2ec"),
    ))
    .expect("test configuration")
}

/// A running bank.
pub struct Bank {
    _dir: tempfile::TempDir,
    pub app: cardcash_bank::App,
}

impl Bank {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let bank = cardcash_bank::BankConfig::from_taler_config(&cfg).unwrap();
        let app = cardcash_bank::App::build(bank).await.unwrap();
        Self { _dir: dir, app }
    }

    pub fn base_url(&self) -> BaseUrl {
        self.app.base_url().clone()
    }

    /// A client acting as the bank's admin.
    pub fn admin(&self) -> BankClient {
        BankClient::new(self.base_url(), Auth::bearer(BANK_ADMIN)).unwrap()
    }

    pub async fn shutdown(self) {
        self.app.shutdown().await.unwrap();
    }
}

/// A running card processor, and C2EC attesting through it.
pub struct World {
    _dir: tempfile::TempDir,
    pub cardproc: cardcash_cardproc::App,
    pub c2ec: cardcash_c2ec::App,
    pub terminal_user: String,
    pub terminal_secret: String,
}

impl World {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        let cardproc_config = cardcash_cardproc::CardprocConfig::from_taler_config(&cfg).unwrap();
        let cardproc = cardcash_cardproc::App::build(cardproc_config)
            .await
            .unwrap();
        cfg.set(
            "c2ec-provider-cardproc",
            "BASE_URL",
            cardproc.base_url().to_string(),
        );
        let c2ec_config = cardcash_c2ec::C2ecConfig::from_taler_config(&cfg).unwrap();
        let db = cardcash_c2ec::admin::open_db(&c2ec_config.database)
            .await
            .unwrap();
        let terminal = cardcash_c2ec::admin::add_terminal(&db, "counter 1")
            .await
            .unwrap();
        let c2ec = cardcash_c2ec::App::build_on_db(c2ec_config, db)
            .await
            .unwrap();
        Self {
            _dir: dir,
            cardproc,
            c2ec,
            terminal_user: terminal.user,
            terminal_secret: terminal.secret,
        }
    }

    fn c2ec_url(&self, path: &str) -> BaseUrl {
        self.c2ec.base_url().join_base(path).unwrap()
    }

    pub fn terminal(&self) -> C2ecTerminalClient {
        C2ecTerminalClient::new(
            self.c2ec_url("terminal/"),
            self.terminal_user.clone(),
            self.terminal_secret.clone(),
        )
        .unwrap()
    }

    pub fn integration(&self) -> BankIntegrationClient {
        BankIntegrationClient::new(self.c2ec_url("taler-integration/"))
            .unwrap()
            .named("C2EC")
    }

    pub fn wire_gateway(&self) -> WireGatewayClient {
        WireGatewayClient::new(
            self.c2ec_url("taler-wire-gateway/"),
            Auth::basic(WIRE_USER, WIRE_PASSWORD),
        )
        .unwrap()
        .named("C2EC's Wire Gateway")
    }

    /// The terminal's account at the card processor.
    pub fn pos(&self) -> CardprocClient {
        CardprocClient::new(
            self.cardproc.base_url().as_str(),
            TERMINAL_USER,
            TERMINAL_SECRET,
            SPACE,
        )
        .unwrap()
    }

    /// C2EC's (read-only) account at the card processor.
    pub fn reader(&self) -> CardprocClient {
        CardprocClient::new(
            self.cardproc.base_url().as_str(),
            READER_USER,
            READER_SECRET,
            SPACE,
        )
        .unwrap()
    }

    pub async fn shutdown(self) {
        self.c2ec.shutdown().await;
        self.cardproc.shutdown().await;
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A long-poll window generous enough for a loaded machine; polls end early on the event.
pub const POLL: Duration = Duration::from_secs(30);

/// Authorized, final only after `DELAY_FINALITY` (an hour here): voidable meanwhile.
pub const DELAYED_CARD: &str = "4000000000000028";
/// Declined by the issuer.
pub const DECLINED_CARD: &str = "4000000000000010";
