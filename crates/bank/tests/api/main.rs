//! Integration tests of the bank: the real `App` on 127.0.0.1:0 over every test database engine
//! (`cardcash_store::testing`: SQLite always, PostgreSQL when `CARDCASH_TEST_PG_URL` is set),
//! driven over HTTP with reqwest and the crate's own Wire Gateway client.

mod accounts;
mod auth;
mod concurrency;
mod helpers;
mod history;
mod storage;
mod transfers;
mod wire_gateway;
