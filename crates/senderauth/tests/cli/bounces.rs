//! Bounces through the running service: the gateway's envelope sender carries a token; the
//! bounce listener takes RCPT only for tokens it issued (on the bounce domain or the domain's
//! return-path), stores a DSN per recipient, keeps one that does not read, and the API shows a
//! domain's bounces and a message's fate, to its own account only; `message.bounced` reaches a
//! webhook.

use std::sync::{Arc, Mutex};

use senderauth_testkit::http::{FormClient, call, call_raw, call_text, input_value, publish_hosted_keys};

use crate::gateway::{Client, Postfix};
use crate::{admin_and_account, direct_resolver, planned_value, start_service_listening, stop_service, tempdir, zones};

/// A webhook receiver on loopback: every request body it gets, answered 200.
async fn webhook_receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("address");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Ok(read) = stream.read(&mut buffer).await else { return };
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string)
                            })
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            kept.lock().expect("bodies").push(body.to_string());
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (address, bodies)
}

/// `message` as the gateway would relay it for the account of `token`: its envelope sender and
/// the message.
pub(crate) async fn prepare(http: std::net::SocketAddr, token: &str, message: &[u8]) -> (String, Vec<u8>) {
    let (status, head, prepared) = call_raw(http, "/api/v1/messages/prepare", token, "message/rfc822", message).await;
    assert_eq!(status, 200, "{head}");
    let envelope = head
        .lines()
        .find_map(|line| line.strip_prefix("senderauth-envelope-from: "))
        .expect("the envelope sender")
        .trim()
        .to_string();
    (envelope, prepared)
}

/// Connects shop.example.com with every CNAME added (its return-path too) and
/// plain.example.com without its return-path, each verified at once.
pub(crate) async fn connect_shop_and_plain(
    server: &senderauth_testkit::TestDns,
    http: std::net::SocketAddr,
    token: &str,
) {
    for domain in ["shop.example.com", "plain.example.com"] {
        let body = format!(r#"{{"email": "news@{domain}"}}"#);
        let (status, connected) = call(http, "POST", "/api/v1/domains", Some(token), Some(&body)).await;
        assert_eq!(status, 201, "{connected}");
        for record in connected["records"].as_array().expect("records") {
            if record["record_type"] == "CNAME" && !(domain == "plain.example.com" && record["method"] == "return_path")
            {
                server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
            }
        }
        publish_hosted_keys(server, http, token, domain).await;
        let (status, verified) =
            call(http, "POST", &format!("/api/v1/domains/{domain}/verify"), Some(token), None).await;
        assert_eq!(status, 200, "{verified}");
    }
}

/// A Postfix-style DSN for `recipient` refused with `reply` (`550 5.1.1 ...`), sent to `to`.
fn dsn(to: &str, recipient: &str, action: &str, status: &str, reply: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {to}\r\nSubject: Undelivered Mail Returned \
         to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; \
         boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n\
         <{recipient}>: host mx.example.net[192.0.2.9] said: {reply}\r\n\r\n--B\r\n\
         Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\
         Remote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; {reply}\r\n\r\n--B\r\n\
         Content-Type: text/rfc822-headers\r\n\r\nFrom: news@shop.example.com\r\nMessage-ID: <m1@shop.example.com>\r\n\r\n--B--\r\n"
    )
}

/// Sends `message` to the bounce listener for `recipient` with an empty reverse-path, as bounces
/// come; returns the RCPT reply and, when it was taken, the reply to the message.
async fn bounce(listener: std::net::SocketAddr, recipient: &str, message: &str) -> (String, Option<String>) {
    let (mut client, greeting) = Client::connect(listener).await;
    assert!(greeting.starts_with("220 ") && greeting.contains("bounces"), "{greeting}");
    assert!(client.command("EHLO mx.example.net").await.starts_with("250"));
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    let rcpt = client.command(&format!("RCPT TO:<{recipient}>")).await;
    if !rcpt.starts_with("250") {
        return (rcpt, None);
    }
    assert!(client.command("DATA").await.starts_with("354"));
    let reply = client.send(format!("{message}.\r\n").as_bytes()).await;
    client.command("QUIT").await;
    (rcpt, Some(reply))
}

#[tokio::test]
async fn bounces_come_back_to_the_token_and_are_read_per_recipient_for_their_account_only() {
    let server = zones().await;
    let data_dir = tempdir();
    let (hook, bodies) = webhook_receiver().await;
    let envs = [("SENDERAUTH_WEBHOOK_PRIVATE_TARGETS", "true")];
    let started = start_service_listening(&[], &data_dir, &server, &[], &envs).await;
    let (child, http, listener) = (started.child, started.http, started.bounces);
    let (admin, token) = admin_and_account(&data_dir, http, "Shop").await;
    let hook_body = format!(r#"{{"url": "http://{hook}/hook"}}"#);
    assert_eq!(call(http, "POST", "/api/v1/webhooks", Some(&token), Some(&hook_body)).await.0, 201);
    // shop.example.com with every record, its return-path too; plain.example.com without one.
    connect_shop_and_plain(&server, http, &token).await;
    let envelope = |domain: &'static str| {
        let token = token.clone();
        async move {
            let message = format!("From: news@{domain}\r\nTo: someone@example.net\r\nSubject: Hi\r\n\r\nBody\r\n");
            let (envelope, _) = prepare(http, &token, message.as_bytes()).await;
            let token =
                envelope.split_once('.').and_then(|(_, rest)| rest.split_once('@')).expect("b+N.token@").0.to_string();
            (envelope, token)
        }
    };
    let (shop_envelope, shop_token) = envelope("shop.example.com").await;
    assert!(shop_envelope.ends_with("@rp.shop.example.com"), "{shop_envelope}");
    let (plain_envelope, plain_token) = envelope("plain.example.com").await;
    assert!(plain_envelope.ends_with("@bounces.esp.example"), "{plain_envelope}");

    // A hard bounce at the return-path, a delay at the bounce domain: both stored, 250 after.
    let (rcpt, reply) = bounce(
        listener,
        &shop_envelope,
        &dsn(&shop_envelope, "gone@example.net", "failed", "5.1.1", "550 5.1.1 <gone@example.net>: User unknown"),
    )
    .await;
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert_eq!(reply.as_deref(), Some("250 2.0.0 bounce recorded: 1 recipient(s), 1 hard"));
    let (_, reply) = bounce(
        listener,
        &plain_envelope,
        &dsn(&plain_envelope, "full@example.net", "delayed", "4.2.2", "452 4.2.2 Mailbox full"),
    )
    .await;
    assert_eq!(reply.as_deref(), Some("250 2.0.0 bounce recorded: 1 recipient(s), 0 hard"));
    // Refused at RCPT: a token never issued, a real token at another domain's return-path or at a
    // name that is neither, another account's number with this token.
    let forged = format!("b+1.{}@bounces.esp.example", "0".repeat(48));
    let elsewhere = shop_envelope.replace("@rp.shop.example.com", "@rp.plain.example.com");
    let stranger = shop_envelope.replace("@rp.shop.example.com", "@example.net");
    let other_account = shop_envelope.replacen("b+1.", "b+2.", 1);
    for address in [
        forged.as_str(),
        elsewhere.as_str(),
        stranger.as_str(),
        other_account.as_str(),
        "postmaster@bounces.esp.example",
    ] {
        let (rcpt, reply) = bounce(listener, address, "From: x@example.net\r\n\r\nx\r\n").await;
        assert!(rcpt.starts_with("550 5.1.1") && reply.is_none(), "{address}: {rcpt}");
    }
    // A message that is no bounce at all: kept, said so, not lost.
    let (_, reply) =
        bounce(listener, &shop_envelope, "From: someone@example.net\r\nSubject: out of office\r\n\r\nAway.\r\n").await;
    let reply = reply.expect("taken");
    assert!(reply.starts_with("250 2.0.0 kept as received, it did not read as a bounce"), "{reply}");

    // The domain's bounces, filtered; the message's fate.
    let (status, list) =
        call(http, "GET", "/api/v1/domains/shop.example.com/bounces?kind=hard", Some(&token), None).await;
    assert_eq!(status, 200, "{list}");
    let bounces = list["bounces"].as_array().expect("bounces");
    assert_eq!(bounces.len(), 1, "{list}");
    assert_eq!(
        (bounces[0]["address"].as_str(), bounces[0]["status"].as_str(), bounces[0]["token"].as_str()),
        (Some("gone@example.net"), Some("5.1.1"), Some(shop_token.as_str()))
    );
    assert!(bounces[0]["diagnostic"].as_str().is_some_and(|text| text.contains("User unknown")), "{list}");
    let (_, soft) = call(http, "GET", "/api/v1/domains/shop.example.com/bounces?kind=soft", Some(&token), None).await;
    assert_eq!(soft["bounces"].as_array().map(Vec::len), Some(0), "{soft}");
    let (status, bad) =
        call(http, "GET", "/api/v1/domains/shop.example.com/bounces?kind=bad", Some(&token), None).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_filter")), "{bad}");
    let (status, fate) = call(http, "GET", &format!("/api/v1/messages/{shop_token}"), Some(&token), None).await;
    assert_eq!(status, 200, "{fate}");
    assert_eq!((fate["fate"].as_str(), fate["domain"].as_str()), (Some("bounced"), Some("shop.example.com")), "{fate}");
    let kept = fate["bounces"].as_array().expect("bounces");
    assert_eq!(kept.len(), 2, "the DSN and the message that did not read: {fate}");
    assert!(kept[1]["problem"].as_str().is_some_and(|problem| problem.contains("no recipient")), "{fate}");
    let (_, fate) = call(http, "GET", &format!("/api/v1/messages/{plain_token}"), Some(&token), None).await;
    assert_eq!(
        (fate["fate"].as_str(), fate["domain"].as_str()),
        (Some("delayed"), Some("plain.example.com")),
        "{fate}"
    );

    // Another account: 404 on every route, as for a domain or message that does not exist.
    let body = r#"{"name": "Other"}"#;
    let (_, other) = call(http, "POST", "/api/v1/accounts", Some(&admin), Some(body)).await;
    let other = other["token"].as_str().expect("token").to_string();
    for path in [
        "/api/v1/domains/shop.example.com/bounces".to_string(),
        format!("/api/v1/messages/{shop_token}"),
        format!("/api/v1/messages/{}", "0".repeat(48)),
    ] {
        let (status, said) = call(http, "GET", &path, Some(&other), None).await;
        assert_eq!(status, 404, "{path}: {said}");
    }
    let (status, _) = call(http, "GET", "/api/v1/domains/shop.example.com/bounces", None, None).await;
    assert_eq!(status, 401);

    // The domain's page groups the bounces by cause, in plain words.
    let mut browser = FormClient::default();
    let page = browser.get(http, "/ui/sign-in").await;
    let csrf = input_value(&page.body, "csrf").expect("csrf");
    browser.post(http, "/ui/sign-in", &[("csrf", &csrf), ("token", &token)]).await;
    let page = browser.get(http, "/ui/domains/shop.example.com").await;
    assert_eq!(page.status, 200);
    let section = page.body.split("id=\"bounces-title\"").nth(1).expect("a Bounces section");
    let section = section.split("</section>").next().unwrap_or_default();
    for expected in ["Hard", "5.1.1", "the address does not exist", "User unknown"] {
        assert!(section.contains(expected), "{expected} in {section}");
    }
    // With its return-path verified, the page says what the root SPF include is still for; the
    // Return-Path row is done. Without, the row asks for the CNAME.
    assert!(page.body.contains("Keep the platform&#39;s include here all the same"), "{}", page.body);
    let page = browser.get(http, "/ui/domains/plain.example.com").await;
    assert!(page.body.contains("the mailbox is full"), "the delay at the bounce domain: {}", page.body);
    assert!(!page.body.contains("Keep the platform&#39;s include here all the same"));
    assert!(page.body.contains("Return-Path (SPF alignment)") && page.body.contains("rp.plain"), "{}", page.body);

    // message.bounced reached the webhook, with the recipient and its status; counted in /metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let bounced = loop {
        let found = bodies.lock().expect("bodies").iter().find(|body| body.contains("message.bounced")).cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no message.bounced delivery within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let event: serde_json::Value = serde_json::from_str(&bounced).expect("JSON");
    assert_eq!(event["data"]["domain"], "shop.example.com", "{event}");
    assert_eq!(event["data"]["token"], shop_token.as_str(), "{event}");
    assert_eq!(event["data"]["recipients"][0]["kind"], "hard", "{event}");
    let (_, metrics) = call_text(http, "GET", "/metrics", None, None).await;
    for line in [
        "senderauth_bounces_total{result=\"read\"} 2",
        "senderauth_bounces_total{result=\"unreadable\"} 1",
        "senderauth_bounced_recipients_total{kind=\"hard\"} 1",
        "senderauth_bounced_recipients_total{kind=\"soft\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    stop_service(child).await;
}

/// Unbound as the receivers' recursive resolver on `address`:53, asking the test DNS server for
/// the customers' zones and senderauth's embedded server for the platform's. Killed when dropped.
pub(crate) struct Unbound(std::process::Child);

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_unbound(
    dir: &std::path::Path,
    address: &str,
    customers: std::net::SocketAddr,
    platform: std::net::SocketAddr,
) -> Unbound {
    std::fs::create_dir_all(dir).expect("unbound dir");
    let stub = |zone: &str, server: std::net::SocketAddr| {
        format!("stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n", server.ip(), server.port())
    };
    let config = format!(
        "server:\n  interface: {address}\n  port: 53\n  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n\
         \x20 module-config: \"iterator\"\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n\
         \x20 use-syslog: no\n  logfile: \"{dir}/unbound.log\"\n  qname-minimisation: no\n  cache-max-ttl: 0\n\
         \x20 local-zone: \"example.\" nodefault\n  local-zone: \"test.\" nodefault\n{}{}",
        stub("example.com", customers) + &stub("example.net", customers),
        stub("esp.example", platform),
        dir = dir.display(),
    );
    std::fs::write(dir.join("unbound.conf"), config).expect("unbound.conf");
    let child = std::process::Command::new("unbound")
        .args(["-d", "-c"])
        .arg(dir.join("unbound.conf"))
        .stderr(std::fs::File::create(dir.join("unbound.err")).expect("log"))
        .spawn()
        .expect("starting unbound");
    Unbound(child)
}

#[tokio::test]
async fn postfix_bounces_a_refused_and_a_deferred_recipient_to_the_return_path_through_its_mx() {
    use base64::Engine;
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout == b"0\n");
    let tools = ["/usr/sbin/postfix", "/usr/sbin/unbound", "/usr/bin/unshare"]
        .iter()
        .all(|tool| std::path::Path::new(tool).exists());
    if !senderauth_testkit::require_or_skip(root && tools, "postfix and unbound (Debian), unshare, run as root") {
        return;
    }
    // The receivers' view of DNS: the customer's zone, and the bounce host's address (an MX on
    // loopback: 127.0.0.3, where the bounce listener takes port 25).
    let server = zones().await;
    server.add("mx.example.net", "A", "127.0.0.3");
    let data_dir = tempdir();
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let config = data_dir.join("provider.toml");
    std::fs::write(&config, "[return_path]\nbounce_hosts = [\"mx.example.net\"]\n").expect("config");
    // Postfix: the platform's MTA on `outbound`, relaying example.net to a second smtpd of its own
    // on `receiving`, the receiving side, which refuses gone@ (550) and defers slow@ (450).
    let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("address").port();
    let (outbound, receiving) = (free(), free());
    let postfix_dir = tempdir().join("postfix");
    std::fs::create_dir_all(&postfix_dir).expect("postfix dir");
    let (certificate, key, _) = crate::gateway::certificate(&postfix_dir.join("tls"));
    let upstream = format!("127.0.0.1:{outbound}");
    let extra =
        ["--smtp-upstream", upstream.as_str(), "--bounces-listen", "127.0.0.3:25", "--config", crate::path(&config)];
    let started = start_service_listening(&[], &data_dir, &server, &extra, &[]).await;
    let (child, http, smtp, platform) = (started.child, started.http, started.smtp, started.dns);
    let unbound_dir = tempdir().join("unbound");
    let unbound = start_unbound(&unbound_dir, "127.0.0.5", server.address(), platform);
    let resolv_conf = postfix_dir.join("resolv.conf");
    std::fs::write(&resolv_conf, "nameserver 127.0.0.5\noptions attempts:2 timeout:2\n").expect("resolv.conf");
    let extras = crate::gateway::PostfixExtras {
        main: format!(
            "default_transport = smtp\nrelay_transport = smtp:[127.0.0.1]:{receiving}\nsmtp_tls_security_level = none\n\
             delay_warning_time = 1s\nqueue_run_delay = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n\
             receiving_side = check_recipient_access inline:{{ {{ gone@example.net = 550 5.1.1 User unknown }}, \
             {{ slow@example.net = 450 4.2.2 Mailbox full }} }}, permit\n"
        ),
        master: format!(
            "127.0.0.1:{receiving} inet n - n - - smtpd\n  -o smtpd_recipient_restrictions=$receiving_side\n  \
             -o smtpd_relay_restrictions=permit_mynetworks,reject\n"
        ),
        resolv_conf: Some(resolv_conf),
    };
    let postfix = Postfix::start_with(&postfix_dir, outbound, &certificate, &key, "example.net", "smtp", &extras);
    let (_, token) = admin_and_account(&data_dir, http, "Shop").await;
    let (status, connected) =
        call(http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@shop.example.com"}"#)).await;
    assert_eq!(status, 201, "{connected}");
    for record in connected["records"].as_array().expect("records") {
        if record["record_type"] == "CNAME" {
            server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
        }
    }
    publish_hosted_keys(&server, http, &token, "shop.example.com").await;
    let (_, verified) = call(http, "POST", "/api/v1/domains/shop.example.com/verify", Some(&token), None).await;
    assert_eq!(verified["result"]["return_path"]["status"], "verified", "{verified}");
    // The platform's DNS serves the return-path target once its follower has read the new
    // domain from the store: within a second, longer on a machine busy with the other tests.
    // A customer's first bounce comes minutes later; here it comes at once, so wait for it.
    let target = planned_value(&connected, "fqdn", "rp.shop.example.com");
    let platform_dns = direct_resolver(platform);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !platform_dns.mx(&target).await.is_ok_and(|answer| !answer.as_slice().is_empty()) {
        assert!(std::time::Instant::now() < deadline, "the platform's DNS does not serve {target}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO app.example").await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0user\0{token}"));
    assert!(client.command(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));
    for recipient in ["gone@example.net", "slow@example.net"] {
        let message =
            format!("From: Shop <news@shop.example.com>\r\nTo: {recipient}\r\nSubject: News\r\n\r\nHello.\r\n");
        let reply = client.mail_to(recipient, message.as_bytes()).await;
        assert!(reply.starts_with("250 2.0.0 Relayed"), "{reply}\n{}", postfix.log());
    }
    // Postfix bounces gone@ at once and warns of slow@ after a second; each DSN goes to
    // b+...@rp.shop.example.com, whose MX it finds through the CNAME in the platform's zone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let bounces = loop {
        let (_, list) = call(http, "GET", "/api/v1/domains/shop.example.com/bounces", Some(&token), None).await;
        let bounces = list["bounces"].as_array().cloned().unwrap_or_default();
        if bounces.len() >= 2 {
            break bounces;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no bounces within 60 s: {list}\n{}\n{}",
            postfix.log(),
            std::fs::read_to_string(unbound_dir.join("unbound.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let find = |address: &str| bounces.iter().find(|bounce| bounce["address"] == address).cloned().unwrap_or_default();
    let gone = find("gone@example.net");
    assert_eq!(
        (gone["kind"].as_str(), gone["action"].as_str(), gone["status"].as_str()),
        (Some("hard"), Some("failed"), Some("5.1.1")),
        "{bounces:?}"
    );
    assert!(gone["diagnostic"].as_str().is_some_and(|text| text.contains("User unknown")), "{gone}");
    let slow = find("slow@example.net");
    assert_eq!(
        (slow["kind"].as_str(), slow["action"].as_str(), slow["status"].as_str()),
        (Some("soft"), Some("delayed"), Some("4.2.2")),
        "{bounces:?}"
    );
    let log = postfix.log();
    assert!(log.contains("relay=mx.example.net[127.0.0.3]:25"), "delivered through the return-path's MX: {log}");
    let token_of_gone = gone["token"].as_str().expect("token");
    let (_, fate) = call(http, "GET", &format!("/api/v1/messages/{token_of_gone}"), Some(&token), None).await;
    assert_eq!(fate["fate"], "bounced", "{fate}");
    assert_eq!(fate["bounces"][0]["format"], "postfix", "{fate}");
    drop(postfix);
    drop(unbound);
    stop_service(child).await;
}
