//! The one error type against real answers: Taler error bodies, oversize bodies, nobody
//! listening, nobody answering.

use std::time::Duration;

use cardcash_client::{
    Auth, C2ecTerminalClient, CardprocClient, ClientOptions, Endpoint, ErrorKind, HttpClient,
};
use cardcash_util::{BaseUrl, ErrorCode, Wopid};

use crate::helpers::{Bank, CURRENCY, SPACE, TERMINAL_SECRET, TERMINAL_USER, World, closed_port};

#[tokio::test]
async fn a_taler_error_from_c2ec_keeps_its_code_and_names_service_and_url() {
    let world = World::start().await;
    let wopid = Wopid::from_bytes([7; 32]).to_string();
    let err = world
        .terminal()
        .status(&wopid, None, Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::BankTransactionNotFound));
    assert!(err.hint().is_some_and(|h| !h.is_empty()), "{err:?}");
    assert!(!err.is_retryable());
    let url = format!("{}terminal/withdrawals/{wopid}", world.c2ec().base_url());
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "C2EC at {url} answered 404 Not Found: BANK_TRANSACTION_NOT_FOUND ({})",
            ErrorCode::BankTransactionNotFound.code()
        )),
        "{shown}"
    );
    assert_eq!(err.url(), url);
    world.shutdown().await;
}

#[tokio::test]
async fn a_taler_error_from_the_bank_and_a_refused_credential() {
    let bank = Bank::start().await;
    let err = bank.admin().account("nobody").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.error_code(), Some(ErrorCode::BankUnknownAccount));
    assert!(
        err.to_string().contains("the bank at ")
            && err.to_string().contains("BANK_UNKNOWN_ACCOUNT"),
        "{err}"
    );
    let stranger = bank.admin().with_auth(Auth::bearer("secret-token:wrong"));
    let err = stranger.accounts().await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericUnauthorized));
    bank.shutdown().await;
}

#[tokio::test]
async fn wrong_terminal_credentials_are_a_401_with_the_taler_code() {
    let world = World::start().await;
    let intruder = C2ecTerminalClient::new(
        world.terminal().base_url().clone(),
        world.terminal_user.clone(),
        "not-the-secret",
    )
    .unwrap();
    let err = intruder.config().await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::GenericUnauthorized));
    assert!(!err.is_retryable());
    world.shutdown().await;
}

#[tokio::test]
async fn a_response_above_the_limit_is_refused_and_one_at_the_limit_is_read() {
    let world = World::start().await;
    let base = world.cardproc().base_url().clone();
    let probe = Endpoint::new(
        HttpClient::new().unwrap(),
        "the card processor",
        base.clone(),
        Auth::None,
    );
    let size = probe.get(&["config"]).send().await.unwrap().body().len();
    assert!(size > 10, "a real /config body");

    let limited = |limit: usize| {
        let http = HttpClient::with_options(ClientOptions {
            max_response_bytes: limit,
            ..ClientOptions::default()
        })
        .unwrap();
        let key = cardcash_api::cardproc::mac::MacKey::from_base64(TERMINAL_SECRET).unwrap();
        CardprocClient::with_http(http, base.clone(), TERMINAL_USER, key, SPACE)
    };
    let config = limited(size).config().await.unwrap();
    assert_eq!(config.currencies, vec![CURRENCY.parse().unwrap()]);

    let err = limited(size - 1).config().await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::ResponseTooLarge { limit: size - 1 },
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "the card processor at {base}config sent a response larger than the limit of {} bytes",
            size - 1
        )
    );
    world.shutdown().await;
}

#[tokio::test]
async fn nobody_listening_says_so_and_what_to_check() {
    let port = closed_port();
    let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}/terminal/")).unwrap();
    let client = C2ecTerminalClient::new(base, "T-1", "secret").unwrap();
    let err = client.config().await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Unreachable("connection refused".into()),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach C2EC at http://127.0.0.1:{port}/terminal/config: connection refused \
             (is it running, and is the URL right?)"
        )
    );
    // The transport error stays reachable for logs.
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let http = HttpClient::with_options(ClientOptions {
        timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    })
    .unwrap();
    let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let client = cardcash_client::BankClient::with_http(http, base, Auth::None);
    let err = client.config().await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Timeout(Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!("the bank at http://127.0.0.1:{port}/config did not answer within 0.3 s")
    );
    silent.abort();
}
