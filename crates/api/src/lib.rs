//! Serde types for the JSON wire formats of the APIs cardcash speaks: the Taler exchange,
//! merchant, core bank, bank integration, wire gateway and terminal APIs, and the card processor's
//! Wallee-style API ([`cardproc`], with its request MAC).
//!
//! Types only: no IO, no business rules. Field names and optionality follow docs.taler.net and
//! the reference implementations (libeufin for bank integration and wire gateway). Optional
//! fields are omitted when `None` and default when absent; unknown fields are ignored on input
//! so newer peers stay compatible. Protocol values use the parsing newtypes of `cardcash-util`.

pub mod bank_integration;
pub mod cardproc;
pub mod common;
pub mod corebank;
pub mod exchange;
pub mod merchant;
pub mod terminal;
pub mod wire_gateway;

pub use common::{CurrencySpecification, ErrorDetail};
