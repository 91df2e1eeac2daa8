//! The IMAP pull end to end: Dovecot (Debian), a private instance on loopback, holds a report
//! mailbox with a real receiver's aggregate report, a failure report and a message that is no
//! report; `senderauth serve` logs in over STARTTLS (trusting the test's CA), stores the
//! reports, moves their messages to the processed folder and the other to the unreadable one,
//! where it is kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::gateway::certificate;
use super::{path, start_service_listening, stop_service, tempdir, zones};

/// A Dovecot instance of its own: IMAP with STARTTLS required, one user, Maildir.
struct Dovecot {
    dir: PathBuf,
    child: std::process::Child,
}

impl Dovecot {
    fn start(dir: &Path, port: u16, certificate: &Path, key: &Path) -> Dovecot {
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("a Dovecot directory");
        }
        std::fs::write(dir.join("passwd"), "reports:{PLAIN}report-mailbox-secret\n").expect("passwd");
        let config = format!(
            "base_dir = {dir}/run\nstate_dir = {dir}/state\nlog_path = {dir}/dovecot.log\nprotocols = imap\n\
             listen = 127.0.0.1\nssl = required\nssl_cert = <{certificate}\nssl_key = <{key}\n\
             disable_plaintext_auth = yes\nauth_mechanisms = plain\nfirst_valid_uid = 8\n\
             passdb {{\n  driver = passwd-file\n  args = {dir}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=mail gid=mail home={dir}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            dir = path(dir),
            certificate = path(certificate),
            key = path(key),
        );
        std::fs::write(dir.join("dovecot.conf"), config).expect("dovecot.conf");
        // The mail user reads its Maildir and the key; the test's directories are root's.
        for (command, arguments) in
            [("chmod", vec!["755", path(dir)]), ("chown", vec!["-R", "mail:mail", &format!("{}/home", path(dir))])]
        {
            assert!(std::process::Command::new(command).args(&arguments).status().expect(command).success());
        }
        let child = std::process::Command::new("dovecot")
            .args(["-F", "-c", path(&dir.join("dovecot.conf"))])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting dovecot");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "dovecot did not start: {}", Dovecot::log_of(dir));
            std::thread::sleep(Duration::from_millis(100));
        }
        Dovecot { dir: dir.to_path_buf(), child }
    }

    fn log_of(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Delivers a message to the user's INBOX (a file in Maildir/new, as an LDA would).
    fn deliver(&self, name: &str, message: &[u8]) {
        let maildir = self.dir.join("home/reports/Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        std::fs::write(maildir.join("new").join(format!("{name}.senderauth-test")), message).expect("deliver");
        let owned =
            std::process::Command::new("chown").args(["-R", "mail:mail", path(&self.dir.join("home"))]).status();
        assert!(owned.expect("chown").success());
    }

    /// The messages in a folder (`INBOX` or another, Maildir++ `.name`).
    fn count(&self, folder: &str) -> usize {
        let maildir = self.dir.join("home/reports/Maildir");
        let folder = if folder == "INBOX" { maildir } else { maildir.join(format!(".{folder}")) };
        ["new", "cur"]
            .iter()
            .map(|sub| std::fs::read_dir(folder.join(sub)).map(|entries| entries.count()).unwrap_or(0))
            .sum()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample(path: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dmarc-reports/parsedmarc/samples")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[tokio::test]
async fn reports_in_a_dovecot_mailbox_are_pulled_over_starttls_and_what_is_no_report_is_kept_aside() {
    let ready = Path::new("/usr/sbin/dovecot").exists()
        && std::process::Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !senderauth_testkit::require_or_skip(ready, "dovecot (Debian dovecot-imapd), run as root") {
        return;
    }
    let data_dir = tempdir();
    let (tls_certificate, tls_key, ca) = certificate(&data_dir.join("tls"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address").port();
    let dovecot = Dovecot::start(&tempdir().join("dovecot"), port, &tls_certificate, &tls_key);
    dovecot.deliver(
        "1",
        &sample("aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml"),
    );
    dovecot.deliver("2", &sample("failure/dmarc_ruf_report_linkedin.eml"));
    dovecot.deliver("3", b"From: someone@example.org\r\nSubject: hello\r\n\r\nNot a report.\r\n");

    std::fs::write(data_dir.join("imap-password"), "report-mailbox-secret\n").expect("password file");
    let config = data_dir.join("senderauth.toml");
    std::fs::write(
        &config,
        format!(
            "[service.reports.imap]\nserver = \"127.0.0.1:{port}\"\nsecurity = \"starttls\"\nusername = \"reports\"\n\
             password_file = \"{}\"\nca_file = \"{}\"\ninterval_seconds = 1\n",
            path(&data_dir.join("imap-password")),
            path(&ca)
        ),
    )
    .expect("config");
    let server = zones().await;
    let started = start_service_listening(&[], &data_dir, &server, &["--config", path(&config)], &[]).await;

    let waited = Instant::now();
    while dovecot.count("senderauth-processed") < 2 || dovecot.count("senderauth-unreadable") < 1 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "not pulled: INBOX {}, processed {}, unreadable {}\n{}",
            dovecot.count("INBOX"),
            dovecot.count("senderauth-processed"),
            dovecot.count("senderauth-unreadable"),
            Dovecot::log_of(&dovecot.dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dovecot.count("INBOX"), 0, "every message moved");
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's store");
    let reports = store.reports_about("borschow.com", 10).await.expect("read");
    assert_eq!(
        reports.iter().map(|report| (report.identity.report_id.as_str(), report.source.as_str())).collect::<Vec<_>>(),
        [("949348866075514174", "imap")]
    );
    assert_eq!(store.failure_reports("example.com", 10).await.expect("read").len(), 1);
    let log = Dovecot::log_of(&dovecot.dir);
    assert!(log.contains("Login: user=<reports>, method=PLAIN") && log.contains("TLS"), "logged in over TLS: {log}");

    let (status, stderr) = stop_service(started.child).await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("report-mailbox-secret"), "the password is never logged");
}
