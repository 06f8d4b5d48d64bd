//! The README's promises, checked on the real binary: `cardcash demo` plays the whole story and
//! exits 0; a declined card makes it fail loudly; `--help` explains the commands.

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
        "[7/7] exchange: reads C2EC's Wire Gateway incoming history",
        "taler+http://withdraw/127.0.0.1:",
        "withdrawal CONFIRMED",
        "credited with CHF:20 exactly once",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn demo_with_a_declined_card_fails_and_says_why() {
    let out = cardcash(&["demo", "--plain", "--card", "4000000000000010"]);
    let text = stdout(&out);
    assert!(!out.status.success(), "a declined card must not succeed:\n{text}");
    assert!(text.contains("withdrawal ABORTED"), "no abort reported:\n{text}");
    assert!(!text.contains("[7/7]"), "the exchange step must not run:\n{text}");
}

#[test]
fn help_lists_every_service() {
    let out = cardcash(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in ["demo", "bank", "cardproc", "c2ec", "terminal"] {
        assert!(text.contains(cmd), "--help does not mention {cmd}:\n{text}");
    }
}

#[test]
fn a_missing_configuration_file_is_explained() {
    let out = cardcash(&["c2ec", "terminal", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cardcash.conf") && err.contains("cardcash demo"), "{err}");
}
