//! The terminal's side of a card-funded withdrawal, end to end: the "Terminal" lifeline of the
//! C2EC sequence diagram (seed `c2ec.plantuml`) and the terminal app flow of spec/c2ec.md §1.2.
//!
//! 1. load C2EC's `/config` (provider, currency, exchange fees) — "show summary with fees";
//! 2. (0) set up the withdrawal → WOPID and `taler://withdraw` URI for the QR code;
//! 3. long-poll the status until a wallet registered its reserve (3) "end long polling";
//! 4. (5)/(6) run the card payment at the card processor: create a transaction whose merchant
//!    reference is the WOPID (so C2EC can bind payment and withdrawal), then present the card;
//! 5. (7) send the check (confirmation request) with the processor's transaction id, or, when
//!    the authorization failed, abort the withdrawal ("authorization not successful");
//! 6. long-poll until C2EC confirmed (9a) or aborted (9b) the withdrawal, then print a receipt.
//!
//! Progress is reported to a [`FlowObserver`] so that the CLI can print it and `cardcash demo`
//! can run a wallet when the WOPID appears. Waiting is always a long poll with a bounded
//! window, never a busy loop. Every failure after the withdrawal exists ends in an abort at
//! C2EC, so no operation is left dangling; the card is only charged once a wallet registered.

use std::fmt;
use std::time::Duration;

use cardcash_api::bank_integration::{BankWithdrawalOperationStatus, WithdrawalStatus};
use cardcash_api::cardproc::{
    CardNumber, CreateTransactionRequest, DecimalAmount, ProcessCardRequest, Transaction,
    TransactionState,
};
use cardcash_api::terminal::{TerminalConfig, TerminalWithdrawalSetup};
use cardcash_client::{C2ecTerminalClient, CardprocClient, ClientError, SetupAmount};
use cardcash_util::{Amount, AmountError, EddsaPublicKey, ErrorCode, Timestamp};
use tokio::time::Instant;

use crate::receipt::{AbortReason, Outcome, Receipt, mask_pan};

/// The processor's test card that is approved at once (docs/CARDPROC-API.md, "Test cards").
pub const APPROVE_TEST_CARD: &str = "4000000000000002";
/// The processor's test card the issuer declines.
pub const DECLINE_TEST_CARD: &str = "4000000000000010";

/// Attempts of an idempotent request that failed in a retryable way (no answer, 5xx).
const ATTEMPTS: u32 = 3;
/// First pause between attempts; doubles each time.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Consecutive failed long polls after which the terminal gives up waiting.
const MAX_POLL_FAILURES: u32 = 5;
/// A long poll that came back unchanged faster than this did not really wait (a server or
/// proxy that ignores `timeout_ms`); pause before asking again so the loop never spins.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The card the terminal reads. Never printed in full.
#[derive(Clone, PartialEq, Eq)]
pub struct CardData {
    /// The card number.
    pub pan: String,
    /// Expiry month 1–12.
    pub expiry_month: u8,
    /// Expiry year, four digits.
    pub expiry_year: u16,
    /// Card verification code, when the card needs one.
    pub cvc: Option<String>,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("pan", &mask_pan(&self.pan))
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .finish_non_exhaustive()
    }
}

impl CardData {
    /// A test card number with an expiry date three years ahead (so it never expires in tests).
    pub fn test_card(pan: &str) -> Self {
        Self {
            pan: pan.to_owned(),
            expiry_month: 12,
            expiry_year: crate::receipt::utc_year(Timestamp::now()).saturating_add(3),
            cvc: Some("123".to_owned()),
        }
    }
}

impl Default for CardData {
    /// The approved test card.
    fn default() -> Self {
        Self::test_card(APPROVE_TEST_CARD)
    }
}

/// What one run of the flow does.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// The withdrawal amount (what the wallet's reserve is credited with), fixed or suggested.
    pub amount: SetupAmount,
    /// The card presented.
    pub card: CardData,
    /// Card fees the terminal charges on top of the amount (announced to C2EC and the wallet).
    pub card_fees: Option<Amount>,
    /// The idempotency key of the setup; random when `None`. Reusing one after a crash gets
    /// the same withdrawal back.
    pub request_uid: Option<String>,
    /// How long to wait for a wallet to scan the QR code before aborting.
    pub wallet_timeout: Duration,
    /// How long to wait for C2EC's verdict after the check before reporting "pending".
    pub outcome_timeout: Duration,
    /// The window of one long-poll request (C2EC caps it at 60 s).
    pub poll_window: Duration,
}

impl FlowOptions {
    /// A fixed `amount`, the approved test card and default timeouts.
    pub fn new(amount: Amount) -> Self {
        Self {
            amount: SetupAmount::Fixed(amount),
            card: CardData::default(),
            card_fees: None,
            request_uid: None,
            wallet_timeout: Duration::from_secs(120),
            outcome_timeout: Duration::from_secs(60),
            poll_window: Duration::from_secs(30),
        }
    }
}

/// Progress of the flow, in the order it happens.
#[derive(Debug, Clone)]
pub enum FlowEvent {
    /// C2EC's configuration was loaded (provider, currency, the exchange's fees).
    Configured {
        /// The Terminal API configuration.
        config: TerminalConfig,
    },
    /// The withdrawal exists; show the QR code of `taler_withdraw_uri` now.
    WithdrawalCreated {
        /// The withdrawal operation id.
        wopid: String,
        /// The amount requested (fixed or suggested).
        amount: Amount,
        /// The `taler://withdraw/…` URI for the QR code.
        taler_withdraw_uri: String,
    },
    /// The terminal long-polls until a wallet registers.
    WaitingForWallet {
        /// The withdrawal operation id.
        wopid: String,
    },
    /// A wallet registered its reserve.
    WalletRegistered {
        /// The reserve public key the wallet chose.
        reserve_pub: Option<EddsaPublicKey>,
        /// The withdrawal amount now fixed.
        amount: Amount,
    },
    /// The card transaction changed state (created, then processed).
    CardPayment {
        /// The card processor's transaction id.
        transaction_id: u64,
        /// Its state.
        state: TransactionState,
        /// The amount charged.
        amount: Amount,
    },
    /// The check (confirmation request) was accepted by C2EC.
    CheckSent {
        /// The transaction id reported.
        provider_transaction_id: String,
    },
    /// The withdrawal ended (or the terminal stopped waiting).
    Outcome {
        /// How it ended.
        outcome: Outcome,
    },
    /// The receipt for the customer.
    Receipt {
        /// The receipt.
        receipt: Box<Receipt>,
    },
}

impl fmt::Display for FlowEvent {
    /// One line for a progress log (the QR code and the receipt are printed separately).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Configured { config } => write!(
                f,
                "C2EC ready: provider {}, currency {}, exchange fees {}",
                config.provider_name, config.currency, config.withdrawal_fees
            ),
            Self::WithdrawalCreated {
                wopid,
                amount,
                taler_withdraw_uri,
            } => write!(
                f,
                "withdrawal {wopid} of {amount} created: {taler_withdraw_uri}"
            ),
            Self::WaitingForWallet { .. } => {
                f.write_str("waiting for a wallet to scan the QR code…")
            }
            Self::WalletRegistered {
                reserve_pub,
                amount,
            } => match reserve_pub {
                Some(key) => write!(
                    f,
                    "wallet registered reserve {} for {amount}",
                    crate::receipt::reserve_fingerprint(key)
                ),
                None => write!(f, "wallet registered for {amount}"),
            },
            Self::CardPayment {
                transaction_id,
                state,
                amount,
            } => write!(f, "card payment {transaction_id} of {amount}: {state}"),
            Self::CheckSent {
                provider_transaction_id,
            } => write!(
                f,
                "reported card payment {provider_transaction_id} to C2EC, waiting for its verdict…"
            ),
            Self::Outcome { outcome } => match outcome {
                Outcome::Confirmed => f.write_str("withdrawal CONFIRMED"),
                Outcome::Aborted(reason) => write!(f, "withdrawal ABORTED: {reason}"),
                Outcome::Pending => f.write_str("withdrawal still PENDING verification"),
            },
            Self::Receipt { .. } => f.write_str("receipt printed"),
        }
    }
}

/// Receives the flow's progress.
pub trait FlowObserver {
    /// Called once per event, in order, from the task running the flow.
    fn on_event(&mut self, event: &FlowEvent);
}

impl<F: FnMut(&FlowEvent)> FlowObserver for F {
    fn on_event(&mut self, event: &FlowEvent) {
        self(event);
    }
}

/// Events as a channel, for a caller that handles them on another task. A closed channel
/// only means nobody listens any more; the flow goes on.
impl FlowObserver for tokio::sync::mpsc::UnboundedSender<FlowEvent> {
    fn on_event(&mut self, event: &FlowEvent) {
        let _ = self.send(event.clone());
    }
}

/// Both observers, in order: `(console, display.observer())` prints and updates the page.
impl<A: FlowObserver, B: FlowObserver> FlowObserver for (A, B) {
    fn on_event(&mut self, event: &FlowEvent) {
        self.0.on_event(event);
        self.1.on_event(event);
    }
}

/// Ignores every event.
impl FlowObserver for () {
    fn on_event(&mut self, _event: &FlowEvent) {}
}

/// Why the flow could not run to an outcome.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A C2EC request failed (before a withdrawal existed, or the abort failed too).
    #[error("C2EC {step}: {source}")]
    C2ec {
        /// What the terminal was doing.
        step: &'static str,
        /// The error.
        #[source]
        source: ClientError,
    },
    /// The amount is in another currency than C2EC's.
    #[error("amount {amount} is not in C2EC's currency {currency}")]
    CurrencyMismatch {
        /// The requested amount.
        amount: String,
        /// C2EC's currency.
        currency: String,
    },
    /// Amount plus card fees is not a valid amount.
    #[error("invalid amount: {0}")]
    Amount(#[from] AmountError),
    /// The operating system's random number generator failed.
    #[error("no randomness for the request_uid: {0}")]
    Random(String),
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct FlowReport {
    /// The setup's idempotency key.
    pub request_uid: String,
    /// The withdrawal operation id.
    pub wopid: String,
    /// The URI shown as QR code.
    pub taler_withdraw_uri: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The receipt (also sent as the last event).
    pub receipt: Receipt,
}

/// A terminal: C2EC for the withdrawal, the card processor for the payment.
///
/// To act on events while the flow runs (the demo's wallet registers when the WOPID
/// appears), run it on its own task with a channel as observer:
///
/// ```no_run
/// # async fn demo(flow: cardcash_terminal::TerminalFlow) {
/// use cardcash_terminal::{FlowEvent, FlowOptions};
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let options = FlowOptions::new("CHF:20".parse().unwrap());
/// let run = tokio::spawn(async move { flow.run(&options, &mut { tx }).await });
/// while let Some(event) = rx.recv().await {
///     if let FlowEvent::WithdrawalCreated { taler_withdraw_uri, .. } = &event {
///         // hand the URI to a wallet here
///     }
///     println!("{event}");
/// }
/// let report = run.await.unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TerminalFlow {
    c2ec: C2ecTerminalClient,
    cardproc: CardprocClient,
}

/// Everything the receipt needs, collected along the way.
struct Progress {
    config: TerminalConfig,
    wopid: String,
    amount: Amount,
    card_fees: Option<Amount>,
    charged: Option<Amount>,
    card_masked: Option<String>,
    provider_transaction_id: Option<String>,
    reserve_pub: Option<EddsaPublicKey>,
}

impl TerminalFlow {
    /// A terminal talking to C2EC through `c2ec` and paying through `cardproc` (a client of an
    /// API user with the `terminal` role).
    pub fn new(c2ec: C2ecTerminalClient, cardproc: CardprocClient) -> Self {
        Self { c2ec, cardproc }
    }

    /// The C2EC client.
    pub fn c2ec(&self) -> &C2ecTerminalClient {
        &self.c2ec
    }

    /// Runs one withdrawal from setup to receipt.
    pub async fn run<O: FlowObserver + ?Sized>(
        &self,
        options: &FlowOptions,
        observer: &mut O,
    ) -> Result<FlowReport, FlowError> {
        let config = self.c2ec.config().await.map_err(|source| FlowError::C2ec {
            step: "config",
            source,
        })?;
        let requested = *options.amount.amount();
        if config.currency.to_string() != requested.currency().as_str() {
            return Err(FlowError::CurrencyMismatch {
                amount: requested.to_string(),
                currency: config.currency.to_string(),
            });
        }
        if let Some(fees) = &options.card_fees {
            // Checked before the setup so a bad fee never leaves a withdrawal behind.
            requested.checked_add(fees)?;
        }
        observer.on_event(&FlowEvent::Configured {
            config: config.clone(),
        });

        let request_uid = match &options.request_uid {
            Some(uid) => uid.clone(),
            None => random_request_uid()?,
        };
        let (amount, suggested_amount) = match options.amount {
            SetupAmount::Fixed(a) => (Some(a), None),
            SetupAmount::Suggested(a) => (None, Some(a)),
        };
        let setup_request = TerminalWithdrawalSetup {
            request_uid: request_uid.clone(),
            amount,
            suggested_amount,
            provider_transaction_id: None,
            terminal_fees: options.card_fees,
            user_uuid: None,
            lock: None,
        };
        // Idempotent on request_uid, so retrying cannot create a second withdrawal.
        let setup = retry(
            || self.c2ec.setup(&setup_request),
            ClientError::is_retryable,
        )
        .await
        .map_err(|source| FlowError::C2ec {
            step: "setup",
            source,
        })?;
        let wopid = setup.withdrawal_id.clone();
        let taler_withdraw_uri = setup
            .taler_withdraw_uri
            .clone()
            .unwrap_or_else(|| self.c2ec.withdraw_uri(&wopid));
        observer.on_event(&FlowEvent::WithdrawalCreated {
            wopid: wopid.clone(),
            amount: requested,
            taler_withdraw_uri: taler_withdraw_uri.clone(),
        });

        let mut progress = Progress {
            config,
            wopid: wopid.clone(),
            amount: requested,
            card_fees: options.card_fees,
            charged: None,
            card_masked: None,
            provider_transaction_id: None,
            reserve_pub: None,
        };
        let outcome = self.after_setup(options, &mut progress, observer).await?;
        observer.on_event(&FlowEvent::Outcome {
            outcome: outcome.clone(),
        });
        let receipt = Receipt {
            time: Timestamp::now(),
            terminal_id: self.c2ec.terminal_id().to_owned(),
            provider_name: progress.config.provider_name.clone(),
            amount: progress.amount,
            exchange_fees: progress.config.withdrawal_fees,
            card_fees: progress.card_fees,
            charged: progress.charged,
            wopid: wopid.clone(),
            card_masked: progress.card_masked,
            provider_transaction_id: progress.provider_transaction_id,
            reserve_pub: progress.reserve_pub,
            outcome: outcome.clone(),
        };
        observer.on_event(&FlowEvent::Receipt {
            receipt: Box::new(receipt.clone()),
        });
        Ok(FlowReport {
            request_uid,
            wopid,
            taler_withdraw_uri,
            outcome,
            receipt,
        })
    }

    /// Steps 3–6; every early end goes through [`Self::abort_with`].
    async fn after_setup<O: FlowObserver + ?Sized>(
        &self,
        options: &FlowOptions,
        progress: &mut Progress,
        observer: &mut O,
    ) -> Result<Outcome, FlowError> {
        let wopid = progress.wopid.clone();
        observer.on_event(&FlowEvent::WaitingForWallet {
            wopid: wopid.clone(),
        });
        let deadline = Instant::now() + options.wallet_timeout;
        let registered = match self
            .wait_for_change(&wopid, WithdrawalStatus::Pending, deadline, options)
            .await
        {
            Ok(Some(status)) => status,
            Ok(None) => return self.abort_with(&wopid, AbortReason::NoWallet).await,
            Err(e) => {
                let reason = AbortReason::TerminalError(format!("waiting for the wallet: {e}"));
                return self.abort_with(&wopid, reason).await;
            }
        };
        match registered.status {
            WithdrawalStatus::Selected => {}
            WithdrawalStatus::Aborted => {
                return Ok(Outcome::Aborted(AbortReason::AbortedElsewhere));
            }
            // Nobody but this terminal can report a payment, so this cannot happen; if it
            // does, C2EC's word is what counts.
            WithdrawalStatus::Confirmed => return Ok(Outcome::Confirmed),
            WithdrawalStatus::Pending => {
                let reason = AbortReason::TerminalError("status did not change".into());
                return self.abort_with(&wopid, reason).await;
            }
        }
        // With a suggested amount the wallet fixed the amount when it registered.
        if let Some(amount) = registered.amount {
            progress.amount = amount;
        }
        if let Some(fees) = registered.card_fees {
            progress.card_fees = Some(fees).filter(|f| !f.is_zero()).or(progress.card_fees);
        }
        progress.reserve_pub = registered.selected_reserve_pub;
        observer.on_event(&FlowEvent::WalletRegistered {
            reserve_pub: progress.reserve_pub,
            amount: progress.amount,
        });

        let charge = match &progress.card_fees {
            Some(fees) => progress.amount.checked_add(fees),
            None => Ok(progress.amount),
        };
        let charge = match charge {
            Ok(c) => c,
            Err(e) => {
                let reason = AbortReason::TerminalError(format!("amount plus card fees: {e}"));
                return self.abort_with(&wopid, reason).await;
            }
        };

        let tx = match self.pay(&wopid, &charge, &options.card, observer).await {
            Ok(tx) => tx,
            Err(reason) => return self.abort_with(&wopid, reason).await,
        };
        progress.card_masked = Some(
            tx.card_masked
                .clone()
                .unwrap_or_else(|| mask_pan(&options.card.pan)),
        );
        progress.provider_transaction_id = Some(tx.id.to_string());
        if tx.state.is_final_failure() || tx.state == TransactionState::Pending {
            // "authorization not successful": nothing was charged, so the terminal aborts.
            let reason = AbortReason::CardDeclined {
                state: tx.state.to_string(),
                reason: tx.failure_reason.map(|r| r.as_str().to_owned()),
            };
            return self.abort_with(&wopid, reason).await;
        }
        progress.charged = Some(charge);

        let tx_id = tx.id.to_string();
        // The check is idempotent for the same transaction id.
        if let Err(e) = retry(
            || self.c2ec.check(&wopid, &tx_id),
            ClientError::is_retryable,
        )
        .await
        {
            tracing::warn!(%wopid, provider_transaction_id = %tx_id, error = %e, "check failed");
            // C2EC may have aborted meanwhile (expiry); its status says what happened.
            return Ok(match self.c2ec.status(&wopid, None, Duration::ZERO).await {
                Ok(s) if s.status == WithdrawalStatus::Confirmed => Outcome::Confirmed,
                Ok(s) if s.status == WithdrawalStatus::Aborted => {
                    Outcome::Aborted(AbortReason::TerminalError(format!(
                        "C2EC rejected the payment report ({e}); card payment {tx_id} \
                         must be refunded by the operator"
                    )))
                }
                _ => Outcome::Pending,
            });
        }
        observer.on_event(&FlowEvent::CheckSent {
            provider_transaction_id: tx_id,
        });

        let deadline = Instant::now() + options.outcome_timeout;
        match self
            .wait_for_change(&wopid, WithdrawalStatus::Selected, deadline, options)
            .await
        {
            Ok(Some(s)) => Ok(match s.status {
                WithdrawalStatus::Confirmed => Outcome::Confirmed,
                WithdrawalStatus::Aborted => Outcome::Aborted(AbortReason::PaymentNotConfirmed),
                WithdrawalStatus::Pending | WithdrawalStatus::Selected => Outcome::Pending,
            }),
            Ok(None) => Ok(Outcome::Pending),
            Err(e) => {
                // The payment is reported; C2EC decides without us. Not knowing is "pending".
                tracing::warn!(%wopid, error = %e, "lost C2EC while waiting for the outcome");
                Ok(Outcome::Pending)
            }
        }
    }

    /// Steps (5)/(6): creates the card transaction bound to the WOPID and presents the card.
    /// An `Err` means no payment can have happened or its state is unknown and the processor
    /// unreachable; either way the withdrawal is aborted.
    async fn pay<O: FlowObserver + ?Sized>(
        &self,
        wopid: &str,
        charge: &Amount,
        card: &CardData,
        observer: &mut O,
    ) -> Result<Transaction, AbortReason> {
        let create = CreateTransactionRequest {
            currency: *charge.currency(),
            amount: DecimalAmount::from(charge),
            merchant_reference: wopid.to_owned(),
            terminal_id: Some(self.c2ec.terminal_id().to_owned()),
            meta_data: Default::default(),
        };
        // Not retried: a second create would make a second transaction.
        let created = self
            .cardproc
            .create_transaction(&create)
            .await
            .map_err(|e| AbortReason::TerminalError(format!("card processor: {e}")))?;
        observer.on_event(&FlowEvent::CardPayment {
            transaction_id: created.id,
            state: created.state,
            amount: *charge,
        });
        let request = ProcessCardRequest {
            pan: CardNumber(card.pan.clone()),
            expiry_month: card.expiry_month,
            expiry_year: card.expiry_year,
            cvc: card.cvc.clone(),
        };
        // Processing is idempotent per transaction, so a lost answer can be asked for again.
        let processed = match retry(
            || self.cardproc.process_card(created.id, &request),
            ClientError::is_retryable,
        )
        .await
        {
            Ok(tx) => tx,
            Err(e) if !e.is_retryable() => {
                return Err(AbortReason::TerminalError(format!("card rejected: {e}")));
            }
            Err(e) => {
                tracing::warn!(transaction_id = created.id, error = %e, "card processing failed");
                // Still unreachable: the state is unknown; ask once more by reading.
                self.cardproc
                    .read_transaction(created.id)
                    .await
                    .map_err(|_| AbortReason::TerminalError(format!("card processor: {e}")))?
            }
        };
        observer.on_event(&FlowEvent::CardPayment {
            transaction_id: processed.id,
            state: processed.state,
            amount: *charge,
        });
        Ok(processed)
    }

    /// Long-polls until the status differs from `old`, or `deadline` passes (`Ok(None)`).
    /// Transient errors are retried with backoff; after [`MAX_POLL_FAILURES`] in a row the
    /// last one is returned.
    async fn wait_for_change(
        &self,
        wopid: &str,
        old: WithdrawalStatus,
        deadline: Instant,
        options: &FlowOptions,
    ) -> Result<Option<BankWithdrawalOperationStatus>, ClientError> {
        let mut failures = 0u32;
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                return Ok(None);
            }
            let window = options.poll_window.min(remaining);
            match self.c2ec.status(wopid, Some(old), window).await {
                Ok(status) if status.status != old => return Ok(Some(status)),
                Ok(_) => {
                    failures = 0;
                    if now.elapsed() < MIN_POLL_INTERVAL.min(window) {
                        tokio::time::sleep_until((now + MIN_POLL_INTERVAL).min(deadline)).await;
                    }
                }
                Err(e) if e.is_retryable() && failures + 1 < MAX_POLL_FAILURES => {
                    failures += 1;
                    tracing::debug!(%wopid, error = %e, failures, "status poll failed, retrying");
                    let pause = RETRY_DELAY.saturating_mul(1 << failures.min(6));
                    tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Aborts the withdrawal at C2EC and reports `reason`. If C2EC says the withdrawal is
    /// already confirmed (409), that is the outcome; if the abort cannot be delivered the flow
    /// fails, because the terminal cannot tell the customer what happened.
    async fn abort_with(&self, wopid: &str, reason: AbortReason) -> Result<Outcome, FlowError> {
        match retry(|| self.c2ec.abort(wopid), ClientError::is_retryable).await {
            Ok(()) => Ok(Outcome::Aborted(reason)),
            Err(e) if e.error_code() == Some(ErrorCode::BankAbortConfirmConflict) => {
                Ok(Outcome::Confirmed)
            }
            Err(source) => {
                tracing::warn!(%wopid, %reason, error = %source, "abort failed");
                Err(FlowError::C2ec {
                    step: "abort",
                    source,
                })
            }
        }
    }
}

/// Runs `op` up to [`ATTEMPTS`] times while its error is retryable, with doubling pauses.
async fn retry<T, E, F, Fut>(mut op: F, retryable: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = RETRY_DELAY;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// A fresh `request_uid`: 128 random bits in base32, so two terminals never collide.
pub fn random_request_uid() -> Result<String, FlowError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| FlowError::Random(e.to_string()))?;
    Ok(cardcash_util::base32::encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uids_are_random_base32() {
        let a = random_request_uid().unwrap();
        let b = random_request_uid().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
        assert_eq!(cardcash_util::base32::decode(&a).unwrap().len(), 16);
    }

    #[test]
    fn card_debug_is_masked() {
        let card = CardData::default();
        let debug = format!("{card:?}");
        assert!(!debug.contains(APPROVE_TEST_CARD), "{debug}");
        assert!(debug.contains("400000******0002"));
        assert!(!debug.contains("123"));
        assert!(card.expiry_year >= 2029);
    }

    #[tokio::test]
    async fn retry_stops_after_the_attempts_and_on_permanent_errors() {
        let mut calls = 0;
        let r: Result<(), u32> = retry(
            || {
                calls += 1;
                std::future::ready(Err(503))
            },
            |e| *e >= 500,
        )
        .await;
        assert_eq!((r, calls), (Err(503), ATTEMPTS));
        let mut calls = 0;
        let r: Result<(), u32> = retry(
            || {
                calls += 1;
                std::future::ready(Err(409))
            },
            |e| *e >= 500,
        )
        .await;
        assert_eq!((r, calls), (Err(409), 1));
        let mut calls = 0;
        let r: Result<u32, u32> = retry(
            || {
                calls += 1;
                std::future::ready(if calls < 2 { Err(502) } else { Ok(7) })
            },
            |e| *e >= 500,
        )
        .await;
        assert_eq!((r, calls), (Ok(7), 2));
    }

    #[test]
    fn the_flow_can_run_on_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        let c2ec = C2ecTerminalClient::new(
            cardcash_util::BaseUrl::parse("http://127.0.0.1:9/terminal/").unwrap(),
            "T-1",
            "secret",
        )
        .unwrap();
        let cardproc = CardprocClient::new(
            "http://127.0.0.1:9/",
            1,
            "OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0=",
            1,
        )
        .unwrap();
        let flow = TerminalFlow::new(c2ec, cardproc);
        let options = FlowOptions::new("CHF:20".parse().unwrap());
        let (mut tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let future = flow.run(&options, &mut tx);
        assert_send(&future);
    }

    #[test]
    fn observers_compose() {
        let mut seen = Vec::new();
        let mut closure = |e: &FlowEvent| seen.push(e.to_string());
        closure.on_event(&FlowEvent::WaitingForWallet { wopid: "W".into() });
        assert_eq!(seen, vec!["waiting for a wallet to scan the QR code…"]);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sender = tx;
        sender.on_event(&FlowEvent::CheckSent {
            provider_transaction_id: "42".into(),
        });
        assert!(matches!(
            rx.try_recv(),
            Ok(FlowEvent::CheckSent { provider_transaction_id }) if provider_transaction_id == "42"
        ));
        drop(rx);
        // A closed channel does not stop the flow.
        sender.on_event(&FlowEvent::WaitingForWallet { wopid: "W".into() });
        ().on_event(&FlowEvent::WaitingForWallet { wopid: "W".into() });
    }
}
