//! Tests over a real socket: bind on port 0, long polling, metrics, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use cardcash_http::{Server, serve};
use tokio_util::sync::CancellationToken;

use crate::helpers::app;

async fn start() -> (Server, CancellationToken, tokio::sync::watch::Sender<u64>) {
    let app = app(cardcash_http::DEFAULT_BODY_LIMIT);
    let token = CancellationToken::new();
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = serve(app.router, bind, token.clone()).await.expect("bind");
    assert_ne!(server.addr().port(), 0);
    (server, token, app.version)
}

fn metric_value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn serves_metrics_and_shuts_down_gracefully() {
    let (server, token, _version) = start().await;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let series = r#"http_requests_total{method="POST",route="/echo",status="200"}"#;

    let before = client.get(format!("{base}/metrics")).send().await.unwrap();
    let before = metric_value(&before.text().await.unwrap(), series);
    let echoed = client
        .post(format!("{base}/echo"))
        .json(&serde_json::json!({"name": "n", "count": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    let after = client.get(format!("{base}/metrics")).send().await.unwrap();
    let after = metric_value(&after.text().await.unwrap(), series);
    assert_eq!(after, before + 1);

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.join())
        .await
        .expect("shutdown within 5 s")
        .expect("clean exit");
    assert!(client.get(format!("{base}/metrics")).send().await.is_err());
}

#[tokio::test]
async fn long_poll_wakes_on_change_and_times_out() {
    let (server, token, version) = start().await;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();

    // Already satisfied: answers at once.
    let text = client
        .get(format!("{base}/version?min=0&timeout_ms=30000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "0");

    // Waits until the version reaches 2, skipping the intermediate 1.
    let waiting = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/version?min=2&timeout_ms=30000");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    version.send_replace(1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    version.send_replace(2);
    let text = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken by the change")
        .unwrap();
    assert_eq!(text, "2");

    // Never satisfied: answers with the current state after the legacy long_poll_ms.
    let started = std::time::Instant::now();
    let text = client
        .get(format!("{base}/version?min=9&long_poll_ms=300"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "2");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.join())
        .await
        .expect("shutdown")
        .expect("clean exit");
}

#[tokio::test]
async fn pending_long_poll_answers_on_shutdown() {
    let (server, token, _version) = start().await;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let waiting = tokio::spawn({
        let url = format!("{base}/version?min=5&timeout_ms=60000");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    let started = std::time::Instant::now();
    token.cancel();
    let text = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("long poll answered on shutdown")
        .unwrap();
    assert_eq!(text, "0", "the current state, unchanged");
    tokio::time::timeout(Duration::from_secs(5), server.join())
        .await
        .expect("shutdown not held open by the long poll")
        .expect("clean exit");
    assert!(started.elapsed() < Duration::from_secs(5));
}
