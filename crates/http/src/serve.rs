//! Binding and serving with graceful shutdown.
//!
//! [`serve`] binds before it returns, so `127.0.0.1:0` works in tests and `App::build` can report
//! the real address; the server runs on a spawned task until the cancellation token fires, then
//! stops accepting, lets in-flight requests finish, and [`Server::join`] returns. Long polls
//! notice the shutdown (see [`crate::longpoll::shutdown_token`]) and answer early; anything
//! still running after [`SHUTDOWN_GRACE`] is left behind so shutdown stays bounded.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long graceful shutdown may wait for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    let request_token = shutdown.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let token = request_token.clone();
            crate::longpoll::with_shutdown(token, next.run(request))
        },
    ));
    let make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let graceful = axum::serve(listener, make_service)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let grace_over = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = graceful => result,
            () = grace_over => {
                tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "requests still running after shutdown grace; leaving them");
                Ok(())
            }
        }
    });
    Ok(Server { addr, task })
}
