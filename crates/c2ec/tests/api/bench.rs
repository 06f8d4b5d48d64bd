//! The benchmark as an (ignored) test, to print figures:
//! `cargo test -p cardcash-c2ec --test api bench_report -- --ignored --nocapture`
//! (`C2EC_BENCH_N`, `C2EC_BENCH_CONCURRENCY`; PostgreSQL too when `CARDCASH_TEST_PG_URL` is set).
//! A small run always executes so the benchmark code itself stays tested.

use std::time::Duration;

use cardcash_api::cardproc::mac::MacKey;
use cardcash_c2ec::ProviderConfig;
use cardcash_c2ec::bench::{BenchConfig, BenchProcessor, run};
use cardcash_cardproc::{ApiUserConfig, CardprocConfig, Role};
use cardcash_client::CardprocClient;
use cardcash_util::RelativeTime;

/// A fresh card processor (on its own SQLite file in `dir`) with a terminal and a reader user,
/// as the benchmark's payer; `None` for the in-memory provider.
async fn processor(
    real: bool,
    dir: &std::path::Path,
) -> (Option<cardcash_cardproc::App>, BenchProcessor) {
    if !real {
        return (None, BenchProcessor::InMemory);
    }
    let (terminal_key, reader_key) = (
        MacKey::from_bytes(vec![1; 32]).unwrap(),
        MacKey::from_bytes(vec![2; 32]).unwrap(),
    );
    let mut cp = CardprocConfig::new(
        "CHF".parse().unwrap(),
        format!("sqlite:{}/cardproc.db", dir.display()),
    );
    cp.delay_finality = RelativeTime::from_duration(Duration::from_millis(500));
    cp.users = vec![
        ApiUserConfig {
            id: 1,
            secret: terminal_key.clone(),
            role: Role::Terminal,
        },
        ApiUserConfig {
            id: 2,
            secret: reader_key.clone(),
            role: Role::Reader,
        },
    ];
    let space = cp.space_id;
    let app = cardcash_cardproc::App::build(cp).await.unwrap();
    let base = app.base_url().clone();
    let terminal = CardprocClient::new(base.as_str(), 1, &terminal_key.to_base64(), space).unwrap();
    let provider = ProviderConfig {
        name: "cardcash card processor".into(),
        base_url: base,
        user_id: 2,
        secret: reader_key.to_base64(),
        space_id: space,
    };
    (Some(app), BenchProcessor::Cardproc { terminal, provider })
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_small_run_confirms_everything() {
    for real_processor in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (cardproc, processor) = processor(real_processor, dir.path()).await;
        let r = run(BenchConfig {
            n: 10,
            concurrency: 5,
            database: None,
            processor,
        })
        .await
        .unwrap();
        if let Some(cardproc) = cardproc {
            cardproc.shutdown().await;
        }
        assert_eq!(r.confirmed, 10);
        assert!(r.ops_per_sec > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn bench_report() {
    let n = env_usize("C2EC_BENCH_N", 500);
    let concurrency = env_usize("C2EC_BENCH_CONCURRENCY", 32);
    let pg = cardcash_store::testing::pg_url();
    for postgres in [false, true] {
        if postgres && pg.is_none() {
            eprintln!("{}", cardcash_store::testing::SKIP_MESSAGE);
            continue;
        }
        for real_processor in [false, true] {
            // A fresh database per run: transaction ids of different processors may collide.
            let database = match (&pg, postgres) {
                (Some(admin), true) => {
                    Some(cardcash_store::testing::create_pg_database(admin).await)
                }
                _ => None,
            };
            let dir = tempfile::tempdir().unwrap();
            let (cardproc, processor) = processor(real_processor, dir.path()).await;
            let r = run(BenchConfig {
                n,
                concurrency,
                database: database.clone(),
                processor,
            })
            .await
            .unwrap();
            if let Some(cardproc) = cardproc {
                cardproc.shutdown().await;
            }
            println!("{r}");
            assert_eq!(r.confirmed, n);
        }
    }
}
