//! A domain's setup as the customer reads it: where it stands (a banner), one table of the
//! records with, in each row, what to do (add, edit, replace, done), why the record exists,
//! what is wrong with it in plain words and the one thing to do, the technical detail a click
//! away, and the recommendations that are not errors apart. Shown on the setup page and on a
//! shared link's page; both update it in place when a check finishes (`app.js`).

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::name::DomainName;
use senderauth_core::plan::{Action, zone_records};
use senderauth_core::problem::{Method, ProblemCode, Severity};
use senderauth_core::status::MethodStatus;
use senderauth_service::domains::{DmarcFindings, DomainSummary, DomainView, ProblemView, SpfNodeFindings};

use super::domains::{Badge, time};

/// How long DNS changes take, and how long the platform keeps checking.
pub(crate) const TIMING: &str = "DNS changes usually show within minutes, sometimes hours (up to 48). We keep \
                                 checking for 72 hours and this page updates by itself when a check finishes.";

/// Everything of a domain's setup that a finished check can change (the page's live part).
pub(crate) struct Setup {
    pub(crate) badge: Badge,
    /// `waiting`, `progress`, `done` or `trouble`: the banner's colour.
    pub(crate) tone: &'static str,
    pub(crate) headline: String,
    pub(crate) next_step: String,
    pub(crate) rows: Vec<RecordRow>,
    /// Problems about the domain as a whole (it does not exist, DNS did not answer).
    pub(crate) domain_notes: Vec<RowMessage>,
    /// What is worth doing but is not wrong.
    pub(crate) recommendations: Vec<RowMessage>,
    pub(crate) last_checked: String,
    pub(crate) next_check: String,
    /// Changes when a check finishes: the script compares it with what the state route says.
    pub(crate) stamp: String,
    /// `dkim:verified spf:not_verified ...`: the script tells from it what changed.
    pub(crate) methods: String,
    /// The records as a zone-file snippet.
    pub(crate) zone_file: String,
}

/// One record: the table's row and the line under it.
pub(crate) struct RecordRow {
    pub(crate) method: &'static str,
    pub(crate) kind: &'static str,
    /// As typed at a DNS host (`@`, `sa1._domainkey.news`).
    pub(crate) host: String,
    pub(crate) fqdn: String,
    pub(crate) value: String,
    pub(crate) status: Badge,
    /// `add`, `edit`, `replace`, `done` or `attention`.
    pub(crate) action_class: &'static str,
    pub(crate) action: &'static str,
    pub(crate) advice: Option<String>,
    /// What DNS holds there now, when the action is to change it.
    pub(crate) existing: Option<String>,
    pub(crate) purpose: String,
    /// For DMARC: which record applies to the domain.
    pub(crate) applies: Option<String>,
    pub(crate) messages: Vec<RowMessage>,
    pub(crate) notes: Vec<String>,
    /// The technical detail: each finding as the verifier wrote it.
    pub(crate) detail: Vec<String>,
}

/// What is wrong (or worth doing), in plain words, and the one thing to do.
pub(crate) struct RowMessage {
    pub(crate) severity: &'static str,
    pub(crate) message: String,
    pub(crate) fix: String,
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Dkim => "DKIM",
        Method::Spf => "SPF",
        Method::Dmarc => "DMARC",
        Method::ReturnPath => "Return-Path (SPF alignment)",
        Method::Domain => "Domain",
    }
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// A sentence from the verifier's lower-case message.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|first| first.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// One message per cause: the problems of a row grouped by code, each group said once; the
/// sending addresses that fail SPF only as the consequence of another SPF error are left to the
/// technical detail.
fn messages(problems: &[&ProblemView]) -> Vec<RowMessage> {
    let shown: Vec<&&ProblemView> = problems.iter().filter(|problem| problem.severity != Severity::Info).collect();
    let other_error = shown.iter().any(|problem| {
        problem.severity == Severity::Error && problem.code != ProblemCode::SpfSendingIpNotAuthorized.as_str()
    });
    let mut groups: Vec<(&str, Vec<&ProblemView>)> = Vec::new();
    for problem in shown {
        if other_error && problem.code == ProblemCode::SpfSendingIpNotAuthorized.as_str() {
            continue;
        }
        match groups.iter_mut().find(|(code, _)| *code == problem.code) {
            Some((_, group)) => group.push(problem),
            None => groups.push((problem.code.as_str(), vec![problem])),
        }
    }
    groups
        .into_iter()
        .map(|(code, group)| {
            let first = group[0];
            let message = match (ProblemCode::parse(code), group.len()) {
                (Some(ProblemCode::SpfSendingIpNotAuthorized), count) => format!(
                    "Mail from the platform's servers does not pass SPF for your domain yet ({count} of its sending \
                     {} checked).",
                    if count == 1 { "address" } else { "addresses" }
                ),
                (_, 1) => sentence(&first.message),
                (_, count) => format!("{} (and {} more like it)", sentence(&first.message), count - 1),
            };
            RowMessage { severity: severity_class(first.severity), message, fix: first.fix.clone() }
        })
        .collect()
}

/// Problems that mean the customer's record is there, in the wrong form or place: the row's
/// action is to edit it, not to add another.
const EXISTING_RECORD_PROBLEMS: [ProblemCode; 9] = [
    ProblemCode::DkimHostDoubled,
    ProblemCode::DkimWrongType,
    ProblemCode::DkimProxied,
    ProblemCode::DkimWrongTarget,
    ProblemCode::SpfHostDoubled,
    ProblemCode::SpfSyntaxError,
    ProblemCode::DmarcWrongName,
    ProblemCode::DmarcSyntaxError,
    ProblemCode::SpfIncludeMissing,
];

/// What the customer does with a record, in a word or two, and a sentence more when it helps.
/// `misplaced`: a problem says the record is there in the wrong form or place.
fn action(
    method: Method,
    planned: Action,
    status: Option<MethodStatus>,
    found: Option<&str>,
    misplaced: bool,
) -> (&'static str, &'static str, Option<String>) {
    match planned {
        // A valid DMARC record without the platform's report address: it works, and one edit
        // brings its reports here.
        Action::Replace if method == Method::Dmarc && status == Some(MethodStatus::Verified) => (
            "edit",
            "Edit your existing record",
            Some(
                "Your record works. Change it (Now, below) to the value above so that receivers' reports about your \
                 mail reach this page: only the report address is added. Do not add a second DMARC record."
                    .to_string(),
            ),
        ),
        _ if status == Some(MethodStatus::Verified) => ("done", "Done", None),
        Action::AlreadyPresent => ("done", "Done", Some("This record is already in place.".to_string())),
        Action::NotNeeded => ("done", "Nothing to add", None),
        Action::CannotMerge => (
            "attention",
            "Needs a change first",
            Some("No record can be proposed until the record you have changes: see below.".to_string()),
        ),
        Action::Replace if method == Method::Spf => (
            "edit",
            "Edit your existing record",
            Some(
                "Do not add a second SPF record: a domain may have only one, and two make both fail. Change the one \
                 you have (Now, below) to the value above."
                    .to_string(),
            ),
        ),
        Action::Replace => (
            "replace",
            "Replace the existing record",
            Some("Delete the record that is there now (below) and add this one.".to_string()),
        ),
        Action::Add if (found.is_some() || misplaced) && status == Some(MethodStatus::NotVerified) => (
            "edit",
            "Edit the existing record",
            Some("A record is there, but not right: change it as said below, to the value above.".to_string()),
        ),
        Action::Add => ("add", "Add new", None),
    }
}

/// Which DMARC record applies to the domain, as of the last check (RFC 7489 section 6.6.3).
fn dmarc_applies(domain: &str, dmarc: &DmarcFindings) -> String {
    let policy = dmarc.policy.as_ref().map(|policy| format!(" (policy: {policy})")).unwrap_or_default();
    match (&dmarc.record, dmarc.inherited) {
        (Some(record), true) => {
            let location = dmarc.location.as_deref().unwrap_or(domain);
            format!(
                "Inherited from {location}: the record at _dmarc.{location} applies to {domain}{policy}: {record}. Add \
                 one at _dmarc.{domain} only to give {domain} a policy of its own."
            )
        }
        (Some(record), false) => format!("The record at _dmarc.{domain} applies{policy}: {record}"),
        (None, _) => {
            let root = DomainName::parse(domain).ok().map(|name| name.organizational_domain().to_string());
            match root.filter(|root| root != domain) {
                Some(root) => format!(
                    "No DMARC record applies to {domain} yet. Add this record at _dmarc.{domain}, or one at \
                     _dmarc.{root}, which covers {root} and all its subdomains."
                ),
                None => format!("No DMARC record applies to {domain} yet."),
            }
        }
    }
}

/// An SPF include tree as indented lines with lookup counts.
fn tree_lines(node: &SpfNodeFindings, depth: usize, lines: &mut Vec<String>) {
    let what = match (&node.record, &node.error) {
        (_, Some(error)) => format!("({error})"),
        (Some(record), None) => record.clone(),
        (None, None) => "(no SPF record)".to_string(),
    };
    let cost = if node.lookups == 1 { "1 lookup".to_string() } else { format!("{} lookups", node.lookups) };
    lines.push(format!("{}{} {}: {what} [{cost}]", "  ".repeat(depth), node.via, node.domain));
    for child in &node.children {
        tree_lines(child, depth + 1, lines);
    }
}

/// What changes when a check finishes: the page's script compares the page's with the state
/// route's.
pub(crate) fn stamp(domain: &DomainSummary) -> String {
    format!("{}:{}", domain.last_checked_at.unwrap_or(0), domain.status.as_str())
}

/// DKIM's, SPF's, DMARC's and the return-path's statuses as the page's script reads them:
/// `dkim:verified spf:not_verified dmarc:not_checked return_path:not_checked`.
pub(crate) fn methods_text(statuses: [Option<MethodStatus>; 4]) -> String {
    ["dkim", "spf", "dmarc", "return_path"]
        .iter()
        .zip(statuses)
        .map(|(method, status)| format!("{method}:{}", status.map_or("not_checked", MethodStatus::as_str)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The setup of a domain as of its latest check, the records planned by `view`.
pub(crate) fn setup(view: &DomainView) -> Setup {
    let domain = view.domain.domain.as_str();
    let latest = view.latest.as_ref();
    let problems: &[ProblemView] = latest.map(|latest| latest.problems.as_slice()).unwrap_or_default();
    let records = view.records.as_deref().unwrap_or_default();
    let dkim_rows = records.iter().filter(|record| record.required.method == Method::Dkim).count();
    let rows: Vec<RecordRow> = records
        .iter()
        .map(|record| {
            let required = &record.required;
            let mine: Vec<&ProblemView> = problems
                .iter()
                .filter(|problem| problem.method == required.method)
                .filter(|problem| match &problem.host {
                    Some(host) => *host == required.fqdn,
                    // A DKIM problem about no one selector belongs to all of them only if there is one.
                    None => required.method != Method::Dkim || dkim_rows == 1,
                })
                .collect();
            let misplaced =
                mine.iter().any(|problem| EXISTING_RECORD_PROBLEMS.iter().any(|code| code.as_str() == problem.code));
            let (action_class, action_label, advice) =
                action(required.method, required.action, record.status, record.found.as_deref(), misplaced);
            let existing = match (action_class, &record.found) {
                ("edit" | "replace", Some(found)) => Some(found.clone()),
                _ => None,
            };
            let mut detail: Vec<String> =
                mine.iter().map(|problem| format!("{}: {}", problem.code, problem.message)).collect();
            if let (Some(found), None) = (&record.found, &existing) {
                detail.push(format!("DNS holds: {found}"));
            }
            if required.method == Method::Spf
                && let Some(spf) = latest.map(|latest| &latest.spf)
            {
                if let Some(tree) = &spf.tree {
                    detail.push(format!(
                        "Your SPF record needs {} DNS lookups of the 10 allowed ({} empty of 2):",
                        tree.lookups, tree.void_lookups
                    ));
                    tree_lines(&tree.root, 1, &mut detail);
                }
                for sending in &spf.sending_ips {
                    detail.push(format!(
                        "The platform's {} (checked as {}): SPF {}: {}",
                        sending.network, sending.ip, sending.result, sending.reason
                    ));
                }
            }
            RecordRow {
                method: method_name(required.method),
                kind: required.record_type,
                host: required.host.clone(),
                fqdn: required.fqdn.clone(),
                value: required.value.clone(),
                status: record.status.map_or_else(|| Badge::new("not_checked"), Badge::method),
                action_class,
                action: action_label,
                advice,
                existing,
                purpose: required.purpose.clone(),
                applies: latest
                    .filter(|_| required.method == Method::Dmarc)
                    .map(|latest| dmarc_applies(domain, &latest.dmarc)),
                messages: messages(&mine),
                notes: required.notes.clone(),
                detail,
            }
        })
        .collect();
    let unplaced = |problem: &&ProblemView| problem.method == Method::Domain;
    let domain_notes = messages(&problems.iter().filter(unplaced).collect::<Vec<_>>())
        .into_iter()
        .chain(problems.iter().filter(unplaced).filter(|problem| problem.severity == Severity::Info).map(|problem| {
            RowMessage { severity: "info", message: sentence(&problem.message), fix: problem.fix.clone() }
        }))
        .collect();
    let recommendations = problems
        .iter()
        .filter(|problem| problem.severity == Severity::Info && problem.method != Method::Domain)
        .filter(|problem| problem.code != ProblemCode::DmarcInherited.as_str())
        .map(|problem| RowMessage { severity: "info", message: sentence(&problem.message), fix: problem.fix.clone() })
        .collect();
    let method_status = |method: Method| {
        latest.and_then(|latest| match method {
            Method::Dkim => latest.dkim.status,
            Method::Spf => latest.spf.status,
            Method::ReturnPath => latest.return_path.as_ref().map(|found| found.status),
            Method::Dmarc | Method::Domain => latest.dmarc.status,
        })
    };
    let methods = methods_text([Method::Dkim, Method::Spf, Method::Dmarc, Method::ReturnPath].map(method_status));
    let mut rows = rows;
    if method_status(Method::ReturnPath) == Some(MethodStatus::Verified) {
        let host = latest.and_then(|latest| latest.return_path.as_ref()).map_or("", |found| found.host.as_str());
        for row in rows.iter_mut().filter(|row| row.method == method_name(Method::Spf)) {
            row.notes.push(format!(
                "Your return-path is verified, so for the platform's mail receivers check SPF at {host} (aligned with \
                 your From), not at this record. Keep the platform's include here all the same: the domain's status \
                 asks for it, some receivers' spam filters still look up the From domain's SPF, and while the \
                 return-path is out of use (a failed check) your mail leaves with the platform's bounce domain, \
                 where DKIM alone carries DMARC."
            ));
        }
    }
    let (tone, headline, next_step) = banner(view, &rows, &method_status);
    Setup {
        badge: Badge::lifecycle(view.domain.status),
        tone,
        headline,
        next_step,
        zone_file: zone_records(records.iter().map(|record| &record.required)),
        rows,
        domain_notes,
        recommendations,
        last_checked: time(view.domain.last_checked_at),
        next_check: time(view.domain.next_check_at),
        stamp: stamp(&view.domain),
        methods,
    }
}

/// The banner: where the setup stands, and the next step.
fn banner(
    view: &DomainView,
    rows: &[RecordRow],
    method_status: &dyn Fn(Method) -> Option<MethodStatus>,
) -> (&'static str, String, String) {
    let domain = view.domain.domain.as_str();
    let total = rows.len();
    let found = rows.iter().filter(|row| row.action_class == "done").count();
    let to_change = rows.iter().filter(|row| matches!(row.action_class, "edit" | "replace" | "attention")).count();
    let missing: Vec<&str> = [Method::Dkim, Method::Spf, Method::Dmarc]
        .into_iter()
        .filter(|method| method_status(*method) != Some(MethodStatus::Verified))
        .map(method_name)
        .collect();
    let list = |names: &[&str]| match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    let unknown = [Method::Dkim, Method::Spf, Method::Dmarc]
        .into_iter()
        .any(|method| method_status(method) == Some(MethodStatus::Unknown));
    match view.domain.status {
        // Verified, and the last check found something missing: the status holds for a few
        // checks (DNS hiccups happen), but the customer should look now.
        LifecycleStatus::Verified if !missing.is_empty() && !unknown => (
            "trouble",
            format!("{} failed the last check.", list(&missing)),
            "The domain stays Verified while we check again; if the record is still wrong after a few checks, the \
             status drops to Temporary failure. Fix the record below."
                .to_string(),
        ),
        LifecycleStatus::Verified if method_status(Method::ReturnPath) == Some(MethodStatus::Verified) => (
            "done",
            "You're all set.".to_string(),
            format!(
                "Mail from {domain} is signed as {domain} and its return-path is under {domain}, so it passes DMARC \
                 through DKIM and SPF both. Next: send a test message to an address of yours at Gmail or Outlook and \
                 look for \"dkim=pass\" and \"spf=pass\" in its headers; later, once all your mail passes, tighten \
                 DMARC (p=quarantine, then p=reject)."
            ),
        ),
        LifecycleStatus::Verified => (
            "done",
            "You're all set.".to_string(),
            format!(
                "Mail from {domain} is signed as {domain} and passes DMARC through DKIM. One more record is \
                 recommended: the Return-Path CNAME below puts the envelope sender under {domain}, so SPF passes \
                 aligned too and a forwarder that breaks the signature does not fail DMARC. Then send a test message \
                 to an address of yours at Gmail or Outlook and look for \"dkim=pass\" in its headers; later, once \
                 all your mail passes, tighten DMARC (p=quarantine, then p=reject)."
            ),
        ),
        LifecycleStatus::PartiallyVerified => (
            "progress",
            format!("{found} of {total} records found. DKIM is done: your mail is already signed as {domain}."),
            format!("Add {} to finish. {TIMING}", list(&missing)),
        ),
        LifecycleStatus::TemporaryFailure => (
            "trouble",
            format!("{} stopped working.", list(&missing)),
            "Records that worked are missing now. We keep checking and restore the status when they are back: check \
             them at your DNS host."
                .to_string(),
        ),
        LifecycleStatus::Failed => (
            "trouble",
            format!("{found} of {total} records found, and we have stopped checking."),
            "Add the records below, then click Verify: we check again for another 72 hours.".to_string(),
        ),
        _ if unknown => (
            "waiting",
            "DNS did not answer our last check.".to_string(),
            format!("This is usually passing: we check again soon. {TIMING}"),
        ),
        LifecycleStatus::NotVerified if view.domain.last_checked_at.is_none() => (
            "waiting",
            "Waiting for your records.".to_string(),
            format!("Add the {total} records below at your DNS host, then click Verify. {TIMING}"),
        ),
        // Records are there, but at the wrong name or in the wrong form: not "waiting".
        LifecycleStatus::NotVerified if to_change > 0 => (
            "progress",
            format!(
                "{found} of {total} records found; {to_change} {} a change.",
                if to_change == 1 { "needs" } else { "need" }
            ),
            format!(
                "Your DNS host has {}, but not as {} must be: change {} as its row says below. {TIMING}",
                if to_change == 1 { "one record" } else { "records" },
                if to_change == 1 { "it" } else { "they" },
                if to_change == 1 { "it" } else { "each" },
            ),
        ),
        LifecycleStatus::NotVerified if found == 0 => (
            "waiting",
            "Waiting for your records.".to_string(),
            format!("None of the {total} records below is in DNS yet. Add them at your DNS host. {TIMING}"),
        ),
        LifecycleStatus::NotVerified => (
            "progress",
            format!("{found} of {total} records found."),
            format!("Add {} to finish. {TIMING}", list(&missing)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(code: ProblemCode, severity: Severity, message: &str) -> ProblemView {
        ProblemView {
            code: code.as_str().to_string(),
            severity,
            method: Method::Spf,
            message: message.to_string(),
            fix: "fix it".to_string(),
            host: None,
        }
    }

    #[test]
    fn a_missing_include_is_one_message_not_one_per_sending_address() {
        let include = problem(ProblemCode::SpfIncludeMissing, Severity::Error, "the record does not include us");
        let addresses: Vec<ProblemView> = (0..5)
            .map(|n| problem(ProblemCode::SpfSendingIpNotAuthorized, Severity::Error, &format!("192.0.2.{n} fails")))
            .collect();
        let all: Vec<&ProblemView> = std::iter::once(&include).chain(&addresses).collect();
        let shown = messages(&all);
        assert_eq!(shown.len(), 1, "one cause, one message");
        assert_eq!(shown[0].message, "The record does not include us.");
        // Alone, the failing addresses are one message that counts them.
        let alone: Vec<&ProblemView> = addresses.iter().collect();
        let shown = messages(&alone);
        assert_eq!(shown.len(), 1);
        assert!(shown[0].message.contains("5 of its sending addresses"), "{}", shown[0].message);
    }

    #[test]
    fn an_spf_record_to_change_is_edited_never_added_twice() {
        let (class, label, advice) =
            action(Method::Spf, Action::Replace, Some(MethodStatus::NotVerified), Some("v=spf1"), false);
        assert_eq!((class, label), ("edit", "Edit your existing record"));
        assert!(advice.expect("advice").contains("Do not add a second SPF record"));
        let (class, label, _) = action(Method::Dmarc, Action::Replace, None, Some("v=DMARC1 p=none"), false);
        assert_eq!((class, label), ("replace", "Replace the existing record"));
        assert_eq!(action(Method::Dkim, Action::Add, Some(MethodStatus::Verified), Some("x"), false).1, "Done");
        assert_eq!(action(Method::Dkim, Action::Add, None, None, false).1, "Add new");
        // A record at the wrong name or in the wrong form is edited, not added again.
        assert_eq!(
            action(Method::Dmarc, Action::Add, Some(MethodStatus::NotVerified), None, true).1,
            "Edit the existing record"
        );
    }
}
