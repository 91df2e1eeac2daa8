//! Bounces: delivery status notifications (RFC 3464: a `multipart/report` with a
//! `message/delivery-status` part, one block per recipient with its action, RFC 3463 status and
//! the remote server's diagnostic), and the plain-text forms still sent without one (Exim's
//! "The following address(es) failed", Microsoft's "Diagnostic information for administrators",
//! Postfix's `<address>: host ... said:`, Google's "Delivery to the following recipient
//! failed"), read line by line for each failed address and the SMTP reply after it.
//!
//! A bounce is hostile input: the message is parsed once (mail-parser, no decoding past its own
//! limits), at most [`MAX_RECIPIENTS`] recipients are read, and every text kept is cut to
//! [`MAX_TEXT`] characters. The returned message it may carry is never kept; only its
//! Message-ID is read.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// The most recipients read from one bounce.
pub const MAX_RECIPIENTS: usize = 1_000;
/// The longest diagnostic or host name kept, in characters.
pub const MAX_TEXT: usize = 1_000;
/// The most lines of a plain-text bounce read.
const MAX_LINES: usize = 5_000;

/// Who wrote a bounce, as far as its form says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceFormat {
    /// RFC 3464 with nothing that says which server sent it.
    Rfc3464,
    Postfix,
    Exim,
    Microsoft,
    Google,
    /// Plain text of another server, read by its addresses and SMTP replies.
    Text,
}

impl BounceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceFormat::Rfc3464 => "rfc3464",
            BounceFormat::Postfix => "postfix",
            BounceFormat::Exim => "exim",
            BounceFormat::Microsoft => "microsoft",
            BounceFormat::Google => "google",
            BounceFormat::Text => "text",
        }
    }
}

/// Whether a recipient's failure is permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// A permanent failure (a 5.x.x status): sending to the address again fails again.
    Hard,
    /// A temporary one: delayed, or given up after a temporary (4.x.x) failure.
    Soft,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
        }
    }

    pub fn parse(text: &str) -> Option<BounceKind> {
        [BounceKind::Hard, BounceKind::Soft].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// What happened to a recipient (RFC 3464 section 2.3.3; delivered, relayed and expanded are
/// no bounce and are not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceAction {
    Failed,
    Delayed,
}

impl BounceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceAction::Failed => "failed",
            BounceAction::Delayed => "delayed",
        }
    }
}

/// One recipient the bounce is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BouncedRecipient {
    /// The address, lowercase.
    pub address: String,
    pub action: BounceAction,
    pub kind: BounceKind,
    /// The RFC 3463 enhanced status code (`5.1.1`); from the basic reply code when only that is
    /// given (`550` is `5.0.0`).
    pub status: Option<String>,
    /// The server that refused it, when said.
    pub remote_mta: Option<String>,
    /// The remote server's reply or the reporting server's reason, on one line.
    pub diagnostic: Option<String>,
}

/// A bounce as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bounce {
    pub format: BounceFormat,
    /// The server that wrote it (RFC 3464 Reporting-MTA), when said.
    pub reporting_mta: Option<String>,
    /// The bounced message's Message-ID, when the bounce returns its header.
    pub original_message_id: Option<String>,
    /// Failed and delayed recipients; empty for a notification of success.
    pub recipients: Vec<BouncedRecipient>,
}

/// Why a message did not read as a bounce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BounceError {
    #[error("it is not a mail message")]
    NotAMessage,
    #[error(
        "no recipient's failure could be found in it: neither an RFC 3464 delivery-status part nor a known text form"
    )]
    NoRecipients,
}

/// What an RFC 3463 status code means, in plain words: the code itself when it is a common one,
/// else its subject (addressing, mailbox, network, policy, ...).
pub fn status_meaning(status: &str) -> &'static str {
    let mut parts = status.splitn(3, '.');
    let (class, subject, detail) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (class, subject, detail) {
        (_, "1", "1") | (_, "1", "10") => "the address does not exist",
        (_, "1", "2") => "the recipient's domain takes no mail",
        (_, "1", "6") => "the mailbox has moved",
        (_, "2", "1") => "the mailbox is disabled",
        (_, "2", "2") => "the mailbox is full",
        (_, "2", "3") | (_, "3", "4") => "the message is too big for the receiver",
        (_, "4", "1") | (_, "4", "2") => "the receiving server did not answer or dropped the connection",
        (_, "4", "4") => "the receiving server could not be found",
        (_, "4", "7") => "delivery took too long and was given up",
        (_, "7", "1") => "refused by the receiver's policy (blocked or spam)",
        (_, "7", "26") | (_, "7", "27") => "refused: authentication (DKIM, SPF, DMARC) did not pass",
        ("4", "7", _) => "held back for now by the receiver (rate limit or greylisting)",
        (_, "1", _) => "a problem with the address",
        (_, "2", _) => "a problem with the mailbox",
        (_, "3", _) => "a problem with the receiving mail system",
        (_, "4", _) => "a network or routing problem",
        (_, "5", _) => "a mail protocol problem",
        (_, "6", _) => "a problem with the message's content",
        (_, "7", _) => "refused for security or policy reasons",
        _ => "no reason given",
    }
}

/// Reads a bounce.
pub fn parse_bounce(message: &[u8]) -> Result<Bounce, BounceError> {
    let parsed = MessageParser::default().parse(message).ok_or(BounceError::NotAMessage)?;
    let has = |name: &str| parsed.header_raw(name).is_some();
    if !(has("From") || has("Content-Type") || has("Received") || has("Subject")) {
        return Err(BounceError::NotAMessage);
    }
    let mut status_text: Option<String> = None;
    let mut plain: Option<String> = None;
    let mut original_message_id = None;
    for part in parsed.parts.iter().filter(|part| !part.is_multipart()) {
        let kind = part
            .content_type()
            .map(|kind| format!("{}/{}", kind.ctype(), kind.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".to_string());
        match kind.as_str() {
            "message/delivery-status" | "message/global-delivery-status" if status_text.is_none() => {
                status_text = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            "message/rfc822"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/global"
            | "message/global-headers" => {
                original_message_id = original_message_id.or_else(|| message_id(part.contents()));
            }
            "text/plain" if plain.is_none() => plain = part.text_contents().map(str::to_string),
            _ => {}
        }
    }
    let header = |name: &str| parsed.header_raw(name).map(|value| value.trim().to_string());
    let plain = plain.unwrap_or_default();
    if status_text.is_none() {
        // A report whose MIME structure is broken (no boundaries where the header says): its
        // delivery-status fields may still be in the body.
        let body_start = memchr::memmem::find(message, b"\r\n\r\n")
            .or_else(|| memchr::memmem::find(message, b"\n\n"))
            .unwrap_or(message.len());
        let body = &message[body_start..message.len().min(body_start + 1024 * 1024)];
        if memchr::memmem::find(body, b"Final-Recipient:").is_some()
            || memchr::memmem::find(body, b"final-recipient:").is_some()
        {
            status_text = Some(String::from_utf8_lossy(body).into_owned());
        }
    }
    let format = format_of(&header, &plain);
    if let Some(text) = &status_text {
        let (reporting_mta, recipients, any) = delivery_status(text);
        if any {
            let mut recipients = recipients;
            if format != BounceFormat::Rfc3464 {
                // Some servers leave the reply out of the delivery-status part but say it in
                // their text (Microsoft's "Remote Server returned ...").
                fill_from_text(&mut recipients, &text_recipients(&plain));
            }
            return Ok(Bounce { format, reporting_mta, original_message_id, recipients });
        }
    }
    let mut recipients = text_recipients(&plain);
    if recipients.is_empty() {
        // Exim and Google name the failed addresses in a header as well.
        let failed = header("X-Failed-Recipients").unwrap_or_default();
        let code = first_reply(&plain);
        for address in failed.split(',').filter_map(|address| clean_address(address.trim())) {
            recipients.push(text_recipient(address, code.clone(), &plain));
        }
    }
    if recipients.is_empty() {
        return Err(BounceError::NoRecipients);
    }
    recipients.truncate(MAX_RECIPIENTS);
    let format = if format == BounceFormat::Rfc3464 { BounceFormat::Text } else { format };
    Ok(Bounce { format, reporting_mta: None, original_message_id, recipients })
}

/// Which server's bounce this is, from the marks each leaves.
fn format_of(header: &dyn Fn(&str) -> Option<String>, plain: &str) -> BounceFormat {
    let from = header("From").unwrap_or_default().to_ascii_lowercase();
    if header("X-MS-Exchange-Message-Is-Ndr").is_some() || plain.contains("Diagnostic information for administrators") {
        BounceFormat::Microsoft
    } else if plain.contains("This is the mail system at host") || plain.contains("X-Postfix") {
        BounceFormat::Postfix
    } else if plain.contains("This message was created automatically by mail delivery software")
        || header("X-Failed-Recipients").is_some() && !from.contains("google")
    {
        BounceFormat::Exim
    } else if from.contains("googlemail.com") || from.contains("google.com") {
        BounceFormat::Google
    } else {
        BounceFormat::Rfc3464
    }
}

/// The Message-ID in a returned message or header block.
fn message_id(contents: &[u8]) -> Option<String> {
    let head_end = memchr::memmem::find(contents, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(contents, b"\n\n"))
        .unwrap_or(contents.len());
    let head = String::from_utf8_lossy(&contents[..head_end.min(256 * 1024)]);
    let mut lines = head.lines();
    while let Some(line) = lines.next() {
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("message-id")
        {
            let mut value = value.trim().to_string();
            if value.is_empty() {
                value = lines.next().unwrap_or_default().trim().to_string();
            }
            return Some(cut(&value)).filter(|value| !value.is_empty());
        }
    }
    None
}

/// The fields of a delivery-status part: the per-message block, then one per recipient.
/// Returns the Reporting-MTA, the failed and delayed recipients, and whether any recipient block
/// was read at all (a success notification has some, none of them bounces).
fn delivery_status(text: &str) -> (Option<String>, Vec<BouncedRecipient>, bool) {
    let mut blocks: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines().take(MAX_LINES * 4) {
        if line.trim().is_empty() {
            if blocks.last().is_some_and(|block| !block.is_empty()) {
                if blocks.len() > MAX_RECIPIENTS {
                    break;
                }
                blocks.push(Vec::new());
            }
            continue;
        }
        let Some(block) = blocks.last_mut() else { break };
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut()
                && value.len() < MAX_TEXT
            {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':')
            && block.len() < 64
        {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let field = |block: &[(String, String)], name: &str| {
        block.iter().find(|(field, _)| field == name).map(|(_, value)| value.clone())
    };
    // After its type (`dns;`, `rfc822;`, `smtp;`), as RFC 3464 writes these fields.
    let typed = |value: String| match value.split_once(';') {
        Some((_, rest)) => rest.trim().to_string(),
        None => value.trim().to_string(),
    };
    let mut reporting_mta = None;
    let mut recipients = Vec::new();
    let mut any = false;
    for block in blocks.iter().filter(|block| !block.is_empty()) {
        // The address as the sender gave it, when said (an alias expanded on the way has a
        // Final-Recipient of its own), else the one that failed.
        let recipient = field(block, "original-recipient")
            .filter(|original| clean_address(&typed(original.clone())).is_some())
            .or_else(|| field(block, "final-recipient"));
        let Some(recipient) = recipient else {
            reporting_mta = reporting_mta.or_else(|| field(block, "reporting-mta").map(typed).map(|mta| cut(&mta)));
            continue;
        };
        any = true;
        let Some(address) = clean_address(&typed(recipient)) else { continue };
        let action = field(block, "action").unwrap_or_default().to_ascii_lowercase();
        let action = match action.split_whitespace().next().unwrap_or("") {
            "failed" => BounceAction::Failed,
            "delayed" => BounceAction::Delayed,
            // delivered, relayed, expanded: no bounce.
            "delivered" | "relayed" | "expanded" => continue,
            _ => BounceAction::Failed,
        };
        let diagnostic =
            field(block, "diagnostic-code").map(typed).map(|text| cut(&text)).filter(|text| !text.is_empty());
        let status = field(block, "status")
            .and_then(|status| enhanced_code(&status))
            .or_else(|| diagnostic.as_deref().and_then(first_reply));
        recipients.push(BouncedRecipient {
            address,
            action,
            kind: kind_of(action, status.as_deref()),
            status,
            remote_mta: field(block, "remote-mta").map(typed).map(|mta| cut(&mta)).filter(|mta| !mta.is_empty()),
            diagnostic,
        });
    }
    (reporting_mta, recipients, any)
}

/// Hard for a permanent failure, soft for a delay or a temporary one.
fn kind_of(action: BounceAction, status: Option<&str>) -> BounceKind {
    match (action, status.and_then(|status| status.chars().next())) {
        (BounceAction::Failed, Some('5') | None) => BounceKind::Hard,
        _ => BounceKind::Soft,
    }
}

/// Recipients' diagnostics and codes the delivery-status part left out, from the text.
fn fill_from_text(recipients: &mut [BouncedRecipient], from_text: &[BouncedRecipient]) {
    for recipient in recipients {
        let Some(found) = from_text.iter().find(|found| found.address == recipient.address) else { continue };
        if recipient.diagnostic.is_none() {
            recipient.diagnostic.clone_from(&found.diagnostic);
        }
        if recipient.status.as_deref().is_none_or(|status| status.ends_with(".0.0"))
            && let Some(status) = &found.status
        {
            recipient.status = Some(status.clone());
        }
    }
}

/// Lines after which a plain-text bounce quotes the returned message: nothing past them is
/// read as a recipient.
const QUOTE_MARKS: [&str; 6] = [
    "This is a copy of the message",
    "Original message headers:",
    "Below this line is a copy of the message",
    "----- Original message -----",
    "Content-Type: message/rfc822",
    "------ This is a copy",
];

/// The failed addresses of a plain-text bounce, each with the SMTP reply said after it.
fn text_recipients(plain: &str) -> Vec<BouncedRecipient> {
    let delayed = plain.contains("have not yet been delivered")
        || plain.contains("Delivery has been delayed")
        || plain.contains("will retry")
        || plain.contains("Delivery incomplete");
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in plain.lines().take(MAX_LINES) {
        if QUOTE_MARKS.iter().any(|mark| line.contains(mark)) {
            break;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some((address, rest)) = leading_address(trimmed) {
            let index = match found.iter().position(|(known, _)| *known == address) {
                Some(index) => index,
                None if found.len() < MAX_RECIPIENTS => {
                    found.push((address, Vec::new()));
                    found.len() - 1
                }
                None => break,
            };
            current = Some(index);
            if !rest.is_empty() {
                found[index].1.push(rest.to_string());
            }
            continue;
        }
        if let Some(index) = current
            && found[index].1.len() < 20
        {
            found[index].1.push(trimmed.to_string());
        }
    }
    found
        .into_iter()
        .map(|(address, lines)| {
            let text = lines.join(" ");
            let code = first_reply(&text);
            let mut recipient = text_recipient(address, code, &text);
            if delayed && recipient.status.as_deref().is_none_or(|status| !status.starts_with('5')) {
                recipient.action = BounceAction::Delayed;
                recipient.kind = BounceKind::Soft;
            }
            recipient
        })
        .collect()
}

/// A recipient of a plain-text bounce: its code, and as diagnostic the text from the reply on
/// (or all of it when there is no reply).
fn text_recipient(address: String, status: Option<String>, text: &str) -> BouncedRecipient {
    let diagnostic = reply_text(text).unwrap_or(text);
    let diagnostic = diagnostic.trim_matches(|c: char| c == '\'' || c == '#' || c.is_whitespace());
    BouncedRecipient {
        address,
        action: BounceAction::Failed,
        kind: kind_of(BounceAction::Failed, status.as_deref()),
        status,
        remote_mta: None,
        diagnostic: Some(cut(diagnostic)).filter(|text| !text.is_empty()),
    }
}

/// An address a line of a plain-text bounce begins with, and what follows it:
/// `<user@example.com>: host ... said`, `  user@example.com`, `user@example.com<mailto:...>`,
/// `Name<mailto:user@example.com>`.
fn leading_address(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix('<') {
        let (address, after) = rest.split_once('>')?;
        let after = after.trim_start();
        // `<a@b>: reason` or `<a@b> (expanded from ...): reason`.
        let reason = match after.split_once(':') {
            Some((_, reason)) if after.starts_with(':') || after.starts_with('(') => reason.trim(),
            _ if after.is_empty() => "",
            _ => return None,
        };
        return clean_address(address).map(|address| (address, reason));
    }
    let token = line.split_whitespace().next()?;
    let rest = line[token.len()..].trim();
    let token = token.trim_end_matches(':');
    let address = match token.split_once("<mailto:") {
        Some((before, mailto)) => {
            let mailto = mailto.trim_end_matches('>');
            if before.contains('@') { before } else { mailto }
        }
        None => token,
    };
    // A bare address stands alone on its line (a following text is the reason only after `:`).
    if rest.is_empty() || line.split_whitespace().next().is_some_and(|first| first.ends_with(':')) {
        clean_address(address).map(|address| (address, rest))
    } else {
        None
    }
}

/// `address` lowercase if it looks like one mailbox address.
fn clean_address(address: &str) -> Option<String> {
    let address = address.trim().trim_matches(|c| c == '<' || c == '>' || c == '"' || c == '\'');
    let (local, domain) = address.rsplit_once('@')?;
    let plausible = !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && domain.len() <= 255
        && !domain.starts_with('.')
        && !address.contains(char::is_whitespace)
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    plausible.then(|| address.to_ascii_lowercase())
}

/// The enhanced status code (`5.1.1`) in `text`, if one is there.
fn enhanced_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|word| is_enhanced(word)).map(str::to_string)
}

/// Whether `word` is an RFC 3463 enhanced status code (`5.1.1`).
pub fn is_enhanced(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    matches!(parts.as_slice(), [class, subject, detail]
        if matches!(*class, "2" | "4" | "5")
            && (1..=3).contains(&subject.len()) && subject.chars().all(|c| c.is_ascii_digit())
            && (1..=3).contains(&detail.len()) && detail.chars().all(|c| c.is_ascii_digit()))
}

/// The status of the first SMTP reply in `text`: its enhanced code, or its basic code as
/// `X.0.0`.
fn first_reply(text: &str) -> Option<String> {
    let reply = reply_text(text)?;
    let basic = &reply[..3];
    let after = reply[3..].trim_start_matches(['-', ' ']);
    let enhanced = after.split_whitespace().next().filter(|word| is_enhanced(word));
    Some(match enhanced {
        Some(code) => code.to_string(),
        None => format!("{}.0.0", &basic[..1]),
    })
}

/// `text` from its first SMTP reply on (`550 5.1.1 ...`, `550-5.1.1 ...`, `#550 ...`).
fn reply_text(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(3)).find_map(|at| {
        let code = &bytes[at..at + 3];
        let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric() && bytes[at - 1] != b'.';
        let after_ok = bytes.get(at + 3).is_none_or(|byte| matches!(byte, b' ' | b'-'));
        (before_ok
            && after_ok
            && matches!(code[0], b'4' | b'5')
            && code[1].is_ascii_digit()
            && code[2].is_ascii_digit()
            && text.is_char_boundary(at))
        .then(|| &text[at..])
    })
}

/// `text` on one line, at most [`MAX_TEXT`] characters.
fn cut(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(MAX_TEXT).collect()
}
