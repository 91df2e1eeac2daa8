//! Pushing the platform's zone to an external primary with RFC 2136 dynamic updates signed
//! with TSIG (RFC 8945), for operators who serve the zone from their own DNS servers.
//!
//! The primary starts from `senderauth zone export` (or empty: the first push sends every
//! name). After that, every name the store's change log names is replaced at the primary by
//! what the zone holds now: its TXT and MX records deleted and the current ones added, in one update
//! per batch of names, so each update is all or nothing. How far the log has been pushed is
//! kept in the store, so a restart goes on where it stopped. Run it on one node.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{MX, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use senderauth_store::{Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::server::Follower;
use crate::zone::{Zone, ZoneSettings};

/// Names per update message.
const BATCH: usize = 200;

/// Where updates go and how they are signed.
#[derive(Clone)]
pub struct UpdateTarget {
    pub primary: SocketAddr,
    pub key_name: String,
    pub signer: TSigner,
}

impl std::fmt::Debug for UpdateTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UpdateTarget")
            .field("primary", &self.primary)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// Why an update did not go through.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    Setup(String),
    #[error("sending the update to {primary}: {source}")]
    Io { primary: SocketAddr, source: std::io::Error },
    #[error("the primary {primary} answered {code}{hint}")]
    Refused { primary: SocketAddr, code: ResponseCode, hint: &'static str },
    #[error("the primary's answer does not verify: {0}")]
    Answer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UpdateTarget {
    /// A target from the configuration: the key's name and its secret in base64 (HMAC-SHA256,
    /// as `keymgr -t NAME hmac-sha256` or `tsig-keygen` make it).
    pub fn new(primary: SocketAddr, key_name: &str, secret_base64: &str) -> Result<UpdateTarget, UpdateError> {
        use base64::Engine;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_base64.trim())
            .map_err(|_| UpdateError::Setup("dns_update_key_secret is not base64".to_string()))?;
        let name = Name::from_ascii(key_name)
            .map_err(|error| UpdateError::Setup(format!("dns_update_key_name {key_name:?} is not a name: {error}")))?;
        let signer = TSigner::new(secret, TsigAlgorithm::HmacSha256, name, 300)
            .map_err(|error| UpdateError::Setup(format!("the TSIG key cannot be used: {error}")))?;
        Ok(UpdateTarget { primary, key_name: key_name.to_string(), signer })
    }

    /// The name progress is kept under.
    fn progress_key(&self) -> String {
        format!("rfc2136:{}:{}", self.primary, self.key_name)
    }
}

/// The update that makes `names` at the primary what `zone` holds, for the zone `apex`.
pub fn update_message(zone: &Zone, apex: &str, names: &[String]) -> Result<Message, UpdateError> {
    let fqdn = |name: &str| {
        Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|error| UpdateError::Setup(format!("{name} is not a name: {error}")))
    };
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    let mut zone_query = Query::query(fqdn(apex)?, RecordType::SOA);
    zone_query.set_query_class(DNSClass::IN);
    message.add_zone(zone_query);
    for name in names {
        let owner = fqdn(name)?;
        // Delete the RRset (RFC 2136 2.5.2: class ANY, TTL 0, no data), then add what is there now.
        for kind in [RecordType::TXT, RecordType::MX] {
            let mut delete = Record::update0(owner.clone(), 0, kind);
            delete.dns_class = DNSClass::ANY;
            message.add_update(delete);
        }
        for text in zone.texts(name) {
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
            message.add_update(Record::from_rdata(owner.clone(), zone.ttl(), RData::TXT(TXT::from_bytes(chunks))));
        }
        for (preference, host) in zone.exchanges(name) {
            let exchange = fqdn(&host)?;
            message.add_update(Record::from_rdata(owner.clone(), zone.ttl(), RData::MX(MX::new(preference, exchange))));
        }
    }
    Ok(message)
}

fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u16::from_be_bytes(bytes)
}

/// Signs `message` with the target's key, sends it over TCP and checks the signed answer.
pub async fn send(target: &UpdateTarget, mut message: Message) -> Result<(), UpdateError> {
    let primary = target.primary;
    let io = |source| UpdateError::Io { primary, source };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let verifier = message
        .finalize(&target.signer, now)
        .map_err(|error| UpdateError::Setup(format!("signing the update: {error}")))?;
    let bytes = message.to_vec().map_err(|error| UpdateError::Setup(format!("encoding the update: {error}")))?;
    let length = u16::try_from(bytes.len()).map_err(|_| UpdateError::Setup("the update is too large".to_string()))?;
    let exchange = async {
        let mut stream = TcpStream::connect(primary).await.map_err(io)?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.map_err(io)?;
        let mut size = [0u8; 2];
        stream.read_exact(&mut size).await.map_err(io)?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(size))];
        stream.read_exact(&mut answer).await.map_err(io)?;
        Ok::<_, UpdateError>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| io(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s")))??;
    let response = Message::from_vec(&answer).map_err(|error| UpdateError::Answer(error.to_string()))?;
    let code = response.metadata.response_code;
    if code != ResponseCode::NoError {
        let hint = match code {
            ResponseCode::NotAuth => ": it does not accept the TSIG key (name, secret or algorithm)",
            ResponseCode::Refused => ": updates are not allowed for this key or zone (its ACL)",
            ResponseCode::NotZone => ": a name is outside the zone",
            _ => "",
        };
        return Err(UpdateError::Refused { primary, code, hint });
    }
    if let Some(mut verifier) = verifier {
        verifier.verify(&answer).map_err(|error| UpdateError::Answer(format!("its TSIG: {error}")))?;
    }
    Ok(())
}

/// Pushes `names` in batches, one zone apex at a time.
async fn push(
    target: &UpdateTarget,
    zone: &Zone,
    settings: &ZoneSettings,
    names: &[String],
) -> Result<(), UpdateError> {
    for apex in &settings.apexes {
        let inside: Vec<String> =
            names.iter().filter(|name| zone.apex_of(name) == Some(apex.as_str())).cloned().collect();
        for batch in inside.chunks(BATCH) {
            send(target, update_message(zone, apex, batch)?).await?;
        }
    }
    Ok(())
}

/// Pushes the zone's changes to `target` until `stopped` turns true: everything on the first
/// run, then each change as the store logs it. Failures are logged and retried.
pub async fn push_changes(
    store: Store,
    settings: ZoneSettings,
    target: UpdateTarget,
    mut stopped: watch::Receiver<bool>,
) {
    let key = target.progress_key();
    let mut pending: Vec<String> = Vec::new();
    let mut started: Option<(Zone, Follower)> = None;
    loop {
        let result: Result<(), UpdateError> = async {
            let (zone, follower) = match &mut started {
                Some(state) => state,
                None => {
                    let zone = Zone::load(settings.clone(), &store).await?;
                    let last_change = zone.last_change();
                    let follower = match store.push_progress(&key).await? {
                        Some(applied) => Follower::new(applied),
                        None => {
                            // Never pushed: send every name once.
                            push(&target, &zone, &settings, &zone.names()).await?;
                            store.save_push_progress(&key, last_change).await?;
                            tracing::info!(primary = %target.primary, names = zone.len(), "pushed the whole zone");
                            Follower::new(last_change)
                        }
                    };
                    started.insert((zone, follower))
                }
            };
            for (name, now) in follower.poll(&store).await? {
                zone.replace(&name, &now);
                pending.push(name);
            }
            pending.sort();
            pending.dedup();
            if !pending.is_empty() {
                push(&target, zone, &settings, &pending).await?;
                tracing::debug!(primary = %target.primary, names = pending.len(), "pushed zone changes");
                pending.clear();
            }
            store.save_push_progress(&key, follower.applied()).await?;
            Ok(())
        }
        .await;
        let pause = match result {
            Ok(()) => Duration::from_millis(500),
            Err(error) => {
                tracing::warn!(%error, "pushing the zone to the primary; trying again in 5 s");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
    }
}
