//! C2EC's Prometheus metrics (served at `/metrics` next to the standard HTTP ones).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use cardcash_http::Metrics;

/// Label: the final state a withdrawal reached.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// Handles to C2EC's own metrics; cheap to clone.
#[derive(Clone, Default)]
pub struct C2ecMetrics {
    /// Withdrawals that reached a final state, by state (`confirmed`, `aborted`).
    pub withdrawals_finished: Family<OutcomeLabel, Counter>,
    pub withdrawals_created: Counter,
    pub attestation_attempts: Counter,
    /// Attempts that could not reach the provider or found the payment not final.
    pub attestation_retries: Counter,
    pub refunds: Family<OutcomeLabel, Counter>,
    /// Requests currently waiting in a long poll.
    pub long_poll_waiters: Gauge,
}

impl C2ecMetrics {
    /// Creates the handles and registers them in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "c2ec_withdrawals_finished",
            "Withdrawal operations that reached a final state, by state",
            m.withdrawals_finished.clone(),
        );
        metrics.register(
            "c2ec_withdrawals_created",
            "Withdrawal operations set up by terminals",
            m.withdrawals_created.clone(),
        );
        metrics.register(
            "c2ec_attestation_attempts",
            "Attestation attempts against the card provider",
            m.attestation_attempts.clone(),
        );
        metrics.register(
            "c2ec_attestation_retries",
            "Attestation attempts postponed (provider unreachable or payment not final)",
            m.attestation_retries.clone(),
        );
        metrics.register(
            "c2ec_refunds",
            "Card refunds by outcome (transfer or own refund)",
            m.refunds.clone(),
        );
        metrics.register(
            "c2ec_long_poll_waiters",
            "Requests waiting in a long poll",
            m.long_poll_waiters.clone(),
        );
        m
    }

    pub fn finished(&self, outcome: &str) {
        self.withdrawals_finished
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn refund(&self, outcome: &str) {
        self.refunds
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
