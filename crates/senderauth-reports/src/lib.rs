//! The reports mail servers send back. DMARC aggregate reports: what they arrive in
//! (`container`: bare XML, gzip, zip, or a mail message with one attached) and what they say
//! (`aggregate`: RFC 9990 and RFC 7489 reports, read as a stream under hostile-input limits);
//! failure and TLS reports (`feedback`); bounces (`bounce`: RFC 3464 delivery status
//! notifications and the common plain-text forms). It knows no store, HTTP or SMTP: the service
//! stores what it reads, the front ends hand it bytes.

pub mod aggregate;
pub mod attribution;
pub mod bounce;
pub mod container;
pub mod feedback;
pub mod mutate;

pub use aggregate::{AggregateReport, Limits, ReportError, ReportHeader, ReportRecord, parse, parse_stream};
pub use attribution::{SourceClass, classify, passed};
pub use bounce::{Bounce, BounceError, BounceKind, parse_bounce};
pub use container::{PackedReport, Packing, UnpackError, UnpackLimits, unpack};
pub use feedback::{FailureReport, OtherReport, TlsReport, recognize};

/// Why bytes did not yield a report: they did not unpack, or what they held did not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Every report in `input` (a file or a message), read whole, each with how it was packed.
pub fn read_reports(input: &[u8]) -> Result<Vec<(Packing, AggregateReport)>, ReadError> {
    let mut reports = Vec::new();
    for packed in unpack(input, UnpackLimits::default())? {
        let mut records = Vec::new();
        let mut header = parse_stream(packed.xml()?, Limits::default(), |_, record| {
            records.push(record);
            Ok(())
        })?;
        if packed.truncated() {
            header.deviations.push("the compressed stream ends early (no trailer); the report was whole".to_string());
        }
        reports.push((packed.packing, AggregateReport { header, records }));
    }
    Ok(reports)
}

/// `bytes` gzip-compressed, as reports and unreadable messages are kept.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut packed = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    packed.write_all(bytes).and_then(|()| packed.finish()).unwrap_or_default()
}

/// What [`stream_reports`] hands on as it reads.
pub enum ReportEvent<'a> {
    /// Records of the report being read, with its header as read so far.
    Records { header: &'a ReportHeader, records: Vec<ReportRecord> },
    /// The report is read: its whole header and its XML, gzip-compressed (empty when the XML
    /// compressed past [`MAX_KEPT_XML`]).
    Finished { header: Box<ReportHeader>, xml_gzip: Vec<u8> },
    /// The report in this part (`file`, when named) could not be read; the message says why.
    Failed { file: Option<String>, error: String },
}

/// The most compressed XML kept of one report.
pub const MAX_KEPT_XML: usize = 64 << 20;

/// Reads every report in `input` as a stream, handing on records in batches of `batch`; a
/// report that does not read is `Failed` and the next is read. An error from `on_event` stops
/// the report being read (it is then `Failed` with that message). Err: `input` did not unpack.
pub fn stream_reports(
    input: &[u8],
    batch: usize,
    mut on_event: impl FnMut(ReportEvent<'_>) -> Result<(), String>,
) -> Result<(), UnpackError> {
    for packed in unpack(input, UnpackLimits::default())? {
        let file = packed.file_name.clone();
        let xml = match packed.xml() {
            Ok(xml) => xml,
            Err(error) => {
                on_event(ReportEvent::Failed { file, error: error.to_string() }).ok();
                continue;
            }
        };
        let mut copy =
            Copy { inner: xml, gzip: Some(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())) };
        let mut records = Vec::with_capacity(batch);
        let mut stopped: Option<String> = None;
        let result = parse_stream(std::io::BufReader::new(&mut copy), Limits::default(), |header, record| {
            records.push(record);
            if records.len() >= batch.max(1) {
                let records = std::mem::take(&mut records);
                on_event(ReportEvent::Records { header, records })
                    .inspect_err(|error| stopped = Some(error.clone()))?;
            }
            Ok(())
        });
        let mut header = match (result, stopped) {
            (_, Some(error)) => {
                on_event(ReportEvent::Failed { file, error }).ok();
                continue;
            }
            (Err(error), None) => {
                on_event(ReportEvent::Failed { file, error: error.to_string() }).ok();
                continue;
            }
            (Ok(header), None) => header,
        };
        if packed.truncated() {
            header.deviations.push("the compressed stream ends early (no trailer); the report was whole".to_string());
        }
        if !records.is_empty() && on_event(ReportEvent::Records { header: &header, records }).is_err() {
            continue;
        }
        let xml_gzip = copy.gzip.and_then(|gzip| gzip.finish().ok()).unwrap_or_default();
        on_event(ReportEvent::Finished { header: Box::new(header), xml_gzip }).ok();
    }
    Ok(())
}

/// The XML as it is read, and a gzip copy of it (dropped past [`MAX_KEPT_XML`]).
struct Copy<R> {
    inner: R,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

impl<R: std::io::Read> std::io::Read for Copy<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write;
        let read = self.inner.read(buffer)?;
        if let Some(gzip) = &mut self.gzip
            && (gzip.write_all(&buffer[..read]).is_err() || gzip.get_ref().len() > MAX_KEPT_XML)
        {
            self.gzip = None;
        }
        Ok(read)
    }
}
