//! End-to-end verification against test zones: every status and every problem code.

use std::collections::HashSet;

use senderauth_core::config::ProviderConfig;
use senderauth_core::dkim::verify::HostedKey;
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::plan::{ed25519_selectors, expected_include, expected_selectors};
use senderauth_core::problem::ProblemCode;
use senderauth_core::status::{DomainStatus, MethodStatus};
use senderauth_core::verify::{Verification, verify_domain, verify_domain_with_keys};
use senderauth_testkit::{EXAMPLE_DKIM_KEY, Fault, TestDns};

use crate::support::client;

const OTHER_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
pub const ACCOUNT: &str = "42";

pub struct Setup {
    pub server: TestDns,
    pub config: ProviderConfig,
    pub account: AccountId,
}

impl Setup {
    pub async fn new() -> Setup {
        let server = TestDns::start().await;
        for zone in ["com", "example.com", "esp.example", "co.uk", "example.co.uk", "example.net"] {
            server.add_zone(zone);
        }
        Setup { server, config: ProviderConfig::default(), account: AccountId::parse(ACCOUNT).expect("account") }
    }

    /// The platform's side for a domain: DKIM keys at the targets, the account's SPF include.
    pub fn publish_platform(&self, domain: &str) {
        let domain = DomainName::parse(domain).expect("domain");
        for selector in expected_selectors(&self.config, &self.account, &domain) {
            self.server.add(&selector.target, "TXT", &format!("v=DKIM1; k=rsa; p={EXAMPLE_DKIM_KEY}"));
        }
        let include = expected_include(&self.config, &self.account, &domain);
        self.server.remove(&include, "TXT");
        self.server.add(&include, "TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:5::/48 -all");
    }

    pub fn dkim_cnames(&self, domain: &str) {
        let parsed = DomainName::parse(domain).expect("domain");
        for selector in expected_selectors(&self.config, &self.account, &parsed) {
            self.server.add(&format!("{}._domainkey.{domain}", selector.selector), "CNAME", &selector.target);
        }
    }

    pub fn spf(&self, domain: &str, record: &str) {
        self.server.add(domain, "TXT", record);
    }

    /// The customer did everything right.
    pub fn good_customer(&self, domain: &str) {
        self.publish_platform(domain);
        self.dkim_cnames(domain);
        self.spf(domain, "v=spf1 mx include:42.spf.esp.example -all");
        self.server.add(domain, "MX", &format!("10 mx.{domain}"));
        self.server.add(&format!("mx.{domain}"), "A", "198.51.100.25");
        self.server.add(&format!("_dmarc.{domain}"), "TXT", "v=DMARC1; p=none; rua=mailto:dmarc@example.com");
    }

    pub async fn verify(&self, domain: &str) -> Verification {
        let dns = client(&self.server);
        let domain = DomainName::parse(domain).expect("domain");
        verify_domain(&dns, &self.config, &self.account, &domain).await
    }
}

fn codes(verification: &Verification) -> Vec<ProblemCode> {
    verification.problems.iter().map(|problem| problem.code).collect()
}

fn assert_has(verification: &Verification, code: ProblemCode) {
    assert!(
        codes(verification).contains(&code),
        "{} should report {code}; got {:#?}",
        verification.domain,
        verification.problems
    );
}

#[tokio::test]
async fn a_correct_setup_is_verified() {
    let setup = Setup::new().await;
    setup.good_customer("good.example.com");
    let result = setup.verify("good.example.com").await;
    assert_eq!(result.status, DomainStatus::Verified, "{:#?}", result.problems);
    assert_eq!(result.dkim.selectors.len(), 2);
    assert!(result.dkim.selectors.iter().all(|selector| selector.key.as_ref().and_then(|key| key.bits) == Some(1024)));
    assert!(result.spf.include_found);
    assert_eq!(result.spf.lookups, Some(2), "mx + include");
    assert!(result.spf.sending_ips.iter().all(|ip| ip.result.as_str() == "pass"));
    assert_eq!(result.dmarc.location.as_deref(), Some("good.example.com"));
    assert_has(&result, ProblemCode::DmarcPolicyNone);
    assert!(result.problems.iter().all(|problem| problem.severity != senderauth_core::problem::Severity::Error));
}

#[tokio::test]
async fn the_return_path_has_a_status_of_its_own_outside_the_domains() {
    let setup = Setup::new().await;
    // Everything but the return-path: the domain is verified, the return-path only said missing.
    setup.good_customer("good.example.com");
    let result = setup.verify("good.example.com").await;
    assert_eq!((result.status, result.return_path.status), (DomainStatus::Verified, MethodStatus::NotVerified));
    let missing = result.problems.iter().find(|problem| problem.code == ProblemCode::ReturnPathMissing);
    assert_eq!(
        missing.map(|problem| (problem.severity, problem.host.as_deref())),
        Some((senderauth_core::problem::Severity::Warning, Some("rp.good.example.com")))
    );
    // The CNAME added: verified, nothing said about it.
    let domain = DomainName::parse("good.example.com").expect("domain");
    let target = setup.config.return_path_target(ACCOUNT, &domain);
    setup.server.add("rp.good.example.com", "CNAME", &target);
    let result = setup.verify("good.example.com").await;
    assert_eq!(result.return_path.status, MethodStatus::Verified);
    assert_eq!(result.return_path.found_target.as_deref(), Some(target.as_str()));
    assert!(result.problems.iter().all(|problem| problem.method != senderauth_core::problem::Method::ReturnPath));
    // A DMARC record asking for strict SPF alignment: the return-path is verified and the
    // warning says DKIM alone carries DMARC.
    setup.server.remove("_dmarc.good.example.com", "TXT");
    setup.server.add("_dmarc.good.example.com", "TXT", "v=DMARC1; p=none; aspf=s");
    let result = setup.verify("good.example.com").await;
    assert_eq!(result.return_path.status, MethodStatus::Verified);
    assert_has(&result, ProblemCode::ReturnPathStrictAlignment);
    // A DNS failure at the return-path: unknown, and the domain's status does not wait for it.
    setup.good_customer("flaky.example.com");
    setup.server.fault("rp.flaky.example.com", None, Fault::ServFail);
    let result = setup.verify("flaky.example.com").await;
    assert_eq!((result.status, result.return_path.status), (DomainStatus::Verified, MethodStatus::Unknown));
}

#[tokio::test]
async fn dkim_alone_is_partially_verified_and_nothing_is_not_verified() {
    let setup = Setup::new().await;
    setup.publish_platform("partial.example.com");
    setup.dkim_cnames("partial.example.com");
    setup.server.add("partial.example.com", "A", "198.51.100.1");
    let partial = setup.verify("partial.example.com").await;
    assert_eq!(partial.status, DomainStatus::PartiallyVerified);
    assert_eq!(partial.dkim.status, MethodStatus::Verified);
    assert_has(&partial, ProblemCode::SpfMissing);
    assert_has(&partial, ProblemCode::DmarcMissing);

    setup.publish_platform("nothing.example.com");
    setup.server.add("nothing.example.com", "A", "198.51.100.1");
    let nothing = setup.verify("nothing.example.com").await;
    assert_eq!(nothing.status, DomainStatus::NotVerified);
    assert_has(&nothing, ProblemCode::DkimSelectorMissing);
    assert!(nothing.problems.iter().any(|p| p.message.contains("sa1-42._domainkey.nothing.example.com")));

    // SPF and DMARC right but DKIM missing: still not verified, as in the reference.
    setup.publish_platform("nodkim.example.com");
    setup.spf("nodkim.example.com", "v=spf1 include:42.spf.esp.example -all");
    setup.server.add("_dmarc.nodkim.example.com", "TXT", "v=DMARC1; p=reject");
    assert_eq!(setup.verify("nodkim.example.com").await.status, DomainStatus::NotVerified);
}

#[tokio::test]
async fn a_subdomain_inherits_dmarc_from_its_co_uk_root() {
    let setup = Setup::new().await;
    let domain = "mail.shop.example.co.uk";
    setup.publish_platform(domain);
    setup.dkim_cnames(domain);
    setup.spf(domain, "v=spf1 include:42.spf.esp.example -all");
    setup.server.add("_dmarc.example.co.uk", "TXT", "v=DMARC1; p=reject; sp=quarantine");
    let result = setup.verify(domain).await;
    assert_eq!(result.status, DomainStatus::Verified, "{:#?}", result.problems);
    assert!(result.dmarc.inherited);
    assert_eq!(result.dmarc.location.as_deref(), Some("example.co.uk"));
    assert_eq!(result.dmarc.policy.map(|policy| policy.as_str()), Some("quarantine"));
    assert_has(&result, ProblemCode::DmarcInherited);
}

#[tokio::test]
async fn dmarc_tree_walk_difference_is_reported() {
    let setup = Setup::new().await;
    setup.server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject");
    setup.server.add("_dmarc.dept.example.com", "TXT", "v=DMARC1; p=none");
    setup.server.add("news.dept.example.com", "A", "198.51.100.1");
    let result = setup.verify("news.dept.example.com").await;
    assert_eq!(result.dmarc.location.as_deref(), Some("example.com"));
    assert_eq!(result.dmarc.tree_walk_location.as_deref(), Some("dept.example.com"));
    assert_has(&result, ProblemCode::DmarcTreeWalkDiffers);
}

#[tokio::test]
async fn dkim_problems_are_told_apart() {
    let setup = Setup::new().await;

    setup.publish_platform("wrong.example.com");
    setup.server.add("sa1-42._domainkey.wrong.example.com", "CNAME", "sa1.other-esp.example.net");
    setup.server.add("sa2-42._domainkey.wrong.example.com", "CNAME", "sa2-42.wrong-example-com.dkim.esp.example");
    let wrong = setup.verify("wrong.example.com").await;
    assert_has(&wrong, ProblemCode::DkimWrongTarget);
    assert_eq!(wrong.dkim.selectors[0].found_target.as_deref(), Some("sa1.other-esp.example.net"));
    assert_eq!(wrong.dkim.status, MethodStatus::NotVerified);

    // The CNAMEs are right but the platform has not published the keys.
    setup.dkim_cnames("nokey.example.com");
    let nokey = setup.verify("nokey.example.com").await;
    assert_has(&nokey, ProblemCode::DkimKeyMissing);

    // A DNS host flattened the CNAME: the key is copied at the host.
    setup.publish_platform("flat.example.com");
    setup.server.add("sa1-42._domainkey.flat.example.com", "TXT", &format!("v=DKIM1; k=rsa; p={EXAMPLE_DKIM_KEY}"));
    setup.server.add("sa2-42._domainkey.flat.example.com", "TXT", &format!("v=DKIM1; k=ed25519; p={OTHER_KEY}"));
    let flat = setup.verify("flat.example.com").await;
    assert_has(&flat, ProblemCode::DkimFlattened);
    assert_has(&flat, ProblemCode::DkimFlattenedKeyMismatch);
    assert_eq!(flat.dkim.selectors[0].status, MethodStatus::Verified);
    assert_eq!(flat.dkim.selectors[1].status, MethodStatus::NotVerified);

    // The DNS host appended the zone to a fully qualified Host.
    setup.publish_platform("double.example.com");
    for selector in ["sa1-42", "sa2-42"] {
        setup.server.add(
            &format!("{selector}._domainkey.double.example.com.example.com"),
            "CNAME",
            &format!("{selector}.double-example-com.dkim.esp.example"),
        );
    }
    let double = setup.verify("double.example.com").await;
    assert_has(&double, ProblemCode::DkimHostDoubled);
    assert!(double.problems.iter().any(|problem| problem.fix.contains("\"sa1-42._domainkey.double\"")));
}

#[tokio::test]
async fn spf_problems_are_found_by_evaluating_not_string_matching() {
    let setup = Setup::new().await;
    let cases: Vec<(&str, String, ProblemCode)> = vec![
        ("multi.example.com", "v=spf1 -all".into(), ProblemCode::SpfMultipleRecords),
        (
            "syntax.example.com",
            "v=spf1 include:42.spf.esp.example ip4:192.0.2.300 -all".into(),
            ProblemCode::SpfSyntaxError,
        ),
        ("passall.example.com", "v=spf1 include:42.spf.esp.example +all".into(), ProblemCode::SpfPassAll),
        ("noinclude.example.com", "v=spf1 mx -all".into(), ProblemCode::SpfIncludeMissing),
        (
            "blocked.example.com",
            "v=spf1 -ip4:192.0.2.0/24 include:42.spf.esp.example -all".into(),
            ProblemCode::SpfSendingIpNotAuthorized,
        ),
        (
            "many.example.com",
            format!(
                "v=spf1 {} include:42.spf.esp.example -all",
                (1..=10).map(|n| format!("include:s{n}.example.net")).collect::<Vec<_>>().join(" ")
            ),
            ProblemCode::SpfTooManyLookups,
        ),
        (
            "void.example.com",
            "v=spf1 a:gone1.example.net a:gone2.example.net mx:gone3.example.net include:42.spf.esp.example -all"
                .into(),
            ProblemCode::SpfTooManyVoidLookups,
        ),
        (
            "loop.example.com",
            "v=spf1 include:loop-a.example.net include:42.spf.esp.example -all".into(),
            ProblemCode::SpfLoop,
        ),
        (
            "dangling.example.com",
            "v=spf1 include:nothing-here.example.net include:42.spf.esp.example -all".into(),
            ProblemCode::SpfIncludeTargetMissing,
        ),
    ];
    setup.spf("multi.example.com", "v=spf1 include:42.spf.esp.example -all");
    for n in 1..=10 {
        setup.server.add(&format!("s{n}.example.net"), "TXT", "v=spf1 -all");
    }
    setup.server.add("loop-a.example.net", "TXT", "v=spf1 include:loop-b.example.net -all");
    setup.server.add("loop-b.example.net", "TXT", "v=spf1 include:loop-a.example.net -all");
    for (domain, record, code) in cases {
        setup.publish_platform(domain);
        setup.dkim_cnames(domain);
        setup.spf(domain, &record);
        let result = setup.verify(domain).await;
        assert_has(&result, code);
        assert_eq!(result.spf.status, MethodStatus::NotVerified, "{domain}: {:#?}", result.problems);
        assert_eq!(result.status, DomainStatus::PartiallyVerified, "{domain}");
    }
    let syntax = setup.verify("syntax.example.com").await;
    let fix = &syntax.problems.iter().find(|p| p.code == ProblemCode::SpfSyntaxError).expect("reported").fix;
    assert!(fix.contains("v=spf1 include:42.spf.esp.example -all") && !fix.contains("192.0.2.300"), "{fix}");
    let blocked = setup.verify("blocked.example.com").await;
    let fix =
        &blocked.problems.iter().find(|p| p.code == ProblemCode::SpfSendingIpNotAuthorized).expect("reported").fix;
    assert!(fix.contains("-ip4:192.0.2.0/24") && !fix.contains("Publish"), "the fix names the deciding term: {fix}");
    let many = setup.verify("many.example.com").await;
    assert_eq!(many.spf.lookups, Some(11));
    let message = &many.problems.iter().find(|p| p.code == ProblemCode::SpfTooManyLookups).expect("reported").message;
    assert!(message.contains("needs 11 DNS lookups"), "{message}");
}

#[tokio::test]
async fn spf_without_all_authorizes_the_platform_with_a_warning() {
    let setup = Setup::new().await;
    setup.good_customer("noall.example.com");
    setup.server.remove("noall.example.com", "TXT");
    setup.spf("noall.example.com", "v=spf1 include:42.spf.esp.example");
    let result = setup.verify("noall.example.com").await;
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::SpfNoAll).expect("reported");
    assert_eq!(problem.severity, senderauth_core::problem::Severity::Warning);
    assert!(problem.fix.contains("v=spf1 include:42.spf.esp.example -all"), "{}", problem.fix);
    assert_eq!(result.spf.status, MethodStatus::Verified);
}

#[tokio::test]
async fn spf_include_missing_but_addresses_listed_is_a_warning() {
    let setup = Setup::new().await;
    setup.good_customer("listed.example.com");
    setup.server.remove("listed.example.com", "TXT");
    setup.spf("listed.example.com", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:5::/48 -all");
    let result = setup.verify("listed.example.com").await;
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::SpfIncludeMissing).expect("reported");
    assert_eq!(problem.severity, senderauth_core::problem::Severity::Warning);
    assert_eq!(result.spf.status, MethodStatus::Verified);
}

#[tokio::test]
async fn another_accounts_include_is_not_this_accounts_spf() {
    let setup = Setup::new().await;
    setup.good_customer("borrowed.example.com");
    // The record names account 7's include; this is account 42's domain. Both includes list
    // the same addresses today.
    setup.server.add("7.spf.esp.example", "TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:5::/48 -all");
    setup.server.remove("borrowed.example.com", "TXT");
    setup.spf("borrowed.example.com", "v=spf1 mx include:7.spf.esp.example -all");
    let result = setup.verify("borrowed.example.com").await;
    assert_eq!(result.spf.status, MethodStatus::NotVerified, "{:?}", result.problems);
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::SpfIncludeOfAnotherAccount).expect("reported");
    assert!(problem.message.contains("7.spf.esp.example"), "{}", problem.message);
    assert!(problem.fix.contains("v=spf1 mx include:42.spf.esp.example -all"), "{}", problem.fix);
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::SpfIncludeMissing), "one message for one cause");
}

#[tokio::test]
async fn a_dmarc_record_at_the_wrong_name_is_recognized_and_its_move_explained() {
    let setup = Setup::new().await;
    for (domain, misplaced) in
        [("apex.example.com", "apex.example.com"), ("nodash.example.com", "dmarc.nodash.example.com")]
    {
        setup.good_customer(domain);
        setup.server.remove(&format!("_dmarc.{domain}"), "TXT");
        setup.server.add(misplaced, "TXT", "v=DMARC1; p=none");
        let result = setup.verify(domain).await;
        assert_eq!(result.dmarc.status, MethodStatus::NotVerified);
        let problem = result.problems.iter().find(|p| p.code == ProblemCode::DmarcWrongName).expect("recognized");
        assert!(problem.message.contains(&format!("at {misplaced} ")), "{}", problem.message);
        assert!(problem.fix.contains(&format!("_dmarc.{domain}")), "{}", problem.fix);
        assert!(!result.problems.iter().any(|p| p.code == ProblemCode::DmarcMissing), "one message for one cause");
    }
}

#[tokio::test]
async fn spf_and_dmarc_typed_with_the_full_name_at_a_host_that_adds_the_zone_are_recognized() {
    let setup = Setup::new().await;
    setup.good_customer("mail.doubled.example.com");
    setup.server.remove("mail.doubled.example.com", "TXT");
    setup.server.add("mail.doubled.example.com.example.com", "TXT", "v=spf1 include:42.spf.esp.example -all");
    setup.server.remove("_dmarc.mail.doubled.example.com", "TXT");
    setup.server.add("_dmarc.mail.doubled.example.com.example.com", "TXT", "v=DMARC1; p=none");
    let result = setup.verify("mail.doubled.example.com").await;
    let spf = result.problems.iter().find(|p| p.code == ProblemCode::SpfHostDoubled).expect("SPF recognized");
    assert!(spf.fix.contains("Host to mail.doubled"), "{}", spf.fix);
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::SpfMissing), "one message for one cause");
    let dmarc = result.problems.iter().find(|p| p.code == ProblemCode::DmarcWrongName).expect("DMARC recognized");
    assert!(
        dmarc.fix.contains("Host to _dmarc.mail.doubled") && dmarc.fix.contains("added example.com"),
        "{}",
        dmarc.fix
    );
}

#[tokio::test]
async fn a_txt_record_where_the_dkim_cname_belongs_is_told_apart() {
    let setup = Setup::new().await;
    setup.good_customer("typed.example.com");
    let domain = DomainName::parse("typed.example.com").expect("domain");
    let first = expected_selectors(&setup.config, &setup.account, &domain).remove(0);
    let host = format!("{}._domainkey.typed.example.com", first.selector);
    setup.server.remove(&host, "CNAME");
    setup.server.add(&host, "TXT", &first.target);
    let result = setup.verify("typed.example.com").await;
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::DkimWrongType).expect("told apart");
    assert!(
        problem.message.contains("holds a TXT record") && problem.message.contains("must be a CNAME"),
        "{}",
        problem.message
    );
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::DkimSelectorMissing), "one message for one cause");
}

#[tokio::test]
async fn a_record_covering_part_of_a_sending_range_is_caught() {
    let setup = Setup::new().await;
    setup.good_customer("half.example.com");
    setup.server.remove("half.example.com", "TXT");
    setup.spf("half.example.com", "v=spf1 ip4:192.0.2.0/25 ip6:2001:db8:5::/48 -all");
    let result = setup.verify("half.example.com").await;
    assert_eq!(result.spf.status, MethodStatus::NotVerified);
    let failing: Vec<&str> =
        result.spf.sending_ips.iter().filter(|ip| ip.result.as_str() != "pass").map(|ip| ip.ip.as_str()).collect();
    assert_eq!(failing, ["192.0.2.255"], "the range's first address passes, its last does not");
    assert_has(&result, ProblemCode::SpfSendingIpNotAuthorized);
}

#[tokio::test]
async fn dmarc_problems() {
    let setup = Setup::new().await;
    setup.server.add("_dmarc.twice.example.com", "TXT", "v=DMARC1; p=none");
    setup.server.add("_dmarc.twice.example.com", "TXT", "v=DMARC1; p=reject");
    setup.server.add("twice.example.com", "A", "198.51.100.1");
    let twice = setup.verify("twice.example.com").await;
    assert_has(&twice, ProblemCode::DmarcMultipleRecords);
    assert_eq!(twice.dmarc.status, MethodStatus::NotVerified);

    setup.server.add("_dmarc.bad.example.com", "TXT", "v=DMARC1; p=sometimes");
    let bad = setup.verify("bad.example.com").await;
    assert_has(&bad, ProblemCode::DmarcSyntaxError);
    assert!(bad.problems.iter().any(|p| p.message.contains("p=sometimes")));

    setup.server.add(
        "_dmarc.reports.example.com",
        "TXT",
        "v=DMARC1; p=reject; rua=mailto:agg@collector.example.net,mailto:me@reports.example.com",
    );
    let reports = setup.verify("reports.example.com").await;
    assert_has(&reports, ProblemCode::DmarcReportDestinationUnauthorized);
    assert_eq!(reports.dmarc.status, MethodStatus::Verified);
    setup.server.add("reports.example.com._report._dmarc.collector.example.net", "TXT", "v=DMARC1");
    let authorized = setup.verify("reports.example.com").await;
    assert!(!codes(&authorized).contains(&ProblemCode::DmarcReportDestinationUnauthorized));
}

#[tokio::test]
async fn a_domain_that_does_not_exist_is_reported_as_such() {
    let setup = Setup::new().await;
    // A new subdomain: expected, said plainly (adding the records creates it), not an error.
    let result = setup.verify("missing.example.com").await;
    assert_has(&result, ProblemCode::DomainNxdomain);
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::DomainNxdomain).expect("said");
    assert_eq!(problem.severity, senderauth_core::problem::Severity::Info);
    assert!(problem.fix.contains("creates it") && !problem.fix.contains("spelling"), "{}", problem.fix);
    assert_eq!(result.status, DomainStatus::NotVerified);
    // A root domain that does not exist: a mistake to fix.
    let result = setup.verify("nowhere-at-all.com").await;
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::DomainNxdomain).expect("said");
    assert_eq!(problem.severity, senderauth_core::problem::Severity::Error);
}

#[tokio::test]
async fn temporary_failures_are_unknown_never_missing() {
    for fault in [Fault::Timeout, Fault::ServFail, Fault::Refused] {
        let setup = Setup::new().await;
        setup.good_customer("flaky.example.com");
        setup.server.fault("flaky.example.com", Some("TXT"), fault);
        let result = setup.verify("flaky.example.com").await;
        assert_eq!(result.spf.status, MethodStatus::Unknown, "{fault:?}");
        assert_has(&result, ProblemCode::DnsTemporaryFailure);
        assert!(!codes(&result).contains(&ProblemCode::SpfMissing), "{fault:?}: {:#?}", result.problems);
        assert_eq!(result.status, DomainStatus::Unknown, "{fault:?}: DKIM and DMARC verified, SPF unknown");

        setup.server.clear_faults();
        setup.server.fault("sa1-42._domainkey.flaky.example.com", None, fault);
        let result = setup.verify("flaky.example.com").await;
        assert_eq!(result.dkim.status, MethodStatus::Unknown, "{fault:?}");
        assert!(!codes(&result).contains(&ProblemCode::DkimSelectorMissing));
        assert_eq!(result.status, DomainStatus::Unknown);

        setup.server.clear_faults();
        setup.server.fault("_dmarc.flaky.example.com", None, fault);
        let result = setup.verify("flaky.example.com").await;
        assert_eq!(result.dmarc.status, MethodStatus::Unknown);
        assert!(!codes(&result).contains(&ProblemCode::DmarcMissing));
        // DKIM verified and DMARC unknown: partially verified or verified, so unknown.
        assert_eq!(result.status, DomainStatus::Unknown);
    }
}

#[tokio::test]
async fn a_large_answer_is_fetched_over_tcp() {
    let setup = Setup::new().await;
    setup.good_customer("big.example.com");
    // About 2 KB of TXT records: more than the 1232-octet EDNS buffer, so UDP is truncated.
    for n in 0..20 {
        setup.server.add("big.example.com", "TXT", &format!("site-verification-{n}={}", "x".repeat(100)));
    }
    setup.server.fault("_dmarc.big.example.com", Some("TXT"), Fault::Truncate);
    let result = setup.verify("big.example.com").await;
    assert_eq!(result.status, DomainStatus::Verified, "{:#?}", result.problems);
    assert!(setup.server.tcp_query_count() >= 2, "the truncated answers should be retried over TCP");
}

#[tokio::test]
async fn a_thousand_deep_include_chain_stops_at_the_limit() {
    let setup = Setup::new().await;
    for n in 0..1000 {
        setup.server.add(
            &format!("chain{n}.example.net"),
            "TXT",
            &format!("v=spf1 include:chain{}.example.net -all", n + 1),
        );
    }
    setup.good_customer("deep.example.com");
    setup.server.remove("deep.example.com", "TXT");
    setup.spf("deep.example.com", "v=spf1 include:chain0.example.net include:42.spf.esp.example -all");
    let result = setup.verify("deep.example.com").await;
    assert_has(&result, ProblemCode::SpfTooManyLookups);
    assert!(setup.server.query_count() < 200, "the walk must stop early, made {} queries", setup.server.query_count());
}

#[tokio::test]
async fn a_proxied_dkim_cname_is_told_apart_from_a_missing_one() {
    let setup = Setup::new().await;
    setup.good_customer("proxied.example.com");
    let domain = DomainName::parse("proxied.example.com").expect("domain");
    let first = expected_selectors(&setup.config, &setup.account, &domain).remove(0);
    let host = format!("{}._domainkey.proxied.example.com", first.selector);
    // What Cloudflare serves for a proxied CNAME: its own addresses, no CNAME, no key.
    setup.server.remove(&host, "CNAME");
    setup.server.add(&host, "A", "192.0.2.80");
    let result = setup.verify("proxied.example.com").await;
    let problem = result.problems.iter().find(|p| p.code == ProblemCode::DkimProxied).expect("told apart");
    assert_eq!(problem.host.as_deref(), Some(host.as_str()), "placed in its row");
    assert!(problem.fix.contains("grey cloud") && problem.fix.contains(&first.target), "{}", problem.fix);
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::DkimSelectorMissing), "one message for one cause");
}

#[tokio::test]
async fn values_pasted_with_quotation_marks_or_a_slip_say_what_to_change() {
    let setup = Setup::new().await;
    setup.good_customer("pasted.example.com");
    setup.server.remove("pasted.example.com", "TXT");
    setup.spf("pasted.example.com", "\"v=spf1 mx include:42.spf.esp.example -all\"");
    setup.server.remove("_dmarc.pasted.example.com", "TXT");
    setup.server.add("_dmarc.pasted.example.com", "TXT", "\"v=DMARC1; p=none;\"");
    let result = setup.verify("pasted.example.com").await;
    let spf = result.problems.iter().find(|p| p.code == ProblemCode::SpfSyntaxError).expect("the quoted SPF record");
    assert!(spf.fix.contains("remove the quotation marks"), "{}", spf.fix);
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::SpfMissing), "one message for one cause");
    let dmarc =
        result.problems.iter().find(|p| p.code == ProblemCode::DmarcSyntaxError).expect("the quoted DMARC record");
    assert!(dmarc.message.contains("quotation marks"), "{}", dmarc.message);
    assert!(!result.problems.iter().any(|p| p.code == ProblemCode::DmarcMissing), "one message for one cause");

    // An include one letter short: what differs is said.
    setup.server.remove("pasted.example.com", "TXT");
    setup.spf("pasted.example.com", "v=spf1 mx include:42.spf.esp.exampl -all");
    let result = setup.verify("pasted.example.com").await;
    let missing = result.problems.iter().find(|p| p.code == ProblemCode::SpfIncludeMissing).expect("the include");
    assert!(
        missing.message.contains("it includes 42.spf.esp.exampl (a copying slip: \"e\" is missing at character 18)"),
        "{}",
        missing.message
    );
}

#[tokio::test]
async fn the_required_problem_codes_keep_their_names() {
    // Each of these codes is asserted in a scenario above; this guards the names themselves,
    // which are a stable interface: renaming or dropping one fails here.
    let required = [
        "domain_nxdomain",
        "dns_temporary_failure",
        "dkim_selector_missing",
        "dkim_wrong_target",
        "dkim_key_missing",
        "dkim_flattened",
        "dkim_flattened_key_mismatch",
        "dkim_key_not_current",
        "dkim_host_doubled",
        "dkim_wrong_type",
        "dkim_proxied",
        "spf_missing",
        "spf_host_doubled",
        "spf_multiple_records",
        "spf_syntax_error",
        "spf_include_missing",
        "spf_include_of_another_account",
        "spf_sending_ip_not_authorized",
        "spf_too_many_lookups",
        "spf_too_many_void_lookups",
        "spf_loop",
        "spf_pass_all",
        "spf_no_all",
        "dmarc_missing",
        "dmarc_wrong_name",
        "dmarc_multiple_records",
        "dmarc_syntax_error",
        "dmarc_inherited",
        "dmarc_policy_none",
        "dmarc_report_destination_unauthorized",
        "return_path_missing",
        "return_path_wrong_target",
        "return_path_flattened",
        "return_path_conflict",
        "return_path_strict_alignment",
    ];
    let known: HashSet<&str> = ProblemCode::ALL.iter().map(|code| code.as_str()).collect();
    for code in required {
        assert!(known.contains(code), "{code} is missing from ProblemCode");
    }
}

#[tokio::test]
async fn an_spf_include_behind_a_cname_into_another_zone_is_followed() {
    // The test server, like any authoritative server, returns a CNAME into another zone without
    // the records at its target; the client must follow it.
    let setup = Setup::new().await;
    setup.good_customer("aliased.example.com");
    setup.server.remove("aliased.example.com", "TXT");
    setup.spf("aliased.example.com", "v=spf1 include:_spf.aliased.example.com -all");
    setup.server.add("_spf.aliased.example.com", "CNAME", "42.spf.esp.example");
    let result = setup.verify("aliased.example.com").await;
    assert_eq!(result.spf.status, MethodStatus::Verified, "{:#?}", result.problems);
    assert!(result.spf.sending_ips.iter().all(|ip| ip.result.as_str() == "pass"));
}

#[tokio::test]
async fn records_split_into_several_strings_are_joined() {
    // A 2048-bit key and an SPF record over 255 octets must be published as several strings of
    // one TXT record (RFC 7208 section 3.3, RFC 6376 section 3.6.2.2).
    let setup = Setup::new().await;
    let domain = "long.example.com";
    setup.publish_platform(domain);
    setup.dkim_cnames(domain);
    let key_2048 = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqlfxeWUq21Mdzm+//cUsrys9qVl0CfGq+1RStb8Slj7FuZeFUmEgF0+GyELbvgOs71IWWBPv/0vqg4x32J21UWFDPxwvqCJun5PgprYNDFFMLqze+oN2OxaXvxINeuAn88mX8/56iut3u5Fk59SW+ZMlVZ/bxh184/h24VnSD9mwsUP9xZLlZbh9dNfrFsBXwCKiayxbxKpb7ioOYz9cH013/B2wX9NuyFqzYplFydDXBxzk7I67Y8zp943HJ+sWc42/IPjoQ+2oM5BJpX7+eTzbpiuhSsTb2gzlMTwJgcScQ+En0XFsGBpywacY+T2/E7uc69xpVSQLlgjvvaROoQIDAQAB";
    let record = format!("v=DKIM1; k=rsa; p={key_2048}");
    let target = "sa1-42.long-example-com.dkim.esp.example";
    setup.server.remove(target, "TXT");
    let (first, second) = record.as_bytes().split_at(200);
    setup.server.add_txt_strings(target, &[first, second]);
    let networks: Vec<String> = (1..=20).map(|n| format!("ip4:198.51.{n}.0/24")).collect();
    let spf = format!("v=spf1 {} include:42.spf.esp.example -all", networks.join(" "));
    assert!(spf.len() > 255);
    setup.spf(domain, &spf);
    setup.server.add(&format!("_dmarc.{domain}"), "TXT", "v=DMARC1; p=reject");
    let result = setup.verify(domain).await;
    assert_eq!(result.status, DomainStatus::Verified, "{:#?}", result.problems);
    assert_eq!(result.dkim.selectors[0].key.as_ref().and_then(|key| key.bits), Some(2048));
    assert_eq!(result.spf.record.as_deref(), Some(spf.as_str()));
}

#[tokio::test]
async fn the_key_behind_each_cname_must_be_the_one_the_platform_holds() {
    let setup = Setup::new().await;
    setup.good_customer("hosted.example.com");
    let domain = DomainName::parse("hosted.example.com").expect("domain");
    let expected = expected_selectors(&setup.config, &setup.account, &domain);
    let selectors: Vec<String> = expected.iter().map(|selector| selector.selector.clone()).collect();
    let hosted = |key: &str, signing: bool, selector: &str| HostedKey {
        selector: selector.to_string(),
        target: expected.iter().find(|expected| expected.selector == selector).expect("a selector").target.clone(),
        public_key: key.to_string(),
        signing,
    };
    let verify = async |keys: &[HostedKey]| {
        let dns = client(&setup.server);
        verify_domain_with_keys(&dns, &setup.config, &setup.account, &domain, keys).await
    };

    // The keys DNS serves are the ones held: verified.
    let same = [hosted(EXAMPLE_DKIM_KEY, true, &selectors[0]), hosted(EXAMPLE_DKIM_KEY, false, &selectors[1])];
    assert_eq!(verify(&same).await.dkim.status, MethodStatus::Verified);

    // The signing selector leads to another key (stale DNS, or the wrong record): signatures
    // would fail, so DKIM is not verified.
    let stale = [hosted(OTHER_KEY, true, &selectors[0]), hosted(EXAMPLE_DKIM_KEY, false, &selectors[1])];
    let result = verify(&stale).await;
    assert_eq!(result.dkim.status, MethodStatus::NotVerified);
    assert_has(&result, ProblemCode::DkimKeyNotCurrent);
    // The same at the idle selector only warns: nothing signs with it now.
    let idle = [hosted(EXAMPLE_DKIM_KEY, true, &selectors[0]), hosted(OTHER_KEY, false, &selectors[1])];
    let result = verify(&idle).await;
    assert_eq!(result.dkim.status, MethodStatus::Verified);
    assert_has(&result, ProblemCode::DkimKeyNotCurrent);

    // Between rotations the idle selector's key is revoked (empty p=): that is as it should be.
    let target = expected_selectors(&setup.config, &setup.account, &domain)[1].target.clone();
    setup.server.remove(&target, "TXT");
    setup.server.add(&target, "TXT", "v=DKIM1; k=rsa; p=");
    let revoked = [hosted(EXAMPLE_DKIM_KEY, true, &selectors[0]), hosted("", false, &selectors[1])];
    assert_eq!(verify(&revoked).await.dkim.status, MethodStatus::Verified);

    // A DNS host that flattened the CNAME into a copy of a key the platform no longer holds.
    let host = format!("{}._domainkey.hosted.example.com", selectors[0]);
    setup.server.remove(&host, "CNAME");
    setup.server.add(&host, "TXT", &format!("v=DKIM1; k=rsa; p={EXAMPLE_DKIM_KEY}"));
    let rotated = [hosted(OTHER_KEY, true, &selectors[0]), hosted("", false, &selectors[1])];
    let result = verify(&rotated).await;
    assert_eq!(result.dkim.status, MethodStatus::NotVerified);
    assert_has(&result, ProblemCode::DkimFlattenedKeyMismatch);
}

#[tokio::test]
async fn a_connected_domain_keeps_its_key_names_when_the_target_template_changes() {
    let setup = Setup::new().await;
    setup.good_customer("kept.example.com");
    let domain = DomainName::parse("kept.example.com").expect("domain");
    let published: Vec<HostedKey> = expected_selectors(&setup.config, &setup.account, &domain)
        .into_iter()
        .enumerate()
        .map(|(number, selector)| HostedKey {
            selector: selector.selector,
            target: selector.target,
            public_key: EXAMPLE_DKIM_KEY.to_string(),
            signing: number == 0,
        })
        .collect();
    // The operator moves the keys of new domains elsewhere.
    let mut moved = setup.config.clone();
    moved.dkim.target = "{selector}.{domain}.keys.{zone}".to_string();
    let dns = client(&setup.server);
    let kept = verify_domain_with_keys(&dns, &moved, &setup.account, &domain, &published).await;
    assert_eq!(kept.dkim.status, MethodStatus::Verified, "the customer's CNAMEs still lead to the stored names");
    let planned = senderauth_core::plan::plan_records(None, &moved, &setup.account, &domain, false, &published)
        .await
        .expect("a plan");
    assert_eq!(planned.records[0].value, published[0].target, "the setup page shows the stored name");
    // A domain with no keys yet follows the template.
    let fresh = verify_domain_with_keys(&dns, &moved, &setup.account, &domain, &[]).await;
    assert_eq!(fresh.dkim.status, MethodStatus::NotVerified);
    assert_has(&fresh, ProblemCode::DkimWrongTarget);
}

#[tokio::test]
async fn a_domain_with_ed25519_keys_needs_their_two_cnames_as_well() {
    // RFC 8463's example Ed25519 public key.
    const ED25519_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let setup = Setup::new().await;
    let name = "dual.example.com";
    setup.good_customer(name);
    let domain = DomainName::parse(name).expect("domain");
    let rsa = expected_selectors(&setup.config, &setup.account, &domain);
    let ed = ed25519_selectors(&setup.config, &setup.account, &domain);
    for selector in &ed {
        setup.server.add(&selector.target, "TXT", &format!("v=DKIM1; k=ed25519; p={ED25519_KEY}"));
    }
    let hosted = |selector: &str, key: &str, signing: bool| HostedKey {
        selector: selector.to_string(),
        target: rsa
            .iter()
            .chain(&ed)
            .find(|expected| expected.selector == selector)
            .expect("a selector")
            .target
            .clone(),
        public_key: key.to_string(),
        signing,
    };
    let keys = [
        hosted(&rsa[0].selector, EXAMPLE_DKIM_KEY, true),
        hosted(&rsa[1].selector, EXAMPLE_DKIM_KEY, false),
        hosted(&ed[0].selector, ED25519_KEY, true),
        hosted(&ed[1].selector, ED25519_KEY, false),
    ];
    let verify = async |keys: &[HostedKey]| {
        let dns = client(&setup.server);
        verify_domain_with_keys(&dns, &setup.config, &setup.account, &domain, keys).await
    };

    // Only the RSA CNAMEs added: the Ed25519 selectors are checked too, and missing.
    let result = verify(&keys).await;
    let checked: Vec<&str> = result.dkim.selectors.iter().map(|check| check.selector.as_str()).collect();
    assert_eq!(checked, [&rsa[0].selector, &rsa[1].selector, &ed[0].selector, &ed[1].selector]);
    assert_eq!(result.dkim.status, MethodStatus::NotVerified, "{:#?}", result.problems);
    assert!(
        result.problems.iter().any(|problem| problem.message.contains(&format!("{}._domainkey", ed[0].selector))),
        "{:#?}",
        result.problems
    );

    // All four in place: verified.
    for selector in &ed {
        setup.server.add(&format!("{}._domainkey.{name}", selector.selector), "CNAME", &selector.target);
    }
    let result = verify(&keys).await;
    assert_eq!(result.dkim.status, MethodStatus::Verified, "{:#?}", result.problems);
    assert_eq!(result.status, DomainStatus::Verified);

    // A domain without Ed25519 keys is checked at its two RSA selectors only.
    let result = verify(&keys[..2]).await;
    assert_eq!(result.dkim.selectors.len(), 2);
    assert_eq!(result.dkim.status, MethodStatus::Verified);
}

#[tokio::test]
async fn the_platforms_report_address_is_merged_into_the_dmarc_record_and_its_absence_said() {
    use senderauth_core::plan::{Action, plan_records};
    let setup = Setup::new().await;
    let dns = client(&setup.server);
    let address = setup.config.report_address().expect("a report address by default");
    assert_eq!(address, "dmarc@reports.esp.example");
    let dmarc_row = |plan: &senderauth_core::plan::RecordPlan| {
        plan.records.iter().find(|record| record.fqdn.starts_with("_dmarc.")).cloned().expect("a DMARC row")
    };
    let plan_for = |name: &str| {
        let domain = DomainName::parse(name).expect("domain");
        let dns = &dns;
        let setup = &setup;
        async move { plan_records(Some(dns), &setup.config, &setup.account, &domain, false, &[]).await.expect("plan") }
    };

    // No record: the recommended one carries the address.
    setup.server.add("fresh.example.com", "A", "198.51.100.1");
    let fresh = dmarc_row(&plan_for("fresh.example.com").await);
    assert_eq!(
        (fresh.action, fresh.value.as_str()),
        (Action::Add, "v=DMARC1; p=none; rua=mailto:dmarc@reports.esp.example;")
    );

    // A record of the customer's own: the address appended to its rua list, every other tag kept.
    setup.good_customer("own.example.com");
    let own = dmarc_row(&plan_for("own.example.com").await);
    assert_eq!(own.action, Action::Replace, "an edit of the record there: {own:?}");
    assert_eq!(own.value, "v=DMARC1; p=none; rua=mailto:dmarc@example.com,mailto:dmarc@reports.esp.example;");
    let verified = setup.verify("own.example.com").await;
    assert_eq!(verified.status, DomainStatus::Verified, "the record works without it");
    let said = verified.problems.iter().find(|problem| problem.code == ProblemCode::DmarcReportsNotReceived);
    let said = said.expect("its absence is said");
    assert_eq!(said.severity, senderauth_core::problem::Severity::Info);
    assert!(said.fix.contains(&own.value), "the fix is the merged record: {said:?}");

    // Once the customer has edited it: nothing to do, nothing said.
    setup.server.remove("_dmarc.own.example.com", "TXT");
    setup.server.add("_dmarc.own.example.com", "TXT", &own.value);
    let edited = dmarc_row(&plan_for("own.example.com").await);
    assert_eq!((edited.action, edited.value.as_str()), (Action::AlreadyPresent, own.value.as_str()));
    assert!(!codes(&setup.verify("own.example.com").await).contains(&ProblemCode::DmarcReportsNotReceived));

    // A subdomain under a root's record: nothing to add here; the root's record decides.
    setup.server.add("_dmarc.example.net", "TXT", "v=DMARC1; p=quarantine; adkim=s");
    setup.server.add("news.example.net", "A", "198.51.100.1");
    let inherited = dmarc_row(&plan_for("news.example.net").await);
    assert_eq!(inherited.action, Action::NotNeeded);
    assert!(
        inherited.notes.iter().any(|note| note
            .contains("_dmarc.example.net to: v=DMARC1; p=quarantine; adkim=s; rua=mailto:dmarc@reports.esp.example;")),
        "{:?}",
        inherited.notes
    );
    let result = setup.verify("news.example.net").await;
    let said = result.problems.iter().find(|problem| problem.code == ProblemCode::DmarcReportsNotReceived);
    assert!(
        said.is_some_and(|problem| problem.fix.starts_with("The record of example.net decides")),
        "{:#?}",
        result.problems
    );

    // An operator who collects no reports: no rua recommended, nothing said.
    let mut quiet = Setup::new().await;
    quiet.config.dmarc.reports = String::new();
    quiet.good_customer("own.example.com");
    assert!(!codes(&quiet.verify("own.example.com").await).contains(&ProblemCode::DmarcReportsNotReceived));
    assert_eq!(quiet.config.dmarc_record(), "v=DMARC1; p=none;");
}
