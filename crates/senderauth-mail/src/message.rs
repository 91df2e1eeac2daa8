//! What the sending gateway does to a message: checks it, finds its From domain among the
//! account's domains, and either DKIM-signs it as that domain (when DKIM is verified there) or
//! rewrites its From to the platform's variable domain (`user@yourcompany.com` becomes
//! `user=yourcompany.com@<variable domain>`, the original address kept in Reply-To) and signs it
//! as the variable domain. The envelope sender carries a token per message (VERP,
//! `senderauth_service::bounces`), so a bounce can be traced to the message; it goes on the
//! signing domain's return-path (`rp.<domain>`, SPF aligned with the From) while that is in use,
//! else on the platform's bounce domain, or, for an account that asks so, the message is refused.
//!
//! The signatures are made by `senderauth_core::dkim::sign` (relaxed header and simple body
//! canonicalization, `From` signed once more than it occurs); the From header is read by
//! `senderauth_core::mailbox`. The byte checks here (NUL, bare LF or CR, lines over 1,000
//! octets, undeclared 8-bit data) are policy, ours on purpose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use senderauth_core::dkim::sign::{SigningKey, dkim_signature};
use senderauth_core::mailbox::{Mailbox, MailboxError, variable_address};
use senderauth_core::name::DomainName;
use senderauth_core::return_path::Fallback;
use senderauth_store::{KeyGroup, Store, StoreError};

use senderauth_service::Service;
use senderauth_service::bounces;
use senderauth_service::keys::{MasterKeys, Sealed};

/// Why a message is not taken, with the SMTP reply it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the message contains NUL bytes, which mail may not carry")]
    NulByte,
    #[error("line {line} ends in a bare LF; lines of a message end in CRLF")]
    BareLineFeed { line: usize },
    #[error("line {line} holds a bare CR; CR appears only in the CRLF that ends a line")]
    BareCarriageReturn { line: usize },
    #[error(
        "line {line} is {length} octets long; at most 1,000 with its CRLF (wrap it, or encode the body as quoted-printable or base64)"
    )]
    LineTooLong { line: usize, length: usize },
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
    #[error(
        "the return-path of {domain} is not verified, and this account sends only with an aligned return-path: add \
         the Return-Path CNAME shown on the domain's page, or set the account's return_path_fallback to bounce_domain"
    )]
    ReturnPathNotInUse { domain: String },
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
            MailError::ReturnPathNotInUse { .. } => (550, "5.7.1"),
            MailError::LineTooLong { .. } => (500, "5.5.2"),
            _ => (554, "5.6.0"),
        }
    }

    /// A short machine-readable name, for the API.
    pub fn code(&self) -> &'static str {
        match self {
            MailError::NulByte => "nul_byte",
            MailError::BareLineFeed { .. } => "bare_line_feed",
            MailError::BareCarriageReturn { .. } => "bare_carriage_return",
            MailError::LineTooLong { .. } => "line_too_long",
            MailError::EightBitHeader { .. } => "eight_bit_header",
            MailError::UndeclaredEightBit => "undeclared_eight_bit",
            MailError::TooBig { .. } => "message_too_big",
            MailError::MalformedHeader { .. } => "malformed_header",
            MailError::NoFrom => "no_from",
            MailError::SeveralFromHeaders { .. } => "several_from_headers",
            MailError::SeveralFromAddresses { .. } => "several_from_addresses",
            MailError::BadFrom { .. } => "bad_from",
            MailError::ReturnPathNotInUse { .. } => "return_path_not_in_use",
            MailError::Temporary(_) => "temporary",
        }
    }
}

impl From<senderauth_service::ServiceError> for MailError {
    fn from(error: senderauth_service::ServiceError) -> MailError {
        MailError::Temporary(error.to_string())
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
    /// [`line_fault`] already found nothing wrong with the message's lines (the SMTP session
    /// checks them first, to close the connection on a bare line end).
    pub lines_checked: bool,
}

/// A message ready to relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The envelope sender (MAIL FROM): on the signing domain's return-path while it is in use,
    /// else on the platform's bounce domain.
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

/// The longest line of a message, CRLF included (RFC 5321 section 4.5.3.1.6): a longer one
/// may be wrapped on its way, which breaks the signature.
const MAX_LINE: usize = 1000;

/// What is wrong with a message's lines, if anything: the first line that does not end in CRLF
/// (a bare LF) or holds a CR not followed by LF, else the first line longer than [`MAX_LINE`]
/// (its length with its line end; the last line's as if it had one).
pub fn line_fault(message: &[u8]) -> Option<MailError> {
    let mut line = 1;
    let mut start = 0;
    let mut too_long = None;
    // One pass that looks only at the line ends (memchr finds them a vector at a time): a
    // message is checked on every arrival, and a byte-by-byte loop was a measurable part of
    // the gateway.
    for index in memchr::memchr2_iter(b'\r', b'\n', message) {
        match message[index] {
            b'\n' if index == 0 || message[index - 1] != b'\r' => return Some(MailError::BareLineFeed { line }),
            b'\n' => {
                let length = index - start + 1;
                if length > MAX_LINE && too_long.is_none() {
                    too_long = Some(MailError::LineTooLong { line, length });
                }
                start = index + 1;
                line += 1;
            }
            _ if message.get(index + 1) != Some(&b'\n') => return Some(MailError::BareCarriageReturn { line }),
            _ => {}
        }
    }
    let last = message.len() - start + 1;
    too_long.or((last > MAX_LINE).then_some(MailError::LineTooLong { line, length: last }))
}

/// Whether `fault` is a line end the client and this server may read differently (SMTP
/// smuggling), rather than a line too long.
pub fn is_bare_line_end(fault: &MailError) -> bool {
    matches!(fault, MailError::BareLineFeed { .. } | MailError::BareCarriageReturn { .. })
}

/// Checks the bytes of a message and splits it into header fields and body.
fn split(message: &[u8], arrival: Arrival) -> Result<(Vec<Field<'_>>, &[u8]), MailError> {
    if message.len() > arrival.size_limit {
        return Err(MailError::TooBig { size: message.len(), limit: arrival.size_limit });
    }
    if memchr::memchr(0, message).is_some() {
        return Err(MailError::NulByte);
    }
    if !arrival.lines_checked
        && let Some(fault) = line_fault(message)
    {
        return Err(fault);
    }
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = 0;
    let mut line = 1;
    let body = loop {
        // Every line feed ends a CRLF here: line_fault refused bare ones.
        let end = memchr::memchr(b'\n', &message[at..]).map(|offset| at + offset + 1);
        let Some(end) = end else {
            // No blank line: the rest is one last header line without its CRLF.
            return Err(MailError::MalformedHeader { line });
        };
        let text = &message[at..end];
        if text == b"\r\n" {
            break &message[end..];
        }
        if !text.is_ascii() {
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
    if !arrival.eight_bit && !body.is_ascii() {
        return Err(MailError::UndeclaredEightBit);
    }
    Ok((fields, body))
}

/// Parses a From header's value: exactly one mailbox, `Name <local@domain>` or `local@domain`.
pub fn parse_from(value: &str) -> Result<Mailbox, MailError> {
    Mailbox::parse(value).map_err(|error| match error {
        MailboxError::Empty => MailError::NoFrom,
        MailboxError::Several { count } => MailError::SeveralFromAddresses { count },
        MailboxError::Invalid(reason) => MailError::BadFrom { value: value.chars().take(200).collect(), reason },
        MailboxError::Domain(_) => MailError::BadFrom {
            value: value.chars().take(200).collect(),
            reason: "its domain is not a valid domain name",
        },
    })
}

/// Who signs a message: the domain (`d=`), and each selector with its key (RSA, then Ed25519
/// for a domain that has it); and, for a connected domain, its id and its return-path: the
/// envelope sender's domain while it is in use, or what its account wants done without it.
#[derive(Clone)]
pub struct Signer {
    pub domain: String,
    pub keys: Vec<(String, Arc<SigningKey>)>,
    /// The connected domain's id; 0 for the variable domain.
    pub domain_id: i64,
    /// `rp.<domain>` while the domain's return-path is in use.
    pub return_path: Option<String>,
}

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
            Ok((!keys.is_empty()).then(|| Signer {
                domain: gateway.service.variable_domain().to_string(),
                keys,
                domain_id: 0,
                return_path: None,
            }))
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
                && record.status.in_use()
            {
                let keys = self.signing_keys(gateway.store(), gateway.master(), KeyGroup::Domain(record.id)).await?;
                if !keys.is_empty() {
                    let provider = &gateway.service.worker.provider;
                    let return_path = DomainName::parse(&name)
                        .ok()
                        .filter(|_| record.return_path_status.in_use())
                        .map(|parsed| provider.return_path_host(&account_id.to_string(), &parsed));
                    return Ok(Some(Signer { domain: name, keys, domain_id: record.id, return_path }));
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
                    let key = Arc::new(
                        SigningKey::from_pkcs8(&info.algorithm, &opened)
                            .map_err(|error| MailError::Temporary(error.to_string()))?,
                    );
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
    let signer = match signer {
        Some(signer) => {
            if signer.return_path.is_none()
                && gateway.service.return_path_fallback(account_id).await? == Fallback::Reject
            {
                return Err(MailError::ReturnPathNotInUse { domain: signer.domain });
            }
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
    let mut relayed = Vec::with_capacity(message.len() + 1024 * signer.keys.len());
    for (selector, key) in &signer.keys {
        relayed.extend(
            dkim_signature(&out_fields, body, &signer.domain, selector, key, now).map_err(MailError::Temporary)?,
        );
    }
    for field in &out_fields {
        relayed.extend_from_slice(field);
    }
    relayed.extend_from_slice(b"\r\n");
    relayed.extend_from_slice(body);
    let bounce_token =
        bounces::issue(gateway.master(), account_id, signer.domain_id, now).map_err(MailError::Temporary)?;
    let envelope_domain = signer.return_path.as_deref().unwrap_or(&gateway.bounce_domain);
    Ok(Prepared {
        envelope_from: format!("{}@{envelope_domain}", bounces::local_part(account_id, &bounce_token)),
        message: relayed,
        from: mailbox.address(),
        signed_as: signer.domain,
        selectors: signer.keys.into_iter().map(|(selector, _)| selector).collect(),
        rewritten_from,
        bounce_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARRIVAL: Arrival = Arrival { eight_bit: false, size_limit: 1 << 20, lines_checked: false };

    #[test]
    fn line_ends_and_lengths_are_judged_as_a_byte_by_byte_reading_does() {
        // The obvious reading, byte by byte, as the oracle for the memchr one.
        fn byte_by_byte(message: &[u8]) -> Option<String> {
            let mut line = 1;
            for (index, &byte) in message.iter().enumerate() {
                match byte {
                    b'\n' if index == 0 || message[index - 1] != b'\r' => return Some(format!("bare LF {line}")),
                    b'\n' => line += 1,
                    b'\r' if message.get(index + 1) != Some(&b'\n') => return Some(format!("bare CR {line}")),
                    _ => {}
                }
            }
            let long =
                message.split(|byte| *byte == b'\n').map(<[u8]>::len).enumerate().find(|(_, l)| l + 1 > MAX_LINE);
            long.map(|(line, length)| format!("long {} {}", line + 1, length + 1))
        }
        let judged = |message: &[u8]| {
            let fault = line_fault(message);
            // What the SMTP session says about the lines is what `split` refuses the message for.
            if let Some(fault) = &fault {
                assert_eq!(split(message, ARRIVAL).map(|_| ()).as_ref(), Err(fault));
            }
            match fault {
                Some(MailError::BareLineFeed { line }) => Some(format!("bare LF {line}")),
                Some(MailError::BareCarriageReturn { line }) => Some(format!("bare CR {line}")),
                Some(MailError::LineTooLong { line, length }) => Some(format!("long {line} {length}")),
                Some(other) => panic!("{other}"),
                None => None,
            }
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            // Lines of letters, mostly CRLF-ended, some bare CR or LF, some near the length limit.
            let mut message = Vec::new();
            for _ in 0..next() % 6 {
                let length = if next() % 8 == 0 { 990 + next() % 20 } else { next() % 80 } as usize;
                message.extend(std::iter::repeat_n(b'a', length));
                message.extend_from_slice(match next() % 40 {
                    0 => b"\n".as_slice(),
                    1 => b"\r".as_slice(),
                    2 => b"".as_slice(),
                    _ => b"\r\n".as_slice(),
                });
            }
            assert_eq!(judged(&message), byte_by_byte(&message), "round {round}");
        }
    }

    #[test]
    fn from_headers_map_to_the_reply_a_sender_can_act_on() {
        assert!(matches!(parse_from("a@x.example, b@y.example"), Err(MailError::SeveralFromAddresses { count: 2 })));
        assert!(matches!(parse_from(""), Err(MailError::NoFrom)));
        assert!(matches!(parse_from("a b@x.example"), Err(MailError::BadFrom { .. })));
        assert!(matches!(parse_from("a@localhost"), Err(MailError::BadFrom { .. })));
        assert_eq!(
            parse_from("Shop\r\n\t<news@shop.example>").map(|mailbox| mailbox.address()),
            Ok("news@shop.example".into())
        );
    }

    #[test]
    fn bad_bytes_and_broken_headers_are_refused_with_their_reason() {
        let check = |message: &[u8], eight_bit: bool| split(message, Arrival { eight_bit, ..ARRIVAL }).map(|_| ());
        assert_eq!(check(b"From: a@x.example\r\n\r\nhi\0\r\n", false), Err(MailError::NulByte));
        assert_eq!(
            check(b"From: a@x.example\r\n\r\nhello\r.\r\n", false),
            Err(MailError::BareCarriageReturn { line: 3 })
        );
        assert_eq!(
            check(b"From: a@x.example\r\n\r\nhello\r\n.\r", false),
            Err(MailError::BareCarriageReturn { line: 4 })
        );
        let long = format!("From: a@x.example\r\n\r\n{}\r\n{}\r\n", "a".repeat(998), "b".repeat(999));
        assert_eq!(check(long.as_bytes(), false), Err(MailError::LineTooLong { line: 4, length: 1001 }));
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
            split(&big, Arrival { size_limit: 10, ..ARRIVAL }).map(|_| ()),
            Err(MailError::TooBig { size: 100, limit: 10 })
        );
        let (fields, body) =
            split(b"Subject: one\r\n two\r\nFrom: a@x.example\r\n\r\nBody\r\n", ARRIVAL).expect("fine");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].value(), "one two");
        assert_eq!(body, b"Body\r\n");
    }
}
