//! The domain pages: the list with the connect form, a domain's setup page (the records to add
//! per method next to what DNS holds, what to fix, Verify, removal) and its history.

use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::name::DomainName;
use senderauth_core::problem::ProblemCode;
use senderauth_core::status::MethodStatus;
use senderauth_service::ErrorKind;
use senderauth_service::domains::{DnsHost, DomainRow, HistoryEntry, STATUS_COUNT_CAP};

use super::setup::{Setup, methods_text, setup, stamp};
use super::{Chrome, CsrfForm, Signed, error_page, refusal_text, render, url_part, went_wrong};
use crate::WebState;

/// Domains per page of the list.
const PAGE: i64 = 50;
/// Check runs per page of a domain's history (runs of alike checks count once).
const HISTORY_PAGE: i64 = 50;

/// The statuses the pages name, with what they call them: a domain's five (the first five, the
/// list's filter), then a method's own. One word per state: the API, the CLI and the pages
/// share them.
const STATUSES: [(&str, &str); 7] = [
    ("not_verified", "Not verified"),
    ("partially_verified", "Partially verified"),
    ("verified", "Verified"),
    ("temporary_failure", "Temporary failure"),
    ("failed", "Failed"),
    ("unknown", "Unknown: DNS did not answer"),
    ("not_checked", "Not checked yet"),
];

fn status_label(status: &str) -> String {
    STATUSES.iter().find(|(key, _)| *key == status).map_or(status, |(_, label)| label).to_string()
}

/// A status as a badge: its class and its words.
pub(crate) struct Badge {
    pub(crate) class: String,
    pub(crate) label: String,
}

impl Badge {
    pub(crate) fn new(status: &str) -> Badge {
        Badge { class: status.to_string(), label: status_label(status) }
    }

    pub(crate) fn method(status: MethodStatus) -> Badge {
        Badge::new(status.as_str())
    }

    pub(crate) fn lifecycle(status: LifecycleStatus) -> Badge {
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
pub(crate) fn time(at: Option<i64>) -> String {
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
    /// Not verified yet (or not any more): the row offers "Continue setup".
    unfinished: bool,
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
    chrome: Chrome,
    csrf: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    email: &'a str,
    search: &'a str,
    statuses: Vec<StatusOption>,
    /// How many domains are in each status (those with any), each a link to its filter.
    counts: Vec<StatusCount>,
    /// The first page without a filter: unfinished domains first, worst first.
    attention: Vec<RowView>,
    rows: Vec<RowView>,
    next: Option<String>,
}

struct StatusCount {
    value: &'static str,
    label: &'static str,
    /// `25`, `1,000+`.
    count: String,
}

/// A count as people read it: `1,000`.
fn thousands(count: i64) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The statuses that need the customer, worst first: what the list shows above the rest.
const ATTENTION: [&str; 4] = ["failed", "temporary_failure", "not_verified", "partially_verified"];
/// How many domains that need attention the list shows above the rest.
const ATTENTION_ROWS: usize = 5;

fn row_view(row: &DomainRow) -> RowView {
    RowView {
        name: row.domain.domain.clone(),
        unfinished: row.domain.status != LifecycleStatus::Verified,
        shown: readable(&row.domain.domain).unwrap_or_else(|| row.domain.domain.clone()),
        badge: Badge::lifecycle(row.domain.status),
        methods: row.methods.as_ref().map(|statuses| {
            [("DKIM", Some(statuses.dkim)), ("SPF", Some(statuses.spf)), ("DMARC", Some(statuses.dmarc))]
                .into_iter()
                .chain([("Return-Path", statuses.return_path)])
                .filter_map(|(method, status)| status.map(|status| MethodBadge::new(method, status)))
                .collect()
        }),
        last: time(row.domain.last_checked_at),
        next: time(row.domain.next_check_at),
    }
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
            Err(error) => return went_wrong(signed.chrome(), "listing domains", &error),
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
    let rows = domains.iter().map(row_view).collect();
    // The counts per status (not beside a search's results, which they would not describe).
    let counts: Vec<StatusCount> = match search {
        Some(_) => Vec::new(),
        None => match state.service.status_counts(account).await {
            Ok(counts) => counts
                .into_iter()
                .map(|(status, count)| StatusCount {
                    value: status.as_str(),
                    label: STATUSES.iter().find(|(key, _)| *key == status.as_str()).map_or("", |(_, label)| label),
                    count: if count >= STATUS_COUNT_CAP {
                        format!("{}+", thousands(STATUS_COUNT_CAP))
                    } else {
                        thousands(count)
                    },
                })
                .collect(),
            Err(error) => return went_wrong(signed.chrome(), "counting domains", &error),
        },
    };
    // Problems first: on the unfiltered first page, the domains that need the customer.
    let mut attention = Vec::new();
    if status.is_none() && search.is_none() && query.after.is_none() {
        for wanted in ATTENTION {
            if attention.len() >= ATTENTION_ROWS || !counts.iter().any(|count| count.value == wanted) {
                continue;
            }
            let limit = (ATTENTION_ROWS - attention.len()) as i64;
            match state.service.domain_rows(account, Some(wanted), None, None, limit).await {
                Ok(rows) => attention.extend(rows.iter().map(row_view)),
                Err(error) => return went_wrong(signed.chrome(), "listing domains", &error),
            }
        }
    }
    let statuses = STATUSES
        .iter()
        .take(5)
        .map(|&(value, label)| StatusOption { value, label, selected: status == Some(value) })
        .collect();
    let page = DomainsPage {
        title: "Domains",
        chrome: signed.chrome(),
        csrf: signed.csrf(),
        notice: query.notice.as_deref().filter(|notice| *notice == "deleted").map(|_| "The domain was removed."),
        error,
        email,
        search: search.unwrap_or(""),
        statuses,
        counts,
        attention,
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

struct Change {
    at: String,
    from: Option<Badge>,
    to: Badge,
}

impl From<&HistoryEntry> for Change {
    fn from(change: &HistoryEntry) -> Change {
        Change { at: time(Some(change.at)), from: change.from.map(Badge::lifecycle), to: Badge::lifecycle(change.to) }
    }
}

/// A share link as the setup page lists it.
struct ShareRow {
    id: i64,
    created: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage<'a> {
    title: &'a str,
    chrome: Chrome,
    csrf: &'a str,
    domain: &'a str,
    /// The name as people read it, when it differs (an internationalized domain in Unicode).
    unicode: Option<String>,
    notice: Option<String>,
    sandbox: Option<SandboxNotice>,
    dns_host: Option<DnsHost>,
    setup: Setup,
    shares: Vec<ShareRow>,
    history: Vec<Change>,
    /// The last 30 days' bounces, by cause.
    bounces: Vec<BounceCauseRow>,
}

/// Bounced recipients of one cause, as the domain's page lists them.
struct BounceCauseRow {
    /// `Hard` or `Soft`.
    kind: &'static str,
    status: String,
    meaning: &'static str,
    recipients: i64,
    last: String,
    diagnostic: String,
}

/// An internationalized domain's name in Unicode (`bücher.example`); `None` for a plain one.
pub(super) fn readable(domain: &str) -> Option<String> {
    DomainName::parse(domain).ok().and_then(|name| name.unicode())
}

pub(super) async fn domain_page(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<DomainQuery>,
) -> Response {
    let account = signed.session.account_id;
    // Planned against DNS now: the customer sees their existing SPF record merged.
    let view = match state.service.domain(account, &name, true).await {
        Ok(view) => view,
        Err(error) => return error_page(&signed, &error),
    };
    let domain = view.domain.domain.as_str();
    let notice = query.notice.as_deref().map(|notice| match notice {
        "verified" => "Checked just now.".to_string(),
        "confirm" => "Tick the box to confirm the removal.".to_string(),
        "revoked" => "The link was revoked: it no longer opens.".to_string(),
        other => other.chars().take(200).collect(),
    });
    let sandbox = match signed.demo.then(|| DomainName::parse(domain).ok()).flatten() {
        Some(name) => {
            let apex = name.organizational_domain().to_string();
            let hosted = state.service.hosts_sandbox_zone(account, &apex).await;
            Some(SandboxNotice { apex, hosted })
        }
        None => None,
    };
    let shares = match state.service.share_links(account, domain).await {
        Ok(links) => links
            .iter()
            .map(|link| ShareRow {
                id: link.id,
                created: time(Some(link.created_at)),
                expires: time(Some(link.expires_at)),
            })
            .collect(),
        Err(error) => return error_page(&signed, &error),
    };
    let bounces = match state.service.bounce_causes(account, domain, 30).await {
        Ok(causes) => causes
            .iter()
            .map(|cause| BounceCauseRow {
                kind: if cause.kind == "hard" { "Hard" } else { "Soft" },
                status: cause.status.clone().unwrap_or_else(|| "—".to_string()),
                meaning: cause.meaning,
                recipients: cause.recipients,
                last: time(Some(cause.last_at)),
                diagnostic: cause.diagnostic.clone().unwrap_or_default(),
            })
            .collect(),
        Err(error) => return error_page(&signed, &error),
    };
    let page = DomainPage {
        bounces,
        title: domain,
        chrome: signed.chrome(),
        csrf: signed.csrf(),
        domain,
        unicode: readable(domain),
        notice,
        sandbox,
        dns_host: state.service.dns_host(&view.zone).await,
        setup: setup(&view),
        shares,
        history: view.history.iter().rev().map(Change::from).collect(),
    };
    render(StatusCode::OK, &page)
}

/// What an open setup page polls: the domain's status, its methods' and a stamp that changes
/// when a check finishes.
#[derive(Serialize)]
pub(super) struct LiveState {
    stamp: String,
    status: &'static str,
    methods: String,
}

impl LiveState {
    pub(super) fn of(row: &DomainRow) -> LiveState {
        LiveState {
            stamp: stamp(&row.domain),
            status: row.domain.status.as_str(),
            methods: methods_text(row.methods.map_or([None; 4], |methods| {
                [Some(methods.dkim), Some(methods.spf), Some(methods.dmarc), methods.return_path]
            })),
        }
    }
}

/// `GET /ui/domains/{domain}/state`: the live state, for the page's script.
pub(super) async fn domain_state(State(state): State<WebState>, signed: Signed, Path(name): Path<String>) -> Response {
    match state.service.domain_state(signed.session.account_id, &name).await {
        Ok(row) => Json(LiveState::of(&row)).into_response(),
        Err(error) => error_page(&signed, &error),
    }
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
    chrome: Chrome,
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
        chrome: signed.chrome(),
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
        assert_eq!(
            (thousands(7), thousands(1000), thousands(25_000), thousands(1_234_567)),
            ("7".into(), "1,000".into(), "25,000".into(), "1,234,567".into())
        );
    }
}
