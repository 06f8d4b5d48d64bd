//! Payouts: the card processor pays the captured card payments, net of refunds and its fees,
//! into the merchant's bank account (the space's owner: the exchange operator, whose card
//! payments C2EC attests), in batches, a settlement delay after capture — as acquirers do.
//!
//! - [`settle`] is the pure rule: what a batch wires, or the negative balance it carries to the
//!   next batch (a refund after its transaction was paid out is netted in the next payout; when
//!   refunds, fees and the carried balance exceed the captures, nothing is wired and the rest
//!   is carried).
//! - Which rows a payout covers is decided in `db/` (`db/payout.rs`), in one database
//!   transaction, so every captured unit is paid out exactly once.
//! - [`pay_due`] is one step of the payout worker (`app.rs`): make up a payout of what is due,
//!   then wire every `PENDING` payout through the bank's Core Bank API from the processor's own
//!   account (`create_transaction`, with the payout's stored random `request_uid`: a retry
//!   after a crash or a lost answer repeats the same request, and the bank answers it with the
//!   transfer it already booked, so a payout is never wired twice). A failure is recorded on
//!   the payout and retried by the worker with exponential backoff.
//!
//! Never: wire anything not recorded as a `PENDING` payout first; compute money in floats.

use std::time::Duration;

use cardcash_client::{Auth, BankClient, ClientError};
use cardcash_util::{Amount, AmountError, ShortHashCode};

use crate::config::{BankCredentials, PayoutConfig};
use crate::db::{CardprocStore, NewPayout, PayoutRow};
use crate::error::CardprocError;
use crate::metrics::CardprocMetrics;
use cardcash_api::cardproc::IsoTime;
use cardcash_api::corebank::CreateTransactionRequest;

/// What one payout wires, or carries to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// Wired to the merchant (zero when the batch does not cover its deductions).
    pub amount: Amount,
    /// Carried to the next payout (zero when `amount` is positive).
    pub debt: Amount,
}

/// `captured - refunded - fees - carried`, split into the positive part (wired) and the
/// negative part (carried as debt). All amounts share one currency.
pub fn settle(
    captured: &Amount,
    refunded: &Amount,
    fees: &Amount,
    carried: &Amount,
) -> Result<Settlement, AmountError> {
    let deductions = refunded.checked_add(fees)?.checked_add(carried)?;
    let zero = Amount::zero(captured.currency());
    if captured.to_units() >= deductions.to_units() {
        Ok(Settlement {
            amount: captured.checked_sub(&deductions)?,
            debt: zero,
        })
    } else {
        Ok(Settlement {
            amount: zero,
            debt: deductions.checked_sub(captured)?,
        })
    }
}

/// The payout worker's view of the configuration and the bank.
#[derive(Debug, Clone)]
pub struct Payer {
    config: PayoutConfig,
    bank: BankClient,
    space_id: u64,
}

/// What one worker step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayoutStep {
    /// Payouts made up.
    pub created: u64,
    /// Payouts the bank booked.
    pub paid: u64,
    /// When the next unpaid capture falls due (capture time + delay), if any.
    pub next_due: Option<IsoTime>,
}

impl Payer {
    /// A payer for `space_id` with its own HTTP client.
    pub fn new(config: PayoutConfig, space_id: u64) -> Result<Self, ClientError> {
        let auth = match &config.credentials {
            BankCredentials::Password(p) => Auth::basic(config.bank_account.clone(), p.clone()),
            BankCredentials::Token(t) => Auth::bearer(t.clone()),
        };
        let bank = BankClient::new(config.bank_url.clone(), auth)?;
        Ok(Self {
            config,
            bank,
            space_id,
        })
    }

    /// The settlement delay.
    pub fn delay(&self) -> Duration {
        self.config.delay
    }

    /// One step: make up a payout of what is due, then wire every pending payout (oldest
    /// first). The first failure is recorded on its payout and returned (the worker backs off
    /// and tries again; the payout keeps its `request_uid`).
    pub async fn pay_due(
        &self,
        store: &CardprocStore,
        metrics: &CardprocMetrics,
    ) -> Result<PayoutStep, CardprocError> {
        let mut step = PayoutStep::default();
        let now = IsoTime::now();
        let delay_us = u64::try_from(self.config.delay.as_micros()).unwrap_or(u64::MAX);
        let due_before = IsoTime::from_micros(now.as_micros().saturating_sub(delay_us));
        let request_uid = cardcash_crypto::random_bytes::<32>()
            .map(ShortHashCode::from_bytes)
            .map_err(|e| CardprocError::Internal(format!("no randomness: {e}")))?;
        let (created, finalized) = store
            .create_payout(NewPayout {
                space_id: self.space_id,
                currency: *self.config.currency(),
                due_before,
                now,
                fee: self.config.fee,
                request_uid,
            })
            .await?;
        metrics.finalized_many(finalized);
        if let Some(payout) = created {
            step.created = 1;
            metrics.payout_created();
            tracing::info!(
                payout_id = payout.id,
                amount = %payout.amount,
                captured = %payout.captured,
                refunded = %payout.refunded,
                fees = %payout.fees,
                carried = %payout.carried,
                debt = %payout.debt,
                transactions = payout.transactions,
                refunds = payout.refunds,
                state = %payout.state,
                "payout made up"
            );
        }
        for payout in store.pending_payouts(self.space_id).await? {
            self.wire(store, metrics, &payout).await?;
            step.paid += 1;
        }
        step.next_due = store
            .next_unpaid_capture(self.space_id, *self.config.currency())
            .await?
            .map(|t| IsoTime::from_micros(t.as_micros().saturating_add(delay_us)));
        Ok(step)
    }

    /// Wires one pending payout and records the bank's answer.
    async fn wire(
        &self,
        store: &CardprocStore,
        metrics: &CardprocMetrics,
        payout: &PayoutRow,
    ) -> Result<(), CardprocError> {
        let request = CreateTransactionRequest {
            payto_uri: self
                .config
                .payto
                .clone()
                .with_param("message", &payout.subject()),
            amount: Some(payout.amount),
            request_uid: Some(payout.request_uid),
        };
        let started = std::time::Instant::now();
        match self
            .bank
            .create_transaction(&self.config.bank_account, &request)
            .await
        {
            Ok(booked) => {
                let marked = store
                    .mark_payout_paid(payout.id, booked.row_id, IsoTime::now())
                    .await?;
                if marked {
                    metrics.payout_paid(payout);
                }
                tracing::info!(
                    payout_id = payout.id,
                    amount = %payout.amount,
                    bank_row_id = booked.row_id,
                    attempts = payout.attempts + 1,
                    duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "payout wired"
                );
                Ok(())
            }
            Err(e) => {
                metrics.payout_failed();
                let error = e.to_string();
                store.record_payout_failure(payout.id, &error).await?;
                Err(CardprocError::Internal(format!(
                    "wiring payout {} of {} failed (attempt {}): {error}",
                    payout.id,
                    payout.amount,
                    payout.attempts + 1
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chf(s: &str) -> Amount {
        format!("CHF:{s}").parse().unwrap()
    }

    #[test]
    fn settles_positive_and_negative_balances() {
        let s = settle(&chf("20"), &chf("3.5"), &chf("0.5"), &chf("1")).unwrap();
        assert_eq!((s.amount, s.debt), (chf("15"), chf("0")));
        // Refunds of earlier paid-out captures exceed this batch: carry the rest.
        let s = settle(&chf("5"), &chf("10"), &chf("0"), &chf("0")).unwrap();
        assert_eq!((s.amount, s.debt), (chf("0"), chf("5")));
        // The carried debt is settled first.
        let s = settle(&chf("8"), &chf("0"), &chf("0"), &chf("5")).unwrap();
        assert_eq!((s.amount, s.debt), (chf("3"), chf("0")));
        // Exactly even: nothing wired, nothing carried.
        let s = settle(&chf("2"), &chf("2"), &chf("0"), &chf("0")).unwrap();
        assert_eq!((s.amount, s.debt), (chf("0"), chf("0")));
    }
}
