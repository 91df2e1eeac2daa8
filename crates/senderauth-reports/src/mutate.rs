//! Hostile inputs made from real ones, for the fuzz-style test and benchmark (stable Rust, no
//! fuzzing engine): each case is a sample changed by a few random edits (bytes flipped, inserted,
//! removed, repeated; the input cut short; two samples spliced; XML fragments that parsers trip
//! on), sometimes edited as XML and packed again in gzip, so that the edits reach the parser
//! through the unpacking. Deterministic from the seed, so a failing case can be made again.

use std::io::Write;

/// A small fast generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 { 0 } else { (self.next_u64() % bound as u64) as usize }
    }
}

/// What XML readers trip on.
const FRAGMENTS: [&[u8]; 14] = [
    b"<record>",
    b"</record>",
    b"<row><source_ip>",
    b"&amp;",
    b"&#x0;",
    b"&lt",
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
    b"&a;",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
    b"\xff\xfe",
    b"<count>99999999999999999999999</count>",
    b"<begin>-1</begin>",
];

/// One case from `samples` (each the bytes of a sample file; `xml` the plain-XML ones).
pub fn case(rng: &mut Rng, samples: &[Vec<u8>], xml: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        // Pure noise, now and then.
        0 => (0..rng.below(2048)).map(|_| rng.next_u64() as u8).collect(),
        // XML edited, then packed in gzip: the edits go through the unpacking.
        1 | 2 if !xml.is_empty() => {
            let chosen = rng.below(xml.len());
            let edited = edit(rng, &xml[chosen], samples);
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = gzip.write_all(&edited);
            gzip.finish().unwrap_or_default()
        }
        _ => {
            let chosen = rng.below(samples.len());
            edit(rng, &samples[chosen], samples)
        }
    }
}

/// A few random edits of `input`.
fn edit(rng: &mut Rng, input: &[u8], samples: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            0 if !bytes.is_empty() => {
                let index = at.min(bytes.len() - 1);
                bytes[index] ^= 1 << rng.below(8);
            }
            1 => {
                let noise: Vec<u8> = (0..rng.below(16) + 1).map(|_| rng.next_u64() as u8).collect();
                bytes.splice(at..at, noise);
            }
            2 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(256)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                for _ in 0..rng.below(4) + 1 {
                    bytes.splice(at..at, copy.iter().copied());
                }
            }
            4 => bytes.truncate(at),
            5 => {
                let other = &samples[rng.below(samples.len())];
                let from = rng.below(other.len() + 1);
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                bytes.splice(at..at, fragment.iter().copied());
            }
        }
    }
    bytes
}
