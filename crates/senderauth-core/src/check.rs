//! A provider-independent analysis of any domain: its SPF and DMARC, and DKIM for the
//! selectors asked about.

use serde::Serialize;

use crate::dkim::verify::{DkimCheck, check_selectors};
use crate::dmarc::verify::{DmarcCheck, verify_dmarc};
use crate::dns::Dns;
use crate::name::DomainName;
use crate::problem::Problem;
use crate::spf::verify::{SpfCheck, SpfExpectation, verify_spf};

/// What `check` found for one domain.
#[derive(Clone, Debug, Serialize)]
pub struct DomainReport {
    pub domain: DomainName,
    pub spf: SpfCheck,
    pub dmarc: DmarcCheck,
    /// Present when selectors were given.
    pub dkim: Option<DkimCheck>,
    /// Every problem, most severe first.
    pub problems: Vec<Problem>,
}

/// Analyses a domain's SPF and DMARC, and the given DKIM selectors.
pub async fn check_domain(
    dns: &Dns,
    domain: &DomainName,
    selectors: &[String],
    default_all: &str,
    dmarc: &str,
) -> DomainReport {
    let dns = &dns.scoped();
    let expectation = SpfExpectation { include: None, sending_networks: &[], default_all, account_includes: None };
    let (spf, dmarc, dkim) =
        tokio::join!(verify_spf(dns, domain, &expectation), verify_dmarc(dns, domain, dmarc, None), async {
            if selectors.is_empty() { None } else { Some(check_selectors(dns, domain, selectors).await) }
        });
    let mut problems: Vec<Problem> = spf.problems.iter().chain(&dmarc.problems).cloned().collect();
    if let Some(dkim) = &dkim {
        problems.extend(dkim.problems.iter().cloned());
    }
    problems.sort_by_key(|problem| std::cmp::Reverse(problem.severity));
    DomainReport { domain: domain.clone(), spf, dmarc, dkim, problems }
}
