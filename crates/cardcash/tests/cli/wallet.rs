//! `cardcash wallet` on the real binary: its help, JSON errors, and a withdrawal from the
//! terminal of `cardcash demo --serve` through `handle-uri -y`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{cardcash, stdout};

#[test]
fn wallet_help_explains_the_commands() {
    let out = cardcash(&["wallet", "--help"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for needle in [
        "handle-uri",
        "exchanges",
        "withdraw",
        "balance",
        "transactions",
        "coins",
        "run-until-done",
        "--wallet-db",
        "--json",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let manual = stdout(&cardcash(&["wallet", "withdraw", "manual", "--help"]));
    assert!(
        manual.contains("--exchange") && manual.contains("--amount"),
        "{manual}"
    );
}

#[test]
fn wallet_json_output_and_taler_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("w.sqlite3");
    let db = db.to_str().expect("utf-8 path");
    let out = cardcash(&["wallet", "--wallet-db", db, "--json", "balance"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v, serde_json::json!({ "balances": [] }));
    // Nobody listens there: a network error with its official code, and exit 1.
    let out = cardcash(&[
        "wallet",
        "--wallet-db",
        db,
        "--json",
        "exchanges",
        "add",
        "http://127.0.0.1:9/",
    ]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON error");
    assert_eq!(v["code"], 7003, "{v}");
}

/// Lines of a child's stdout, read on a thread.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; panics with what came instead after a generous limit.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no line with {needle:?} ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn wallet_withdraws_what_the_demo_terminal_sells() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("demo");
    let bin = env!("CARGO_BIN_EXE_cardcash");
    let mut demo = KillOnDrop(
        Command::new(bin)
            .args(["demo", "--serve", "--plain", "--data-dir"])
            .arg(&data)
            .env_remove("RUST_LOG")
            .env_remove("CARDCASH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    let demo_lines = lines(&mut demo.0);
    wait_line(&demo_lines, "Services keep running");
    let conf = data.join("cardcash.conf");
    let mut terminal = KillOnDrop(
        Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .args(["terminal", "withdraw", "--amount", "CHF:7", "--plain"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the terminal"),
    );
    let terminal_lines = lines(&mut terminal.0);
    let line = wait_line(&terminal_lines, "withdraw/");
    let uri = line
        .split_whitespace()
        .find(|w| w.contains("://withdraw/"))
        .expect("the URI on its line")
        .to_owned();

    let db = dir.path().join("wallet.sqlite3");
    let out = Command::new(bin)
        .arg("wallet")
        .arg("--wallet-db")
        .arg(&db)
        .args(["--json", "handle-uri", &uri, "-y", "--timeout-secs", "120"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run the wallet");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The demo's exchange has coins of 1, 2, 5 and 10 with a fee of 0.01 each and centime
    // coins without a fee: CHF 7 buys a 5 and a 1 (6.02) and 0.98 in 6 centime coins.
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("JSON balance");
    assert_eq!(v["balances"][0]["available"], "CHF:6.98", "{v}");
    assert_eq!(v["balances"][0]["pendingIncoming"], "CHF:0", "{v}");
    let status = terminal.0.wait().expect("terminal exits");
    assert!(status.success(), "the terminal's withdrawal failed");
    let coins = Command::new(bin)
        .arg("wallet")
        .arg("--wallet-db")
        .arg(&db)
        .arg("coins")
        .output()
        .expect("list coins");
    assert!(stdout(&coins).contains("8 coins"), "{}", stdout(&coins));

    // The same exchange invites a manual withdrawal with a taler://withdraw-exchange URI.
    let wallet_json = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(bin)
            .arg("wallet")
            .arg("--wallet-db")
            .arg(&db)
            .arg("--json")
            .args(args)
            .output()
            .expect("run the wallet");
        assert!(out.status.success(), "{args:?}: {}", stdout(&out));
        serde_json::from_str(stdout(&out).trim()).expect("JSON")
    };
    let listed = wallet_json(&["exchanges", "list"]);
    let url = listed["exchanges"][0]["exchangeBaseUrl"]
        .as_str()
        .expect("the exchange")
        .to_owned();
    let uri = format!(
        "taler+http://withdraw-exchange/{}?a=CHF:3",
        url.trim_start_matches("http://")
    );
    let created = wallet_json(&["handle-uri", &uri, "-y"]);
    let payto = created["exchangePaytoUris"][0].as_str().expect("payto");
    assert!(
        payto.contains("amount=CHF%3A3") || payto.contains("amount=CHF:3"),
        "{payto}"
    );
    assert!(
        payto.contains(created["reservePub"].as_str().expect("reserve")),
        "{created}"
    );
}

/// `cardcash demo --serve` on a fresh data directory: the running demo and its configuration.
fn serve_demo(dir: &std::path::Path) -> (KillOnDrop, std::path::PathBuf) {
    let data = dir.join("demo");
    let mut demo = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cardcash"))
            .args(["demo", "--serve", "--plain", "--data-dir"])
            .arg(&data)
            .env_remove("RUST_LOG")
            .env_remove("CARDCASH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    let lines = lines(&mut demo.0);
    wait_line(&lines, "Services keep running");
    // Keep draining the demo's output so it never blocks on a full pipe.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    (demo, data.join("cardcash.conf"))
}

/// The demo's terminal sells `amount`: the running terminal and its `taler://withdraw` URI.
fn sell(conf: &std::path::Path, amount: &str) -> (KillOnDrop, String) {
    let mut terminal = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cardcash"))
            .arg("-c")
            .arg(conf)
            .args(["terminal", "withdraw", "--amount", amount, "--plain"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the terminal"),
    );
    let lines = lines(&mut terminal.0);
    let line = wait_line(&lines, "withdraw/");
    std::thread::spawn(move || while lines.recv().is_ok() {});
    let uri = line
        .split_whitespace()
        .find(|w| w.contains("://withdraw/"))
        .expect("the URI on its line")
        .to_owned();
    (terminal, uri)
}

/// Runs `cardcash wallet --wallet-db DB --json ARGS` with the crash hook at `step`, waits
/// until the wallet stands at the step, and kills it (SIGKILL).
pub(super) fn kill_wallet_at(db: &std::path::Path, step: &str, args: &[&str]) {
    let mut wallet = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cardcash"))
            .arg("wallet")
            .arg("--wallet-db")
            .arg(db)
            .arg("--json")
            .args(args)
            .env("CARDCASH_WALLET_CRASH_AT", step)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the wallet"),
    );
    let err = wallet.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_line(&rx, &format!("waiting for SIGKILL at {step}"));
    wallet.0.kill().expect("SIGKILL");
    let status = wallet.0.wait().expect("the wallet ends");
    assert!(!status.success(), "killed at {step}, yet {status}");
}

/// `cardcash wallet --wallet-db DB --json ARGS`, which must succeed: its last JSON line.
pub(super) fn wallet_json(db: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cardcash"))
        .arg("wallet")
        .arg("--wallet-db")
        .arg(db)
        .arg("--json")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the wallet");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "wallet {args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.lines().last().expect("a JSON line")).expect("JSON")
}

fn coin_pubs(db: &std::path::Path, value: &str, status: &str) -> Vec<String> {
    wallet_json(db, &["coins"])["coins"]
        .as_array()
        .expect("coins")
        .iter()
        .filter(|c| c["value"] == value && c["status"] == status)
        .map(|c| c["coinPub"].as_str().expect("coinPub").to_owned())
        .collect()
}

fn available(db: &std::path::Path) -> String {
    let balance = wallet_json(db, &["balance"]);
    balance["balances"][0]["available"]
        .as_str()
        .unwrap_or_else(|| panic!("{balance}"))
        .to_owned()
}

fn units(amount: &str) -> i64 {
    let (_, number) = amount.split_once(':').expect("CUR:VALUE");
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let cents = format!("{frac:0<2}");
    whole.parse::<i64>().expect("whole") * 100 + cents[..2].parse::<i64>().expect("cents")
}

#[test]
fn a_wallet_killed_at_any_step_resumes_without_losing_or_doubling_money() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_demo, conf) = serve_demo(dir.path());
    let db = dir.path().join("wallet.sqlite3");
    // Each sale of CHF 7 gives CHF 6.98 of coins (as without a crash: see above).
    for step in ["after-registration", "after-withdraw-request"] {
        let (mut terminal, uri) = sell(&conf, "CHF:7");
        kill_wallet_at(&db, step, &["handle-uri", &uri, "-y"]);
        wallet_json(&db, &["run-until-done", "--timeout-secs", "120"]);
        assert!(terminal.0.wait().expect("terminal").success(), "{step}");
    }
    let transactions = wallet_json(&db, &["transactions"]);
    for t in transactions["transactions"].as_array().expect("list") {
        assert_eq!(
            (t["state"].as_str(), t["amountEffective"].as_str()),
            (Some("done"), Some("CHF:6.98")),
            "{t}"
        );
    }
    assert_eq!(available(&db), "CHF:13.96");
    assert_eq!(coin_pubs(&db, "CHF:5", "fresh").len(), 2);

    // Refreshing a 5 replaces it by fresh coins worth what the refresh transaction says.
    for step in ["after-melt", "after-reveal"] {
        let before = units(&available(&db));
        let five = coin_pubs(&db, "CHF:5", "fresh").remove(0);
        kill_wallet_at(&db, step, &["refresh", &five]);
        wallet_json(&db, &["run-until-done", "--timeout-secs", "120"]);
        assert!(coin_pubs(&db, "CHF:5", "spent").contains(&five), "{step}");
        let transactions = wallet_json(&db, &["transactions"]);
        let refresh = transactions["transactions"]
            .as_array()
            .expect("list")
            .iter()
            .rfind(|t| t["type"] == "refresh")
            .cloned()
            .expect("the refresh");
        assert_eq!(refresh["state"], "done", "{refresh}");
        let fresh = units(refresh["amountEffective"].as_str().expect("effective"));
        assert!(fresh > 0 && fresh < 500, "{refresh}");
        assert_eq!(units(&available(&db)), before - 500 + fresh, "{step}");
    }
    assert_eq!(coin_pubs(&db, "CHF:5", "spent").len(), 2);
}
