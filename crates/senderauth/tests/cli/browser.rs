//! The web UI in a real browser: headless Chromium driven by chromedriver (Debian's `chromium`
//! and `chromium-driver`) against `senderauth serve`. Screenshots of each page are saved under
//! target/ui-screenshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use senderauth_testkit::http::call;
use senderauth_testkit::require_or_skip;
use senderauth_testkit::webdriver::{self, Browser};

use super::{start_service_full, stop_service, tempdir, zones};

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    target.join("ui-screenshots")
}

/// Waits until the browser's address ends with `suffix`.
async fn wait_for_url(browser: &Browser, suffix: &str) -> String {
    let started = Instant::now();
    loop {
        let url = browser.url().await;
        if url.ends_with(suffix) {
            return url;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still at {url}, expected …{suffix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_customer_signs_in_connects_a_domain_and_copies_its_records_in_a_browser() {
    if !require_or_skip(webdriver::available(), "chromium and chromium-driver (Debian)") {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    let (child, http, _) = start_service_full(&data_dir, &server, &[], &[]).await;
    let admin = std::fs::read_to_string(data_dir.join("admin-token")).expect("admin token").trim().to_string();
    let (_, account) = call(http, "POST", "/api/v1/accounts", Some(&admin), Some(r#"{"name": "Shop"}"#)).await;
    let token = account["token"].as_str().expect("token").to_string();
    let (_, other) = call(http, "POST", "/api/v1/accounts", Some(&admin), Some(r#"{"name": "Other"}"#)).await;
    let other = other["token"].as_str().expect("token").to_string();
    call(http, "POST", "/api/v1/domains", Some(&other), Some(r#"{"email": "a@theirs.example.com"}"#)).await;
    let shots = screenshots();
    let base = format!("http://{http}");

    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{base}/ui/domains")).await;
    wait_for_url(&browser, "/ui/sign-in").await;
    browser.screenshot(&shots.join("sign-in.png")).await;
    browser.type_into("#token", &token).await;
    browser.click("form button[type=submit]").await;
    wait_for_url(&browser, "/ui/domains").await;
    browser.screenshot(&shots.join("domains-empty.png")).await;

    // A refused domain: the reason next to the form.
    browser.type_into("#email", "someone@co.uk").await;
    browser.click("form[action='/ui/domains'] button[type=submit]").await;
    // (The form names #connect-error in aria-describedby before any refusal: wait for the element.)
    let refusal = browser.wait_for("p#connect-error", Duration::from_secs(5)).await;
    assert!(refusal.contains("public suffix"), "the reason is shown: {refusal}");
    browser.screenshot(&shots.join("connect-refused.png")).await;

    // Connected: the setup page, whose Copy buttons put the exact values on the clipboard.
    browser.type_into("#email", "news@shop.example.com").await;
    browser.click("form[action='/ui/domains'] button[type=submit]").await;
    wait_for_url(&browser, "/ui/domains/shop.example.com").await;
    browser.screenshot(&shots.join("setup.png")).await;
    browser.grant_clipboard().await;
    let (_, records) = call(http, "GET", "/api/v1/domains/shop.example.com/records", Some(&token), None).await;
    let dkim_value = records["records"][0]["value"].as_str().expect("the first DKIM CNAME's value").to_string();
    let selector = "#dkim-title + table button.copy[aria-label='Copy the DKIM value']";
    assert_eq!(browser.attribute(selector, "data-copy").await.as_deref(), Some(dkim_value.as_str()));
    browser.click(selector).await;
    let started = Instant::now();
    loop {
        let copied = browser.clipboard().await;
        if copied == dkim_value {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the clipboard holds {copied:?}, not {dkim_value:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another account's domain is not reachable by its URL.
    browser.goto(&format!("{base}/ui/domains/theirs.example.com")).await;
    assert!(browser.source().await.contains("Not found"));

    // At 375 px wide the list still works (its screenshot, for a look).
    browser.resize(375, 800).await;
    browser.goto(&format!("{base}/ui/domains")).await;
    assert!(browser.source().await.contains("shop.example.com"));
    browser.screenshot(&shots.join("domains-375px.png")).await;

    drop(browser);
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}
