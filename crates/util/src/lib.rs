//! Taler protocol values: amounts, time, base32, payto and taler:// URIs, INI config, error codes (no IO).
