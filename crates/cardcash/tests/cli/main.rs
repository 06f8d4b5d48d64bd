//! The README's promises, checked on the real binary: `cardcash demo` plays the whole story and
//! exits 0; a declined card makes it fail loudly; `--help` explains the commands.
//! `newcomer` covers what a first-time user tripped over (issue 6 §9); `architecture` enforces
//! ARCHITECTURE.md's dependency rules on `cargo metadata`; `exchange` runs the exchange's
//! offline key workflow and its crash tests on the binary; `story` checks that the demo's money
//! adds up to the cent on both databases; `wallet` drives `cardcash wallet` against the demo.

mod architecture;
mod exchange;
mod merchant;
mod merchant_bench;
mod newcomer;
mod story;
mod wallet;
mod wallet_pay;

use std::process::{Command, Output};

fn cardcash(args: &[&str]) -> Output {
    let data = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_cardcash"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CARDCASH_CONFIG")
        .current_dir(data.path())
        .output()
        .expect("run cardcash")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_plays_the_story_and_exits_zero() {
    let out = cardcash(&["demo", "--plain"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[4/18] wallet: the customer's phone scans the QR code, chooses the exchange",
        "/keys verified",
        "registered at C2EC for CHF:20",
        "[7/18] C2EC: lists the confirmed withdrawal in its Wire Gateway incoming history",
        "credited CHF:20, exactly once",
        "[8/18] exchange: wirewatch imports the transfer and funds the reserve",
        "reserve balance CHF:20",
        "taler+http://withdraw/127.0.0.1:",
        "withdrawal CONFIRMED",
        "[9/18] wallet: withdraws the coins",
        "withdraw fee CHF:0.01 each",
        "9/9 coins signed, unblinded and verified",
        "[10/18] wallet: checks its coins against the reserve and shows its balance",
        "paid by card CHF:20 = coins CHF:19.96 + withdraw fees CHF:0.04",
        "wallet balance: CHF:19.96 available",
        "became coins in the customer's wallet",
        "[13/18] wallet: scans the QR code, checks the contract and pays with its coins",
        "the customer pays CHF:9.88",
        "the Sonatas' page and its PDF",
        "pays nothing",
        "granted CHF:2, credited to the coins CHF:1.99",
        "the shop's page now says the purchase was refunded",
        "the shop's bank account: CHF:0 → CHF:7.86",
        "CHF:20 = CHF:20: every cent is accounted for",
        "[11/18] card processor: pays the captured card payments out",
        "payout 1: CHF:20 to exchange",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn demo_with_a_declined_card_fails_and_says_why() {
    let out = cardcash(&["demo", "--plain", "--card", "4000000000000010"]);
    let text = stdout(&out);
    assert!(
        !out.status.success(),
        "a declined card must not succeed:\n{text}"
    );
    assert!(
        text.contains("withdrawal ABORTED"),
        "no abort reported:\n{text}"
    );
    assert!(
        !text.contains("[7/18]") && !text.contains("[9/18]"),
        "neither the exchange's nor the wallet's withdrawal step may run:\n{text}"
    );
}

#[test]
fn help_lists_every_service() {
    let out = cardcash(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in [
        "demo", "bank", "cardproc", "c2ec", "exchange", "merchant", "terminal",
    ] {
        assert!(text.contains(cmd), "--help does not mention {cmd}:\n{text}");
    }
}

#[test]
fn a_missing_configuration_file_is_explained() {
    let out = cardcash(&["c2ec", "terminal", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cardcash.conf") && err.contains("cardcash demo"),
        "{err}"
    );
}

/// `demo --serve` leaves working services and a working configuration behind: the operator
/// commands run against them with `-c DIR/cardcash.conf`.
#[test]
fn demo_serve_leaves_a_configuration_the_operator_commands_use() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let data = tempfile::tempdir().expect("temp dir");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_cardcash"))
        .args(["demo", "--plain", "--serve", "--data-dir"])
        .arg(data.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let mut lines = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let mut seen = String::new();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| {
        seen.push_str(&line);
        seen.push('\n');
        line.contains("Services keep running")
    });
    let config = data.path().join("cardcash.conf");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cardcash"))
            .arg("-c")
            .arg(&config)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run cardcash")
    };
    let checks = ready.then(|| {
        (
            run(&["c2ec", "provider", "check"]),
            run(&["bank", "account", "list"]),
            run(&["c2ec", "terminal", "list"]),
        )
    });
    // Stop the services the way an operator does (SIGTERM), whatever the checks said.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(demo.id().to_string())
        .status();
    let status = demo.wait().expect("demo exit");
    assert!(ready, "demo never reached --serve:\n{seen}");
    let (provider, accounts, terminals) = checks.expect("checks ran");
    assert!(
        provider.status.success(),
        "provider check: {}",
        String::from_utf8_lossy(&provider.stderr)
    );
    assert!(
        stdout(&provider).contains("accepts user 2"),
        "{}",
        stdout(&provider)
    );
    let accounts = stdout(&accounts);
    assert!(accounts.contains("exchange\texchange"), "{accounts}");
    assert!(accounts.contains("alice\tcustomer"), "{accounts}");
    assert!(
        stdout(&terminals).contains("demo shop"),
        "{}",
        stdout(&terminals)
    );
    assert!(
        status.success(),
        "demo --serve should exit 0 on SIGTERM, got {status}"
    );
}

#[test]
fn exchange_bench_runs_full_coin_cycles_and_reports_the_ratio() {
    let out = cardcash(&[
        "exchange",
        "bench",
        "--n",
        "24",
        "--concurrency",
        "3",
        "--raw-secs",
        "0.1",
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in ["withdraw", "deposit"] {
        assert!(
            text.contains(&format!(
                "{phase}: 24 coins in 3 requests (8 per request, 3 in flight), 0 failed"
            )),
            "every {phase} must pass:\n{text}"
        );
    }
    // Every deposited coin is refreshed into four fresh coins, and every cycle completes.
    assert!(
        text.contains("melt: 24 coins in 24 requests (1 per request, 3 in flight), 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("reveal: 96 coins in 24 requests (4 per request, 3 in flight), 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("full coin cycle (withdraw, deposit, melt, reveal): 24 cycles in"),
        "{text}"
    );
    assert!(text.contains("raw RSA-2048 blind signing"), "{text}");
    assert!(text.contains("after refresh"), "{text}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("withdraw/raw-sign ratio: ") && l.ends_with('%')),
        "{text}"
    );
}

#[test]
fn c2ec_bench_runs_without_configuration_and_reports_its_figures() {
    let out = cardcash(&["c2ec", "bench", "--n", "20", "--concurrency", "4"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("20 confirmed"),
        "every withdrawal must confirm:\n{text}"
    );
    assert!(
        text.contains("withdrawals/s") && text.contains("p99"),
        "{text}"
    );
}
