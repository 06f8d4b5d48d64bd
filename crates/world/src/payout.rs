//! Waiting for the card processor's payouts to the exchange's bank account (the demo's "the card
//! money reaches the bank" step). Wakes on the processor's store notification of payouts made up
//! or paid ([`cardcash_cardproc::db::TOPIC_PAYOUT`]), subscribed before each read: no timer
//! polling.

use std::time::{Duration, Instant};

use cardcash_api::cardproc::{Payout, PayoutState};
use cardcash_cardproc::db::TOPIC_PAYOUT;
use cardcash_util::Amount;

use crate::{World, WorldError};

impl World {
    /// Waits until the card processor has paid out at least `total` (the sum of its `PAID`
    /// payouts) to the merchant's account — the exchange's bank account in a world with the
    /// bank, [`crate::WORLD_PAYOUT_DELAY`] after capture — at most `timeout`; returns its
    /// payouts, newest first.
    pub async fn wait_for_payouts(
        &self,
        total: &Amount,
        timeout: Duration,
    ) -> Result<Vec<Payout>, WorldError> {
        let deadline = Instant::now() + timeout;
        let cardproc = self.cardproc();
        let reader = cardproc.reader();
        loop {
            let mut changed = cardproc
                .app()
                .store()
                .notifier()
                .subscribe_topic(TOPIC_PAYOUT);
            let payouts = reader.payouts().await.map_err(WorldError::Client)?.payouts;
            let mut paid = Amount::zero(total.currency());
            for p in payouts
                .iter()
                .filter(|p| p.state == PayoutState::Paid && p.currency == *total.currency())
            {
                paid = paid
                    .checked_add(&p.amount())
                    .map_err(|e| WorldError::Setup(format!("payout sum: {e}")))?;
            }
            if paid.to_units() >= total.to_units() {
                return Ok(payouts);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WorldError::Setup(format!(
                    "the card processor paid out {paid} of {total} within {timeout:?}"
                )));
            }
            changed.wait(left).await;
        }
    }
}
