//! One card-funded withdrawal played entirely through the clients: the terminal (Terminal
//! API), the wallet (Bank Integration API), the card payment (card processor), the exchange
//! (C2EC's Wire Gateway).

use std::time::Duration;

use cardcash_api::bank_integration::{BankWithdrawalOperationPostRequest, WithdrawalStatus};
use cardcash_api::cardproc::{CardNumber, CreateTransactionRequest, ProcessCardRequest};
use cardcash_api::wire_gateway::IncomingBankTransaction;
use cardcash_client::{HistoryRequest, SetupAmount};
use cardcash_util::{EddsaPublicKey, ErrorCode, PaytoUri};

use crate::helpers::{APPROVED_CARD, CURRENCY, EXCHANGE_ACCOUNT, POLL, World};

fn selection(key: u8) -> BankWithdrawalOperationPostRequest {
    BankWithdrawalOperationPostRequest {
        reserve_pub: EddsaPublicKey::from_bytes([key; 32]),
        selected_exchange: EXCHANGE_ACCOUNT.parse().unwrap(),
        amount: None,
    }
}

#[tokio::test]
async fn a_card_withdrawal_through_the_clients() {
    let world = World::start().await;
    let (terminal, wallet, exchange, pos) = (
        world.terminal(),
        world.integration(),
        world.wire_gateway(),
        world.pos(),
    );
    let config = terminal.config().await.unwrap();
    assert_eq!(config.currency.as_str(), CURRENCY);
    assert_eq!(wallet.config().await.unwrap().currency.as_str(), CURRENCY);
    assert!(
        exchange
            .incoming_history(&HistoryRequest::newest(5))
            .await
            .unwrap()
            .is_empty()
    );

    // 0. Setup, idempotent on request_uid.
    let amount = SetupAmount::Fixed(format!("{CURRENCY}:20").parse().unwrap());
    let setup = terminal.setup_withdrawal("req-1", amount).await.unwrap();
    let wopid = setup.withdrawal_id.clone();
    assert_eq!(
        terminal.setup_withdrawal("req-1", amount).await.unwrap(),
        setup
    );
    let seen = wallet
        .withdrawal_operation(&wopid, None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(seen.status, WithdrawalStatus::Pending);

    // 1.–3. The terminal waits; the wallet registers; the terminal wakes.
    let waiting = {
        let (terminal, wopid) = (terminal.clone(), wopid.clone());
        tokio::spawn(async move {
            terminal
                .status(&wopid, Some(WithdrawalStatus::Pending), POLL)
                .await
        })
    };
    let selected = wallet.select(&wopid, &selection(9)).await.unwrap();
    assert_eq!(selected.status, WithdrawalStatus::Selected);
    assert_eq!(
        waiting.await.unwrap().unwrap().status,
        WithdrawalStatus::Selected
    );
    // Another wallet's reserve is a conflict with the registered one.
    let err = wallet.select(&wopid, &selection(10)).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(err.to_string().starts_with("C2EC at "), "{err}");

    // 4.–7. The card payment, bound to the WOPID, and the check.
    let tx = pos
        .create_transaction(&CreateTransactionRequest {
            currency: CURRENCY.parse().unwrap(),
            amount: "20.00".parse().unwrap(),
            merchant_reference: wopid.clone(),
            terminal_id: Some(world.terminal_user.clone()),
            meta_data: Default::default(),
        })
        .await
        .unwrap();
    pos.process_card(
        tx.id,
        &ProcessCardRequest {
            pan: CardNumber(APPROVED_CARD.into()),
            expiry_month: 12,
            expiry_year: 2099,
            cvc: None,
        },
    )
    .await
    .unwrap();
    terminal.check(&wopid, &tx.id.to_string()).await.unwrap();

    // 8.–9. Attestation confirms; the terminal's long polls end on each change.
    let mut status = WithdrawalStatus::Selected;
    while status == WithdrawalStatus::Selected {
        status = terminal
            .status(&wopid, Some(status), POLL)
            .await
            .unwrap()
            .status;
    }
    assert_eq!(status, WithdrawalStatus::Confirmed);

    // 10. The exchange finds the reserve, with the credited account in the row.
    let rows = exchange
        .incoming_history(&HistoryRequest::newest(5))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let IncomingBankTransaction::Reserve {
        reserve_pub,
        amount,
        credit_account,
        ..
    } = &rows[0]
    else {
        panic!("not a reserve credit: {rows:?}");
    };
    assert_eq!(*reserve_pub, selection(9).reserve_pub);
    assert_eq!(amount.to_string(), format!("{CURRENCY}:20"));
    let exchange_account: PaytoUri = EXCHANGE_ACCOUNT.parse().unwrap();
    assert!(
        credit_account
            .as_ref()
            .is_some_and(|c| c.same_account(&exchange_account)),
        "{credit_account:?}"
    );

    // Too late to abort, from either side.
    for err in [
        terminal.abort(&wopid).await.unwrap_err(),
        wallet.abort(&wopid).await.unwrap_err(),
    ] {
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::BankAbortConfirmConflict),
            "{err:?}"
        );
    }
    world.shutdown().await;
}

#[tokio::test]
async fn a_wallet_abort_reaches_the_waiting_terminal() {
    let world = World::start().await;
    let (terminal, wallet) = (world.terminal(), world.integration());
    let setup = terminal
        .setup_withdrawal(
            "req-2",
            SetupAmount::Suggested(format!("{CURRENCY}:5").parse().unwrap()),
        )
        .await
        .unwrap();
    let wopid = setup.withdrawal_id;
    let waiting = {
        let (terminal, wopid) = (terminal.clone(), wopid.clone());
        tokio::spawn(async move {
            terminal
                .status(&wopid, Some(WithdrawalStatus::Pending), POLL)
                .await
        })
    };
    wallet.abort(&wopid).await.unwrap();
    assert_eq!(
        waiting.await.unwrap().unwrap().status,
        WithdrawalStatus::Aborted
    );
    // Aborting again is a no-op.
    terminal.abort(&wopid).await.unwrap();
    world.shutdown().await;
}
