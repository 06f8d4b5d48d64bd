//! `cardcash merchant …` on the real binary: an instance made by the operator command is served
//! by `cardcash merchant serve`, whose admin token comes from `TALER_MERCHANT_TOKEN`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const IBAN: &str = "payto://iban/CH9300762011623852957";

fn cardcash_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cardcash"));
    cmd.env_remove("RUST_LOG")
        .env_remove("CARDCASH_CONFIG")
        .env_remove("CARDCASH_LOG_JSON")
        .env_remove("TALER_MERCHANT_TOKEN");
    cmd
}

fn run_ok(config: &std::path::Path, args: &[&str]) -> String {
    let out = cardcash_command()
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cardcash");
    assert!(
        out.status.success(),
        "`cardcash {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the served backend when the test ends, however it ends.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn merchant_serve_takes_the_admin_token_and_the_operators_instances() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("merchant.conf");
    std::fs::write(
        &config,
        format!(
            "[merchant]\nCURRENCY = KUDOS\nBIND = 127.0.0.1:0\nDATABASE = sqlite:{}\n",
            dir.path().join("merchant.db").display()
        ),
    )
    .expect("config");

    let help = run_ok(&config, &["merchant", "serve", "--help"]);
    assert!(
        help.contains("TALER_MERCHANT_TOKEN") && help.contains("/management/instances"),
        "{help}"
    );
    let created = run_ok(
        &config,
        &[
            "merchant",
            "instance",
            "create",
            "default",
            "--name",
            "Pretty Pianos",
            "--password",
            "eighty-eight-keys",
            "--payto",
            IBAN,
        ],
    );
    assert!(created.contains("merchant public key"), "{created}");
    let list = run_ok(&config, &["merchant", "instance", "list"]);
    assert!(
        list.contains("default") && list.contains("Pretty Pianos"),
        "{list}"
    );

    let mut child = cardcash_command()
        .arg("-c")
        .arg(&config)
        .args(["merchant", "serve"])
        .env("TALER_MERCHANT_TOKEN", "secret-token:the-admin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the merchant");
    let stdout = child.stdout.take().expect("stdout");
    let served = Served(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("merchant backend listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the merchant backend starts");

    let http = reqwest::Client::new();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(auth) = auth {
            r = r.header("Authorization", auth);
        }
        r.send()
    };
    let r = get("management/instances", None).await.expect("GET");
    assert_eq!(r.status().as_u16(), 401);
    let r = get(
        "management/instances",
        Some("Bearer secret-token:the-admin"),
    )
    .await
    .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(body["instances"][0]["id"], "default");
    assert_eq!(body["instances"][0]["payment_targets"][0], "iban");
    let r = get("private", Some("Bearer secret-token:eighty-eight-keys"))
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    let me: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(me["name"], "Pretty Pianos");
    assert_eq!(me["accounts"][0]["payto_uri"], IBAN);
    drop(served);
}
