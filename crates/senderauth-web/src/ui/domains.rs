//! The domain pages: the list with the connect form, a domain's setup page (the records to add
//! per method next to what DNS holds, what to fix, Verify, removal) and its history.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::format_description;

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::name::DomainName;
use senderauth_core::problem::{Method, ProblemCode, Severity};
use senderauth_core::status::MethodStatus;
use senderauth_service::ErrorKind;
use senderauth_service::domains::{DmarcFindings, DnsHost, DomainRow, DomainView, HistoryEntry};

use super::{CsrfForm, Nav, Signed, error_page, refusal_text, render, url_part, went_wrong};
use crate::WebState;

/// Domains per page of the list.
const PAGE: i64 = 50;
/// Check runs per page of a domain's history (runs of alike checks count once).
const HISTORY_PAGE: i64 = 50;

/// The statuses the pages name, with what they call them: a domain's five (the first five, the
/// list's filter), then a method's own. One word per state: the API, the CLI and the pages
/// share them.
const STATUSES: [(&str, &str); 6] = [
    ("not_verified", "Not verified"),
    ("partially_verified", "Partially verified"),
    ("verified", "Verified"),
    ("temporary_failure", "Temporary failure"),
    ("failed", "Failed"),
    ("unknown", "Unknown: DNS did not answer"),
];

fn status_label(status: &str) -> String {
    STATUSES.iter().find(|(key, _)| *key == status).map_or(status, |(_, label)| label).to_string()
}

/// A status as a badge: its class and its words.
pub(crate) struct Badge {
    class: String,
    label: String,
}

impl Badge {
    fn new(status: &str) -> Badge {
        Badge { class: status.to_string(), label: status_label(status) }
    }

    fn method(status: MethodStatus) -> Badge {
        Badge::new(status.as_str())
    }

    fn lifecycle(status: LifecycleStatus) -> Badge {
        Badge::new(status.as_str())
    }
}

/// A method's badge: its name, with a mark and words for its status (not colour alone).
pub(crate) struct MethodBadge {
    method: &'static str,
    class: String,
    label: String,
    mark: &'static str,
}

impl MethodBadge {
    fn new(method: &'static str, status: MethodStatus) -> MethodBadge {
        let mark = match status {
            MethodStatus::Verified => "✓",
            MethodStatus::Unknown => "?",
            MethodStatus::NotVerified => "✗",
        };
        MethodBadge { method, class: status.as_str().to_string(), label: status_label(status.as_str()), mark }
    }
}

/// A time as the pages show it: `2026-11-27 09:21 UTC`, or a dash for none.
fn time(at: Option<i64>) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| "—".to_string())
}

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct RowView {
    name: String,
    /// The name as people read it (Unicode for an internationalized one).
    shown: String,
    badge: Badge,
    methods: Option<Vec<MethodBadge>>,
    last: String,
    next: String,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage<'a> {
    title: &'a str,
    nav: Option<Nav>,
    csrf: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    email: &'a str,
    search: &'a str,
    statuses: Vec<StatusOption>,
    rows: Vec<RowView>,
    next: Option<String>,
}

pub(super) async fn domains_page(
    State(state): State<WebState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Response {
    render_domains(&state, &signed, &query, None, "").await
}

async fn render_domains(
    state: &WebState,
    signed: &Signed,
    query: &ListQuery,
    error: Option<&str>,
    email: &str,
) -> Response {
    let account = signed.session.account_id;
    let status = query.status.as_deref().filter(|status| STATUSES.iter().any(|(key, _)| key == status));
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut domains: Vec<DomainRow> =
        match state.service.domain_rows(account, status, search, query.after.as_deref(), PAGE + 1).await {
            Ok(domains) => domains,
            Err(error) => return went_wrong(Some(signed), "listing domains", &error),
        };
    let more = domains.len() as i64 > PAGE;
    domains.truncate(PAGE as usize);
    let next = domains.last().filter(|_| more).map(|last| {
        let mut next = format!("/ui/domains?after={}", url_part(&last.domain.domain));
        if let Some(status) = status {
            next.push_str(&format!("&status={status}"));
        }
        if let Some(search) = search {
            next.push_str(&format!("&q={}", url_part(search)));
        }
        next
    });
    let rows = domains
        .iter()
        .map(|row| RowView {
            name: row.domain.domain.clone(),
            shown: readable(&row.domain.domain).unwrap_or_else(|| row.domain.domain.clone()),
            badge: Badge::lifecycle(row.domain.status),
            methods: row.methods.as_ref().map(|statuses| {
                ["DKIM", "SPF", "DMARC"]
                    .into_iter()
                    .zip(statuses)
                    .map(|(method, status)| MethodBadge::new(method, *status))
                    .collect()
            }),
            last: time(row.domain.last_checked_at),
            next: time(row.domain.next_check_at),
        })
        .collect();
    let statuses = STATUSES
        .iter()
        .take(5)
        .map(|&(value, label)| StatusOption { value, label, selected: status == Some(value) })
        .collect();
    let page = DomainsPage {
        title: "Domains",
        nav: Some(signed.nav()),
        csrf: signed.csrf(),
        notice: query.notice.as_deref().filter(|notice| *notice == "deleted").map(|_| "The domain was removed."),
        error,
        email,
        search: search.unwrap_or(""),
        statuses,
        rows,
        next,
    };
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(code, &page)
}

#[derive(Deserialize)]
pub(super) struct ConnectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    ed25519: Option<String>,
}

pub(super) async fn connect(State(state): State<WebState>, signed: Signed, Form(form): Form<ConnectForm>) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    let algorithm = form.ed25519.is_some().then_some("ed25519");
    match state.service.connect(signed.session.account_id, form.email.trim(), algorithm).await {
        Ok(connected) => Redirect::to(&format!("/ui/domains/{}", url_part(&connected.domain.domain))).into_response(),
        Err(error) => {
            let message = refusal_text(&error);
            render_domains(&state, &signed, &ListQuery::default(), Some(&message), &form.email).await
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct DomainQuery {
    notice: Option<String>,
}

/// Demo mode: whether the domain's zone is at this account's sandbox DNS host.
struct SandboxNotice {
    apex: String,
    hosted: bool,
}

/// Which DMARC record applies to the domain and where it is, as of the last check: its own, or
/// inherited from the root domain (RFC 7489 section 6.6.3).
enum DmarcSummary {
    Inherited { location: String, domain: String, policy: Option<String>, record: String },
    Own { domain: String, policy: Option<String>, record: String },
    NoneForSubdomain { domain: String, root: String },
    NoneForRoot { domain: String },
}

impl DmarcSummary {
    fn new(domain: &str, dmarc: &DmarcFindings) -> DmarcSummary {
        let domain_owned = domain.to_string();
        let policy = dmarc.policy.clone();
        match (&dmarc.record, dmarc.inherited) {
            (Some(record), true) => DmarcSummary::Inherited {
                location: dmarc.location.clone().unwrap_or_else(|| domain_owned.clone()),
                domain: domain_owned,
                policy,
                record: record.clone(),
            },
            (Some(record), false) => DmarcSummary::Own { domain: domain_owned, policy, record: record.clone() },
            (None, _) => {
                let root = DomainName::parse(domain).ok().map(|name| name.organizational_domain().to_string());
                match root.filter(|root| root != domain) {
                    Some(root) => DmarcSummary::NoneForSubdomain { domain: domain_owned, root },
                    None => DmarcSummary::NoneForRoot { domain: domain_owned },
                }
            }
        }
    }
}

struct RecordRow {
    /// Why the record exists, in plain words.
    purpose: String,
    kind: &'static str,
    host: String,
    value: String,
    found: String,
    status: Option<Badge>,
    notes: Vec<String>,
}

struct Section {
    id: &'static str,
    title: &'static str,
    badge: Badge,
    dmarc: Option<DmarcSummary>,
    records: Vec<RecordRow>,
}

struct ProblemRow {
    severity: &'static str,
    message: String,
    fix: String,
}

struct Change {
    at: String,
    from: Option<Badge>,
    to: Badge,
    event: Option<String>,
}

impl From<&HistoryEntry> for Change {
    fn from(change: &HistoryEntry) -> Change {
        Change {
            at: time(Some(change.at)),
            from: change.from.map(Badge::lifecycle),
            to: Badge::lifecycle(change.to),
            event: change.event.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage<'a> {
    title: &'a str,
    nav: Option<Nav>,
    csrf: &'a str,
    domain: &'a str,
    /// The name as people read it, when it differs (an internationalized domain in Unicode).
    unicode: Option<String>,
    badge: Badge,
    notice: Option<String>,
    sandbox: Option<SandboxNotice>,
    dns_host: Option<DnsHost>,
    last_checked: String,
    next_check: String,
    /// Where the setup stands and what to do next, in a sentence or two.
    progress: String,
    sections: Vec<Section>,
    problems: Vec<ProblemRow>,
    history: Vec<Change>,
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// The setup page's sections, one per method: its status, (for DMARC) which record applies,
/// and its records.
/// An internationalized domain's name in Unicode (`bücher.example`); `None` for a plain one.
fn readable(domain: &str) -> Option<String> {
    DomainName::parse(domain).ok().and_then(|name| name.unicode())
}

/// How long DNS changes take, and how long the platform keeps checking.
const TIMING: &str = "DNS changes usually show within minutes, sometimes hours (up to 48). We keep checking for \
                      72 hours, so the status updates without you: reload to see it, or click Verify.";

/// Where the setup stands: how many records are found, and the next step.
fn progress(view: &DomainView) -> String {
    let domain = view.domain.domain.as_str();
    let records: Vec<_> = view.records.iter().flatten().collect();
    let total = records.len();
    let found = records.iter().filter(|record| record.status == Some(MethodStatus::Verified)).count();
    let method_done = |method: Method| {
        view.latest.as_ref().and_then(|latest| match method {
            Method::Dkim => latest.dkim.status,
            Method::Spf => latest.spf.status,
            _ => latest.dmarc.status,
        }) == Some(MethodStatus::Verified)
    };
    let missing: Vec<&str> = [(Method::Dkim, "DKIM"), (Method::Spf, "SPF"), (Method::Dmarc, "DMARC")]
        .into_iter()
        .filter(|(method, _)| !method_done(*method))
        .map(|(_, name)| name)
        .collect();
    match view.domain.status {
        LifecycleStatus::Verified => format!(
            "You're all set: mail from {domain} is signed as {domain} and passes SPF and DMARC checks. Next: send a \
             test message, and once reports show all your mail passes, tighten DMARC (p=quarantine, then p=reject)."
        ),
        LifecycleStatus::PartiallyVerified => format!(
            "{found} of {total} records found. DKIM is done: your mail is already signed as {domain}. Add {} to \
             finish. {TIMING}",
            missing.join(" and ")
        ),
        LifecycleStatus::TemporaryFailure => format!(
            "Records that worked are missing now: {} {}. We keep checking and restore the status when they are \
             back; check them at your DNS host.",
            missing.join(" and "),
            if missing.len() == 1 { "is" } else { "are" }
        ),
        LifecycleStatus::Failed => format!(
            "{found} of {total} records found, and we have stopped checking. Add the records below, then click \
             Verify."
        ),
        LifecycleStatus::NotVerified if view.domain.last_checked_at.is_none() || found == 0 => format!(
            "Waiting for your records: add the {total} records below at your DNS host, then click Verify. {TIMING}"
        ),
        LifecycleStatus::NotVerified => {
            format!("{found} of {total} records found. Add {} to finish. {TIMING}", missing.join(" and "))
        }
    }
}

fn sections(view: &DomainView) -> Vec<Section> {
    let latest = view.latest.as_ref();
    let methods = [
        (Method::Dkim, "dkim", "DKIM", latest.and_then(|latest| latest.dkim.status)),
        (Method::Spf, "spf", "SPF", latest.and_then(|latest| latest.spf.status)),
        (Method::Dmarc, "dmarc", "DMARC", latest.and_then(|latest| latest.dmarc.status)),
    ];
    methods
        .into_iter()
        .map(|(method, id, title, status)| Section {
            id,
            title,
            badge: status.map_or_else(|| Badge::new("not checked yet"), Badge::method),
            dmarc: latest
                .filter(|_| method == Method::Dmarc)
                .map(|latest| DmarcSummary::new(&view.domain.domain, &latest.dmarc)),
            records: view
                .records
                .iter()
                .flatten()
                .filter(|record| record.required.method == method)
                .map(|record| RecordRow {
                    purpose: record.required.purpose.clone(),
                    kind: record.required.record_type,
                    host: record.required.host.clone(),
                    value: record.required.value.clone(),
                    found: record.found.clone().unwrap_or_else(|| "—".to_string()),
                    status: record.status.map(Badge::method),
                    notes: record.required.notes.clone(),
                })
                .collect(),
        })
        .collect()
}

pub(super) async fn domain_page(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<DomainQuery>,
) -> Response {
    // Planned against DNS now: the customer sees their existing SPF record merged.
    let view = match state.service.domain(signed.session.account_id, &name, true).await {
        Ok(view) => view,
        Err(error) => return error_page(&signed, &error),
    };
    let domain = view.domain.domain.as_str();
    let notice = query.notice.as_deref().map(|notice| match notice {
        "verified" => "Checked just now.".to_string(),
        "confirm" => "Tick the box to confirm the removal.".to_string(),
        other => other.chars().take(200).collect(),
    });
    let sandbox = match signed.demo.then(|| DomainName::parse(domain).ok()).flatten() {
        Some(name) => {
            let apex = name.organizational_domain().to_string();
            let hosted = state.service.hosts_sandbox_zone(signed.session.account_id, &apex).await;
            Some(SandboxNotice { apex, hosted })
        }
        None => None,
    };
    let problems = view.latest.as_ref().map(|latest| latest.problems.as_slice()).unwrap_or_default();
    let page = DomainPage {
        title: domain,
        nav: Some(signed.nav()),
        csrf: signed.csrf(),
        domain,
        unicode: readable(domain),
        badge: Badge::lifecycle(view.domain.status),
        notice,
        sandbox,
        dns_host: state.service.dns_host(&view.zone).await,
        last_checked: time(view.domain.last_checked_at),
        next_check: time(view.domain.next_check_at),
        progress: progress(&view),
        sections: sections(&view),
        problems: problems
            .iter()
            .map(|problem| ProblemRow {
                severity: severity_class(problem.severity),
                message: problem.message.clone(),
                fix: problem.fix.clone(),
            })
            .collect(),
        history: view.history.iter().rev().map(Change::from).collect(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
pub(super) struct HistoryQuery {
    before: Option<i64>,
}

struct RunRow {
    when: String,
    checks: i64,
    status: Badge,
    dkim: Badge,
    spf: Badge,
    dmarc: Badge,
    problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    title: &'a str,
    nav: Option<Nav>,
    domain: &'a str,
    badge: Badge,
    runs: Vec<RunRow>,
    /// The `before` of the next page of older checks.
    older: Option<i64>,
    changes: Vec<Change>,
}

/// A domain's history: every check, consecutive alike checks as one line, and every change of
/// its status.
pub(super) async fn history_page(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let account = signed.session.account_id;
    let history = match state.service.history(account, &name, query.before, HISTORY_PAGE + 1).await {
        Ok(history) => history,
        Err(error) => return error_page(&signed, &error),
    };
    let record = &history.domain;
    let older = (history.runs.len() as i64 > HISTORY_PAGE)
        .then(|| history.runs.get(HISTORY_PAGE as usize - 1).map(|run| run.id))
        .flatten();
    let runs = history
        .runs
        .iter()
        .take(HISTORY_PAGE as usize)
        .map(|run| RunRow {
            when: if run.first_at == run.last_at {
                time(Some(run.first_at))
            } else {
                format!("{} to {}", time(Some(run.first_at)), time(Some(run.last_at)))
            },
            checks: run.checks,
            status: Badge::lifecycle(run.status),
            dkim: Badge::method(run.dkim_status),
            spf: Badge::method(run.spf_status),
            dmarc: Badge::method(run.dmarc_status),
            // In plain words; a code this version does not know is shown as it is.
            problems: run
                .problem_codes
                .split(' ')
                .filter(|code| !code.is_empty())
                .map(|code| {
                    ProblemCode::parse(code).map_or_else(|| code.to_string(), |code| code.summary().to_string())
                })
                .collect(),
        })
        .collect();
    let changes = history.history.iter().rev().map(Change::from).collect();
    let title = format!("History of {}", record.domain);
    let page = HistoryPage {
        title: &title,
        nav: Some(signed.nav()),
        domain: &record.domain,
        badge: Badge::lifecycle(record.status),
        runs,
        older,
        changes,
    };
    render(StatusCode::OK, &page)
}

pub(super) async fn verify(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    let notice = match state.service.verify_now(signed.session.account_id, &name).await {
        Ok(_) => "verified".to_string(),
        Err(error) if error.kind() == ErrorKind::NotFound => return Redirect::to("/ui/domains").into_response(),
        Err(error) => refusal_text(&error),
    };
    Redirect::to(&format!("/ui/domains/{}?notice={}", url_part(&name), url_part(&notice))).into_response()
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn delete(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    if form.confirm != "yes" {
        return Redirect::to(&format!("/ui/domains/{}?notice=confirm", url_part(&name))).into_response();
    }
    match state.service.remove(signed.session.account_id, &name).await {
        Ok(()) => Redirect::to("/ui/domains?notice=deleted").into_response(),
        Err(error) if error.kind() == ErrorKind::NotFound => Redirect::to("/ui/domains").into_response(),
        Err(error) => error_page(&signed, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        // Checked against `date -u -d @SECONDS`, a leap day included.
        assert_eq!(time(Some(1_795_771_282)), "2026-11-27 09:21 UTC");
        assert_eq!(time(Some(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(time(None), "—");
    }
}
