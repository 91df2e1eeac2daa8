//! The background verifier end to end: a real store (SQLite and PostgreSQL), the verifier
//! against a test DNS server, and the lifecycle driven by a clock the test controls.

use std::future::Future;
use std::time::Duration;

use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_service::worker::Worker;
use senderauth_store::Store;
use senderauth_testkit::{Fault, TestDns, database};

const HOUR: i64 = 3600;

async fn dns_zones() -> TestDns {
    let server = TestDns::start().await;
    for zone in ["com", "example.com", "esp.example"] {
        server.add_zone(zone);
    }
    server
}

fn worker(store: Store, server: &TestDns, node: &str) -> Worker {
    let dns = Dns::new(&ResolverSettings {
        nameserver: Some(server.address()),
        timeout: Duration::from_millis(300),
        attempts: 1,
        cache: false,
    })
    .expect("resolver");
    let mut worker = Worker::new(store, dns, ProviderConfig::default(), node);
    worker.batch = 100;
    worker.concurrency = 16;
    worker
}

async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for database in [Some(database::sqlite()), database::postgres().await].into_iter().flatten() {
        scenario(Store::connect(&database.url).await.expect("store")).await;
        database.drop().await;
    }
}

/// Runs the worker at each time the domain is next due, until `until`; returns the status
/// after every round.
async fn follow(worker: &Worker, account: i64, domain: &str, mut now: i64, until: i64) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    while now <= until {
        worker.run_once(now).await.expect("round");
        let record = worker.store.domain(account, domain).await.expect("read").expect("domain");
        seen.push((now, record.status.as_str().to_string()));
        match record.next_check_at {
            Some(next) => now = next,
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn a_domain_with_its_records_is_verified_in_the_first_round() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let account = store.create_account("Shop", None, 0).await.expect("account");
            let domain = format!("ready{}.example.com", store_kind(&store));
            server.publish_customer(account.id, &domain);
            store.add_domain(account.id, &domain, 0).await.expect("add");
            let worker = worker(store.clone(), &server, "node-1");
            let round = worker.run_once(0).await.expect("round");
            assert_eq!(round.checked, 1);
            assert_eq!(round.events.iter().map(|e| e.event.as_deref()).collect::<Vec<_>>(), [Some("domain.verified")]);
            let record = store.domain(account.id, &domain).await.expect("read").expect("domain");
            assert_eq!(record.status.as_str(), "verified");
            let next = record.next_check_at.expect("scheduled");
            assert!((21 * HOUR..=27 * HOUR).contains(&next), "rechecked about a day later: {next}");
            let result = store.latest_result(record.id).await.expect("result").expect("stored");
            assert_eq!((result.dkim_status.as_str(), result.spf_status.as_str()), ("verified", "verified"));
            assert!(result.result_json.contains("\"status\":\"verified\""));
            assert_eq!(worker.run_once(HOUR).await.expect("round").checked, 0, "nothing due an hour later");
        }
    })
    .await;
}

#[tokio::test]
async fn records_that_appear_late_are_noticed_and_records_that_never_do_fail_at_72_hours() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let account = store.create_account("Slow", None, 0).await.expect("account");
            store.add_domain(account.id, "never.example.com", 0).await.expect("add");
            server.add("never.example.com", "A", "198.51.100.1");
            let worker = worker(store.clone(), &server, "node-1");
            let seen = follow(&worker, account.id, "never.example.com", 0, 100 * HOUR).await;
            let (failed_at, status) = seen.last().expect("rounds").clone();
            assert_eq!(status, "failed");
            assert!((72 * HOUR..74 * HOUR).contains(&failed_at), "{failed_at}");
            assert!(seen[..seen.len() - 1].iter().all(|(_, status)| status == "not_verified"));
            assert_eq!(worker.run_once(200 * HOUR).await.expect("round").checked, 0, "failed domains wait");
        }
    })
    .await;
}

#[tokio::test]
async fn a_verified_domain_degrades_after_three_failures_and_is_restored() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let account = store.create_account("Flaky", None, 0).await.expect("account");
            let domain = format!("records{}.example.com", account.id * 1000 + store_kind(&store));
            server.publish_customer(account.id, &domain);
            store.add_domain(account.id, &domain, 0).await.expect("add");
            let worker = worker(store.clone(), &server, "node-1");
            worker.run_once(0).await.expect("round");
            // The customer deletes the DKIM records: three failed checks in a row degrade it.
            server.remove(&format!("sa1-{}._domainkey.{domain}", account.id), "CNAME");
            let record = store.domain(account.id, &domain).await.expect("read").expect("domain");
            let seen = follow(&worker, account.id, &domain, record.next_check_at.expect("scheduled"), 40 * HOUR).await;
            let statuses: Vec<&str> = seen.iter().map(|(_, status)| status.as_str()).take(4).collect();
            assert_eq!(statuses, ["verified", "verified", "temporary_failure", "temporary_failure"]);
            // The record comes back: the next check restores the domain.
            let target = format!("sa1-{}.{}.dkim.esp.example", account.id, domain.replace('-', "--").replace('.', "-"));
            server.add(&format!("sa1-{}._domainkey.{domain}", account.id), "CNAME", &target);
            let record = store.domain(account.id, &domain).await.expect("read").expect("domain");
            let round = worker.run_once(record.next_check_at.expect("scheduled")).await.expect("round");
            assert_eq!(round.events.iter().map(|e| e.event.as_deref()).collect::<Vec<_>>(), [Some("domain.restored")]);
            let history: Vec<String> =
                store.history(record.id).await.expect("history").into_iter().filter_map(|e| e.event).collect();
            assert_eq!(history, ["domain.verified", "domain.degraded", "domain.restored"]);
        }
    })
    .await;
}

/// A number that differs between the two backends' runs, to keep their DNS names apart.
fn store_kind(store: &Store) -> i64 {
    match store.backend() {
        senderauth_store::Backend::Sqlite => 1,
        senderauth_store::Backend::Postgres => 2,
    }
}

#[tokio::test]
async fn a_dns_outage_changes_no_status() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let account = store.create_account("Outage", None, 0).await.expect("account");
            let domain = format!("outage{}.example.com", store_kind(&store));
            server.publish_customer(account.id, &domain);
            store.add_domain(account.id, &domain, 0).await.expect("add");
            let worker = worker(store.clone(), &server, "node-1");
            worker.run_once(0).await.expect("round");
            server.fault_subtree(&domain, Fault::Timeout);
            let mut now =
                store.domain(account.id, &domain).await.expect("read").expect("domain").next_check_at.expect("due");
            for _ in 0..5 {
                let round = worker.run_once(now).await.expect("round");
                assert!(round.events.is_empty(), "an outage announces nothing");
                let record = store.domain(account.id, &domain).await.expect("read").expect("domain");
                assert_eq!((record.status.as_str(), record.consecutive_failures), ("verified", 0));
                let next = record.next_check_at.expect("scheduled");
                assert_eq!(next, now + 300, "retried five minutes later");
                now = next;
            }
            server.clear_faults();
        }
    })
    .await;
}

#[tokio::test]
async fn two_nodes_on_one_database_check_each_due_domain_once_per_round() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let account = store.create_account("Many", None, 0).await.expect("account");
            for n in 0..60 {
                store.add_domain(account.id, &format!("n{n}.example.com"), 0).await.expect("add");
            }
            let first = worker(store.clone(), &server, "node-1");
            let second = worker(store.clone(), &server, "node-2");
            let (a, b) = tokio::join!(first.run_once(10), second.run_once(10));
            let (a, b) = (a.expect("round"), b.expect("round"));
            assert_eq!(a.checked + b.checked, 60, "every due domain checked: {} + {}", a.checked, b.checked);
            assert_eq!(a.released + b.released, 0, "and every check recorded");
            for n in 0..60 {
                let record =
                    store.domain(account.id, &format!("n{n}.example.com")).await.expect("read").expect("domain");
                assert_eq!(record.last_checked_at, Some(10));
            }
            // Nothing is due again right away: no domain was checked twice.
            let (a, b) = tokio::join!(first.run_once(11), second.run_once(11));
            assert_eq!(a.expect("round").checked + b.expect("round").checked, 0);
        }
    })
    .await;
}

#[tokio::test]
async fn the_return_path_comes_into_use_at_once_and_is_lost_after_three_failed_checks() {
    let server = dns_zones().await;
    on_both(|store| {
        let server = server.clone();
        async move {
            let sealer = senderauth_service::keys::MasterKeys::parse(
                "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                "test",
            )
            .expect("keys");
            let account = store.create_account("Shop", None, 0).await.expect("account");
            let domain = format!("rp{}.example.com", store_kind(&store));
            server.publish_customer(account.id, &domain);
            store.add_domain(account.id, &domain, 0).await.expect("add");
            store.add_webhook(account.id, "https://hooks.example/in", 0, &sealer).await.expect("webhook");
            let worker = worker(store.clone(), &server, "node-1");
            let read = || async { store.domain(account.id, &domain).await.expect("read").expect("domain") };
            // Verified without its return-path: the domain's status does not wait for it.
            worker.run_once(0).await.expect("round");
            let record = read().await;
            assert_eq!((record.status.as_str(), record.return_path_status.as_str()), ("verified", "not_verified"));
            // The CNAME added and a check asked for: in use at once.
            let name = senderauth_core::name::DomainName::parse(&domain).expect("name");
            let target = worker.provider.return_path_target(&account.id.to_string(), &name);
            server.add(&format!("rp.{domain}"), "CNAME", &target);
            worker.check_domain(read().await, HOUR, true).await.expect("check");
            assert_eq!(read().await.return_path_status.as_str(), "verified");
            // The CNAME gone: one failed check changes nothing but brings the next one within 10
            // minutes; the third in a row takes it out of use, and the domain stays verified.
            server.remove(&format!("rp.{domain}"), "CNAME");
            let record = read().await;
            let seen = follow(
                &worker,
                account.id,
                &domain,
                record.next_check_at.expect("due"),
                record.next_check_at.expect("due") + 2 * HOUR,
            )
            .await;
            let record = read().await;
            assert_eq!((record.status.as_str(), record.return_path_status.as_str()), ("verified", "temporary_failure"));
            assert!(seen.len() >= 3, "{seen:?}");
            assert!(seen[2].0 - seen[0].0 <= 20 * 60, "three checks within 20 minutes: {seen:?}");
            // Its events, beside the domain's, to the account's webhook.
            let due =
                store.claim_deliveries("node-1", 10 * 24 * HOUR, 10 * 24 * HOUR + 60, 100, &sealer).await.expect("due");
            let events: Vec<&str> = due.iter().map(|delivery| delivery.event.as_str()).collect();
            assert_eq!(events, ["domain.verified", "return_path.verified", "return_path.lost"], "{due:?}");
            let lost: serde_json::Value =
                serde_json::from_str(due[2].detail_json.as_deref().expect("data")).expect("JSON");
            assert_eq!(lost["host"], format!("rp.{domain}"));
            assert_eq!(lost["target"], target);
            assert_eq!(lost["status"], "temporary_failure");
            assert!(
                lost["problems"].as_array().is_some_and(|codes| codes.iter().any(|code| code == "return_path_missing")),
                "{lost}"
            );
        }
    })
    .await;
}
