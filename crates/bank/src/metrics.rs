//! The bank's Prometheus metrics, registered in the service's `cardcash_http::Metrics` registry
//! next to the standard HTTP metrics and served at `/metrics`.

use cardcash_http::Metrics;
use prometheus_client::metrics::counter::Counter;

/// Handles of the bank's own counters (cheap to clone; all clones count together).
#[derive(Debug, Clone, Default)]
pub struct BankMetrics {
    /// New money movements made by the account holders: Core API and Wire Gateway transfers.
    pub transfers: Counter,
    /// New incoming reserve transactions of exchange accounts.
    pub incoming: Counter,
}

impl BankMetrics {
    /// Creates the counters and registers them in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let this = Self::default();
        metrics.register(
            "bank_transfers",
            "Transfers booked (Core Bank API and Wire Gateway, replays not counted)",
            this.transfers.clone(),
        );
        metrics.register(
            "bank_incoming",
            "Incoming reserve transactions credited to exchange accounts",
            this.incoming.clone(),
        );
        this
    }
}
