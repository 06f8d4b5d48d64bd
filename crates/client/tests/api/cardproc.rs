//! The card processor client against the real processor: signed requests, the payment life
//! cycle, refunds, and what its refusals look like.

use cardcash_api::cardproc::{
    CardNumber, CreateTransactionRequest, FailureReason, ProcessCardRequest, RefundRequest,
    RefundState, RefundType, Transaction, TransactionState,
};
use cardcash_client::{CardprocClient, ErrorKind};
use cardcash_util::ErrorCode;

use crate::helpers::{
    APPROVED_CARD, CARDPROC_ADMIN, DECLINED_CARD, DELAYED_CARD, SPACE, TERMINAL_USER, World,
};

async fn pay(pos: &CardprocClient, amount: &str, pan: &str) -> Transaction {
    let created = pos
        .create_transaction(&CreateTransactionRequest {
            currency: "CHF".parse().unwrap(),
            amount: amount.parse().unwrap(),
            merchant_reference: "order-1".into(),
            terminal_id: Some("T-1".into()),
            meta_data: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(created.state, TransactionState::Pending);
    pos.process_card(
        created.id,
        &ProcessCardRequest {
            pan: CardNumber(pan.into()),
            expiry_month: 12,
            expiry_year: 2099,
            cvc: Some("123".into()),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn pay_read_and_refund_through_signed_requests() {
    let world = World::start().await;
    let (pos, reader) = (world.pos(), world.reader());
    let config = pos.config().await.unwrap();
    assert_eq!(config.space_id, SPACE);

    let paid = pay(&pos, "20.00", APPROVED_CARD).await;
    assert_eq!(paid.state, TransactionState::Fulfill);
    let read = reader.read_transaction(paid.id).await.unwrap();
    assert_eq!(read.completed_amount().to_string(), "CHF:20");
    assert_eq!(read.merchant_reference, "order-1");

    let refund = RefundRequest {
        external_id: "refund-1".into(),
        transaction: paid.id,
        amount: "5.00".parse().unwrap(),
        refund_type: RefundType::MerchantInitiatedOnline,
        merchant_reference: None,
    };
    let done = reader.refund(&refund).await.unwrap();
    assert_eq!(done.state, RefundState::Successful);
    // Idempotent on externalId: the same refund again is the same refund.
    assert_eq!(reader.refund(&refund).await.unwrap().id, done.id);
    assert_eq!(reader.read_refund(done.id).await.unwrap(), done);
    assert_eq!(
        reader
            .read_transaction(paid.id)
            .await
            .unwrap()
            .refunded_amount()
            .to_string(),
        "CHF:5"
    );

    // The same key for another amount conflicts.
    let err = reader
        .refund(&RefundRequest {
            amount: "6.00".parse().unwrap(),
            ..refund
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict() && !err.is_retryable(), "{err:?}");
    world.shutdown().await;
}

#[tokio::test]
async fn declines_and_voids_are_states_not_errors() {
    let world = World::start().await;
    let pos = world.pos();
    let declined = pay(&pos, "1.00", DECLINED_CARD).await;
    assert_eq!(declined.state, TransactionState::Decline);
    assert_eq!(declined.failure_reason, Some(FailureReason::Declined));

    let authorized = pay(&pos, "1.00", DELAYED_CARD).await;
    assert_eq!(authorized.state, TransactionState::Authorized);
    let voided = pos.void_transaction(authorized.id).await.unwrap();
    assert_eq!(voided.state, TransactionState::Voided);
    world.shutdown().await;
}

#[tokio::test]
async fn unknown_transactions_bad_signatures_and_outages() {
    let world = World::start().await;
    let reader = world.reader();
    let missing = reader.read_transaction(999_999).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert!(missing.code().is_some(), "a Taler error body: {missing:?}");

    // Signed with another secret: the processor refuses the MAC.
    let forger = CardprocClient::new(
        world.cardproc().base_url().as_str(),
        TERMINAL_USER,
        "Zm9yZ2VkLXNlY3JldC1mb3ItY2xpZW50LXRlc3RzIQ==",
        SPACE,
    )
    .unwrap();
    let err = forger.read_transaction(1).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericUnauthorized));

    // An outage is a 503 worth retrying, and ends when switched off.
    reader.admin_set_outage(CARDPROC_ADMIN, true).await.unwrap();
    let err = reader.read_transaction(1).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err:?}");
    assert!(err.is_retryable());
    assert!(matches!(err.kind(), ErrorKind::Status { .. }));
    reader
        .admin_set_outage(CARDPROC_ADMIN, false)
        .await
        .unwrap();
    assert!(
        reader
            .read_transaction(999_999)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // The admin endpoint wants the admin's token.
    let err = reader
        .admin_set_outage("secret-token:wrong", true)
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    world.shutdown().await;
}
