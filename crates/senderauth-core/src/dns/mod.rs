//! The one way the core asks DNS: a thin layer over hickory-resolver that keeps a definitive
//! "no such record" apart from a temporary failure.

mod transport;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::system_conf::read_system_conf;
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

/// Answers already had within one check, by name and type.
type Memo = Arc<Mutex<HashMap<(String, RecordType), LookupResult<RData>>>>;

/// A DNS client. Cheap to clone; clones share the resolver's cache and the query counter.
#[derive(Clone)]
pub struct Dns {
    resolver: Resolver<transport::PooledUdpProvider>,
    queries: Arc<AtomicU64>,
    /// Set on a client made by [`Dns::scoped`].
    memo: Option<Memo>,
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
        let mut builder = Resolver::builder_with_config(config, transport::PooledUdpProvider::default());
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = settings.timeout;
        options.attempts = settings.attempts.max(1);
        options.ndots = 0;
        options.cache_size = if settings.cache { 8_192 } else { 0 };
        options.preserve_intermediates = true;
        options.edns0 = true;
        options.try_tcp_on_error = true;
        options.num_concurrent_reqs = 1;
        // In-flight queries per TCP connection; past it hickory answers "busy", which would
        // surface as a temporary failure during bulk checks.
        options.max_active_requests = 1024;
        let resolver = builder.build().map_err(|error| ResolverSetupError(error.to_string()))?;
        Ok(Dns { resolver, queries: Arc::new(AtomicU64::new(0)), memo: None })
    }

    /// A client for one check: each question is asked once, and every part of the check sees
    /// the same answer (SPF asks for the same records in its tree walk and in each evaluation).
    pub fn scoped(&self) -> Dns {
        Dns { memo: Some(Arc::default()), ..self.clone() }
    }

    /// How many queries this client (and its clones) has asked the resolver; repeats within a
    /// scoped check are not counted.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    async fn lookup(&self, name: &str, record_type: RecordType) -> LookupResult<RData> {
        let Some(memo) = &self.memo else {
            return self.resolve(name, record_type).await;
        };
        let key = (name.to_ascii_lowercase(), record_type);
        if let Some(answer) = memo.lock().ok().and_then(|memo| memo.get(&key).cloned()) {
            return answer;
        }
        let answer = self.resolve(name, record_type).await;
        if let Ok(mut memo) = memo.lock() {
            memo.insert(key, answer.clone());
        }
        answer
    }

    async fn resolve(&self, name: &str, record_type: RecordType) -> LookupResult<RData> {
        let failure =
            |reason: String| TemporaryFailure { name: name.to_string(), record_type: record_type.to_string(), reason };
        // A name DNS cannot carry (a label over 63 octets, say) has no records.
        let Some(fqdn) = to_dns_name(name) else { return Ok(Answer::NxDomain) };
        self.queries.fetch_add(1, Ordering::Relaxed);
        match self.resolver.lookup(fqdn, record_type).await {
            // Every answer record is kept, the CNAME chain included; the typed accessors pick
            // what they need.
            Ok(lookup) => {
                let records: Vec<RData> = lookup.answers().iter().map(|record| record.data.clone()).collect();
                if records.is_empty() { Ok(Answer::NoData) } else { Ok(Answer::Records(records)) }
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(no_records))) => match no_records.response_code {
                ResponseCode::NXDomain => Ok(Answer::NxDomain),
                ResponseCode::NoError => Ok(Answer::NoData),
                other => Err(failure(format!("server answered {other}"))),
            },
            Err(NetError::Dns(DnsError::ResponseCode(code))) => Err(failure(format!("server answered {code}"))),
            Err(NetError::Timeout) => Err(failure("no answer before the timeout".to_string())),
            Err(NetError::NoConnections) => {
                Err(failure("no nameserver could be reached (refused or unreachable); is it running?".to_string()))
            }
            Err(other) => Err(failure(other.to_string())),
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
        let txt = map_records(answer, |data| match data {
            RData::TXT(txt) => Some(txt.txt_data.iter().flat_map(|part| part.iter().copied()).collect()),
            _ => None,
        });
        Ok((cname, txt))
    }

    pub async fn a(&self, name: &str) -> LookupResult<Ipv4Addr> {
        Ok(map_records(self.lookup(name, RecordType::A).await?, |data| match data {
            RData::A(address) => Some(address.0),
            _ => None,
        }))
    }

    pub async fn aaaa(&self, name: &str) -> LookupResult<Ipv6Addr> {
        Ok(map_records(self.lookup(name, RecordType::AAAA).await?, |data| match data {
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
        Ok(map_records(self.lookup(name, RecordType::MX).await?, |data| match data {
            RData::MX(mx) => Some(name_to_string(&mx.exchange)),
            _ => None,
        }))
    }

    /// PTR names for an address, normalized.
    pub async fn ptr(&self, address: IpAddr) -> LookupResult<String> {
        let reverse = reverse_name(address);
        Ok(map_records(self.lookup(&reverse, RecordType::PTR).await?, |data| match data {
            RData::PTR(ptr) => Some(name_to_string(&ptr.0)),
            _ => None,
        }))
    }

    /// The CNAME target of a name, normalized, if it has one.
    pub async fn cname(&self, name: &str) -> LookupResult<String> {
        Ok(map_records(self.lookup(name, RecordType::CNAME).await?, |data| match data {
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
