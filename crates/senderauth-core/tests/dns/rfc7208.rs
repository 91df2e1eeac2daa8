//! The openspf RFC 7208 test suite (Debian's python3-spf) against our `check_host()`, with each
//! scenario's zone data served by a real DNS server on loopback.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use senderauth_core::spf::eval::{Identity, check_mail_from};
use senderauth_testkit::{Fault, TestDns};
use serde_json::Value;

use crate::support::{client, require_or_skip, workspace_root};

/// Cases we do not pass, each with the reason. Documented in the README.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "v-macro-ip6",
    "the suite expects %{i} of an IPv6 address in uppercase nibbles inside an explanation; RFC 7208 \
     section 7.4's own example expands it in lowercase, as we do (DNS names are case-insensitive, so \
     only the explanation text differs)",
)];

fn load_suite() -> Option<Vec<Value>> {
    let source = std::env::var("SENDERAUTH_RFC7208_YML")
        .unwrap_or_else(|_| "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz".to_string());
    let available = std::path::Path::new(&source).exists() && std::path::Path::new("/usr/bin/python3").exists();
    if !require_or_skip(available, "the RFC 7208 test suite (Debian package python3-spf)") {
        return None;
    }
    let output = std::env::temp_dir().join(format!("senderauth-rfc7208-{}.json", std::process::id()));
    let status = Command::new("/usr/bin/python3")
        .arg(workspace_root().join("scripts/rfc7208-to-json.py"))
        .arg(&source)
        .arg(&output)
        .status()
        .expect("running the YAML converter");
    assert!(status.success(), "converting {source} failed (is python3-yaml installed?)");
    let text = std::fs::read_to_string(&output).expect("reading the converted suite");
    let _ = std::fs::remove_file(&output);
    Some(serde_json::from_str(&text).expect("suite JSON"))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => {
            items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_string)).collect()
        }
        other => vec![other.to_string()],
    }
}

/// Loads one scenario's zone data the way the suite's own driver (pyspf's testspf.py) does:
/// SPF-type entries double as TXT unless the name has TXT entries; `NONE` adds nothing;
/// `TIMEOUT` times out the name (or the one type); unknown `error.` names time out.
fn load_zone(server: &TestDns, scenario: &Value) {
    let zonedata = scenario["zonedata"].as_object().expect("zonedata");
    for (name, entries) in zonedata {
        let entries = entries.as_array().expect("zone entries");
        let has_txt = entries.iter().any(|entry| entry.get("TXT").is_some());
        let mut types_seen = HashSet::new();
        for entry in entries {
            if entry.as_str() == Some("TIMEOUT") {
                for record_type in ["A", "AAAA", "MX", "TXT", "PTR", "CNAME"] {
                    if !types_seen.contains(record_type) {
                        server.fault(name, Some(record_type), Fault::Timeout);
                    }
                }
                continue;
            }
            let Some((kind, value)) = entry.as_object().and_then(|object| object.iter().next()) else {
                continue;
            };
            let record_type = if kind == "SPF" {
                if has_txt {
                    continue;
                }
                "TXT"
            } else {
                kind.as_str()
            };
            let parts = strings(value);
            if parts == ["NONE"] {
                continue;
            }
            // The driver serves SPF-made TXT records after every listed entry, so a TIMEOUT
            // entry shadows them; only explicitly listed types are answered before it.
            if kind != "SPF" {
                types_seen.insert(record_type.to_string());
            }
            if parts == ["TIMEOUT"] {
                server.fault(name, Some(record_type), Fault::Timeout);
                continue;
            }
            match record_type {
                // DNS cannot carry a TXT record of no strings; one empty string is the nearest
                // legal record ("null text" in the suite).
                "TXT" if parts.is_empty() => {
                    server.add_txt_strings(name, &[b""]);
                }
                "TXT" => {
                    let bytes: Vec<&[u8]> = parts.iter().map(|part| part.as_bytes()).collect();
                    server.add_txt_strings(name, &bytes);
                }
                "MX" => {
                    server.add(name, "MX", &format!("{} {}", parts[0], parts[1]));
                }
                other => {
                    server.add(name, other, &parts[0]);
                }
            }
        }
    }
    let text = scenario.to_string();
    for (index, _) in text.match_indices("error.") {
        let start =
            text[..index].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).map_or(0, |p| p + 1);
        if start != index {
            continue;
        }
        let end = text[index..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .map_or(text.len(), |p| p + index);
        let name = text[index..end].trim_end_matches('.');
        if !zonedata.keys().any(|known| known.eq_ignore_ascii_case(name)) {
            server.fault(name, None, Fault::Timeout);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openspf_rfc7208_suite() {
    let Some(suite) = load_suite() else { return };
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut total = 0;
    for scenario in &suite {
        let server = TestDns::start().await;
        load_zone(&server, scenario);
        let dns = client(&server);
        for (id, case) in scenario["tests"].as_object().expect("tests") {
            total += 1;
            let identity = Identity {
                ip: case["host"].as_str().expect("host").parse().expect("host IP"),
                sender: case["mailfrom"].as_str().unwrap_or_default().to_string(),
                helo: case["helo"].as_str().unwrap_or_default().to_string(),
            };
            let evaluation = check_mail_from(&dns, &identity).await;
            let expected = strings(&case["result"]);
            let mut ok = expected.iter().any(|result| result == evaluation.result.as_str());
            if let (true, Some(explanation)) = (ok, case.get("explanation").and_then(Value::as_str))
                && evaluation.result.as_str() == "fail"
            {
                let ours = evaluation.explanation.as_deref().unwrap_or("DEFAULT");
                ok = ours == explanation;
            }
            if ok {
                passed += 1;
                assert!(!known.contains_key(id.as_str()), "{id} now passes: remove it from KNOWN_DIFFERENCES");
            } else if !known.contains_key(id.as_str()) {
                failures.push(format!(
                    "{id} (RFC 7208 {}): expected {expected:?}{}, got {} ({}) explanation {:?}",
                    case["spec"].as_str().unwrap_or("?"),
                    case.get("explanation").map(|e| format!(" with explanation {e}")).unwrap_or_default(),
                    evaluation.result.as_str(),
                    evaluation.reason,
                    evaluation.explanation,
                ));
            }
        }
    }
    eprintln!("RFC 7208 suite: {passed} of {total} cases pass, {} known differences", known.len());
    assert!(failures.is_empty(), "{} cases fail:\n{}", failures.len(), failures.join("\n"));
    assert!(total >= 200, "the suite should have about 200 cases, found {total}");
}
