//! Payouts to the merchant's bank account, with the real bank of the world: captured payments
//! paid out exactly once, refunds netted (before and after payout, a negative balance carried),
//! a bank outage retried, and no double payout when the processor restarts after the bank
//! booked a payout it had not recorded yet. The making-up rules are also driven directly through
//! the store (deterministic due times), the worker through the world.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardcash_api::cardproc::{
    IsoTime, Payout, PayoutState, RefundRequest, RefundType, TransactionState,
};
use cardcash_api::corebank::{CreateTransactionRequest, Direction};
use cardcash_cardproc::db::{NewPayout, PayoutRow};
use cardcash_cardproc::processing::{CARD_APPROVE, CARD_DECLINE, CARD_DELAY_FINALITY};
use cardcash_cardproc::{App, BankCredentials, CardprocConfig};
use cardcash_client::{Auth, CardprocClient};
use cardcash_testkit::{Engine, WAIT, World, engine_test, wait_for};
use cardcash_util::{Amount, BaseUrl, ShortHashCode};

use crate::helpers::{card, chf};

fn refund(external_id: &str, tx: u64, amount: &str) -> RefundRequest {
    RefundRequest {
        external_id: external_id.into(),
        transaction: tx,
        amount: amount.parse().unwrap(),
        refund_type: RefundType::MerchantInitiatedOnline,
        merchant_reference: None,
    }
}

fn amount(s: &str) -> Amount {
    format!("CHF:{s}").parse().unwrap()
}

/// The configuration the world's processor runs with (filled in by `configure_cardproc`).
type Slot = Arc<Mutex<Option<CardprocConfig>>>;

/// A world with the bank and the card processor paying out to the exchange's account;
/// `adjust` changes the payout configuration the world made. Returns the world and the
/// processor's final configuration (for a restart).
async fn start(
    engine: Engine,
    adjust: impl FnOnce(&mut cardcash_cardproc::PayoutConfig) + Send + 'static,
) -> (World, CardprocConfig) {
    let slot: Slot = Arc::default();
    let keep = slot.clone();
    let world = cardcash_testkit::world(engine)
        .bank()
        .cardproc()
        .configure_cardproc(move |c| {
            adjust(c.payout.as_mut().expect("the world configures payouts"));
            *keep.lock().unwrap() = Some(c.clone());
        })
        .start()
        .await
        .unwrap();
    let config = slot.lock().unwrap().take().unwrap();
    (world, config)
}

/// Pays `amount` CHF with `pan` at the world's point of sale.
async fn pay(world: &World, amount: &str, pan: &str) -> u64 {
    pay_with(&world.cardproc().pos(), amount, pan).await
}

async fn pay_with(pos: &CardprocClient, amount: &str, pan: &str) -> u64 {
    let tx = pos
        .create_transaction(&cardcash_api::cardproc::CreateTransactionRequest {
            currency: chf(),
            amount: amount.parse().unwrap(),
            merchant_reference: "W".into(),
            terminal_id: None,
            meta_data: Default::default(),
        })
        .await
        .unwrap();
    pos.process_card(tx.id, &card(pan)).await.unwrap().id
}

/// The world's exchange account at the bank (where payouts go).
fn exchange(world: &World) -> String {
    world.bank().exchange().unwrap().username.clone()
}

/// The signed balance of a bank account, e.g. `-CHF:3` or `CHF:3`.
async fn balance(world: &World, name: &str) -> String {
    let data = world.bank().admin().account(name).await.unwrap();
    let sign = match data.balance.credit_debit_indicator {
        Direction::Credit => "",
        Direction::Debit => "-",
    };
    format!("{sign}{}", data.balance.amount)
}

async fn payouts(client: &CardprocClient) -> Vec<Payout> {
    let mut list = client.payouts().await.unwrap().payouts;
    list.reverse(); // oldest first
    list
}

/// Waits until `n` payouts exist and none is `PENDING`.
async fn settled(client: &CardprocClient, n: usize) -> Vec<Payout> {
    wait_for(WAIT, || async {
        let list = payouts(client).await;
        (list.len() == n && list.iter().all(|p| p.state != PayoutState::Pending)).then_some(list)
    })
    .await
}

/// The payouts the bank received at the exchange's account (their subjects).
async fn received(world: &World) -> Vec<(String, Amount)> {
    let exchange = world.bank().exchange().unwrap().clone();
    let client = world.bank().client(exchange.auth());
    client
        .transactions(
            &exchange.username,
            &cardcash_client::HistoryRequest::default(),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.subject.starts_with("cardproc payout "))
        .map(|t| (t.subject, t.amount))
        .collect()
}

engine_test!(
    async fn captured_payments_are_paid_out_once(engine: Engine) {
        let (world, config) = start(engine, |p| p.delay = Duration::ZERO).await;
        let settlement = config.payout.unwrap().bank_account;
        let reader = world.cardproc().reader();
        let a = pay(&world, "10.00", CARD_APPROVE).await;
        let b = pay(&world, "5.50", CARD_APPROVE).await;
        pay(&world, "99.00", CARD_DECLINE).await;
        // Paid out as the captures arrive: one payout or two, but each capture exactly once.
        let first = wait_for(WAIT, || async {
            let list = payouts(&reader).await;
            let paid: Amount = list
                .iter()
                .filter(|p| p.state == PayoutState::Paid)
                .fold(amount("0"), |s, p| s.checked_add(&p.amount()).unwrap());
            (paid == amount("15.5")).then_some(list)
        })
        .await;
        let store = world.cardproc().app().store();
        let mut covered = Vec::new();
        for p in &first {
            assert_eq!(p.currency, chf(), "{engine}");
            assert!(
                p.bank_transaction_id.is_some() && p.paid_on.is_some(),
                "{engine}"
            );
            covered.extend(store.payout_items(p.id).await.unwrap().0);
        }
        covered.sort_unstable();
        assert_eq!(covered, vec![a, b], "{engine}: each capture in one payout");
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:15.5",
            "{engine}"
        );
        assert_eq!(balance(&world, &settlement).await, "-CHF:15.5", "{engine}");

        // A delayed approval is paid out once it becomes final.
        let c = pay(&world, "2.25", CARD_DELAY_FINALITY).await;
        let list = settled(&reader, first.len() + 1).await;
        let last = list.last().unwrap();
        assert_eq!(
            (last.amount(), last.transaction_count),
            (amount("2.25"), 1),
            "{engine}"
        );
        assert_eq!(store.payout_items(last.id).await.unwrap().0, vec![c]);
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:17.75",
            "{engine}"
        );
        let got = received(&world).await;
        assert_eq!(got.len(), list.len(), "{engine}: one transfer per payout");
        for p in &list {
            assert!(
                got.contains(&(p.subject.clone(), p.amount())),
                "{engine}: {p:?} in {got:?}"
            );
        }
        // Metrics: payouts made up and paid, the money paid (in 10^-8 units), the worker's steps.
        let metrics = reqwest::get(format!("{}metrics", world.cardproc().base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in {metrics}"))
        };
        let n = u64::try_from(list.len()).unwrap();
        assert_eq!(value("cardproc_payouts_created_total "), n, "{engine}");
        assert_eq!(value("cardproc_payouts_paid_total "), n, "{engine}");
        assert_eq!(
            value("cardproc_payout_units_paid_total "),
            1_775_000_000,
            "{engine}"
        );
        assert!(metrics.contains("worker=\"payout\""), "{engine}");
        // Terminals do not see payouts.
        let err = world.cardproc().pos().payouts().await.unwrap_err();
        assert_eq!(err.status(), Some(403), "{engine}");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    async fn refunds_are_netted_in_the_next_payout_with_a_carried_balance(engine: Engine) {
        let (world, _) = start(engine, |p| p.delay = Duration::ZERO).await;
        let reader = world.cardproc().reader();
        let a = pay(&world, "10.00", CARD_APPROVE).await;
        settled(&reader, 1).await;
        // A refund after the payout is netted in the next one.
        reader.refund(&refund("r1", a, "3.00")).await.unwrap();
        pay(&world, "5.00", CARD_APPROVE).await;
        let list = settled(&reader, 2).await;
        let p = &list[1];
        assert_eq!(
            (p.amount(), p.refund_count, p.state),
            (amount("2"), 1, PayoutState::Paid),
            "{engine}: {p:?}"
        );
        // Refunds larger than the next captures: nothing wired, the rest carried.
        reader.refund(&refund("r2", a, "7.00")).await.unwrap();
        pay(&world, "4.00", CARD_APPROVE).await;
        let list = settled(&reader, 3).await;
        let p = &list[2];
        assert_eq!(
            (p.state, p.amount(), p.debt_amount.to_amount(chf())),
            (PayoutState::Netted, amount("0"), amount("3")),
            "{engine}: {p:?}"
        );
        assert!(p.bank_transaction_id.is_none(), "{engine}");
        // The carried balance is settled first.
        pay(&world, "10.00", CARD_APPROVE).await;
        let list = settled(&reader, 4).await;
        let p = &list[3];
        assert_eq!(
            (p.amount(), p.carried_amount.to_amount(chf())),
            (amount("7"), amount("3")),
            "{engine}: {p:?}"
        );
        // Captured 29, refunded 10: 19 paid out, in three transfers.
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:19",
            "{engine}"
        );
        assert_eq!(received(&world).await.len(), 3, "{engine}");
        world.shutdown().await.unwrap();
    }
);

// The making-up rules on the store, with chosen due times (no worker: no payout configured).
engine_test!(
    async fn store_nets_refunds_before_and_after_payout(engine: Engine) {
        let world = cardcash_testkit::world(engine)
            .cardproc()
            .start()
            .await
            .unwrap();
        let cp = world.cardproc();
        let (pos, reader, store) = (cp.pos(), cp.reader(), cp.app().store());
        let uid = |n: u8| ShortHashCode::from_bytes([n; 32]);
        let new = |n: u8, fee: &str| NewPayout {
            space_id: cp.space_id(),
            currency: chf(),
            due_before: IsoTime::now(),
            now: IsoTime::now(),
            fee: amount(fee),
            request_uid: uid(n),
        };
        // Nothing captured: nothing made up.
        assert_eq!(store.create_payout(new(1, "0")).await.unwrap().0, None);
        let a = pay_with(&pos, "10.00", CARD_APPROVE).await;
        let b = pay_with(&pos, "4.00", CARD_APPROVE).await;
        // A refund before the payout is netted in the same payout.
        reader.refund(&refund("r1", a, "1.50")).await.unwrap();
        let p1 = store
            .create_payout(new(1, "0.25"))
            .await
            .unwrap()
            .0
            .unwrap();
        let expect = |p: &PayoutRow, amount_: &str, debt: &str| {
            assert_eq!(
                (p.amount, p.debt),
                (amount(amount_), amount(debt)),
                "{engine}: {p:?}"
            );
        };
        assert_eq!(
            (
                p1.captured,
                p1.refunded,
                p1.fees,
                p1.transactions,
                p1.refunds
            ),
            (amount("14"), amount("1.5"), amount("0.5"), 2, 1),
            "{engine}"
        );
        expect(&p1, "12", "0");
        assert_eq!(p1.state, PayoutState::Pending, "{engine}");
        assert_eq!(
            store.payout_items(p1.id).await.unwrap().0,
            vec![a, b],
            "{engine}"
        );
        // Nothing new is due: no second payout, the first is not repeated.
        assert_eq!(store.create_payout(new(2, "0")).await.unwrap().0, None);
        // A capture not yet due waits.
        let c = pay_with(&pos, "3.00", CARD_APPROVE).await;
        let mut early = new(2, "0");
        early.due_before = IsoTime::from_micros(IsoTime::now().as_micros() - 3_600_000_000);
        assert_eq!(store.create_payout(early).await.unwrap().0, None);
        // Refunds after payout exceed the next capture: a netted payout carrying the rest.
        reader.refund(&refund("r2", a, "8.50")).await.unwrap();
        reader.refund(&refund("r3", b, "4.00")).await.unwrap();
        let p2 = store.create_payout(new(2, "0")).await.unwrap().0.unwrap();
        assert_eq!(
            (p2.captured, p2.refunded, p2.state),
            (amount("3"), amount("12.5"), PayoutState::Netted),
            "{engine}"
        );
        expect(&p2, "0", "9.5");
        assert_eq!(store.payout_items(p2.id).await.unwrap().0, vec![c]);
        let d = pay_with(&pos, "20.00", CARD_APPROVE).await;
        let p3 = store.create_payout(new(3, "0")).await.unwrap().0.unwrap();
        assert_eq!(p3.carried, amount("9.5"), "{engine}");
        expect(&p3, "10.5", "0");
        assert_eq!(store.payout_items(p3.id).await.unwrap(), (vec![d], vec![]));
        // Captured 37, refunded 14, fees 0.5: 22.5 over all payouts.
        let total = [&p1, &p2, &p3]
            .iter()
            .fold(amount("0"), |s, p| s.checked_add(&p.amount).unwrap());
        assert_eq!(total, amount("22.5"), "{engine}");
        // A request_uid is never reused.
        pay_with(&pos, "1.00", CARD_APPROVE).await;
        assert!(store.create_payout(new(3, "0")).await.is_err(), "{engine}");
        world.shutdown().await.unwrap();
    }
);

/// A TCP relay to `target` that refuses connections while `up` is false (the bank is down).
fn relay(target: SocketAddr, up: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { continue };
            if !up.load(Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            let Ok(outbound) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        }
    });
    addr
}

engine_test!(
    async fn a_bank_outage_is_retried(engine: Engine) {
        let up = Arc::new(AtomicBool::new(false));
        let switch = up.clone();
        let (world, _) = start(engine, move |p| {
            p.delay = Duration::ZERO;
            let bank: SocketAddr = p
                .bank_url
                .as_url()
                .socket_addrs(|| None)
                .unwrap()
                .into_iter()
                .next()
                .unwrap();
            let addr = relay(bank, switch);
            p.bank_url = BaseUrl::parse(&format!("http://{addr}/")).unwrap();
        })
        .await;
        let reader = world.cardproc().reader();
        pay(&world, "6.00", CARD_APPROVE).await;
        // The payout is made up and its transfer fails, twice at least.
        let store = world.cardproc().app().store();
        let failed = wait_for(WAIT, || async {
            let list = store
                .payouts(world.cardproc().space_id(), 10)
                .await
                .unwrap();
            list.first()
                .filter(|p| p.attempts >= 2 && p.state == PayoutState::Pending)
                .cloned()
        })
        .await;
        assert!(failed.last_error.is_some(), "{engine}");
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:0",
            "{engine}"
        );
        // The bank is back: the same payout is wired, once.
        up.store(true, Ordering::SeqCst);
        let list = settled(&reader, 1).await;
        assert_eq!(
            (list[0].id, list[0].state, list[0].amount()),
            (failed.id, PayoutState::Paid, amount("6")),
            "{engine}"
        );
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:6",
            "{engine}"
        );
        assert_eq!(received(&world).await.len(), 1, "{engine}");
        world.shutdown().await.unwrap();
    }
);

engine_test!(
    async fn a_restart_after_the_bank_booked_does_not_pay_twice(engine: Engine) {
        // A long delay: the worker makes up nothing by itself; the test makes up the payout.
        let (mut world, config) = start(engine, |p| p.delay = Duration::from_secs(86_400)).await;
        let cp = world.cardproc();
        let (reader_user, space) = (cp.reader_user().unwrap().clone(), cp.space_id());
        let a = pay(&world, "8.00", CARD_APPROVE).await;
        let tx = cp.reader().read_transaction(a).await.unwrap();
        assert_eq!(tx.state, TransactionState::Fulfill, "{engine}");
        let (payout, _) = cp
            .app()
            .store()
            .create_payout(NewPayout {
                space_id: cp.space_id(),
                currency: chf(),
                due_before: IsoTime::now(),
                now: IsoTime::now(),
                fee: amount("0"),
                request_uid: ShortHashCode::from_bytes(
                    cardcash_crypto::random_bytes::<32>().unwrap(),
                ),
            })
            .await
            .unwrap();
        let payout = payout.unwrap();
        // The processor's transfer reached the bank, then the processor died before recording
        // it: the same request, as the worker sends it.
        let settings = config.payout.clone().unwrap();
        let BankCredentials::Password(password) = &settings.credentials else {
            panic!("the world logs in with a password");
        };
        let bank = world
            .bank()
            .client(Auth::basic(settings.bank_account.clone(), password.clone()));
        let booked = bank
            .create_transaction(
                &settings.bank_account,
                &CreateTransactionRequest {
                    payto_uri: settings
                        .payto
                        .clone()
                        .with_param("message", &payout.subject()),
                    amount: Some(payout.amount),
                    request_uid: Some(payout.request_uid),
                },
            )
            .await
            .unwrap();
        world.take_cardproc().unwrap().shutdown().await;
        // The restarted processor wires the pending payout again: the bank answers with the
        // transfer it booked.
        let app = App::build(config).await.unwrap();
        let reader = CardprocClient::new(
            app.base_url().as_str(),
            reader_user.id,
            &reader_user.secret,
            space,
        )
        .unwrap();
        let list = settled(&reader, 1).await;
        assert_eq!(
            (list[0].state, list[0].bank_transaction_id),
            (PayoutState::Paid, Some(booked.row_id)),
            "{engine}"
        );
        assert_eq!(
            balance(&world, &exchange(&world)).await,
            "CHF:8",
            "{engine}"
        );
        assert_eq!(received(&world).await.len(), 1, "{engine}");
        app.shutdown().await;
        world.shutdown().await.unwrap();
    }
);
