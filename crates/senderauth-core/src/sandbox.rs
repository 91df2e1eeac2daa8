//! The sandbox DNS host's record rules (demo mode): which record types it takes, how a typed
//! Host and value are read (as DNS hosts read them), and the record data each value serves.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, TXT};
use hickory_proto::rr::{Name, RData};

/// The TTL of sandbox records and of their zones' negative answers, in seconds.
pub const TTL: u32 = 5;

/// The record types the sandbox takes.
pub const KINDS: [&str; 6] = ["CNAME", "TXT", "MX", "A", "AAAA", "NS"];

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
        "NS" => Ok(RData::NS(NS(name(value)?))),
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
        "CNAME" | "MX" | "NS" => value.trim_end_matches('.').to_ascii_lowercase(),
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

/// The mistakes customers make, each a sandbox scenario: its name and what it does.
pub const SCENARIOS: [(&str, &str); 13] = [
    ("correct", "Every record right"),
    ("nothing", "No records yet"),
    ("doubled_host", "Every Host typed with the domain (the DNS host adds it again)"),
    ("txt_for_cname", "A TXT record where a DKIM CNAME belongs"),
    ("typo", "A typo in a DKIM value"),
    ("flattened", "A DKIM CNAME flattened into a copy of the key"),
    ("proxied", "A DKIM CNAME proxied (Cloudflare's orange cloud)"),
    ("two_spf", "A second SPF record beside the one the domain had"),
    ("spf_typo", "A typo in the SPF include"),
    ("quoted", "SPF and DMARC pasted with their quotation marks"),
    ("dmarc_at_domain", "The DMARC record at the domain itself"),
    ("dmarc_no_underscore", "The DMARC record at dmarc. without the underscore"),
    ("dmarc_invalid", "A DMARC record without its semicolons"),
];

/// A record a scenario puts in a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioRecord {
    pub name: String,
    pub kind: &'static str,
    pub value: String,
}

/// The records of `scenario` for a domain whose planned records (made without reading DNS) are
/// `records`, in the sandbox zone `apex`; `keys` gives each DKIM CNAME target (the record's
/// value) the key text it serves (for the flattened copy). `None` for an unknown scenario.
pub fn scenario_records(
    scenario: &str,
    apex: &str,
    records: &[crate::plan::RequiredRecord],
    keys: &[(String, String)],
) -> Option<Vec<ScenarioRecord>> {
    use crate::problem::Method;
    if !SCENARIOS.iter().any(|(name, _)| *name == scenario) {
        return None;
    }
    let correct = |record: &crate::plan::RequiredRecord| ScenarioRecord {
        name: record.fqdn.clone(),
        kind: record.record_type,
        value: record.value.clone(),
    };
    let mut out = Vec::new();
    let mut first_dkim = true;
    for record in records {
        let is_first_dkim = record.method == Method::Dkim && std::mem::take(&mut first_dkim);
        let domain = record.fqdn.strip_prefix("_dmarc.").unwrap_or(&record.fqdn);
        match (scenario, record.method) {
            ("nothing", _) => {}
            ("doubled_host", _) => {
                out.push(ScenarioRecord { name: format!("{}.{apex}", record.fqdn), ..correct(record) })
            }
            ("txt_for_cname", Method::Dkim) if is_first_dkim => {
                out.push(ScenarioRecord { kind: "TXT", ..correct(record) })
            }
            ("typo", Method::Dkim) if is_first_dkim => {
                // One letter of the first label dropped, as a hurried copy does.
                let value = record.value.replacen(|c: char| c.is_ascii_alphabetic(), "", 1);
                out.push(ScenarioRecord { value, ..correct(record) })
            }
            ("flattened", Method::Dkim) if is_first_dkim => {
                match keys.iter().find(|(target, _)| *target == record.value) {
                    Some((_, key)) => out.push(ScenarioRecord { kind: "TXT", value: key.clone(), ..correct(record) }),
                    None => out.push(correct(record)),
                }
            }
            ("proxied", Method::Dkim) if is_first_dkim => {
                // What a proxied CNAME answers: the proxy's address (a documentation one here).
                out.push(ScenarioRecord { kind: "A", value: "192.0.2.80".to_string(), ..correct(record) })
            }
            ("spf_typo", Method::Spf) => {
                // The include's host one letter short, as a hurried copy leaves it.
                let value = record
                    .value
                    .split(' ')
                    .map(|term| match term.strip_prefix("include:") {
                        Some(host) if host.len() > 1 => format!("include:{}", &host[..host.len() - 1]),
                        _ => term.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                out.push(ScenarioRecord { value, ..correct(record) })
            }
            ("quoted", Method::Spf | Method::Dmarc) => {
                out.push(ScenarioRecord { value: format!("\"{}\"", record.value), ..correct(record) })
            }
            ("two_spf", Method::Spf) => {
                out.push(ScenarioRecord { value: "v=spf1 ip4:192.0.2.10 ~all".to_string(), ..correct(record) });
                out.push(correct(record));
            }
            ("dmarc_at_domain", Method::Dmarc) => {
                out.push(ScenarioRecord { name: domain.to_string(), ..correct(record) })
            }
            ("dmarc_no_underscore", Method::Dmarc) => {
                out.push(ScenarioRecord { name: format!("dmarc.{domain}"), ..correct(record) })
            }
            ("dmarc_invalid", Method::Dmarc) => {
                out.push(ScenarioRecord { value: record.value.replace(';', ""), ..correct(record) })
            }
            _ => out.push(correct(record)),
        }
    }
    Some(out)
}

/// The names a scenario may have put records at for `records`: each record's, doubled, and
/// where a misplaced DMARC record goes. Loading a scenario clears them first.
pub fn scenario_names(apex: &str, records: &[crate::plan::RequiredRecord]) -> Vec<String> {
    let mut names = Vec::new();
    for record in records {
        names.push(record.fqdn.clone());
        names.push(format!("{}.{apex}", record.fqdn));
        if let Some(domain) = record.fqdn.strip_prefix("_dmarc.") {
            names.push(domain.to_string());
            names.push(format!("dmarc.{domain}"));
        }
    }
    names.sort();
    names.dedup();
    names
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

    #[test]
    fn each_scenario_makes_its_one_mistake() {
        use crate::plan::{Action, RequiredRecord};
        use crate::problem::Method;
        let record = |method, kind, fqdn: &str, value: &str| RequiredRecord {
            method,
            record_type: kind,
            host: String::new(),
            fqdn: fqdn.to_string(),
            value: value.to_string(),
            action: Action::Add,
            purpose: String::new(),
            notes: Vec::new(),
        };
        let records = [
            record(Method::Dkim, "CNAME", "sa1._domainkey.shop.example.com", "sa1.shop.dkim.esp.example"),
            record(Method::Dkim, "CNAME", "sa2._domainkey.shop.example.com", "sa2.shop.dkim.esp.example"),
            record(Method::Spf, "TXT", "shop.example.com", "v=spf1 include:1.spf.esp.example ~all"),
            record(Method::Dmarc, "TXT", "_dmarc.shop.example.com", "v=DMARC1; p=none;"),
        ];
        let of = |scenario| scenario_records(scenario, "example.com", &records, &[]).expect("a scenario");
        assert_eq!(of("correct").len(), 4);
        assert!(of("nothing").is_empty());
        assert!(of("doubled_host").iter().all(|record| record.name.ends_with(".example.com.example.com")));
        assert_eq!(of("txt_for_cname")[0].kind, "TXT");
        assert_eq!(of("txt_for_cname")[1].kind, "CNAME", "one mistake, not two");
        assert_eq!(of("typo")[0].value, "a1.shop.dkim.esp.example");
        assert_eq!((of("proxied")[0].kind, of("proxied")[1].kind), ("A", "CNAME"));
        assert_eq!(of("spf_typo")[2].value, "v=spf1 include:1.spf.esp.exampl ~all");
        assert_eq!(
            (of("quoted")[2].value.as_str(), of("quoted")[3].value.as_str()),
            ("\"v=spf1 include:1.spf.esp.example ~all\"", "\"v=DMARC1; p=none;\"")
        );
        assert_eq!(of("two_spf").iter().filter(|record| record.name == "shop.example.com").count(), 2);
        assert_eq!(of("dmarc_at_domain")[3].name, "shop.example.com");
        assert_eq!(of("dmarc_no_underscore")[3].name, "dmarc.shop.example.com");
        assert_eq!(of("dmarc_invalid")[3].value, "v=DMARC1 p=none");
        assert!(scenario_records("unheard_of", "example.com", &records, &[]).is_none());
        let names = scenario_names("example.com", &records);
        assert!(names.contains(&"dmarc.shop.example.com".to_string()));
        assert!(names.contains(&"shop.example.com.example.com".to_string()));
    }
}
