//! C2EC integration tests: real `App`s on 127.0.0.1:0 over SQLite and (with
//! `CARDCASH_TEST_PG_URL`) PostgreSQL, driven over HTTP as terminal, wallet and exchange.

mod amounts;
mod conflicts;
mod flow;
mod helpers;
mod input;
mod legacy_wallet;
mod real;
mod refunds;
mod storage;
mod validation;
mod wire_gateway;
