//! senderauth's DMARC aggregate reports: what they arrive in (`container`: bare XML, gzip, zip,
//! or a mail message with one attached) and what they say (`aggregate`: RFC 9990 and RFC 7489
//! reports, read as a stream under hostile-input limits). It knows no store, HTTP or SMTP: the
//! service stores what it reads, the front ends hand it bytes.

pub mod aggregate;
pub mod container;

pub use aggregate::{AggregateReport, Limits, ReportError, ReportHeader, ReportRecord, parse, parse_stream};
pub use container::{PackedReport, Packing, UnpackError, UnpackLimits, unpack};

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
