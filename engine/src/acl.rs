//! Address lists: `allow`, `deny` and `trusted_proxies`.
//!
//! An `Acl` is a flat list of networks checked linearly: config lists are short,
//! and a scan over a few `IpNet`s beats any tree at that size. Lookups never
//! allocate. An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, what a dual-stack socket
//! reports for IPv4 clients) is matched against IPv4 networks as the IPv4 address
//! it is (RFC 4291 §2.5.5.2).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acl {
    nets: Vec<IpNet>,
}

impl Acl {
    pub fn new(nets: Vec<IpNet>) -> Acl {
        Acl { nets }
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Inlined: most lists are empty, and that answer costs two instructions
    /// where a call cost thirty (twice per proxied request).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        !self.is_empty() && self.contains_in(ip)
    }

    fn contains_in(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&canonical) || net.contains(&ip))
    }
}

/// Parses one list entry: a CIDR (`10.0.0.0/8`, `fd00::/8`), a bare address
/// (a /32 or /128 network) or `all` (both address families, as nginx's `all`).
/// Host bits below the prefix are dropped, as nginx does for `allow 10.1.2.3/8`.
pub fn parse_entry(s: &str) -> Result<Vec<IpNet>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("all") {
        return Ok(vec![
            IpNet::from_str("0.0.0.0/0").map_err(|e| e.to_string())?,
            IpNet::from_str("::/0").map_err(|e| e.to_string())?,
        ]);
    }
    if s.contains('/') {
        return IpNet::from_str(s)
            .map(|net| vec![net.trunc()])
            .map_err(|_| {
                format!("invalid CIDR {s:?} (expected e.g. \"192.168.1.0/24\" or \"fd00::/8\")")
            });
    }
    IpAddr::from_str(s)
        .map(|ip| vec![IpNet::from(ip)])
        .map_err(|_| {
            format!(
                "invalid address {s:?} (expected an IP address or a CIDR such as \"10.0.0.0/8\")"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[&str]) -> Acl {
        Acl::new(
            entries
                .iter()
                .flat_map(|e| parse_entry(e).unwrap())
                .collect(),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_and_bare_addresses() {
        let a = acl(&["192.168.1.0/24", "127.0.0.1", "fd00::/8"]);
        assert!(a.contains(ip("192.168.1.77")));
        assert!(!a.contains(ip("192.168.2.1")));
        assert!(a.contains(ip("127.0.0.1")));
        assert!(!a.contains(ip("127.0.0.2")));
        assert!(a.contains(ip("fd12::1")));
        assert!(!a.contains(ip("fe80::1")));
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_nets() {
        let a = acl(&["10.0.0.0/8"]);
        assert!(a.contains(ip("::ffff:10.1.2.3")));
        assert!(!a.contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn empty_and_all() {
        assert!(Acl::default().is_empty());
        assert!(!Acl::default().contains(ip("1.2.3.4")));
        let all = acl(&["all"]);
        assert!(all.contains(ip("1.2.3.4")));
        assert!(all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn host_bits_are_dropped() {
        let a = acl(&["10.1.2.3/8"]);
        assert_eq!(a.nets()[0].to_string(), "10.0.0.0/8");
        assert!(a.contains(ip("10.200.0.1")));
    }

    #[test]
    fn bad_entries() {
        assert!(parse_entry("192.168.1.0/33").is_err());
        assert!(parse_entry("192.168.1").is_err());
        assert!(parse_entry("example.com").is_err());
        assert!(parse_entry("").is_err());
    }
}
