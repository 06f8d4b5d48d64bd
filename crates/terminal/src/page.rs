//! A tiny self-contained status page for a customer-facing screen: the QR code (inline SVG),
//! the amount, the short WOPID and the current step, refreshed by the browser every few
//! seconds until the withdrawal ends, then the receipt.
//!
//! The page is static HTML rendered on the terminal's side from the flow's events
//! ([`StatusPage`] is a [`FlowObserver`]); the browser never talks to C2EC, so the terminal's
//! credentials stay out of it. No JavaScript, no external resources; every dynamic value is
//! HTML-escaped. The binary (or C2EC) serves [`StatusPage::html`] however it likes.

use cardcash_util::Amount;

use crate::flow::{FlowEvent, FlowObserver};
use crate::qr;
use crate::receipt::{Outcome, money, short_wopid};

/// Seconds between browser reloads while the withdrawal runs.
pub const REFRESH_SECONDS: u32 = 2;

/// What the page shows; updated from flow events.
#[derive(Debug, Clone, Default)]
pub struct StatusPage {
    title: String,
    amount: Option<Amount>,
    wopid: Option<String>,
    taler_withdraw_uri: Option<String>,
    step: String,
    done: bool,
    confirmed: bool,
    receipt: Option<String>,
}

impl StatusPage {
    /// An empty page ("starting…") titled `title` (e.g. the shop's name).
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            step: "Starting…".to_owned(),
            ..Self::default()
        }
    }

    /// Whether the withdrawal ended (the page stops refreshing).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The complete HTML document.
    pub fn html(&self) -> String {
        let mut body = String::new();
        body.push_str(&format!("<h1>{}</h1>\n", escape(&self.title)));
        if let Some(amount) = &self.amount {
            body.push_str(&format!(
                "<p class=\"amount\">{}</p>\n",
                escape(&money(amount))
            ));
        }
        let class = match (self.done, self.confirmed) {
            (false, _) => "step",
            (true, true) => "step ok",
            (true, false) => "step failed",
        };
        body.push_str(&format!(
            "<p class=\"{class}\" id=\"step\">{}</p>\n",
            escape(&self.step)
        ));
        match (&self.taler_withdraw_uri, &self.receipt) {
            (_, Some(receipt)) => {
                body.push_str(&format!(
                    "<pre class=\"receipt\">{}</pre>\n",
                    escape(receipt)
                ));
            }
            (Some(uri), None) => {
                // Rendering fails only for content far longer than any withdraw URI.
                let svg = qr::render_svg_inline(uri).unwrap_or_default();
                body.push_str(&format!(
                    "<div class=\"qr\">{svg}</div>\n<p><a href=\"{}\">Open in Taler wallet</a></p>\n",
                    escape(uri)
                ));
            }
            (None, None) => {}
        }
        if let Some(wopid) = &self.wopid {
            body.push_str(&format!(
                "<p class=\"wopid\">Withdrawal {}</p>\n",
                escape(&short_wopid(wopid))
            ));
        }
        let refresh = if self.done {
            String::new()
        } else {
            format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n")
        };
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             {refresh}<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
            title = escape(&self.title),
        )
    }
}

impl FlowObserver for StatusPage {
    fn on_event(&mut self, event: &FlowEvent) {
        match event {
            FlowEvent::Configured { .. } => self.step = "Setting up the withdrawal…".into(),
            FlowEvent::WithdrawalCreated {
                wopid,
                amount,
                taler_withdraw_uri,
            } => {
                self.amount = Some(*amount);
                self.wopid = Some(wopid.clone());
                self.taler_withdraw_uri = Some(taler_withdraw_uri.clone());
            }
            FlowEvent::WaitingForWallet { .. } => {
                self.step = "Scan the QR code with your Taler wallet".into();
            }
            FlowEvent::WalletRegistered { amount, .. } => {
                self.amount = Some(*amount);
                self.step = "Wallet connected. Please present your card.".into();
            }
            FlowEvent::CardPayment { state, .. } => {
                self.step = format!("Card payment: {state}");
            }
            FlowEvent::CheckSent { .. } => self.step = "Verifying the payment…".into(),
            FlowEvent::Outcome { outcome } => {
                self.confirmed = outcome.is_confirmed();
                self.step = match outcome {
                    Outcome::Confirmed => "Done: your wallet now withdraws the e-cash.".into(),
                    Outcome::Aborted(reason) => {
                        format!("Aborted: {reason}. {}", reason.money_note())
                    }
                    Outcome::Pending => "The payment is still being verified.".into(),
                };
                // The terminal stops here even when C2EC has not decided yet ("pending").
                self.done = true;
            }
            FlowEvent::Receipt { receipt } => {
                self.amount = Some(receipt.amount);
                self.receipt = Some(receipt.to_string());
            }
        }
    }
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
text-align:center;color:#111;background:#fff}.amount{font-size:2.5rem;font-weight:bold;margin:0}\
.step{font-size:1.3rem}.ok{color:#0a6b2d}.failed{color:#a31515}.qr svg{width:18rem;height:auto}\
.wopid{color:#666;font-family:monospace}.receipt{text-align:left;display:inline-block;\
border:1px dashed #999;padding:1rem}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{AbortReason, Receipt};
    use cardcash_util::Timestamp;

    const URI: &str = "taler+http://withdraw/127.0.0.1:8082/taler-integration/W0P1DW0P1DW0P1D";

    fn created() -> StatusPage {
        let mut page = StatusPage::new("Kiosk <1>");
        page.on_event(&FlowEvent::WithdrawalCreated {
            wopid: "W0P1DW0P1DW0P1D".into(),
            amount: "CHF:20".parse().unwrap(),
            taler_withdraw_uri: URI.into(),
        });
        page.on_event(&FlowEvent::WaitingForWallet {
            wopid: "W0P1DW0P1DW0P1D".into(),
        });
        page
    }

    #[test]
    fn running_page_refreshes_and_shows_the_qr_code() {
        let html = created().html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"2\">"));
        assert!(html.contains("<svg "), "inline QR missing");
        assert!(!html.contains("<?xml"));
        assert!(html.contains(&format!("href=\"{URI}\"")));
        assert!(html.contains("Scan the QR code"));
        assert!(html.contains("Withdrawal W0P1DW…0P1D"), "{html}");
        assert!(html.contains("<p class=\"amount\">CHF 20.00</p>"));
        // The title is escaped, never interpreted.
        assert!(html.contains("<h1>Kiosk &lt;1&gt;</h1>"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn finished_page_stops_refreshing_and_shows_the_receipt() {
        let mut page = created();
        let outcome = Outcome::Aborted(AbortReason::CardDeclined {
            state: "DECLINE".into(),
            reason: None,
        });
        page.on_event(&FlowEvent::Outcome {
            outcome: outcome.clone(),
        });
        page.on_event(&FlowEvent::Receipt {
            receipt: Box::new(Receipt {
                time: Timestamp::from_secs(0),
                terminal_id: "T-1".into(),
                provider_name: "<p>".into(),
                amount: "CHF:20".parse().unwrap(),
                exchange_fees: "CHF:0".parse().unwrap(),
                card_fees: None,
                charged: None,
                wopid: "W0P1DW0P1DW0P1D".into(),
                card_masked: None,
                provider_transaction_id: None,
                reserve_pub: None,
                outcome,
            }),
        });
        assert!(page.is_done());
        let html = page.html();
        assert!(!html.contains("http-equiv=\"refresh\""));
        assert!(html.contains("class=\"step failed\""));
        assert!(html.contains("Your card was not charged."));
        assert!(html.contains("<pre class=\"receipt\">"));
        assert!(html.contains("Provider      &lt;p&gt;"), "{html}");
        assert!(html.contains("CHF 20.00"));
        assert!(!html.contains("<svg "), "the QR code is gone once it ended");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
