//! Listening addresses: one clear error naming the service, the address and the configuration
//! option to change, instead of a bare "Address already in use" from deep inside a service.

use std::hash::BuildHasher;
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

/// A loopback address with a port that is free right now, for a service that binds it moments
/// later (the probe listener is closed at once).
///
/// The port is drawn below the kernel's ephemeral range: a port the kernel hands out for `:0`
/// or for an outgoing connection could be taken again by another service or client in between,
/// which one drawn outside that range cannot.
pub fn free_local_port() -> anyhow::Result<SocketAddr> {
    let (ephemeral_start, _) = ephemeral_port_range();
    let low = 15_000u16.min(ephemeral_start.saturating_sub(1_000));
    let span = u64::from(ephemeral_start.saturating_sub(low).max(1));
    for attempt in 0..64u32 {
        // Each RandomState has fresh random keys: a cheap random draw without another crate.
        let draw = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let port = low + u16::try_from(draw % span).unwrap_or(0);
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?);
        }
    }
    // Everything tried below the range is taken: let the kernel choose.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?)
}

/// The kernel's ephemeral port range (Linux's default when it cannot be read).
fn ephemeral_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(str::parse::<u16>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .unwrap_or((32_768, 60_999))
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

    #[test]
    fn a_chosen_port_is_free_and_below_the_ephemeral_range() {
        let (start, _) = ephemeral_port_range();
        let addr = free_local_port().expect("a free port");
        assert!(
            addr.port() < start,
            "{addr} is in the ephemeral range from {start}"
        );
        TcpListener::bind(addr).expect("the chosen port can be bound");
    }
}
