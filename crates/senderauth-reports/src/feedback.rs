//! The other reports that arrive at a DMARC report address: failure reports (RFC 9991 / RFC
//! 6591: an ARF `message/feedback-report` part and the failed message or its headers, or the
//! plain-text form some MTAs send) and SMTP TLS reports (RFC 8460: JSON, gzip-compressed or
//! not, attached to a message).
//!
//! A failure report carries a copy of someone's message: only its header fields are read, and
//! of those only the ones that say how it was authenticated and where it came from; the local
//! part of every address in them is replaced by `redacted` (the domain stays: it is what the
//! report is about). Subjects and bodies are never kept.

use std::io::Read;
use std::net::IpAddr;

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// The largest TLS report taken, uncompressed.
const MAX_TLS_REPORT: u64 = 16 * 1024 * 1024;
/// The most header fields of the failed message kept.
const MAX_FIELDS: usize = 64;
/// The longest header field value kept, in characters.
const MAX_VALUE: usize = 2_000;

/// Header fields of the failed message that are kept (redacted).
const KEPT_FIELDS: [&str; 13] = [
    "from",
    "sender",
    "return-path",
    "to",
    "date",
    "message-id",
    "dkim-signature",
    "authentication-results",
    "arc-authentication-results",
    "received-spf",
    "received",
    "list-id",
    "feedback-id",
];

/// A failure report as kept: what failed, for which domain, from where, and the failed
/// message's authentication-related header fields, redacted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    /// `auth-failure` (ARF's Feedback-Type), or `plain-text` for a report without an ARF part.
    pub feedback_type: String,
    pub reported_domain: Option<String>,
    pub source_ip: Option<IpAddr>,
    /// `dmarc`, `dkim`, `spf` (ARF's Auth-Failure).
    pub auth_failure: Option<String>,
    pub arrival_date: Option<String>,
    pub delivery_result: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    pub authentication_results: Option<String>,
    /// Original-Mail-From, redacted.
    pub original_mail_from: Option<String>,
    /// The failed message's kept header fields, redacted: (name, value).
    pub headers: Vec<(String, String)>,
    /// The report message's From address, redacted.
    pub reporter: Option<String>,
}

/// An SMTP TLS report's identity and totals; the JSON is kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsReport {
    pub organization: String,
    pub report_id: String,
    pub start: String,
    pub end: String,
    pub policy_domains: Vec<String>,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    /// The report as received, gzip-compressed (the bytes themselves when it came so).
    #[serde(skip)]
    pub json_gzip: Vec<u8>,
}

/// What a message that holds no aggregate report turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherReport {
    Failure(Box<FailureReport>),
    Tls(TlsReport),
}

/// A failure report or a TLS report in `message` (a mail message, or a TLS report's bare
/// JSON), if it is one.
pub fn recognize(message: &[u8]) -> Option<OtherReport> {
    if let Some(report) = tls_report(message) {
        return Some(OtherReport::Tls(report));
    }
    let parsed = MessageParser::default().parse(message)?;
    let mut failure: Option<FailureReport> = None;
    let mut plain: Option<String> = None;
    let mut tls: Option<TlsReport> = None;
    for part in parsed.parts.iter().filter(|part| !part.is_multipart()) {
        let kind = part
            .content_type()
            .map(|kind| format!("{}/{}", kind.ctype(), kind.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        match kind.as_str() {
            "message/feedback-report" => {
                let fields = text_fields(&String::from_utf8_lossy(part.contents()));
                failure.get_or_insert_with(FailureReport::default).read_arf(&fields);
            }
            "message/rfc822" | "text/rfc822-headers" | "message/rfc822-headers" => {
                let original = part.contents();
                let head_end = memchr::memmem::find(original, b"\r\n\r\n")
                    .or_else(|| memchr::memmem::find(original, b"\n\n"))
                    .unwrap_or(original.len());
                let headers = kept_headers(&String::from_utf8_lossy(&original[..head_end]));
                failure.get_or_insert_with(FailureReport::default).headers = headers;
            }
            kind if kind.starts_with("application/tlsrpt") => tls = tls.or_else(|| tls_report(part.contents())),
            "text/plain" if plain.is_none() => plain = Some(String::from_utf8_lossy(part.contents()).into_owned()),
            _ => {}
        }
    }
    if let Some(tls) = tls {
        return Some(OtherReport::Tls(tls));
    }
    let reporter = parsed.from().and_then(|from| from.first()).and_then(|from| from.address()).map(redact_text);
    if let Some(mut failure) = failure {
        failure.reporter = reporter;
        if failure.feedback_type.is_empty() {
            failure.feedback_type = "auth-failure".to_string();
        }
        return Some(OtherReport::Failure(Box::new(failure)));
    }
    // A plain-text failure report (Exim's): "Sender Domain: ...", then the failed headers.
    let text = plain?;
    let fields: Vec<(String, String)> = text
        .lines()
        .take(200)
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let value = |name: &str| fields.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let domain = value("Sender Domain")?;
    let headers = text
        .split_once("copy of the headers")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, headers)| kept_headers(headers))
        .unwrap_or_default();
    Some(OtherReport::Failure(Box::new(FailureReport {
        feedback_type: "plain-text".to_string(),
        reported_domain: Some(domain.to_ascii_lowercase()),
        source_ip: value("Sender IP Address").and_then(|ip| ip.parse().ok()),
        auth_failure: Some("dmarc".to_string()),
        arrival_date: value("Received date"),
        headers,
        reporter,
        ..FailureReport::default()
    })))
}

impl FailureReport {
    fn read_arf(&mut self, fields: &[(String, String)]) {
        let value = |name: &str| {
            fields.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
        };
        self.feedback_type = value("Feedback-Type").unwrap_or_default().to_ascii_lowercase();
        self.reported_domain = value("Reported-Domain").map(|domain| domain.trim_end_matches('.').to_ascii_lowercase());
        self.source_ip = value("Source-IP").and_then(|ip| ip.parse().ok());
        self.auth_failure = value("Auth-Failure").map(|failure| failure.to_ascii_lowercase());
        self.arrival_date = value("Arrival-Date").or_else(|| value("Received-Date"));
        self.delivery_result = value("Delivery-Result");
        self.dkim_domain = value("DKIM-Domain");
        self.dkim_selector = value("DKIM-Selector");
        self.authentication_results = value("Authentication-Results").map(|text| redact_text(&text));
        self.original_mail_from =
            value("Original-Mail-From").filter(|from| !from.is_empty()).map(|from| redact_text(&from));
    }
}

/// `Name: value` lines (folded lines joined), at most `MAX_FIELDS`.
fn text_fields(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut()
                && value.len() < MAX_VALUE
            {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if fields.len() >= MAX_FIELDS * 4 {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && name.len() < 80
        {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The kept fields of a header block, redacted, values cut at `MAX_VALUE` characters.
fn kept_headers(head: &str) -> Vec<(String, String)> {
    text_fields(head)
        .into_iter()
        .filter(|(name, _)| KEPT_FIELDS.iter().any(|kept| kept.eq_ignore_ascii_case(name)))
        .take(MAX_FIELDS)
        .map(|(name, value)| {
            let value: String = redact_text(&value).chars().take(MAX_VALUE).collect();
            (name, value)
        })
        .collect()
}

/// `text` with the local part of every address in it replaced by `redacted` (generously: what
/// may be a local part goes, a `tag=` before an address with it).
pub fn redact_text(text: &str) -> String {
    let is_local = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.\"".contains(c) || !c.is_ascii();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        // `tag=@domain` (an identity with no local part, `header.i=@example.com`) has none to hide.
        let start = if before.ends_with('=') {
            at
        } else {
            before.char_indices().rev().take_while(|(_, c)| is_local(*c)).last().map_or(at, |(index, _)| index)
        };
        let domain_follows = rest[at + 1..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
        out.push_str(&before[..start]);
        if start < at && domain_follows {
            out.push_str("redacted@");
        } else {
            out.push_str(&before[start..]);
            out.push('@');
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

/// A TLS report from JSON bytes, gzip-compressed or not.
fn tls_report(bytes: &[u8]) -> Option<TlsReport> {
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let json = if gzipped {
        // Only JSON is read on: an aggregate report's XML is not unpacked here.
        let mut decoder = flate2::read::GzDecoder::new(bytes).take(MAX_TLS_REPORT + 1);
        let mut json = vec![0; 64];
        let start = read_up_to(&mut decoder, &mut json).ok()?;
        json.truncate(start);
        if json.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        decoder.read_to_end(&mut json).ok()?;
        if json.len() as u64 > MAX_TLS_REPORT {
            return None;
        }
        json
    } else {
        let trimmed = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        if trimmed.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        trimmed.to_vec()
    };
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let json_gzip = if gzipped { bytes.to_vec() } else { crate::gzip(&json) };
    let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
    let policies = value.get("policies")?.as_array()?;
    let total = |field: &str| {
        policies
            .iter()
            .filter_map(|policy| policy.get("summary")?.get(field)?.as_i64())
            .fold(0_i64, i64::saturating_add)
    };
    Some(TlsReport {
        organization: text(value.get("organization-name")?)?,
        report_id: text(value.get("report-id")?)?,
        start: value.get("date-range").and_then(|range| text(range.get("start-datetime")?)).unwrap_or_default(),
        end: value.get("date-range").and_then(|range| text(range.get("end-datetime")?)).unwrap_or_default(),
        policy_domains: policies
            .iter()
            .filter_map(|policy| text(policy.get("policy")?.get("policy-domain")?))
            .map(|domain| domain.to_ascii_lowercase())
            .collect(),
        successful_sessions: total("total-successful-session-count"),
        failed_sessions: total("total-failure-session-count"),
        json_gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_local_part() {
        assert_eq!(redact_text("Sender <sender@example.com>"), "Sender <redacted@example.com>");
        // `=` may be in a local part (SRS addresses): a `tag=` before an address goes with it.
        assert_eq!(
            redact_text("for <user@example.com>; id 1; from=SRS0=x=y@x.example"),
            "for <redacted@example.com>; id 1; redacted@x.example"
        );
        assert_eq!(redact_text("header.i=@google.com"), "header.i=@google.com");
        assert_eq!(redact_text("no address"), "no address");
    }
}
