//! The storefront's integration tests (one binary): the shop on a real merchant backend (the
//! test kit's world: bank and merchant, each on a fresh database of the engine under test),
//! driven over HTTP like a browser without JavaScript (cookies kept, redirects not followed),
//! and once by headless Chromium with the real wallet (`browser`).

mod admin;
mod browser;
mod cart;
mod helpers;
mod paywall;
