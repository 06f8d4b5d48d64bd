//! `cardcash terminal withdraw`: one card-funded withdrawal played by a shop terminal, with the
//! QR code in the text terminal and a receipt at the end. Reads the `[terminal]` section.
//! With `--display ADDR` the terminal also serves a customer-facing web page (QR code, amount,
//! steps, receipt) on ADDR while the withdrawal runs.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use cardcash_client::{C2ecTerminalClient, CardprocClient, SetupAmount};
use cardcash_terminal::display::CancellationToken;
use cardcash_terminal::qr::TerminalStyle;
use cardcash_terminal::receipt::AbortReason;
use cardcash_terminal::{
    CardData, ConsoleObserver, CustomerDisplay, FlowOptions, FlowReport, Outcome, TerminalFlow,
    serve_display,
};
use cardcash_util::{Amount, BaseUrl, TalerConfig};
use clap::{Args, Subcommand};

use crate::config_file::ConfigSource;

/// The `[terminal]` section: where C2EC and the card processor are, and this terminal's
/// credentials at both.
pub const SECTION: &str = "terminal";

/// The customer display's heading.
const DISPLAY_TITLE: &str = "Taler e-cash by card";

/// How long the customer display stays up after the outcome, so the customer can read it.
const DISPLAY_LINGER: Duration = Duration::from_secs(5);

#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// Sell e-cash for a card payment.
    ///
    /// Sets up the withdrawal at C2EC, shows the QR code, waits for a wallet, charges the card
    /// at the card processor, reports it to C2EC and prints the receipt.
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The amount of e-cash, e.g. CHF:20.
    #[arg(long)]
    pub amount: Amount,
    /// Let the wallet choose the amount, suggesting --amount.
    #[arg(long)]
    pub suggested: bool,
    /// The card number (test cards: 4000000000000002 approves, 4000000000000010 declines).
    #[arg(long, default_value = cardcash_terminal::flow::APPROVE_TEST_CARD)]
    pub card: String,
    /// How long to wait for a wallet to scan the QR code.
    #[arg(long, default_value = "120")]
    pub wallet_timeout_secs: u64,
    /// Print the QR code without colour escapes, for a dark-on-light terminal.
    #[arg(long)]
    pub plain: bool,
    /// Serve a customer-facing web page (QR code, amount, steps, receipt) on this address,
    /// e.g. 127.0.0.1:8090.
    #[arg(long, value_name = "ADDR")]
    pub display: Option<SocketAddr>,
    /// Keep the customer display up after the outcome until Ctrl-C (instead of a few seconds).
    #[arg(long, requires = "display")]
    pub display_hold: bool,
}

/// The terminal's view of its services, from `[terminal]`.
pub struct TerminalSettings {
    pub c2ec_terminal_url: BaseUrl,
    pub terminal_user: String,
    pub terminal_secret: String,
    pub cardproc_url: BaseUrl,
    pub cardproc_user_id: u64,
    pub cardproc_secret: String,
    pub cardproc_space_id: u64,
}

impl TerminalSettings {
    pub fn from_taler_config(cfg: &TalerConfig) -> anyhow::Result<Self> {
        Ok(Self {
            c2ec_terminal_url: cfg.base_url(SECTION, "C2EC_TERMINAL_URL")?,
            terminal_user: cfg.string(SECTION, "TERMINAL_USER")?,
            terminal_secret: cfg.string(SECTION, "TERMINAL_SECRET")?,
            cardproc_url: cfg.base_url(SECTION, "CARDPROC_URL")?,
            cardproc_user_id: cfg.number(SECTION, "CARDPROC_USER_ID")?,
            cardproc_secret: cfg.string(SECTION, "CARDPROC_SECRET")?,
            cardproc_space_id: cfg.number(SECTION, "CARDPROC_SPACE_ID")?,
        })
    }

    pub fn flow(&self) -> anyhow::Result<TerminalFlow> {
        let c2ec = C2ecTerminalClient::new(
            self.c2ec_terminal_url.clone(),
            self.terminal_user.clone(),
            self.terminal_secret.clone(),
        )
        .context("C2EC terminal client")?;
        let cardproc = CardprocClient::new(
            self.cardproc_url.as_str(),
            self.cardproc_user_id,
            &self.cardproc_secret,
            self.cardproc_space_id,
        )
        .context("card processor client")?;
        Ok(TerminalFlow::new(c2ec, cardproc))
    }
}

pub async fn run(cmd: TerminalCommand, source: &ConfigSource) -> anyhow::Result<()> {
    let TerminalCommand::Withdraw(args) = cmd;
    let settings = TerminalSettings::from_taler_config(&source.load()?)?;
    let flow = settings.flow()?;
    let mut options = FlowOptions::new(args.amount);
    if args.suggested {
        options.amount = SetupAmount::Suggested(args.amount);
    }
    options.card = CardData::test_card(&args.card);
    options.wallet_timeout = Duration::from_secs(args.wallet_timeout_secs);
    let style = if args.plain {
        TerminalStyle::LightBackground
    } else {
        TerminalStyle::Ansi
    };
    let console = ConsoleObserver::stdout(style);
    let report = match args.display {
        None => flow.run(&options, &mut { console }).await?,
        Some(bind) => run_with_display(&flow, &options, console, bind, args.display_hold).await?,
    };
    match outcome_problem(&report.outcome, &report.wopid) {
        None => Ok(()),
        Some(problem) => anyhow::bail!("{problem}"),
    }
}

/// One sentence for a withdrawal that did not succeed: what happened and what to try; `None`
/// when it was confirmed. Shared by `terminal withdraw` and `demo`, so a decline reads the same.
pub fn outcome_problem(outcome: &Outcome, wopid: &str) -> Option<String> {
    let text = match outcome {
        Outcome::Confirmed => return None,
        Outcome::Aborted(AbortReason::CardDeclined { state, reason }) => {
            let why = match reason {
                Some(reason) => format!("{state}, {reason}"),
                None => state.clone(),
            };
            format!(
                "The card was declined (card processor: {why}), so the withdrawal was aborted and \
                 nothing was charged; try another card, e.g. the approving test card --card {}.",
                cardcash_terminal::flow::APPROVE_TEST_CARD
            )
        }
        Outcome::Aborted(AbortReason::PaymentNotConfirmed) => "C2EC could not verify the card \
             payment with the card processor and aborted the withdrawal; any amount charged is \
             refunded to the card. Check the processor with `cardcash c2ec provider check`, then \
             try again."
            .to_owned(),
        Outcome::Aborted(AbortReason::NoWallet) => "No wallet registered in time, so the \
             terminal aborted the withdrawal and nothing was charged; scan the QR code sooner or \
             allow more time with --wallet-timeout-secs."
            .to_owned(),
        Outcome::Aborted(AbortReason::AbortedElsewhere) => "The wallet or C2EC aborted the \
             withdrawal before the card payment (for example, its registration window ran out), \
             so nothing was charged; start a new withdrawal."
            .to_owned(),
        Outcome::Aborted(AbortReason::TerminalError(e)) => format!(
            "The terminal aborted the withdrawal because a step failed ({e}); if the card was \
             charged, it is refunded. Check that C2EC and the card processor run, then try again."
        ),
        Outcome::Pending => format!(
            "The card payment was reported, but C2EC had not decided on withdrawal {wopid} when \
             the terminal stopped waiting; it may still be confirmed (or refunded). Look it up \
             with GET terminal/withdrawals/{wopid} at C2EC."
        ),
    };
    Some(text)
}

/// Runs the flow while serving the customer display on `bind`; keeps the page up for
/// [`DISPLAY_LINGER`] after the outcome (or until Ctrl-C with `hold`), then stops the server.
async fn run_with_display(
    flow: &TerminalFlow,
    options: &FlowOptions,
    console: ConsoleObserver<std::io::Stdout>,
    bind: SocketAddr,
    hold: bool,
) -> anyhow::Result<FlowReport> {
    let display = CustomerDisplay::new(DISPLAY_TITLE);
    let shutdown = CancellationToken::new();
    let (addr, server) = serve_display(display.clone(), bind, shutdown.clone())
        .await
        .with_context(|| format!("customer display on {bind}"))?;
    println!("Customer display: http://{addr}/");
    let result = flow.run(options, &mut (console, display.observer())).await;
    if result.is_err() {
        // The details are on the console; the customer only learns to ask for help.
        display.interrupt("The terminal could not finish the withdrawal. Please ask for help.");
    }
    if hold {
        println!("Customer display stays up at http://{addr}/ until Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
    } else {
        tokio::select! {
            () = tokio::time::sleep(DISPLAY_LINGER) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    shutdown.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "customer display server failed"),
        Err(e) => tracing::warn!(error = %e, "customer display server task failed"),
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_is_one_human_sentence() {
        let outcome = Outcome::Aborted(AbortReason::CardDeclined {
            state: "DECLINE".into(),
            reason: Some("DECLINED".into()),
        });
        let text = outcome_problem(&outcome, "W").expect("not confirmed");
        assert!(text.starts_with("The card was declined"), "{text}");
        assert!(text.contains("--card 4000000000000002"), "{text}");
        assert!(
            !text.contains("CardDeclined") && !text.contains("Some("),
            "{text}"
        );
        assert_eq!(outcome_problem(&Outcome::Confirmed, "W"), None);
    }

    #[test]
    fn every_outcome_reads_without_debug_text() {
        for outcome in [
            Outcome::Pending,
            Outcome::Aborted(AbortReason::PaymentNotConfirmed),
            Outcome::Aborted(AbortReason::NoWallet),
            Outcome::Aborted(AbortReason::AbortedElsewhere),
            Outcome::Aborted(AbortReason::TerminalError(
                "card processor unreachable".into(),
            )),
            Outcome::Aborted(AbortReason::CardDeclined {
                state: "FAILED".into(),
                reason: None,
            }),
        ] {
            let text = outcome_problem(&outcome, "W").expect("not confirmed");
            assert!(
                !text.contains('{') && !text.contains("Aborted(") && text.ends_with('.'),
                "{text}"
            );
        }
    }
}
