//! The sending gateway: messages prepared for relay are DKIM-signed as their domain when it is
//! authenticated, or rewritten to the variable domain and signed as that; dkimpy (PyPI), which
//! nobody here wrote, verifies them through the customer's DNS and the embedded DNS server.

use std::net::SocketAddr;
use std::path::Path;

use senderauth_testkit::http::{call, call_raw, publish_hosted_keys};

use super::nameserver::{dkimpy_ready, python};
use super::{admin_and_account, path, start_service_full, stop_service, tempdir, zones};

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
            if record["record_type"] == "CNAME" {
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
    }

    // An authenticated domain: signed as itself, the message otherwise untouched.
    for (domain, algorithm) in [("rsa.example.com", "rsa-sha256"), ("ed.example.com", "ed25519-sha256")] {
        let message = format!(
            "From: \"Shop, Inc.\" <news@{domain}>\r\nTo: someone@example.net\r\nSubject: Hello\r\n\
             Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@{domain}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nList-Unsubscribe: <https://{domain}/u>\r\n\r\nHi.\r\n\r\n\r\n"
        );
        let (status, head, prepared) =
            call_raw(http, "/api/v1/messages/prepare", &token, "message/rfc822", message.as_bytes()).await;
        assert_eq!(status, 200, "{head}{}", String::from_utf8_lossy(&prepared));
        assert!(prepared.ends_with(message.as_bytes()), "only a DKIM-Signature is added in front");
        assert_eq!(header(&head, "senderauth-from-rewritten"), "no");
        assert!(header(&head, "senderauth-envelope-from").starts_with("b+"), "{head}");
        assert!(header(&head, "senderauth-envelope-from").ends_with("@bounces.esp.example"), "{head}");
        let (ok, said) = dkimpy(&prepared, server.address(), dns).await;
        assert!(
            ok && said.contains(&format!("pass d={domain} ")) && said.contains(&format!("a={algorithm}")),
            "{said}"
        );
        let text = String::from_utf8_lossy(&prepared);
        assert!(
            text.contains("h=from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:from;"),
            "{text}"
        );

        // A second From added after signing breaks the signature (From is signed twice).
        let injected = text.replacen("To: someone", "From: thief@evil.example\r\nTo: someone", 1);
        let (ok, said) = dkimpy(injected.as_bytes(), server.address(), dns).await;
        assert!(!ok, "an added From must not verify: {said}");
    }

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

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}
