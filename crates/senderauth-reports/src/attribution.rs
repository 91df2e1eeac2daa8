//! What only the sending platform can tell about a report's row: whether the mail was its own.
//! Every row falls in exactly one class.

use serde::Serialize;

use crate::aggregate::ReportRecord;

/// Whose mail a row is, and whether it passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceClass {
    /// Signed by the platform (a selector it issued for the domain), the signature passed, and
    /// sent from one of its addresses.
    PlatformOk,
    /// From the platform's addresses, but no signature of the platform's passed: key or DNS
    /// trouble seen from the receiver's side.
    PlatformFailing,
    /// The platform's signature seen from another address (a forwarder or mailing list), or a
    /// receiver's override for forwarded mail.
    ForwardedOurs,
    /// Not the platform, but DMARC passed aligned: the customer's other senders.
    AuthorizedOther,
    /// Neither: spoofing, or a service the customer has not set up.
    Unauthenticated,
}

impl SourceClass {
    pub const ALL: [SourceClass; 5] = [
        SourceClass::PlatformOk,
        SourceClass::PlatformFailing,
        SourceClass::ForwardedOurs,
        SourceClass::AuthorizedOther,
        SourceClass::Unauthenticated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceClass::PlatformOk => "platform_ok",
            SourceClass::PlatformFailing => "platform_failing",
            SourceClass::ForwardedOurs => "forwarded_ours",
            SourceClass::AuthorizedOther => "authorized_other",
            SourceClass::Unauthenticated => "unauthenticated",
        }
    }

    pub fn parse(text: &str) -> Option<SourceClass> {
        SourceClass::ALL.into_iter().find(|class| class.as_str() == text)
    }
}

/// Override reasons (RFC 9990 `PolicyOverrideType`) a receiver gives for forwarded mail.
const FORWARDING_REASONS: [&str; 3] = ["trusted_forwarder", "mailing_list", "local_policy"];

/// Whether a row passed DMARC: DKIM or SPF aligned and passing, as the receiver evaluated.
pub fn passed(record: &ReportRecord) -> bool {
    record.dkim == "pass" || record.spf == "pass"
}

/// The row's class. `from_platform`: its source address is one of the platform's;
/// `platform_selector(d, s)`: the platform issued selector `s` for domain `d`.
pub fn classify(
    record: &ReportRecord,
    from_platform: bool,
    platform_selector: impl Fn(&str, &str) -> bool,
) -> SourceClass {
    let ours = |result: &&crate::aggregate::DkimResult| {
        result.selector.as_deref().is_some_and(|selector| platform_selector(&result.domain, selector))
    };
    let signed = record.dkim_results.iter().any(|result| ours(&result));
    let signed_and_passed = record.dkim_results.iter().filter(ours).any(|result| result.result == "pass");
    if from_platform {
        return if signed_and_passed { SourceClass::PlatformOk } else { SourceClass::PlatformFailing };
    }
    if signed || record.reasons.iter().any(|reason| FORWARDING_REASONS.contains(&reason.kind.as_str())) {
        return SourceClass::ForwardedOurs;
    }
    if passed(record) { SourceClass::AuthorizedOther } else { SourceClass::Unauthenticated }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{DkimResult, Reason};

    fn row(dkim: &str, spf: &str, signatures: &[(&str, &str, &str)], reasons: &[&str]) -> ReportRecord {
        ReportRecord {
            source_ip: "192.0.2.1".parse().expect("address"),
            count: 1,
            disposition: "none".to_string(),
            dkim: dkim.to_string(),
            spf: spf.to_string(),
            reasons: reasons.iter().map(|kind| Reason { kind: kind.to_string(), comment: None }).collect(),
            header_from: "shop.example".to_string(),
            envelope_from: None,
            envelope_to: None,
            dkim_results: signatures
                .iter()
                .map(|(domain, selector, result)| DkimResult {
                    domain: domain.to_string(),
                    selector: Some(selector.to_string()),
                    result: result.to_string(),
                    human_result: None,
                })
                .collect(),
            spf_results: Vec::new(),
        }
    }

    #[test]
    fn each_row_falls_in_one_class() {
        let ours = |domain: &str, selector: &str| domain == "shop.example" && selector.starts_with("sa");
        let signed = [("shop.example", "sa1-7", "pass")];
        assert_eq!(classify(&row("pass", "fail", &signed, &[]), true, ours), SourceClass::PlatformOk);
        let broken = [("shop.example", "sa2-7", "fail")];
        assert_eq!(classify(&row("fail", "fail", &broken, &[]), true, ours), SourceClass::PlatformFailing);
        assert_eq!(classify(&row("fail", "pass", &[], &[]), true, ours), SourceClass::PlatformFailing, "unsigned");
        assert_eq!(classify(&row("fail", "fail", &broken, &[]), false, ours), SourceClass::ForwardedOurs);
        assert_eq!(classify(&row("fail", "fail", &[], &["mailing_list"]), false, ours), SourceClass::ForwardedOurs);
        let google = [("shop.example", "google", "pass")];
        assert_eq!(classify(&row("pass", "fail", &google, &[]), false, ours), SourceClass::AuthorizedOther);
        assert_eq!(classify(&row("fail", "fail", &[], &[]), false, ours), SourceClass::Unauthenticated);
        // A selector of the platform's name under another domain is not the platform's.
        let lookalike = [("evil.example", "sa1-7", "pass")];
        assert_eq!(classify(&row("fail", "fail", &lookalike, &[]), false, ours), SourceClass::Unauthenticated);
    }
}
