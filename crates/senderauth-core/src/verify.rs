//! Verifying one domain: DKIM, SPF, DMARC and the return-path against DNS, and the domain's
//! status (of the first three; the return-path has a status of its own).

use serde::Serialize;

use crate::config::ProviderConfig;
use crate::dkim::verify::{DkimCheck, HostedKey, verify_dkim};
use crate::dmarc::parse::parse_record as parse_dmarc;
use crate::dmarc::verify::{DmarcCheck, verify_dmarc};
use crate::dns::Dns;
use crate::name::{AccountId, DomainName};
use crate::plan::{domain_selectors, ed25519_selectors, expected_include, include_pattern};
use crate::problem::{Method, Problem, ProblemCode};
use crate::return_path::{ReturnPathCheck, ReturnPathExpectation, strict_alignment_problem, verify_return_path};
use crate::spf::verify::{SpfCheck, SpfExpectation, verify_spf};
use crate::status::DomainStatus;

/// Everything one verification found.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub domain: DomainName,
    pub account: AccountId,
    pub status: DomainStatus,
    pub dkim: DkimCheck,
    pub spf: SpfCheck,
    pub dmarc: DmarcCheck,
    /// The return-path: a method of its own, outside the domain's status (the README says why).
    pub return_path: ReturnPathCheck,
    /// Every problem, most severe first.
    pub problems: Vec<Problem>,
}

/// Checks a connected domain's DKIM, SPF and DMARC records against what the platform expects.
pub async fn verify_domain(
    dns: &Dns,
    config: &ProviderConfig,
    account: &AccountId,
    domain: &DomainName,
) -> Verification {
    verify_domain_with_keys(dns, config, account, domain, &[]).await
}

/// As [`verify_domain`], knowing the keys the platform holds for the domain's selectors: each
/// selector's CNAME must lead to exactly that key (a flattened copy of an old key, or a stale
/// answer, is caught).
pub async fn verify_domain_with_keys(
    dns: &Dns,
    config: &ProviderConfig,
    account: &AccountId,
    domain: &DomainName,
    hosted: &[HostedKey],
) -> Verification {
    let dns = &dns.scoped();
    // A domain with Ed25519 keys signs with them too: their two CNAMEs are expected as well.
    let ed25519 = ed25519_selectors(config, account, domain);
    let has_ed25519 = hosted.iter().any(|key| ed25519.iter().any(|expected| expected.selector == key.selector));
    let selectors = domain_selectors(config, account, domain, has_ed25519, hosted);
    let include = expected_include(config, account, domain);
    let networks = config.sending_networks();
    let pattern = include_pattern(config, domain);
    let expectation = SpfExpectation {
        include: Some(&include),
        sending_networks: &networks,
        default_all: &config.spf.all,
        account_includes: pattern.as_ref().map(|(prefix, suffix)| (prefix.as_str(), suffix.as_str())),
    };
    let dmarc_record = config.dmarc_record();
    let report_address = config.report_address();
    let return_path_expectation = ReturnPathExpectation {
        host: config.return_path_host(account.as_str(), domain),
        target: config.return_path_target(account.as_str(), domain),
        bounce_hosts: config.bounce_hosts(),
        sending_networks: networks.clone(),
    };
    let (dkim, spf, dmarc, mut return_path) = tokio::join!(
        verify_dkim(dns, domain, &selectors),
        verify_spf(dns, domain, &expectation),
        verify_dmarc(dns, domain, &dmarc_record, report_address.as_deref()),
        verify_return_path(dns, &return_path_expectation),
    );
    let strict_spf =
        dmarc.record.as_deref().and_then(|record| parse_dmarc(record).ok()).is_some_and(|record| record.strict_spf);
    if strict_spf {
        return_path.problems.push(strict_alignment_problem(&return_path.host));
    }
    let status = DomainStatus::from_methods(dkim.status, spf.status, dmarc.status);
    let mut problems = Vec::new();
    if !spf.domain_exists {
        // A subdomain has no name of its own until its first record: adding the records
        // creates it, so that is no mistake. A root domain that does not exist is one.
        problems.push(if domain.is_organizational() {
            Problem::error(
                ProblemCode::DomainNxdomain,
                Method::Domain,
                format!("{domain} does not exist in DNS (NXDOMAIN)"),
                "Check the spelling of the domain, or register it before adding records.",
            )
        } else {
            Problem::info(
                ProblemCode::DomainNxdomain,
                Method::Domain,
                format!("{domain} has no DNS records yet"),
                "That is expected for a new subdomain: adding the records below creates it.",
            )
        });
    }
    problems.extend(dkim.problems.iter().cloned());
    problems.extend(spf.problems.iter().cloned());
    problems.extend(dmarc.problems.iter().cloned());
    problems.extend(return_path.problems.iter().cloned());
    problems.sort_by_key(|problem| std::cmp::Reverse(problem.severity));
    Verification { domain: domain.clone(), account: account.clone(), status, dkim, spf, dmarc, return_path, problems }
}
