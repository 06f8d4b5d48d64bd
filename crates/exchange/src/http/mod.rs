//! The exchange's HTTP surface: the route table ([`router`]) and thin handlers per area.

pub mod coins;
pub mod deposits;
pub mod keys;
pub mod legacy;
pub mod legal;
pub mod management;
pub mod path;
pub mod recoup;
pub mod refreshes;
pub mod reserves;
pub mod router;

use cardcash_util::{EddsaPublicKey, HashCode};

use crate::error::ExchangeError;
use crate::service::Exchange;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub exchange: Exchange,
    pub terms: std::sync::Arc<crate::legal::LegalDocuments>,
    pub privacy: std::sync::Arc<crate::legal::LegalDocuments>,
}

/// Parses a base32 path segment of a fixed-size value; garbage is a 400 before any work.
pub fn parse_segment<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ExchangeError> {
    raw.parse().map_err(|_| ExchangeError::malformed(what))
}

/// The path segment parsers the routes use.
pub fn hash_segment(raw: &str, what: &str) -> Result<HashCode, ExchangeError> {
    parse_segment(raw, what)
}

pub fn key_segment(raw: &str, what: &str) -> Result<EddsaPublicKey, ExchangeError> {
    parse_segment(raw, what)
}
