//! Demo mode's sandbox DNS host (`senderauth serve --demo`): the embedded DNS server also hosts
//! customer zones, and these pages edit them like a DNS host's control panel, so that the whole
//! way from connecting a domain to Verified can be walked on one machine, without internet.
//!
//! A sandbox zone is an organizational domain (example.com, not shop.example.com: its
//! subdomains' records go in it), owned by the account that made it; connecting a domain in
//! demo mode makes its zone. Records are served with a 5-second TTL, so what is typed here is
//! what the next Verify sees.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData};
use serde::Deserialize;
use std::fmt::Write as _;

use senderauth_core::name::DomainName;
use senderauth_store::{SandboxRecord, SandboxZone, StoreError};

use crate::api::AppState;
use crate::ui::{CsrfForm, Signed, escape, not_found, page, respond, url_part, went_wrong};

/// The TTL of sandbox records and of their zones' negative answers, in seconds.
pub const TTL: u32 = 5;

/// The record types the sandbox takes.
pub const KINDS: [&str; 5] = ["CNAME", "TXT", "MX", "A", "AAAA"];

/// The longest TXT value taken (a DKIM RSA-4096 key is about 800 characters).
const TXT_LIMIT: usize = 4000;

/// A record's data as served, from its type and stored value.
pub fn record_data(kind: &str, value: &str) -> Result<RData, String> {
    let name = |text: &str| {
        let text = text.trim().trim_end_matches('.');
        if text.is_empty() || text.len() > 253 || !text.contains('.') {
            return Err(format!("{text:?} is not a full domain name, like sa1.dkim.example.net"));
        }
        Name::from_ascii(format!("{text}.")).map_err(|_| format!("{text:?} is not a valid domain name"))
    };
    match kind {
        "CNAME" => Ok(RData::CNAME(CNAME(name(value)?))),
        "TXT" => {
            if value.len() > TXT_LIMIT {
                return Err(format!(
                    "the text is {} characters long; the sandbox takes at most {TXT_LIMIT}",
                    value.len()
                ));
            }
            Ok(RData::TXT(TXT::from_bytes(value.as_bytes().chunks(255).collect())))
        }
        "A" => value
            .trim()
            .parse::<Ipv4Addr>()
            .map(|address| RData::A(A(address)))
            .map_err(|_| format!("{value:?} is not an IPv4 address, like 192.0.2.10")),
        "AAAA" => value
            .trim()
            .parse::<Ipv6Addr>()
            .map(|address| RData::AAAA(AAAA(address)))
            .map_err(|_| format!("{value:?} is not an IPv6 address, like 2001:db8::10")),
        "MX" => {
            let (preference, exchange) = value.trim().split_once(char::is_whitespace).ok_or_else(|| {
                format!("{value:?} is not a mail exchanger: give a preference and a host, like 10 mx.example.com")
            })?;
            let preference = preference
                .parse::<u16>()
                .map_err(|_| format!("{preference:?} is not a preference: a number from 0 to 65535"))?;
            Ok(RData::MX(MX::new(preference, name(exchange)?)))
        }
        other => Err(format!("the sandbox takes {} records, not {other:?}", KINDS.join(", "))),
    }
}

/// A typed value as stored: TXT values lose the quotes DNS hosts often show around them
/// (`"v=spf1 -all"`, or several quoted strings, which are joined); names lose the final dot.
pub fn typed_value(kind: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("the value is empty: paste the Required data from the setup page".to_string());
    }
    let stored = match kind {
        "TXT" if value.starts_with('"') && value.ends_with('"') && value.len() > 1 => {
            // "part one" "part two": the strings joined, as DNS joins them for SPF and DKIM.
            let mut joined = String::new();
            for (index, part) in value.split('"').enumerate() {
                if index % 2 == 1 {
                    joined.push_str(part);
                } else if !part.trim().is_empty() {
                    return Err(format!("{value:?} mixes quoted and unquoted text; paste the value without quotes"));
                }
            }
            joined
        }
        "CNAME" | "MX" => value.trim_end_matches('.').to_ascii_lowercase(),
        _ => value.to_string(),
    };
    record_data(kind, &stored)?;
    Ok(stored)
}

/// The full name a Host typed at the sandbox stands for in `apex`: `@` or nothing for the zone
/// itself, a name ending in the zone as it is, anything else with the zone added (as most DNS
/// hosts do).
pub fn owner_name(apex: &str, host: &str) -> Result<String, String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let full = if host.is_empty() || host == "@" {
        apex.to_string()
    } else if host == apex || host.ends_with(&format!(".{apex}")) {
        host
    } else {
        format!("{host}.{apex}")
    };
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    };
    if full.len() > 253 || !full.split('.').all(valid_label) {
        return Err(format!(
            "{full:?} is not a valid host name: use letters, digits, hyphens and underscores, labels of at most 63 characters"
        ));
    }
    Ok(full)
}

/// Why `apex` cannot be a sandbox zone; `None` when it can.
fn zone_refusal(state: &AppState, apex: &DomainName) -> Option<String> {
    if !apex.is_organizational() {
        return Some(format!(
            "host the whole domain {} instead: its subdomains' records go in it",
            apex.organizational_domain()
        ));
    }
    let provider = &state.worker.provider;
    for platform in [&provider.zone, &provider.variable_domain] {
        let platform = platform.trim_end_matches('.').to_ascii_lowercase();
        let name = apex.as_str();
        if name == platform || platform.ends_with(&format!(".{name}")) || name.ends_with(&format!(".{platform}")) {
            return Some(format!("{name} holds the platform's own zone {platform}; pick another domain"));
        }
    }
    None
}

/// Demo mode: hosts the zone of a domain just connected (its organizational domain), unless
/// that zone is the platform's or another account's. Returns the zone's apex if it is the
/// account's.
pub(crate) async fn host_connected_domain(state: &AppState, account_id: i64, domain: &DomainName) -> Option<String> {
    let apex = domain.organizational_domain();
    if zone_refusal(state, &apex).is_some() {
        return None;
    }
    match state.worker.store.create_sandbox_zone(account_id, apex.as_str(), state.now()).await {
        Ok(zone) => Some(zone.apex),
        Err(StoreError::Conflict(_)) => None,
        Err(error) => {
            tracing::warn!(%error, "hosting a sandbox zone");
            None
        }
    }
}

fn store_error(signed: &Signed, error: StoreError) -> Response {
    went_wrong(Some(signed), "sandbox", &error)
}

const OFF: &str = "The sandbox DNS host is part of demo mode: start the service with `senderauth serve --demo`.";

#[derive(Deserialize, Default)]
pub(crate) struct ZoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    domain: String,
}

pub(crate) async fn zones_page(State(state): State<AppState>, signed: Signed) -> Response {
    if !state.demo {
        return not_found(&signed, OFF);
    }
    render_zones(&state, &signed, None, "").await
}

async fn render_zones(state: &AppState, signed: &Signed, error: Option<&str>, typed: &str) -> Response {
    let zones = match state.worker.store.sandbox_zones(signed.session.account_id).await {
        Ok(zones) => zones,
        Err(error) => return store_error(signed, error),
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

pub(crate) async fn create_zone(State(state): State<AppState>, signed: Signed, Form(form): Form<ZoneForm>) -> Response {
    if !state.demo {
        return not_found(&signed, OFF);
    }
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    let apex = match DomainName::parse(&form.domain) {
        Ok(apex) => apex,
        Err(error) => return render_zones(&state, &signed, Some(&error.to_string()), &form.domain).await,
    };
    if let Some(refusal) = zone_refusal(&state, &apex) {
        return render_zones(&state, &signed, Some(&refusal), &form.domain).await;
    }
    match state.worker.store.create_sandbox_zone(signed.session.account_id, apex.as_str(), state.now()).await {
        Ok(zone) => Redirect::to(&format!("/ui/sandbox/{}", url_part(&zone.apex))).into_response(),
        Err(StoreError::Conflict(message)) => render_zones(&state, &signed, Some(&message), &form.domain).await,
        Err(error) => store_error(&signed, error),
    }
}

/// The account's zone `apex`, or the page to show instead.
async fn owned_zone(state: &AppState, signed: &Signed, apex: &str) -> Result<SandboxZone, Response> {
    if !state.demo {
        return Err(not_found(signed, OFF));
    }
    match state.worker.store.sandbox_zone(signed.session.account_id, &apex.to_ascii_lowercase()).await {
        Ok(Some(zone)) => Ok(zone),
        Ok(None) => Err(not_found(signed, &format!("You host no zone {apex} in the sandbox."))),
        Err(error) => Err(store_error(signed, error)),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ZoneQuery {
    notice: Option<String>,
}

pub(crate) async fn zone_page(
    State(state): State<AppState>,
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
    state: &AppState,
    signed: &Signed,
    zone: &SandboxZone,
    notice: Option<&str>,
    error: Option<&str>,
    typed: &RecordForm,
) -> Response {
    let records = match state.worker.store.sandbox_records(zone.id).await {
        Ok(records) => records,
        Err(error) => return store_error(signed, error),
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

/// Why a record cannot join `existing`; `None` when it can. A CNAME stands alone at its name
/// (RFC 1034 section 3.6.2), and an exact duplicate is refused.
fn conflict(existing: &[SandboxRecord], name: &str, kind: &str, value: &str) -> Option<String> {
    let at_name: Vec<&SandboxRecord> = existing.iter().filter(|record| record.name == name).collect();
    if at_name.iter().any(|record| record.kind == kind && record.value == value) {
        return Some(format!("{name} already has this {kind} record"));
    }
    if kind == "CNAME" && !at_name.is_empty() {
        return Some(format!(
            "{name} already has records; a CNAME must be the only record at its name: remove them first"
        ));
    }
    if at_name.iter().any(|record| record.kind == "CNAME") {
        return Some(format!("{name} has a CNAME record, which must be the only record at its name: remove it first"));
    }
    None
}

pub(crate) async fn add_record(
    State(state): State<AppState>,
    signed: Signed,
    Path(apex): Path<String>,
    Form(form): Form<RecordForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    let store = &state.worker.store;
    let checked = owner_name(&zone.apex, &form.host).and_then(|name| {
        if !KINDS.contains(&form.kind.as_str()) {
            return Err(format!("pick one of the types {}", KINDS.join(", ")));
        }
        Ok((name, typed_value(&form.kind, &form.value)?))
    });
    let existing = store.sandbox_records(zone.id).await.map_err(|error| store_error(&signed, error))?;
    let refusal = match &checked {
        Ok((name, value)) => conflict(&existing, name, &form.kind, value),
        Err(error) => Some(error.clone()),
    };
    if let Some(error) = refusal {
        return Err(render_zone(&state, &signed, &zone, None, Some(&error), &form).await);
    }
    if let Ok((name, value)) = checked {
        store
            .add_sandbox_record(zone.id, &name, &form.kind, &value, state.now())
            .await
            .map_err(|error| store_error(&signed, error))?;
    }
    Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=added", url_part(&zone.apex))).into_response())
}

pub(crate) async fn remove_record(
    State(state): State<AppState>,
    signed: Signed,
    Path((apex, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Response> {
    let zone = owned_zone(&state, &signed, &apex).await?;
    if let Some(refused) = signed.refusal(&form.csrf) {
        return Err(refused);
    }
    state
        .worker
        .store
        .remove_sandbox_record(zone.id, id, state.now())
        .await
        .map_err(|error| store_error(&signed, error))?;
    Ok(Redirect::to(&format!("/ui/sandbox/{}?notice=removed", url_part(&zone.apex))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_as_dns_hosts_read_them() {
        assert_eq!(owner_name("example.com", "@").expect("taken"), "example.com");
        assert_eq!(owner_name("example.com", "").expect("taken"), "example.com");
        assert_eq!(owner_name("example.com", "sa1._domainkey.Shop").expect("taken"), "sa1._domainkey.shop.example.com");
        assert_eq!(owner_name("example.com", "_dmarc.example.com.").expect("taken"), "_dmarc.example.com");
        assert!(owner_name("example.com", "bad host").expect_err("refused").contains("not a valid host name"));
        assert!(owner_name("example.com", &"a".repeat(64)).is_err());
    }

    #[test]
    fn values_are_checked_and_quotes_dropped() {
        assert_eq!(typed_value("TXT", r#""v=spf1 -all""#).expect("taken"), "v=spf1 -all");
        assert_eq!(typed_value("TXT", r#""v=DKIM1; p=AB" "CD""#).expect("taken"), "v=DKIM1; p=ABCD");
        assert!(typed_value("TXT", r#""a" b "c""#).is_err());
        assert_eq!(typed_value("CNAME", "Sa1.Dkim.Esp.Example.").expect("taken"), "sa1.dkim.esp.example");
        assert!(typed_value("CNAME", "nodots").expect_err("refused").contains("full domain name"));
        assert!(typed_value("A", "300.1.1.1").expect_err("refused").contains("IPv4"));
        assert_eq!(typed_value("MX", "10 mx.example.com").expect("taken"), "10 mx.example.com");
        assert!(typed_value("MX", "mx.example.com").expect_err("refused").contains("preference"));
        assert!(typed_value("TXT", "  ").expect_err("refused").contains("empty"));
        assert!(typed_value("SRV", "x").is_err());
        // A long TXT value is served as strings of at most 255 octets.
        let RData::TXT(txt) = record_data("TXT", &"k".repeat(600)).expect("taken") else { panic!("TXT") };
        assert_eq!(txt.txt_data.iter().map(|chunk| chunk.len()).collect::<Vec<_>>(), [255, 255, 90]);
    }

    #[test]
    fn a_cname_stands_alone() {
        let record = |id, name: &str, kind: &str, value: &str| SandboxRecord {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
            value: value.to_string(),
        };
        let existing =
            [record(1, "shop.example.com", "TXT", "v=spf1 -all"), record(2, "a.example.com", "CNAME", "b.example.net")];
        assert!(conflict(&existing, "shop.example.com", "CNAME", "x.example.net").is_some());
        assert!(conflict(&existing, "a.example.com", "TXT", "hello").is_some());
        assert!(
            conflict(&existing, "shop.example.com", "TXT", "v=spf1 -all").expect("taken").contains("already has this")
        );
        assert!(conflict(&existing, "shop.example.com", "TXT", "other").is_none());
    }
}
