//! What the sending gateway does to a message: checks it, finds its From domain among the
//! account's domains, and either DKIM-signs it as that domain (when DKIM is verified there) or
//! rewrites its From to the platform's variable domain (`user@yourcompany.com` becomes
//! `user=yourcompany.com@<variable domain>`, the original address kept in Reply-To) and signs it
//! as the variable domain. The envelope sender goes on the platform's bounce domain with a token
//! per message (VERP), so a bounce can be traced to the message.
//!
//! DKIM signing (RFC 6376) is done here with ring: relaxed header and simple body
//! canonicalization, SHA-256, RSA (PKCS#1 v1.5) or Ed25519 (RFC 8463); `From` is signed once more
//! than it occurs, so no From can be added without breaking the signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use senderauth_core::dkim::sign::{SigningKey, dkim_signature};
use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::name::DomainName;
use senderauth_core::token::random_hex;
use senderauth_store::{KeyGroup, Store, StoreError};

use senderauth_service::Service;
use senderauth_service::keys::{MasterKeys, Sealed};

/// Why a message is not taken, with the SMTP reply it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the message contains NUL bytes, which mail may not carry")]
    NulByte,
    #[error("line {line} ends in a bare LF; lines of a message end in CRLF")]
    BareLineFeed { line: usize },
    #[error("line {line} holds 8-bit data in a header; encode it (RFC 2047) or send with SMTPUTF8")]
    EightBitHeader { line: usize },
    #[error("the body holds 8-bit data but the message was not sent with BODY=8BITMIME")]
    UndeclaredEightBit,
    #[error("the message is {size} bytes; at most {limit} are taken")]
    TooBig { size: usize, limit: usize },
    #[error("header line {line} is not a field (Name: value) nor the continuation of one")]
    MalformedHeader { line: usize },
    #[error("the message has no From header; add the address you send from")]
    NoFrom,
    #[error("the message has {count} From headers; send with exactly one")]
    SeveralFromHeaders { count: usize },
    #[error("the From header holds {count} addresses; send from exactly one")]
    SeveralFromAddresses { count: usize },
    #[error("the From header {value:?} is not a valid mailbox: {reason}")]
    BadFrom { value: String, reason: &'static str },
    #[error("the message could not be signed now ({0}); try again")]
    Temporary(String),
}

impl MailError {
    /// The SMTP reply code and enhanced status code (RFC 3463).
    pub fn smtp(&self) -> (u16, &'static str) {
        match self {
            MailError::TooBig { .. } => (552, "5.3.4"),
            MailError::BadFrom { .. } | MailError::NoFrom | MailError::SeveralFromAddresses { .. } => (550, "5.1.7"),
            MailError::UndeclaredEightBit | MailError::EightBitHeader { .. } => (554, "5.6.1"),
            MailError::Temporary(_) => (451, "4.3.0"),
            _ => (554, "5.6.0"),
        }
    }

    /// A short machine-readable name, for the API.
    pub fn code(&self) -> &'static str {
        match self {
            MailError::NulByte => "nul_byte",
            MailError::BareLineFeed { .. } => "bare_line_feed",
            MailError::EightBitHeader { .. } => "eight_bit_header",
            MailError::UndeclaredEightBit => "undeclared_eight_bit",
            MailError::TooBig { .. } => "message_too_big",
            MailError::MalformedHeader { .. } => "malformed_header",
            MailError::NoFrom => "no_from",
            MailError::SeveralFromHeaders { .. } => "several_from_headers",
            MailError::SeveralFromAddresses { .. } => "several_from_addresses",
            MailError::BadFrom { .. } => "bad_from",
            MailError::Temporary(_) => "temporary",
        }
    }
}

impl From<StoreError> for MailError {
    fn from(error: StoreError) -> MailError {
        MailError::Temporary(error.to_string())
    }
}

/// How a message arrived.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The sender declared an 8-bit body (SMTP `BODY=8BITMIME`; the API takes 8-bit bodies).
    pub eight_bit: bool,
    pub size_limit: usize,
}

/// A message ready to relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The envelope sender (MAIL FROM) on the bounce domain.
    pub envelope_from: String,
    /// The message as relayed: DKIM-Signature first.
    pub message: Vec<u8>,
    /// The address in the message's From as it came in.
    pub from: String,
    /// The domain (`d=`) and the selectors (`s=`) it is signed with: one signature each.
    pub signed_as: String,
    pub selectors: Vec<String>,
    /// The new From address when it was rewritten to the variable domain.
    pub rewritten_from: Option<String>,
    /// The token in the envelope sender, to trace a bounce to this message.
    pub bounce_token: String,
}

/// One header field as it came: its name and the raw text of the whole field (folded lines
/// included, final CRLF included).
#[derive(Clone, Debug)]
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

impl Field<'_> {
    /// The value unfolded (the CRLFs of folded lines removed), without the name and colon.
    fn value(&self) -> String {
        let text = String::from_utf8_lossy(self.raw);
        let value = text.split_once(':').map_or("", |(_, value)| value);
        value.replace("\r\n", "").trim().to_string()
    }
}

/// Checks the bytes of a message and splits it into header fields and body.
fn split(message: &[u8], arrival: Arrival) -> Result<(Vec<Field<'_>>, &[u8]), MailError> {
    if message.len() > arrival.size_limit {
        return Err(MailError::TooBig { size: message.len(), limit: arrival.size_limit });
    }
    if message.contains(&0) {
        return Err(MailError::NulByte);
    }
    let mut line = 1;
    for (index, &byte) in message.iter().enumerate() {
        if byte == b'\n' {
            if index == 0 || message[index - 1] != b'\r' {
                return Err(MailError::BareLineFeed { line });
            }
            line += 1;
        }
    }
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = 0;
    let mut line = 1;
    let body = loop {
        let end = message[at..].windows(2).position(|pair| pair == b"\r\n").map(|offset| at + offset + 2);
        let Some(end) = end else {
            // No blank line: the rest is one last header line without its CRLF.
            return Err(MailError::MalformedHeader { line });
        };
        let text = &message[at..end];
        if text == b"\r\n" {
            break &message[end..];
        }
        if text.iter().any(|byte| *byte >= 0x80) {
            return Err(MailError::EightBitHeader { line });
        }
        if text[0] == b' ' || text[0] == b'\t' {
            let Some(last) = fields.last_mut() else { return Err(MailError::MalformedHeader { line }) };
            let start = last.raw.as_ptr() as usize - message.as_ptr() as usize;
            last.raw = &message[start..end];
        } else {
            let colon = text.iter().position(|byte| *byte == b':');
            let name = colon.map(|colon| &text[..colon]);
            match name {
                Some(name) if !name.is_empty() && name.iter().all(|byte| (33..=126).contains(byte)) => {
                    let name = std::str::from_utf8(name).map_err(|_| MailError::MalformedHeader { line })?;
                    fields.push(Field { name, raw: text });
                }
                _ => return Err(MailError::MalformedHeader { line }),
            }
        }
        at = end;
        line += 1;
    };
    if !arrival.eight_bit && body.iter().any(|byte| *byte >= 0x80) {
        return Err(MailError::UndeclaredEightBit);
    }
    Ok((fields, body))
}

/// A From mailbox: the display name as written (if any) and the address's two halves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub display: Option<String>,
    /// The local part as written (quoted or not).
    pub local: String,
    pub domain: DomainName,
}

impl Mailbox {
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
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

/// Whether `text` is a dot-atom (RFC 5322 section 3.2.3).
fn is_dot_atom(text: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(|c| c.is_ascii_alphanumeric() || SPECIALS.contains(c)))
}

/// Parses a From header's value: exactly one mailbox, `Name <local@domain>` or `local@domain`.
pub fn parse_from(value: &str) -> Result<Mailbox, MailError> {
    let bad = |reason| MailError::BadFrom { value: value.chars().take(200).collect(), reason };
    if value.chars().any(|c| c.is_control()) {
        return Err(bad("it holds control characters"));
    }
    let clean = without_comments(value).map_err(bad)?;
    let mailboxes: Vec<String> =
        split_top_level(&clean, ',').into_iter().filter(|part| !part.trim().is_empty()).collect();
    if mailboxes.len() > 1 {
        return Err(MailError::SeveralFromAddresses { count: mailboxes.len() });
    }
    let Some(mailbox) = mailboxes.first() else { return Err(MailError::NoFrom) };
    if split_top_level(mailbox, ':').len() > 1 {
        return Err(bad("a group is not a sender"));
    }
    let (display, address) = match (mailbox.find('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close && mailbox[close + 1..].trim().is_empty() => {
            // The display name exactly as written (from the raw value, comments and all, up to
            // the angle bracket).
            let raw_display = value[..value.find('<').unwrap_or(0)].trim();
            let display = (!raw_display.is_empty()).then(|| raw_display.to_string());
            (display, mailbox[open + 1..close].trim().to_string())
        }
        (None, None) => (None, mailbox.trim().to_string()),
        _ => return Err(bad("its angle brackets do not pair")),
    };
    let Some((local, domain)) = address.rsplit_once('@') else { return Err(bad("it has no @domain")) };
    let local_ok = is_dot_atom(local)
        || (local.len() >= 2
            && local.starts_with('"')
            && local.ends_with('"')
            && !local[1..local.len() - 1].replace("\\\"", "").contains('"'));
    if !local_ok {
        return Err(bad("its local part is neither an atom nor a quoted string"));
    }
    let domain = DomainName::parse(domain).map_err(|_| bad("its domain is not a valid domain name"))?;
    Ok(Mailbox { display, local: local.to_string(), domain })
}

/// The variable-domain address for `mailbox`: `local=domain@variable`, quoted when the local
/// part needs it.
pub fn variable_address(mailbox: &Mailbox, variable_domain: &str) -> String {
    let local = if mailbox.local.starts_with('"') {
        let inner = &mailbox.local[1..mailbox.local.len() - 1];
        inner.replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        mailbox.local.clone()
    };
    let rewritten = format!("{local}={}", mailbox.domain);
    let local = if is_dot_atom(&rewritten) {
        rewritten
    } else {
        format!("\"{}\"", rewritten.replace('\\', "\\\\").replace('"', "\\\""))
    };
    format!("{local}@{variable_domain}")
}

/// Who signs a message: the domain (`d=`), and each selector with its key (RSA, then Ed25519
/// for a domain that has it).
pub type Signer = (String, Vec<(String, Arc<SigningKey>)>);

/// Whose signer: an account and a From domain (the platform's own: 0 and "").
type SignerKey = (i64, String);

/// A signer found (or none) and when.
type Remembered = (std::time::Instant, Option<Signer>);

/// Opened signing keys by stored key id (domain keys positive, platform keys negative), so a
/// key is opened and parsed once, not per message; and for a while, which signer a From domain
/// of an account gets (its domain, a parent, or none), so a message costs no store reads.
#[derive(Clone, Default)]
pub struct KeyCache {
    keys: Arc<Mutex<HashMap<i64, Arc<SigningKey>>>>,
    signers: Arc<Mutex<HashMap<SignerKey, Remembered>>>,
}

/// How many opened keys, or signers, the cache holds before it starts over.
const KEY_CACHE_LIMIT: usize = 10_000;

/// How long the signer of a From domain is remembered: a domain that loses its status, or a
/// rotation that moves signing to the other selector, takes effect within this long (the old
/// key stays published for days after a rotation, so mail signed with it still verifies).
const SIGNER_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl KeyCache {
    /// The signer for mail of `account_id` from `domain` (the platform's own with account 0 and
    /// an empty domain), remembered for [`SIGNER_TTL`].
    async fn signer(
        &self,
        gateway: &Gateway,
        account_id: i64,
        domain: &DomainName,
    ) -> Result<Option<Signer>, MailError> {
        self.remembered((account_id, domain.as_str().to_string()), self.find_signer(gateway, account_id, domain)).await
    }

    /// The variable domain's signer (its active key), remembered like a domain's.
    async fn platform_signer(&self, gateway: &Gateway) -> Result<Option<Signer>, MailError> {
        let find = async {
            let keys = self.signing_keys(gateway.store(), gateway.master(), KeyGroup::Platform).await?;
            Ok((!keys.is_empty()).then(|| (gateway.service.variable_domain().to_string(), keys)))
        };
        self.remembered((0, String::new()), find).await
    }

    /// The signer remembered under `cache_key` if fresh, else what `find` finds (remembered).
    async fn remembered(
        &self,
        cache_key: SignerKey,
        find: impl Future<Output = Result<Option<Signer>, MailError>>,
    ) -> Result<Option<Signer>, MailError> {
        let lock_failed = || MailError::Temporary("signer cache".into());
        if let Some((at, signer)) = self.signers.lock().map_err(|_| lock_failed())?.get(&cache_key)
            && at.elapsed() < SIGNER_TTL
        {
            return Ok(signer.clone());
        }
        let signer = find.await?;
        let mut signers = self.signers.lock().map_err(|_| lock_failed())?;
        if signers.len() >= KEY_CACHE_LIMIT {
            signers.clear();
        }
        signers.insert(cache_key, (std::time::Instant::now(), signer.clone()));
        Ok(signer)
    }

    /// The From domain, or the nearest parent the account has connected (a relaxed DMARC
    /// alignment), with its DKIM records in place, and its active keys.
    async fn find_signer(
        &self,
        gateway: &Gateway,
        account_id: i64,
        domain: &DomainName,
    ) -> Result<Option<Signer>, MailError> {
        let organizational = domain.organizational_domain();
        let mut candidate = Some(domain.as_str().to_string());
        while let Some(name) = candidate {
            if let Some(record) = gateway.store().domain(account_id, &name).await?
                && SIGNING_STATUSES.contains(&record.status)
            {
                let keys = self.signing_keys(gateway.store(), gateway.master(), KeyGroup::Domain(record.id)).await?;
                if !keys.is_empty() {
                    return Ok(Some((name, keys)));
                }
            }
            candidate = name
                .split_once('.')
                .map(|(_, parent)| parent.to_string())
                .filter(|parent| parent.ends_with(organizational.as_str()) && DomainName::parse(parent).is_ok());
        }
        Ok(None)
    }

    /// The keys `group` signs with now, each as `(selector, key)`.
    async fn signing_keys(
        &self,
        store: &Store,
        master: &MasterKeys,
        group: KeyGroup,
    ) -> Result<Vec<(String, Arc<SigningKey>)>, MailError> {
        let mut signing = Vec::new();
        for (info, sealed) in store.signing_keys(group).await? {
            let cache_id = if matches!(group, KeyGroup::Platform) { -info.id } else { info.id };
            let cached =
                self.keys.lock().map_err(|_| MailError::Temporary("key cache".into()))?.get(&cache_id).cloned();
            let key = match cached {
                Some(key) => key,
                None => {
                    let opened = master
                        .open(&info.name, &Sealed { key_id: sealed.master_key_id, bytes: sealed.sealed })
                        .map_err(|error| MailError::Temporary(error.to_string()))?;
                    let key = Arc::new(SigningKey::from_pkcs8(&info.algorithm, &opened).map_err(MailError::Temporary)?);
                    let mut keys = self.keys.lock().map_err(|_| MailError::Temporary("key cache".into()))?;
                    if keys.len() >= KEY_CACHE_LIMIT {
                        keys.clear();
                    }
                    keys.insert(cache_id, key.clone());
                    key
                }
            };
            signing.push((info.selector, key));
        }
        Ok(signing)
    }
}

/// The sending gateway: the service (its store and master keys), the opened keys, where
/// bounces go, and the largest message taken. Shared by the SMTP listener and
/// `POST /api/v1/messages/prepare`.
#[derive(Clone)]
pub struct Gateway {
    pub service: Service,
    pub keys: KeyCache,
    /// Where relayed mail's envelope senders (and so bounces) go.
    pub bounce_domain: String,
    /// The largest message taken, in bytes.
    pub size_limit: usize,
}

impl Gateway {
    /// A gateway for `service` with an empty key cache.
    pub fn new(service: Service, bounce_domain: String, size_limit: usize) -> Gateway {
        Gateway { service, keys: KeyCache::default(), bounce_domain, size_limit }
    }

    fn store(&self) -> &Store {
        &self.service.worker.store
    }

    fn master(&self) -> &MasterKeys {
        &self.service.keys.master
    }
}

/// Statuses in which a domain's DKIM records are in place: its mail is signed as itself.
const SIGNING_STATUSES: [LifecycleStatus; 2] = [LifecycleStatus::PartiallyVerified, LifecycleStatus::Verified];

/// Prepares one message of `account_id` for relay (see the module's description).
pub async fn prepare(
    gateway: &Gateway,
    account_id: i64,
    message: &[u8],
    arrival: Arrival,
    now: i64,
) -> Result<Prepared, MailError> {
    let (fields, body) = split(message, arrival)?;
    let from_fields: Vec<&Field<'_>> = fields.iter().filter(|field| field.name.eq_ignore_ascii_case("from")).collect();
    let from_field = match from_fields.as_slice() {
        [] => return Err(MailError::NoFrom),
        [one] => *one,
        several => return Err(MailError::SeveralFromHeaders { count: several.len() }),
    };
    let mailbox = parse_from(&from_field.value())?;
    // The From domain, or the nearest parent the account has connected (a relaxed DMARC
    // alignment), with its DKIM records in place.
    let signer = gateway.keys.signer(gateway, account_id, &mailbox.domain).await?;
    let mut out_fields: Vec<Vec<u8>> = Vec::with_capacity(fields.len() + 1);
    let mut rewritten_from = None;
    let (domain, keys) = match signer {
        Some(signer) => {
            out_fields.extend(fields.iter().map(|field| field.raw.to_vec()));
            signer
        }
        None => {
            let address = variable_address(&mailbox, gateway.service.variable_domain());
            let has_reply_to = fields.iter().any(|field| field.name.eq_ignore_ascii_case("reply-to"));
            for field in &fields {
                if std::ptr::eq(field, from_field) {
                    let new_from = match &mailbox.display {
                        Some(display) => format!("From: {display} <{address}>\r\n"),
                        None => format!("From: {address}\r\n"),
                    };
                    out_fields.push(new_from.into_bytes());
                    if !has_reply_to {
                        out_fields.push(format!("Reply-To: {}\r\n", from_field.value()).into_bytes());
                    }
                } else {
                    out_fields.push(field.raw.to_vec());
                }
            }
            rewritten_from = Some(address);
            gateway
                .keys
                .platform_signer(gateway)
                .await?
                .ok_or_else(|| MailError::Temporary("the variable domain has no signing key yet".into()))?
        }
    };
    // One signature per key, the RSA one on top; neither covers the other.
    let mut relayed = Vec::with_capacity(message.len() + 1024 * keys.len());
    for (selector, key) in &keys {
        relayed.extend(dkim_signature(&out_fields, body, &domain, selector, key, now).map_err(MailError::Temporary)?);
    }
    for field in &out_fields {
        relayed.extend_from_slice(field);
    }
    relayed.extend_from_slice(b"\r\n");
    relayed.extend_from_slice(body);
    // 64 bits: unique enough to find a bounce's message in the logs.
    let bounce_token = random_hex("", 8).map_err(|error| MailError::Temporary(error.to_string()))?;
    Ok(Prepared {
        envelope_from: format!("b+{account_id}.{bounce_token}@{}", gateway.bounce_domain),
        message: relayed,
        from: mailbox.address(),
        signed_as: domain,
        selectors: keys.into_iter().map(|(selector, _)| selector).collect(),
        rewritten_from,
        bounce_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARRIVAL: Arrival = Arrival { eight_bit: false, size_limit: 1 << 20 };

    #[test]
    fn from_mailboxes_parse_and_refuse_what_is_not_one_mailbox() {
        let plain = parse_from("news@Shop.Example.com").expect("plain");
        assert_eq!((plain.display, plain.local.as_str(), plain.domain.as_str()), (None, "news", "shop.example.com"));
        let named = parse_from(r#""Shop, Inc." <news@shop.example.com> (our shop)"#).expect("named");
        assert_eq!(named.display.as_deref(), Some(r#""Shop, Inc.""#));
        let encoded = parse_from("=?utf-8?q?Caf=C3=A9?= <hi@cafe.example>").expect("encoded word");
        assert_eq!(encoded.display.as_deref(), Some("=?utf-8?q?Caf=C3=A9?="));
        assert!(matches!(parse_from("a@x.example, b@y.example"), Err(MailError::SeveralFromAddresses { count: 2 })));
        assert!(matches!(parse_from("Team: a@x.example;"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("no-at-sign"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("a b@x.example"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("<a@x.example"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("a@x.example\rBcc: c@d.example"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("a@[192.0.2.1]"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from(""), Err(MailError::NoFrom)));
    }

    #[test]
    fn the_variable_address_keeps_the_original_readable() {
        let mailbox = parse_from("user@yourcompany.com").expect("mailbox");
        assert_eq!(variable_address(&mailbox, "send.esp.example"), "user=yourcompany.com@send.esp.example");
        let quoted = parse_from(r#""john doe"@example.com"#).expect("quoted");
        assert_eq!(variable_address(&quoted, "v.example"), r#""john doe=example.com"@v.example"#);
    }

    #[test]
    fn bad_bytes_and_broken_headers_are_refused_with_their_reason() {
        let check = |message: &[u8], eight_bit: bool| split(message, Arrival { eight_bit, ..ARRIVAL }).map(|_| ());
        assert_eq!(check(b"From: a@x.example\r\n\r\nhi\0\r\n", false), Err(MailError::NulByte));
        assert_eq!(
            check(b"From: a@x.example\r\nTo: b@y.example\n\r\nhi\r\n", false),
            Err(MailError::BareLineFeed { line: 2 })
        );
        assert_eq!(check(b"From: a@x.example\r\n\r\ncaf\xc3\xa9\r\n", false), Err(MailError::UndeclaredEightBit));
        assert!(check(b"From: a@x.example\r\n\r\ncaf\xc3\xa9\r\n", true).is_ok());
        assert_eq!(
            check(b"From: a@x.example\r\nSubject: caf\xc3\xa9\r\n\r\n", true),
            Err(MailError::EightBitHeader { line: 2 })
        );
        assert_eq!(
            check(b"From: a@x.example\r\nnot a header\r\n\r\n", false),
            Err(MailError::MalformedHeader { line: 2 })
        );
        assert_eq!(check(b" folded first\r\n\r\n", false), Err(MailError::MalformedHeader { line: 1 }));
        assert_eq!(check(b"From: a@x.example\r\n", false), Err(MailError::MalformedHeader { line: 2 }));
        let big = vec![b'a'; 100];
        assert_eq!(
            split(&big, Arrival { eight_bit: false, size_limit: 10 }).map(|_| ()),
            Err(MailError::TooBig { size: 100, limit: 10 })
        );
        let (fields, body) =
            split(b"Subject: one\r\n two\r\nFrom: a@x.example\r\n\r\nBody\r\n", ARRIVAL).expect("fine");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].value(), "one two");
        assert_eq!(body, b"Body\r\n");
    }
}
