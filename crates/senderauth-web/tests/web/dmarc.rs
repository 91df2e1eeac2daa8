//! DMARC aggregate reports through the API: handed in, stored once, each row classed against
//! the platform's own keys and addresses, read back per domain, and never by another account.

use senderauth_testkit::http;
use serde_json::Value;

use crate::api::apps;

/// One record: (source IP, count, DMARC's DKIM, DMARC's SPF, [(d=, s=, result)], override reason).
type Row<'a> = (&'a str, u32, &'a str, &'a str, Vec<(&'a str, String, &'a str)>, Option<&'a str>);

/// A report (RFC 9990 format) about `domain` for the day before `now`, one record per row:
/// (source IP, count, DMARC's DKIM, DMARC's SPF, [(d=, s=, result)], override reason).
fn report(domain: &str, id: &str, now: i64, rows: &[Row<'_>]) -> String {
    report_by(("receiver.example", "noreply@receiver.example"), domain, id, now, rows)
}

/// As `report`, sent by the receiver `(org_name, email)`.
fn report_by(by: (&str, &str), domain: &str, id: &str, now: i64, rows: &[Row<'_>]) -> String {
    let (org, email) = by;
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"><version>1.0</version>\
         <report_metadata><org_name>{org}</org_name><email>{email}</email>\
         <report_id>{id}</report_id><date_range><begin>{}</begin><end>{}</end></date_range></report_metadata>\
         <policy_published><domain>{domain}</domain><p>none</p><discovery_method>treewalk</discovery_method></policy_published>",
        now - 86_400,
        now - 1
    );
    for (ip, count, dkim, spf, signatures, reason) in rows {
        let reason = reason.map(|kind| format!("<reason><type>{kind}</type></reason>")).unwrap_or_default();
        xml.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated><disposition>none</disposition>\
             <dkim>{dkim}</dkim><spf>{spf}</spf>{reason}</policy_evaluated></row><identifiers><header_from>{domain}</header_from>\
             </identifiers><auth_results>"
        ));
        for (signing, selector, result) in signatures {
            xml.push_str(&format!(
                "<dkim><domain>{signing}</domain><selector>{selector}</selector><result>{result}</result></dkim>"
            ));
        }
        xml.push_str(&format!("<spf><domain>{domain}</domain><result>{spf}</result></spf></auth_results></record>"));
    }
    xml.push_str("</feedback>\n");
    xml
}

async fn hand_in(app: &crate::api::App, token: &str, body: &[u8]) -> (u16, Value) {
    let (status, _, bytes) = http::call_raw(app.address, "/api/v1/dmarc/reports", token, "application/xml", body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn reports_are_stored_once_classed_by_whose_mail_it_was_and_shown_only_to_the_domains_account() {
    for app in apps().await {
        let owner = app.account("Shop").await;
        let domain = "shop.example.com";
        app.call("POST", "/api/v1/domains", Some(&owner), Some(r#"{"email": "news@shop.example.com"}"#)).await;
        let now = app.clock.load(std::sync::atomic::Ordering::Relaxed);

        // Before DKIM is verified, nothing is shown and the account may not hand reports in.
        let (status, summary) = app.call("GET", &format!("/api/v1/domains/{domain}/dmarc"), Some(&owner), None).await;
        assert_eq!((status, summary["available"].as_bool()), (200, Some(false)), "{summary}");
        let (_, keys) = app.call("GET", &format!("/api/v1/domains/{domain}/dkim"), Some(&owner), None).await;
        let selectors: Vec<String> = keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| key["selector"].as_str().expect("selector").to_string())
            .collect();
        let (active, standby) = (selectors[0].clone(), selectors[1].clone());
        let rows = vec![
            // Signed and sent by the platform (its sending addresses are 192.0.2.0/24).
            ("192.0.2.10", 40, "pass", "pass", vec![(domain, active.clone(), "pass")], None),
            // From the platform, but the signature did not pass (a key no longer published).
            ("192.0.2.11", 3, "fail", "fail", vec![(domain, standby.clone(), "fail")], None),
            // The platform's mail through a mailing list.
            ("198.51.100.7", 2, "fail", "fail", vec![(domain, active.clone(), "fail")], Some("mailing_list")),
            // The customer's other sender, DMARC passing.
            ("203.0.113.5", 10, "pass", "fail", vec![(domain, "google".to_string(), "pass")], None),
            // Spoofing: a selector of the platform's name, but under another domain.
            ("203.0.113.66", 5, "fail", "fail", vec![("evil.example", active.clone(), "pass")], None),
        ];
        let xml = report(domain, "r-1", now, &rows);
        let (status, body) = hand_in(&app, &owner, xml.as_bytes()).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["reports"], Value::Array(Vec::new()), "refused until DKIM is verified: {body}");
        assert!(body["refused"][0]["error"].as_str().is_some_and(|error| error.contains("DKIM verified")), "{body}");

        app.dns.publish_customer(1, domain);
        http::publish_hosted_keys(&app.dns, app.address, &owner, domain).await;
        let (status, verified) =
            app.call("POST", &format!("/api/v1/domains/{domain}/verify"), Some(&owner), None).await;
        assert_eq!((status, verified["result"]["dkim"]["status"].as_str()), (200, Some("verified")), "{verified}");

        let (status, body) = hand_in(&app, &owner, xml.as_bytes()).await;
        assert_eq!(status, 201, "{body}");
        let stored = &body["reports"][0];
        assert_eq!(
            (stored["records"].as_i64(), stored["messages"].as_i64(), stored["duplicate"].as_bool()),
            (Some(5), Some(60), Some(false)),
            "{body}"
        );
        let id = stored["id"].as_i64().expect("id");
        // The same report again (a re-send, a second MX): counted once.
        let (_, again) = hand_in(&app, &owner, xml.as_bytes()).await;
        assert_eq!(
            (
                again["reports"][0]["id"].as_i64(),
                again["reports"][0]["duplicate"].as_bool(),
                again["reports"][0]["conflicting"].as_bool()
            ),
            (Some(id), Some(true), Some(false)),
            "{again}"
        );
        // A copy with other rows: the first is kept, the conflict said.
        let mut changed = rows.clone();
        changed[0].1 = 4000;
        let (_, conflicting) = hand_in(&app, &owner, report(domain, "r-1", now, &changed).as_bytes()).await;
        assert_eq!(conflicting["reports"][0]["conflicting"].as_bool(), Some(true), "{conflicting}");

        let (status, summary) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc?days=30"), Some(&owner), None).await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!((summary["available"].as_bool(), summary["messages"].as_i64()), (Some(true), Some(60)), "{summary}");
        let class = |name: &str| {
            summary["classes"]
                .as_array()
                .expect("classes")
                .iter()
                .find(|class| class["class"] == name)
                .map(|class| (class["passed"].as_i64().unwrap_or(0), class["failed"].as_i64().unwrap_or(0)))
        };
        assert_eq!(class("platform_ok"), Some((40, 0)));
        assert_eq!(class("platform_failing"), Some((0, 3)));
        assert_eq!(class("forwarded_ours"), Some((0, 2)));
        assert_eq!(class("authorized_other"), Some((10, 0)));
        assert_eq!(class("unauthenticated"), Some((0, 5)));
        let share = summary["pass_share"].as_f64().expect("a share");
        assert!((share - 50.0 / 58.0).abs() < 1e-9, "forwarded mail left out: {share}");
        assert_eq!(summary["per_day"].as_array().map(Vec::len), Some(1), "{summary}");
        assert_eq!(summary["report_address"], "dmarc@reports.esp.example");
        // 60 messages: too few to judge the way to enforcement.
        assert_eq!(summary["recommendation"]["verdict"], "not_enough_reports", "{summary}");

        let sources = |query: &str| {
            let path = format!("/api/v1/domains/{domain}/dmarc/sources{query}");
            let owner = owner.clone();
            let app = &app;
            async move {
                let (status, body) = app.call("GET", &path, Some(&owner), None).await;
                assert_eq!(status, 200, "{path}: {body}");
                body["sources"]
                    .as_array()
                    .expect("sources")
                    .iter()
                    .map(|source| source["source_ip"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(sources("").await, ["192.0.2.10", "203.0.113.5", "203.0.113.66", "192.0.2.11", "198.51.100.7"]);
        assert_eq!(sources("?class=unauthenticated").await, ["203.0.113.66"]);
        assert_eq!(sources("?failing=true").await, ["203.0.113.66", "192.0.2.11", "198.51.100.7"]);
        let (status, bad) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/sources?class=spam"), Some(&owner), None).await;
        assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_class")));
        let (status, csv) = http::call_text(
            app.address,
            "GET",
            &format!("/api/v1/domains/{domain}/dmarc/sources?format=csv&class=platform_ok"),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            ["source_ip,class,passed,failed,last_seen,name", "192.0.2.10,platform_ok,40,0,1970-01-11,"]
        );

        let (_, reports) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/reports"), Some(&owner), None).await;
        let listed = &reports["reports"][0];
        assert_eq!(
            (
                listed["id"].as_i64(),
                listed["duplicates"].as_i64(),
                listed["conflicts"].as_i64(),
                listed["format"].as_str()
            ),
            (Some(id), Some(2), Some(1), Some("dmarc2")),
            "{reports}"
        );
        let (status, one) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/reports/{id}"), Some(&owner), None).await;
        assert_eq!((status, one["rows"].as_array().map(Vec::len)), (200, Some(5)), "{one}");
        assert_eq!(one["rows"][2]["detail"]["reasons"][0]["kind"], "mailing_list");
        let (status, head, xml_gzip) =
            http::get_raw(app.address, &format!("/api/v1/domains/{domain}/dmarc/reports/{id}/xml"), &owner).await;
        assert_eq!(status, 200, "{head}");
        assert_eq!(&xml_gzip[..2], [0x1f, 0x8b], "gzip");

        // Another account: 404 on every route and page, and its hand-ins about the domain are refused.
        let other = app.account("Other").await;
        let (mut stranger, _) = crate::ui::signed_in(&app, &other).await;
        assert_eq!(stranger.get(app.address, &format!("/ui/domains/{domain}/reports")).await.status, 404);
        for path in [
            format!("/api/v1/domains/{domain}/dmarc"),
            format!("/api/v1/domains/{domain}/dmarc/sources"),
            format!("/api/v1/domains/{domain}/dmarc/reports"),
            format!("/api/v1/domains/{domain}/dmarc/reports/{id}"),
            format!("/api/v1/domains/{domain}/dmarc/reports/{id}/xml"),
        ] {
            let (status, body) = app.call("GET", &path, Some(&other), None).await;
            assert_eq!((status, body["code"].as_str()), (404, Some("domain_not_found")), "{path}: {body}");
        }
        let (status, body) = hand_in(&app, &other, report(domain, "forged", now, &rows).as_bytes()).await;
        assert_eq!((status, body["reports"].as_array().map(Vec::len)), (201, Some(0)), "{body}");
        let (_, reports) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/reports"), Some(&owner), None).await;
        assert_eq!(reports["reports"].as_array().map(Vec::len), Some(1), "the forged report was not stored");
        // A report id of another domain is not found through this one.
        let (status, _) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/reports/{}", id + 1000), Some(&owner), None).await;
        assert_eq!(status, 404);

        // Enough reports: the platform's failing mail holds the domain at p=none.
        let many: Vec<Row> = rows.iter().map(|row| (row.0, row.1 * 100, row.2, row.3, row.4.clone(), row.5)).collect();
        hand_in(&app, &owner, report(domain, "r-2", now, &many).as_bytes()).await;
        let (_, summary) = app.call("GET", &format!("/api/v1/domains/{domain}/dmarc"), Some(&owner), None).await;
        let recommendation = &summary["recommendation"];
        assert_eq!(recommendation["verdict"], "stay_at_none", "{summary}");
        assert!(
            recommendation["reasons"][0]
                .as_str()
                .is_some_and(|reason| reason.contains("303 messages the platform sent failed")),
            "{recommendation}"
        );
        assert_eq!(recommendation["current_policy"], "none");
        // A domain whose mail passes: ready for quarantine, with its record as it would be.
        let calm = "calm.example.com";
        app.call("POST", "/api/v1/domains", Some(&owner), Some(r#"{"email": "news@calm.example.com"}"#)).await;
        app.dns.publish_customer(1, calm);
        http::publish_hosted_keys(&app.dns, app.address, &owner, calm).await;
        assert_eq!(app.call("POST", &format!("/api/v1/domains/{calm}/verify"), Some(&owner), None).await.0, 200);
        let (_, keys) = app.call("GET", &format!("/api/v1/domains/{calm}/dkim"), Some(&owner), None).await;
        let signing = keys["keys"][0]["selector"].as_str().expect("selector").to_string();
        let passing = vec![
            ("192.0.2.10", 5000, "pass", "pass", vec![(calm, signing, "pass")], None),
            ("203.0.113.5", 20, "pass", "fail", vec![(calm, "google".to_string(), "pass")], None),
            ("203.0.113.66", 10, "fail", "fail", Vec::new(), None),
        ];
        hand_in(&app, &owner, report(calm, "c-1", now, &passing).as_bytes()).await;
        let (_, summary) = app.call("GET", &format!("/api/v1/domains/{calm}/dmarc"), Some(&owner), None).await;
        let recommendation = &summary["recommendation"];
        assert_eq!(recommendation["verdict"], "ready_for_quarantine", "{summary}");
        assert_eq!(recommendation["next_record"], "v=DMARC1; p=quarantine;");
        assert_eq!(recommendation["failing_senders"][0]["source_ip"], "203.0.113.66");

        // The reports page: the classes, a bar per day, the verdict with the record to publish,
        // the sources filtered; the setup page's advice on p=none is the verdict's evidence.
        let (mut browser, _) = crate::ui::signed_in(&app, &owner).await;
        let page = browser.get(app.address, &format!("/ui/domains/{calm}/reports")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("data-verdict=\"ready_for_quarantine\""), "{}", page.body);
        assert!(page.body.contains("v=DMARC1; p=quarantine;"), "the record to publish");
        assert_eq!(page.body.matches("<rect ").count(), 60, "a passing and a failing bar for each of 30 days");
        assert!(page.body.contains(": 5020 passed, 10 failed"), "the day's numbers on its bar");
        let filtered =
            browser.get(app.address, &format!("/ui/domains/{domain}/reports?class=unauthenticated&failing=1")).await;
        let table = &filtered.body[filtered.body.find("id=\"sources\"").expect("the sources table")..];
        assert!(table.contains("203.0.113.66") && !table.contains("192.0.2.10"), "{table}");
        let setup = browser.get(app.address, &format!("/ui/domains/{domain}")).await;
        assert!(
            setup.body.contains("303 messages the platform sent failed DKIM"),
            "the advice on p=none: {}",
            setup.body
        );

        // What holds no report says so; the operator (admin token) hands in reports about any domain.
        let (status, body) = hand_in(&app, &owner, b"hello").await;
        assert_eq!((status, body["code"].as_str()), (422, Some("invalid_report")), "{body}");
        // Counted for the operator.
        let (_, metrics) = http::call_text(app.address, "GET", "/metrics", None, None).await;
        let counted = |line: &str| {
            metrics
                .lines()
                .find(|text| text.starts_with(line))
                .and_then(|text| text.rsplit(' ').next()?.parse::<u64>().ok())
        };
        assert_eq!(counted("senderauth_dmarc_reports_total{outcome=\"duplicate\"}"), Some(2), "{metrics}");
        assert!(
            counted("senderauth_dmarc_reports_total{outcome=\"refused\"}").is_some_and(|count| count >= 3),
            "{metrics}"
        );
        assert_eq!(
            counted("senderauth_dmarc_messages_total{class=\"platform_ok\"}"),
            Some(40 + 4000 + 5000),
            "{metrics}"
        );
        let (status, body) =
            hand_in(&app, &app.admin, report("elsewhere.example.net", "op-1", now, &rows[..1]).as_bytes()).await;
        assert_eq!((status, body["reports"][0]["duplicate"].as_bool()), (201, Some(false)), "{body}");
    }
}

#[tokio::test]
async fn receivers_are_set_against_what_the_gateway_sent_and_dmarc_events_reach_the_webhooks() {
    use std::sync::atomic::Ordering;
    const DAY: i64 = 86_400;
    for app in apps().await {
        let owner = app.account("Covered").await;
        let receiver = crate::webhooks::Receiver::default();
        let hook = crate::webhooks::start_receiver(receiver.clone()).await;
        let body = format!(r#"{{"url": "http://{hook}/hook"}}"#);
        let (status, webhook) = app.call("POST", "/api/v1/webhooks", Some(&owner), Some(&body)).await;
        assert_eq!(status, 201, "{webhook}");
        // Day 20 at noon.
        let start = 20 * DAY + DAY / 2;
        app.clock.store(start, Ordering::Relaxed);
        let at = |day: i64| 20 * DAY + day * DAY + DAY / 2;
        let domain = "covered.example.com";
        app.call("POST", "/api/v1/domains", Some(&owner), Some(r#"{"email": "news@covered.example.com"}"#)).await;
        app.dns.publish_customer(1, domain);
        http::publish_hosted_keys(&app.dns, app.address, &owner, domain).await;
        assert_eq!(app.call("POST", &format!("/api/v1/domains/{domain}/verify"), Some(&owner), None).await.0, 200);
        let (_, keys) = app.call("GET", &format!("/api/v1/domains/{domain}/dkim"), Some(&owner), None).await;
        let selector = keys["keys"][0]["selector"].as_str().expect("selector").to_string();
        let (_, page) = app.call("GET", &format!("/api/v1/domains/{domain}"), Some(&owner), None).await;
        assert!(page["next_check_at"].as_i64().is_some_and(|next| next > start), "{page}");

        // The gateway signs mail for the domain to Gmail, Outlook.com and a company's own server.
        let recipients = ["a@gmail.com", "b@googlemail.com", "c@hotmail.com", "d@mail.corp.example.org"];
        app.service.count_sent(domain, recipients, start - DAY);
        app.service.count_sent(domain, ["e@gmail.com"], start - DAY);
        assert_eq!(app.service.flush_sent().await.expect("written"), 3, "Google, Microsoft, example.org");

        let google = ("google.com", "noreply-dmarc-support@google.com");
        let microsoft = ("Enterprise Outlook", "dmarcreport@microsoft.com");
        let ours = |count: u32| ("192.0.2.10", count, "pass", "pass", vec![(domain, selector.clone(), "pass")], None);
        let failing = ("192.0.2.12", 1, "fail", "fail", vec![(domain, selector.clone(), "fail")], None);
        let other = ("203.0.113.5", 7, "pass", "fail", vec![(domain, "google".to_string(), "pass")], None);
        // Google's first report (about day 19): the baseline, so no new source; one of the
        // platform's messages failed DKIM there.
        let (status, body) = hand_in(
            &app,
            &owner,
            report_by(google, domain, "g-19", start, &[ours(2), failing.clone(), other.clone()]).as_bytes(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) =
            hand_in(&app, &owner, report_by(microsoft, domain, "m-19", start, &[ours(1)]).as_bytes()).await;
        assert_eq!(status, 201, "{body}");
        // The failing mail brings the domain's next check forward to now.
        let (_, page) = app.call("GET", &format!("/api/v1/domains/{domain}"), Some(&owner), None).await;
        assert_eq!(page["next_check_at"].as_i64(), Some(start), "{page}");

        let (_, summary) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc?days=14"), Some(&owner), None).await;
        let receivers = summary["receivers"].as_array().expect("receivers").clone();
        let row = |name: &str| receivers.iter().find(|row| row["receiver"] == name).cloned().unwrap_or(Value::Null);
        assert_eq!(
            (
                row("google.com")["name"].as_str(),
                row("google.com")["sent"].as_i64(),
                row("google.com")["reported_platform"].as_i64()
            ),
            (Some("Google"), Some(3), Some(3)),
            "{summary}"
        );
        assert_eq!(
            (row("google.com")["reported"].as_i64(), row("google.com")["state"].as_str()),
            (Some(10), Some("reporting"))
        );
        assert_eq!(
            (row("microsoft.com")["sent"].as_i64(), row("microsoft.com")["state"].as_str()),
            (Some(1), Some("reporting"))
        );
        assert_eq!(
            (
                row("example.org")["sent"].as_i64(),
                row("example.org")["state"].as_str(),
                row("example.org")["last_report"].as_str()
            ),
            (Some(1), Some("no_reports"), None),
            "{summary}"
        );

        // Two days on, Google reports day 21 with a sender never seen before; the gateway keeps
        // sending to both.
        app.clock.store(at(2), Ordering::Relaxed);
        app.service.count_sent(domain, ["a@gmail.com", "c@outlook.com"], at(1));
        app.service.flush_sent().await.expect("written");
        let stranger = ("198.51.100.99", 4, "fail", "fail", Vec::new(), None);
        let (status, body) = hand_in(
            &app,
            &owner,
            report_by(google, domain, "g-21", at(2), &[ours(1), other.clone(), stranger]).as_bytes(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        // The sources' names are looked up in the background: shown when they resolve back to
        // the address (a PTR anyone can set is not enough).
        app.dns.add_zone("in-addr.arpa");
        app.dns.add("5.113.0.203.in-addr.arpa", "PTR", "mta.other.example.com");
        app.dns.add("mta.other.example.com", "A", "203.0.113.5");
        app.dns.add("99.100.51.198.in-addr.arpa", "PTR", "mail.google.com.example.com");
        assert!(app.service.resolve_source_names().await.expect("looked up") >= 3);
        assert_eq!(app.service.resolve_source_names().await.expect("looked up"), 0, "not again so soon");
        let (_, sources) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/sources?days=14"), Some(&owner), None).await;
        let name = |ip: &str| {
            sources["sources"]
                .as_array()
                .expect("sources")
                .iter()
                .find(|source| source["source_ip"] == ip)
                .map(|s| s["name"].clone())
        };
        assert_eq!(name("203.0.113.5"), Some(Value::from("mta.other.example.com")), "{sources}");
        assert_eq!(name("198.51.100.99"), Some(Value::Null), "a name that does not lead back is not shown");
        assert_eq!(name("192.0.2.10"), Some(Value::Null), "no PTR");

        // Day 22: nothing is missing yet (Microsoft's report about day 21 may still come).
        assert_eq!(app.service.check_report_coverage().await.expect("checked"), 0);
        // Day 23: Microsoft was sent mail on day 21 and reported nothing after day 19.
        app.clock.store(at(3), Ordering::Relaxed);
        assert_eq!(app.service.check_report_coverage().await.expect("checked"), 1, "Microsoft stopped reporting");
        assert_eq!(app.service.check_report_coverage().await.expect("checked"), 0, "said once");
        let (_, summary) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc?days=14"), Some(&owner), None).await;
        let receivers = summary["receivers"].as_array().expect("receivers").clone();
        let state = |name: &str| receivers.iter().find(|row| row["receiver"] == name).map(|row| row["state"].clone());
        assert_eq!(state("microsoft.com"), Some(Value::from("reports_missing")), "{summary}");
        assert_eq!(state("google.com"), Some(Value::from("reporting")), "{summary}");
        // The reports page shows the same, receiver by receiver.
        let (mut browser, _) = crate::ui::signed_in(&app, &owner).await;
        let page = browser.get(app.address, &format!("/ui/domains/{domain}/reports")).await;
        let table = &page.body[page.body.find("id=\"receivers\"").expect("the receivers table")..];
        assert!(table.contains("data-receiver=\"microsoft.com\" data-state=\"reports_missing\""), "{table}");
        assert!(
            table.contains("<td data-label=\"Receiver\">Microsoft</td><td data-label=\"We sent\">2</td>"),
            "{table}"
        );
        assert!(table.contains("data-receiver=\"example.org\" data-state=\"no_reports\""), "{table}");

        // The events reach the account's webhook, signed like status changes; the status
        // history keeps status changes only.
        let deliverer = senderauth_service::webhooks::Deliverer::new(
            app.store.clone(),
            "test".to_string(),
            std::sync::Arc::default(),
            senderauth_service::webhooks::Targets::Any,
            app.keys.master.clone(),
        )
        .expect("deliverer");
        deliverer.deliver_once(at(3)).await.expect("delivered");
        let received = receiver.received.lock().expect("lock").clone();
        let events: Vec<Value> = received.iter().map(|(_, body)| serde_json::from_str(body).expect("JSON")).collect();
        let event = |kind: &str| events.iter().find(|event| event["type"] == kind).cloned().unwrap_or(Value::Null);
        let failing_event = event("dmarc.platform_failing");
        assert_eq!(
            (
                failing_event["data"]["domain"].as_str(),
                failing_event["data"]["receiver"].as_str(),
                failing_event["data"]["failing_messages"].as_i64()
            ),
            (Some(domain), Some("google.com"), Some(1)),
            "{events:?}"
        );
        assert_eq!(failing_event["data"]["sources"], serde_json::json!(["192.0.2.12"]));
        let new_source = event("dmarc.new_source");
        assert_eq!(
            (new_source["data"]["new_sources"].as_i64(), new_source["data"]["sources"][0]["source_ip"].as_str()),
            (Some(1), Some("198.51.100.99")),
            "{events:?}"
        );
        assert_eq!(new_source["data"]["sources"][0]["class"], "unauthenticated");
        let missing = event("dmarc.reports_missing");
        assert_eq!(
            (
                missing["data"]["receiver_name"].as_str(),
                missing["data"]["last_report"].as_str(),
                missing["data"]["last_sent"].as_str()
            ),
            (Some("Microsoft"), Some("1970-01-20"), Some("1970-01-22")),
            "{events:?}"
        );
        assert_eq!(
            events.iter().filter(|event| event["type"] == "dmarc.new_source").count(),
            1,
            "not for the baseline"
        );
        let (_, metrics) = http::call_text(app.address, "GET", "/metrics", None, None).await;
        for event in ["platform_failing", "new_source", "reports_missing"] {
            let line = format!("senderauth_dmarc_events_total{{event=\"dmarc.{event}\"}} 1");
            assert!(metrics.lines().any(|text| text == line), "{line} in {metrics}");
        }
        // A failure report about the domain (a real receiver's, its domain changed): shown to
        // the account, redacted; another account does not find the route's domain.
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../../../shared/testdata/dmarc-reports/parsedmarc/samples/failure/dmarc_ruf_report_linkedin.crlf.eml",
        );
        let failure = String::from_utf8_lossy(&std::fs::read(&sample).expect("the shared sample"))
            .replace("Reported-Domain: example.com", &format!("Reported-Domain: {domain}"));
        let taken = app
            .service
            .take_report_message(failure.into_bytes(), senderauth_service::reports::ReportSource::Smtp)
            .await
            .expect("taken");
        assert!(matches!(taken, senderauth_service::feedback::Taken::Failure { .. }), "{taken:?}");
        let (status, failures) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/failures"), Some(&owner), None).await;
        assert_eq!(status, 200, "{failures}");
        let shown = &failures["failures"][0];
        assert_eq!((shown["source_ip"].as_str(), shown["auth_failure"].as_str()), (Some("10.10.10.10"), Some("dmarc")));
        assert!(!failures.to_string().contains("sender@example.com"), "{failures}");
        assert!(failures.to_string().contains("redacted@example.com"), "{failures}");
        let stranger = app.account("Stranger").await;
        let (status, _) =
            app.call("GET", &format!("/api/v1/domains/{domain}/dmarc/failures"), Some(&stranger), None).await;
        assert_eq!(status, 404);

        let (_, page) = app.call("GET", &format!("/api/v1/domains/{domain}"), Some(&owner), None).await;
        let history = page["history"].as_array().expect("history");
        assert!(
            history.iter().all(|change| change["event"].as_str().is_none_or(|e| !e.starts_with("dmarc."))),
            "{page}"
        );
    }
}
