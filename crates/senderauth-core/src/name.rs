//! Domain names: parsing a From address, normalization, the public suffix list.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// The Mozilla public suffix list, as shipped by Debian's `publicsuffix` package.
const PUBLIC_SUFFIX_LIST: &str = include_str!("../data/public_suffix_list.dat");

/// A normalized DNS domain name: lowercase A-labels, no trailing dot, at least two labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

/// Why a domain or email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{input:?} is not an email address: expected the From address you send with, like news@example.com")]
    NotAnEmail { input: String },
    #[error("{input:?} uses an IP address literal; connect a domain name, like news@example.com")]
    IpLiteral { input: String },
    #[error("{domain:?} has a single label; use a registered domain such as example.com")]
    SingleLabel { domain: String },
    #[error(
        "{domain:?} is a public suffix, under which anyone can register names; use your own domain under it, like example.{domain}"
    )]
    PublicSuffix { domain: String },
    #[error("label {label:?} in {domain:?} is {length} octets long; DNS allows at most 63")]
    LabelTooLong { domain: String, label: String, length: usize },
    #[error("{domain:?} is {length} octets long; DNS allows at most 253")]
    NameTooLong { domain: String, length: usize },
    #[error("{domain:?} has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel { domain: String },
    #[error("{domain:?} contains {character:?}, which is not allowed in a host name; use letters, digits and hyphens")]
    InvalidCharacter { domain: String, character: char },
    #[error("label {label:?} in {domain:?} starts or ends with a hyphen, which host names do not allow")]
    HyphenAtEdge { domain: String, label: String },
    #[error("{domain:?} is not a valid internationalized domain name")]
    InvalidIdn { domain: String },
}

impl DomainName {
    /// Parses and normalizes a host name: lowercase, IDN to A-labels, trailing dot dropped.
    ///
    /// Refuses IP literals, single labels, public suffixes themselves and malformed names.
    pub fn parse(input: &str) -> Result<DomainName, NameError> {
        let trimmed = input.trim();
        let without_dot = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if without_dot.starts_with('[') || without_dot.parse::<std::net::IpAddr>().is_ok() {
            return Err(NameError::IpLiteral { input: input.to_string() });
        }
        let ascii = to_ascii(without_dot)?;
        check_host_syntax(&ascii)?;
        if !ascii.contains('.') {
            return Err(NameError::SingleLabel { domain: ascii });
        }
        if is_public_suffix(&ascii) {
            return Err(NameError::PublicSuffix { domain: ascii });
        }
        Ok(DomainName(ascii))
    }

    /// Parses the domain of a From address (`news@example.com` or `Name <news@example.com>`,
    /// read as [`crate::mailbox::Mailbox`] reads a From header).
    pub fn from_email(input: &str) -> Result<DomainName, NameError> {
        match crate::mailbox::Mailbox::parse(input) {
            Ok(mailbox) => Ok(mailbox.domain),
            Err(crate::mailbox::MailboxError::Domain(error)) => Err(error),
            Err(_) => Err(NameError::NotAnEmail { input: input.to_string() }),
        }
    }

    /// The name as people read it, when it has internationalized labels (`bücher.example` for
    /// `xn--bcher-kva.example`); `None` when it is plain ASCII.
    pub fn unicode(&self) -> Option<String> {
        if !self.0.split('.').any(|label| label.starts_with("xn--")) {
            return None;
        }
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        result.ok().filter(|()| unicode != self.0).map(|()| unicode)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The organizational domain (RFC 7489 section 3.2): the public suffix plus one label.
    pub fn organizational_domain(&self) -> DomainName {
        DomainName(organizational_domain(&self.0).to_string())
    }

    /// Whether this name is its own organizational domain (not a subdomain).
    pub fn is_organizational(&self) -> bool {
        organizational_domain(&self.0) == self.0
    }

    /// The name as one DNS label, for the `{domain_dashed}` placeholder: each dash doubled and
    /// each dot a dash (`mail-shop.example.com` is `mail--shop-example-com`), so no two domains
    /// share one (a label never starts or ends with a dash, so a lone dash can only be a dot);
    /// when that is over 63 octets, `h---` and 26 base32 characters of the name's SHA-256
    /// (three dashes in a row never come out of the first form).
    pub fn dashed(&self) -> String {
        let dashed = self.0.replace('-', "--").replace('.', "-");
        if dashed.len() <= 63 {
            return dashed;
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        // Base32 (RFC 4648, lowercase, unpadded) of the first 130 bits.
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut label = String::from("h---");
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in digest.iter() {
            buffer = (buffer << 8) | u32::from(*byte);
            bits += 8;
            while bits >= 5 && label.len() < 30 {
                bits -= 5;
                label.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
            }
        }
        label
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An account id as it appears in DNS names (`sa1-{account}`): 1 to 32 lowercase letters,
/// digits and inner hyphens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

/// Why an account id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "account id {input:?} is not valid: use 1 to 32 letters, digits and hyphens (not at the start or end), as it becomes part of DNS names"
)]
pub struct AccountIdError {
    pub input: String,
}

impl AccountId {
    pub fn parse(input: &str) -> Result<AccountId, AccountIdError> {
        let id = input.trim().to_ascii_lowercase();
        let valid = (1..=32).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if valid { Ok(AccountId(id)) } else { Err(AccountIdError { input: input.to_string() }) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Lowercases a DNS name and drops one trailing dot; the form names are compared in.
pub fn normalize(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether `name` can be published in DNS as it is: at most 253 octets, labels of 1 to 63
/// (any octets: `_` is fine, as in `_domainkey`).
pub fn check_name_fits(name: &str) -> Result<(), NameError> {
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return Err(NameError::NameTooLong { domain: name.to_string(), length: name.len() });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel { domain: name.to_string() });
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong {
                domain: name.to_string(),
                label: label.to_string(),
                length: label.len(),
            });
        }
    }
    Ok(())
}

fn to_ascii(domain: &str) -> Result<String, NameError> {
    if domain.is_ascii() {
        return Ok(domain.to_ascii_lowercase());
    }
    idna::domain_to_ascii(domain).map_err(|_| NameError::InvalidIdn { domain: domain.to_string() })
}

fn check_host_syntax(domain: &str) -> Result<(), NameError> {
    check_name_fits(domain)?;
    for label in domain.split('.') {
        if let Some(character) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(NameError::InvalidCharacter { domain: domain.to_string(), character });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::HyphenAtEdge { domain: domain.to_string(), label: label.to_string() });
        }
    }
    Ok(())
}

struct SuffixRules {
    rules: HashSet<&'static str>,
    wildcards: HashSet<&'static str>,
    exceptions: HashSet<&'static str>,
}

fn suffix_rules() -> &'static SuffixRules {
    static RULES: OnceLock<SuffixRules> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut rules = SuffixRules { rules: HashSet::new(), wildcards: HashSet::new(), exceptions: HashSet::new() };
        for line in PUBLIC_SUFFIX_LIST.lines() {
            let rule = line.split_whitespace().next().unwrap_or("");
            if rule.is_empty() || rule.starts_with("//") || !rule.is_ascii() {
                // Non-ASCII rules have A-label twins in the list (`xn--...`), which is what
                // normalized names are compared against.
                continue;
            }
            if let Some(exception) = rule.strip_prefix('!') {
                rules.exceptions.insert(exception);
            } else if let Some(parent) = rule.strip_prefix("*.") {
                rules.wildcards.insert(parent);
            } else {
                rules.rules.insert(rule);
            }
        }
        rules
    })
}

/// The length in labels of the public suffix of a lowercase A-label name (the PSL algorithm,
/// with the implicit `*` rule).
fn public_suffix_labels(name: &str) -> usize {
    let rules = suffix_rules();
    let labels: Vec<&str> = name.split('.').collect();
    let mut best = 1;
    for start in (0..labels.len()).rev() {
        let candidate = labels[start..].join(".");
        let count = labels.len() - start;
        if rules.exceptions.contains(candidate.as_str()) {
            return count - 1;
        }
        if rules.rules.contains(candidate.as_str()) {
            best = best.max(count);
        }
        if start > 0 && rules.wildcards.contains(candidate.as_str()) {
            let wildcard_match = labels[start - 1..].join(".");
            if !rules.exceptions.contains(wildcard_match.as_str()) {
                best = best.max(count + 1);
            }
        }
    }
    best
}

/// Whether a lowercase A-label name is itself a public suffix (`com`, `co.uk`).
pub fn is_public_suffix(name: &str) -> bool {
    public_suffix_labels(name) >= name.split('.').count()
}

/// The organizational domain of a lowercase A-label name: its public suffix plus one label,
/// or the name itself when it is a public suffix.
pub fn organizational_domain(name: &str) -> &str {
    let labels: Vec<&str> = name.split('.').collect();
    let keep = (public_suffix_labels(name) + 1).min(labels.len());
    let skip: usize = labels[..labels.len() - keep].iter().map(|label| label.len() + 1).sum();
    &name[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_from_addresses() {
        let cases = [
            ("news@Example.COM", "example.com"),
            ("News Team <news@info.example.com.>", "info.example.com"),
            ("kontakt@bücher.example", "xn--bcher-kva.example"),
            ("a@mail.example.co.uk", "mail.example.co.uk"),
        ];
        for (input, expected) in cases {
            assert_eq!(DomainName::from_email(input).map(|d| d.to_string()), Ok(expected.into()), "{input}");
        }
    }

    #[test]
    fn refuses_bad_addresses_with_a_reason() {
        let long_label = format!("a@{}.com", "x".repeat(64));
        let long_name = format!("a@{}com", "abcdefghi.".repeat(26));
        type Check = fn(&NameError) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            ("example.com", |e| matches!(e, NameError::NotAnEmail { .. })),
            ("@example.com", |e| matches!(e, NameError::NotAnEmail { .. })),
            ("a@[192.0.2.1]", |e| matches!(e, NameError::IpLiteral { .. })),
            ("a@192.0.2.1", |e| matches!(e, NameError::IpLiteral { .. })),
            ("a@localhost", |e| matches!(e, NameError::SingleLabel { .. })),
            ("a@co.uk", |e| matches!(e, NameError::PublicSuffix { .. })),
            ("a@github.io", |e| matches!(e, NameError::PublicSuffix { .. })),
            (&long_label, |e| matches!(e, NameError::LabelTooLong { length: 64, .. })),
            (&long_name, |e| matches!(e, NameError::NameTooLong { .. })),
            ("a@exa_mple.com", |e| matches!(e, NameError::InvalidCharacter { character: '_', .. })),
            ("a@example..com", |e| matches!(e, NameError::EmptyLabel { .. })),
            ("a@-example.com", |e| matches!(e, NameError::HyphenAtEdge { .. })),
        ];
        for (input, check) in cases {
            let error = DomainName::from_email(input).expect_err(input);
            assert!(check(&error), "{input}: {error}");
        }
    }

    #[test]
    fn internationalized_names_read_as_unicode() {
        let name = DomainName::from_email("kontakt@bücher.example").expect("a name");
        assert_eq!((name.as_str(), name.unicode().as_deref()), ("xn--bcher-kva.example", Some("bücher.example")));
        assert_eq!(DomainName::parse("shop.example.com").expect("a name").unicode(), None);
    }

    #[test]
    fn dashed_names_are_one_label_and_never_shared() {
        let dashed = |name: &str| DomainName::parse(name).expect("a name").dashed();
        assert_eq!(dashed("mail.example.com"), "mail-example-com");
        assert_eq!(dashed("mail-shop.example.test"), "mail--shop-example-test");
        assert_eq!(dashed("mail.shop-example.test"), "mail-shop--example-test");
        assert_eq!(dashed("xn--bcher-kva.example"), "xn----bcher--kva-example");
        let long = "news@ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.test";
        let hashed = DomainName::from_email(long).expect("a name").dashed();
        assert!(hashed.starts_with("h---") && hashed.len() == 30, "{hashed}");
        assert!(hashed[4..].bytes().all(|byte| byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte)));
        assert_ne!(hashed, dashed("ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.tes"));
        // Injective over names that collided before (dots and dashes swapped around).
        let names = ["a-b.c-d.example", "a.b-c-d.example", "a-b-c.d.example", "a.b.c.d.example", "a--b.cd.example"];
        let mut labels: Vec<String> = names.iter().map(|name| dashed(name)).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), names.len(), "{labels:?}");
    }

    #[test]
    fn organizational_domains_follow_the_public_suffix_list() {
        let cases = [
            ("mail.example.com", "example.com"),
            ("example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("x.y.example.kawasaki.jp", "y.example.kawasaki.jp"),
            ("www.city.kawasaki.jp", "city.kawasaki.jp"),
            ("foo.bar.unknowntld", "bar.unknowntld"),
        ];
        for (name, expected) in cases {
            assert_eq!(organizational_domain(name), expected, "{name}");
        }
    }
}
