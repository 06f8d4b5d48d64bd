//! Card processor (terminal payment backend) simulator with a Wallee-style transaction API.
//!
//! The "Terminal Backend" of the C2EC sequence diagram: terminals create card transactions and
//! present cards; C2EC reads transactions back to attest withdrawals and refunds them. The API
//! is docs/CARDPROC-API.md.
//!
//! Map: [`model`] wire types, [`mac`] Wallee's request MAC, [`client`] the signed HTTP client
//! other crates use; [`config`], [`processing`] (test cards, Luhn, the [`Authorizer`] seam,
//! state machine), [`service`] (one method per endpoint), [`db`] (all SQL), [`http`] (routes,
//! thin handlers, MAC extractor), [`app`] (`App::build`, finality worker), [`admin`] (operator
//! commands), [`metrics`].

pub mod admin;
pub mod app;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod metrics;
pub mod processing;
pub mod service;

pub use app::{App, BuildError};
pub use client::{CardprocClient, ClientError};
pub use config::{ApiUserConfig, CardprocConfig, Role};
pub use error::CardprocError;
// Transitional: the wire model moved to `cardcash_api::cardproc`.
pub use cardcash_api::cardproc as model;
pub use cardcash_api::cardproc::{
    CardNumber, ConfigResponse, CreateTransactionRequest, DecimalAmount, FailureReason, IsoTime,
    ProcessCardRequest, Refund, RefundRequest, RefundState, RefundType, Transaction,
    TransactionState, mac,
};
pub use processing::{
    AuthorizationRequest, Authorizer, AuthorizerError, Card, Decision, TestCardAuthorizer,
};
