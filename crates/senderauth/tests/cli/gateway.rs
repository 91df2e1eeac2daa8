//! The sending gateway: messages prepared for relay are DKIM-signed as their domain when it is
//! authenticated, or rewritten to the variable domain and signed as that; dkimpy (PyPI), which
//! nobody here wrote, verifies them through the customer's DNS and the embedded DNS server.

use std::net::SocketAddr;
use std::path::Path;

use senderauth_testkit::http::{call, call_raw, publish_hosted_keys};

use super::nameserver::{dkimpy_ready, python};
use super::{admin_and_account, path, start_service_full, start_service_listening, stop_service, tempdir, zones};

/// dkimpy's verdict on `message`: one "pass d=... s=... a=..." line per signature.
async fn dkimpy(message: &[u8], customer: SocketAddr, platform: SocketAddr) -> (bool, String) {
    let file = tempdir().join("message.eml");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
    std::fs::write(&file, message).expect("message file");
    let output = tokio::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/dkim_verify.py"))
        .args([path(&file), &customer.to_string(), &platform.to_string(), "esp.example"])
        .output()
        .await
        .expect("running dkimpy");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|line| {
            line.split_once(':').filter(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.trim())
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn prepared_messages_are_signed_as_their_domain_or_rewritten_to_the_variable_domain() {
    if !dkimpy_ready() {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    let (child, http, dns) = start_service_full(&data_dir, &server, &[], &[]).await;
    let (admin, token) = admin_and_account(&data_dir, http, "Sender").await;
    for body in
        [r#"{"email": "news@rsa.example.com"}"#, r#"{"email": "news@ed.example.com", "dkim_algorithm": "ed25519"}"#]
    {
        let (status, connected) = call(http, "POST", "/api/v1/domains", Some(&token), Some(body)).await;
        assert_eq!(status, 201, "{connected}");
        for record in connected["records"].as_array().expect("records") {
            // ed.example.com leaves its return-path out.
            if record["record_type"] == "CNAME" && !(body.contains("ed.example") && record["method"] == "return_path") {
                server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // served within a second
    for domain in ["rsa.example.com", "ed.example.com"] {
        // The verifier's resolver reads the test DNS server: the platform's keys go there too.
        publish_hosted_keys(&server, http, &token, domain).await;
        let (status, verified) =
            call(http, "POST", &format!("/api/v1/domains/{domain}/verify"), Some(&token), None).await;
        assert_eq!((status, verified["status"].as_str()), (200, Some("partially_verified")), "{verified}");
        // The return-path has a status of its own: pending where the CNAME is missing.
        let return_path = if domain == "rsa.example.com" { "verified" } else { "not_verified" };
        assert_eq!(verified["result"]["return_path"]["status"], return_path, "{verified}");
    }

    // An authenticated domain: signed as itself, the message otherwise untouched; a domain with
    // Ed25519 keys signed with both, RSA first (each signature verifies on its own).
    let signing = [("rsa.example.com", &["rsa-sha256"][..]), ("ed.example.com", &["rsa-sha256", "ed25519-sha256"][..])];
    for (domain, algorithms) in signing {
        let message = format!(
            "From: \"Shop, Inc.\" <news@{domain}>\r\nTo: someone@example.net\r\nSubject: Hello\r\n\
             Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@{domain}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nList-Unsubscribe: <https://{domain}/u>\r\n\r\nHi.\r\n\r\n\r\n"
        );
        let (status, head, prepared) =
            call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message.as_bytes()).await;
        assert_eq!(status, 200, "{head}{}", String::from_utf8_lossy(&prepared));
        assert!(
            prepared.ends_with(message.as_bytes()),
            "only a DKIM-Signature is added in front: {head}\n{}",
            String::from_utf8_lossy(&prepared)
        );
        assert_eq!(header(&head, "senderauth-from-rewritten"), "no");
        assert!(header(&head, "senderauth-envelope-from").starts_with("b+"), "{head}");
        // With its return-path in place, the envelope sender aligns with the From; without, the
        // platform's bounce domain (the account's default fallback).
        let envelope_domain = if domain == "rsa.example.com" { "rp.rsa.example.com" } else { "bounces.esp.example" };
        assert!(header(&head, "senderauth-envelope-from").ends_with(&format!("@{envelope_domain}")), "{head}");
        let (ok, said) = dkimpy(&prepared, server.address(), dns).await;
        let passes: Vec<&str> = said.lines().filter(|line| line.starts_with(&format!("pass d={domain} "))).collect();
        assert!(ok && passes.len() == algorithms.len(), "{said}");
        for (pass, algorithm) in passes.iter().zip(algorithms) {
            assert!(pass.ends_with(&format!("a={algorithm}")), "{said}");
        }
        let text = String::from_utf8_lossy(&prepared);
        assert_eq!(text.matches("DKIM-Signature:").count(), algorithms.len(), "{text}");
        let selectors = header(&head, "senderauth-signed-as");
        assert_eq!(selectors.matches(&format!("d={domain}; s=")).count(), algorithms.len(), "{head}");
        assert!(
            text.contains("h=from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:from;"),
            "{text}"
        );

        // A second From added after signing breaks the signature (From is signed twice).
        let injected = text.replacen("To: someone", "From: thief@evil.example\r\nTo: someone", 1);
        let (ok, said) = dkimpy(injected.as_bytes(), server.address(), dns).await;
        assert!(!ok, "an added From must not verify: {said}");
    }

    // An account that wants an aligned return-path or nothing: ed.example.com's mail refused
    // with the reason and what to do, rsa.example.com's still sent.
    let (status, account) =
        call(http, "PATCH", "/api/v1/account", Some(&token), Some(r#"{"return_path_fallback": "reject"}"#)).await;
    assert_eq!((status, account["return_path_fallback"].as_str()), (200, Some("reject")), "{account}");
    let message = b"From: news@ed.example.com\r\nTo: someone@example.net\r\nSubject: Hi\r\n\r\nBody\r\n";
    let (status, _, body) = call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message).await;
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!((status, body["code"].as_str()), (422, Some("return_path_not_in_use")), "{body}");
    assert!(body["message"].as_str().is_some_and(|text| text.contains("Return-Path CNAME")), "{body}");
    let message = b"From: news@rsa.example.com\r\nTo: someone@example.net\r\nSubject: Hi\r\n\r\nBody\r\n";
    let (status, _, _) = call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message).await;
    assert_eq!(status, 200);
    let (status, bad) =
        call(http, "PATCH", "/api/v1/account", Some(&token), Some(r#"{"return_path_fallback": "drop"}"#)).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) =
        call(http, "PATCH", "/api/v1/account", Some(&token), Some(r#"{"return_path_fallback": "bounce_domain"}"#))
            .await;
    assert_eq!(status, 200);

    // Any other domain: From rewritten to the variable domain (display name kept), the original
    // address in Reply-To, signed as the variable domain.
    let message = b"From: Ann Example <ann@yourcompany.com>\r\nTo: someone@example.net\r\nSubject: Hi\r\n\r\nBody\r\n";
    let (status, head, prepared) = call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message).await;
    assert_eq!(status, 200, "{head}");
    let text = String::from_utf8_lossy(&prepared);
    assert_eq!(header(&head, "senderauth-from-rewritten"), "ann=yourcompany.com@send.esp.example");
    assert!(text.contains("\r\nFrom: Ann Example <ann=yourcompany.com@send.esp.example>\r\nReply-To: Ann Example <ann@yourcompany.com>\r\n"), "{text}");
    let (ok, said) = dkimpy(&prepared, server.address(), dns).await;
    assert!(ok && said.contains("pass d=send.esp.example "), "{said}");

    // Bad input: refused with its reason, nothing signed.
    for (message, code) in [
        (&b"To: a@example.net\r\n\r\nno from\r\n"[..], "no_from"),
        (&b"From: a@x.example\r\nFrom: b@y.example\r\n\r\n"[..], "several_from_headers"),
        (&b"From: a@x.example, b@y.example\r\n\r\n"[..], "several_from_addresses"),
        (&b"From: a@x.example\nTo: b@y.example\n\nbare LF\n"[..], "bare_line_feed"),
        (&b"From: a@x.example\r\n\r\nnul \0 byte\r\n"[..], "nul_byte"),
        (&b"From: a@x.example\r\nthis is not a header\r\n\r\n"[..], "malformed_header"),
    ] {
        let (status, _, body) = call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message).await;
        let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{body}");
    }
    // Only an account may send.
    let (status, _, _) = call_raw(http, "/api/v1/messages/prepare", &admin, "message/rfc822", message).await;
    assert_eq!(status, 403);

    // Another account's domain, DKIM in place: no From trick gets a message signed as it.
    let (status, victim) = call(http, "POST", "/api/v1/accounts", Some(&admin), Some(r#"{"name": "Victim"}"#)).await;
    assert_eq!(status, 201, "{victim}");
    let victim_token = victim["token"].as_str().expect("token").to_string();
    let body = r#"{"email": "news@victim.example.com"}"#;
    let (status, connected) = call(http, "POST", "/api/v1/domains", Some(&victim_token), Some(body)).await;
    assert_eq!(status, 201, "{connected}");
    for record in connected["records"].as_array().expect("records") {
        if record["record_type"] == "CNAME" {
            server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    publish_hosted_keys(&server, http, &victim_token, "victim.example.com").await;
    let path = "/api/v1/domains/victim.example.com/verify";
    let (_, verified) = call(http, "POST", path, Some(&victim_token), None).await;
    assert_eq!(verified["status"], "partially_verified", "{verified}");
    let tricks = [
        "From: news@victim.example.com",
        "From: Victim <news@victim.example.com>",
        "From: <news@victim.example.com>",
        "From:news@victim.example.com",
        "FROM: news@victim.example.com",
        "From: news@VICTIM.Example.COM.",
        "From: news@sub.victim.example.com",
        "From: \"news@rsa.example.com\" <news@victim.example.com>",
        "From: news@victim.example.com (news@rsa.example.com)",
        "From: news@rsa.example.com <news@victim.example.com>",
        "From: news@victim.example.com\r\n\t(folded)",
        "From: news@rsa.example.com, news@victim.example.com",
        "From: \"a\" <news@victim.example.com>, \"b\" <news@rsa.example.com>",
        "From: news@rsa.example.com\r\nFrom: news@victim.example.com",
        "Sender: news@rsa.example.com\r\nFrom: news@victim.example.com",
        "From: news@victim.example.com;",
        "From: news@victim.example.com>",
        "From: news@[victim.example.com]",
        "From: \"news@victim.example.com\"@rsa.example.com",
        "From: =?utf-8?q?news=40victim.example.com?= <news@rsa.example.com>",
        "From: Group: news@victim.example.com;",
    ];
    for trick in tricks {
        let message = format!("{trick}\r\nSubject: trick\r\n\r\nBody\r\n");
        let (status, head, prepared) =
            call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message.as_bytes()).await;
        if status != 200 {
            assert_eq!(status, 422, "{trick}: {head}");
            continue;
        }
        let signed_as = header(&head, "senderauth-signed-as");
        assert!(!signed_as.to_ascii_lowercase().contains("victim"), "{trick}: signed as {signed_as}");
        let own = ["d=rsa.example.com;", "d=ed.example.com;", "d=send.esp.example;"];
        assert!(own.iter().any(|domain| signed_as.starts_with(domain)), "{trick}: {signed_as}");
        if signed_as.starts_with("d=send.esp.example;") {
            let text = String::from_utf8_lossy(&prepared);
            assert_ne!(header(&head, "senderauth-from-rewritten"), "no", "{trick}: {text}");
            let from = text.lines().find(|line| line.to_ascii_lowercase().starts_with("from:")).unwrap_or_default();
            assert!(from.contains("@send.esp.example"), "{trick}: the From shown is the rewritten one: {text}");
        }
    }

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

/// What the test's upstream mail server does with a message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    Accept,
    Defer,
    Reject,
    Down,
}

/// A message the upstream took: envelope sender, recipients, data, whether it came over TLS.
type Received = (String, Vec<String>, Vec<u8>, bool);
type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;

/// A small SMTP server on loopback standing in for the platform's MTA; with `tls`, it offers
/// STARTTLS.
async fn upstream(
    mode: Shared<Upstream>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (SocketAddr, Shared<Vec<Received>>, Shared<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (received, connections) = (Shared::default(), Shared::<usize>::default());
    let (kept, counted) = (received.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            *counted.lock().expect("count") += 1;
            let (mode, received, tls) = (mode.clone(), kept.clone(), tls.clone());
            if *mode.lock().expect("mode") == Upstream::Down {
                continue; // the connection closes without a greeting
            }
            tokio::spawn(async move {
                let offer = tls.is_some();
                if let Some(stream) = upstream_session(stream, mode.clone(), received.clone(), offer, true).await
                    && let Some(tls) = tls
                    && let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await
                {
                    upstream_session(stream, mode, received, false, false).await;
                }
            });
        }
    });
    (address, received, connections)
}

/// One session of the test's upstream (which does what `mode` says at the time: a connection
/// kept open between messages sees the change); the stream back when the client asked for
/// STARTTLS.
async fn upstream_session<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
    mode: Shared<Upstream>,
    received: Shared<Vec<Received>>,
    offer_tls: bool,
    greet: bool,
) -> Option<S> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let secure = !greet;
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = tokio::io::BufReader::new(reader);
    if greet {
        let _ = writer.write_all(b"220 upstream ESMTP\r\n").await;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    while reader.read_line(&mut line).await.is_ok_and(|read| read > 0) {
        let command = line.trim_end().to_string();
        line.clear();
        let mode = *mode.lock().expect("mode");
        if mode == Upstream::Down {
            return None; // gone: the connection closes
        }
        let reply = if command.starts_with("EHLO") {
            if offer_tls { "250-upstream\r\n250-STARTTLS\r\n250 8BITMIME" } else { "250-upstream\r\n250 8BITMIME" }
                .to_string()
        } else if command == "STARTTLS" && offer_tls {
            let _ = writer.write_all(b"220 go ahead\r\n").await;
            return Some(reader.into_inner().unsplit(writer));
        } else if let Some(address) = command.strip_prefix("MAIL FROM:<") {
            from = address.split('>').next().unwrap_or_default().to_string();
            "250 2.1.0 OK".to_string()
        } else if let Some(address) = command.strip_prefix("RCPT TO:<") {
            let address = address.trim_end_matches('>');
            if address.starts_with("unknown") {
                format!("550 5.1.1 <{address}>: unknown user")
            } else {
                to.push(address.to_string());
                "250 2.1.5 OK".to_string()
            }
        } else if command == "DATA" {
            let _ = writer.write_all(b"354 go ahead\r\n").await;
            let mut data = Vec::new();
            loop {
                let mut bytes = Vec::new();
                if reader.read_until(b'\n', &mut bytes).await.unwrap_or(0) == 0 || bytes == b".\r\n" {
                    break;
                }
                data.extend_from_slice(if bytes.starts_with(b"..") { &bytes[1..] } else { &bytes });
            }
            let to = std::mem::take(&mut to);
            match mode {
                Upstream::Defer => "451 4.3.0 try later".to_string(),
                Upstream::Reject => "550 5.7.1 refused by policy".to_string(),
                _ => {
                    received.lock().expect("received").push((from.clone(), to.clone(), data, secure));
                    "250 2.0.0 queued as 42".to_string()
                }
            }
        } else if command == "RSET" {
            to.clear();
            "250 2.0.0 OK".to_string()
        } else if command == "QUIT" {
            let _ = writer.write_all(b"221 bye\r\n").await;
            return None;
        } else {
            "500 what".to_string()
        };
        let _ = writer.write_all(format!("{reply}\r\n").as_bytes()).await;
    }
    None
}

/// A certificate for 127.0.0.1 made with openssl, signed by a test CA: (certificate, key, CA).
pub(crate) fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).expect("dir");
    let file = |name: &str| dir.join(name);
    std::fs::write(file("leaf.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").expect("ext");
    let steps: [Vec<&str>; 3] = [
        vec!["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=senderauth test CA"],
        vec!["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"],
        vec!["x509", "-req", "-CAcreateserial", "-days", "1"],
    ];
    let files = [
        vec!["-keyout", "ca.key", "-out", "ca.crt"],
        vec!["-keyout", "smtp.key", "-out", "smtp.csr"],
        vec!["-in", "smtp.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-extfile", "leaf.ext", "-out", "smtp.crt"],
    ];
    for (step, names) in steps.iter().zip(&files) {
        let mut command = std::process::Command::new("openssl");
        command.args(step).current_dir(dir);
        command.args(names);
        let made = command.output().expect("openssl");
        assert!(made.status.success(), "openssl {step:?}: {}", String::from_utf8_lossy(&made.stderr));
    }
    (file("smtp.crt"), file("smtp.key"), file("ca.crt"))
}

/// An SMTP client session: sends each line and collects each reply (multi-line replies joined).
pub(crate) struct Client<S> {
    reader: tokio::io::BufReader<tokio::io::ReadHalf<S>>,
    writer: tokio::io::WriteHalf<S>,
}

impl Client<tokio::net::TcpStream> {
    pub(crate) async fn connect(address: SocketAddr) -> (Self, String) {
        let stream = tokio::net::TcpStream::connect(address).await.expect("connecting to the gateway");
        let mut client = Client::over(stream);
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// STARTTLS, with `pipelined` sent in the same write right behind it (the server must drop
    /// it), then the TLS handshake trusting the CA certificate `authority`.
    async fn starttls(
        mut self,
        pipelined: &str,
        authority: &Path,
    ) -> Client<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        use rustls::pki_types::pem::PemObject;
        let reply = self.send(format!("STARTTLS\r\n{pipelined}").as_bytes()).await;
        assert!(reply.starts_with("220"), "{reply}");
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls::pki_types::CertificateDer::from_pem_file(authority).expect("the CA certificate");
        roots.add(der).expect("a root");
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let stream = self.reader.into_inner().unsplit(self.writer);
        let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, stream)
            .await
            .expect("the TLS handshake (nothing pipelined behind STARTTLS was answered in the clear)");
        Client::over(stream)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Client<S> {
    fn over(stream: S) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Client { reader: tokio::io::BufReader::new(reader), writer }
    }

    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(std::time::Duration::from_secs(20), self.reader.read_line(&mut line))
                .await
                .expect("a reply within 20 s")
                .expect("reading a reply");
            if read == 0 {
                return lines.join("\n");
            }
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_string());
            if done {
                return lines.join("\n");
            }
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        self.writer.write_all(bytes).await.expect("sending");
        self.reply().await
    }

    pub(crate) async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await
    }

    /// MAIL, RCPT, DATA and the message (dot-stuffed): the reply to the message.
    async fn mail(&mut self, message: &[u8]) -> String {
        self.mail_to("someone@example.net", message).await
    }

    /// As `mail`, to `recipient`.
    pub(crate) async fn mail_to(&mut self, recipient: &str, message: &[u8]) -> String {
        for command in ["MAIL FROM:<app@platform.example> BODY=8BITMIME".to_string(), format!("RCPT TO:<{recipient}>")]
        {
            let reply = self.command(&command).await;
            assert!(reply.starts_with("250"), "{command}: {reply}");
        }
        assert!(self.command("DATA").await.starts_with("354"));
        let mut stuffed = Vec::new();
        for line in message.split_inclusive(|byte| *byte == b'\n') {
            if line.starts_with(b".") {
                stuffed.push(b'.');
            }
            stuffed.extend_from_slice(line);
        }
        stuffed.extend_from_slice(b".\r\n");
        self.send(&stuffed).await
    }
}

#[tokio::test]
async fn the_smtp_gateway_relays_signed_mail_and_answers_every_fault_with_a_clear_reply() {
    use base64::Engine;
    if !dkimpy_ready() {
        return;
    }
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Upstream::Accept));
    let (upstream_address, received, connections) = upstream(mode.clone(), None).await;
    let server = zones().await;
    let data_dir = tempdir();
    let upstream_text = upstream_address.to_string();
    let extra = ["--smtp-listen", "127.0.0.1:0", "--smtp-upstream", upstream_text.as_str()];
    let envs = [
        ("SENDERAUTH_SMTP_IDLE_SECONDS", "2"),
        ("SENDERAUTH_SMTP_MESSAGE_SIZE_LIMIT", "20000"),
        ("SENDERAUTH_SMTP_AUTH_FAILURES", "3"),
        ("SENDERAUTH_SMTP_AUTH_FAILURE_DELAY_MS", "300"),
    ];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &envs).await;
    let (child, http, dns, smtp) = (started.child, started.http, started.dns, started.smtp);
    let (admin, token) = admin_and_account(&data_dir, http, "Mailer").await;
    let (status, connected) =
        call(http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@rsa.example.com"}"#)).await;
    assert_eq!(status, 201, "{connected}");
    for record in connected["records"].as_array().expect("records") {
        if record["record_type"] == "CNAME" {
            server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
        }
    }
    publish_hosted_keys(&server, http, &token, "rsa.example.com").await;
    let (_, verified) = call(http, "POST", "/api/v1/domains/rsa.example.com/verify", Some(&token), None).await;
    assert_eq!(verified["status"], "partially_verified", "{verified}");
    let plain = |secret: &str| base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{secret}"));

    let (mut client, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = client.command("EHLO client.example").await;
    for extension in ["SIZE 20000", "PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.contains(extension), "{extension} in {ehlo}");
    }
    // Not signed in: no mail. A wrong token, or the admin's: refused, each after the delay.
    assert!(client.command("MAIL FROM:<a@b.example>").await.starts_with("530 5.7.0"));
    let started = std::time::Instant::now();
    assert!(client.command(&format!("AUTH PLAIN {}", plain("sa_wrong"))).await.starts_with("535 5.7.8"));
    assert!(client.command(&format!("AUTH PLAIN {}", plain(&admin))).await.starts_with("535 5.7.8"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(600), "two failures wait 300 ms each");
    assert!(client.command(&format!("AUTH PLAIN {}", plain(&token))).await.starts_with("235"));
    // A guesser is cut off at the third failure.
    let (mut guesser, _) = Client::connect(smtp).await;
    for attempt in 1..=3 {
        let reply = guesser.command(&format!("AUTH PLAIN {}", plain(&format!("sa_guess{attempt}")))).await;
        assert!(reply.starts_with("535 5.7.8"), "{reply}");
    }
    let last = guesser.reply().await;
    assert!(last.starts_with("421 4.7.0"), "the session ends after the third failure: {last}");
    assert_eq!(guesser.reply().await, "", "the connection is closed");

    // Signed as the domain, relayed with the envelope on its return-path, after the upstream took it.
    let message =
        b"From: Shop <news@rsa.example.com>\r\nTo: someone@example.net\r\nSubject: Hi\r\n\r\n.leading dot\r\nBody\r\n";
    let reply = client.mail(message).await;
    assert!(reply.starts_with("250 2.0.0 Relayed: 2.0.0 queued as 42"), "{reply}");
    let (from, to, data, _) = received.lock().expect("received").pop().expect("the upstream has it");
    assert!(from.starts_with("b+") && from.ends_with("@rp.rsa.example.com"), "{from}");
    assert_eq!(to, ["someone@example.net"]);
    assert!(data.ends_with(message), "the message arrives as sent, the leading dot included");
    let (ok, said) = dkimpy(&data, server.address(), dns).await;
    assert!(ok && said.contains("pass d=rsa.example.com "), "{said}");

    // A domain the account does not have: rewritten, signed as the variable domain.
    let reply = client.mail(b"From: ann@yourcompany.com\r\nSubject: Hi\r\n\r\nBody\r\n").await;
    assert!(reply.starts_with("250"), "{reply}");
    let (_, _, data, _) = received.lock().expect("received").pop().expect("the upstream has it");
    assert!(String::from_utf8_lossy(&data).contains("\r\nFrom: ann=yourcompany.com@send.esp.example\r\n"));
    let (ok, said) = dkimpy(&data, server.address(), dns).await;
    assert!(ok && said.contains("pass d=send.esp.example "), "{said}");
    assert_eq!(*connections.lock().expect("count"), 1, "the second message went on the first's connection");

    // Bad input: each a clear reply; the session goes on.
    for (message, expected) in [
        (&b"To: a@example.net\r\n\r\nno From\r\n"[..], "550 5.1.7"),
        (&b"From: a@x.example, b@y.example\r\n\r\ntwo\r\n"[..], "550 5.1.7"),
        (&b"From: a@x.example\r\nbroken header\r\n\r\n"[..], "554 5.6.0"),
        (&b"From: a@x.example\r\n\r\nNUL \0\r\n"[..], "554 5.6.0"),
        (format!("From: a@x.example\r\n\r\n{}\r\n", "x".repeat(1000)).as_bytes(), "500 5.5.2"),
    ] {
        let reply = client.mail(message).await;
        assert!(reply.starts_with(expected), "{expected}: {reply}");
    }
    // Valid forms: a From folded with a tab, a quoted display name holding `<`, the postmaster.
    for from in ["Shop\r\n\t<news@rsa.example.com>", "\"a<b\" <news@rsa.example.com>"] {
        let reply = client.mail(format!("From: {from}\r\nSubject: Hi\r\n\r\nBody\r\n").as_bytes()).await;
        assert!(reply.starts_with("250"), "{from}: {reply}");
        let (_, _, data, _) = received.lock().expect("received").pop().expect("the upstream has it");
        let (ok, said) = dkimpy(&data, server.address(), dns).await;
        assert!(ok && said.contains("pass d=rsa.example.com "), "{from}: {said}");
    }
    assert!(client.command("MAIL FROM:<a@b.example>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<Postmaster>").await.starts_with("250"), "RFC 5321 section 4.5.1");
    assert!(client.command("RCPT TO:<\"john doe\"@example.net>").await.starts_with("250"));
    assert!(client.command("DATA").await.starts_with("354"));
    assert!(client.send(b"From: news@rsa.example.com\r\n\r\nHi\r\n.\r\n").await.starts_with("250"));
    let (_, to, _, _) = received.lock().expect("received").pop().expect("the upstream has it");
    assert_eq!(to, ["postmaster", "\"john doe\"@example.net"], "relayed as SMTP paths");
    // The upstream refuses one of two recipients: the other gets the message, the client's 250
    // says which were refused, and the sender gets a delivery status notification.
    assert!(client.command("MAIL FROM:<app@platform.example>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<someone@example.net>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<unknown@example.net>").await.starts_with("250"));
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.send(b"From: news@rsa.example.com\r\nSubject: Partly\r\n\r\nHi\r\n.\r\n").await;
    assert!(reply.starts_with("250 2.0.0 Relayed to 1 of 2 recipients"), "{reply}");
    assert!(reply.contains("<unknown@example.net> 550 5.1.1") && reply.contains("<app@platform.example>"), "{reply}");
    let notification = async {
        loop {
            let found = received.lock().expect("received").iter().position(|(from, _, _, _)| from.is_empty());
            if let Some(index) = found {
                return received.lock().expect("received").remove(index);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let (_, to, data, _) =
        tokio::time::timeout(std::time::Duration::from_secs(10), notification).await.expect("a notification");
    assert_eq!(to, ["app@platform.example"], "to the sender, from the null sender");
    let report = String::from_utf8_lossy(&data);
    assert!(report.contains("report-type=delivery-status"), "{report}");
    assert!(report.contains("Final-Recipient: rfc822; unknown@example.net") && report.contains("Status: 5.1.1"));
    assert!(report.contains("Subject: Partly"), "the original header comes back");
    let (_, to, _, _) = received.lock().expect("received").pop().expect("the message itself");
    assert_eq!(to, ["someone@example.net"]);
    // Every recipient refused: the upstream's refusal, nothing relayed.
    assert!(client.command("MAIL FROM:<app@platform.example>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<unknown1@example.net>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<unknown2@example.net>").await.starts_with("250"));
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.send(b"From: news@rsa.example.com\r\n\r\nHi\r\n.\r\n").await;
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    assert!(received.lock().expect("received").is_empty(), "nothing relayed");
    // 8-bit data without BODY=8BITMIME.
    assert!(client.command("MAIL FROM:<a@b.example>").await.starts_with("250"));
    assert!(client.command("RCPT TO:<someone@example.net>").await.starts_with("250"));
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.send("From: news@rsa.example.com\r\n\r\ncaf\u{e9}\r\n.\r\n".as_bytes()).await;
    assert!(reply.starts_with("554 5.6.1"), "{reply}");
    assert!(client.command("MAIL FROM:<a@b.example> SIZE=999999").await.starts_with("552 5.3.4"));
    let big = format!("From: news@rsa.example.com\r\n\r\n{}\r\n", "x".repeat(30_000));
    assert!(client.mail(big.as_bytes()).await.starts_with("552 5.3.4"));
    assert!(client.command("RCPT TO:<x@y.example>").await.starts_with("503"), "RCPT before MAIL");

    // The upstream: deferring, refusing, down.
    for (state, expected) in
        [(Upstream::Defer, "451 4.4.0"), (Upstream::Reject, "550 5.7.1"), (Upstream::Down, "451 4.4.1")]
    {
        *mode.lock().expect("mode") = state;
        let reply = client.mail(message).await;
        assert!(reply.starts_with(expected), "{state:?}: {reply}");
    }
    assert!(received.lock().expect("received").is_empty(), "nothing was taken in those cases");
    assert!(client.command("QUIT").await.starts_with("221"));

    // A client that stalls is told so and dropped; others are served meanwhile.
    let (mut stalled, _) = Client::connect(smtp).await;
    let (mut other, _) = Client::connect(smtp).await;
    assert!(other.command("NOOP").await.starts_with("250"));
    assert!(stalled.reply().await.starts_with("421 4.4.2"), "idle for 2 s");

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(&token), "no token in the logs");
    // What the gateway signed as the domain is counted per receiving organization for the
    // DMARC report coverage (written at the latest when the service stops); rewritten mail is
    // not the domain's.
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's store");
    let sent = store.sent("rsa.example.com", 0).await.expect("read");
    assert!(
        !sent.is_empty() && sent.iter().all(|count| count.receiver == "example.net" && count.messages >= 1),
        "{sent:?}"
    );
    assert_eq!(store.sent("yourcompany.com", 0).await.expect("read"), []);
}

/// Every reply until the server closes the connection (or 20 s pass), one per line.
async fn replies_until_closed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: &mut Client<S>,
) -> Vec<String> {
    let mut replies = Vec::new();
    loop {
        let reply = client.reply().await;
        if reply.is_empty() {
            return replies;
        }
        replies.push(reply);
    }
}

/// The SMTP smuggling streams published in December 2023 (CVE-2023-51764 and its kin): a dot
/// after a bare LF or CR, then a second message's commands. The gateway must never end the data
/// there, must refuse the message and close the session, and no second message may reach the
/// upstream; sent command by command and all in one pipelined write alike.
#[tokio::test]
async fn no_smuggled_message_gets_through_and_the_session_ends() {
    use base64::Engine;
    use tokio::io::AsyncWriteExt;
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Upstream::Accept));
    let (upstream_address, received, _) = upstream(mode, None).await;
    let server = zones().await;
    let data_dir = tempdir();
    let upstream_text = upstream_address.to_string();
    let extra = ["--smtp-listen", "127.0.0.1:0", "--smtp-upstream", upstream_text.as_str()];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &[]).await;
    let (child, http, _, smtp) = (started.child, started.http, started.dns, started.smtp);
    let (_, token) = admin_and_account(&data_dir, http, "Smuggler").await;
    let auth = format!("AUTH PLAIN {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("\0u\0{token}")));

    let smuggled = "MAIL FROM:<a@b.example>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n\
                    From: ceo@yourcompany.com\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n";
    let ends = ["\n.\r\n", "\n.\n", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\r.\r"];
    for end in ends {
        for pipelined in [false, true] {
            let first = format!("From: ann@yourcompany.com\r\nSubject: first\r\n\r\nhello{end}");
            let (mut client, _) = Client::connect(smtp).await;
            assert!(client.command("EHLO client.example").await.starts_with("250"));
            assert!(client.send(auth.as_bytes()).await.starts_with("235"));
            let envelope = "MAIL FROM:<a@b.example>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n";
            let replies = if pipelined {
                let stream = format!("{envelope}{first}{smuggled}");
                client.writer.write_all(stream.as_bytes()).await.expect("sending");
                replies_until_closed(&mut client).await
            } else {
                for command in envelope.lines() {
                    let reply = client.command(command).await;
                    assert!(reply.starts_with('2') || reply.starts_with("354"), "{command}: {reply}");
                }
                client.writer.write_all(format!("{first}{smuggled}").as_bytes()).await.expect("sending");
                replies_until_closed(&mut client).await
            };
            let case = format!("{end:?}, pipelined: {pipelined}");
            let last = replies.last().cloned().unwrap_or_default();
            assert!(last.starts_with("521 5.5.2"), "{case}: the message is refused: {replies:?}");
            assert!(
                !replies.iter().any(|reply| reply.starts_with("250 2.0.0")),
                "{case}: nothing relayed: {replies:?}"
            );
            assert!(received.lock().expect("received").is_empty(), "{case}: no message reached the upstream");
        }
    }
    // The same client, lines ending in CRLF: served as usual.
    let (mut client, _) = Client::connect(smtp).await;
    assert!(client.command("EHLO client.example").await.starts_with("250"));
    assert!(client.send(auth.as_bytes()).await.starts_with("235"));
    let reply = client.mail(b"From: ann@yourcompany.com\r\nSubject: fine\r\n\r\nhello\r\n").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(received.lock().expect("received").len(), 1);

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

/// Where the next test's DNS server answers on port 53, for verifiers that read
/// /etc/resolv.conf (OpenDKIM).
const RESOLVER_IP: &str = "127.0.0.77";

/// OpenDKIM's verdict on `message` (Debian's opendkim-testmsg, which asks the system resolver):
/// run in a mount namespace whose /etc/resolv.conf names only `RESOLVER_IP`.
/// The message without its `index`-th DKIM-Signature field (folded lines included).
fn without_signature(message: &str, index: usize) -> String {
    let (head, body) = message.split_once("\r\n\r\n").expect("a header and a body");
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(field) if line.starts_with([' ', '\t']) => {
                field.push_str("\r\n");
                field.push_str(line);
            }
            _ => fields.push(line.to_string()),
        }
    }
    let signature = fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.starts_with("DKIM-Signature:"))
        .nth(index)
        .map(|(position, _)| position)
        .expect("the signature");
    fields.remove(signature);
    format!("{}\r\n\r\n{body}", fields.join("\r\n"))
}

async fn opendkim(message: &[u8]) -> (bool, String) {
    let dir = tempdir();
    std::fs::create_dir_all(&dir).expect("dir");
    let (resolv, file) = (dir.join("resolv.conf"), dir.join("message.eml"));
    std::fs::write(&resolv, format!("nameserver {RESOLVER_IP}\noptions timeout:2 attempts:1\n")).expect("resolv.conf");
    std::fs::write(&file, message).expect("message");
    let script = format!("mount --bind {} /etc/resolv.conf && exec opendkim-testmsg < {}", path(&resolv), path(&file));
    let output =
        tokio::process::Command::new("unshare").args(["-m", "sh", "-c", &script]).output().await.expect("unshare");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

#[tokio::test]
async fn relayed_mail_passes_opendkim_and_dmarc_through_the_embedded_dns_server() {
    use base64::Engine;
    use senderauth_testkit::http::{FormClient, input_value};
    let tools = std::process::Command::new("opendkim-testmsg").arg("-h").output().is_ok()
        && std::process::Command::new("unshare").args(["-m", "true"]).status().is_ok_and(|status| status.success())
        && std::net::UdpSocket::bind((RESOLVER_IP, 53)).is_ok();
    let why = "opendkim-testmsg (Debian opendkim-tools), and root for unshare and port 53";
    if !dkimpy_ready() || !senderauth_testkit::require_or_skip(tools, why) {
        return;
    }
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Upstream::Accept));
    let (upstream_address, received, _) = upstream(mode, None).await;
    let server = zones().await;
    let data_dir = tempdir();
    let (upstream_text, resolver) = (upstream_address.to_string(), format!("{RESOLVER_IP}:53"));
    // Demo mode: the customer's zone is hosted by the embedded DNS server too, which answers a
    // CNAME with the key it leads to, as a recursive resolver would.
    let extra =
        ["--demo", "--dns-listen", &resolver, "--smtp-listen", "127.0.0.1:0", "--smtp-upstream", &upstream_text];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &[]).await;
    let (child, http, _, smtp) = (started.child, started.http, started.dns, started.smtp);
    let dns: SocketAddr = resolver.parse().expect("address");
    let token = std::fs::read_to_string(data_dir.join("demo-token")).expect("demo token").trim().to_string();

    // The customer connects shop.example.com, and dual.example.com with the Ed25519 box ticked,
    // and adds every record at the sandbox DNS host.
    let mut browser = FormClient::default();
    let page = browser.get(http, "/ui/sign-in").await;
    let csrf = input_value(&page.body, "csrf").expect("csrf");
    browser.post(http, "/ui/sign-in", &[("csrf", &csrf), ("token", &token)]).await;
    let page = browser.get(http, "/ui/domains").await;
    let csrf = input_value(&page.body, "csrf").expect("the session's csrf");
    for (domain, ed25519, cnames) in [("shop.example.com", None, 2), ("dual.example.com", Some("on"), 4)] {
        let email = format!("news@{domain}");
        let mut form = vec![("csrf", csrf.as_str()), ("email", email.as_str())];
        form.extend(ed25519.map(|on| ("ed25519", on)));
        let connected = browser.post(http, "/ui/domains", &form).await;
        assert_eq!(connected.status, 303, "{}", connected.body);
        let (_, records) = call(http, "GET", &format!("/api/v1/domains/{domain}/records"), Some(&token), None).await;
        let records = records["records"].as_array().expect("records");
        assert_eq!(records.iter().filter(|record| record["method"] == "dkim").count(), cnames, "{records:?}");
        for record in records {
            if record["method"] == "dmarc" && domain != "shop.example.com" {
                continue; // one DMARC record at the root's subdomain is enough for the test
            }
            let fields = [
                ("csrf", csrf.as_str()),
                ("kind", record["record_type"].as_str().expect("type")),
                ("host", record["host"].as_str().expect("host")),
                ("value", record["value"].as_str().expect("value")),
            ];
            let added = browser.post(http, "/ui/sandbox/example.com/records", &fields).await;
            assert_eq!(added.status, 303, "{record}: {}", added.body);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // served within a second
    for domain in ["shop.example.com", "dual.example.com"] {
        let (_, verified) = call(http, "POST", &format!("/api/v1/domains/{domain}/verify"), Some(&token), None).await;
        assert!(["verified", "partially_verified"].contains(&verified["status"].as_str().unwrap_or("")), "{verified}");
        assert_eq!(verified["result"]["dkim"]["status"], "verified", "{verified}");
    }

    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO client.example").await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0demo\0{token}"));
    assert!(client.command(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));
    for (from, domain) in [("news@shop.example.com", "shop.example.com"), ("ann@yourcompany.com", "send.esp.example")] {
        let message = format!(
            "From: Sender <{from}>\r\nTo: someone@example.net\r\nSubject: Hello\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n\
             Message-ID: <2@platform.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi.\r\n"
        );
        assert!(client.mail(message.as_bytes()).await.starts_with("250"));
        let (_, _, data, _) = received.lock().expect("received").pop().expect("relayed");
        let (ok, said) = opendkim(&data).await;
        assert!(ok, "OpenDKIM: {said}");
        let (ok, said) = dkimpy(&data, dns, dns).await;
        assert!(ok && said.contains(&format!("pass d={domain} ")), "{said}");
        assert!(said.contains("dmarc=pass"), "DMARC passes with an aligned DKIM signature: {said}");
    }
    // Ed25519 beside RSA: two signatures, and OpenDKIM verifies each one on its own.
    // (opendkim-testmsg calls a message without a Date a syntax error.)
    let message = "From: news@dual.example.com\r\nTo: someone@example.net\r\nSubject: Both\r\n\
                   Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <3@platform.example>\r\n\r\nHi.\r\n";
    assert!(client.mail(message.as_bytes()).await.starts_with("250"));
    let (_, _, data, _) = received.lock().expect("received").pop().expect("relayed");
    let (ok, said) = dkimpy(&data, dns, dns).await;
    assert!(ok && said.contains("a=rsa-sha256") && said.contains("a=ed25519-sha256"), "{said}");
    let text = String::from_utf8_lossy(&data).into_owned();
    for (kept, algorithm) in [(0, "a=rsa-sha256"), (1, "a=ed25519-sha256")] {
        let alone = without_signature(&text, 1 - kept);
        assert_eq!(alone.matches("DKIM-Signature:").count(), 1);
        assert!(alone.contains(algorithm), "{alone}");
        let (ok, said) = opendkim(alone.as_bytes()).await;
        assert!(ok, "OpenDKIM, {algorithm} alone: {said}");
        let (ok, said) = opendkim(alone.replace("\r\n\r\nHi.", "\r\n\r\nHo.").as_bytes()).await;
        assert!(!ok, "OpenDKIM, {algorithm} alone, a changed body must fail: {said}");
    }

    // OpenDKIM is not just saying yes: a changed body fails.
    assert!(client.mail(b"From: news@shop.example.com\r\nSubject: x\r\n\r\nBody\r\n").await.starts_with("250"));
    let (_, _, data, _) = received.lock().expect("received").pop().expect("relayed");
    let (ok, said) = opendkim(String::from_utf8_lossy(&data).replace("Body", "B0dy").as_bytes()).await;
    assert!(!ok, "a changed body must fail: {said}");

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn starttls_protects_the_client_side_and_is_used_towards_an_upstream_that_offers_it() {
    use base64::Engine;
    if !senderauth_testkit::require_or_skip(
        std::process::Command::new("openssl").arg("version").output().is_ok(),
        "openssl (Debian) to make a test certificate",
    ) {
        return;
    }
    let data_dir = tempdir();
    let (certificate, key, authority) = certificate(&data_dir.join("tls"));
    let tls = senderauth_mail::smtp::tls_config(&certificate, &key).expect("a TLS setup from the files");
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Upstream::Accept));
    let (upstream_address, received, _) = upstream(mode, Some(tls)).await;
    let server = zones().await;
    let upstream_text = upstream_address.to_string();
    let extra = ["--smtp-listen", "127.0.0.1:0", "--smtp-upstream", upstream_text.as_str()];
    let envs = [("SENDERAUTH_SMTP_TLS_CERTIFICATE", path(&certificate)), ("SENDERAUTH_SMTP_TLS_KEY", path(&key))];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &envs).await;
    let (child, http, _, smtp) = (started.child, started.http, started.dns, started.smtp);
    let (_, token) = admin_and_account(&data_dir, http, "Secure").await;

    let (mut client, _) = Client::connect(smtp).await;
    assert!(client.command("EHLO client.example").await.contains("250-STARTTLS"));
    // A command pipelined behind STARTTLS is dropped unanswered (RFC 3207 section 4.2): were it
    // answered in the clear, the handshake would fail.
    let mut client = client.starttls("NOOP\r\n", &authority).await;
    let ehlo = client.command("EHLO client.example").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(client.command("STARTTLS").await.starts_with("503"), "TLS is already active");
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{token}"));
    assert!(client.command(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));
    let reply = client.mail(b"From: ann@yourcompany.com\r\nSubject: over TLS\r\n\r\nBody\r\n").await;
    assert!(reply.starts_with("250"), "{reply}");
    let (_, _, data, over_tls) = received.lock().expect("received").pop().expect("relayed");
    assert!(over_tls, "the upstream offered STARTTLS, so the message went over TLS");
    assert!(String::from_utf8_lossy(&data).contains("Subject: over TLS"));

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

/// What a test adds to a private Postfix: lines of main.cf and master.cf, and the resolver
/// configuration its lookups use.
#[derive(Default)]
pub(crate) struct PostfixExtras {
    pub(crate) main: String,
    pub(crate) master: String,
    pub(crate) resolv_conf: Option<std::path::PathBuf>,
}

/// A private Postfix instance (Debian's postfix, run as root) on 127.0.0.1:`port`: it takes mail
/// for example.net from loopback, offers STARTTLS with the given certificate, and writes each
/// delivered message to a file in `out/`. Stopped when dropped.
pub(crate) struct Postfix {
    dir: std::path::PathBuf,
}

impl Postfix {
    fn start(dir: &Path, port: u16, certificate: &Path, key: &Path) -> Postfix {
        Postfix::start_for(dir, port, certificate, key, "example.net", "capture")
    }

    /// As `start`, taking mail for `domain` and handing it to `transport` (`capture`, the file
    /// writer, or `smtp:[127.0.0.1]:PORT`, another server).
    pub(crate) fn start_for(
        dir: &Path,
        port: u16,
        certificate: &Path,
        key: &Path,
        domain: &str,
        transport: &str,
    ) -> Postfix {
        Postfix::start_with(dir, port, certificate, key, domain, transport, &PostfixExtras::default())
    }

    /// As `start_for`, with `extras`.
    pub(crate) fn start_with(
        dir: &Path,
        port: u16,
        certificate: &Path,
        key: &Path,
        domain: &str,
        transport: &str,
        extras: &PostfixExtras,
    ) -> Postfix {
        let (out, spool, data) = (dir.join("out"), dir.join("spool"), dir.join("data"));
        for directory in [&out, &spool, &data] {
            std::fs::create_dir_all(directory).expect("a Postfix directory");
        }
        let owned = std::process::Command::new("chown").args(["postfix", path(&data)]).status().expect("chown");
        let open = std::process::Command::new("chmod").args(["777", path(&out)]).status().expect("chmod");
        assert!(owned.success() && open.success());
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {spool}\ndata_directory = {data}\n\
             myhostname = upstream.test\nmydestination =\nrelay_domains = {domain}\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = check_recipient_access inline:{{ refused@example.net=REJECT }}, \
             permit_mynetworks, reject\ndefault_transport = {transport}\n\
             relay_transport = {transport}\nalias_maps =\nalias_database =\n\
             maillog_file = {log}\nmaillog_file_prefixes = {dir}\n\
             smtpd_tls_cert_file = {certificate}\nsmtpd_tls_key_file = {key}\n\
             smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n",
            spool = path(&spool),
            data = path(&data),
            log = path(&dir.join("maillog")),
            dir = path(dir),
            certificate = path(certificate),
            key = path(key),
        ) + &extras.main;
        std::fs::write(dir.join("main.cf"), main).expect("main.cf");
        // Debian's master.cf, unchrooted, its smtpd on our port, plus a transport that writes
        // each message to a file.
        let debian = std::fs::read_to_string("/etc/postfix/master.cf").expect("Debian's master.cf");
        let mut master = String::new();
        for line in debian.lines() {
            let mut fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) || fields.len() < 8 {
                master.push_str(line);
            } else {
                fields[4] = "n".to_string();
                if fields[0] == "smtp" && fields[1] == "inet" {
                    fields[0] = format!("127.0.0.1:{port}");
                }
                master.push_str(&fields.join(" "));
            }
            master.push('\n');
        }
        master.push_str(&format!(
            "capture unix - n n - - pipe\n  user=nobody argv=/bin/dd of={}/${{queue_id}}.eml status=none\n",
            path(&out)
        ));
        master.push_str(&extras.master);
        std::fs::write(dir.join("master.cf"), master).expect("master.cf");
        let started = match &extras.resolv_conf {
            // In a mount namespace of its own with `resolv_conf` over /etc/resolv.conf: its DNS
            // lookups go where the test says, and nothing else on the machine sees it.
            Some(resolv_conf) => std::process::Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount --bind {} /etc/resolv.conf && exec postfix -c {} start",
                    path(resolv_conf),
                    path(dir)
                ))
                .output()
                .expect("unshare postfix"),
            None => std::process::Command::new("postfix").args(["-c", path(dir), "start"]).output().expect("postfix"),
        };
        let log = std::fs::read_to_string(dir.join("maillog")).unwrap_or_default();
        assert!(started.status.success(), "Postfix did not start: {log}");
        Postfix { dir: dir.to_path_buf() }
    }

    /// The messages delivered so far.
    pub(crate) fn delivered(&self) -> Vec<Vec<u8>> {
        std::fs::read_dir(self.dir.join("out"))
            .map(|entries| entries.flatten().filter_map(|entry| std::fs::read(entry.path()).ok()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = std::process::Command::new("postfix").args(["-c", path(&self.dir), "stop"]).output();
    }
}

#[tokio::test]
async fn postfix_as_the_upstream_receives_the_signed_mail_over_tls() {
    use base64::Engine;
    let ready = std::path::Path::new("/usr/sbin/postfix").exists()
        && std::process::Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    if !dkimpy_ready() || !senderauth_testkit::require_or_skip(ready, "postfix (Debian), run as root") {
        return;
    }
    let data_dir = tempdir();
    let (certificate, key, _) = certificate(&data_dir.join("tls"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    // Beside the service's data directory, not in it: the service keeps that to itself (0700),
    // and Postfix's daemons run as the postfix user.
    let postfix = Postfix::start(&tempdir().join("postfix"), port, &certificate, &key);
    let server = zones().await;
    let upstream = format!("127.0.0.1:{port}");
    let extra = ["--smtp-listen", "127.0.0.1:0", "--smtp-upstream", upstream.as_str()];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &[]).await;
    let (child, http, dns, smtp) = (started.child, started.http, started.dns, started.smtp);
    let (_, token) = admin_and_account(&data_dir, http, "Postfix").await;

    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO client.example").await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{token}"));
    assert!(client.command(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));
    let message =
        b"From: Ann <ann@yourcompany.com>\r\nTo: someone@example.net\r\nSubject: via Postfix\r\n\r\nHello.\r\n";
    let reply = client.mail(message).await;
    assert!(reply.starts_with("250 2.0.0 Relayed: 2.0.0 Ok: queued as "), "{reply}\n{}", postfix.log());
    let started = std::time::Instant::now();
    let delivered = loop {
        if let Some(message) = postfix.delivered().pop() {
            break message;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "not delivered: {}", postfix.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let text = String::from_utf8_lossy(&delivered);
    assert!(text.contains("From: Ann <ann=yourcompany.com@send.esp.example>"), "{text}");
    let (ok, said) = dkimpy(&delivered, dns, dns).await;
    assert!(ok && said.contains("pass d=send.esp.example ") && said.contains("dmarc=pass"), "{said}");
    let log = postfix.log();
    assert!(log.contains("TLS connection established from localhost"), "the relay used STARTTLS: {log}");
    assert!(log.contains("from=<b+"), "the envelope sender is on the bounce domain: {log}");

    // Postfix refuses one of two recipients (pipelined: the gateway learns it from the batch's
    // replies): the other gets the message, and the sender a delivery status notification.
    for command in
        ["MAIL FROM:<app@platform.example>", "RCPT TO:<someone@example.net>", "RCPT TO:<refused@example.net>"]
    {
        assert!(client.command(command).await.starts_with("250"), "{command}");
    }
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.send(b"From: ann@yourcompany.com\r\nSubject: two\r\n\r\nHello.\r\n.\r\n").await;
    assert!(
        reply.starts_with("250 2.0.0 Relayed to 1 of 2 recipients") && reply.contains("<refused@example.net> 554"),
        "{reply}"
    );
    let started = std::time::Instant::now();
    let report = loop {
        let all = postfix.delivered();
        if let Some(report) = all.iter().find(|message| String::from_utf8_lossy(message).contains("delivery-status")) {
            break String::from_utf8_lossy(report).into_owned();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "no notification: {}", postfix.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        report.contains("Final-Recipient: rfc822; refused@example.net") && report.contains("Status: 5.7.1"),
        "{report}"
    );
    assert!(postfix.log().contains("from=<>"), "the notification comes from the null sender");

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}
