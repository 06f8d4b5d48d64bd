//! `cardcash exchange offline sync` reminds the operator of the fees of every configured
//! account's wire method, not only of the accounts `/keys` lists: a debit-only
//! `payto://card-transaction/…` account (it sends closed reserves back to cards) is never in
//! `/keys`, yet the closer needs the closing fee of its method. An account enabled for neither
//! debit nor credit is not used by the exchange and is not advised on.

use std::time::Duration;

use cardcash_util::Timestamp;

use super::{ExchangeProcess, free_port, offline_config, run_ok, wait_until};

const CARD_ACCOUNT: &str = "payto://card-transaction/c2ec.example/exchange";

/// Signs and uploads, through `cardcash exchange offline … --upload`, a fee of `command`
/// (`wire-fee METHOD …` or `global-fee …`) from an hour ago for 60 days.
fn fee(config: &std::path::Path, command: &[&str]) {
    let now = Timestamp::now().as_secs();
    let start = format!("@{}", now - 3600);
    let end = format!("@{}", now + 60 * 86_400);
    let mut args = vec![
        "exchange", "offline", command[0], "--start", &start, "--end", &end,
    ];
    args.extend(&command[1..]);
    args.push("--upload");
    run_ok(config, &args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_advises_on_the_fees_of_a_debit_only_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let config = d.join("exchange.conf");
    let port = free_port();
    let mut conf = offline_config(d, port);
    conf.push_str(&format!(
        "\n[exchange-account-card]\nPAYTO_URI = {CARD_ACCOUNT}\nENABLE_DEBIT = YES\n\
         ENABLE_CREDIT = NO\n\n[exchange-account-old]\n\
         PAYTO_URI = payto://iban/DE75512108001245126199?receiver-name=Exchange\n\
         ENABLE_DEBIT = NO\nENABLE_CREDIT = NO\n"
    ));
    std::fs::write(&config, conf).unwrap();
    let master_pub = run_ok(&config, &["exchange", "offline", "setup"])
        .trim()
        .to_owned();
    let conf = std::fs::read_to_string(&config).unwrap().replace(
        "[exchange]\n",
        &format!("[exchange]\nMASTER_PUBLIC_KEY = {master_pub}\n"),
    );
    std::fs::write(&config, conf).unwrap();
    let exchange = ExchangeProcess::start(&config, &d.join("exchange.log"));
    let client = exchange.client();

    // Keys signed, the bank account enabled, its method's fees and the global fees set.
    run_ok(&config, &["exchange", "offline", "sync"]);
    run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "enable-account",
            super::ACCOUNT,
            "--start",
            &format!("@{}", Timestamp::now().as_secs() - 3600),
            "--upload",
        ],
    );
    fee(
        &config,
        &["wire-fee", "x-taler-bank", "KUDOS:0.05", "KUDOS:0.01"],
    );
    fee(&config, &["global-fee", "KUDOS:0", "KUDOS:0", "KUDOS:0"]);
    wait_until(
        "/keys shows the account and the fees",
        Duration::from_secs(20),
        || async {
            client.keys().await.is_ok_and(|k| {
                k.accounts.len() == 1
                    && k.wire_fees.contains_key("x-taler-bank")
                    && !k.global_fees.is_empty()
            })
        },
    )
    .await;

    // /keys lists only the bank account; the card account's method still lacks its fees.
    let out = run_ok(&config, &["exchange", "offline", "sync"]);
    let notes: Vec<&str> = out.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 1, "one note, on card-transaction:\n{out}");
    for part in [
        "no wire fee of card-transaction covers now",
        "the debit-only [exchange-account-card]",
        "closing fee",
        "`cardcash exchange offline wire-fee now card-transaction WIRE_FEE CLOSING_FEE`",
    ] {
        assert!(notes[0].contains(part), "{part:?} missing in:\n{out}");
    }
    assert!(
        !out.contains("iban") && !out.contains("exchange-account-old"),
        "an account enabled for nothing is not advised on:\n{out}"
    );

    // Once the offline key set them, sync has nothing more to say.
    fee(
        &config,
        &["wire-fee", "card-transaction", "KUDOS:0.01", "KUDOS:0.02"],
    );
    wait_until(
        "/keys has the card-transaction fees",
        Duration::from_secs(20),
        || async {
            client
                .keys()
                .await
                .is_ok_and(|k| k.wire_fees.contains_key("card-transaction"))
        },
    )
    .await;
    let out = run_ok(&config, &["exchange", "offline", "sync"]);
    assert!(!out.contains("note: "), "nothing is missing now:\n{out}");
    drop(exchange);
}
