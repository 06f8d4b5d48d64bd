//! Taler protocol values: amounts, time, base32, payto and taler:// URIs, INI config, error codes.
//!
//! Everything here is pure data and parsing; the crate never does network or database IO and
//! never depends on tokio, axum or sqlx (ARCHITECTURE.md, "Invariants"). The only outside world
//! it touches is the clock (`Timestamp::now`), environment variables during config expansion, and
//! configuration files when asked to load one (`TalerConfig::load`). Every parser returns a
//! typed error on bad input and never panics (see the property tests in `tests/api`).

pub mod amount;
pub mod base32;
pub mod base_url;
pub mod bytes;
pub mod config;
pub mod error_code;
pub mod payto;
pub mod schema;
pub mod taler_uri;
pub mod time;
pub mod version;

pub use amount::{Amount, AmountError, Currency};
pub use base_url::{BaseUrl, BaseUrlError};
pub use base32::Base32Error;
pub use bytes::{
    Base32Bytes, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode, WireSalt,
    Wopid,
};
pub use config::{ConfigError, TalerConfig};
pub use error_code::ErrorCode;
pub use payto::{PaytoError, PaytoTarget, PaytoUri};
pub use taler_uri::{TalerUri, TalerUriError};
pub use time::{RelativeTime, TimeError, Timestamp};
pub use version::{LibtoolVersion, VersionError, VersionMatch};
