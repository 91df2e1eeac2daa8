//! One mailbox as written in a From header or typed in as the address a customer sends with
//! (RFC 5322 section 3.4): `local@domain` or `Display Name <local@domain>`, comments allowed,
//! folding whitespace (spaces and tabs) anywhere between tokens.
//!
//! Ours, not `mail-parser`'s address parser, for a measured reason: the gateway decides from
//! this which domain a message is signed as, so it must refuse what it cannot read the way a
//! receiver does, and `mail-parser` 0.11 (built to read any mail, never to fail) reads
//! `"john doe"@example.com` as the address `@example.com`, takes `<a@x.example` without its
//! closing bracket, and joins `a@x.example (c) <b@y.example>` into the one address
//! `a@x.exampleb@y.example`. Each of those is refused here with its reason.

use crate::name::{DomainName, NameError};

/// A mailbox: the display name as written (if any) and the address's two halves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub display: Option<String>,
    /// The local part as written (quoted or not).
    pub local: String,
    pub domain: DomainName,
}

/// Why a text is not one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("it holds no address")]
    Empty,
    #[error("it holds {count} addresses")]
    Several { count: usize },
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Domain(NameError),
}

impl Mailbox {
    /// Parses exactly one mailbox (a header value unfolded or not).
    pub fn parse(value: &str) -> Result<Mailbox, MailboxError> {
        let invalid = MailboxError::Invalid;
        // Folding: a line break followed by whitespace is whitespace.
        let value = value.replace("\r\n", "");
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(invalid("it holds control characters"));
        }
        let clean = without_comments(&value).map_err(invalid)?;
        let mailboxes: Vec<String> =
            split_top_level(&clean, ',').into_iter().filter(|part| !part.trim().is_empty()).collect();
        if mailboxes.len() > 1 {
            return Err(MailboxError::Several { count: mailboxes.len() });
        }
        let Some(mailbox) = mailboxes.first() else { return Err(MailboxError::Empty) };
        if split_top_level(mailbox, ':').len() > 1 {
            return Err(invalid("a group is not a sender"));
        }
        let (display, address) = match top_level_angle(mailbox) {
            Some(open) => {
                let close = mailbox.rfind('>').filter(|close| *close > open);
                let Some(close) = close.filter(|close| mailbox[close + 1..].trim().is_empty()) else {
                    return Err(invalid("its angle brackets do not pair"));
                };
                if !is_phrase(&mailbox[..open]) {
                    return Err(invalid("its display name holds characters only a quoted string may hold: quote it"));
                }
                // The display name exactly as written: from the value with its comments, up
                // to the angle bracket.
                let raw_display = top_level_angle(&value).map_or("", |at| value[..at].trim());
                let display = (!raw_display.is_empty()).then(|| raw_display.to_string());
                (display, mailbox[open + 1..close].trim().to_string())
            }
            None if mailbox.contains('>') => return Err(invalid("its angle brackets do not pair")),
            None => (None, mailbox.trim().to_string()),
        };
        let Some((local, domain)) = address.rsplit_once('@') else { return Err(invalid("it has no @domain")) };
        let quoted = local.len() >= 2
            && local.starts_with('"')
            && local.ends_with('"')
            && !local[1..local.len() - 1].replace("\\\"", "").contains('"');
        if !(is_dot_atom(local) || quoted) {
            return Err(invalid("its local part is neither an atom nor a quoted string"));
        }
        let domain = DomainName::parse(domain).map_err(MailboxError::Domain)?;
        Ok(Mailbox { display, local: local.to_string(), domain })
    }

    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// The local part without its quotes (and their escapes).
    pub fn bare_local(&self) -> String {
        match self.local.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')) {
            Some(inner) => unescape(inner),
            None => self.local.clone(),
        }
    }
}

/// The variable-domain address for `mailbox`: `local=domain@variable`, quoted when the local
/// part needs it.
pub fn variable_address(mailbox: &Mailbox, variable_domain: &str) -> String {
    format!("{}@{variable_domain}", quote_local(&format!("{}={}", mailbox.bare_local(), mailbox.domain)))
}

/// An address as an SMTP command carries it (`local@domain`, the local part quoted when it is
/// not a dot-atom), from the unquoted form an SMTP parser gives; `None` when it is not one.
pub fn smtp_path(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let domain_ok = !domain.is_empty()
        && (domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            || (domain.starts_with('[') && domain.ends_with(']') && domain.chars().all(|c| c.is_ascii_graphic())));
    let local_ok = !local.is_empty() && local.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    (domain_ok && local_ok).then(|| format!("{}@{domain}", quote_local(local)))
}

/// A local part as written: as it is when it is a dot-atom, else as a quoted string.
fn quote_local(local: &str) -> String {
    if is_dot_atom(local) {
        local.to_string()
    } else {
        format!("\"{}\"", local.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut escaped = false;
    for c in quoted.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Whether `text` is a dot-atom (RFC 5322 section 3.2.3).
pub fn is_dot_atom(text: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c)))
}

/// Whether `text` (comments removed) is a display name: words that are atoms or quoted
/// strings (RFC 5322 section 3.2.5; the obsolete `.` in a phrase allowed).
fn is_phrase(text: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
    let (mut quoted, mut escaped) = (false, false);
    text.chars().all(|c| {
        if escaped {
            escaped = false;
            return true;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            c => return c.is_alphanumeric() || c == ' ' || c == '\t' || SPECIALS.contains(c),
        }
        true
    })
}

/// Where the first `<` outside quoted strings and comments is.
fn top_level_angle(text: &str) -> Option<usize> {
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            '<' if !quoted && depth == 0 => return Some(at),
            _ => {}
        }
    }
    None
}

/// Removes comments (RFC 5322 `CFWS`), keeping quoted strings whole.
fn without_comments(text: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in text.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            ')' if !quoted => return Err("an unbalanced parenthesis"),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if quoted || depth > 0 {
        return Err("an unclosed quote or comment");
    }
    Ok(out)
}

/// The top-level pieces of `text` split at `separator` (outside quotes and angle brackets).
fn split_top_level(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' && !angle {
            quoted = !quoted;
        } else if c == '<' && !quoted {
            angle = true;
        } else if c == '>' && !quoted {
            angle = false;
        } else if c == separator && !quoted && !angle {
            parts.push(String::new());
            continue;
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Mailbox, MailboxError> {
        Mailbox::parse(value)
    }

    #[test]
    fn mailboxes_parse_and_what_is_not_one_mailbox_is_refused() {
        let plain = parse("news@Shop.Example.com").expect("plain");
        assert_eq!((plain.display, plain.local.as_str(), plain.domain.as_str()), (None, "news", "shop.example.com"));
        let named = parse(r#""Shop, Inc." <news@shop.example.com> (our shop)"#).expect("named");
        assert_eq!(named.display.as_deref(), Some(r#""Shop, Inc.""#));
        let encoded = parse("=?utf-8?q?Caf=C3=A9?= <hi@cafe.example>").expect("encoded word");
        assert_eq!(encoded.display.as_deref(), Some("=?utf-8?q?Caf=C3=A9?="));
        // Valid forms: folded with a tab, a quoted display name holding `<` or `>`, a comment
        // holding `<`.
        let folded = parse("Shop\r\n\t<news@shop.example.com>").expect("folded with a tab");
        assert_eq!((folded.display.as_deref(), folded.domain.as_str()), (Some("Shop"), "shop.example.com"));
        let angled = parse(r#""a<b" <a@example.com>"#).expect("quoted <");
        assert_eq!((angled.display.as_deref(), angled.address().as_str()), (Some(r#""a<b""#), "a@example.com"));
        let closing = parse(r#""a>b" <a@example.com>"#).expect("quoted >");
        assert_eq!(closing.address(), "a@example.com");
        let commented = parse("Shop (x<y) <news@shop.example.com>").expect("comment with <");
        assert_eq!(
            (commented.display.as_deref(), commented.address().as_str()),
            (Some("Shop (x<y)"), "news@shop.example.com")
        );
        let quoted = parse(r#""john doe"@example.com"#).expect("quoted local part");
        assert_eq!((quoted.local.as_str(), quoted.bare_local().as_str()), (r#""john doe""#, "john doe"));

        assert_eq!(parse("a@x.example, b@y.example"), Err(MailboxError::Several { count: 2 }));
        assert_eq!(parse(""), Err(MailboxError::Empty));
        let refused = [
            "Team: a@x.example;",
            "no-at-sign",
            "a b@x.example",
            "<a@x.example",
            "a@x.example>",
            "a@x.example (c) <b@y.example>",
            "Joe <a@x.example> b@y.example",
            "a@x.example\rBcc: c@d.example",
        ];
        for value in refused {
            assert!(matches!(parse(value), Err(MailboxError::Invalid(_))), "{value}: {:?}", parse(value));
        }
        assert!(matches!(parse("a@[192.0.2.1]"), Err(MailboxError::Domain(NameError::IpLiteral { .. }))));
    }

    #[test]
    fn the_variable_address_keeps_the_original_readable() {
        let mailbox = parse("user@yourcompany.com").expect("mailbox");
        assert_eq!(variable_address(&mailbox, "send.esp.example"), "user=yourcompany.com@send.esp.example");
        let quoted = parse(r#""john doe"@example.com"#).expect("quoted");
        assert_eq!(variable_address(&quoted, "v.example"), r#""john doe=example.com"@v.example"#);
    }

    #[test]
    fn smtp_paths_quote_what_needs_it_and_refuse_what_is_not_an_address() {
        assert_eq!(smtp_path("a@x.example").as_deref(), Some("a@x.example"));
        assert_eq!(smtp_path("john doe@x.example").as_deref(), Some(r#""john doe"@x.example"#));
        assert_eq!(smtp_path(r#"a"b@x.example"#).as_deref(), Some(r#""a\"b"@x.example"#));
        assert_eq!(smtp_path("a@[192.0.2.1]").as_deref(), Some("a@[192.0.2.1]"));
        for bad in ["a@", "@x.example", "ax.example", "a@x example", "a\r@x.example", "a@x\u{e9}.example"] {
            assert_eq!(smtp_path(bad), None, "{bad}");
        }
    }
}
