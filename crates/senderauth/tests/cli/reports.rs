//! The report address's SMTP listener end to end: Postfix (Debian), as the report host's MX,
//! relays a receiver's report message (sent with swaks) to it; it is stored once however often
//! it comes; mail to another address, too big, or holding no report is refused with its
//! enhanced status code; failure and TLS reports are recognized and kept as such.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::gateway::{Client, Postfix, certificate};
use super::{start_service_listening, stop_service, tempdir, zones};

/// A real receiver's report message (Google's, through Microsoft's servers), CRLF line ends.
fn google_report() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/testdata/dmarc-reports/parsedmarc/samples/aggregate/\
         Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml",
    );
    std::fs::read(&path)
        .unwrap_or_else(|error| panic!("{}: {error} (the shared test data beside the project)", path.display()))
}

/// A sample from the shared test data as an MTA would send it: without an mbox `From ` line,
/// with CRLF line ends.
fn sample_as_sent(path: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dmarc-reports/parsedmarc/samples")
        .join(path);
    let text = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let text = match text.strip_prefix(b"From ") {
        Some(rest) => rest.splitn(2, |byte| *byte == b'\n').nth(1).unwrap_or_default().to_vec(),
        None => text,
    };
    let mut sent = Vec::with_capacity(text.len() + text.len() / 20);
    for line in text.split_inclusive(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\n").map_or(line, |line| line.strip_suffix(b"\r").unwrap_or(line));
        sent.extend_from_slice(line);
        sent.extend_from_slice(b"\r\n");
    }
    sent
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address")
}

#[tokio::test]
async fn reports_relayed_by_postfix_are_stored_once_and_what_is_no_report_is_refused() {
    let ready = std::path::Path::new("/usr/sbin/postfix").exists()
        && std::path::Path::new("/usr/bin/swaks").exists()
        && std::process::Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !senderauth_testkit::require_or_skip(ready, "postfix and swaks (Debian), run as root") {
        return;
    }
    let data_dir = tempdir();
    let server = zones().await;
    let started = start_service_listening(&[], &data_dir, &server, &[], &[]).await;
    let (child, listener) = (started.child, started.reports);

    // The listener's own answers.
    let (mut client, greeting) = Client::connect(listener).await;
    assert!(greeting.starts_with("220 reports.esp.example"), "{greeting}");
    let ehlo = client.command("EHLO receiver.example").await;
    assert!(ehlo.contains("SIZE 67108864") && ehlo.contains("ENHANCEDSTATUSCODES"), "{ehlo}");
    let too_big = client.command("MAIL FROM:<noreply@receiver.example> SIZE=999999999").await;
    assert!(too_big.starts_with("552 5.3.4"), "{too_big}");
    assert!(client.command("MAIL FROM:<noreply@receiver.example>").await.starts_with("250"));
    let elsewhere = client.command("RCPT TO:<postmaster@reports.esp.example>").await;
    assert!(elsewhere.starts_with("550 5.1.1") && elsewhere.contains("dmarc@reports.esp.example"), "{elsewhere}");
    assert!(client.command("RCPT TO:<DMARC@Reports.esp.example>").await.starts_with("250"), "case-insensitive");
    assert!(client.command("DATA").await.starts_with("354"));
    let no_report = client.command("Subject: hello\r\n\r\nNot a report.\r\n.").await;
    assert!(no_report.starts_with("550 5.6.0"), "{no_report}");
    assert!(client.command("QUIT").await.starts_with("221"));

    // Postfix as the report host's MX, relaying to the listener.
    let postfix_dir = tempdir().join("postfix");
    let (tls_certificate, tls_key, _) = certificate(&data_dir.join("tls"));
    let mx = free_address();
    let transport = format!("smtp:[127.0.0.1]:{}", listener.port());
    let postfix =
        Postfix::start_for(&postfix_dir, mx.port(), &tls_certificate, &tls_key, "reports.esp.example", &transport);
    // swaks (Debian) sends the receiver's message to Postfix, twice (a re-send).
    let message_file = data_dir.join("google-report.eml");
    std::fs::write(&message_file, google_report()).expect("the message");
    for _ in 0..2 {
        let sent = tokio::process::Command::new("swaks")
            .args(["--server", &mx.to_string(), "--helo", "google.com", "--from", "noreply-dmarc-support@google.com"])
            .args(["--to", "dmarc@reports.esp.example", "--data", &format!("@{}", message_file.display())])
            .output()
            .await
            .expect("swaks");
        let said = String::from_utf8_lossy(&sent.stdout);
        assert!(sent.status.success() && said.contains(" 250 2.0.0 Ok: queued"), "{said}\n{}", postfix.log());
    }
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's store");
    let started = Instant::now();
    let stored = loop {
        let reports = store.reports_about("borschow.com", 10).await.expect("read");
        if reports.first().is_some_and(|report| report.duplicates == 1) {
            break reports;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not stored twice over: {reports:?}\n{}", postfix.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stored.len(), 1, "one report, its copy counted on it");
    let report = &stored[0];
    assert_eq!(
        (report.identity.org_name.as_str(), report.identity.report_id.as_str(), report.source.as_str()),
        ("google.com", "949348866075514174", "smtp")
    );
    assert_eq!(report.conflicts, 0);
    let log = postfix.log();
    assert!(
        log.contains(&format!("relay=127.0.0.1[127.0.0.1]:{}", listener.port())) && log.contains("status=sent"),
        "{log}"
    );

    // The store fails (its reports' table taken away under it): 451, nothing counted, and the
    // message taken once the store is back, as the sender's retry would be.
    let database = data_dir.join("senderauth.db").display().to_string();
    let rename = |from: &str, to: &str| {
        let script = format!(
            "import sqlite3; c = sqlite3.connect({database:?}); c.execute('ALTER TABLE {from} RENAME TO {to}'); c.commit()"
        );
        let status = std::process::Command::new("python3").args(["-c", &script]).status().expect("python3");
        assert!(status.success(), "renaming {from}");
    };
    rename("dmarc_reports", "dmarc_reports_away");
    let (mut client, _) = Client::connect(listener).await;
    client.command("EHLO google.com").await;
    let refused = client.mail_to("dmarc@reports.esp.example", &google_report()).await;
    assert!(refused.starts_with("451 4.3.0"), "{refused}");
    rename("dmarc_reports_away", "dmarc_reports");
    let copies = |reports: Vec<senderauth_store::ReportSummary>| reports.first().map(|report| report.duplicates);
    assert_eq!(copies(store.reports_about("borschow.com", 10).await.expect("read")), Some(1), "nothing counted");
    let taken = client.mail_to("dmarc@reports.esp.example", &google_report()).await;
    assert!(taken.starts_with("250 2.0.0 1 report(s) taken, 1 of them already stored"), "{taken}");
    assert_eq!(copies(store.reports_about("borschow.com", 10).await.expect("read")), Some(2));

    // Failure and TLS reports sent to the same address are recognized and kept as such: the
    // failure report's header fields only, addresses redacted; the TLS report once.
    let failure =
        client.mail_to("dmarc@reports.esp.example", &sample_as_sent("failure/dmarc_ruf_report_linkedin.eml")).await;
    assert!(failure.starts_with("250 2.0.0 Failure report about example.com taken"), "{failure}");
    let plain = client
        .mail_to("dmarc@reports.esp.example", &sample_as_sent("failure/exim_plain_text_only_no_arf_part.eml"))
        .await;
    assert!(plain.starts_with("250 2.0.0 Failure report about example.com"), "{plain}");
    let kept = store.failure_reports("example.com", 10).await.expect("read");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|report| !report.detail_json.contains("sender@example.com")
        && !report.detail_json.contains("user@example.com")
        && !report.detail_json.contains("Subject line")));
    assert_eq!(kept[1].source_ip.as_deref(), Some("10.10.10.10"));
    let tls = sample_as_sent("smtp_tls/google.com_smtp_tls_report.eml");
    let taken = client.mail_to("dmarc@reports.esp.example", &tls).await;
    assert_eq!(taken.trim_end(), "250 2.0.0 TLS report taken");
    let again = client.mail_to("dmarc@reports.esp.example", &tls).await;
    assert_eq!(again.trim_end(), "250 2.0.0 TLS report taken, already stored");
    // Seven days on, the failure reports are gone.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
    assert_eq!(store.expire_failure_reports(now - 7 * 86_400).await.expect("expired"), 0, "not before their time");
    assert_eq!(store.expire_failure_reports(now + 1).await.expect("expired"), 2);

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}
