//! SPF record syntax (RFC 7208 section 4.6 and the ABNF in section 12).
//!
//! Our own parser, not a crate's: the checks need what the SPF crates do not expose, the
//! position of a syntax error in the record (shown to the customer with the fix), every term
//! with its macro strings kept for evaluation, and the lookup and void-lookup counts the include
//! tree walk takes from it (RFC 7208 section 4.6.4). The openspf RFC 7208 suite and checkdmarc
//! check it (README, Conformance).

use std::fmt;
use std::net::IpAddr;

use crate::cidr::IpNetwork;

/// What a matching mechanism yields (RFC 7208 section 4.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    pub fn symbol(self) -> char {
        match self {
            Qualifier::Pass => '+',
            Qualifier::Fail => '-',
            Qualifier::SoftFail => '~',
            Qualifier::Neutral => '?',
        }
    }

    /// How strict an `all` with this qualifier is: higher rejects more.
    pub fn strictness(self) -> u8 {
        match self {
            Qualifier::Pass => 0,
            Qualifier::Neutral => 1,
            Qualifier::SoftFail => 2,
            Qualifier::Fail => 3,
        }
    }
}

/// A domain-spec or explain-string that may contain macros (RFC 7208 section 7), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacroString(pub String);

impl MacroString {
    /// Whether expansion depends on the message (any `%{...}`).
    pub fn has_macros(&self) -> bool {
        self.0.contains("%{")
    }
}

/// A mechanism (RFC 7208 section 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A { domain: Option<MacroString>, cidr4: u8, cidr6: u8 },
    Mx { domain: Option<MacroString>, cidr4: u8, cidr6: u8 },
    Ptr(Option<MacroString>),
    Ip4(IpNetwork),
    Ip6(IpNetwork),
    Exists(MacroString),
}

impl Mechanism {
    /// RFC 7208 section 4.6.4: the terms that cause DNS queries count against the limit of 10.
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

/// A qualifier and a mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

/// One term of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    Directive(Directive),
    Redirect(MacroString),
    Explanation(MacroString),
    /// An unknown modifier, which RFC 7208 section 6 says to ignore.
    Unknown {
        name: String,
        value: String,
    },
}

/// A parsed `v=spf1` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfRecord {
    pub terms: Vec<Term>,
}

impl SpfRecord {
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.terms.iter().filter_map(|term| match term {
            Term::Directive(directive) => Some(directive),
            _ => None,
        })
    }

    pub fn redirect(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|term| match term {
            Term::Redirect(target) => Some(target),
            _ => None,
        })
    }

    pub fn explanation(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|term| match term {
            Term::Explanation(target) => Some(target),
            _ => None,
        })
    }

    /// The qualifier of the record's `all` mechanism, if it has one.
    pub fn all_qualifier(&self) -> Option<Qualifier> {
        self.directives().find(|directive| directive.mechanism == Mechanism::All).map(|directive| directive.qualifier)
    }
}

/// Where and why a record does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position}, in {term:?})")]
pub struct SpfSyntaxError {
    /// 1-based character position of the offending term in the record.
    pub position: usize,
    pub term: String,
    pub message: String,
}

/// Whether a TXT record is an SPF record: `v=spf1` followed by a space or the end
/// (RFC 7208 section 4.5), compared case-insensitively.
pub fn is_spf_record(text: &[u8]) -> bool {
    text.len() >= 6 && text[..6].eq_ignore_ascii_case(b"v=spf1") && (text.len() == 6 || text[6] == b' ')
}

/// Parses an SPF record. Any syntax error anywhere makes the whole record invalid
/// (RFC 7208 section 4.6).
pub fn parse_record(text: &str) -> Result<SpfRecord, SpfSyntaxError> {
    if !is_spf_record(text.as_bytes()) {
        return Err(SpfSyntaxError {
            position: 1,
            term: text.chars().take(10).collect(),
            message: "an SPF record must start with \"v=spf1\" followed by a space".to_string(),
        });
    }
    if let Some(offset) = text.find(|c: char| !c.is_ascii() || (c.is_ascii_control() && c != ' ')) {
        return Err(SpfSyntaxError {
            position: text[..offset].chars().count() + 1,
            term: text[offset..].chars().take(10).collect(),
            message: "SPF records may contain only printable ASCII characters".to_string(),
        });
    }
    let mut terms = Vec::new();
    let mut seen_redirect = false;
    let mut seen_exp = false;
    let mut offset = 6;
    for term_text in text[6..].split(' ') {
        let position = offset + 1;
        offset += term_text.len() + 1;
        if term_text.is_empty() {
            continue;
        }
        let error = |message: String| SpfSyntaxError { position, term: term_text.to_string(), message };
        let term = parse_term(term_text).map_err(&error)?;
        match &term {
            Term::Redirect(_) if seen_redirect => return Err(error("\"redirect\" may appear only once".to_string())),
            Term::Explanation(_) if seen_exp => return Err(error("\"exp\" may appear only once".to_string())),
            Term::Redirect(_) => seen_redirect = true,
            Term::Explanation(_) => seen_exp = true,
            _ => {}
        }
        terms.push(term);
    }
    Ok(SpfRecord { terms })
}

/// Parses one term of a record (a directive or a modifier).
pub fn parse_term(text: &str) -> Result<Term, String> {
    // A modifier is `name=value` where the name is ALPHA *(ALPHA / DIGIT / "-" / "_" / ".").
    let name_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if let Some(end) = name_end
        && text.as_bytes()[end] == b'='
    {
        let name = &text[..end];
        let value = &text[end + 1..];
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!("{name:?} is not a valid modifier name"));
        }
        return match name.to_ascii_lowercase().as_str() {
            "redirect" => Ok(Term::Redirect(parse_domain_spec(value)?)),
            "exp" => Ok(Term::Explanation(parse_domain_spec(value)?)),
            _ => {
                parse_macro_string(value, false)?;
                Ok(Term::Unknown { name: name.to_string(), value: value.to_string() })
            }
        };
    }
    let (qualifier, rest) = match text.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &text[1..]),
        b'-' => (Qualifier::Fail, &text[1..]),
        b'~' => (Qualifier::SoftFail, &text[1..]),
        b'?' => (Qualifier::Neutral, &text[1..]),
        _ => (Qualifier::Pass, text),
    };
    let name_end = rest.find([':', '/']).unwrap_or(rest.len());
    let name = rest[..name_end].to_ascii_lowercase();
    let argument = &rest[name_end..];
    let mechanism = match name.as_str() {
        "all" => {
            no_argument(argument, "all")?;
            Mechanism::All
        }
        "include" => Mechanism::Include(required_domain(argument, "include")?),
        "exists" => Mechanism::Exists(required_domain(argument, "exists")?),
        "ptr" => Mechanism::Ptr(optional_domain(argument, "ptr")?),
        "a" | "mx" => {
            let (domain_part, cidr_part) = split_dual_cidr(argument);
            let domain = optional_domain(domain_part, &name)?;
            let (cidr4, cidr6) = parse_dual_cidr(cidr_part)?;
            if name == "a" { Mechanism::A { domain, cidr4, cidr6 } } else { Mechanism::Mx { domain, cidr4, cidr6 } }
        }
        "ip4" => Mechanism::Ip4(parse_ip_network(argument, false)?),
        "ip6" => Mechanism::Ip6(parse_ip_network(argument, true)?),
        "" => return Err("empty mechanism".to_string()),
        other => return Err(format!("unknown mechanism {other:?}")),
    };
    Ok(Term::Directive(Directive { qualifier, mechanism }))
}

fn no_argument(argument: &str, name: &str) -> Result<(), String> {
    if argument.is_empty() { Ok(()) } else { Err(format!("\"{name}\" takes no argument")) }
}

fn required_domain(argument: &str, name: &str) -> Result<MacroString, String> {
    match argument.strip_prefix(':') {
        Some(domain) => parse_domain_spec(domain),
        None => Err(format!("\"{name}\" needs a domain, as in {name}:example.com")),
    }
}

fn optional_domain(argument: &str, name: &str) -> Result<Option<MacroString>, String> {
    match argument.strip_prefix(':') {
        Some(domain) => parse_domain_spec(domain).map(Some),
        None if argument.is_empty() => Ok(None),
        None => Err(format!("unexpected {argument:?} after \"{name}\"")),
    }
}

/// Splits `domain/24//64` into the domain part and the CIDR part. The domain may itself contain
/// `/` only inside macros, so the CIDR part is the trailing run of `/digits`.
fn split_dual_cidr(argument: &str) -> (&str, &str) {
    let bytes = argument.as_bytes();
    let mut split = argument.len();
    let mut index = argument.len();
    loop {
        let digits_start = bytes[..index].iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |p| p + 1);
        if digits_start == index || digits_start == 0 || bytes[digits_start - 1] != b'/' {
            break;
        }
        let mut slash = digits_start - 1;
        if slash > 0 && bytes[slash - 1] == b'/' {
            slash -= 1;
        }
        split = slash;
        index = slash;
        if index == 0 {
            break;
        }
    }
    argument.split_at(split)
}

fn parse_dual_cidr(text: &str) -> Result<(u8, u8), String> {
    let invalid = || format!("{text:?} is not a valid prefix length (like /24 or //64 or /24//64)");
    let (v4, v6) = match text.find("//") {
        Some(index) => (&text[..index], Some(&text[index + 2..])),
        None => (text, None),
    };
    let cidr4 = match v4.strip_prefix('/') {
        Some(digits) => parse_prefix(digits, 32).ok_or_else(invalid)?,
        None if v4.is_empty() => 32,
        None => return Err(invalid()),
    };
    let cidr6 = match v6 {
        Some(digits) => parse_prefix(digits, 128).ok_or_else(invalid)?,
        None => 128,
    };
    Ok((cidr4, cidr6))
}

fn parse_prefix(digits: &str, max: u8) -> Option<u8> {
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse::<u8>().ok().filter(|prefix| *prefix <= max)
}

fn parse_ip_network(argument: &str, ipv6: bool) -> Result<IpNetwork, String> {
    let kind = if ipv6 { "ip6" } else { "ip4" };
    let Some(text) = argument.strip_prefix(':') else {
        return Err(format!(
            "\"{kind}\" needs an address, as in {kind}:{}",
            if ipv6 { "2001:db8::/32" } else { "192.0.2.0/24" }
        ));
    };
    let (address_text, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let max = if ipv6 { 128 } else { 32 };
    let address: IpAddr = address_text
        .parse()
        .map_err(|_| format!("{address_text:?} is not a valid {} address", if ipv6 { "IPv6" } else { "IPv4" }))?;
    if address.is_ipv6() != ipv6 {
        return Err(format!("{address_text:?} is not a valid {} address", if ipv6 { "IPv6" } else { "IPv4" }));
    }
    let prefix = match prefix {
        Some(digits) => {
            parse_prefix(digits, max).ok_or_else(|| format!("/{digits} is not a prefix length from 0 to {max}"))?
        }
        None => max,
    };
    IpNetwork::new(address, prefix).ok_or_else(|| format!("invalid network {text:?}"))
}

/// RFC 7208 section 7.1: a domain-spec is a macro-string ending in a top-level label or a macro.
pub fn parse_domain_spec(text: &str) -> Result<MacroString, String> {
    if text.is_empty() {
        return Err("empty domain".to_string());
    }
    let ends_with_macro = parse_macro_string(text, false)?;
    if !ends_with_macro {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        let toplevel = trimmed.rsplit('.').next().unwrap_or("");
        let valid_toplevel = !toplevel.is_empty()
            && trimmed.contains('.')
            && toplevel.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !toplevel.starts_with('-')
            && !toplevel.ends_with('-')
            && (toplevel.bytes().any(|b| b.is_ascii_alphabetic()) || toplevel.contains('-'));
        if !valid_toplevel {
            return Err(format!("{text:?} is not a valid domain: it must end in a top-level domain such as .com"));
        }
    }
    Ok(MacroString(text.to_string()))
}

/// Validates a macro-string; returns whether it ends with a macro expansion.
/// `explain` allows the `c`, `r` and `t` macros and spaces (RFC 7208 section 7.3).
pub fn parse_macro_string(text: &str, explain: bool) -> Result<bool, String> {
    let bytes = text.as_bytes();
    let mut index = 0;
    let mut ends_with_macro = false;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte != b'%' {
            if !((0x21..=0x7e).contains(&byte) || (explain && byte == b' ')) {
                return Err(format!("invalid character {:?}", byte as char));
            }
            index += 1;
            ends_with_macro = false;
            continue;
        }
        match bytes.get(index + 1) {
            Some(b'%' | b'_' | b'-') => {
                index += 2;
                ends_with_macro = true;
            }
            Some(b'{') => {
                let close = text[index..].find('}').ok_or_else(|| "unclosed macro \"%{\"".to_string())? + index;
                check_macro_body(&text[index + 2..close], explain)?;
                index = close + 1;
                ends_with_macro = true;
            }
            _ => return Err("a '%' must start a macro: %{...}, %%, %_ or %-".to_string()),
        }
    }
    Ok(ends_with_macro)
}

fn check_macro_body(body: &str, explain: bool) -> Result<(), String> {
    let mut chars = body.chars();
    let letter = chars.next().ok_or_else(|| "empty macro %{}".to_string())?;
    match letter.to_ascii_lowercase() {
        's' | 'l' | 'o' | 'd' | 'i' | 'p' | 'h' | 'v' => {}
        'c' | 'r' | 't' if explain => {}
        'c' | 'r' | 't' => return Err(format!("macro %{{{letter}}} is allowed only in explanations")),
        _ => return Err(format!("unknown macro letter {letter:?}")),
    }
    let rest = chars.as_str();
    let digits_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let mut tail = &rest[digits_end..];
    if tail.starts_with(['r', 'R']) {
        tail = &tail[1..];
    }
    if let Some(bad) = tail.chars().find(|c| !matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '=')) {
        return Err(format!("invalid character {bad:?} in macro"));
    }
    Ok(())
}

impl fmt::Display for Qualifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_records() {
        let record = parse_record("v=spf1 ip4:192.0.2.0/24 a mx/24 include:_spf.example.net ~all").expect("valid");
        assert_eq!(record.terms.len(), 5);
        assert_eq!(record.all_qualifier(), Some(Qualifier::SoftFail));
        let record = parse_record("V=SPF1 a:%{d}/24//64 -ALL redirect=_spf.example.com").expect("valid");
        assert!(matches!(
            record.terms[0],
            Term::Directive(Directive { mechanism: Mechanism::A { cidr4: 24, cidr6: 64, .. }, .. })
        ));
        assert!(record.redirect().is_some());
    }

    #[test]
    fn syntax_errors_say_where() {
        let cases = [
            ("v=spf1 ip4:192.0.2.300 -all", 8, "not a valid IPv4"),
            ("v=spf1 include -all", 8, "needs a domain"),
            ("v=spf1 a -all foo:bar", 15, "unknown mechanism"),
            ("v=spf1 a/33 -all", 8, "prefix length"),
            ("v=spf1 redirect=a.example redirect=b.example", 27, "only once"),
            ("v=spf1 include:%{z}.example.com", 8, "unknown macro letter"),
            ("v=spf1 exists:%{c}.example.com", 8, "only in explanations"),
            ("v=spf1 a:example -all", 8, "top-level domain"),
            ("v=spf1 ip4:1.2.3.4 ~all é", 25, "printable ASCII"),
        ];
        for (record, position, message) in cases {
            let error = parse_record(record).expect_err(record);
            assert_eq!(error.position, position, "{record}: {error}");
            assert!(error.message.contains(message), "{record}: {error}");
        }
    }

    #[test]
    fn long_and_hostile_input_does_not_panic() {
        let long = format!("v=spf1 {} -all", "include:a.example ".repeat(5_000));
        assert_eq!(parse_record(&long).expect("valid").terms.len(), 5_001);
        for junk in [
            "v=spf1 %",
            "v=spf1 a:%{",
            "v=spf1 ip6:",
            "v=spf1 a//",
            "v=spf1 a:x.y/",
            "v=spf1 =x",
            "v=spf1 +",
            "v=spf1 mx:/1",
        ] {
            assert!(parse_record(junk).is_err(), "{junk}");
        }
        assert!(!is_spf_record(b"v=spf10"));
        assert!(is_spf_record(b"v=spf1"));
    }
}
