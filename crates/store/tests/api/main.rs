//! Storage tests of the store itself, run against every available engine.
