//! The shared credential verifier behind Basic auth with hashed secrets: a bounded number of
//! hashes at once, the same cost for unknown users, a cache of successes only.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;

use crate::helpers::{TEST_HASH_LIMIT, app, body_bytes, send, taler_error};

fn login(user: &str, password: &str) -> Request<Body> {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Request::get("/login")
        .header("authorization", format!("Basic {credentials}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn concurrent_wrong_passwords_hash_within_the_bound() {
    let app = app(1024);
    let requests = (0..100).map(|i| {
        let router = app.router.clone();
        async move {
            let user = if i % 2 == 0 { "alice" } else { "mallory" };
            send(&router, login(user, &format!("guess-{i}"))).await
        }
    });
    for response in futures_util::future::join_all(requests).await {
        taler_error(response, StatusCode::UNAUTHORIZED, 40).await;
    }
    let stats = app.verifier.stats();
    assert_eq!(
        stats.hashes, 100,
        "every wrong guess costs a hash, none is cached"
    );
    assert_eq!(stats.cached, 0);
    assert!(
        stats.peak_concurrent <= TEST_HASH_LIMIT as u64,
        "{} hashes ran at once",
        stats.peak_concurrent
    );
    let text = String::from_utf8(
        body_bytes(send(&app.router, crate::helpers::get("/metrics")).await).await,
    )
    .unwrap();
    assert!(text.contains("credential_hashes_total 100"), "{text}");
    assert!(text.contains("credential_hashes_in_flight 0"), "{text}");
}

#[tokio::test]
async fn unknown_users_cost_a_hash_like_known_ones() {
    let app = app(1024);
    taler_error(
        send(&app.router, login("mallory", "x")).await,
        StatusCode::UNAUTHORIZED,
        40,
    )
    .await;
    assert_eq!(app.verifier.stats().hashes, 1, "unknown user: one hash");
    taler_error(
        send(&app.router, login("alice", "x")).await,
        StatusCode::UNAUTHORIZED,
        40,
    )
    .await;
    assert_eq!(app.verifier.stats().hashes, 2, "wrong password: one hash");
}

#[tokio::test]
async fn right_password_is_cached_and_invalidated() {
    let app = app(1024);
    for _ in 0..3 {
        let response = send(&app.router, login("alice", "right")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_bytes(response).await, b"welcome");
    }
    let stats = app.verifier.stats();
    assert_eq!((stats.hashes, stats.cache_hits), (1, 2));
    // Wrong guesses do not disturb the cached entry.
    taler_error(
        send(&app.router, login("alice", "wrong")).await,
        StatusCode::UNAUTHORIZED,
        40,
    )
    .await;
    assert_eq!(
        send(&app.router, login("alice", "right")).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.verifier.stats().cache_hits, 3);
    app.verifier.invalidate("alice");
    assert_eq!(
        send(&app.router, login("alice", "right")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.verifier.stats().hashes,
        3,
        "after invalidation: hashed again"
    );
}
