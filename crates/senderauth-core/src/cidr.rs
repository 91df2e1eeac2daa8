//! IP networks (`192.0.2.0/24`), as SPF's ip4/ip6 mechanisms and the sending ranges use them:
//! `ipnet`'s `IpNet`, read with this project's error messages, a bare address taken as a
//! network of one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An address with a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork(IpNet);

impl IpNetwork {
    /// A network of `address` with `prefix` bits; `None` when the prefix is too long.
    pub fn new(address: IpAddr, prefix: u8) -> Option<IpNetwork> {
        IpNet::new(address, prefix).ok().map(IpNetwork)
    }

    /// The first and the last address of the network (the same for a single address).
    pub fn ends(&self) -> (IpAddr, IpAddr) {
        (self.0.network(), self.0.broadcast())
    }

    /// Whether `candidate` lies in this network. Addresses of the other family never match.
    pub fn contains(&self, candidate: IpAddr) -> bool {
        self.0.contains(&candidate)
    }
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
            Some(prefix) => prefix.parse::<u8>().ok().filter(|prefix| *prefix <= max),
            None => Some(max),
        };
        prefix
            .and_then(|prefix| IpNetwork::new(address, prefix))
            .ok_or_else(|| format!("{text:?}: the prefix length must be a number from 0 to {max}"))
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
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
