//! A [`FlowObserver`] that prints the flow for a person at a text terminal: one line per
//! step, the QR code when the withdrawal exists, the receipt at the end. What
//! `cardcash terminal withdraw` shows.

use std::io::Write;

use crate::flow::{FlowEvent, FlowObserver};
use crate::qr::{self, TerminalStyle};

/// Prints flow events to a writer (usually stdout).
#[derive(Debug)]
pub struct ConsoleObserver<W: Write> {
    out: W,
    style: TerminalStyle,
}

impl ConsoleObserver<std::io::Stdout> {
    /// Prints to standard output with QR codes in `style`.
    pub fn stdout(style: TerminalStyle) -> Self {
        Self::new(std::io::stdout(), style)
    }
}

impl<W: Write> ConsoleObserver<W> {
    /// Prints to `out` with QR codes in `style`.
    pub fn new(out: W, style: TerminalStyle) -> Self {
        Self { out, style }
    }

    /// The writer back (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn print(&mut self, event: &FlowEvent) -> std::io::Result<()> {
        match event {
            FlowEvent::Receipt { receipt } => write!(self.out, "\n{receipt}")?,
            FlowEvent::WithdrawalCreated {
                taler_withdraw_uri, ..
            } => {
                writeln!(self.out, "» {event}")?;
                match qr::render_terminal(taler_withdraw_uri, self.style) {
                    Ok(code) => writeln!(self.out, "\n{code}\n")?,
                    Err(e) => writeln!(self.out, "(no QR code: {e})")?,
                }
            }
            other => writeln!(self.out, "» {other}")?,
        }
        self.out.flush()
    }
}

impl<W: Write> FlowObserver for ConsoleObserver<W> {
    fn on_event(&mut self, event: &FlowEvent) {
        // A closed stdout (a pipe into `head`) must not stop the withdrawal.
        if let Err(e) = self.print(event) {
            tracing::debug!(error = %e, "cannot print flow progress");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_steps_and_the_qr_code() {
        let mut console = ConsoleObserver::new(Vec::new(), TerminalStyle::LightBackground);
        console.on_event(&FlowEvent::WithdrawalCreated {
            wopid: "W1".into(),
            amount: "CHF:20".parse().unwrap(),
            taler_withdraw_uri: "taler://withdraw/c2ec.example/taler-integration/W1".into(),
        });
        console.on_event(&FlowEvent::CheckSent {
            provider_transaction_id: "42".into(),
        });
        let text = String::from_utf8(console.into_inner()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "» withdrawal W1 of CHF:20 created: taler://withdraw/c2ec.example/taler-integration/W1"
            )
        );
        assert!(text.contains('\u{2588}'), "QR code missing");
        assert!(text.ends_with("» reported card payment 42 to C2EC, waiting for its verdict…\n"));
    }
}
