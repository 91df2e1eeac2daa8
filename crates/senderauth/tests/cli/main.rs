//! The `senderauth` binary end to end, against a test DNS server on loopback.

use std::path::Path;
use std::process::Output;

use senderauth_testkit::{EXAMPLE_DKIM_KEY, Fault, TestDns};

mod alignment;
mod bounces;
mod browser;
mod gateway;
mod generator;
mod imap;
mod nameserver;
mod reports;
use serde_json::Value;

async fn senderauth(server: &TestDns, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(args)
        .args(["--nameserver", &server.address().to_string(), "--timeout", "0.5", "--attempts", "1"])
        .env_remove("SENDERAUTH_CONFIG")
        .output()
        .await
        .expect("running senderauth")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn zones() -> TestDns {
    let server = TestDns::start().await;
    for zone in ["com", "example.com", "esp.example", "example.net"] {
        server.add_zone(zone);
    }
    server
}

#[tokio::test]
async fn records_merge_the_existing_spf_record() {
    let server = zones().await;
    server.add("shop.example.com", "TXT", "v=spf1 ip4:198.51.100.7 include:_spf.example.net ?all");
    server.add("_spf.example.net", "TXT", "v=spf1 ip4:203.0.113.0/24 -all");
    let output =
        senderauth(&server, &["records", "sales@shop.example.com", "--account", "42", "--format", "json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let spf = plan["records"].as_array().expect("records").iter().find(|r| r["method"] == "spf").expect("spf record");
    assert_eq!(
        spf["value"], "v=spf1 ip4:198.51.100.7 include:_spf.example.net include:42.spf.esp.example -all",
        "the include goes after the existing include, ?all becomes -all"
    );
    assert_eq!(spf["action"], "replace");
    assert_eq!(spf["host"], "shop");
    assert!(spf["notes"].to_string().contains("?all"));
    assert_eq!(plan["spf_lookups"], 2);
    let dkim = &plan["records"][0];
    assert_eq!(dkim["record_type"], "CNAME");
    assert_eq!(dkim["host"], "sa1-42._domainkey.shop");
    assert_eq!(dkim["value"], "sa1-42.shop-example-com.dkim.esp.example");
}

#[tokio::test]
async fn records_refuse_to_propose_an_spf_record_over_ten_lookups() {
    let server = zones().await;
    let includes: Vec<String> = (1..=9).map(|n| format!("include:svc{n}.example.net")).collect();
    server.add("busy.example.com", "TXT", &format!("v=spf1 {} include:heavy.example.net ~all", includes.join(" ")));
    for n in 1..=9 {
        server.add(&format!("svc{n}.example.net"), "TXT", "v=spf1 ip4:203.0.113.1 -all");
    }
    server.add("heavy.example.net", "TXT", "v=spf1 a mx include:svc1.example.net -all");
    server.add("heavy.example.net", "A", "203.0.113.5");
    server.add("heavy.example.net", "MX", "10 heavy.example.net");
    let output = senderauth(&server, &["records", "a@busy.example.com", "--account", "42"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("cannot merge"), "{text}");
    assert!(text.contains("include:heavy.example.net: 4"), "the costliest include is named with its cost: {text}");
    assert!(!text.contains("include:42.spf.esp.example -all"), "no broken record is proposed: {text}");
}

#[tokio::test]
async fn records_say_an_inherited_dmarc_record_is_not_needed() {
    let server = zones().await;
    server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject");
    server.add("info.example.com", "A", "198.51.100.1");
    let output = senderauth(&server, &["records", "hi@info.example.com", "--account", "42", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let dmarc = &plan["records"][3];
    assert_eq!(dmarc["action"], "not_needed");
    assert!(dmarc["notes"][0].as_str().expect("note").contains("_dmarc.example.com"));
}

#[tokio::test]
async fn two_spf_records_are_merged_without_tightening_the_customers_policy() {
    let server = zones().await;
    // The customer's record, and the proposal pasted as a second record beside it.
    server.add("pasted.example.com", "TXT", "v=spf1 ip4:192.0.2.10 ~all");
    server.add("pasted.example.com", "TXT", "v=spf1 include:42.spf.esp.example -all");
    let output =
        senderauth(&server, &["records", "hi@pasted.example.com", "--account", "42", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let spf = plan["records"].as_array().expect("records").iter().find(|r| r["method"] == "spf").expect("spf");
    assert_eq!(spf["value"], "v=spf1 ip4:192.0.2.10 include:42.spf.esp.example ~all", "{spf}");
    assert_eq!(spf["action"], "replace");
    let notes = spf["notes"].to_string();
    assert!(notes.contains("delete") && notes.contains("v=spf1 include:42.spf.esp.example -all"), "{notes}");
}

#[tokio::test]
async fn mailbox_providers_domains_are_refused_and_the_list_can_be_extended() {
    let server = zones().await;
    let output = senderauth(&server, &["records", "me@gmail.com", "--account", "42", "--offline"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(stderr(&output).contains("use an address at a domain you own"), "{}", stderr(&output));
    let config = tempdir().join("provider.toml");
    std::fs::write(&config, "mailbox_providers = [\"webmail.example.com\"]\n").expect("config");
    let refused = senderauth(
        &server,
        &["records", "me@webmail.example.com", "--account", "42", "--offline", "--config", path(&config)],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let fine = senderauth(
        &server,
        &["records", "me@shop.example.com", "--account", "42", "--offline", "--config", path(&config)],
    )
    .await;
    assert!(fine.status.success(), "{}", stderr(&fine));
}

#[tokio::test]
async fn another_accounts_include_is_replaced_by_this_accounts_in_the_proposal() {
    let server = zones().await;
    server.add("borrowed.example.com", "TXT", "v=spf1 mx include:7.spf.esp.example -all");
    server.add("7.spf.esp.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all");
    let output =
        senderauth(&server, &["records", "hi@borrowed.example.com", "--account", "42", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let spf = plan["records"].as_array().expect("records").iter().find(|r| r["method"] == "spf").expect("spf");
    assert_eq!(spf["value"], "v=spf1 mx include:42.spf.esp.example -all", "{spf}");
    assert_eq!(spf["action"], "replace");
    assert!(spf["notes"].to_string().contains("another account's include"), "{spf}");
}

#[tokio::test]
async fn an_invalid_dmarc_record_is_never_proposed_as_present() {
    let server = zones().await;
    // No ';' between the tags: receivers ignore the record.
    server.add("_dmarc.broken.example.com", "TXT", "v=DMARC1 p=none");
    server.add("broken.example.com", "A", "198.51.100.1");
    let output =
        senderauth(&server, &["records", "hi@broken.example.com", "--account", "42", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let dmarc = &plan["records"][3];
    assert_eq!(
        (dmarc["action"].as_str(), dmarc["value"].as_str()),
        (Some("replace"), Some("v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example;")),
        "{dmarc}"
    );
    assert!(dmarc["notes"][0].as_str().expect("note").contains("not valid"), "{dmarc}");
    let zone = senderauth(&server, &["records", "hi@broken.example.com", "--account", "42", "--format", "zone"]).await;
    assert!(
        stdout(&zone).contains("\"v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example;\"")
            && !stdout(&zone).contains("v=DMARC1 p=none\""),
        "{}",
        stdout(&zone)
    );
    // An invalid record at the root does not apply to a subdomain: it needs its own.
    server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=sometimes");
    server.add("news.example.com", "A", "198.51.100.1");
    let output = senderauth(&server, &["records", "hi@news.example.com", "--account", "42", "--format", "json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    assert_eq!(plan["records"][3]["action"], "add", "{}", plan["records"][3]);
}

#[tokio::test]
async fn verify_reports_status_and_exit_code() {
    let server = zones().await;
    server.publish_customer(42, "good.example.com");
    let good = senderauth(&server, &["verify", "--account", "42", "good.example.com"]).await;
    assert_eq!(good.status.code(), Some(0), "{}{}", stdout(&good), stderr(&good));
    assert!(stdout(&good).contains("good.example.com (account 42): Verified"));
    // Each sending range once (it is evaluated at both ends).
    assert_eq!(stdout(&good).matches("192.0.2.0/24 -> pass").count(), 1, "{}", stdout(&good));
    // `records` takes a bare domain as `verify` does.
    let records = senderauth(&server, &["records", "good.example.com", "--account", "42", "--offline"]).await;
    assert!(records.status.success(), "{}", stderr(&records));

    server.add("bare.example.com", "A", "198.51.100.1");
    let bare = senderauth(&server, &["verify", "--account", "42", "--format", "json", "bare.example.com"]).await;
    assert_eq!(bare.status.code(), Some(1));
    let result: Value = serde_json::from_str(stdout(&bare).trim()).expect("JSON");
    assert_eq!(result["status"], "not_verified");
    assert!(result["problems"].as_array().expect("problems").iter().any(|p| p["code"] == "dkim_selector_missing"));

    let both = senderauth(&server, &["verify", "--account", "42", "bare.example.com", "good.example.com"]).await;
    assert_eq!(both.status.code(), Some(1), "the worst status decides the exit code");
    let text = stdout(&both);
    let (bare_at, good_at) =
        (text.find("bare.example.com (account").expect("bare"), text.find("good.example.com (account").expect("good"));
    assert!(bare_at < good_at, "results in the order given: {text}");

    server.fault_subtree("slow.example.com", Fault::Timeout);
    let slow = senderauth(&server, &["verify", "--account", "42", "slow.example.com"]).await;
    assert_eq!(slow.status.code(), Some(3), "a timeout is unknown, not missing: {}", stdout(&slow));
}

#[tokio::test]
async fn bulk_verify_streams_json_lines_and_reports_bad_rows() {
    let server = zones().await;
    server.publish_customer(42, "good.example.com");
    server.add("bare.example.com", "A", "198.51.100.1");
    let directory = tempdir();
    let input = directory.join("domains.jsonl");
    let mut lines = Vec::new();
    for n in 0..300 {
        let domain = if n % 2 == 0 { "good.example.com" } else { "bare.example.com" };
        lines.push(format!("{{\"domain\": \"{domain}\", \"account\": 42, \"customer\": \"c{n}\"}}"));
    }
    lines.push("{\"domain\": \"co.uk\", \"account\": \"42\"}".to_string());
    lines.push("this is not json".to_string());
    lines.push("{\"domain\": \"x.example.com\"}".to_string());
    std::fs::write(&input, lines.join("\n")).expect("write input");
    let output_path = directory.join("results.jsonl");
    let output = senderauth(
        &server,
        &["verify", "--input", path(&input), "--output", path(&output_path), "--concurrency", "16"],
    )
    .await;
    assert_eq!(output.status.code(), Some(4), "invalid rows set exit code 4: {}", stderr(&output));
    assert!(stderr(&output).contains("checked 303 domains"), "{}", stderr(&output));
    let results: Vec<Value> = std::fs::read_to_string(&output_path)
        .expect("read output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(results.len(), 303, "one result per input row, none lost");
    let count = |status: &str| results.iter().filter(|r| r["status"] == status).count();
    assert_eq!(count("verified"), 150);
    assert_eq!(count("not_verified"), 150);
    assert_eq!(count("invalid_input"), 3);
    for result in &results {
        for key in ["domain", "account", "status", "problems"] {
            assert!(!result[key].is_null(), "{key} missing in {result}");
        }
        for method in ["dkim", "spf", "dmarc"] {
            assert!(result[method]["status"].is_string(), "{method}.status missing in {result}");
        }
    }
    let public_suffix = results.iter().find(|r| r["domain"] == "co.uk").expect("co.uk row");
    assert!(public_suffix["problems"][0]["message"].as_str().expect("message").contains("public suffix"));
    let bad_json = results.iter().find(|r| r["line"] == 302).expect("line 302");
    assert!(bad_json["problems"][0]["message"].as_str().expect("message").contains("not valid JSON"));
}

#[tokio::test]
async fn bulk_verify_streams_each_result_while_the_input_is_still_open() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let server = zones().await;
    server.publish_customer(42, "good.example.com");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["verify", "--input", "-", "--output", "-", "--nameserver", &server.address().to_string()])
        .env_remove("SENDERAUTH_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running senderauth");
    let mut input = child.stdin.take().expect("stdin");
    let mut output = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    for domain in ["good.example.com", "bare.example.com"] {
        // One row at a time, the input left open: its result comes before the next row is sent.
        input.write_all(format!("{{\"domain\": \"{domain}\", \"account\": 42}}\n").as_bytes()).await.expect("write");
        input.flush().await.expect("flush");
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), output.next_line())
            .await
            .unwrap_or_else(|_| panic!("no result for {domain} while the input stayed open"))
            .expect("read")
            .expect("a line");
        let result: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(result["domain"], domain);
    }
    drop(input);
    let status = child.wait().await.expect("exit");
    assert_eq!(status.code(), Some(1), "bare.example.com is not verified");
}

#[tokio::test]
async fn bulk_verify_reads_csv() {
    let server = zones().await;
    server.publish_customer(42, "good.example.com");
    let directory = tempdir();
    let input = directory.join("domains.csv");
    std::fs::write(&input, "domain,account\ngood.example.com,42\n\"news@good.example.com\",42\n").expect("write");
    let output = senderauth(&server, &["verify", "--input", path(&input), "--output", "-"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|line| line["status"] == "verified" && line["domain"] == "good.example.com"));
}

#[tokio::test]
async fn check_analyses_any_domain() {
    let server = zones().await;
    server.add("other.example.com", "TXT", "v=spf1 include:_spf.example.net +all");
    server.add("_spf.example.net", "TXT", "v=spf1 ip4:203.0.113.0/24 -all");
    server.add("_dmarc.other.example.com", "TXT", "v=DMARC1; p=reject");
    server.add("s1._domainkey.other.example.com", "TXT", &format!("v=DKIM1; p={EXAMPLE_DKIM_KEY}"));
    let output = senderauth(
        &server,
        &["check", "other.example.com", "--dkim-selector", "s1", "--dkim-selector", "s2", "--json"],
    )
    .await;
    // Errors reported (+all, a selector missing): exit 1, as `verify` does for a domain not verified.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("JSON");
    assert_eq!(report["spf"]["lookups"], 1);
    assert_eq!(report["dmarc"]["policy"], "reject");
    assert_eq!(report["dkim"]["selectors"][0]["status"], "verified");
    assert_eq!(report["dkim"]["selectors"][1]["status"], "not_verified");
    let codes: Vec<&str> =
        report["problems"].as_array().expect("problems").iter().filter_map(|p| p["code"].as_str()).collect();
    assert!(codes.contains(&"spf_pass_all") && codes.contains(&"dkim_selector_missing"), "{codes:?}");
    let text = senderauth(&server, &["check", "other.example.com"]).await;
    assert!(stdout(&text).contains("1 DNS lookup of 10"), "{}", stdout(&text));
    assert!(
        stdout(&text).contains("include _spf.example.net: v=spf1 ip4:203.0.113.0/24 -all  [0 lookups]"),
        "the include tree, in text too: {}",
        stdout(&text)
    );
    // Nothing wrong: 0.
    server.add("fine.example.com", "TXT", "v=spf1 ip4:203.0.113.0/24 -all");
    server.add("_dmarc.fine.example.com", "TXT", "v=DMARC1; p=reject");
    let fine = senderauth(&server, &["check", "fine.example.com"]).await;
    assert_eq!(fine.status.code(), Some(0), "{}", stdout(&fine));
}

#[tokio::test]
async fn a_taken_port_is_said_once_with_the_flag_that_moves_it() {
    // The DNS server binds UDP and TCP: the port taken over TCP (a free one; taking the same
    // number over UDP too could collide with another test's socket) is enough to stop it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port();
    let data_dir = tempdir();
    let dns = format!("127.0.0.1:{port}");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--smtp-listen", "127.0.0.1:0", "--dns-listen", &dns])
        .args(["--reports-listen", "127.0.0.1:0"])
        .args(["--data-dir", path(&data_dir)])
        .env_remove("SENDERAUTH_CONFIG")
        .output()
        .await
        .expect("serve");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--dns-listen") && !message.contains("dns_listen"), "{message}");
    assert_eq!(message.matches("Address already in use").count(), 1, "said once: {message}");
}

#[tokio::test]
async fn a_bad_config_file_is_explained() {
    let server = zones().await;
    let directory = tempdir();
    let config = directory.join("provider.toml");
    std::fs::write(&config, "zone = \"esp.example\"\n\n[spf]\nal = \"-all\"\n").expect("write");
    let output =
        senderauth(&server, &["records", "a@example.com", "--account", "1", "--offline", "--config", path(&config)])
            .await;
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("provider.toml")
            && message.contains("line 4")
            && message.contains("`al`")
            && message.contains("`all`"),
        "{message}"
    );
}

/// A resolver asking only `address` (a node's DNS server) and keeping nothing: it sees a change
/// as soon as that server serves it. A node's DNS follows the store's change log, within a
/// second, longer on a machine busy with other tests.
fn direct_resolver(address: std::net::SocketAddr) -> senderauth_core::dns::Dns {
    senderauth_core::dns::Dns::new(&senderauth_core::dns::ResolverSettings {
        nameserver: Some(address),
        timeout: std::time::Duration::from_secs(1),
        attempts: 1,
        cache: false,
    })
    .expect("a resolver")
}

/// The value of the first record a connect response plans whose `field` is `value`.
fn planned_value(connected: &Value, field: &str, value: &str) -> String {
    connected["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|record| record[field] == value)
        .and_then(|record| record["value"].as_str())
        .unwrap_or_else(|| panic!("a planned record with {field} {value}: {connected}"))
        .to_string()
}

fn tempdir() -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!("senderauth-cli-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    directory
}

/// Unique within this process (tests run side by side, and two may ask in the same tick of the
/// clock) and across runs.
fn rand_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos}-{count}")
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[tokio::test]
async fn a_domain_reserved_by_the_platform_is_refused_but_its_subdomains_are_not() {
    let server = zones().await;
    let directory = tempdir();
    let config = directory.join("provider.toml");
    std::fs::write(&config, "reserved_domains = [\"www.example.com\"]\n").expect("write");
    let refused = senderauth(
        &server,
        &["records", "a@www.example.com", "--account", "1", "--offline", "--config", path(&config)],
    )
    .await;
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(message.contains("reserved") && message.contains("mail.www.example.com"), "{message}");
    let allowed = senderauth(
        &server,
        &["records", "a@news.www.example.com", "--account", "1", "--offline", "--config", path(&config)],
    )
    .await;
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

/// Starts `senderauth serve` on a free loopback port; returns the process and its address.
async fn start_service(data_dir: &Path, server: &TestDns) -> (tokio::process::Child, std::net::SocketAddr) {
    start_service_with(data_dir, server, &[], &[]).await
}

async fn start_service_with(
    data_dir: &Path,
    server: &TestDns,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (tokio::process::Child, std::net::SocketAddr) {
    let (child, http, _) = start_service_full(data_dir, server, extra, envs).await;
    (child, http)
}

/// Starts `senderauth serve` with its API and its DNS server on free loopback ports; returns
/// the process and both addresses.
async fn start_service_full(
    data_dir: &Path,
    server: &TestDns,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (tokio::process::Child, std::net::SocketAddr, std::net::SocketAddr) {
    start_service_wrapped(&[], data_dir, server, extra, envs).await
}

/// As [`start_service_full`], the binary run by the command `wrapper` (`prlimit ...`) when it
/// is not empty.
async fn start_service_wrapped(
    wrapper: &[&str],
    data_dir: &Path,
    server: &TestDns,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (tokio::process::Child, std::net::SocketAddr, std::net::SocketAddr) {
    let started = start_service_listening(wrapper, data_dir, server, extra, envs).await;
    (started.child, started.http, started.dns)
}

/// A running service and where it listens, as it said (every listener on port 0 unless a test
/// picks one: a port picked free and released can be taken by another test before the service
/// binds it).
pub(crate) struct Started {
    pub(crate) child: tokio::process::Child,
    pub(crate) http: std::net::SocketAddr,
    pub(crate) dns: std::net::SocketAddr,
    pub(crate) smtp: std::net::SocketAddr,
    pub(crate) reports: std::net::SocketAddr,
    pub(crate) bounces: std::net::SocketAddr,
}

/// As [`start_service_wrapped`], with every address the service says it listens on.
pub(crate) async fn start_service_listening(
    wrapper: &[&str],
    data_dir: &Path,
    server: &TestDns,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Started {
    use tokio::io::AsyncBufReadExt;
    let binary = env!("CARGO_BIN_EXE_senderauth");
    let mut command = match wrapper.split_first() {
        Some((program, arguments)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(arguments).arg(binary);
            command
        }
        None => tokio::process::Command::new(binary),
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--data-dir", path(data_dir)])
        // Tests run side by side: the SMTP gateway on a port of its own unless a test picks one.
        .args(if extra.contains(&"--smtp-listen") { &[][..] } else { &["--smtp-listen", "127.0.0.1:0"][..] })
        .args(if extra.contains(&"--reports-listen") { &[][..] } else { &["--reports-listen", "127.0.0.1:0"][..] })
        .args(if extra.contains(&"--bounces-listen") { &[][..] } else { &["--bounces-listen", "127.0.0.1:0"][..] })
        .args(extra)
        .args(["--nameserver", &server.address().to_string(), "--timeout", "0.5"])
        .env_remove("SENDERAUTH_ADMIN_TOKEN")
        .env_remove("SENDERAUTH_MASTER_KEY")
        .envs(envs.iter().copied())
        .env_remove("SENDERAUTH_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A test that fails midway must not leave its service running.
        .kill_on_drop(true)
        .spawn()
        .expect("starting senderauth serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut said = Vec::new();
    // HTTP, each DNS address, the SMTP gateway, the bounce listener and the report listener, in
    // that order, in one write: read up to the report listener's line.
    while !said.last().is_some_and(|line: &String| line.contains("DMARC report listener")) {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("the service starts within 60 s (20 tests start theirs at once on 2 cores)")
            .expect("reading stdout");
        match line {
            Some(line) => said.push(line),
            None => {
                // It ended before saying where it listens: what it wrote says why.
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr).await;
                }
                panic!("senderauth serve ended before it listened: {stderr}");
            }
        }
    }
    let address = |line: &str| -> std::net::SocketAddr {
        line.split_whitespace()
            .map(|word| word.trim_start_matches("http://"))
            .find_map(|word| word.parse().ok())
            .unwrap_or_else(|| panic!("an IP:PORT in {line:?}"))
    };
    let said_of = |what: &str| {
        let line = said.iter().find(|line| line.contains(what)).unwrap_or_else(|| panic!("no {what} line: {said:?}"));
        address(line)
    };
    Started {
        http: said_of("listening on http://"),
        dns: said_of("serving the platform's zone on"),
        smtp: said_of("SMTP gateway on"),
        reports: said_of("DMARC report listener"),
        bounces: said_of("bounce listener"),
        child,
    }
}

/// Each thread of a process by name (as the kernel shortens it) with its nice value.
fn thread_priorities(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    tasks
        .flatten()
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?.trim().to_string();
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // After "pid (comm)", field 19 of stat is the nice value.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some((name, fields.get(16)?.parse().ok()?))
        })
        .collect()
}

/// The admin token the service wrote to `data_dir` on its first start, and the token of a new
/// account called `name`.
async fn admin_and_account(data_dir: &Path, http: std::net::SocketAddr, name: &str) -> (String, String) {
    let admin = std::fs::read_to_string(data_dir.join("admin-token")).expect("admin token").trim().to_string();
    let body = serde_json::json!({ "name": name }).to_string();
    let (status, account) =
        senderauth_testkit::http::call(http, "POST", "/api/v1/accounts", Some(&admin), Some(&body)).await;
    assert_eq!(status, 201, "{account}");
    let token = account["token"].as_str().expect("token").to_string();
    (admin, token)
}

async fn stop_service(mut child: tokio::process::Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().expect("running").to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("stops within 10 s of SIGTERM")
        .expect("exit status");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    (status, stderr)
}

/// With the common limit of 1,024 open files (set with util-linux's prlimit), over a thousand
/// idle connections to each listener: a health check and a new SMTP client are still served,
/// because at the cap the connection silent longest makes room.
#[tokio::test]
async fn a_flood_of_idle_connections_keeps_no_new_client_out() {
    use senderauth_testkit::http::call;
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;
    let server = zones().await;
    let data_dir = tempdir();
    let smtp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address");
    let smtp_text = smtp.to_string();
    let wrapper = ["prlimit", "--nofile=1024:1024", "--"];
    let extra = ["--smtp-listen", smtp_text.as_str()];
    let (child, http, _) = start_service_wrapped(&wrapper, &data_dir, &server, &extra, &[]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id().expect("running"))).expect("limits");
    let open_files = limits.lines().find(|line| line.starts_with("Max open files")).expect("the open-file limit");
    assert_eq!(open_files.split_whitespace().nth(3), Some("1024"), "{open_files}");

    let mut flood = tokio::task::JoinSet::new();
    for address in [http, smtp] {
        for _ in 0..1_100 {
            flood.spawn(tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(address)));
        }
    }
    let idle: Vec<tokio::net::TcpStream> =
        flood.join_all().await.into_iter().filter_map(|connected| connected.ok()?.ok()).collect();
    assert!(idle.len() > 1_100, "the flood is on: {} connections", idle.len());
    // Idle long enough to make room.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let started = std::time::Instant::now();
    let (status, _) = tokio::time::timeout(Duration::from_secs(20), call(http, "GET", "/healthz", None, None))
        .await
        .expect("the health check is answered during the flood");
    assert_eq!(status, 200);
    let client = tokio::time::timeout(Duration::from_secs(20), tokio::net::TcpStream::connect(smtp))
        .await
        .expect("connected")
        .expect("connected");
    let mut greeting = String::new();
    tokio::time::timeout(Duration::from_secs(20), tokio::io::BufReader::new(client).read_line(&mut greeting))
        .await
        .expect("a new SMTP client is greeted during the flood")
        .expect("reading the greeting");
    assert!(greeting.starts_with("220 "), "{greeting}");
    let waited = started.elapsed();
    drop(idle);
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("connection cap reached"), "a clear log line: {stderr}");
    assert!(stderr.contains("cut to fit"), "the caps were cut to the open-file limit: {stderr}");
    eprintln!("served after {waited:?} of flood");
}

/// A request whose header never ends, and a kept-alive connection left idle, are closed after
/// the header timeout instead of being held open.
#[tokio::test]
async fn half_sent_requests_and_idle_connections_are_closed_after_the_header_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = zones().await;
    let data_dir = tempdir();
    let (child, http, _) =
        start_service_full(&data_dir, &server, &[], &[("SENDERAUTH_HEADER_TIMEOUT_SECONDS", "2")]).await;
    let closed_after = async |sent: &[u8]| {
        let mut stream = tokio::net::TcpStream::connect(http).await.expect("connect");
        stream.write_all(sent).await.expect("send");
        let started = Instant::now();
        let mut buffer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buffer))
            .await
            .expect("closed by the server")
            .expect("read");
        (started.elapsed(), String::from_utf8_lossy(&buffer).into_owned())
    };
    let (waited, _) = closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(6), "{waited:?}");
    let (waited, answered) = closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(6), "idle after the answer: {waited:?}");
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn serve_starts_on_defaults_generates_an_admin_token_and_stops_gracefully() {
    use senderauth_testkit::http::call;
    use std::os::unix::fs::PermissionsExt;
    let server = zones().await;
    let data_dir = tempdir();
    // Made by someone with a loose umask: the service makes it its own.
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data_dir.join("notes.txt"), "left here").expect("a file");
    std::fs::set_permissions(data_dir.join("notes.txt"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (child, address) = start_service(&data_dir, &server).await;
    assert_eq!(call(address, "GET", "/healthz", None, None).await.0, 200);
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700, "the data directory is the service's alone");
    let files: Vec<_> = std::fs::read_dir(&data_dir).expect("list").map(|entry| entry.expect("entry").path()).collect();
    assert!(files.iter().any(|path| path.ends_with("senderauth.db")), "{files:?}");
    for file in &files {
        assert_eq!(mode(file) & 0o077, 0, "{} is readable by others", file.display());
    }
    assert_eq!(call(address, "GET", "/readyz", None, None).await.0, 200);
    // Checks run in threads of their own at a lower CPU priority than the API's.
    let threads = thread_priorities(child.id().expect("running"));
    let main = threads.iter().find(|(name, _)| name == "senderauth").expect("the main thread").1;
    let nice =
        |wanted: &str| threads.iter().filter(|(name, _)| name == wanted).map(|(_, nice)| *nice).collect::<Vec<_>>();
    let (checks, api) = (nice("senderauth-chec"), nice("tokio-rt-worker"));
    assert!(!checks.is_empty() && checks.iter().all(|&nice| nice == (main + 10).min(19)), "{threads:?}");
    assert!(!api.is_empty() && api.iter().all(|&nice| nice == main), "{threads:?}");
    let token_file = data_dir.join("admin-token");
    let admin = std::fs::read_to_string(&token_file).expect("the admin token file").trim().to_string();
    assert_eq!(mode(&token_file), 0o600, "only the owner may read the admin token");
    let (status, account) =
        call(address, "POST", "/api/v1/accounts", Some(&admin), Some(r#"{"name": "First customer"}"#)).await;
    assert_eq!(status, 201, "{account}");
    let token = account["token"].as_str().expect("account token").to_string();
    let (status, _) =
        call(address, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@first.example.com"}"#)).await;
    assert_eq!(status, 201);
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "SIGTERM stops it cleanly: {status:?}\n{stderr}");
    assert!(stderr.contains("listening") && stderr.contains("admin-token"), "{stderr}");
    assert!(!stderr.contains(&admin) && !stderr.contains(&token), "no token ever appears in the logs");

    // Started again on the same data, logging JSON: the same admin token, the account and its
    // domain kept.
    let (child, address) = start_service_with(&data_dir, &server, &[], &[("SENDERAUTH_LOG_FORMAT", "json")]).await;
    assert_eq!(std::fs::read_to_string(&token_file).expect("token file").trim(), admin, "no new admin token");
    let (status, listed) = call(address, "GET", "/api/v1/domains", Some(&token), None).await;
    assert_eq!((status, listed["domains"][0]["domain"].as_str()), (200, Some("first.example.com")));
    let (status, stderr) = stop_service(child).await;
    assert!(status.success());
    let messages: Vec<String> = stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("each log line is JSON"))
        .filter_map(|line| line["fields"]["message"].as_str().map(str::to_string))
        .collect();
    assert!(messages.iter().any(|message| message == "listening") && messages.contains(&"stopped".into()), "{stderr}");
}

#[tokio::test]
async fn a_service_killed_mid_round_loses_nothing_and_finishes_the_work_after_restart() {
    use senderauth_testkit::http::call;
    let server = zones().await;
    // Every customer lookup times out, so a round of checks takes several seconds.
    server.fault_subtree("crash.example.com", Fault::Timeout);
    let data_dir = tempdir();
    let config = data_dir.join("service.toml");
    std::fs::write(&config, "[service.worker]\nlease_seconds = 2\nconcurrency = 16\n").expect("write config");
    let extra = ["--config", path(&config)];
    let (mut child, address) = start_service_with(&data_dir, &server, &extra, &[]).await;
    let (_, token) = admin_and_account(&data_dir, address, "Crash").await;
    // Connected all at once: each connection waits for DNS timeouts while its records are made.
    let mut connecting = tokio::task::JoinSet::new();
    for n in 0..60 {
        let token = token.clone();
        connecting.spawn(async move {
            let body = format!(r#"{{"email": "a@d{n}.crash.example.com"}}"#);
            call(address, "POST", "/api/v1/domains", Some(&token), Some(&body)).await.0
        });
    }
    while let Some(status) = connecting.join_next().await {
        assert_eq!(status.expect("request"), 201);
    }
    // Let a round start, then kill the service without warning.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.start_kill().expect("kill -9");
    child.wait().await.expect("killed");

    // Nothing is half-written: the database is sound, every domain is there, and every domain
    // marked as checked has its result.
    let url = format!("sqlite://{}", data_dir.join("senderauth.db").display());
    let store = senderauth_store::Store::connect(&url).await.expect("the database opens after the crash");
    assert!(store.integrity_ok().await.expect("integrity check"), "SQLite reports corruption");
    let domains = store.domains(1, None, None, 100).await.expect("list");
    assert_eq!(domains.len(), 60, "no domain lost");
    for domain in &domains {
        let result = store.latest_result(domain.id).await.expect("result");
        assert_eq!(
            domain.last_checked_at.is_some(),
            result.is_some(),
            "{}: checked without a result, or the reverse",
            domain.domain
        );
    }
    let unchecked = domains.iter().filter(|domain| domain.last_checked_at.is_none()).count();
    assert!(unchecked > 0, "the kill came mid-round: some domains were still being checked");
    drop(store);

    // After a restart, the claims of the killed process expire and every domain gets checked.
    server.clear_faults();
    let (child, address) = start_service_with(&data_dir, &server, &extra, &[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, listed) = call(address, "GET", "/api/v1/domains?limit=100", Some(&token), None).await;
        let domains = listed["domains"].as_array().expect("domains").clone();
        if domains.iter().all(|domain| !domain["last_checked_at"].is_null()) {
            assert_eq!(domains.len(), 60);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "domains left unchecked after the restart: {listed}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (status, _) = stop_service(child).await;
    assert!(status.success());
}

#[tokio::test]
async fn two_services_on_one_postgresql_check_each_domain_once() {
    use senderauth_testkit::http::{call, call_text};
    let Some(database) = senderauth_testkit::database::postgres().await else { return };
    let server = zones().await;
    let admin = "sa_shared_admin_token_for_this_test";
    let envs = [("SENDERAUTH_ADMIN_TOKEN", admin)];
    let args = ["--database-url", database.url.as_str()];
    let (first_dir, second_dir) = (tempdir(), tempdir());
    let (first, first_address, _) = start_service_full(&first_dir, &server, &args, &envs).await;
    let (second, second_address, second_dns) = start_service_full(&second_dir, &server, &args, &envs).await;
    let (_, account) =
        call(first_address, "POST", "/api/v1/accounts", Some(admin), Some(r#"{"name": "Shared"}"#)).await;
    let token = account["token"].as_str().expect("token").to_string();
    for n in 0..40 {
        let body = format!(r#"{{"email": "a@s{n}.example.com"}}"#);
        let address = if n % 2 == 0 { first_address } else { second_address };
        assert_eq!(call(address, "POST", "/api/v1/domains", Some(&token), Some(&body)).await.0, 201);
    }
    // Both nodes work until every domain has had its first check.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, listed) = call(second_address, "GET", "/api/v1/domains?limit=100", Some(&token), None).await;
        if listed["domains"].as_array().expect("domains").iter().all(|domain| !domain["last_checked_at"].is_null()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not all domains were checked");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Each node counts its own checks: together exactly one per domain (the next are a minute away).
    let checks = |text: String| -> u64 {
        text.lines()
            .filter(|line| line.starts_with("senderauth_checks_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let first_checks = checks(call_text(first_address, "GET", "/metrics", None, None).await.1);
    let second_checks = checks(call_text(second_address, "GET", "/metrics", None, None).await.1);
    assert_eq!(first_checks + second_checks, 40, "{first_checks} + {second_checks}");

    // A domain connected through one node is served by the other node's DNS server within a
    // second: every node follows the store's change log.
    let resolver = direct_resolver(second_dns);
    let (status, _) =
        call(first_address, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@late.example.com"}"#)).await;
    assert_eq!(status, 201);
    let connected = std::time::Instant::now();
    let (_, keys) = call(first_address, "GET", "/api/v1/domains/late.example.com/dkim", Some(&token), None).await;
    let name = keys["keys"][0]["published_at"].as_str().expect("name").to_string();
    let record = keys["keys"][0]["record"].as_str().expect("record").to_string();
    loop {
        let found = resolver.txt(&name).await.expect("an answer").records();
        if found.iter().any(|text| String::from_utf8_lossy(text) == record) {
            break;
        }
        assert!(connected.elapsed() < std::time::Duration::from_secs(2), "the other node does not serve {name}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let took = connected.elapsed();
    assert!(took < std::time::Duration::from_secs(1), "served by the other node after {took:?}");
    for child in [first, second] {
        let (status, _) = stop_service(child).await;
        assert!(status.success());
    }
    database.drop().await;
}

#[tokio::test]
async fn dmarc_parse_prints_each_report_and_says_which_files_it_could_not_read() {
    let samples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dmarc-reports/parsedmarc/samples");
    assert!(samples.is_dir(), "{} is missing: the shared test data sits beside the project", samples.display());
    let report = samples.join("extract_report/nice-input.xml.gz");
    let empty = samples.join("empty.xml");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["dmarc", "parse"])
        .arg(&report)
        .arg(&empty)
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(4), "a file that is no report: exit 4, the others printed");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["report_id"].as_str(), lines[0]["packing"].as_str()),
        (Some("11038226378739404135"), Some("gzip"))
    );
    assert_eq!(lines[0]["records"].as_array().map(Vec::len), Some(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("empty.xml: the input is empty"), "{stderr}");
    // CSV: a row per record under a header, as parsedmarc's CSV.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["dmarc", "parse", "--format", "csv"])
        .arg(&report)
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("file,org_name,org_email,report_id,begin,end,domain,"), "{text}");
    assert_eq!(text.lines().count(), 21, "{text}");
}

#[tokio::test]
async fn keys_speed_says_what_signs_and_how_fast() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_senderauth"))
        .args(["keys", "speed", "--seconds", "0.2", "--size", "1024"])
        .env_remove("SENDERAUTH_CONFIG")
        .output()
        .await
        .expect("keys speed");
    let said = stdout(&output);
    assert!(output.status.success(), "{said}{}", stderr(&output));
    assert!(
        said.lines().any(|line| line.starts_with("signed by") && line.contains("aws-lc-rs") && line.contains("ring")),
        "{said}"
    );
    for algorithm in ["rsa-2048", "ed25519"] {
        let rate = said
            .lines()
            .find_map(|line| line.strip_prefix(algorithm))
            .and_then(|rest| rest.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a rate for {algorithm}: {said}"));
        assert!(rate > 0, "{said}");
    }
}
