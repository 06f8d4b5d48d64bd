//! Logging set-up for binaries: `tracing` with an `EnvFilter` from `RUST_LOG` (default `info`),
//! as human-readable lines or as JSON objects for log shippers.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (e.g. from several tests) is a no-op.
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Failure only means a subscriber is already installed, which is what the caller wanted.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
