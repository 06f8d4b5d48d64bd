//! The bank's HTTP surface: router (in spec order), authentication extractor and thin handlers.
//!
//! Handlers extract, make one `Ledger` call, and shape the response; they contain no SQL and no
//! business rules.

pub mod auth;
pub mod core;
pub mod router;
pub mod wire_gateway;

use std::sync::Arc;

use crate::config::BankConfig;
use crate::ledger::Ledger;

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub config: Arc<BankConfig>,
    /// Checks account passwords (bounded, cached, uniform cost).
    pub credentials: cardcash_http::CredentialVerifier,
}
