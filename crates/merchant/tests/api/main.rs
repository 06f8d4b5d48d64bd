//! The merchant backend's integration tests (one binary): real services on 127.0.0.1:0, each
//! test once per engine.

mod config;
mod helpers;
mod instances;
mod inventory;
mod legacy;
mod openapi;
mod orders;
mod payments;
mod settlement;
mod status;
mod webhooks;
