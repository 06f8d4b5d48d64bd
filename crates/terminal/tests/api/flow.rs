//! The diagram's terminal steps end to end, on both branches.

use std::time::Duration;

use cardcash_api::cardproc::TransactionState;
use cardcash_client::SetupAmount;
use cardcash_terminal::flow::{APPROVE_TEST_CARD, DECLINE_TEST_CARD};
use cardcash_terminal::page::StatusPage;
use cardcash_terminal::qr::TerminalStyle;
use cardcash_terminal::{AbortReason, CardData, FlowError, FlowEvent, FlowOptions, Outcome};
use cardcash_terminal::{ConsoleObserver, FlowObserver};

use crate::helpers::{Env, names};

const DELAYED_FINALITY_CARD: &str = "4000000000000028";
const PROCESSING_ERROR_CARD: &str = "4000000000000036";

fn chf(s: &str) -> cardcash_util::Amount {
    format!("CHF:{s}").parse().unwrap()
}

fn card_states(events: &[FlowEvent]) -> Vec<TransactionState> {
    events
        .iter()
        .filter_map(|e| match e {
            FlowEvent::CardPayment { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn approved_card_confirms_the_withdrawal() {
    let env = Env::start().await;
    let (report, events, reserve) = env.run(FlowOptions::new(chf("20")), Some(None)).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Confirmed);
    assert_eq!(
        names(&events),
        [
            "Configured",
            "WithdrawalCreated",
            "WaitingForWallet",
            "WalletRegistered",
            "CardPayment",
            "CardPayment",
            "CheckSent",
            "Outcome",
            "Receipt"
        ]
    );
    assert_eq!(
        card_states(&events),
        [TransactionState::Pending, TransactionState::Fulfill]
    );
    let reserve = reserve.unwrap();
    match &events[3] {
        FlowEvent::WalletRegistered {
            reserve_pub,
            amount,
        } => {
            assert_eq!(
                reserve_pub.map(|k| k.to_string()).as_deref(),
                Some(reserve.as_str())
            );
            assert_eq!(*amount, chf("20"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        report
            .taler_withdraw_uri
            .starts_with("taler+http://withdraw/127.0.0.1:")
    );
    assert!(
        report
            .taler_withdraw_uri
            .ends_with(&format!("/taler-integration/{}", report.wopid))
    );

    // C2EC agrees, and the wallet's reserve is the one registered.
    let status = env.wallet_status(&report.wopid).await;
    assert_eq!(status["status"], "confirmed");
    assert_eq!(status["selected_reserve_pub"], reserve.as_str());

    // The processor holds one captured transaction of exactly the amount, bound to the WOPID.
    let tx_id: u64 = report
        .receipt
        .provider_transaction_id
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let tx = env.reader.read_transaction(tx_id).await.unwrap();
    assert_eq!(tx.state, TransactionState::Fulfill);
    assert_eq!(tx.merchant_reference, report.wopid);
    assert_eq!(tx.completed_amount(), chf("20"));
    assert_eq!(
        tx.terminal_id.as_deref(),
        Some(env.flow.c2ec().terminal_id())
    );

    // The receipt says all of it.
    let receipt = report.receipt.to_string();
    assert_eq!(report.receipt.charged, Some(chf("20")));
    assert_eq!(report.receipt.exchange_fees, chf("0.25"));
    assert_eq!(
        report.receipt.card_masked.as_deref(),
        Some("400000******0002")
    );
    assert!(receipt.contains("Result        CONFIRMED"), "{receipt}");
    assert!(receipt.contains(&format!("Card tx       {tx_id}")));
    assert!(
        receipt.contains(&format!("{}-{}", &reserve[..4], &reserve[4..8])),
        "{receipt}"
    );

    // The same events drive the console and the status page.
    let mut console = ConsoleObserver::new(Vec::new(), TerminalStyle::LightBackground);
    let mut page = StatusPage::new("Kiosk");
    for event in &events {
        console.on_event(event);
        page.on_event(event);
    }
    let printed = String::from_utf8(console.into_inner()).unwrap();
    assert!(printed.contains(&report.taler_withdraw_uri));
    assert!(printed.contains('\u{2588}'), "QR code printed");
    assert!(printed.ends_with(&receipt), "receipt printed last");
    assert!(page.is_done());
    let html = page.html();
    assert!(html.contains("Done: your wallet now withdraws the e-cash."));
    assert!(html.contains("CHF 20.00"));
    env.stop().await;
}

#[tokio::test]
async fn declined_card_aborts_the_withdrawal_at_c2ec() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("20"));
    options.card = CardData::test_card(DECLINE_TEST_CARD);
    let (report, events, _) = env.run(options, Some(None)).await;
    let report = report.unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Aborted(AbortReason::CardDeclined {
            state: "DECLINE".into(),
            reason: Some("DECLINED".into()),
        })
    );
    assert_eq!(
        card_states(&events),
        [TransactionState::Pending, TransactionState::Decline]
    );
    assert!(
        !names(&events).contains(&"CheckSent"),
        "no check after a failed authorization"
    );
    let status = env.wallet_status(&report.wopid).await;
    assert_eq!(status["status"], "aborted");
    assert_eq!(report.receipt.charged, None);
    let receipt = report.receipt.to_string();
    assert!(receipt.contains("Result        ABORTED"), "{receipt}");
    assert!(receipt.contains("Your card was not charged."));
    env.stop().await;
}

#[tokio::test]
async fn processing_error_aborts_too() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("5"));
    options.card = CardData::test_card(PROCESSING_ERROR_CARD);
    let (report, _, _) = env.run(options, Some(None)).await;
    let report = report.unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Aborted(AbortReason::CardDeclined {
            state: "FAILED".into(),
            reason: Some("PROCESSING_ERROR".into()),
        })
    );
    assert_eq!(env.wallet_status(&report.wopid).await["status"], "aborted");
    env.stop().await;
}

#[tokio::test]
async fn delayed_finality_is_confirmed_once_final() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("12.5"));
    options.card = CardData::test_card(DELAYED_FINALITY_CARD);
    let (report, events, _) = env.run(options, Some(None)).await;
    let report = report.unwrap();
    assert_eq!(
        card_states(&events),
        [TransactionState::Pending, TransactionState::Authorized]
    );
    assert_eq!(report.outcome, Outcome::Confirmed);
    assert_eq!(
        env.wallet_status(&report.wopid).await["status"],
        "confirmed"
    );
    env.stop().await;
}

#[tokio::test]
async fn suggested_amount_is_what_the_wallet_chose_plus_card_fees() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("20"));
    options.amount = SetupAmount::Suggested(chf("20"));
    options.card_fees = Some(chf("0.5"));
    let (report, _, _) = env.run(options, Some(Some("CHF:7.5"))).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Confirmed);
    assert_eq!(report.receipt.amount, chf("7.5"));
    assert_eq!(report.receipt.card_fees, Some(chf("0.5")));
    assert_eq!(report.receipt.charged, Some(chf("8")));
    let tx_id: u64 = report
        .receipt
        .provider_transaction_id
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        env.reader
            .read_transaction(tx_id)
            .await
            .unwrap()
            .completed_amount(),
        chf("8")
    );
    env.stop().await;
}

#[tokio::test]
async fn no_wallet_in_time_aborts_without_charging() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("20"));
    options.wallet_timeout = Duration::from_millis(700);
    options.poll_window = Duration::from_millis(300);
    options.card = CardData::test_card(APPROVE_TEST_CARD);
    let (report, events, _) = env.run(options, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Aborted(AbortReason::NoWallet));
    assert!(
        card_states(&events).is_empty(),
        "no card payment without a wallet"
    );
    assert_eq!(env.wallet_status(&report.wopid).await["status"], "aborted");
    env.stop().await;
}

#[tokio::test]
async fn wrong_currency_fails_before_any_withdrawal() {
    let env = Env::start().await;
    let options = FlowOptions::new("EUR:20".parse().unwrap());
    let (report, events, _) = env.run(options, Some(None)).await;
    assert!(
        matches!(report, Err(FlowError::CurrencyMismatch { .. })),
        "{report:?}"
    );
    assert!(events.is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_card_the_processor_refuses_aborts_with_its_reason() {
    let env = Env::start().await;
    let mut options = FlowOptions::new(chf("20"));
    // Fails the Luhn check: the processor answers 400 and nothing is charged.
    options.card = CardData::test_card("4000000000000001");
    let (report, events, _) = env.run(options, Some(None)).await;
    let report = report.unwrap();
    match &report.outcome {
        Outcome::Aborted(AbortReason::TerminalError(why)) => {
            assert!(why.starts_with("card rejected:"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(card_states(&events), [TransactionState::Pending]);
    assert!(!names(&events).contains(&"CheckSent"));
    assert_eq!(env.wallet_status(&report.wopid).await["status"], "aborted");
    env.stop().await;
}
