//! The customer display: the [`StatusPage`] of the running withdrawal served over HTTP, so a
//! screen (or a tablet facing the customer) shows the amount, the QR code and the steps while
//! the terminal works.
//!
//! [`CustomerDisplay`] is the shared state: the flow feeds it through [`CustomerDisplay::observer`]
//! (combine it with the console with a tuple observer, `(console, display.observer())`), and
//! [`serve_display`] answers `GET /` (the page, reloaded by the browser itself) and
//! `GET /qr.svg` (the code alone, e.g. for a second screen). The server only reads the state:
//! nothing a browser sends can change it, and the page carries no credentials, so binding it to
//! a shop's LAN leaks nothing but the withdrawal's QR code, which is public anyway.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

pub use tokio_util::sync::CancellationToken;

use crate::flow::{FlowEvent, FlowObserver};
use crate::page::StatusPage;

/// Headers of every answer: never cached (the page changes every step), no sniffing, and a
/// policy that forbids scripts and any resource from elsewhere.
const NO_STORE: &str = "no-store";
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'";

/// The page of the running withdrawal, shared between the flow and the HTTP server. Cheap to
/// clone; every clone shows the same page.
#[derive(Debug, Clone)]
pub struct CustomerDisplay {
    page: Arc<Mutex<StatusPage>>,
}

impl CustomerDisplay {
    /// A display showing an empty page titled `title` (e.g. the shop's name).
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            page: Arc::new(Mutex::new(StatusPage::new(title))),
        }
    }

    /// The observer that feeds this display with the flow's events.
    pub fn observer(&self) -> DisplayObserver {
        DisplayObserver {
            display: self.clone(),
        }
    }

    /// The page's HTML as it is now.
    pub fn html(&self) -> String {
        self.lock().html()
    }

    /// The QR code as an SVG document, once the withdrawal exists.
    pub fn qr_svg(&self) -> Option<String> {
        self.lock().qr_svg()
    }

    /// Whether the withdrawal ended.
    pub fn is_done(&self) -> bool {
        self.lock().is_done()
    }

    /// Ends the page with `message` when the flow stopped without an outcome (see
    /// [`StatusPage::interrupt`]).
    pub fn interrupt(&self, message: impl Into<String>) {
        self.lock().interrupt(message);
    }

    /// A copy of the page as it is now.
    pub fn snapshot(&self) -> StatusPage {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, StatusPage> {
        // A panic while holding the lock can only have happened inside `StatusPage`'s own
        // plain-data updates; the page is still worth showing.
        self.page.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feeds a [`CustomerDisplay`] with flow events (from [`CustomerDisplay::observer`]).
#[derive(Debug, Clone)]
pub struct DisplayObserver {
    display: CustomerDisplay,
}

impl FlowObserver for DisplayObserver {
    fn on_event(&mut self, event: &FlowEvent) {
        self.display.lock().on_event(event);
    }
}

/// The display's routes: `GET /` and `GET /qr.svg`.
pub fn router(display: CustomerDisplay) -> Router {
    Router::new()
        .route("/", get(get_page))
        .route("/qr.svg", get(get_qr_svg))
        .with_state(display)
}

/// Serves `display` on `bind` until `shutdown` is cancelled. Returns the bound address (the
/// real port when `bind` asked for port 0) and the server task, which ends after shutdown.
pub async fn serve_display(
    display: CustomerDisplay,
    bind: SocketAddr,
    shutdown: CancellationToken,
) -> io::Result<(SocketAddr, JoinHandle<io::Result<()>>)> {
    let server = cardcash_http::serve(router(display), bind, shutdown).await?;
    let addr = server.addr();
    Ok((addr, tokio::spawn(server.join())))
}

async fn get_page(State(display): State<CustomerDisplay>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, NO_STORE),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        display.html(),
    )
        .into_response()
}

async fn get_qr_svg(State(display): State<CustomerDisplay>) -> Response {
    match display.qr_svg() {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, NO_STORE),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            svg,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, NO_STORE)],
            "no withdrawal yet\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "taler+http://withdraw/127.0.0.1:8082/taler-integration/W0P1DW0P1DW0P1D";

    #[test]
    fn the_observer_and_every_clone_share_one_page() {
        let display = CustomerDisplay::new("Kiosk");
        let reader = display.clone();
        assert!(reader.qr_svg().is_none());
        let mut observer = display.observer();
        observer.on_event(&FlowEvent::WithdrawalCreated {
            wopid: "W0P1DW0P1DW0P1D".into(),
            amount: "CHF:20".parse().unwrap(),
            taler_withdraw_uri: URI.into(),
        });
        let svg = reader
            .qr_svg()
            .expect("QR code after the withdrawal exists");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg "));
        assert!(reader.html().contains("CHF 20.00"));
        assert_eq!(reader.snapshot().taler_withdraw_uri(), Some(URI));
        assert!(!reader.is_done());
        reader.interrupt("The terminal stopped.");
        assert!(display.is_done());
        assert!(display.html().contains("The terminal stopped."));
    }

    #[test]
    fn a_tuple_observer_feeds_both() {
        let mut seen = Vec::new();
        let display = CustomerDisplay::new("Kiosk");
        {
            let mut both = (|e: &FlowEvent| seen.push(e.to_string()), display.observer());
            both.on_event(&FlowEvent::CheckSent {
                provider_transaction_id: "42".into(),
            });
        }
        assert_eq!(seen.len(), 1);
        assert!(display.html().contains("Verifying the payment"));
    }
}
