//! The one background-worker loop every service uses: wait for a notification or a timer, run a
//! step, back off exponentially (with a cap) while steps fail, survive panics.
//!
//! ```text
//! loop {
//!     outcome = step()                      // panics are caught, logged and counted
//!     ok(Step::After(d)) → wait for a notification, at most min(d, idle)
//!     ok(Step::Idle)     → wait for a notification, at most idle (a safety net, not a poll)
//!     error or panic     → sleep the backoff (1 s, 2 s, 4 s, … up to the cap); notifications
//!                          arriving meanwhile are kept by the subscription, not acted on
//! }                                         // until the stop token fires
//! ```
//!
//! Like [`crate::wait_for_change`] the runner knows no store: it gets a subscription value and
//! a function that waits on it (`|sub, timeout| Box::pin(sub.wait(timeout))` with the store's
//! `Subscription`). Subscribe before the first step, so that what is committed while a step
//! runs wakes the next wait at once. A step that has more work ready returns
//! `Step::After(Duration::ZERO)`; per-item retry schedules (attempt counters, next-try times)
//! belong to the step's own data, the runner only protects the loop itself.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::longpoll::WaitFuture;

/// What a successful step asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run again after this long, or earlier when notified (`ZERO`: more work is ready now).
    After(Duration),
    /// Nothing scheduled: run again when notified (or after the idle safety net).
    Idle,
}

/// Exponential backoff after failed steps: `initial`, doubling per consecutive failure, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The pause after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    worker: &'static str,
    kind: &'static str,
}

/// Counters of a service's workers: `worker_steps_total{worker}` and
/// `worker_failures_total{worker, kind="error"|"panic"}`. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct WorkerMetrics {
    steps: Family<WorkerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
}

impl WorkerMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters registered in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let this = Self::new();
        metrics.register(
            "worker_steps",
            "Background worker steps that succeeded, by worker",
            this.steps.clone(),
        );
        metrics.register(
            "worker_failures",
            "Background worker steps that failed, by worker and kind (error, panic)",
            this.failures.clone(),
        );
        this
    }

    /// Successful steps of `worker`.
    pub fn steps(&self, worker: &'static str) -> u64 {
        self.steps.get_or_create(&WorkerLabels { worker }).get()
    }

    /// Steps of `worker` that returned an error.
    pub fn errors(&self, worker: &'static str) -> u64 {
        self.failure(worker, "error").get()
    }

    /// Steps of `worker` that panicked.
    pub fn panics(&self, worker: &'static str) -> u64 {
        self.failure(worker, "panic").get()
    }

    fn failure(&self, worker: &'static str, kind: &'static str) -> Counter {
        self.failures
            .get_or_create(&FailureLabels { worker, kind })
            .clone()
    }
}

/// Runs one background worker; see the module documentation.
#[derive(Debug, Clone)]
pub struct WorkerRunner {
    name: &'static str,
    backoff: Backoff,
    idle: Duration,
    metrics: WorkerMetrics,
}

/// Default longest wait without a notification.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

impl WorkerRunner {
    /// A runner for the worker `name` (a label in logs and metrics).
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            backoff: Backoff::default(),
            idle: DEFAULT_IDLE,
            metrics: WorkerMetrics::new(),
        }
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Longest wait without a notification, whatever a step asks for.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Counts steps and failures in `metrics` (see [`WorkerMetrics::register`]).
    pub fn metrics(mut self, metrics: WorkerMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs `step` until `stop` fires, waiting between steps with `wait(&mut subscription, d)`,
    /// which must return when a notification arrived since the previous wait returned (or since
    /// the subscription was made), or after `d`.
    pub async fn run<S, W, F, Fut, E>(
        self,
        stop: CancellationToken,
        mut subscription: S,
        mut wait: W,
        mut step: F,
    ) where
        W: for<'a> FnMut(&'a mut S, Duration) -> WaitFuture<'a>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Step, E>>,
        E: Display,
    {
        let name = self.name;
        let mut failures: u32 = 0;
        tracing::debug!(worker = name, "worker started");
        loop {
            if stop.is_cancelled() {
                break;
            }
            let outcome = AssertUnwindSafe(step()).catch_unwind().await;
            let failed = match outcome {
                Ok(Ok(next)) => {
                    failures = 0;
                    self.metrics
                        .steps
                        .get_or_create(&WorkerLabels { worker: name })
                        .inc();
                    let pause = match next {
                        Step::After(d) => d.min(self.idle),
                        Step::Idle => self.idle,
                    };
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = wait(&mut subscription, pause) => {}
                    }
                    continue;
                }
                Ok(Err(e)) => {
                    self.metrics.failure(name, "error").inc();
                    e.to_string()
                }
                Err(panic) => {
                    self.metrics.failure(name, "panic").inc();
                    format!("panicked: {}", panic_message(panic.as_ref()))
                }
            };
            failures = failures.saturating_add(1);
            let pause = self.backoff.delay(failures);
            tracing::error!(
                worker = name,
                error = %failed,
                consecutive_failures = failures,
                backoff_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "worker step failed"
            );
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::debug!(worker = name, "worker stopped");
    }

    /// [`WorkerRunner::run`] for a worker that only runs on its own schedule (no notifications).
    pub async fn run_on_timer<F, Fut, E>(self, stop: CancellationToken, step: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Step, E>>,
        E: Display,
    {
        self.run(
            stop,
            (),
            |_, d| {
                Box::pin(async move {
                    tokio::time::sleep(d).await;
                    false
                })
            },
            step,
        )
        .await;
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<_> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(Backoff::default().delay(1), Duration::from_secs(1));
    }
}
