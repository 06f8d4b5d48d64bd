//! The Terminal API client against the real C2EC: typed errors with the server's Taler error
//! body, idempotent setup, long polls that really wait.

use std::time::{Duration, Instant};

use cardcash_api::bank_integration::WithdrawalStatus;
use cardcash_client::{C2ecTerminalClient, SetupAmount};
use cardcash_terminal::{FlowOptions, Outcome};
use cardcash_util::ErrorCode;

use cardcash_testkit::{WAIT, wait_until};

use crate::helpers::Env;

fn chf(s: &str) -> cardcash_util::Amount {
    format!("CHF:{s}").parse().unwrap()
}

#[tokio::test]
async fn config_announces_currency_and_fees() {
    let env = Env::start().await;
    let config = env.flow.c2ec().config().await.unwrap();
    assert_eq!(config.name, "taler-terminal");
    assert_eq!(config.currency.as_str(), "CHF");
    assert_eq!(config.withdrawal_fees, chf("0.25"));
    env.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_a_taler_401() {
    let env = Env::start().await;
    let c2ec = env.flow.c2ec();
    let intruder = C2ecTerminalClient::new(
        c2ec.base_url().clone(),
        c2ec.terminal_id(),
        "not the secret",
    )
    .unwrap();
    let err = intruder.config().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericUnauthorized));
    assert!(!err.is_retryable());
    env.stop().await;
}

#[tokio::test]
async fn unknown_withdrawal_is_a_taler_404() {
    let env = Env::start().await;
    let unknown = cardcash_util::base32::encode(&[7u8; 32]);
    let err = env
        .flow
        .c2ec()
        .status(&unknown, None, Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert!(err.code().is_some_and(|c| c != 0));
    let err = env.flow.c2ec().abort("not-a-wopid").await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericParameterMalformed));
    env.stop().await;
}

#[tokio::test]
async fn setup_is_idempotent_and_status_long_polls() {
    let env = Env::start().await;
    let c2ec = env.flow.c2ec();
    let first = c2ec
        .setup_withdrawal("uid-1", SetupAmount::Fixed(chf("20")))
        .await
        .unwrap();
    let again = c2ec
        .setup_withdrawal("uid-1", SetupAmount::Fixed(chf("20")))
        .await
        .unwrap();
    assert_eq!(first.withdrawal_id, again.withdrawal_id);
    let wopid = first.withdrawal_id;

    let started = Instant::now();
    let now = c2ec.status(&wopid, None, Duration::ZERO).await.unwrap();
    assert_eq!(now.status, WithdrawalStatus::Pending);
    assert_eq!(now.amount, Some(chf("20")));
    assert!(
        started.elapsed() < WAIT,
        "a status without a window does not wait"
    );

    // Nothing changes, so the server holds the request for the whole window.
    let started = Instant::now();
    let polled = c2ec
        .status(
            &wopid,
            Some(WithdrawalStatus::Pending),
            Duration::from_millis(600),
        )
        .await
        .unwrap();
    assert_eq!(polled.status, WithdrawalStatus::Pending);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // A wallet registering ends the poll early: it registers once the poll waits (subscribed
    // to C2EC's notifier, which it does before its first read).
    let waiting = env.c2ec_subscribers();
    let poll = c2ec.status(
        &wopid,
        Some(WithdrawalStatus::Pending),
        Duration::from_secs(60),
    );
    let register = async {
        wait_until(WAIT, || async { env.c2ec_subscribers() > waiting }).await;
        env.register(&wopid, None).await
    };
    let started = Instant::now();
    let (polled, reserve) = tokio::join!(poll, register);
    let polled = polled.unwrap();
    assert_eq!(polled.status, WithdrawalStatus::Selected);
    assert_eq!(
        polled.selected_reserve_pub.map(|k| k.to_string()),
        Some(reserve)
    );
    assert!(
        started.elapsed() < WAIT,
        "woken by the registration, not by its 60 s window"
    );
    env.stop().await;
}

#[tokio::test]
async fn abort_is_idempotent_and_blocks_the_check() {
    let env = Env::start().await;
    let c2ec = env.flow.c2ec();
    let setup = c2ec
        .setup_withdrawal("uid-abort", SetupAmount::Fixed(chf("3")))
        .await
        .unwrap();
    let wopid = setup.withdrawal_id;
    c2ec.abort(&wopid).await.unwrap();
    c2ec.abort(&wopid).await.unwrap();
    let err = c2ec.check(&wopid, "42").await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err:?}");
    assert!(err.hint().is_some());
    assert_eq!(env.wallet_status(&wopid).await["status"], "aborted");
    env.stop().await;
}

#[tokio::test]
async fn a_confirmed_withdrawal_cannot_be_aborted() {
    let env = Env::start().await;
    let (report, _, _) = env.run(FlowOptions::new(chf("1")), Some(None)).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Confirmed);
    let err = env.flow.c2ec().abort(&report.wopid).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.error_code(), Some(ErrorCode::BankAbortConfirmConflict));
    // The check is idempotent for the same transaction.
    let tx = report.receipt.provider_transaction_id.unwrap();
    env.flow.c2ec().check(&report.wopid, &tx).await.unwrap();
    env.stop().await;
}
