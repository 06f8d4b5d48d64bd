//! The exchange's Prometheus metrics, registered next to the standard HTTP and worker metrics
//! and served at `/metrics`.

use cardcash_http::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

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
    /// Expired reserves closed by the closer.
    pub reserves_closed: Counter,
    /// Closed reserves' balances sent back (accepted by the Wire Gateway).
    pub closing_transfers: Counter,
    /// Attempts to close an expired reserve that found something missing (a closing fee, an
    /// account that may send it back, a usable origin).
    pub reserve_close_refusals: Counter,
    /// Expired reserves with a balance that cannot be closed now (as of the closer's last pass).
    pub reserves_unclosable: Gauge,
    /// Merchant wire transfers held back: an aggregation that found no debit account of the
    /// merchant's wire method, no wire fee for it or no usable payto URI, or a recorded
    /// transfer that its account may not send (per attempt).
    pub wire_out_refusals: Counter,
    /// Merchant accounts with due deposits that cannot be wired now (as of the aggregator's
    /// last pass).
    pub merchant_accounts_unpayable: Gauge,
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
            (
                "exchange_reserves_closed",
                "Expired reserves closed (balance taken, transfer back recorded)",
                &this.reserves_closed,
            ),
            (
                "exchange_closing_transfers",
                "Closed reserves' balances sent back through a Wire Gateway",
                &this.closing_transfers,
            ),
            (
                "exchange_reserve_close_refusals",
                "Attempts to close an expired reserve that found a closing fee, a paying account or an origin missing",
                &this.reserve_close_refusals,
            ),
            (
                "exchange_wire_out_refusals",
                "Merchant wire transfers held back for want of a debit account of the merchant's wire method, a wire fee or a usable payto URI (per attempt)",
                &this.wire_out_refusals,
            ),
        ] {
            metrics.register(name, help, counter.clone());
        }
        metrics.register(
            "exchange_reserves_unclosable",
            "Expired reserves with a balance that cannot be closed now (see the closer's log)",
            this.reserves_unclosable.clone(),
        );
        metrics.register(
            "exchange_merchant_accounts_unpayable",
            "Merchant accounts with due deposits that cannot be wired now (see the aggregator's log)",
            this.merchant_accounts_unpayable.clone(),
        );
        this
    }
}
