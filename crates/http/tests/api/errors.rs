//! Every error answer is a Taler error (JSON `code` + `hint`), including the ones that do not
//! come from our handlers: axum's own rejections, bare status codes, and what hyper answers
//! itself when a request head cannot be parsed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use cardcash_http::{Server, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::helpers::{app, get, send, taler_error};

#[tokio::test]
async fn invalid_utf8_in_path_is_taler_400() {
    let app = app(1024);
    // Through TalerPath and through a handler with axum's plain `Path`.
    for uri in ["/items/%FF", "/raw/%C3%28", "/orders/%80abc"] {
        taler_error(
            send(&app.router, get(uri)).await,
            StatusCode::BAD_REQUEST,
            29,
        )
        .await;
    }
    // A well-formed escape is fine.
    let response = send(&app.router, get("/orders/kn%6Fwn")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_text_rejections_become_taler_errors() {
    let app = app(1024);
    // axum's `Path<u32>` rejects "x" with a text/plain 400.
    let body = taler_error(
        send(&app.router, get("/raw/x")).await,
        StatusCode::BAD_REQUEST,
        26,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("parse"), "{body}");
    // A bare status without a body.
    let body = taler_error(
        send(&app.router, get("/bare-error")).await,
        StatusCode::CONFLICT,
        26,
    )
    .await;
    assert_eq!(body["hint"], "Conflict");
    assert!(body.get("detail").is_none(), "{body}");
}

#[tokio::test]
async fn long_uri_is_taler_414() {
    let app = app(1024);
    let uri = format!("/items/1?pad={}", "a".repeat(9000));
    taler_error(
        send(&app.router, get(&uri)).await,
        StatusCode::URI_TOO_LONG,
        31,
    )
    .await;
    // A longer limit can be configured.
    let roomy = crate::helpers::app_with(1024, |r| r.max_uri_len(16 * 1024));
    let response = send(&roomy.router, get(&uri)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn start() -> (Server, CancellationToken) {
    let token = CancellationToken::new();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = serve(app(1024).router, bind, token.clone()).await.unwrap();
    (server, token)
}

/// Sends raw bytes and reads the whole answer (the server closes after a parse error).
async fn raw_exchange(server: &Server, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// Status and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &str) -> (u16, serde_json::Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let status = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{head}");
    assert!(
        lower.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[tokio::test]
async fn errors_hyper_answers_itself_have_taler_bodies() {
    let (server, token) = start().await;

    // Over hyper's own 64 KiB URI limit.
    let request = format!(
        "GET /items/1?pad={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, body) = parse_answer(&raw_exchange(&server, request.as_bytes()).await);
    assert_eq!(status, 414);
    assert_eq!(body["code"], 31, "{body}");

    // A malformed header line.
    let request = b"GET /items/1 HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n";
    let (status, body) = parse_answer(&raw_exchange(&server, request).await);
    assert_eq!(status, 400);
    assert_eq!(body["code"], 23, "{body}");

    // A malformed request line.
    let (status, body) = parse_answer(&raw_exchange(&server, b"G\x01T / HTTP/1.1\r\n\r\n").await);
    assert_eq!(status, 400);
    assert_eq!(body["code"], 23, "{body}");

    // More headers than hyper takes.
    let mut request = String::from("GET /items/1 HTTP/1.1\r\nhost: x\r\n");
    for i in 0..200 {
        request.push_str(&format!("x-h{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let (status, body) = parse_answer(&raw_exchange(&server, request.as_bytes()).await);
    assert_eq!(status, 431);
    assert_eq!(body["code"], 23, "{body}");

    // Invalid UTF-8 (escaped) in the path, over the wire.
    let (status, body) = parse_answer(
        &raw_exchange(
            &server,
            b"GET /items/%FF HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(status, 400);
    assert_eq!(body["code"], 29, "{body}");

    // The server still serves normal requests afterwards.
    let response = reqwest::get(format!("http://{}/items/5", server.addr()))
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "5");
    token.cancel();
    server.join().await.unwrap();
}
