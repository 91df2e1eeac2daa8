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

/// OpenDMARC as a milter, run in a mount namespace whose resolv.conf points at `resolver` (its
/// own SPF check and DMARC lookups go there). Killed when dropped.
struct OpenDmarc(std::process::Child);

impl Drop for OpenDmarc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_opendmarc(dir: &Path, port: u16, resolver: &str) -> OpenDmarc {
    std::fs::create_dir_all(dir).expect("opendmarc dir");
    // Every client counts (the default leaves 127.0.0.1 unchecked, and the gateway is there).
    std::fs::write(dir.join("ignore-hosts"), "192.0.2.254\n").expect("ignore hosts");
    std::fs::write(dir.join("resolv.conf"), format!("nameserver {resolver}\noptions attempts:2 timeout:2\n"))
        .expect("resolv.conf");
    let config = format!(
        "AuthservID receiver.test\nSocket inet:{port}@127.0.0.1\nIgnoreHosts {dir}/ignore-hosts\nSPFSelfValidate true\n\
         SPFIgnoreResults true\nSyslog false\nPidFile {dir}/opendmarc.pid\nRejectFailures false\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("opendmarc.conf"), config).expect("opendmarc.conf");
    let child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {}/resolv.conf /etc/resolv.conf && exec opendmarc -f -c {}/opendmarc.conf",
            dir.display(),
            dir.display()
        ))
        .stderr(std::fs::File::create(dir.join("opendmarc.err")).expect("log"))
        .spawn()
        .expect("starting opendmarc");
    OpenDmarc(child)
}

#[tokio::test]
async fn opendmarc_in_postfix_passes_dmarc_on_the_aligned_return_path_and_fails_the_bounce_domain() {
    use base64::Engine;
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout == b"0\n");
    let tools = ["/usr/sbin/postfix", "/usr/sbin/opendmarc", "/usr/sbin/unbound", "/usr/bin/unshare"]
        .iter()
        .all(|tool| Path::new(tool).exists());
    if !require_or_skip(root && tools, "postfix, opendmarc and unbound (Debian), unshare, run as root") {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    std::fs::create_dir_all(&data_dir).expect("data dir");
    // The gateway connects to the receiver from 127.0.0.1: one of the platform's sending
    // addresses here, so SPF can pass for it.
    let config = data_dir.join("provider.toml");
    std::fs::write(&config, "sending_ips = [\"192.0.2.0/24\", \"2001:db8:5::/48\", \"127.0.0.1/32\"]\n")
        .expect("config");
    let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
    let (receiving, milter) = (free(), free());
    let postfix_dir = tempdir().join("postfix");
    std::fs::create_dir_all(&postfix_dir).expect("postfix dir");
    let (certificate, key, _) = crate::gateway::certificate(&postfix_dir.join("tls"));
    let upstream = format!("127.0.0.1:{receiving}");
    let extra = ["--smtp-upstream", upstream.as_str(), "--config", path(&config)];
    let started = crate::start_service_listening(&[], &data_dir, &server, &extra, &[]).await;
    let (child, http, smtp, platform) = (started.child, started.http, started.smtp, started.dns);
    let unbound = crate::bounces::start_unbound(&tempdir().join("unbound"), "127.0.0.6", server.address(), platform);
    let opendmarc = start_opendmarc(&tempdir().join("opendmarc"), milter, "127.0.0.6");
    let extras = crate::gateway::PostfixExtras {
        main: format!("smtpd_milters = inet:127.0.0.1:{milter}\nmilter_default_action = tempfail\n"),
        ..Default::default()
    };
    let postfix = crate::gateway::Postfix::start_with(
        &postfix_dir,
        receiving,
        &certificate,
        &key,
        "example.net",
        "capture",
        &extras,
    );
    let (_, token) = admin_and_account(&data_dir, http, "Shop").await;
    // shop.example.com with its return-path, plain.example.com without; both reject what fails.
    for domain in ["shop.example.com", "plain.example.com"] {
        server.add(&format!("_dmarc.{domain}"), "TXT", "v=DMARC1; p=reject");
    }
    crate::bounces::connect_shop_and_plain(&server, http, &token).await;
    let (mut client, _) = crate::gateway::Client::connect(smtp).await;
    client.command("EHLO app.example").await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{token}"));
    assert!(client.command(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));
    for domain in ["shop.example.com", "plain.example.com"] {
        let message = format!("From: news@{domain}\r\nTo: someone@example.net\r\nSubject: {domain}\r\n\r\nHello.\r\n");
        let reply = client.mail_to("someone@example.net", message.as_bytes()).await;
        assert!(
            reply.starts_with("250 2.0.0 Relayed"),
            "{reply}\n{}\n{}",
            postfix.log(),
            std::fs::read_to_string(tempdir().join("opendmarc/opendmarc.err")).unwrap_or_default()
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let delivered = loop {
        let delivered: Vec<String> =
            postfix.delivered().iter().map(|bytes| String::from_utf8_lossy(bytes).into_owned()).collect();
        if delivered.len() >= 2 {
            break delivered;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {}", postfix.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // What OpenDMARC wrote into each message it checked (no DKIM verifier runs here, so DMARC
    // rests on SPF alone).
    let results = |subject: &str| -> String {
        let message =
            delivered.iter().find(|message| message.contains(&format!("Subject: {subject}"))).expect("delivered");
        let head = message.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n\t", " ").replace("\r\n ", " ");
        head.lines()
            .filter(|line| line.starts_with("Authentication-Results: receiver.test"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let aligned = results("shop.example.com");
    assert!(aligned.contains("spf=pass") && aligned.contains("smtp.mailfrom=rp.shop.example.com"), "{aligned}");
    assert!(aligned.contains("dmarc=pass") && aligned.contains("header.from=shop.example.com"), "{aligned}");
    let control = results("plain.example.com");
    assert!(control.contains("dmarc=fail") && control.contains("header.from=plain.example.com"), "{control}");
    drop(postfix);
    drop(opendmarc);
    drop(unbound);
    stop_service(child).await;
}
