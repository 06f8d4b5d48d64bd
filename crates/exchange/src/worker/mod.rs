//! The exchange's background workers, each on `cardcash_http::WorkerRunner` (backoff on
//! errors, wake-ups by store notifications): [`keys`] (key rotation and `/keys` rebuilds),
//! [`wirewatch`] (incoming transfers → reserves).

pub mod keys;
pub mod wirewatch;
