//! The DNS client's cache: repeats are not asked again; temporary failures are never kept.

use std::time::Duration;

use senderauth_core::dns::{Answer, Dns, ResolverSettings};
use senderauth_testkit::{Fault, TestDns};

#[tokio::test]
async fn answers_are_cached_but_temporary_failures_are_not() {
    let server = TestDns::start().await;
    server.add_zone("example.com");
    server.add("cached.example.com", "TXT", "v=spf1 -all");
    let dns = Dns::new(&ResolverSettings {
        nameserver: Some(server.address()),
        timeout: Duration::from_millis(400),
        attempts: 1,
        cache: true,
    })
    .expect("client");

    let first = dns.txt("cached.example.com").await.expect("answer");
    let asked = server.query_count();
    let second = dns.txt("Cached.Example.com.").await.expect("answer");
    assert_eq!(first, second);
    assert_eq!(server.query_count(), asked, "a repeat (in any case, with or without the dot) is not asked again");
    assert_eq!(dns.txt("gone.example.com").await, Ok(Answer::NxDomain));
    let asked = server.query_count();
    assert_eq!(dns.txt("gone.example.com").await, Ok(Answer::NxDomain));
    assert_eq!(server.query_count(), asked, "negative answers are cached too");

    server.fault("flaky.example.com", Some("TXT"), Fault::ServFail);
    assert!(dns.txt("flaky.example.com").await.is_err());
    server.clear_faults();
    server.add("flaky.example.com", "TXT", "v=spf1 mx -all");
    let recovered = dns.txt("flaky.example.com").await.expect("asked again, not served from cache");
    assert_eq!(recovered.records(), vec![b"v=spf1 mx -all".to_vec()]);
}
