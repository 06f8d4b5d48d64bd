//! In-process tests of extractors, fallbacks and layers.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::helpers::{app, body_bytes, get, post_json, send, taler_error};

#[tokio::test]
async fn json_round_trip() {
    let app = app(1024);
    let response = send(
        &app.router,
        post_json("/echo", r#"{"name":"a","count":2,"extra":true}"#),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "TalerJson responses are JSON"
    );
    assert_eq!(body_bytes(response).await, br#"{"name":"a","count":2}"#);
}

#[tokio::test]
async fn malformed_json_is_generic_json_invalid() {
    let app = app(1024);
    let body = taler_error(
        send(&app.router, post_json("/echo", "{\"name\":")).await,
        StatusCode::BAD_REQUEST,
        22,
    )
    .await;
    assert!(body["detail"].is_string(), "{body}");
    // Valid JSON with a wrong type is also 22, with serde's message naming the field.
    let body = taler_error(
        send(
            &app.router,
            post_json("/echo", r#"{"name":"a","count":"x"}"#),
        )
        .await,
        StatusCode::BAD_REQUEST,
        22,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");
}

#[tokio::test]
async fn wrong_content_type_is_415_taler() {
    let app = app(1024);
    let request = Request::post("/echo")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"name":"a","count":1}"#))
        .unwrap();
    taler_error(
        send(&app.router, request).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        23,
    )
    .await;
}

#[tokio::test]
async fn oversized_body_is_413_taler() {
    let app = app(1024);
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(2000));
    taler_error(
        send(&app.router, post_json("/echo", big.clone())).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        32,
    )
    .await;
    // The same body under the default 1 MiB limit is fine.
    let roomy = crate::helpers::app(cardcash_http::DEFAULT_BODY_LIMIT);
    let response = send(&roomy.router, post_json("/echo", big)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_route_is_404_taler() {
    let app = app(1024);
    taler_error(
        send(&app.router, get("/nope")).await,
        StatusCode::NOT_FOUND,
        21,
    )
    .await;
}

#[tokio::test]
async fn wrong_method_is_405_taler() {
    let app = app(1024);
    taler_error(
        send(&app.router, post_json("/poll", "{}")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        20,
    )
    .await;
    let request = Request::delete("/echo").body(Body::empty()).unwrap();
    taler_error(
        send(&app.router, request).await,
        StatusCode::METHOD_NOT_ALLOWED,
        20,
    )
    .await;
}

#[tokio::test]
async fn long_poll_parameters() {
    let app = app(1024);
    for (query, expected) in [
        ("", 0),
        ("?timeout_ms=1500", 1500),
        ("?long_poll_ms=700", 700),
        ("?long_poll_ms=700&timeout_ms=900", 900),
        ("?timeout_ms=86400000", 60_000),
    ] {
        let response = send(&app.router, get(&format!("/poll{query}"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        let body: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
        assert_eq!(body["timeout_ms"], expected, "{query}");
    }
    for query in ["?timeout_ms=abc", "?timeout_ms=-5", "?long_poll_ms=1e3"] {
        taler_error(
            send(&app.router, get(&format!("/poll{query}"))).await,
            StatusCode::BAD_REQUEST,
            26,
        )
        .await;
    }
}

#[tokio::test]
async fn basic_auth_accept_and_reject() {
    let app = app(1024);
    // "exchange:secret"
    let ok = Request::get("/private")
        .header("authorization", "Basic ZXhjaGFuZ2U6c2VjcmV0")
        .body(Body::empty())
        .unwrap();
    let response = send(&app.router, ok).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response).await, b"welcome");

    // "exchange:wrong"
    let wrong = Request::get("/private")
        .header("authorization", "Basic ZXhjaGFuZ2U6d3Jvbmc=")
        .body(Body::empty())
        .unwrap();
    let response = send(&app.router, wrong).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"test\", charset=\"UTF-8\""
    );
    taler_error(response, StatusCode::UNAUTHORIZED, 40).await;

    let missing = send(&app.router, get("/private")).await;
    assert!(missing.headers().contains_key("www-authenticate"));
    taler_error(missing, StatusCode::UNAUTHORIZED, 40).await;

    let garbage = Request::get("/private")
        .header("authorization", "Basic %%%")
        .body(Body::empty())
        .unwrap();
    taler_error(
        send(&app.router, garbage).await,
        StatusCode::UNAUTHORIZED,
        40,
    )
    .await;
}

#[tokio::test]
async fn path_and_query_rejections() {
    let app = app(1024);
    let response = send(&app.router, get("/items/17")).await;
    assert_eq!(body_bytes(response).await, b"17");
    taler_error(
        send(&app.router, get("/items/seventeen")).await,
        StatusCode::BAD_REQUEST,
        29,
    )
    .await;

    let response = send(&app.router, get("/page?limit=-20")).await;
    assert_eq!(body_bytes(response).await, b"-20");
    taler_error(
        send(&app.router, get("/page?limit=many")).await,
        StatusCode::BAD_REQUEST,
        26,
    )
    .await;
    taler_error(
        send(&app.router, get("/page")).await,
        StatusCode::BAD_REQUEST,
        25,
    )
    .await;
}

#[tokio::test]
async fn panic_is_500_taler_without_message() {
    let app = app(1024);
    let body = taler_error(
        send(&app.router, get("/panic")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        60,
    )
    .await;
    assert!(!body.to_string().contains("boom"), "{body}");
}

#[tokio::test]
async fn from_code_uses_registry_status() {
    let app = app(1024);
    taler_error(
        send(&app.router, get("/forbidden")).await,
        StatusCode::FORBIDDEN,
        44,
    )
    .await;
}

#[tokio::test]
async fn request_id_is_set_or_propagated() {
    let app = app(1024);
    let response = send(&app.router, get("/poll")).await;
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let request = Request::get("/poll")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let response = send(&app.router, request).await;
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn cors_preflight_allows_wallets() {
    let app = app(1024);
    let request = Request::options("/echo")
        .header("origin", "https://wallet.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap();
    let response = send(&app.router, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        response.headers()["access-control-allow-headers"],
        "authorization,content-type"
    );
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = app(1024);
    for _ in 0..3 {
        send(&app.router, get("/items/1")).await;
    }
    send(&app.router, get("/nope")).await;
    send(&app.router, post_json("/echo", r#"{"name":"a","count":1}"#)).await;
    let response = send(&app.router, get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/items/{id}",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="<unmatched>",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/items/{id}"} 3"#),
        "{text}"
    );
    assert!(text.contains("echoes_total 1"), "{text}");
}

#[tokio::test]
async fn service_error_enum_maps_to_taler_errors() {
    let app = app(1024);
    let body = taler_error(
        send(&app.router, get("/orders/nope")).await,
        StatusCode::NOT_FOUND,
        cardcash_http::ErrorCode::MerchantGenericOrderUnknown.code(),
    )
    .await;
    assert_eq!(body["hint"], "order nope is unknown");
    let body = taler_error(
        send(&app.router, get("/orders/broken")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        53,
    )
    .await;
    let text = body.to_string();
    assert!(
        !text.contains("secret") && !text.contains("database"),
        "{text}"
    );
}
