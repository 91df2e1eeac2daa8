//! RFC 7208 `check_host()`: evaluates a domain's SPF policy for a client address.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use super::parse::{
    Directive, MacroString, Mechanism, Qualifier, SpfRecord, SpfSyntaxError, is_spf_record, parse_macro_string,
    parse_record,
};
use crate::cidr::IpNetwork;
use crate::dns::{Answer, Dns, TemporaryFailure};

/// RFC 7208 section 4.6.4: at most 10 DNS-querying terms per evaluation.
pub const MAX_DNS_LOOKUPS: u32 = 10;
/// RFC 7208 section 4.6.4: at most 2 lookups that return no records.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 section 4.6.4: at most 10 MX or PTR names are looked at.
const MAX_NAMES_PER_MECHANISM: usize = 10;

/// The result of an SPF evaluation (RFC 7208 section 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }

    fn from_qualifier(qualifier: Qualifier) -> SpfResult {
        match qualifier {
            Qualifier::Pass => SpfResult::Pass,
            Qualifier::Fail => SpfResult::Fail,
            Qualifier::SoftFail => SpfResult::SoftFail,
            Qualifier::Neutral => SpfResult::Neutral,
        }
    }
}

/// What an evaluation found, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub result: SpfResult,
    /// For `fail`: the explanation from the record's `exp=` modifier, when it has one.
    pub explanation: Option<String>,
    /// One line on what decided the result.
    pub reason: String,
    pub lookups: u32,
    pub void_lookups: u32,
}

/// The message's identities for one evaluation.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The SMTP client's address.
    pub ip: IpAddr,
    /// The MAIL FROM address; empty for a null sender (then `postmaster@<helo>` is used).
    pub sender: String,
    /// The HELO/EHLO name.
    pub helo: String,
}

/// Evaluates the SPF policy of the MAIL FROM domain (or the HELO name for a null sender).
pub async fn check_mail_from(dns: &Dns, identity: &Identity) -> Evaluation {
    let sender =
        if identity.sender.is_empty() { format!("postmaster@{}", identity.helo) } else { identity.sender.clone() };
    let domain = sender.rsplit_once('@').map_or(sender.as_str(), |(_, domain)| domain).to_string();
    check_host(dns, identity.ip, &domain, &sender, &identity.helo).await
}

/// SPF records parsed during one check, by their text: a check evaluates the same records for
/// several addresses (both ends of every sending range), and parsing them again each time was
/// a measurable part of a bulk run.
#[derive(Default)]
pub struct ParsedRecords {
    records: HashMap<String, Result<Arc<SpfRecord>, SpfSyntaxError>, foldhash::fast::RandomState>,
}

impl ParsedRecords {
    fn parse(&mut self, text: &str) -> Result<Arc<SpfRecord>, SpfSyntaxError> {
        if let Some(parsed) = self.records.get(text) {
            return parsed.clone();
        }
        let parsed = parse_record(text).map(Arc::new);
        self.records.insert(text.to_string(), parsed.clone());
        parsed
    }
}

/// RFC 7208 section 4: `check_host(ip, domain, sender)`.
pub async fn check_host(dns: &Dns, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> Evaluation {
    check_host_with(dns, &mut ParsedRecords::default(), ip, domain, sender, helo).await
}

/// As [`check_host`], reusing the records `parsed` already holds (and adding to them).
pub async fn check_host_with(
    dns: &Dns,
    parsed: &mut ParsedRecords,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> Evaluation {
    // RFC 7208 section 5: an IPv4-mapped IPv6 address is evaluated as IPv4.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    let (local, sender_domain) = match sender.rsplit_once('@') {
        // RFC 7208 section 4.3: an empty local-part is replaced by "postmaster".
        Some(("", domain)) => ("postmaster".to_string(), domain.to_string()),
        Some((local, domain)) => (local.to_string(), domain.to_string()),
        None => ("postmaster".to_string(), sender.to_string()),
    };
    let mut context = Context {
        dns,
        parsed,
        ip,
        local,
        sender_domain,
        helo: helo.to_string(),
        lookups: 0,
        void_lookups: 0,
        validated_name: None,
    };
    let outcome = if !is_valid_domain(domain) {
        // RFC 7208 section 4.3: a malformed or single-label domain gives "none".
        Ok(Verdict {
            result: SpfResult::None,
            explanation: None,
            reason: format!("{domain:?} is not a valid domain name"),
        })
    } else {
        context.evaluate(domain.to_string()).await
    };
    let verdict = outcome.unwrap_or_else(|stop| match stop {
        Stop::Temporary(reason) => Verdict { result: SpfResult::TempError, explanation: None, reason },
        Stop::Permanent(reason) => Verdict { result: SpfResult::PermError, explanation: None, reason },
    });
    Evaluation {
        result: verdict.result,
        explanation: verdict.explanation,
        reason: verdict.reason,
        lookups: context.lookups,
        void_lookups: context.void_lookups,
    }
}

/// Whether a name can be looked up: labels of 1 to 63 octets, at least two labels.
pub(crate) fn is_valid_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    domain.len() <= 253 && domain.contains('.') && domain.split('.').all(|label| !label.is_empty() && label.len() <= 63)
}

struct Verdict {
    result: SpfResult,
    explanation: Option<String>,
    reason: String,
}

enum Stop {
    Temporary(String),
    Permanent(String),
}

impl From<TemporaryFailure> for Stop {
    fn from(failure: TemporaryFailure) -> Stop {
        Stop::Temporary(failure.to_string())
    }
}

type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, Stop>> + Send + 'a>>;

struct Context<'a> {
    dns: &'a Dns,
    parsed: &'a mut ParsedRecords,
    ip: IpAddr,
    local: String,
    sender_domain: String,
    helo: String,
    lookups: u32,
    void_lookups: u32,
    validated_name: Option<String>,
}

impl<'a> Context<'a> {
    fn count_lookup(&mut self, term: &str) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > MAX_DNS_LOOKUPS {
            return Err(Stop::Permanent(format!(
                "more than {MAX_DNS_LOOKUPS} DNS-querying terms (RFC 7208 section 4.6.4), reached at {term}"
            )));
        }
        Ok(())
    }

    fn count_void<T>(&mut self, answer: &Answer<T>, name: &str) -> Result<(), Stop> {
        if answer.is_void() {
            self.void_lookups += 1;
            if self.void_lookups > MAX_VOID_LOOKUPS {
                return Err(Stop::Permanent(format!(
                    "more than {MAX_VOID_LOOKUPS} lookups returned no records (RFC 7208 section 4.6.4), the last for {name}"
                )));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, domain: String) -> Step<'_, Verdict> {
        Box::pin(async move {
            let answer = self.dns.txt(&domain).await?;
            let records: Vec<Vec<u8>> = answer.records().into_iter().filter(|text| is_spf_record(text)).collect();
            let text = match records.as_slice() {
                [] => {
                    return Ok(Verdict {
                        result: SpfResult::None,
                        explanation: None,
                        reason: format!("{domain} has no SPF record"),
                    });
                }
                [one] => one,
                _ => {
                    return Err(Stop::Permanent(format!(
                        "{domain} has {} SPF records; there must be one",
                        records.len()
                    )));
                }
            };
            let text = std::str::from_utf8(text)
                .map_err(|_| Stop::Permanent(format!("the SPF record of {domain} is not ASCII")))?;
            let record = self.parsed.parse(text).map_err(|error| Stop::Permanent(format!("{domain}: {error}")))?;
            for directive in record.directives() {
                if self.matches(directive, &domain).await? {
                    let result = SpfResult::from_qualifier(directive.qualifier);
                    let explanation = match (result, record.explanation()) {
                        (SpfResult::Fail, Some(exp)) => self.explain(exp, &domain).await,
                        _ => None,
                    };
                    return Ok(Verdict {
                        result,
                        explanation,
                        reason: format!("{domain}: matched {}", describe(directive)),
                    });
                }
            }
            if let Some(target) = record.redirect() {
                self.count_lookup("redirect")?;
                let target = self.expand_domain(target, &domain).await?;
                if !is_valid_domain(&target) {
                    return Err(Stop::Permanent(format!("{domain}: redirect to invalid domain {target:?}")));
                }
                let verdict = self.evaluate(target.clone()).await?;
                if verdict.result == SpfResult::None {
                    return Err(Stop::Permanent(format!("{domain}: redirect target {target} has no SPF record")));
                }
                return Ok(verdict);
            }
            Ok(Verdict {
                result: SpfResult::Neutral,
                explanation: None,
                reason: format!("{domain}: no mechanism matched"),
            })
        })
    }

    fn matches<'b>(&'b mut self, directive: &'b Directive, domain: &'b str) -> Step<'b, bool> {
        Box::pin(async move {
            let ipv6 = self.ip.is_ipv6();
            match &directive.mechanism {
                Mechanism::All => Ok(true),
                Mechanism::Ip4(network) | Mechanism::Ip6(network) => Ok(network.contains(self.ip)),
                Mechanism::Include(target) => {
                    self.count_lookup("include")?;
                    let target = self.expand_domain(target, domain).await?;
                    if !is_valid_domain(&target) {
                        return Err(Stop::Permanent(format!("{domain}: include of invalid domain {target:?}")));
                    }
                    let verdict = self.evaluate(target.clone()).await?;
                    match verdict.result {
                        SpfResult::Pass => Ok(true),
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                        SpfResult::None => {
                            Err(Stop::Permanent(format!("{domain}: included {target} has no SPF record")))
                        }
                        SpfResult::TempError => Err(Stop::Temporary(verdict.reason)),
                        SpfResult::PermError => Err(Stop::Permanent(verdict.reason)),
                    }
                }
                Mechanism::A { domain: target, cidr4, cidr6 } => {
                    self.count_lookup("a")?;
                    let name = self.optional_target(target.as_ref(), domain).await?;
                    if !is_valid_domain(&name) {
                        return Ok(false);
                    }
                    let answer = self.dns.addresses(&name, ipv6).await?;
                    self.count_void(&answer, &name)?;
                    Ok(self.any_in_network(answer.records(), *cidr4, *cidr6))
                }
                Mechanism::Mx { domain: target, cidr4, cidr6 } => {
                    self.count_lookup("mx")?;
                    let name = self.optional_target(target.as_ref(), domain).await?;
                    if !is_valid_domain(&name) {
                        return Ok(false);
                    }
                    let answer = self.dns.mx(&name).await?;
                    self.count_void(&answer, &name)?;
                    let exchanges = answer.records();
                    if exchanges.len() > MAX_NAMES_PER_MECHANISM {
                        return Err(Stop::Permanent(format!(
                            "{name} has {} MX records; SPF looks at no more than {MAX_NAMES_PER_MECHANISM}",
                            exchanges.len()
                        )));
                    }
                    for exchange in exchanges {
                        let addresses = self.dns.addresses(&exchange, ipv6).await?;
                        self.count_void(&addresses, &exchange)?;
                        if self.any_in_network(addresses.records(), *cidr4, *cidr6) {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }
                Mechanism::Ptr(target) => {
                    self.count_lookup("ptr")?;
                    let name = self.optional_target(target.as_ref(), domain).await?;
                    Ok(self
                        .validated_names(Some(&name))
                        .await
                        .iter()
                        .any(|validated| is_same_or_subdomain(validated, &name)))
                }
                Mechanism::Exists(target) => {
                    self.count_lookup("exists")?;
                    let name = self.expand_domain(target, domain).await?;
                    if !is_valid_domain(&name) {
                        return Ok(false);
                    }
                    // RFC 7208 section 5.7: exists always queries A, whatever the client's family.
                    let answer = self.dns.a(&name).await?;
                    self.count_void(&answer, &name)?;
                    Ok(!answer.records().is_empty())
                }
            }
        })
    }

    fn any_in_network(&self, addresses: Vec<IpAddr>, cidr4: u8, cidr6: u8) -> bool {
        addresses.into_iter().any(|address| {
            let prefix = if address.is_ipv4() { cidr4 } else { cidr6 };
            IpNetwork::new(address, prefix).is_some_and(|network| network.contains(self.ip))
        })
    }

    async fn optional_target(&mut self, target: Option<&MacroString>, domain: &str) -> Result<String, Stop> {
        match target {
            Some(target) => self.expand_domain(target, domain).await,
            None => Ok(domain.to_string()),
        }
    }

    /// RFC 7208 section 5.5: the client's validated names, those of the first 10 PTR names whose
    /// addresses include the client. Lookup errors only drop names; they never fail the check.
    async fn validated_names(&self, prefer_under: Option<&str>) -> Vec<String> {
        let Ok(answer) = self.dns.ptr(self.ip).await else {
            return Vec::new();
        };
        let mut names = answer.records();
        names.truncate(MAX_NAMES_PER_MECHANISM);
        if let Some(parent) = prefer_under {
            names.sort_by_key(|name| !is_same_or_subdomain(name, parent));
        }
        let mut validated = Vec::new();
        for name in names {
            if let Ok(addresses) = self.dns.addresses(&name, self.ip.is_ipv6()).await
                && addresses.records().contains(&self.ip)
            {
                validated.push(name);
            }
        }
        validated
    }

    async fn expand_domain(&mut self, spec: &MacroString, domain: &str) -> Result<String, Stop> {
        let mut expanded = self.expand(&spec.0, domain, false).await?;
        // RFC 7208 section 7.3: drop leading labels until the name fits in 253 octets.
        while expanded.len() > 253 {
            match expanded.find('.') {
                Some(dot) => expanded = expanded[dot + 1..].to_string(),
                None => break,
            }
        }
        Ok(expanded.strip_suffix('.').map(str::to_string).unwrap_or(expanded))
    }

    /// RFC 7208 section 6.2: the explanation; any problem with it just means none is given.
    async fn explain(&mut self, spec: &MacroString, domain: &str) -> Option<String> {
        let name = self.expand_domain(spec, domain).await.ok()?;
        if !is_valid_domain(&name) {
            return None;
        }
        let records = self.dns.txt(&name).await.ok()?.records();
        let [text] = records.as_slice() else { return None };
        let text = std::str::from_utf8(text).ok()?;
        parse_macro_string(text, true).ok()?;
        self.expand(text, domain, true).await.ok()
    }

    /// RFC 7208 section 7: macro expansion.
    async fn expand(&mut self, text: &str, domain: &str, explain: bool) -> Result<String, Stop> {
        let mut output = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(percent) = rest.find('%') {
            output.push_str(&rest[..percent]);
            let after = &rest[percent + 1..];
            match after.as_bytes().first() {
                Some(b'%') => {
                    output.push('%');
                    rest = &after[1..];
                }
                Some(b'_') => {
                    output.push(' ');
                    rest = &after[1..];
                }
                Some(b'-') => {
                    output.push_str("%20");
                    rest = &after[1..];
                }
                Some(b'{') => {
                    let close = after.find('}').ok_or_else(|| Stop::Permanent("unclosed macro".to_string()))?;
                    let body = &after[1..close];
                    output.push_str(&self.expand_macro(body, domain, explain).await?);
                    rest = &after[close + 1..];
                }
                _ => return Err(Stop::Permanent(format!("invalid macro in {text:?}"))),
            }
        }
        output.push_str(rest);
        Ok(output)
    }

    async fn expand_macro(&mut self, body: &str, domain: &str, explain: bool) -> Result<String, Stop> {
        let mut chars = body.chars();
        let letter = chars.next().ok_or_else(|| Stop::Permanent("empty macro".to_string()))?;
        let value = match letter.to_ascii_lowercase() {
            's' => format!("{}@{}", self.local, self.sender_domain),
            'l' => self.local.clone(),
            'o' => self.sender_domain.clone(),
            'd' => domain.to_string(),
            'i' => dotted_address(self.ip),
            'p' => {
                if self.validated_name.is_none() {
                    let names = self.validated_names(Some(domain)).await;
                    self.validated_name = Some(names.into_iter().next().unwrap_or_else(|| "unknown".to_string()));
                }
                self.validated_name.clone().unwrap_or_default()
            }
            'v' => if self.ip.is_ipv4() { "in-addr" } else { "ip6" }.to_string(),
            'h' => self.helo.clone(),
            'c' if explain => self.ip.to_string(),
            'r' if explain => "unknown".to_string(),
            't' if explain => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
                .to_string(),
            other => return Err(Stop::Permanent(format!("macro letter {other:?} is not allowed here"))),
        };
        let rest = chars.as_str();
        let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let keep: Option<usize> = if digits_end == 0 {
            None
        } else {
            let count = rest[..digits_end].parse::<usize>().unwrap_or(usize::MAX);
            if count == 0 {
                return Err(Stop::Permanent("a macro may not keep zero labels".to_string()));
            }
            Some(count)
        };
        let mut tail = &rest[digits_end..];
        let reverse = tail.starts_with(['r', 'R']);
        if reverse {
            tail = &tail[1..];
        }
        let delimiters: Vec<char> = if tail.is_empty() { vec!['.'] } else { tail.chars().collect() };
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(&c)).collect();
        if reverse {
            parts.reverse();
        }
        if let Some(keep) = keep
            && parts.len() > keep
        {
            parts.drain(..parts.len() - keep);
        }
        let joined = parts.join(".");
        Ok(if letter.is_ascii_uppercase() { url_escape(&joined) } else { joined })
    }
}

fn describe(directive: &Directive) -> String {
    let name = match &directive.mechanism {
        Mechanism::All => "all".to_string(),
        Mechanism::Include(target) => format!("include:{}", target.0),
        Mechanism::A { domain, .. } => domain.as_ref().map_or("a".to_string(), |domain| format!("a:{}", domain.0)),
        Mechanism::Mx { domain, .. } => domain.as_ref().map_or("mx".to_string(), |domain| format!("mx:{}", domain.0)),
        Mechanism::Ptr(_) => "ptr".to_string(),
        Mechanism::Ip4(network) => format!("ip4:{network}"),
        Mechanism::Ip6(network) => format!("ip6:{network}"),
        Mechanism::Exists(target) => format!("exists:{}", target.0),
    };
    format!("{}{name}", directive.qualifier.symbol())
}

fn is_same_or_subdomain(name: &str, parent: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let parent = parent.to_ascii_lowercase();
    name == parent || name.ends_with(&format!(".{parent}"))
}

/// RFC 7208 section 7.3: `i` is the dotted address; for IPv6, dot-separated nibbles.
fn dotted_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut nibbles = Vec::with_capacity(32);
            for byte in v6.octets() {
                nibbles.push(format!("{:x}", byte >> 4));
                nibbles.push(format!("{:x}", byte & 0x0f));
            }
            nibbles.join(".")
        }
    }
}

/// RFC 7208 section 7.3: an uppercase macro letter's value is URL-escaped, every character but
/// RFC 3986's unreserved ones percent-encoded.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn url_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}
