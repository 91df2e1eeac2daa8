//! The web UI: the pages a customer uses to connect and verify sending domains, served by
//! `senderauth serve` under `/ui`. Plain server-rendered HTML with one stylesheet and one small
//! script of its own (no CDN, no font, no framework); every page works without the script but
//! the Copy buttons.
//!
//! Sign-in takes an account token and starts a session (an HttpOnly, SameSite=Strict cookie
//! naming a server-side session). Every form carries the session's CSRF token (the sign-in
//! form a double-submit one) and is refused without it.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::fmt::Write as _;

use senderauth_core::name::DomainName;
use senderauth_core::problem::{Method, Severity};
use senderauth_core::status::MethodStatus;
use senderauth_service::accounts::Session;
use senderauth_service::domains::DmarcFindings;
use senderauth_service::{ErrorKind, ServiceError};

use crate::WebState;
use crate::api::status_of;

mod sandbox;

const SESSION_COOKIE: &str = "senderauth_session";
const SIGN_IN_COOKIE: &str = "senderauth_sign_in";
/// How long a session lasts.
const SESSION_SECONDS: i64 = 12 * 3600;
const PAGE: i64 = 50;
const STYLESHEET: &str = include_str!("app.css");
const SCRIPT: &str = include_str!("app.js");

/// The UI's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/domains") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/domains") }))
        .route("/ui/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET) }))
        .route("/ui/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }))
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/sign-out", post(sign_out))
        .route("/ui/domains", get(domains_page).post(connect_domain))
        .route("/ui/domains/{domain}", get(domain_page))
        .route("/ui/domains/{domain}/verify", post(verify))
        .route("/ui/domains/{domain}/history", get(history_page))
        .route("/ui/domains/{domain}/delete", post(delete))
        .route("/ui/sandbox", get(sandbox::zones_page).post(sandbox::create_zone))
        .route("/ui/sandbox/{zone}", get(sandbox::zone_page))
        .route("/ui/sandbox/{zone}/records", post(sandbox::add_record))
        .route("/ui/sandbox/{zone}/records/{id}/delete", post(sandbox::remove_record))
}

/// Text made safe inside HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Part of a URL path or query made safe.
pub(crate) fn url_part(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Equal, without telling by its timing how much of it was.
fn same(left: &str, right: &str) -> bool {
    left.len() == right.len() && left.bytes().zip(right.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// A page in the layout: the header (with sign-out when signed in), then `body`.
pub(crate) fn page(title: &str, signed: Option<&Signed>, body: &str) -> Html<String> {
    let mut nav = String::new();
    if let Some(signed) = signed {
        let sandbox = if signed.demo { r#"<a href="/ui/sandbox">Sandbox DNS host</a>"# } else { "" };
        let _ = write!(
            nav,
            r#"<nav aria-label="Account"><a href="/ui/domains">Domains</a>{sandbox}
<form method="post" action="/ui/sign-out" class="inline">{}<button type="submit" class="link">Sign out</button></form></nav>"#,
            signed.hidden()
        );
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · senderauth</title><link rel="stylesheet" href="/ui/app.css"><script src="/ui/app.js" defer></script></head>
<body><header><a class="brand" href="/ui/domains">senderauth</a>{nav}</header>
<main id="main">{body}</main></body></html>"#,
        title = escape(title)
    ))
}

/// The 404 page: what was not found, and the way back to the domains.
pub(crate) fn not_found(signed: &Signed, message: &str) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            Some(signed),
            &format!(r#"<h1>Not found</h1><p>{}</p><p><a href="/ui/domains">Your domains</a></p>"#, escape(message)),
        ),
    )
}

/// The 500 page for a failure inside the server (logged with `what`; the details stay there).
pub(crate) fn went_wrong(signed: Option<&Signed>, what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "{what}");
    respond(StatusCode::INTERNAL_SERVER_ERROR, page("Error", signed, "<h1>Something went wrong</h1><p>Try again.</p>"))
}

/// A page with a status code.
pub(crate) fn respond(status: StatusCode, html: Html<String>) -> Response {
    (status, html).into_response()
}

/// A signed-in customer: the session its cookie names.
pub struct Signed {
    pub(crate) session: Session,
    /// Demo mode: the sandbox DNS host's pages are offered.
    pub(crate) demo: bool,
}

impl FromRequestParts<WebState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Signed, Response> {
        let to_sign_in = || Redirect::to("/ui/sign-in").into_response();
        let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_sign_in)?;
        match state.service.session(&secret).await {
            Ok(Some(session)) => Ok(Signed { session, demo: state.service.demo }),
            Ok(None) => Err(to_sign_in()),
            Err(error) => Err(went_wrong(None, "reading a session", &error)),
        }
    }
}

impl Signed {
    /// The refusal of a form that does not carry this session's CSRF token; `None` when it does.
    pub(crate) fn refusal(&self, csrf: &str) -> Option<Response> {
        if same(csrf, &self.session.csrf_token) {
            None
        } else {
            Some(respond(
                StatusCode::FORBIDDEN,
                page(
                    "Form expired",
                    Some(self),
                    "<h1>This form has expired</h1><p>It was not sent from this session's page. Go back, reload the page and send it again.</p>",
                ),
            ))
        }
    }

    pub(crate) fn hidden(&self) -> String {
        format!(r#"<input type="hidden" name="csrf" value="{}">"#, escape(&self.session.csrf_token))
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn sign_in_form(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |error| {
        format!(r#"<p class="error" role="alert" id="sign-in-error">{}</p>"#, escape(error))
    });
    format!(
        r#"<h1>Sign in</h1>
<p>Sign in with your account's API token (it starts with <code>sa_</code>).</p>
<form method="post" action="/ui/sign-in" class="card">{error}
<input type="hidden" name="csrf" value="{csrf}">
<label for="token">Account token</label>
<input id="token" name="token" type="password" autocomplete="off" required aria-describedby="sign-in-error">
<button type="submit">Sign in</button></form>"#,
        csrf = escape(csrf)
    )
}

/// The sign-in page, with a fresh double-submit CSRF cookie.
async fn sign_in_page() -> Response {
    let csrf = random_token();
    let mut response = respond(StatusCode::OK, page("Sign in", None, &sign_in_form(&csrf, None)));
    set_cookie(&mut response, &format!("{SIGN_IN_COOKIE}={csrf}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=3600"));
    response
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn sign_in(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<SignInForm>) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, &expected) {
        return respond(
            StatusCode::FORBIDDEN,
            page(
                "Sign in",
                None,
                &sign_in_form(&expected, Some("This form has expired. Reload the page and sign in again.")),
            ),
        );
    }
    match state.service.sign_in(&form.token, SESSION_SECONDS).await {
        Ok(Some((secret, _))) => {
            let mut response = Redirect::to("/ui/domains").into_response();
            set_cookie(
                &mut response,
                &format!("{SESSION_COOKIE}={secret}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}"),
            );
            set_cookie(&mut response, &format!("{SIGN_IN_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"));
            response
        }
        Ok(None) => respond(
            StatusCode::UNAUTHORIZED,
            page(
                "Sign in",
                None,
                &sign_in_form(
                    &expected,
                    Some("That token is not valid: it is unknown, revoked, or an admin token. Use an account token."),
                ),
            ),
        ),
        Err(error) => {
            tracing::error!(%error, "signing in");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                page("Sign in", None, &sign_in_form(&expected, Some("Something went wrong; try again."))),
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

async fn sign_out(
    State(state): State<WebState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    if let Some(secret) = cookie(&headers, SESSION_COOKIE)
        && let Err(error) = state.service.sign_out(&secret).await
    {
        tracing::error!(%error, "signing out");
    }
    let mut response = Redirect::to("/ui/sign-in").into_response();
    set_cookie(&mut response, &format!("{SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"));
    response
}

const STATUSES: [(&str, &str); 7] = [
    ("pending", "Not verified"),
    ("partially_verified", "Partially verified"),
    ("verified", "Verified"),
    ("temporary_failure", "Temporary failure"),
    ("failed", "Failed"),
    ("not_verified", "Not verified"),
    ("unknown", "Unknown: DNS did not answer"),
];

fn status_label(status: &str) -> &str {
    STATUSES.iter().find(|(key, _)| *key == status).map_or(status, |(_, label)| label)
}

/// A method's badge: its name, with a mark and words for its status (not colour alone).
fn method_badge(method: &str, status: &str) -> String {
    let mark = match status {
        "verified" => "✓",
        "unknown" => "?",
        _ => "✗",
    };
    format!(
        r#"<span class="badge {class}" title="{method}: {label}">{method} {mark}<span class="visually-hidden">: {label}</span></span>"#,
        class = escape(status),
        label = escape(status_label(status)),
    )
}

fn badge(status: &str) -> String {
    format!(r#"<span class="badge {}">{}</span>"#, escape(status), escape(status_label(status)))
}

fn time(at: Option<i64>) -> String {
    match at {
        Some(seconds) => {
            let days = seconds.div_euclid(86_400);
            let rest = seconds.rem_euclid(86_400);
            let (year, month, day) = civil_from_days(days);
            format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
        }
        None => "—".to_string(),
    }
}

/// The calendar date of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

async fn domains_page(State(state): State<WebState>, signed: Signed, Query(query): Query<ListQuery>) -> Response {
    render_domains(&state, &signed, &query, None, "").await
}

async fn render_domains(
    state: &WebState,
    signed: &Signed,
    query: &ListQuery,
    error: Option<&str>,
    email: &str,
) -> Response {
    let account_id = signed.session.account_id;
    let status = query.status.as_deref().filter(|status| STATUSES.iter().any(|(key, _)| key == status));
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut domains =
        match state.service.domain_rows(account_id, status, search, query.after.as_deref(), PAGE + 1).await {
            Ok(domains) => domains,
            Err(error) => return went_wrong(Some(signed), "listing domains", &error),
        };
    let more = domains.len() as i64 > PAGE;
    domains.truncate(PAGE as usize);
    let mut body = String::from("<h1>Sending domains</h1>");
    if let Some(notice) = query.notice.as_deref() {
        let text = match notice {
            "deleted" => "The domain was removed.",
            _ => "",
        };
        if !text.is_empty() {
            let _ = write!(body, r#"<p class="notice" role="status">{text}</p>"#);
        }
    }
    let error_html = error.map_or(String::new(), |error| {
        format!(r#"<p class="error" role="alert" id="connect-error">{}</p>"#, escape(error))
    });
    let _ = write!(
        body,
        r#"<form method="post" action="/ui/domains" class="card" aria-labelledby="connect-title"><h2 id="connect-title">Connect a domain</h2>{error_html}{hidden}
<label for="email">The From email address you send with</label>
<input id="email" name="email" type="email" required placeholder="news@example.com" value="{email}" aria-describedby="connect-error email-domain">
<p class="hint" id="email-domain" aria-live="polite">The domain is the part after the @: subdomains such as news.example.com are fine.</p>
<p><input id="ed25519" name="ed25519" type="checkbox" value="on"> <label class="inline" for="ed25519">Also sign with Ed25519, beside RSA (two more DNS records)</label></p>
<button type="submit">Connect</button></form>"#,
        hidden = signed.hidden(),
        email = escape(email)
    );
    let mut options = String::from(r#"<option value="">Any status</option>"#);
    for (key, label) in STATUSES.iter().take(5) {
        let selected = if status == Some(*key) { " selected" } else { "" };
        let _ = write!(options, r#"<option value="{key}"{selected}>{label}</option>"#);
    }
    let _ = write!(
        body,
        r#"<form method="get" action="/ui/domains" class="filters" role="search"><label for="q">Search</label>
<input id="q" name="q" type="search" value="{q}"><label for="status">Status</label><select id="status" name="status">{options}</select>
<button type="submit">Filter</button></form>"#,
        q = escape(search.unwrap_or(""))
    );
    if domains.is_empty() {
        body.push_str("<p>No domains here yet.</p>");
    } else {
        body.push_str(r#"<table class="cards"><caption class="visually-hidden">Your domains</caption><thead><tr><th scope="col">Domain</th><th scope="col">Status</th><th scope="col">DKIM, SPF, DMARC</th><th scope="col">Last check</th><th scope="col">Next check</th></tr></thead><tbody>"#);
        for row in &domains {
            let domain = &row.domain;
            let method_badges = row.methods.as_ref().map_or_else(
                || "not checked yet".to_string(),
                |statuses| {
                    ["DKIM", "SPF", "DMARC"]
                        .iter()
                        .zip(statuses)
                        .map(|(method, status)| method_badge(method, status))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            );
            let _ = write!(
                body,
                r#"<tr><td data-label="Domain"><a href="/ui/domains/{link}">{name}</a></td><td data-label="Status">{badge}</td><td data-label="DKIM, SPF, DMARC">{method_badges}</td><td data-label="Last check">{last}</td><td data-label="Next check">{next}</td></tr>"#,
                link = url_part(&domain.domain),
                name = escape(&domain.domain),
                badge = badge(&domain.status),
                last = time(domain.last_checked_at),
                next = time(domain.next_check_at),
            );
        }
        body.push_str("</tbody></table>");
    }
    if more && let Some(last) = domains.last() {
        let mut next = format!("/ui/domains?after={}", url_part(&last.domain.domain));
        if let Some(status) = status {
            let _ = write!(next, "&status={status}");
        }
        if let Some(search) = search {
            let _ = write!(next, "&q={}", url_part(search));
        }
        let _ = write!(body, r#"<p><a href="{}" rel="next">Next page</a></p>"#, escape(&next));
    }
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    respond(code, page("Domains", Some(signed), &body))
}

#[derive(Deserialize)]
struct ConnectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    ed25519: Option<String>,
}

async fn connect_domain(State(state): State<WebState>, signed: Signed, Form(form): Form<ConnectForm>) -> Response {
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
struct DomainQuery {
    notice: Option<String>,
}

/// A hint for the customer's DNS host, told from their zone's NS records; none when unknown or
/// when DNS does not answer now.
async fn dns_host_hint(state: &WebState, zone: &str) -> Option<String> {
    let host = state.service.dns_host(zone).await?;
    Some(format!(
        r#"<aside class="notice" aria-label="Your DNS host"><strong>Your DNS is at {host}.</strong> {hint}</aside>"#,
        host = escape(host.name),
        hint = escape(host.advice)
    ))
}

const EXPLANATION: &str = r#"<details><summary>What the statuses mean</summary><dl>
<dt>Not verified</dt><dd>DKIM is not set up yet. Mail is still sent, from the platform's shared address.</dd>
<dt>Partially verified</dt><dd>DKIM works: mail is signed as your domain. SPF or DMARC is still missing.</dd>
<dt>Verified</dt><dd>DKIM, SPF and DMARC are all in place.</dd>
<dt>Temporary failure</dt><dd>Records that worked have gone missing; we keep checking and restore the status when they return.</dd>
<dt>Failed</dt><dd>Not verified within 72 hours, or missing for 72 hours: click Verify once the records are in place.</dd></dl></details>"#;

async fn domain_page(
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
    let domain = view.domain.domain.clone();
    let link = url_part(&domain);
    let mut body = format!(
        r#"<p><a href="/ui/domains">← Domains</a></p><h1>{} {}</h1>"#,
        escape(&domain),
        badge(&view.domain.status)
    );
    if let Some(notice) = query.notice.as_deref() {
        let text = match notice {
            "verified" => "Checked just now.".to_string(),
            "confirm" => "Tick the box to confirm the removal.".to_string(),
            other => other.chars().take(200).collect(),
        };
        let _ = write!(body, r#"<p class="notice" role="status">{}</p>"#, escape(&text));
    }
    if signed.demo {
        body.push_str(&sandbox_notice(&state, &signed, &domain).await);
    }
    if let Some(hint) = dns_host_hint(&state, &view.zone).await {
        body.push_str(&hint);
    }
    let _ = write!(
        body,
        r#"<p>Last check: {} · Next check: {}</p><form method="post" action="/ui/domains/{link}/verify">{}<button type="submit">Verify</button></form>{EXPLANATION}"#,
        time(view.domain.last_checked_at),
        time(view.domain.next_check_at),
        signed.hidden()
    );
    let latest = view.latest.as_ref();
    let methods = [
        (Method::Dkim, "dkim", "DKIM", latest.and_then(|latest| latest.dkim.status)),
        (Method::Spf, "spf", "SPF", latest.and_then(|latest| latest.spf.status)),
        (Method::Dmarc, "dmarc", "DMARC", latest.and_then(|latest| latest.dmarc.status)),
    ];
    for (method, id, title, method_status) in methods {
        let _ = write!(
            body,
            r#"<section aria-labelledby="{id}-title"><h2 id="{id}-title">{title} {}</h2>"#,
            badge(method_status.map_or("not checked yet", status_key))
        );
        if method == Method::Dmarc {
            body.push_str(&dmarc_summary(&domain, latest.map(|latest| &latest.dmarc)));
        }
        body.push_str(r#"<table class="records"><thead><tr><th scope="col">Type</th><th scope="col">Host</th><th scope="col">Required data</th><th scope="col">What DNS holds now</th><th scope="col">Status</th></tr></thead><tbody>"#);
        for record in view.records.iter().flatten().filter(|record| record.required.method == method) {
            let required = &record.required;
            let _ = write!(
                body,
                r#"<tr><td data-label="Type">{kind}</td><td data-label="Host"><code>{host_html}</code> <button type="button" class="copy" data-copy="{host_html}" aria-label="Copy the host">Copy</button></td><td data-label="Required data"><code class="value">{value_html}</code> <button type="button" class="copy" data-copy="{value_html}" aria-label="Copy the {title} value">Copy</button></td><td data-label="What DNS holds now"><code>{found}</code></td><td data-label="Status">{status}</td></tr>"#,
                kind = escape(required.record_type),
                host_html = escape(&required.host),
                value_html = escape(&required.value),
                found = record.found.as_deref().map_or_else(|| "—".to_string(), escape),
                status = record.status.map_or("—".to_string(), |status| badge(status_key(status))),
            );
            for note in &required.notes {
                let _ = write!(body, r#"<tr class="note"><td colspan="5">{}</td></tr>"#, escape(note));
            }
        }
        body.push_str("</tbody></table></section>");
    }
    let problems = latest.map(|latest| latest.problems.as_slice()).unwrap_or_default();
    if !problems.is_empty() {
        body.push_str(r#"<section aria-labelledby="problems-title"><h2 id="problems-title">What to fix</h2><ul class="problems">"#);
        for problem in problems {
            let _ = write!(
                body,
                r#"<li class="{severity}"><strong>{message}</strong><br>{fix}</li>"#,
                severity = severity_key(problem.severity),
                message = escape(&problem.message),
                fix = escape(&problem.fix),
            );
        }
        body.push_str("</ul></section>");
    }
    body.push_str(r#"<section aria-labelledby="history-title"><h2 id="history-title">History</h2><table><thead><tr><th scope="col">When</th><th scope="col">From</th><th scope="col">To</th></tr></thead><tbody>"#);
    for event in view.history.iter().rev() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(Some(event.at)),
            event.from.as_deref().map_or("—".to_string(), badge),
            badge(&event.to)
        );
    }
    let _ = write!(
        body,
        r#"</tbody></table><p><a href="/ui/domains/{link}/history">Every check and status change</a></p></section>"#
    );
    let _ = write!(
        body,
        r#"<section aria-labelledby="delete-title"><h2 id="delete-title">Remove this domain</h2><form method="post" action="/ui/domains/{link}/delete">{}
<input id="confirm" name="confirm" type="checkbox" value="yes"><label for="confirm" class="inline">Yes, remove {} and stop signing its mail</label>
<button type="submit" class="danger">Remove</button></form></section>"#,
        signed.hidden(),
        escape(&domain)
    );
    respond(StatusCode::OK, page(&domain, Some(&signed), &body))
}

/// A method status as the badges and the statuses table name it.
fn status_key(status: MethodStatus) -> &'static str {
    match status {
        MethodStatus::Verified => "verified",
        MethodStatus::NotVerified => "not_verified",
        MethodStatus::Unknown => "unknown",
    }
}

/// A problem's severity as its class in the stylesheet.
fn severity_key(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// What the customer is told when a use case refuses: the reason, or for a failure inside the
/// service only that it failed (the details are logged).
fn refusal_text(error: &ServiceError) -> String {
    if error.kind() == ErrorKind::Internal {
        tracing::error!(%error, "request failed");
    }
    error.public_message()
}

/// The page for a refused or failed request: 404 for what is not there, else the reason.
fn error_page(signed: &Signed, error: &ServiceError) -> Response {
    match error.kind() {
        ErrorKind::NotFound => not_found(signed, &error.public_message()),
        ErrorKind::Internal => went_wrong(Some(signed), "a request", error),
        kind => respond(
            status_of(kind),
            page("Error", Some(signed), &format!("<h1>Error</h1><p>{}</p>", escape(&error.public_message()))),
        ),
    }
}

/// Which DMARC record applies to the domain and where it is: its own, or inherited from the
/// root domain (RFC 7489 section 6.6.3), as of the last check.
fn dmarc_summary(domain: &str, dmarc: Option<&DmarcFindings>) -> String {
    let Some(dmarc) = dmarc else { return String::new() };
    let root = DomainName::parse(domain).ok().map(|name| name.organizational_domain().to_string());
    let subdomain = root.as_deref().filter(|root| *root != domain);
    let location = dmarc.location.as_deref().unwrap_or(domain);
    let policy = dmarc
        .policy
        .as_deref()
        .map(|policy| format!(" (policy for {}: <code>{}</code>)", escape(domain), escape(policy)))
        .unwrap_or_default();
    let text = match (dmarc.record.as_deref(), dmarc.inherited) {
        (Some(record), true) => format!(
            "<strong>Inherited from {location}.</strong> No record of its own is needed: the record at <code>_dmarc.{location}</code> applies to {domain}{policy}: <code>{record}</code>. Add one at <code>_dmarc.{domain}</code> only to give this subdomain a policy of its own.",
            location = escape(location),
            domain = escape(domain),
            record = escape(record),
        ),
        (Some(record), false) => format!(
            "The record at <code>_dmarc.{domain}</code> applies{policy}: <code>{record}</code>.",
            domain = escape(domain),
            record = escape(record),
        ),
        (None, _) => match subdomain {
            Some(root) => format!(
                "No DMARC record applies to {domain} yet. Add the record below at <code>_dmarc.{domain}</code>, or one at <code>_dmarc.{root}</code>, which covers {root} and all its subdomains.",
                domain = escape(domain),
                root = escape(root),
            ),
            None => format!("No DMARC record applies to {} yet: add the record below.", escape(domain)),
        },
    };
    format!(r#"<p class="applies" id="dmarc-applies">{text}</p>"#)
}

/// Demo mode: where this domain's DNS is, at the sandbox DNS host.
async fn sandbox_notice(state: &WebState, signed: &Signed, domain: &str) -> String {
    let Ok(name) = DomainName::parse(domain) else { return String::new() };
    let apex = name.organizational_domain().to_string();
    match state.service.hosts_sandbox_zone(signed.session.account_id, &apex).await {
        true => format!(
            r#"<aside class="notice" aria-label="Demo"><strong>Demo:</strong> {apex} is hosted by the <a href="/ui/sandbox/{link}">sandbox DNS host</a>. Add the records below there, then click Verify.</aside>"#,
            apex = escape(&apex),
            link = url_part(&apex)
        ),
        false => format!(
            r#"<aside class="notice" aria-label="Demo"><strong>Demo:</strong> {apex} is not hosted by your <a href="/ui/sandbox">sandbox DNS host</a> (another account hosts it, or it holds the platform's zone), so the verifier cannot find its records.</aside>"#,
            apex = escape(&apex)
        ),
    }
}

#[derive(Deserialize, Default)]
struct HistoryQuery {
    before: Option<i64>,
}

/// Checks shown per page of a domain's history (runs of alike checks count once).
const HISTORY_PAGE: i64 = 50;

/// A domain's history: every check, consecutive alike checks as one line, and every change of
/// its status.
async fn history_page(
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
    let (page_data, runs) = (history.page, history.runs);
    let domain = page_data.record.domain.clone();
    let link = url_part(&domain);
    let mut body = format!(
        r#"<p><a href="/ui/domains/{link}">← {name}</a></p><h1>History of {name} {badge}</h1>"#,
        name = escape(&domain),
        badge = badge(&page_data.record.status)
    );
    body.push_str(r#"<section aria-labelledby="checks-title"><h2 id="checks-title">Checks</h2>"#);
    if runs.is_empty() {
        body.push_str("<p>Not checked yet.</p>");
    } else {
        body.push_str(r#"<table><thead><tr><th scope="col">When</th><th scope="col">Checks</th><th scope="col">Status</th><th scope="col">DKIM</th><th scope="col">SPF</th><th scope="col">DMARC</th><th scope="col">Problems found</th></tr></thead><tbody>"#);
        for run in runs.iter().take(HISTORY_PAGE as usize) {
            let when = if run.first_at == run.last_at {
                time(Some(run.first_at))
            } else {
                format!("{} to {}", time(Some(run.first_at)), time(Some(run.last_at)))
            };
            let problems = if run.problem_codes.is_empty() {
                "none".to_string()
            } else {
                run.problem_codes
                    .split(' ')
                    .map(|code| format!("<code>{}</code>", escape(code)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = write!(
                body,
                "<tr><td>{when}</td><td>{checks}</td><td>{status}</td><td>{dkim}</td><td>{spf}</td><td>{dmarc}</td><td>{problems}</td></tr>",
                checks = run.checks,
                status = badge(&run.status),
                dkim = badge(&run.dkim_status),
                spf = badge(&run.spf_status),
                dmarc = badge(&run.dmarc_status),
            );
        }
        body.push_str("</tbody></table>");
        if runs.len() as i64 > HISTORY_PAGE
            && let Some(last) = runs.get(HISTORY_PAGE as usize - 1)
        {
            let _ = write!(
                body,
                r#"<p><a href="/ui/domains/{link}/history?before={}" rel="next">Older checks</a></p>"#,
                last.id
            );
        }
    }
    body.push_str(r#"</section><section aria-labelledby="changes-title"><h2 id="changes-title">Status changes</h2><table><thead><tr><th scope="col">When</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Event sent</th></tr></thead><tbody>"#);
    for event in page_data.history.iter().rev() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(Some(event.at)),
            event.from_status.as_deref().map_or("—".to_string(), badge),
            badge(&event.to_status),
            event.event.as_deref().map_or("—".to_string(), |event| format!("<code>{}</code>", escape(event)))
        );
    }
    body.push_str("</tbody></table></section>");
    respond(StatusCode::OK, page(&format!("History of {domain}"), Some(&signed), &body))
}

async fn verify(
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
struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn delete(
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
    fn text_and_url_parts_are_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(url_part("a b/é"), "a%20b%2F%C3%A9");
        // Checked against `date -u -d @SECONDS`, a leap day included.
        assert_eq!(time(Some(1_795_771_282)), "2026-11-27 09:21 UTC");
        assert_eq!(time(Some(951_782_400)), "2000-02-29 00:00 UTC");
        assert_eq!(time(None), "—");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
