//! Whether a DMARC policy applies to a sending domain, and what is wrong with it.

use serde::Serialize;

use super::discover::discover;
use super::merge::{receives_reports, with_report_address};
use super::parse::{Policy, parse_record};
use crate::dns::Dns;
use crate::name::{DomainName, organizational_domain};
use crate::problem::{Method, Problem, ProblemCode};
use crate::status::MethodStatus;

/// The DMARC half of a verification.
#[derive(Clone, Debug, Serialize)]
pub struct DmarcCheck {
    pub status: MethodStatus,
    /// The record that applies, as published.
    pub record: Option<String>,
    /// The domain whose `_dmarc` name holds it.
    pub location: Option<String>,
    pub inherited: bool,
    /// The policy that applies to this domain (`sp=` for an inheriting subdomain).
    pub policy: Option<Policy>,
    /// Where the RFC 9989 tree walk finds a record, when that differs.
    pub tree_walk_location: Option<String>,
    /// This method's problems; serialized once, in the domain's list, not here again.
    #[serde(skip)]
    pub problems: Vec<Problem>,
}

/// Checks the DMARC policy that applies to `domain`. `recommended` is the record to suggest;
/// `report_address`, where the platform collects aggregate reports (its absence from the
/// record's `rua` is said, as information).
pub async fn verify_dmarc(
    dns: &Dns,
    domain: &DomainName,
    recommended: &str,
    report_address: Option<&str>,
) -> DmarcCheck {
    let mut check = DmarcCheck {
        status: MethodStatus::NotVerified,
        record: None,
        location: None,
        inherited: false,
        policy: None,
        tree_walk_location: None,
        problems: Vec::new(),
    };
    let discovery = match discover(dns, domain).await {
        Ok(discovery) => discovery,
        Err(failure) => {
            check.status = MethodStatus::Unknown;
            check.problems.push(Problem::temporary(Method::Dmarc, &failure));
            return check;
        }
    };
    if let Some(walk) = &discovery.tree_walk {
        check.tree_walk_location = Some(walk.domain.clone());
        check.problems.push(Problem::info(
            ProblemCode::DmarcTreeWalkDiffers,
            Method::Dmarc,
            format!(
                "receivers using the RFC 9989 DNS tree walk find the record at _dmarc.{} ({}), not the one RFC 7489 finds",
                walk.domain,
                walk.records.first().map(String::as_str).unwrap_or_default()
            ),
            "Make sure the record at that name states the policy you want for this domain.",
        ));
    }
    let Some(found) = discovery.applicable else {
        // A DMARC record put where receivers never look (at the domain itself, or at `dmarc.`
        // without the underscore): the customer tried, so say where it must go.
        let zone = domain.organizational_domain();
        // The record pasted with its quotation marks, which the DNS host kept as text.
        if let Ok(answer) = dns.txt(&format!("_dmarc.{domain}")).await
            && let Some(inner) = answer.records().into_iter().find_map(|text| {
                crate::paste::unquoted(&text)
                    .filter(|inner| super::parse::is_dmarc_record(inner))
                    .map(|inner| String::from_utf8_lossy(inner).into_owned())
            })
        {
            check.problems.push(Problem::error(
                ProblemCode::DmarcSyntaxError,
                Method::Dmarc,
                format!(
                    "the TXT record at _dmarc.{domain} is \"{inner}\" with the quotation marks as part of its text, \
                     so receivers do not see a DMARC record"
                ),
                format!("Edit the record and remove the quotation marks: its value is {inner}"),
            ));
            return check;
        }
        let candidates = [
            (domain.to_string(), false),
            (format!("dmarc.{domain}"), false),
            (format!("_dmarc.{domain}.{zone}"), true),
        ];
        for (misplaced, doubled) in candidates {
            if doubled && !crate::paste::doubled_zone_exists(dns, domain).await {
                continue;
            }
            let Ok(answer) = dns.txt(&misplaced).await else { continue };
            let records: Vec<String> = answer
                .records()
                .into_iter()
                .filter(|text| super::parse::is_dmarc_record(text))
                .map(|text| String::from_utf8_lossy(&text).into_owned())
                .collect();
            if let Some(record) = records.first() {
                let host = crate::plan::relative_host(&format!("_dmarc.{domain}"), &zone);
                let fix = if doubled {
                    format!("Change the record's Host to {host}: your DNS host added {zone} to the Host as typed")
                } else {
                    format!(
                        "Move it: add it at _dmarc.{domain} (the Host {host}, with the underscore) and delete the \
                         one at {misplaced}"
                    )
                };
                check.problems.push(Problem::error(
                    ProblemCode::DmarcWrongName,
                    Method::Dmarc,
                    format!(
                        "a DMARC record is at {misplaced} ({record}), where receivers never look: it must be at \
                         _dmarc.{domain}"
                    ),
                    fix,
                ));
                return check;
            }
        }
        let where_looked = if domain.is_organizational() {
            format!("_dmarc.{domain}")
        } else {
            format!("_dmarc.{domain} or _dmarc.{}", domain.organizational_domain())
        };
        check.problems.push(Problem::error(
            ProblemCode::DmarcMissing,
            Method::Dmarc,
            format!("no DMARC record at {where_looked}; expected at least \"{recommended}\""),
            format!("Add a TXT record at _dmarc.{domain} with the value: {recommended}"),
        ));
        return check;
    };
    check.location = Some(found.domain.clone());
    check.inherited = discovery.inherited;
    if found.records.len() > 1 {
        check.problems.push(Problem::error(
            ProblemCode::DmarcMultipleRecords,
            Method::Dmarc,
            format!(
                "_dmarc.{} has {} DMARC records ({}); receivers apply none of them",
                found.domain,
                found.records.len(),
                found.records.join(" | ")
            ),
            "Delete all but one DMARC record at that name.",
        ));
        return check;
    }
    let text = found.records[0].clone();
    check.record = Some(text.clone());
    let record = match parse_record(&text) {
        Ok(record) => record,
        Err(error) => {
            check.problems.push(Problem::error(
                ProblemCode::DmarcSyntaxError,
                Method::Dmarc,
                format!("the DMARC record at _dmarc.{} is invalid: {error}; found \"{text}\"", found.domain),
                format!("Replace it with a valid record, for example: {recommended}"),
            ));
            return check;
        }
    };
    let policy = if discovery.inherited { record.policy_for_subdomain() } else { record.policy };
    check.policy = Some(policy);
    check.status = MethodStatus::Verified;
    if discovery.inherited {
        check.problems.push(Problem::info(
            ProblemCode::DmarcInherited,
            Method::Dmarc,
            format!(
                "no record at _dmarc.{domain}; the organizational domain's record at _dmarc.{} applies (policy {} for subdomains)",
                found.domain,
                policy.as_str()
            ),
            "No record is needed for this subdomain. Add one at _dmarc of this subdomain only to give it its own policy.",
        ));
    }
    if policy == Policy::None {
        check.problems.push(Problem::info(
            ProblemCode::DmarcPolicyNone,
            Method::Dmarc,
            "the DMARC policy is p=none: receivers report failures but do not act on them",
            "Once reports show all your mail passes, move to p=quarantine and then p=reject.",
        ));
    }
    if let Some(address) = report_address
        && !receives_reports(&record.aggregate_reports, address)
    {
        let merged = with_report_address(&text, address).record;
        let (message, fix) = if discovery.inherited {
            (
                format!(
                    "the DMARC record that applies, at _dmarc.{}, does not send aggregate reports to the platform \
                     (mailto:{address}), so the reports receivers send about your mail cannot be shown here",
                    found.domain
                ),
                format!(
                    "The record of {root} decides where reports go. To see them here, edit it at _dmarc.{root} to: \
                     {merged} (its other report addresses and tags stay).",
                    root = found.domain
                ),
            )
        } else {
            (
                format!(
                    "the DMARC record does not send aggregate reports to the platform (mailto:{address}), so the \
                     reports receivers send about your mail cannot be shown here"
                ),
                format!("Edit the record at _dmarc.{domain} to: {merged} (your other report addresses and tags stay)."),
            )
        };
        check.problems.push(Problem::info(ProblemCode::DmarcReportsNotReceived, Method::Dmarc, message, fix));
    }
    for address in record.aggregate_reports.iter().chain(&record.failure_reports) {
        check_report_destination(dns, &found.domain, address, &mut check.problems).await;
    }
    for tag in &record.unknown_tags {
        check.problems.push(Problem::warning(
            ProblemCode::DmarcSyntaxError,
            Method::Dmarc,
            format!("unknown tag {tag:?} in the DMARC record at _dmarc.{}; receivers ignore it", found.domain),
            "Remove the tag or correct its spelling.",
        ));
    }
    check
}

/// RFC 7489 section 7.1: reports to another organization's domain need that domain's consent,
/// published at `<policy domain>._report._dmarc.<destination domain>`.
async fn check_report_destination(dns: &Dns, policy_domain: &str, address: &str, problems: &mut Vec<Problem>) {
    let Some((_, destination)) = address.rsplit_once('@') else { return };
    let destination = destination.to_ascii_lowercase();
    if organizational_domain(&destination) == organizational_domain(policy_domain) {
        return;
    }
    let authorization = format!("{policy_domain}._report._dmarc.{destination}");
    match dns.txt(&authorization).await {
        Ok(answer) if answer.as_slice().iter().any(|text| super::parse::is_dmarc_record(text)) => {}
        Ok(_) => problems.push(Problem::warning(
            ProblemCode::DmarcReportDestinationUnauthorized,
            Method::Dmarc,
            format!("reports go to {address}, but {destination} has not authorized them: no record at {authorization}"),
            format!(
                "Ask the operator of {destination} to publish a TXT record \"v=DMARC1\" at {authorization}, or send reports to an address at your own domain."
            ),
        )),
        Err(failure) => problems.push(Problem::temporary(Method::Dmarc, &failure)),
    }
}
