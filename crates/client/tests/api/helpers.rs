//! The real services on 127.0.0.1:0 (each on its own SQLite file in a temporary directory),
//! configured from one INI text as `cardcash demo` does, and clients for them.

use std::time::Duration;

use cardcash_client::{
    BankClient, BankIntegrationClient, C2ecTerminalClient, CardprocClient, WireGatewayClient,
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

/// The configuration of `sections` (`bank`, `cardproc`, `c2ec`), as `cardcash demo` writes one.
fn config(dir: &std::path::Path, sections: &[&str]) -> TalerConfig {
    let db = |name: &str| format!("sqlite:{}/{name}.db", dir.display());
    let mut text = format!("[taler]\nCURRENCY = {CURRENCY}\n");
    for section in sections {
        text.push_str(&match *section {
            "bank" => format!(
                "
[bank]
BIND = 127.0.0.1:0
DATABASE = {bank}
ADMIN_TOKEN = {BANK_ADMIN}
",
                bank = db("bank")
            ),
            "cardproc" => format!(
                "
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
",
                cardproc = db("cardproc")
            ),
            "c2ec" => format!(
                "
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
                c2ec = db("c2ec")
            ),
            other => panic!("no section {other}"),
        });
    }
    TalerConfig::parse_str(&text).expect("test configuration")
}

/// The services of `sections`, started from their configuration (`World::from_config`, as
/// `cardcash demo` starts them) in a temporary directory.
async fn start(sections: &[&str]) -> (tempfile::TempDir, cardcash_testkit::World) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), sections);
    let world = cardcash_testkit::World::from_config(&cfg)
        .unwrap()
        .start()
        .await
        .unwrap();
    (dir, world)
}

/// A running bank.
pub struct Bank {
    world: cardcash_testkit::World,
    _dir: tempfile::TempDir,
}

impl Bank {
    pub async fn start() -> Self {
        let (dir, world) = start(&["bank"]).await;
        Self { world, _dir: dir }
    }

    pub fn base_url(&self) -> BaseUrl {
        self.world.bank().base_url().clone()
    }

    /// A client acting as the bank's admin.
    pub fn admin(&self) -> BankClient {
        self.world.bank().admin()
    }

    pub async fn shutdown(self) {
        self.world.shutdown().await.unwrap();
    }
}

/// A running card processor, and C2EC attesting through it (the world's `c2ec()` and
/// `cardproc()` handles, and the clients the tests use).
pub struct World {
    world: cardcash_testkit::World,
    _dir: tempfile::TempDir,
    pub terminal_user: String,
}

impl std::ops::Deref for World {
    type Target = cardcash_testkit::World;

    fn deref(&self) -> &Self::Target {
        &self.world
    }
}

impl World {
    pub async fn start() -> Self {
        let (dir, world) = start(&["cardproc", "c2ec"]).await;
        let terminal_user = world.c2ec().terminal().unwrap().user.clone();
        Self {
            world,
            _dir: dir,
            terminal_user,
        }
    }

    pub fn terminal(&self) -> C2ecTerminalClient {
        self.world.c2ec().terminal_client()
    }

    pub fn integration(&self) -> BankIntegrationClient {
        self.world.c2ec().integration()
    }

    pub fn wire_gateway(&self) -> WireGatewayClient {
        self.world.c2ec().wire_gateway()
    }

    /// The terminal's account at the card processor.
    pub fn pos(&self) -> CardprocClient {
        self.world.cardproc().pos()
    }

    /// C2EC's (read-only) account at the card processor.
    pub fn reader(&self) -> CardprocClient {
        self.world.cardproc().reader()
    }

    pub async fn shutdown(self) {
        self.world.shutdown().await.unwrap();
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
