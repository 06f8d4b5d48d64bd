//! Integration tests of the card processor: the real `App` on `127.0.0.1:0`, on SQLite and (with
//! `CARDCASH_TEST_PG_URL`) PostgreSQL, driven through `cardcash_client::CardprocClient` and raw signed HTTP.

mod auth;
mod helpers;
mod operations;
mod refunds;
mod store;
mod transactions;
