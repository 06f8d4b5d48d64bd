//! `cardcash exchange …` on the real binary: the offline key's workflow against a served
//! exchange (this file), and crash tests ([`crash`]): the exchange process killed with SIGKILL in
//! the middle of withdrawals, deposits, wirewatch imports and aggregation, restarted, and checked.
//!
//! The exchange always runs as a child process (`cardcash -c FILE exchange serve`) on a SQLite
//! database in a temporary directory, with RSA-1024 denominations so that key generation stays
//! quick in debug builds; its log goes to `exchange.log` there and is shown when a test fails.

mod crash;
mod sync;
mod wallet;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cardcash_api::exchange::{DenominationGroupKeys, ExchangeKeysResponse};
use cardcash_client::ExchangeClient;
use cardcash_util::{BaseUrl, ErrorCode, Timestamp};

/// The binary with a clean environment.
fn cardcash_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cardcash"));
    cmd.env_remove("RUST_LOG")
        .env_remove("CARDCASH_CONFIG")
        .env_remove("CARDCASH_LOG_JSON");
    cmd
}

/// Runs `cardcash -c config ARGS…` to its end.
fn run(config: &Path, args: &[&str]) -> Output {
    cardcash_command()
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cardcash")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cardcash -c config ARGS…`, which must succeed; its stdout.
fn run_ok(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert!(
        out.status.success(),
        "`cardcash {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cardcash -c config ARGS…`, which must fail; its stderr.
fn run_err(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert!(
        !out.status.success(),
        "`cardcash {}` should fail:\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// The last lines of a log file, for failure messages.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A `cardcash exchange serve` child process. Dropping it kills the process.
pub struct ExchangeProcess {
    child: Option<Child>,
    url: BaseUrl,
    log: PathBuf,
}

impl ExchangeProcess {
    /// Starts the exchange of `config` and waits (deadline 60 s) until it listens; its log is
    /// appended to `log`.
    pub fn start(config: &Path, log: &Path) -> Self {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = cardcash_command()
            .arg("-c")
            .arg(config)
            .args(["exchange", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the exchange");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("exchange listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Self {
                child: Some(child),
                url: BaseUrl::parse(&url).expect("the exchange's URL"),
                log: log.to_owned(),
            },
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the exchange did not start ({e}); its log:\n{}",
                    log_tail(log)
                )
            }
        }
    }

    pub fn url(&self) -> &BaseUrl {
        &self.url
    }

    pub fn client(&self) -> ExchangeClient {
        ExchangeClient::new(self.url.clone()).expect("client")
    }

    /// SIGKILL: no shutdown, no flush, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of its log (for failure messages).
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for ExchangeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `check` holds, polling every 20 ms, for at most `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, limit, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await;
}

/// Waits until `check` gives a value, polling every 20 ms, for at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free port on 127.0.0.1 (closed again: the exchange binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One RSA-1024 denomination section.
fn coin_section(name: &str, value: &str, fee: &str) -> String {
    format!(
        "[{name}]\nVALUE = KUDOS:{value}\nDURATION_WITHDRAW = 7 days\nDURATION_SPEND = 1 year\n\
         DURATION_LEGAL = 3 years\nFEE_WITHDRAW = KUDOS:{fee}\nFEE_DEPOSIT = KUDOS:{fee}\n\
         FEE_REFRESH = KUDOS:{fee}\nFEE_REFUND = KUDOS:{fee}\nRSA_KEYSIZE = 1024\n\n"
    )
}

/// Every signature of `/keys` verifies with its master key: denominations, signing keys,
/// accounts (no restrictions), and the key set signature of the online signing key.
fn verify_keys(keys: &ExchangeKeysResponse) {
    cardcash_client::verify_keys(keys, None).expect("every signature of /keys verifies");
}

const ACCOUNT: &str = "payto://x-taler-bank/bank.example/exchange?receiver-name=Exchange";

/// The configuration of the offline test: one RSA and one CS denomination, one account without
/// a Wire Gateway, listening on a fixed port with BASE_URL set (the offline commands find the
/// exchange there).
fn offline_config(dir: &Path, port: u16) -> String {
    let mut c = format!(
        "[exchange]\nCURRENCY = KUDOS\nBIND = 127.0.0.1:{port}\nBASE_URL = http://127.0.0.1:{port}/\n\
         DATABASE = sqlite:{db}\nKEY_DIR = {keys}\nLOOKAHEAD_SIGN = 1 h\n\n",
        db = dir.join("exchange.db").display(),
        keys = dir.join("keys").display(),
    );
    c.push_str(&coin_section("coin_kudos_1", "1", "0.01"));
    let _ = write!(
        c,
        "[coin_kudos_cs_5]\nVALUE = KUDOS:5\nDURATION_WITHDRAW = 7 days\nDURATION_SPEND = 1 year\n\
         DURATION_LEGAL = 3 years\nFEE_WITHDRAW = KUDOS:0.02\nFEE_DEPOSIT = KUDOS:0.02\n\
         FEE_REFRESH = KUDOS:0.02\nFEE_REFUND = KUDOS:0.02\nCIPHER = CS\n\n\
         [exchange-account-1]\nPAYTO_URI = {ACCOUNT}\nENABLE_DEBIT = YES\nENABLE_CREDIT = YES\n"
    );
    c
}

/// `offline setup` → MASTER_PUBLIC_KEY → `serve` → download / show / sign / upload through
/// files (the air-gapped way) → `sync` finds nothing more → enable the account, sign the
/// fees and upload at once → `/keys` is served and every signature in it verifies. On the way:
/// every refusal an operator can run into says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_offline_workflow_serves_verifiable_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let config = d.join("exchange.conf");
    let port = free_port();
    std::fs::write(&config, offline_config(d, port)).unwrap();

    // Without a key file, the signing commands say how to make one.
    let err = run_err(&config, &["exchange", "offline", "sync"]);
    assert!(
        err.contains("exchange-master.priv") && err.contains("cardcash exchange offline setup"),
        "{err}"
    );

    // setup: the key file next to the configuration, 0600; never overwritten.
    let master_pub = run_ok(&config, &["exchange", "offline", "setup"])
        .trim()
        .to_owned();
    let key_file = d.join("exchange-master.priv");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the master key is private");
    }
    let key_bytes = std::fs::read(&key_file).unwrap();
    let err = run_err(&config, &["exchange", "offline", "setup"]);
    assert!(
        err.contains("exists already") && err.contains(&master_pub),
        "{err}"
    );
    assert_eq!(std::fs::read(&key_file).unwrap(), key_bytes, "untouched");

    // The exchange must know the master key; before, the download explains the refusal.
    let mut conf = std::fs::read_to_string(&config).unwrap();
    conf = conf.replace(
        "[exchange]\n",
        &format!("[exchange]\nMASTER_PUBLIC_KEY = {master_pub}\n"),
    );
    std::fs::write(&config, conf).unwrap();
    let log = d.join("exchange.log");
    let exchange = ExchangeProcess::start(&config, &log);
    assert_eq!(
        exchange.url().to_string(),
        format!("http://127.0.0.1:{port}/")
    );
    let client = exchange.client();
    let err = client.keys().await.expect_err("nothing signed yet");
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::ExchangeGenericKeysMissing)
    );

    // The air-gapped way: download → show → sign → upload, through files.
    let proposal = d.join("proposal.json");
    let signatures = d.join("signatures.json");
    let p = proposal.to_str().unwrap();
    let s = signatures.to_str().unwrap();
    run_ok(&config, &["exchange", "offline", "download", "-o", p]);
    let shown = run_ok(&config, &["exchange", "offline", "show", p]);
    for needle in [
        "coin_kudos_1 (RSA-1024) value KUDOS:1",
        "coin_kudos_cs_5 (CS) value KUDOS:5",
        "withdraw KUDOS:0.02, deposit KUDOS:0.02",
        "signing key",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing in:\n{shown}");
    }

    // A proposal whose key times were changed no longer carries a valid security-module
    // signature: refused, nothing written.
    let original = std::fs::read_to_string(&proposal).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&original).unwrap();
    doc[0]["arguments"]["future_denoms"][0]["stamp_start"]["t_s"] = serde_json::json!(1);
    let tampered = d.join("tampered.json");
    std::fs::write(&tampered, doc.to_string()).unwrap();
    let err = run_err(
        &config,
        &[
            "exchange",
            "offline",
            "sign",
            tampered.to_str().unwrap(),
            "-o",
            s,
        ],
    );
    assert!(err.contains("security module"), "{err}");
    assert!(!signatures.exists());

    // Another exchange's master key (no configuration: the key file on the command line).
    let other_key = d.join("other.priv");
    let nowhere = d.join("no-such.conf");
    run_ok(
        &nowhere,
        &[
            "exchange",
            "offline",
            "setup",
            "--master-key",
            other_key.to_str().unwrap(),
        ],
    );
    let err = run_err(
        &nowhere,
        &[
            "exchange",
            "offline",
            "sign",
            p,
            "--master-key",
            other_key.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains(&format!("proposes keys for master key {master_pub}")),
        "{err}"
    );

    let out = run(&config, &["exchange", "offline", "sign", p, "-o", s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("coin_kudos_1") && summary.contains("valid signature"),
        "the summary goes to stdout when the signatures go to a file:\n{summary}"
    );
    let uploaded = run_ok(&config, &["exchange", "offline", "upload", s]);
    assert!(
        uploaded.contains("uploaded: signatures of 2 denomination and 1 signing keys"),
        "{uploaded}"
    );
    // Uploading again is harmless; the exchange proposes nothing more.
    run_ok(&config, &["exchange", "offline", "upload", s]);
    let out = run(&config, &["exchange", "offline", "sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to sign"),
        "{}",
        text(&out.stdout)
    );

    // The security modules are remembered: a proposal from other modules is refused.
    let tofu = d.join("exchange-secmod-keys.json");
    let remembered = std::fs::read_to_string(&tofu).expect("security modules remembered");
    let mut changed: serde_json::Value = serde_json::from_str(&remembered).unwrap();
    changed["signkey_secmod_public_key"] =
        serde_json::json!(cardcash_util::EddsaPublicKey::from_bytes([7; 32]).to_string());
    std::fs::write(&tofu, changed.to_string()).unwrap();
    let err = run_err(&config, &["exchange", "offline", "sign", p, "-o", s]);
    assert!(
        err.contains("security module for signing keys changed"),
        "{err}"
    );
    std::fs::write(&tofu, remembered).unwrap();

    // Accounts and fees, signed and uploaded at once.
    let now = Timestamp::now().as_secs();
    let start = format!("@{}", now - 3600);
    let end = format!("@{}", now + 30 * 86_400);
    let enabled = run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "enable-account",
            ACCOUNT,
            "--start",
            &start,
            "--upload",
        ],
    );
    assert!(enabled.contains("uploaded: enable account"), "{enabled}");
    let err = run_err(
        &config,
        &[
            "exchange",
            "offline",
            "wire-fee",
            "x-taler-bank",
            "EUR:0.01",
            "EUR:0.01",
            "--start",
            &start,
            "--end",
            &end,
        ],
    );
    assert!(err.contains("the exchange's currency is KUDOS"), "{err}");
    run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "wire-fee",
            "--start",
            &start,
            "--end",
            &end,
            "x-taler-bank",
            "KUDOS:0.05",
            "KUDOS:0.01",
            "--upload",
        ],
    );
    // A conflicting fee for the same period: the exchange's refusal is shown with its code.
    let out = run(
        &config,
        &[
            "exchange",
            "offline",
            "wire-fee",
            "--start",
            &start,
            "--end",
            &end,
            "x-taler-bank",
            "KUDOS:0.06",
            "KUDOS:0.01",
            "--upload",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("FAILED: wire fees of x-taler-bank")
            && text(&out.stderr).contains("409"),
        "{}",
        text(&out.stderr)
    );
    // The global fee through a document on stdin, as `… | cardcash exchange offline upload`.
    let document = run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "global-fee",
            "--start",
            &start,
            "--end",
            &end,
            "KUDOS:0",
            "KUDOS:0",
            "KUDOS:0",
            "2h",
            "1year",
            "5",
        ],
    );
    assert!(document.contains("exchange-set-global-fee-0"), "{document}");
    let mut upload = cardcash_command()
        .arg("-c")
        .arg(&config)
        .args(["exchange", "offline", "upload"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        upload
            .stdin
            .take()
            .unwrap()
            .write_all(document.as_bytes())
            .unwrap();
    }
    let out = upload.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // /keys: served, complete, and every signature verifies.
    let keys = wait_for(
        "/keys shows the account and the fees",
        Duration::from_secs(20),
        || async {
            client.keys().await.ok().filter(|k| {
                !k.accounts.is_empty() && !k.global_fees.is_empty() && !k.wire_fees.is_empty()
            })
        },
    )
    .await;
    assert_eq!(keys.master_public_key.to_string(), master_pub);
    assert_eq!(keys.denominations.len(), 2);
    assert_eq!(keys.accounts[0].payto_uri.to_string(), ACCOUNT);
    assert_eq!(
        keys.wire_fees["x-taler-bank"][0].wire_fee.to_string(),
        "KUDOS:0.05"
    );
    assert_eq!(keys.global_fees[0].purse_account_limit, 5);
    verify_keys(&keys);

    // Revoking the CS denomination: /keys names it among the revoked ones (wallets recoup).
    let cs = keys
        .denominations
        .iter()
        .find_map(|g| match &g.keys {
            DenominationGroupKeys::Cs { denoms } => Some(cardcash_crypto::cs::h_denom_pub(
                denoms[0].cs_pub.as_bytes(),
                0,
            )),
            _ => None,
        })
        .expect("a CS denomination")
        .to_string();
    let revoked = run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "revoke-denomination",
            &cs,
            "--upload",
        ],
    );
    assert!(
        revoked.contains("uploaded: revocation of denomination"),
        "{revoked}"
    );
    wait_until(
        "/keys lists the revoked denomination",
        Duration::from_secs(20),
        || async {
            client
                .keys()
                .await
                .is_ok_and(|k| k.recoup.iter().any(|r| r.h_denom_pub.to_string() == cs))
        },
    )
    .await;
    // Disabling the account: /keys no longer offers it.
    run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "disable-account",
            ACCOUNT,
            "--upload",
        ],
    );
    wait_until(
        "/keys offers no account",
        Duration::from_secs(20),
        || async { client.keys().await.is_ok_and(|k| k.accounts.is_empty()) },
    )
    .await;
    // The signing key's revocation is accepted too.
    let signkey = keys.exchange_pub.to_string();
    let revoked = run_ok(
        &config,
        &[
            "exchange",
            "offline",
            "revoke-signkey",
            &signkey,
            "--upload",
        ],
    );
    assert!(
        revoked.contains("uploaded: revocation of signing key"),
        "{revoked}"
    );
    drop(exchange);
}

/// An unreachable exchange is named with its URL and the cause.
#[test]
fn exchange_offline_unreachable_exchange_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("exchange.conf");
    let port = free_port();
    std::fs::write(&config, offline_config(dir.path(), port)).unwrap();
    let err = run_err(&config, &["exchange", "offline", "download"]);
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/management/keys"))
            && err.contains("connection refused"),
        "{err}"
    );
    let err = run_err(
        &dir.path().join("missing.conf"),
        &["exchange", "offline", "download"],
    );
    assert!(err.contains("--exchange URL"), "{err}");
}

/// Every offline subcommand explains itself.
#[test]
fn exchange_offline_help_explains_every_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("none.conf");
    for (sub, needle) in [
        ("setup", "MASTER_PUBLIC_KEY"),
        ("download", "/management/keys"),
        ("show", "without signing"),
        ("sign", "security module"),
        ("upload", "harmless"),
        ("enable-account", "PAYTO"),
        ("disable-account", "PAYTO"),
        ("wire-fee", "CLOSING_FEE"),
        ("global-fee", "PURSE_ACCOUNT_LIMIT"),
        ("revoke-denomination", "H_DENOM_PUB"),
        ("revoke-signkey", "EXCHANGE_PUB"),
        ("sync", "one go"),
    ] {
        let help = run_ok(&config, &["exchange", "offline", sub, "--help"]);
        assert!(
            help.contains(needle),
            "{sub} --help lacks {needle:?}:\n{help}"
        );
    }
}
