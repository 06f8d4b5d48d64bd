//! A self-contained status page for a customer-facing screen: the amount, the QR code (inline
//! SVG, large enough for a phone to scan off a screen), the steps of the withdrawal with the
//! current one marked, refreshed by the browser every [`REFRESH_SECONDS`] until the withdrawal
//! ends, then the outcome and the receipt.
//!
//! The page is static HTML rendered on the terminal's side from the flow's events
//! ([`StatusPage`] is a [`FlowObserver`]); the browser never talks to C2EC, so the terminal's
//! credentials stay out of it. No JavaScript, no external resources; every dynamic value is
//! HTML-escaped. [`crate::display`] serves it over HTTP while a withdrawal runs.

use cardcash_api::cardproc::TransactionState;
use cardcash_util::Amount;

use crate::flow::{FlowEvent, FlowObserver};
use crate::qr;
use crate::receipt::{Outcome, money, short_wopid};

/// Seconds between browser reloads while the withdrawal runs.
pub const REFRESH_SECONDS: u32 = 2;

/// Where the withdrawal is, as the customer sees it; ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Stage {
    /// Before the withdrawal exists at C2EC.
    #[default]
    Starting,
    /// The QR code is shown; waiting for a wallet.
    Scan,
    /// A wallet registered; the card is being charged.
    Card,
    /// The payment was reported to C2EC, which verifies it.
    Verify,
    /// The withdrawal ended.
    Finished,
}

/// The steps the page lists: the stage in which each is the current one, and its label.
const STEPS: [(Stage, &str); 4] = [
    (Stage::Scan, "Scan the QR code with your Taler wallet"),
    (Stage::Card, "Pay by card"),
    (Stage::Verify, "Payment verified"),
    (Stage::Finished, "E-cash on its way to your wallet"),
];

/// What the page shows; updated from flow events.
#[derive(Debug, Clone, Default)]
pub struct StatusPage {
    title: String,
    amount: Option<Amount>,
    wopid: Option<String>,
    taler_withdraw_uri: Option<String>,
    step: String,
    stage: Stage,
    /// The stage that failed, when the withdrawal was aborted or the terminal gave up.
    failed_at: Option<Stage>,
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

    /// The `taler://withdraw/…` URI once the withdrawal exists.
    pub fn taler_withdraw_uri(&self) -> Option<&str> {
        self.taler_withdraw_uri.as_deref()
    }

    /// The QR code of the withdraw URI as a standalone SVG document, once the withdrawal exists.
    pub fn qr_svg(&self) -> Option<String> {
        // Rendering fails only for content far longer than any withdraw URI.
        self.taler_withdraw_uri
            .as_deref()
            .and_then(|uri| qr::render_svg(uri).ok())
    }

    /// Ends the page without an outcome from the flow (the terminal failed or was stopped):
    /// shows `message`, marks the current step as failed and stops refreshing. Ignored once
    /// the withdrawal has an outcome.
    pub fn interrupt(&mut self, message: impl Into<String>) {
        if self.done {
            return;
        }
        self.failed_at = Some(self.stage.max(Stage::Scan));
        self.step = message.into();
        self.done = true;
        self.confirmed = false;
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
            "<p class=\"{class}\" id=\"step\" role=\"status\">{}</p>\n",
            escape(&self.step)
        ));
        // The code is only useful until a wallet registered; afterwards it would invite a
        // second customer to scan a withdrawal that is already taken.
        if let (Some(uri), Stage::Starting | Stage::Scan, false) =
            (&self.taler_withdraw_uri, self.stage, self.done)
            && let Ok(svg) = qr::render_svg_inline(uri)
        {
            body.push_str(&format!(
                "<div class=\"qr\" aria-label=\"QR code of the withdrawal\">{svg}</div>\n\
                 <p class=\"open\"><a href=\"{}\">Open in Taler wallet</a></p>\n",
                escape(uri)
            ));
        }
        body.push_str(&self.steps_html());
        if let Some(receipt) = &self.receipt {
            body.push_str(&format!(
                "<pre class=\"receipt\">{}</pre>\n",
                escape(receipt)
            ));
        }
        // The receipt names the withdrawal itself.
        if let (Some(wopid), None) = (&self.wopid, &self.receipt) {
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
             {refresh}<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <main>\n{body}</main>\n</body>\n</html>\n",
            title = escape(&self.title),
        )
    }

    /// The step list: done steps ticked, the current one highlighted, a failed one crossed.
    fn steps_html(&self) -> String {
        let mut list = String::from("<ol class=\"steps\">\n");
        for (number, (stage, label)) in STEPS.iter().enumerate() {
            let (class, mark) = if self.failed_at == Some(*stage) {
                ("failed", "\u{2715}".to_owned())
            } else if *stage < self.stage
                || (*stage == Stage::Finished && self.done && self.confirmed)
            {
                ("done", "\u{2713}".to_owned())
            } else if *stage == self.stage && self.failed_at.is_none() {
                ("current", (number + 1).to_string())
            } else {
                ("pending", (number + 1).to_string())
            };
            let current = if class == "current" {
                " aria-current=\"step\""
            } else {
                ""
            };
            list.push_str(&format!(
                "<li class=\"{class}\"{current}><span class=\"mark\">{mark}</span>{label}</li>\n"
            ));
        }
        list.push_str("</ol>\n");
        list
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
                self.stage = Stage::Scan;
            }
            FlowEvent::WaitingForWallet { .. } => {
                self.step = "Scan the QR code with your Taler wallet".into();
                self.stage = Stage::Scan;
            }
            FlowEvent::WalletRegistered { amount, .. } => {
                self.amount = Some(*amount);
                self.step = "Wallet connected. Please present your card.".into();
                self.stage = Stage::Card;
            }
            FlowEvent::CardPayment { state, .. } => {
                self.step = card_step(*state).into();
                self.stage = Stage::Card;
            }
            FlowEvent::CheckSent { .. } => {
                self.step = "Verifying the payment…".into();
                self.stage = Stage::Verify;
            }
            FlowEvent::Outcome { outcome } => {
                self.confirmed = outcome.is_confirmed();
                self.step = match outcome {
                    Outcome::Confirmed => "Done: your wallet now withdraws the e-cash.".into(),
                    Outcome::Aborted(reason) => {
                        format!("Aborted: {reason}. {}", reason.money_note())
                    }
                    Outcome::Pending => "The payment is still being verified.".into(),
                };
                match outcome {
                    Outcome::Confirmed => self.stage = Stage::Finished,
                    Outcome::Aborted(_) => self.failed_at = Some(self.stage.max(Stage::Scan)),
                    // Verification continues at C2EC; the verify step stays the current one.
                    Outcome::Pending => {}
                }
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

/// What the customer reads while the card processor works (its state names are jargon).
fn card_step(state: TransactionState) -> &'static str {
    match state {
        TransactionState::Create | TransactionState::Pending | TransactionState::Confirmed => {
            "Please present your card."
        }
        TransactionState::Processing => "Processing the card payment…",
        TransactionState::Authorized | TransactionState::Completed | TransactionState::Fulfill => {
            "Card payment approved."
        }
        TransactionState::Decline => "The card was declined.",
        TransactionState::Failed | TransactionState::Voided => "The card payment failed.",
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

/// The page's only style sheet. The QR code sits on white with its own quiet zone and is at
/// least 300 CSS pixels wide on any screen wider than that, so a phone reads it off a display.
const STYLE: &str = "\
*{box-sizing:border-box}\
html{color-scheme:light}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
background:#eef1f5;color:#1d2330;\
font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\
main{background:#fff;border-radius:18px;box-shadow:0 12px 32px rgba(20,30,50,.12);\
padding:2rem 2.5rem;margin:1.5rem;width:100%;max-width:36rem;text-align:center}\
h1{font-size:.95rem;font-weight:600;letter-spacing:.08em;text-transform:uppercase;\
color:#5b6475;margin:0 0 .5rem}\
.amount{font-size:3.2rem;font-weight:700;margin:0 0 1rem;font-variant-numeric:tabular-nums}\
.step{font-size:1.2rem;margin:0 0 1.25rem;text-wrap:balance;padding:.75rem 1rem;border-radius:10px;\
background:#eaf1ff;color:#1a3f8f}\
.step.ok{background:#e4f5ea;color:#0a6b2d}\
.step.failed{background:#fdecec;color:#a31515}\
.qr{display:inline-block;background:#fff;padding:0;line-height:0;border:1px solid #dfe3ea;\
border-radius:10px;overflow:hidden}\
.qr svg{display:block;width:min(340px,80vw);height:auto}\
.open{margin:.6rem 0 0;font-size:.95rem}\
.open a{color:#1a3f8f}\
.qr+.open+.steps{margin-top:1.5rem}\
.steps{list-style:none;padding:0;margin:.25rem auto 0;display:inline-block;text-align:left}\
.steps li{display:flex;align-items:center;gap:.75rem;padding:.3rem 0;color:#8a93a3}\
.mark{flex:none;width:1.7rem;height:1.7rem;border-radius:50%;border:2px solid #c9ced8;\
display:inline-flex;align-items:center;justify-content:center;font-size:.85rem;font-weight:700}\
.steps li.done{color:#1d2330}\
.steps li.done .mark{background:#0a6b2d;border-color:#0a6b2d;color:#fff}\
.steps li.current{color:#1a3f8f;font-weight:600}\
.steps li.current .mark{background:#1a3f8f;border-color:#1a3f8f;color:#fff}\
.steps li.failed{color:#a31515;font-weight:600}\
.steps li.failed .mark{background:#a31515;border-color:#a31515;color:#fff}\
.receipt{display:inline-block;text-align:left;margin:1.5rem 0 0;padding:1rem 1.25rem;\
background:#fafbfc;border:1px dashed #b8bec9;border-radius:6px;\
font:.85rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",monospace}\
.wopid{margin:1.25rem 0 0;color:#8a93a3;font:.85rem ui-monospace,Menlo,Consolas,monospace}";

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
        assert_eq!(
            step_classes(&html),
            ["failed", "pending", "pending", "pending"]
        );
        assert!(html.contains("<pre class=\"receipt\">"));
        assert!(html.contains("Provider      &lt;p&gt;"), "{html}");
        assert!(html.contains("CHF 20.00"));
        assert!(!html.contains("<svg "), "the QR code is gone once it ended");
    }

    /// The class of each `<li>` of the step list, in order.
    fn step_classes(html: &str) -> Vec<&str> {
        html.split("<li class=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn steps_move_from_pending_to_current_to_done() {
        let mut page = StatusPage::new("Kiosk");
        assert_eq!(
            step_classes(&page.html()),
            ["pending", "pending", "pending", "pending"]
        );
        page = created();
        let html = page.html();
        assert_eq!(
            step_classes(&html),
            ["current", "pending", "pending", "pending"]
        );
        assert!(html.contains("aria-current=\"step\""));
        page.on_event(&FlowEvent::WalletRegistered {
            reserve_pub: None,
            amount: "CHF:20".parse().unwrap(),
        });
        let html = page.html();
        assert_eq!(
            step_classes(&html),
            ["done", "current", "pending", "pending"]
        );
        assert!(
            !html.contains("<svg "),
            "no QR code once a wallet registered"
        );
        assert!(html.contains("Please present your card."));
        page.on_event(&FlowEvent::CheckSent {
            provider_transaction_id: "42".into(),
        });
        assert_eq!(
            step_classes(&page.html()),
            ["done", "done", "current", "pending"]
        );
        assert!(!page.is_done());
        page.on_event(&FlowEvent::Outcome {
            outcome: Outcome::Confirmed,
        });
        let html = page.html();
        assert_eq!(step_classes(&html), ["done", "done", "done", "done"]);
        assert!(html.contains("class=\"step ok\""));
        assert!(!html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("aria-current"));
    }

    #[test]
    fn a_pending_outcome_stops_refreshing_at_the_verify_step() {
        let mut page = created();
        page.on_event(&FlowEvent::CheckSent {
            provider_transaction_id: "42".into(),
        });
        page.on_event(&FlowEvent::Outcome {
            outcome: Outcome::Pending,
        });
        let html = page.html();
        assert_eq!(step_classes(&html), ["done", "done", "current", "pending"]);
        assert!(html.contains("still being verified"));
        assert!(!html.contains("http-equiv=\"refresh\""));
    }

    #[test]
    fn interrupting_marks_the_current_step_failed_once() {
        let mut page = created();
        page.interrupt("Terminal <offline>");
        let html = page.html();
        assert_eq!(
            step_classes(&html),
            ["failed", "pending", "pending", "pending"]
        );
        assert!(html.contains("Terminal &lt;offline&gt;"));
        assert!(html.contains("class=\"step failed\""));
        assert!(!html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("<svg "));
        // An outcome already shown is never overwritten.
        let mut page = created();
        page.on_event(&FlowEvent::Outcome {
            outcome: Outcome::Confirmed,
        });
        page.interrupt("late");
        assert!(!page.html().contains("late"));
    }

    #[test]
    fn qr_document_exists_once_the_withdrawal_does() {
        assert!(StatusPage::new("Kiosk").qr_svg().is_none());
        let svg = created().qr_svg().unwrap();
        assert_eq!(svg, qr::render_svg(URI).unwrap());
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
