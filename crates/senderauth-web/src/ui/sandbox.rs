//! Demo mode's sandbox DNS host pages (`senderauth serve --demo`): the embedded DNS server also
//! hosts customer zones, and these pages edit them like a DNS host's control panel, so that the
//! whole way from connecting a domain to Verified can be walked on one machine, without internet.
//! What a zone and a record may be is the service's (`senderauth_service::sandbox`) and the
//! core's; this module is the HTML.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::fmt::Write as _;

use senderauth_core::sandbox::{KINDS, TTL};
use senderauth_service::sandbox::SandboxZone;
use senderauth_service::{ErrorKind, ServiceError};

use super::{CsrfForm, Signed, escape, not_found, page, respond, url_part, went_wrong};
use crate::WebState;

/// The page for a request the sandbox refused or failed: 404 for what is not there, the
/// reason for a refusal.
fn error_page(signed: &Signed, error: &ServiceError) -> Response {
    match error.kind() {
        ErrorKind::NotFound => not_found(signed, &error.public_message()),
        _ => went_wrong(Some(signed), "sandbox", error),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ZoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
}

pub(crate) async fn zones_page(State(state): State<WebState>, signed: Signed) -> Response {
    render_zones(&state, &signed, None, "").await
}

async fn render_zones(state: &WebState, signed: &Signed, error: Option<&str>, typed: &str) -> Response {
    let zones = match state.service.sandbox_zones(signed.session.account_id).await {
        Ok(zones) => zones,
        Err(error) => return error_page(signed, &error),
    };
    let mut body = String::from(
        r#"<h1>Sandbox DNS host</h1><p>In demo mode this page stands in for your DNS host: the zones here are served by senderauth's own DNS server, which the verifier asks. Add the records the setup page shows, then click Verify there. Changes are served within a second, with a 5-second TTL.</p>"#,
    );
    let error_html = error
        .map(|error| format!(r#"<p class="error" role="alert" id="zone-error">{}</p>"#, escape(error)))
        .unwrap_or_default();
    let _ = write!(
        body,
        r#"<form method="post" action="/ui/sandbox" class="stack">{hidden}<label for="domain">Host a domain</label>
<input id="domain" name="domain" required placeholder="example.com" value="{typed}" aria-describedby="zone-error">{error_html}<button type="submit">Host it</button></form>"#,
        hidden = signed.hidden(),
        typed = escape(typed)
    );
    if zones.is_empty() {
        body.push_str("<p>No zones yet: connecting a domain hosts its zone here.</p>");
    } else {
        body.push_str(r#"<table><caption class="visually-hidden">Your sandbox zones</caption><thead><tr><th scope="col">Zone</th><th scope="col">Records</th></tr></thead><tbody>"#);
        for zone in &zones {
            let _ = write!(
                body,
                r#"<tr><td><a href="/ui/sandbox/{link}">{name}</a></td><td>{count}</td></tr>"#,
                link = url_part(&zone.apex),
                name = escape(&zone.apex),
                count = zone.records
            );
        }
        body.push_str("</tbody></table>");
    }
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    respond(code, page("Sandbox DNS host", Some(signed), &body))
}

pub(crate) async fn create_zone(State(state): State<WebState>, signed: Signed, Form(form): Form<ZoneForm>) -> Response {
    if !state.service.demo {
        return error_page(&signed, &ServiceError::SandboxOff);
    }
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    match state.service.create_sandbox_zone(signed.session.account_id, &form.domain).await {
        Ok(zone) => Redirect::to(&format!("/ui/sandbox/{}", url_part(&zone.apex))).into_response(),
        // Refused (not a zone the sandbox hosts, or another account's): said beside the form.
        Err(error) if matches!(error.kind(), ErrorKind::Unprocessable | ErrorKind::Conflict) => {
            render_zones(&state, &signed, Some(&error.public_message()), &form.domain).await
        }
        Err(error) => error_page(&signed, &error),
    }
}

/// The account's zone `apex`, or the page to show instead.
async fn owned_zone(state: &WebState, signed: &Signed, apex: &str) -> Result<SandboxZone, Response> {
    state.service.sandbox_zone(signed.session.account_id, apex).await.map_err(|error| error_page(signed, &error))
}

#[derive(Deserialize, Default)]
pub(crate) struct ZoneQuery {
    notice: Option<String>,
}

pub(crate) async fn zone_page(
    State(state): State<WebState>,
    signed: Signed,
    Path(apex): Path<String>,
    Query(query): Query<ZoneQuery>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    let notice = match query.notice.as_deref() {
        Some("added") => Some("Record added: served now."),
        Some("removed") => Some("Record removed."),
        _ => None,
    };
    Ok(render_zone(&state, &signed, &zone, notice, None, &RecordForm::default()).await)
}

#[derive(Deserialize, Default)]
pub(crate) struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    value: String,
}

async fn render_zone(
    state: &WebState,
    signed: &Signed,
    zone: &SandboxZone,
    notice: Option<&str>,
    error: Option<&str>,
    typed: &RecordForm,
) -> Response {
    let records = match state.service.sandbox_records(zone).await {
        Ok(records) => records,
        Err(error) => return error_page(signed, &error),
    };
    let apex = escape(&zone.apex);
    let link = url_part(&zone.apex);
    let mut body = format!(
        r#"<p><a href="/ui/sandbox">← Sandbox DNS host</a></p><h1>DNS records of {apex}</h1>
<p>Type the Host as the setup page shows it (this host adds <code>{apex}</code> to it, as most DNS hosts do; a full name ending in <code>{apex}</code> is taken as it is, and <code>@</code> is the domain itself).</p>"#
    );
    if let Some(notice) = notice {
        let _ = write!(body, r#"<p class="notice" role="status">{}</p>"#, escape(notice));
    }
    let mut options = String::new();
    for kind in KINDS {
        let selected = if typed.kind == kind { " selected" } else { "" };
        let _ = write!(options, r#"<option value="{kind}"{selected}>{kind}</option>"#);
    }
    let error_html = error
        .map(|error| format!(r#"<p class="error" role="alert" id="record-error">{}</p>"#, escape(error)))
        .unwrap_or_default();
    let _ = write!(
        body,
        r#"<section aria-labelledby="add-title"><h2 id="add-title">Add a record</h2><form method="post" action="/ui/sandbox/{link}/records" class="stack">{hidden}
<label for="kind">Type</label><select id="kind" name="kind">{options}</select>
<label for="host">Host</label><input id="host" name="host" placeholder="@" value="{host}" aria-describedby="record-error">
<label for="value">Value</label><textarea id="value" name="value" rows="3" required aria-describedby="record-error">{value}</textarea>
{error_html}<button type="submit">Add record</button></form></section>"#,
        hidden = signed.hidden(),
        host = escape(&typed.host),
        value = escape(&typed.value),
    );
    body.push_str(r#"<section aria-labelledby="records-title"><h2 id="records-title">Records</h2>"#);
    if records.is_empty() {
        body.push_str("<p>No records yet.</p>");
    } else {
        body.push_str(r#"<table><thead><tr><th scope="col">Type</th><th scope="col">Host</th><th scope="col">Value</th><th scope="col">TTL</th><th scope="col"><span class="visually-hidden">Remove</span></th></tr></thead><tbody>"#);
        for record in &records {
            let host =
                record.name.strip_suffix(&format!(".{}", zone.apex)).map_or_else(|| "@".to_string(), str::to_string);
            let _ = write!(
                body,
                r#"<tr><td>{kind}</td><td><code>{host}</code></td><td><code class="value">{value}</code></td><td>{TTL}</td><td><form method="post" action="/ui/sandbox/{link}/records/{id}/delete" class="inline">{hidden}<button type="submit" class="danger" aria-label="Remove the {kind} record at {host}">Remove</button></form></td></tr>"#,
                kind = escape(&record.kind),
                host = escape(&host),
                value = escape(&record.value),
                id = record.id,
                hidden = signed.hidden(),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    respond(code, page(&format!("DNS records of {}", zone.apex), Some(signed), &body))
}

pub(crate) async fn add_record(
    State(state): State<WebState>,
    signed: Signed,
    Path(apex): Path<String>,
    Form(form): Form<RecordForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    match state.service.add_sandbox_record(&zone, &form.kind, &form.host, &form.value).await {
        Ok(()) => Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=added", url_part(&zone.apex))).into_response()),
        Err(ServiceError::SandboxRefused(refusal)) => {
            Err(render_zone(&state, &signed, &zone, None, Some(&refusal), &form).await)
        }
        Err(error) => Err(error_page(&signed, &error)),
    }
}

pub(crate) async fn remove_record(
    State(state): State<WebState>,
    signed: Signed,
    Path((apex, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    state.service.remove_sandbox_record(&zone, id).await.map_err(|error| error_page(&signed, &error))?;
    Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=removed", url_part(&zone.apex))).into_response())
}
