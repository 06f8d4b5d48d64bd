//! The exchange's integration tests (one binary): real services on 127.0.0.1:0, each test once
//! per engine.

mod aggregator_accounts;
mod bounce;
mod c2ec;
mod closing;
mod coin_history;
mod conformance;
mod deposit;
mod helpers;
mod keys;
mod legacy;
mod recoup;
mod refresh;
mod storage;
mod vectors;
mod wallet;
mod wallet_v12;
mod withdraw;
