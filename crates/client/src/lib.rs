//! Typed HTTP clients of every API cardcash serves, over one HTTP core with one error type.
//!
//! The services never link each other (ARCHITECTURE.md, "No service crate depends on another
//! service crate"): C2EC reads card transactions, the terminal pays and sets up withdrawals, the
//! demo plays wallet and exchange, all through this crate and the wire types of `cardcash-api`.
//!
//! Map: [`http`] is the core every client shares — [`HttpClient`] (one connection pool, request
//! and connect timeouts, a bound on response bodies, no redirects), [`Endpoint`] (a service's
//! base URL, name and credentials; path segments are percent-encoded one by one) and
//! [`Request`]; [`error`] is the one [`ClientError`] (unreachable, timeout, HTTP status with the
//! Taler error body, malformed or oversize response, unusable request), whose `Display` names
//! the service, the URL and what it said. One module per API:
//! [`bank`] (Core Bank API), [`wire_gateway`] (Taler Wire Gateway, client side, with long
//! polling), [`bank_integration`] (what a wallet asks about a withdrawal operation),
//! [`terminal`] (C2EC's Terminal API), [`cardproc`] (the card processor's Wallee-style API,
//! MAC-signed) and [`exchange`] (a Taler exchange, protocol v23, with its `/management`
//! endpoints) and [`merchant`] (a merchant backend's private API, as a shop uses it). The
//! wallet's merchant client joins as a module of its own on the same core.
//!
//! Nothing here retries: [`ClientError::is_retryable`] tells the caller whether trying again
//! can help, and the caller decides (backoff, idempotency keys).

pub mod bank;
pub mod bank_integration;
pub mod cardproc;
pub mod error;
pub mod exchange;
pub mod exchange_keys;
pub mod exchange_legacy;
mod exchange_route;
pub mod http;
pub mod merchant;
pub mod merchant_wallet;
pub mod terminal;
pub mod wire_gateway;

pub use bank::BankClient;
pub use bank_integration::BankIntegrationClient;
pub use cardproc::CardprocClient;
pub use error::{ClientError, ErrorKind};
pub use exchange::{DepositQuery, DepositStatus, ExchangeClient, ExchangeTerms, ManagementClient};
pub use exchange_keys::{KeysError, verify_keys};
pub use exchange_legacy::{LegacyExchangeClient, LegacyKeysError, verify_keys_v12};
pub use http::{Auth, ClientOptions, Endpoint, HttpClient, Request, Response};
pub use merchant::MerchantClient;
pub use merchant_wallet::{MerchantWalletClient, OrderStatusQuery, PublicOrderStatus};
pub use terminal::{C2ecTerminalClient, SetupAmount};
pub use wire_gateway::{HistoryRequest, WireGatewayClient};
