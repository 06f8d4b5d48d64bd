//! The customer display served over HTTP on 127.0.0.1:0, read with a real HTTP client while
//! the page moves through a withdrawal.

use cardcash_terminal::display::CancellationToken;
use cardcash_terminal::page::REFRESH_SECONDS;
use cardcash_terminal::qr;
use cardcash_terminal::{CustomerDisplay, FlowEvent, FlowObserver, Outcome, serve_display};
use reqwest::StatusCode;

use crate::helpers::TEST_LIMIT;

const URI: &str = "taler+http://withdraw/127.0.0.1:8082/taler-integration/W0P1DW0P1DW0P1D";

#[tokio::test]
async fn serves_the_page_and_the_qr_code_until_shutdown() {
    let display = CustomerDisplay::new("Kiosk");
    let shutdown = CancellationToken::new();
    let (addr, server) = serve_display(
        display.clone(),
        "127.0.0.1:0".parse().unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_ne!(addr.port(), 0);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{addr}{path}")).send();

    // Before the withdrawal exists: a starting page, no QR code.
    let response = get("/").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("Starting…"));
    assert_eq!(
        get("/qr.svg").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let mut observer = display.observer();
    observer.on_event(&FlowEvent::WithdrawalCreated {
        wopid: "W0P1DW0P1DW0P1D".into(),
        amount: "CHF:20".parse().unwrap(),
        taler_withdraw_uri: URI.into(),
    });
    observer.on_event(&FlowEvent::WaitingForWallet {
        wopid: "W0P1DW0P1DW0P1D".into(),
    });
    let html = get("/").await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!(
        "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">"
    )));
    assert!(
        html.contains(&qr::render_svg_inline(URI).unwrap()),
        "inline QR code"
    );
    assert!(html.contains("CHF 20.00"));
    let response = get("/qr.svg").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.text().await.unwrap(), qr::render_svg(URI).unwrap());

    observer.on_event(&FlowEvent::Outcome {
        outcome: Outcome::Confirmed,
    });
    let html = get("/").await.unwrap().text().await.unwrap();
    assert!(!html.contains("http-equiv=\"refresh\""), "done pages stay");
    assert!(html.contains("Done: your wallet now withdraws the e-cash."));
    // Anything else is not found, and writes are not allowed.
    assert_eq!(get("/admin").await.unwrap().status(), StatusCode::NOT_FOUND);
    let post = http.post(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    shutdown.cancel();
    tokio::time::timeout(TEST_LIMIT, server)
        .await
        .expect("server stops after shutdown")
        .unwrap()
        .unwrap();
    assert!(get("/").await.is_err(), "nothing listens after shutdown");
}
