//! A GNU Taler exchange, protocol v23 (`cardcash exchange serve`).
//!
//! Map: [`config`] (INI `[exchange]`, `[coin_*]`, `[exchange-account-*]`), [`error`] (Taler
//! codes), [`keys`] (the online key store and the key state behind `/keys`), [`db`] (all SQL,
//! both engines, behind [`db::ExchangeStore`]).

pub mod config;
pub mod db;
pub mod error;
pub mod keys;

pub use config::ExchangeConfig;
pub use error::ExchangeError;
