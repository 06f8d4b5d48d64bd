//! A card payment that does not become a confirmed withdrawal is always refunded, in full and
//! exactly once, whatever the order of registration, aborts (wallet or terminal), the
//! terminal's check, expiry and attestation; a confirmed withdrawal is never refunded.

use std::time::Duration;

use cardcash_c2ec::db::C2ecStore;
use cardcash_c2ec::db::withdrawal::{RefundState, WithdrawalRow};
use reqwest::{Method, StatusCode};

use crate::helpers::{
    Arg, Card, Engine, Env, Options, WAIT, code, engine_test, reserve_pub, sql_count, wait_until,
};

/// Who aborts.
#[derive(Debug, Clone, Copy)]
enum By {
    Wallet,
    Terminal,
}

const BOTH: [By; 2] = [By::Wallet, By::Terminal];

impl Env {
    async fn abort_by(&self, wopid: &str, by: By) -> reqwest::Response {
        match by {
            By::Wallet => self
                .http
                .post(self.url(&format!(
                    "taler-integration/withdrawal-operation/{wopid}/abort"
                )))
                .send()
                .await
                .unwrap(),
            By::Terminal => self
                .terminal(Method::POST, &format!("terminal/withdrawals/{wopid}/abort"))
                .send()
                .await
                .unwrap(),
        }
    }

    async fn row(&self, wopid: &str) -> WithdrawalRow {
        let store = C2ecStore::new(self.db.clone(), "CHF".parse().unwrap());
        store
            .withdrawal(&wopid.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// A selected operation of `amount`, paid at the processor (not yet checked).
    async fn selected_and_paid(&self, amount: &str, card: Card) -> (String, String) {
        let (wopid, _) = self.setup(amount).await;
        assert_eq!(
            self.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let tx = self.pay(&wopid, amount, card);
        (wopid, tx)
    }

    /// Waits until the operation's refund is settled and asserts it returned `captured` to
    /// the card: the processor shows exactly that much refunded on the transaction.
    async fn assert_refunded_once(&self, wopid: &str, tx: &str, captured: &str) {
        wait_until(WAIT, || async {
            self.row(wopid).await.refund_state == RefundState::Done
        })
        .await;
        assert_eq!(
            self.processor
                .refunded(tx)
                .map(|a| a.to_string())
                .as_deref(),
            Some(captured),
            "refunded exactly the captured amount"
        );
    }

    /// Asserts the operation is confirmed, credited once, and has no refund, queued or done.
    async fn assert_confirmed_unrefunded(&self, wopid: &str, tx: &str) {
        let row = self.row(wopid).await;
        assert_eq!(row.status.as_str(), "confirmed");
        assert_eq!(row.refund_state, RefundState::None);
        assert!(self.processor.refunded(tx).unwrap().is_zero());
        let extra = sql_count(
            &self.db,
            "SELECT COUNT(*) FROM extra_payments WHERE provider_tx_id = $1",
            vec![Arg::Text(tx.to_owned())],
        )
        .await;
        assert_eq!(extra, 0);
    }
}

engine_test!(
    /// Register, pay, abort (wallet or terminal), then the terminal's check: the check is refused
    /// with 409 `BANK_CONFIRM_ABORT_CONFLICT`, yet the transaction is recorded and the captured
    /// money goes back to the card once, also when the check is repeated.
    async fn abort_before_check_refunds(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let mut refunds = 0;
        for by in BOTH {
            let (wopid, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
            assert_eq!(
                env.abort_by(&wopid, by).await.status(),
                StatusCode::NO_CONTENT
            );
            for _ in 0..2 {
                let r = env.check(&wopid, &tx).await;
                assert_eq!(r.status(), StatusCode::CONFLICT, "{by:?}");
                assert_eq!(code(r).await, 5117, "{by:?}");
            }
            env.assert_refunded_once(&wopid, &tx, "CHF:20").await;
            refunds += 1;
            assert_eq!(env.processor.refund_count(), refunds, "{by:?}");
            assert_eq!(env.wallet_status(&wopid, "").await["status"], "aborted");
        }
        assert!(env.incoming().await.is_empty());
        env.stop().await;
    }
);

engine_test!(
    /// The operation expires while selected (no check within the window), then the terminal's check
    /// arrives: refused, recorded, refunded.
    async fn expiry_before_check_refunds(engine: Engine) {
        let opts = Options {
            check_window: Duration::from_millis(300),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (wopid, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "aborted");
        let r = env.check(&wopid, &tx).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(code(r).await, 5117);
        env.assert_refunded_once(&wopid, &tx, "CHF:20").await;
        assert_eq!(env.processor.refund_count(), 1);
        assert!(env.incoming().await.is_empty());
        env.stop().await;
    }
);

engine_test!(
    /// Check first, abort (wallet or terminal) while the attestation still waits for the processor:
    /// aborted, and refunded once the processor answers.
    async fn abort_after_check_refunds(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let mut refunds = 0;
        for by in BOTH {
            let (wopid, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
            env.processor.set_down(true);
            assert_eq!(
                env.check(&wopid, &tx).await.status(),
                StatusCode::NO_CONTENT
            );
            assert_eq!(
                env.abort_by(&wopid, by).await.status(),
                StatusCode::NO_CONTENT
            );
            env.processor.set_down(false);
            env.assert_refunded_once(&wopid, &tx, "CHF:20").await;
            refunds += 1;
            assert_eq!(env.processor.refund_count(), refunds, "{by:?}");
            // The terminal's repeated check learns that the operation was aborted.
            let r = env.check(&wopid, &tx).await;
            assert_eq!(r.status(), StatusCode::CONFLICT);
            assert_eq!(code(r).await, 5117);
        }
        assert!(env.incoming().await.is_empty());
        env.stop().await;
    }
);

engine_test!(
    /// Once the terminal reported its transaction, the check window no longer applies: the
    /// attestation decides (here the processor is slow but the payment good, so it confirms, and
    /// nothing is refunded). An unchecked operation of the same age does expire.
    async fn checked_operation_is_left_to_attestation(engine: Engine) {
        let opts = Options {
            check_window: Duration::from_millis(300),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (checked, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
        let (unchecked, _) = env.selected_and_paid("CHF:20", Card::Approved).await;
        env.processor.set_down(true);
        assert_eq!(
            env.check(&checked, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&unchecked, "selected").await, "aborted");
        assert_eq!(env.wallet_status(&checked, "").await["status"], "selected");
        env.processor.set_down(false);
        assert_eq!(env.wait_leaving(&checked, "selected").await, "confirmed");
        env.assert_confirmed_unrefunded(&checked, &tx).await;
        assert_eq!(env.processor.refund_count(), 0);
        env.stop().await;
    }
);

engine_test!(
    /// A terminal that charged the card before any wallet registered and reported it: 409
    /// `BANK_CONFIRM_INCOMPLETE`, but the transaction is kept. Abort (either side) or expiry of
    /// the pending operation refunds it; a registration instead starts the attestation.
    async fn check_before_registration_is_kept(engine: Engine) {
        let opts = Options {
            registration_window: Duration::from_millis(400),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let mut refunds = 0;
        for by in BOTH {
            let (wopid, _) = env.setup("CHF:20").await;
            let tx = env.pay(&wopid, "CHF:20", Card::Approved);
            let r = env.check(&wopid, &tx).await;
            assert_eq!(r.status(), StatusCode::CONFLICT);
            assert_eq!(code(r).await, 5130);
            assert_eq!(
                env.abort_by(&wopid, by).await.status(),
                StatusCode::NO_CONTENT
            );
            env.assert_refunded_once(&wopid, &tx, "CHF:20").await;
            refunds += 1;
            assert_eq!(env.processor.refund_count(), refunds);
        }
        // Expiry of the pending operation.
        let (expiring, _) = env.setup("CHF:20").await;
        let tx = env.pay(&expiring, "CHF:20", Card::Approved);
        assert_eq!(
            env.check(&expiring, &tx).await.status(),
            StatusCode::CONFLICT
        );
        assert_eq!(env.wait_leaving(&expiring, "pending").await, "aborted");
        env.assert_refunded_once(&expiring, &tx, "CHF:20").await;
        assert_eq!(env.processor.refund_count(), refunds + 1);
        // Registration in time: attested without a second check, never refunded.
        let (wopid, _) = env.setup("CHF:20").await;
        let tx = env.pay(&wopid, "CHF:20", Card::Approved);
        assert_eq!(env.check(&wopid, &tx).await.status(), StatusCode::CONFLICT);
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        env.assert_confirmed_unrefunded(&wopid, &tx).await;
        assert_eq!(env.processor.refund_count(), refunds + 1);
        env.stop().await;
    }
);

engine_test!(
    /// The terminal charges the card twice for one operation and reports both: the first
    /// transaction confirms the withdrawal, the second is refused with 409 and refunded in full,
    /// once (also when reported again); the same holds for a second payment after an abort.
    async fn second_transaction_is_refunded(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let (wopid, first) = env.selected_and_paid("CHF:20", Card::Approved).await;
        assert_eq!(
            env.check(&wopid, &first).await.status(),
            StatusCode::NO_CONTENT
        );
        let second = env.pay(&wopid, "CHF:20", Card::Approved);
        for _ in 0..2 {
            let r = env.check(&wopid, &second).await;
            assert_eq!(r.status(), StatusCode::CONFLICT);
            assert_eq!(code(r).await, 5113);
        }
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        assert_eq!(
            env.wait_refund(&second).await.map(|a| a.to_string()),
            Some("CHF:20".into())
        );
        assert!(env.processor.refunded(&first).unwrap().is_zero());
        assert_eq!(env.row(&wopid).await.refund_state, RefundState::None);
        assert_eq!(env.incoming().await.len(), 1);
        // After an abort, a further payment is refunded too (as well as the first one).
        let (wopid, first) = env.selected_and_paid("CHF:7", Card::Approved).await;
        assert_eq!(
            env.abort_by(&wopid, By::Wallet).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            env.check(&wopid, &first).await.status(),
            StatusCode::CONFLICT
        );
        let second = env.pay(&wopid, "CHF:7", Card::Approved);
        let r = env.check(&wopid, &second).await;
        assert_eq!(code(r).await, 5117);
        env.assert_refunded_once(&wopid, &first, "CHF:7").await;
        assert_eq!(
            env.wait_refund(&second).await.map(|a| a.to_string()),
            Some("CHF:7".into())
        );
        assert_eq!(env.processor.refund_count(), 3);
        env.stop().await;
    }
);

engine_test!(
    /// A confirmed withdrawal cannot be aborted by anyone and is never refunded, however often the
    /// terminal repeats its check and whatever the expiry windows say.
    async fn confirmed_withdrawal_is_never_refunded(engine: Engine) {
        let opts = Options {
            registration_window: Duration::from_millis(300),
            check_window: Duration::from_millis(300),
            ..Options::default()
        };
        let env = Env::new(engine, opts).await;
        let (wopid, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        for by in BOTH {
            let r = env.abort_by(&wopid, by).await;
            assert_eq!(r.status(), StatusCode::CONFLICT);
            assert_eq!(code(r).await, 5116);
        }
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        // Let the windows pass: an operation set up later expires, this one stays confirmed.
        let (later, _) = env.setup("CHF:1").await;
        assert_eq!(env.wait_leaving(&later, "pending").await, "aborted");
        env.assert_confirmed_unrefunded(&wopid, &tx).await;
        assert_eq!(env.processor.refund_count(), 0);
        assert_eq!(env.incoming().await.len(), 1);
        env.stop().await;
    }
);

engine_test!(
    /// Abort and check race (the hostile test's "5 of 9 rounds"): whichever wins, the card ends up
    /// either funding a confirmed withdrawal (never refunded) or refunded in full, once.
    async fn racing_abort_and_check_never_keep_the_money(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        let mut refunds = 0;
        for round in 0..12 {
            let by = BOTH[round % 2];
            let (wopid, tx) = env.selected_and_paid("CHF:20", Card::Approved).await;
            let (a, c) = tokio::join!(env.abort_by(&wopid, by), env.check(&wopid, &tx));
            let (a, c) = (a.status(), c.status());
            let end = match env.wallet_status(&wopid, "").await["status"].as_str() {
                Some("selected") => env.wait_leaving(&wopid, "selected").await,
                Some(s) => s.to_owned(),
                None => panic!("no status"),
            };
            match end.as_str() {
                "confirmed" => {
                    assert_eq!(a, StatusCode::CONFLICT, "round {round}");
                    assert_eq!(c, StatusCode::NO_CONTENT, "round {round}");
                    env.assert_confirmed_unrefunded(&wopid, &tx).await;
                }
                "aborted" => {
                    assert_eq!(a, StatusCode::NO_CONTENT, "round {round}");
                    env.assert_refunded_once(&wopid, &tx, "CHF:20").await;
                    refunds += 1;
                }
                other => panic!("round {round}: {other}"),
            }
            assert_eq!(env.processor.refund_count(), refunds, "round {round}");
        }
        env.stop().await;
    }
);
