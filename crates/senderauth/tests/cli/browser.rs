//! The web UI in a real browser: headless Chromium driven by chromedriver (Debian's `chromium`
//! and `chromium-driver`) against `senderauth serve`. Screenshots of each page are saved under
//! target/ui-screenshots.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use senderauth_testkit::http::call;
use senderauth_testkit::require_or_skip;
use senderauth_testkit::webdriver::{self, Browser};

use super::{admin_and_account, direct_resolver, start_service_full, stop_service, tempdir, zones};

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
    let selector = "tbody.record[data-method=dkim] button.copy[aria-label='Copy the DKIM value']";
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
    // The screenshot first (of the whole page): it shows what a failure below is about.
    let height = browser.script("return document.documentElement.scrollHeight;").await.as_u64().unwrap_or(812);
    browser.resize(375, height.clamp(812, 8000) as u32).await;
    browser.screenshot(&screenshots().join(format!("{name}.png"))).await;
    browser.resize(375, 812).await;
    // A setup page never says "all set" above a record with an error.
    let contradiction = browser.script("const errors = [...document.querySelectorAll('p.row-problem.error')].map((p) => p.textContent); return document.querySelector('.banner.done') && errors.length ? errors : null;").await;
    assert!(!contradiction.is_array(), "{name}: the banner says all set, but rows have errors: {contradiction}");
    assert_eq!(window, 375, "{name}: checked at 375 px wide; wider than the screen: {wide}");
    assert!(page <= window, "{name}: the page is {page} px wide in a {window} px window; wider: {wide}");
}

/// Waits until the setup page's banner shows the status `label` (a badge); the page updates
/// by itself when a check finishes.
async fn wait_for_status(browser: &Browser, label: &str) {
    let started = Instant::now();
    loop {
        let status = browser.find_text(".banner .checked .badge").await.unwrap_or_default();
        if status == label {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let (banner, rows) = (browser.find_text(".banner").await, browser.find_text("table.records").await);
            panic!("the status is {status:?}, not {label:?}; banner: {banner:?}; records: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the records table's row of `method` (its first, for DKIM's several).
async fn row(browser: &Browser, method: &str) -> String {
    browser.text(&format!("tbody.record[data-method={method}]")).await
}

/// Adds one record at the sandbox DNS host's page of the zone.
async fn add_sandbox_record(browser: &Browser, kind: &str, host: &str, value: &str) {
    browser.click(&format!("#kind option[value='{kind}']")).await;
    browser.type_into("#host", host).await;
    browser.type_into("#value", value).await;
    browser.submit("form.record-form button[type=submit]").await;
    let notice = browser.wait_for("p.notice, p#record-error", Duration::from_secs(5)).await;
    assert!(notice.contains("Record added"), "adding {kind} {host}: {notice}");
}

/// Loads a sandbox scenario for `domain` in its zone's page, then checks the domain (through
/// the API, as the background verifier would) and opens its setup page.
async fn load_scenario(
    browser: &Browser,
    base: &str,
    http: std::net::SocketAddr,
    token: &str,
    domain: &str,
    scenario: &str,
) {
    browser.goto(&format!("{base}/ui/sandbox/{domain}")).await;
    browser.click(&format!("#scenario-domain option[value='{domain}']")).await;
    browser.click(&format!("#scenario option[value='{scenario}']")).await;
    browser.submit("form[action$='/scenario'] button[type=submit]").await;
    let notice = browser.text("p.notice").await;
    assert!(notice.contains("Scenario loaded"), "{scenario}: {notice}");
    // The DNS server follows the zone's change log every 200 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = call(http, "POST", &format!("/api/v1/domains/{domain}/verify"), Some(token), None).await;
    assert_eq!(status, 200, "{scenario}: verify");
    browser.goto(&format!("{base}/ui/domains/{domain}")).await;
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
    let token = token.trim().to_string();
    let base = format!("http://{http}");
    // Every page at 375 px wide: the walk a customer on a phone takes.
    let browser = Browser::start(375, 812).await;

    // Keyboard only: sign in (the page says where the demo token is), connect a domain.
    browser.goto(&format!("{base}/ui/sign-in")).await;
    assert!(
        browser.text("aside[aria-label=Demo]").await.contains("demo-token"),
        "the sign-in page names the token's file"
    );
    check_page(&browser, "demo-sign-in").await;
    assert!(browser.tab_to("#token", 10).await, "the focus is visible on the token field");
    browser.press(&format!("{token}{}", webdriver::ENTER)).await;
    wait_for_url(&browser, "/ui/domains").await;
    check_page(&browser, "demo-domains-empty").await;
    assert!(browser.tab_to("#email", 20).await, "the focus is visible on the email field");
    browser.press("news@shop.example.com").await;
    assert_eq!(browser.text("#email-domain").await, "Connects the domain shop.example.com.");
    browser.press(webdriver::ENTER).await;
    wait_for_url(&browser, "/ui/domains/shop.example.com").await;
    wait_for_status(&browser, "Not verified").await;
    let banner = browser.text(".banner").await;
    assert!(banner.contains("Waiting for your records") && banner.contains("72 hours"), "{banner}");
    assert!(!banner.contains("spelling"), "a new subdomain is not told to check its spelling: {banner}");
    for method in ["dkim", "spf", "dmarc"] {
        let text = row(&browser, method).await;
        assert!(text.contains("Add new") && text.contains("Why: "), "each row says what to do and why: {text}");
    }
    check_page(&browser, "demo-setup-not-verified").await;
    assert!(browser.text("aside[aria-label=Demo]").await.contains("example.com is hosted by the sandbox DNS host"));

    // The records as the setup page shows them, from its Copy buttons.
    let copies = browser
        .script(
            "return [...document.querySelectorAll('tbody.record')].map((row) => [row.dataset.method, \
             row.querySelector('tr.data').cells[0].firstChild.textContent.trim(), \
             ...[...row.querySelectorAll('tr.data button.copy')].map((button) => button.dataset.copy)]);",
        )
        .await;
    let rows: Vec<[String; 4]> = copies
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| std::array::from_fn(|index| row[index].as_str().unwrap_or_default().to_string()))
        .collect();
    let of = |method: &str| rows.iter().filter(|row| row[0] == method).cloned().collect::<Vec<_>>();
    let (dkim, spf, dmarc) = (of("dkim"), of("spf"), of("dmarc"));
    assert_eq!((dkim.len(), spf.len(), dmarc.len()), (2, 1, 1), "{rows:?}");

    // At the sandbox DNS host: the zone's nameservers (Cloudflare's), then DKIM and SPF.
    browser.submit("nav a[href='/ui/sandbox']").await;
    wait_for_url(&browser, "/ui/sandbox").await;
    check_page(&browser, "demo-sandbox-zones").await;
    browser.submit("a[href='/ui/sandbox/example.com']").await;
    wait_for_url(&browser, "/ui/sandbox/example.com").await;
    add_sandbox_record(&browser, "NS", "@", "ada.ns.cloudflare.com").await;
    // A CNAME cannot sit beside other records: the host says so and keeps what was typed.
    add_sandbox_record(&browser, "TXT", &dkim[0][2], "hello").await;
    browser.click("#kind option[value='CNAME']").await;
    browser.type_into("#host", &dkim[0][2]).await;
    browser.type_into("#value", &dkim[0][3]).await;
    browser.submit("form.record-form button[type=submit]").await;
    let refusal = browser.wait_for("p#record-error", Duration::from_secs(5)).await;
    assert!(refusal.contains("must be the only record"), "{refusal}");
    assert_eq!(browser.attribute("#host", "value").await.as_deref(), Some(dkim[0][2].as_str()));
    // Edit, as at a DNS host: the TXT record becomes the CNAME.
    browser.submit("a[aria-label^='Edit the TXT record']").await;
    assert_eq!(browser.script("return document.getElementById('value').value;").await, serde_json::json!("hello"));
    browser.click("#kind option[value='CNAME']").await;
    browser.type_into("#value", &dkim[0][3]).await;
    browser.submit("form.record-form button[type=submit]").await;
    assert_eq!(browser.text("p.notice").await, "Record saved: served now.");
    for [_, kind, host, value] in dkim.iter().skip(1).chain(&spf) {
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

    // Verify (keyboard): DKIM and SPF in place, DMARC missing: Partially verified. The zone's
    // nameservers say Cloudflare: its advice is shown, on the DKIM rows too.
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;
    assert!(browser.tab_to("form[action$='/verify'] button", 60).await, "the focus is visible on Verify");
    browser.press(webdriver::ENTER).await;
    wait_for_status(&browser, "Partially verified").await;
    let banner = browser.text(".banner").await;
    assert!(
        banner.contains("3 of 5 records found") && banner.contains("DKIM is done") && banner.contains("Add DMARC"),
        "{banner}"
    );
    assert!(browser.text("aside[aria-label='Your DNS host']").await.contains("Cloudflare"));
    assert!(row(&browser, "dkim").await.contains("Done") && row(&browser, "dkim").await.contains("grey cloud"));
    assert!(row(&browser, "dmarc").await.contains("No DMARC record applies"));
    check_page(&browser, "demo-setup-partially-verified").await;

    // DMARC at the root, added while the setup page is open elsewhere: a background check
    // (here the API's verify) finishes, and the open page updates by itself, saying what changed.
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    add_sandbox_record(&browser, "TXT", "_dmarc", "\"v=DMARC1; p=none;\"").await;
    // The platform's DNS follows the sandbox's changes a moment later; the check must see it.
    let platform_dns = direct_resolver(dns);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !platform_dns.txt("_dmarc.example.com").await.is_ok_and(|answer| !answer.as_slice().is_empty()) {
        assert!(Instant::now() < deadline, "the platform's DNS never served _dmarc.example.com");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;
    browser.script("window.__not_reloaded = true;").await;
    let (status, _) = call(http, "POST", "/api/v1/domains/shop.example.com/verify", Some(&token), None).await;
    assert_eq!(status, 200);
    wait_for_status(&browser, "Verified").await;
    assert_eq!(browser.script("return window.__not_reloaded === true;").await, serde_json::json!(true), "no reload");
    assert_eq!(browser.text("#announce").await, "DMARC is now verified.");
    assert!(browser.text(".banner").await.contains("You're all set"));
    let applies = browser.text("tbody.record[data-method=dmarc] p.applies").await;
    assert!(applies.contains("Inherited from example.com") && applies.contains("v=DMARC1; p=none;"), "{applies}");
    let recommendations = browser.text("section[aria-labelledby=recommendations-title]").await;
    assert!(recommendations.contains("Not errors"), "{recommendations}");
    check_page(&browser, "demo-setup-verified").await;

    // Hand it to a colleague: a link that opens the records without signing in, until revoked.
    browser.submit("form[action$='/share'] button[type=submit]").await;
    let link = browser.text("#share-url").await;
    let path = link.strip_prefix(&base).expect("the link is on this service").to_string();
    check_page(&browser, "demo-share-made").await;
    let (status, page) = senderauth_testkit::http::call_text(http, "GET", &path, None, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&dkim[0][3]) && page.contains("You&#39;re all set"), "the records and their status");
    assert!(!page.contains(&token) && !page.contains("Sign out"), "nothing of the account");
    browser.goto(&link).await;
    check_page(&browser, "demo-shared-page").await;
    browser.goto(&format!("{base}/ui/domains/shop.example.com")).await;
    browser.submit("form[action*='/share/'] button").await;
    assert!(browser.text("p.notice").await.contains("revoked"));
    let (status, page) = senderauth_testkit::http::call_text(http, "GET", &path, None, None).await;
    assert_eq!(status, 404, "a revoked link no longer opens: {page}");

    // The list: the domain with its status and a badge per method.
    browser.goto(&format!("{base}/ui/domains")).await;
    let list_row = browser.text("table.cards tbody tr").await;
    assert!(
        list_row.contains("Verified")
            && list_row.contains("DKIM ✓")
            && list_row.contains("SPF ✓")
            && list_row.contains("DMARC ✓"),
        "{list_row}"
    );
    check_page(&browser, "demo-domains").await;

    // The DMARC reports page: empty at first, then with a receiver's report handed in.
    browser.goto(&format!("{base}/ui/domains/shop.example.com/reports")).await;
    assert!(browser.text("main").await.contains("No reports yet"), "{}", browser.text("main").await);
    check_page(&browser, "demo-reports-empty").await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let report = format!(
        "<feedback><report_metadata><org_name>receiver.example</org_name><email>r@receiver.example</email>\
         <report_id>walk-1</report_id><date_range><begin>{}</begin><end>{}</end></date_range></report_metadata>\
         <policy_published><domain>example.com</domain><p>none</p></policy_published>\
         <record><row><source_ip>192.0.2.10</source_ip><count>120</count><policy_evaluated><disposition>none\
         </disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>\
         shop.example.com</header_from></identifiers><auth_results><dkim><domain>shop.example.com</domain>\
         <selector>{}</selector><result>pass</result></dkim><spf><domain>shop.example.com</domain><result>pass\
         </result></spf></auth_results></record>\
         <record><row><source_ip>203.0.113.66</source_ip><count>4</count><policy_evaluated><disposition>none\
         </disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>\
         shop.example.com</header_from></identifiers><auth_results><spf><domain>spoof.example</domain><result>fail\
         </result></spf></auth_results></record></feedback>",
        now - 86_400,
        now - 1,
        dkim[0][2].split('.').next().unwrap_or_default()
    );
    let (status, _, body) =
        senderauth_testkit::http::call_raw(http, "/api/v1/dmarc/reports", &token, "application/xml", report.as_bytes())
            .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    browser.goto(&format!("{base}/ui/domains/shop.example.com/reports")).await;
    let bars = browser.script("return document.querySelectorAll('svg.chart rect').length;").await;
    assert_eq!(bars, serde_json::json!(60), "a bar pair per day");
    let sources = browser.text("#sources").await;
    assert!(sources.contains("203.0.113.66") && sources.contains("Failing, not us"), "{sources}");
    check_page(&browser, "demo-reports").await;

    // The history: each outcome the checks went through, in plain words, no webhook jargon.
    browser.goto(&format!("{base}/ui/domains/shop.example.com/history")).await;
    check_page(&browser, "demo-history").await;
    let checks = browser.text("section[aria-labelledby=checks-title] tbody").await;
    let lines = browser
        .script("return [...document.querySelectorAll('section[aria-labelledby=checks-title] tbody tr')].map((row) => row.textContent);")
        .await;
    let lines: Vec<&str> = lines.as_array().expect("rows").iter().filter_map(|line| line.as_str()).collect();
    assert!(lines[0].contains("Verified") && lines[0].contains("DMARC only monitors (p=none)"), "{checks}");
    assert!(
        lines.iter().any(|line| line.contains("Partially verified") && line.contains("the DMARC record is missing")),
        "problems in plain words: {checks}"
    );
    assert!(!checks.contains("dmarc_missing"), "no codes on a customer's page: {checks}");
    let changes = browser.text("section[aria-labelledby=changes-title] tbody").await;
    assert!(changes.contains("Partially verified") && !changes.contains("domain."), "no event names: {changes}");

    // The mistakes customers make, on a root domain of its own: each one loaded at the sandbox
    // DNS host, explained in its own row, and fixed back to Verified.
    browser.goto(&format!("{base}/ui/domains")).await;
    browser.type_into("#email", "hello@example.org").await;
    browser.submit("form[action='/ui/domains'] button[type=submit]").await;
    wait_for_url(&browser, "/ui/domains/example.org").await;
    let mistakes: [(&str, &[(&str, &str)]); 11] = [
        (
            "doubled_host",
            &[
                ("dkim", "instead of sa"),
                ("spf", "the SPF record is at example.org.example.org"),
                ("dmarc", "your DNS host added example.org to the Host"),
            ],
        ),
        ("txt_for_cname", &[("dkim", "it must be a CNAME pointing to")]),
        ("typo", &[("dkim", "a copying slip: \"s\" is missing at character 1")]),
        ("flattened", &[("dkim", "holds a copy of the key instead of a CNAME")]),
        ("proxied", &[("dkim", "the record is proxied"), ("dkim", "grey cloud")]),
        ("two_spf", &[("spf", "has 2 SPF records"), ("spf", "Edit your existing record")]),
        ("spf_typo", &[("spf", "a copying slip: \"e\" is missing")]),
        ("quoted", &[("spf", "remove the quotation marks"), ("dmarc", "remove the quotation marks")]),
        ("dmarc_at_domain", &[("dmarc", "a DMARC record is at example.org")]),
        ("dmarc_no_underscore", &[("dmarc", "a DMARC record is at dmarc.example.org")]),
        ("dmarc_invalid", &[("dmarc", "Replace the existing record"), ("dmarc", "not valid")]),
    ];
    for (scenario, expected) in mistakes {
        load_scenario(&browser, &base, http, &token, "example.org", scenario).await;
        for (method, text) in expected {
            let found = row(&browser, method).await;
            let said = found.to_lowercase().contains(&text.to_lowercase());
            assert!(said, "{scenario}: the {method} row says {text:?}: {found}");
        }
        if scenario == "doubled_host" {
            // Not verified yet, and every record at the wrong name: not "waiting for your records".
            let banner = browser.text(".banner").await;
            assert!(banner.contains("4 need a change"), "{banner}");
        }
        check_page(&browser, &format!("demo-mistake-{scenario}")).await;
        load_scenario(&browser, &base, http, &token, "example.org", "correct").await;
        wait_for_status(&browser, "Verified").await;
    }

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
    check_page(&browser, "demo-setup-long-names").await;
    browser.submit("form[action$='/verify'] button").await;
    let started = Instant::now();
    while browser.find_text("p.row-problem").await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "the check's problems are in the rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let problems = browser.text("p.row-problem").await;
    assert!(problems.contains("shop-with-a-long-name.example.com"), "{problems}");
    browser.script("document.querySelectorAll('details').forEach((details) => details.open = true);").await;
    check_page(&browser, "demo-setup-long-names-checked").await;
    browser.submit("a[href$='/history']").await;
    check_page(&browser, "demo-history-long-names").await;
    browser.goto(&format!("{base}/ui/domains")).await;
    assert!(browser.text(".attention-list").await.contains("Continue setup"), "unfinished domains first");
    check_page(&browser, "demo-domains-long-names").await;

    // A form without its CSRF token (a forged one) is refused, and changes nothing.
    browser.goto(&format!("{base}/ui/sandbox/example.com")).await;
    let records_before = browser.text("section[aria-labelledby=records-title]").await;
    browser
        .script("document.querySelectorAll('form.record-form input[name=csrf]').forEach((field) => field.remove());")
        .await;
    browser.type_into("#host", "forged").await;
    browser.type_into("#value", "v=spf1 -all").await;
    browser.submit("form.record-form button[type=submit]").await;
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
