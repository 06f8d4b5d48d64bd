//! The test kit of cardcash's integration tests (a dev-dependency only; never a normal
//! dependency of anything, which the architecture test enforces).
//!
//! - [`engine_test!`] turns one async test body into one test per database engine:
//!   `engine_test!(async fn name(engine: Engine) { … })` gives `name::sqlite` and
//!   `name::postgres`. A failure names its engine (it is in the test's name), and the engines
//!   run in parallel as separate tests. `name::postgres` prints
//!   `SKIPPING PostgreSQL: CARDCASH_TEST_PG_URL not set` and passes when the variable is unset
//!   (`scripts/pg-test-cluster.sh start` prints it), exactly like `cardcash_store::testing`.
//!   Every body runs on its own multi-threaded runtime and fails after [`TEST_LIMIT`].
//! - Fresh databases per engine: [`world`] (a [`WorldBuilder`] whose services get a fresh
//!   SQLite directory or a fresh PostgreSQL database) and [`database`] (one service's
//!   migrated database, for storage tests below HTTP).
//! - [`wait_until`] and [`wait_for`]: wait on a condition with a deadline instead of a fixed
//!   sleep, so that tests order events by what happened, not by how fast a loaded machine is.
//! - C2EC's in-memory card provider ([`MemoryProvider`]) for tests that script card
//!   payments without a card processor (`WorldBuilder::c2ec_with_provider`).
//!
//! ```ignore
//! use cardcash_testkit::{Engine, engine_test, wait_until, world, WAIT};
//!
//! engine_test!(async fn the_bank_answers(engine: Engine) {
//!     let world = world(engine).bank().start().await.unwrap();
//!     let bank = world.bank().admin();
//!     wait_until(WAIT, || async { bank.config().await.is_ok() }).await;
//!     world.shutdown().await.unwrap();
//! });
//! ```

pub mod coins;
pub mod legacy;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

pub use cardcash_c2ec::provider::memory::{Card, MemoryProvider};
pub use cardcash_store::Engine;
pub use cardcash_store::testing::{PG_URL_VAR, SKIP_MESSAGE, pg_url};
pub use cardcash_world::{BankAccount, Storage, World, WorldBuilder};

/// How long one engine's test body may run before it fails (generous: the machine may be
/// loaded, and a hang must still end with the test's name on it).
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// A deadline for [`wait_until`] that a loaded two-core machine meets with room to spare.
pub const WAIT: Duration = Duration::from_secs(30);

/// One test per engine from one async body; see the crate documentation.
///
/// ```ignore
/// engine_test!(
///     /// Documentation and attributes (`#[ignore = "…"]`) go to both tests.
///     async fn refunds_are_idempotent(engine: Engine) {
///         let world = cardcash_testkit::world(engine).cardproc().start().await.unwrap();
///         // …
///     }
/// );
/// ```
#[macro_export]
macro_rules! engine_test {
    ($(#[$attr:meta])* async fn $name:ident ($engine:ident : $ty:ty) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($engine: $ty) $body

            $(#[$attr])*
            #[test]
            fn sqlite() {
                $crate::run_engine_test(module_path!(), $crate::Engine::Sqlite, body);
            }

            $(#[$attr])*
            #[test]
            fn postgres() {
                $crate::run_engine_test(module_path!(), $crate::Engine::Postgres, body);
            }
        }
    };
}

/// Runs `body` for `engine` on a fresh multi-threaded runtime (two workers), bounded by
/// [`TEST_LIMIT`]. PostgreSQL without [`PG_URL_VAR`] prints [`SKIP_MESSAGE`] and returns.
/// [`engine_test!`] calls this; `test` names the test in a timeout's message.
pub fn run_engine_test<F, Fut>(test: &str, engine: Engine, body: F)
where
    F: FnOnce(Engine) -> Fut,
    Fut: Future<Output = ()>,
{
    if engine == Engine::Postgres && pg_url().is_none() {
        eprintln!("{SKIP_MESSAGE}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            if tokio::time::timeout(TEST_LIMIT, body(engine))
                .await
                .is_err()
            {
                panic!("{test} on {engine} did not finish within {TEST_LIMIT:?}");
            }
        });
    }));
    // Services a failed test left running must not hold the test binary.
    runtime.shutdown_timeout(Duration::from_secs(10));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Where a world's services keep their databases on `engine`: a fresh temporary SQLite
/// directory, or a fresh database on the PostgreSQL server of [`PG_URL_VAR`]. Panics when
/// PostgreSQL is asked for without it ([`engine_test!`] skips such runs before).
pub fn storage(engine: Engine) -> Storage {
    match engine {
        Engine::Sqlite => Storage::TempSqlite,
        Engine::Postgres => Storage::Postgres(
            pg_url().unwrap_or_else(|| panic!("{PG_URL_VAR} is not set: {SKIP_MESSAGE}")),
        ),
    }
}

/// A world builder whose services run on fresh databases of `engine`; add the services.
pub fn world(engine: Engine) -> WorldBuilder {
    World::builder().storage(storage(engine))
}

/// A fresh, migrated database of one service on `engine` (tests of a service's storage).
pub async fn database(
    engine: Engine,
    service: &'static str,
    schema: &cardcash_store::Schema,
) -> cardcash_store::Database {
    match engine {
        Engine::Sqlite => cardcash_store::testing::sqlite_database(schema).await,
        Engine::Postgres => cardcash_store::testing::postgres_database(service, schema)
            .await
            .unwrap_or_else(|| panic!("{PG_URL_VAR} is not set: {SKIP_MESSAGE}")),
    }
}

/// Waits until `probe` yields a value, asking again after a short pause (1 ms, doubling up
/// to 50 ms); `None` after `deadline`.
pub async fn try_wait_for<T, F, Fut>(deadline: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            return None;
        }
        tokio::time::sleep(pause.min(end - now)).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `probe` yields a value and returns it; panics after `deadline`.
pub async fn wait_for<T, F, Fut>(deadline: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_wait_for(deadline, probe).await {
        Some(value) => value,
        None => panic!("the awaited condition did not hold within {deadline:?}"),
    }
}

/// Waits until `condition` holds; panics after `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(deadline, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn wait_until_returns_once_the_condition_holds() {
        let calls = Arc::new(AtomicUsize::new(0));
        wait_until(WAIT, || {
            let calls = calls.clone();
            async move { calls.fetch_add(1, Ordering::SeqCst) >= 3 }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_condition_that_never_holds_ends_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let got: Option<()> = try_wait_for(Duration::from_millis(50), || async { None }).await;
        assert_eq!(got, None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    #[should_panic(expected = "did not hold within")]
    fn wait_until_panics_after_the_deadline() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(wait_until(Duration::from_millis(20), || async { false }));
    }

    #[test]
    fn postgres_without_a_server_is_skipped() {
        if pg_url().is_some() {
            return;
        }
        let ran = AtomicUsize::new(0);
        run_engine_test("skip", Engine::Postgres, |_| async {
            ran.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    #[should_panic(expected = "boom on sqlite")]
    fn a_failing_body_fails_its_test() {
        run_engine_test("boom", Engine::Sqlite, |engine| async move {
            panic!("boom on {engine}");
        });
    }

    engine_test!(
        /// The macro's own test: each engine gets a world on its own fresh database.
        async fn one_test_per_engine(engine: Engine) {
            let world = world(engine).bare_bank().start().await.unwrap();
            assert_eq!(world.engine(), engine);
            let config = world.bank().admin().config().await.unwrap();
            assert_eq!(config.currency.as_str(), "CHF");
            world.shutdown().await.unwrap();
        }
    );
}
