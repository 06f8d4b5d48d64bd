//! Binding and serving with graceful shutdown.
//!
//! [`serve`] binds before it returns, so `127.0.0.1:0` works in tests and `App::build` can report
//! the real address; the server runs on a spawned task until the cancellation token fires, then
//! stops accepting, lets in-flight requests finish, and [`Server::join`] returns.

use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running HTTP server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// The bound address (with the real port when `:0` was requested).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server has shut down (after the token given to [`serve`] is cancelled).
    pub async fn join(self) -> io::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Binds `bind` and serves `router` on a new task until `shutdown` is cancelled.
pub async fn serve(
    router: Router,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<Server> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, make_service)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    Ok(Server { addr, task })
}
