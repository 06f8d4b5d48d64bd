//! Long polling: the `timeout_ms` query parameter (and the legacy `long_poll_ms`) and a helper
//! that waits for a state change without polling the database in a loop.
//!
//! Taler clients ask "answer when X changes, or after `timeout_ms` at the latest" (docs.taler.net
//! common conventions, "long polling"; the bank-integration API still documents `long_poll_ms`).
//! The order that never loses a wake-up is: **subscribe** to the notifier, **read** the state,
//! and only if it is not yet what the client waits for, **wait** on the subscription until the
//! deadline, then read again. A notification that fires between the read and the wait is kept by
//! the subscription, so the wait returns at once. [`wait_for_change`] implements that loop; it
//! only needs a "wait" future, so this crate stays independent of the store.
//!
//! Requests served by [`crate::serve`] also see the server's shutdown token ([`shutdown_token`]):
//! a pending long poll answers with the current state as soon as shutdown starts instead of
//! holding graceful shutdown open until its timeout.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{ErrorCode, TalerError};

tokio::task_local! {
    static SHUTDOWN: CancellationToken;
}

/// Runs `future` (a request) with `token` visible to [`shutdown_token`].
pub(crate) async fn with_shutdown<F: Future>(token: CancellationToken, future: F) -> F::Output {
    SHUTDOWN.scope(token, future).await
}

/// The shutdown token of the server handling the current request (`None` outside [`crate::serve`],
/// e.g. in `oneshot` tests). Handlers that wait on their own (SSE, custom long polls) should also
/// stop waiting when it fires.
pub fn shutdown_token() -> Option<CancellationToken> {
    SHUTDOWN.try_with(CancellationToken::clone).ok()
}

/// Longest wait a client can ask for; longer requests are shortened to this.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);

/// The requested long-poll timeout (zero when the client does not long-poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LongPoll {
    pub timeout: Duration,
}

impl LongPoll {
    /// Parses `timeout_ms` (preferred) or `long_poll_ms` from a raw query string.
    pub fn from_query(query: &str) -> Result<Self, TalerError> {
        let mut timeout_ms = None;
        let mut long_poll_ms = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "timeout_ms" => timeout_ms = Some(value.into_owned()),
                "long_poll_ms" => long_poll_ms = Some(value.into_owned()),
                _ => {}
            }
        }
        let (name, raw) = match (timeout_ms, long_poll_ms) {
            (Some(v), _) => ("timeout_ms", v),
            (None, Some(v)) => ("long_poll_ms", v),
            (None, None) => return Ok(Self::default()),
        };
        // Plain decimal digits only: `u64::from_str` would also accept a leading '+'.
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(name, &raw));
        }
        // Anything that overflows u64 is certainly above the cap.
        let ms = raw.parse::<u64>().unwrap_or(u64::MAX);
        Ok(Self {
            timeout: Duration::from_millis(ms).min(MAX_LONG_POLL),
        })
    }

    /// Whether the client asked to wait at all.
    pub fn is_polling(&self) -> bool {
        !self.timeout.is_zero()
    }

    /// The instant at which the request must be answered.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }
}

fn malformed(name: &str, raw: &str) -> TalerError {
    TalerError::bad_request(
        ErrorCode::GenericParameterMalformed,
        format!("{name} must be a non-negative integer (milliseconds)"),
    )
    .with_detail(format!("{name}={raw}"))
}

impl<S: Send + Sync> FromRequestParts<S> for LongPoll {
    type Rejection = TalerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query().unwrap_or(""))
    }
}

/// The future a subscription's wait returns, boxed so [`wait_for_change`] can borrow the
/// subscription anew on every round.
pub type WaitFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// Reads state until `ready` holds or `timeout` passes, waiting on notifications in between.
///
/// Create `subscription` *before* calling this: `wait(subscription, remaining)` must return as
/// soon as a notification arrived since the subscription was created or since the previous wait
/// returned (its result is ignored; the state is re-read either way). The final state is returned
/// even when it is not ready, so the handler can answer "no change yet". When the server shuts
/// down ([`shutdown_token`]) the state is read once more and returned at once. With the store:
///
/// ```text
/// let mut sub = db.notifier().subscribe("withdrawal", &wopid);
/// let op = wait_for_change(poll.timeout, &mut sub, || store.withdrawal(&wopid),
///     |op| op.status != old, |s, d| Box::pin(s.wait(d))).await?;
/// ```
pub async fn wait_for_change<S, T, E, R, RF, W>(
    timeout: Duration,
    subscription: &mut S,
    read: R,
    ready: impl Fn(&T) -> bool,
    wait: W,
) -> Result<T, E>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<T, E>>,
    W: for<'a> FnMut(&'a mut S, Duration) -> WaitFuture<'a>,
{
    wait_for_change_until(None, timeout, subscription, read, ready, wait).await
}

/// [`wait_for_change`] that also answers at once when `stop` fires (a service's own shutdown
/// token, for long polls that may run outside a request served by [`crate::serve`]).
pub async fn wait_for_change_until<S, T, E, R, RF, W>(
    stop: Option<&CancellationToken>,
    timeout: Duration,
    subscription: &mut S,
    mut read: R,
    ready: impl Fn(&T) -> bool,
    mut wait: W,
) -> Result<T, E>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<T, E>>,
    W: for<'a> FnMut(&'a mut S, Duration) -> WaitFuture<'a>,
{
    let deadline = Instant::now() + timeout;
    let server = shutdown_token();
    let stops: Vec<&CancellationToken> = stop.into_iter().chain(server.as_ref()).collect();
    let mut stopping = false;
    loop {
        let state = read().await?;
        if ready(&state) {
            return Ok(state);
        }
        let now = Instant::now();
        stopping = stopping || stops.iter().any(|t| t.is_cancelled());
        if now >= deadline || stopping {
            return Ok(state);
        }
        let waiting = wait(subscription, deadline - now);
        // On shutdown, loop once more: re-read and answer with whatever the state is now.
        tokio::select! {
            _ = waiting => {}
            () = cancelled(&stops) => stopping = true,
        }
    }
}

/// Resolves when any of `tokens` is cancelled (never for none).
async fn cancelled(tokens: &[&CancellationToken]) {
    match tokens {
        [] => std::future::pending().await,
        [one] => one.cancelled().await,
        [first, rest @ ..] => {
            tokio::select! {
                () = first.cancelled() => {}
                () = Box::pin(cancelled(rest)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_means_no_wait() {
        assert_eq!(LongPoll::from_query("").unwrap(), LongPoll::default());
        assert!(!LongPoll::from_query("other=5").unwrap().is_polling());
    }

    #[test]
    fn timeout_ms_wins_over_legacy() {
        let lp = LongPoll::from_query("long_poll_ms=100&timeout_ms=2500").unwrap();
        assert_eq!(lp.timeout, Duration::from_millis(2500));
        let lp = LongPoll::from_query("long_poll_ms=100").unwrap();
        assert_eq!(lp.timeout, Duration::from_millis(100));
    }

    #[test]
    fn capped() {
        let lp = LongPoll::from_query("timeout_ms=3600000").unwrap();
        assert_eq!(lp.timeout, MAX_LONG_POLL);
        let lp = LongPoll::from_query("timeout_ms=99999999999999999999999").unwrap();
        assert_eq!(lp.timeout, MAX_LONG_POLL);
    }

    #[test]
    fn malformed_rejected() {
        for q in [
            "timeout_ms=",
            "timeout_ms=-1",
            "timeout_ms=1.5",
            "timeout_ms=+5",
            "long_poll_ms=abc",
        ] {
            let e = LongPoll::from_query(q).unwrap_err();
            assert_eq!(e.code, ErrorCode::GenericParameterMalformed, "{q}");
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_returns_when_ready() {
        let (tx, mut rx) = tokio::sync::watch::channel(0u32);
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(1);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(2);
        });
        let reader = rx.clone();
        let value = wait_for_change(
            Duration::from_secs(30),
            &mut rx,
            || std::future::ready(Ok::<_, ()>(*reader.borrow())),
            |v| *v == 2,
            |rx, d| Box::pin(async move { tokio::time::timeout(d, rx.changed()).await.is_ok() }),
        )
        .await
        .unwrap();
        assert_eq!(value, 2);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_explicit_stop_answers_at_once() {
        let stop = CancellationToken::new();
        let started = Instant::now();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                stop.cancel();
            }
        });
        let reads = std::sync::atomic::AtomicU32::new(0);
        let value = wait_for_change_until(
            Some(&stop),
            Duration::from_secs(60),
            &mut (),
            || {
                let n = reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::future::ready(Ok::<_, ()>(n))
            },
            |_| false,
            |_, d| {
                Box::pin(async move {
                    tokio::time::sleep(d).await;
                    false
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 1, "read once more after the stop, then answered");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_at_deadline() {
        let started = Instant::now();
        let value = wait_for_change(
            Duration::from_millis(1500),
            &mut (),
            || std::future::ready(Ok::<_, ()>(7u32)),
            |_| false,
            |_, d| {
                Box::pin(async move {
                    tokio::time::sleep(d).await;
                    false
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 7);
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
    }
}
