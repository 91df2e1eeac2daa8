//! The one way the core asks DNS: a thin layer over hickory-resolver's name-server pool that
//! keeps a definitive "no such record" apart from a temporary failure. With one configured
//! nameserver, UDP questions skip the pool and go to `transport`'s sockets directly.
//!
//! hickory's `Resolver` wraps that pool in a caching client; measured on the bulk benchmark,
//! the caching client cost about a quarter of all CPU, so this layer does the two things it is
//! needed for itself: a small TTL cache of definitive answers, and following a CNAME that an
//! authoritative server returns without the records at its target.

mod burst;
mod transport;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::xfer::{DnsHandle, RetryDnsHandle};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::system_conf::read_system_conf;
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use serde::Serialize;

/// How to reach DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverSettings {
    /// A nameserver `IP:PORT` to send every query to; `None` uses the system's resolvers.
    pub nameserver: Option<SocketAddr>,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times to send a query before calling it a temporary failure.
    pub attempts: usize,
    /// Whether answers may be cached (within their TTL) between lookups.
    pub cache: bool,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings { nameserver: None, timeout: Duration::from_secs(3), attempts: 2, cache: true }
    }
}

/// Why a lookup has no answer that can be trusted right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("temporary DNS failure for {name} {record_type}: {reason}")]
pub struct TemporaryFailure {
    pub name: String,
    pub record_type: String,
    pub reason: String,
}

/// A definitive answer to one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    Records(Vec<T>),
    /// The name exists but has no records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

impl<T> Answer<T> {
    /// The records, empty for NODATA and NXDOMAIN.
    pub fn records(self) -> Vec<T> {
        match self {
            Answer::Records(records) => records,
            Answer::NoData | Answer::NxDomain => Vec::new(),
        }
    }

    /// The records, borrowed; empty for NODATA and NXDOMAIN.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Answer::Records(records) => records,
            Answer::NoData | Answer::NxDomain => &[],
        }
    }

    /// RFC 7208 section 4.6.4: a void lookup is one that returns no records.
    pub fn is_void(&self) -> bool {
        match self {
            Answer::Records(records) => records.is_empty(),
            Answer::NoData | Answer::NxDomain => true,
        }
    }
}

/// The result of one lookup.
pub type LookupResult<T> = Result<Answer<T>, TemporaryFailure>;

/// Could not build a resolver at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct ResolverSetupError(String);

/// Answers had or being asked for within one check, by name and type: parts of a check that
/// ask the same question at the same time wait for one query.
type Memo = Arc<Mutex<FastMap<(String, RecordType), Arc<tokio::sync::OnceCell<SharedResult>>>>>;

/// A hash map with a fast, randomly seeded hash (foldhash) instead of SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// An answer shared by the cache, a check's memo and every part of the check that asks.
type SharedResult = Result<Arc<Answer<RData>>, TemporaryFailure>;

/// Cached answers are kept at most this long, whatever their TTL, so a record a customer has
/// just added is seen soon.
const MAX_POSITIVE_TTL: Duration = Duration::from_secs(300);
const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Past this many entries the cache starts over.
const MAX_CACHE_ENTRIES: usize = 50_000;
/// CNAMEs followed for one question.
const MAX_CNAME_HOPS: usize = 8;

/// When a cached answer expires, and the answer.
type CacheEntry = (Instant, Arc<Answer<RData>>);

/// Definitive answers by name and type, with when they expire. Temporary failures are never
/// cached.
#[derive(Default)]
struct Cache {
    entries: FastMap<(String, RecordType), CacheEntry>,
}

/// A DNS client. Cheap to clone; clones share the connections, the cache and the query counter.
#[derive(Clone)]
pub struct Dns {
    client: RetryDnsHandle<NameServerPool<transport::PooledUdpProvider>>,
    /// With one configured nameserver, UDP queries go to it directly over pooled sockets, and
    /// `client` (hickory's server pool and retry layers, about 8% of a bulk check's CPU) takes
    /// only what UDP cannot answer: a truncated answer (then TCP) or an error.
    direct: Option<Arc<transport::UdpPool>>,
    /// Set by [`Dns::bursting`]: UDP questions share one socket and go out in bursts.
    burst: Option<Arc<burst::BurstUdp>>,
    /// Times a question is sent directly before it counts as unanswered.
    attempts: usize,
    request_options: DnsRequestOptions,
    cache: Option<Arc<Mutex<Cache>>>,
    queries: Arc<AtomicU64>,
    /// Set on a client made by [`Dns::scoped`].
    memo: Option<Memo>,
    /// Set on a client made by [`Dns::fresh`]: the cache is not read (answers still go in).
    fresh: bool,
}

/// One response's records with the time they may be kept.
struct Response {
    answer: Answer<RData>,
    ttl: Duration,
}

impl Dns {
    /// Builds a client from settings. Must be called inside a Tokio runtime.
    pub fn new(settings: &ResolverSettings) -> Result<Dns, ResolverSetupError> {
        let config = match settings.nameserver {
            Some(address) => {
                let mut server = NameServerConfig::udp_and_tcp(address.ip());
                for connection in &mut server.connections {
                    connection.port = address.port();
                }
                server.trust_negative_responses = true;
                ResolverConfig::from_name_servers(vec![server])
            }
            None => {
                read_system_conf()
                    .map_err(|error| ResolverSetupError(format!("reading the system resolver configuration: {error}")))?
                    .0
            }
        };
        let mut options = ResolverOpts::default();
        options.timeout = settings.timeout;
        options.attempts = settings.attempts.max(1);
        options.edns0 = true;
        options.try_tcp_on_error = true;
        options.num_concurrent_reqs = 1;
        // In-flight queries per TCP connection; past it hickory answers "busy", which would
        // surface as a temporary failure during bulk checks.
        options.max_active_requests = 1024;
        let mut request_options = DnsRequestOptions::default();
        request_options.use_edns = options.edns0;
        request_options.edns_payload_len = options.edns_payload_len;
        request_options.recursion_desired = options.recursion_desired;
        let attempts = options.attempts;
        let tls = TlsConfig::new().map_err(|error| ResolverSetupError(error.to_string()))?;
        let context = Arc::new(PoolContext::new(options, tls));
        let pool = NameServerPool::from_config(
            config.name_servers().to_vec(),
            context,
            transport::PooledUdpProvider::default(),
        );
        let direct = settings.nameserver.map(|address| Arc::new(transport::UdpPool::new(address, settings.timeout)));
        Ok(Dns {
            client: RetryDnsHandle::new(pool, attempts),
            direct,
            burst: None,
            attempts,
            request_options,
            cache: settings.cache.then(Arc::default),
            queries: Arc::new(AtomicU64::new(0)),
            memo: None,
            fresh: false,
        })
    }

    /// A client for bulk checks on one thread's runtime (which must be the current one): with
    /// one configured nameserver, its UDP questions share one socket and are sent in bursts, so
    /// the server wakes once per burst instead of once per query (see `burst.rs`).
    pub fn bursting(self) -> std::io::Result<Dns> {
        let Some(direct) = &self.direct else { return Ok(self) };
        let burst = burst::BurstUdp::connect(direct.server(), direct.timeout())?;
        Ok(Dns { burst: Some(Arc::new(burst)), ..self })
    }

    /// A client for one check: each question is asked once, and every part of the check sees
    /// the same answer (SPF asks for the same records in its tree walk and in each evaluation).
    pub fn scoped(&self) -> Dns {
        Dns { memo: Some(Arc::default()), ..self.clone() }
    }

    /// A client that asks the nameserver again instead of reading the cache: a check the
    /// customer asked for (Verify, after changing a record) sees DNS as it is now.
    pub fn fresh(&self) -> Dns {
        Dns { fresh: true, ..self.clone() }
    }

    /// How many queries this client (and its clones) has sent; answers from the cache or from a
    /// check's memo are not counted.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// An answer from the check's memo, the cache or the nameserver.
    ///
    /// The query's own future (`resolve`, 1.2 KB) is boxed: every caller, up to a whole domain's
    /// check, holds a lookup's future in its own, and a future is moved when it is called. In
    /// the bulk benchmark memmove was 5% of the run; boxed, a domain's check future went from
    /// 15 KB to 5.5 KB, and the check threads' CPU time fell by about 4%.
    async fn lookup(&self, name: &str, record_type: RecordType) -> SharedResult {
        let resolve = || Box::pin(self.resolve(name, record_type));
        let Some(memo) = &self.memo else { return resolve().await };
        let key = (crate::name::normalize(name), record_type);
        let cell = memo.lock().ok().map(|mut memo| memo.entry(key).or_default().clone());
        match cell {
            Some(cell) => cell.get_or_init(resolve).await.clone(),
            None => resolve().await,
        }
    }

    /// An answer from the cache, or asked and then cached.
    async fn resolve(&self, name: &str, record_type: RecordType) -> SharedResult {
        let Some(cache) = &self.cache else {
            return self.resolve_uncached(name, record_type).await.map(|response| Arc::new(response.answer));
        };
        let key = (crate::name::normalize(name), record_type);
        if !self.fresh
            && let Ok(cache) = cache.lock()
            && let Some((expires, answer)) = cache.entries.get(&key)
            && *expires > Instant::now()
        {
            return Ok(answer.clone());
        }
        let response = self.resolve_uncached(name, record_type).await?;
        let answer = Arc::new(response.answer);
        if let Ok(mut cache) = cache.lock() {
            if cache.entries.len() >= MAX_CACHE_ENTRIES {
                cache.entries.clear();
            }
            cache.entries.insert(key, (Instant::now() + response.ttl, answer.clone()));
        }
        Ok(answer)
    }

    /// Asks, following CNAMEs whose targets' records the server did not include.
    async fn resolve_uncached(&self, name: &str, record_type: RecordType) -> Result<Response, TemporaryFailure> {
        let failure =
            |reason: String| TemporaryFailure { name: name.to_string(), record_type: record_type.to_string(), reason };
        // A name DNS cannot carry (a label over 63 octets, say) has no records.
        let Some(mut current) = to_dns_name(name) else {
            return Ok(Response { answer: Answer::NxDomain, ttl: MAX_NEGATIVE_TTL });
        };
        let mut chain: Vec<RData> = Vec::new();
        let mut ttl = MAX_POSITIVE_TTL;
        for _ in 0..MAX_CNAME_HOPS {
            let response = self.ask(current.clone(), record_type).await.map_err(failure)?;
            ttl = ttl.min(response.ttl);
            let records = match response.answer {
                Answer::Records(records) => records,
                // The chain so far is the answer when its end has nothing of the type.
                negative if chain.is_empty() => return Ok(Response { answer: negative, ttl }),
                _ => return Ok(Response { answer: Answer::Records(chain), ttl }),
            };
            let has_type = records.iter().any(|data| data.record_type() == record_type);
            let next = records.iter().rev().find_map(|data| match data {
                RData::CNAME(target) => Some(target.0.clone()),
                _ => None,
            });
            chain.extend(records);
            match next {
                Some(target) if !has_type && record_type != RecordType::CNAME => current = target,
                _ => return Ok(Response { answer: Answer::Records(chain), ttl }),
            }
        }
        Ok(Response { answer: Answer::Records(chain), ttl })
    }

    /// One question to the name servers, with its answer's TTL.
    async fn ask(&self, name: Name, record_type: RecordType) -> Result<Response, String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let query = Query::query(name, record_type);
        let mut answered = None;
        if let Some(direct) = &self.direct {
            let mut options = self.request_options;
            // Answers to a burst socket are told apart by ID and the question's letter case.
            options.case_randomization = self.burst.is_some();
            let request = DnsRequest::from_query(query.clone(), options);
            for _ in 0..self.attempts {
                let exchanged = match &self.burst {
                    Some(burst) => burst.exchange(&request).await,
                    // Boxed: its state (816 bytes) is three times the burst's, and inline it made
                    // every query's future that much bigger (`ask` 1,480 bytes, boxed 920).
                    None => Box::pin(direct.exchange(&request)).await,
                };
                let result = match exchanged {
                    Ok(response) if !response.truncation => DnsError::from_response(response).map_err(NetError::from),
                    Err(NetError::Timeout) => Err(NetError::Timeout),
                    // Truncated, or the socket failed: hickory's pool asks again (over TCP).
                    Ok(_) | Err(_) => {
                        answered = None;
                        break;
                    }
                };
                // No answer, or a server failure (SERVFAIL, REFUSED): asked again, as hickory's
                // retry layer does.
                let again = matches!(result, Err(NetError::Timeout | NetError::Dns(DnsError::ResponseCode(_))));
                answered = Some(result);
                if !again {
                    break;
                }
            }
        }
        let answered = match answered {
            Some(answered) => Some(answered),
            None => self.client.lookup(query, self.request_options).next().await,
        };
        match answered {
            // Every answer record is kept, the CNAME chain included; the typed accessors pick
            // what they need.
            Some(Ok(response)) => {
                let ttl = response.answers.iter().map(|record| record.ttl).min().unwrap_or(0);
                let records: Vec<RData> =
                    response.into_message().answers.into_iter().map(|record| record.data).collect();
                let answer = if records.is_empty() { Answer::NoData } else { Answer::Records(records) };
                Ok(Response { answer, ttl: Duration::from_secs(u64::from(ttl)).min(MAX_POSITIVE_TTL) })
            }
            Some(Err(NetError::Dns(DnsError::NoRecordsFound(no_records)))) => {
                let ttl = Duration::from_secs(u64::from(no_records.negative_ttl.unwrap_or(0))).min(MAX_NEGATIVE_TTL);
                match no_records.response_code {
                    ResponseCode::NXDomain => Ok(Response { answer: Answer::NxDomain, ttl }),
                    ResponseCode::NoError => Ok(Response { answer: Answer::NoData, ttl }),
                    other => Err(format!("server answered {other}")),
                }
            }
            Some(Err(NetError::Dns(DnsError::ResponseCode(code)))) => Err(format!("server answered {code}")),
            Some(Err(NetError::Timeout)) | None => Err("no answer before the timeout".to_string()),
            Some(Err(NetError::NoConnections)) => {
                Err("no nameserver could be reached (refused or unreachable); is it running?".to_string())
            }
            Some(Err(other)) => Err(other.to_string()),
        }
    }

    /// TXT records, each one's strings joined (RFC 7208 section 3.3), as raw bytes.
    pub async fn txt(&self, name: &str) -> LookupResult<Vec<u8>> {
        Ok(self.txt_and_cname(name).await?.1)
    }

    /// TXT records at a name, with the target of the CNAME the name is, if it is one. One query:
    /// resolvers return the CNAME chain along with the records at its end.
    pub async fn txt_and_cname(&self, name: &str) -> Result<(Option<String>, Answer<Vec<u8>>), TemporaryFailure> {
        let answer = self.lookup(name, RecordType::TXT).await?;
        let cname = answer.as_slice().iter().find_map(|data| match data {
            RData::CNAME(cname) => Some(name_to_string(&cname.0)),
            _ => None,
        });
        let txt = map_shared(&answer, |data| match data {
            RData::TXT(txt) => Some(txt.txt_data.iter().flat_map(|part| part.iter().copied()).collect()),
            _ => None,
        });
        Ok((cname, txt))
    }

    pub async fn a(&self, name: &str) -> LookupResult<Ipv4Addr> {
        Ok(map_shared(&*self.lookup(name, RecordType::A).await?, |data| match data {
            RData::A(address) => Some(address.0),
            _ => None,
        }))
    }

    pub async fn aaaa(&self, name: &str) -> LookupResult<Ipv6Addr> {
        Ok(map_shared(&*self.lookup(name, RecordType::AAAA).await?, |data| match data {
            RData::AAAA(address) => Some(address.0),
            _ => None,
        }))
    }

    /// A or AAAA records of a name, depending on the address family wanted.
    pub async fn addresses(&self, name: &str, ipv6: bool) -> LookupResult<IpAddr> {
        if ipv6 {
            Ok(map_records(self.aaaa(name).await?, |address| Some(IpAddr::V6(address))))
        } else {
            Ok(map_records(self.a(name).await?, |address| Some(IpAddr::V4(address))))
        }
    }

    /// MX exchange host names, normalized.
    pub async fn mx(&self, name: &str) -> LookupResult<String> {
        Ok(map_shared(&*self.lookup(name, RecordType::MX).await?, |data| match data {
            RData::MX(mx) => Some(name_to_string(&mx.exchange)),
            _ => None,
        }))
    }

    /// PTR names for an address, normalized.
    pub async fn ptr(&self, address: IpAddr) -> LookupResult<String> {
        let reverse = reverse_name(address);
        Ok(map_shared(&*self.lookup(&reverse, RecordType::PTR).await?, |data| match data {
            RData::PTR(ptr) => Some(name_to_string(&ptr.0)),
            _ => None,
        }))
    }

    /// The nameservers of a zone, normalized.
    pub async fn ns(&self, name: &str) -> LookupResult<String> {
        Ok(map_shared(&*self.lookup(name, RecordType::NS).await?, |data| match data {
            RData::NS(ns) => Some(name_to_string(&ns.0)),
            _ => None,
        }))
    }

    /// The CNAME target of a name, normalized, if it has one.
    pub async fn cname(&self, name: &str) -> LookupResult<String> {
        Ok(map_shared(&*self.lookup(name, RecordType::CNAME).await?, |data| match data {
            RData::CNAME(cname) => Some(name_to_string(&cname.0)),
            _ => None,
        }))
    }
}

/// A fully qualified DNS name from text. Labels are taken as raw octets, so names that SPF
/// macros produce (with `%`, `:` or spaces in them) can still be asked for.
fn to_dns_name(name: &str) -> Option<Name> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.split('.').any(|label| label.is_empty() || label.len() > 63) {
        return None;
    }
    let mut fqdn = Name::from_labels(name.split('.').map(str::as_bytes)).ok()?;
    fqdn.set_fqdn(true);
    Some(fqdn)
}

/// A name from DNS as lowercase text, labels joined by dots, no trailing dot.
fn name_to_string(name: &Name) -> String {
    let labels: Vec<String> = name.iter().map(|label| String::from_utf8_lossy(label).to_ascii_lowercase()).collect();
    labels.join(".")
}

/// The records of a shared answer converted, keeping NODATA and NXDOMAIN as they are.
fn map_shared<U>(answer: &Answer<RData>, convert: impl Fn(&RData) -> Option<U>) -> Answer<U> {
    match answer {
        Answer::Records(records) => {
            let converted: Vec<U> = records.iter().filter_map(convert).collect();
            if converted.is_empty() { Answer::NoData } else { Answer::Records(converted) }
        }
        Answer::NoData => Answer::NoData,
        Answer::NxDomain => Answer::NxDomain,
    }
}

fn map_records<T, U>(answer: Answer<T>, convert: impl Fn(T) -> Option<U>) -> Answer<U> {
    match answer {
        Answer::Records(records) => {
            let converted: Vec<U> = records.into_iter().filter_map(convert).collect();
            if converted.is_empty() { Answer::NoData } else { Answer::Records(converted) }
        }
        Answer::NoData => Answer::NoData,
        Answer::NxDomain => Answer::NxDomain,
    }
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`).
pub fn reverse_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}
