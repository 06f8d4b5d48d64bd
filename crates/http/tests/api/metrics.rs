//! Metric label values are bounded: clients cannot create time series.

use axum::body::Body;
use axum::http::{Method, Request};

use crate::helpers::{app, body_bytes, get, send};

async fn metrics_text(router: &axum::Router) -> String {
    String::from_utf8(body_bytes(send(router, get("/metrics")).await).await).unwrap()
}

#[tokio::test]
async fn random_methods_and_paths_do_not_grow_metrics() {
    let app = app(1024);
    // One request of each kind first, so every bounded series exists.
    for request in [
        Request::builder()
            .method("BREW")
            .uri("/items/1")
            .body(Body::empty())
            .unwrap(),
        Request::builder()
            .method("BREW")
            .uri("/orders/1")
            .body(Body::empty())
            .unwrap(),
        Request::builder()
            .method("BREW")
            .uri("/nowhere")
            .body(Body::empty())
            .unwrap(),
        get("/nowhere"),
        get("/items/1"),
    ] {
        send(&app.router, request).await;
    }
    metrics_text(&app.router).await;
    let before = metrics_text(&app.router).await.len();
    for i in 0..1000u32 {
        let method =
            Method::from_bytes(format!("M{:08x}", i.wrapping_mul(2_654_435_761)).as_bytes())
                .unwrap();
        let uri = match i % 3 {
            0 => format!("/items/{i}"),
            1 => format!("/random/{i:x}/path"),
            _ => format!("/orders/{i}"),
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        send(&app.router, request).await;
    }
    let text = metrics_text(&app.router).await;
    assert!(
        text.len() < before + 512,
        "metrics grew from {before} to {} bytes:\n{text}",
        text.len()
    );
    assert!(!text.contains("M0"), "{text}");
    assert!(!text.contains("/random/"), "{text}");
    assert!(
        text.contains(r#"method="other",route="/items/{id}""#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="other",route="<unmatched>""#),
        "{text}"
    );
}
