//! The merchant backend's HTTP surface: the route table ([`router`]) and thin handlers, one
//! module per area. Every instance-relative route is served twice: at `/…` for the default
//! instance and at `/instances/{instance}/…`; handlers learn which through
//! [`crate::auth::InstanceId`] and take their other path parameters as named structs (a tuple
//! would also see `instance`).

pub mod config;
pub mod instances;
pub mod inventory;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod router;
pub mod sessions;
pub mod settlement;
pub mod status;
pub mod webhooks;

use crate::service::Merchant;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub merchant: Merchant,
}
