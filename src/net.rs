//! Network addresses: CIDR blocks, the trusted proxies, and the subject an
//! address is throttled under.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
};

/// A block of addresses, like `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix`, or a bare address (one host). Host bits must be
    /// zero: `10.0.0.1/8` is more likely a typo than a wish.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{raw}` is not an IP address or CIDR block"))?;
        let width = max_prefix(network);
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{raw}`: the prefix length must be 0 to {width}"))?,
        };
        let cidr = Self { network, prefix };
        if cidr.masked(network) != network {
            return Err(format!(
                "`{raw}` has bits set beyond its prefix; did you mean {}/{prefix}?",
                cidr.masked(network)
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u32::from(v4) & mask).to_be_bytes())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u128::from(v6) & mask).to_be_bytes())
            }
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed (`PADDOCK_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDR blocks; empty means none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Whether no proxy is trusted (forwarding headers are ignored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What sign-in failures from `ip` are counted under: the IPv4 address, or the
/// /64 of an IPv6 address (one subscriber usually holds a whole /64, so counting
/// single IPv6 addresses would give each of them 2^64 fresh budgets).
pub fn throttle_subject(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let block = Cidr::parse("10.0.0.0/8").expect("parses");
        assert!(block.contains(ip("10.1.2.3")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(block.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        assert!(!block.contains(ip("::1")));
        let host = Cidr::parse("127.0.0.1").expect("a bare address is one host");
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").expect("parses");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let everything = Cidr::parse("0.0.0.0/0").expect("parses");
        assert!(everything.contains(ip("203.0.113.9")));
    }

    #[test]
    fn malformed_blocks_are_refused_with_a_reason() {
        for (raw, says) in [
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/x", "prefix length"),
            ("localhost", "not an IP address"),
            ("10.0.0/8", "not an IP address"),
        ] {
            let err = Cidr::parse(raw).expect_err(raw);
            assert!(err.contains(says), "{raw}: {err}");
        }
    }

    #[test]
    fn trusted_proxies_are_a_comma_separated_list() {
        let trusted = TrustedProxies::parse(" 127.0.0.1/32, 10.0.0.0/8 ,::1").expect("parses");
        assert!(trusted.contains(ip("127.0.0.1")));
        assert!(trusted.contains(ip("10.20.30.40")));
        assert!(trusted.contains(ip("::1")));
        assert!(!trusted.contains(ip("192.168.1.1")));
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/8,nonsense").is_err());
    }

    #[test]
    fn ipv6_addresses_are_throttled_per_64_and_ipv4_per_address() {
        assert_eq!(throttle_subject(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(throttle_subject(ip("::ffff:203.0.113.9")), "203.0.113.9");
        let a = throttle_subject(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, throttle_subject(ip("2001:db8:1:2::1")));
        assert_ne!(a, throttle_subject(ip("2001:db8:1:3::1")));
    }
}
