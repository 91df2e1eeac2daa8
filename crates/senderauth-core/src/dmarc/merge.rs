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
