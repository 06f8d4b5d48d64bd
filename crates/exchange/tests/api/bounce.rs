//! Bounced transfers go back: an incoming transfer that funds no reserve (here a
//! KYC-authentication transfer) is sent back through the Wire Gateway of the account that
//! received it, minus the closing fee, exactly once — also when the gateway's answer is lost
//! and the exchange restarts before recording it; one that the closing fee eats whole is kept;
//! at C2EC the transfer back becomes a refund to the card. The audit balances after each.
//!
//! Neither the bank nor C2EC produces KYC-authentication transfers (the bank bounces malformed
//! subjects itself and has no `admin/add-kycauth`; C2EC's incoming rows are withdrawals), so the
//! exchange reads its gateway through [`Proxy`]: a pass-through Wire Gateway that shows the
//! incoming transfers of chosen keys as `KYCAUTH` rows. The money moves at the real bank (or
//! C2EC and its card processor), and the transfer back is executed by the real gateway.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cardcash_api::bank_integration::BankWithdrawalOperationPostRequest;
use cardcash_api::corebank::{CreateTransactionRequest, Direction};
use cardcash_api::wire_gateway::{
    AddIncomingRequest, IncomingBankTransaction, IncomingHistory, TransferRequest,
};
use cardcash_client::{HistoryRequest, SetupAmount};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_exchange::config::{CipherConfig, DenominationConfig, ExchangeConfig};
use cardcash_exchange::db::{self, BounceRow, ExchangeStore};
use cardcash_testkit::{BankAccount, Card, Engine, MemoryProvider, WAIT, engine_test};
use cardcash_util::{Amount, BaseUrl, EddsaPublicKey};

use crate::helpers::{coin, kudos};

/// The sections of the world's bank and C2EC accounts (`cardcash_world`'s constants).
const BANK_ACCOUNT_SECTION: &str = "exchange-account-1";
const C2EC_ACCOUNT_SECTION: &str = "exchange-account-2";

// ---------------------------------------------------------------- the proxy gateway

/// A Wire Gateway in front of a real one: forwards every request as it came (credentials
/// included), shows the incoming transfers of the keys in `kyc` as KYC-authentication
/// transfers, records the bodies of `POST /transfer`, and while `lose_answers` is set answers
/// them 502 after the real gateway executed them (a crash between sending and recording, as the
/// exchange sees it).
#[derive(Clone, Default)]
struct Proxy {
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    upstream: Mutex<Option<String>>,
    kyc: Mutex<HashSet<EddsaPublicKey>>,
    lose_answers: AtomicBool,
    transfers: Mutex<Vec<TransferRequest>>,
    http: reqwest::Client,
}

impl Proxy {
    /// Serves on 127.0.0.1:0 until the test's runtime ends; returns its base URL.
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

    fn show_as_kyc(&self, key: EddsaPublicKey) {
        self.state.kyc.lock().unwrap().insert(key);
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
    let upstream = state
        .upstream
        .lock()
        .unwrap()
        .clone()
        .expect("upstream set");
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
    let mut bytes = answer.bytes().await.unwrap_or_default();
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
    if method == Method::GET && uri.path().ends_with("/history/incoming") && status == 200 {
        let mut page: IncomingHistory = serde_json::from_slice(&bytes).expect("a history page");
        let kyc = state.kyc.lock().unwrap().clone();
        for row in &mut page.incoming_transactions {
            if let IncomingBankTransaction::Reserve {
                row_id,
                date,
                amount,
                credit_fee,
                debit_account,
                credit_account,
                reserve_pub,
            } = row.clone()
                && kyc.contains(&reserve_pub)
            {
                *row = IncomingBankTransaction::KycAuth {
                    row_id,
                    date,
                    amount,
                    credit_fee,
                    debit_account,
                    credit_account,
                    account_pub: reserve_pub,
                };
            }
        }
        bytes = serde_json::to_vec(&page).unwrap().into();
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

/// Waits until the bounce of `wire_reference` is done.
async fn bounce_done(store: &ExchangeStore, account: &str, wire_reference: u64) -> BounceRow {
    cardcash_testkit::wait_for(WAIT, || async {
        store
            .bounce(account.into(), wire_reference)
            .await
            .unwrap()
            .filter(|b| b.done)
    })
    .await
}

// ---------------------------------------------------------------- at the bank

engine_test!(
    /// A KYC-authentication transfer of 10 (this exchange does not do KYC) goes back to the
    /// payer's bank account as 9.99 (the closing fee is 0.01), through an account that may not
    /// pay merchants (no ENABLE_DEBIT). The bank's first answer is lost and the exchange
    /// restarts before it recorded anything: the new process sends the very same request
    /// (request_uid, amount, WTID, base URL), which the bank executes once. A KYC transfer of
    /// 0.01 is kept whole as the closing fee; a reserve transfer in the same page funds its
    /// reserve.
    async fn a_bounce_comes_back_once_minus_the_closing_fee(engine: Engine) {
        let proxy = Proxy::default();
        let proxy_url = proxy.start().await;
        let saved: Arc<Mutex<Option<ExchangeConfig>>> = Arc::default();
        let (p, save) = (proxy.clone(), saved.clone());
        let mut world = cardcash_testkit::world(engine)
            .currency("KUDOS".parse().unwrap())
            .bank()
            .bank_account(BankAccount::new("payer", "Payer"))
            .configure_exchange(move |c| {
                c.denominations = vec![coin(
                    "coin_kudos_1",
                    CipherConfig::Rsa { bits: 1024 },
                    "1",
                    "0.01",
                )];
                let account = c
                    .accounts
                    .iter_mut()
                    .find(|a| a.section == BANK_ACCOUNT_SECTION)
                    .unwrap();
                account.enable_debit = false;
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
        let payto = bank.app().ledger().payto();
        let payer = payto.account_uri("payer", "Payer").unwrap();
        admin
            .create_transaction(
                "admin",
                &CreateTransactionRequest {
                    payto_uri: payer.clone().with_param("message", "pocket money"),
                    amount: Some(kudos("100")),
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

        // The payer sends 10 with a KYC key, 0.01 with another, and 1 to a reserve.
        proxy.lose_answers(true);
        let (kyc, tiny, reserve) = (
            EddsaPrivateKey::generate().unwrap().public(),
            EddsaPrivateKey::generate().unwrap().public(),
            EddsaPrivateKey::generate().unwrap(),
        );
        proxy.show_as_kyc(kyc);
        proxy.show_as_kyc(tiny);
        let mut rows = Vec::new();
        for (key, amount) in [(kyc, "10"), (tiny, "0.01"), (reserve.public(), "1")] {
            let added = gateway
                .add_incoming(&AddIncomingRequest {
                    amount: kudos(amount),
                    reserve_pub: key,
                    debit_account: payer.clone(),
                })
                .await
                .unwrap();
            rows.push(added.row_id);
        }
        let funded = world
            .exchange()
            .client()
            .reserve(&reserve.public(), WAIT)
            .await
            .unwrap();
        assert_eq!(funded.balance, kudos("1"));

        // The bank executes the transfer back (100 − 11.01 + 9.99), but the exchange never hears
        // of it.
        cardcash_testkit::wait_until(WAIT, || async {
            !proxy.transfers().is_empty() && balance("payer").await == kudos("98.98")
        })
        .await;
        let store = world.exchange().app().exchange().store();
        let lost = store
            .bounce(BANK_ACCOUNT_SECTION.into(), rows[0])
            .await
            .unwrap()
            .unwrap();
        assert!(!lost.done && lost.gateway_row_id.is_none(), "{lost:?}");
        // The tiny one is kept whole: nothing is sent for it.
        let kept = bounce_done(store, BANK_ACCOUNT_SECTION, rows[1]).await;
        let decision = kept.decision.clone().unwrap();
        assert_eq!(
            (decision.closing_fee, decision.returned, kept.gateway_row_id),
            (kudos("0.01"), kudos("0"), None)
        );
        assert!(
            proxy
                .transfers()
                .iter()
                .all(|t| t.request_uid != kept.request_uid)
        );
        let old_base_url = world.exchange().base_url().clone();

        // The exchange stops before recording; a new process (another port) takes over.
        world.take_exchange().unwrap().shutdown().await;
        proxy.lose_answers(false);
        let config = saved.lock().unwrap().clone().unwrap();
        let app = cardcash_exchange::App::build(config).await.unwrap();
        assert_ne!(app.base_url(), &old_base_url);
        let store = app.exchange().store();
        let sent = bounce_done(store, BANK_ACCOUNT_SECTION, rows[0]).await;
        let decision = sent.decision.clone().unwrap();
        assert_eq!(
            (decision.closing_fee, decision.returned),
            (kudos("0.01"), kudos("9.99"))
        );
        assert_eq!(decision.exchange_base_url, old_base_url.to_string());

        // Once: the payer got 9.99 back once, the bank booked one transfer, the one recorded.
        assert_eq!(balance("payer").await, kudos("98.98"));
        let outgoing = gateway
            .outgoing_history(&HistoryRequest::newest(20))
            .await
            .unwrap();
        assert_eq!(outgoing.len(), 1, "{outgoing:#?}");
        assert_eq!(
            (
                outgoing[0].amount,
                &outgoing[0].credit_account,
                outgoing[0].wtid
            ),
            (kudos("9.99"), &payer, sent.wtid)
        );
        assert_eq!(sent.gateway_row_id, Some(outgoing[0].row_id));
        // Every attempt, before and after the restart, was the same request.
        let attempts = proxy.transfers();
        assert!(attempts.len() >= 2, "{attempts:#?}");
        assert!(attempts.iter().all(|t| t == &attempts[0]), "{attempts:#?}");
        assert_eq!(
            (attempts[0].request_uid, attempts[0].amount),
            (sent.request_uid, kudos("9.99"))
        );
        assert_eq!(
            sent.request_uid,
            db::bounce_request_uid(BANK_ACCOUNT_SECTION, rows[0])
        );

        let sums = audit_clean(store).await;
        assert_eq!(
            (
                sums.bounced_in,
                sums.bounced_returned,
                sums.bounce_fees,
                sums.bounces_pending
            ),
            (kudos("10.01"), kudos("9.99"), kudos("0.02"), kudos("0"))
        );
        assert_eq!(sums.reserves_in, kudos("1"));
        app.shutdown().await.unwrap();
        world.shutdown().await.unwrap();
    }
);

// ---------------------------------------------------------------- at C2EC

fn chf(text: &str) -> Amount {
    format!("CHF:{text}").parse().unwrap()
}

engine_test!(
    /// A card payment of CHF 20 whose withdrawal carries a KYC key instead of a reserve key
    /// (C2EC's account is credit-only): the exchange sends 19.99 back to the card transaction
    /// through C2EC's Wire Gateway, and C2EC refunds it to the card.
    async fn a_card_payment_that_funds_no_reserve_is_refunded_to_the_card(engine: Engine) {
        let proxy = Proxy::default();
        let proxy_url = proxy.start().await;
        let provider = MemoryProvider::new();
        let p = proxy.clone();
        let world = cardcash_testkit::world(engine)
            .currency("CHF".parse().unwrap())
            .c2ec_with_provider(provider.clone())
            .configure_exchange(move |c| {
                c.denominations = vec![DenominationConfig {
                    value: chf("5"),
                    fee_withdraw: chf("0"),
                    fee_deposit: chf("0"),
                    fee_refresh: chf("0"),
                    fee_refund: chf("0"),
                    ..coin("coin_chf_5", CipherConfig::Rsa { bits: 1024 }, "5", "0")
                }];
                let account = c
                    .accounts
                    .iter_mut()
                    .find(|a| a.section == C2EC_ACCOUNT_SECTION)
                    .unwrap();
                assert!(!account.enable_debit);
                let gateway = account.gateway.as_mut().unwrap();
                p.set_upstream(&gateway.url);
                gateway.url = proxy_url;
            })
            .start()
            .await
            .unwrap();
        let c2ec = world.c2ec();
        let terminal = c2ec.terminal_client();
        let uid = cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>().unwrap());
        let wopid = terminal
            .setup_withdrawal(&uid, SetupAmount::Fixed(chf("20")))
            .await
            .unwrap()
            .withdrawal_id;
        let kyc = EddsaPrivateKey::generate().unwrap().public();
        proxy.show_as_kyc(kyc);
        c2ec.integration()
            .select(
                &wopid,
                &BankWithdrawalOperationPostRequest {
                    reserve_pub: kyc,
                    selected_exchange: c2ec.exchange_account().clone(),
                    amount: None,
                },
            )
            .await
            .unwrap();
        let tx = provider.pay(&wopid, chf("20"), Card::Approved);
        terminal.check(&wopid, &tx).await.unwrap();

        // wirewatch imports the row as a KYC transfer; the exchange sends 19.99 back.
        let incoming = c2ec
            .wire_gateway()
            .incoming_history(&HistoryRequest::after(None, 10, Some(WAIT)))
            .await
            .unwrap();
        assert_eq!(incoming.len(), 1);
        let store = world.exchange().app().exchange().store();
        let sent = bounce_done(store, C2EC_ACCOUNT_SECTION, incoming[0].row_id()).await;
        assert_eq!(
            sent.decision.as_ref().map(|d| d.returned),
            Some(chf("19.99"))
        );
        assert!(sent.gateway_row_id.is_some());
        assert!(sent.debit_payto.starts_with("payto://card-transaction/"));
        // C2EC turns it into a refund to the card.
        cardcash_testkit::wait_until(WAIT, || async {
            provider.refunded(&tx) == Some(chf("19.99"))
        })
        .await;
        assert_eq!(provider.refund_count(), 1);
        assert_eq!(
            world
                .exchange()
                .client()
                .reserve(&kyc, Duration::ZERO)
                .await
                .map(|r| r.balance)
                .ok(),
            None,
            "no reserve was funded"
        );
        let sums = audit_clean(store).await;
        assert_eq!(
            (sums.bounced_in, sums.bounced_returned, sums.bounce_fees),
            (chf("20"), chf("19.99"), chf("0.01"))
        );
        world.shutdown().await.unwrap();
    }
);
