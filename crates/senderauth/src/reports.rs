//! `senderauth dmarc parse`: DMARC aggregate reports read offline, printed as JSON Lines (a
//! report per line, as parsedmarc's JSON holds them) or CSV (a record per line with its
//! report's fields, as parsedmarc's CSV). `senderauth dmarc import`: the same files stored in
//! the service's store.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use senderauth_reports::{AggregateReport, read_reports};

use crate::cli::{DmarcParseArgs, EXIT_INVALID_INPUT, EXIT_OK, ReportFormat};

const CSV_HEADER: [&str; 24] = [
    "file",
    "org_name",
    "org_email",
    "report_id",
    "begin",
    "end",
    "domain",
    "adkim",
    "aspf",
    "p",
    "sp",
    "np",
    "pct",
    "source_ip",
    "count",
    "disposition",
    "dkim_aligned",
    "spf_aligned",
    "header_from",
    "envelope_from",
    "dkim_domains",
    "dkim_selectors",
    "dkim_results",
    "spf_results",
];

/// A file's bytes; `-` is standard input.
fn read_input(path: &std::path::Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("reading standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Stores every report of the files; a line per report says what became of it.
pub async fn import(
    files: &[std::path::PathBuf],
    store: &senderauth_store::Store,
    provider: &senderauth_core::config::ProviderConfig,
) -> Result<u8> {
    use senderauth_service::reports::{Intake, ReportSource};
    let mut refused = 0;
    for path in files {
        let name = path.display().to_string();
        let bytes = read_input(path)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let intake = Intake { store, provider, now, metrics: None };
        match intake.ingest(bytes, ReportSource::Import, None).await {
            Ok(ingested) => {
                for report in &ingested.reports {
                    let what = match (report.duplicate, report.conflicting) {
                        (false, _) => "stored",
                        (true, false) => "already stored",
                        (true, true) => "already stored, with other rows (the first copy is kept)",
                    };
                    println!(
                        "{name}: {what}: report {} from {} about {}, {} records, {} messages",
                        report.report_id, report.org_name, report.policy_domain, report.records, report.messages
                    );
                }
                for report in &ingested.refused {
                    refused += 1;
                    let part = report.file.as_deref().map(|file| format!(" ({file})")).unwrap_or_default();
                    eprintln!("senderauth: {name}{part}: not stored: {}", report.error);
                }
            }
            Err(senderauth_service::ServiceError::InvalidReport(reason)) => {
                refused += 1;
                eprintln!("senderauth: {name}: no report stored: {reason}");
            }
            Err(error) => return Err(anyhow::anyhow!("storing the reports of {name}: {error}")),
        }
    }
    Ok(if refused == 0 { EXIT_OK } else { EXIT_INVALID_INPUT })
}

/// One JSON line: the report with where it came from.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    report: &'a AggregateReport,
    file: &'a str,
    packing: senderauth_reports::Packing,
}

pub fn parse(args: DmarcParseArgs) -> Result<u8> {
    let mut csv = (args.format == ReportFormat::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
    // Written straight from the report (no JSON tree in between), through one buffer.
    let mut json = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(writer) = &mut csv {
        writer.write_record(CSV_HEADER)?;
    }
    let mut refused = 0;
    for path in &args.files {
        let name = path.display().to_string();
        let bytes = read_input(path)?;
        match read_reports(&bytes) {
            Ok(reports) => {
                for (packing, report) in reports {
                    match &mut csv {
                        Some(writer) => write_rows(writer, &name, &report)?,
                        None => {
                            serde_json::to_writer(&mut json, &JsonLine { report: &report, file: &name, packing })?;
                            json.write_all(b"\n")?;
                        }
                    }
                }
            }
            Err(error) => {
                refused += 1;
                eprintln!("{name}: {error}");
            }
        }
    }
    json.flush()?;
    Ok(if refused > 0 { EXIT_INVALID_INPUT } else { EXIT_OK })
}

fn write_rows(writer: &mut csv::Writer<std::io::Stdout>, file: &str, report: &AggregateReport) -> Result<()> {
    let header = &report.header;
    let policy = &header.policy;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    for record in &report.records {
        let join = |values: Vec<String>| values.join(",");
        writer.write_record([
            file.to_string(),
            header.org_name.clone(),
            text(&header.email),
            header.report_id.clone(),
            header.begin.to_string(),
            header.end.to_string(),
            policy.domain.clone(),
            text(&policy.adkim),
            text(&policy.aspf),
            text(&policy.p),
            text(&policy.sp),
            text(&policy.np),
            policy.pct.map(|pct| pct.to_string()).unwrap_or_default(),
            record.source_ip.to_string(),
            record.count.to_string(),
            record.disposition.clone(),
            record.dkim.clone(),
            record.spf.clone(),
            record.header_from.clone(),
            text(&record.envelope_from),
            join(record.dkim_results.iter().map(|result| result.domain.clone()).collect()),
            join(record.dkim_results.iter().map(|result| text(&result.selector)).collect()),
            join(record.dkim_results.iter().map(|result| result.result.clone()).collect()),
            join(record.spf_results.iter().map(|result| result.result.clone()).collect()),
        ])?;
    }
    writer.flush()?;
    Ok(())
}
