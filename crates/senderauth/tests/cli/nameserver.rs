//! The platform's DNS server in `senderauth serve`, asked by real DNS clients: `kdig` (Knot's,
//! from Debian's knot-dnsutils) and hickory's client (the verifier's own resolver).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_testkit::http::call;
use senderauth_testkit::require_or_skip;
use serde_json::Value;

use super::{admin_and_account, path, planned_value, start_service_full, stop_service, tempdir, zones};

fn kdig_available() -> bool {
    std::process::Command::new("kdig").arg("--version").output().is_ok_and(|output| output.status.success())
}

/// Asks `server` with kdig; returns its answer as RFC 8427 JSON.
async fn kdig(server: SocketAddr, args: &[&str]) -> Value {
    let output = tokio::process::Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+json", "+retry=0", "+timeout=2"])
        .args(args)
        .output()
        .await
        .expect("running kdig");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "kdig {args:?}: {error}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The TXT records of an answer section, each one's strings joined.
fn txt_answers(answer: &Value) -> Vec<String> {
    answer["answerRRs"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|record| record["TYPE"] == 16)
                .map(|record| {
                    // kdig shows the strings quoted and space-separated: "v=DKIM1; k=rsa; p=..." "...".
                    let data = record["rdataTXT"].as_str().unwrap_or_default();
                    data.split("\" \"").map(|part| part.trim_matches('"')).collect::<String>()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asks until the answer satisfies `done`, for up to `within` (changes reach the DNS server
/// through the store's change log).
async fn kdig_until(
    server: SocketAddr,
    args: &[&str],
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let answer = kdig(server, args).await;
        if done(&answer) || started.elapsed() > within {
            return (answer, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one UDP datagram; the answer, if one comes within a second.
async fn udp_exchange(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    socket.send_to(query, server).await.expect("send");
    let mut reply = vec![0u8; 4096];
    let (length, _) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut reply)).await.ok()?.ok()?;
    reply.truncate(length);
    Some(reply)
}

#[tokio::test]
async fn the_platform_zone_is_served_with_correct_dns_behaviour() {
    if !require_or_skip(kdig_available(), "kdig (Debian knot-dnsutils)") {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    // Many sending addresses make the SPF include longer than a 512-octet UDP answer.
    let sending: Vec<String> = (1..=40).map(|n| format!("198.51.100.{n}")).collect();
    let sending_ips = format!("[{}]", sending.iter().map(|ip| format!("\"{ip}\"")).collect::<Vec<_>>().join(", "));
    let (child, http, dns) =
        start_service_full(&data_dir, &server, &[], &[("SENDERAUTH_SENDING_IPS", sending_ips.as_str())]).await;
    let (_, token) = admin_and_account(&data_dir, http, "Shop").await;
    let (status, connected) =
        call(http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@shop.example.com"}"#)).await;
    assert_eq!(status, 201, "{connected}");

    // The two keys: RSA-2048 by default, the first signing, the second on standby.
    let (status, keys) = call(http, "GET", "/api/v1/domains/shop.example.com/dkim", Some(&token), None).await;
    assert_eq!(status, 200, "{keys}");
    let keys = keys["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!((keys[0]["state"].as_str(), keys[1]["state"].as_str()), (Some("active"), Some("standby")));
    assert!(keys.iter().all(|key| key["algorithm"] == "rsa-2048" && key.get("private_key").is_none()));
    // Each key is published where the customer's CNAME points.
    let targets: Vec<String> = connected["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|record| record["method"] == "dkim")
        .map(|record| record["value"].as_str().expect("value").trim_end_matches('.').to_string())
        .collect();
    let published: Vec<String> =
        keys.iter().map(|key| key["published_at"].as_str().expect("name").to_string()).collect();
    assert_eq!(targets, published);
    let name = published[0].clone();
    let record = keys[0]["record"].as_str().expect("record").to_string();
    assert!(record.starts_with("v=DKIM1; k=rsa; p=MII"), "{record}");

    // Served within a second of the connection, authoritatively.
    let (answer, took) = kdig_until(dns, &[&name, "TXT", "+bufsize=1232"], Duration::from_secs(2), |answer| {
        !txt_answers(answer).is_empty()
    })
    .await;
    assert!(took < Duration::from_secs(1), "served after {took:?}");
    assert_eq!((answer["RCODE"].as_u64(), answer["AA"].as_u64()), (Some(0), Some(1)), "{answer}");
    assert_eq!(txt_answers(&answer), [record.as_str()], "{answer}");
    // The key is longer than 255 octets: more than one string in the one record.
    assert!(answer["answerRRs"][0]["rdataTXT"].as_str().expect("txt").contains("\" \""), "{answer}");

    // The domain's return-path target (issue 16): the sending addresses' SPF record and the
    // bounce host's MX, served with it.
    let target = "shop-example-com.rp.esp.example";
    let (answer, _) =
        kdig_until(dns, &[target, "TXT"], Duration::from_secs(2), |answer| !txt_answers(answer).is_empty()).await;
    // The same record as the account's SPF include: the platform's sending addresses.
    let include = connected["records"]
        .as_array()
        .expect("records")
        .iter()
        .find_map(|record| record["value"].as_str()?.split_whitespace().find_map(|term| term.strip_prefix("include:")))
        .expect("the SPF include")
        .to_string();
    let include_record = txt_answers(&kdig(dns, &[&include, "TXT", "+bufsize=1232"]).await);
    assert!(include_record[0].starts_with("v=spf1 ip4:198.51.100.1 "), "{include_record:?}");
    assert_eq!(txt_answers(&answer), include_record, "{answer}");
    let answer = kdig(dns, &[target, "MX"]).await;
    let exchanges: Vec<&str> =
        answer["answerRRs"].as_array().into_iter().flatten().filter_map(|record| record["rdataMX"].as_str()).collect();
    assert_eq!(exchanges, ["10 mx.bounces.esp.example."], "{answer}");

    // Names are case-insensitive, and the answer keeps the client's spelling (kdig shows names
    // lowercased, so the raw answer is read: the question comes back as sent, and the answer's
    // owner is that name).
    let shouted = name.to_uppercase();
    let answer = kdig(dns, &[&shouted, "TXT", "+bufsize=1232"]).await;
    assert_eq!(txt_answers(&answer), [record.as_str()]);
    let mut query = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in shouted.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 16, 0, 1]);
    let reply = udp_exchange(dns, &query).await.expect("an answer");
    let question = &query[12..];
    assert_eq!(&reply[12..12 + question.len()], question, "the question as sent");
    let owner = &reply[12 + question.len()..12 + question.len() + 2];
    assert_eq!(owner, [0xc0, 0x0c], "the answer's owner points at the question's name");

    // The zone apex: SOA and NS.
    let answer = kdig(dns, &["esp.example", "SOA"]).await;
    assert_eq!(answer["AA"].as_u64(), Some(1));
    assert_eq!(answer["answerRRs"][0]["TYPE"].as_u64(), Some(6), "{answer}");
    let answer = kdig(dns, &["esp.example", "NS"]).await;
    assert_eq!(answer["answerRRs"][0]["rdataNS"].as_str(), Some("ns1.esp.example."), "{answer}");

    // A name that does not exist: NXDOMAIN with the SOA; a name without that type, or with
    // names below it only: NODATA (NOERROR, no answer) with the SOA.
    for (query, rcode) in [
        (vec!["nothing.dkim.esp.example", "TXT"], 3),
        (vec![name.as_str(), "A"], 0),
        (vec!["dkim.esp.example", "TXT"], 0),
    ] {
        let answer = kdig(dns, &query).await;
        assert_eq!(answer["RCODE"].as_u64(), Some(rcode), "{query:?}: {answer}");
        assert_eq!((answer["ANCOUNT"].as_u64(), answer["AA"].as_u64()), (Some(0), Some(1)), "{query:?}: {answer}");
        assert_eq!(answer["authorityRRs"][0]["TYPE"].as_u64(), Some(6), "{query:?}: the SOA: {answer}");
    }
    // Outside its zones it refuses, without claiming authority.
    let answer = kdig(dns, &["example.org", "TXT"]).await;
    assert_eq!((answer["RCODE"].as_u64(), answer["AA"].as_u64()), (Some(5), Some(0)), "{answer}");
    // An EDNS version it does not speak: BADVERS (16: the OPT record's extended RCODE 1 over
    // the header's 0, which is what kdig's JSON shows apart).
    let answer = kdig(dns, &[&name, "TXT", "+edns=1"]).await;
    let opt = &answer["additionalRRs"][0];
    assert_eq!((opt["TYPE"].as_u64(), answer["RCODE"].as_u64()), (Some(41), Some(0)), "{answer}");
    assert_eq!(opt["TTL"].as_u64().map(|ttl| ttl >> 24), Some(1), "extended RCODE: {answer}");

    // The report address's consent to receive the domain's DMARC reports (RFC 9990 section 4),
    // for its own policy and its organizational domain's, and for no other domain: no wildcard.
    for policy in ["shop.example.com", "example.com"] {
        let authorization = format!("{policy}._report._dmarc.reports.esp.example");
        assert_eq!(txt_answers(&kdig(dns, &[&authorization, "TXT"]).await), ["v=DMARC1"], "{authorization}");
    }
    let stranger = kdig(dns, &["stranger.example._report._dmarc.reports.esp.example", "TXT"]).await;
    assert_eq!(stranger["RCODE"].as_u64(), Some(3), "{stranger}");

    // The account's SPF include lists the sending addresses; the variable domain has its own
    // SPF and DMARC records.
    let spf = planned_value(&connected, "method", "spf");
    let include =
        spf.split_whitespace().find_map(|term| term.strip_prefix("include:")).expect("an include").to_string();
    let expected_spf =
        format!("v=spf1 {} -all", sending.iter().map(|ip| format!("ip4:{ip}")).collect::<Vec<_>>().join(" "));
    assert_eq!(txt_answers(&kdig(dns, &[&include, "TXT", "+tcp"]).await), [expected_spf.as_str()]);
    assert_eq!(txt_answers(&kdig(dns, &["send.esp.example", "TXT", "+bufsize=1232"]).await), [expected_spf.as_str()]);
    // Without EDNS that does not fit 512 octets: truncated over UDP, complete over TCP.
    let answer = kdig(dns, &[&include, "TXT", "+noedns", "+ignore"]).await;
    assert_eq!((answer["TC"].as_u64(), answer["ANCOUNT"].as_u64()), (Some(1), Some(0)), "{answer}");
    let answer = kdig(dns, &[&include, "TXT", "+noedns", "+tcp"]).await;
    assert_eq!(txt_answers(&answer), [expected_spf.as_str()], "{answer}");
    assert_eq!(txt_answers(&kdig(dns, &["_dmarc.send.esp.example", "TXT"]).await), ["v=DMARC1; p=reject;"]);
    let variable_key = txt_answers(&kdig(dns, &["sa1._domainkey.send.esp.example", "TXT", "+tcp"]).await);
    assert!(variable_key.len() == 1 && variable_key[0].starts_with("v=DKIM1; k=rsa; p=MII"), "{variable_key:?}");

    // Malformed queries get FORMERR (or nothing, when not even the header is there), and the
    // server goes on answering.
    let truncated_name = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exa";
    let reply = udp_exchange(dns, truncated_name).await.expect("FORMERR");
    assert!(reply[..2] == [0x12, 0x34] && reply[2] & 0x80 != 0 && reply[3] & 0x0f == 1, "FORMERR: {reply:?}");
    let two_questions = [&query[..5], &[2], &query[6..], &query[12..]].concat();
    let reply = udp_exchange(dns, &two_questions).await.expect("FORMERR");
    assert_eq!(reply[3] & 0x0f, 1, "two questions: FORMERR: {reply:?}");
    assert!(udp_exchange(dns, b"\x00").await.is_none(), "no header: no answer");
    assert_eq!(txt_answers(&kdig(dns, &[&name, "TXT", "+bufsize=1232"]).await), [record.as_str()], "still serving");

    // hickory's client, as the verifier uses it, reads the same key.
    let resolver = Dns::new(&ResolverSettings {
        nameserver: Some(dns),
        timeout: Duration::from_secs(2),
        attempts: 1,
        cache: false,
    })
    .expect("resolver");
    let found = resolver.txt(&name).await.expect("an answer");
    let found: Vec<String> = found.records().iter().map(|text| String::from_utf8_lossy(text).into_owned()).collect();
    assert_eq!(found, [record.as_str()]);

    // The zone as a file, for operators who serve it themselves.
    let zone_export = async || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
            .args(["zone", "export", "--data-dir", path(&data_dir)])
            .env_remove("SENDERAUTH_CONFIG")
            .output()
            .await
            .expect("zone export")
    };
    let export = zone_export().await;
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let zone_file = String::from_utf8_lossy(&export.stdout).into_owned();
    assert!(zone_file.contains("$ORIGIN esp.example.") && zone_file.contains(" IN SOA "), "{zone_file}");
    assert!(zone_file.contains(&format!("{name}. 3600 IN TXT \"v=DKIM1; k=rsa; p=MII")), "{zone_file}");
    // A key stored at a name that is no DNS name (connected by an earlier version, before such
    // names were refused): the export says so and which, instead of leaving it out silently.
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's store");
    let account = store.create_account("Earlier", None, 1).await.expect("account");
    let bad_name = format!("sa1-{}.{}.dkim.esp.example", account.id, "f".repeat(70));
    let key = senderauth_store::NewKey {
        selector: format!("sa1-{}", account.id),
        name: bad_name.clone(),
        algorithm: "rsa-2048".to_string(),
        public_key: "MIIB".to_string(),
        sealed_private_key: vec![0; 16],
        master_key_id: "k1".to_string(),
        state: senderauth_store::KeyState::Active,
    };
    let zone = senderauth_store::DomainZone { keys: vec![key], ..Default::default() };
    store.add_domain_with(account.id, "earlier.example.com", 1, &zone).await.expect("a domain of an earlier version");
    let export = zone_export().await;
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert_eq!(export.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&bad_name) && stderr.contains("connect it again"), "{stderr}");
    assert!(String::from_utf8_lossy(&export.stdout).contains(&format!("{name}. 3600 IN TXT")), "the rest is written");

    // Removed: gone from the zone within a second, the include with the account's last domain.
    let (status, _) = call(http, "DELETE", "/api/v1/domains/shop.example.com", Some(&token), None).await;
    assert_eq!(status, 204);
    let (answer, took) = kdig_until(dns, &[&name, "TXT"], Duration::from_secs(2), |answer| answer["RCODE"] == 3).await;
    assert_eq!(answer["RCODE"].as_u64(), Some(3), "{answer}");
    assert!(took < Duration::from_secs(1), "removed after {took:?}");
    assert_eq!(kdig(dns, &[&include, "TXT"]).await["RCODE"].as_u64(), Some(3));
    let authorization = "shop.example.com._report._dmarc.reports.esp.example";
    assert_eq!(kdig(dns, &[authorization, "TXT"]).await["RCODE"].as_u64(), Some(3), "withdrawn with its domain");

    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY") && !stderr.contains(&token), "{stderr}");
}

/// Over 64 KiB at one sandbox name (demo mode): kdig reads the TCP answer as a well-formed
/// message with as many whole records as fit and TC set, and the UDP one as TC with none.
#[tokio::test]
async fn an_answer_too_big_for_tcp_is_cut_at_a_whole_record() {
    let server = zones().await;
    let data_dir = tempdir();
    let (child, _, dns) = start_service_full(&data_dir, &server, &["--demo"], &[]).await;
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's store");
    let account = store.create_account("Big", None, 1).await.expect("account");
    let zone = store.create_sandbox_zone(account.id, "big.example.com", 1).await.expect("a sandbox zone");
    for number in 0..40 {
        let value = format!("{number:02}{}", "x".repeat(2_998));
        store.add_sandbox_record(zone.id, "txt.big.example.com", "TXT", &value, 1).await.expect("a record");
    }
    // The server follows the records as they are added: until it has them all, an answer
    // may still fit.
    let (answer, _) = kdig_until(dns, &["txt.big.example.com", "TXT", "+tcp"], Duration::from_secs(5), |answer| {
        answer["TC"].as_u64() == Some(1)
    })
    .await;
    let count = answer["ANCOUNT"].as_u64().expect("a count");
    assert!((20..40).contains(&count) && answer["TC"].as_u64() == Some(1), "{answer}");
    let records = answer["answerRRs"].as_array().expect("the records kdig read");
    assert_eq!(records.len() as u64, count, "every record counted is there, whole: {answer}");
    let over_udp = kdig(dns, &["txt.big.example.com", "TXT", "+bufsize=1232", "+ignore"]).await;
    assert_eq!((over_udp["TC"].as_u64(), over_udp["ANCOUNT"].as_u64()), (Some(1), Some(0)), "{over_udp}");
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

/// The Python with dkimpy installed: `SENDERAUTH_PYTHON`, or the venv the test script makes.
/// Whether the test venv has dkimpy and what it needs (a skip, or a failure under CI, if not).
pub(crate) fn dkimpy_ready() -> bool {
    let ready = std::process::Command::new(python())
        .args(["-c", "import dkim, dns.message, nacl"])
        .output()
        .is_ok_and(|output| output.status.success());
    require_or_skip(ready, "dkimpy, dnspython and PyNaCl (PyPI) in the test venv")
}

pub(crate) fn python() -> std::path::PathBuf {
    std::env::var_os("SENDERAUTH_PYTHON").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3"),
        std::path::PathBuf::from,
    )
}

/// The open private key of each of a domain's keys, `(selector, algorithm, PKCS#8)`, read from
/// the service's database and opened with `master`; checks on the way that the database does
/// not hold the key itself.
async fn open_keys(data_dir: &Path, master: &str, domain: &str) -> Vec<(String, String, Vec<u8>)> {
    let store = senderauth_store::Store::connect(&format!("sqlite://{}", data_dir.join("senderauth.db").display()))
        .await
        .expect("the service's database");
    let master = senderauth_service::keys::MasterKeys::parse(master, "the test's master keys").expect("master keys");
    let dashed = domain.replace('.', "-");
    let mut opened = Vec::new();
    for key in store.zone_contents().await.expect("zone").keys {
        if !key.name.contains(&format!(".{dashed}.")) {
            continue;
        }
        let stored = store.sealed_key(key.id).await.expect("read").expect("sealed key");
        let sealed = senderauth_service::keys::Sealed { key_id: stored.master_key_id, bytes: stored.sealed };
        let private = master.open(&key.name, &sealed).expect("the key opens with the master key");
        assert!(
            !private.windows(16).any(|window| sealed.bytes.windows(16).any(|stored| stored == window)),
            "the database holds the private key in the clear"
        );
        opened.push((key.selector, key.algorithm, private));
    }
    opened.sort();
    opened
}

/// Signs a message as `domain` with each key and has dkimpy verify it through DNS.
async fn sign_and_verify(keys: &[(String, String, Vec<u8>)], domain: &str, customer: SocketAddr, platform: SocketAddr) {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    for (selector, algorithm, private) in keys {
        let (text, signature_algorithm) = if algorithm == "ed25519" {
            // dkimpy takes an Ed25519 key as its 32-byte seed: in ring's PKCS#8 v2 document it
            // follows a 16-byte prefix.
            (engine.encode(&private[16..48]), "ed25519-sha256")
        } else {
            let lines: Vec<String> = engine
                .encode(private)
                .as_bytes()
                .chunks(64)
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect();
            (format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")), "rsa-sha256")
        };
        let file = tempdir().join(format!("{selector}.key"));
        std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
        std::fs::write(&file, text).expect("key file");
        let output = tokio::process::Command::new(python())
            .arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/dkim_sign_verify.py"))
            .args([path(&file), signature_algorithm, selector, domain, &customer.to_string(), &platform.to_string()])
            .output()
            .await
            .expect("running dkimpy");
        let _ = std::fs::remove_file(&file);
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && said.trim() == "pass",
            "{domain} {selector} ({algorithm}): {said}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn messages_signed_with_the_stored_keys_verify_with_dkimpy_before_and_after_a_rewrap_and_restart() {
    if !dkimpy_ready() {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    let (child, http, dns) = start_service_full(&data_dir, &server, &[], &[]).await;
    let (_, token) = admin_and_account(&data_dir, http, "Signer").await;
    let mut published = Vec::new();
    for (domain, body) in [
        ("rsa.example.com", r#"{"email": "news@rsa.example.com"}"#.to_string()),
        ("ed.example.com", r#"{"email": "news@ed.example.com", "dkim_algorithm": "ed25519"}"#.to_string()),
    ] {
        let (status, connected) = call(http, "POST", "/api/v1/domains", Some(&token), Some(&body)).await;
        assert_eq!(status, 201, "{connected}");
        // The customer adds the CNAMEs at their DNS host.
        for record in connected["records"].as_array().expect("records") {
            if record["record_type"] == "CNAME" {
                server.add(record["fqdn"].as_str().expect("fqdn"), "CNAME", record["value"].as_str().expect("value"));
            }
        }
        let (_, keys) = call(http, "GET", &format!("/api/v1/domains/{domain}/dkim"), Some(&token), None).await;
        published.push(keys["keys"].clone());
    }
    let (status, refused) = call(
        http,
        "POST",
        "/api/v1/domains",
        Some(&token),
        Some(r#"{"email": "news@weak.example.com", "dkim_algorithm": "rsa-1024"}"#),
    )
    .await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("invalid_dkim_algorithm")), "{refused}");
    tokio::time::sleep(Duration::from_millis(600)).await; // the DNS server follows within a second

    let first = std::fs::read_to_string(data_dir.join("master-key")).expect("the generated master key");
    let rsa_keys = open_keys(&data_dir, &first, "rsa.example.com").await;
    let ed_keys = open_keys(&data_dir, &first, "ed.example.com").await;
    assert_eq!(rsa_keys.iter().map(|key| key.1.as_str()).collect::<Vec<_>>(), ["rsa-2048", "rsa-2048"]);
    // Ed25519 signs alongside RSA: the domain has a pair of each.
    let algorithms: Vec<&str> = ed_keys.iter().map(|key| key.1.as_str()).collect();
    assert_eq!(algorithms, ["rsa-2048", "rsa-2048", "ed25519", "ed25519"]);
    sign_and_verify(&rsa_keys, "rsa.example.com", server.address(), dns).await;
    sign_and_verify(&ed_keys, "ed.example.com", server.address(), dns).await;
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");

    // A new master key takes over: every private key is sealed again under it (the six of
    // the two domains, and the variable domain's two).
    let new_line = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let old_line = first.lines().find(|line| line.starts_with("k1:")).expect("the k1 line");
    let rewrap = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["keys", "rewrap", "--data-dir", path(&data_dir)])
        .env("SENDERAUTH_MASTER_KEY", format!("{new_line}\n{old_line}\n"))
        .env_remove("SENDERAUTH_CONFIG")
        .output()
        .await
        .expect("keys rewrap");
    let said = String::from_utf8_lossy(&rewrap.stdout);
    assert!(rewrap.status.success() && said.contains("8 DKIM private keys sealed again under master key k2"), "{said}");
    assert!(!said.contains(new_line) && !said.contains(old_line), "no master key in the output");

    // Restarted with only the new master key: the same keys, served and usable.
    let (child, http, dns) = start_service_full(&data_dir, &server, &[], &[("SENDERAUTH_MASTER_KEY", new_line)]).await;
    for (domain, before) in ["rsa.example.com", "ed.example.com"].into_iter().zip(&published) {
        let (_, keys) = call(http, "GET", &format!("/api/v1/domains/{domain}/dkim"), Some(&token), None).await;
        assert_eq!(&keys["keys"], before, "{domain}'s keys survive the restart");
    }
    let rsa_after = open_keys(&data_dir, new_line, "rsa.example.com").await;
    assert_eq!(rsa_after, rsa_keys, "the same private keys, under the new master key");
    sign_and_verify(&rsa_after, "rsa.example.com", server.address(), dns).await;
    sign_and_verify(&open_keys(&data_dir, new_line, "ed.example.com").await, "ed.example.com", server.address(), dns)
        .await;
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

/// A free port on 127.0.0.1 for UDP and TCP (Knot cannot be given port 0).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Knot DNS serving one zone loaded from a file: the operator's primary for esp.example
/// (accepting dynamic updates signed with a TSIG key), or a customer's DNS host. Killed when
/// dropped.
pub(crate) struct Knot {
    process: std::process::Child,
    pub(crate) address: SocketAddr,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn start_knot(dir: &Path, zone_file: &Path, secret: &str) -> Knot {
    start_knot_zone(dir, "esp.example", zone_file, secret).await
}

/// Knot serving `zone` from `zone_file`, taking updates signed with `secret`.
pub(crate) async fn start_knot_zone(dir: &Path, zone: &str, zone_file: &Path, secret: &str) -> Knot {
    let port = free_port();
    for sub in ["run", "db"] {
        std::fs::create_dir_all(dir.join(sub)).expect("knot dirs");
    }
    std::fs::copy(zone_file, dir.join(format!("{zone}.zone"))).expect("zone file");
    let config = format!(
        "server:\n    rundir: \"{dir}/run\"\n    listen: 127.0.0.1@{port}\n\
         database:\n    storage: \"{dir}/db\"\n\
         key:\n  - id: senderauth-update\n    algorithm: hmac-sha256\n    secret: {secret}\n\
         acl:\n  - id: update\n    key: senderauth-update\n    action: update\n\
         template:\n  - id: default\n    storage: \"{dir}\"\n    zonefile-sync: -1\n\
         zone:\n  - domain: {zone}\n    file: {zone}.zone\n    acl: update\n\
         log:\n  - target: stderr\n    any: warning\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("knot.conf"), config).expect("knot.conf");
    let process = std::process::Command::new("knotd")
        .args(["-c", path(&dir.join("knot.conf"))])
        .stderr(std::fs::File::create(dir.join("knotd.log")).expect("log"))
        .spawn()
        .expect("starting knotd");
    let knot = Knot { process, address: SocketAddr::from(([127, 0, 0, 1], port)) };
    let started = Instant::now();
    while kdig(knot.address, &[zone, "SOA"]).await["RCODE"] != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "knotd did not serve the zone: {}",
            std::fs::read_to_string(dir.join("knotd.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    knot
}

#[tokio::test]
async fn knot_receives_the_zone_as_tsig_signed_dynamic_updates_and_answers_like_the_embedded_server() {
    let knotd =
        std::process::Command::new("knotd").arg("--version").output().is_ok_and(|output| output.status.success());
    if !require_or_skip(knotd && kdig_available(), "knotd and kdig (Debian knot, knot-dnsutils)") {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    std::fs::create_dir_all(&data_dir).expect("data dir");
    // The operator loads the primary from `zone export`, before any domain is connected.
    let zone_file = data_dir.join("exported.zone");
    let export = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["zone", "export", "--data-dir", path(&data_dir), "-o", path(&zone_file)])
        .env_remove("SENDERAUTH_CONFIG")
        .output()
        .await
        .expect("zone export");
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let secret = "c2VuZGVyYXV0aCB0ZXN0IFRTSUcga2V5IG5vdCBzZWNyZXQ=";
    let knot = start_knot(&data_dir.join("knot"), &zone_file, secret).await;
    let primary = knot.address.to_string();
    let (child, http, dns) = start_service_full(
        &data_dir,
        &server,
        &[],
        &[
            ("SENDERAUTH_DNS_UPDATE_PRIMARY", primary.as_str()),
            ("SENDERAUTH_DNS_UPDATE_KEY_NAME", "senderauth-update"),
            ("SENDERAUTH_DNS_UPDATE_KEY_SECRET", secret),
        ],
    )
    .await;
    let (_, token) = admin_and_account(&data_dir, http, "Pushed").await;
    let (status, _) =
        call(http, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@pushed.example.com"}"#)).await;
    assert_eq!(status, 201);
    let (_, keys) = call(http, "GET", "/api/v1/domains/pushed.example.com/dkim", Some(&token), None).await;
    let names: Vec<String> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["published_at"].as_str().expect("name").to_string())
        .collect();

    // Knot answers what the embedded server answers, for both keys and the include.
    for name in names.iter().chain(std::iter::once(&"1.spf.esp.example".to_string())) {
        let (ours, _) =
            kdig_until(dns, &[name, "TXT", "+tcp"], Duration::from_secs(2), |answer| !txt_answers(answer).is_empty())
                .await;
        assert!(!txt_answers(&ours).is_empty(), "{name}: {ours}");
        let (theirs, took) = kdig_until(knot.address, &[name, "TXT", "+tcp"], Duration::from_secs(5), |answer| {
            !txt_answers(answer).is_empty()
        })
        .await;
        assert_eq!(txt_answers(&theirs), txt_answers(&ours), "{name} at Knot after {took:?}");
        assert_eq!(theirs["AA"].as_u64(), Some(1));
    }

    // A removal reaches Knot too.
    let (status, _) = call(http, "DELETE", "/api/v1/domains/pushed.example.com", Some(&token), None).await;
    assert_eq!(status, 204);
    for name in names.iter().chain(std::iter::once(&"1.spf.esp.example".to_string())) {
        let (answer, _) =
            kdig_until(knot.address, &[name, "TXT"], Duration::from_secs(5), |answer| answer["ANCOUNT"] == 0).await;
        assert_eq!(answer["ANCOUNT"].as_u64(), Some(0), "{name} is still at Knot: {answer}");
    }
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(secret), "the TSIG secret is never logged");
}
