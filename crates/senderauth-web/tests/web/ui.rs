//! The web UI's shared links, live state and white label, over HTTP against the real router
//! (the browser walk in the CLI's tests clicks through the same pages).

use std::sync::atomic::Ordering;

use senderauth_core::config::ProviderConfig;
use senderauth_service::config::UiConfig;
use senderauth_testkit::database;
use senderauth_testkit::http::{self, FormClient, input_value};
use senderauth_web::ui::Brand;

use super::api::{App, apps, spawn_app_branded};

/// Signs `token` in to the UI; the client and the session's form token.
pub(crate) async fn signed_in(app: &App, token: &str) -> (FormClient, String) {
    let mut browser = FormClient::default();
    let page = browser.get(app.address, "/ui/sign-in").await;
    let csrf = input_value(&page.body, "csrf").expect("the sign-in form's token");
    let signed = browser.post(app.address, "/ui/sign-in", &[("csrf", &csrf), ("token", token)]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let list = browser.get(app.address, "/ui/domains").await;
    let csrf = input_value(&list.body, "csrf").expect("the session's form token");
    (browser, csrf)
}

/// The share link's path on the page that shows it once.
fn share_path(html: &str) -> String {
    let start = html.find("/share/").expect("a share link on the page");
    html[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect()
}

#[tokio::test]
async fn a_shared_link_shows_the_records_without_signing_in_until_it_expires_or_is_revoked() {
    for app in apps().await {
        let token = app.account("Shop").await;
        let (_, connected) =
            app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@shared.example.com"}"#)).await;
        let dkim = connected["records"][0]["value"].as_str().expect("a DKIM value").to_string();
        let (mut browser, csrf) = signed_in(&app, &token).await;

        // Out of range: refused, no link made.
        let refused =
            browser.post(app.address, "/ui/domains/shared.example.com/share", &[("csrf", &csrf), ("days", "90")]).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains("1 to 30 days"), "{}", refused.body);
        let made =
            browser.post(app.address, "/ui/domains/shared.example.com/share", &[("csrf", &csrf), ("days", "1")]).await;
        assert_eq!(made.status, 200, "{}", made.body);
        let path = share_path(&made.body);
        assert!(!path.contains(&token) && path.len() > 64, "the link holds its own secret: {path}");

        // Anyone with the link: the records and the live state, nothing of the account.
        let (status, page) = http::call_text(app.address, "GET", &path, None, None).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(&dkim) && page.contains("Waiting for your records"), "{page}");
        assert!(!page.contains("Sign out") && !page.contains("/verify") && !page.contains("csrf"), "read-only: {page}");
        let (status, state) = app.call("GET", &format!("{path}/state"), None, None).await;
        assert_eq!((status, state["status"].as_str()), (200, Some("not_verified")), "{state}");

        // Another account cannot revoke it.
        let other = app.account("Other").await;
        let (mut intruder, intruder_csrf) = signed_in(&app, &other).await;
        let setup = browser.get(app.address, "/ui/domains/shared.example.com").await;
        let revoke = setup.body.split("/share/").nth(1).and_then(|rest| rest.split('/').next()).expect("a link id");
        let action = format!("/ui/domains/shared.example.com/share/{revoke}/revoke");
        let denied = intruder.post(app.address, &action, &[("csrf", &intruder_csrf)]).await;
        assert_eq!(denied.status, 404, "{}", denied.body);
        assert_eq!(http::call_text(app.address, "GET", &path, None, None).await.0, 200, "still open");

        // Its owner revokes it: closed at once, with one answer for every closed link.
        let revoked = browser.post(app.address, &action, &[("csrf", &csrf)]).await;
        assert_eq!(revoked.status, 303, "{}", revoked.body);
        let (status, page) = http::call_text(app.address, "GET", &path, None, None).await;
        assert_eq!(status, 404);
        assert!(page.contains("expired or was revoked"), "{page}");
        assert_eq!(app.call("GET", &format!("{path}/state"), None, None).await.0, 404);
        assert_eq!(http::call_text(app.address, "GET", "/share/nonsense", None, None).await.0, 404);

        // A link expires after its days.
        let made =
            browser.post(app.address, "/ui/domains/shared.example.com/share", &[("csrf", &csrf), ("days", "1")]).await;
        let path = share_path(&made.body);
        assert_eq!(http::call_text(app.address, "GET", &path, None, None).await.0, 200);
        app.clock.fetch_add(86_400, Ordering::Relaxed);
        assert_eq!(http::call_text(app.address, "GET", &path, None, None).await.0, 404, "expired");

        // And a link goes with its domain (signed in again: the session has expired meanwhile).
        let (mut browser, csrf) = signed_in(&app, &token).await;
        let made =
            browser.post(app.address, "/ui/domains/shared.example.com/share", &[("csrf", &csrf), ("days", "7")]).await;
        let path = share_path(&made.body);
        assert_eq!(app.call("DELETE", "/api/v1/domains/shared.example.com", Some(&token), None).await.0, 204);
        assert_eq!(http::call_text(app.address, "GET", &path, None, None).await.0, 404, "gone with its domain");
    }
}

#[tokio::test]
async fn the_live_state_changes_when_a_check_finishes_and_only_for_the_owner() {
    for app in apps().await {
        let token = app.account("Live").await;
        app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@live.example.com"}"#)).await;
        let (mut browser, _) = signed_in(&app, &token).await;
        let state = |page: &http::Page| serde_json::from_str::<serde_json::Value>(&page.body).expect("JSON");
        let before = state(&browser.get(app.address, "/ui/domains/live.example.com/state").await);
        assert_eq!(before["methods"], "dkim:not_checked spf:not_checked dmarc:not_checked return_path:not_checked");
        app.clock.fetch_add(30, Ordering::Relaxed);
        assert_eq!(app.call("POST", "/api/v1/domains/live.example.com/verify", Some(&token), None).await.0, 200);
        let after = state(&browser.get(app.address, "/ui/domains/live.example.com/state").await);
        assert_ne!(before["stamp"], after["stamp"], "a finished check changes the stamp");
        assert_eq!(after["methods"], "dkim:not_verified spf:not_verified dmarc:not_verified return_path:not_verified");
        // The setup page carries the same stamp, which the script compares.
        let page = browser.get(app.address, "/ui/domains/live.example.com").await;
        assert!(page.body.contains(&format!("data-stamp=\"{}\"", after["stamp"].as_str().unwrap_or_default())));
        // Another account's domain is not found; no session is a sign-in.
        let other = app.account("Other").await;
        let (mut intruder, _) = signed_in(&app, &other).await;
        assert_eq!(intruder.get(app.address, "/ui/domains/live.example.com/state").await.status, 404);
        assert_eq!(FormClient::default().get(app.address, "/ui/domains/live.example.com/state").await.status, 303);
    }
}

#[tokio::test]
async fn the_operators_brand_replaces_senderauths_on_every_page() {
    let logo = std::env::temp_dir().join(format!("senderauth-logo-{}.svg", std::process::id()));
    std::fs::write(&logo, r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#).expect("logo");
    let config = UiConfig {
        product_name: Some("Acme Mail".to_string()),
        logo_file: Some(logo.clone()),
        accent: Some("#6a1b9a".to_string()),
        support_url: Some("mailto:help@acme.example".to_string()),
    };
    let brand = Brand::from_config(&config).expect("a valid brand");
    let app = spawn_app_branded(&database::sqlite().url, None, ProviderConfig::default(), brand).await;
    let token = app.account("Branded").await;
    app.call("POST", "/api/v1/domains", Some(&token), Some(r#"{"email": "news@brand.example.com"}"#)).await;
    let (mut browser, _) = signed_in(&app, &token).await;
    for path in ["/ui/sign-in", "/ui/domains", "/ui/domains/brand.example.com", "/ui/no-such-page"] {
        let page = browser.get(app.address, path).await;
        assert!(page.body.contains("· Acme Mail</title>"), "{path}: {}", page.body);
        assert!(page.body.contains("src=\"/ui/logo\"") && page.body.contains("href=\"/ui/theme.css\""), "{path}");
        assert!(page.body.contains("mailto:help@acme.example"), "{path}: the support link");
        assert!(!page.body.to_lowercase().contains("senderauth"), "{path}: our name shows nowhere: {}", page.body);
    }
    let theme = browser.get(app.address, "/ui/theme.css").await;
    assert!(theme.body.contains("--accent: #6a1b9a"), "{}", theme.body);
    assert!(browser.get(app.address, "/ui/logo").await.body.starts_with("<svg"));
    let _ = std::fs::remove_file(logo);
}
