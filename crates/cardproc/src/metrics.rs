//! The card processor's Prometheus metrics (besides the standard HTTP ones from
//! `cardcash-http`): transactions created, transactions reaching a final state (by state), and
//! refunds. A transaction is counted once, when its final state is persisted.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use cardcash_http::Metrics;

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
        m
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
