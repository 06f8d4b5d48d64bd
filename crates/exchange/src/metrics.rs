//! The exchange's Prometheus metrics, registered next to the standard HTTP and worker metrics
//! and served at `/metrics`.

use cardcash_http::Metrics;
use prometheus_client::metrics::counter::Counter;

/// Handles of the exchange's own counters (cheap to clone; all clones count together).
#[derive(Debug, Clone, Default)]
pub struct ExchangeMetrics {
    /// Planchets blindly signed (replays not counted).
    pub coins_signed: Counter,
    /// Coins deposited (replays not counted).
    pub coins_deposited: Counter,
    /// Refunds granted.
    pub refunds: Counter,
    /// Incoming transfers credited to reserves by wirewatch.
    pub reserves_credited: Counter,
    /// Wire transfers to merchants recorded by the aggregator.
    pub wire_transfers: Counter,
}

impl ExchangeMetrics {
    /// Creates the counters and registers them in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let this = Self::default();
        for (name, help, counter) in [
            (
                "exchange_coins_signed",
                "Planchets blindly signed (replays not counted)",
                &this.coins_signed,
            ),
            (
                "exchange_coins_deposited",
                "Coins deposited (replays not counted)",
                &this.coins_deposited,
            ),
            (
                "exchange_refunds",
                "Refund requests granted (a replayed request counts again)",
                &this.refunds,
            ),
            (
                "exchange_reserves_credited",
                "Incoming transfers credited to reserves",
                &this.reserves_credited,
            ),
            (
                "exchange_wire_transfers",
                "Wire transfers to merchants recorded by the aggregator",
                &this.wire_transfers,
            ),
        ] {
            metrics.register(name, help, counter.clone());
        }
        this
    }
}
