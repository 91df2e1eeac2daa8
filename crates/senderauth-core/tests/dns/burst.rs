//! The bulk client's burst socket: many questions in flight on one socket, each given its own
//! answer; failures stay temporary; truncated answers still go over TCP.

use std::time::Duration;

use futures_util::future::join_all;
use senderauth_core::dns::{Answer, Dns, ResolverSettings};
use senderauth_testkit::{Fault, TestDns};

fn settings(server: &TestDns) -> ResolverSettings {
    ResolverSettings {
        nameserver: Some(server.address()),
        timeout: Duration::from_millis(400),
        attempts: 2,
        cache: false,
    }
}

#[tokio::test]
async fn each_question_in_a_burst_gets_its_own_answer() {
    let server = TestDns::start().await;
    server.add_zone("example.com");
    for n in 0..400 {
        server.add(&format!("host{n}.example.com"), "TXT", &format!("answer for host{n}"));
    }
    server.fault("silent.example.com", Some("TXT"), Fault::Timeout);
    server.fault("failing.example.com", Some("TXT"), Fault::ServFail);
    server.fault("host7.example.com", Some("TXT"), Fault::Truncate);
    let dns = Dns::new(&settings(&server)).expect("client").bursting().expect("burst socket");

    // Everything at once: 400 names that exist, 100 that do not, two that fail.
    let names: Vec<String> = (0..400)
        .map(|n| format!("host{n}.example.com"))
        .chain((0..100).map(|n| format!("missing{n}.example.com")))
        .chain(["silent.example.com".to_string(), "failing.example.com".to_string()])
        .collect();
    let answers = join_all(names.iter().map(|name| dns.txt(name))).await;
    for (name, answer) in names.iter().zip(&answers) {
        match name.strip_suffix(".example.com") {
            Some(host) if host.starts_with("host") => {
                let expected = format!("answer for {host}").into_bytes();
                assert_eq!(answer, &Ok(Answer::Records(vec![expected])), "{name}");
            }
            Some(host) if host.starts_with("missing") => assert_eq!(answer, &Ok(Answer::NxDomain), "{name}"),
            _ => assert!(answer.is_err(), "{name}: a temporary failure, not an answer: {answer:?}"),
        }
    }
    assert!(server.tcp_query_count() >= 1, "the truncated answer was asked again over TCP");
    // 500 questions and the retries of the two failing ones; nothing asked twice otherwise.
    assert!(server.query_count() <= 500 + 2 * 2 * 8 + 2, "{} queries", server.query_count());
}

#[tokio::test]
async fn a_nameserver_that_is_not_running_is_said_to_be_unreachable() {
    // A port nothing listens on: the system answers each datagram with a refusal.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("address");
    let settings =
        ResolverSettings { nameserver: Some(closed), timeout: Duration::from_millis(300), attempts: 1, cache: false };
    let dns = Dns::new(&settings).expect("client").bursting().expect("burst socket");
    let failure = dns.txt("example.com").await.expect_err("no answer");
    assert!(failure.reason.contains("is it running?"), "{failure:?}");
}
