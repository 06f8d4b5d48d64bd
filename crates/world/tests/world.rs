//! The world as its users see it: every service wired to the others (C2EC attests through the
//! card processor's reader user, the point of sale pays as the terminal user, the exchange reads
//! both Wire Gateways), on both engines; a world read from a configuration written back and
//! started again resumes on its databases; C2EC with another provider; set-ups that cannot work
//! are refused with a sentence; the card processor pays the card money out to the exchange's
//! bank account.

use std::time::Duration;

use cardcash_api::bank_integration::{BankWithdrawalOperationPostRequest, WithdrawalStatus};
use cardcash_api::cardproc::PayoutState;
use cardcash_api::corebank::Direction;
use cardcash_api::wire_gateway::IncomingBankTransaction;
use cardcash_client::{HistoryRequest, SetupAmount};
use cardcash_testkit::{Card, Engine, MemoryProvider, engine_test, world};
use cardcash_util::{EddsaPublicKey, TalerConfig};
use cardcash_world::{BankAccount, Storage, World, WorldError};

const POLL: Duration = Duration::from_secs(30);

fn selection(world: &World, key: u8) -> BankWithdrawalOperationPostRequest {
    BankWithdrawalOperationPostRequest {
        reserve_pub: EddsaPublicKey::from_bytes([key; 32]),
        selected_exchange: world.c2ec().exchange_account().clone(),
        amount: None,
    }
}

/// Setup → registration → card payment → check → confirmed, through the world's clients;
/// returns the withdrawal id.
async fn withdraw(world: &World, uid: &str, key: u8) -> String {
    let terminal = world.c2ec().terminal_client();
    let amount = SetupAmount::Fixed("CHF:20".parse().unwrap());
    let wopid = terminal
        .setup_withdrawal(uid, amount)
        .await
        .unwrap()
        .withdrawal_id;
    world
        .c2ec()
        .integration()
        .select(&wopid, &selection(world, key))
        .await
        .unwrap();
    world
        .pay_by_card(&wopid, &"CHF:20".parse().unwrap())
        .await
        .unwrap();
    let done = terminal
        .status(&wopid, Some(WithdrawalStatus::Selected), POLL)
        .await
        .unwrap();
    assert_eq!(done.status, WithdrawalStatus::Confirmed, "{wopid}");
    wopid
}

engine_test!(
    /// One world, every service: the card payment becomes a reserve in C2EC's Wire Gateway
    /// (C2EC attested it with the reader's credentials the world gave it), and the exchange's
    /// account at the bank answers its Wire Gateway credentials.
    async fn every_service_is_wired_to_the_others(engine: Engine) {
        let world = world(engine)
            .bank()
            .cardproc()
            .c2ec()
            .start()
            .await
            .unwrap();
        assert_eq!(world.engine(), engine);
        assert_eq!(
            world.c2ec().provider_url(),
            Some(world.cardproc().base_url())
        );
        withdraw(&world, "world-1", 7).await;
        let incoming = world
            .c2ec()
            .wire_gateway()
            .incoming_history(&HistoryRequest::newest(5))
            .await
            .unwrap();
        assert!(
            matches!(
                incoming.as_slice(),
                [IncomingBankTransaction::Reserve { reserve_pub, .. }]
                    if *reserve_pub == EddsaPublicKey::from_bytes([7; 32])
            ),
            "{incoming:?}"
        );

        let bank = world.bank();
        let exchange = bank.exchange().expect("the exchange's bank account");
        assert_eq!(exchange.username, cardcash_world::EXCHANGE_USER);
        let config = bank.exchange_wire_gateway().config().await.unwrap();
        assert_eq!(config.currency.as_str(), "CHF");
        let accounts = bank.admin().accounts().await.unwrap().accounts;
        assert!(
            accounts
                .iter()
                .any(|a| a.username == "exchange" && a.is_taler_exchange),
            "{accounts:?}"
        );
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Each service keeps its own database: the bank, the processor and C2EC of one world on one
    /// PostgreSQL database (a schema each), or one SQLite file each.
    async fn each_service_has_its_own_database(engine: Engine) {
        let world = world(engine)
            .bank()
            .cardproc()
            .c2ec()
            .start()
            .await
            .unwrap();
        let urls = [
            world.bank().database_url(),
            world.cardproc().database_url(),
            world.c2ec().database_url(),
        ];
        match engine {
            Engine::Sqlite => {
                for (url, service) in urls.iter().zip(["bank", "cardproc", "c2ec"]) {
                    assert!(url.ends_with(&format!("/{service}.db")), "{url}");
                }
            }
            Engine::Postgres => {
                assert!(urls.iter().all(|u| u.starts_with("postgres")), "{urls:?}");
                assert!(urls.iter().all(|u| *u == urls[0]), "one database: {urls:?}");
            }
        }
        // Two worlds never share a database.
        let other = cardcash_testkit::world(engine)
            .bank()
            .start()
            .await
            .unwrap();
        assert_ne!(other.bank().database_url(), world.bank().database_url());
        other.shutdown().await.unwrap();
        world.shutdown().await.unwrap();
    }
);

/// A demo's configuration (the sections `cardcash demo` writes), on SQLite files in `dir`.
fn demo_config(dir: &std::path::Path) -> TalerConfig {
    let db = |name: &str| format!("sqlite:{}/{name}.db", dir.display());
    TalerConfig::parse_str(&format!(
        "[taler]
CURRENCY = CHF

[bank]
BIND = 127.0.0.1:0
DATABASE = {bank}
ADMIN_TOKEN = secret-token:bank

[cardproc]
BIND = 127.0.0.1:0
DATABASE = {cardproc}
ADMIN_TOKEN = secret-token:cardproc

[cardproc-user-terminal]
ID = 1
SECRET = dGVybWluYWwtc2VjcmV0LWZvci13b3JsZC10ZXN0cyE=
ROLE = terminal

[cardproc-user-c2ec]
ID = 2
SECRET = cmVhZGVyLXNlY3JldC1mb3Itd29ybGQtdGVzdHMhISE=
ROLE = reader

[c2ec]
CURRENCY = CHF
BIND = 127.0.0.1:0
DATABASE = {c2ec}
EXCHANGE_ACCOUNT = payto://x-taler-bank/c2ec.localhost/exchange?receiver-name=Exchange
WIRE_GATEWAY_USERNAME = exchange
WIRE_GATEWAY_PASSWORD = wire-password
ATTESTATION_RETRY_DELAY = 50 ms

[c2ec-provider-cardproc]
USER_ID = 2
SECRET = cmVhZGVyLXNlY3JldC1mb3Itd29ybGQtdGVzdHMhISE=
SPACE_ID = 1
",
        bank = db("bank"),
        cardproc = db("cardproc"),
        c2ec = db("c2ec"),
    ))
    .unwrap()
}

/// `World::from_config` starts what a configuration describes; `write_config` writes back where
/// it runs; started again from what was written, the world resumes: same terminal, same
/// accounts (a new password replaces the old one), same withdrawals.
#[tokio::test]
async fn a_world_from_a_configuration_writes_it_back_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = demo_config(dir.path());
    let exchange = |password: &str| BankAccount::exchange("exchange", "Exchange", password);
    let world = World::from_config(&cfg)
        .unwrap()
        .bank_account(exchange("first"))
        .bank_account(BankAccount::new("alice", "Alice"))
        .c2ec_terminal(Some("shop, counter 2"))
        .start()
        .await
        .unwrap();
    world.write_config(&mut cfg);
    let terminal = world.c2ec().terminal().unwrap().clone();
    assert_eq!(terminal.name, "shop, counter 2");
    assert_eq!(
        cfg.string("terminal", "TERMINAL_USER").unwrap(),
        terminal.user
    );
    assert_eq!(
        cfg.string("terminal", "C2EC_TERMINAL_URL").unwrap(),
        world.c2ec().terminal_url().to_string()
    );
    assert_eq!(
        cfg.string("c2ec-provider-cardproc", "BASE_URL").unwrap(),
        world.cardproc().base_url().to_string()
    );
    assert_eq!(
        cfg.string("terminal", "CARDPROC_SECRET").unwrap(),
        cfg.string("cardproc-user-terminal", "SECRET").unwrap()
    );
    let bind = cfg.string("c2ec", "BIND").unwrap();
    assert_eq!(bind, world.c2ec().app().addr().to_string());
    let wopid = withdraw(&world, "resume-1", 3).await;
    world.shutdown().await.unwrap();

    // The written configuration reaches the same services again (C2EC's address may have been
    // taken meanwhile: a free port then).
    cfg.set("c2ec", "BIND", "127.0.0.1:0");
    let again = World::from_config(&cfg)
        .unwrap()
        .bank_account(exchange("second"))
        .bank_account(BankAccount::new("alice", "Alice"))
        .start()
        .await
        .unwrap();
    assert_eq!(again.c2ec().terminal(), Some(&terminal), "terminal reused");
    let status = again
        .c2ec()
        .terminal_client()
        .status(&wopid, None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(status.status, WithdrawalStatus::Confirmed);
    let bank = again.bank();
    assert_eq!(bank.exchange().unwrap().password, "second");
    bank.exchange_wire_gateway().config().await.unwrap();
    let names: Vec<String> = bank
        .admin()
        .accounts()
        .await
        .unwrap()
        .accounts
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "alice").count(),
        1,
        "{names:?}"
    );
    again.shutdown().await.unwrap();
}

/// C2EC with another provider needs no card processor.
#[tokio::test]
async fn c2ec_attests_with_any_provider() {
    let provider = MemoryProvider::new();
    let world = World::builder()
        .c2ec_with_provider(provider.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(world.c2ec().provider_url(), None);
    assert!(world.try_cardproc().is_none() && world.try_bank().is_none());
    let terminal = world.c2ec().terminal_client();
    let wopid = terminal
        .setup_withdrawal("any-1", SetupAmount::Fixed("CHF:5".parse().unwrap()))
        .await
        .unwrap()
        .withdrawal_id;
    world
        .c2ec()
        .integration()
        .select(&wopid, &selection(&world, 5))
        .await
        .unwrap();
    let tx = provider.pay(&wopid, "CHF:5".parse().unwrap(), Card::Approved);
    terminal.check(&wopid, &tx).await.unwrap();
    let done = terminal
        .status(&wopid, Some(WithdrawalStatus::Selected), POLL)
        .await
        .unwrap();
    assert_eq!(done.status, WithdrawalStatus::Confirmed);
    world.shutdown().await.unwrap();
}

/// What cannot work is refused before anything listens, in one sentence.
#[tokio::test]
async fn a_world_that_cannot_work_is_refused() {
    let err = World::builder().c2ec().start().await.unwrap_err();
    assert!(matches!(err, WorldError::Setup(_)), "{err:?}");
    assert!(err.to_string().contains("has no"), "{err}");

    let err = World::builder()
        .cardproc()
        .configure_cardproc(|c| {
            c.users
                .retain(|u| u.id != cardcash_world::CARDPROC_READER_ID)
        })
        .c2ec()
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no reader user"), "{err}");

    let err = World::builder()
        .storage(Storage::Postgres(
            "postgres://nobody@127.0.0.1:1/none".into(),
        ))
        .bank()
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, WorldError::Storage(_)), "{err:?}");
}

/// A world of only the card processor: its clients work, and `C2EC` is said to be missing
/// when asked for.
#[tokio::test]
async fn a_world_starts_only_what_it_is_asked_for() {
    let world = World::builder().cardproc().start().await.unwrap();
    let config = world.cardproc().pos().config().await.unwrap();
    assert_eq!(config.space_id, world.cardproc().space_id());
    assert!(world.try_c2ec().is_none());
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = world.c2ec();
    }));
    assert!(missing.is_err());
    world.shutdown().await.unwrap();
}

engine_test!(
    /// The merchant backend trusts the world's exchange and has the shop instance, paid to the
    /// shop's account at the world's bank.
    async fn the_merchant_trusts_the_exchange_and_has_the_shop(engine: Engine) {
        let world = world(engine)
            .bank()
            .exchange()
            .merchant()
            .start()
            .await
            .unwrap();
        let merchant = world.merchant();
        let config = merchant.app().merchant().config();
        assert_eq!(config.exchanges.len(), 1);
        assert_eq!(&config.exchanges[0].base_url, world.exchange().base_url());
        assert_eq!(
            config.exchanges[0].master_pub,
            world.exchange().master().public()
        );
        let store = merchant.app().merchant().store();
        let shop = store.instance("default").await.unwrap().expect("the shop");
        assert_eq!(shop.name, cardcash_world::SHOP_NAME);
        let accounts = store.accounts(shop.serial).await.unwrap();
        assert_eq!(accounts.len(), 1);
        assert!(
            accounts[0]
                .payto_uri
                .contains(&format!("/{}?", cardcash_world::SHOP_ACCOUNT)),
            "{accounts:?}"
        );
        assert!(merchant.shop_password().is_some());
        assert!(merchant.admin_token().starts_with("secret-token:"));
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// The storefront runs on the world's merchant: it provisioned the shop's products there
    /// and serves its catalogue.
    async fn the_storefront_sells_on_the_merchant(engine: Engine) {
        let world = world(engine)
            .bank()
            .exchange()
            .storefront()
            .start()
            .await
            .unwrap();
        let store = world.merchant().app().merchant().store();
        let shop = store.instance("default").await.unwrap().expect("the shop");
        assert!(!shop.deleted);
        let page = reqwest::get(world.storefront().base_url().as_str())
            .await
            .expect("the catalogue")
            .text()
            .await
            .expect("its text");
        assert!(page.contains("Pretty Pianos"), "{page}");
        assert!(page.contains("Beethoven"), "{page}");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    /// The card money reaches the bank: the processor pays the captured card payment of a
    /// withdrawal out of its settlement account into the exchange's account, once.
    async fn the_card_processor_pays_out_to_the_exchange(engine: Engine) {
        let world = world(engine)
            .bank()
            .cardproc()
            .c2ec()
            .start()
            .await
            .unwrap();
        let balance = |name: &'static str| {
            let admin = world.bank().admin();
            async move {
                let data = admin.account(name).await.unwrap();
                (data.balance.credit_debit_indicator, data.balance.amount)
            }
        };
        assert_eq!(
            balance(cardcash_world::CARDPROC_BANK_ACCOUNT).await.1,
            "CHF:0".parse().unwrap()
        );
        withdraw(&world, "payout-1", 9).await;
        let payouts = world
            .wait_for_payouts(&"CHF:20".parse().unwrap(), POLL)
            .await
            .unwrap();
        assert_eq!(payouts.len(), 1, "{payouts:?}");
        assert_eq!(payouts[0].state, PayoutState::Paid);
        let paid = payouts[0].amount();
        assert_eq!(paid, "CHF:20".parse().unwrap());
        assert_eq!(
            balance(cardcash_world::EXCHANGE_USER).await,
            (Direction::Credit, paid)
        );
        assert_eq!(
            balance(cardcash_world::CARDPROC_BANK_ACCOUNT).await,
            (Direction::Debit, paid)
        );
        // Nothing more arrives: waiting for more than was paid out ends with a sentence.
        let err = world
            .wait_for_payouts(&"CHF:21".parse().unwrap(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("paid out CHF:20 of CHF:21"),
            "{err}"
        );
        world.shutdown().await.unwrap();
    }
);
