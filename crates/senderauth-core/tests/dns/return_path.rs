//! The return-path check against a real DNS server: a CNAME to the platform's target, a wrong
//! one, a flattened copy (accepted only when it authorizes every sending address and names the
//! bounce hosts), the customer's own records at the name, and a temporary
//! failure that is never called missing.

use senderauth_core::config::ProviderConfig;
use senderauth_core::name::DomainName;
use senderauth_core::problem::ProblemCode;
use senderauth_core::return_path::{ReturnPathExpectation, verify_return_path};
use senderauth_core::status::MethodStatus;
use senderauth_testkit::{Fault, TestDns};

use crate::support::client;

fn expectation(provider: &ProviderConfig, domain: &str) -> ReturnPathExpectation {
    let name = DomainName::parse(domain).expect("domain");
    ReturnPathExpectation {
        host: provider.return_path_host("42", &name),
        target: provider.return_path_target("42", &name),
        bounce_hosts: provider.bounce_hosts(),
        sending_networks: provider.sending_networks(),
    }
}

fn codes(check: &senderauth_core::return_path::ReturnPathCheck) -> Vec<&'static str> {
    check.problems.iter().map(|problem| problem.code.as_str()).collect()
}

#[tokio::test]
async fn a_return_path_is_verified_by_its_cname_or_a_faithful_copy_and_conflicts_are_explained() {
    let provider = ProviderConfig::default();
    let server = TestDns::start().await;
    for zone in ["example.com", "esp.example"] {
        server.add_zone(zone);
    }
    let dns = client(&server);
    let expected = expectation(&provider, "shop.example.com");
    assert_eq!(
        (expected.host.as_str(), expected.target.as_str(), expected.bounce_hosts.as_slice()),
        ("rp.shop.example.com", "shop-example-com.rp.esp.example", &["mx.bounces.esp.example".to_string()][..])
    );
    // What the platform's DNS serves at the target.
    server.add(&expected.target, "TXT", &provider.return_path_spf());
    server.add(&expected.target, "MX", "10 mx.bounces.esp.example");

    // Nothing there yet.
    let check = verify_return_path(&dns, &expected).await;
    assert_eq!((check.status, codes(&check)), (MethodStatus::NotVerified, vec!["return_path_missing"]));
    assert!(
        check.problems[0]
            .fix
            .contains("CNAME record at rp.shop.example.com pointing to shop-example-com.rp.esp.example")
    );

    // The CNAME.
    server.add("rp.shop.example.com", "CNAME", "Shop-Example-Com.rp.esp.example.");
    let check = verify_return_path(&dns, &expected).await;
    assert_eq!((check.status, codes(&check)), (MethodStatus::Verified, vec![]));
    assert!(!check.flattened);

    // A CNAME elsewhere (another platform's).
    let other = expectation(&provider, "other.example.com");
    server.add("rp.other.example.com", "CNAME", "pm.mtasv.example.com");
    let check = verify_return_path(&dns, &other).await;
    assert_eq!((check.status, codes(&check)), (MethodStatus::NotVerified, vec!["return_path_wrong_target"]));

    // A copy of the target's records: accepted, with the flattening warning.
    let copy = expectation(&provider, "copy.example.com");
    server.add("rp.copy.example.com", "TXT", &provider.return_path_spf());
    server.add("rp.copy.example.com", "MX", "10 mx.bounces.esp.example");
    let check = verify_return_path(&dns, &copy).await;
    assert_eq!(
        (check.status, check.flattened, codes(&check)),
        (MethodStatus::Verified, true, vec!["return_path_flattened"])
    );

    // A stale copy (one range missing) is not the platform's: the customer's own records.
    let stale = expectation(&provider, "stale.example.com");
    server.add("rp.stale.example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all");
    server.add("rp.stale.example.com", "MX", "10 mx.bounces.esp.example");
    let check = verify_return_path(&dns, &stale).await;
    assert_eq!((check.status, codes(&check)), (MethodStatus::NotVerified, vec!["return_path_conflict"]));
    assert!(check.problems[0].message.contains("TXT and MX records of its own"), "{}", check.problems[0].message);

    // The customer's own mail host at the name.
    let own = expectation(&provider, "own.example.com");
    server.add("rp.own.example.com", "MX", "10 mail.own.example.com");
    server.add("rp.own.example.com", "A", "198.51.100.25");
    let check = verify_return_path(&dns, &own).await;
    assert_eq!(codes(&check), vec!["return_path_conflict"]);
    assert!(check.problems[0].message.contains("MX and A records"), "{}", check.problems[0].message);

    // DNS failing for now: unknown, never missing.
    let failing = expectation(&provider, "failing.example.com");
    server.fault("rp.failing.example.com", None, Fault::ServFail);
    let check = verify_return_path(&dns, &failing).await;
    assert_eq!(check.status, MethodStatus::Unknown);
    assert!(!codes(&check).contains(&ProblemCode::ReturnPathMissing.as_str()), "{:?}", codes(&check));
}
