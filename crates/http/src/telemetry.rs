//! Logging set-up for binaries: `tracing` with an `EnvFilter` from `RUST_LOG` (default `info`),
//! as human-readable lines or as JSON objects for log shippers. Logs go to stderr so that a
//! command's own output on stdout stays clean. Human-readable lines are coloured only when stderr
//! is a terminal (and `NO_COLOR` is unset), so a log redirected to a file holds no escape codes.

use std::io::IsTerminal as _;

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
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs());
    // Failure only means a subscriber is already installed, which is what the caller wanted.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether human-readable log lines may carry colour escapes: only on a terminal, and not when
/// the user asked for none (<https://no-color.org>).
fn colour_logs() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
