//! Operations: `/config`, the outage switch, malformed input, metrics.

use cardcash_cardproc::processing::CARD_APPROVE;
use cardcash_client::ClientError;
use cardcash_testkit::{Engine, engine_test};
use reqwest::Method;

use crate::helpers::{
    ADMIN_TOKEN, READER_ID, READER_SECRET, SPACE, TERMINAL_ID, TERMINAL_SECRET, TestApp, chf,
    now_secs,
};

engine_test!(
    async fn config_names_the_service(engine: Engine) {
        let t = TestApp::start(engine).await;
        let c = t.reader.config().await.unwrap();
        assert_eq!(
            (
                c.name.as_str(),
                c.version.as_str(),
                c.currencies,
                c.space_id
            ),
            ("cardcash-cardproc", "0:0:0", vec![chf()], SPACE)
        );
        t.shutdown().await;
    }
);

engine_test!(
    async fn outage_switch_gives_503_then_recovers(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("5.00", CARD_APPROVE).await;
        // Wrong or missing admin token.
        let err = t.reader.admin_set_outage("wrong", true).await.unwrap_err();
        assert_eq!(err.status(), Some(401), "{e}");
        t.reader.admin_set_outage(ADMIN_TOKEN, true).await.unwrap();
        let err = t.reader.read_transaction(tx.id).await.unwrap_err();
        assert_eq!(err.status(), Some(503), "{e} {err:?}");
        assert!(err.is_retryable(), "{e}");
        assert_eq!(t.terminal.create("1.00").await.status(), Some(503), "{e}");
        // /config stays up (it is not the payment API).
        assert!(t.reader.config().await.is_ok(), "{e}");
        t.reader.admin_set_outage(ADMIN_TOKEN, false).await.unwrap();
        assert_eq!(t.reader.read_transaction(tx.id).await.unwrap(), tx, "{e}");
        t.shutdown().await;
    }
);

trait CreateOutcome {
    async fn create(&self, amount: &str) -> ClientError;
}

impl CreateOutcome for cardcash_client::CardprocClient {
    async fn create(&self, amount: &str) -> ClientError {
        let req = cardcash_api::cardproc::CreateTransactionRequest {
            currency: chf(),
            amount: amount.parse().unwrap(),
            merchant_reference: "W".into(),
            terminal_id: None,
            meta_data: Default::default(),
        };
        self.create_transaction(&req).await.unwrap_err()
    }
}

engine_test!(
    async fn malformed_input_gets_taler_errors(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let now = now_secs();
        let create = format!("/api/transaction/create?spaceId={SPACE}");
        let bodies = [
            "{not json",
            r#"{"currency":"CHF","amount":20.5,"merchantReference":"W"}"#,
            r#"{"currency":"CHF","amount":"20,5","merchantReference":"W"}"#,
            r#"{"currency":"chf","amount":"20.5","merchantReference":"W"}"#,
            r#"{"currency":"CHF","merchantReference":"W"}"#,
        ];
        for body in bodies {
            let (status, json) = t
                .raw(
                    Method::POST,
                    &create,
                    Some(body),
                    TERMINAL_ID,
                    TERMINAL_SECRET,
                    now,
                )
                .await;
            assert_eq!(
                (status, json["code"].as_u64()),
                (400, Some(22)),
                "{e} {body}: {json}"
            );
            assert!(json["hint"].is_string(), "{e}");
        }
        // Query parameters.
        let (status, json) = t
            .raw(
                Method::GET,
                &format!("/api/transaction/read?spaceId={SPACE}"),
                None,
                READER_ID,
                READER_SECRET,
                now,
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (400, Some(25)), "{e}");
        let (status, json) = t
            .raw(
                Method::GET,
                &format!("/api/transaction/read?spaceId={SPACE}&id=abc"),
                None,
                READER_ID,
                READER_SECRET,
                now,
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (400, Some(26)), "{e}");
        let (status, json) = t
            .raw(
                Method::GET,
                "/api/transaction/read?id=1",
                None,
                READER_ID,
                READER_SECRET,
                now,
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (400, Some(25)), "{e}");
        let (status, json) = t
            .raw(
                Method::GET,
                "/api/transaction/read?spaceId=x&id=1",
                None,
                READER_ID,
                READER_SECRET,
                now,
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (400, Some(26)), "{e}");
        // Unknown endpoint.
        let (status, json) = t
            .raw(
                Method::GET,
                "/api/nothing",
                None,
                READER_ID,
                READER_SECRET,
                now,
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (404, Some(21)), "{e}");
        t.shutdown().await;
    }
);

engine_test!(
    async fn metrics_count_final_states_and_refunds(engine: Engine) {
        let t = TestApp::start(engine).await;
        let e = t.engine;
        let tx = t.pay("5.00", CARD_APPROVE).await;
        t.pay("5.00", cardcash_cardproc::processing::CARD_DECLINE)
            .await;
        let req = cardcash_api::cardproc::RefundRequest {
            external_id: "m-1".into(),
            transaction: tx.id,
            amount: "1".parse().unwrap(),
            refund_type: cardcash_api::cardproc::RefundType::MerchantInitiatedOnline,
            merchant_reference: None,
        };
        t.reader.refund(&req).await.unwrap();
        t.reader.refund(&req).await.unwrap();
        let text = t
            .http
            .get(format!("{}/metrics", t.base()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in [
            "cardproc_transactions_created_total 2",
            "cardproc_transactions_final_total{state=\"FULFILL\"} 1",
            "cardproc_transactions_final_total{state=\"DECLINE\"} 1",
            "cardproc_refunds_total 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{e}: missing {line:?} in\n{text}"
            );
        }
        t.shutdown().await;
    }
);

engine_test!(
    async fn admin_disabled_without_token_and_wrong_methods(engine: Engine) {
        let mut config = crate::helpers::config();
        config.admin_token = None;
        let t = TestApp::start_with(engine, config).await;
        let e = t.engine;
        let err = t
            .reader
            .admin_set_outage(ADMIN_TOKEN, true)
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(403), Some(44)), "{e}");
        // Still up.
        assert!(
            t.reader
                .read_transaction(1)
                .await
                .unwrap_err()
                .is_not_found(),
            "{e}"
        );
        let (status, json) = t
            .raw(
                Method::DELETE,
                &format!("/api/transaction/read?spaceId={SPACE}&id=1"),
                None,
                READER_ID,
                READER_SECRET,
                now_secs(),
            )
            .await;
        assert_eq!((status, json["code"].as_u64()), (405, Some(20)), "{e}");
        t.shutdown().await;
    }
);
