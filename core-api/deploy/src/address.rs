//! Which addresses loco-api may open a connection to on a tenant's behalf (an image
//! reference names a host; the registry's challenge names another). Only public
//! internet addresses, unless the operator names a registry that lives on a private
//! network: a member who may deploy must not make loco-api reach a cloud's metadata
//! endpoint, the API server, Postgres or a Pod of another tenant.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Ranges that are never the public internet (RFC 6890 and friends), checked before the
/// operator's own list (the cluster's Pod, Service and node ranges).
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // carrier-grade NAT (also some clouds' internal ranges)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, with the metadata endpoint 169.254.169.254
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and broadcast
    "::/128",          // unspecified
    "::1/128",         // loopback
    "64:ff9b::/96",    // NAT64 (maps to IPv4, which may be private)
    "64:ff9b:1::/48",  // local NAT64
    "100::/64",        // discard
    "2001:db8::/32",   // documentation
    "2002::/16",       // 6to4 (embeds IPv4)
    "fc00::/7",        // unique local, with AWS's metadata fd00:ec2::254
    "fe80::/10",       // link-local
    "ff00::/8",        // multicast
];

/// Why an address was refused (for the log; users see one uniform sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub address: IpAddr,
    pub range: IpNet,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is in {}", self.address, self.range)
    }
}

/// The address filter: the built-in non-public ranges plus the operator's.
#[derive(Debug, Clone)]
pub struct AddressFilter {
    ranges: Vec<IpNet>,
}

impl Default for AddressFilter {
    fn default() -> Self {
        AddressFilter::new(&[])
    }
}

impl AddressFilter {
    /// `extra`: further ranges to refuse, e.g. the cluster's Pod and Service CIDRs.
    pub fn new(extra: &[IpNet]) -> Self {
        let mut ranges: Vec<IpNet> = NOT_PUBLIC
            .iter()
            .map(|r| r.parse().expect("a literal CIDR"))
            .collect();
        ranges.extend_from_slice(extra);
        AddressFilter { ranges }
    }

    /// `Ok` when `ip` is a public address outside every refused range.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d, ::a.b.c.d) is that IPv4 address.
        let ip = canonical(ip);
        match self.ranges.iter().find(|r| r.contains(&ip)) {
            Some(range) => Err(Refused {
                address: ip,
                range: *range,
            }),
            None => Ok(()),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| compatible(v6)) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// `::a.b.c.d` (deprecated IPv4-compatible form), except `::` and `::1`.
fn compatible(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1)).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(f: &AddressFilter, ip: &str) -> bool {
        f.check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn refuses_metadata_loopback_link_local_and_private_ranges() {
        let f = AddressFilter::default();
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "10.96.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "ff02::1",
        ] {
            assert!(refused(&f, ip), "{ip} was let through");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        let f = AddressFilter::default();
        for ip in [
            "140.82.112.33",
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!refused(&f, ip), "{ip} was refused");
        }
    }

    #[test]
    fn refuses_the_operators_own_ranges() {
        let f = AddressFilter::new(&["203.1.0.0/16".parse().unwrap()]);
        assert!(refused(&f, "203.1.4.5"));
        assert!(!refused(&f, "203.2.4.5"));
        let e = f.check("203.1.4.5".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "203.1.4.5 is in 203.1.0.0/16");
    }
}
