//! Integration tests of the bank: the real `App` on 127.0.0.1:0, started through the test kit's
//! world on a fresh database, driven over HTTP with reqwest and the Wire Gateway client. Every
//! test is an `engine_test!`: `name::sqlite` and `name::postgres` (skipped visibly unless
//! `CARDCASH_TEST_PG_URL` is set).

mod accounts;
mod auth;
mod concurrency;
mod helpers;
mod history;
mod storage;
mod transfers;
mod wire_gateway;
