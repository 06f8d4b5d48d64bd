//! Keys: the online key store ([`store`]) that holds private keys and signs, and the key
//! state ([`state`]) built from what the master key signed, from which `/keys` is served; the
//! legacy face's `/keys` and `/wire` ([`legacy`]) are built with each snapshot.

pub mod legacy;
pub mod state;
pub mod store;
