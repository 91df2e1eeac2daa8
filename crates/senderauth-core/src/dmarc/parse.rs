//! DMARC record syntax (RFC 7489 section 6.3, with the `np`, `t` and `psd` tags of DMARCbis).
//!
//! Our own parser: it keeps what the checks report (which tag is wrong and why, the report URIs
//! for the external-destination check, the DMARCbis tags) where the crates that parse DMARC
//! return a record or an error; checkdmarc agrees with it on validity (README, Conformance).

use serde::Serialize;

/// A requested handling for mail that fails DMARC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// A parsed DMARC record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DmarcRecord {
    pub policy: Policy,
    pub subdomain_policy: Option<Policy>,
    pub nonexistent_policy: Option<Policy>,
    pub percent: u8,
    pub strict_dkim: bool,
    pub strict_spf: bool,
    pub aggregate_reports: Vec<String>,
    pub failure_reports: Vec<String>,
    pub testing: bool,
    pub public_suffix: Option<String>,
    /// Tags RFC 7489 does not define; receivers ignore them.
    pub unknown_tags: Vec<String>,
}

impl DmarcRecord {
    /// The policy for a subdomain that inherits this record (RFC 7489 section 6.3, `sp`).
    pub fn policy_for_subdomain(&self) -> Policy {
        self.subdomain_policy.unwrap_or(self.policy)
    }
}

/// Why a DMARC record does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DmarcSyntaxError {
    pub message: String,
}

/// Whether a TXT record is a DMARC record (RFC 7489 section 6.6.3: starts with `v=DMARC1`).
pub fn is_dmarc_record(text: &[u8]) -> bool {
    let trimmed = text.trim_ascii_start();
    trimmed.starts_with(b"v=DMARC1") || trimmed.starts_with(b"v = DMARC1")
}

fn policy_value(tag: &str, value: &str) -> Result<Policy, DmarcSyntaxError> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Ok(Policy::None),
        "quarantine" => Ok(Policy::Quarantine),
        "reject" => Ok(Policy::Reject),
        _ => Err(error(format!("{tag}={value} is not a policy; use none, quarantine or reject"))),
    }
}

fn error(message: String) -> DmarcSyntaxError {
    DmarcSyntaxError { message }
}

/// Parses a DMARC record.
pub fn parse_record(text: &str) -> Result<DmarcRecord, DmarcSyntaxError> {
    if !text.is_ascii() {
        return Err(error("DMARC records may contain only ASCII characters".to_string()));
    }
    let mut pairs = Vec::new();
    for part in text.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (tag, value) = part
            .split_once('=')
            .ok_or_else(|| error(format!("{part:?} is not a tag=value pair; separate tags with ';'")))?;
        pairs.push((tag.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    match pairs.first() {
        Some((tag, value)) if tag == "v" && value == "DMARC1" => {}
        _ => return Err(error("a DMARC record must start with v=DMARC1".to_string())),
    }
    let mut record = DmarcRecord {
        policy: Policy::None,
        subdomain_policy: None,
        nonexistent_policy: None,
        percent: 100,
        strict_dkim: false,
        strict_spf: false,
        aggregate_reports: Vec::new(),
        failure_reports: Vec::new(),
        testing: false,
        public_suffix: None,
        unknown_tags: Vec::new(),
    };
    let mut seen_policy = false;
    let mut seen = std::collections::HashSet::new();
    for (tag, value) in &pairs[1..] {
        if !seen.insert(tag.clone()) {
            return Err(error(format!("tag {tag} appears more than once")));
        }
        match tag.as_str() {
            "v" => return Err(error("v= must appear only once, first".to_string())),
            "p" => {
                record.policy = policy_value(tag, value)?;
                seen_policy = true;
            }
            "sp" => record.subdomain_policy = Some(policy_value(tag, value)?),
            "np" => record.nonexistent_policy = Some(policy_value(tag, value)?),
            "adkim" | "aspf" => {
                let strict = match value.to_ascii_lowercase().as_str() {
                    "r" => false,
                    "s" => true,
                    _ => return Err(error(format!("{tag}={value}: use r (relaxed) or s (strict)"))),
                };
                if tag == "adkim" {
                    record.strict_dkim = strict;
                } else {
                    record.strict_spf = strict;
                }
            }
            "pct" => {
                record.percent = value
                    .parse::<u8>()
                    .ok()
                    .filter(|percent| *percent <= 100)
                    .ok_or_else(|| error(format!("pct={value}: use a whole number from 0 to 100")))?;
            }
            "fo" => {
                for option in value.split(':') {
                    if !matches!(option.trim(), "0" | "1" | "d" | "s") {
                        return Err(error(format!("fo={value}: options are 0, 1, d and s, separated by ':'")));
                    }
                }
            }
            "rf" => {
                if !value.split(':').all(|format| format.trim().eq_ignore_ascii_case("afrf")) {
                    return Err(error(format!("rf={value}: the only report format is afrf")));
                }
            }
            "ri" => {
                value.parse::<u32>().map_err(|_| error(format!("ri={value}: use a number of seconds, like 86400")))?;
            }
            "rua" | "ruf" => {
                let uris = parse_report_uris(tag, value)?;
                if tag == "rua" {
                    record.aggregate_reports = uris;
                } else {
                    record.failure_reports = uris;
                }
            }
            "t" => {
                record.testing = match value.to_ascii_lowercase().as_str() {
                    "y" => true,
                    "n" => false,
                    _ => return Err(error(format!("t={value}: use y or n"))),
                }
            }
            "psd" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "y" | "n" | "u") {
                    return Err(error(format!("psd={value}: use y, n or u")));
                }
                record.public_suffix = Some(value.to_ascii_lowercase());
            }
            _ => record.unknown_tags.push(tag.clone()),
        }
    }
    if !seen_policy {
        return Err(error("the p= tag is missing; add p=none to start monitoring".to_string()));
    }
    Ok(record)
}

/// RFC 7489 section 6.2: `mailto:` URIs, comma-separated, each with an optional `!size`.
fn parse_report_uris(tag: &str, value: &str) -> Result<Vec<String>, DmarcSyntaxError> {
    let mut addresses = Vec::new();
    for uri in value.split(',') {
        let uri = uri.trim();
        let without_size = uri.split('!').next().unwrap_or("");
        let address = without_size
            .strip_prefix("mailto:")
            .or_else(|| without_size.strip_prefix("MAILTO:"))
            .ok_or_else(|| error(format!("{tag}: {uri:?} must be a mailto: URI, like mailto:dmarc@example.com")))?;
        match address.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && domain.contains('.') => addresses.push(address.to_string()),
            _ => return Err(error(format!("{tag}: {uri:?} is not a valid email address"))),
        }
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let record =
            parse_record("v=DMARC1; p=reject; sp=none; rua=mailto:a@example.com,mailto:b@example.net!10m; pct=50")
                .expect("valid");
        assert_eq!(record.policy, Policy::Reject);
        assert_eq!(record.policy_for_subdomain(), Policy::None);
        assert_eq!(record.aggregate_reports, ["a@example.com", "b@example.net"]);
        assert_eq!(parse_record("v=DMARC1; p=none;").expect("minimal").policy, Policy::None);
        for bad in [
            "v=DMARC1",
            "p=none; v=DMARC1",
            "v=DMARC1; p=maybe",
            "v=DMARC1; p=none; pct=101",
            "v=DMARC1; p=none; rua=https://x.example",
            "v=DMARC1; p=none; adkim=x",
            "v=DMARC1; p=none; p=reject",
            "v=DMARC1; p=none; fo=2",
            "v=DMARC1; p=nöne",
        ] {
            assert!(parse_record(bad).is_err(), "{bad}");
        }
    }
}
