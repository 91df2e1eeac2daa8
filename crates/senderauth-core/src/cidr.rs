//! IP networks (`192.0.2.0/24`), as SPF's ip4/ip6 mechanisms and the sending ranges use them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    pub address: IpAddr,
    pub prefix: u8,
}

impl IpNetwork {
    /// A network of `address` with `prefix` bits; `None` when the prefix is too long.
    pub fn new(address: IpAddr, prefix: u8) -> Option<IpNetwork> {
        let max = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNetwork { address, prefix })
    }

    /// The first and the last address of the network (the same for a single address).
    pub fn ends(&self) -> (IpAddr, IpAddr) {
        match self.address {
            IpAddr::V4(address) => {
                let host_mask = u32::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0);
                let address = u32::from(address);
                (IpAddr::V4((address & !host_mask).into()), IpAddr::V4((address | host_mask).into()))
            }
            IpAddr::V6(address) => {
                let host_mask = u128::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0);
                let address = u128::from(address);
                (IpAddr::V6((address & !host_mask).into()), IpAddr::V6((address | host_mask).into()))
            }
        }
    }

    /// Whether `candidate` lies in this network. Addresses of the other family never match.
    pub fn contains(&self, candidate: IpAddr) -> bool {
        match (self.address, candidate) {
            (IpAddr::V4(network), IpAddr::V4(candidate)) => {
                prefix_matches(u32::from(network).into(), u32::from(candidate).into(), self.prefix, 32)
            }
            (IpAddr::V6(network), IpAddr::V6(candidate)) => {
                prefix_matches(u128::from(network), u128::from(candidate), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_matches(network: u128, candidate: u128, prefix: u8, width: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = width - u32::from(prefix);
    (network >> shift) == (candidate >> shift)
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network (like 192.0.2.0/24 or 2001:db8::/32)"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be a number from 0 to {max}"))?,
            None => max,
        };
        Ok(IpNetwork { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment() {
        let network: IpNetwork = "192.0.2.0/24".parse().expect("valid");
        assert!(network.contains("192.0.2.77".parse().expect("ip")));
        assert!(!network.contains("192.0.3.1".parse().expect("ip")));
        assert!(!network.contains("2001:db8::1".parse().expect("ip")));
        let v6: IpNetwork = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains("2001:db8:ffff::1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("0.0.0.0/0".parse::<IpNetwork>().expect("valid").contains("203.0.113.9".parse().expect("ip")));
        let ends = |text: &str| {
            let (first, last) = text.parse::<IpNetwork>().expect("valid").ends();
            (first.to_string(), last.to_string())
        };
        assert_eq!(ends("192.0.2.77/24"), ("192.0.2.0".into(), "192.0.2.255".into()));
        assert_eq!(ends("192.0.2.77"), ("192.0.2.77".into(), "192.0.2.77".into()));
        assert_eq!(ends("2001:db8:5::/48"), ("2001:db8:5::".into(), "2001:db8:5:ffff:ffff:ffff:ffff:ffff".into()));
        assert_eq!(ends("0.0.0.0/0"), ("0.0.0.0".into(), "255.255.255.255".into()));
    }
}
