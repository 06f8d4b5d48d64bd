//! Logging set-up for binaries: `tracing` with an `EnvFilter` from `RUST_LOG` (default `info`),
//! as human-readable lines or as JSON objects for log shippers. Logs go to stderr so that a
//! command's own output on stdout stays clean.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with the default level `info`; a second call (e.g. from
/// several tests) is a no-op.
pub fn init_tracing(json: bool) {
    init_tracing_with_default(json, "info");
}

/// Like [`init_tracing`] with another default filter (used when `RUST_LOG` is unset), e.g.
/// `warn` for interactive commands whose progress output would drown in request logs.
pub fn init_tracing_with_default(json: bool, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Failure only means a subscriber is already installed, which is what the caller wanted.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
