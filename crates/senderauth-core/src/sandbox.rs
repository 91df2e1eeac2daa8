//! The sandbox DNS host's record rules (demo mode): which record types it takes, how a typed
//! Host and value are read (as DNS hosts read them), and the record data each value serves.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData};

/// The TTL of sandbox records and of their zones' negative answers, in seconds.
pub const TTL: u32 = 5;

/// The record types the sandbox takes.
pub const KINDS: [&str; 5] = ["CNAME", "TXT", "MX", "A", "AAAA"];

/// Why the sandbox does not take a typed Host or value: the message tells the user what to type
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordRefused(pub String);

impl RecordRefused {
    pub fn contains(&self, text: &str) -> bool {
        self.0.contains(text)
    }
}

/// The longest TXT value taken (a DKIM RSA-4096 key is about 800 characters).
const TXT_LIMIT: usize = 4000;

/// A record's data as served, from its type and stored value.
pub fn record_data(kind: &str, value: &str) -> Result<RData, RecordRefused> {
    record_rdata(kind, value).map_err(RecordRefused)
}

fn record_rdata(kind: &str, value: &str) -> Result<RData, String> {
    let name = |text: &str| {
        let text = text.trim().trim_end_matches('.');
        if text.is_empty() || text.len() > 253 || !text.contains('.') {
            return Err(format!("{text:?} is not a full domain name, like sa1.dkim.example.net"));
        }
        Name::from_ascii(format!("{text}.")).map_err(|_| format!("{text:?} is not a valid domain name"))
    };
    match kind {
        "CNAME" => Ok(RData::CNAME(CNAME(name(value)?))),
        "TXT" => {
            if value.len() > TXT_LIMIT {
                return Err(format!(
                    "the text is {} characters long; the sandbox takes at most {TXT_LIMIT}",
                    value.len()
                ));
            }
            Ok(RData::TXT(TXT::from_bytes(value.as_bytes().chunks(255).collect())))
        }
        "A" => value
            .trim()
            .parse::<Ipv4Addr>()
            .map(|address| RData::A(A(address)))
            .map_err(|_| format!("{value:?} is not an IPv4 address, like 192.0.2.10")),
        "AAAA" => value
            .trim()
            .parse::<Ipv6Addr>()
            .map(|address| RData::AAAA(AAAA(address)))
            .map_err(|_| format!("{value:?} is not an IPv6 address, like 2001:db8::10")),
        "MX" => {
            let (preference, exchange) = value.trim().split_once(char::is_whitespace).ok_or_else(|| {
                format!("{value:?} is not a mail exchanger: give a preference and a host, like 10 mx.example.com")
            })?;
            let preference = preference
                .parse::<u16>()
                .map_err(|_| format!("{preference:?} is not a preference: a number from 0 to 65535"))?;
            Ok(RData::MX(MX::new(preference, name(exchange)?)))
        }
        other => Err(format!("the sandbox takes {} records, not {other:?}", KINDS.join(", "))),
    }
}

/// A typed value as stored: TXT values lose the quotes DNS hosts often show around them
/// (`"v=spf1 -all"`, or several quoted strings, which are joined); names lose the final dot.
pub fn typed_value(kind: &str, value: &str) -> Result<String, RecordRefused> {
    let refused = |text: String| RecordRefused(text);
    let value = value.trim();
    if value.is_empty() {
        return Err(refused("the value is empty: paste the Required data from the setup page".to_string()));
    }
    let stored = match kind {
        "TXT" if value.starts_with('"') && value.ends_with('"') && value.len() > 1 => {
            // "part one" "part two": the strings joined, as DNS joins them for SPF and DKIM.
            let mut joined = String::new();
            for (index, part) in value.split('"').enumerate() {
                if index % 2 == 1 {
                    joined.push_str(part);
                } else if !part.trim().is_empty() {
                    return Err(refused(format!(
                        "{value:?} mixes quoted and unquoted text; paste the value without quotes"
                    )));
                }
            }
            joined
        }
        "CNAME" | "MX" => value.trim_end_matches('.').to_ascii_lowercase(),
        _ => value.to_string(),
    };
    record_data(kind, &stored)?;
    Ok(stored)
}

/// The full name a Host typed at the sandbox stands for in `apex`: `@` or nothing for the zone
/// itself, a name ending in the zone as it is, anything else with the zone added (as most DNS
/// hosts do).
pub fn owner_name(apex: &str, host: &str) -> Result<String, RecordRefused> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let full = if host.is_empty() || host == "@" {
        apex.to_string()
    } else if host == apex || host.ends_with(&format!(".{apex}")) {
        host
    } else {
        format!("{host}.{apex}")
    };
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if full.len() > 253 || !full.split('.').all(valid_label) {
        return Err(RecordRefused(format!(
            "{full:?} is not a valid host name: use letters, digits, hyphens and underscores, labels of at most 63 characters"
        )));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_as_dns_hosts_read_them() {
        assert_eq!(owner_name("example.com", "@").expect("taken"), "example.com");
        assert_eq!(owner_name("example.com", "").expect("taken"), "example.com");
        assert_eq!(owner_name("example.com", "sa1._domainkey.Shop").expect("taken"), "sa1._domainkey.shop.example.com");
        assert_eq!(owner_name("example.com", "_dmarc.example.com.").expect("taken"), "_dmarc.example.com");
        assert!(owner_name("example.com", "bad host").expect_err("refused").contains("not a valid host name"));
        assert!(owner_name("example.com", &"a".repeat(64)).is_err());
    }

    #[test]
    fn values_are_checked_and_quotes_dropped() {
        assert_eq!(typed_value("TXT", r#""v=spf1 -all""#).expect("taken"), "v=spf1 -all");
        assert_eq!(typed_value("TXT", r#""v=DKIM1; p=AB" "CD""#).expect("taken"), "v=DKIM1; p=ABCD");
        assert!(typed_value("TXT", r#""a" b "c""#).is_err());
        assert_eq!(typed_value("CNAME", "Sa1.Dkim.Esp.Example.").expect("taken"), "sa1.dkim.esp.example");
        assert!(typed_value("CNAME", "nodots").expect_err("refused").contains("full domain name"));
        assert!(typed_value("A", "300.1.1.1").expect_err("refused").contains("IPv4"));
        assert_eq!(typed_value("MX", "10 mx.example.com").expect("taken"), "10 mx.example.com");
        assert!(typed_value("MX", "mx.example.com").expect_err("refused").contains("preference"));
        assert!(typed_value("TXT", "  ").expect_err("refused").contains("empty"));
        assert!(typed_value("SRV", "x").is_err());
        // A long TXT value is served as strings of at most 255 octets.
        let RData::TXT(txt) = record_data("TXT", &"k".repeat(600)).expect("taken") else { panic!("TXT") };
        assert_eq!(txt.txt_data.iter().map(|chunk| chunk.len()).collect::<Vec<_>>(), [255, 255, 90]);
    }
}
