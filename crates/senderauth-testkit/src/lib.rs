//! Test helpers: an authoritative DNS server on 127.0.0.1 port 0 (UDP and TCP) serving zones
//! built in code, with faults that can be injected per name; fresh test databases.

pub mod database;
pub mod http;
pub mod webdriver;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What a name (or one type at a name) does instead of answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No answer at all: the client times out.
    Timeout,
    ServFail,
    Refused,
    /// Over UDP, an empty answer with the TC bit, so the client must retry over TCP.
    Truncate,
}

#[derive(Default)]
struct ZoneData {
    records: HashMap<(String, RecordType), Vec<RData>>,
    /// Every name that exists, including empty non-terminals (RFC 8020: NODATA, not NXDOMAIN).
    names: HashSet<String>,
    /// Zone apexes the server holds an SOA for; the root is always one.
    apexes: HashSet<String>,
    faults: HashMap<(String, Option<RecordType>), Fault>,
    /// Faults for a name and every name under it, like a zone whose servers are down.
    subtree_faults: HashMap<String, Fault>,
}

/// A running test DNS server. Dropping it does not stop it; it lives as long as the runtime.
#[derive(Clone)]
pub struct TestDns {
    address: SocketAddr,
    data: Arc<RwLock<ZoneData>>,
    queries: Arc<AtomicU64>,
    tcp_queries: Arc<AtomicU64>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    /// Starts a server on 127.0.0.1 with a fresh port, serving UDP and TCP on the same port.
    pub async fn start() -> TestDns {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("binding a UDP socket on loopback");
            let port = udp.local_addr().expect("local address").port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let address = udp.local_addr().expect("local address");
        let mut data = ZoneData::default();
        data.apexes.insert(String::new());
        let server = TestDns {
            address,
            data: Arc::new(RwLock::new(data)),
            queries: Arc::new(AtomicU64::new(0)),
            tcp_queries: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(serve_udp(server.clone(), udp));
        tokio::spawn(serve_tcp(server.clone(), tcp));
        server
    }

    /// The `IP:PORT` to send queries to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Queries answered so far (UDP and TCP).
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Queries that came over TCP.
    pub fn tcp_query_count(&self) -> u64 {
        self.tcp_queries.load(Ordering::Relaxed)
    }

    /// Declares a zone apex, so negative answers below it carry its SOA.
    pub fn add_zone(&self, apex: &str) -> &Self {
        let mut data = self.data.write().expect("zone lock");
        let apex = key(apex);
        data.apexes.insert(apex.clone());
        mark_exists(&mut data, &apex);
        self
    }

    /// Adds a record. `value` is in zone-file form: `TXT` takes the text (split into 255-octet
    /// strings as needed), `MX` takes `PREF HOST`, the name types take a host name.
    pub fn add(&self, name: &str, record_type: &str, value: &str) -> &Self {
        let record_type = RecordType::from_str(&record_type.to_ascii_uppercase()).expect("known record type");
        let rdata = parse_rdata(record_type, value);
        self.add_rdata(name, rdata)
    }

    /// Adds a TXT record made of exactly these character-strings.
    pub fn add_txt_strings(&self, name: &str, strings: &[&[u8]]) -> &Self {
        self.add_rdata(name, RData::TXT(TXT::from_bytes(strings.to_vec())))
    }

    /// Adds a record given as hickory record data.
    pub fn add_rdata(&self, name: &str, rdata: RData) -> &Self {
        let mut data = self.data.write().expect("zone lock");
        let name = key(name);
        mark_exists(&mut data, &name);
        data.records.entry((name, rdata.record_type())).or_default().push(rdata);
        self
    }

    /// The platform's side and a customer's correct setup for `account` and `domain`, named as
    /// senderauth's default provider configuration names them: the two DKIM keys in
    /// `esp.example` and the CNAMEs to them, the account's SPF include and the customer's SPF
    /// record using it, and a DMARC record.
    pub fn publish_customer(&self, account: impl std::fmt::Display, domain: &str) -> &Self {
        let dashed = domain.replace('-', "--").replace('.', "-");
        for selector in [format!("sa1-{account}"), format!("sa2-{account}")] {
            let target = format!("{selector}.{dashed}.dkim.esp.example");
            self.add(&target, "TXT", &format!("v=DKIM1; k=rsa; p={EXAMPLE_DKIM_KEY}"));
            self.add(&format!("{selector}._domainkey.{domain}"), "CNAME", &target);
        }
        let include = format!("{account}.spf.esp.example");
        self.remove(&include, "TXT");
        self.add(&include, "TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:5::/48 -all");
        self.add(domain, "TXT", &format!("v=spf1 include:{include} -all"));
        self.add(&format!("_dmarc.{domain}"), "TXT", "v=DMARC1; p=none")
    }

    /// Removes every record of a type at a name.
    pub fn remove(&self, name: &str, record_type: &str) -> &Self {
        let record_type = RecordType::from_str(&record_type.to_ascii_uppercase()).expect("known record type");
        self.data.write().expect("zone lock").records.remove(&(key(name), record_type));
        self
    }

    /// Makes queries for `name` (of `record_type`, or of any type) fail with `fault`.
    pub fn fault(&self, name: &str, record_type: Option<&str>, fault: Fault) -> &Self {
        let record_type =
            record_type.map(|text| RecordType::from_str(&text.to_ascii_uppercase()).expect("known record type"));
        self.data.write().expect("zone lock").faults.insert((key(name), record_type), fault);
        self
    }

    /// Makes every query for `name` or any name under it fail with `fault`.
    pub fn fault_subtree(&self, name: &str, fault: Fault) -> &Self {
        self.data.write().expect("zone lock").subtree_faults.insert(key(name), fault);
        self
    }

    /// Removes every fault.
    pub fn clear_faults(&self) -> &Self {
        let mut data = self.data.write().expect("zone lock");
        data.faults.clear();
        data.subtree_faults.clear();
        self
    }

    fn answer(&self, request: &Message, over_tcp: bool) -> Option<Message> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if over_tcp {
            self.tcp_queries.fetch_add(1, Ordering::Relaxed);
        }
        let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.authoritative = true;
        if let Some(edns) = &request.edns {
            let mut reply_edns = Edns::new();
            reply_edns.set_max_payload(edns.max_payload().max(512));
            response.set_edns(reply_edns);
        }
        let Some(query) = request.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return Some(response);
        };
        response.add_query(query.clone());
        let name = name_key(query.name());
        let record_type = query.query_type();
        let data = self.data.read().expect("zone lock");
        let fault = data
            .faults
            .get(&(name.clone(), Some(record_type)))
            .or_else(|| data.faults.get(&(name.clone(), None)))
            .or_else(|| {
                let mut ancestor = name.as_str();
                loop {
                    if let Some(fault) = data.subtree_faults.get(ancestor) {
                        return Some(fault);
                    }
                    ancestor = &ancestor[ancestor.find('.')? + 1..];
                }
            });
        match fault {
            Some(Fault::Timeout) => return None,
            Some(Fault::ServFail) => {
                response.metadata.response_code = ResponseCode::ServFail;
                return Some(response);
            }
            Some(Fault::Refused) => {
                response.metadata.response_code = ResponseCode::Refused;
                return Some(response);
            }
            Some(Fault::Truncate) if !over_tcp => {
                response.metadata.truncation = true;
                return Some(response);
            }
            Some(Fault::Truncate) | None => {}
        }
        // Like an authoritative server, follow a CNAME only while it stays in the zone the
        // question is in; a target in another zone is left to the resolver.
        let zone = apex_of(&data, &name).to_string();
        let mut current = name.clone();
        for _ in 0..8 {
            if let Some(records) = data.records.get(&(current.clone(), record_type)) {
                for rdata in records {
                    response.add_answer(Record::from_rdata(fqdn(&current), 300, rdata.clone()));
                }
                return Some(response);
            }
            match data.records.get(&(current.clone(), RecordType::CNAME)) {
                Some(cnames) if record_type != RecordType::CNAME => {
                    let Some(RData::CNAME(target)) = cnames.first() else { break };
                    response.add_answer(Record::from_rdata(fqdn(&current), 300, RData::CNAME(target.clone())));
                    current = name_key(&target.0);
                    if apex_of(&data, &current) != zone {
                        return Some(response);
                    }
                }
                _ => break,
            }
        }
        if !response.answers.is_empty() {
            // A CNAME chain whose end has no data of the type: the chain alone answers.
            return Some(response);
        }
        if !data.names.contains(&current) {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.add_authority(soa_record(&data, &current));
        Some(response)
    }
}

fn mark_exists(data: &mut ZoneData, name: &str) {
    let mut rest = name;
    loop {
        if !data.names.insert(rest.to_string()) {
            break;
        }
        match rest.find('.') {
            Some(dot) => rest = &rest[dot + 1..],
            None => break,
        }
    }
}

fn fqdn(name: &str) -> Name {
    let name = key(name);
    let mut parsed = if name.is_empty() {
        Name::root()
    } else {
        Name::from_labels(name.split('.').map(str::as_bytes)).unwrap_or_else(|_| Name::root())
    };
    parsed.set_fqdn(true);
    parsed
}

/// A name as the lowercase text the zone data is keyed by.
fn name_key(name: &Name) -> String {
    let labels: Vec<String> = name.iter().map(|label| String::from_utf8_lossy(label).to_ascii_lowercase()).collect();
    labels.join(".")
}

/// The closest enclosing zone apex the server holds (the root at least).
fn apex_of<'a>(data: &ZoneData, name: &'a str) -> &'a str {
    let mut apex = name;
    while !data.apexes.contains(apex) {
        apex = apex.find('.').map_or("", |dot| &apex[dot + 1..]);
    }
    apex
}

fn soa_record(data: &ZoneData, name: &str) -> Record {
    let apex = apex_of(data, name);
    let zone = fqdn(apex);
    let mname = fqdn(&format!("ns.{apex}"));
    let rname = fqdn(&format!("hostmaster.{apex}"));
    Record::from_rdata(zone, 60, RData::SOA(SOA::new(mname, rname, 1, 3600, 600, 86400, 60)))
}

fn parse_rdata(record_type: RecordType, value: &str) -> RData {
    match record_type {
        RecordType::A => RData::A(A(value.parse().expect("IPv4 address"))),
        RecordType::AAAA => RData::AAAA(AAAA(value.parse().expect("IPv6 address"))),
        RecordType::TXT => {
            let chunks: Vec<&[u8]> = if value.is_empty() { vec![b""] } else { value.as_bytes().chunks(255).collect() };
            RData::TXT(TXT::from_bytes(chunks))
        }
        RecordType::MX => {
            let (preference, host) = value.split_once(' ').unwrap_or((value, ""));
            RData::MX(MX::new(preference.parse().expect("MX preference"), fqdn(host.trim())))
        }
        RecordType::CNAME => RData::CNAME(CNAME(fqdn(value))),
        RecordType::PTR => RData::PTR(PTR(fqdn(value))),
        RecordType::NS => RData::NS(NS(fqdn(value))),
        other => panic!("test zones do not support {other} records"),
    }
}

async fn serve_udp(server: TestDns, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0_u8; 65_535];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else { continue };
        let Ok(request) = Message::from_vec(&buffer[..length]) else { continue };
        let Some(response) = server.answer(&request, false) else { continue };
        let limit = request.edns.as_ref().map_or(512, |edns| usize::from(edns.max_payload().max(512)));
        let Ok(mut bytes) = response.to_vec() else { continue };
        if bytes.len() > limit {
            // RFC 1035 section 4.2.1: too large for UDP; set TC so the client retries over TCP.
            let mut truncated = response.clone();
            truncated.answers.clear();
            truncated.authorities.clear();
            truncated.metadata.truncation = true;
            let Ok(truncated_bytes) = truncated.to_vec() else { continue };
            bytes = truncated_bytes;
        }
        let _ = socket.send_to(&bytes, peer).await;
    }
}

async fn serve_tcp(server: TestDns, listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let server = server.clone();
        tokio::spawn(async move {
            loop {
                let mut length = [0_u8; 2];
                if stream.read_exact(&mut length).await.is_err() {
                    return;
                }
                let mut buffer = vec![0_u8; usize::from(u16::from_be_bytes(length))];
                if stream.read_exact(&mut buffer).await.is_err() {
                    return;
                }
                let Ok(request) = Message::from_vec(&buffer) else { return };
                let Some(response) = server.answer(&request, true) else { continue };
                let Ok(bytes) = response.to_vec() else { return };
                let Ok(length) = u16::try_from(bytes.len()) else { return };
                if stream.write_all(&length.to_be_bytes()).await.is_err() || stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A real RSA public key (RFC 6376 appendix C's example, 1024 bits) for DKIM key records.
pub const EXAMPLE_DKIM_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB";

/// In CI a missing external tool fails the test; elsewhere it is skipped with a message.
pub fn require_or_skip(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required in CI; the README's test command installs it");
    }
    eprintln!("SKIPPED: {what} is not installed; run the README's test command to install it");
    false
}
