//! Bulk verification: JSON Lines or CSV in, JSON Lines out, streamed.
//!
//! A reader thread parses rows and deals them out to one check thread per core; each runs its
//! own single-threaded runtime and resolver, so a query's answer wakes the task that asked on
//! the same thread (cross-thread wake-ups cost more than the checks themselves at thousands of
//! domains a second). One writer thread prints results as they finish, handed over in batches
//! (a hand-over per result woke the writer for each: a tenth of the run's CPU). Channels are
//! bounded and at most `concurrency` checks run at once, so memory does not grow with the input.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::status::DomainStatus;
use senderauth_core::verify::{Verification, verify_domain};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::cli::{EXIT_INVALID_INPUT, EXIT_OK};
use crate::setup::{Setup, exit_code, parse_domain};

/// A row to check: its line number, domain and account.
type Row = (u64, DomainName, AccountId);

struct InvalidRow {
    domain: String,
    account: String,
    message: String,
}

impl InvalidRow {
    /// A row that could not even be read into a domain and an account.
    fn unreadable(message: String) -> InvalidRow {
        InvalidRow { domain: String::new(), account: String::new(), message }
    }
}

/// What the writer is handed: one output line and the status it counts under.
struct Finished {
    status: Option<DomainStatus>,
    json: String,
}

/// Results a check thread hands the writer at once, at most.
const OUTPUT_BATCH: usize = 32;
/// How long a finished result may wait for its batch to fill.
const OUTPUT_DELAY: Duration = Duration::from_millis(50);

/// A check thread's results not yet handed to the writer.
#[derive(Clone)]
struct Outbox {
    waiting: Arc<std::sync::Mutex<Vec<Finished>>>,
    writer: SyncSender<Vec<Finished>>,
}

impl Outbox {
    /// Adds a result; hands the batch over once it is full.
    fn push(&self, finished: Finished) {
        let full = match self.waiting.lock() {
            Ok(mut waiting) => {
                waiting.push(finished);
                (waiting.len() >= OUTPUT_BATCH).then(|| std::mem::take(&mut *waiting))
            }
            Err(_) => Some(vec![finished]),
        };
        if let Some(batch) = full {
            // The writer drains this channel on its own thread; a full channel only pauses
            // this thread's checks until it does.
            let _ = self.writer.send(batch);
        }
    }

    /// Hands over whatever waits.
    fn flush(&self) {
        let batch = self.waiting.lock().map(|mut waiting| std::mem::take(&mut *waiting)).unwrap_or_default();
        if !batch.is_empty() {
            let _ = self.writer.send(batch);
        }
    }
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
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let resolver = setup.resolver.clone();
    let config = Arc::new(setup.config.clone());
    let concurrency = setup.concurrency;
    tokio::task::spawn_blocking(move || {
        run_threads(reader, writer, default_account, resolver, config, concurrency, show_progress)
    })
    .await
    .context("the bulk run stopped")?
}

fn run_threads(
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    default_account: Option<String>,
    resolver: ResolverSettings,
    config: Arc<ProviderConfig>,
    concurrency: usize,
    show_progress: bool,
) -> Result<u8> {
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get).clamp(1, concurrency);
    let per_thread = concurrency.div_ceil(threads);
    let (result_sender, results) = sync_channel::<Vec<Finished>>((concurrency * 2).div_ceil(OUTPUT_BATCH).max(2));
    let mut row_senders = Vec::with_capacity(threads);
    let mut checkers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (row_sender, rows) = mpsc::channel::<Row>(per_thread * 2);
        row_senders.push(row_sender);
        let (results, resolver, config) = (result_sender.clone(), resolver.clone(), config.clone());
        let checker = std::thread::Builder::new()
            .name(format!("check-{index}"))
            .spawn(move || check_rows(rows, results, &resolver, config, per_thread))
            .context("starting a check thread")?;
        checkers.push(checker);
    }
    let invalid_sender = result_sender;
    let reader = std::thread::spawn(move || read_rows(reader, default_account, row_senders, invalid_sender));
    let summary = write_results(writer, results, show_progress);
    let read_result = reader.join().map_err(|_| anyhow::anyhow!("the input reader panicked"))?;
    let mut lookups = 0;
    for checker in checkers {
        lookups += checker.join().map_err(|_| anyhow::anyhow!("a check thread panicked"))??;
    }
    let summary = summary?;
    read_result?;
    let elapsed = summary.started.elapsed().as_secs_f64();
    eprintln!(
        "senderauth: checked {} domains in {elapsed:.2}s ({:.0} domains/s): {} verified, {} partially verified, {} not verified, {} unknown, {} invalid input lines; {lookups} DNS queries sent ({:.1} per domain)",
        summary.total,
        summary.total as f64 / elapsed.max(0.001),
        summary.verified,
        summary.partial,
        summary.not_verified,
        summary.unknown,
        summary.invalid,
        lookups as f64 / (summary.total - summary.invalid).max(1) as f64,
    );
    let mut code = summary.worst;
    if summary.invalid > 0 {
        code = code.max(EXIT_INVALID_INPUT);
    }
    Ok(code)
}

/// One check thread: its own runtime and resolver; returns how many lookups it made.
fn check_rows(
    mut rows: mpsc::Receiver<Row>,
    results: SyncSender<Vec<Finished>>,
    resolver: &ResolverSettings,
    config: Arc<ProviderConfig>,
    concurrency: usize,
) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting a runtime")?;
    runtime.block_on(async move {
        let dns = Dns::new(resolver)?.bursting().context("opening a DNS socket")?;
        let permits = Arc::new(Semaphore::new(concurrency));
        let outbox = Outbox { waiting: Arc::default(), writer: results };
        // A batch that does not fill (slow input, the last checks) goes out after a moment.
        let flusher = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                let mut ticks = tokio::time::interval(OUTPUT_DELAY);
                loop {
                    ticks.tick().await;
                    outbox.flush();
                }
            }
        });
        while let Some((line, domain, account)) = rows.recv().await {
            let permit = permits.clone().acquire_owned().await.context("the check pool closed")?;
            let (dns, config, outbox) = (dns.clone(), config.clone(), outbox.clone());
            tokio::spawn(async move {
                let result = verify_domain(&dns, &config, &account, &domain).await;
                outbox.push(Finished { status: Some(result.status), json: result_json(line, &result) });
                drop(permit);
            });
        }
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        let _finished = permits.acquire_many(all).await.context("the check pool closed")?;
        flusher.abort();
        outbox.flush();
        Ok(dns.query_count())
    })
}

fn result_json(line: u64, result: &Verification) -> String {
    match serde_json::to_string(result) {
        // The input line number first, so results can be matched to input rows.
        Ok(json) => format!("{{\"line\":{line},{}", &json[1..]),
        Err(error) => json!({ "line": line, "status": "error", "error": error.to_string() }).to_string(),
    }
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

/// Reads rows until the input ends, dealing valid ones out to the check threads and sending
/// invalid ones straight to the writer as `invalid_input` results. Returns an error only when
/// the input itself could not be read.
fn read_rows(
    reader: Box<dyn Read + Send>,
    default_account: Option<String>,
    checkers: Vec<mpsc::Sender<Row>>,
    invalid: SyncSender<Vec<Finished>>,
) -> Result<()> {
    let mut next = 0;
    let mut dispatch = |line: u64, row: Result<(DomainName, AccountId), InvalidRow>| -> bool {
        match row {
            Ok((domain, account)) => {
                next = (next + 1) % checkers.len();
                checkers[next].blocking_send((line, domain, account)).is_ok()
            }
            Err(row) => {
                invalid.send(vec![Finished { status: None, json: invalid_json(line, &row).to_string() }]).is_ok()
            }
        }
    };
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let first_byte =
        reader.fill_buf().context("reading the input")?.iter().copied().find(|byte| !byte.is_ascii_whitespace());
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
                Ok(_) => Err(InvalidRow::unreadable(
                    "expected a JSON object like {\"domain\": \"example.com\", \"account\": \"42\"}".to_string(),
                )),
                Err(error) => Err(InvalidRow::unreadable(format!("not valid JSON: {error}"))),
            };
            if !dispatch(line_number, row) {
                break;
            }
        }
    } else {
        let mut csv =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(reader);
        let mut record = csv::StringRecord::new();
        loop {
            let line_number = csv.position().line();
            let row = match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let domain = record.get(0).unwrap_or("");
                    if (line_number == 1 && domain.eq_ignore_ascii_case("domain")) || record.iter().all(str::is_empty) {
                        continue;
                    }
                    let account = record.get(1).filter(|account| !account.is_empty()).map(str::to_string);
                    parse_row(Some(domain.to_string()), account, default_account.as_deref())
                }
                Err(error) => Err(InvalidRow::unreadable(format!("not valid CSV: {error}"))),
            };
            if !dispatch(line_number, row) {
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

fn write_results(
    writer: Box<dyn Write + Send>,
    results: std::sync::mpsc::Receiver<Vec<Finished>>,
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
    let mut last_progress = Instant::now();
    loop {
        let waiting = match results.try_recv() {
            Ok(batch) => Ok(batch),
            Err(_) => {
                // Nothing more right now: what was written goes out, so results stream
                // while a slow input (a pipe) is still being read.
                writer.flush().context("writing the output")?;
                results.recv_timeout(Duration::from_millis(250))
            }
        };
        let batch = match waiting {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => {
                if show_progress {
                    print_progress(&summary);
                    last_progress = Instant::now();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for finished in batch {
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
        if show_progress && last_progress.elapsed() >= Duration::from_millis(250) {
            print_progress(&summary);
            last_progress = Instant::now();
        }
    }
    if show_progress {
        print_progress(&summary);
        eprintln!();
    }
    writer.flush().context("writing the output")?;
    Ok(summary)
}

fn print_progress(summary: &Summary) {
    let rate = summary.total as f64 / summary.started.elapsed().as_secs_f64().max(0.001);
    eprint!(
        "\r{} checked ({rate:.0}/s): {} verified, {} partial, {} not verified, {} unknown, {} invalid   ",
        summary.total, summary.verified, summary.partial, summary.not_verified, summary.unknown, summary.invalid
    );
}
