//! The store's behaviour, the same scenarios on SQLite and on a real PostgreSQL.

use std::future::Future;

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::status::MethodStatus;
use senderauth_store::{CheckRecord, DomainZone, KeyState, NewKey, Principal, ReturnPathRecord, Store, StoreError};
use senderauth_testkit::database;
use sqlx::Connection;

async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    for database in [Some(database::sqlite()), database::postgres().await].into_iter().flatten() {
        let store = Store::connect(&database.url).await.expect("store");
        scenario(store, database.url.clone()).await;
        database.drop().await;
    }
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_only_their_hash_is_stored() {
    on_both(|store, url| async move {
        let account = store.create_account("Shop", None, 100).await.expect("account");
        let (token, secret) = store.create_token(Some(account.id), "deploy", 100).await.expect("token");
        assert!(secret.starts_with("sa_") && secret.len() == 67);
        assert_eq!(store.authenticate(&secret).await.expect("auth"), Some(Principal::Account(account.id)));
        assert_eq!(store.authenticate("sa_wrong").await.expect("auth"), None);
        let (_, admin_secret) = store.create_token(None, "bootstrap", 100).await.expect("admin token");
        assert_eq!(store.authenticate(&admin_secret).await.expect("auth"), Some(Principal::Admin));

        let listed = store.tokens(Some(account.id)).await.expect("list");
        assert_eq!(listed, vec![token.clone()]);
        assert!(
            !store.revoke_token(Some(account.id + 1), token.id, 200).await.expect("revoke"),
            "not another account's"
        );
        assert!(store.revoke_token(Some(account.id), token.id, 200).await.expect("revoke"));
        assert_eq!(store.authenticate(&secret).await.expect("auth"), None);
        assert_eq!(store.tokens(Some(account.id)).await.expect("list")[0].revoked_at, Some(200));

        // The database holds a hash, never the token.
        let mut connection = sqlx::AnyConnection::connect(&url).await.expect("raw connection");
        let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM api_tokens ORDER BY id LIMIT 1")
            .fetch_one(&mut connection)
            .await
            .expect("stored hash");
        assert_eq!(stored.len(), 32);
        assert!(!String::from_utf8_lossy(&stored).contains(&secret[3..]));
    })
    .await;
}

#[tokio::test]
async fn domains_are_per_account_and_conflicts_are_refused() {
    on_both(|store, _| async move {
        let first = store.create_account("First", None, 1).await.expect("account");
        let second = store.create_account("Second", Some(2), 1).await.expect("account");
        let added = store.add_domain(first.id, "news.example.com", 10).await.expect("add");
        assert_eq!(added.status.as_str(), "not_verified");
        assert_eq!(added.next_check_at, Some(10), "a new domain is due at once");
        let duplicate = store.add_domain(first.id, "news.example.com", 11).await;
        assert!(matches!(duplicate, Err(StoreError::DomainExists { ref domain }) if domain == "news.example.com"));
        // Another account may connect the same domain; it does not see the first one's.
        store.add_domain(second.id, "news.example.com", 12).await.expect("same domain, other account");
        assert!(store.domain(second.id, "news.example.com").await.expect("read").is_some());
        store.add_domain(first.id, "shop.example.com", 13).await.expect("add");
        assert!(store.domain(second.id, "shop.example.com").await.expect("read").is_none(), "B cannot see A's domain");
        assert!(
            !store.delete_domain(second.id, "shop.example.com", 100).await.expect("delete"),
            "B cannot delete A's domain"
        );
        // The second account's limit is 2.
        store.add_domain(second.id, "a.example.org", 14).await.expect("second domain");
        let over = store.add_domain(second.id, "b.example.org", 15).await;
        assert!(matches!(over, Err(StoreError::DomainLimitReached { count: 2 })));
    })
    .await;
}

#[tokio::test]
async fn listing_filters_by_status_and_pages_in_name_order() {
    on_both(|store, _| async move {
        let account = store.create_account("Lister", None, 1).await.expect("account");
        for n in 0..25 {
            let added = store.add_domain(account.id, &format!("d{n:02}.example.com"), 1).await.expect("add");
            if n % 5 == 0 {
                let check = check("verified", 50, 1000);
                store.record_check(added.id, &check).await.expect("record");
            }
        }
        let first_page = store.domains(account.id, None, None, 10).await.expect("page");
        assert_eq!(first_page.len(), 10);
        assert_eq!(first_page[0].domain, "d00.example.com");
        let second_page = store.domains(account.id, None, Some(&first_page[9].domain), 10).await.expect("page");
        assert_eq!(second_page[0].domain, "d10.example.com");
        let verified = store.domains(account.id, Some("verified"), None, 100).await.expect("filtered");
        let names: Vec<&str> = verified.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(
            names,
            ["d00.example.com", "d05.example.com", "d10.example.com", "d15.example.com", "d20.example.com"]
        );
        assert_eq!(verified[0].last_checked_at, Some(50), "a page carries each domain's check times");
        assert_eq!(verified[0].next_check_at, Some(1000));
        assert_eq!(first_page[1].last_checked_at, None, "never checked");

        // Names whose order depends on the collation (a hyphen): walking the pages with the
        // last name of each as the cursor meets every domain once, whatever the backend's order.
        for name in ["x-1.example.com", "x1.example.com", "x-2.example.com", "x_1.example.com"] {
            store.add_domain(account.id, name, 1).await.expect("add");
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.domains(account.id, None, after.as_deref(), 4).await.expect("page");
            seen.extend(page.iter().map(|d| d.domain.clone()));
            if page.len() < 4 {
                break;
            }
            after = page.last().map(|d| d.domain.clone());
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (29, 29), "every domain once: {seen:?}");

        // A search takes `_` and `%` literally.
        let found = store.domains_matching(account.id, None, "X_1", None, 10).await.expect("search");
        let names: Vec<&str> = found.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(names, ["x_1.example.com"]);
        let found = store.domains_matching(account.id, Some("verified"), "d1", None, 10).await.expect("search");
        let names: Vec<&str> = found.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(names, ["d10.example.com", "d15.example.com"]);
        let other = store.create_account("Other", None, 1).await.expect("account");
        assert!(store.domains(other.id, None, None, 10).await.expect("empty").is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_search_finds_rare_and_common_names_in_a_large_account() {
    on_both(|store, _| async move {
        let account = store.create_account("Large", None, 1).await.expect("account");
        // More names than the search reads in order before it asks the index (5,000), and the
        // rare ones at the end of the list.
        for number in 0..5200 {
            store.add_domain(account.id, &format!("n{number:05}.example.com"), 1).await.expect("add");
        }
        for name in ["zz-rare-1.example.com", "zz-rare-2.example.com", "zz-rare-3.example.com"] {
            let added = store.add_domain(account.id, name, 1).await.expect("add");
            if name.ends_with("2.example.com") {
                store.record_check(added.id, &check("verified", 50, 1000)).await.expect("record");
            }
        }
        let names =
            |found: Vec<senderauth_store::DomainRecord>| found.into_iter().map(|d| d.domain).collect::<Vec<_>>();
        let rare = names(store.domains_matching(account.id, None, "RARE", None, 50).await.expect("search"));
        assert_eq!(rare, ["zz-rare-1.example.com", "zz-rare-2.example.com", "zz-rare-3.example.com"]);
        let after = names(
            store.domains_matching(account.id, None, "rare", Some("zz-rare-1.example.com"), 50).await.expect("search"),
        );
        assert_eq!(after, ["zz-rare-2.example.com", "zz-rare-3.example.com"], "pages go on after the cursor");
        let verified =
            names(store.domains_matching(account.id, Some("verified"), "rare", None, 50).await.expect("search"));
        assert_eq!(verified, ["zz-rare-2.example.com"]);
        let common = names(store.domains_matching(account.id, None, "example", None, 50).await.expect("search"));
        assert_eq!(
            (common.len(), common[0].as_str()),
            (50, "n00000.example.com"),
            "a common text fills the page in order"
        );
        let short = names(store.domains_matching(account.id, None, "zz", None, 50).await.expect("search"));
        assert_eq!(short.len(), 3, "a short text is found too: {short:?}");
        // A word's beginning, not any part of it; words are split at dots and dashes.
        assert!(names(store.domains_matching(account.id, None, "are", None, 50).await.expect("search")).is_empty());
        let dashed = names(store.domains_matching(account.id, None, "rare-2", None, 50).await.expect("search"));
        assert_eq!(dashed, ["zz-rare-2.example.com"]);
        let deep = names(store.domains_matching(account.id, None, "n05199", None, 50).await.expect("search"));
        assert_eq!(deep, ["n05199.example.com"], "past the part read in order");
        // A word many names have, all of them late in the list: the first page in name order,
        // and the next one after it.
        for number in 0..300 {
            store.add_domain(account.id, &format!("zz-mail-{number:03}.example.net"), 1).await.expect("add");
            store.add_domain(account.id, &format!("zz-market-{number:03}.example.net"), 1).await.expect("add");
        }
        store.add_domain(account.id, "zz-mail.mailer.example.net", 1).await.expect("add");
        let mail = names(store.domains_matching(account.id, None, "mail", None, 50).await.expect("search"));
        let expected: Vec<String> = (0..50).map(|number| format!("zz-mail-{number:03}.example.net")).collect();
        assert_eq!(mail, expected);
        let last = mail.last().cloned();
        let next = names(store.domains_matching(account.id, None, "mail", last.as_deref(), 300).await.expect("search"));
        assert_eq!(next.len(), 251, "the rest, each once, the name with two such words too: {:?}", &next[245..]);
        assert_eq!(next.last().map(String::as_str), Some("zz-mail.mailer.example.net"));
        // A text that begins several words: their names merged in order, each once.
        let ma = names(
            store.domains_matching(account.id, None, "ma", Some("zz-mail-298.example.net"), 4).await.expect("search"),
        );
        assert_eq!(
            ma,
            [
                "zz-mail-299.example.net",
                "zz-mail.mailer.example.net",
                "zz-market-000.example.net",
                "zz-market-001.example.net"
            ]
        );
        // A text that begins many words (n05100 to n05199 begin with n051): their names, sorted.
        let many = names(
            store.domains_matching(account.id, None, "n051", Some("n05150.example.com"), 60).await.expect("search"),
        );
        assert_eq!((many.len(), many[0].as_str(), many[48].as_str()), (49, "n05151.example.com", "n05199.example.com"));
        // A text that begins more words than that have names (n00000 to n05199): the list in order.
        let dense = names(
            store.domains_matching(account.id, None, "n0", Some("n00049.example.com"), 50).await.expect("search"),
        );
        assert_eq!(
            (dense.len(), dense[0].as_str(), dense[49].as_str()),
            (50, "n00050.example.com", "n00099.example.com")
        );
        let dense = names(store.domains_matching(account.id, Some("verified"), "n", None, 50).await.expect("search"));
        assert!(dense.is_empty(), "none of them verified: {dense:?}");
        // Several words: the first whole, the last begun.
        let words = names(store.domains_matching(account.id, None, "mail.mailer.ex", None, 50).await.expect("search"));
        assert_eq!(words, ["zz-mail.mailer.example.net"]);
        assert!(
            names(store.domains_matching(account.id, None, "mai.mailer", None, 50).await.expect("search")).is_empty()
        );
        // A removed domain is not found any more; another account's are never found.
        assert!(store.delete_domain(account.id, "zz-rare-3.example.com", 2).await.expect("delete"));
        let rare = names(store.domains_matching(account.id, None, "rare", None, 50).await.expect("search"));
        assert_eq!(rare, ["zz-rare-1.example.com", "zz-rare-2.example.com"]);
        let other = store.create_account("Other", None, 1).await.expect("account");
        assert!(store.domains_matching(other.id, None, "rare", None, 50).await.expect("search").is_empty());
    })
    .await;
}

fn check(status: &str, at: i64, next: i64) -> CheckRecord {
    CheckRecord {
        checked_at: at,
        status: LifecycleStatus::parse(status).expect("a status"),
        event: Some(format!("domain.{status}")),
        setup_started_at: 1,
        degraded_since: None,
        dkim_status: MethodStatus::Verified,
        spf_status: if status == "verified" { MethodStatus::Verified } else { MethodStatus::NotVerified },
        dmarc_status: MethodStatus::Verified,
        result_json: format!("{{\"status\":\"{status}\"}}"),
        problem_codes: if status == "verified" { "" } else { "spf_missing" }.to_string(),
        requested: false,
        next_check_at: Some(next),
        consecutive_failures: 0,
        return_path: ReturnPathRecord {
            method_status: MethodStatus::NotVerified,
            status: LifecycleStatus::NotVerified,
            failures: 0,
            degraded_since: None,
            event: None,
        },
    }
}

#[tokio::test]
async fn checks_keep_the_latest_result_and_a_history_of_status_changes() {
    on_both(|store, _| async move {
        let account = store.create_account("History", None, 1).await.expect("account");
        let domain = store.add_domain(account.id, "h.example.com", 100).await.expect("add");
        let event = store.record_check(domain.id, &check("partially_verified", 160, 400)).await.expect("record");
        assert_eq!(
            event.map(|e| (e.from_status, e.to_status)),
            Some((Some(LifecycleStatus::NotVerified), LifecycleStatus::PartiallyVerified))
        );
        assert_eq!(store.record_check(domain.id, &check("partially_verified", 400, 1000)).await.expect("record"), None);
        store.record_check(domain.id, &check("verified", 1000, 90_000)).await.expect("record");
        let latest = store.latest_result(domain.id).await.expect("latest").expect("a result");
        assert_eq!((latest.checked_at, latest.status.as_str()), (1000, "verified"));
        let stored = store.domain(account.id, "h.example.com").await.expect("read").expect("domain");
        assert_eq!(
            (stored.status.as_str(), stored.last_checked_at, stored.next_check_at),
            ("verified", Some(1000), Some(90_000))
        );
        let events: Vec<Option<String>> =
            store.history(domain.id).await.expect("history").into_iter().map(|e| e.event).collect();
        assert_eq!(events, [None, Some("domain.partially_verified".into()), Some("domain.verified".into())]);
        let history: Vec<(i64, String)> = store
            .history(domain.id)
            .await
            .expect("history")
            .into_iter()
            .map(|e| (e.at, e.to_status.as_str().to_string()))
            .collect();
        assert_eq!(
            history,
            [(100, "not_verified".into()), (160, "partially_verified".into()), (1000, "verified".into())]
        );
        // The check log: the two alike checks are one run, newest first; pages go back in time.
        store.record_check(domain.id, &check("verified", 2000, 90_000)).await.expect("record");
        // A check that started before the one recorded last (a background check finishing after
        // a Verify) is stale: nothing changes.
        let stale = store.record_check(domain.id, &check("partially_verified", 1500, 1600)).await.expect("record");
        assert_eq!(stale, None);
        let stored = store.domain(account.id, "h.example.com").await.expect("read").expect("domain");
        assert_eq!((stored.status.as_str(), stored.last_checked_at), ("verified", Some(2000)));
        let runs = store.check_runs(account.id, "h.example.com", None, 10).await.expect("log");
        let summary: Vec<(i64, i64, i64, &str, &str)> = runs
            .iter()
            .map(|run| (run.first_at, run.last_at, run.checks, run.status.as_str(), run.problem_codes.as_str()))
            .collect();
        assert_eq!(summary, [(1000, 2000, 2, "verified", ""), (160, 400, 2, "partially_verified", "spf_missing")]);
        let older = store.check_runs(account.id, "h.example.com", Some(runs[0].id), 10).await.expect("log");
        assert_eq!(older.len(), 1);
        let other = store.create_account("Other", None, 1).await.expect("account");
        assert!(
            store.check_runs(other.id, "h.example.com", None, 10).await.expect("log").is_empty(),
            "not another account's"
        );
        // In the same second as the last recorded check, a scheduled check is stale but one the
        // customer asked for (Verify) is recorded.
        assert_eq!(
            store.record_check(domain.id, &check("partially_verified", 2000, 2100)).await.expect("record"),
            None
        );
        let asked = CheckRecord { requested: true, ..check("partially_verified", 2000, 2100) };
        let event = store.record_check(domain.id, &asked).await.expect("record").expect("a status change");
        assert_eq!(event.to_status, LifecycleStatus::PartiallyVerified);
        // Deleting the domain takes its results and history with it.
        assert!(store.delete_domain(account.id, "h.example.com", 100).await.expect("delete"));
        assert!(store.latest_result(domain.id).await.expect("latest").is_none());
        assert!(store.history(domain.id).await.expect("history").is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_checks_is_recorded_together_and_a_removed_domain_does_not_stop_the_others() {
    on_both(|store, _| async move {
        let account = store.create_account("Batch", None, 1).await.expect("account");
        let kept = store.add_domain(account.id, "kept.example.com", 100).await.expect("add");
        let removed = store.add_domain(account.id, "removed.example.com", 100).await.expect("add");
        let unchanged = store.add_domain(account.id, "unchanged.example.com", 100).await.expect("add");
        assert!(store.delete_domain(account.id, "removed.example.com", 100).await.expect("delete"));
        let (verified, pending) = (check("verified", 200, 90_000), check("pending", 200, 260));
        let outcomes = store
            .record_checks(&[(kept.id, &verified), (removed.id, &verified), (unchanged.id, &pending)])
            .await
            .expect("the batch is written");
        assert!(
            matches!(&outcomes[0], Ok(Some(event)) if event.to_status == LifecycleStatus::Verified),
            "{outcomes:?}"
        );
        assert!(matches!(&outcomes[1], Err(StoreError::Gone { .. })), "{outcomes:?}");
        assert!(matches!(&outcomes[2], Ok(None)), "{outcomes:?}");

        // The domain page's one query: the domain with its latest result and history, or
        // without a result before its first check.
        let page = store.domain_page(account.id, "kept.example.com").await.expect("read").expect("domain");
        assert_eq!((page.record.status.as_str(), page.record.next_check_at), ("verified", Some(90_000)));
        assert_eq!(
            page.result.map(|result| (result.checked_at, result.status)),
            Some((200, LifecycleStatus::Verified))
        );
        assert_eq!(page.history, store.history(kept.id).await.expect("history"));
        let changes: Vec<(Option<&str>, &str, Option<&str>)> = page
            .history
            .iter()
            .map(|event| {
                (event.from_status.map(LifecycleStatus::as_str), event.to_status.as_str(), event.event.as_deref())
            })
            .collect();
        assert_eq!(
            changes,
            [(None, "not_verified", None), (Some("not_verified"), "verified", Some("domain.verified"))]
        );
        let fresh = store.add_domain(account.id, "fresh.example.com", 300).await.expect("add");
        let page = store.domain_page(account.id, "fresh.example.com").await.expect("read").expect("domain");
        assert_eq!((page.record.id, page.result, page.history.len()), (fresh.id, None, 1));
        let other = store.create_account("Other", None, 1).await.expect("account");
        assert!(store.domain_page(other.id, "kept.example.com").await.expect("read").is_none());
    })
    .await;
}

#[tokio::test]
async fn reserved_domains_and_a_restart_keep_their_data() {
    on_both(|store, url| async move {
        store.reserve_domain("www.example.com", "website", 1).await.expect("reserve");
        store.reserve_domain("www.example.com", "website hosting", 2).await.expect("reserve again updates");
        assert!(store.is_reserved("www.example.com").await.expect("check"));
        assert!(!store.is_reserved("mail.www.example.com").await.expect("check"), "subdomains stay allowed");
        let account = store.create_account("Persistent", None, 1).await.expect("account");
        drop(store);
        // Connecting again runs the migrations again, which must change nothing.
        let reopened = Store::connect(&url).await.expect("reopen");
        assert_eq!(
            reopened.reserved_domains().await.expect("list"),
            [("www.example.com".into(), "website hosting".into())]
        );
        assert_eq!(reopened.account(account.id).await.expect("read").map(|a| a.name), Some("Persistent".into()));
        assert!(reopened.unreserve_domain("www.example.com").await.expect("unreserve"));
        assert!(!reopened.is_reserved("www.example.com").await.expect("check"));
    })
    .await;
}

#[tokio::test]
async fn a_bad_database_url_is_explained() {
    let error = Store::connect("mysql://localhost/db").await.expect_err("unsupported");
    assert!(error.to_string().contains("sqlite://") && error.to_string().contains("postgres://"), "{error}");
}

#[tokio::test]
async fn due_domains_are_claimed_once_most_overdue_first_until_the_lease_ends() {
    on_both(|store, _| async move {
        let account = store.create_account("Due", None, 1).await.expect("account");
        let early = store.add_domain(account.id, "early.example.com", 100).await.expect("add");
        let late = store.add_domain(account.id, "late.example.com", 50).await.expect("add");
        let parked = store.add_domain(account.id, "parked.example.com", 10).await.expect("add");
        let mut failed = check("failed", 20, 0);
        failed.next_check_at = None;
        store.record_check(parked.id, &failed).await.expect("record");

        assert_eq!(store.claim_due("node-a", 75, 500, 10).await.expect("claim").len(), 1, "only what is due by then");
        let second: Vec<String> =
            store.claim_due("node-b", 200, 600, 10).await.expect("claim").into_iter().map(|d| d.domain).collect();
        assert_eq!(second, ["early.example.com"], "late is leased to node-a; parked is not scheduled");
        assert!(store.claim_due("node-c", 200, 600, 10).await.expect("claim").is_empty(), "nothing is claimed twice");
        // node-a dies without recording; once its lease ends, another node takes the domain.
        let taken_over = store.claim_due("node-c", 500, 900, 10).await.expect("claim");
        assert_eq!(taken_over.iter().map(|d| d.id).collect::<Vec<_>>(), [late.id], "node-b's lease still holds");
        // Recording a check ends the lease; releasing one makes the domain due again at once.
        store.record_check(late.id, &check("pending", 520, 550)).await.expect("record");
        store.release(early.id, "node-b").await.expect("release");
        let due: Vec<i64> =
            store.claim_due("node-d", 560, 900, 10).await.expect("claim").into_iter().map(|d| d.id).collect();
        assert_eq!(due, [early.id, late.id], "early is overdue since 100, late since 550");
    })
    .await;
}

#[tokio::test]
async fn concurrent_claims_take_every_due_domain_exactly_once() {
    on_both(|store, _| async move {
        let account = store.create_account("Busy", None, 1).await.expect("account");
        for n in 0..300 {
            store.add_domain(account.id, &format!("d{n:03}.example.com"), n).await.expect("add");
        }
        // Four nodes claim at the same time, in batches, until nothing is left.
        let claimers: Vec<_> = (0..4)
            .map(|node| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_due(&format!("node-{node}"), 1_000, 10_000, 25).await.expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|domain| domain.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.expect("claimer"));
        }
        let claimed = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!((claimed, all.len()), (300, 300), "each of the 300 domains claimed once, none twice");
    })
    .await;
}

fn key(selector: &str, name: &str, state: KeyState) -> NewKey {
    NewKey {
        selector: selector.to_string(),
        name: name.to_string(),
        algorithm: "ed25519".to_string(),
        public_key: format!("public-{selector}"),
        sealed_private_key: vec![1, 2, 3, selector.len() as u8],
        master_key_id: "k1".to_string(),
        state,
    }
}

const SHOP_AUTHORIZATION: &str = "shop.example.com._report._dmarc.reports.esp.example";
const ROOT_AUTHORIZATION: &str = "example.com._report._dmarc.reports.esp.example";

#[tokio::test]
async fn a_domains_keys_and_include_are_published_with_it_and_leave_with_it() {
    on_both(|store, _| async move {
        let account = store.create_account("Keys", None, 1).await.expect("account");
        let zone = DomainZone {
            spf_include: Some("1.spf.esp.example".to_string()),
            keys: vec![
                key("sa1-1", "sa1-1.shop-example-com.dkim.esp.example", KeyState::Active),
                key("sa2-1", "sa2-1.shop-example-com.dkim.esp.example", KeyState::Standby),
            ],
            report_authorizations: vec![SHOP_AUTHORIZATION.to_string(), ROOT_AUTHORIZATION.to_string()],
            return_path: Some("shop-example-com.rp.esp.example".to_string()),
        };
        let shop = store.add_domain_with(account.id, "shop.example.com", 100, &zone).await.expect("add");
        let second = DomainZone {
            spf_include: Some("1.spf.esp.example".to_string()),
            keys: vec![key("sa1-1", "sa1-1.news-example-com.dkim.esp.example", KeyState::Active)],
            report_authorizations: vec![ROOT_AUTHORIZATION.to_string()],
            return_path: Some("news-example-com.rp.esp.example".to_string()),
        };
        store.add_domain_with(account.id, "news.example.com", 100, &second).await.expect("add");

        let keys = store.domain_keys(shop.id).await.expect("keys");
        let states: Vec<(&str, KeyState, Option<i64>)> =
            keys.iter().map(|key| (key.selector.as_str(), key.state, key.active_at)).collect();
        assert_eq!(states, [("sa1-1", KeyState::Active, Some(100)), ("sa2-1", KeyState::Standby, None)]);
        let sealed = store.sealed_key(keys[0].id).await.expect("read").expect("the sealed key");
        assert_eq!((sealed.master_key_id.as_str(), sealed.sealed), ("k1", vec![1, 2, 3, 5]));

        let contents = store.zone_contents().await.expect("zone");
        assert_eq!(contents.keys.len(), 3);
        assert_eq!(contents.spf_includes, ["1.spf.esp.example"], "one include per account, however many domains");
        let mut authorizations = contents.report_authorizations.clone();
        authorizations.sort();
        assert_eq!(authorizations, [ROOT_AUTHORIZATION, SHOP_AUTHORIZATION], "each name once");
        let mut return_paths = contents.return_paths.clone();
        return_paths.sort();
        assert_eq!(return_paths, ["news-example-com.rp.esp.example", "shop-example-com.rp.esp.example"]);
        // Ten names changed: three keys and the include, twice, three authorizations and two
        // return-path targets.
        let changes = store.zone_changes(0, 100).await.expect("changes");
        assert_eq!(changes.len(), 10);
        assert_eq!(contents.last_change, changes[9].0);

        // Removing a domain logs its names; the include stays while the account has a domain.
        assert!(store.delete_domain(account.id, "shop.example.com", 100).await.expect("delete"));
        let logged: Vec<String> = store
            .zone_changes(contents.last_change, 100)
            .await
            .expect("changes")
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        for name in [
            "sa1-1.shop-example-com.dkim.esp.example",
            "sa2-1.shop-example-com.dkim.esp.example",
            "1.spf.esp.example",
            SHOP_AUTHORIZATION,
            ROOT_AUTHORIZATION,
            "shop-example-com.rp.esp.example",
        ] {
            assert!(logged.iter().any(|logged| logged == name), "{name} not in {logged:?}");
        }
        assert!(!store.name_contents("shop-example-com.rp.esp.example").await.expect("read").return_path);
        assert!(store.name_contents("news-example-com.rp.esp.example").await.expect("read").return_path);

        // A new target template moves every domain's target; a second sync has nothing to do.
        let before = store.zone_changes(0, 1000).await.expect("changes").len();
        let moved = store
            .sync_return_paths(|_, domain| Some(format!("{}.bounce.esp.example", domain.replace('.', "-"))), 200)
            .await
            .expect("sync");
        assert_eq!(moved, 2, "the old name withdrawn and the new one published");
        assert!(!store.name_contents("news-example-com.rp.esp.example").await.expect("read").return_path);
        assert!(store.name_contents("news-example-com.bounce.esp.example").await.expect("read").return_path);
        assert_eq!(store.zone_changes(0, 1000).await.expect("changes").len(), before + 2);
        assert_eq!(
            store
                .sync_return_paths(|_, domain| Some(format!("{}.bounce.esp.example", domain.replace('.', "-"))), 300)
                .await
                .expect("sync"),
            0
        );
        let gone = store.name_contents("sa1-1.shop-example-com.dkim.esp.example").await.expect("read");
        assert!(gone.keys.is_empty() && !gone.spf_include);
        assert!(store.name_contents("1.spf.esp.example").await.expect("read").spf_include);
        // A report authorization stays while a domain needs it.
        assert!(!store.name_contents(SHOP_AUTHORIZATION).await.expect("read").report_authorization);
        assert!(store.name_contents(ROOT_AUTHORIZATION).await.expect("read").report_authorization, "news needs it");
        assert!(store.domain_keys(shop.id).await.expect("keys").is_empty(), "its keys went with it");

        // Resealing replaces a key only if it is still sealed as it was read.
        let news = store.zone_contents().await.expect("zone").keys;
        assert_eq!(store.keys_sealed_under_other("k2", 10).await.expect("read").len(), 1);
        let sealed = store.sealed_key(news[0].id).await.expect("read").expect("key");
        assert!(store.reseal_key(&sealed, "k2", &[9, 9]).await.expect("reseal"));
        assert!(!store.reseal_key(&sealed, "k2", &[8, 8]).await.expect("reseal"), "already resealed");
        assert_eq!(store.sealed_key(news[0].id).await.expect("read").expect("key").sealed, vec![9, 9]);
        assert!(store.keys_sealed_under_other("k2", 10).await.expect("read").is_empty());
        assert_eq!(store.count_keys_sealed_under("k2").await.expect("count"), 1);
    })
    .await;
}

#[tokio::test]
async fn sandbox_zones_belong_to_one_account_and_their_records_reach_the_change_log() {
    on_both(|store, _| async move {
        let first = store.create_account("First", None, 1).await.expect("account");
        let second = store.create_account("Second", None, 1).await.expect("account");
        let zone = store.create_sandbox_zone(first.id, "example.com", 10).await.expect("zone");
        assert_eq!((zone.apex.as_str(), zone.records), ("example.com", 0));
        // Again by its owner: the same zone; by another account: refused.
        assert_eq!(store.create_sandbox_zone(first.id, "example.com", 11).await.expect("again").id, zone.id);
        let taken = store.create_sandbox_zone(second.id, "example.com", 12).await;
        assert!(matches!(taken, Err(StoreError::ZoneTaken { .. })));
        assert!(store.sandbox_zone(second.id, "example.com").await.expect("read").is_none());
        assert!(store.sandbox_zones(second.id).await.expect("list").is_empty());

        let after = store.zone_changes(0, 1000).await.expect("changes").last().map_or(0, |(id, _)| *id);
        let id =
            store.add_sandbox_record(zone.id, "_dmarc.example.com", "TXT", "v=DMARC1; p=none;", 13).await.expect("add");
        store.add_sandbox_record(zone.id, "shop.example.com", "TXT", "v=spf1 -all", 13).await.expect("add");
        assert_eq!(store.sandbox_zones(first.id).await.expect("list")[0].records, 2);
        let records = store.sandbox_records(zone.id).await.expect("records");
        assert_eq!(
            records.iter().map(|record| record.name.as_str()).collect::<Vec<_>>(),
            ["_dmarc.example.com", "shop.example.com"]
        );
        let contents = store.name_contents("_dmarc.example.com").await.expect("contents");
        assert_eq!(contents.sandbox_records.len(), 1);
        assert!(!contents.sandbox_apex && store.name_contents("example.com").await.expect("apex").sandbox_apex);
        let (apexes, all) = store.sandbox_contents().await.expect("contents");
        assert_eq!((apexes, all.len()), (vec!["example.com".to_string()], 2));

        assert!(store.remove_sandbox_record(zone.id, id, 14).await.expect("remove"));
        assert!(!store.remove_sandbox_record(zone.id, id, 15).await.expect("gone already"));
        let changed: Vec<String> =
            store.zone_changes(after, 1000).await.expect("changes").into_iter().map(|(_, name)| name).collect();
        assert_eq!(changed, ["_dmarc.example.com", "shop.example.com", "_dmarc.example.com"]);
    })
    .await;
}

#[tokio::test]
async fn report_authorizations_are_brought_in_line_with_the_report_address() {
    on_both(|store, _| async move {
        let account = store.create_account("Earlier", None, 1).await.expect("account");
        // Connected before the platform collected reports: no authorization.
        store.add_domain(account.id, "shop.example.com", 1).await.expect("add");
        let under = |host: &'static str| move |domain: &str| vec![format!("{domain}._report._dmarc.{host}")];
        let first_host = Some("._report._dmarc.reports.esp.example");
        let second_host = Some("._report._dmarc.dmarc.esp.example");
        assert_eq!(
            store.sync_report_authorizations(first_host, under("reports.esp.example"), 2).await.expect("sync"),
            1
        );
        let first = "shop.example.com._report._dmarc.reports.esp.example";
        assert!(store.name_contents(first).await.expect("read").report_authorization);
        assert_eq!(
            store.sync_report_authorizations(first_host, under("reports.esp.example"), 3).await.expect("sync"),
            0,
            "in line"
        );
        // Another report address: the old name withdrawn, the new one published, both logged.
        let last = store.zone_contents().await.expect("zone").last_change;
        assert_eq!(
            store.sync_report_authorizations(second_host, under("dmarc.esp.example"), 4).await.expect("sync"),
            2
        );
        assert!(!store.name_contents(first).await.expect("read").report_authorization);
        let second = "shop.example.com._report._dmarc.dmarc.esp.example";
        assert!(store.name_contents(second).await.expect("read").report_authorization);
        let logged: Vec<String> =
            store.zone_changes(last, 10).await.expect("changes").into_iter().map(|(_, name)| name).collect();
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert!(logged.contains(&first.to_string()) && logged.contains(&second.to_string()), "{logged:?}");
    })
    .await;
}

#[tokio::test]
async fn a_windows_largest_sources_are_the_same_as_adding_up_every_day() {
    use senderauth_store::{ReportHeaderRecord, ReportIdentity, ReportRowRecord, ReportTotals};
    on_both(|store, _| async move {
        // 60 days of reports about one domain: sources that send every day, some only lately,
        // some only long ago, some heavy long ago and light lately (first among the totals,
        // last in a recent window), some failing, with small pseudo-random counts (many ties).
        let mut seed: u64 = 7;
        let mut next = move |below: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        let mut rows_by_day: Vec<Vec<ReportRowRecord>> = Vec::new();
        for day in 100..160_i64 {
            let mut rows = Vec::new();
            for source in 0..240_u64 {
                let lately = source % 3 == 1 && day < 140;
                let long_ago = source % 3 == 2 && day >= 120;
                if lately || long_ago || next(4) == 0 {
                    continue;
                }
                let heavy_then = source >= 120 && day < 130;
                let failing = next(5) == 0;
                rows.push(ReportRowRecord {
                    header_from: "big.example".to_string(),
                    day,
                    source_ip: format!("198.51.100.{source}"),
                    message_count: 1 + next(if heavy_then {
                        900
                    } else if source < 10 {
                        500
                    } else {
                        6
                    }) as i64,
                    disposition: "none".to_string(),
                    dkim: if failing { "fail" } else { "pass" }.to_string(),
                    spf: "fail".to_string(),
                    class: if source % 2 == 0 { "unauthenticated" } else { "authorized_other" }.to_string(),
                    detail_json: "{}".to_string(),
                });
            }
            rows_by_day.push(rows);
        }
        for (number, rows) in rows_by_day.iter().enumerate() {
            let header = ReportHeaderRecord {
                identity: ReportIdentity {
                    org_name: "receiver.example".to_string(),
                    report_id: format!("r-{number}"),
                    policy_domain: "big.example".to_string(),
                    begin_at: rows[0].day * 86_400,
                    end_at: rows[0].day * 86_400 + 86_399,
                },
                org_email: None,
                format: "rfc7489".to_string(),
                header_json: "{}".to_string(),
            };
            let mut writer = store.report_writer().await.expect("writer");
            writer.start(&header, "import", 1).await.expect("start");
            writer.add_rows(rows).await.expect("rows");
            let totals = ReportTotals {
                digest: String::new(),
                record_count: rows.len() as i64,
                message_count: 0,
                xml_gzip: Vec::new(),
                daily: Vec::new(),
                receiver: "receiver.example".to_string(),
            };
            writer.finish(&header, "import", &totals, 1).await.expect("finish");
        }
        let every: Vec<&ReportRowRecord> = rows_by_day.iter().flatten().collect();
        for from in [100, 101, 119, 120, 130, 139, 140, 159, 200] {
            for (class, failing_only, limit) in [
                (None, false, 5),
                (None, false, 50),
                (None, true, 7),
                (Some("unauthenticated"), false, 3),
                (None, false, 500),
            ] {
                // The same, adding up every day of every source.
                let mut added: std::collections::BTreeMap<(String, String), (i64, i64, i64)> = Default::default();
                for row in every.iter().filter(|row| row.day >= from && class.is_none_or(|class| row.class == class)) {
                    let entry = added.entry((row.source_ip.clone(), row.class.clone())).or_default();
                    if row.dkim == "pass" {
                        entry.0 += row.message_count
                    } else {
                        entry.1 += row.message_count
                    }
                    entry.2 = entry.2.max(row.day);
                }
                let mut expected: Vec<(String, String, i64, i64, i64)> = added
                    .into_iter()
                    .filter(|(_, (_, failed, _))| !failing_only || *failed > 0)
                    .map(|((ip, class), (passed, failed, last))| (ip, class, passed, failed, last))
                    .collect();
                expected.sort_by(|a, b| (b.2 + b.3).cmp(&(a.2 + a.3)).then_with(|| a.0.cmp(&b.0)));
                expected.truncate(limit);
                let found: Vec<(String, String, i64, i64, i64)> = store
                    .report_sources("big.example", from, class, failing_only, limit as i64)
                    .await
                    .expect("sources")
                    .into_iter()
                    .map(|source| (source.source_ip, source.class, source.passed, source.failed, source.last_day))
                    .collect();
                assert_eq!(found, expected, "from {from}, {class:?}, failing {failing_only}, {limit}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn bounces_are_kept_per_recipient_read_by_domain_token_and_cause_and_go_with_their_domain() {
    use senderauth_store::{BounceRecipient, NewBounce};
    on_both(|store, _| async move {
        let account = store.create_account("Bounces", None, 1).await.expect("account");
        let other = store.create_account("Other", None, 1).await.expect("account");
        let domain = store.add_domain(account.id, "b.example.com", 1).await.expect("domain");
        let recipient = |address: &str, kind: &str, status: &str| BounceRecipient {
            address: address.to_string(),
            action: if kind == "hard" { "failed" } else { "delayed" }.to_string(),
            kind: kind.to_string(),
            status: Some(status.to_string()),
            remote_mta: Some("mx.example.net".to_string()),
            diagnostic: Some(format!("{status} reply")),
        };
        for (number, (kind, status)) in
            [("hard", "5.1.1"), ("hard", "5.1.1"), ("soft", "4.2.2"), ("hard", "5.7.1")].iter().enumerate()
        {
            let bounce = NewBounce {
                account_id: account.id,
                domain_id: Some(domain.id),
                token: format!("token{number}"),
                issued_at: 100,
                received_at: 200 + number as i64,
                format: Some("postfix".to_string()),
                recipients: vec![recipient(&format!("r{number}@example.net"), kind, status)],
                event_json: Some("{\"token\":\"t\"}".to_string()),
                ..NewBounce::default()
            };
            store.add_bounce(&bounce).await.expect("stored");
        }
        // One that did not read: kept, no recipient.
        let unreadable = NewBounce {
            account_id: account.id,
            domain_id: Some(domain.id),
            token: "token0".to_string(),
            received_at: 300,
            problem: Some("no recipient".to_string()),
            raw_gzip: Some(vec![1, 2, 3]),
            ..NewBounce::default()
        };
        store.add_bounce(&unreadable).await.expect("stored");
        let hard = store.domain_bounces(domain.id, Some("hard"), None, None, 10).await.expect("read");
        assert_eq!(
            hard.iter().map(|bounce| bounce.recipient.address.as_str()).collect::<Vec<_>>(),
            ["r3@example.net", "r1@example.net", "r0@example.net"]
        );
        let page = store.domain_bounces(domain.id, None, Some("5.1.1"), Some(hard[1].id), 10).await.expect("read");
        assert_eq!(page.iter().map(|bounce| bounce.recipient.address.as_str()).collect::<Vec<_>>(), ["r0@example.net"]);
        let token = store.token_bounces(account.id, "token0").await.expect("read");
        assert_eq!(token.len(), 2);
        assert_eq!((token[0].1.len(), token[1].0.problem.as_deref(), token[1].1.len()), (1, Some("no recipient"), 0));
        assert!(store.token_bounces(other.id, "token0").await.expect("read").is_empty(), "another account's token");
        let causes = store.bounce_causes(domain.id, 0, 10).await.expect("causes");
        let summary: Vec<(String, Option<String>, i64)> =
            causes.iter().map(|cause| (cause.kind.clone(), cause.status.clone(), cause.recipients)).collect();
        assert_eq!(summary[0], ("hard".to_string(), Some("5.1.1".to_string()), 2));
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[0].diagnostic.as_deref(), Some("5.1.1 reply"));
        // Each bounce with recipients is a message.bounced event; the status history leaves them out.
        assert!(
            store
                .history(domain.id)
                .await
                .expect("history")
                .iter()
                .all(|event| event.event.as_deref() != Some("message.bounced"))
        );
        assert!(store.delete_domain(account.id, "b.example.com", 400).await.expect("deleted"));
        assert!(store.token_bounces(account.id, "token0").await.expect("read").is_empty(), "gone with the domain");
    })
    .await;
}
