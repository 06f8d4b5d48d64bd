//! The diagram against the real card processor service (`cardcash-cardproc` on 127.0.0.1:0):
//! C2EC attests through the signed Wallee-style API, the terminal pays with the test cards,
//! the processor's outage switch and refunds are the real ones.

use std::time::Duration;

use cardcash_api::cardproc::{CardNumber, CreateTransactionRequest, ProcessCardRequest};
use cardcash_c2ec::{ProviderConfig, admin};
use cardcash_client::CardprocClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Engine, Env, Options, WAIT, engine_test, reserve_pub, try_wait_for, wait_until,
};

const APPROVED: &str = "4000000000000002";
const DECLINED: &str = "4000000000000010";
const DELAYED: &str = "4000000000000028";

/// C2EC plus the world's real card processor (same engine, own database).
struct RealEnv {
    env: Env,
    /// The terminal's account at the processor.
    pos: CardprocClient,
}

async fn start(engine: Engine, opts: Options) -> RealEnv {
    let env = Env::real(engine, opts, Duration::from_millis(700)).await;
    let pos = env.world().cardproc().pos();
    RealEnv { env, pos }
}

impl RealEnv {
    /// The terminal runs the card payment at the processor (diagram 5/6); returns its id.
    async fn pay(&self, wopid: &str, amount: &str, pan: &str) -> String {
        let tx = self
            .pos
            .create_transaction(&CreateTransactionRequest {
                currency: "CHF".parse().unwrap(),
                amount: amount.parse().unwrap(),
                merchant_reference: wopid.to_owned(),
                terminal_id: Some(self.env.terminal_user.clone()),
                meta_data: Default::default(),
            })
            .await
            .unwrap();
        let card = ProcessCardRequest {
            pan: CardNumber(pan.into()),
            expiry_month: 12,
            expiry_year: 2099,
            cvc: Some("123".into()),
        };
        self.pos.process_card(tx.id, &card).await.unwrap();
        tx.id.to_string()
    }

    async fn refunded(&self, tx_id: &str) -> String {
        let tx = self
            .pos
            .read_transaction(tx_id.parse().unwrap())
            .await
            .unwrap();
        tx.refunded_amount().to_string()
    }

    async fn wait_refunded(&self, tx_id: &str, expect: &str) {
        if try_wait_for(WAIT, || async {
            (self.refunded(tx_id).await == expect).then_some(())
        })
        .await
        .is_none()
        {
            panic!(
                "transaction {tx_id} was not refunded {expect}: {}",
                self.refunded(tx_id).await
            );
        }
    }

    fn admin(&self) -> &str {
        self.env
            .world()
            .cardproc()
            .admin_token()
            .expect("the world sets an admin token")
    }

    async fn stop(self) {
        self.env.stop().await;
    }
}

engine_test!(
    async fn real_processor_happy_path_and_refund_via_transfer(engine: Engine) {
        let r = start(engine, Options::default()).await;
        let env = &r.env;
        let (wopid, _) = env.setup("CHF:20").await;
        let reserve = reserve_pub();
        assert_eq!(
            env.register(&wopid, &reserve).await.status(),
            StatusCode::OK
        );
        let tx = r.pay(&wopid, "20.00", APPROVED).await;
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        let incoming = env.incoming().await;
        assert_eq!(incoming.len(), 1);
        assert_eq!(incoming[0]["reserve_pub"], reserve.as_str());
        assert_eq!(incoming[0]["amount"], "CHF:20");
        let debit = incoming[0]["debit_account"].as_str().unwrap().to_owned();
        assert!(
            debit.starts_with("payto://card-transaction/127.0.0.1:")
                && debit.ends_with(&format!("/{tx}")),
            "{debit}"
        );

        // The exchange closes the reserve and sends CHF 19 back: refunded on the card.
        let body = json!({
            "request_uid": cardcash_util::base32::encode(&[5u8; 64]), "amount": "CHF:19",
            "exchange_base_url": "https://exchange.test/", "wtid": cardcash_util::base32::encode(&[6u8; 32]),
            "credit_account": debit,
        });
        let resp = env
            .exchange(Method::POST, "transfer")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        r.wait_refunded(&tx, "CHF:19").await;
        let resp = env
            .exchange(Method::POST, "transfer")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // The replay recorded no second transfer to refund.
        assert_eq!(env.transfer_count().await, 1);
        assert_eq!(
            r.refunded(&tx).await,
            "CHF:19",
            "replay refunds nothing more"
        );
        r.stop().await;
    }
);

engine_test!(
    async fn real_processor_declined_card_aborts(engine: Engine) {
        let r = start(engine, Options::default()).await;
        let (wopid, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = r.pay(&wopid, "20.00", DECLINED).await;
        assert_eq!(
            r.env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(r.env.wait_leaving(&wopid, "selected").await, "aborted");
        assert!(r.env.incoming().await.is_empty());
        r.stop().await;
    }
);

engine_test!(
    async fn real_processor_delayed_finality_and_outage(engine: Engine) {
        let r = start(engine, Options::default()).await;
        // Delayed finality: AUTHORIZED first, FULFILL later.
        let (w1, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&w1, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx1 = r.pay(&w1, "20.00", DELAYED).await;
        assert_eq!(
            r.env.check(&w1, &tx1).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(r.env.wait_leaving(&w1, "selected").await, "confirmed");

        // Outage: the processor answers 503 until it comes back.
        let (w2, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&w2, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx2 = r.pay(&w2, "20.00", APPROVED).await;
        r.pos.admin_set_outage(r.admin(), true).await.unwrap();
        assert_eq!(
            r.env.check(&w2, &tx2).await.status(),
            StatusCode::NO_CONTENT
        );
        // An attestation attempt failed on the outage and was rescheduled, not decided.
        wait_until(WAIT, || async { r.env.withdrawal(&w2).await.attempts >= 1 }).await;
        let st: Value = r.env.wallet_status(&w2, "").await;
        assert_eq!(
            st["status"], "selected",
            "no decision while the processor is down"
        );
        r.pos.admin_set_outage(r.admin(), false).await.unwrap();
        assert_eq!(r.env.wait_leaving(&w2, "selected").await, "confirmed");
        assert_eq!(r.env.incoming().await.len(), 2);
        r.stop().await;
    }
);

engine_test!(
    async fn real_processor_amount_mismatch_is_refunded(engine: Engine) {
        let r = start(engine, Options::default()).await;
        let (wopid, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = r.pay(&wopid, "2.00", APPROVED).await;
        assert_eq!(
            r.env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(r.env.wait_leaving(&wopid, "selected").await, "aborted");
        r.wait_refunded(&tx, "CHF:2").await;
        assert!(r.env.incoming().await.is_empty());
        r.stop().await;
    }
);

engine_test!(
    async fn provider_check_accepts_good_and_refuses_bad_credentials(engine: Engine) {
        let r = start(engine, Options::default()).await;
        let cardproc = r.env.world().cardproc();
        let reader = cardproc
            .reader_user()
            .expect("the world's reader user")
            .clone();
        let terminal = cardproc
            .terminal_user()
            .expect("the world's terminal user")
            .clone();
        let mut config = crate::helpers::config(&Options::default());
        config.provider = ProviderConfig {
            name: "cardproc".into(),
            base_url: cardproc.base_url().clone(),
            user_id: reader.id,
            secret: reader.secret.clone(),
            space_id: cardproc.space_id(),
        };
        let ok = admin::check_provider(&config).await.unwrap();
        assert!(ok.contains(&format!("accepts user {}", reader.id)), "{ok}");
        config.provider.secret = terminal.secret;
        assert!(admin::check_provider(&config).await.is_err());
        config.provider.user_id = 999;
        assert!(admin::check_provider(&config).await.is_err());
        r.stop().await;
    }
);

engine_test!(
    /// Against the real processor: the wallet (or the terminal) aborts before the terminal's
    /// check; the check is refused with 409 yet the captured payment is refunded in full, also
    /// when the payment only becomes final after the abort.
    async fn real_processor_abort_before_check_is_refunded(engine: Engine) {
        let r = start(engine, Options::default()).await;
        let wallet_abort = |wopid: String| {
            let http = r.env.http.clone();
            let url = r.env.url(&format!(
                "taler-integration/withdrawal-operation/{wopid}/abort"
            ));
            async move { http.post(url).send().await.unwrap().status() }
        };
        let (w1, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&w1, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx1 = r.pay(&w1, "20.00", APPROVED).await;
        assert_eq!(wallet_abort(w1.clone()).await, StatusCode::NO_CONTENT);
        let resp = r.env.check(&w1, &tx1).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(crate::helpers::code(resp).await, 5117);
        r.wait_refunded(&tx1, "CHF:20").await;

        // Not final yet when the terminal aborts: refunded once the processor fulfils it.
        let (w2, _) = r.env.setup("CHF:20").await;
        assert_eq!(
            r.env.register(&w2, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx2 = r.pay(&w2, "20.00", DELAYED).await;
        let resp = r
            .env
            .terminal(Method::POST, &format!("terminal/withdrawals/{w2}/abort"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.env.check(&w2, &tx2).await.status(), StatusCode::CONFLICT);
        r.wait_refunded(&tx2, "CHF:20").await;
        assert!(r.env.incoming().await.is_empty());
        r.stop().await;
    }
);

/// The PostgreSQL statements run on one thread, seen through sqlx's `sqlx::query` events. The
/// layer is this test binary's global subscriber (a thread's own default would race with the
/// callsite interest other tests' threads compute); it keeps only the events of the watched
/// thread, so with a current-thread runtime it sees every statement of the services a test
/// started there, and nothing of other tests.
#[derive(Default)]
struct Statements {
    watched: std::sync::Mutex<Option<std::thread::ThreadId>>,
    seen: std::sync::Mutex<Vec<String>>,
}

impl Statements {
    /// The binary's one instance, installed as the global subscriber on first use.
    fn watch_this_thread() -> &'static Statements {
        use tracing_subscriber::layer::SubscriberExt as _;
        static ONE: std::sync::OnceLock<&'static Statements> = std::sync::OnceLock::new();
        let statements = *ONE.get_or_init(|| {
            let statements: &'static Statements = Box::leak(Box::default());
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry().with(StatementLayer(statements)),
            )
            .expect("no other global subscriber in this test binary");
            statements
        });
        *statements.watched.lock().unwrap() = Some(std::thread::current().id());
        statements
    }

    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

struct StatementLayer(&'static Statements);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Sql(Option<String>);
        impl tracing::field::Visit for Sql {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "db.statement" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "db.statement" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        if event.metadata().target() != "sqlx::query"
            || *self.0.watched.lock().unwrap() != Some(std::thread::current().id())
        {
            return;
        }
        let mut sql = Sql(None);
        event.record(&mut sql);
        let sql = sql.0.unwrap_or_default();
        // The statement's first words name it well enough.
        let short: String = sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        self.0.seen.lock().unwrap().push(short);
    }
}

/// One withdrawal as `cardcash c2ec bench` plays it — setup, the terminal's long poll woken by
/// the registration, the card payment at the real processor, check, attestation, the final
/// long poll woken by the confirmation — costs ten PostgreSQL statements in C2EC and the card
/// processor together, as the tables in both `db/mod.rs` count: C2EC's setup, the first poll's
/// read, registration, check, the attestation's claim and confirmation and the final poll's
/// read (a woken poll answers from the notification); the processor's transaction insert, its
/// one-statement card processing and C2EC's attestation read (authentication reads nothing:
/// the terminal and the API user are cached).
#[tokio::test]
async fn a_withdrawal_costs_ten_statements_on_postgres() {
    if cardcash_testkit::pg_url().is_none() {
        eprintln!("{}", cardcash_testkit::SKIP_MESSAGE);
        return;
    }
    let statements = Statements::watch_this_thread();
    let r = start(Engine::Postgres, Options::default()).await;
    let env = &r.env;
    let withdraw = async || {
        let (wopid, _) = env.setup("CHF:20").await;
        let poll = env
            .terminal(
                Method::GET,
                &format!("terminal/withdrawals/{wopid}?old_state=pending&timeout_ms=10000"),
            )
            .send();
        let (polled, registered) = tokio::join!(poll, async {
            env.register(&wopid, &reserve_pub()).await.status()
        });
        assert_eq!(registered, StatusCode::OK);
        let polled: Value = polled.unwrap().json().await.unwrap();
        assert_eq!(polled["status"], "selected");
        let tx = r.pay(&wopid, "20.00", APPROVED).await;
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        let done: Value = env
            .terminal(
                Method::GET,
                &format!("terminal/withdrawals/{wopid}?old_state=selected&timeout_ms=10000"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(done["status"], "confirmed");
        assert_eq!(done["selected_reserve_pub"], polled["selected_reserve_pub"]);
    };
    // The first withdrawal fills the caches (terminal, API user).
    withdraw().await;
    statements.taken();
    withdraw().await;
    // The notifications to other processes go out by themselves, one statement per batch of
    // whatever is queued (here, with nothing else going on, one per state change).
    let seen: Vec<String> = statements
        .taken()
        .into_iter()
        .filter(|s| !s.starts_with("SELECT pg_notify"))
        .collect();
    assert_eq!(seen.len(), 10, "statements of one withdrawal: {seen:#?}");
    r.stop().await;
}
