//! The platform's zone as an authoritative DNS server answers it: the records, and the answer
//! to one query.
//!
//! The zone is held in memory, by name, in a hash map keyed by the name's labels in reverse
//! (`example.esp.dkim.example-com.sa1-1`); each name above one holding records counts them, so
//! that "does anything exist below this name" (an empty non-terminal, answered NODATA rather
//! than NXDOMAIN, RFC 8020) is one lookup too. The zone file is written in key order.
//!
//! Our own rather than hickory-server's authority: the answer to a query is built here from the
//! map in one pass (a plain query straight from its bytes, [`quick`]), the zone stays a view of
//! the store that every node reloads name by name from the change log, and `bench/dns.sh`
//! measures it against Knot at 100,000 and 1,000,000 domains' keys (docs/benchmarks.md).

mod quick;

use std::borrow::Cow;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::BuildHasher;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use senderauth_store::{KeyInfo, NameContents, SandboxRecord, Store, StoreError, ZoneContents};

/// The largest UDP answer sent to a client that announces a larger EDNS buffer: the size the
/// DNS flag day 2020 settled on, which avoids IP fragmentation.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The largest DNS message over TCP: its length prefix is 16 bits (RFC 1035 section 4.2.2).
pub const MAX_TCP_MESSAGE: usize = 65_535;

/// The longest prefix of `response`'s answers that encodes within [`MAX_TCP_MESSAGE`], with
/// TC set and the other sections dropped (found by bisection: each try is one encoding).
fn fit_whole_records(mut response: Message) -> Option<Vec<u8>> {
    let all = std::mem::take(&mut response.answers);
    response.authorities.clear();
    response.additionals.clear();
    response.metadata.truncation = true;
    let encoded = |response: &mut Message, count: usize| {
        response.answers = all[..count].to_vec();
        response.to_vec().ok().filter(|bytes| bytes.len() <= MAX_TCP_MESSAGE)
    };
    let (mut fits, mut too_many) = (0, all.len());
    while too_many - fits > 1 {
        let middle = fits + (too_many - fits) / 2;
        if encoded(&mut response, middle).is_some() { fits = middle } else { too_many = middle }
    }
    encoded(&mut response, fits)
}

/// What the zone publishes besides the store's keys, from the configuration.
#[derive(Clone, Debug)]
pub struct ZoneSettings {
    /// The zones served: the platform's zone, and the variable domain when it is not inside it.
    pub apexes: Vec<String>,
    /// The NS records at each apex.
    pub nameservers: Vec<String>,
    /// The SOA's responsible mailbox as a name (`hostmaster.esp.example`).
    pub hostmaster: String,
    /// TTL of every record.
    pub ttl: u32,
    /// How long resolvers may cache a "no such name" (the SOA's minimum).
    pub negative_ttl: u32,
    /// The text of every SPF include record: `v=spf1 ip4:... -all`.
    pub spf_include_record: String,
    /// The variable domain and the SPF and DMARC records at it.
    pub variable_domain: String,
    pub variable_spf: String,
    pub variable_dmarc: String,
    /// The envelope senders' domain: it gets the platform's SPF record, since receivers check
    /// SPF against the envelope sender.
    pub bounce_domain: String,
    /// What each domain's return-path target holds: this SPF record and an MX to each bounce
    /// host (in order, preference 10, 20, ...).
    pub return_path_spf: String,
    pub bounce_hosts: Vec<String>,
    /// Demo mode: also serve the sandbox's customer zones from the store.
    pub sandbox: bool,
}

/// What a report authorization name holds (RFC 9990 section 4).
const REPORT_AUTHORIZATION: &str = "v=DMARC1";

/// Records at one name. Only TXT records live below the apexes, and MX records at return-path
/// targets.
#[derive(Clone, Debug, Default)]
struct Node {
    txt: Texts,
    /// A return-path target: the return-path SPF record and the bounce hosts' MX records (from
    /// the settings, the same at every target) are here too.
    return_path: bool,
}

/// The texts of a name's own TXT records: almost always one, held without a list.
#[derive(Clone, Debug, Default)]
enum Texts {
    #[default]
    None,
    One(Text),
    Many(Box<[Text]>),
}

impl Node {
    fn push(&mut self, text: Text) {
        self.txt = match std::mem::take(&mut self.txt) {
            Texts::None => Texts::One(text),
            Texts::One(first) => Texts::Many(Box::new([first, text])),
            Texts::Many(texts) => Texts::Many(texts.into_vec().into_iter().chain([text]).collect()),
        };
    }

    /// The texts of the TXT records at this name.
    fn texts<'a>(&'a self, settings: &'a ZoneSettings) -> impl Iterator<Item = Cow<'a, str>> {
        let own: &[Text] = match &self.txt {
            Texts::None => &[],
            Texts::One(text) => std::slice::from_ref(text),
            Texts::Many(texts) => texts,
        };
        let return_path = self.return_path.then_some(Cow::Borrowed(settings.return_path_spf.as_str()));
        own.iter().map(Text::render).chain(return_path)
    }
}

/// One TXT record's text. A DKIM key record (`v=DKIM1; k=rsa; p=<base64>`, the bulk of the
/// zone) is held as its key decoded from base64, and an RSA-2048 key with the usual exponent
/// as its 256-octet modulus alone: at a million domains that is most of the zone's memory
/// (256 octets where the text takes 410). Rendered again, exactly as published, when answered.
#[derive(Clone, Debug)]
struct Text {
    form: Form,
    data: Box<[u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Plain,
    /// A key of `KEY_TYPES[index]`, its SubjectPublicKeyInfo (RSA) or raw key (Ed25519).
    Key(u8),
    /// An RSA-2048 SubjectPublicKeyInfo with exponent 65537: [`RSA_2048_PREFIX`], the modulus
    /// held, [`RSA_2048_SUFFIX`].
    Rsa2048,
}

const KEY_TYPES: [&str; 2] = ["rsa", "ed25519"];
/// The DER of an RSA-2048 SubjectPublicKeyInfo up to its modulus (RFC 5280, RFC 8017 A.1.1).
const RSA_2048_PREFIX: [u8; 33] = [
    0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
];
/// The public exponent 65537 after the modulus.
const RSA_2048_SUFFIX: [u8; 5] = [0x02, 0x03, 0x01, 0x00, 0x01];

impl Text {
    fn new(text: &str) -> Text {
        use base64::Engine as _;
        let base64 = base64::engine::general_purpose::STANDARD;
        for (index, key_type) in KEY_TYPES.iter().enumerate() {
            let key = text
                .strip_prefix("v=DKIM1; k=")
                .and_then(|rest| rest.strip_prefix(key_type))
                .and_then(|rest| rest.strip_prefix("; p="))
                .filter(|encoded| !encoded.is_empty())
                // Canonical base64 only, so that exactly what was published comes back out.
                .and_then(|encoded| base64.decode(encoded).ok().filter(|key| base64.encode(key) == encoded));
            let Some(key) = key else { continue };
            if *key_type == "rsa"
                && key.len() == RSA_2048_PREFIX.len() + 256 + RSA_2048_SUFFIX.len()
                && key.starts_with(&RSA_2048_PREFIX)
                && key.ends_with(&RSA_2048_SUFFIX)
            {
                let modulus = &key[RSA_2048_PREFIX.len()..RSA_2048_PREFIX.len() + 256];
                return Text { form: Form::Rsa2048, data: modulus.into() };
            }
            let index = u8::try_from(index).unwrap_or(0);
            return Text { form: Form::Key(index), data: key.into_boxed_slice() };
        }
        Text { form: Form::Plain, data: text.as_bytes().into() }
    }

    fn render(&self) -> Cow<'_, str> {
        use base64::Engine as _;
        let base64 = base64::engine::general_purpose::STANDARD;
        match self.form {
            Form::Plain => String::from_utf8_lossy(&self.data),
            Form::Key(index) => Cow::Owned(format!(
                "v=DKIM1; k={}; p={}",
                KEY_TYPES.get(usize::from(index)).unwrap_or(&"rsa"),
                base64.encode(&self.data)
            )),
            Form::Rsa2048 => {
                let key: Vec<u8> =
                    RSA_2048_PREFIX.iter().chain(self.data.iter()).chain(&RSA_2048_SUFFIX).copied().collect();
                Cow::Owned(format!("v=DKIM1; k=rsa; p={}", base64.encode(key)))
            }
        }
    }
}

/// The zone's contents at one moment.
#[derive(Clone, Debug)]
pub struct Zone {
    settings: ZoneSettings,
    serial: u32,
    /// The store's change the contents are as of.
    last_change: i64,
    /// The names holding records, by key: a hash map, since a lookup in an ordered map of
    /// millions of names chased a pointer per comparison (`bench/dns.sh`).
    nodes: HashMap<Box<str>, Node>,
    /// How many names holding records lie below each name that has some, by the key's hash
    /// under `hasher`: a name counted here exists (an empty non-terminal answers NODATA, not
    /// NXDOMAIN, RFC 8020). A 64-bit keyed hash instead of the name saves a copy of a million
    /// names; two names sharing one is a chance of one in 10^13 per query at a million.
    below: HashMap<u64, u32>,
    hasher: RandomState,
    /// Demo mode: the sandbox's customer zones (lowercase apexes) and their records by name,
    /// keyed like `nodes`.
    sandbox_apexes: HashSet<Box<str>>,
    sandbox_nodes: BTreeMap<Box<str>, Vec<RData>>,
}

/// A name's map key: lowercase labels in reverse order, joined by dots.
fn reversed(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut labels: Vec<&str> = name.split('.').collect();
    labels.reverse();
    labels.join(".")
}

fn unreversed(key: &str) -> String {
    let mut labels: Vec<&str> = key.split('.').collect();
    labels.reverse();
    labels.join(".")
}

impl Zone {
    /// A zone of the configured records and the store's.
    pub fn new(settings: ZoneSettings, contents: &ZoneContents) -> Zone {
        let mut zone = Zone::configured(settings);
        for key in &contents.keys {
            zone.add_key(key);
        }
        zone.finish(contents);
        zone
    }

    /// The zone read from the store, key by key (nothing but the zone itself is held).
    pub async fn load(settings: ZoneSettings, store: &Store) -> Result<Zone, StoreError> {
        let mut zone = Zone::configured(settings);
        let contents = store.stream_zone(|key| zone.add_key(&key)).await?;
        zone.finish(&contents);
        if zone.settings.sandbox {
            let (apexes, records) = store.sandbox_contents().await?;
            zone.sandbox_apexes.extend(apexes.into_iter().map(|apex| apex.to_ascii_lowercase().into_boxed_str()));
            for record in &records {
                zone.add_sandbox_record(record);
            }
        }
        Ok(zone)
    }

    /// The records from the configuration alone.
    fn configured(settings: ZoneSettings) -> Zone {
        let mut zone = Zone {
            settings,
            serial: 0,
            last_change: 0,
            nodes: HashMap::new(),
            below: HashMap::new(),
            hasher: RandomState::new(),
            sandbox_apexes: HashSet::new(),
            sandbox_nodes: BTreeMap::new(),
        };
        for (name, text) in zone.configured_records() {
            zone.add_text(&name, text);
        }
        zone
    }

    /// The records the configuration alone publishes: the variable domain's SPF and DMARC, and
    /// the bounce domain's SPF.
    fn configured_records(&self) -> [(String, String); 3] {
        let variable = &self.settings.variable_domain;
        [
            (variable.clone(), self.settings.variable_spf.clone()),
            (format!("_dmarc.{variable}"), self.settings.variable_dmarc.clone()),
            (self.settings.bounce_domain.clone(), self.settings.variable_spf.clone()),
        ]
    }

    fn add_key(&mut self, key: &KeyInfo) {
        if let Some(text) = key.published_record() {
            self.add_text(&key.name, text);
        }
    }

    /// Adds the SPF includes and report authorizations of `contents` (its keys are added one by
    /// one) and takes its change as the serial.
    fn finish(&mut self, contents: &ZoneContents) {
        let record = self.settings.spf_include_record.clone();
        for include in &contents.spf_includes {
            self.add_text(include, record.clone());
        }
        for name in &contents.report_authorizations {
            self.add_text(name, REPORT_AUTHORIZATION.to_string());
        }
        for name in &contents.return_paths {
            self.add_return_path(name);
        }
        self.set_serial(contents.last_change);
    }

    /// A return-path target: the SPF record of the sending addresses and the bounce hosts' MX.
    fn add_return_path(&mut self, name: &str) {
        if self.apex_of(name).is_none() {
            return;
        }
        self.node_mut(reversed(name)).return_path = true;
    }

    fn add_text(&mut self, name: &str, text: String) {
        if self.apex_of(name).is_none() {
            // Outside every served zone: a template pointing elsewhere. Nothing to serve.
            return;
        }
        self.node_mut(reversed(name)).push(Text::new(&text));
    }

    /// The node at `key`, made (and counted below each of its ancestors) if there is none.
    fn node_mut(&mut self, key: String) -> &mut Node {
        match self.nodes.entry(key.into_boxed_str()) {
            Entry::Occupied(node) => node.into_mut(),
            Entry::Vacant(vacant) => {
                for ancestor in ancestors(vacant.key()) {
                    *self.below.entry(self.hasher.hash_one(ancestor)).or_default() += 1;
                }
                vacant.insert(Node::default())
            }
        }
    }

    /// Removes the node at `key` and its count below its ancestors.
    fn remove_node(&mut self, key: &str) {
        if self.nodes.remove(key).is_none() {
            return;
        }
        for ancestor in ancestors(key) {
            if let Entry::Occupied(mut count) = self.below.entry(self.hasher.hash_one(ancestor)) {
                *count.get_mut() -= 1;
                if *count.get() == 0 {
                    count.remove();
                }
            }
        }
    }

    /// The names and their records in key order (labels reversed), as a zone file lists them.
    fn sorted_nodes(&self) -> Vec<(&str, &Node)> {
        let mut nodes: Vec<(&str, &Node)> = self.nodes.iter().map(|(key, node)| (key.as_ref(), node)).collect();
        nodes.sort_unstable_by_key(|(key, _)| *key);
        nodes
    }

    /// Whether some name below `key` holds records.
    fn has_names_below(&self, key: &str) -> bool {
        self.below.contains_key(&self.hasher.hash_one(key))
    }

    /// A sandbox record, served when its name is in a sandbox zone. (Records were checked when
    /// typed in; one that no longer parses is left out.)
    fn add_sandbox_record(&mut self, record: &SandboxRecord) {
        if let Ok(data) = senderauth_core::sandbox::record_data(&record.kind, &record.value) {
            self.sandbox_nodes.entry(reversed(&record.name).into_boxed_str()).or_default().push(data);
        }
    }

    /// Replaces what `name` holds with what the store holds for it now.
    pub fn replace(&mut self, name: &str, contents: &NameContents) {
        if self.settings.sandbox {
            let apex = name.trim_end_matches('.').to_ascii_lowercase().into_boxed_str();
            if contents.sandbox_apex {
                self.sandbox_apexes.insert(apex);
            } else {
                self.sandbox_apexes.remove(&apex);
            }
            self.sandbox_nodes.remove(reversed(name).as_str());
            for record in &contents.sandbox_records {
                self.add_sandbox_record(record);
            }
        }
        self.remove_node(&reversed(name));
        for (configured, text) in self.configured_records() {
            if configured.eq_ignore_ascii_case(name) {
                self.add_text(name, text);
            }
        }
        for key in &contents.keys {
            self.add_key(key);
        }
        if contents.spf_include {
            self.add_text(name, self.settings.spf_include_record.clone());
        }
        if contents.report_authorization {
            self.add_text(name, REPORT_AUTHORIZATION.to_string());
        }
        if contents.return_path {
            self.add_return_path(name);
        }
    }

    /// The SOA serial follows the store's change log, so secondaries and `zone export` can
    /// tell versions apart.
    pub fn set_serial(&mut self, last_change: i64) {
        self.last_change = last_change;
        self.serial = (last_change.max(1) as u64 % u64::from(u32::MAX)) as u32;
    }

    /// The store's change the contents are as of.
    pub fn last_change(&self) -> i64 {
        self.last_change
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// How many names hold records.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The TXT texts at `name`.
    pub fn texts(&self, name: &str) -> Vec<String> {
        self.nodes
            .get(reversed(name).as_str())
            .map(|node| node.texts(&self.settings).map(Cow::into_owned).collect())
            .unwrap_or_default()
    }

    /// The MX records at `name`: (preference, exchange).
    pub fn exchanges(&self, name: &str) -> Vec<(u16, String)> {
        match self.nodes.get(reversed(name).as_str()) {
            Some(node) if node.return_path => self.bounce_exchanges(),
            _ => Vec::new(),
        }
    }

    fn bounce_exchanges(&self) -> Vec<(u16, String)> {
        (10..).step_by(10).zip(self.settings.bounce_hosts.iter().cloned()).collect()
    }

    fn mx_records(&self, owner: &Name, node: &Node) -> Vec<Record> {
        if !node.return_path {
            return Vec::new();
        }
        self.bounce_exchanges()
            .into_iter()
            .filter_map(|(preference, host)| {
                let exchange = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))).ok()?;
                Some(Record::from_rdata(owner.clone(), self.settings.ttl, RData::MX(MX::new(preference, exchange))))
            })
            .collect()
    }

    /// Every name holding records.
    pub fn names(&self) -> Vec<String> {
        self.sorted_nodes().into_iter().map(|(key, _)| unreversed(key)).collect()
    }

    /// The TTL of the zone's records.
    pub fn ttl(&self) -> u32 {
        self.settings.ttl
    }

    /// The served zone `name` is in, if any (the longest apex): one of the platform's, or in
    /// demo mode a sandbox zone.
    pub fn apex_of(&self, name: &str) -> Option<&str> {
        let name = name.trim_end_matches('.');
        let platform = self
            .settings
            .apexes
            .iter()
            .filter(|apex| {
                name.eq_ignore_ascii_case(apex)
                    || (name.len() > apex.len()
                        && name.as_bytes()[name.len() - apex.len() - 1] == b'.'
                        && name[name.len() - apex.len()..].eq_ignore_ascii_case(apex))
            })
            .max_by_key(|apex| apex.len())
            .map(String::as_str);
        if platform.is_some() || self.sandbox_apexes.is_empty() {
            return platform;
        }
        // The name itself, then each parent: the first that is a sandbox apex.
        let lower = name.to_ascii_lowercase();
        let mut rest = lower.as_str();
        loop {
            if let Some(apex) = self.sandbox_apexes.get(rest) {
                return Some(apex);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    fn is_sandbox(&self, apex: &str) -> bool {
        self.sandbox_apexes.contains(apex)
    }

    fn soa(&self, apex: &Name, sandbox: bool) -> Record {
        let name =
            |text: &str| Name::from_ascii(format!("{}.", text.trim_end_matches('.'))).unwrap_or_else(|_| Name::root());
        let primary = self.settings.nameservers.first().map(|ns| name(ns)).unwrap_or_else(|| apex.clone());
        let negative_ttl = if sandbox { senderauth_core::sandbox::TTL } else { self.settings.negative_ttl };
        let soa = SOA::new(primary, name(&self.settings.hostmaster), self.serial, 3600, 600, 1_209_600, negative_ttl);
        Record::from_rdata(apex.clone(), negative_ttl, RData::SOA(soa))
    }

    fn ns(&self, apex: &Name) -> Vec<Record> {
        self.settings
            .nameservers
            .iter()
            .filter_map(|ns| Name::from_ascii(format!("{}.", ns.trim_end_matches('.'))).ok())
            .map(|ns| Record::from_rdata(apex.clone(), self.settings.ttl, RData::NS(NS(ns))))
            .collect()
    }

    fn txt_records(&self, owner: &Name, node: &Node) -> Vec<Record> {
        node.texts(&self.settings)
            .map(|text| {
                // A character-string holds at most 255 octets; longer texts are split (the
                // record is the strings joined, RFC 7208 section 3.3, RFC 6376 section 3.6.2.2).
                let chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
                Record::from_rdata(owner.clone(), self.settings.ttl, RData::TXT(TXT::from_bytes(chunks)))
            })
            .collect()
    }

    /// The zone as a standard zone file (RFC 1035 section 5), one zone per apex, and the names
    /// in the store that are no DNS names (a label over 63 octets, a name over 253: keys of
    /// domains connected before such names were refused), which the file cannot hold.
    pub fn zone_file(&self) -> (String, Vec<String>) {
        let mut unwritable = Vec::new();
        let mut out = String::new();
        for apex in &self.settings.apexes {
            let origin = Name::from_ascii(format!("{apex}.")).unwrap_or_else(|_| Name::root());
            let _ = writeln!(out, "$ORIGIN {origin}");
            let _ = writeln!(out, "$TTL {}", self.settings.ttl);
            let _ = writeln!(out, "{}", zone_file_line(&self.soa(&origin, false)));
            for record in self.ns(&origin) {
                let _ = writeln!(out, "{}", zone_file_line(&record));
            }
            let apex_key = reversed(apex);
            for (key, node) in self.sorted_nodes() {
                let inside = key == apex_key || key.starts_with(&format!("{apex_key}."));
                // A name in a more specific apex belongs to that zone's section.
                if !inside || self.apex_of(&unreversed(key)) != Some(apex.as_str()) {
                    continue;
                }
                let Ok(owner) = Name::from_ascii(format!("{}.", unreversed(key))) else {
                    unwritable.push(unreversed(key));
                    continue;
                };
                for record in self.txt_records(&owner, node).into_iter().chain(self.mx_records(&owner, node)) {
                    let _ = writeln!(out, "{}", zone_file_line(&record));
                }
            }
        }
        (out, unwritable)
    }

    /// Answers one DNS message. `udp_limit` is `Some(512)` over UDP (raised by the client's
    /// EDNS buffer size up to [`MAX_UDP_PAYLOAD`]) and `None` over TCP. `None` back: drop it
    /// (too short to answer, or not a query).
    pub fn answer(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        if request.len() < 12 || request[2] & 0x80 != 0 {
            return None; // no header, or a response: never answer those (no loops).
        }
        if let Some(answer) = self.quick_answer(request, udp) {
            return Some(answer);
        }
        self.answer_general(request, udp)
    }

    /// [`Zone::answer`] for every query, through hickory's message types.
    fn answer_general(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        let message = match Message::from_vec(request) {
            Ok(message) => message,
            Err(_) => {
                // Malformed: FORMERR with the id and opcode, and nothing else (RFC 1035 4.1.1).
                let id = u16::from_be_bytes([request[0], request[1]]);
                let op_code = OpCode::from_u8((request[2] >> 3) & 0x0f);
                let mut response = Message::error_msg(id, op_code, ResponseCode::FormErr);
                response.metadata.recursion_desired = request[2] & 0x01 != 0;
                return response.to_vec().ok();
            }
        };
        let mut response = Message::response(message.metadata.id, message.metadata.op_code);
        response.metadata.recursion_desired = message.metadata.recursion_desired;
        response.metadata.checking_disabled = message.metadata.checking_disabled;
        response.queries = message.queries.clone();
        let mut limit = 512usize;
        if let Some(edns) = &message.edns {
            let mut ours = Edns::new();
            ours.set_max_payload(MAX_UDP_PAYLOAD);
            ours.set_dnssec_ok(false);
            response.set_edns(ours);
            if edns.version() > 0 {
                response.metadata.response_code = ResponseCode::BADVERS;
                return response.to_vec().ok();
            }
            limit = usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
        }
        if message.metadata.message_type != MessageType::Query {
            return None;
        }
        if message.metadata.op_code != OpCode::Query {
            response.metadata.response_code = ResponseCode::NotImp;
            return response.to_vec().ok();
        }
        let [query] = message.queries.as_slice() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response.to_vec().ok();
        };
        self.resolve(query, &mut response);
        let bytes = response.to_vec().ok()?;
        if udp && bytes.len() > limit {
            // Too big for this client over UDP: the question alone with TC set; it retries
            // over TCP (RFC 7766).
            response.answers.clear();
            response.authorities.clear();
            response.additionals.clear();
            response.metadata.truncation = true;
            return response.to_vec().ok();
        }
        if !udp && bytes.len() > MAX_TCP_MESSAGE {
            // Over what a TCP message can carry (its length is 16 bits): as many whole records
            // as fit, with TC set (only a sandbox name holding tens of big records gets here).
            return fit_whole_records(response);
        }
        Some(bytes)
    }

    fn resolve(&self, query: &Query, response: &mut Message) {
        let qname = query.name();
        let text = qname.to_ascii();
        let Some(apex) = self.apex_of(&text) else {
            // In demo mode this server is the whole DNS the verifier sees: what it does not
            // host does not exist. Otherwise a name outside its zones is none of its business.
            response.metadata.response_code =
                if self.settings.sandbox { ResponseCode::NXDomain } else { ResponseCode::Refused };
            return;
        };
        if query.query_class() != DNSClass::IN && query.query_class() != DNSClass::ANY {
            response.metadata.response_code = ResponseCode::Refused;
            return;
        }
        if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
            // Zone transfers are not offered: `senderauth zone export` and dynamic updates are.
            response.metadata.response_code = ResponseCode::Refused;
            return;
        }
        response.metadata.authoritative = true;
        // The apex written as the client wrote it, for the SOA owner in the authority section.
        let apex_labels = apex.split('.').count();
        let apex_name = qname.trim_to(apex_labels);
        let sandbox = self.is_sandbox(apex);
        let key = reversed(&text);
        let at_apex = text.trim_end_matches('.').eq_ignore_ascii_case(apex);
        if at_apex {
            if wants(query.query_type(), RecordType::SOA) {
                response.answers.push(self.soa(&apex_name, sandbox));
            }
            // A sandbox zone's own NS records (the customer's DNS host, for the setup page's
            // hints) stand in for the platform's nameservers.
            let own_ns = sandbox
                && self
                    .sandbox_nodes
                    .get(key.as_str())
                    .is_some_and(|records| records.iter().any(|data| data.record_type() == RecordType::NS));
            if wants(query.query_type(), RecordType::NS) && !own_ns {
                response.answers.extend(self.ns(&apex_name));
            }
        }
        let exists = if sandbox {
            self.sandbox_answers(qname, &key, query.query_type(), &mut response.answers, CNAME_CHAIN)
        } else {
            self.platform_answers(qname, &key, query.query_type(), &mut response.answers)
        };
        if !response.answers.is_empty() {
            return;
        }
        // No records of that type: NODATA if the name exists (or has names below it),
        // NXDOMAIN if not; either way the SOA tells resolvers how long to remember it.
        let below = if sandbox { has_descendants(&self.sandbox_nodes, &key) } else { self.has_names_below(&key) };
        if !(at_apex || exists || below) {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.authorities.push(self.soa(&apex_name, sandbox));
    }

    /// The platform zone's records of `kind` at `owner` added to `answers`; whether the name
    /// holds any records.
    fn platform_answers(&self, owner: &Name, key: &str, kind: RecordType, answers: &mut Vec<Record>) -> bool {
        let Some(node) = self.nodes.get(key) else { return false };
        if wants(kind, RecordType::TXT) {
            answers.extend(self.txt_records(owner, node));
        }
        if wants(kind, RecordType::MX) {
            answers.extend(self.mx_records(owner, node));
        }
        true
    }

    /// A sandbox zone's records of `kind` at `owner` added to `answers`; whether the name holds
    /// any records. A CNAME answers for every other type and is followed into the zones
    /// served here (RFC 1034 section 4.3.2), at most `chain` steps.
    fn sandbox_answers(
        &self,
        owner: &Name,
        key: &str,
        kind: RecordType,
        answers: &mut Vec<Record>,
        chain: usize,
    ) -> bool {
        let Some(records) = self.sandbox_nodes.get(key) else { return false };
        let cname = records.iter().find_map(|data| match data {
            RData::CNAME(target) if kind != RecordType::CNAME && kind != RecordType::ANY => Some(target.0.clone()),
            _ => None,
        });
        if let Some(target) = cname {
            answers.push(Record::from_rdata(
                owner.clone(),
                senderauth_core::sandbox::TTL,
                RData::CNAME(CNAME(target.clone())),
            ));
            let text = target.to_ascii();
            if chain > 0
                && let Some(apex) = self.apex_of(&text)
            {
                let key = reversed(&text);
                if self.is_sandbox(apex) {
                    self.sandbox_answers(&target, &key, kind, answers, chain - 1);
                } else {
                    self.platform_answers(&target, &key, kind, answers);
                }
            }
            return true;
        }
        for data in records.iter().filter(|data| wants(kind, data.record_type())) {
            answers.push(Record::from_rdata(owner.clone(), senderauth_core::sandbox::TTL, data.clone()));
        }
        true
    }
}

/// How many CNAMEs in a row a sandbox answer follows.
const CNAME_CHAIN: usize = 8;

/// Whether a query for `asked` is answered by records of type `kind`.
fn wants(asked: RecordType, kind: RecordType) -> bool {
    asked == kind || asked == RecordType::ANY
}

/// The keys of the names above `key` (a key is labels in reverse: each prefix ending before a
/// dot), nearest last.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('.').map(|(at, _)| &key[..at])
}

/// Whether some name below `key` holds records in `nodes`.
fn has_descendants<V>(nodes: &BTreeMap<Box<str>, V>, key: &str) -> bool {
    let prefix = format!("{key}.");
    nodes
        .range::<str, _>((std::ops::Bound::Excluded(prefix.as_str()), std::ops::Bound::Unbounded))
        .next()
        .is_some_and(|(next, _)| next.starts_with(&prefix))
        || nodes.contains_key(prefix.as_str())
}

/// One record as a zone file line.
fn zone_file_line(record: &Record) -> String {
    let data = match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|chunk| {
                let mut quoted = String::from("\"");
                for &byte in chunk.iter() {
                    match byte {
                        b'"' | b'\\' => {
                            quoted.push('\\');
                            quoted.push(byte as char);
                        }
                        0x20..=0x7e => quoted.push(byte as char),
                        other => {
                            let _ = write!(quoted, "\\{other:03}");
                        }
                    }
                }
                quoted.push('"');
                quoted
            })
            .collect::<Vec<_>>()
            .join(" "),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        other => other.to_string(),
    };
    format!("{} {} IN {} {}", record.name, record.ttl, record.record_type(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use senderauth_store::KeyState;

    fn zone() -> Zone {
        let settings = ZoneSettings {
            apexes: vec!["esp.example".to_string()],
            nameservers: vec!["ns1.esp.example".to_string()],
            hostmaster: "hostmaster.esp.example".to_string(),
            ttl: 3600,
            negative_ttl: 300,
            spf_include_record: "v=spf1 ip4:192.0.2.0/24 -all".to_string(),
            variable_domain: "send.esp.example".to_string(),
            variable_spf: "v=spf1 ip4:192.0.2.0/24 -all".to_string(),
            variable_dmarc: "v=DMARC1; p=reject;".to_string(),
            bounce_domain: "bounces.esp.example".to_string(),
            return_path_spf: "v=spf1 ip4:192.0.2.0/24 -all".to_string(),
            bounce_hosts: vec!["mx.bounces.esp.example".to_string()],
            sandbox: false,
        };
        let key = KeyInfo {
            id: 1,
            domain_id: 1,
            selector: "sa1-1".to_string(),
            name: "sa1-1.shop-example-com.dkim.esp.example".to_string(),
            algorithm: "rsa-2048".to_string(),
            public_key: "A".repeat(392),
            master_key_id: "k1".to_string(),
            state: KeyState::Active,
            created_at: 0,
            active_at: Some(0),
            retired_at: None,
            revoked_at: None,
        };
        let contents = ZoneContents {
            keys: vec![key],
            spf_includes: vec!["1.spf.esp.example".to_string()],
            report_authorizations: vec!["shop.example.com._report._dmarc.reports.esp.example".to_string()],
            return_paths: vec!["shop-example-com.rp.esp.example".to_string()],
            last_change: 7,
        };
        Zone::new(settings, &contents)
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
        message.to_vec().expect("encode")
    }

    /// A small deterministic generator, so a failure can be replayed.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn no_input_makes_it_panic_and_every_answer_parses_and_matches_its_query() {
        let zone = zone();
        let valid = [
            query("sa1-1.shop-example-com.dkim.esp.example.", RecordType::TXT),
            query("esp.example.", RecordType::SOA),
            query("nothing.esp.example.", RecordType::A),
            query("example.org.", RecordType::TXT),
        ];
        let mut random = XorShift(0x5eed_5eed_5eed_5eed);
        for round in 0..50_000 {
            let input: Vec<u8> = if round % 2 == 0 {
                // Random bytes of any length.
                let length = (random.next() % 600) as usize;
                (0..length).map(|_| random.next() as u8).collect()
            } else {
                // A valid query with a few bytes changed, cut short or lengthened.
                let mut bytes = valid[round % valid.len()].clone();
                for _ in 0..1 + random.next() % 4 {
                    let at = (random.next() as usize) % bytes.len();
                    bytes[at] = random.next() as u8;
                }
                match random.next() % 4 {
                    0 => bytes.truncate((random.next() as usize) % bytes.len()),
                    1 => bytes.extend((0..random.next() % 40).map(|_| random.next() as u8)),
                    _ => {}
                }
                bytes
            };
            for udp in [true, false] {
                let Some(answer) = zone.answer(&input, udp) else { continue };
                let parsed = Message::from_vec(&answer).unwrap_or_else(|error| panic!("round {round}: {error}"));
                assert_eq!(parsed.metadata.id, u16::from_be_bytes([input[0], input[1]]), "round {round}");
                assert_eq!(parsed.metadata.message_type, MessageType::Response);
                if udp {
                    assert!(answer.len() <= usize::from(MAX_UDP_PAYLOAD), "round {round}: {} octets", answer.len());
                }
            }
        }
    }

    #[test]
    fn a_text_comes_back_exactly_as_published_whether_held_as_a_key_or_as_text() {
        use base64::Engine as _;
        let encode = |key: &[u8]| base64::engine::general_purpose::STANDARD.encode(key);
        let other: Vec<u8> = (0..294u32).map(|at| (at * 7 + 3) as u8).collect();
        let other = format!("v=DKIM1; k=rsa; p={}", encode(&other));
        // A real RSA-2048 key (made with openssl).
        let rsa = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqlfxeWUq21Mdzm+//cUsrys9qVl0CfGq+1RStb8Slj7FuZ\
                   eFUmEgF0+GyELbvgOs71IWWBPv/0vqg4x32J21UWFDPxwvqCJun5PgprYNDFFMLqze+oN2OxaXvxINeuAn88mX8/56iut3u5Fk59SW+ZMl\
                   VZ/bxh184/h24VnSD9mwsUP9xZLlZbh9dNfrFsBXwCKiayxbxKpb7ioOYz9cH013/B2wX9NuyFqzYplFydDXBxzk7I67Y8zp943HJ+sWc4\
                   2/IPjoQ+2oM5BJpX7+eTzbpiuhSsTb2gzlMTwJgcScQ+En0XFsGBpywacY+T2/E7uc69xpVSQLlgjvvaROoQIDAQAB";
        let texts = [
            rsa,
            other.as_str(),
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "v=DKIM1; k=rsa; p=",
            "v=DKIM1; k=rsa; p=AB==",
            "v=DKIM1; k=rsa; p=not base64!",
            "v=DKIM1; k=dsa; p=AAAA",
            "v=spf1 ip4:192.0.2.0/24 -all",
            "",
        ];
        for text in texts {
            assert_eq!(Text::new(text).render(), text);
        }
        // The key records are held decoded, an RSA-2048 key as its modulus alone.
        assert_eq!((Text::new(rsa).form, Text::new(rsa).data.len()), (Form::Rsa2048, 256));
        assert_eq!((Text::new(&other).form, Text::new(&other).data.len()), (Form::Key(0), 294));
        assert_eq!(Text::new("v=DKIM1; k=rsa; p=AB==").form, Form::Plain, "non-canonical base64 is kept as text");
    }

    #[test]
    fn the_quick_path_answers_plain_queries_as_the_general_path_does() {
        let mut zone = zone();
        // Two long texts at one name: over 512 octets, so truncated without EDNS.
        zone.add_text("big.esp.example", "B".repeat(400));
        zone.add_text("big.esp.example", "C".repeat(300));
        let names = [
            "sa1-1.shop-example-com.dkim.esp.example.",
            "SA1-1.Shop-Example-COM.dkim.ESP.example.",
            "shop-example-com.dkim.esp.example.",
            "dkim.esp.example.",
            "nothing.esp.example.",
            "a.b.c.nothing.esp.example.",
            "1.spf.esp.example.",
            "shop-example-com.rp.esp.example.",
            "send.esp.example.",
            "_dmarc.send.esp.example.",
            "shop.example.com._report._dmarc.reports.esp.example.",
            "big.esp.example.",
        ];
        let kinds = [RecordType::TXT, RecordType::MX, RecordType::A, RecordType::AAAA, RecordType::CNAME];
        for name in names {
            for kind in kinds {
                for payload in [None, Some(100), Some(512), Some(1232), Some(4096)] {
                    for (recursion, checking) in [(false, false), (true, true)] {
                        let mut message = Message::new(0x1234, MessageType::Query, OpCode::Query);
                        message.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
                        message.metadata.recursion_desired = recursion;
                        message.metadata.checking_disabled = checking;
                        if let Some(payload) = payload {
                            let mut edns = Edns::new();
                            edns.set_max_payload(payload);
                            message.set_edns(edns);
                        }
                        let request = message.to_vec().expect("encode");
                        for udp in [true, false] {
                            let quick = zone.quick_answer(&request, udp).unwrap_or_else(|| panic!("{name} {kind}"));
                            let general = zone.answer_general(&request, udp).expect("answered");
                            let parse = |bytes: &[u8]| format!("{:?}", Message::from_vec(bytes).expect("parses"));
                            assert_eq!(parse(&quick), parse(&general), "{name} {kind} {payload:?} udp {udp}");
                        }
                    }
                }
            }
        }
        // What the quick path leaves to the general one.
        for (name, kind) in [
            ("esp.example.", RecordType::TXT),
            ("sa1-1.shop-example-com.dkim.esp.example.", RecordType::ANY),
            ("sa1-1.shop-example-com.dkim.esp.example.", RecordType::SOA),
            ("example.org.", RecordType::TXT),
            ("we\\.ird.esp.example.", RecordType::TXT),
        ] {
            assert!(zone.quick_answer(&query(name, kind), true).is_none(), "{name} {kind}");
        }
    }

    #[test]
    fn a_name_with_names_below_it_exists_until_the_last_of_them_is_gone() {
        let mut zone = zone();
        let code = |zone: &Zone, name: &str| {
            let answer = zone.answer(&query(name, RecordType::TXT), true).expect("an answer");
            Message::from_vec(&answer).expect("parses").metadata.response_code
        };
        let key = "sa1-1.shop-example-com.dkim.esp.example";
        let before = zone.nodes.len();
        zone.replace(
            "sa2-1.shop-example-com.dkim.esp.example",
            &NameContents { spf_include: true, ..NameContents::default() },
        );
        assert_eq!(zone.nodes.len(), before + 1);
        for empty_non_terminal in ["shop-example-com.dkim.esp.example.", "dkim.esp.example."] {
            assert_eq!(code(&zone, empty_non_terminal), ResponseCode::NoError, "{empty_non_terminal}");
        }
        // One of the two names below goes: the others still exist.
        zone.replace(key, &NameContents::default());
        assert_eq!(code(&zone, key), ResponseCode::NXDomain);
        assert_eq!(code(&zone, "shop-example-com.dkim.esp.example."), ResponseCode::NoError);
        // The last goes: so do the names above it that held nothing else.
        zone.replace("sa2-1.shop-example-com.dkim.esp.example", &NameContents::default());
        for gone in ["shop-example-com.dkim.esp.example.", "dkim.esp.example."] {
            assert_eq!(code(&zone, gone), ResponseCode::NXDomain, "{gone}");
        }
        // A name with a record elsewhere in the tree is untouched.
        assert_eq!(code(&zone, "spf.esp.example."), ResponseCode::NoError);
    }

    #[test]
    fn an_answer_names_the_key_and_a_missing_name_is_nxdomain_with_the_soa() {
        let zone = zone();
        let answer = Message::from_vec(
            &zone.answer(&query("SA1-1.shop-example-com.dkim.esp.example.", RecordType::TXT), false).expect("answer"),
        )
        .expect("parses");
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.answers.len(), 1);
        let missing =
            Message::from_vec(&zone.answer(&query("nothing.esp.example.", RecordType::TXT), true).expect("answer"))
                .expect("parses");
        assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(missing.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(zone.serial(), 7);
    }

    #[test]
    fn report_authorizations_answer_for_connected_domains_only_and_go_with_them() {
        let mut zone = zone();
        let name = "shop.example.com._report._dmarc.reports.esp.example";
        let ask = |zone: &Zone, name: &str| {
            Message::from_vec(&zone.answer(&query(name, RecordType::TXT), false).expect("an answer")).expect("parses")
        };
        let answer = ask(&zone, name);
        let texts: Vec<String> = answer.answers.iter().map(|record| record.data.to_string()).collect();
        assert_eq!(texts, ["v=DMARC1"]);
        // No wildcard: another domain's name is not there.
        let other = ask(&zone, "someone-else.example._report._dmarc.reports.esp.example");
        assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);
        zone.replace(name, &NameContents::default());
        assert_eq!(ask(&zone, name).metadata.response_code, ResponseCode::NXDomain, "withdrawn");
    }

    #[test]
    fn return_path_targets_hold_the_sending_addresses_and_the_bounce_hosts() {
        let mut zone = zone();
        let name = "shop-example-com.rp.esp.example.";
        let ask = |zone: &Zone, kind: RecordType| {
            Message::from_vec(&zone.answer(&query(name, kind), false).expect("an answer")).expect("parses")
        };
        let texts: Vec<String> =
            ask(&zone, RecordType::TXT).answers.iter().map(|record| record.data.to_string()).collect();
        assert_eq!(texts, ["v=spf1 ip4:192.0.2.0/24 -all"]);
        let exchanges: Vec<String> =
            ask(&zone, RecordType::MX).answers.iter().map(|record| record.data.to_string()).collect();
        assert_eq!(exchanges, ["10 mx.bounces.esp.example."]);
        assert_eq!(zone.exchanges(name), [(10, "mx.bounces.esp.example".to_string())]);
        // In the zone file, and gone with the domain.
        let (file, _) = zone.zone_file();
        assert!(file.contains("shop-example-com.rp.esp.example. 3600 IN MX 10 mx.bounces.esp.example."), "{file}");
        zone.replace(name, &NameContents::default());
        assert_eq!(ask(&zone, RecordType::MX).metadata.response_code, ResponseCode::NXDomain);
        zone.replace(name, &NameContents { return_path: true, ..NameContents::default() });
        assert_eq!(ask(&zone, RecordType::MX).answers.len(), 1, "back after a change");
        // Other names have no MX.
        let key = Message::from_vec(
            &zone.answer(&query("sa1-1.shop-example-com.dkim.esp.example.", RecordType::MX), false).expect("answer"),
        )
        .expect("parses");
        assert!(key.answers.is_empty() && key.metadata.response_code == ResponseCode::NoError, "NODATA");
    }

    #[test]
    fn in_demo_mode_sandbox_zones_answer_with_their_cnames_followed_into_the_platform_zone() {
        let mut zone = zone();
        zone.settings.sandbox = true;
        let record = |id, name: &str, kind: &str, value: &str| SandboxRecord {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
            value: value.to_string(),
        };
        let contents = NameContents {
            sandbox_apex: true,
            sandbox_records: vec![record(1, "example.com", "MX", "10 mx.example.com")],
            ..NameContents::default()
        };
        zone.replace("example.com", &contents);
        let cname = "sa1-1._domainkey.shop.example.com";
        let contents = NameContents {
            sandbox_records: vec![record(2, cname, "CNAME", "sa1-1.shop-example-com.dkim.esp.example")],
            ..NameContents::default()
        };
        zone.replace(cname, &contents);
        let ask = |zone: &Zone, name: &str, kind| {
            Message::from_vec(&zone.answer(&query(name, kind), false).expect("an answer")).expect("parses")
        };
        let answer = |name: &str, kind| ask(&zone, name, kind);

        // The CNAME, and the key it points to, in one answer.
        let keys = answer("SA1-1._domainkey.shop.example.com.", RecordType::TXT);
        assert!(keys.metadata.authoritative);
        let kinds: Vec<RecordType> = keys.answers.iter().map(|record| record.record_type()).collect();
        assert_eq!(kinds, [RecordType::CNAME, RecordType::TXT]);
        assert_eq!(keys.answers[0].ttl, senderauth_core::sandbox::TTL);
        // Asked for the CNAME itself: only it.
        assert_eq!(answer(&format!("{cname}."), RecordType::CNAME).answers.len(), 1);
        // The zone's apex has its SOA, NS and MX; an empty non-terminal is NODATA; a name that
        // is nowhere is NXDOMAIN (the server is the whole DNS in demo mode), not REFUSED.
        assert_eq!(answer("example.com.", RecordType::MX).answers.len(), 1);
        assert_eq!(answer("example.com.", RecordType::SOA).answers.len(), 1);
        let between = answer("_domainkey.shop.example.com.", RecordType::TXT);
        assert_eq!((between.metadata.response_code, between.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(between.authorities[0].ttl, senderauth_core::sandbox::TTL);
        assert_eq!(answer("nothing.example.com.", RecordType::TXT).metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(answer("_dmarc.com.", RecordType::TXT).metadata.response_code, ResponseCode::NXDomain);
        // Over 64 KiB at one name: over TCP, as many whole records as fit, TC set; over UDP,
        // the question alone with TC.
        let big = "txt.example.com";
        let records: Vec<SandboxRecord> = (0..40)
            .map(|number| record(100 + number, big, "TXT", &format!("{number:02}{}", "x".repeat(2_998))))
            .collect();
        zone.replace(big, &NameContents { sandbox_records: records, ..NameContents::default() });
        let bytes = zone.answer(&query("txt.example.com.", RecordType::TXT), false).expect("an answer");
        assert!(bytes.len() <= MAX_TCP_MESSAGE, "{} octets", bytes.len());
        let cut = Message::from_vec(&bytes).expect("a well-formed message");
        assert!(cut.metadata.truncation && (20..40).contains(&cut.answers.len()), "{} records", cut.answers.len());
        for record in &cut.answers {
            let RData::TXT(text) = &record.data else { panic!("TXT") };
            assert_eq!(text.txt_data.iter().map(|part| part.len()).sum::<usize>(), 3_000, "whole records only");
        }
        let over_udp =
            Message::from_vec(&zone.answer(&query("txt.example.com.", RecordType::TXT), true).expect("an answer"))
                .expect("parses");
        assert!(over_udp.metadata.truncation && over_udp.answers.is_empty());
        // The record removed: gone.
        zone.replace(cname, &NameContents::default());
        let gone = ask(&zone, &format!("{cname}."), RecordType::TXT);
        assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    }
}
