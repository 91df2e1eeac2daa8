//! DMARC aggregate reports (RFC 9990, namespace `urn:ietf:params:xml:ns:dmarc-2.0`; and the
//! RFC 7489 appendix C format, without a namespace or with `http://dmarc.org/dmarc-xml/0.1`),
//! read as a stream: each record is handed on as soon as it is complete, so memory holds one
//! record, not the report.
//!
//! Hostile input (RFC 9990 section 8): a document type declaration is refused (so no entity is
//! ever defined, let alone expanded: no billion laughs, no external entity), only the five
//! predefined entities and character references are read, elements nest at most
//! [`Limits::max_depth`] deep, a text holds at most [`Limits::max_text`] bytes, a report at most
//! [`Limits::max_records`] records. Where real receivers deviate from the schema in ways that
//! do not change the meaning (upper-case values, empty reasons, text that is not UTF-8, an old
//! draft's layout, elements this version does not know), the report is read and each deviation
//! is written down on it.

use std::io::BufRead;
use std::net::IpAddr;

use quick_xml::events::{BytesRef, Event};
use quick_xml::reader::Reader;
use serde::Serialize;

/// The namespace of RFC 9990 reports.
pub const DMARC_2_NAMESPACE: &str = "urn:ietf:params:xml:ns:dmarc-2.0";

/// How much of a report is read before it is refused.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_text: usize,
    pub max_records: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_depth: 16, max_text: 8 * 1024, max_records: 5_000_000 }
    }
}

/// Which format a report is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// RFC 9990 (`urn:ietf:params:xml:ns:dmarc-2.0`).
    Dmarc2,
    /// RFC 7489 appendix C (no namespace, or `http://dmarc.org/dmarc-xml/0.1`) and its drafts.
    Rfc7489,
}

/// A report's metadata and the policy it was evaluated against: everything but its records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReportHeader {
    pub format: Option<ReportFormat>,
    pub version: Option<String>,
    pub org_name: String,
    pub email: Option<String>,
    pub extra_contact_info: Option<String>,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
    pub errors: Vec<String>,
    pub generator: Option<String>,
    pub policy: PolicyPublished,
    /// Where the report departs from the schema, each in a sentence.
    pub deviations: Vec<String>,
}

/// The DMARC policy the receiver found, as it reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyPublished {
    pub domain: String,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    pub p: Option<String>,
    pub sp: Option<String>,
    pub np: Option<String>,
    pub pct: Option<u32>,
    pub fo: Option<String>,
    pub testing: Option<String>,
    pub discovery_method: Option<String>,
}

/// One row of a report: messages from one source with one outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportRecord {
    pub source_ip: IpAddr,
    pub count: u64,
    pub disposition: String,
    /// The DMARC-aligned DKIM and SPF results (`pass` or `fail`).
    pub dkim: String,
    pub spf: String,
    pub reasons: Vec<Reason>,
    pub header_from: String,
    pub envelope_from: Option<String>,
    pub envelope_to: Option<String>,
    pub dkim_results: Vec<DkimResult>,
    pub spf_results: Vec<SpfResult>,
}

/// Why the receiver applied another disposition than the policy's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub kind: String,
    pub comment: Option<String>,
}

/// A DKIM signature's result, unaligned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DkimResult {
    pub domain: String,
    pub selector: Option<String>,
    pub result: String,
    pub human_result: Option<String>,
}

/// An SPF result, unaligned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpfResult {
    pub domain: String,
    pub scope: Option<String>,
    pub result: String,
    pub human_result: Option<String>,
}

/// A whole report: the header and every record (for small reports and tests; large ones are
/// read with [`parse_stream`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AggregateReport {
    #[serde(flatten)]
    pub header: ReportHeader,
    pub records: Vec<ReportRecord>,
}

/// Why a report could not be read. The message says what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a DMARC aggregate report: the document is empty")]
    Empty,
    #[error("not a DMARC aggregate report: its root element is <{0}>, not <feedback>")]
    NotAReport(String),
    #[error(
        "the report declares a document type (<!DOCTYPE>): refused, as entity definitions could expand without bound"
    )]
    DocumentType,
    #[error("the report uses the entity &{0}; which XML does not predefine: refused")]
    UnknownEntity(String),
    #[error("the report nests elements more than {0} deep: refused")]
    TooDeep(usize),
    #[error("a text in the report is longer than {0} bytes: refused")]
    TextTooLong(usize),
    #[error("the report has more than {0} records: refused")]
    TooManyRecords(u64),
    #[error("the report is not well-formed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
    #[error("the report lacks {0}")]
    Missing(&'static str),
    #[error("record {number} of the report is unreadable: {reason}")]
    BadRecord { number: u64, reason: String },
    /// What the record handler returned (a store that failed, say).
    #[error("{0}")]
    Handler(String),
}

/// Reads a whole report from `bytes`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<AggregateReport, ReportError> {
    let mut records = Vec::new();
    let header = parse_stream(bytes, limits, |_, record| {
        records.push(record);
        Ok(())
    })?;
    Ok(AggregateReport { header, records })
}

/// The record being read, field by field.
#[derive(Default)]
struct PartialRecord {
    source_ip: Option<String>,
    count: Option<String>,
    disposition: Option<String>,
    dkim: Option<String>,
    spf: Option<String>,
    reasons: Vec<Reason>,
    header_from: Option<String>,
    envelope_from: Option<String>,
    envelope_to: Option<String>,
    dkim_results: Vec<DkimResult>,
    spf_results: Vec<SpfResult>,
}

/// Reads a report from `input`, handing each record to `on_record` (with the header as read
/// so far: the metadata and policy come before the records in every report seen) as soon as it
/// is complete. Returns the header.
pub fn parse_stream(
    input: impl BufRead,
    limits: Limits,
    mut on_record: impl FnMut(&ReportHeader, ReportRecord) -> Result<(), String>,
) -> Result<ReportHeader, ReportError> {
    let mut reader = Reader::from_reader(Guard::new(input, limits.max_text * 8));
    reader.config_mut().trim_text(true);
    // End tags are matched here, so that a stray start tag (`<email><a@b.example></email>`,
    // seen from a real receiver) is closed as the element around it closes, as lxml's
    // recovery (and so parsedmarc) does.
    reader.config_mut().check_end_names = false;
    let mut buffer = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut header = ReportHeader::default();
    let mut record: Option<PartialRecord> = None;
    let mut records: u64 = 0;
    let mut seen_root = false;
    // Elements around <feedback> (one receiver wraps it in an <xs:schema>): left out of `path`.
    let mut wrappers: Vec<String> = Vec::new();
    let mut outermost: Option<String> = None;
    let mut unknown: Vec<String> = Vec::new();
    loop {
        let position = reader.buffer_position();
        let event = match reader.read_event_into(&mut buffer) {
            Ok(event) => event,
            // The guard stopped a text or tag without end.
            Err(_) if reader.get_ref().over => return Err(ReportError::TextTooLong(limits.max_text * 8)),
            Err(error) => return Err(ReportError::Xml { position, reason: error.to_string() }),
        };
        match event {
            Event::Eof if reader.get_ref().over => return Err(ReportError::TextTooLong(limits.max_text * 8)),
            Event::Eof => break,
            Event::DocType(_) => return Err(ReportError::DocumentType),
            Event::Start(start) => {
                let name = local_name(start.name().as_ref());
                if path.is_empty() {
                    if name != "feedback" {
                        if seen_root || wrappers.len() >= 2 {
                            return Err(ReportError::NotAReport(wrappers.first().cloned().unwrap_or(name)));
                        }
                        outermost.get_or_insert_with(|| name.clone());
                        wrappers.push(name);
                        continue;
                    }
                    if let Some(wrapper) = wrappers.first() {
                        header.deviations.push(format!("the report is wrapped in <{wrapper}>"));
                    }
                    seen_root = true;
                    header.format = Some(format_of(&start, &mut header.deviations));
                }
                if path.len() >= limits.max_depth {
                    return Err(ReportError::TooDeep(limits.max_depth));
                }
                path.push(name);
                text.clear();
                opened(&path, &mut record);
            }
            Event::Empty(start) => {
                // <sp/>: an element with no text, read as empty.
                let name = local_name(start.name().as_ref());
                if path.is_empty() {
                    if seen_root || wrappers.is_empty() {
                        return Err(ReportError::NotAReport(name));
                    }
                    continue;
                }
                path.push(name);
                text.clear();
                opened(&path, &mut record);
                closed(&path, "", &mut header, &mut record, &mut unknown)?;
                path.pop();
            }
            Event::Text(content) => {
                let piece = match content.decode() {
                    Ok(piece) => piece.into_owned(),
                    Err(_) => {
                        // The bytes that are not UTF-8 are left out, as parsedmarc leaves them.
                        note(&mut header.deviations, "bytes that are not UTF-8 were left out of a text");
                        String::from_utf8_lossy(&content).replace('\u{fffd}', "")
                    }
                };
                push_text(&mut text, &piece, limits)?;
            }
            Event::CData(content) => {
                push_text(&mut text, &String::from_utf8_lossy(&content), limits)?;
            }
            Event::GeneralRef(reference) => push_text(&mut text, &entity(&reference)?, limits)?,
            Event::End(end) => {
                let name = local_name(end.name().as_ref());
                if path.is_empty() {
                    // A wrapper's end, or an end tag with no start.
                    if wrappers.pop().is_none() {
                        return Err(ReportError::Xml { position, reason: format!("</{name}> closes nothing") });
                    }
                    continue;
                }
                if path.last() != Some(&name) {
                    if !path.contains(&name) {
                        return Err(ReportError::Xml {
                            position,
                            reason: format!("</{name}> closes no open element (<{}> is open)", path.join("><")),
                        });
                    }
                    // Elements left open inside it are closed with it, their text dropped.
                    while path.last() != Some(&name) {
                        note(&mut header.deviations, "an element left open was closed with the element around it");
                        path.pop();
                    }
                }
                let value = std::mem::take(&mut text);
                let finished_record = closed(&path, value.trim(), &mut header, &mut record, &mut unknown)?;
                if let Some(partial) = finished_record {
                    records += 1;
                    if records > limits.max_records {
                        return Err(ReportError::TooManyRecords(limits.max_records));
                    }
                    let complete = finish_record(partial, records, &mut header.deviations)?;
                    on_record(&header, complete).map_err(ReportError::Handler)?;
                }
                path.pop();
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
        buffer.clear();
    }
    if !seen_root {
        return Err(outermost.map_or(ReportError::Empty, ReportError::NotAReport));
    }
    if header.report_id.is_empty() {
        return Err(ReportError::Missing("report_metadata/report_id"));
    }
    if header.policy.domain.is_empty() {
        return Err(ReportError::Missing("policy_published/domain"));
    }
    if header.org_name.is_empty() {
        // Named by its address's domain instead, as parsedmarc does.
        if let Some(domain) = header.email.as_deref().and_then(|email| email.rsplit_once('@')).map(|(_, domain)| domain)
        {
            header.org_name = domain.trim_end_matches('>').to_ascii_lowercase();
        }
        note(&mut header.deviations, "org_name is empty: the reporter is named by its email address's domain");
    }
    for name in unknown {
        header.deviations.push(format!("an element this version does not read was passed over: {name}"));
    }
    Ok(header)
}

/// A reader that refuses a document with a run of more than `limit` bytes without `<` or `>`:
/// the XML reader holds a whole text or tag in memory before it hands it on, so this is what
/// bounds its memory (a text inside an element is refused sooner, at [`Limits::max_text`]).
struct Guard<R> {
    inner: R,
    run: usize,
    limit: usize,
    over: bool,
    /// Bytes up to markup already seen ahead: until they are consumed, no need to look again
    /// (the XML reader asks for the buffer at every step).
    ahead: usize,
}

impl<R> Guard<R> {
    fn new(inner: R, limit: usize) -> Guard<R> {
        Guard { inner, run: 0, limit, over: false, ahead: 0 }
    }
}

impl<R: BufRead> std::io::Read for Guard<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(buffer.len());
        buffer[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<R: BufRead> BufRead for Guard<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        // Judged on what is offered, before the XML reader takes it: a reader over bytes in
        // memory offers them all at once.
        if !self.over && self.ahead == 0 {
            let allowed = self.limit.saturating_sub(self.run);
            let offered = self.inner.fill_buf()?;
            if offered.len() > allowed {
                match memchr::memchr2(b'<', b'>', &offered[..=allowed]) {
                    Some(at) => self.ahead = at + 1,
                    None => self.over = true,
                }
            }
        }
        if self.over {
            return Err(std::io::Error::other(format!("more than {} bytes without markup: refused", self.limit)));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.ahead = self.ahead.saturating_sub(amount);
        if let Ok(buffer) = self.inner.fill_buf() {
            let consumed = &buffer[..amount.min(buffer.len())];
            match memchr::memrchr2(b'<', b'>', consumed) {
                Some(at) => self.run = consumed.len() - at - 1,
                None => self.run += consumed.len(),
            }
            self.over = self.run > self.limit;
        }
        self.inner.consume(amount);
    }
}

/// The element's name without a namespace prefix.
fn local_name(name: &[u8]) -> String {
    let local = memchr::memrchr(b':', name).map_or(name, |colon| &name[colon + 1..]);
    String::from_utf8_lossy(local).into_owned()
}

/// The report's format, from the root's namespace.
fn format_of(root: &quick_xml::events::BytesStart<'_>, deviations: &mut Vec<String>) -> ReportFormat {
    let namespace = root.attributes().flatten().find(|attribute| {
        let key = attribute.key.as_ref();
        key == b"xmlns" || key.starts_with(b"xmlns:")
    });
    match namespace.map(|attribute| String::from_utf8_lossy(&attribute.value).into_owned()) {
        Some(namespace) if namespace == DMARC_2_NAMESPACE => ReportFormat::Dmarc2,
        Some(namespace) if namespace == "http://dmarc.org/dmarc-xml/0.1" || namespace.is_empty() => {
            ReportFormat::Rfc7489
        }
        Some(namespace) => {
            deviations.push(format!("an unknown namespace {namespace:?}, read as RFC 7489"));
            ReportFormat::Rfc7489
        }
        None => ReportFormat::Rfc7489,
    }
}

/// One of XML's five predefined entities or a character reference; anything else is refused.
fn entity(reference: &BytesRef<'_>) -> Result<String, ReportError> {
    let name = String::from_utf8_lossy(reference).into_owned();
    if let Ok(Some(character)) = reference.resolve_char_ref() {
        return Ok(character.to_string());
    }
    match name.as_str() {
        "lt" => Ok("<".to_string()),
        "gt" => Ok(">".to_string()),
        "amp" => Ok("&".to_string()),
        "apos" => Ok("'".to_string()),
        "quot" => Ok("\"".to_string()),
        _ => Err(ReportError::UnknownEntity(name)),
    }
}

fn push_text(text: &mut String, piece: &str, limits: Limits) -> Result<(), ReportError> {
    if text.len() + piece.len() > limits.max_text {
        return Err(ReportError::TextTooLong(limits.max_text));
    }
    text.push_str(piece);
    Ok(())
}

/// Adds a deviation once.
fn note(deviations: &mut Vec<String>, text: &str) {
    if !deviations.iter().any(|known| known == text) {
        deviations.push(text.to_string());
    }
}

/// An element opened: a record, a reason or an authentication result starts.
/// The path's element names, on the stack (a path is matched at every tag; a heap list each
/// time was a tenth of the parse). Past `NAMES` deep (inside extensions only) the rest is cut:
/// no field lies that deep.
fn names(path: &[String]) -> ([&str; NAMES], usize) {
    let mut names = [""; NAMES];
    for (slot, name) in names.iter_mut().zip(path) {
        *slot = name.as_str();
    }
    (names, path.len().min(NAMES))
}

const NAMES: usize = 8;

fn opened(path: &[String], record: &mut Option<PartialRecord>) {
    let (names, depth) = names(path);
    match &names[..depth] {
        ["feedback", "record"] => *record = Some(PartialRecord::default()),
        ["feedback", "record", "row", "policy_evaluated", "reason"] => {
            if let Some(record) = record {
                record.reasons.push(Reason::default());
            }
        }
        ["feedback", "record", "auth_results", "dkim"] => {
            if let Some(record) = record {
                record.dkim_results.push(DkimResult::default());
            }
        }
        ["feedback", "record", "auth_results", "spf"] => {
            if let Some(record) = record {
                record.spf_results.push(SpfResult::default());
            }
        }
        _ => {}
    }
}

fn optional(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// An element closed with `value` as its text: the field it is set. Returns the record when the
/// element closed is one.
fn closed(
    path: &[String],
    value: &str,
    header: &mut ReportHeader,
    record: &mut Option<PartialRecord>,
    unknown: &mut Vec<String>,
) -> Result<Option<PartialRecord>, ReportError> {
    let (names, depth) = names(path);
    let policy = &mut header.policy;
    match &names[..depth] {
        ["feedback"] => {}
        ["feedback", "version"] => header.version = optional(value),
        ["feedback", "report_metadata"] | ["feedback", "report_metadata", "date_range"] => {}
        ["feedback", "report_metadata", "org_name"] => header.org_name = value.to_string(),
        ["feedback", "report_metadata", "email"] => header.email = optional(value),
        ["feedback", "report_metadata", "extra_contact_info"] => header.extra_contact_info = optional(value),
        ["feedback", "report_metadata", "report_id"] => header.report_id = value.to_string(),
        ["feedback", "report_metadata", "error"] => header.errors.push(value.to_string()),
        ["feedback", "report_metadata", "generator"] => header.generator = optional(value),
        ["feedback", "report_metadata", "date_range", "begin"] => header.begin = timestamp(value, "begin")?,
        ["feedback", "report_metadata", "date_range", "end"] => header.end = timestamp(value, "end")?,
        ["feedback", "policy_published"] => {}
        ["feedback", "policy_published", "domain"] => policy.domain = value.trim_end_matches('.').to_ascii_lowercase(),
        ["feedback", "policy_published", "adkim"] => policy.adkim = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "aspf"] => policy.aspf = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "p"] => policy.p = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "sp"] => policy.sp = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "np"] => policy.np = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "pct"] => policy.pct = value.parse().ok(),
        ["feedback", "policy_published", "fo"] => policy.fo = optional(value),
        ["feedback", "policy_published", "testing"] => policy.testing = lower(value, &mut header.deviations),
        ["feedback", "policy_published", "discovery_method"] => {
            policy.discovery_method = lower(value, &mut header.deviations)
        }
        ["feedback", "record"] => return Ok(record.take()),
        ["feedback", "extension", ..] | ["feedback", "record", "extensions", ..] => {}
        ["feedback", "record", rest @ ..] => {
            let Some(current) = record else { return Ok(None) };
            let deviations = &mut header.deviations;
            match rest {
                ["row"] | ["row", "policy_evaluated"] | ["identifiers"] | ["auth_results"] => {}
                ["row", "source_ip"] => current.source_ip = Some(value.to_string()),
                ["row", "count"] => current.count = Some(value.to_string()),
                ["row", "policy_evaluated", "disposition"] => current.disposition = lower(value, deviations),
                ["row", "policy_evaluated", "dkim"] => current.dkim = lower(value, deviations),
                ["row", "policy_evaluated", "spf"] => current.spf = lower(value, deviations),
                ["row", "policy_evaluated", "reason"] => {
                    if current.reasons.last().is_some_and(|reason| reason.kind.is_empty()) {
                        note(deviations, "a reason without a type was left out");
                        current.reasons.pop();
                    }
                }
                ["row", "policy_evaluated", "reason", "type"] => {
                    if let Some(reason) = current.reasons.last_mut() {
                        reason.kind = lower(value, deviations).unwrap_or_default();
                    }
                }
                ["row", "policy_evaluated", "reason", "comment"] => {
                    if let Some(reason) = current.reasons.last_mut() {
                        reason.comment = optional(value);
                    }
                }
                ["identifiers", "header_from"] => current.header_from = Some(value.to_ascii_lowercase()),
                ["identifiers", "envelope_from"] => current.envelope_from = optional(&value.to_ascii_lowercase()),
                ["identifiers", "envelope_to"] => current.envelope_to = optional(&value.to_ascii_lowercase()),
                ["auth_results", "dkim"] | ["auth_results", "spf"] => {}
                ["auth_results", "dkim", field] => {
                    if let Some(result) = current.dkim_results.last_mut() {
                        match *field {
                            "domain" => result.domain = value.to_ascii_lowercase(),
                            "selector" => result.selector = optional(value),
                            "result" => result.result = lower(value, deviations).unwrap_or_default(),
                            "human_result" => result.human_result = optional(value),
                            other => remember(unknown, &format!("auth_results/dkim/{other}")),
                        }
                    }
                }
                ["auth_results", "spf", field] => {
                    if let Some(result) = current.spf_results.last_mut() {
                        match *field {
                            "domain" => result.domain = value.to_ascii_lowercase(),
                            "scope" => result.scope = lower(value, deviations),
                            "result" => result.result = lower(value, deviations).unwrap_or_default(),
                            "human_result" => result.human_result = optional(value),
                            other => remember(unknown, &format!("auth_results/spf/{other}")),
                        }
                    }
                }
                other => remember(unknown, &format!("record/{}", other.join("/"))),
            }
        }
        other => remember(unknown, &other.join("/")),
    }
    Ok(None)
}

fn remember(unknown: &mut Vec<String>, name: &str) {
    if unknown.len() < 20 && !unknown.iter().any(|known| known == name) {
        unknown.push(name.to_string());
    }
}

/// An enumerated value in lower case (real receivers send `Pass`, `None`), the deviation noted.
fn lower(value: &str, deviations: &mut Vec<String>) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let lowered = value.to_ascii_lowercase();
    if lowered != value {
        note(deviations, "values in upper case were read in lower case");
    }
    Some(lowered)
}

fn timestamp(value: &str, what: &'static str) -> Result<i64, ReportError> {
    value.parse::<i64>().map_err(|_| ReportError::BadRecord {
        number: 0,
        reason: format!("date_range/{what} is {value:?}, not a Unix time"),
    })
}

fn finish_record(
    partial: PartialRecord,
    number: u64,
    deviations: &mut Vec<String>,
) -> Result<ReportRecord, ReportError> {
    let bad = |reason: String| ReportError::BadRecord { number, reason };
    let ip_text = partial.source_ip.ok_or_else(|| bad("it has no source_ip".to_string()))?;
    let source_ip =
        ip_text.parse::<IpAddr>().map_err(|_| bad(format!("source_ip {ip_text:?} is not an IP address")))?;
    let count_text = partial.count.ok_or_else(|| bad("it has no count".to_string()))?;
    let count = count_text.parse::<u64>().map_err(|_| bad(format!("count {count_text:?} is not a number")))?;
    // Kept empty when the receiver sent none (as parsedmarc does): whoever reads the record
    // falls back to the policy domain.
    let header_from = partial.header_from.unwrap_or_default();
    if header_from.is_empty() {
        note(deviations, "a record without a header_from");
    }
    Ok(ReportRecord {
        source_ip,
        count,
        disposition: partial.disposition.unwrap_or_default(),
        dkim: partial.dkim.unwrap_or_default(),
        spf: partial.spf.unwrap_or_default(),
        reasons: partial.reasons,
        header_from,
        envelope_from: partial.envelope_from,
        envelope_to: partial.envelope_to,
        dkim_results: partial.dkim_results,
        spf_results: partial.spf_results,
    })
}
