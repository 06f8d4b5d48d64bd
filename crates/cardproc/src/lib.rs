//! Card processor (terminal payment backend) simulator with a Wallee-style transaction API.
//!
//! The "Terminal Backend" of the C2EC sequence diagram: terminals create card transactions and
//! present cards; C2EC reads transactions back to attest withdrawals and refunds them. The API
//! is docs/CARDPROC-API.md. [`model`] holds the wire types, [`mac`] Wallee's request MAC and
//! [`client`] the signed HTTP client other crates use.

pub mod client;
pub mod iso_time;
pub mod mac;
pub mod model;

pub use client::{CardprocClient, ClientError};
pub use iso_time::IsoTime;
pub use model::{
    CardNumber, ConfigResponse, CreateTransactionRequest, DecimalAmount, ErrorBody, FailureReason,
    ProcessCardRequest, Refund, RefundRequest, RefundState, RefundType, Transaction,
    TransactionState,
};
