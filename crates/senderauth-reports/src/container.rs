//! What a report arrives in: bare XML, gzip, zip, or a mail message with one of those attached
//! (RFC 9990 section 3.5; real receivers also send `application/octet-stream` and name the file
//! only). Told apart by content first (the magic bytes), then by content type or file name.
//!
//! Hostile input: the message is at most [`UnpackLimits::max_message`] bytes, and decompression
//! is a stream that fails once it has produced [`UnpackLimits::max_uncompressed`] bytes or more
//! than [`UnpackLimits::max_ratio`] times what it read, so a bomb costs a bounded amount of work
//! and no memory beyond the parser's. A zip archive is read entry by entry from its local
//! headers (a report archive holds one file; at most [`UnpackLimits::max_zip_entries`] are
//! looked at): hand-rolled in a few lines rather than the `zip` crate, whose reader starts
//! from the central directory and trusts the sizes it declares, where a report needs one
//! entry streamed under the limits above. (Its build cost was not measured.)

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::rc::Rc;

use flate2::read::{DeflateDecoder, MultiGzDecoder};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// How much unpacking may cost.
#[derive(Clone, Copy, Debug)]
pub struct UnpackLimits {
    pub max_message: usize,
    pub max_uncompressed: u64,
    pub max_ratio: u64,
    pub max_zip_entries: usize,
}

impl Default for UnpackLimits {
    fn default() -> UnpackLimits {
        UnpackLimits {
            max_message: 25 * 1024 * 1024,
            max_uncompressed: 512 * 1024 * 1024,
            max_ratio: 1000,
            max_zip_entries: 16,
        }
    }
}

/// How a report was packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Packing {
    Xml,
    Gzip,
    Zip,
}

/// Why nothing could be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the input is empty")]
    Empty,
    #[error("the input is {size} bytes; at most {max} are taken")]
    TooLarge { size: usize, max: usize },
    #[error("the zip archive is damaged: {0}")]
    BadZip(String),
    #[error("the zip archive holds no XML file among its first {0} entries")]
    NoXmlInZip(usize),
    #[error("the zip entry is packed with method {0}; reports use deflate (8) or none (0)")]
    ZipMethod(u16),
    #[error("the message has no DMARC report attached (no XML, gzip or zip part)")]
    NoReportInMessage,
    #[error("the input is neither XML, gzip, zip nor a mail message")]
    Unrecognized,
}

/// One report to read: how it was packed, and the packed bytes (borrowed from a file, owned
/// when decoded from a message part).
pub struct PackedReport<'a> {
    pub packing: Packing,
    /// The attachment's file name, when it came in a message.
    pub file_name: Option<String>,
    data: Cow<'a, [u8]>,
    limits: UnpackLimits,
    truncated: Rc<Cell<bool>>,
}

impl PackedReport<'_> {
    /// The report's XML, as a stream unpacked while it is read.
    pub fn xml(&self) -> Result<Box<dyn BufRead + '_>, UnpackError> {
        let bytes: &[u8] = &self.data;
        let taken = Rc::new(Cell::new(0));
        let counted = |bytes| Counted { bytes, taken: taken.clone() };
        let inner: Box<dyn Read + '_> = match self.packing {
            Packing::Xml => return Ok(Box::new(Cursor::new(bytes))),
            Packing::Gzip => Box::new(MultiGzDecoder::new(counted(bytes))),
            Packing::Zip => match zip_entry(bytes, self.limits)? {
                (0, data) => Box::new(counted(data)),
                (_, data) => Box::new(DeflateDecoder::new(counted(data))),
            },
        };
        Ok(Box::new(BufReader::new(Bounded {
            inner,
            produced: 0,
            taken,
            truncated: self.truncated.clone(),
            limits: self.limits,
        })))
    }

    /// Whether the packed stream ended before its end (read as far as it went).
    pub fn truncated(&self) -> bool {
        self.truncated.get()
    }
}

/// The reports in `input`: one for a file, one or more for a message.
pub fn unpack(input: &[u8], limits: UnpackLimits) -> Result<Vec<PackedReport<'_>>, UnpackError> {
    if input.is_empty() {
        return Err(UnpackError::Empty);
    }
    if input.len() > limits.max_message {
        return Err(UnpackError::TooLarge { size: input.len(), max: limits.max_message });
    }
    if let Some(report) = unpack_file(Cow::Borrowed(input), None, limits)? {
        return Ok(vec![report]);
    }
    if looks_like_message(input) {
        return unpack_message(input, limits);
    }
    Err(UnpackError::Unrecognized)
}

/// A file by its content: `None` when it is none of XML, gzip or zip.
fn unpack_file<'a>(
    data: Cow<'a, [u8]>,
    file_name: Option<String>,
    limits: UnpackLimits,
) -> Result<Option<PackedReport<'a>>, UnpackError> {
    let packing = if data.starts_with(&[0x1f, 0x8b]) {
        Packing::Gzip
    } else if data.starts_with(b"PK\x03\x04") {
        // Checked now, so that a damaged archive is refused when it arrives.
        zip_entry(&data, limits)?;
        Packing::Zip
    } else if looks_like_xml(&data) {
        Packing::Xml
    } else {
        return Ok(None);
    };
    Ok(Some(PackedReport { packing, file_name, data, limits, truncated: Rc::default() }))
}

/// Whether the bytes start (after a byte order mark and white space) with `<`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'<')
}

/// Whether the bytes start with a mail header line (`Name: value`).
fn looks_like_message(bytes: &[u8]) -> bool {
    let line = bytes.split(|byte| *byte == b'\n').next().unwrap_or_default();
    line.iter().position(|byte| *byte == b':').is_some_and(|colon| {
        colon > 0 && line[..colon].iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
    })
}

/// The reports attached to a mail message: each part whose content is XML, gzip or zip, or
/// whose type or name says it is a report.
fn unpack_message(input: &[u8], limits: UnpackLimits) -> Result<Vec<PackedReport<'_>>, UnpackError> {
    let message = MessageParser::default().parse(input).ok_or(UnpackError::NoReportInMessage)?;
    let mut found = Vec::new();
    for part in message.parts.iter().filter(|part| !part.is_multipart() && !part.is_message()) {
        let contents = part.contents();
        let named = part.attachment_name().map(str::to_string);
        let typed = part.content_type().map(|content_type| {
            format!("{}/{}", content_type.ctype(), content_type.subtype().unwrap_or("")).to_ascii_lowercase()
        });
        let reportish = typed.as_deref().is_some_and(|kind| {
            kind.contains("gzip")
                || kind.contains("zip")
                || kind.ends_with("/xml")
                || kind == "application/octet-stream"
        }) || named.as_deref().is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            name.ends_with(".xml") || name.ends_with(".gz") || name.ends_with(".zip")
        });
        // The message's own text (a "this is a DMARC report" body) is not a report.
        if !reportish || contents.is_empty() {
            continue;
        }
        // The part's decoded bytes outlive the parsed message: copied (within the message's size).
        if let Some(report) = unpack_file(Cow::Owned(contents.to_vec()), named, limits)? {
            found.push(report);
        }
    }
    if found.is_empty() { Err(UnpackError::NoReportInMessage) } else { Ok(found) }
}

/// The first XML entry of a zip archive: its method and its packed data.
fn zip_entry(bytes: &[u8], limits: UnpackLimits) -> Result<(u16, &[u8]), UnpackError> {
    let mut offset = 0;
    for _ in 0..limits.max_zip_entries {
        let header =
            bytes.get(offset..offset + 30).ok_or_else(|| UnpackError::BadZip("a local header is cut short".into()))?;
        if !header.starts_with(b"PK\x03\x04") {
            break;
        }
        let word = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let long = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let (flags, method) = (word(6), word(8));
        let packed_size = long(18) as usize;
        let (name_length, extra_length) = (word(26) as usize, word(28) as usize);
        let name_start = offset + 30;
        let data_start = name_start + name_length + extra_length;
        let name = bytes
            .get(name_start..name_start + name_length)
            .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
            .ok_or_else(|| UnpackError::BadZip("a file name is cut short".into()))?;
        // With a data descriptor (flag 3) the sizes come after the data: the deflate stream's own
        // end marks it, so the rest of the archive is handed to the decoder.
        let data = if flags & 0x08 != 0 {
            bytes.get(data_start..).ok_or_else(|| UnpackError::BadZip("the data is cut short".into()))?
        } else {
            bytes
                .get(data_start..data_start + packed_size)
                .ok_or_else(|| UnpackError::BadZip("the data is cut short".into()))?
        };
        if name.ends_with(".xml") || !name.contains('.') {
            if method != 0 && method != 8 {
                return Err(UnpackError::ZipMethod(method));
            }
            return Ok((method, data));
        }
        if flags & 0x08 != 0 {
            break;
        }
        offset = data_start + packed_size;
    }
    Err(UnpackError::NoXmlInZip(limits.max_zip_entries))
}

/// A decompressing reader that fails (with an `io::Error` whose message says why) once it has
/// produced more than the limits allow; the packed bytes it has taken are counted by
/// [`Counted`], so the ratio is judged as the stream goes. A stream that ends early (a gzip
/// member without its trailer, as one receiver sends) ends the text there, noted in
/// `truncated`: if the report is whole by then, it is read.
struct Bounded<R> {
    inner: R,
    produced: u64,
    taken: Rc<Cell<u64>>,
    truncated: Rc<Cell<bool>>,
    limits: UnpackLimits,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = match self.inner.read(buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.truncated.set(true);
                0
            }
            Err(error) => return Err(error),
        };
        self.produced += read as u64;
        if self.produced > self.limits.max_uncompressed {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {} bytes: refused",
                self.limits.max_uncompressed
            )));
        }
        // The ratio only once there is enough to judge: a tiny report may compress well.
        if self.produced > 1024 * 1024 && self.produced / self.taken.get().max(1) > self.limits.max_ratio {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {} times its packed size: refused",
                self.limits.max_ratio
            )));
        }
        Ok(read)
    }
}

/// Packed bytes, counting how many the decompressor has taken.
struct Counted<'a> {
    bytes: &'a [u8],
    taken: Rc<Cell<u64>>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.bytes.read(buffer)?;
        self.taken.set(self.taken.get() + read as u64);
        Ok(read)
    }
}
