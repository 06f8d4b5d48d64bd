//! `cardcash merchant bench` on the real binary, with small numbers: every order is created,
//! claimed and paid (the exchange's deposit included) in both measurements, every claim (1101)
//! and payment (1104) signature verifies, and the report has its figures; the JSON report on
//! PostgreSQL counts the database's backends.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cardcash"))
        .args(["merchant", "bench", "--raw-secs", "0.05"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CARDCASH_CONFIG")
        .env_remove("CARDCASH_LOG_JSON")
        .output()
        .expect("run cardcash merchant bench")
}

#[test]
fn merchant_bench_creates_claims_and_pays_every_order_and_reports_the_rates() {
    let out = bench(&["--orders", "12", "--clients", "3"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}\n{progress}");
    assert!(text.starts_with("engine: sqlite "), "{text}");
    for phase in ["create", "claim", "pay", "mixed cycles"] {
        assert!(
            text.contains(&format!(
                "\n{phase}: 12 orders (3 in flight), 0 failed, in "
            )),
            "every order must pass {phase}:\n{text}"
        );
        assert!(
            text.contains(&format!("CPU during {phase}: services' process ")),
            "{text}"
        );
    }
    assert!(
        text.contains("claims verified (1101): 24 of 24; payments verified (1104): 24 of 24"),
        "{text}"
    );
    assert!(
        text.contains("full cycle in phases (create + claim + pay): "),
        "{text}"
    );
    assert!(
        text.contains("raw rates on one core: EdDSA sign "),
        "{text}"
    );
    assert!(
        text.trim_end().lines().last().is_some_and(|l| {
            l.strip_prefix("orders/s (created + claimed + paid, mixed cycles): ")
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v > 0.0)
        }),
        "{text}"
    );
    // The set-up's progress goes to stderr: 2 × 12 coins and the warm-up's.
    assert!(progress.contains("withdrawing 25 coins"), "{progress}");
}

#[test]
fn merchant_bench_reports_json_on_postgres() {
    let Some(server) = std::env::var("CARDCASH_TEST_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL not set");
        return;
    };
    let out = bench(&[
        "--orders",
        "8",
        "--clients",
        "2",
        "--postgres",
        &server,
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    assert_eq!(report["engine"], "postgres", "{report}");
    assert_eq!(report["orders"], 8);
    assert_eq!(report["payments"], 16);
    assert_eq!(report["payments_verified"], 16);
    assert_eq!(report["claims_verified"], 16);
    for phase in ["create", "claim", "pay", "mixed"] {
        let p = &report[phase];
        assert_eq!(p["orders"], 8, "{phase}: {p}");
        assert_eq!(p["failed"], 0, "{phase}: {p}");
        assert!(
            p["orders_per_second"].as_f64().is_some_and(|v| v > 0.0),
            "{p}"
        );
        assert!(p["latency_ms"]["p99"].is_number(), "{p}");
        assert!(p["database_cores"].is_number(), "the backends' CPU: {p}");
    }
    assert!(report["mixed"]["pay_ms"]["p50"].is_number(), "{report}");
    assert!(report["cycle_per_second"].as_f64().is_some_and(|v| v > 0.0));
}
