//! Whether a domain's SPF record authorizes the platform: its include is there, the tree stays
//! within RFC 7208's limits, and evaluating it for each sending address gives `pass`.

use serde::Serialize;

use super::eval::{MAX_DNS_LOOKUPS, MAX_VOID_LOOKUPS, ParsedRecords, SpfResult, check_host_with};
use super::merge::merge_spf;
use super::parse::{Mechanism, Qualifier, is_spf_record, parse_record};
use super::tree::{SpfTree, walk_record};
use crate::cidr::IpNetwork;
use crate::dns::{Answer, Dns, TemporaryFailure};
use crate::name::{DomainName, normalize};
use crate::problem::{Method, Problem, ProblemCode, Severity};
use crate::status::MethodStatus;

/// The result of evaluating the record for one sending address.
#[derive(Clone, Debug, Serialize)]
pub struct SendingIpResult {
    pub network: String,
    pub ip: String,
    pub result: SpfResult,
    pub reason: String,
}

/// The SPF half of a verification.
#[derive(Clone, Debug, Serialize)]
pub struct SpfCheck {
    pub status: MethodStatus,
    /// The SPF record found, when there is exactly one.
    pub record: Option<String>,
    /// Every `v=spf1` record at the domain.
    pub records_found: Vec<String>,
    /// The include the platform expects, when checking for a platform.
    pub expected_include: Option<String>,
    /// Whether the include appears anywhere in the tree.
    pub include_found: bool,
    pub lookups: Option<u32>,
    pub void_lookups: Option<u32>,
    pub tree: Option<SpfTree>,
    pub sending_ips: Vec<SendingIpResult>,
    /// The record to publish instead, when the current one needs changing.
    pub suggested_record: Option<String>,
    /// Whether the domain exists at all (false on NXDOMAIN).
    pub domain_exists: bool,
    /// This method's problems; serialized once, in the domain's list, not here again.
    #[serde(skip)]
    pub problems: Vec<Problem>,
}

/// What the platform expects of a domain's SPF.
#[derive(Clone, Debug)]
pub struct SpfExpectation<'a> {
    /// The platform's include; `None` for a provider-independent check.
    pub include: Option<&'a str>,
    pub sending_networks: &'a [IpNetwork],
    /// The `all` term to suggest: `-all` or `~all`.
    pub default_all: &'a str,
    /// What any account's include host looks like (the text before and after the account), to
    /// recognize another account's include; `None` for a provider-independent check.
    pub account_includes: Option<(&'a str, &'a str)>,
}

/// Checks a domain's SPF against what the platform expects.
pub async fn verify_spf(dns: &Dns, domain: &DomainName, expected: &SpfExpectation<'_>) -> SpfCheck {
    let mut check = SpfCheck {
        status: MethodStatus::NotVerified,
        record: None,
        records_found: Vec::new(),
        expected_include: expected.include.map(normalize),
        include_found: false,
        lookups: None,
        void_lookups: None,
        tree: None,
        sending_ips: Vec::new(),
        suggested_record: None,
        domain_exists: true,
        problems: Vec::new(),
    };
    if let Err(failure) = verify_inner(dns, domain, expected, &mut check).await {
        check.status = MethodStatus::Unknown;
        check.problems.push(Problem::temporary(Method::Spf, &failure));
    }
    check
}

async fn verify_inner(
    dns: &Dns,
    domain: &DomainName,
    expected: &SpfExpectation<'_>,
    check: &mut SpfCheck,
) -> Result<(), TemporaryFailure> {
    let answer = dns.txt(domain.as_str()).await?;
    check.domain_exists = !matches!(answer, Answer::NxDomain);
    let texts = answer.records();
    check.records_found = texts
        .iter()
        .filter(|text| is_spf_record(text))
        .map(|text| String::from_utf8_lossy(text).into_owned())
        .collect();
    let merged = merge_spf(&check.records_found, expected.include, expected.default_all);
    if merged.changed && expected.include.is_some() {
        check.suggested_record = Some(merged.record.clone());
    }
    let text = match check.records_found.as_slice() {
        [] => {
            // The record typed with the full name at a DNS host that adds the zone itself.
            let zone = domain.organizational_domain();
            let doubled = format!("{domain}.{zone}");
            if let Ok(answer) = dns.txt(&doubled).await
                && let Some(record) = answer.records().into_iter().find(|text| is_spf_record(text))
            {
                let host = crate::plan::relative_host(domain.as_str(), &zone);
                check.problems.push(Problem::error(
                    ProblemCode::SpfHostDoubled,
                    Method::Spf,
                    format!(
                        "the SPF record is at {doubled} ({}), not at {domain}: your DNS host added {zone} to the Host \
                         as typed",
                        String::from_utf8_lossy(&record)
                    ),
                    format!("Change the record's Host to {host} (the DNS host adds {zone} itself)"),
                ));
                return Ok(());
            }
            // The record pasted with its quotation marks, which the DNS host kept as text.
            let quoted = texts.iter().find_map(|text| {
                crate::paste::unquoted(text)
                    .filter(|inner| is_spf_record(inner))
                    .map(|inner| String::from_utf8_lossy(inner).into_owned())
            });
            if let Some(inner) = quoted {
                check.problems.push(Problem::error(
                    ProblemCode::SpfSyntaxError,
                    Method::Spf,
                    format!(
                        "the TXT record at {domain} is \"{inner}\" with the quotation marks as part of its text, so \
                         receivers do not see an SPF record"
                    ),
                    format!("Edit the record and remove the quotation marks: its value is {}", merged.record),
                ));
                return Ok(());
            }
            let wanted = match &check.expected_include {
                Some(include) => format!("expected one with include:{include}"),
                None => "mail from it cannot be authenticated with SPF".to_string(),
            };
            check.problems.push(Problem::error(
                ProblemCode::SpfMissing,
                Method::Spf,
                format!("no SPF record at {domain}; {wanted}"),
                format!("Add a TXT record at {domain} with the value: {}", merged.record),
            ));
            return Ok(());
        }
        [one] => one.clone(),
        several => {
            check.problems.push(Problem::error(
                ProblemCode::SpfMultipleRecords,
                Method::Spf,
                format!(
                    "{domain} has {} SPF records ({}); receivers treat this as a permanent error",
                    several.len(),
                    several.join(" | ")
                ),
                format!("Replace them with this single TXT record: {}", merged.record),
            ));
            return Ok(());
        }
    };
    check.record = Some(text.clone());
    let record = match parse_record(&text) {
        Ok(record) => record,
        Err(error) => {
            check.problems.push(Problem::error(
                ProblemCode::SpfSyntaxError,
                Method::Spf,
                format!("the SPF record of {domain} is invalid: {error}"),
                format!(
                    "Correct the term at character {}; the record should read like: {}",
                    error.position, merged.record
                ),
            ));
            return Ok(());
        }
    };
    match (record.all_qualifier(), record.redirect()) {
        (Some(Qualifier::Pass), _) => check.problems.push(Problem::error(
            ProblemCode::SpfPassAll,
            Method::Spf,
            format!("the SPF record of {domain} ends in +all, which authorizes every server on the internet"),
            format!("Use {} instead: {}", expected.default_all, merged.record),
        )),
        (Some(Qualifier::Neutral), _) => check.problems.push(Problem::warning(
            ProblemCode::SpfNeutralAll,
            Method::Spf,
            format!("the SPF record of {domain} ends in ?all, which says nothing about other servers"),
            format!("Use {} instead: {}", expected.default_all, merged.record),
        )),
        (None, None) => check.problems.push(Problem::warning(
            ProblemCode::SpfNoAll,
            Method::Spf,
            format!("the SPF record of {domain} has no \"all\" term, so other servers get a neutral result"),
            format!("End the record with {}: {}", expected.default_all, merged.record),
        )),
        _ => {}
    }
    if record.directives().any(|directive| matches!(directive.mechanism, Mechanism::Ptr(_))) {
        check.problems.push(Problem::warning(
            ProblemCode::SpfPtrMechanism,
            Method::Spf,
            "the SPF record uses the ptr mechanism, which RFC 7208 section 5.5 says not to use",
            "Replace ptr with ip4:/ip6: or a: terms for your servers; some receivers ignore ptr.",
        ));
    }
    let tree = walk_record(dns, domain.as_str(), &text).await?;
    check.lookups = Some(tree.lookups);
    check.void_lookups = Some(tree.void_lookups);
    check.include_found = check.expected_include.as_ref().is_some_and(|include| tree.targets.contains(include));
    tree_problems(domain, &tree, check);
    check.tree = Some(tree);
    // Each sending range is evaluated at both ends, which catches a record that authorizes
    // only part of it; the DNS answers come from the check's memo after the first evaluation.
    let sender = format!("postmaster@{domain}");
    let mut parsed = ParsedRecords::default();
    for network in expected.sending_networks {
        let (first, last) = network.ends();
        let addresses = if first == last { vec![first] } else { vec![first, last] };
        for ip in addresses {
            let evaluation = check_host_with(dns, &mut parsed, ip, domain.as_str(), &sender, domain.as_str()).await;
            if evaluation.result == SpfResult::TempError {
                return Err(TemporaryFailure {
                    name: domain.to_string(),
                    record_type: "SPF".to_string(),
                    reason: evaluation.reason,
                });
            }
            check.sending_ips.push(SendingIpResult {
                network: network.to_string(),
                ip: ip.to_string(),
                result: evaluation.result,
                reason: evaluation.reason,
            });
        }
    }
    let all_pass = check.sending_ips.iter().all(|result| result.result == SpfResult::Pass);
    // Another account's include in place of this one's: its addresses pass today, but the
    // per-account include is the contract (an account with dedicated addresses publishes them
    // there), so this would authorize another customer's servers to send as this domain.
    let mut another_accounts = false;
    if let (Some(include), Some(pattern)) = (&check.expected_include, expected.account_includes) {
        let others: Vec<String> = check
            .tree
            .as_ref()
            .map(|tree| {
                tree.targets
                    .iter()
                    .filter(|target| *target != include && crate::plan::is_account_include(pattern, target))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(other) = others.first() {
            another_accounts = true;
            let record = check.record.clone().unwrap_or_default();
            let fixed = record.replace(&format!("include:{other}"), &format!("include:{include}"));
            let fix = if fixed != record {
                format!("Publish this record, with your own include in place of {other}: {fixed}")
            } else {
                format!("Replace include:{other} with include:{include} where it appears")
            };
            check.problems.push(Problem::error(
                ProblemCode::SpfIncludeOfAnotherAccount,
                Method::Spf,
                format!(
                    "the SPF record of {domain} includes {other}, another account's include, not {include}: \
                     servers the platform gives that account would be authorized to send as {domain}"
                ),
                fix,
            ));
        }
    }
    if let Some(include) = &check.expected_include
        && !check.include_found
        && !another_accounts
    {
        let (severity, consequence) = if all_pass {
            (Severity::Warning, "the sending addresses pass today, but will fail when the platform adds servers")
        } else {
            (Severity::Error, "the platform's servers are not authorized")
        };
        check.problems.push(Problem::new(
            ProblemCode::SpfIncludeMissing,
            severity,
            Method::Spf,
            format!(
                "the SPF record of {domain} does not include {include}{}: {consequence}",
                near_miss(&text, include)
            ),
            format!("Publish this record instead: {}", merged.record),
        ));
    }
    let within_limits =
        check.tree.as_ref().is_none_or(|tree| tree.within_limit() && tree.void_lookups <= MAX_VOID_LOOKUPS);
    for result in check.sending_ips.iter().filter(|result| result.result != SpfResult::Pass) {
        // Suggest the merged record only when it differs from what is published; otherwise
        // say what decided the result.
        let fix = if merged.changed {
            format!("Publish this record: {}", merged.record)
        } else if !within_limits {
            "Bring the record within RFC 7208's limits first (see the lookup problems above); evaluation stops with permerror until then.".to_string()
        } else {
            format!(
                "A term of the record decides before the platform's include does ({}): remove it, or move the include before it.",
                result.reason
            )
        };
        check.problems.push(Problem::error(
            ProblemCode::SpfSendingIpNotAuthorized,
            Method::Spf,
            format!(
                "mail from the platform's {} (evaluated as {}) gets SPF {}, expected pass: {}",
                result.network,
                result.ip,
                result.result.as_str(),
                result.reason
            ),
            fix,
        ));
    }
    let has_error = check.problems.iter().any(|problem| problem.severity == Severity::Error);
    check.status = if has_error || !all_pass { MethodStatus::NotVerified } else { MethodStatus::Verified };
    Ok(())
}

fn tree_problems(domain: &DomainName, tree: &SpfTree, check: &mut SpfCheck) {
    if !tree.within_limit() {
        let costs: Vec<String> = tree.costs().iter().map(|(term, cost)| format!("{term} costs {cost}")).collect();
        let total = if tree.truncated { format!("more than {}", tree.lookups) } else { tree.lookups.to_string() };
        check.problems.push(Problem::error(
            ProblemCode::SpfTooManyLookups,
            Method::Spf,
            format!(
                "the SPF record of {domain} needs {total} DNS lookups; RFC 7208 allows {MAX_DNS_LOOKUPS} ({})",
                costs.join(", ")
            ),
            "Remove includes for services you no longer use, replace small includes with the ip4:/ip6: addresses they list, or send some mail from a subdomain with its own SPF record.",
        ));
    }
    if tree.void_lookups > MAX_VOID_LOOKUPS {
        check.problems.push(Problem::error(
            ProblemCode::SpfTooManyVoidLookups,
            Method::Spf,
            format!(
                "{} lookups in the SPF record of {domain} return no records; RFC 7208 section 4.6.4 allows {MAX_VOID_LOOKUPS}",
                tree.void_lookups
            ),
            "Remove a:, mx: and include: terms that name hosts with no records.",
        ));
    }
    for path in &tree.loops {
        check.problems.push(Problem::error(
            ProblemCode::SpfLoop,
            Method::Spf,
            format!("the SPF include chain loops: {path}"),
            "Remove the include or redirect that points back to a record already on the path.",
        ));
    }
    for missing in &tree.missing {
        check.problems.push(Problem::error(
            ProblemCode::SpfIncludeTargetMissing,
            Method::Spf,
            format!(
                "the SPF record of {domain} includes {missing}, which has no SPF record; evaluation ends in permerror"
            ),
            format!("Remove include:{missing} or correct its spelling."),
        ));
    }
    for error in &tree.syntax_errors {
        check.problems.push(Problem::error(
            ProblemCode::SpfSyntaxError,
            Method::Spf,
            format!("an included SPF record is invalid: {error}"),
            "Remove that include, or ask its owner to fix their record.",
        ));
    }
}

/// What differs when one of the record's includes is the expected one with a copying slip
/// (` (it includes 1.spf.esp.exmple: a copying slip: ...)`); empty when none is.
fn near_miss(record: &str, include: &str) -> String {
    let include = crate::name::normalize(include);
    record
        .split_whitespace()
        .filter_map(|term| {
            term.get(.."include:".len())
                .filter(|prefix| prefix.eq_ignore_ascii_case("include:"))
                .map(|_| &term["include:".len()..])
        })
        .map(crate::name::normalize)
        .find_map(|host| {
            let slip = crate::paste::copying_slip(&host, &include);
            (!slip.is_empty()).then(|| format!(" (it includes {host}{slip})"))
        })
        .unwrap_or_default()
}
