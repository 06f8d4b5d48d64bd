//! The customer display served over HTTP on 127.0.0.1:0, read with a real HTTP client while
//! the page moves through a withdrawal: first fed by hand, then by a real flow whose "wallet"
//! takes the withdraw URI off the served page, as a customer's phone would.

use cardcash_terminal::FlowOptions;
use cardcash_terminal::display::CancellationToken;
use cardcash_terminal::page::REFRESH_SECONDS;
use cardcash_terminal::qr;
use cardcash_terminal::{CustomerDisplay, FlowEvent, FlowObserver, Outcome, serve_display};
use reqwest::StatusCode;
use tokio::sync::mpsc;

use crate::helpers::{Env, TEST_LIMIT};

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

/// The `href` of the page's "Open in Taler wallet" link.
fn withdraw_link(html: &str) -> Option<&str> {
    let start = html.find("href=\"")? + "href=\"".len();
    let len = html.get(start..)?.find('"')?;
    html.get(start..start + len)
}

#[tokio::test]
async fn a_real_withdrawal_drives_the_served_page() {
    let env = Env::start().await;
    let display = CustomerDisplay::new("Kiosk");
    let shutdown = CancellationToken::new();
    let (addr, server) = serve_display(
        display.clone(),
        "127.0.0.1:0".parse().unwrap(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let page = || async {
        reqwest::get(format!("http://{addr}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // The display sees every event before the channel does, as in the CLI's (console, display).
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flow = env.flow.clone();
    let options = FlowOptions::new("CHF:20".parse().unwrap());
    let task = tokio::spawn(async move {
        let mut observer = (display.observer(), tx);
        flow.run(&options, &mut observer).await
    });
    let wallet = async {
        while let Some(event) = rx.recv().await {
            if let FlowEvent::WithdrawalCreated {
                wopid,
                taler_withdraw_uri,
                ..
            } = event
            {
                let html = page().await;
                assert!(html.contains("http-equiv=\"refresh\""));
                assert!(html.contains(&qr::render_svg_inline(&taler_withdraw_uri).unwrap()));
                let scanned = withdraw_link(&html).expect("withdraw link on the page");
                assert_eq!(scanned, taler_withdraw_uri);
                let scanned_wopid = scanned.rsplit('/').next().unwrap();
                assert_eq!(scanned_wopid, wopid);
                env.register(scanned_wopid, None).await;
            }
        }
    };
    tokio::time::timeout(TEST_LIMIT, wallet)
        .await
        .expect("flow did not finish in time");
    let report = task.await.unwrap().unwrap();
    assert_eq!(report.outcome, Outcome::Confirmed);

    let html = page().await;
    assert!(!html.contains("http-equiv=\"refresh\""));
    assert!(html.contains("Done: your wallet now withdraws the e-cash."));
    assert!(html.contains("<pre class=\"receipt\">"));
    assert!(html.contains("Result        CONFIRMED"), "{html}");
    assert!(!html.contains("<svg "), "no QR code once it is over");
    shutdown.cancel();
    tokio::time::timeout(TEST_LIMIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    env.stop().await;
}
