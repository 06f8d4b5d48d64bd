//! Keys: the online key store ([`store`]) that holds private keys and signs, and the key
//! state ([`state`]) built from what the master key signed, from which `/keys` is served.

pub mod state;
pub mod store;
