//! Card processor (terminal payment backend) simulator with a Wallee-style transaction API.
//!
//! The "Terminal Backend" of the C2EC sequence diagram: terminals create card transactions and
//! present cards; C2EC reads transactions back to attest withdrawals and refunds them. The API
//! is docs/CARDPROC-API.md.
//!
//! The wire types and Wallee's request MAC are `cardcash_api::cardproc` (shared with
//! `cardcash_client::CardprocClient`, through which other crates talk to this service).
//! Map: [`config`], [`processing`] (test cards, Luhn, the [`Authorizer`] seam,
//! state machine), [`service`] (one method per endpoint), [`db`] ([`CardprocStore`]: all SQL,
//! typed rows, one storage call per unit of work on SQLite and PostgreSQL), [`http`] (routes,
//! thin handlers, MAC extractor), [`app`] (`App::build`, finality and payout workers),
//! [`payout`] (settlement to the merchant's bank account), [`admin`] (operator commands),
//! [`metrics`].

pub mod admin;
pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod payout;
pub mod processing;
pub mod service;

pub use app::{App, BuildError};
pub use config::{ApiUserConfig, BankCredentials, CardprocConfig, PayoutConfig, Role};
pub use db::CardprocStore;
pub use error::CardprocError;
pub use processing::{
    AuthorizationRequest, Authorizer, AuthorizerError, Card, Decision, TestCardAuthorizer,
};
