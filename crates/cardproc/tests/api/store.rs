//! `CardprocStore` on both engines, below HTTP: the races each unit of work must win alone
//! (one decision per transaction, never more refunded than captured, one refund per key, one
//! user per id), delayed finality with its notification, and the schema's own last line of
//! defence against an over-refund.

use std::collections::BTreeMap;
use std::time::Duration;

use cardcash_api::cardproc::{FailureReason, IsoTime, RefundType, TransactionState};
use cardcash_cardproc::Role;
use cardcash_cardproc::db::{
    CardprocStore, NewRefund, NewTransaction, RefundOutcome, SCHEMA, SERVICE, StateChange,
    TOPIC_FINALITY_SCHEDULED, TransactionRow,
};
use cardcash_cardproc::processing::{Decision, transition};
use cardcash_store::{Database, rusqlite, sqlx};
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::Amount;

const SPACE: u64 = 7;
const USER: u64 = 1;

/// The storage on a fresh database of `engine`.
async fn store(engine: Engine) -> CardprocStore {
    CardprocStore::new(cardcash_testkit::database(engine, SERVICE, &SCHEMA).await)
}

fn engine_name(store: &CardprocStore) -> String {
    store.database().engine().to_string()
}

fn chf(amount: &str) -> Amount {
    format!("CHF:{amount}").parse().unwrap()
}

async fn create(store: &CardprocStore, amount: &str) -> TransactionRow {
    store
        .create_transaction(NewTransaction {
            space_id: SPACE,
            amount: chf(amount),
            merchant_reference: "W".into(),
            terminal_id: Some("T-1".into()),
            meta_data: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            created_by: USER,
            created_at: IsoTime::now(),
        })
        .await
        .unwrap()
}

async fn approve(store: &CardprocStore, tx: &TransactionRow) -> TransactionRow {
    let change = transition(Decision::Approved { final_after: None }, IsoTime::now());
    match store
        .apply_decision(SPACE, tx.id, change, "400000******0002".into())
        .await
        .unwrap()
    {
        StateChange::Applied(row) => row,
        other => panic!("{}: not applied: {other:?}", engine_name(store)),
    }
}

fn refund(key: &str, tx: u64, amount: &str) -> NewRefund {
    NewRefund {
        space_id: SPACE,
        external_id: key.into(),
        transaction_id: tx,
        amount: amount.parse().unwrap(),
        refund_type: RefundType::MerchantInitiatedOnline,
        merchant_reference: None,
        created_by: USER,
        created_at: IsoTime::now(),
    }
}

engine_test!(
    async fn concurrent_decisions_apply_exactly_once(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = create(&store, "10.00").await;
        assert_eq!(tx.state, TransactionState::Pending, "{e}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let decision = if i % 2 == 0 {
                Decision::Approved { final_after: None }
            } else {
                Decision::Declined(FailureReason::Declined)
            };
            tasks.push(tokio::spawn(async move {
                let change = transition(decision, IsoTime::now());
                store
                    .apply_decision(SPACE, tx.id, change, format!("card {i}"))
                    .await
                    .unwrap()
            }));
        }
        let mut applied = Vec::new();
        let mut unchanged = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                StateChange::Applied(row) => applied.push(row),
                StateChange::Unchanged(row) => unchanged.push(row),
                StateChange::NotFound => panic!("{e}: transaction vanished"),
            }
        }
        assert_eq!(applied.len(), 1, "{e}: one decision wins");
        let winner = &applied[0];
        for row in &unchanged {
            assert_eq!(row, winner, "{e}: the others see the winner's result");
        }
        assert_eq!(
            store.transaction(SPACE, tx.id).await.unwrap().as_ref(),
            Some(winner),
            "{e}"
        );
        // Another space does not see it, and cannot process it.
        assert_eq!(store.transaction(SPACE + 1, tx.id).await.unwrap(), None);
        let change = transition(Decision::Approved { final_after: None }, IsoTime::now());
        assert_eq!(
            store
                .apply_decision(SPACE + 1, tx.id, change, "x".into())
                .await
                .unwrap(),
            StateChange::NotFound,
            "{e}"
        );
    }
);

engine_test!(
    async fn delayed_approval_notifies_and_the_sweep_persists_it(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = create(&store, "12.00").await;
        let mut scheduled = store.notifier().subscribe_topic(TOPIC_FINALITY_SCHEDULED);
        let now = IsoTime::now();
        let change = transition(
            Decision::Approved {
                final_after: Some(Duration::from_secs(3600)),
            },
            now,
        );
        let due = change.fulfill_at.unwrap();
        let StateChange::Applied(row) = store
            .apply_decision(SPACE, tx.id, change, "m".into())
            .await
            .unwrap()
        else {
            panic!("{e}: not applied");
        };
        assert_eq!(
            (row.state, row.completed, row.fulfill_at),
            (TransactionState::Authorized, chf("0"), Some(due)),
            "{e}"
        );
        assert!(
            scheduled.wait(Duration::from_secs(10)).await,
            "{e}: the delayed approval woke the finality worker"
        );

        // Not due yet: nothing changes, the next due time is reported.
        let sweep = store.sweep_finality(now).await.unwrap();
        assert_eq!((sweep.finalized, sweep.next_due), (0, Some(due)), "{e}");
        // Due: persisted as FULFILL, captured at fulfill_at, nothing left.
        let sweep = store.sweep_finality(due).await.unwrap();
        assert_eq!((sweep.finalized, sweep.next_due), (1, None), "{e}");
        let row = store.transaction(SPACE, tx.id).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.completed, row.completed_at),
            (TransactionState::Fulfill, chf("12"), Some(due)),
            "{e}"
        );
        // A FULFILL transaction cannot be voided.
        match store.void(SPACE, tx.id, due).await.unwrap() {
            StateChange::Unchanged(row) => assert_eq!(row.state, TransactionState::Fulfill),
            other => panic!("{e}: {other:?}"),
        }
    }
);

engine_test!(
    async fn void_applies_only_before_finality(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = create(&store, "5.00").await;
        let now = IsoTime::now();
        let change = transition(
            Decision::Approved {
                final_after: Some(Duration::from_secs(60)),
            },
            now,
        );
        let due = change.fulfill_at.unwrap();
        store
            .apply_decision(SPACE, tx.id, change, "m".into())
            .await
            .unwrap();
        // At the due time the transaction is final: too late to void.
        assert!(
            matches!(store.void(SPACE, tx.id, due).await.unwrap(), StateChange::Unchanged(r) if r.state == TransactionState::Authorized),
            "{e}"
        );
        match store.void(SPACE, tx.id, now).await.unwrap() {
            StateChange::Applied(row) => {
                assert_eq!(
                    (row.state, row.fulfill_at),
                    (TransactionState::Voided, None),
                    "{e}"
                );
            }
            other => panic!("{e}: {other:?}"),
        }
        // Voided: never swept to FULFILL.
        assert_eq!(store.sweep_finality(due).await.unwrap().finalized, 0, "{e}");
        assert!(
            matches!(store.void(SPACE, tx.id, now).await.unwrap(), StateChange::Unchanged(r) if r.state == TransactionState::Voided),
            "{e}"
        );
        assert_eq!(
            store.void(SPACE, tx.id + 1000, now).await.unwrap(),
            StateChange::NotFound,
            "{e}"
        );
    }
);

engine_test!(
    async fn racing_refunds_never_exceed_the_captured_amount(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = approve(&store, &create(&store, "20.00").await).await;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .refund(refund(&format!("k-{i}"), tx.id, "3.00"))
                    .await
                    .unwrap()
                    .0
            }));
        }
        let (mut created, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                RefundOutcome::Created(r) => {
                    assert_eq!(r.amount, chf("3"), "{e}");
                    created += 1;
                }
                RefundOutcome::ExceedsCompleted => refused += 1,
                other => panic!("{e}: {other:?}"),
            }
        }
        assert_eq!((created, refused), (6, 10), "{e}");
        let row = store.transaction(SPACE, tx.id).await.unwrap().unwrap();
        assert_eq!(row.refunded, chf("18"), "{e}");
        // The rest, to the last unit, and not one more.
        let (last, _) = store.refund(refund("rest", tx.id, "2")).await.unwrap();
        assert!(matches!(last, RefundOutcome::Created(_)), "{e}: {last:?}");
        let (more, _) = store.refund(refund("more", tx.id, "0.01")).await.unwrap();
        assert_eq!(more, RefundOutcome::ExceedsCompleted, "{e}");
        assert_eq!(
            store
                .transaction(SPACE, tx.id)
                .await
                .unwrap()
                .unwrap()
                .refunded,
            chf("20"),
            "{e}"
        );
    }
);

engine_test!(
    async fn one_refund_per_key_whatever_races(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let a = approve(&store, &create(&store, "20.00").await).await;
        let b = approve(&store, &create(&store, "20.00").await).await;
        // The same key raced on two transactions: one refund, the other request finds it.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let tx = if i % 2 == 0 { a.id } else { b.id };
            tasks.push(tokio::spawn(async move {
                store.refund(refund("key", tx, "7.00")).await.unwrap().0
            }));
        }
        let mut created = Vec::new();
        let mut existing = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                RefundOutcome::Created(r) => created.push(r),
                RefundOutcome::Existing(r) => existing.push(r),
                other => panic!("{e}: {other:?}"),
            }
        }
        assert_eq!(created.len(), 1, "{e}: one refund under the key");
        assert!(existing.iter().all(|r| *r == created[0]), "{e}");
        let winner = created[0].transaction_id;
        let loser = if winner == a.id { b.id } else { a.id };
        let refunded = |id| {
            let store = store.clone();
            async move {
                store
                    .transaction(SPACE, id)
                    .await
                    .unwrap()
                    .unwrap()
                    .refunded
            }
        };
        assert_eq!(refunded(winner).await, chf("7"), "{e}");
        assert_eq!(
            refunded(loser).await,
            chf("0"),
            "{e}: nothing booked on the other"
        );
        assert_eq!(
            store
                .refund_by_id(SPACE, created[0].id)
                .await
                .unwrap()
                .as_ref(),
            Some(&created[0]),
            "{e}"
        );
        assert_eq!(
            store.refund_by_id(SPACE + 1, created[0].id).await.unwrap(),
            None
        );

        // Refusals store nothing.
        let pending = create(&store, "1.00").await;
        let (outcome, _) = store.refund(refund("p", pending.id, "1")).await.unwrap();
        assert_eq!(
            outcome,
            RefundOutcome::NotRefundable(TransactionState::Pending),
            "{e}"
        );
        let (outcome, _) = store
            .refund(refund("p", pending.id + 99, "1"))
            .await
            .unwrap();
        assert_eq!(outcome, RefundOutcome::TransactionNotFound, "{e}");
        let (outcome, _) = store.refund(refund("p", winner, "1")).await.unwrap();
        assert!(
            matches!(outcome, RefundOutcome::Created(_)),
            "{e}: key p still free"
        );
    }
);

engine_test!(
    async fn a_due_delayed_payment_is_finalized_by_its_refund(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = create(&store, "8.00").await;
        let change = transition(
            Decision::Approved {
                final_after: Some(Duration::from_secs(1)),
            },
            IsoTime::now(),
        );
        let due = change.fulfill_at.unwrap();
        store
            .apply_decision(SPACE, tx.id, change, "m".into())
            .await
            .unwrap();
        let early = NewRefund {
            created_at: IsoTime::from_micros(due.as_micros() - 1),
            ..refund("early", tx.id, "8")
        };
        assert_eq!(
            store.refund(early).await.unwrap(),
            (
                RefundOutcome::NotRefundable(TransactionState::Authorized),
                0
            ),
            "{e}"
        );
        let on_time = NewRefund {
            created_at: due,
            ..refund("on-time", tx.id, "8")
        };
        let (outcome, finalized) = store.refund(on_time).await.unwrap();
        assert!(
            matches!(outcome, RefundOutcome::Created(_)),
            "{e}: {outcome:?}"
        );
        assert_eq!(finalized, 1, "{e}: the refund persisted the finality");
        let row = store.transaction(SPACE, tx.id).await.unwrap().unwrap();
        assert_eq!(
            (row.state, row.completed, row.refunded),
            (TransactionState::Fulfill, chf("8"), chf("8")),
            "{e}"
        );
    }
);

engine_test!(
    async fn concurrent_user_creations_get_distinct_ids(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let key = cardcash_api::cardproc::mac::MacKey::from_bytes(vec![7; 32]).unwrap();
        store
            .upsert_user(41, &key, Role::Terminal, SPACE, IsoTime::now())
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .create_user(&key, Role::Reader, SPACE, IsoTime::now())
                    .await
                    .unwrap()
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
        ids.sort_unstable();
        assert_eq!(ids, (42..48).collect::<Vec<u64>>(), "{e}");
        let users = store.users().await.unwrap();
        assert_eq!(users.len(), 7, "{e}");
        let reader = store.user(45).await.unwrap().unwrap();
        assert_eq!((reader.role, reader.space_id), (Role::Reader, SPACE), "{e}");
        assert!(store.delete_user(45).await.unwrap(), "{e}");
        assert!(!store.delete_user(45).await.unwrap(), "{e}");
        assert!(store.user(45).await.unwrap().is_none(), "{e}");
        assert!(store.user(u64::MAX).await.unwrap().is_none(), "{e}");
    }
);

engine_test!(
    /// Even a write that bypasses the refund rules cannot book more than was captured.
    async fn the_schema_refuses_an_over_refund(engine: Engine) {
        let store = store(engine).await;
        let e = engine_name(&store);
        let tx = approve(&store, &create(&store, "20.00").await).await;
        let id = i64::try_from(tx.id).unwrap();
        let result = match store.database() {
            Database::Sqlite(db) => db
                .write(move |w| {
                    w.execute(
                        "UPDATE card_transaction SET refunded_val = 20, refunded_frac = 1 WHERE id = ?1",
                        rusqlite::params![id],
                    )?;
                    Ok(())
                })
                .await
                .map(drop),
            Database::Postgres(db) => sqlx::query(
                "UPDATE card_transaction SET refunded_val = 20, refunded_frac = 1 WHERE id = $1",
            )
            .bind(id)
            .execute(db.pool())
            .await
            .map(drop)
            .map_err(Into::into),
        };
        let error = result.expect_err(&e);
        assert_eq!(
            error.constraint().as_deref(),
            Some("card_transaction_refunded_within_completed"),
            "{e}: {error}"
        );
        assert_eq!(
            store
                .transaction(SPACE, tx.id)
                .await
                .unwrap()
                .unwrap()
                .refunded,
            chf("0"),
            "{e}"
        );
    }
);
