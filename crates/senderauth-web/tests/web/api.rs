//! The REST API against the real server on a loopback port, with a real store and test DNS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_core::spf::build::sending_addresses_record;
use senderauth_dns::zone::{Zone, ZoneSettings};
use senderauth_service::Service;
use senderauth_service::config::{DEFAULT_MESSAGE_SIZE_LIMIT, ServiceConfig};
use senderauth_service::keys::{KeyAlgorithm, KeyMaker, ensure_variable_domain_keys};
use senderauth_service::rotation::{self, RotationPolicy};
use senderauth_service::worker::Worker;
use senderauth_store::{KeyInfo, KeyState, Store};
use senderauth_testkit::{TestDns, database, http};
use senderauth_web::ui::Brand;
use senderauth_web::{WebState, router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(crate) struct App {
    pub(crate) address: SocketAddr,
    /// The router's paths, as axum lists them in its `Debug` output.
    routes: Vec<String>,
    pub(crate) dns: TestDns,
    pub(crate) admin: String,
    pub(crate) clock: Arc<AtomicI64>,
    pub(crate) store: Store,
    pub(crate) keys: KeyMaker,
    /// The service behind the API (what the gateway and the background tasks call).
    pub(crate) service: Service,
}

/// The app on every backend: SQLite, and PostgreSQL when the test script started one.
pub(crate) async fn apps() -> Vec<App> {
    let mut apps = vec![spawn_app(&database::sqlite().url).await];
    if let Some(postgres) = database::postgres().await {
        apps.push(spawn_app(&postgres.url).await);
    }
    apps
}

async fn spawn_app(database_url: &str) -> App {
    spawn_app_with(database_url, None).await
}

async fn spawn_app_with(database_url: &str, default_domain_limit: Option<i64>) -> App {
    spawn_app_configured(database_url, default_domain_limit, ProviderConfig::default()).await
}

/// An app on `provider` (the reserved domain esp-corp.example.com added).
async fn spawn_app_configured(database_url: &str, default_domain_limit: Option<i64>, provider: ProviderConfig) -> App {
    spawn_app_branded(database_url, default_domain_limit, provider, Brand::default()).await
}

/// An app whose pages show `brand`.
pub(crate) async fn spawn_app_branded(
    database_url: &str,
    default_domain_limit: Option<i64>,
    provider: ProviderConfig,
    brand: Brand,
) -> App {
    let dns = TestDns::start().await;
    for zone in ["com", "example.com", "esp.example"] {
        dns.add_zone(zone);
    }
    let store = Store::connect(database_url).await.expect("store");
    let (_, admin) = store.create_token(None, "test admin", 0).await.expect("admin token");
    let resolver = Dns::new(&ResolverSettings {
        nameserver: Some(dns.address()),
        timeout: Duration::from_millis(300),
        attempts: 1,
        cache: false,
    })
    .expect("resolver");
    let provider = ProviderConfig { reserved_domains: vec!["esp-corp.example.com".to_string()], ..provider };
    let mut worker = Worker::new(store.clone(), resolver, provider, "test");
    worker.concurrency = 8;
    worker.lease = Duration::from_secs(60);
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let now = clock.clone();
    let keys = test_keys();
    let mut service = Service::new(worker, Arc::new(move || now.load(Ordering::Relaxed)), keys.clone());
    service.default_domain_limit = default_domain_limit;
    // Webhook receivers in these tests are on loopback (the refusal of private targets is
    // tested in `webhooks`).
    service.webhook_targets = senderauth_service::webhooks::Targets::Any;
    let mut state = WebState::new(service.clone(), "bounces.esp.example".to_string(), DEFAULT_MESSAGE_SIZE_LIMIT);
    state.brand = Arc::new(brand);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let routes = router_paths(&format!("{:?}", router(state.clone())));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    App { address, routes, dns, admin, clock, store, keys, service }
}

impl App {
    pub(crate) async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        http::call(self.address, method, path, token, body).await
    }

    pub(crate) async fn account(&self, name: &str) -> String {
        let (status, body) =
            self.call("POST", "/api/v1/accounts", Some(&self.admin), Some(&json!({ "name": name }).to_string())).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_string()
    }
}

#[tokio::test]
async fn every_api_error_is_json_with_a_code_and_a_message() {
    let app = spawn_app(&database::sqlite().url).await;
    let token = app.account("Errors").await;
    let big = format!(r#"{{"email": "a@example.com", "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let cases: [(&str, &str, Option<&str>, u16, &str); 5] = [
        ("GET", "/api/v1/no-such-thing", Some(&token), 404, "no_such_route"),
        ("PATCH", "/api/v1/domains", Some(&token), 405, "method_not_allowed"),
        ("DELETE", "/api/v1/tokens/not-a-number", Some(&token), 400, "invalid_path"),
        ("DELETE", "/api/v1/webhooks/1x", Some(&token), 400, "invalid_path"),
        ("POST", "/api/v1/domains", Some(&token), 413, "body_too_large"),
    ];
    for (method, path, token, status, code) in cases {
        let body = if status == 413 { Some(big.as_str()) } else { None };
        let (got, text) = http::call_text(app.address, method, path, token, body).await;
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!((got, json["code"].as_str()), (status, Some(code)), "{method} {path}: {text}");
        assert!(json["message"].as_str().is_some_and(|message| !message.is_empty()), "{method} {path}: {text}");
    }
    // A message over the gateway's route limit (twice the size limit) is told so in JSON too.
    let huge = vec![b'a'; 2 * senderauth_service::config::DEFAULT_MESSAGE_SIZE_LIMIT + 1];
    let (status, _, body) =
        http::call_raw(app.address, "/api/v1/messages/prepare", &token, "message/rfc822", &huge).await;
    let json: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!((status, json["code"].as_str()), (413, Some("body_too_large")), "{json}");
    // Outside the API, an unknown address is a page, not JSON.
    let (status, text) = http::call_text(app.address, "GET", "/ui/no-such-page", None, None).await;
    assert_eq!(status, 404);
    assert!(text.contains("<html") && text.contains("There is no page at this address."), "{text}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_cookies_follow_https() {
    let app = spawn_app(&database::sqlite().url).await;
    let token = app.account("Headers").await;
    let bearer = format!("Bearer {token}");
    let requests = [
        ("GET", "/healthz", None),
        ("GET", "/api/v1/domains", Some(bearer.as_str())),
        ("GET", "/api/v1/domains", None),
        ("GET", "/api/v1/no-such-thing", None),
        ("GET", "/ui/sign-in", None),
        ("GET", "/ui/domains", None),
        ("GET", "/no-such-page", None),
        ("GET", "/ui/app.js", None),
    ];
    for (method, path, authorization) in requests {
        let headers: Vec<(&str, &str)> = authorization.map(|value| ("authorization", value)).into_iter().collect();
        let (status, got) = http::response_headers(app.address, method, path, &headers).await;
        let header = |name: &str| got.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
        let policy = header("content-security-policy");
        assert!(
            policy.contains("default-src 'self'")
                && policy.contains("frame-ancestors 'none'")
                && !policy.contains("unsafe"),
            "{path} ({status}): {policy:?}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let cache = header("cache-control");
        if path == "/ui/app.js" {
            assert!(cache.starts_with("public"), "{path}: {cache}");
        } else {
            assert_eq!(cache, "no-store", "{path} ({status})");
        }
    }
    // The sign-in cookie is Secure only when the page came over HTTPS (here: a proxy says so).
    let cookie = |headers: &axum::http::HeaderMap| {
        headers.get("set-cookie").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string()
    };
    let (_, plain) = http::response_headers(app.address, "GET", "/ui/sign-in", &[]).await;
    assert!(cookie(&plain).contains("HttpOnly") && !cookie(&plain).contains("Secure"), "{}", cookie(&plain));
    let (_, proxied) =
        http::response_headers(app.address, "GET", "/ui/sign-in", &[("x-forwarded-proto", "https")]).await;
    assert!(cookie(&proxied).contains("Secure"), "{}", cookie(&proxied));
}

#[tokio::test]
async fn every_route_needs_a_valid_token_of_the_right_kind() {
    for app in apps().await {
        assert_eq!(app.call("GET", "/healthz", None, None).await.0, 200);
        assert_eq!(app.call("GET", "/readyz", None, None).await.0, 200);
        let account = app.account("Shop").await;
        let routes = [
            ("POST", "/api/v1/domains"),
            ("GET", "/api/v1/domains"),
            ("GET", "/api/v1/domains/example.com"),
            ("DELETE", "/api/v1/domains/example.com"),
            ("POST", "/api/v1/domains/example.com/verify"),
            ("POST", "/api/v1/accounts"),
        ];
        for (method, path) in routes {
            for token in [None, Some("sa_not-a-token")] {
                let (status, body) = app.call(method, path, token, Some("{}")).await;
                assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{method} {path} {token:?}");
            }
        }
        let (status, body) = app.call("POST", "/api/v1/accounts", Some(&account), Some(r#"{"name": "x"}"#)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "an account token cannot create accounts"
        );
        let (status, _) = app.call("GET", "/api/v1/domains", Some(&app.admin), None).await;
        assert_eq!(status, 403, "account routes need an account token");
    }
}

#[tokio::test]
async fn connecting_a_domain_returns_its_records_and_refusals_say_why() {
    for app in apps().await {
        let token = app.account("Shop").await;
        let (status, body) =
            app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "News@Info.Example.com"}"#)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (body["domain"].as_str(), body["status"].as_str()),
            (Some("info.example.com"), Some("not_verified"))
        );
        let records = body["records"].as_array().expect("records");
        assert_eq!(records.len(), 5);
        assert_eq!(records[0]["host"], "sa1-1._domainkey.info");
        assert_eq!(
            (records[4]["method"].as_str(), records[4]["host"].as_str(), records[4]["value"].as_str()),
            (Some("return_path"), Some("rp.info"), Some("info-example-com.rp.esp.example"))
        );
        assert_eq!(records[2]["value"], "v=spf1 include:1.spf.esp.example -all");

        let cases = [
            (r#"{"email": "news@info.example.com"}"#, 409, "domain_exists"),
            (r#"{"email": "news@co.uk"}"#, 422, "invalid_email"),
            (r#"{"email": "not an address"}"#, 422, "invalid_email"),
            (r#"{"email": "a@esp-corp.example.com"}"#, 422, "domain_reserved"),
            (r#"{"email": 42}"#, 400, "invalid_body"),
            (r#"{"email": "a@b.example.com", "extra": 1}"#, 400, "invalid_body"),
            ("not json", 400, "invalid_body"),
        ];
        for (body, expected_status, code) in cases {
            let (status, response) = app.call("POST", "/api/v1/domains", Some(&token), Some(body)).await;
            assert_eq!((status, response["code"].as_str()), (expected_status, Some(code)), "{body}: {response}");
            assert!(!response["message"].as_str().unwrap_or("").is_empty(), "every refusal explains itself");
        }
        // Mailbox providers' domains: nobody connecting them owns them.
        for email in ["me@gmail.com", "Me@GMail.com.", "me@mail.yahoo.co.uk", "me@hotmail.com"] {
            let body = json!({ "email": email }).to_string();
            let (status, response) = app.call("POST", "/api/v1/domains", Some(&token), Some(&body)).await;
            assert_eq!((status, response["code"].as_str()), (422, Some("mailbox_provider")), "{email}: {response}");
            assert!(response["message"].as_str().expect("message").contains("a domain you own"), "{response}");
        }
        // The platform's own names, and what is under them.
        for email in ["news@esp.example", "news@mail.esp.example", "news@send.esp.example", "a@x.send.esp.example"] {
            let body = json!({ "email": email }).to_string();
            let (status, response) = app.call("POST", "/api/v1/domains", Some(&token), Some(&body)).await;
            assert_eq!((status, response["code"].as_str()), (422, Some("platform_domain")), "{email}: {response}");
        }
        // Names DNS cannot carry: the CNAME host sa1-1._domainkey.<domain> would be over 253 octets.
        let label = "a".repeat(63);
        let long = format!("news@{label}.{label}.{label}.{}.example.com", "b".repeat(40));
        let (status, response) =
            app.call("POST", "/api/v1/domains", Some(&token), Some(&json!({ "email": long }).to_string())).await;
        assert_eq!((status, response["code"].as_str()), (422, Some("key_name_unpublishable")), "{response}");
        // A domain whose dashed form would be over 63 octets gets a hashed label that fits.
        let hashed = "news@ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.ffffffffff.example.com";
        let (status, response) =
            app.call("POST", "/api/v1/domains", Some(&token), Some(&json!({ "email": hashed }).to_string())).await;
        assert_eq!(status, 201, "{response}");
        let target = response["records"][0]["value"].as_str().expect("a CNAME target");
        assert!(target.starts_with("sa1-1.h---") && target.ends_with(".dkim.esp.example"), "{target}");
        // Two domains that one dashed form would have mixed up get names of their own.
        let mut targets = Vec::new();
        for email in ["news@mail-shop.example.com", "news@mail.shop-example.com"] {
            let body = json!({ "email": email }).to_string();
            let (status, response) = app.call("POST", "/api/v1/domains", Some(&token), Some(&body)).await;
            assert_eq!(status, 201, "{email}: {response}");
            targets.push(response["records"][0]["value"].as_str().expect("target").to_string());
        }
        assert_eq!(
            targets,
            ["sa1-1.mail--shop-example-com.dkim.esp.example", "sa1-1.mail-shop--example-com.dkim.esp.example"]
        );
        let reserved =
            app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@esp-corp.example.com"}"#)).await.1;
        assert!(reserved["message"].as_str().expect("message").contains("mail.esp-corp.example.com"));
        let huge = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(100_000));
        let (status, body) = app.call("POST", "/api/v1/domains", Some(&token), Some(&huge)).await;
        assert_eq!((status, body["code"].as_str()), (413, Some("body_too_large")), "bodies are size-limited");
    }
}

#[tokio::test]
async fn a_target_template_that_gives_two_domains_one_name_refuses_the_second() {
    // An operator's template without the domain in it: every domain of an account would share
    // the account's two names.
    let mut provider = ProviderConfig::default();
    provider.dkim.target = "{selector}.keys.{zone}".to_string();
    let app = spawn_app_configured(&database::sqlite().url, None, provider).await;
    let token = app.account("Shared").await;
    let (status, first) =
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@one.example.com"}"#)).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) =
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@two.example.com"}"#)).await;
    assert_eq!((status, second["code"].as_str()), (409, Some("key_names_taken")), "{second}");
    assert!(second["message"].as_str().expect("message").contains("sa1-1.keys.esp.example"), "{second}");
    // The first domain is untouched: its keys are still the only ones at those names.
    let (_, keys) = app.call("GET", "/api/v1/domains/one.example.com/dkim", Some(&token), None).await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(2), "{keys}");
    // Connecting the first one again is still "already connected".
    let (status, again) =
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "b@one.example.com"}"#)).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("domain_exists")), "{again}");
}

#[tokio::test]
async fn one_account_never_reaches_another_accounts_domain() {
    for app in apps().await {
        let owner = app.account("Owner").await;
        let other = app.account("Other").await;
        app.call("POST", "/api/v1/domains", Some(&owner), Some(r#"{"email": "a@private.example.com"}"#)).await;
        for (method, path) in [
            ("GET", "/api/v1/domains/private.example.com"),
            ("POST", "/api/v1/domains/private.example.com/verify"),
            ("DELETE", "/api/v1/domains/private.example.com"),
        ] {
            let (status, body) = app.call(method, path, Some(&other), None).await;
            assert_eq!((status, body["code"].as_str()), (404, Some("domain_not_found")), "{method} {path}");
        }
        let (_, listed) = app.call("GET", "/api/v1/domains", Some(&other), None).await;
        assert_eq!(listed["domains"], json!([]));
        // The same for the owner's webhook, its delivery log and its tokens.
        let (_, webhook) = app
            .call("POST", "/api/v1/webhooks", Some(&owner), Some(r#"{"url": "https://hooks.example.com/in"}"#))
            .await;
        let webhook_id = webhook["id"].as_i64().expect("webhook id");
        let (_, listed) = app.call("GET", "/api/v1/webhooks", Some(&other), None).await;
        assert_eq!(listed["webhooks"], json!([]));
        for (method, path) in [
            ("DELETE", format!("/api/v1/webhooks/{webhook_id}")),
            ("GET", format!("/api/v1/webhooks/{webhook_id}/deliveries")),
        ] {
            assert_eq!(app.call(method, &path, Some(&other), None).await.0, 404, "{method} {path}");
        }
        let (_, tokens) = app.call("GET", "/api/v1/tokens", Some(&owner), None).await;
        let token_id = tokens["tokens"][0]["id"].as_i64().expect("token id");
        assert_eq!(app.call("DELETE", &format!("/api/v1/tokens/{token_id}"), Some(&other), None).await.0, 404);
        assert_eq!(app.call("GET", "/api/v1/webhooks", Some(&owner), None).await.1["webhooks"][0]["id"], webhook_id);
        assert_eq!(
            app.call("GET", "/api/v1/domains/private.example.com", Some(&owner), None).await.0,
            200,
            "still there"
        );
    }
}

#[tokio::test]
async fn verify_now_checks_against_dns_and_is_rate_limited() {
    for app in apps().await {
        let token = app.account("Shop").await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@ready.example.com"}"#)).await;
        app.dns.publish_customer(1, "ready.example.com");
        http::publish_hosted_keys(&app.dns, app.address, &token, "ready.example.com").await;
        let (status, body) = app.call("POST", "/api/v1/domains/ready.example.com/verify", Some(&token), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "verified");
        assert_eq!(body["result"]["spf"]["status"], "verified");
        let (status, body) = app.call("POST", "/api/v1/domains/ready.example.com/verify", Some(&token), None).await;
        assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
        app.clock.fetch_add(11, Ordering::Relaxed);
        assert_eq!(app.call("POST", "/api/v1/domains/ready.example.com/verify", Some(&token), None).await.0, 200);

        let (_, detail) = app.call("GET", "/api/v1/domains/ready.example.com", Some(&token), None).await;
        assert_eq!(detail["result"]["dkim"]["status"], "verified");
        let events: Vec<&str> =
            detail["history"].as_array().expect("history").iter().filter_map(|e| e["event"].as_str()).collect();
        assert_eq!(events, ["domain.verified"]);
        assert_eq!(app.call("DELETE", "/api/v1/domains/ready.example.com", Some(&token), None).await.0, 204);
        assert_eq!(app.call("GET", "/api/v1/domains/ready.example.com", Some(&token), None).await.0, 404);
    }
}

#[tokio::test]
async fn domains_are_listed_in_pages_and_filtered_by_status() {
    for app in apps().await {
        let token = app.account("Lists").await;
        for n in 0..7 {
            let body = json!({ "email": format!("a@d{n}.example.com") }).to_string();
            assert_eq!(app.call("POST", "/api/v1/domains", Some(&token), Some(&body)).await.0, 201);
        }
        app.dns.publish_customer(1, "d3.example.com");
        http::publish_hosted_keys(&app.dns, app.address, &token, "d3.example.com").await;
        app.call("POST", "/api/v1/domains/d3.example.com/verify", Some(&token), None).await;
        let (_, first) = app.call("GET", "/api/v1/domains?limit=5", Some(&token), None).await;
        assert_eq!(first["domains"].as_array().expect("page").len(), 5);
        let next = first["next"].as_str().expect("a next page");
        let (_, second) = app.call("GET", &format!("/api/v1/domains?limit=5&after={next}"), Some(&token), None).await;
        assert_eq!(second["domains"].as_array().expect("page").len(), 2);
        assert_eq!(second["next"], Value::Null);
        let (_, verified) = app.call("GET", "/api/v1/domains?status=verified", Some(&token), None).await;
        assert_eq!(verified["domains"][0]["domain"], "d3.example.com");
        assert_eq!(verified["domains"].as_array().expect("list").len(), 1);
        let (status, body) = app.call("GET", "/api/v1/domains?limit=0", Some(&token), None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_limit")));
        // One word per state: the others are not_verified, as the CLI and the UI say; the
        // earlier name still filters the same, an unknown one is refused.
        let (_, waiting) = app.call("GET", "/api/v1/domains?status=not_verified", Some(&token), None).await;
        let waiting = waiting["domains"].as_array().expect("list").clone();
        assert_eq!(waiting.len(), 6, "{waiting:?}");
        assert!(waiting.iter().all(|domain| domain["status"] == "not_verified"), "{waiting:?}");
        let (_, legacy) = app.call("GET", "/api/v1/domains?status=pending", Some(&token), None).await;
        assert_eq!(legacy["domains"].as_array().map(Vec::len), Some(6));
        let (status, body) = app.call("GET", "/api/v1/domains?status=waiting", Some(&token), None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_status")), "{body}");
    }
}

#[tokio::test]
async fn tokens_are_listed_created_once_and_revoked_per_owner() {
    for app in apps().await {
        let first = app.account("First").await;
        let second = app.account("Second").await;
        let (_, listed) = app.call("GET", "/api/v1/tokens", Some(&first), None).await;
        let tokens = listed["tokens"].as_array().expect("tokens");
        assert_eq!(tokens.len(), 1, "the token made with the account");
        assert!(tokens[0].get("token").is_none() && !listed.to_string().contains(&first), "secrets are never listed");
        let (status, created) = app.call("POST", "/api/v1/tokens", Some(&first), Some(r#"{"label": "ci"}"#)).await;
        assert_eq!(status, 201);
        let new_token = created["token"].as_str().expect("shown once").to_string();
        assert_eq!(app.call("GET", "/api/v1/domains", Some(&new_token), None).await.0, 200, "the new token works");
        let id = created["id"].as_i64().expect("id");
        let (status, _) = app.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(&second), None).await;
        assert_eq!(status, 404, "another account cannot revoke it");
        assert_eq!(app.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(&first), None).await.0, 204);
        assert_eq!(
            app.call("GET", "/api/v1/domains", Some(&new_token), None).await.0,
            401,
            "a revoked token is refused"
        );
        let (_, admin_tokens) = app.call("GET", "/api/v1/tokens", Some(&app.admin), None).await;
        assert_eq!(admin_tokens["tokens"].as_array().expect("tokens").len(), 1, "admins see the admin tokens");
    }
}

#[tokio::test]
async fn reserved_domains_are_managed_by_admins_and_refused_to_accounts() {
    for app in apps().await {
        let account = app.account("Shop").await;
        let body = r#"{"domain": "www.example.com", "reason": "website hosting"}"#;
        assert_eq!(app.call("POST", "/api/v1/reserved-domains", Some(&account), Some(body)).await.0, 403);
        assert_eq!(app.call("POST", "/api/v1/reserved-domains", Some(&app.admin), Some(body)).await.0, 201);
        let (_, listed) = app.call("GET", "/api/v1/reserved-domains", Some(&app.admin), None).await;
        assert_eq!(listed["reserved_domains"][0]["reason"], "website hosting");
        let (status, refused) =
            app.call("POST", "/api/v1/domains", Some(&account), Some(r#"{"email": "a@www.example.com"}"#)).await;
        assert_eq!((status, refused["code"].as_str()), (422, Some("domain_reserved")));
        assert_eq!(app.call("DELETE", "/api/v1/reserved-domains/www.example.com", Some(&app.admin), None).await.0, 204);
        let (status, _) =
            app.call("POST", "/api/v1/domains", Some(&account), Some(r#"{"email": "a@www.example.com"}"#)).await;
        assert_eq!(status, 201);
    }
}

#[tokio::test]
async fn records_come_as_json_or_as_a_zone_file() {
    for app in apps().await {
        let token = app.account("Zones").await;
        let other = app.account("Other").await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@mail.zone.example.com"}"#)).await;
        let (status, json) = app.call("GET", "/api/v1/domains/mail.zone.example.com/records", Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(json["records"][1]["host"], "sa2-1._domainkey.mail.zone");
        let path = "/api/v1/domains/mail.zone.example.com/records?format=zone";
        let (status, zone) = http::call_text(app.address, "GET", path, Some(&token), None).await;
        assert_eq!(status, 200);
        let dkim =
            "sa1-1._domainkey.mail.zone.example.com.\t3600\tIN\tCNAME\tsa1-1.mail-zone-example-com.dkim.esp.example.";
        assert!(zone.contains(dkim), "{zone}");
        let dmarc =
            "_dmarc.mail.zone.example.com.\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example;\"";
        assert!(zone.contains(dmarc), "{zone}");
        let (status, body) =
            app.call("GET", "/api/v1/domains/mail.zone.example.com/records?format=xml", Some(&token), None).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_format")));
        assert_eq!(app.call("GET", "/api/v1/domains/mail.zone.example.com/records", Some(&other), None).await.0, 404);
    }
}

#[tokio::test]
async fn metrics_count_checks_domains_per_status_and_queue_lag() {
    for app in apps().await {
        let token = app.account("Metrics").await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@measured.example.com"}"#)).await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@waiting.example.com"}"#)).await;
        app.dns.publish_customer(1, "measured.example.com");
        http::publish_hosted_keys(&app.dns, app.address, &token, "measured.example.com").await;
        app.call("POST", "/api/v1/domains/measured.example.com/verify", Some(&token), None).await;
        app.clock.fetch_add(90, Ordering::Relaxed);
        let (status, text) = http::call_text(app.address, "GET", "/metrics", None, None).await;
        assert_eq!(status, 200);
        for line in [
            "senderauth_checks_total{outcome=\"verified\"} 1",
            "senderauth_check_duration_seconds_count 1",
            "senderauth_domains{status=\"verified\"} 1",
            "senderauth_domains{status=\"not_verified\"} 1",
            "senderauth_queue_lag_seconds 90",
        ] {
            assert!(text.lines().any(|candidate| candidate == line), "missing {line:?} in:\n{text}");
        }
    }
}

#[tokio::test]
async fn every_operation_in_the_openapi_document_exists() {
    let app = spawn_app(&database::sqlite().url).await;
    let (status, document) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12, "{} paths", paths.len());
    for (path, operations) in paths {
        let concrete = path.replace("{domain}", "example.com").replace("{id}", "1");
        for (method, operation) in operations.as_object().expect("operations") {
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has responses");
            let (status, _) = app.call(&method.to_uppercase(), &concrete, None, Some("{}")).await;
            assert!(status != 404 && status != 405, "{method} {path} is documented but answers {status}");
            let public = operation.get("security").is_some_and(|security| security == &json!([]));
            assert_eq!(status == 401, !public, "{method} {path}: documented security matches the server ({status})");
        }
    }
}

#[tokio::test]
async fn a_domain_shows_what_dns_holds_next_to_each_required_record() {
    for app in apps().await {
        let token = app.account("Detail").await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@shown.example.com"}"#)).await;
        let (_, before) = app.call("GET", "/api/v1/domains/shown.example.com", Some(&token), None).await;
        assert!(before["records"][0].get("status").is_none(), "nothing to show before the first check");
        app.dns.publish_customer(1, "shown.example.com");
        http::publish_hosted_keys(&app.dns, app.address, &token, "shown.example.com").await;
        // One selector points elsewhere.
        app.dns.remove("sa2-1._domainkey.shown.example.com", "CNAME");
        app.dns.add("sa2-1._domainkey.shown.example.com", "CNAME", "s2.other-esp.example.net");
        app.call("POST", "/api/v1/domains/shown.example.com/verify", Some(&token), None).await;
        let (_, detail) = app.call("GET", "/api/v1/domains/shown.example.com", Some(&token), None).await;
        let records = detail["records"].as_array().expect("records");
        assert_eq!(
            (records[0]["status"].as_str(), records[0]["found"].as_str()),
            (Some("verified"), Some("sa1-1.shown-example-com.dkim.esp.example"))
        );
        assert_eq!(
            (records[1]["status"].as_str(), records[1]["found"].as_str()),
            (Some("not_verified"), Some("s2.other-esp.example.net"))
        );
        assert_eq!(records[1]["value"], "sa2-1.shown-example-com.dkim.esp.example", "next to the required value");
        assert_eq!(
            (records[2]["status"].as_str(), records[2]["found"].as_str()),
            (Some("verified"), Some("v=spf1 include:1.spf.esp.example -all"))
        );
        assert_eq!(
            (records[3]["status"].as_str(), records[3]["found"].as_str()),
            (Some("verified"), Some("v=DMARC1; p=none"))
        );
        assert_eq!(detail["status"], "not_verified", "DKIM is not verified, so not even partially verified");
    }
}

#[tokio::test]
async fn accounts_get_the_configured_default_domain_limit() {
    let app = spawn_app_with(&database::sqlite().url, Some(2)).await;
    let (status, account) =
        app.call("POST", "/api/v1/accounts", Some(&app.admin), Some(r#"{"name": "Limited"}"#)).await;
    assert_eq!((status, account["domain_limit"].as_i64()), (201, Some(2)));
    let token = account["token"].as_str().expect("token");
    for n in 0..2 {
        let body = format!(r#"{{"email": "a@l{n}.example.com"}}"#);
        assert_eq!(app.call("POST", "/api/v1/domains", Some(token), Some(&body)).await.0, 201);
    }
    let (status, refused) =
        app.call("POST", "/api/v1/domains", Some(token), Some(r#"{"email": "a@l2.example.com"}"#)).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("domain_limit_reached")));
    let (_, own) =
        app.call("POST", "/api/v1/accounts", Some(&app.admin), Some(r#"{"name": "Big", "domain_limit": 100}"#)).await;
    assert_eq!(own["domain_limit"].as_i64(), Some(100), "an explicit limit wins");
}

/// The default RSA-2048 keys, in a master key held in memory.
fn test_keys() -> KeyMaker {
    KeyMaker::in_memory(KeyAlgorithm::Rsa2048).expect("a key maker")
}

#[tokio::test]
async fn keys_rotate_through_the_two_selectors_on_demand_and_on_schedule() {
    let policy = RotationPolicy::default();
    for app in apps().await {
        let token = app.account("Rotating").await;
        let body = r#"{"email": "a@rotate.example.com", "dkim_algorithm": "rsa-2048"}"#;
        let (status, _) = app.call("POST", "/api/v1/domains", Some(&token), Some(body)).await;
        assert_eq!(status, 201);
        let keys = |body: &Value| -> Vec<(String, String)> {
            body["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|key| {
                    (
                        key["selector"].as_str().unwrap_or("").to_string(),
                        key["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        };
        let states = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(selector, state)| (selector.to_string(), state.to_string())).collect()
        };
        let path = "/api/v1/domains/rotate.example.com/dkim";
        let (_, before) = app.call("GET", path, Some(&token), None).await;
        let selectors: Vec<String> = keys(&before).into_iter().map(|(selector, _)| selector).collect();
        let (first, second) = (selectors[0].as_str(), selectors[1].as_str());
        assert_eq!(keys(&before), states(&[(first, "active"), (second, "standby")]));
        let t0 = app.clock.load(Ordering::Relaxed);

        // On demand: the idle selector gets a new key, published at once, not signing yet.
        let (status, rotating) = app.call("POST", &format!("{path}/rotate"), Some(&token), None).await;
        assert_eq!(status, 202, "{rotating}");
        assert_eq!(keys(&rotating), states(&[(first, "active"), (second, "pending")]));
        let pending = &rotating["keys"][1];
        assert_ne!(pending["public_key"], before["keys"][1]["public_key"], "a new key");
        assert_eq!(pending["activates_at"].as_i64(), Some(t0 + policy.activation_delay));
        let zone = Zone::new(zone_settings(), &app.store.zone_contents().await.expect("zone"));
        let published_at = pending["published_at"].as_str().expect("name");
        assert_eq!(zone.texts(published_at), [pending["record"].as_str().expect("record")]);
        let (status, busy) = app.call("POST", &format!("{path}/rotate"), Some(&token), None).await;
        assert_eq!((status, busy["code"].as_str()), (409, Some("rotation_in_progress")), "{busy}");

        // It signs once published for the TTL plus the margin; the old key retires.
        let pass = rotation::run_once(&app.store, &app.keys, &policy, t0 + policy.activation_delay - 1, 100)
            .await
            .expect("pass");
        assert_eq!(pass.activated, 0, "not before its time");
        let pass =
            rotation::run_once(&app.store, &app.keys, &policy, t0 + policy.activation_delay, 100).await.expect("pass");
        assert_eq!(pass.activated, 1);
        let (_, switched) = app.call("GET", path, Some(&token), None).await;
        assert_eq!(keys(&switched), states(&[(first, "retired"), (second, "active")]));
        assert_eq!(switched["keys"][1]["signing"], true);
        let retired_at = t0 + policy.activation_delay;
        assert_eq!(switched["keys"][0]["revokes_at"].as_i64(), Some(retired_at + policy.grace));
        let (status, _) = app.call("POST", &format!("{path}/rotate"), Some(&token), None).await;
        assert_eq!(status, 409, "not while the old key is still published for mail in transit");

        // After the grace period the old key is revoked: published with an empty p=.
        let pass =
            rotation::run_once(&app.store, &app.keys, &policy, retired_at + policy.grace, 100).await.expect("pass");
        assert_eq!(pass.revoked, 1);
        let (_, revoked) = app.call("GET", path, Some(&token), None).await;
        assert_eq!(keys(&revoked), states(&[(first, "revoked"), (second, "active")]));
        assert_eq!(revoked["keys"][0]["safe_to_remove"], true);
        let zone = Zone::new(zone_settings(), &app.store.zone_contents().await.expect("zone"));
        assert_eq!(zone.texts(revoked["keys"][0]["published_at"].as_str().expect("name")), ["v=DKIM1; k=rsa; p="]);

        // On schedule: once the active key has signed for the whole interval, the revoked
        // selector gets the next key by itself.
        let pass = rotation::run_once(&app.store, &app.keys, &policy, retired_at + policy.interval - 1, 100)
            .await
            .expect("pass");
        assert_eq!(pass.started, 0);
        let pass =
            rotation::run_once(&app.store, &app.keys, &policy, retired_at + policy.interval, 100).await.expect("pass");
        assert_eq!(pass.started, 1);
        let (_, scheduled) = app.call("GET", path, Some(&token), None).await;
        assert_eq!(keys(&scheduled), states(&[(first, "pending"), (second, "active")]));

        // Another account cannot see or rotate these keys.
        let other = app.account("Other").await;
        assert_eq!(app.call("GET", path, Some(&other), None).await.0, 404);
        assert_eq!(app.call("POST", &format!("{path}/rotate"), Some(&other), None).await.0, 404);
    }
}

/// The zone as the default configuration publishes it.
fn zone_settings() -> ZoneSettings {
    let (provider, service) = (ProviderConfig::default(), ServiceConfig::default());
    let spf = sending_addresses_record(&provider.sending_ips);
    ZoneSettings {
        apexes: vec![provider.zone.clone()],
        nameservers: vec![format!("ns1.{}", provider.zone)],
        hostmaster: format!("hostmaster.{}", provider.zone),
        ttl: service.dns.ttl,
        negative_ttl: service.dns.ttl.min(300),
        spf_include_record: spf.clone(),
        variable_domain: provider.variable_domain.clone(),
        variable_spf: spf,
        variable_dmarc: service.dns.variable_domain_dmarc,
        bounce_domain: format!("bounces.{}", provider.zone),
        return_path_spf: "v=spf1 ip4:192.0.2.0/24 -all".to_string(),
        bounce_hosts: vec!["mx.bounces.esp.example".to_string()],
        sandbox: false,
    }
}

#[tokio::test]
async fn a_domain_with_ed25519_keys_has_four_records_and_rotates_each_pair_on_its_own() {
    let policy = RotationPolicy::default();
    for app in apps().await {
        let token = app.account("Dual").await;
        let body = r#"{"email": "a@dual.example.com", "dkim_algorithm": "ed25519"}"#;
        let (status, connected) = app.call("POST", "/api/v1/domains", Some(&token), Some(body)).await;
        assert_eq!(status, 201, "{connected}");
        let cnames = |body: &Value| -> Vec<String> {
            body["records"]
                .as_array()
                .expect("records")
                .iter()
                .filter(|record| record["method"] == "dkim")
                .map(|record| record["fqdn"].as_str().unwrap_or("").to_string())
                .collect()
        };
        let four = cnames(&connected);
        assert_eq!(four.len(), 4, "two CNAMEs for the RSA keys and two for the Ed25519 ones: {four:?}");
        assert!(four[2].starts_with("se1-") && four[3].starts_with("se2-"), "{four:?}");
        let (_, detail) = app.call("GET", "/api/v1/domains/dual.example.com", Some(&token), None).await;
        assert_eq!(cnames(&detail), four, "the domain page lists the same four");

        let path = "/api/v1/domains/dual.example.com/dkim";
        let summary = |body: &Value| -> Vec<(String, String, String)> {
            body["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|key| {
                    let text = |name: &str| key[name].as_str().unwrap_or("").to_string();
                    (text("selector")[..3].to_string(), text("algorithm"), text("state"))
                })
                .collect()
        };
        let expect = |rows: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
            rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
        };
        let (_, before) = app.call("GET", path, Some(&token), None).await;
        assert_eq!(
            summary(&before),
            expect(&[
                ("sa1", "rsa-2048", "active"),
                ("sa2", "rsa-2048", "standby"),
                ("se1", "ed25519", "active"),
                ("se2", "ed25519", "standby"),
            ])
        );

        // Rotating the Ed25519 pair leaves the RSA pair alone, and its new key retires only
        // the Ed25519 key that signed before.
        let t0 = app.clock.load(Ordering::Relaxed);
        let (status, rotating) =
            app.call("POST", &format!("{path}/rotate"), Some(&token), Some(r#"{"dkim_algorithm": "ed25519"}"#)).await;
        assert_eq!(status, 202, "{rotating}");
        assert_eq!(summary(&rotating)[3], ("se2".to_string(), "ed25519".to_string(), "pending".to_string()));
        assert_eq!(summary(&rotating)[..2], summary(&before)[..2]);
        rotation::run_once(&app.store, &app.keys, &policy, t0 + policy.activation_delay, 100).await.expect("pass");
        let (_, switched) = app.call("GET", path, Some(&token), None).await;
        assert_eq!(
            summary(&switched),
            expect(&[
                ("sa1", "rsa-2048", "active"),
                ("sa2", "rsa-2048", "standby"),
                ("se1", "ed25519", "retired"),
                ("se2", "ed25519", "active"),
            ])
        );
        // One rotation at a time per domain.
        let (status, busy) = app.call("POST", &format!("{path}/rotate"), Some(&token), None).await;
        assert_eq!((status, busy["code"].as_str()), (409, Some("rotation_in_progress")), "{busy}");

        // A domain without Ed25519 keys does not get them by rotation.
        let (status, _) = app
            .call(
                "POST",
                "/api/v1/domains",
                Some(&token),
                Some(r#"{"email": "a@single.example.com", "dkim_algorithm": "rsa-2048"}"#),
            )
            .await;
        assert_eq!(status, 201);
        let (status, refused) = app
            .call(
                "POST",
                "/api/v1/domains/single.example.com/dkim/rotate",
                Some(&token),
                Some(r#"{"dkim_algorithm": "ed25519"}"#),
            )
            .await;
        assert_eq!((status, refused["code"].as_str()), (422, Some("no_ed25519_keys")), "{refused}");
        assert!(refused["message"].as_str().unwrap_or("").contains("alongside RSA"), "{refused}");
    }
}

#[tokio::test]
async fn the_variable_domains_own_keys_rotate_like_a_domains() {
    let policy = RotationPolicy::default();
    for app in apps().await {
        let t0 = app.clock.load(Ordering::Relaxed);
        let selectors = ["sa1".to_string(), "sa2".to_string()];
        let keys = ensure_variable_domain_keys(&app.store, &app.keys, "send.esp.example", &selectors, t0)
            .await
            .expect("the variable domain's keys");
        let states = |keys: &[KeyInfo]| keys.iter().map(|key| (key.selector.clone(), key.state)).collect::<Vec<_>>();
        let expect = |pairs: &[(&str, KeyState)]| pairs.iter().map(|(s, k)| (s.to_string(), *k)).collect::<Vec<_>>();
        assert_eq!(states(&keys), expect(&[("sa1", KeyState::Active), ("sa2", KeyState::Standby)]));
        // A second start makes nothing new.
        let again = ensure_variable_domain_keys(&app.store, &app.keys, "send.esp.example", &selectors, t0 + 5)
            .await
            .expect("again");
        assert_eq!(again, keys);

        let rotated_at = t0 + policy.interval;
        let pass = rotation::run_once(&app.store, &app.keys, &policy, rotated_at, 100).await.expect("pass");
        assert_eq!(pass.started, 1);
        let keys = app.store.platform_keys().await.expect("keys");
        assert_eq!(states(&keys), expect(&[("sa1", KeyState::Active), ("sa2", KeyState::Pending)]));
        let pass = rotation::run_once(&app.store, &app.keys, &policy, rotated_at + policy.activation_delay, 100)
            .await
            .expect("pass");
        assert_eq!(pass.activated, 1);
        let keys = app.store.platform_keys().await.expect("keys");
        assert_eq!(states(&keys), expect(&[("sa1", KeyState::Retired), ("sa2", KeyState::Active)]));
        let revoke_at = rotated_at + policy.activation_delay + policy.grace;
        assert_eq!(rotation::run_once(&app.store, &app.keys, &policy, revoke_at, 100).await.expect("pass").revoked, 1);
        let zone = Zone::new(zone_settings(), &app.store.zone_contents().await.expect("zone"));
        // RSA: rewritten mail must verify everywhere.
        assert_eq!(zone.texts("sa1._domainkey.send.esp.example"), ["v=DKIM1; k=rsa; p="]);
        let signing = zone.texts("sa2._domainkey.send.esp.example");
        assert!(signing[0].starts_with("v=DKIM1; k=rsa; p=") && signing[0].len() > 300, "{signing:?}");
    }
}

#[tokio::test]
async fn the_web_ui_signs_in_connects_verifies_and_refuses_forms_without_their_token() {
    use senderauth_testkit::http::{FormClient, input_value};
    for app in apps().await {
        let token = app.account("Browser").await;
        let mut browser = FormClient::default();
        // Not signed in: sent to the sign-in page.
        let page = browser.get(app.address, "/ui/domains").await;
        assert_eq!((page.status, page.location.as_deref()), (303, Some("/ui/sign-in")));
        let page = browser.get(app.address, "/ui/sign-in").await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("https://") && !page.body.contains("http://"), "nothing from elsewhere");
        let csrf = input_value(&page.body, "csrf").expect("the sign-in form's token");
        // A wrong token is refused with a reason; an admin token too.
        let refused = browser.post(app.address, "/ui/sign-in", &[("csrf", &csrf), ("token", "sa_wrong")]).await;
        assert_eq!(refused.status, 401);
        assert!(refused.body.contains("not valid"), "{}", refused.body);
        let refused = browser.post(app.address, "/ui/sign-in", &[("csrf", &csrf), ("token", &app.admin)]).await;
        assert_eq!(refused.status, 401);
        // Without the form's token, not even a right account token signs in.
        let forged = browser.post(app.address, "/ui/sign-in", &[("csrf", "forged"), ("token", &token)]).await;
        assert_eq!(forged.status, 403);
        let signed_in = browser.post(app.address, "/ui/sign-in", &[("csrf", &csrf), ("token", &token)]).await;
        assert_eq!((signed_in.status, signed_in.location.as_deref()), (303, Some("/ui/domains")));
        assert!(browser.cookie("senderauth_session").is_some_and(|session| !session.contains(&token)));

        let list = browser.get(app.address, "/ui/domains").await;
        assert_eq!(list.status, 200, "{}", list.body);
        let csrf = input_value(&list.body, "csrf").expect("the session's form token");
        // A refused domain says why, inline, and keeps what was typed.
        let refused = browser.post(app.address, "/ui/domains", &[("csrf", &csrf), ("email", "someone@co.uk")]).await;
        assert_eq!(refused.status, 422);
        assert!(refused.body.contains("role=\"alert\"") && refused.body.contains("someone@co.uk"), "{}", refused.body);
        // A form without the session's token is refused and changes nothing.
        let forged =
            browser.post(app.address, "/ui/domains", &[("csrf", "forged"), ("email", "a@forged.example.com")]).await;
        assert_eq!(forged.status, 403);
        let connected =
            browser.post(app.address, "/ui/domains", &[("csrf", &csrf), ("email", "news@ui.example.com")]).await;
        assert_eq!((connected.status, connected.location.as_deref()), (303, Some("/ui/domains/ui.example.com")));
        assert!(!browser.get(app.address, "/ui/domains").await.body.contains("forged.example.com"));

        // The setup page: each record with its Copy button holding the exact value.
        let setup = browser.get(app.address, "/ui/domains/ui.example.com").await;
        assert_eq!(setup.status, 200);
        let (_, records) = app.call("GET", "/api/v1/domains/ui.example.com/records", Some(&token), None).await;
        for record in records["records"].as_array().expect("records") {
            let value = record["value"].as_str().expect("value");
            assert!(setup.body.contains(&format!("data-copy=\"{value}\"")), "no copy button for {value}");
        }
        // A customer with an SPF record already: the page proposes it merged with the include.
        app.dns.add("ui.example.com", "TXT", "v=spf1 ip4:198.51.100.9 ~all");
        let setup = browser.get(app.address, "/ui/domains/ui.example.com").await;
        assert!(
            setup.body.contains("data-copy=\"v=spf1 ip4:198.51.100.9 include:1.spf.esp.example ~all\""),
            "{}",
            setup.body
        );
        assert!(!setup.body.contains("Your DNS is at"), "no hint without a known DNS host");
        let notes = |records: &Value| {
            records["records"].as_array().expect("records").iter().map(|r| r["notes"].to_string()).collect::<Vec<_>>()
        };
        let (_, records) = app.call("GET", "/api/v1/domains/ui.example.com/records", Some(&token), None).await;
        assert!(
            notes(&records).iter().all(|note| !note.contains("Cloudflare")),
            "no Cloudflare note elsewhere: {records}"
        );
        // A domain whose zone is served by Cloudflare gets Cloudflare's advice.
        app.dns.add("example.com", "NS", "ada.ns.cloudflare.com");
        let setup = browser.get(app.address, "/ui/domains/ui.example.com").await;
        assert!(
            setup.body.contains("Your DNS is at Cloudflare") && setup.body.contains("grey cloud"),
            "{}",
            setup.body
        );
        let (_, records) = app.call("GET", "/api/v1/domains/ui.example.com/records", Some(&token), None).await;
        let with_note = notes(&records).iter().filter(|note| note.contains("Cloudflare")).count();
        assert_eq!(with_note, 3, "the two DKIM rows and the return-path's: {records}");
        app.dns.remove("ui.example.com", "TXT");
        app.dns.publish_customer(1, "ui.example.com");
        http::publish_hosted_keys(&app.dns, app.address, &token, "ui.example.com").await;
        let verified = browser.post(app.address, "/ui/domains/ui.example.com/verify", &[("csrf", &csrf)]).await;
        assert_eq!(verified.status, 303);
        let setup = browser.get(app.address, verified.location.as_deref().expect("back to the page")).await;
        assert!(setup.body.contains("Checked just now") && setup.body.contains(">Verified<"), "{}", setup.body);

        // An internationalized domain, typed either way: shown as people read it, with its name
        // in DNS in small print.
        let (status, _) =
            app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@bücher.example.com"}"#)).await;
        assert_eq!(status, 201);
        let page = browser.get(app.address, "/ui/domains/xn--bcher-kva.example.com").await;
        assert!(page.body.contains("<h1>bücher.<wbr>example.<wbr>com<wbr> <small class=\"a-label\""), "{}", page.body);
        assert!(page.body.contains("xn--bcher-kva.<wbr>"), "{}", page.body);
        let list = browser.get(app.address, "/ui/domains").await;
        assert!(
            list.body.contains(">bücher.<wbr>example.<wbr>com<wbr></a> <small class=\"a-label\">"),
            "{}",
            list.body
        );
        let (status, _) = app
            .call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "a@xn--bcher-kva.example.com"}"#))
            .await;
        assert_eq!(status, 409, "the A-label is the same domain");

        // Another account's domain is not reachable by URL.
        let other = app.account("Someone else").await;
        app.call("POST", "/api/v1/domains", Some(&other), Some(r#"{"email": "a@theirs.example.com"}"#)).await;
        assert_eq!(browser.get(app.address, "/ui/domains/theirs.example.com").await.status, 404);

        // Removing asks for confirmation; signing out ends the session.
        let unconfirmed = browser.post(app.address, "/ui/domains/ui.example.com/delete", &[("csrf", &csrf)]).await;
        assert!(unconfirmed.location.as_deref().is_some_and(|to| to.ends_with("notice=confirm")));
        let removed = browser
            .post(app.address, "/ui/domains/ui.example.com/delete", &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(removed.location.as_deref(), Some("/ui/domains?notice=deleted"));
        let session = browser.cookie("senderauth_session").expect("session").to_string();
        let out = browser.post(app.address, "/ui/sign-out", &[("csrf", &csrf)]).await;
        assert_eq!(out.location.as_deref(), Some("/ui/sign-in"));
        let mut replay = FormClient::default();
        replay.set_cookie("senderauth_session", &session);
        let replayed = replay.get(app.address, "/ui/domains").await;
        assert_eq!(replayed.location.as_deref(), Some("/ui/sign-in"), "a signed-out session is gone");
    }
}

/// The status and `Location` of a plain GET, as a browser would send it (no redirect followed).
async fn redirect_of(address: SocketAddr, path: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response);
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let location = response
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("location")))
        .map(|(_, value)| value.trim().to_string());
    (status, location)
}

#[tokio::test]
async fn the_address_serve_prints_leads_to_the_ui() {
    let app = spawn_app(&database::sqlite().url).await;
    // `serve` prints http://127.0.0.1:8080: opening it, or /ui/, shows the UI (via its sign-in).
    for path in ["/", "/ui", "/ui/"] {
        assert_eq!(redirect_of(app.address, path).await, (303, Some("/ui/domains".to_string())), "{path}");
    }
    assert_eq!(redirect_of(app.address, "/ui/domains").await, (303, Some("/ui/sign-in".to_string())));
    assert_eq!(redirect_of(app.address, "/no-such-page").await.0, 404);
}

/// The paths in a router's `Debug` output (axum lists each route's path there).
fn router_paths(debug: &str) -> Vec<String> {
    let mut paths: Vec<String> = debug
        .split("RouteId(")
        .skip(1)
        .filter_map(|rest| rest.split_once("): \"").and_then(|(_, rest)| rest.split_once('"')))
        .map(|(path, _)| path.to_string())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_openapi_document_with_its_methods() {
    let app = spawn_app(&database::sqlite().url).await;
    let (_, document) = app.call("GET", "/api/v1/openapi.json", None, None).await;
    let documented = document["paths"].as_object().expect("paths");
    // The web UI's pages (and the shared setup pages) are HTML for people, not the API; axum
    // adds a fallback of its own.
    let api: Vec<&String> = app
        .routes
        .iter()
        .filter(|path| {
            *path != "/"
                && *path != "/ui"
                && !path.starts_with("/ui/")
                && !path.starts_with("/share/")
                && !path.contains("__private__")
        })
        .collect();
    assert!(api.len() >= 19, "the router's Debug output lists its paths: {:?}", app.routes);
    for path in api {
        let operations = documented.get(path.as_str()).unwrap_or_else(|| panic!("{path} is not in the document"));
        // A method the document does not name is one the server does not route.
        let concrete = path.replace("{domain}", "example.com").replace("{id}", "1");
        for method in ["get", "post", "put", "patch", "delete"] {
            if operations.get(method).is_none() {
                let (status, _) = app.call(&method.to_uppercase(), &concrete, None, Some("{}")).await;
                assert_eq!(status, 405, "{method} {path} answers {status} but is not documented");
            }
        }
    }
}
