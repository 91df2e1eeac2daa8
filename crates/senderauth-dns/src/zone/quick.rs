//! The common query answered straight from its bytes: one question (TXT, MX, A, AAAA or CNAME)
//! for a name below one of the platform's apexes, with or without an EDNS version 0 record.
//! The question is read in place, the answer written into one buffer, and nothing else is
//! allocated but the name's map key: no message is parsed into hickory's types or built from
//! them, which was most of the server's own time per query (`bench/dns.sh`, docs/benchmarks.md).
//!
//! Everything else (another opcode or class, several questions, a compressed or unusual name,
//! the apex, zone transfers, ANY, EDNS of another version, demo mode's sandbox zones, malformed
//! input) returns `None` and takes [`Zone::answer`]'s general path, whose answers these are
//! checked against in the tests.

use super::{MAX_TCP_MESSAGE, MAX_UDP_PAYLOAD, Node, Zone, reversed};

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const NXDOMAIN: u8 = 3;
/// A compression pointer to the question's name, which starts right after the header.
const POINTER_TO_QUESTION: [u8; 2] = [0xc0, 0x0c];

/// What the query asked, read in place.
struct Question {
    /// The end of the question section (the answer copies it).
    end: usize,
    qtype: u16,
    /// The name, lowercase, without the final dot.
    name: String,
    /// Where each label starts in the request, for pointers to the apex.
    label_offsets: Vec<usize>,
    /// The client's EDNS UDP payload size, if it sent an OPT record.
    edns_payload: Option<u16>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The question of a plain query, or `None` for anything the general path should see.
fn read_question(request: &[u8]) -> Option<Question> {
    let header = request.get(..12)?;
    // QR 0, opcode QUERY, TC 0 (RD is echoed, AA ignored); one question, nothing else but an
    // optional OPT record.
    if header[2] & 0xfa != 0 || u16_at(header, 4)? != 1 || u16_at(header, 6)? != 0 || u16_at(header, 8)? != 0 {
        return None;
    }
    let additional = u16_at(header, 10)?;
    if additional > 1 {
        return None;
    }
    let mut at = 12;
    let mut name = String::with_capacity(64);
    let mut label_offsets = Vec::with_capacity(8);
    loop {
        let length = usize::from(*request.get(at)?);
        if length == 0 {
            at += 1;
            break;
        }
        // A compression pointer or an extended label type, or a label of other characters
        // than letters, digits, hyphen and underscore: the general path.
        let label = request.get(at + 1..at + 1 + length).filter(|_| length <= 63)?;
        if !label.iter().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_')) {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        label_offsets.push(at);
        name.extend(label.iter().map(|byte| char::from(byte.to_ascii_lowercase())));
        at += 1 + length;
        if at - 12 >= 255 {
            return None;
        }
    }
    let qtype = u16_at(request, at)?;
    if !matches!(qtype, TYPE_A | TYPE_CNAME | TYPE_MX | TYPE_TXT | TYPE_AAAA) || u16_at(request, at + 2)? != CLASS_IN {
        return None;
    }
    let end = at + 4;
    let mut edns_payload = None;
    if additional == 1 {
        // The OPT record: the root name, type OPT, the payload size as class, then the extended
        // RCODE, version 0 and flags, and options that are not needed for the answer.
        let opt = request.get(end..end + 11)?;
        if opt[0] != 0 || u16_at(opt, 1)? != TYPE_OPT || opt[5] != 0 || opt[6] != 0 {
            return None;
        }
        edns_payload = Some(u16_at(opt, 3)?);
        if end + 11 + usize::from(u16_at(opt, 9)?) != request.len() {
            return None;
        }
    } else if end != request.len() {
        return None;
    }
    if label_offsets.is_empty() {
        return None;
    }
    Some(Question { end, qtype, name, label_offsets, edns_payload })
}

/// A name written uncompressed, or nothing for one that is not a valid DNS name.
fn write_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    for label in name.trim_end_matches('.').split('.').filter(|label| !label.is_empty()) {
        out.push(u8::try_from(label.len()).ok().filter(|length| *length <= 63)?);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Some(())
}

/// Writes a record's fixed part and returns where its RDLENGTH goes.
fn start_record(out: &mut Vec<u8>, owner: [u8; 2], kind: u16, ttl: u32) -> usize {
    out.extend_from_slice(&owner);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.len() - 2
}

/// Fills in the RDLENGTH of the record started at `length_at`.
fn finish_record(out: &mut [u8], length_at: usize) -> Option<()> {
    let length = u16::try_from(out.len() - length_at - 2).ok()?;
    out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    Some(())
}

impl Zone {
    /// The answer to a plain query, or `None` when the general path must answer it.
    pub(super) fn quick_answer(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        if self.settings.sandbox {
            return None;
        }
        let question = read_question(request)?;
        let apex = self.apex_of(&question.name)?;
        if question.name.len() == apex.len() {
            return None;
        }
        // The apex's first label in the question, for the SOA's owner.
        let apex_labels = apex.split('.').count();
        let apex_at = *question.label_offsets.get(question.label_offsets.len().checked_sub(apex_labels)?)?;
        let pointer_to_apex = u16::try_from(apex_at).ok().filter(|at| *at < 0x4000)? | 0xc000;

        let key = reversed(&question.name);
        let node = self.nodes.get(key.as_str());
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&request[..2]);
        // QR, AA and the client's RD; its CD; RCODE filled in below.
        out.push(0x84 | (request[2] & 0x01));
        out.push(request[3] & 0x10);
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&request[12..question.end]);
        let mut answers = match node {
            Some(node) => self.write_answers(&mut out, node, question.qtype)?,
            None => 0,
        };
        let mut authorities = 0u16;
        if answers == 0 {
            if node.is_none() && !self.has_names_below(&key) {
                out[3] |= NXDOMAIN;
            }
            self.write_soa(&mut out, pointer_to_apex.to_be_bytes())?;
            authorities = 1;
        }
        let limit = match question.edns_payload {
            _ if !udp => MAX_TCP_MESSAGE,
            Some(payload) => usize::from(payload.clamp(512, MAX_UDP_PAYLOAD)),
            None => 512,
        };
        let opt_length = if question.edns_payload.is_some() { 11 } else { 0 };
        if out.len() + opt_length > limit {
            if !udp {
                return None;
            }
            // Too big for this client over UDP: the question alone with TC set; it retries over
            // TCP (RFC 7766).
            out.truncate(question.end);
            out[2] |= 0x02;
            (answers, authorities) = (0, 0);
        }
        out[6..8].copy_from_slice(&answers.to_be_bytes());
        out[8..10].copy_from_slice(&authorities.to_be_bytes());
        if question.edns_payload.is_some() {
            out[10..12].copy_from_slice(&1u16.to_be_bytes());
            // Our OPT: the payload size we take, version 0, no DO, no options.
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        Some(out)
    }

    /// The node's records of the asked type; how many.
    fn write_answers(&self, out: &mut Vec<u8>, node: &Node, qtype: u16) -> Option<u16> {
        let mut count = 0u16;
        if qtype == TYPE_TXT {
            for text in node.texts(&self.settings) {
                let length_at = start_record(out, POINTER_TO_QUESTION, TYPE_TXT, self.settings.ttl);
                // A character-string holds at most 255 octets; longer texts are split.
                for chunk in text.as_bytes().chunks(255) {
                    out.push(u8::try_from(chunk.len()).ok()?);
                    out.extend_from_slice(chunk);
                }
                if text.is_empty() {
                    out.push(0);
                }
                finish_record(out, length_at)?;
                count += 1;
            }
        }
        if qtype == TYPE_MX && node.return_path {
            for (preference, host) in self.bounce_exchanges() {
                let length_at = start_record(out, POINTER_TO_QUESTION, TYPE_MX, self.settings.ttl);
                out.extend_from_slice(&preference.to_be_bytes());
                write_name(out, &host)?;
                finish_record(out, length_at)?;
                count += 1;
            }
        }
        Some(count)
    }

    /// The apex's SOA, for a negative answer (its minimum is the negative TTL).
    fn write_soa(&self, out: &mut Vec<u8>, owner: [u8; 2]) -> Option<()> {
        let negative_ttl = self.settings.negative_ttl;
        let length_at = start_record(out, owner, TYPE_SOA, negative_ttl);
        match self.settings.nameservers.first() {
            Some(primary) => write_name(out, primary)?,
            None => {
                // The apex itself, as the general path does.
                let pointer = u16::from_be_bytes(owner) & 0x3fff;
                out.extend_from_slice(&(pointer | 0xc000).to_be_bytes());
            }
        }
        write_name(out, &self.settings.hostmaster)?;
        for value in [self.serial, 3600, 600, 1_209_600, negative_ttl] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        finish_record(out, length_at)
    }
}
