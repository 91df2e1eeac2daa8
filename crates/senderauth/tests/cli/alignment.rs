//! The return-path at real receivers' checkers: the customer's zone in Knot with
//! `rp.<domain>` CNAME to the target in senderauth's embedded DNS; Debian's pyspf passes the
//! envelope sender from every sending address; authheaders (PyPI) passes DMARC for a message
//! from the gateway with its DKIM signature removed, through SPF alone, and fails the same
//! message sent with the platform's bounce domain as envelope sender.

use std::path::Path;

use senderauth_testkit::http::{call, publish_hosted_keys};
use senderauth_testkit::require_or_skip;

use crate::bounces::prepare;
use crate::nameserver::{dkimpy_ready, python, start_knot_zone};
use crate::{admin_and_account, path, start_service_full, stop_service, tempdir, zones};

/// The message without its DKIM-Signature fields (folded lines included).
fn without_dkim(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    let mut kept = Vec::new();
    let mut dropping = false;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if !dropping {
                kept.push(line);
            }
            continue;
        }
        dropping = line.to_ascii_lowercase().starts_with("dkim-signature:");
        if !dropping {
            kept.push(line);
        }
    }
    format!("{}\r\n\r\n{body}", kept.join("\r\n")).into_bytes()
}

/// What pyspf and authheaders say of `message` with `mail_from`, from each of `ips`.
async fn evaluate(
    message: &[u8],
    customer: std::net::SocketAddr,
    platform: std::net::SocketAddr,
    mail_from: &str,
    ips: &[&str],
) -> String {
    let file = tempdir().join("message.eml");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
    std::fs::write(&file, message).expect("message file");
    let output = tokio::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/spf_dmarc.py"))
        .args([path(&file), &customer.to_string(), &platform.to_string(), "esp.example", mail_from])
        .args(ips)
        .output()
        .await
        .expect("running pyspf and authheaders");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{said}");
    said
}

#[tokio::test]
async fn with_its_return_path_the_gateways_mail_passes_dmarc_through_spf_alone() {
    let knotd =
        std::process::Command::new("knotd").arg("--version").output().is_ok_and(|output| output.status.success());
    let pyspf = Path::new("/usr/lib/python3/dist-packages/spf.py").exists();
    if !dkimpy_ready()
        || !require_or_skip(knotd, "knotd (Debian knot)")
        || !require_or_skip(pyspf, "pyspf (Debian python3-spf)")
    {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let (child, http, platform) = start_service_full(&data_dir, &server, &[], &[]).await;
    let (_, token) = admin_and_account(&data_dir, http, "Shop").await;
    let (status, connected) =
        call(http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@shop.example.com"}"#)).await;
    assert_eq!(status, 201, "{connected}");
    // The customer's zone at their DNS host (Knot), every record added as the plan says, and a
    // DMARC policy that rejects what fails; the verifier's copy in the test DNS server.
    let mut zone = String::from(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300\n\
         @ NS ns.example.com.\nns A 127.0.0.1\n_dmarc.shop TXT \"v=DMARC1; p=reject\"\n",
    );
    for record in connected["records"].as_array().expect("records") {
        let (kind, fqdn, value) = (
            record["record_type"].as_str().expect("type"),
            record["fqdn"].as_str().expect("fqdn"),
            record["value"].as_str().expect("value"),
        );
        match kind {
            "CNAME" => {
                server.add(fqdn, "CNAME", value);
                zone.push_str(&format!("{fqdn}. CNAME {value}.\n"));
            }
            _ if record["method"] == "spf" => zone.push_str(&format!("{fqdn}. TXT \"{value}\"\n")),
            _ => {}
        }
    }
    let zone_file = data_dir.join("example.com.zone");
    std::fs::write(&zone_file, zone).expect("zone file");
    let knot = start_knot_zone(&data_dir.join("knot"), "example.com", &zone_file, "c2VuZGVyYXV0aA==").await;
    publish_hosted_keys(&server, http, &token, "shop.example.com").await;
    let (_, verified) = call(http, "POST", "/api/v1/domains/shop.example.com/verify", Some(&token), None).await;
    assert_eq!(verified["result"]["return_path"]["status"], "verified", "{verified}");

    let message = "From: Shop <news@shop.example.com>\r\nTo: someone@example.net\r\nSubject: Aligned\r\n\
                   Date: Wed, 02 Dec 2026 12:00:00 +0000\r\nMessage-ID: <a1@shop.example.com>\r\n\r\nHello.\r\n";
    let (envelope, prepared) = prepare(http, &token, message.as_bytes()).await;
    assert!(envelope.ends_with("@rp.shop.example.com"), "{envelope}");
    let stripped = without_dkim(&prepared);
    assert!(!String::from_utf8_lossy(&stripped).contains("DKIM-Signature"));

    // Both ends of each sending range (the default provider configuration's).
    let ends = ["192.0.2.0", "192.0.2.255", "2001:db8:5::", "2001:db8:5:ffff:ffff:ffff:ffff:ffff"];
    let said = evaluate(&stripped, knot.address, platform, &envelope, &ends).await;
    for ip in ends {
        assert!(said.contains(&format!("spf {ip} pass")), "pyspf passes {envelope} from {ip}: {said}");
    }
    assert!(said.contains("spf=pass") && said.contains("smtp.mailfrom=rp.shop.example.com"), "{said}");
    assert!(said.contains("dmarc=pass"), "DMARC passes through the aligned SPF alone: {said}");
    assert!(!said.contains("dkim=pass"), "no signature was left to pass: {said}");
    // An address outside the ranges fails, so the pass above is the record's doing.
    let outside = evaluate(&stripped, knot.address, platform, &envelope, &["198.51.100.7"]).await;
    assert!(outside.contains("spf 198.51.100.7 fail") && outside.contains("dmarc=fail"), "{outside}");

    // Control: the same message with the platform's bounce domain as envelope sender: SPF does
    // not align with the From, and without DKIM DMARC fails.
    let bounce_domain = envelope.replace("@rp.shop.example.com", "@bounces.esp.example");
    let control = evaluate(&stripped, knot.address, platform, &bounce_domain, &ends[..1]).await;
    assert!(control.contains("dmarc=fail"), "{control}");
    drop(knot);
    stop_service(child).await;
}
