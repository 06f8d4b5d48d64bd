//! Listening addresses: one clear error naming the service, the address and the configuration
//! option to change, instead of a bare "Address already in use" from deep inside a service.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// Why `bind` cannot be listened on right now, or `None` when it can (port 0 always can).
/// The probe listener is closed again at once; the service binds for real right after.
pub fn probe(bind: SocketAddr) -> Option<std::io::Error> {
    if bind.port() == 0 {
        return None;
    }
    TcpListener::bind(bind).err()
}

/// Fails with one sentence when `service` ("the bank", "C2EC"; configured in `[section]` of
/// `config`) cannot listen on `bind`.
pub fn check(service: &str, section: &str, bind: SocketAddr, config: &Path) -> anyhow::Result<()> {
    match probe(bind) {
        None => Ok(()),
        Some(e) => Err(anyhow::anyhow!(problem(service, section, bind, config, &e))),
    }
}

/// The sentence for a failed bind.
pub fn problem(
    service: &str,
    section: &str,
    bind: SocketAddr,
    config: &Path,
    e: &std::io::Error,
) -> String {
    let (why, first) = match e.kind() {
        ErrorKind::AddrInUse => (
            "the address is already in use (another program, or another cardcash, listens there)"
                .to_owned(),
            "Stop the other program, or set",
        ),
        ErrorKind::PermissionDenied => (
            "permission denied (ports below 1024 need privileges)".to_owned(),
            "Set",
        ),
        ErrorKind::AddrNotAvailable => (
            "no network interface of this machine has that address".to_owned(),
            "Set",
        ),
        _ => (e.to_string(), "Set"),
    };
    format!(
        "{service} cannot listen on {bind}: {why}. {first} BIND in section [{section}] of {} to \
         a free address (127.0.0.1:0 picks any free port).",
        config.display()
    )
}

/// A loopback address with a port that is free right now (the listener is closed at once; a
/// service binds it moments later).
pub fn free_local_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_is_named_with_its_service_and_option() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = check("the bank", "bank", addr, Path::new("x.conf")).expect_err("in use");
        let text = e.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("the bank cannot listen"), "{text}");
        assert!(text.contains("BIND in section [bank] of x.conf"), "{text}");
        assert!(text.contains("already in use"), "{text}");
        assert!(probe("127.0.0.1:0".parse().expect("addr")).is_none());
    }
}
