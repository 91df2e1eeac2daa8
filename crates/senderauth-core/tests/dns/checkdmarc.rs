//! A second opinion: checkdmarc (PyPI), which nobody here wrote, checks the same test zones and
//! must agree with us on SPF validity, SPF lookup and void-lookup counts, DMARC validity and
//! DMARC location.

use std::path::PathBuf;

use senderauth_core::check::check_domain;
use senderauth_core::name::DomainName;
use senderauth_core::problem::ProblemCode;
use senderauth_core::status::MethodStatus;
use senderauth_testkit::TestDns;
use serde_json::Value;

use crate::support::{client, require_or_skip, workspace_root};

/// The Python with checkdmarc installed: `SENDERAUTH_PYTHON`, or the venv the test script makes.
fn python() -> PathBuf {
    std::env::var_os("SENDERAUTH_PYTHON").map_or_else(|| workspace_root().join(".venv/bin/python3"), PathBuf::from)
}

/// SPF problems that make a record invalid, as opposed to merely unwise.
const SPF_INVALID: &[ProblemCode] = &[
    ProblemCode::SpfMissing,
    ProblemCode::SpfMultipleRecords,
    ProblemCode::SpfSyntaxError,
    ProblemCode::SpfTooManyLookups,
    ProblemCode::SpfTooManyVoidLookups,
    ProblemCode::SpfLoop,
    ProblemCode::SpfIncludeTargetMissing,
];

async fn zones() -> (TestDns, Vec<&'static str>) {
    let server = TestDns::start().await;
    for zone in ["com", "net", "example-a.com", "example-b.com", "example.net"] {
        server.add_zone(zone);
    }
    server.add("_spf.example.net", "TXT", "v=spf1 a mx ip4:203.0.113.0/24 -all");
    server.add("_spf.example.net", "A", "203.0.113.10");
    server.add("_spf.example.net", "MX", "10 mx.example.net");
    server.add("mx.example.net", "A", "203.0.113.11");
    for n in 1..=11 {
        server.add(&format!("svc{n}.example.net"), "TXT", "v=spf1 ip4:203.0.113.1 -all");
    }
    server.add("loop1.example.net", "TXT", "v=spf1 include:loop2.example.net -all");
    server.add("loop2.example.net", "TXT", "v=spf1 include:loop1.example.net -all");
    let many: Vec<String> = (1..=11).map(|n| format!("include:svc{n}.example.net")).collect();
    let cases: Vec<(&str, Option<String>, &[&str])> = vec![
        (
            "include.example-a.com",
            Some("v=spf1 include:_spf.example.net ip4:192.0.2.1 -all".into()),
            &["v=DMARC1; p=none"],
        ),
        ("redirect.example-a.com", Some("v=spf1 redirect=_spf.example.net".into()), &[]),
        ("ten.example-a.com", Some(format!("v=spf1 {} -all", many[..10].join(" "))), &["v=DMARC1; p=reject"]),
        ("eleven.example-a.com", Some(format!("v=spf1 {} -all", many.join(" "))), &[]),
        ("syntax.example-a.com", Some("v=spf1 ip4:192.0.2.300 -all".into()), &["v=DMARC1; p=maybe"]),
        ("voids.example-a.com", Some("v=spf1 a:no1.example.net a:no2.example.net a:no3.example.net -all".into()), &[]),
        ("loop.example-a.com", Some("v=spf1 include:loop1.example.net -all".into()), &[]),
        ("dangling.example-a.com", Some("v=spf1 include:nowhere.example.net -all".into()), &[]),
        ("mixed.example-a.com", Some("v=spf1 mx a:_spf.example.net ip6:2001:db8::/32 ~all".into()), &[]),
        ("example-b.com", None, &["v=DMARC1; p=reject", "v=DMARC1; p=none"]),
        ("news.example-b.com", Some("v=spf1 -all".into()), &[]),
        ("example-a.com", Some("v=spf1 mx -all".into()), &["v=DMARC1; p=quarantine; rua=mailto:d@example-a.com"]),
    ];
    server.add("example-a.com", "MX", "10 mx.example.net");
    server.add("mixed.example-a.com", "MX", "10 mx.example.net");
    let mut domains = Vec::new();
    for (domain, spf, dmarc) in cases {
        server.add(domain, "A", "198.51.100.1");
        if let Some(spf) = spf {
            server.add(domain, "TXT", &spf);
        }
        for record in dmarc {
            server.add(&format!("_dmarc.{domain}"), "TXT", record);
        }
        domains.push(domain);
    }
    server.add("two.example-a.com", "TXT", "v=spf1 -all");
    server.add("two.example-a.com", "TXT", "v=spf1 mx -all");
    domains.push("two.example-a.com");
    (server, domains)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkdmarc_agrees_on_spf_and_dmarc() {
    let python = python();
    let available = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import checkdmarc"])
            .output()
            .is_ok_and(|output| output.status.success());
    if !require_or_skip(available, "checkdmarc (PyPI) in the test venv") {
        return;
    }
    let (server, domains) = zones().await;
    let output = tokio::process::Command::new(&python)
        .arg(workspace_root().join("scripts/checkdmarc-json.py"))
        .arg("--nameserver")
        .arg(server.address().to_string())
        .args(&domains)
        .output()
        .await
        .expect("running checkdmarc");
    assert!(output.status.success(), "checkdmarc failed: {}", String::from_utf8_lossy(&output.stderr));
    let theirs: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("checkdmarc JSON"))
        .collect();
    assert_eq!(theirs.len(), domains.len());
    let dns = client(&server);
    let mut disagreements = Vec::new();
    for their in &theirs {
        let domain = their["domain"].as_str().expect("domain");
        let ours =
            check_domain(&dns, &DomainName::parse(domain).expect("domain"), &[], "-all", "v=DMARC1; p=none;").await;
        assert_ne!(ours.spf.status, MethodStatus::Unknown, "{domain}: no temporary failures in this test");
        let our_spf_valid = !ours.spf.problems.iter().any(|problem| SPF_INVALID.contains(&problem.code));
        if our_spf_valid != their["spf_valid"].as_bool().expect("spf_valid") {
            disagreements.push(format!(
                "{domain}: SPF valid ours {our_spf_valid}, checkdmarc {} ({})",
                their["spf_valid"], their["spf_error"]
            ));
        }
        if let Some(their_lookups) = their["spf_lookups"].as_u64()
            && ours.spf.lookups.map(u64::from) != Some(their_lookups)
        {
            disagreements
                .push(format!("{domain}: SPF lookups ours {:?}, checkdmarc {their_lookups}", ours.spf.lookups));
        }
        if let Some(their_voids) = their["spf_void_lookups"].as_u64()
            && ours.spf.void_lookups.map(u64::from) != Some(their_voids)
        {
            disagreements
                .push(format!("{domain}: SPF void lookups ours {:?}, checkdmarc {their_voids}", ours.spf.void_lookups));
        }
        let our_dmarc_valid = ours.dmarc.status == MethodStatus::Verified;
        if our_dmarc_valid != their["dmarc_valid"].as_bool().expect("dmarc_valid") {
            disagreements.push(format!(
                "{domain}: DMARC valid ours {our_dmarc_valid}, checkdmarc {} ({})",
                their["dmarc_valid"], their["dmarc_error"]
            ));
        }
        if our_dmarc_valid && ours.dmarc.location.as_deref() != their["dmarc_location"].as_str() {
            disagreements.push(format!(
                "{domain}: DMARC location ours {:?}, checkdmarc {}",
                ours.dmarc.location, their["dmarc_location"]
            ));
        }
    }
    assert!(disagreements.is_empty(), "checkdmarc disagrees:\n{}", disagreements.join("\n"));
    // The comparison is only worth something if both kinds of answer occur.
    let valid = theirs.iter().filter(|their| their["spf_valid"] == true).count();
    assert!(valid >= 4 && valid + 4 <= theirs.len(), "a mix of valid and invalid SPF setups: {valid} valid");
}
