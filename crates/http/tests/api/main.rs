//! Integration tests of the shared service plumbing: one test app built with the same
//! `ServiceRouter` every service uses, exercised in-process with `oneshot` and over a real socket.

mod compression;
mod connections;
mod credential;
mod errors;
mod helpers;
mod layers;
mod metrics;
mod server;
mod worker;
