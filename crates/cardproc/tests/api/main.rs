//! Integration tests of the card processor: the real `App` on `127.0.0.1:0`, started through the
//! test kit's world on a fresh database, driven through `cardcash_client::CardprocClient` and raw
//! signed HTTP. Every test is an `engine_test!`: `name::sqlite` and `name::postgres` (skipped
//! visibly unless `CARDCASH_TEST_PG_URL` is set).

mod auth;
mod helpers;
mod operations;
mod payouts;
mod refunds;
mod store;
mod transactions;
