//! What a newcomer tripped over (issue 6 §9, and the demo's file permissions of §6): each test
//! runs the real binary the way that person did.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::stdout;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary with a clean environment (no logging or configuration from the caller's shell).
fn cardcash_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cardcash"));
    cmd.env_remove("RUST_LOG")
        .env_remove("CARDCASH_CONFIG")
        .env_remove("NO_COLOR");
    cmd
}

/// One run of the demo with the declining test card in a temporary data directory, shared by
/// the tests that read its output. `CARDCASH_CONFIG` points nowhere: the demo must ignore it
/// (only `-c` on the command line is refused).
fn declined_demo() -> &'static Output {
    static RUN: OnceLock<Output> = OnceLock::new();
    RUN.get_or_init(|| {
        let cwd = tempfile::tempdir().expect("temp dir");
        cardcash_command()
            .args(["demo", "--plain", "--card", "4000000000000010"])
            .env("CARDCASH_CONFIG", "/nonexistent/cardcash.conf")
            .current_dir(cwd.path())
            .output()
            .expect("run demo")
    })
}

#[test]
fn a_declined_card_is_one_human_sentence_said_once() {
    let out = declined_demo();
    let all = format!("{}{}", stdout(out), stderr(out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    let sentence = "The card was declined (card processor: DECLINE";
    assert_eq!(all.matches(sentence).count(), 1, "said once:\n{all}");
    assert!(
        all.contains("--card 4000000000000002"),
        "says what to try:\n{all}"
    );
    for debug in ["CardDeclined", "Aborted(", "Some(", "{ state"] {
        assert!(!all.contains(debug), "Rust debug text {debug:?} in:\n{all}");
    }
    assert!(
        !stderr(out).contains("error:"),
        "the failure is reported once, in the story:\n{all}"
    );
}

#[test]
fn without_keep_the_removed_temporary_directory_is_said_so() {
    let out = declined_demo();
    let text = stdout(out);
    let dir = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("data directory "))
        .unwrap_or_else(|| panic!("no data directory printed:\n{text}"));
    assert!(
        text.contains(&format!("configuration   {dir}/cardcash.conf")),
        "{text}"
    );
    assert!(
        !Path::new(dir).exists(),
        "{dir} should be removed without --keep"
    );
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains(dir) && last.contains("is removed now") && last.contains("--keep"),
        "the last line must say the directory is gone and how to keep it: {last:?}"
    );
}

#[test]
fn demo_refuses_a_configuration_file() {
    let data = tempfile::tempdir().expect("temp dir");
    let conf = data.path().join("cardcash.conf");
    let out = cardcash_command()
        .arg("demo")
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("run demo");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "a usage error:\n{err}");
    assert!(err.contains("does not read -c/--config"), "{err}");
    assert!(
        err.contains(&format!(
            "cardcash demo --data-dir {}",
            data.path().display()
        )),
        "says how to resume that directory:\n{err}"
    );
    assert!(stdout(&out).is_empty(), "nothing ran:\n{}", stdout(&out));
    assert!(!conf.exists());
}

/// The value of `option` in `[section]` of a written configuration.
fn conf_value(conf: &str, section: &str, option: &str) -> Option<String> {
    let mut current = String::new();
    for line in conf.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_ascii_lowercase();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim().eq_ignore_ascii_case(option)
        {
            return Some(v.trim().to_owned());
        }
    }
    None
}

#[test]
fn demo_resumes_on_its_data_directory() {
    let data = tempfile::tempdir().expect("temp dir");
    let demo = || {
        cardcash_command()
            .args(["demo", "--plain", "--data-dir"])
            .arg(data.path())
            .output()
            .expect("run demo")
    };
    let first = demo();
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let conf_path = data.path().join("cardcash.conf");
    let conf = std::fs::read_to_string(&conf_path).expect("configuration");
    let first_secret = conf_value(&conf, "terminal", "TERMINAL_SECRET").expect("terminal secret");
    // Hold C2EC's port of the first run: the second run must move to a free one and say so.
    let c2ec_bind: SocketAddr = conf_value(&conf, "c2ec", "BIND")
        .expect("c2ec BIND")
        .parse()
        .expect("host:port");
    let held = TcpListener::bind(c2ec_bind).ok();

    let second = demo();
    let text = stdout(&second);
    assert!(second.status.success(), "{text}{}", stderr(&second));
    assert!(
        text.contains("resuming the demo in")
            && text.contains("credited CHF:20, exactly once")
            && text.contains("reserve balance CHF:20"),
        "{text}"
    );
    if held.is_some() {
        assert!(
            text.contains(&format!(
                "{c2ec_bind} from the last run is taken (Address already in use"
            )) && text.contains("so C2EC listens on a free port instead"),
            "{text}"
        );
    }
    drop(held);
    let conf = std::fs::read_to_string(&conf_path).expect("configuration");
    assert_eq!(
        conf_value(&conf, "terminal", "TERMINAL_SECRET").as_deref(),
        Some(first_secret.as_str()),
        "the terminal is reused"
    );
    let run = |args: &[&str]| {
        let out = cardcash_command()
            .arg("-c")
            .arg(&conf_path)
            .args(args)
            .output()
            .expect("run cardcash");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let terminals = run(&["c2ec", "terminal", "list"]);
    assert_eq!(terminals.lines().count(), 1, "one terminal:\n{terminals}");
    let accounts = run(&["bank", "account", "list"]);
    assert_eq!(
        accounts.matches("exchange\texchange").count(),
        1,
        "{accounts}"
    );
    assert!(
        accounts.contains("receiver-name=Exchange") && !accounts.contains('%'),
        "payto URIs without percent-encoding (GNU Taler 2022's enable-account):\n{accounts}"
    );
}

#[cfg(unix)]
#[test]
fn demo_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;

    let parent = tempfile::tempdir().expect("temp dir");
    let data = parent.path().join("demo");
    let out = cardcash_command()
        .args([
            "demo",
            "--plain",
            "--card",
            "4000000000000010",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("run demo");
    assert!(data.join("cardcash.conf").exists(), "{}", stdout(&out));
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    let mut seen = Vec::new();
    // Files 0600, directories (the exchange's key store) 0700, all the way down.
    let mut pending = vec![data.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                assert_eq!(mode(&path), 0o700, "{}", path.display());
                pending.push(path.clone());
            } else {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
            if dir == data {
                seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for file in [
        "cardcash.conf",
        "bank.db",
        "cardproc.db",
        "c2ec.db",
        "exchange.db",
        "exchange-master.priv",
        "exchange-keys",
    ] {
        assert!(seen.iter().any(|s| s == file), "{file} missing: {seen:?}");
    }
    let conf = std::fs::read_to_string(data.join("cardcash.conf")).expect("conf");
    let exchange_bind = conf_value(&conf, "exchange", "BIND").expect("the exchange's BIND");
    assert_eq!(
        conf_value(&conf, "c2ec", "EXCHANGE_BASE_URL"),
        Some(format!("http://{exchange_bind}/")),
        "wallets are told the demo's own exchange"
    );
}

/// A minimal bank configuration listening on `bind`.
fn bank_config(dir: &Path, bind: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("bank.conf");
    std::fs::write(
        &path,
        format!(
            "[bank]\nCURRENCY = CHF\nBIND = {bind}\nDATABASE = sqlite:{}\n",
            dir.join("bank.db").display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn a_taken_address_names_the_service_the_address_and_the_option() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let conf = bank_config(dir.path(), addr);
    let out = cardcash_command()
        .arg("-c")
        .arg(&conf)
        .args(["bank", "serve"])
        .output()
        .expect("run bank serve");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(
        err.starts_with(&format!("error: the bank cannot listen on {addr}")),
        "{err}"
    );
    assert_eq!(
        err.matches("already in use").count(),
        1,
        "said once:\n{err}"
    );
    assert!(
        err.contains(&format!("BIND in section [bank] of {}", conf.display())),
        "{err}"
    );
}

#[test]
fn logs_redirected_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = bank_config(dir.path(), "127.0.0.1:0".parse().expect("addr"));
    // Every command that reads a configuration logs which file at debug level.
    let out = cardcash_command()
        .arg("-c")
        .arg(&conf)
        .args(["bank", "account", "list"])
        .env("RUST_LOG", "debug")
        .output()
        .expect("run cardcash");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("reading configuration") && err.contains("DEBUG"),
        "expected log lines:\n{err}"
    );
    assert!(!err.contains('\u{1b}'), "colour escapes in:\n{err:?}");
}

#[test]
fn demo_legacy_face_is_what_c2ec_suggests() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = cardcash_command()
        .args(["demo", "--plain", "--legacy-face", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run demo");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let conf = std::fs::read_to_string(data.path().join("cardcash.conf")).expect("configuration");
    let bind = conf_value(&conf, "exchange", "BIND").expect("exchange BIND");
    let legacy = format!("http://{bind}/legacy/");
    assert_eq!(
        conf_value(&conf, "c2ec", "EXCHANGE_BASE_URL").as_deref(),
        Some(legacy.as_str()),
        "C2EC suggests the exchange's legacy face"
    );
    assert!(
        text.contains(&format!("suggested exchange    {legacy}"))
            && text.contains(&format!("legacy face           {legacy}")),
        "{text}"
    );
    // --exchange-url and --legacy-face say different things: clap refuses both.
    let both = cardcash_command()
        .args([
            "demo",
            "--legacy-face",
            "--exchange-url",
            "http://x.example/",
        ])
        .output()
        .expect("run demo");
    assert!(!both.status.success());
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}
