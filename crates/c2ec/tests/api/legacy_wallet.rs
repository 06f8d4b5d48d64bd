//! GNU Taler's 2022 wallet (wallet-core 0.9, bank integration `0:0:0`) against C2EC, as far as
//! the bank-integration API goes: it accepts our version, decodes every status it can meet
//! (its decoder requires `amount`, `selection_done`, `transfer_done`, `aborted` and
//! `wire_types`), and registering without an amount withdraws the amount it was shown, also
//! for a terminal's `suggested_amount`. Newer wallets keep their fields.

use cardcash_util::{Amount, LibtoolVersion};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Card, Engine, Env, Options, engine_test, reserve_pub, uid};

/// The status as wallet-core 0.9 decodes it (`codecForWithdrawOperationStatusResponse`):
/// `selection_done`, `transfer_done`, `aborted` (booleans), `amount` (string) and `wire_types`
/// (list of strings) are required; `sender_wire`, `suggested_exchange`, `confirm_transfer_url`
/// are optional strings; other fields are ignored.
#[derive(Debug)]
struct LegacyStatus {
    selection_done: bool,
    transfer_done: bool,
    aborted: bool,
    amount: String,
    sender_wire: Option<String>,
}

/// Decodes like the old wallet (panicking where it would fail); `amount` must also parse.
fn legacy(v: &Value) -> LegacyStatus {
    let boolean = |k: &str| {
        v[k].as_bool()
            .unwrap_or_else(|| panic!("the 2022 wallet needs boolean {k:?} in {v}"))
    };
    let optional = |k: &str| match v.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => panic!("the 2022 wallet needs {k:?} as a string, got {other}"),
    };
    let amount = v["amount"]
        .as_str()
        .unwrap_or_else(|| panic!("the 2022 wallet needs \"amount\" in {v}"))
        .to_owned();
    amount.parse::<Amount>().unwrap();
    let wire_types = v["wire_types"].as_array().expect("wire_types");
    assert!(wire_types.iter().all(Value::is_string));
    let _ = (
        optional("suggested_exchange"),
        optional("confirm_transfer_url"),
    );
    LegacyStatus {
        selection_done: boolean("selection_done"),
        transfer_done: boolean("transfer_done"),
        aborted: boolean("aborted"),
        amount,
        sender_wire: optional("sender_wire"),
    }
}

engine_test!(
    async fn wallet_of_2022_reads_every_status_and_withdraws_the_suggestion(engine: Engine) {
        let env = Env::new(engine, Options::default()).await;
        // Its version check (`LibtoolVersion.compare("0:0:0", config.version)`).
        let config: Value = env
            .http
            .get(env.url("taler-integration/config"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ours: LibtoolVersion = config["version"].as_str().unwrap().parse().unwrap();
        let wallet: LibtoolVersion = "0:0:0".parse().unwrap();
        assert!(
            wallet.is_compatible(&ours),
            "{ours:?} must serve bank-integration v0 clients"
        );

        // A terminal that only suggests an amount (no fixed one), with card fees.
        let (wopid, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:10", "terminal_fees": "CHF:0.5"}))
            .await;
        let st = env.wallet_status(&wopid, "").await;
        let old = legacy(&st);
        assert_eq!(old.amount, "CHF:10");
        assert!(!old.selection_done && !old.aborted && !old.transfer_done);
        // Newer wallets still find the v4 fields.
        assert_eq!(st["suggested_amount"], "CHF:10");
        assert_eq!(st["currency"], "CHF");
        assert_eq!(st["card_fees"], "CHF:0.5");
        // The old wallet registers without an amount: it gets the amount it was shown.
        assert_eq!(
            env.register(&wopid, &reserve_pub()).await.status(),
            StatusCode::OK
        );
        let old = legacy(&env.wallet_status(&wopid, "").await);
        assert_eq!(old.amount, "CHF:10");
        assert!(old.selection_done);
        let tx = env.pay(&wopid, "CHF:10.5", Card::Approved);
        assert_eq!(
            env.check(&wopid, &tx).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.wait_leaving(&wopid, "selected").await, "confirmed");
        let old = legacy(&env.wallet_status(&wopid, "").await);
        assert!(old.transfer_done);
        assert_eq!(
            old.sender_wire.as_deref().map(|w| w.ends_with(&tx)),
            Some(true)
        );
        assert_eq!(env.incoming().await[0]["amount"], "CHF:10");

        // Aborted before any wallet registered: the old wallet can still read that it was.
        let (aborted, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:3"}))
            .await;
        let r = env
            .terminal(
                Method::POST,
                &format!("terminal/withdrawals/{aborted}/abort"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let old = legacy(&env.wallet_status(&aborted, "").await);
        assert!(old.aborted);

        // A fixed amount, as before.
        let (fixed, _) = env.setup("CHF:20").await;
        assert_eq!(
            legacy(&env.wallet_status(&fixed, "").await).amount,
            "CHF:20"
        );

        // The terminal's own view shows only a fixed amount.
        let (suggested, _) = env
            .setup_body(json!({"request_uid": uid(), "suggested_amount": "CHF:4"}))
            .await;
        let v: Value = env
            .terminal(Method::GET, &format!("terminal/withdrawals/{suggested}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v.get("amount").is_none(), "{v}");
        assert_eq!(v["suggested_amount"], "CHF:4");
        env.stop().await;
    }
);
