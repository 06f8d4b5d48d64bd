//! Reserve closing, on both engines: a reserve not withdrawn within the closing delay (one
//! second here) is closed and its balance, minus the closing fee, wired back to the account
//! that funded it — at C2EC as a refund to the card, at the bank to the payer's account — once,
//! also when the gateway's answer is lost and the exchange restarts before recording it. The
//! reserve history shows the CLOSING entry with a valid signature (purpose 1040), the reserve
//! is empty, a later credit re-opens it, and the audit balances. A reserve that cannot be
//! closed (no account of the card-transaction method, then no closing fee for it) stays open,
//! says why, and is closed once the configuration and the fee are there, while the closer goes
//! on closing the others. A withdrawal racing a closing never overdraws the reserve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cardcash_api::bank_integration::BankWithdrawalOperationPostRequest;
use cardcash_api::corebank::{self, Direction};
use cardcash_api::exchange::ReserveHistoryEntry;
use cardcash_api::wire_gateway::{AddIncomingRequest, TransferRequest};
use cardcash_client::{ExchangeClient, HistoryRequest, SetupAmount};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ReserveClosed, ReserveHistoryRequest};
use cardcash_exchange::config::{CipherConfig, DenominationConfig, ExchangeConfig};
use cardcash_exchange::db::closing::{
    CloseOutcome, ClosingRow, NewClosing, closing_request_uid, closing_wtid,
};
use cardcash_exchange::db::{
    self, DenominationRow, ExchangeStore, IncomingTransfer, NewWithdrawal, Stored, WithdrawOutcome,
};
use cardcash_exchange::keys::store::DenominationPublic;
use cardcash_testkit::{BankAccount, Engine, WAIT, World, engine_test};
use cardcash_util::{
    Amount, BaseUrl, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, Timestamp,
};

use crate::helpers::coin;

/// The world's account sections and card account (`cardcash_world`'s constants).
const BANK_ACCOUNT_SECTION: &str = "exchange-account-1";
const C2EC_ACCOUNT_SECTION: &str = "exchange-account-2";
const CARD_ACCOUNT_SECTION: &str = "exchange-account-card";
const CARD_ACCOUNT: &str = "payto://card-transaction/c2ec.localhost/exchange";

fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().unwrap()
}

/// One denomination of CHF 5 without fees, and a closing delay of one second.
fn configure(c: &mut ExchangeConfig) {
    c.denominations = vec![DenominationConfig {
        value: chf("5"),
        fee_withdraw: chf("0"),
        fee_deposit: chf("0"),
        fee_refresh: chf("0"),
        fee_refund: chf("0"),
        ..coin("coin_chf_5", CipherConfig::Rsa { bits: 1024 }, "5", "0")
    }];
    c.reserve_closing_delay = RelativeTime::from_secs(1);
}

// ---------------------------------------------------------------- a Wire Gateway in between

/// A Wire Gateway in front of a real one: forwards every request as it came, records the
/// bodies of `POST /transfer`, and while `lose_answers` is set answers them 502 after the real
/// gateway executed them (a crash between sending and recording, as the exchange sees it).
#[derive(Clone, Default)]
struct Proxy {
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    upstream: Mutex<Option<String>>,
    lose_answers: AtomicBool,
    transfers: Mutex<Vec<TransferRequest>>,
    http: reqwest::Client,
}

impl Proxy {
    async fn start(&self) -> BaseUrl {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = BaseUrl::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    fn set_upstream(&self, url: &BaseUrl) {
        *self.state.upstream.lock().unwrap() = Some(url.to_string());
    }

    fn lose_answers(&self, lose: bool) {
        self.state.lose_answers.store(lose, Ordering::SeqCst);
    }

    fn transfers(&self) -> Vec<TransferRequest> {
        self.state.transfers.lock().unwrap().clone()
    }
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let state = &proxy.state;
    let upstream = state.upstream.lock().unwrap().clone().expect("upstream");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = state
        .http
        .request(
            method.clone(),
            format!("{}{path}", upstream.trim_end_matches('/')),
        )
        .body(body.clone());
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    if method == Method::POST && uri.path().ends_with("/transfer") {
        state
            .transfers
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).expect("a transfer request"));
        if state.lose_answers.load(Ordering::SeqCst) {
            return (StatusCode::BAD_GATEWAY, "answer lost").into_response();
        }
    }
    let mut response = (status, bytes).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}

// ---------------------------------------------------------------- helpers

async fn audit_clean(store: &ExchangeStore) -> db::AuditSums {
    let report = cardcash_exchange::audit::audit(store).await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    report.sums
}

/// Waits until the reserve has `n` closings, the last one done (its transfer accepted, or
/// nothing to send); returns them.
async fn closed(store: &ExchangeStore, reserve: &EddsaPublicKey, n: usize) -> Vec<ClosingRow> {
    cardcash_testkit::wait_for(WAIT, || async {
        let closings = store.closings(*reserve).await.unwrap();
        (closings.len() == n && closings.iter().all(|c| c.done)).then_some(closings)
    })
    .await
}

/// The reserve's whole history (the reserve signs `start = 0`).
async fn history(
    client: &ExchangeClient,
    reserve: &EddsaPrivateKey,
) -> (Amount, Vec<ReserveHistoryEntry>) {
    let h = client
        .reserve_history(
            &reserve.public(),
            0,
            &reserve.sign(&ReserveHistoryRequest { start_off: 0 }),
        )
        .await
        .unwrap()
        .expect("a reserve with history");
    (h.balance, h.history)
}

/// Checks a CLOSING entry against the closing row: the C exchange's v23 fields, signed with
/// purpose 1040 by a signing key `/keys` lists, over the payto URI exactly as sent.
async fn assert_closing_entry(
    client: &ExchangeClient,
    reserve: &EddsaPublicKey,
    entry: &ReserveHistoryEntry,
    row: &ClosingRow,
) {
    let ReserveHistoryEntry::Closing {
        amount,
        receiver_account_details,
        wtid,
        exchange_pub,
        exchange_sig,
        timestamp,
        closing_fee,
    } = entry
    else {
        panic!("not a CLOSING entry: {entry:?}");
    };
    assert_eq!(
        (amount, closing_fee, wtid, *timestamp),
        (&row.amount, &row.closing_fee, &row.wtid, row.execution_date)
    );
    assert_eq!(receiver_account_details.to_string(), row.receiver_payto);
    let message = ReserveClosed {
        timestamp: *timestamp,
        closing_amount: *amount,
        closing_fee: *closing_fee,
        reserve_pub: *reserve,
        h_payto: cardcash_crypto::wire::h_payto(&receiver_account_details.to_string()),
        wtid: *wtid.as_bytes(),
    };
    cardcash_crypto::verify(exchange_pub, exchange_sig, &message)
        .expect("the CLOSING entry's signature (1040) verifies");
    let keys = client.keys().await.unwrap();
    assert!(keys.signkeys.iter().any(|k| k.key == *exchange_pub));
    // Another amount is not what was signed.
    let forged = ReserveClosed {
        closing_amount: chf("0.01").checked_add(amount).unwrap_or(*amount),
        ..message
    };
    assert!(cardcash_crypto::verify(exchange_pub, exchange_sig, &forged).is_err());
}

/// The exchange's `/metrics` value of `name`.
async fn metric(base_url: &BaseUrl, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base_url}metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A card payment of `amount` through the world's terminal, C2EC and card processor that
/// funds `reserve`; returns the card processor's transaction id.
async fn pay_by_card(world: &World, reserve: &EddsaPublicKey, amount: &str) -> u64 {
    let c2ec = world.c2ec();
    let terminal = c2ec.terminal_client();
    let uid = cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>().unwrap());
    let wopid = terminal
        .setup_withdrawal(&uid, SetupAmount::Fixed(chf(amount)))
        .await
        .unwrap()
        .withdrawal_id;
    c2ec.integration()
        .select(
            &wopid,
            &BankWithdrawalOperationPostRequest {
                reserve_pub: *reserve,
                selected_exchange: c2ec.exchange_account().clone(),
                amount: None,
            },
        )
        .await
        .unwrap();
    world.pay_by_card(&wopid, &chf(amount)).await.unwrap()
}

/// Waits until the card processor shows `refunded` for transaction `tx`.
async fn card_refunded(world: &World, tx: u64, refunded: &str) {
    let pos = world.cardproc().pos();
    cardcash_testkit::wait_until(WAIT, || async {
        pos.read_transaction(tx).await.unwrap().refunded_amount() == chf(refunded)
    })
    .await;
}

// ---------------------------------------------------------------- back to the card

engine_test!(
    /// A card payment of CHF 20 funds a reserve that is never withdrawn: after the closing
    /// delay the exchange closes it and sends 19.99 (the closing fee of card-transaction is
    /// 0.01) through its debit-only card-transaction account on C2EC's Wire Gateway, which
    /// refunds it to the card. The reserve is empty, its history shows the CREDIT and a signed
    /// CLOSING, and the audit balances.
    async fn a_card_funded_reserve_is_closed_back_to_the_card(engine: Engine) {
        let world = cardcash_testkit::world(engine)
            .currency("CHF".parse().unwrap())
            .cardproc()
            .c2ec()
            .configure_exchange(configure)
            .start()
            .await
            .unwrap();
        let reserve = EddsaPrivateKey::generate().unwrap();
        let tx = pay_by_card(&world, &reserve.public(), "20").await;

        let store = world.exchange().app().exchange().store();
        let closing = closed(store, &reserve.public(), 1).await.remove(0);
        assert_eq!(
            (closing.amount, closing.closing_fee, closing.transferred),
            (chf("20"), chf("0.01"), chf("19.99"))
        );
        assert!(
            closing
                .receiver_payto
                .starts_with("payto://card-transaction/")
                && closing.receiver_payto.ends_with(&format!("/{tx}")),
            "back to the card transaction that funded it: {}",
            closing.receiver_payto
        );
        assert_eq!(closing.account_section, CARD_ACCOUNT_SECTION);
        assert!(closing.gateway_row_id.is_some());
        assert_eq!(
            closing.request_uid,
            closing_request_uid(&reserve.public(), 0)
        );
        assert_eq!(closing.wtid.as_bytes(), reserve.public().as_bytes());
        card_refunded(&world, tx, "19.99").await;

        let client = world.exchange().client();
        let summary = client
            .reserve(&reserve.public(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(summary.balance, chf("0"));
        let (balance, entries) = history(&client, &reserve).await;
        assert_eq!(balance, chf("0"));
        assert_eq!(entries.len(), 2, "{entries:#?}");
        assert!(
            matches!(&entries[0], ReserveHistoryEntry::Credit { amount, sender_account_url, .. }
                if *amount == chf("20") && sender_account_url.to_string() == closing.receiver_payto)
        );
        assert_closing_entry(&client, &reserve.public(), &entries[1], &closing).await;
        assert_eq!(
            metric(
                world.exchange().base_url(),
                "exchange_reserves_closed_total"
            )
            .await,
            Some(1.0)
        );

        let sums = audit_clean(store).await;
        assert_eq!(
            (
                sums.closing.closed,
                sums.closing.fees,
                sums.closing.transferred,
                sums.closing.pending
            ),
            (chf("20"), chf("0.01"), chf("19.99"), chf("0"))
        );
        assert_eq!(sums.reserves_in, chf("20"));
        world.shutdown().await.unwrap();
    }
);

// ---------------------------------------------------------------- back to the bank account

engine_test!(
    /// A bank transfer of 10 funds a reserve; closed, 9.99 goes back to the payer's account.
    /// The bank's first answer is lost and the exchange restarts before it recorded anything:
    /// the new process sends the very same request (request_uid, amount, WTID = the reserve
    /// key, base URL), which the bank executes once. A later card payment of 3 re-opens the
    /// reserve (as in the C exchange: credited, expiration extended; the bank itself refuses a
    /// reserve key twice), which is closed again, to its new origin: 2.99 back to the card,
    /// under another WTID.
    async fn a_bank_funded_reserve_is_closed_back_once_across_a_restart(engine: Engine) {
        let proxy = Proxy::default();
        let proxy_url = proxy.start().await;
        let saved: Arc<Mutex<Option<ExchangeConfig>>> = Arc::default();
        let (p, save) = (proxy.clone(), saved.clone());
        let mut world = cardcash_testkit::world(engine)
            .currency("CHF".parse().unwrap())
            .bank()
            .bank_account(BankAccount::new("payer", "Payer"))
            .cardproc()
            .c2ec()
            .configure_exchange(move |c| {
                configure(c);
                let account = c
                    .accounts
                    .iter_mut()
                    .find(|a| a.section == BANK_ACCOUNT_SECTION)
                    .unwrap();
                let gateway = account.gateway.as_mut().unwrap();
                p.set_upstream(&gateway.url);
                gateway.url = proxy_url;
                *save.lock().unwrap() = Some(c.clone());
            })
            .start()
            .await
            .unwrap();
        let bank = world.bank();
        let admin = bank.admin();
        let payer = bank
            .app()
            .ledger()
            .payto()
            .account_uri("payer", "Payer")
            .unwrap();
        admin
            .create_transaction(
                "admin",
                &corebank::CreateTransactionRequest {
                    payto_uri: payer.clone().with_param("message", "pocket money"),
                    amount: Some(chf("100")),
                    request_uid: None,
                },
            )
            .await
            .unwrap();
        let balance = async |name: &str| {
            let b = admin.account(name).await.unwrap().balance;
            assert_eq!(b.credit_debit_indicator, Direction::Credit, "{name}: {b:?}");
            b.amount
        };
        let gateway = bank.exchange_wire_gateway();
        let reserve = EddsaPrivateKey::generate().unwrap();

        // The bank executes the closing's transfer (100 − 10 + 9.99), the exchange never hears.
        proxy.lose_answers(true);
        gateway
            .add_incoming(&AddIncomingRequest {
                amount: chf("10"),
                reserve_pub: reserve.public(),
                debit_account: payer.clone(),
            })
            .await
            .unwrap();
        cardcash_testkit::wait_until(WAIT, || async {
            !proxy.transfers().is_empty() && balance("payer").await == chf("99.99")
        })
        .await;
        let store = world.exchange().app().exchange().store();
        let lost = store.closings(reserve.public()).await.unwrap();
        assert_eq!(lost.len(), 1);
        assert!(
            !lost[0].done && lost[0].gateway_row_id.is_none(),
            "{lost:?}"
        );
        let old_base_url = world.exchange().base_url().clone();

        // The exchange stops before recording; a new process (another port) takes over.
        world.take_exchange().unwrap().shutdown().await;
        proxy.lose_answers(false);
        let config = saved.lock().unwrap().clone().unwrap();
        let app = cardcash_exchange::App::build(config).await.unwrap();
        assert_ne!(app.base_url(), &old_base_url);
        let store = app.exchange().store();
        let first = closed(store, &reserve.public(), 1).await.remove(0);
        assert_eq!(
            (first.amount, first.closing_fee, first.transferred),
            (chf("10"), chf("0.01"), chf("9.99"))
        );
        assert_eq!(first.receiver_payto, payer.to_string());
        assert_eq!(first.account_section, BANK_ACCOUNT_SECTION);
        assert_eq!(first.exchange_base_url, old_base_url.to_string());

        // Once: the payer got 9.99 back once, the bank booked one transfer, the one recorded.
        assert_eq!(balance("payer").await, chf("99.99"));
        let outgoing = gateway
            .outgoing_history(&HistoryRequest::newest(20))
            .await
            .unwrap();
        assert_eq!(outgoing.len(), 1, "{outgoing:#?}");
        assert_eq!(
            (
                outgoing[0].amount,
                &outgoing[0].credit_account,
                outgoing[0].wtid.as_bytes()
            ),
            (chf("9.99"), &payer, reserve.public().as_bytes())
        );
        assert_eq!(first.gateway_row_id, Some(outgoing[0].row_id));
        let attempts = proxy.transfers();
        assert!(attempts.len() >= 2, "{attempts:#?}");
        assert!(attempts.iter().all(|t| t == &attempts[0]), "{attempts:#?}");
        assert_eq!(
            (attempts[0].request_uid, attempts[0].amount),
            (closing_request_uid(&reserve.public(), 0), chf("9.99"))
        );

        let client = ExchangeClient::new(app.base_url().clone()).unwrap();
        assert_eq!(
            client
                .reserve(&reserve.public(), Duration::ZERO)
                .await
                .unwrap()
                .balance,
            chf("0")
        );
        let (_, entries) = history(&client, &reserve).await;
        assert_eq!(entries.len(), 2, "{entries:#?}");
        assert_closing_entry(&client, &reserve.public(), &entries[1], &first).await;

        // A later card payment re-opens the reserve; it is closed again, back to the card,
        // under another WTID.
        let tx = pay_by_card(&world, &reserve.public(), "3").await;
        let both = closed(store, &reserve.public(), 2).await;
        let second = &both[1];
        assert_eq!(
            (second.close_number, second.amount, second.transferred),
            (1, chf("3"), chf("2.99"))
        );
        assert!(second.receiver_payto.ends_with(&format!("/{tx}")));
        assert_eq!(second.account_section, CARD_ACCOUNT_SECTION);
        card_refunded(&world, tx, "2.99").await;
        let request_uid = closing_request_uid(&reserve.public(), 1);
        assert_eq!(second.request_uid, request_uid);
        assert_eq!(
            second.wtid,
            closing_wtid(&reserve.public(), 1, &request_uid)
        );
        assert_ne!(second.wtid, first.wtid);
        assert_eq!(balance("payer").await, chf("99.99"));
        let (balance_now, entries) = history(&client, &reserve).await;
        assert_eq!(balance_now, chf("0"));
        assert_eq!(entries.len(), 4, "{entries:#?}");
        assert_closing_entry(&client, &reserve.public(), &entries[3], second).await;

        let sums = audit_clean(store).await;
        assert_eq!(
            (
                sums.reserves_in,
                sums.closing.closed,
                sums.closing.fees,
                sums.closing.transferred
            ),
            (chf("13"), chf("13"), chf("0.02"), chf("12.98"))
        );
        app.shutdown().await.unwrap();
        world.shutdown().await.unwrap();
    }
);

// ---------------------------------------------------------------- what is missing

engine_test!(
    /// Without the card-transaction account a card-funded reserve cannot be closed: it stays
    /// open with its balance, the closer says what to configure (and counts it), and goes on
    /// closing a bank-funded reserve. After a restart with the account, the closing fee for
    /// card-transaction is what is missing (the offline key never set one); once uploaded the
    /// reserve is closed at once and the card refunded, minus that fee.
    async fn a_reserve_that_cannot_be_closed_stays_open_until_it_can(engine: Engine) {
        let saved: Arc<Mutex<Option<ExchangeConfig>>> = Arc::default();
        let save = saved.clone();
        let mut world = cardcash_testkit::world(engine)
            .currency("CHF".parse().unwrap())
            .bank()
            .bank_account(BankAccount::new("payer", "Payer"))
            .cardproc()
            .c2ec()
            .configure_exchange(move |c| {
                configure(c);
                c.accounts.retain(|a| a.section != CARD_ACCOUNT_SECTION);
                *save.lock().unwrap() = Some(c.clone());
            })
            .start()
            .await
            .unwrap();
        let card_reserve = EddsaPrivateKey::generate().unwrap();
        let tx = pay_by_card(&world, &card_reserve.public(), "20").await;
        let exchange = world.exchange();
        let store = exchange.app().exchange().store();
        let waiting = cardcash_testkit::wait_for(WAIT, || async {
            store
                .close_waits()
                .await
                .unwrap()
                .into_iter()
                .find(|w| w.reserve_pub == card_reserve.public())
        })
        .await;
        let c2ec_gateway = world.c2ec().wire_gateway_url().to_string();
        for part in [
            "payto://card-transaction/",
            "ENABLE_DEBIT = YES",
            c2ec_gateway.as_str(),
            C2EC_ACCOUNT_SECTION,
        ] {
            assert!(
                waiting.reason.contains(part),
                "{:?} lacks {part:?}",
                waiting.reason
            );
        }

        // The closer keeps running: a bank-funded reserve is closed meanwhile.
        let bank_reserve = EddsaPrivateKey::generate().unwrap();
        let bank = world.bank();
        let payer = bank
            .app()
            .ledger()
            .payto()
            .account_uri("payer", "Payer")
            .unwrap();
        bank.admin()
            .create_transaction(
                "admin",
                &corebank::CreateTransactionRequest {
                    payto_uri: payer.clone().with_param("message", "pocket money"),
                    amount: Some(chf("10")),
                    request_uid: None,
                },
            )
            .await
            .unwrap();
        bank.exchange_wire_gateway()
            .add_incoming(&AddIncomingRequest {
                amount: chf("5"),
                reserve_pub: bank_reserve.public(),
                debit_account: payer.clone(),
            })
            .await
            .unwrap();
        let back = closed(store, &bank_reserve.public(), 1).await.remove(0);
        assert_eq!(back.transferred, chf("4.99"));

        // The card-funded reserve is still open, waiting, and counted.
        let client = exchange.client();
        assert_eq!(
            client
                .reserve(&card_reserve.public(), Duration::ZERO)
                .await
                .unwrap()
                .balance,
            chf("20")
        );
        assert!(
            store
                .closings(card_reserve.public())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            metric(exchange.base_url(), "exchange_reserves_unclosable").await,
            Some(1.0)
        );
        assert!(
            metric(exchange.base_url(), "exchange_reserve_close_refusals_total")
                .await
                .is_some_and(|n| n >= 1.0)
        );
        audit_clean(store).await;

        // The operator adds the card account and restarts: now the fee is missing.
        let now = Timestamp::now().as_secs();
        let fee = exchange.master().wire_fee(
            "card-transaction",
            Timestamp::from_secs(now - 3600),
            Timestamp::from_secs(now + 365 * 86_400),
            chf("0"),
            chf("0.50"),
        );
        let mut config = saved.lock().unwrap().clone().unwrap();
        let mut card = config
            .accounts
            .iter()
            .find(|a| a.section == C2EC_ACCOUNT_SECTION)
            .unwrap()
            .clone();
        card.section = CARD_ACCOUNT_SECTION.into();
        card.payto = CARD_ACCOUNT.parse().unwrap();
        (card.enable_debit, card.enable_credit) = (true, false);
        config.accounts.push(card);
        world.take_exchange().unwrap().shutdown().await;
        let app = cardcash_exchange::App::build(config).await.unwrap();
        let store = app.exchange().store();
        cardcash_testkit::wait_until(WAIT, || async {
            store.close_waits().await.unwrap().iter().any(|w| {
                w.reserve_pub == card_reserve.public()
                    && w.reason
                        .contains("no closing fee for wire method card-transaction")
            })
        })
        .await;
        assert!(
            store
                .closings(card_reserve.public())
                .await
                .unwrap()
                .is_empty()
        );

        // The offline key's fee arrives: the closer wakes and closes it.
        let client = ExchangeClient::new(app.base_url().clone()).unwrap();
        client.management().set_wire_fee(&fee).await.unwrap();
        let closing = closed(store, &card_reserve.public(), 1).await.remove(0);
        assert_eq!(
            (closing.amount, closing.closing_fee, closing.transferred),
            (chf("20"), chf("0.50"), chf("19.50"))
        );
        assert_eq!(closing.account_section, CARD_ACCOUNT_SECTION);
        card_refunded(&world, tx, "19.50").await;
        assert!(store.close_waits().await.unwrap().is_empty());
        cardcash_testkit::wait_until(WAIT, || async {
            metric(app.base_url(), "exchange_reserves_unclosable").await == Some(0.0)
        })
        .await;
        let sums = audit_clean(store).await;
        assert_eq!(
            (
                sums.closing.closed,
                sums.closing.fees,
                sums.closing.transferred
            ),
            (chf("25"), chf("0.51"), chf("24.49"))
        );
        app.shutdown().await.unwrap();
        world.shutdown().await.unwrap();
    }
);

// ---------------------------------------------------------------- racing a withdrawal

fn bytes<const N: usize>(tag: u8, n: u64) -> [u8; N] {
    let mut b = [tag; N];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b
}

engine_test!(
    /// A withdrawal and a closing of the same expired reserve at once: one of them wins and
    /// the other sees what it left. Whole withdrawals either take everything (the closing
    /// changes nothing) or find nothing (the closing took it all); partial ones leave the rest
    /// to the closing. No reserve ever ends below zero or pays out more than it received.
    async fn a_withdrawal_racing_a_closing_never_overdraws(engine: Engine) {
        let currency = Currency::new("CHF").unwrap();
        let database = cardcash_testkit::database(engine, db::SERVICE, &db::SCHEMA).await;
        let store = ExchangeStore::new(database, currency);
        let denom = DenominationRow {
            serial: 0,
            h_denom_pub: HashCode::from_bytes(bytes(b'd', 1)),
            public: DenominationPublic::Cs(bytes(b'k', 1)),
            section: "coin_chf_1".into(),
            value: chf("1"),
            fee_withdraw: chf("0"),
            fee_deposit: chf("0"),
            fee_refresh: chf("0"),
            fee_refund: chf("0"),
            stamp_start: Timestamp::from_secs(100),
            stamp_expire_withdraw: Timestamp::from_secs(2_000_000_000),
            stamp_expire_deposit: Timestamp::from_secs(3_000_000_000),
            stamp_expire_legal: Timestamp::from_secs(4_000_000_000),
            master_sig: EddsaSignature::from_bytes(bytes(b'M', 1)),
            revocation: None,
        };
        assert_eq!(
            store.insert_denomination(denom.clone()).await.unwrap(),
            Stored::Inserted
        );
        let serial = store
            .key_material()
            .await
            .unwrap()
            .denominations
            .into_iter()
            .find(|d| d.h_denom_pub == denom.h_denom_pub)
            .unwrap()
            .serial;
        let (mut withdrawals_won, mut closings_won) = (0, 0);
        for n in 1..=24u64 {
            let reserve = EddsaPublicKey::from_bytes(bytes(b'r', n));
            // Credited with no closing delay: expired at once.
            store
                .credit_reserves(
                    "exchange-account-1".into(),
                    vec![IncomingTransfer {
                        wire_reference: n,
                        amount: chf("1"),
                        debit_payto: format!("payto://x-taler-bank/bank.example/payer{n}"),
                        execution_date: Timestamp::from_secs(1_000),
                        reserve_pub: Ok(reserve),
                    }],
                    n,
                    RelativeTime::from_secs(0),
                )
                .await
                .unwrap();
            let expired = cardcash_testkit::wait_for(WAIT, || async {
                store
                    .expired_reserves(db::now(), true, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|r| r.reserve_pub == reserve)
            })
            .await;
            let origin = expired.origin.clone().unwrap();
            let whole = n % 2 == 0;
            let take = if whole { chf("1") } else { chf("0.6") };
            let withdrawal = NewWithdrawal {
                h_blind_ev: HashCode::from_bytes(bytes(b'p', n)),
                denom_serial: serial,
                reserve_sig: EddsaSignature::from_bytes(bytes(b'R', n)),
                amount_with_fee: take,
                denom_sig: bytes::<40>(b's', n).to_vec(),
                cs_nonce: None,
            };
            let closing = NewClosing {
                reserve_pub: reserve,
                close_number: expired.close_number,
                origin_serial: origin.credit_serial,
                now: db::now(),
                receiver_payto: origin.debit_payto.clone(),
                account_section: origin.account_section.clone(),
                closing_fee: chf("0.01"),
                exchange_base_url: "http://exchange.example/".into(),
            };
            let (withdrawn, closed) = tokio::join!(
                store.batch_withdraw(reserve, vec![withdrawal], db::now()),
                store.close_reserve(closing)
            );
            match (withdrawn.unwrap(), closed.unwrap()) {
                (WithdrawOutcome::Done(_), CloseOutcome::NotDue) if whole => withdrawals_won += 1,
                (WithdrawOutcome::Done(_), CloseOutcome::Closed(c)) if !whole => {
                    assert_eq!((c.amount, c.transferred), (chf("0.4"), chf("0.39")));
                    withdrawals_won += 1;
                }
                (WithdrawOutcome::InsufficientFunds { balance, .. }, CloseOutcome::Closed(c)) => {
                    assert_eq!((balance, c.amount), (chf("0"), chf("1")));
                    closings_won += 1;
                }
                other => panic!("reserve {n}: {other:?}"),
            }
            let left = store.reserve(reserve).await.unwrap().unwrap().balance;
            assert_eq!(left, chf("0"), "reserve {n}");
        }
        assert_eq!(withdrawals_won + closings_won, 24);
        let sums = audit_clean(&store).await;
        assert_eq!(sums.reserves_in, chf("24"));
        assert_eq!(
            sums.withdrawn_with_fee.to_units() + sums.closing.closed.to_units(),
            chf("24").to_units()
        );
    }
);
