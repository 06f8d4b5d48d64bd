//! Integration tests of `cardcash-crypto`: every known-answer vector file in `tests/vectors/`
//! (each value asserted byte for byte, plus a one-byte-flip negative check per operation), the
//! purpose layouts (every protocol v23 message pinned byte by byte in `v23`), RSA and JSON edge
//! cases, and property tests.

mod contract_api;
mod gnunet_vectors;
mod purposes;
mod rsa_api;
mod support;
mod v23;
mod wallet_core_vectors;
