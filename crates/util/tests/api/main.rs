//! Property tests for cardcash-util: round trips, arithmetic laws, and "no parser panics on
//! arbitrary input" for every parser of untrusted text.

mod never_panic;
mod round_trip;
