//! Webhooks end to end: registered through the API, queued by the worker's checks, delivered by
//! real HTTP to a receiving server on loopback, signed, retried, and logged; on both backends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_service::Service;
use senderauth_service::config::DEFAULT_MESSAGE_SIZE_LIMIT;
use senderauth_service::keys::{KeyAlgorithm, KeyMaker};
use senderauth_service::webhooks::{Deliverer, Targets, signature};
use senderauth_service::worker::Worker;
use senderauth_store::{SealedKind, Store};
use senderauth_testkit::http::{call, publish_hosted_keys};
use senderauth_testkit::{TestDns, database};
use senderauth_web::{WebState, router};
use serde_json::Value;
use tokio::net::TcpListener;

/// A receiving server: records every request; answers 500 to the first `fail_first`.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail_first: Arc<AtomicUsize>,
}

pub(crate) async fn start_receiver(receiver: Receiver) -> SocketAddr {
    let state = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.received.lock().expect("lock").push((headers, body));
                let remaining = state.fail_first.load(Ordering::Relaxed);
                if remaining > 0 {
                    state.fail_first.store(remaining - 1, Ordering::Relaxed);
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

struct Setup {
    api: SocketAddr,
    dns: TestDns,
    worker: Worker,
    clock: Arc<AtomicI64>,
    admin: String,
    keys: KeyMaker,
}

impl Setup {
    /// A deliverer on `node` with the API's master keys (which sealed the endpoints' secrets).
    fn deliverer(&self, store: &Store, node: &str, targets: Targets) -> Deliverer {
        Deliverer::new(store.clone(), node.to_string(), self.worker.metrics.clone(), targets, self.keys.master.clone())
            .expect("client")
    }
}

/// The API and a worker; webhooks may go to `targets` (the receivers here are on loopback).
async fn setup(store: Store, targets: Targets) -> Setup {
    let dns = TestDns::start().await;
    for zone in ["com", "example.com", "esp.example"] {
        dns.add_zone(zone);
    }
    let (_, admin) = store.create_token(None, "admin", 0).await.expect("admin");
    let resolver = Dns::new(&ResolverSettings {
        nameserver: Some(dns.address()),
        timeout: Duration::from_millis(300),
        attempts: 1,
        cache: false,
    })
    .expect("resolver");
    let mut worker = Worker::new(store, resolver, ProviderConfig::default(), "node-1");
    worker.concurrency = 8;
    worker.lease = Duration::from_secs(60);
    let clock = Arc::new(AtomicI64::new(10_000));
    let now = clock.clone();
    let keys = test_keys();
    let mut service = Service::new(worker.clone(), Arc::new(move || now.load(Ordering::Relaxed)), keys.clone());
    service.webhook_targets = targets;
    let state = WebState::new(service, "bounces.esp.example".to_string(), DEFAULT_MESSAGE_SIZE_LIMIT);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Setup { api, dns, worker, clock, admin, keys }
}

#[tokio::test]
async fn status_changes_are_delivered_signed_retried_and_logged() {
    for database in [Some(database::sqlite()), database::postgres().await].into_iter().flatten() {
        let store = Store::connect(&database.url).await.expect("store");
        let setup = setup(store.clone(), Targets::Any).await;
        let receiver = Receiver::default();
        receiver.fail_first.store(1, Ordering::Relaxed);
        let hook = start_receiver(receiver.clone()).await;

        let (_, account) =
            call(setup.api, "POST", "/api/v1/accounts", Some(&setup.admin), Some(r#"{"name": "Hooks"}"#)).await;
        let token = account["token"].as_str().expect("token").to_string();
        let (status, bad) =
            call(setup.api, "POST", "/api/v1/webhooks", Some(&token), Some(r#"{"url": "ftp://x"}"#)).await;
        assert_eq!((status, bad["code"].as_str()), (422, Some("invalid_url")));
        let body = format!(r#"{{"url": "http://{hook}/hook"}}"#);
        let (status, webhook) = call(setup.api, "POST", "/api/v1/webhooks", Some(&token), Some(&body)).await;
        assert_eq!(status, 201, "{webhook}");
        let secret = webhook["secret"].as_str().expect("secret shown once").to_string();
        let id = webhook["id"].as_i64().expect("id");
        // The database holds the secret sealed under the master key, never in the clear.
        let sealed = store.keys_sealed_under_other("no such master key", 10).await.expect("sealed secrets");
        let stored = sealed.iter().find(|key| key.kind == SealedKind::WebhookSecret).expect("the sealed secret");
        assert_eq!(stored.master_key_id, setup.keys.master.current_id());
        assert!(!stored.sealed.windows(8).any(|window| secret.as_bytes().windows(8).any(|part| part == window)));
        let (_, listed) = call(setup.api, "GET", "/api/v1/webhooks", Some(&token), None).await;
        assert!(!listed.to_string().contains(&secret), "the secret is never listed");

        // The domain becomes verified: one event, one delivery.
        call(setup.api, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@hooked.example.com"}"#)).await;
        setup.dns.publish_customer(1, "hooked.example.com");
        publish_hosted_keys(&setup.dns, setup.api, &token, "hooked.example.com").await;
        setup.worker.run_once(10_000).await.expect("round");
        let deliverer = setup.deliverer(&store, "node-1", Targets::Any);
        let other_node = setup.deliverer(&store, "node-2", Targets::Any);

        // First attempt: the receiver answers 500, so it is retried 30 s later, not sooner.
        let (first, second) = tokio::join!(deliverer.deliver_once(10_001), other_node.deliver_once(10_001));
        assert_eq!(first.expect("deliver") + second.expect("deliver"), 0);
        assert_eq!(receiver.received.lock().expect("lock").len(), 1, "two nodes, one attempt");
        assert_eq!(deliverer.deliver_once(10_020).await.expect("deliver"), 0);
        assert_eq!(receiver.received.lock().expect("lock").len(), 1, "not retried before its time");
        assert_eq!(deliverer.deliver_once(10_031).await.expect("deliver"), 1);
        assert_eq!(deliverer.deliver_once(20_000).await.expect("deliver"), 0, "delivered once, never again");

        let received = receiver.received.lock().expect("lock").clone();
        assert_eq!(received.len(), 2);
        let (headers, body) = &received[1];
        let timestamp: i64 = headers["senderauth-timestamp"].to_str().expect("ascii").parse().expect("number");
        assert_eq!(timestamp, 10_031);
        assert_eq!(headers["senderauth-signature"].to_str().expect("ascii"), signature(&secret, timestamp, body));
        assert_ne!(headers["senderauth-signature"].to_str().expect("ascii"), signature("wrong", timestamp, body));
        assert_eq!(headers["senderauth-event"], "domain.verified");
        let event: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(
            (event["type"].as_str(), event["data"]["domain"].as_str()),
            (Some("domain.verified"), Some("hooked.example.com"))
        );
        assert_eq!(
            (event["data"]["from"].as_str(), event["data"]["to"].as_str()),
            (Some("not_verified"), Some("verified"))
        );

        let (_, log) = call(setup.api, "GET", &format!("/api/v1/webhooks/{id}/deliveries"), Some(&token), None).await;
        let delivery = &log["deliveries"][0];
        assert_eq!((delivery["state"].as_str(), delivery["attempts"].as_i64()), (Some("delivered"), Some(2)));
        assert_eq!(delivery["last_status"], 204);
        let (_, other) =
            call(setup.api, "POST", "/api/v1/accounts", Some(&setup.admin), Some(r#"{"name": "Other"}"#)).await;
        let other_token = other["token"].as_str().expect("token");
        let (status, _) =
            call(setup.api, "GET", &format!("/api/v1/webhooks/{id}/deliveries"), Some(other_token), None).await;
        assert_eq!(status, 404, "another account cannot read the log");
        setup.clock.fetch_add(1, Ordering::Relaxed);
        database.drop().await;
    }
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_given_up_after_eight_attempts() {
    let store = Store::connect(&database::sqlite().url).await.expect("store");
    let setup = setup(store.clone(), Targets::Any).await;
    let (_, account) =
        call(setup.api, "POST", "/api/v1/accounts", Some(&setup.admin), Some(r#"{"name": "Gone"}"#)).await;
    let token = account["token"].as_str().expect("token").to_string();
    // Nothing listens on this port: every attempt fails at once.
    let unused = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address");
    let body = format!(r#"{{"url": "http://{unused}/hook"}}"#);
    let (_, webhook) = call(setup.api, "POST", "/api/v1/webhooks", Some(&token), Some(&body)).await;
    call(setup.api, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@gone.example.com"}"#)).await;
    setup.dns.publish_customer(1, "gone.example.com");
    publish_hosted_keys(&setup.dns, setup.api, &token, "gone.example.com").await;
    setup.worker.run_once(10_000).await.expect("round");
    let deliverer = setup.deliverer(&store, "node-1", Targets::Any);
    let mut now = 10_000;
    for _ in 0..12 {
        deliverer.deliver_once(now).await.expect("deliver");
        now += 13 * 3_600;
    }
    let id = webhook["id"].as_i64().expect("id");
    let (_, log) = call(setup.api, "GET", &format!("/api/v1/webhooks/{id}/deliveries"), Some(&token), None).await;
    let delivery = &log["deliveries"][0];
    assert_eq!((delivery["state"].as_str(), delivery["attempts"].as_i64()), (Some("failed"), Some(8)));
    assert!(delivery["last_error"].as_str().is_some_and(|error| !error.is_empty()));
}

#[tokio::test]
async fn by_default_webhooks_reach_public_addresses_only() {
    let store = Store::connect(&database::sqlite().url).await.expect("store");
    let setup = setup(store.clone(), Targets::PublicOnly).await;
    let (_, account) =
        call(setup.api, "POST", "/api/v1/accounts", Some(&setup.admin), Some(r#"{"name": "Inside"}"#)).await;
    let token = account["token"].as_str().expect("token").to_string();
    let receiver = Receiver::default();
    let hook = start_receiver(receiver.clone()).await;
    for url in [
        format!("http://{hook}/hook"),
        "http://10.0.0.5/hook".to_string(),
        "http://[::1]:8080/hook".to_string(),
        "http://[::ffff:127.0.0.1]/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let body = format!(r#"{{"url": "{url}"}}"#);
        let (status, refused) = call(setup.api, "POST", "/api/v1/webhooks", Some(&token), Some(&body)).await;
        assert_eq!((status, refused["code"].as_str()), (422, Some("webhook_target_not_allowed")), "{url}");
        assert!(refused["message"].as_str().is_some_and(|message| message.contains("webhook_private_targets")));
    }

    // A host name is accepted, but each delivery calls only its public addresses: localhost has
    // none, so the receiver behind it is never reached.
    let body = format!(r#"{{"url": "http://localhost:{}/hook"}}"#, hook.port());
    let (status, webhook) = call(setup.api, "POST", "/api/v1/webhooks", Some(&token), Some(&body)).await;
    assert_eq!(status, 201, "{webhook}");
    call(setup.api, "POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@inside.example.com"}"#)).await;
    setup.dns.publish_customer(1, "inside.example.com");
    publish_hosted_keys(&setup.dns, setup.api, &token, "inside.example.com").await;
    setup.worker.run_once(10_000).await.expect("round");
    let deliverer = setup.deliverer(&store, "node-1", Targets::PublicOnly);
    assert_eq!(deliverer.deliver_once(10_001).await.expect("deliver"), 0);
    assert!(receiver.received.lock().expect("lock").is_empty(), "nothing reached the loopback receiver");
    let id = webhook["id"].as_i64().expect("id");
    let (_, log) = call(setup.api, "GET", &format!("/api/v1/webhooks/{id}/deliveries"), Some(&token), None).await;
    let error = log["deliveries"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(log["deliveries"][0]["state"] == "pending" && !error.is_empty(), "retried later: {log}");
}

/// The default RSA-2048 keys, in a master key held in memory.
fn test_keys() -> KeyMaker {
    KeyMaker::in_memory(KeyAlgorithm::Rsa2048).expect("a key maker")
}
