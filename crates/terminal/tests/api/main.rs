//! Integration tests: the terminal flow against a real card processor and a real C2EC, both
//! started through the test kit's world on 127.0.0.1:0 over SQLite files in a temporary
//! directory, with a "wallet" task that registers a fresh reserve public key when the flow
//! reports the WOPID.

mod client;
mod display;
mod flow;
mod helpers;
