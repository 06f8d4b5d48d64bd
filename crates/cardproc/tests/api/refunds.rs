//! Refunds: partial and rest, over-refund, idempotent replay, conflicting externalId, refunds of
//! unpaid transactions, concurrency.

use cardcash_api::cardproc::DecimalAmount;
use cardcash_api::cardproc::{RefundRequest, RefundState, RefundType, TransactionState};
use cardcash_cardproc::processing::{CARD_APPROVE, CARD_DECLINE, CARD_DELAY_FINALITY};
use cardcash_testkit::{Engine, WAIT, engine_test};

use crate::helpers::{TestApp, read_until};

fn refund(external_id: &str, tx: u64, amount: &str) -> RefundRequest {
    RefundRequest {
        external_id: external_id.into(),
        transaction: tx,
        amount: amount.parse().unwrap(),
        refund_type: RefundType::MerchantInitiatedOnline,
        merchant_reference: Some("W".into()),
    }
}

fn dec(s: &str) -> DecimalAmount {
    s.parse().unwrap()
}

engine_test!(
    async fn partial_rest_over_replay_conflict(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("20.00", CARD_APPROVE).await;
        let first = t
            .reader
            .refund(&refund("r-1", tx.id, "5.00"))
            .await
            .unwrap();
        assert_eq!(
            (first.state, first.amount, first.transaction),
            (RefundState::Successful, dec("5"), tx.id),
            "{e}"
        );
        assert_eq!(first.amount().to_string(), "CHF:5", "{e}");
        assert_eq!(
            t.reader
                .read_transaction(tx.id)
                .await
                .unwrap()
                .refunded_amount,
            dec("5"),
            "{e}"
        );

        // Replay: same refund, nothing booked twice.
        let replay = t
            .reader
            .refund(&refund("r-1", tx.id, "5.00"))
            .await
            .unwrap();
        assert_eq!(replay, first, "{e}");
        assert_eq!(
            t.reader
                .read_transaction(tx.id)
                .await
                .unwrap()
                .refunded_amount,
            dec("5"),
            "{e}"
        );

        // Same externalId, different body: 409, nothing booked.
        for other in [
            refund("r-1", tx.id, "6.00"),
            RefundRequest {
                merchant_reference: None,
                ..refund("r-1", tx.id, "5.00")
            },
        ] {
            let err = t.reader.refund(&other).await.unwrap_err();
            assert_eq!((err.status(), err.code()), (Some(409), Some(5112)), "{e}");
        }

        // The rest: exactly up to the completed amount.
        let rest = t.reader.refund(&refund("r-2", tx.id, "15")).await.unwrap();
        assert_ne!(rest.id, first.id);
        let read = t.reader.read_transaction(tx.id).await.unwrap();
        assert_eq!(
            (read.refunded_amount, read.state),
            (dec("20"), TransactionState::Fulfill),
            "{e}"
        );

        // Anything more is an over-refund.
        let err = t
            .reader
            .refund(&refund("r-3", tx.id, "0.01"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(1501)), "{e}");
        assert!(!err.is_retryable());
        assert_eq!(
            t.reader
                .read_transaction(tx.id)
                .await
                .unwrap()
                .refunded_amount,
            dec("20"),
            "{e}"
        );

        // Reading refunds back.
        assert_eq!(t.reader.read_refund(first.id).await.unwrap(), first, "{e}");
        let err = t.reader.read_refund(rest.id + 100).await.unwrap_err();
        assert!(err.is_not_found(), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn over_refund_in_one_go_and_unpaid_transactions(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("10.00", CARD_APPROVE).await;
        let err = t
            .reader
            .refund(&refund("big", tx.id, "10.01"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(1501)), "{e}");

        let declined = t.pay("10.00", CARD_DECLINE).await;
        let err = t
            .reader
            .refund(&refund("d-1", declined.id, "1"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(2531)), "{e}");

        let pending = t.create("10.00").await;
        let err = t
            .reader
            .refund(&refund("p-1", pending.id, "1"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(2531)), "{e}");

        let err = t
            .reader
            .refund(&refund("x-1", pending.id + 1000, "1"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(404), Some(5107)), "{e}");

        // Nothing was stored by the failures: the keys are still free.
        let ok = t
            .reader
            .refund(&refund("big", tx.id, "10.00"))
            .await
            .unwrap();
        assert_eq!(ok.amount, dec("10"), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn delayed_transaction_refundable_once_due(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("8.00", CARD_DELAY_FINALITY).await;
        assert_eq!(tx.state, TransactionState::Authorized, "{e}");
        // Once due, the refund must see FULFILL even if the worker has not persisted it yet
        // (reads compute the state at their own time, as the refund does).
        read_until(&t.reader, tx.id, WAIT, |x| {
            x.state == TransactionState::Fulfill
        })
        .await;
        let ok = t
            .reader
            .refund(&refund("late", tx.id, "8.00"))
            .await
            .unwrap();
        assert_eq!(ok.amount, dec("8"), "{e}");
        let read = t.reader.read_transaction(tx.id).await.unwrap();
        assert_eq!(
            (read.state, read.completed_amount, read.refunded_amount),
            (TransactionState::Fulfill, dec("8"), dec("8")),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn authorized_transaction_is_not_refundable(engine: Engine) {
        let mut config = crate::helpers::config();
        config.delay_finality =
            cardcash_util::RelativeTime::from_duration(std::time::Duration::from_secs(3600));
        let t = TestApp::start_with(engine, config).await;
        let e = t.engine;
        let tx = t.pay("8.00", CARD_DELAY_FINALITY).await;
        assert_eq!(tx.state, TransactionState::Authorized, "{e}");
        let err = t
            .reader
            .refund(&refund("early", tx.id, "1"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(2531)), "{e}");
        let read = t.reader.read_transaction(tx.id).await.unwrap();
        assert_eq!(
            (read.state, read.refunded_amount),
            (TransactionState::Authorized, DecimalAmount::ZERO),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn concurrent_refunds_never_exceed_the_completed_amount(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("20.00", CARD_APPROVE).await;
        let mut tasks = Vec::new();
        for i in 0..10 {
            let reader = t.reader.clone();
            let req = refund(&format!("c-{i}"), tx.id, "5.00");
            tasks.push(tokio::spawn(async move { reader.refund(&req).await }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(err) => assert_eq!(err.code(), Some(1501), "{e} {err}"),
            }
        }
        assert_eq!(ok, 4, "{e}");
        assert_eq!(
            t.reader
                .read_transaction(tx.id)
                .await
                .unwrap()
                .refunded_amount,
            dec("20"),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn concurrent_replays_book_once_and_keys_are_per_space(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("20.00", CARD_APPROVE).await;
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let reader = t.reader.clone();
            let req = refund("same-key", tx.id, "7.00");
            tasks.push(tokio::spawn(async move { reader.refund(&req).await }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap().unwrap().id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{e}: every replay gets the one refund");
        assert_eq!(
            t.reader
                .read_transaction(tx.id)
                .await
                .unwrap()
                .refunded_amount,
            dec("7"),
            "{e}"
        );
        // The key is taken in the space: using it for another transaction is a conflict.
        let other = t.pay("20.00", CARD_APPROVE).await;
        let err = t
            .reader
            .refund(&refund("same-key", other.id, "7.00"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(409), Some(5112)), "{e}");
        assert_eq!(
            t.reader
                .read_transaction(other.id)
                .await
                .unwrap()
                .refunded_amount,
            DecimalAmount::ZERO,
            "{e}"
        );
        t.shutdown().await;
    }
);
