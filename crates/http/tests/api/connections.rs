//! Connection limits of `serve_with`: header-read and idle timeouts, the connection bound (idle
//! connections make room for new clients), and the request timeout of the router layers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use cardcash_http::{ServeConfig, Server, serve_with};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::helpers::{app, app_with, body_bytes, get, send, taler_error};

/// Generous bound on how long the server may take for anything here; only a hang reaches it.
const GUARD: Duration = Duration::from_secs(30);

async fn start(config: ServeConfig) -> (Server, CancellationToken) {
    let token = CancellationToken::new();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = serve_with(app(1024).router, bind, token.clone(), config)
        .await
        .unwrap();
    (server, token)
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut received))
        .await
        .expect("the server closed the connection")
        .expect("read");
    received
}

#[tokio::test]
async fn half_sent_request_is_closed_after_the_header_timeout() {
    let (server, token) = start(ServeConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ServeConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /items/1 HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    let received = until_closed(&mut stream).await;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // A connection that never sends a byte is closed as well (it never even chose HTTP/1 or 2).
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    assert!(until_closed(&mut silent).await.is_empty());

    // A kept-alive connection gets its answer, then is closed once it stays silent.
    let mut kept = TcpStream::connect(server.addr()).await.unwrap();
    kept.write_all(b"GET /items/7 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(&mut kept).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n7"), "{answer}");
    token.cancel();
    server.join().await.unwrap();
}

#[tokio::test]
async fn idle_connections_do_not_lock_out_clients() {
    // Timeouts far beyond the test: only the connection bound's eviction can make room.
    let (server, token) = start(ServeConfig {
        header_read_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        max_connections: 50,
        // Nor can shutdown wait them out: it must close them itself.
        shutdown_grace: Duration::from_secs(600),
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // Half of them even started a request head.
    for stream in idle.iter_mut().step_by(2) {
        stream
            .write_all(b"GET /items/1 HTTP/1.1\r\n")
            .await
            .unwrap();
    }
    let response = tokio::time::timeout(
        GUARD,
        reqwest::get(format!("http://{}/items/42", server.addr())),
    )
    .await
    .expect("a normal client is served despite 200 idle connections")
    .unwrap();
    assert_eq!(response.text().await.unwrap(), "42");
    assert!(
        server.open_connections() <= 50,
        "{}",
        server.open_connections()
    );
    token.cancel();
    tokio::time::timeout(GUARD, server.join())
        .await
        .expect("idle connections do not hold shutdown open")
        .unwrap();
}

#[tokio::test]
async fn busy_connections_are_not_evicted() {
    // One slot, taken by a long poll: a second client waits for it instead of killing it.
    let (server, token) = start(ServeConfig {
        max_connections: 1,
        ..ServeConfig::default()
    })
    .await;
    let base = format!("http://{}", server.addr());
    let waiting = tokio::spawn({
        let url = format!("{base}/wait?timeout_ms=1000");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    });
    let second = tokio::spawn({
        let url = format!("{base}/items/3");
        async move {
            // A fresh client, so it needs a connection of its own.
            reqwest::get(url).await.unwrap().text().await.unwrap()
        }
    });
    let (first, second) = tokio::time::timeout(GUARD, async { (waiting.await, second.await) })
        .await
        .expect("both answered");
    assert_eq!(first.unwrap(), "waited");
    assert_eq!(second.unwrap(), "3");
    token.cancel();
    server.join().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stuck_handler_is_a_taler_timeout() {
    let app = app_with(1024, |r| r.request_timeout(Duration::from_secs(2)));
    taler_error(
        send(&app.router, get("/slow")).await,
        StatusCode::SERVICE_UNAVAILABLE,
        11,
    )
    .await;
    // A long poll may take its requested time on top of the request timeout.
    let response = send(&app.router, get("/wait?timeout_ms=5000")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response).await, b"waited");
}
