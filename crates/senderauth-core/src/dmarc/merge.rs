//! The DMARC twin of the SPF merge: the platform's report address added to a customer's record,
//! every other tag kept as written.

use super::parse::parse_record;

/// A record with the report address merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmarcMerge {
    pub record: String,
    /// Whether the record had to change (the address was not among its `rua` URIs).
    pub changed: bool,
}

/// Whether `address` is among a record's aggregate report addresses (compared without regard
/// to case, as the platform's own address is).
pub fn receives_reports(addresses: &[String], address: &str) -> bool {
    addresses.iter().any(|listed| listed.eq_ignore_ascii_case(address))
}

/// `text` with `mailto:<address>` among its `rua` URIs: appended to an existing list, or a
/// `rua` tag added at the end. A record already listing it comes back unchanged, as written.
pub fn with_report_address(text: &str, address: &str) -> DmarcMerge {
    if let Ok(record) = parse_record(text)
        && receives_reports(&record.aggregate_reports, address)
    {
        return DmarcMerge { record: text.to_string(), changed: false };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut merged = false;
    for part in text.split(';').map(str::trim).filter(|part| !part.is_empty()) {
        match part.split_once('=') {
            Some((tag, value)) if !merged && tag.trim().eq_ignore_ascii_case("rua") => {
                let value = value.trim().trim_end_matches(',');
                parts.push(if value.is_empty() {
                    format!("rua=mailto:{address}")
                } else {
                    format!("rua={value},mailto:{address}")
                });
                merged = true;
            }
            _ => parts.push(part.to_string()),
        }
    }
    if !merged {
        parts.push(format!("rua=mailto:{address}"));
    }
    DmarcMerge { record: format!("{};", parts.join("; ")), changed: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_address_and_keeps_every_other_tag() {
        let address = "dmarc@reports.esp.example";
        let added = with_report_address("v=DMARC1; p=none;", address);
        assert_eq!(added.record, "v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example;");
        assert!(added.changed);
        let appended =
            with_report_address("v=DMARC1;p=quarantine; rua=mailto:a@example.com!10m ; pct=50; fo=1", address);
        assert_eq!(
            appended.record,
            "v=DMARC1; p=quarantine; rua=mailto:a@example.com!10m,mailto:dmarc@reports.esp.example; pct=50; fo=1;"
        );
        let record = parse_record(&appended.record).expect("still valid");
        assert_eq!(record.aggregate_reports, ["a@example.com", address]);
        assert_eq!((record.percent, record.policy), (50, super::super::parse::Policy::Quarantine));
        let kept = "v=DMARC1; p=reject; rua=mailto:DMARC@Reports.ESP.example";
        assert_eq!(with_report_address(kept, address), DmarcMerge { record: kept.to_string(), changed: false });
    }
}

/// The names at which the report address's host consents to receive reports about `domain`
/// (RFC 9990 section 4, `<policy domain>._report._dmarc.<report host>` TXT `v=DMARC1`): for the
/// domain's own policy and for its organizational domain's, which a subdomain inherits. None
/// when the report host is in the same organization (no consent is asked), and none that is too
/// long for DNS (the verifier then says the reports are not authorized, with what to do).
pub fn report_authorization_names(report_address: &str, domain: &crate::name::DomainName) -> Vec<String> {
    use crate::name::organizational_domain;
    let Some((_, host)) = report_address.rsplit_once('@') else { return Vec::new() };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let organization = organizational_domain(&host);
    let mut policies = vec![domain.to_string()];
    if !domain.is_organizational() {
        policies.push(domain.organizational_domain().to_string());
    }
    policies
        .into_iter()
        .filter(|policy| organizational_domain(policy) != organization)
        .map(|policy| format!("{policy}._report._dmarc.{host}"))
        .filter(|name| name.len() <= 253 && name.split('.').all(|label| (1..=63).contains(&label.len())))
        .collect()
}

#[cfg(test)]
mod authorization_tests {
    use super::report_authorization_names;
    use crate::name::DomainName;

    #[test]
    fn a_domain_and_its_organizational_domain_are_authorized_and_nothing_too_long() {
        let names = |domain: &str| {
            report_authorization_names("dmarc@reports.esp.example", &DomainName::parse(domain).expect("domain"))
        };
        assert_eq!(names("example.com"), ["example.com._report._dmarc.reports.esp.example"]);
        assert_eq!(
            names("news.shop.example.co.uk"),
            [
                "news.shop.example.co.uk._report._dmarc.reports.esp.example",
                "example.co.uk._report._dmarc.reports.esp.example"
            ]
        );
        assert!(names("mail.esp.example").is_empty(), "the platform's own organization needs no consent");
        let long = format!("{0}.{0}.{0}.{0}.example.com", "a".repeat(55));
        assert_eq!(names(&long), ["example.com._report._dmarc.reports.esp.example"], "the long one left out");
    }
}
