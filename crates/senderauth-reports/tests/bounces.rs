//! The bounce reader against real bounces of many servers (`tests/data/bounces/sisimai`), with
//! flufl.bounce (PyPI, GNU Mailman's detectors) as the second opinion, and against hostile
//! input.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod support;

use senderauth_reports::bounce::{BounceAction, BounceFormat};
use senderauth_reports::{BounceError, BounceKind, parse_bounce};
use support::require_or_skip;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bounces")
}

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data().join("sisimai"))
        .expect("the samples")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    files.sort();
    files
}

fn name(path: &std::path::Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn the_common_servers_bounces_read_with_their_recipient_status_and_reply() {
    let read = |file: &str| {
        let bytes = std::fs::read(data().join("sisimai").join(file)).expect("a sample");
        parse_bounce(&bytes).unwrap_or_else(|error| panic!("{file}: {error}"))
    };
    // Postfix: RFC 3464, with its own marks.
    let postfix = read("lhost-postfix-01.eml");
    assert_eq!(postfix.format, BounceFormat::Postfix);
    assert_eq!(postfix.reporting_mta.as_deref(), Some("p351355.pool.example.ne.jp"));
    let recipient = &postfix.recipients[0];
    assert_eq!(
        (recipient.address.as_str(), recipient.kind, recipient.status.as_deref()),
        ("kijitora@example.org", BounceKind::Hard, Some("5.1.1")),
        "the address as sent (Original-Recipient), not the alias it expanded to"
    );
    assert!(recipient.diagnostic.as_deref().is_some_and(|text| text.contains("No such user")), "{recipient:?}");
    // Exim's plain text: the address, then the remote server's reply.
    let exim = read("lhost-exim-01.eml");
    assert_eq!(exim.format, BounceFormat::Exim);
    let recipient = &exim.recipients[0];
    assert_eq!(
        (recipient.address.as_str(), recipient.kind, recipient.status.as_deref()),
        ("kijitora@example.ed.jp", BounceKind::Hard, Some("5.7.0"))
    );
    assert!(
        recipient.diagnostic.as_deref().is_some_and(|text| text.starts_with("550 5.7.0")),
        "the reply, not the lines before it: {recipient:?}"
    );
    // Office 365: the reply the delivery-status part leaves out comes from "Remote Server
    // returned".
    let microsoft = read("lhost-office365-01.eml");
    assert_eq!(microsoft.format, BounceFormat::Microsoft);
    let recipient = &microsoft.recipients[0];
    assert_eq!((recipient.address.as_str(), recipient.kind), ("kijitora@example.com", BounceKind::Hard));
    assert_eq!(recipient.status.as_deref(), Some("5.1.10"));
    // Exchange 2007's "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##".
    let exchange = read("lhost-exchange2007-01.eml");
    assert_eq!(
        (exchange.recipients[0].address.as_str(), exchange.recipients[0].status.as_deref()),
        ("mikeneko@example.co.jp", Some("5.1.1"))
    );
    // Gmail's plain text, with X-Failed-Recipients.
    let gmail = read("lhost-gmail-01.eml");
    assert_eq!(gmail.format, BounceFormat::Google);
    assert_eq!(gmail.recipients[0].address, "userunknown@example.jp");
    assert_eq!(gmail.recipients[0].kind, BounceKind::Hard);
}

#[test]
fn every_sample_reads_and_its_failed_addresses_are_those_flufl_bounce_finds() {
    let files = samples();
    assert!(files.len() >= 40, "the samples are there: {}", files.len());
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
    let flufl = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import flufl.bounce"])
            .status()
            .is_ok_and(|status| status.success());
    let theirs: BTreeMap<String, serde_json::Value> = if require_or_skip(flufl, "flufl.bounce (PyPI, in .venv)") {
        let output = std::process::Command::new(&python)
            .arg(data().join("flufl_scan.py"))
            .args(&files)
            .output()
            .expect("flufl.bounce runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    } else {
        BTreeMap::new()
    };
    // Where the two readings differ on purpose. rfc3464-04: an alias expanded by Sendmail without
    // an Original-Recipient field; ours is the Final-Recipient that failed, flufl.bounce's the
    // alias named in the text. lhost-exim-03: the sample's text and its X-Failed-Recipients
    // header name different addresses; ours is the text's, which carries the remote reply.
    let known = ["rfc3464-04.eml", "lhost-exim-03.eml"];
    let mut disagreements = Vec::new();
    let mut agreed = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("a sample");
        let bounce = parse_bounce(&bytes).unwrap_or_else(|error| panic!("{}: {error}", name(file)));
        assert!(!bounce.recipients.is_empty(), "{}: no recipient", name(file));
        for recipient in &bounce.recipients {
            assert!(recipient.address.contains('@') && recipient.address == recipient.address.to_lowercase());
            if let Some(status) = &recipient.status {
                assert!(status.starts_with(['4', '5']), "{}: {status}", name(file));
            }
            if recipient.action == BounceAction::Delayed {
                assert_eq!(recipient.kind, BounceKind::Soft, "{}", name(file));
            }
        }
        let Some(found) = theirs.get(&name(file)).filter(|_| !known.contains(&name(file).as_str())) else { continue };
        let list = |key: &str| -> Vec<String> {
            found[key]
                .as_array()
                .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let (permanent, temporary) = (list("permanent"), list("temporary"));
        if permanent.is_empty() && temporary.is_empty() {
            // flufl.bounce found nothing (a form it does not know): ours stands alone.
            continue;
        }
        let ours: Vec<String> = bounce.recipients.iter().map(|recipient| recipient.address.clone()).collect();
        let same = permanent.iter().chain(&temporary).all(|address| ours.contains(address));
        if same {
            agreed += 1
        } else {
            disagreements.push(format!("{}: ours {ours:?}, flufl {permanent:?} {temporary:?}", name(file)))
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    if !theirs.is_empty() {
        assert!(agreed >= 30, "flufl.bounce agreed on {agreed} samples");
    }
}

#[test]
fn hostile_or_broken_input_is_an_error_or_bounded_never_a_panic() {
    assert_eq!(parse_bounce(b""), Err(BounceError::NotAMessage));
    assert_eq!(parse_bounce(&[0xff, 0x00, 0x12, 0x80]), Err(BounceError::NotAMessage));
    let not_a_bounce = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nJust a note.\r\n";
    assert_eq!(parse_bounce(not_a_bounce), Err(BounceError::NoRecipients));
    // A delivery-status part with a hundred thousand recipients: a thousand read, fast.
    let mut status = String::from("Reporting-MTA: dns; mx.example.net\r\n\r\n");
    for number in 0..100_000 {
        status.push_str(&format!(
            "Final-Recipient: rfc822; user{number}@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        ));
    }
    let flood = format!(
        "From: MAILER-DAEMON@mx.example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; \
         report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\n\
         Content-Type: message/delivery-status\r\n\r\n{status}--b--\r\n"
    );
    let bounce = parse_bounce(flood.as_bytes()).expect("a bounce");
    assert_eq!(bounce.recipients.len(), senderauth_reports::bounce::MAX_RECIPIENTS);
    // A diagnostic of a megabyte: cut.
    let long = format!(
        "From: MAILER-DAEMON@mx.example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; \
         report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
         Final-Recipient: rfc822; a@example.com\r\nAction: delayed\r\nStatus: 4.2.2\r\nDiagnostic-Code: smtp; 452 {}\r\n--b--\r\n",
        "x".repeat(1 << 20)
    );
    let bounce = parse_bounce(long.as_bytes()).expect("a bounce");
    let recipient = &bounce.recipients[0];
    assert_eq!(
        (recipient.kind, recipient.action, recipient.status.as_deref()),
        (BounceKind::Soft, BounceAction::Delayed, Some("4.2.2"))
    );
    assert!(
        recipient
            .diagnostic
            .as_deref()
            .is_some_and(|text| text.chars().count() <= senderauth_reports::bounce::MAX_TEXT)
    );
    // A success notification: read, nothing bounced.
    let success = "From: MAILER-DAEMON@mx.example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; \
         report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; a@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n--b--\r\n";
    assert_eq!(parse_bounce(success.as_bytes()).map(|bounce| bounce.recipients.len()), Ok(0));
}
