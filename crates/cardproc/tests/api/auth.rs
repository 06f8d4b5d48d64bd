//! Authentication and authorization: bad MAC, stale timestamp, unknown user → 401; wrong role or
//! space → 403; and in every case nothing changes.

use cardcash_api::cardproc::{CreateTransactionRequest, DecimalAmount};
use cardcash_api::cardproc::{RefundRequest, RefundType, TransactionState};
use cardcash_cardproc::processing::CARD_APPROVE;
use cardcash_testkit::{Engine, engine_test};
use reqwest::Method;

use crate::helpers::{
    READER_ID, READER_SECRET, SPACE, TERMINAL_ID, TERMINAL_SECRET, TestApp, card, chf, now_secs,
};

const OTHER_SECRET: &str = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlcg==";

fn create_req() -> CreateTransactionRequest {
    CreateTransactionRequest {
        currency: chf(),
        amount: "1.00".parse().unwrap(),
        merchant_reference: "W".into(),
        terminal_id: None,
        meta_data: Default::default(),
    }
}

engine_test!(
    async fn mac_failures_are_401_and_change_nothing(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.create("2.00").await;
        let process = format!("/api/transaction/process-card?spaceId={SPACE}&id={}", tx.id);
        let body = serde_json::to_string(&card(CARD_APPROVE)).unwrap();
        let now = now_secs();
        let cases = [
            ("wrong secret", TERMINAL_ID, OTHER_SECRET, now),
            ("unknown user", 999, TERMINAL_SECRET, now),
            ("stale timestamp", TERMINAL_ID, TERMINAL_SECRET, now - 700),
            ("future timestamp", TERMINAL_ID, TERMINAL_SECRET, now + 700),
        ];
        for (what, user, secret, ts) in cases {
            let (status, json) = t
                .raw(Method::POST, &process, Some(&body), user, secret, ts)
                .await;
            assert_eq!(
                (status, json["code"].as_u64()),
                (401, Some(40)),
                "{e} {what}: {json}"
            );
        }
        // A valid MAC over a different path does not authorize this one.
        let key = cardcash_api::cardproc::mac::MacKey::from_base64(TERMINAL_SECRET).unwrap();
        let other_path = format!(
            "/api/transaction/process-card?spaceId={SPACE}&id={}",
            tx.id + 1
        );
        let h = cardcash_api::cardproc::mac::MacHeaders::new(
            &key,
            TERMINAL_ID,
            now,
            "POST",
            &other_path,
        );
        let mut req = t
            .http
            .post(format!("{}{process}", t.base()))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in h.pairs() {
            req = req.header(name, value);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 401, "{e}");
        // Missing headers.
        let resp = t
            .http
            .get(format!(
                "{}/api/transaction/read?spaceId={SPACE}&id={}",
                t.base(),
                tx.id
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{e}");
        // Within the window is fine (clock skew tolerated).
        let (status, _) = t
            .raw(
                Method::GET,
                &format!("/api/transaction/read?spaceId={SPACE}&id={}", tx.id),
                None,
                READER_ID,
                READER_SECRET,
                now - 500,
            )
            .await;
        assert_eq!(status, 200, "{e}");
        let read = t.reader.read_transaction(tx.id).await.unwrap();
        assert_eq!(
            (read.state, read.card_masked),
            (TransactionState::Pending, None),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn wrong_role_or_space_is_403_and_changes_nothing(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        // A reader cannot create or process transactions.
        let err = t
            .reader
            .create_transaction(&create_req())
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(403), Some(44)), "{e}");
        let tx = t.create("2.00").await;
        let err = t
            .reader
            .process_card(tx.id, &card(CARD_APPROVE))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(403), "{e}");
        assert_eq!(
            t.reader.read_transaction(tx.id).await.unwrap().state,
            TransactionState::Pending,
            "{e}"
        );
        // Nothing was created by the refused create: the next id follows directly.
        let next = t.create("2.00").await;
        assert_eq!(next.id, tx.id + 1, "{e}");

        // A terminal cannot refund.
        let paid = t.pay("2.00", CARD_APPROVE).await;
        let req = RefundRequest {
            external_id: "t-1".into(),
            transaction: paid.id,
            amount: "1".parse().unwrap(),
            refund_type: RefundType::MerchantInitiatedOnline,
            merchant_reference: None,
        };
        let err = t.terminal.refund(&req).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(403), Some(44)), "{e}");
        assert_eq!(
            t.reader
                .read_transaction(paid.id)
                .await
                .unwrap()
                .refunded_amount,
            DecimalAmount::ZERO,
            "{e}"
        );
        let err = t.terminal.read_refund(1).await.unwrap_err();
        assert_eq!(err.status(), Some(403), "{e}");

        // Another space.
        let elsewhere = t.client(READER_ID, READER_SECRET, SPACE + 1);
        let err = elsewhere.read_transaction(paid.id).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(403), Some(44)), "{e}");
        // The reader's refund afterwards works: the key was not consumed.
        assert!(t.reader.refund(&req).await.is_ok(), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn created_users_work_with_their_secret(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let (id, secret) = cardcash_cardproc::admin::create_user_in(
            t.app().store(),
            SPACE,
            cardcash_cardproc::Role::Terminal,
        )
        .await
        .unwrap();
        assert!(id > READER_ID, "{e}");
        let (id2, secret2) = cardcash_cardproc::admin::create_user_in(
            t.app().store(),
            SPACE,
            cardcash_cardproc::Role::Reader,
        )
        .await
        .unwrap();
        assert_eq!(id2, id + 1, "{e}");
        assert_ne!(secret, secret2, "{e}");
        let terminal = t.client(id, &secret, SPACE);
        let tx = terminal.create_transaction(&create_req()).await.unwrap();
        let reader = t.client(id2, &secret2, SPACE);
        assert_eq!(reader.read_transaction(tx.id).await.unwrap(), tx, "{e}");
        // The other's secret does not work.
        assert_eq!(
            t.client(id, &secret2, SPACE)
                .read_transaction(tx.id)
                .await
                .unwrap_err()
                .status(),
            Some(401),
            "{e}"
        );
        t.shutdown().await;
    }
);

engine_test!(
    /// Authentication reads API users from a cache, yet a change takes effect at once in the
    /// process that made it: a deleted user is refused, a user whose secret changed is refused
    /// with the old secret and accepted with the new one.
    async fn changed_users_take_effect_at_once(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let store = t.app().store();
        let (id, secret) = cardcash_cardproc::admin::create_user_in(
            store,
            SPACE,
            cardcash_cardproc::Role::Terminal,
        )
        .await
        .unwrap();
        let user = t.client(id, &secret, SPACE);
        let tx = user.create_transaction(&create_req()).await.unwrap();
        // Cached now; a second request with a wrong secret is still refused.
        assert_eq!(user.read_transaction(tx.id).await.unwrap().id, tx.id, "{e}");
        let wrong = t.client(id, OTHER_SECRET, SPACE);
        assert_eq!(
            wrong.read_transaction(tx.id).await.unwrap_err().status(),
            Some(401)
        );

        // A new secret: the old one is refused at once, the new one works.
        let key = cardcash_api::cardproc::mac::MacKey::from_base64(OTHER_SECRET).unwrap();
        let now = cardcash_api::cardproc::IsoTime::now();
        store
            .upsert_user(id, &key, cardcash_cardproc::Role::Terminal, SPACE, now)
            .await
            .unwrap();
        let err = user.read_transaction(tx.id).await.unwrap_err();
        assert_eq!(err.status(), Some(401), "{e}");
        assert_eq!(
            wrong.read_transaction(tx.id).await.unwrap().id,
            tx.id,
            "{e}"
        );

        // Deleted: refused at once.
        assert!(store.delete_user(id).await.unwrap(), "{e}");
        let err = wrong.read_transaction(tx.id).await.unwrap_err();
        assert_eq!(err.status(), Some(401), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    /// A user deleted by another process (the `cardcash cardproc user delete` command, here a
    /// second connection to the same database) is refused by the running processor: on
    /// PostgreSQL as soon as the deletion's notification arrives, on SQLite (where processes
    /// cannot notify each other) once its cached row expires after two seconds.
    async fn users_deleted_elsewhere_are_refused(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let (id, secret) = cardcash_cardproc::admin::create_user_in(
            t.app().store(),
            SPACE,
            cardcash_cardproc::Role::Terminal,
        )
        .await
        .unwrap();
        let user = t.client(id, &secret, SPACE);
        let tx = user.create_transaction(&create_req()).await.unwrap();
        assert_eq!(user.read_transaction(tx.id).await.unwrap().id, tx.id, "{e}");

        let url = t.world().cardproc().database_url().to_owned();
        let elsewhere = cardcash_cardproc::db::CardprocStore::connect(&url)
            .await
            .unwrap();
        assert!(elsewhere.delete_user(id).await.unwrap(), "{e}");
        elsewhere.close().await;
        // PostgreSQL's cache would keep the row for a minute without the notification.
        let within = match engine {
            Engine::Sqlite => cardcash_testkit::WAIT,
            Engine::Postgres => cardcash_cardproc::db::POSTGRES_TTL / 4,
        };
        cardcash_testkit::wait_until(within, || async {
            user.read_transaction(tx.id)
                .await
                .err()
                .and_then(|e| e.status())
                == Some(401)
        })
        .await;
        t.shutdown().await;
    }
);
