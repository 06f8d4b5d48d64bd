//! The merchant's background workers, each on `cardcash_http::WorkerRunner` (one loop: wait for
//! a notification or a timer, run a step, back off while steps fail).
//!
//! - [`settlement`]: asks the exchanges which wire transfers paid the deposits of paid orders
//!   once their wire deadline passed (`crate::settlement`).

pub mod settlement;
