//! Bounces. The token each relayed message carries in its envelope sender
//! (`b+<account>.<token>@...`), so a bounce finds its message: the domain it was sent for, when,
//! and a tag under the platform's master key. A token is checked, not looked up: the gateway
//! writes nothing per message, and the bounce listener takes RCPT only for tokens the platform
//! issued. Then the bounces taken in (read by `senderauth_reports::bounce`, stored per
//! recipient, announced as `message.bounced`), and read back: a domain's, a message's fate, the
//! causes.

use serde::Serialize;

use senderauth_core::name::DomainName;
use senderauth_core::token::{fill_random, hex};
use senderauth_reports::bounce::BounceAction;
use senderauth_reports::{BounceKind, gzip, parse_bounce};
use senderauth_store::{BounceRecipient, BounceRecipientRecord, DomainRecord, NewBounce};

use crate::error::ServiceError;
use crate::keys::MasterKeys;
use crate::service::Service;

/// What the tag is for (the key it is made with is derived for this alone).
const PURPOSE: &str = "senderauth bounce token v1";

/// Bytes of tag kept: 64 bits, so a forged token is a 1 in 2^64 guess.
const TAG_BYTES: usize = 8;

/// The decoded part of a token: 8 bytes of domain id, 4 of issue time, 4 random, then the tag.
const BODY_BYTES: usize = 16;

/// A token the platform issued, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceToken {
    pub account_id: i64,
    /// The connected domain the message was signed as; 0 when it was sent as the variable
    /// domain (a From domain not connected, or not verified).
    pub domain_id: i64,
    /// When the message was relayed (Unix seconds).
    pub issued_at: i64,
    /// The token as it appears in the address (lowercase hex).
    pub text: String,
}

/// What the tag covers: the account and the token's body.
fn tagged(account_id: i64, body: &[u8]) -> Vec<u8> {
    let mut data = account_id.to_be_bytes().to_vec();
    data.extend_from_slice(body);
    data
}

/// A new token for a message of `account_id` signed as domain `domain_id` (0: the variable
/// domain) at `now`.
pub fn issue(master: &MasterKeys, account_id: i64, domain_id: i64, now: i64) -> Result<String, String> {
    let mut body = Vec::with_capacity(BODY_BYTES + TAG_BYTES);
    body.extend_from_slice(&domain_id.to_be_bytes());
    body.extend_from_slice(&u32::try_from(now.max(0)).unwrap_or(u32::MAX).to_be_bytes());
    let mut random = [0_u8; 4];
    fill_random(&mut random).map_err(|error| error.to_string())?;
    body.extend_from_slice(&random);
    let tag = master.tag(PURPOSE, &tagged(account_id, &body));
    body.extend_from_slice(tag.get(..TAG_BYTES).ok_or("no tag")?);
    Ok(hex(&body))
}

/// The token `text` of `account_id`, if the platform issued it.
pub fn read(master: &MasterKeys, account_id: i64, text: &str) -> Option<BounceToken> {
    let bytes = hex_bytes(text)?;
    if bytes.len() != BODY_BYTES + TAG_BYTES {
        return None;
    }
    let (body, tag) = bytes.split_at(BODY_BYTES);
    if !master.tag_matches(PURPOSE, &tagged(account_id, body), tag) {
        return None;
    }
    let domain_id = i64::from_be_bytes(body[..8].try_into().ok()?);
    let issued_at = i64::from(u32::from_be_bytes(body[8..12].try_into().ok()?));
    Some(BounceToken { account_id, domain_id, issued_at, text: text.to_ascii_lowercase() })
}

/// The envelope sender's local part for a token: `b+<account>.<token>`.
pub fn local_part(account_id: i64, token: &str) -> String {
    format!("b+{account_id}.{token}")
}

/// The account and token of a local part `b+<account>.<token>` (any case: some servers change
/// it), if it is one.
pub fn parse_local_part(local: &str) -> Option<(i64, &str)> {
    let rest = local.strip_prefix("b+").or_else(|| local.strip_prefix("B+"))?;
    let (account, token) = rest.split_once('.')?;
    let account = account.parse::<i64>().ok().filter(|account| *account > 0)?;
    Some((account, token))
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok()).collect()
}

/// The address of a bounce the listener takes: whose token, for which domain.
#[derive(Clone, Debug)]
pub struct BounceAddress {
    pub token: BounceToken,
    /// The connected domain the message was signed as, if it still is connected.
    pub domain: Option<DomainRecord>,
}

/// What became of a bounce taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TakenBounce {
    /// Read: this many recipients failed or were delayed (0: a notification of success).
    Read { recipients: usize, hard: usize },
    /// Kept as received with the reason it did not read.
    Unreadable { reason: String },
}

/// One bounced recipient, as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BouncedRecipientView {
    pub id: i64,
    /// The token of the message it bounced (`GET /api/v1/messages/{token}`).
    pub token: String,
    pub received_at: i64,
    pub address: String,
    /// `failed` or `delayed`.
    pub action: String,
    /// `hard` (permanent) or `soft` (temporary).
    pub kind: String,
    /// The RFC 3463 enhanced status code.
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    /// The remote server's reply or the reporting server's reason.
    pub diagnostic: Option<String>,
}

impl From<&BounceRecipientRecord> for BouncedRecipientView {
    fn from(record: &BounceRecipientRecord) -> BouncedRecipientView {
        let recipient = record.recipient.clone();
        BouncedRecipientView {
            id: record.id,
            token: record.token.clone(),
            received_at: record.received_at,
            address: recipient.address,
            action: recipient.action,
            kind: recipient.kind,
            status: recipient.status,
            remote_mta: recipient.remote_mta,
            diagnostic: recipient.diagnostic,
        }
    }
}

/// A page of a domain's bounced recipients, newest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BounceList {
    pub bounces: Vec<BouncedRecipientView>,
    /// The `before` of the next page; null on the last.
    pub next: Option<i64>,
}

/// One bounce of a message.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BounceView {
    pub received_at: i64,
    /// How it read (`postfix`, `exim`, `microsoft`, `rfc3464`, ...); null when it did not.
    pub format: Option<String>,
    pub reporting_mta: Option<String>,
    /// Why it did not read (it is kept as received).
    pub problem: Option<String>,
    pub recipients: Vec<BouncedRecipientView>,
}

/// What became of a message, as far as bounces tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Nothing came back.
    NoBounce,
    /// Only delay notices so far.
    Delayed,
    /// A recipient failed.
    Bounced,
}

/// What is known of a message by its token.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageFate {
    pub token: String,
    /// The connected domain it was signed as; null for the variable domain (or a domain
    /// removed since).
    pub domain: Option<String>,
    /// When it was relayed.
    pub issued_at: i64,
    pub fate: Fate,
    pub bounces: Vec<BounceView>,
}

/// Recipients bounced for one cause, for the domain's page.
#[derive(Clone, Debug, Serialize)]
pub struct BounceCauseView {
    pub kind: String,
    pub status: Option<String>,
    /// What the status code means, in plain words.
    pub meaning: &'static str,
    pub recipients: i64,
    pub last_at: i64,
    pub diagnostic: Option<String>,
}

/// What a `message.bounced` event says beside the domain and account.
#[derive(Serialize)]
struct BouncedEvent<'a> {
    token: &'a str,
    issued_at: i64,
    recipients: Vec<BouncedEventRecipient<'a>>,
}

#[derive(Serialize)]
struct BouncedEventRecipient<'a> {
    address: &'a str,
    action: &'static str,
    kind: &'static str,
    status: Option<&'a str>,
    diagnostic: Option<&'a str>,
}

/// The most recipients a `message.bounced` event lists.
const EVENT_RECIPIENTS: usize = 100;

/// The most bytes of an unreadable bounce kept (gzip-compressed).
const KEPT_UNREADABLE: usize = 1024 * 1024;

impl Service {
    /// Whether the bounce listener takes mail for `address`: a token the platform issued, on
    /// `bounce_domain` or on the return-path host of the domain the token was issued for.
    pub async fn bounce_address(
        &self,
        address: &str,
        bounce_domain: &str,
    ) -> Result<Option<BounceAddress>, ServiceError> {
        let Some((local, host)) = address.rsplit_once('@') else { return Ok(None) };
        let Some((account_id, text)) = parse_local_part(local) else { return Ok(None) };
        let Some(token) = read(&self.keys.master, account_id, text) else { return Ok(None) };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let domain = match token.domain_id {
            0 => None,
            id => self.worker.store.domain_by_id(account_id, id).await?,
        };
        let on_return_path = domain.as_ref().is_some_and(|record| {
            DomainName::parse(&record.domain)
                .is_ok_and(|name| self.worker.provider.return_path_host(&account_id.to_string(), &name) == host)
        });
        let on_bounce_domain = host == bounce_domain.trim_end_matches('.').to_ascii_lowercase();
        Ok((on_bounce_domain || on_return_path).then_some(BounceAddress { token, domain }))
    }

    /// Stores a bounce that came back to `address`: its recipients when it reads, else the
    /// message as received with the reason. Returns only once it is stored.
    pub async fn take_bounce(&self, address: &BounceAddress, message: &[u8]) -> Result<TakenBounce, ServiceError> {
        let token = &address.token;
        let mut bounce = NewBounce {
            account_id: token.account_id,
            domain_id: address.domain.as_ref().map(|record| record.id),
            token: token.text.clone(),
            issued_at: token.issued_at,
            received_at: self.now(),
            ..NewBounce::default()
        };
        let taken = match parse_bounce(message) {
            Ok(read) => {
                bounce.format = Some(read.format.as_str().to_string());
                bounce.reporting_mta = read.reporting_mta.clone();
                bounce.original_message_id = read.original_message_id.clone();
                bounce.recipients = read
                    .recipients
                    .iter()
                    .map(|recipient| BounceRecipient {
                        address: recipient.address.clone(),
                        action: recipient.action.as_str().to_string(),
                        kind: recipient.kind.as_str().to_string(),
                        status: recipient.status.clone(),
                        remote_mta: recipient.remote_mta.clone(),
                        diagnostic: recipient.diagnostic.clone(),
                    })
                    .collect();
                if !read.recipients.is_empty() {
                    let event = BouncedEvent {
                        token: &token.text,
                        issued_at: token.issued_at,
                        recipients: read
                            .recipients
                            .iter()
                            .take(EVENT_RECIPIENTS)
                            .map(|recipient| BouncedEventRecipient {
                                address: &recipient.address,
                                action: recipient.action.as_str(),
                                kind: recipient.kind.as_str(),
                                status: recipient.status.as_deref(),
                                diagnostic: recipient.diagnostic.as_deref(),
                            })
                            .collect(),
                    };
                    bounce.event_json = serde_json::to_string(&event).ok();
                }
                let hard = read.recipients.iter().filter(|recipient| recipient.kind == BounceKind::Hard).count();
                TakenBounce::Read { recipients: read.recipients.len(), hard }
            }
            Err(error) => {
                let reason = error.to_string();
                bounce.problem = Some(reason.clone());
                bounce.raw_gzip = Some(gzip(&message[..message.len().min(KEPT_UNREADABLE * 8)]));
                TakenBounce::Unreadable { reason }
            }
        };
        self.store_bounce(bounce).await?;
        self.worker.metrics.record_bounce(&taken);
        Ok(taken)
    }

    /// Stores a bounce through the bounce writer: bounces that arrive while a batch is written
    /// are written together in the next transaction (on SQLite's one writer, a transaction per
    /// bounce was most of a bounce's cost). Returns once this one is committed.
    async fn store_bounce(&self, bounce: NewBounce) -> Result<i64, ServiceError> {
        let writer = self.bounce_writer.get_or_init(|| {
            let (sender, receiver) = tokio::sync::mpsc::channel(BOUNCE_QUEUE);
            tokio::spawn(write_bounces(self.worker.store.clone(), receiver));
            sender
        });
        let (done, written) = tokio::sync::oneshot::channel();
        writer
            .send((bounce, done))
            .await
            .map_err(|_| ServiceError::Internal("the bounce writer has stopped".to_string()))?;
        written
            .await
            .map_err(|_| ServiceError::Internal("the bounce writer has stopped".to_string()))?
            .map_err(ServiceError::Internal)
    }

    /// A page of a domain's bounced recipients, newest first, optionally of one kind (`hard`,
    /// `soft`) and status code, before recipient id `before`.
    pub async fn domain_bounces(
        &self,
        account: i64,
        name: &str,
        kind: Option<&str>,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<BounceList, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        if let Some(kind) = kind
            && BounceKind::parse(kind).is_none()
        {
            return Err(ServiceError::InvalidBounceFilter(format!("kind={kind:?}: use hard or soft")));
        }
        if let Some(status) = status
            && !senderauth_reports::bounce::is_enhanced(status)
        {
            return Err(ServiceError::InvalidBounceFilter(format!(
                "status={status:?}: give an enhanced status code like 5.1.1"
            )));
        }
        let records = self.worker.store.domain_bounces(record.id, kind, status, before, limit + 1).await?;
        let more = records.len() as i64 > limit;
        let bounces: Vec<BouncedRecipientView> =
            records.iter().take(usize::try_from(limit).unwrap_or(0)).map(BouncedRecipientView::from).collect();
        let next = if more { bounces.last().map(|last| last.id) } else { None };
        Ok(BounceList { bounces, next })
    }

    /// What became of the account's message with `token`: 404 for a token it did not issue (or
    /// another account's).
    pub async fn message_fate(&self, account: i64, token: &str) -> Result<MessageFate, ServiceError> {
        let token =
            read(&self.keys.master, account, token).ok_or_else(|| ServiceError::MessageNotFound(token.to_string()))?;
        let domain = match token.domain_id {
            0 => None,
            id => self.worker.store.domain_by_id(account, id).await?.map(|record| record.domain),
        };
        let bounces: Vec<BounceView> = self
            .worker
            .store
            .token_bounces(account, &token.text)
            .await?
            .iter()
            .map(|(bounce, recipients)| BounceView {
                received_at: bounce.received_at,
                format: bounce.format.clone(),
                reporting_mta: bounce.reporting_mta.clone(),
                problem: bounce.problem.clone(),
                recipients: recipients.iter().map(BouncedRecipientView::from).collect(),
            })
            .collect();
        let recipients = || bounces.iter().flat_map(|bounce| &bounce.recipients);
        let fate = if recipients().any(|recipient| recipient.action == BounceAction::Failed.as_str()) {
            Fate::Bounced
        } else if recipients().next().is_some() {
            Fate::Delayed
        } else {
            Fate::NoBounce
        };
        Ok(MessageFate { token: token.text, domain, issued_at: token.issued_at, fate, bounces })
    }

    /// A domain's bounces of the last `days` days, grouped by cause, the most frequent first.
    pub async fn bounce_causes(
        &self,
        account: i64,
        name: &str,
        days: i64,
    ) -> Result<Vec<BounceCauseView>, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        let since = self.now() - days * 86_400;
        let causes = self.worker.store.bounce_causes(record.id, since, 20).await?;
        Ok(causes
            .into_iter()
            .map(|cause| BounceCauseView {
                kind: cause.kind,
                meaning: senderauth_reports::bounce::status_meaning(cause.status.as_deref().unwrap_or_default()),
                status: cause.status,
                recipients: cause.recipients,
                last_at: cause.last_at,
                diagnostic: cause.diagnostic,
            })
            .collect())
    }
}

/// Bounces waiting for the writer at most; a session waits for room past this.
const BOUNCE_QUEUE: usize = 1024;
/// Bounces written in one transaction at most.
const BOUNCE_BATCH: usize = 64;

/// A bounce to write and where to say it is written (its id) or why not.
pub(crate) type PendingBounce = (NewBounce, tokio::sync::oneshot::Sender<Result<i64, String>>);

/// The bounce writer: takes what is waiting (at least one), writes it in one transaction, tells
/// each sender, and goes on until every sender is gone.
async fn write_bounces(store: senderauth_store::Store, mut pending: tokio::sync::mpsc::Receiver<PendingBounce>) {
    let mut batch = Vec::with_capacity(BOUNCE_BATCH);
    while pending.recv_many(&mut batch, BOUNCE_BATCH).await > 0 {
        let (bounces, senders): (Vec<NewBounce>, Vec<_>) = batch.drain(..).unzip();
        match store.add_bounces(&bounces).await {
            Ok(ids) => {
                for (sender, id) in senders.into_iter().zip(ids) {
                    let _ = sender.send(Ok(id));
                }
            }
            Err(error) => {
                tracing::error!(%error, bounces = bounces.len(), "bounces not stored; their senders get a 451");
                for sender in senders {
                    let _ = sender.send(Err(error.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> MasterKeys {
        MasterKeys::parse(text, "test").expect("keys")
    }

    #[test]
    fn a_token_reads_back_only_for_its_account_and_unaltered() {
        let master = keys("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        let token = issue(&master, 42, 7, 1_700_000_000).expect("token");
        assert_eq!(token.len(), 48);
        let read_back = read(&master, 42, &token.to_ascii_uppercase()).expect("its own");
        assert_eq!((read_back.domain_id, read_back.issued_at, read_back.text), (7, 1_700_000_000, token.clone()));
        assert_eq!(read(&master, 43, &token), None, "another account's");
        let mut altered = token.clone().into_bytes();
        altered[0] = if altered[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(read(&master, 42, &String::from_utf8(altered).expect("hex")), None, "a changed domain id");
        assert_eq!(read(&master, 42, &token[..40]), None, "too short");
        assert_eq!(read(&master, 42, "zz"), None);
        // Another platform's master key: not ours. After a new key takes over: still ours.
        let other = keys("k9:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n");
        assert_eq!(read(&other, 42, &token), None);
        let rotated =
            keys("k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
        assert!(read(&rotated, 42, &token).is_some());
        assert_eq!(parse_local_part(&local_part(42, &token)), Some((42, token.as_str())));
        assert_eq!(parse_local_part("postmaster"), None);
        assert_eq!(parse_local_part("b+0.abc"), None);
    }
}
