//! The card processor's Prometheus metrics (besides the standard HTTP ones from
//! `cardcash-http`): transactions created, transactions reaching a final state (by state), and
//! refunds. A transaction is counted once, when its final state is persisted. Payouts: made up,
//! wired (count and amount in the currency's smallest units of 10^-8), failed attempts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use cardcash_http::Metrics;

use crate::db::PayoutRow;

use cardcash_api::cardproc::TransactionState;

/// Label of the final-state counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// Wallee state name (`FULFILL`, `DECLINE`, `FAILED`, `VOIDED`).
    pub state: String,
}

/// Handles to the service metrics.
#[derive(Debug, Clone, Default)]
pub struct CardprocMetrics {
    /// `cardproc_transactions_created_total`.
    pub created: Counter,
    /// `cardproc_transactions_final_total{state}`.
    pub finals: Family<StateLabel, Counter>,
    /// `cardproc_refunds_total`.
    pub refunds: Counter,
    /// `cardproc_payouts_created_total`.
    pub payouts_created: Counter,
    /// `cardproc_payouts_paid_total`.
    pub payouts_paid: Counter,
    /// `cardproc_payout_units_paid_total` (10^-8 of the currency's unit).
    pub payout_units_paid: Counter,
    /// `cardproc_payout_failures_total`.
    pub payout_failures: Counter,
}

impl CardprocMetrics {
    /// Registers the metrics in `registry` and returns their handles.
    pub fn register(registry: &mut Metrics) -> Self {
        let m = Self::default();
        registry.register(
            "cardproc_transactions_created",
            "Card transactions created",
            m.created.clone(),
        );
        registry.register(
            "cardproc_transactions_final",
            "Card transactions that reached a final state, by state",
            m.finals.clone(),
        );
        registry.register(
            "cardproc_refunds",
            "Refunds executed (replays not counted)",
            m.refunds.clone(),
        );
        registry.register(
            "cardproc_payouts_created",
            "Payouts made up (including netted ones that wire nothing)",
            m.payouts_created.clone(),
        );
        registry.register(
            "cardproc_payouts_paid",
            "Payouts the bank booked",
            m.payouts_paid.clone(),
        );
        registry.register(
            "cardproc_payout_units_paid",
            "Money paid out, in 10^-8 of the currency's unit",
            m.payout_units_paid.clone(),
        );
        registry.register(
            "cardproc_payout_failures",
            "Failed attempts to wire a payout (each is retried)",
            m.payout_failures.clone(),
        );
        m
    }

    /// Counts a payout made up.
    pub fn payout_created(&self) {
        self.payouts_created.inc();
    }

    /// Counts a payout the bank booked.
    pub fn payout_paid(&self, payout: &PayoutRow) {
        self.payouts_paid.inc();
        self.payout_units_paid
            .inc_by(u64::try_from(payout.amount.to_units()).unwrap_or(u64::MAX));
    }

    /// Counts a failed attempt to wire a payout.
    pub fn payout_failed(&self) {
        self.payout_failures.inc();
    }

    /// Counts one transaction reaching `state`.
    pub fn finalized(&self, state: TransactionState) {
        self.finals
            .get_or_create(&StateLabel {
                state: state.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts `n` delayed approvals reaching `FULFILL`.
    pub fn finalized_many(&self, n: u64) {
        if n > 0 {
            self.finals
                .get_or_create(&StateLabel {
                    state: TransactionState::Fulfill.as_str().to_owned(),
                })
                .inc_by(n);
        }
    }
}
