//! Transactions: every test card's outcome, delayed finality, idempotent processing, bad cards.

use std::time::Duration;

use cardcash_api::cardproc::{CardNumber, DecimalAmount, ProcessCardRequest};
use cardcash_api::cardproc::{FailureReason, TransactionState};
use cardcash_cardproc::processing::{
    CARD_APPROVE, CARD_DECLINE, CARD_DELAY_FINALITY, CARD_INSUFFICIENT_FUNDS, CARD_PROCESSING_ERROR,
};
use cardcash_testkit::{Engine, WAIT, engine_test, wait_for};

use crate::helpers::{DELAY, TestApp, card, read_until};

fn dec(s: &str) -> DecimalAmount {
    s.parse().unwrap()
}

engine_test!(
    async fn every_test_card_has_its_outcome(engine: Engine) {
        // A long delay, so the delayed card is certainly still AUTHORIZED when checked.
        let mut config = crate::helpers::config();
        config.delay_finality =
            cardcash_util::RelativeTime::from_duration(Duration::from_secs(3600));
        let t = TestApp::start_with(engine, config).await;
        let e = t.engine;
        let cases = [
            (CARD_APPROVE, TransactionState::Fulfill, None),
            ("4111111111111111", TransactionState::Fulfill, None),
            (
                CARD_DECLINE,
                TransactionState::Decline,
                Some(FailureReason::Declined),
            ),
            (
                CARD_INSUFFICIENT_FUNDS,
                TransactionState::Decline,
                Some(FailureReason::InsufficientFunds),
            ),
            (
                CARD_PROCESSING_ERROR,
                TransactionState::Failed,
                Some(FailureReason::ProcessingError),
            ),
            (CARD_DELAY_FINALITY, TransactionState::Authorized, None),
        ];
        for (pan, state, reason) in cases {
            let tx = t.pay("20.50", pan).await;
            assert_eq!((tx.state, tx.failure_reason), (state, reason), "{e} {pan}");
            assert_eq!(tx.authorization_amount, dec("20.50"), "{e} {pan}");
            let captured = if state == TransactionState::Fulfill {
                "20.50"
            } else {
                "0"
            };
            assert_eq!(tx.completed_amount, dec(captured), "{e} {pan}");
            let masked = tx.card_masked.clone().unwrap();
            assert_eq!(masked.len(), pan.len(), "{e}");
            assert!(
                masked.starts_with(&pan[..6])
                    && masked.ends_with(&pan[pan.len() - 4..])
                    && masked.contains('*')
            );
            assert_eq!(
                tx.authorized_on.is_some(),
                matches!(
                    state,
                    TransactionState::Fulfill | TransactionState::Authorized
                )
            );
            assert_eq!(tx.failed_on.is_some(), reason.is_some(), "{e} {pan}");
            // The reader (C2EC) sees exactly what the terminal saw.
            let read = t.reader.read_transaction(tx.id).await.unwrap();
            assert_eq!(read, tx, "{e} {pan}");
            assert_eq!(read.merchant_reference, "WOPID-TEST");
            assert_eq!(read.meta_data.get("wopid").map(String::as_str), Some("W"));
            assert_eq!(read.linked_space_id, crate::helpers::SPACE);
        }
        t.shutdown().await;
    }
);

engine_test!(
    async fn delayed_finality_flips_to_fulfill_after_the_delay(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("12.00", CARD_DELAY_FINALITY).await;
        assert_eq!(tx.state, TransactionState::Authorized, "{e}");
        assert_eq!(tx.completed_amount, DecimalAmount::ZERO, "{e}");
        let authorized = tx.authorized_on.unwrap();
        // Before the delay: still AUTHORIZED (read immediately, well within the delay).
        let early = t.reader.read_transaction(tx.id).await.unwrap();
        if early.state == TransactionState::Authorized {
            assert!(early.completed_on.is_none(), "{e}");
        }
        let done = read_until(&t.reader, tx.id, WAIT, |x| {
            x.state == TransactionState::Fulfill
        })
        .await;
        assert_eq!(done.state, TransactionState::Fulfill, "{e}");
        assert_eq!(done.completed_amount, dec("12.00"), "{e}");
        let completed = done.completed_on.unwrap();
        let delay_us = u64::try_from(DELAY.as_micros()).unwrap();
        assert_eq!(
            completed.as_micros() - authorized.as_micros(),
            delay_us,
            "{e}: completedOn = authorizedOn + delay"
        );
        // The background worker persists it too: the stored row becomes FULFILL.
        let store = t.app().store();
        let row = wait_for(WAIT, || async {
            let row = store
                .transaction(crate::helpers::SPACE, tx.id)
                .await
                .unwrap()
                .unwrap();
            (row.state == TransactionState::Fulfill).then_some(row)
        })
        .await;
        assert_eq!(
            row.view(cardcash_api::cardproc::IsoTime::now()),
            t.reader.read_transaction(tx.id).await.unwrap(),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn processing_is_idempotent(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("3.00", CARD_APPROVE).await;
        let again = t
            .terminal
            .process_card(tx.id, &card(CARD_APPROVE))
            .await
            .unwrap();
        assert_eq!(again, tx, "{e}");
        // Presenting another card later changes nothing either.
        let other = t
            .terminal
            .process_card(tx.id, &card(CARD_DECLINE))
            .await
            .unwrap();
        assert_eq!(other, tx, "{e}");
        // So does a card that is no card at all: a processed transaction is answered as stored.
        let invalid = t.terminal.process_card(tx.id, &card("40")).await.unwrap();
        assert_eq!(invalid, tx, "{e}");
        let declined = t.pay("3.00", CARD_DECLINE).await;
        let again = t
            .terminal
            .process_card(declined.id, &card(CARD_APPROVE))
            .await
            .unwrap();
        assert_eq!(again.state, TransactionState::Decline, "{e}");
        // Concurrent presentations of one transaction: one decision wins, all callers see it.
        let tx = t.create("4.00").await;
        let (approve, decline) = (card(CARD_APPROVE), card(CARD_DECLINE));
        let (a, b) = tokio::join!(
            t.terminal.process_card(tx.id, &approve),
            t.terminal.process_card(tx.id, &decline)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "{e}");
        assert_eq!(t.reader.read_transaction(tx.id).await.unwrap(), a, "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn bad_card_data_is_400_and_leaves_the_transaction_pending(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.create("1.00").await;
        let bad = [
            card("4000000000000003"),
            card("4000 0000 0000 0002"),
            card("40"),
            ProcessCardRequest {
                pan: CardNumber(CARD_APPROVE.into()),
                expiry_month: 1,
                expiry_year: 2020,
                cvc: None,
            },
            ProcessCardRequest {
                pan: CardNumber(CARD_APPROVE.into()),
                expiry_month: 13,
                expiry_year: 2030,
                cvc: None,
            },
            ProcessCardRequest {
                pan: CardNumber(CARD_APPROVE.into()),
                expiry_month: 1,
                expiry_year: 2030,
                cvc: Some("1".into()),
            },
        ];
        for req in bad {
            let err = t.terminal.process_card(tx.id, &req).await.unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (Some(400), Some(26)),
                "{e} {req:?}"
            );
            assert!(!err.is_retryable());
        }
        let read = t.reader.read_transaction(tx.id).await.unwrap();
        assert_eq!(
            (read.state, read.card_masked),
            (TransactionState::Pending, None),
            "{e}"
        );
        // Unknown transaction.
        let err = t
            .terminal
            .process_card(tx.id + 1000, &card(CARD_APPROVE))
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{e} {err}");
        let err = t.reader.read_transaction(tx.id + 1000).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(404), Some(5107)), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn create_validates_its_input(engine: Engine) {
        use cardcash_api::cardproc::CreateTransactionRequest;
        use cardcash_util::Currency;
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let base = CreateTransactionRequest {
            currency: crate::helpers::chf(),
            amount: dec("1"),
            merchant_reference: "W".into(),
            terminal_id: None,
            meta_data: Default::default(),
        };
        let cases = [
            (
                CreateTransactionRequest {
                    currency: Currency::new("EUR").unwrap(),
                    ..base.clone()
                },
                30,
            ),
            (
                CreateTransactionRequest {
                    amount: DecimalAmount::ZERO,
                    ..base.clone()
                },
                26,
            ),
            (
                CreateTransactionRequest {
                    merchant_reference: String::new(),
                    ..base.clone()
                },
                26,
            ),
            (
                CreateTransactionRequest {
                    merchant_reference: "x".repeat(101),
                    ..base.clone()
                },
                26,
            ),
            (
                CreateTransactionRequest {
                    terminal_id: Some("a\u{0}b".into()),
                    ..base.clone()
                },
                26,
            ),
        ];
        for (req, code) in cases {
            let err = t.terminal.create_transaction(&req).await.unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (Some(400), Some(code)),
                "{e} {req:?}"
            );
        }
        let ok = t.terminal.create_transaction(&base).await.unwrap();
        assert_eq!(
            (ok.state, ok.terminal_id),
            (TransactionState::Pending, None),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn void_cancels_an_authorized_transaction_only(engine: Engine) {
        let mut config = crate::helpers::config();
        config.delay_finality =
            cardcash_util::RelativeTime::from_duration(Duration::from_secs(3600));
        let t = TestApp::start_with(engine, config).await;
        let e = t.engine;
        let tx = t.pay("6.00", CARD_DELAY_FINALITY).await;
        // C2EC cannot void; the terminal can.
        assert_eq!(
            t.reader.void_transaction(tx.id).await.unwrap_err().status(),
            Some(403),
            "{e}"
        );
        let voided = t.terminal.void_transaction(tx.id).await.unwrap();
        assert_eq!(
            (voided.state, voided.completed_amount),
            (TransactionState::Voided, DecimalAmount::ZERO),
            "{e}"
        );
        assert!(voided.state.is_final_failure());
        // Idempotent.
        assert_eq!(
            t.terminal.void_transaction(tx.id).await.unwrap(),
            voided,
            "{e}"
        );
        assert_eq!(
            t.reader.read_transaction(tx.id).await.unwrap(),
            voided,
            "{e}"
        );
        // Captured or pending transactions cannot be voided.
        let paid = t.pay("6.00", CARD_APPROVE).await;
        let err = t.terminal.void_transaction(paid.id).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(5117)), "{e}");
        let pending = t.create("6.00").await;
        assert_eq!(
            t.terminal
                .void_transaction(pending.id)
                .await
                .unwrap_err()
                .status(),
            Some(409),
            "{e}"
        );
        assert!(
            t.terminal
                .void_transaction(pending.id + 1000)
                .await
                .unwrap_err()
                .is_not_found(),
            "{e}"
        );
        t.shutdown().await;
    }
);
