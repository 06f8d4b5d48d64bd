//! A payment terminal that sells Taler e-cash for a card payment through C2EC.

pub mod qr;
pub mod receipt;
