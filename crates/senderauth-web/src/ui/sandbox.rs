//! Demo mode's sandbox DNS host pages (`senderauth serve --demo`): the embedded DNS server also
//! hosts customer zones, and these pages edit them like a DNS host's control panel, so that the
//! whole way from connecting a domain to Verified can be walked on one machine, without internet.
//! What a zone and a record may be is the service's (`senderauth_service::sandbox`) and the
//! core's; this module is the pages.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use senderauth_core::name::DomainName;
use senderauth_core::sandbox::{KINDS, SCENARIOS, TTL};
use senderauth_service::sandbox::SandboxZone;
use senderauth_service::{ErrorKind, ServiceError};

use super::{Chrome, CsrfForm, Signed, error_page, render, url_part};
use crate::WebState;

#[derive(Deserialize, Default)]
pub(crate) struct ZoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
}

#[derive(Template)]
#[template(path = "sandbox_zones.html")]
struct ZonesPage<'a> {
    title: &'a str,
    chrome: Chrome,
    csrf: &'a str,
    typed: &'a str,
    error: Option<&'a str>,
    zones: Vec<SandboxZone>,
}

pub(crate) async fn zones_page(State(state): State<WebState>, signed: Signed) -> Response {
    render_zones(&state, &signed, None, "").await
}

async fn render_zones(state: &WebState, signed: &Signed, error: Option<&str>, typed: &str) -> Response {
    let zones = match state.service.sandbox_zones(signed.session.account_id).await {
        Ok(zones) => zones,
        Err(error) => return error_page(signed, &error),
    };
    let page =
        ZonesPage { title: "Sandbox DNS host", chrome: signed.chrome(), csrf: signed.csrf(), typed, error, zones };
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(code, &page)
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
    /// The record whose Edit was clicked: the form holds it.
    edit: Option<i64>,
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
        Some("edited") => Some("Record saved: served now."),
        Some("removed") => Some("Record removed."),
        Some("scenario") => Some("Scenario loaded: served now. Verify the domain to see what the setup page says."),
        _ => None,
    };
    let mut typed = RecordForm::default();
    if let Some(id) = query.edit {
        let records = state.service.sandbox_records(&zone).await.map_err(|error| error_page(&signed, &error))?;
        if let Some(record) = records.into_iter().find(|record| record.id == id) {
            typed = RecordForm {
                csrf: String::new(),
                host: relative(&record.name, &zone.apex),
                kind: record.kind,
                value: record.value,
            };
        }
        // (A record removed meanwhile: the form is empty, for adding.)
        if typed.kind.is_empty() {
            return Ok(render_zone(&state, &signed, &zone, notice, None, &typed, None).await);
        }
    }
    Ok(render_zone(&state, &signed, &zone, notice, None, &typed, query.edit).await)
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

/// A record type to pick, selected when it is the one typed.
struct KindOption {
    value: &'static str,
    selected: bool,
}

/// A record's Host as typed at the sandbox: relative to the zone, `@` for the zone itself.
fn relative(name: &str, apex: &str) -> String {
    name.strip_suffix(&format!(".{apex}")).map_or_else(|| "@".to_string(), str::to_string)
}

struct RecordRow {
    id: i64,
    kind: String,
    /// The Host as typed at the sandbox: relative to the zone, `@` for the zone itself.
    host: String,
    value: String,
}

#[derive(Template)]
#[template(path = "sandbox_zone.html")]
struct ZonePage<'a> {
    title: &'a str,
    chrome: Chrome,
    csrf: &'a str,
    apex: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    kinds: Vec<KindOption>,
    typed_host: &'a str,
    typed_value: &'a str,
    records: Vec<RecordRow>,
    ttl: u32,
    /// The record being edited; `None`: the form adds one.
    editing: Option<i64>,
    /// The account's domains in this zone, for the scenarios.
    domains: Vec<String>,
    scenarios: &'static [(&'static str, &'static str)],
}

async fn render_zone(
    state: &WebState,
    signed: &Signed,
    zone: &SandboxZone,
    notice: Option<&str>,
    error: Option<&str>,
    typed: &RecordForm,
    editing: Option<i64>,
) -> Response {
    let records = match state.service.sandbox_records(zone).await {
        Ok(records) => records,
        Err(error) => return error_page(signed, &error),
    };
    let records = records
        .into_iter()
        .map(|record| RecordRow {
            host: relative(&record.name, &zone.apex),
            id: record.id,
            kind: record.kind,
            value: record.value,
        })
        .collect();
    // The account's domains in this zone (by a search for its name, then exactly).
    let account = signed.session.account_id;
    let domains = match state.service.domain_rows(account, None, Some(&zone.apex), None, 100).await {
        Ok(rows) => rows
            .into_iter()
            .map(|row| row.domain.domain)
            .filter(|domain| {
                DomainName::parse(domain).is_ok_and(|name| name.organizational_domain().as_str() == zone.apex)
            })
            .collect(),
        Err(error) => return error_page(signed, &error),
    };
    let title = format!("DNS records of {}", zone.apex);
    let page = ZonePage {
        title: &title,
        chrome: signed.chrome(),
        csrf: signed.csrf(),
        apex: &zone.apex,
        notice,
        error,
        kinds: KINDS.into_iter().map(|value| KindOption { value, selected: typed.kind == value }).collect(),
        typed_host: &typed.host,
        typed_value: &typed.value,
        records,
        ttl: TTL,
        editing,
        domains,
        scenarios: &SCENARIOS,
    };
    let code = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(code, &page)
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
            Err(render_zone(&state, &signed, &zone, None, Some(&refusal), &form, None).await)
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

pub(crate) async fn edit_record(
    State(state): State<WebState>,
    signed: Signed,
    Path((apex, id)): Path<(String, i64)>,
    Form(form): Form<RecordForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    match state.service.edit_sandbox_record(&zone, id, &form.kind, &form.host, &form.value).await {
        Ok(()) => Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=edited", url_part(&zone.apex))).into_response()),
        Err(ServiceError::SandboxRefused(refusal)) => {
            Err(render_zone(&state, &signed, &zone, None, Some(&refusal), &form, Some(id)).await)
        }
        Err(error) => Err(error_page(&signed, &error)),
    }
}

#[derive(Deserialize)]
pub(crate) struct ScenarioForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    scenario: String,
}

/// Loads one of the mistakes customers make into the zone, for one of its domains.
pub(crate) async fn load_scenario(
    State(state): State<WebState>,
    signed: Signed,
    Path(apex): Path<String>,
    Form(form): Form<ScenarioForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    let account = signed.session.account_id;
    match state.service.load_sandbox_scenario(account, &zone, &form.domain, &form.scenario).await {
        Ok(()) => Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=scenario", url_part(&zone.apex))).into_response()),
        Err(ServiceError::SandboxRefused(refusal)) => {
            Err(render_zone(&state, &signed, &zone, None, Some(&refusal), &RecordForm::default(), None).await)
        }
        Err(error) => Err(error_page(&signed, &error)),
    }
}
