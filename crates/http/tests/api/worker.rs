//! The background-worker runner: wakes on notifications or its timer, backs off exponentially
//! (capped) on errors and panics, keeps running after a panic, stops on the token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardcash_http::{Backoff, Step, WorkerMetrics, WorkerRunner};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

type Log = Arc<Mutex<Vec<Duration>>>;

/// Records the (virtual) time of each step since `start`.
fn record(log: &Log, start: Instant) -> usize {
    let mut log = log.lock().unwrap();
    log.push(start.elapsed());
    log.len()
}

fn times(log: &Log) -> Vec<u64> {
    log.lock()
        .unwrap()
        .iter()
        .map(|d| d.as_millis() as u64)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_up_to_the_cap_and_panics_are_survived() {
    let metrics = WorkerMetrics::new();
    let stop = CancellationToken::new();
    let log: Log = Arc::default();
    let start = Instant::now();
    let runner = WorkerRunner::new("flaky")
        .backoff(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        })
        .idle(Duration::from_secs(10))
        .metrics(metrics.clone());
    let task = tokio::spawn({
        let (log, stop) = (log.clone(), stop.clone());
        runner.run_on_timer(stop.clone(), move || {
            let n = record(&log, start);
            let stop = stop.clone();
            async move {
                match n {
                    1 | 2 | 4 | 5 => Err(format!("failure {n}")),
                    3 => panic!("step {n} panicked"),
                    6 => Ok(Step::After(Duration::from_secs(1))),
                    _ => {
                        stop.cancel();
                        Ok(Step::Idle)
                    }
                }
            }
        })
    });
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("stops on the token")
        .expect("the runner itself never panics");
    // Steps at 0; failures → 100, 200, 400 (panic counts), 400 (capped); success → 1 s later.
    assert_eq!(times(&log), [0, 100, 300, 700, 1100, 1500, 2500]);
    assert_eq!(metrics.errors("flaky"), 4);
    assert_eq!(metrics.panics("flaky"), 1);
    assert_eq!(metrics.steps("flaky"), 2);
}

#[tokio::test(start_paused = true)]
async fn notifications_wake_an_idle_worker_but_not_a_backing_off_one() {
    let (notify, subscription) = watch::channel(0u32);
    let (ran, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let fail_next = Arc::new(Mutex::new(false));
    let runner = WorkerRunner::new("woken")
        .backoff(Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(5),
        })
        .idle(Duration::from_secs(3600));
    let task = tokio::spawn({
        let fail_next = fail_next.clone();
        runner.run(
            stop.clone(),
            subscription,
            |sub, timeout| {
                Box::pin(async move { tokio::time::timeout(timeout, sub.changed()).await.is_ok() })
            },
            move || {
                let _ = ran.send(start.elapsed().as_millis() as u64);
                let fail = std::mem::take(&mut *fail_next.lock().unwrap());
                async move { if fail { Err("down") } else { Ok(Step::Idle) } }
            },
        )
    });
    assert_eq!(steps.recv().await, Some(0));
    // Idle for an hour unless notified: a notification at 1 s runs the step at once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    *fail_next.lock().unwrap() = true;
    notify.send_replace(1);
    assert_eq!(steps.recv().await, Some(1000));
    // That step failed: a notification during the 5 s backoff does not cut it short …
    tokio::time::sleep(Duration::from_secs(1)).await;
    notify.send_replace(2);
    assert_eq!(steps.recv().await, Some(6000));
    // … but it is not lost either: the next wait returns at once.
    assert_eq!(steps.recv().await, Some(6000));
    stop.cancel();
    task.await.unwrap();
    assert!(steps.try_recv().is_err(), "no step after the stop");
}
