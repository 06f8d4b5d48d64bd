//! The exchange's background workers, each on `cardcash_http::WorkerRunner` (backoff on
//! errors, wake-ups by store notifications): [`keys`] (key rotation and `/keys` rebuilds),
//! [`wirewatch`] (incoming transfers → reserves), [`aggregator`] (deposits → wire transfers to
//! merchants, and their execution), [`bounce`] (incoming transfers that fund no reserve → sent
//! back), [`closer`] (expired reserves → closed and wired back to their origin, and the
//! execution of those transfers).

pub mod aggregator;
pub mod bounce;
pub mod closer;
pub mod keys;
pub mod wirewatch;
