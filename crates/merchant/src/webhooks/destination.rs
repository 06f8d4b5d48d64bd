//! Where a webhook may send: the guard against server-side request forgery.
//!
//! An instance owner is a tenant of the backend: with only an instance token, a webhook URL
//! must not make the backend reach its own network (the database, an admin port on loopback,
//! the cloud metadata service at 169.254.169.254, a neighbour on 10/8). Unless
//! `[merchant] WEBHOOK_ALLOW_PRIVATE_ADDRESSES = yes`, a webhook reaches public unicast
//! addresses only ([`refused_range`] names everything else), checked twice:
//!
//! - at creation and change ([`check_url`]): http or https, no `user:password@`, and a host
//!   that is an IP literal must be public (a name is not resolved then: its addresses may
//!   change any time);
//! - at every attempt: an IP literal is checked again (the option may have changed, rows may
//!   predate it; hyper connects to a literal without asking the resolver), and a name is
//!   resolved by [`PublicResolver`], which hands the connector only public addresses. The
//!   check thus applies to the very address connected to, so a name that resolves to a public
//!   address for a check and to 127.0.0.1 for the connection (DNS rebinding) gains nothing.
//!
//! The delivery client ([`client`]) also follows no redirect (a `302` to an internal address
//! would bypass all this), uses no proxy (a proxy would resolve the name itself, unchecked),
//! and bounds the connection and the whole attempt in time.
//!
//! This module never logs or stores anything: the worker records a refusal as a failed attempt.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::ATTEMPT_TIMEOUT;

/// The longest wait for a connection (resolution and TLS included), within [`ATTEMPT_TIMEOUT`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The IPv4 ranges a webhook may not reach: RFC 6890's special-purpose registry (those not
/// globally reachable) plus multicast and the reserved 240/4.
const REFUSED_V4: [(Ipv4Addr, u8, &str); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" 0.0.0.0/8"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private 10.0.0.0/8"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared (CGNAT) 100.64.0.0/10",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback 127.0.0.0/8"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (cloud metadata) 169.254.0.0/16",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private 172.16.0.0/12"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments 192.0.0.0/24",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation 192.0.2.0/24",
    ),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay 192.88.99.0/24",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private 192.168.0.0/16"),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking 198.18.0.0/15",
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation 198.51.100.0/24",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation 203.0.113.0/24",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast 224.0.0.0/4"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved and broadcast 240.0.0.0/4",
    ),
];

/// IPv6 is an allow-list: only global unicast (2000::/3) minus these. The ranges outside
/// 2000::/3 are listed only to name them in refusals.
const REFUSED_V6: [(Ipv6Addr, u8, &str); 12] = [
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified ::"),
    (Ipv6Addr::LOCALHOST, 128, "loopback ::1"),
    (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible ::/96"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64 64:ff9b:1::/48",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only 100::/64",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments (Teredo, ORCHID) 2001::/23",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation 2001:db8::/32",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation 3fff::/20",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local fc00::/7",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local fe80::/10",
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local fec0::/10",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast ff00::/8",
    ),
];

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The refused range `ip` lies in (a name for messages), or `None` for a public unicast
/// address a webhook may reach. IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by that address: the packets
/// end up there.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => REFUSED_V4
            .iter()
            .find(|(net, len, _)| in_v4(v4, *net, *len))
            .map(|(_, _, name)| *name),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_range(IpAddr::V4(v4));
            }
            let bits = u128::from(v6);
            let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
            if in_v6(v6, nat64, 96) {
                return refused_range(IpAddr::V4(Ipv4Addr::from(bits as u32)));
            }
            let six_to_four = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);
            if in_v6(v6, six_to_four, 16) {
                return refused_range(IpAddr::V4(Ipv4Addr::from((bits >> 80) as u32)));
            }
            if let Some((_, _, name)) = REFUSED_V6
                .iter()
                .find(|(net, len, _)| in_v6(v6, *net, *len))
            {
                return Some(name);
            }
            let global_unicast = Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0);
            (!in_v6(v6, global_unicast, 3)).then_some("not global unicast (outside 2000::/3)")
        }
    }
}

/// The IP address of a URL's host, if it is a literal (`[::1]` without its brackets).
fn host_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks a webhook URL: http or https, a host, no credentials, and (unless `allow_private`) a
/// host that is not an IP literal of a refused range. `Err` says why, for the client.
pub fn check_url(text: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("no user:password@ in the URL (send credentials with header_template)".into());
    }
    if !allow_private
        && let Some(ip) = host_ip(&url)
        && let Some(range) = refused_range(ip)
    {
        return Err(format!(
            "{ip} is a {range} address; webhooks reach public addresses only"
        ));
    }
    Ok(url)
}

/// A name resolved to no address a webhook may reach: the reason of a refused attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRefused {
    pub host: String,
    /// Every address the name had, with its refused range.
    pub addresses: Vec<(IpAddr, &'static str)>,
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves to no public address (", self.host)?;
        for (i, (ip, range)) in self.addresses.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{ip}: {range}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for AddressRefused {}

/// The system resolver (`getaddrinfo`, off the executor), keeping public addresses only: what
/// it answers is what the connector connects to.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = all
                .into_iter()
                .partition(|a| refused_range(a.ip()).is_none());
            if public.is_empty() {
                let addresses = refused
                    .iter()
                    .filter_map(|a| Some((a.ip(), refused_range(a.ip())?)))
                    .collect();
                return Err(Box::new(AddressRefused { host, addresses }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of the deliveries: no redirects, no proxy, bounded in time and, unless
/// `allow_private`, resolving through [`PublicResolver`].
pub fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        // A receiver's redirect is a failed delivery, not a request to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if allow_private {
        builder.build()
    } else {
        builder.dns_resolver(Arc::new(PublicResolver)).build()
    }
}

/// The [`AddressRefused`] somewhere in `error`'s chain of causes.
pub fn address_refused<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a AddressRefused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<&'static str> {
        refused_range(text.parse().unwrap())
    }

    #[test]
    fn public_unicast_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "223.255.255.255",
            "2a00:1450:4001:80b::200e",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn loopback_private_link_local_and_special_addresses_are_refused() {
        for (ip, range) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "this network"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.19.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b:1::1", "NAT64"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "metadata"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "Teredo"),
            ("100::1", "discard"),
            ("5f00::1", "not global unicast"),
            ("4000::1", "not global unicast"),
        ] {
            let got = refused(ip);
            assert!(got.is_some_and(|r| r.contains(range)), "{ip}: {got:?}");
        }
    }

    #[test]
    fn urls_need_http_a_host_no_credentials_and_a_public_literal() {
        let ok = |u: &str| {
            check_url(u, false)
                .map(|_| ())
                .map_err(|e| format!("{u}: {e}"))
        };
        let bad = |u: &str, allow: bool| check_url(u, allow).unwrap_err();
        ok("https://shop.example/hooks").unwrap();
        ok("http://93.184.216.34:8080/x").unwrap();
        ok("https://[2606:4700::1111]/x").unwrap();
        // Names are not resolved at creation: the attempt checks what they resolve to.
        ok("http://localhost:8080/hook").unwrap();
        assert!(bad("ftp://shop.example/", true).contains("http"));
        assert!(bad("https://user:pw@shop.example/", true).contains("user:password@"));
        assert!(bad("https://user@shop.example/", true).contains("user:password@"));
        assert!(bad("not a url", true).contains("not a URL"));
        for url in [
            "http://127.0.0.1:9966/management/instances",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            // The URL parser's other spellings of IPv4 (hex, a single number, short forms).
            "http://0x7f.1/",
            "http://2130706433/",
            "http://127.1/",
        ] {
            let why = bad(url, false);
            assert!(why.contains("public addresses only"), "{url}: {why}");
            check_url(url, true).unwrap();
        }
    }

    #[tokio::test]
    async fn the_resolver_hands_out_public_addresses_only() {
        let name = |s: &str| s.parse::<Name>().unwrap();
        let refused = PublicResolver
            .resolve(name("localhost"))
            .await
            .err()
            .expect("localhost is refused");
        let refused = address_refused(refused.as_ref()).expect("an AddressRefused");
        assert_eq!(refused.host, "localhost");
        assert!(
            refused
                .addresses
                .iter()
                .all(|(ip, _)| ip.is_loopback() || ip.to_canonical().is_loopback()),
            "{refused}"
        );
        // An IP literal given as a name (as a proxy or another connector would) too.
        assert!(
            PublicResolver
                .resolve(name("169.254.169.254"))
                .await
                .is_err()
        );
    }
}
