//! Merchant API types. Filled in below.
