//! Background workers started by `App::build` and stopped on shutdown.

pub mod attestation;
pub mod expiry;
pub mod refund;
