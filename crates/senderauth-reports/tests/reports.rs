//! The report reader against real receivers' reports (`../shared/testdata/dmarc-reports`), with
//! parsedmarc (PyPI) as the second opinion, and against hostile input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;

use senderauth_reports::{AggregateReport, ReadError, ReportError, UnpackError, read_reports};
use support::require_or_skip;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real receivers' reports, beside the project (`../shared/testdata`, read-only).
fn samples() -> PathBuf {
    let folder = root().join("../shared/testdata/dmarc-reports/parsedmarc/samples");
    assert!(
        folder.is_dir(),
        "{} is missing: the tests read the shared test data beside the project's folder",
        folder.display()
    );
    folder
}

/// Every aggregate sample: the reports, the broken ones, the upper-case one, the containers.
fn sample_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["aggregate", "aggregate_invalid", "extract_report"] {
        let Ok(entries) = std::fs::read_dir(samples().join(folder)) else { continue };
        files.extend(entries.flatten().map(|entry| entry.path()).filter(|path| path.is_file()));
    }
    files.sort();
    files
}

/// What both readers must agree on for one report.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Essentials {
    org_name: String,
    domain: String,
    begin: String,
    end: String,
    /// (source IP, count, disposition, DKIM, SPF, header From) with how often each occurs.
    rows: BTreeMap<(String, u64, String, String, String, String), u32>,
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as parsedmarc writes dates (with TZ=UTC).
fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

fn ours(report: &AggregateReport) -> Essentials {
    let mut rows = BTreeMap::new();
    for record in &report.records {
        let key = (
            record.source_ip.to_string(),
            record.count,
            record.disposition.clone(),
            record.dkim.clone(),
            record.spf.clone(),
            record.header_from.clone(),
        );
        *rows.entry(key).or_insert(0) += 1;
    }
    Essentials {
        org_name: same_org(&report.header.org_name),
        domain: report.header.policy.domain.clone(),
        begin: utc(report.header.begin),
        end: utc(report.header.end),
        rows,
    }
}

/// parsedmarc writes an organization whose name is a domain name in lower case
/// (`Outlook.com` as `outlook.com`); senderauth keeps it as the receiver wrote it.
fn same_org(name: &str) -> String {
    if name.contains('.') && !name.contains(' ') { name.to_ascii_lowercase() } else { name.to_string() }
}

fn theirs(report: &serde_json::Value) -> Essentials {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let mut rows = BTreeMap::new();
    for record in report["records"].as_array().into_iter().flatten() {
        let evaluated = &record["policy_evaluated"];
        let key = (
            text(&record["source"]["ip_address"]),
            record["count"].as_u64().unwrap_or_default(),
            text(&evaluated["disposition"]).to_ascii_lowercase(),
            text(&evaluated["dkim"]).to_ascii_lowercase(),
            text(&evaluated["spf"]).to_ascii_lowercase(),
            text(&record["identifiers"]["header_from"]).to_ascii_lowercase(),
        );
        *rows.entry(key).or_insert(0) += 1;
    }
    let metadata = &report["report_metadata"];
    Essentials {
        org_name: same_org(&text(&metadata["org_name"])),
        domain: text(&report["policy_published"]["domain"]).to_ascii_lowercase(),
        begin: text(&metadata["begin_date"]),
        end: text(&metadata["end_date"]),
        rows,
    }
}

#[test]
fn every_real_report_reads_as_parsedmarc_reads_it() {
    let parsedmarc = root().join(".venv/bin/parsedmarc");
    if !require_or_skip(parsedmarc.exists(), "parsedmarc (PyPI, in .venv)") {
        return;
    }
    let files = sample_files();
    assert!(files.len() >= 20, "the samples are there: {files:?}");
    let out = std::env::temp_dir().join(format!("senderauth-parsedmarc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = std::process::Command::new(&parsedmarc)
        .arg("--offline")
        .arg("-o")
        .arg(&out)
        .args(&files)
        .env("TZ", "UTC")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("parsedmarc runs");
    assert!(status.success(), "parsedmarc failed");
    let text = std::fs::read_to_string(out.join("aggregate.json")).expect("parsedmarc's output");
    let _ = std::fs::remove_dir_all(&out);
    let their_reports: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
    // As lists of (report id, essentials), sorted: two samples share an id (a re-send, and a
    // broken copy of one).
    let mut theirs_all: Vec<(String, Essentials)> = their_reports
        .iter()
        .map(|report| (report["report_metadata"]["report_id"].as_str().unwrap_or_default().to_string(), theirs(report)))
        .collect();
    theirs_all.sort();

    let mut ours_all: Vec<(String, Essentials)> = Vec::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("a sample");
        let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        match read_reports(&bytes) {
            Ok(reports) => {
                ours_all.extend(reports.into_iter().map(|(_, report)| (report.header.report_id.clone(), ours(&report))))
            }
            Err(error) => refused.push((name, error.to_string())),
        }
    }
    // parsedmarc writes a report once per (organization, report id), whichever file it met
    // first (two samples share an id: the same report as XML, gzip and zip; and a broken copy
    // of one): each it wrote must be one of ours under that key, and the keys the same.
    let mut ours_by_key: BTreeMap<(String, String), Vec<Essentials>> = BTreeMap::new();
    for (id, essentials) in ours_all {
        ours_by_key.entry((id, essentials.org_name.clone())).or_default().push(essentials);
    }
    let their_keys: Vec<(String, String)> =
        theirs_all.iter().map(|(id, essentials)| (id.clone(), essentials.org_name.clone())).collect();
    assert_eq!(
        ours_by_key.keys().cloned().collect::<Vec<_>>(),
        their_keys,
        "the same reports; ours refused {refused:?}"
    );
    for (id, essentials) in &theirs_all {
        let candidates = &ours_by_key[&(id.clone(), essentials.org_name.clone())];
        assert!(candidates.contains(essentials), "report {id}: parsedmarc {essentials:?}, ours {candidates:?}");
    }
    // What neither reads (an empty file, XML that is not well-formed), each with a reason.
    let names: Vec<&str> = refused.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["empty.xml", "invalid_xml.xml"].iter().filter(|name| names.contains(name)).copied().collect::<Vec<_>>()
    );
    for (name, reason) in &refused {
        assert!(!reason.is_empty(), "{name}");
    }
}

#[test]
fn deviations_of_real_receivers_are_read_and_written_down() {
    let read = |path: &Path| {
        let (_, report) = read_reports(&std::fs::read(path).expect("sample")).expect("reads").remove(0);
        report
    };
    let upper =
        sample_files().into_iter().find(|path| path.to_string_lossy().contains("aggregate_invalid")).expect("sample");
    let report = read(&upper);
    assert!(report.records.iter().all(|record| record.disposition == record.disposition.to_lowercase()));
    assert!(report.header.deviations.iter().any(|text| text.contains("upper case")), "{:?}", report.header.deviations);
    let report = read(&samples().join("aggregate/empty_reason.xml"));
    assert!(report.records[0].reasons.is_empty());
    assert!(report.header.deviations.iter().any(|text| text.contains("reason without a type")));
    let report = read(&samples().join("aggregate/invalid_utf_8.xml"));
    assert!(report.header.deviations.iter().any(|text| text.contains("not UTF-8")), "{:?}", report.header.deviations);
    let report = read(&samples().join("aggregate/rfc9990-sample.xml"));
    assert_eq!(report.header.format, Some(senderauth_reports::aggregate::ReportFormat::Dmarc2));
    assert_eq!(report.header.policy.discovery_method.as_deref(), Some("treewalk"));
    assert_eq!(report.records[0].dkim_results[0].selector.as_deref(), Some("abc123"));
}

/// A gzip bomb: a valid XML start, then `megabytes` gzip members of a megabyte of text each
/// (a reader of gzip reads on through every member).
fn gzip_bomb(megabytes: usize) -> Vec<u8> {
    let member = |text: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(text).expect("write");
        encoder.finish().expect("gzip")
    };
    let mut bomb = member(b"<feedback><report_metadata><org_name>");
    let megabyte = member(&vec![b'a'; 1 << 20]);
    for _ in 0..megabytes {
        bomb.extend_from_slice(&megabyte);
    }
    bomb
}

#[test]
fn bombs_and_entities_are_refused_quickly_and_nothing_is_expanded() {
    // A gzip bomb: 1.5 GB of text in about 1.5 MB.
    let bomb = gzip_bomb(1536);
    assert!(bomb.len() < 3 << 20, "{}", bomb.len());
    let started = Instant::now();
    let error = read_reports(&bomb).expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(5), "refused in {:?}", started.elapsed());
    assert!(error.to_string().contains("refused"), "{error}");

    // The same inside a zip archive (stored by hand: one deflated entry).
    let deflated = {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(b"<feedback>").expect("write");
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..1536 {
            encoder.write_all(&zeros).expect("write");
        }
        encoder.finish().expect("deflate")
    };
    let mut zip = Vec::new();
    zip.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    zip.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
    zip.extend_from_slice(&u32::MAX.to_le_bytes());
    zip.extend_from_slice(&10u16.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(b"report.xml");
    zip.extend_from_slice(&deflated);
    let started = Instant::now();
    let error = read_reports(&zip).expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(5), "refused in {:?}", started.elapsed());
    assert!(error.to_string().contains("refused"), "{error}");

    // Billion laughs and an external entity: refused at the document type, nothing defined.
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><feedback><report_metadata><org_name>&lol2;</org_name></report_metadata></feedback>"#;
    let external = r#"<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>"#;
    for document in [laughs, external] {
        let error = read_reports(document.as_bytes()).expect_err("refused");
        assert!(matches!(error, ReadError::Report(ReportError::DocumentType)), "{error}");
    }
    // An entity nobody declared is refused too.
    let undeclared = "<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>";
    assert!(matches!(read_reports(undeclared.as_bytes()), Err(ReadError::Report(ReportError::UnknownEntity(_)))));
    // Deep nesting, and a text without end.
    let deep = format!("<feedback>{}", "<a>".repeat(10_000));
    assert!(matches!(read_reports(deep.as_bytes()), Err(ReadError::Report(ReportError::TooDeep(_)))));
    let long = format!("<feedback><report_metadata><org_name>{}", "x".repeat(1 << 20));
    assert!(matches!(read_reports(long.as_bytes()), Err(ReadError::Report(ReportError::TextTooLong(_)))));
    let long_tag = format!("<feedback><report_metadata><org_name a=\"{}\">", "x".repeat(1 << 20));
    let refused = read_reports(long_tag.as_bytes());
    assert!(matches!(refused, Err(ReadError::Report(ReportError::TextTooLong(_)))), "{refused:?}");
    // Nothing at all, and something else entirely.
    assert!(matches!(read_reports(b""), Err(ReadError::Unpack(UnpackError::Empty))));
    assert!(matches!(read_reports(b"\x00\x01binary"), Err(ReadError::Unpack(UnpackError::Unrecognized))));
    assert!(matches!(read_reports(b"<html></html>"), Err(ReadError::Report(ReportError::NotAReport(_)))));
}

/// Random and mutated inputs from the samples (the benchmark runs a million: bench/dmarc-fuzz.sh)
/// never panic: each is read or refused with an error.
#[test]
fn mutated_and_random_inputs_are_read_or_refused_never_a_panic() {
    use senderauth_reports::mutate::{Rng, case};
    let files = sample_files();
    let samples: Vec<Vec<u8>> = files.iter().map(|path| std::fs::read(path).expect("a sample")).collect();
    let xml: Vec<Vec<u8>> = files
        .iter()
        .zip(&samples)
        .filter(|(path, _)| path.extension().is_some_and(|extension| extension == "xml"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    let mut rng = Rng::new(7);
    let (mut read, mut refused) = (0, 0);
    for index in 0..3000 {
        let input = case(&mut rng, &samples, &xml);
        let outcome = std::panic::catch_unwind(|| {
            let whole = read_reports(&input).is_ok();
            let _ = senderauth_reports::stream_reports(&input, 100, |_| Ok(()));
            whole
        });
        match outcome {
            Ok(true) => read += 1,
            Ok(false) => refused += 1,
            Err(_) => {
                let kept = root().join(format!("target/fuzz-failure-{index}"));
                let _ = std::fs::write(&kept, &input);
                panic!("case {index} (seed 7) panicked; its input is in {}", kept.display());
            }
        }
    }
    // The cases are no mere noise: many still read as reports.
    assert!(read > 100 && refused > 100, "{read} read, {refused} refused");
}

#[test]
fn failure_and_tls_reports_are_recognized_and_failures_keep_redacted_headers_only() {
    let folder = samples();
    let read = |path: &str| std::fs::read(folder.join(path)).expect("sample");
    let failure = |path: &str| match senderauth_reports::recognize(&read(path)) {
        Some(senderauth_reports::OtherReport::Failure(report)) => *report,
        other => panic!("{path}: {other:?}"),
    };
    let linkedin = failure("failure/dmarc_ruf_report_linkedin.eml");
    assert_eq!(
        (linkedin.feedback_type.as_str(), linkedin.reported_domain.as_deref(), linkedin.auth_failure.as_deref()),
        ("auth-failure", Some("example.com"), Some("dmarc"))
    );
    assert_eq!(linkedin.source_ip, Some("10.10.10.10".parse().expect("ip")));
    let header = |report: &senderauth_reports::FailureReport, name: &str| {
        report.headers.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    };
    assert_eq!(header(&linkedin, "From").as_deref(), Some("Sender <redacted@example.com>"));
    assert!(header(&linkedin, "Authentication-Results").is_some_and(|value| value.contains("dmarc=fail")));
    assert_eq!(header(&linkedin, "Subject"), None, "no subject is kept");
    let kept = serde_json::to_string(&linkedin).expect("json");
    for private in ["sender@example.com", "recipient@linkedin.com", "Subject line", "Thread Topic"] {
        assert!(!kept.contains(private), "{private} kept: {kept}");
    }
    // Every failure sample is one, the plain-text one (no ARF part) too.
    for entry in std::fs::read_dir(folder.join("failure")).expect("folder") {
        let path = entry.expect("entry").path();
        let report = failure(&format!("failure/{}", path.file_name().and_then(|name| name.to_str()).expect("name")));
        assert!(report.reported_domain.is_some(), "{}: {report:?}", path.display());
    }
    let exim = failure("failure/exim_plain_text_only_no_arf_part.eml");
    assert_eq!(
        (exim.feedback_type.as_str(), exim.reported_domain.as_deref(), exim.source_ip),
        ("plain-text", Some("example.com"), Some("203.0.113.68".parse().expect("ip")))
    );
    assert_eq!(header(&exim, "From").as_deref(), Some("<redacted@example.com>"));

    for path in ["smtp_tls/google.com_smtp_tls_report.eml", "smtp_tls/rfc8460.json", "smtp_tls/mail.ru.json"] {
        match senderauth_reports::recognize(&read(path)) {
            Some(senderauth_reports::OtherReport::Tls(report)) => {
                assert!(!report.report_id.is_empty() && !report.policy_domains.is_empty(), "{path}: {report:?}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let Some(senderauth_reports::OtherReport::Tls(rfc)) = senderauth_reports::recognize(&read("smtp_tls/rfc8460.json"))
    else {
        panic!("a TLS report")
    };
    assert_eq!(
        (rfc.organization.as_str(), rfc.policy_domains.as_slice(), rfc.successful_sessions, rfc.failed_sessions),
        ("Company-X", &["company-y.example".to_string()][..], 5326, 303)
    );
    // An aggregate report is neither.
    assert_eq!(senderauth_reports::recognize(&read("aggregate/!example.com!1538204542!1538463818.xml")), None);
}
