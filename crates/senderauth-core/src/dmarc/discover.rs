//! Finding the DMARC record that applies to a domain: RFC 7489 section 6.6.3 (the domain, then
//! its organizational domain), and the DNS tree walk of RFC 9989 for comparison.

use serde::Serialize;

use super::parse::is_dmarc_record;
use crate::dns::{Dns, TemporaryFailure};
use crate::name::{DomainName, organizational_domain};

/// The DMARC records published at one `_dmarc` name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublishedRecords {
    /// The domain the records are for (without `_dmarc.`).
    pub domain: String,
    pub records: Vec<String>,
}

/// What discovery found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The record set that applies under RFC 7489, if any.
    pub applicable: Option<PublishedRecords>,
    /// Whether it came from the organizational domain rather than the domain itself.
    pub inherited: bool,
    /// Where the RFC 9989 tree walk finds a record, when that differs from RFC 7489.
    pub tree_walk: Option<PublishedRecords>,
}

async fn records_at(dns: &Dns, domain: &str) -> Result<Vec<String>, TemporaryFailure> {
    let answer = dns.txt(&format!("_dmarc.{domain}")).await?;
    Ok(answer
        .records()
        .into_iter()
        .filter(|text| is_dmarc_record(text))
        .map(|text| String::from_utf8_lossy(&text).into_owned())
        .collect())
}

/// Finds the DMARC record that applies to `domain`.
pub async fn discover(dns: &Dns, domain: &DomainName) -> Result<Discovery, TemporaryFailure> {
    let own = records_at(dns, domain.as_str()).await?;
    let organizational = domain.organizational_domain();
    let (applicable, inherited) = if !own.is_empty() {
        (Some(PublishedRecords { domain: domain.to_string(), records: own }), false)
    } else if organizational != *domain {
        let parent = records_at(dns, organizational.as_str()).await?;
        let found =
            (!parent.is_empty()).then(|| PublishedRecords { domain: organizational.to_string(), records: parent });
        let inherited = found.is_some();
        (found, inherited)
    } else {
        (None, false)
    };
    let tree_walk = tree_walk(dns, domain.as_str(), applicable.as_ref()).await?;
    Ok(Discovery { applicable, inherited, tree_walk })
}

/// RFC 9989 section 4.10: walk from the domain towards the root (starting from at most 7
/// labels) and take the first record found. Names RFC 7489 already asked are not asked again.
/// Returns the walk's find only when it differs from RFC 7489's.
async fn tree_walk(
    dns: &Dns,
    domain: &str,
    rfc7489: Option<&PublishedRecords>,
) -> Result<Option<PublishedRecords>, TemporaryFailure> {
    if rfc7489.is_some_and(|found| found.domain == domain) {
        // Both start at the domain itself.
        return Ok(None);
    }
    let organizational = organizational_domain(domain);
    let labels: Vec<&str> = domain.split('.').collect();
    let start = labels.len().saturating_sub(7).max(1);
    for skip in start..labels.len() {
        let candidate = labels[skip..].join(".");
        if candidate == organizational {
            if rfc7489.is_some() {
                // The walk reaches the same record RFC 7489 found.
                return Ok(None);
            }
            // Already asked by RFC 7489 discovery, and empty.
            continue;
        }
        let records = records_at(dns, &candidate).await?;
        if !records.is_empty() {
            return Ok(Some(PublishedRecords { domain: candidate, records }));
        }
    }
    Ok(None)
}
