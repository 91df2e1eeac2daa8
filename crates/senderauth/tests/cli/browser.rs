//! The web UI in a real browser: headless Chromium driven by chromedriver (Debian's `chromium`
//! and `chromium-driver`) against `senderauth serve`. Screenshots of each page are saved under
//! target/ui-screenshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use senderauth_testkit::http::call;
use senderauth_testkit::require_or_skip;
use senderauth_testkit::webdriver::{self, Browser};

use super::{admin_and_account, start_service_full, stop_service, tempdir, zones};

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
    let (admin, token) = admin_and_account(&data_dir, http, "Shop").await;
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

/// Text whose contrast with its background is under WCAG AA's 4.5:1, as "TAG text ratio"
/// (visible text only; colours as the browser computed them).
const LOW_CONTRAST: &str = r#"
const parse = (text) => { const m = text.match(/rgba?\(([^)]+)\)/); return m ? m[1].split(',').map(parseFloat) : null; };
const luminance = (rgb) => { const [r, g, b] = rgb.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const background = (element) => { for (let e = element; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && (c.length < 4 || c[3] > 0)) return c; } return [255, 255, 255]; };
const low = [];
for (const element of document.querySelectorAll('body *')) {
  if (![...element.childNodes].some((node) => node.nodeType === 3 && node.textContent.trim())) continue;
  const style = getComputedStyle(element);
  const box = element.getBoundingClientRect();
  if (style.visibility === 'hidden' || style.display === 'none' || box.width < 2 || box.height < 2) continue;
  const [fg, bg] = [luminance(parse(style.color)), luminance(background(element))];
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  if (ratio < 4.5) low.push(element.tagName + ' ' + element.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
}
return low;"#;

/// Form fields a screen reader cannot name: no label, no aria-label.
const UNLABELLED: &str = r#"
return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
  .map((field) => field.outerHTML.slice(0, 80));"#;

/// The innermost elements reaching past 375 px, for the message when a page is too wide.
const WIDER_THAN_SCREEN: &str = r#"
return [...document.querySelectorAll('body *')]
  .filter((element) => element.scrollWidth > 375 || element.getBoundingClientRect().right > 376)
  .filter((element) => ![...element.children].some((child) => child.scrollWidth > 375 || child.getBoundingClientRect().right > 376))
  .slice(0, 5)
  .map((element) => element.tagName + '.' + element.className + ': ' + (element.textContent || '').slice(0, 60));"#;

/// Checks the page as it stands: every field labelled, readable contrast everywhere, and at
/// 375 px wide nothing wider than the screen (tables scroll inside themselves, or turn into
/// cards). Saves its screenshot as `name`.
async fn check_page(browser: &Browser, name: &str) {
    assert_eq!(browser.script(UNLABELLED).await, serde_json::json!([]), "{name}: fields without a label");
    let low = browser.script(LOW_CONTRAST).await;
    assert_eq!(low, serde_json::json!([]), "{name}: text under 4.5:1 contrast");
    let widths = browser.script("return [document.documentElement.scrollWidth, window.innerWidth];").await;
    let (page, window) = (widths[0].as_i64().unwrap_or(0), widths[1].as_i64().unwrap_or(0));
    let wide = browser.script(WIDER_THAN_SCREEN).await;
    // The screenshot first: it shows what a failure below is about.
    browser.screenshot(&screenshots().join(format!("{name}.png"))).await;
    assert_eq!(window, 375, "{name}: checked at 375 px wide; wider than the screen: {wide}");
    assert!(page <= window, "{name}: the page is {page} px wide in a {window} px window; wider: {wide}");
}

/// Waits until the page's heading shows `status` (a badge), reloading as the page does not.
async fn wait_for_status(browser: &Browser, label: &str) {
    let started = Instant::now();
    loop {
        let heading = browser.text("h1").await;
        if heading.contains(label) {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let (problems, notice) = (browser.find_text("ul.problems").await, browser.find_text("p.notice").await);
            panic!("the heading says {heading:?}, not {label:?}; problems: {problems:?}; notice: {notice:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds one record at the sandbox DNS host's page of the zone.
async fn add_sandbox_record(browser: &Browser, kind: &str, host: &str, value: &str) {
    browser.click(&format!("#kind option[value='{kind}']")).await;
    browser.type_into("#host", host).await;
    browser.type_into("#value", value).await;
    browser.submit("form[action$='/records'] button[type=submit]").await;
    let notice = browser.wait_for("p.notice, p#record-error", Duration::from_secs(5)).await;
    assert!(notice.contains("Record added"), "adding {kind} {host}: {notice}");
}

#[tokio::test]
async fn in_demo_mode_a_customer_walks_from_connecting_to_verified_with_the_sandbox_dns_host() {
    if !require_or_skip(webdriver::available(), "chromium and chromium-driver (Debian)") {
        return;
    }
    let server = zones().await;
    let data_dir = tempdir();
    let (child, http, dns) = start_service_full(&data_dir, &server, &["--demo"], &[]).await;
    let token = std::fs::read_to_string(data_dir.join("demo-token")).expect("the demo account's token");
    let base = format!("http://{http}");
    // Every page at 375 px wide: the walk a customer on a phone takes.
    let browser = Browser::start(375, 812).await;

    // Keyboard only: sign in, connect a domain.
    browser.goto(&format!("{base}/ui/sign-in")).await;
    check_page(&browser, "demo-sign-in").await;
    assert!(browser.tab_to("#token", 10).await, "the focus is visible on the token field");
    browser.press(&format!("{}{}", token.trim(), webdriver::ENTER)).await;
    wait_for_url(&browser, "/ui/domains").await;
    check_page(&browser, "demo-domains-empty").await;
    assert!(browser.tab_to("#email", 20).await, "the focus is visible on the email field");
    browser.press("news@shop.example.com").await;
    assert_eq!(browser.text("#email-domain").await, "Connects the domain shop.example.com.");
    browser.press(webdriver::ENTER).await;
    wait_for_url(&browser, "/ui/domains/shop.example.com").await;
    wait_for_status(&browser, "Not verified").await;
    let progress = browser.text("#progress").await;
    assert!(progress.contains("Waiting for your records") && progress.contains("72 hours"), "{progress}");
    assert!(browser.text("tr.why").await.starts_with("Why: "), "each record says why it exists");
    check_page(&browser, "demo-setup-not-verified").await;
    assert!(browser.text("aside[aria-label=Demo]").await.contains("example.com is hosted by the sandbox DNS host"));

    // The records as the setup page shows them, from its Copy buttons.
    let copies = browser
        .script(
            "return [...document.querySelectorAll('section[aria-labelledby] tbody tr:not(.note)')].map((row) => \
             [row.closest('section').getAttribute('aria-labelledby'), row.cells[0].textContent, \
             ...[...row.querySelectorAll('button.copy')].map((button) => button.dataset.copy)]);",
        )
        .await;
    let rows: Vec<[String; 4]> = copies
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| std::array::from_fn(|index| row[index].as_str().unwrap_or_default().to_string()))
        .collect();
    let of = |method: &str| rows.iter().filter(|row| row[0] == format!("{method}-title")).cloned().collect::<Vec<_>>();
    let (dkim, spf, dmarc) = (of("dkim"), of("spf"), of("dmarc"));
    assert_eq!((dkim.len(), spf.len(), dmarc.len()), (2, 1, 1), "{rows:?}");

    // At the sandbox DNS host: DKIM and SPF first.
    browser.submit("nav a[href='/ui/sandbox']").await;
    wait_for_url(&browser, "/ui/sandbox").await;
    check_page(&browser, "demo-sandbox-zones").await;
    browser.submit("a[href='/ui/sandbox/example.com']").await;
    wait_for_url(&browser, "/ui/sandbox/example.com").await;
    // A CNAME cannot sit beside other records: the host says so and keeps what was typed.
    add_sandbox_record(&browser, "TXT", &dkim[0][2], "hello").await;
    browser.click("#kind option[value='CNAME']").await;
    browser.type_into("#host", &dkim[0][2]).await;
    browser.type_into("#value", &dkim[0][3]).await;
    browser.submit("form[action$='/records'] button[type=submit]").await;
    let refusal = browser.wait_for("p#record-error", Duration::from_secs(5)).await;
    assert!(refusal.contains("must be the only record"), "{refusal}");
    assert_eq!(browser.attribute("#host", "value").await.as_deref(), Some(dkim[0][2].as_str()));
    browser.submit("button[aria-label^='Remove the TXT record']").await;
    assert_eq!(browser.text("p.notice").await, "Record removed.");
    for [_, kind, host, value] in dkim.iter().chain(&spf) {
        add_sandbox_record(&browser, kind, host, value).await;
    }
    check_page(&browser, "demo-sandbox-records").await;
    // The embedded DNS server answers the customer's name now, the key behind the CNAME
    // included (a real client reads it).
    let answer = std::process::Command::new("kdig")
        .args(["@".to_string() + &dns.ip().to_string(), "-p".into(), dns.port().to_string()])
        .args([format!("{}.example.com", dkim[0][2]), "TXT".into(), "+short".into()])
        .output();
    if let Ok(answer) = answer {
        let text = String::from_utf8_lossy(&answer.stdout).to_string();
        assert!(text.contains(&dkim[0][3]) && text.contains("v=DKIM1"), "{text}");
    }

    // Verify (keyboard): DKIM and SPF in place, DMARC missing: Partially verified.
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;
    assert!(browser.tab_to("form[action$='/verify'] button", 40).await, "the focus is visible on Verify");
    browser.script("window.__before_submit = true;").await;
    browser.press(webdriver::ENTER).await;
    wait_for_status(&browser, "Partially verified").await;
    let progress = browser.text("#progress").await;
    assert!(
        progress.contains("3 of 4 records found")
            && progress.contains("DKIM is done")
            && progress.contains("Add DMARC"),
        "{progress}"
    );
    assert!(browser.text("#dmarc-applies").await.contains("No DMARC record applies"));
    // (The screenshot shows the DKIM records, as cards at this width.)
    browser.script("document.getElementById('dkim-title').scrollIntoView();").await;
    check_page(&browser, "demo-setup-partially-verified").await;

    // DMARC at the root: the subdomain inherits it, and the page says which record applies.
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    add_sandbox_record(&browser, "TXT", "_dmarc", "\"v=DMARC1; p=none;\"").await;
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;
    browser.submit("form[action$='/verify'] button").await;
    wait_for_status(&browser, "Verified").await;
    assert!(browser.text("#progress").await.contains("You're all set"));
    let applies = browser.text("#dmarc-applies").await;
    assert!(applies.contains("Inherited from example.com") && applies.contains("v=DMARC1; p=none;"), "{applies}");
    check_page(&browser, "demo-setup-verified").await;
    assert!(!browser.text("h1").await.contains("Partially"));

    // The list: the domain with its status and a badge per method.
    browser.goto(&format!("{base}/ui/domains")).await;
    let row = browser.text("table.cards tbody tr").await;
    assert!(
        row.contains("Verified") && row.contains("DKIM ✓") && row.contains("SPF ✓") && row.contains("DMARC ✓"),
        "{row}"
    );
    check_page(&browser, "demo-domains").await;
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;

    // The history: each outcome the checks went through, newest first, and the status changes.
    browser.submit("a[href$='/history']").await;
    check_page(&browser, "demo-history").await;
    let checks = browser.text("section[aria-labelledby=checks-title] tbody").await;
    let rows = browser
        .script("return [...document.querySelectorAll('section[aria-labelledby=checks-title] tbody tr')].map((row) => row.textContent);")
        .await;
    let lines: Vec<&str> = rows.as_array().expect("rows").iter().filter_map(|row| row.as_str()).collect();
    assert!(lines[0].contains("Verified") && lines[0].contains("DMARC only monitors (p=none)"), "{checks}");
    assert!(
        lines.iter().any(|line| line.contains("Partially verified") && line.contains("the DMARC record is missing")),
        "problems in plain words: {checks}"
    );
    assert!(!checks.contains("dmarc_missing"), "no codes on a customer's page: {checks}");
    let changes = browser.text("section[aria-labelledby=changes-title] tbody").await;
    assert!(changes.contains("domain.verified") && changes.contains("domain.partially_verified"), "{changes}");

    // A domain with long names: its problems name long hosts, and the page still fits 375 px.
    browser.goto(&format!("{base}/ui/domains")).await;
    browser
        .type_into("#email", "news@campaigns.newsletter-department.marketing-team.shop-with-a-long-name.example.com")
        .await;
    browser.submit("form[action='/ui/domains'] button[type=submit]").await;
    wait_for_url(
        &browser,
        "/ui/domains/campaigns.newsletter-department.marketing-team.shop-with-a-long-name.example.com",
    )
    .await;
    wait_for_status(&browser, "Not verified").await;
    check_page(&browser, "demo-setup-long-names").await;
    // Checked: its problems name the long hosts.
    browser.submit("form[action$='/verify'] button").await;
    let started = Instant::now();
    while browser.find_text("ul.problems").await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the check's problems are listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.goto(&browser.url().await).await;
    }
    let problems = browser.text("ul.problems").await;
    assert!(problems.contains("shop-with-a-long-name.example.com"), "{problems}");
    check_page(&browser, "demo-setup-long-names-checked").await;
    browser.submit("a[href$='/history']").await;
    check_page(&browser, "demo-history-long-names").await;
    browser.goto(&format!("{base}/ui/domains")).await;
    check_page(&browser, "demo-domains-long-names").await;

    // A form without its CSRF token (a forged one) is refused, and changes nothing.
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    let records_before = browser.text("section[aria-labelledby=records-title]").await;
    browser.script("document.querySelectorAll('form[action$=\"/records\"] input[name=csrf]').forEach((field) => field.remove());").await;
    browser.type_into("#host", "forged").await;
    browser.type_into("#value", "v=spf1 -all").await;
    browser.submit("form[action$='/records'] button[type=submit]").await;
    assert!(browser.text("h1").await.contains("This form has expired"));
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    assert_eq!(browser.text("section[aria-labelledby=records-title]").await, records_before);

    // Another account cannot open this account's sandbox zone.
    let admin = std::fs::read_to_string(data_dir.join("admin-token")).expect("admin token").trim().to_string();
    let (_, other) = call(http, "POST", "/api/v1/accounts", Some(&admin), Some(r#"{"name": "Other"}"#)).await;
    let other = other["token"].as_str().expect("token").to_string();
    browser.submit("nav form button").await;
    wait_for_url(&browser, "/ui/sign-in").await;
    browser.type_into("#token", &other).await;
    browser.submit("form button[type=submit]").await;
    wait_for_url(&browser, "/ui/domains").await;
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    assert!(browser.text("h1").await.contains("Not found"));

    drop(browser);
    let (status, stderr) = stop_service(child).await;
    assert!(status.success(), "{stderr}");
}
