//! cashless2ecash (C2EC): card-funded GNU Taler withdrawals.
//!
//! A terminal sets up a withdrawal ([Terminal API]), shows the `taler://withdraw` QR code, the
//! customer's wallet registers a reserve ([Bank Integration API]), the customer pays by card,
//! the terminal reports the card transaction, and the attestation worker checks it with the
//! card processor before the confirmed withdrawal appears in the exchange's incoming history
//! ([Wire Gateway API]). The exchange's transfers back (closed reserves) become card refunds.
//!
//! Map: [`state`] and [`attest`] are the pure rules; [`service`] applies them through [`db`]
//! (all SQL); [`http`] holds thin handlers; [`worker`] the attestation, expiry and refund
//! tasks; [`app::App`] wires everything; [`admin`] serves the operator CLI.
//!
//! [Terminal API]: https://docs.taler.net/core/api-terminal.html
//! [Bank Integration API]: https://docs.taler.net/core/api-bank-integration.html
//! [Wire Gateway API]: https://docs.taler.net/core/api-bank-wire.html

pub mod admin;
pub mod api;
pub mod app;
pub mod attest;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod provider;
pub mod qr;
pub mod service;
pub mod state;
pub mod worker;

pub use app::{App, StartError};
pub use cardcash_util::Wopid;
pub use config::{C2ecConfig, ProviderConfig, WireGatewayAuth};
pub use error::C2ecError;
