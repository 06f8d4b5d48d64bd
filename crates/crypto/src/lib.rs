//! GNU Taler cryptography for cardcash: SHA-512, GNUnet's HKDF and KDF-mod, Ed25519 with the
//! GNUnet purpose envelope and one typed builder per signature purpose (complete for what an
//! exchange of protocol v23 signs or checks, security-module announcements included), ECDHE,
//! RSA full-domain-hash blind signatures (OpenSSL), Clause-Schnorr blind signatures (exchange and
//! wallet side), Edx25519 derivation (ready, not yet used), planchet and refresh derivations,
//! wire hashes (full and normalized payto, account restrictions), canonical JSON and
//! `h_contract_terms`.
//!
//! This is the only crate that touches cryptographic primitives, and it never does IO (randomness
//! from the operating system is the single exception, in [`random`]). Every function here is
//! proven against GNUnet's and the Taler wallet's known-answer vectors (`tests/vectors/`).
//! Spec: `shared/spec/taler-protocol.md` §2–§5.
//!
//! RSA private-key operations are plain synchronous functions; services call them from
//! `spawn_blocking`.

pub mod coin;
pub mod contract;
pub mod cs;
pub mod ecdh;
pub mod eddsa;
pub mod edx25519;
pub mod error;
pub mod hash;
pub mod kdf;
pub mod mac;
pub mod password;
pub mod purpose;
pub mod random;
pub mod refresh;
pub mod rsa;
mod sexp;
pub mod wire;

pub use coin::planchet;
pub use contract::{canonical_json, h_contract_terms};
pub use ecdh::EcdhePrivateKey;
pub use eddsa::{BatchError, EddsaPrivateKey, verify, verify_batch};
pub use error::CryptoError;
pub use hash::{Sha512Hasher, sha512};
pub use kdf::{kdf, kdf_mod};
pub use purpose::{SignedMessage, purpose_code};
pub use random::random_bytes;
pub use wire::{h_payto, h_wire};
