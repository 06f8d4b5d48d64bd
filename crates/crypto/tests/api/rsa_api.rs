//! RSA edge cases and round trips.
