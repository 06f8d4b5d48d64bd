//! A bank with accounts and the Taler Wire Gateway API.
