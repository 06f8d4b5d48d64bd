//! Binding and serving: connection limits, timeouts and graceful shutdown.
//!
//! [`serve`] binds before it returns, so `127.0.0.1:0` works in tests and `App::build` can report
//! the real address; the server runs on a spawned task until the cancellation token fires, then
//! stops accepting, lets in-flight requests finish, and [`Server::join`] returns. Long polls
//! notice the shutdown (see [`crate::longpoll::shutdown_token`]) and answer early; anything
//! still running after [`ServeConfig::shutdown_grace`] is left behind so shutdown stays bounded.
//!
//! Connections are served by hyper (HTTP/1.1 and HTTP/2 with prior knowledge) with limits that
//! `axum::serve` does not offer, so that idle or half-sent connections cannot pile up until the
//! process runs out of file descriptors:
//! - **Header read timeout**: a request head must arrive completely within
//!   [`ServeConfig::header_read_timeout`] of the connection (or the previous response) being
//!   ready for it; otherwise the connection is closed. On HTTP/1.1 this also bounds how long a
//!   kept-alive connection may sit idle between requests.
//! - **Idle timeout**: a connection with no request in flight that moved no byte for
//!   [`ServeConfig::idle_timeout`] is closed (covers HTTP/2 and the protocol detection phase).
//! - **Connection bound**: at most [`ServeConfig::max_connections`] connections at once. When a
//!   new connection arrives at the bound, the least recently active connection without a
//!   request in flight (quiet for at least a second) is closed to make room, so idle
//!   connections never lock clients out; only when every connection is busy does the server
//!   stop accepting until one finishes.
//!
//! Request timeouts are a router layer ([`crate::ServiceRouter::request_timeout`]): they need
//! the long-poll parameter and answer with a Taler error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::transport::{Activity, ConnIo};

/// How long graceful shutdown may wait for in-flight requests by default.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Default time a client has to send a complete request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time after which a connection without a request in flight is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection must have been quiet (no request in flight, no byte moved) before it
/// may be closed to make room for a new one: a client that just connected is still sending its
/// first request.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// Upper bound of [`ServeConfig::max_connections`].
const MAX_CONNECTIONS: usize = 1 << 20;

/// Limits of a server; [`ServeConfig::default`] suits production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Time allowed for a complete request head (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Time after which a connection with no request in flight and no traffic is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: default_max_connections(),
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// A quarter of the process' file-descriptor limit (the rest is for databases, outgoing
/// connections and the other services of `cardcash demo`), between 64 and 16,384.
pub fn default_max_connections() -> usize {
    open_files_limit().map_or(256, |limit| (limit / 4).clamp(64, 16_384))
}

/// The soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (Linux; `None` elsewhere).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(usize::MAX);
    }
    soft.parse().ok()
}

/// A running HTTP server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    connections: Arc<Connections>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// The bound address (with the real port when `:0` was requested).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Waits until the server has shut down (after the token given to [`serve`] is cancelled).
    pub async fn join(self) -> io::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Binds `bind` and serves `router` on a new task until `shutdown` is cancelled, with the
/// default limits.
pub async fn serve(
    router: Router,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<Server> {
    serve_with(router, bind, shutdown, ServeConfig::default()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    router: Router,
    bind: SocketAddr,
    shutdown: CancellationToken,
    config: ServeConfig,
) -> io::Result<Server> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, max_connections = config.max_connections, "listening");
    let config = ServeConfig {
        max_connections: config.max_connections.clamp(1, MAX_CONNECTIONS),
        ..config
    };
    let connections = Arc::new(Connections::new(config.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let task = tokio::spawn(accept_loop(
        listener,
        router,
        Arc::new(builder),
        config,
        connections.clone(),
        shutdown,
    ));
    Ok(Server {
        addr,
        connections,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    config: ServeConfig,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = connections.slots.clone();
    loop {
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before accept): not fatal.
                    // Pause briefly so a persistent condition does not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let permit = loop {
            if let Ok(permit) = slots.clone().try_acquire_owned() {
                break Some(permit);
            }
            // At the bound: make room by closing an idle connection, or wait until one
            // finishes or has been idle long enough.
            let recheck = connections
                .evict_least_active_idle()
                .unwrap_or(EVICTABLE_AFTER);
            tokio::select! {
                () = shutdown.cancelled() => break None,
                permit = slots.clone().acquire_owned() => break permit.ok(),
                () = tokio::time::sleep(recheck) => {}
            }
        };
        let Some(permit) = permit else {
            break;
        };
        let conn = connections.register();
        let task = serve_connection(
            stream,
            remote,
            router.clone(),
            builder.clone(),
            config,
            conn.clone(),
            shutdown.clone(),
        );
        let connections = connections.clone();
        tokio::spawn(async move {
            task.await;
            connections.unregister(conn.id);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds one slot: all slots free means all connections are done.
    let max = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(config.shutdown_grace, slots.acquire_many(max))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = config.shutdown_grace.as_secs(),
            open = connections.open(),
            "requests still running after shutdown grace; leaving them"
        );
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    config: ServeConfig,
    conn: Arc<ConnState>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(ConnIo::new(stream, conn.activity.clone()));
    let service_conn = conn.clone();
    let request_token = shutdown.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        let guard = InFlight::start(service_conn.clone());
        let router = router.clone();
        let token = request_token.clone();
        async move {
            let Ok(response) =
                crate::longpoll::with_shutdown(token, router.oneshot(request.map(Body::new))).await;
            // The request counts as in flight until its response body is sent.
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(GuardedBody {
                    body,
                    _guard: guard,
                })
            }))
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    let recheck = config.idle_timeout.min(config.header_read_timeout);
    let mut next_check = conn.idle_deadline(&config);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                // No request in flight (at most a partial head): nothing to finish. Requests
                // are counted from the moment hyper hands them over, within this task, so none
                // is lost here.
                if conn.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = conn.evict.notified() => {
                if conn.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                // A request started meanwhile: finish it, then close.
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(next_check), if !closing => {
                let now = Instant::now();
                if conn.in_flight.load(Ordering::SeqCst) == 0 && conn.idle_deadline(&config) <= now {
                    tracing::debug!(%remote, "closing idle connection");
                    return;
                }
                // Busy or recently active: look again later (so a connection is closed at
                // most one timeout after it became idle for a full timeout).
                next_check = conn.idle_deadline(&config).max(now + recheck);
            }
        }
    }
}

/// The open connections and the bound on their number.
#[derive(Debug)]
struct Connections {
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> usize {
        self.lock().len()
    }

    fn register(&self) -> Arc<ConnState> {
        let conn = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            activity: Arc::new(Activity::new()),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            evict: Notify::new(),
            evicting: AtomicBool::new(false),
        });
        self.lock().insert(conn.id, conn.clone());
        conn
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection without a request in flight that was active least recently, if it
    /// has been quiet for [`EVICTABLE_AFTER`] (`None`); otherwise says when to look again.
    fn evict_least_active_idle(&self) -> Option<Duration> {
        let victim = self
            .lock()
            .values()
            .filter(|c| {
                c.in_flight.load(Ordering::SeqCst) == 0 && !c.evicting.load(Ordering::Relaxed)
            })
            .min_by_key(|c| c.activity.last())
            .cloned()?;
        let quiet = victim.activity.last().elapsed();
        if quiet < EVICTABLE_AFTER {
            return Some(EVICTABLE_AFTER - quiet);
        }
        tracing::debug!(
            id = victim.id,
            "connection limit reached; closing an idle connection"
        );
        victim.evicting.store(true, Ordering::Relaxed);
        victim.evict.notify_one();
        None
    }
}

/// What the server knows about one connection.
#[derive(Debug)]
struct ConnState {
    id: u64,
    activity: Arc<Activity>,
    in_flight: AtomicUsize,
    /// Whether a request was ever received (before that, the header read timeout applies).
    served: AtomicBool,
    evict: Notify,
    evicting: AtomicBool,
}

impl ConnState {
    /// When the connection counts as idle for too long, if nothing happens before.
    fn idle_deadline(&self, config: &ServeConfig) -> Instant {
        let limit = if self.served.load(Ordering::Relaxed) {
            config.idle_timeout
        } else {
            // Nothing received yet (HTTP version detection included): the header timeout.
            config.header_read_timeout.min(config.idle_timeout)
        };
        self.activity.last() + limit
    }
}

/// Marks a request in flight on its connection until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(conn: Arc<ConnState>) -> Self {
        conn.served.store(true, Ordering::Relaxed);
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.activity.touch();
    }
}

/// A response body that keeps its request counted as in flight until it is sent or dropped.
struct GuardedBody {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for GuardedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_connection_bound_is_sane() {
        let max = default_max_connections();
        assert!((64..=16_384).contains(&max), "{max}");
    }
}
