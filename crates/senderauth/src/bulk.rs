//! Bulk verification: JSON Lines or CSV in, JSON Lines out, streamed. A reader thread feeds a
//! bounded channel, at most `concurrency` checks run at once, and one writer prints results as
//! they finish, so memory does not grow with the input.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use senderauth_core::dns::Dns;
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::status::DomainStatus;
use senderauth_core::verify::verify_domain;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::cli::{EXIT_INVALID_INPUT, EXIT_OK};
use crate::commands::{Setup, exit_code, parse_domain};

/// One input row, parsed or not.
struct Job {
    line: u64,
    row: Result<(DomainName, AccountId), InvalidRow>,
}

struct InvalidRow {
    domain: String,
    account: String,
    message: String,
}

/// What the writer is handed: one output line and the status it counts under.
struct Finished {
    status: Option<DomainStatus>,
    json: String,
}

pub async fn run(
    setup: &Setup,
    input: &Path,
    output: Option<&Path>,
    default_account: Option<&str>,
    quiet: bool,
) -> Result<u8> {
    let reader: Box<dyn Read + Send> = if input == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(input).with_context(|| format!("opening input file {}", input.display()))?)
    };
    let writer: Box<dyn Write + Send> = match output {
        None => Box::new(std::io::stdout()),
        Some(path) if path == Path::new("-") => Box::new(std::io::stdout()),
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating output file {}", path.display()))?),
    };
    let default_account = default_account.map(str::to_string);
    let dns = Dns::new(&setup.resolver)?;
    let config = Arc::new(setup.config.clone());
    let (job_sender, mut jobs) = mpsc::channel::<Job>(setup.concurrency * 2);
    let reader_thread = std::thread::spawn(move || read_jobs(reader, default_account, job_sender));
    let (result_sender, results) = mpsc::channel::<Finished>(setup.concurrency * 2);
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let writer_task = tokio::spawn(write_results(writer, results, show_progress));
    let permits = Arc::new(Semaphore::new(setup.concurrency));
    while let Some(job) = jobs.recv().await {
        let sender = result_sender.clone();
        match job.row {
            Err(invalid) => {
                let finished = Finished { status: None, json: invalid_json(job.line, &invalid).to_string() };
                if sender.send(finished).await.is_err() {
                    break;
                }
            }
            Ok((domain, account)) => {
                let permit = permits.clone().acquire_owned().await.context("the check pool closed")?;
                let dns = dns.clone();
                let config = config.clone();
                tokio::spawn(async move {
                    let result = verify_domain(&dns, &config, &account, &domain).await;
                    let json = match serde_json::to_string(&result) {
                        // The input line number first, so results can be matched to input rows.
                        Ok(json) => format!("{{\"line\":{},{}", job.line, &json[1..]),
                        Err(error) => {
                            json!({ "line": job.line, "status": "error", "error": error.to_string() }).to_string()
                        }
                    };
                    let _ = sender.send(Finished { status: Some(result.status), json }).await;
                    drop(permit);
                });
            }
        }
    }
    drop(result_sender);
    let read_error = reader_thread.join().map_err(|_| anyhow::anyhow!("the input reader panicked"))?;
    let summary = writer_task.await.context("the output writer stopped")??;
    let elapsed = summary.started.elapsed().as_secs_f64();
    let lookups = dns.query_count();
    eprintln!(
        "senderauth: checked {} domains in {elapsed:.1}s ({:.0} domains/s): {} verified, {} partially verified, {} not verified, {} unknown, {} invalid input lines; {lookups} DNS lookups ({:.1} per domain)",
        summary.total,
        summary.total as f64 / elapsed.max(0.001),
        summary.verified,
        summary.partial,
        summary.not_verified,
        summary.unknown,
        summary.invalid,
        lookups as f64 / (summary.total - summary.invalid).max(1) as f64,
    );
    read_error?;
    let mut code = summary.worst;
    if summary.invalid > 0 {
        code = code.max(EXIT_INVALID_INPUT);
    }
    Ok(code)
}

fn invalid_json(line: u64, invalid: &InvalidRow) -> Value {
    let not_checked = json!({ "status": "not_checked" });
    json!({
        "line": line,
        "domain": invalid.domain,
        "account": invalid.account,
        "status": "invalid_input",
        "dkim": not_checked,
        "spf": not_checked,
        "dmarc": not_checked,
        "problems": [{
            "code": "invalid_input",
            "severity": "error",
            "method": "domain",
            "message": format!("line {line}: {}", invalid.message),
            "fix": "Correct this line of the input file and run it again.",
        }],
    })
}

/// Reads rows until the input ends or the receiver is gone. Returns an error only when the
/// input itself could not be read; a bad row becomes an `invalid_input` result.
fn read_jobs(reader: Box<dyn Read + Send>, default_account: Option<String>, jobs: mpsc::Sender<Job>) -> Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let first_byte =
        reader.fill_buf().context("reading the input")?.iter().copied().find(|byte| !byte.is_ascii_whitespace());
    let send = |job: Job| jobs.blocking_send(job).is_ok();
    if first_byte == Some(b'{') {
        for (index, line) in reader.lines().enumerate() {
            let line_number = index as u64 + 1;
            let line = line.with_context(|| format!("reading input line {line_number}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let row = match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(object)) => {
                    let field = |name: &str| match object.get(name) {
                        Some(Value::String(text)) => Some(text.clone()),
                        Some(Value::Number(number)) => Some(number.to_string()),
                        _ => None,
                    };
                    parse_row(field("domain"), field("account"), default_account.as_deref())
                }
                Ok(_) => Err(InvalidRow {
                    domain: String::new(),
                    account: String::new(),
                    message: "expected a JSON object like {\"domain\": \"example.com\", \"account\": \"42\"}"
                        .to_string(),
                }),
                Err(error) => Err(InvalidRow {
                    domain: String::new(),
                    account: String::new(),
                    message: format!("not valid JSON: {error}"),
                }),
            };
            if !send(Job { line: line_number, row }) {
                break;
            }
        }
    } else {
        let mut csv =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(reader);
        let mut record = csv::StringRecord::new();
        loop {
            let line_number = csv.position().line();
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(error) => {
                    let row = Err(InvalidRow {
                        domain: String::new(),
                        account: String::new(),
                        message: format!("not valid CSV: {error}"),
                    });
                    if !send(Job { line: line_number, row }) {
                        break;
                    }
                    continue;
                }
            }
            let domain = record.get(0).unwrap_or("");
            if line_number == 1 && domain.eq_ignore_ascii_case("domain") {
                continue;
            }
            if record.iter().all(str::is_empty) {
                continue;
            }
            let account = record.get(1).filter(|account| !account.is_empty()).map(str::to_string);
            let row = parse_row(Some(domain.to_string()), account, default_account.as_deref());
            if !send(Job { line: line_number, row }) {
                break;
            }
        }
    }
    Ok(())
}

fn parse_row(
    domain: Option<String>,
    account: Option<String>,
    default_account: Option<&str>,
) -> Result<(DomainName, AccountId), InvalidRow> {
    let domain_text = domain.unwrap_or_default();
    let account_text = account.or_else(|| default_account.map(str::to_string)).unwrap_or_default();
    let invalid = |message: String| InvalidRow { domain: domain_text.clone(), account: account_text.clone(), message };
    if domain_text.is_empty() {
        return Err(invalid("no domain: give a \"domain\" field (JSON) or a first column (CSV)".to_string()));
    }
    if account_text.is_empty() {
        return Err(invalid("no account: give an \"account\" field or column, or --account for every row".to_string()));
    }
    let domain = parse_domain(&domain_text).map_err(|error| invalid(error.to_string()))?;
    let account = AccountId::parse(&account_text).map_err(|error| invalid(error.to_string()))?;
    Ok((domain, account))
}

struct Summary {
    started: Instant,
    total: u64,
    verified: u64,
    partial: u64,
    not_verified: u64,
    unknown: u64,
    invalid: u64,
    worst: u8,
}

async fn write_results(
    writer: Box<dyn Write + Send>,
    mut results: mpsc::Receiver<Finished>,
    show_progress: bool,
) -> Result<Summary> {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let mut summary = Summary {
        started: Instant::now(),
        total: 0,
        verified: 0,
        partial: 0,
        not_verified: 0,
        unknown: 0,
        invalid: 0,
        worst: EXIT_OK,
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            finished = results.recv() => {
                let Some(finished) = finished else { break };
                writer.write_all(finished.json.as_bytes()).context("writing the output")?;
                writer.write_all(b"\n").context("writing the output")?;
                summary.total += 1;
                match finished.status {
                    Some(status) => {
                        summary.worst = summary.worst.max(exit_code(status));
                        match status {
                            DomainStatus::Verified => summary.verified += 1,
                            DomainStatus::PartiallyVerified => summary.partial += 1,
                            DomainStatus::NotVerified => summary.not_verified += 1,
                            DomainStatus::Unknown => summary.unknown += 1,
                        }
                    }
                    None => summary.invalid += 1,
                }
            }
            _ = ticker.tick(), if show_progress => {
                let rate = summary.total as f64 / summary.started.elapsed().as_secs_f64().max(0.001);
                eprint!(
                    "\r{} checked ({rate:.0}/s): {} verified, {} partial, {} not verified, {} unknown, {} invalid   ",
                    summary.total, summary.verified, summary.partial, summary.not_verified, summary.unknown, summary.invalid
                );
            }
        }
    }
    if show_progress {
        eprintln!();
    }
    writer.flush().context("writing the output")?;
    Ok(summary)
}
