use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

use crate::CallbackError;

/// One allow-list entry: a network (a bare IP is a /32 or /128) or an exact host name,
/// optionally restricted to one port (`127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// Resolved addresses inside this network are allowed (on this port only, if given).
    Net(IpNet, Option<u16>),
    /// Every address this host name resolves to is allowed (compared without case
    /// or trailing dot; on this port only, if given).
    Host(String, Option<u16>),
}

impl FromStr for AllowEntry {
    type Err = CallbackError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let invalid = || CallbackError::InvalidAllowEntry(s.to_owned());
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(AllowEntry::Net(net, None));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(AllowEntry::Net(IpNet::from(ip), None));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(AllowEntry::Net(IpNet::from(addr.ip()), Some(addr.port())));
        }
        let (name, port) = match s.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().map_err(|_| invalid())?)),
            None => (s, None),
        };
        let host = normalise_host(name);
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if valid {
            Ok(AllowEntry::Host(host, port))
        } else {
            Err(invalid())
        }
    }
}

fn port_matches(allowed: Option<u16>, port: u16) -> bool {
    allowed.is_none_or(|p| p == port)
}

/// Which special-range addresses a callback may reach anyway.
///
/// The default (empty) policy refuses them all; production should keep it empty.
/// The allow-list exists for local testing (`127.0.0.1`, `localhost`,
/// `172.17.0.0/16` for a LocalStack network, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Exceptions to the special-range refusal.
    pub allow: Vec<AllowEntry>,
}

impl AddressPolicy {
    /// Parse a comma- or whitespace-separated list, as read from an environment
    /// variable. An empty string gives the default, refuse-all policy.
    pub fn parse_list(list: &str) -> Result<Self, CallbackError> {
        let allow = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allow })
    }

    fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = normalise_host(host);
        self.allow
            .iter()
            .any(|e| matches!(e, AllowEntry::Host(h, p) if *h == host && port_matches(*p, port)))
    }

    fn allows_ip(&self, ip: IpAddr, port: u16) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(
            |e| matches!(e, AllowEntry::Net(net, p) if net.contains(&ip) && port_matches(*p, port)),
        )
    }

    /// Judge the addresses `host` resolved to (an IP literal is its own single
    /// address): all of them, or the refusal naming the first forbidden one.
    ///
    /// Synchronous and free of I/O, for resolvers that do their own lookup (the git
    /// fetcher's HTTP client) and must refuse before connecting.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), CallbackError> {
        if addrs.is_empty() {
            return Err(CallbackError::NoAddresses(host.to_owned()));
        }
        for addr in addrs {
            if self.allows_host(host, addr.port()) {
                continue;
            }
            if let Some(range) = is_forbidden(addr.ip())
                && !self.allows_ip(addr.ip(), addr.port())
            {
                return Err(CallbackError::Refused {
                    host: host.to_owned(),
                    addr: addr.ip(),
                    range,
                });
            }
        }
        Ok(())
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// An IPv4 address hidden in IPv6 (`::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is
/// judged as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b, c, d] = v6.octets()[12..] else {
                    return ip;
                };
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// The special range `ip` falls in, or `None` for an ordinary public address.
///
/// IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 address.
pub fn is_forbidden(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let in_net = |a: u8, b: u8, c: u8, prefix: u32| {
        let net = u32::from(Ipv4Addr::new(a, b, c, 0));
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        u32::from(ip) & mask == net & mask
    };
    Some(match () {
        _ if ip.is_unspecified() || o[0] == 0 => "unspecified (0.0.0.0/8)",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local (incl. cloud metadata)",
        _ if in_net(100, 64, 0, 10) => "shared/CGNAT (100.64.0.0/10)",
        _ if in_net(192, 0, 0, 24) => "IETF protocol assignment (192.0.0.0/24)",
        _ if ip.is_documentation() => "documentation",
        _ if in_net(198, 18, 0, 15) => "benchmarking (198.18.0.0/15)",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        _ if o[0] >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match () {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // ::/96 (IPv4-compatible, deprecated) and other not-yet-assigned zero prefixes.
        _ if s[..6] == [0; 6] => "reserved (::/96)",
        _ if ip.is_multicast() => "multicast",
        _ if s[0] & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        _ if s[0] & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        _ if s[0] & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        _ if s[0] == 0x2001 && s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        _ if s[0] & 0xfff0 == 0x3ff0 => "documentation (3fff::/20)",
        _ if s[..4] == [0x100, 0, 0, 0] => "discard (100::/64)",
        // Teredo and 6to4 tunnel to IPv4 addresses we cannot judge from here.
        _ if s[0] == 0x2001 && s[1] == 0 => "Teredo (2001::/32)",
        _ if s[0] == 0x2002 => "6to4 (2002::/16)",
        _ => return None,
    })
}

/// Resolve the callback host once and return the addresses delivery may connect to.
///
/// Refuses if *any* resolved address is in a special range that `policy` does not
/// allow: a name with one public and one private record could otherwise be steered
/// to the private one. The caller must connect only to the returned addresses (as
/// [`crate::Deliverer`] does) so a second, different DNS answer cannot be used.
pub async fn check_url(
    url: &Url,
    policy: &AddressPolicy,
) -> Result<Vec<SocketAddr>, CallbackError> {
    let port = url
        .port_or_known_default()
        .ok_or(CallbackError::MissingHost)?;
    let (host, addrs): (String, Vec<SocketAddr>) = match url.host() {
        None => return Err(CallbackError::MissingHost),
        Some(Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
        Some(Host::Domain(name)) => {
            let resolved = tokio::net::lookup_host((name, port))
                .await
                .map_err(|source| CallbackError::Resolve {
                    host: name.to_owned(),
                    source,
                })?;
            (name.to_owned(), resolved.collect())
        }
    };
    policy.check_resolved(&host, &addrs)?;
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        let forbidden = [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:0:4136:e378::1",
            "2002:7f00:1::1",
            "fd00:ec2::254",
        ];
        for s in forbidden {
            let ip: IpAddr = s.parse().unwrap();
            assert!(is_forbidden(ip).is_some(), "{s} should be forbidden");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        for s in public {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(is_forbidden(ip), None, "{s} should be allowed");
        }
    }

    #[test]
    fn allow_list_parsing() {
        let p = AddressPolicy::parse_list("127.0.0.1, 10.0.0.0/8 ::1 LocalHost.").unwrap();
        assert_eq!(p.allow.len(), 4);
        assert_eq!(p.allow[3], AllowEntry::Host("localhost".into(), None));
        assert!(p.allows_ip("127.0.0.1".parse().unwrap(), 80));
        assert!(p.allows_ip("::ffff:127.0.0.1".parse().unwrap(), 80));
        assert!(!p.allows_ip("127.0.0.2".parse().unwrap(), 80));
        assert!(p.allows_ip("10.9.9.9".parse().unwrap(), 80));
        assert!(p.allows_host("localhost", 80));
        assert_eq!(
            AddressPolicy::parse_list("").unwrap(),
            AddressPolicy::default()
        );
        let err = AddressPolicy::parse_list("10.0.0.0/33").unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
        assert!(AddressPolicy::parse_list("http://x").is_err());
    }

    #[test]
    fn allow_entries_with_ports() {
        let p = AddressPolicy::parse_list("127.0.0.1:18418 [::1]:81 localhost:82").unwrap();
        assert!(p.allows_ip("127.0.0.1".parse().unwrap(), 18418));
        assert!(!p.allows_ip("127.0.0.1".parse().unwrap(), 18420));
        assert!(p.allows_ip("::1".parse().unwrap(), 81));
        assert!(!p.allows_ip("::1".parse().unwrap(), 80));
        assert!(p.allows_host("LOCALHOST.", 82));
        assert!(!p.allows_host("localhost", 83));
        let at = |port| [SocketAddr::new("127.0.0.1".parse().unwrap(), port)];
        assert!(p.check_resolved("127.0.0.1", &at(18418)).is_ok());
        let err = p.check_resolved("example.test", &at(18420)).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        assert!(AddressPolicy::parse_list("localhost:http").is_err());
        assert!(AddressPolicy::parse_list("localhost:99999").is_err());
    }
}
