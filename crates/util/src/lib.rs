//! Taler protocol values: amounts, time, base32, payto and taler:// URIs, INI config, error codes.
//!
//! Everything here is pure data and parsing; the crate never does network or database IO and
//! never depends on tokio, axum or sqlx (ARCHITECTURE.md, "Invariants"). Every parser returns a
//! typed error on bad input and never panics.

pub mod amount;
pub mod base32;
pub mod bytes;
pub mod error_code;
pub mod time;

pub use amount::{Amount, AmountError, Currency};
pub use base32::Base32Error;
pub use bytes::{
    Base32Bytes, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode, WireSalt,
};
pub use error_code::ErrorCode;
pub use time::{RelativeTime, TimeError, Timestamp};
