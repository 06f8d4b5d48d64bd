//! The benchmark as an (ignored) test, to print figures:
//! `cargo test -p cardcash-c2ec --test api bench_report -- --ignored --nocapture`
//! (`C2EC_BENCH_N`, `C2EC_BENCH_CONCURRENCY`; PostgreSQL too when `CARDCASH_TEST_PG_URL` is set).
//! A small run always executes so the benchmark code itself stays tested.

use cardcash_c2ec::bench::{BenchConfig, run};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_small_run_confirms_everything() {
    for real_processor in [false, true] {
        let r = run(BenchConfig {
            n: 10,
            concurrency: 5,
            database: None,
            real_processor,
        })
        .await
        .unwrap();
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
            let r = run(BenchConfig {
                n,
                concurrency,
                database: database.clone(),
                real_processor,
            })
            .await
            .unwrap();
            println!("{r}");
            assert_eq!(r.confirmed, n);
        }
    }
}
