//! The records a customer adds at their DNS host: the plan.

use serde::Serialize;

use crate::config::{ProviderConfig, TemplateValues, expand_template};
use crate::dkim::verify::{ExpectedSelector, HostedKey};
use crate::dmarc::discover::discover;
use crate::dmarc::merge::with_report_address;
use crate::dmarc::parse::parse_record as parse_dmarc;
use crate::dns::{Dns, TemporaryFailure};
use crate::name::{AccountId, DomainName};
use crate::problem::Method;
use crate::spf::merge::merge_spf;
use crate::spf::parse::is_spf_record;
use crate::spf::tree::walk_record;

/// What the customer should do with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Add this record.
    Add,
    /// Replace the existing record with this one.
    Replace,
    /// The record is already there as required.
    AlreadyPresent,
    /// Nothing to add: a record that applies exists elsewhere (an inherited DMARC policy).
    NotNeeded,
    /// No record can be proposed as things stand; see the note.
    CannotMerge,
}

/// One DNS record to add.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequiredRecord {
    pub method: Method,
    pub record_type: &'static str,
    /// The host as typed at a DNS host for the customer's zone (`@`, `sa1-1._domainkey.mail`).
    pub host: String,
    /// The fully qualified host name, without the trailing dot.
    pub fqdn: String,
    /// The required data.
    pub value: String,
    pub action: Action,
    /// One sentence on why this record is needed.
    pub purpose: String,
    /// What the customer should know about this record in particular.
    pub notes: Vec<String>,
}

/// The records for one domain and account.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordPlan {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub domain: DomainName,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub account: AccountId,
    /// The zone the customer most likely manages, which hosts are written relative to.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub zone: DomainName,
    pub records: Vec<RequiredRecord>,
    /// DNS lookups the proposed SPF record needs (RFC 7208 allows 10), when it was measured.
    pub spf_lookups: Option<u32>,
}

/// Reasons a plan cannot be made for a domain.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{domain} is reserved by the platform for another purpose; connect a subdomain instead, like mail.{domain}"
    )]
    Reserved { domain: String },
    #[error(
        "{domain} is a mailbox provider's domain ({provider}): nobody who sends through the platform can add DNS \
         records there; use an address at a domain you own"
    )]
    MailboxProvider { domain: String, provider: String },
    #[error(transparent)]
    Dns(#[from] TemporaryFailure),
}

/// The built-in list of mailbox providers' domains.
const MAILBOX_PROVIDERS: &str = include_str!("../data/mailbox_providers.txt");

/// The mailbox provider `domain` belongs to (it, or a domain it is under, is on the built-in
/// list or the configuration's), if any.
pub fn mailbox_provider(config: &ProviderConfig, domain: &DomainName) -> Option<String> {
    let listed = MAILBOX_PROVIDERS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .chain(config.mailbox_providers.iter().map(|name| crate::name::normalize(name)));
    let name = domain.as_str();
    listed.into_iter().find(|provider| name == provider || name.ends_with(&format!(".{provider}")))
}

fn values<'a>(config: &'a ProviderConfig, account: &'a AccountId, domain: &'a DomainName) -> TemplateValues<'a> {
    TemplateValues { account: account.as_str(), domain, selector: None, zone: &config.zone }
}

/// The two DKIM selectors (RSA keys) and their CNAME targets.
pub fn expected_selectors(config: &ProviderConfig, account: &AccountId, domain: &DomainName) -> Vec<ExpectedSelector> {
    selectors_of(&config.dkim.selectors, config, account, domain)
}

/// The two selectors of a domain's Ed25519 keys, for a domain that signs with Ed25519
/// alongside RSA, and their CNAME targets.
pub fn ed25519_selectors(config: &ProviderConfig, account: &AccountId, domain: &DomainName) -> Vec<ExpectedSelector> {
    selectors_of(&config.dkim.ed25519_selectors, config, account, domain)
}

/// The selectors a domain's mail is signed with: the RSA pair, and the Ed25519 pair after
/// them when `ed25519`.
pub fn domain_selectors(
    config: &ProviderConfig,
    account: &AccountId,
    domain: &DomainName,
    ed25519: bool,
    hosted: &[HostedKey],
) -> Vec<ExpectedSelector> {
    let mut selectors = expected_selectors(config, account, domain);
    if ed25519 {
        selectors.extend(ed25519_selectors(config, account, domain));
    }
    // A selector the platform already publishes a key for keeps that key's name: the
    // customer's CNAME points there, whatever the target template says now.
    for selector in &mut selectors {
        selector.key = hosted.iter().find(|key| key.selector == selector.selector).cloned();
        if let Some(key) = &selector.key {
            selector.target.clone_from(&key.target);
        }
    }
    selectors
}

fn selectors_of(
    templates: &[String; 2],
    config: &ProviderConfig,
    account: &AccountId,
    domain: &DomainName,
) -> Vec<ExpectedSelector> {
    templates
        .iter()
        .map(|template| {
            let selector = expand_template(template, &values(config, account, domain));
            let target = expand_template(
                &config.dkim.target,
                &TemplateValues { selector: Some(&selector), ..values(config, account, domain) },
            );
            ExpectedSelector { selector, target, key: None }
        })
        .collect()
}

/// What every account's SPF include host looks like for `domain`: the text before and after
/// the account in the include template; `None` when the template does not name the account.
pub fn include_pattern(config: &ProviderConfig, domain: &DomainName) -> Option<(String, String)> {
    const MARK: &str = "\u{1}";
    let values = TemplateValues { account: MARK, domain, selector: None, zone: &config.zone };
    let expanded = crate::name::normalize(&expand_template(&config.spf.include, &values));
    expanded.split_once(MARK).map(|(prefix, suffix)| (prefix.to_string(), suffix.to_string()))
}

/// Whether `host` is some account's include host, by the `(prefix, suffix)` of
/// [`include_pattern`].
pub fn is_account_include((prefix, suffix): (&str, &str), host: &str) -> bool {
    host.len() > prefix.len() + suffix.len() && host.starts_with(prefix) && host.ends_with(suffix)
}

/// The SPF include host of an account.
pub fn expected_include(config: &ProviderConfig, account: &AccountId, domain: &DomainName) -> String {
    expand_template(&config.spf.include, &values(config, account, domain))
}

/// Whether the platform keeps `domain` (or a domain it is under) for another purpose.
/// Subdomains of a reserved domain are allowed: that is the suggested way out.
pub fn is_reserved(config: &ProviderConfig, domain: &DomainName) -> bool {
    config.reserved_domains.iter().any(|reserved| crate::name::normalize(reserved) == domain.as_str())
}

/// A host relative to the customer's zone, as DNS hosts' Host fields want it.
pub fn relative_host(fqdn: &str, zone: &DomainName) -> String {
    if fqdn == zone.as_str() {
        return "@".to_string();
    }
    fqdn.strip_suffix(&format!(".{zone}")).unwrap_or(fqdn).to_string()
}

/// A DNS host told from a zone's nameservers, with what to know when adding the records there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsHost {
    pub name: &'static str,
    pub advice: &'static str,
    /// What a customer there must know about each CNAME (DKIM, return-path), if anything: a note
    /// on its row.
    pub cname_note: Option<&'static str>,
}

/// DNS hosts that can be told from a zone's nameservers: a part of their nameservers' names,
/// and the host.
pub const DNS_HOSTS: [(&str, DnsHost); 4] = [
    (
        ".ns.cloudflare.com",
        DnsHost {
            name: "Cloudflare",
            advice: "Add both DKIM records as CNAME with the proxy off (DNS only, grey cloud), and keep CNAME flattening off for them: a flattened or proxied CNAME hides the key's rotation and DKIM breaks at the next one.",
            cname_note: Some("Cloudflare: set this record to DNS only (grey cloud); CNAME flattening must be off."),
        },
    ),
    (
        ".domaincontrol.com",
        DnsHost {
            name: "GoDaddy",
            advice: "GoDaddy adds your domain to what you type as the Host: type the Host exactly as shown here (not the full name), or it ends up doubled.",
            cname_note: None,
        },
    ),
    (
        ".registrar-servers.com",
        DnsHost {
            name: "Namecheap",
            advice: "Namecheap adds your domain to what you type as the Host: type the Host exactly as shown here (not the full name), or it ends up doubled.",
            cname_note: None,
        },
    ),
    (
        ".awsdns-",
        DnsHost {
            name: "Amazon Route 53",
            advice: "Route 53 adds your domain to the record name: enter the Host as shown here.",
            cname_note: None,
        },
    ),
];

/// The DNS host whose nameservers these are, if it is one we know.
pub fn dns_host_of(nameservers: &[String]) -> Option<DnsHost> {
    DNS_HOSTS.iter().find(|(pattern, _)| nameservers.iter().any(|ns| ns.contains(pattern))).map(|(_, host)| *host)
}

/// Makes the plan. With `dns`, the domain's current SPF and DMARC records are read so that the
/// SPF record is merged with the existing one and an inherited DMARC policy is recognized;
/// without it, the plan assumes the domain has neither. With `ed25519`, the domain signs with
/// Ed25519 alongside RSA: two more DKIM CNAMEs. `hosted`: the keys the platform publishes for
/// a connected domain, whose names the CNAMEs point to.
pub async fn plan_records(
    dns: Option<&Dns>,
    config: &ProviderConfig,
    account: &AccountId,
    domain: &DomainName,
    ed25519: bool,
    hosted: &[HostedKey],
) -> Result<RecordPlan, PlanError> {
    if is_reserved(config, domain) {
        return Err(PlanError::Reserved { domain: domain.to_string() });
    }
    if let Some(provider) = mailbox_provider(config, domain) {
        return Err(PlanError::MailboxProvider { domain: domain.to_string(), provider });
    }
    let scoped = dns.map(Dns::scoped);
    let dns = scoped.as_ref();
    let zone = domain.organizational_domain();
    // A DNS host's advice only where its nameservers say it hosts the zone (an unreadable
    // answer: no advice).
    let cname_note = match dns {
        Some(dns) => dns
            .ns(zone.as_str())
            .await
            .ok()
            .and_then(|answer| dns_host_of(&answer.records()))
            .and_then(|host| host.cname_note),
        None => None,
    };
    let mut records = Vec::new();
    let rsa = expected_selectors(config, account, domain).len();
    for (number, expected) in domain_selectors(config, account, domain, ed25519, hosted).into_iter().enumerate() {
        let fqdn = format!("{}._domainkey.{domain}", expected.selector);
        let purpose = if number < rsa {
            "Points to a DKIM key the platform hosts and rotates, so mail can be signed as your domain."
        } else {
            "Points to an Ed25519 DKIM key the platform hosts and rotates: mail is signed with it too, for \
             receivers that prefer Ed25519 (the RSA signature serves the others)."
        };
        records.push(RequiredRecord {
            method: Method::Dkim,
            record_type: "CNAME",
            host: relative_host(&fqdn, &zone),
            fqdn,
            value: expected.target,
            action: Action::Add,
            purpose: purpose.to_string(),
            notes: cname_note.map(str::to_string).into_iter().collect(),
        });
    }
    let include = expected_include(config, account, domain);
    let existing_spf: Vec<String> = match dns {
        Some(dns) => dns
            .txt(domain.as_str())
            .await?
            .records()
            .into_iter()
            .filter(|text| is_spf_record(text))
            .map(|text| String::from_utf8_lossy(&text).into_owned())
            .collect(),
        None => Vec::new(),
    };
    let mut merged = merge_spf(&existing_spf, Some(&include), &config.spf.all);
    let mut spf_notes = merged.notes.clone();
    // Another account's include is never kept: this account's takes its place.
    if let Some((prefix, suffix)) = include_pattern(config, domain) {
        let own = format!("include:{}", crate::name::normalize(&include));
        let mut kept = Vec::new();
        for term in merged.record.split_whitespace() {
            let host = term.to_ascii_lowercase().strip_prefix("include:").map(crate::name::normalize);
            let foreign = host
                .as_ref()
                .is_some_and(|host| format!("include:{host}") != own && is_account_include((&prefix, &suffix), host));
            if foreign {
                spf_notes.push(format!("{term} is another account's include; yours takes its place."));
                merged.changed = true;
            } else {
                kept.push(term);
            }
        }
        merged.record = kept.join(" ");
    }
    let mut spf_action = match (existing_spf.is_empty(), merged.changed) {
        (true, _) => Action::Add,
        (false, true) => Action::Replace,
        (false, false) => Action::AlreadyPresent,
    };
    let mut spf_lookups = None;
    if let Some(dns) = dns
        && !existing_spf.is_empty()
    {
        let tree = walk_record(dns, domain.as_str(), &merged.record).await?;
        spf_lookups = Some(tree.lookups);
        if !tree.within_limit() {
            let costs: Vec<String> = tree.costs().iter().map(|(term, cost)| format!("{term}: {cost}")).collect();
            spf_action = Action::CannotMerge;
            spf_notes.push(format!(
                "With the platform's include, your SPF record would need {}{} DNS lookups, over the limit of 10, and receivers would reject it. Lookups per term: {}. Remove includes of services you no longer use, replace small includes with the ip4:/ip6: addresses they list, or send from a subdomain.",
                if tree.truncated { "more than " } else { "" },
                tree.lookups,
                costs.join(", ")
            ));
        }
    }
    records.push(RequiredRecord {
        method: Method::Spf,
        record_type: "TXT",
        host: relative_host(domain.as_str(), &zone),
        fqdn: domain.to_string(),
        value: if spf_action == Action::CannotMerge { String::new() } else { merged.record },
        action: spf_action,
        purpose: "Authorizes the platform's mail servers to send for your domain (SPF).".to_string(),
        notes: spf_notes,
    });
    let dmarc_fqdn = format!("_dmarc.{domain}");
    let mut dmarc = RequiredRecord {
        method: Method::Dmarc,
        record_type: "TXT",
        host: relative_host(&dmarc_fqdn, &zone),
        fqdn: dmarc_fqdn,
        value: config.dmarc_record(),
        action: Action::Add,
        purpose: "Tells receivers what to do with mail that fails authentication, and where to report (DMARC)."
            .to_string(),
        notes: Vec::new(),
    };
    let report_address = config.report_address();
    if let Some(dns) = dns {
        let discovery = discover(dns, domain).await?;
        if let Some(found) = discovery.applicable {
            let text = found.records.join(" | ");
            // Only one valid record takes effect: an invalid or doubled one is ignored by
            // receivers, so it is never proposed as the record to keep.
            let invalid = match found.records.as_slice() {
                [one] => parse_dmarc(one).err(),
                _ => None,
            };
            match (discovery.inherited, found.records.len(), invalid) {
                (true, 1, None) => {
                    dmarc.action = Action::NotNeeded;
                    dmarc.notes.push(format!(
                        "No record is needed: the record of {} at _dmarc.{} applies to this subdomain: {text}",
                        found.domain, found.domain
                    ));
                    if let Some(address) = &report_address {
                        let merged = with_report_address(&text, address);
                        if merged.changed {
                            dmarc.notes.push(format!(
                                "That record also decides where receivers send their reports, and the platform is \
                                 not among them: to see the reports about your mail here, edit it at _dmarc.{} to: {}",
                                found.domain, merged.record
                            ));
                        }
                    }
                }
                (true, _, invalid) => {
                    let why = invalid.map_or_else(
                        || format!("{} DMARC records are published there", found.records.len()),
                        |error| format!("it is not valid ({error})"),
                    );
                    dmarc.notes.push(format!(
                        "The record of {} at _dmarc.{} would apply to this subdomain, but {why}, so receivers \
                         ignore it: add this record (and fix the one at _dmarc.{}).",
                        found.domain, found.domain, found.domain
                    ));
                }
                (false, 1, None) => {
                    match report_address.as_deref().map(|address| with_report_address(&text, address)) {
                        Some(merged) if merged.changed => {
                            dmarc.action = Action::Replace;
                            dmarc.value = merged.record;
                            dmarc.notes.push(
                                "Your record stays as it is, with the platform's report address added to its rua \
                                 list, so that the reports receivers send about your mail reach this page. Edit the \
                                 record you have to this value; do not add a second one."
                                    .to_string(),
                            );
                        }
                        _ => {
                            dmarc.action = Action::AlreadyPresent;
                            dmarc.value = text;
                        }
                    }
                }
                (false, 1, Some(error)) => {
                    dmarc.action = Action::Replace;
                    dmarc.notes.push(format!(
                        "The record at _dmarc.{domain} is not valid ({error}), so receivers ignore it: {text}. \
                         Replace it with this one."
                    ));
                }
                (false, count, _) => {
                    dmarc.action = Action::Replace;
                    dmarc.notes.push(format!(
                        "There are {count} DMARC records, so receivers ignore them all: replace them with this one."
                    ));
                }
            }
        }
    }
    records.push(dmarc);
    let return_path_host = config.return_path_host(account.as_str(), domain);
    records.push(RequiredRecord {
        method: Method::ReturnPath,
        record_type: "CNAME",
        host: relative_host(&return_path_host, &zone),
        fqdn: return_path_host,
        value: config.return_path_target(account.as_str(), domain),
        action: Action::Add,
        purpose: "Gives your mail a return-path under your own domain, so SPF passes aligned with your From \
                  address (not only DKIM), and bounces come back to the platform (Return-Path)."
            .to_string(),
        notes: cname_note.map(str::to_string).into_iter().collect(),
    });
    Ok(RecordPlan { domain: domain.clone(), account: account.clone(), zone, records, spf_lookups })
}

/// The plan as a BIND zone-file snippet.
pub fn to_zone_file(plan: &RecordPlan) -> String {
    let header = format!("; senderauth: records for {} (account {})\n", plan.domain, plan.account);
    header + &zone_records(&plan.records)
}

/// Records in zone-file form: one line each to add or replace, those already present marked,
/// and the notes of those with nothing to add as comments.
pub fn zone_records<'a>(records: impl IntoIterator<Item = &'a RequiredRecord>) -> String {
    let mut output = String::new();
    for record in records {
        match record.action {
            Action::NotNeeded | Action::CannotMerge => {
                for note in &record.notes {
                    output.push_str(&format!("; {}: {note}\n", record.fqdn));
                }
                continue;
            }
            Action::AlreadyPresent => output.push_str("; already present:\n"),
            Action::Add | Action::Replace => {}
        }
        let data = if record.record_type == "TXT" { quote_txt(&record.value) } else { format!("{}.", record.value) };
        output.push_str(&format!("{}.\t3600\tIN\t{}\t{data}\n", record.fqdn, record.record_type));
    }
    output
}

/// TXT data in zone-file form: quoted strings of at most 255 octets.
pub fn quote_txt(text: &str) -> String {
    let chunks: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let escaped = String::from_utf8_lossy(chunk).replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        })
        .collect();
    if chunks.is_empty() { "\"\"".to_string() } else { chunks.join(" ") }
}
