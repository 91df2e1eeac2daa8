//! DMARC aggregate reports: handed in (`POST /api/v1/dmarc/reports`) and read back per domain
//! (summary, sources, reports, one report, its XML). Another account's domain is 404 on every
//! route, as a missing one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use senderauth_service::reports::{DmarcSummary, Ingested, ReportDetail, ReportSource, ReportView, SourceView};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, PathParam, QueryString, RawBody, checked_limit};
use crate::WebState;

/// The largest report handed in through the API (a packed report or a whole message).
pub const MAX_REPORT_BYTES: usize = 64 << 20;

#[utoipa::path(post, path = "/api/v1/dmarc/reports", tag = "dmarc",
    summary = "Hand in DMARC aggregate reports",
    description = "The body is a report as receivers send it: XML, gzip, zip, or a whole mail message with the report attached (the kind is told from the bytes). Each report is stored once: a copy of one already stored (same reporting organization, report id, policy domain and date range) is counted on it (`duplicate`). An account token hands in reports about its own domains with DKIM verified (others are listed under `refused`); an admin token, any.",
    request_body(content = String, content_type = "application/octet-stream", description = "the report, at most 64 MiB"),
    responses(
        (status = 201, description = "what was stored, and what was not and why", body = Ingested),
        (status = 413, description = "over 64 MiB (body_too_large)", body = super::ErrorBody),
        (status = 422, description = "no report in the body: the message says what was found (invalid_report)", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn hand_in(
    State(state): State<WebState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    let account = caller.token_owner();
    let ingested = state.service.ingest_reports(body.to_vec(), ReportSource::Api, account).await?;
    Ok((StatusCode::CREATED, Json(ingested)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DaysQuery {
    days: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc", tag = "dmarc",
    summary = "What receivers reported about the domain's mail",
    description = "Messages per class (platform_ok: signed and sent by the platform; platform_failing: from the platform but its signature did not pass; forwarded_ours: the platform's mail forwarded by others; authorized_other: the customer's other senders, DMARC passing; unauthenticated: neither) and per day, and the share that passed DMARC (forwarded mail left out). Shown once the domain's DKIM is verified (`available`).",
    params(("domain" = String, Path, description = "the domain"), ("days" = Option<i64>, Query, description = "1 to 400, default 30")),
    responses(
        (status = 200, description = "the summary", body = DmarcSummary),
        (status = 400, description = "days out of range (invalid_days)", body = super::ErrorBody),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn summary(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(domain): PathParam<String>,
    QueryString(query): QueryString<DaysQuery>,
) -> Result<Json<DmarcSummary>, ApiError> {
    Ok(Json(state.service.dmarc_summary(caller.account()?, &domain, query.days.unwrap_or(30)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourcesQuery {
    days: Option<i64>,
    class: Option<String>,
    failing: Option<bool>,
    limit: Option<i64>,
    format: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Sources {
    sources: Vec<SourceView>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc/sources", tag = "dmarc",
    summary = "The addresses the domain's mail came from, the most messages first",
    params(
        ("domain" = String, Path, description = "the domain"),
        ("days" = Option<i64>, Query, description = "1 to 400, default 30"),
        ("class" = Option<String>, Query, description = "only this class"),
        ("failing" = Option<bool>, Query, description = "only sources with messages that failed DMARC"),
        ("limit" = Option<i64>, Query, description = "1 to 10000, default 100"),
        ("format" = Option<String>, Query, description = "csv for a CSV file (source_ip,class,passed,failed,last_seen,name)"),
    ),
    responses(
        (status = 200, description = "the sources", body = Sources),
        (status = 400, description = "an unknown class (invalid_class) or days out of range", body = super::ErrorBody),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn sources(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(domain): PathParam<String>,
    QueryString(query): QueryString<SourcesQuery>,
) -> Result<Response, ApiError> {
    let limit = checked_limit(query.limit, 10_000)?;
    let sources = state
        .service
        .dmarc_sources(
            caller.account()?,
            &domain,
            query.days.unwrap_or(30),
            query.class.as_deref(),
            query.failing.unwrap_or(false),
            limit,
        )
        .await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(Sources { sources }).into_response()),
        Some("csv") => {
            let mut csv = String::from("source_ip,class,passed,failed,last_seen,name\r\n");
            for source in &sources {
                // A PTR name may hold any byte: quoted when it needs to be (RFC 4180).
                let name = source.name.as_deref().unwrap_or("");
                let name = if name.contains([',', '"', '\r', '\n']) {
                    format!("\"{}\"", name.replace('"', "\"\""))
                } else {
                    name.to_string()
                };
                csv.push_str(&format!(
                    "{},{},{},{},{},{name}\r\n",
                    source.source_ip, source.class, source.passed, source.failed, source.last_seen
                ));
            }
            let disposition = format!("attachment; filename=\"{}-dmarc-sources.csv\"", domain.to_ascii_lowercase());
            Ok((
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                    (
                        header::CONTENT_DISPOSITION,
                        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
                    ),
                ],
                csv,
            )
                .into_response())
        }
        Some(other) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_format", format!("format {other:?}: use json or csv")))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportsQuery {
    limit: Option<i64>,
}

/// A list's `limit`: 100 unless given, from 1 to `max`.

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Reports {
    reports: Vec<ReportView>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc/reports", tag = "dmarc",
    summary = "The reports with rows about the domain, newest first",
    params(("domain" = String, Path, description = "the domain"), ("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "the reports", body = Reports),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn reports(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(domain): PathParam<String>,
    QueryString(query): QueryString<ReportsQuery>,
) -> Result<Json<Reports>, ApiError> {
    let limit = checked_limit(query.limit, 1000)?;
    Ok(Json(Reports { reports: state.service.dmarc_reports(caller.account()?, &domain, limit).await? }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Failures {
    failures: Vec<senderauth_service::feedback::FailureView>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc/failures", tag = "dmarc",
    summary = "The failure reports about the domain from the last 7 days, newest first (header fields only, addresses redacted)",
    params(("domain" = String, Path, description = "the domain"), ("limit" = Option<i64>, Query, description = "1 to 1000, default 100")),
    responses(
        (status = 200, description = "the failure reports", body = Failures),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn failures(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(domain): PathParam<String>,
    QueryString(query): QueryString<ReportsQuery>,
) -> Result<Json<Failures>, ApiError> {
    let limit = checked_limit(query.limit, 1000)?;
    Ok(Json(Failures { failures: state.service.failure_reports(caller.account()?, &domain, limit).await? }))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc/reports/{id}", tag = "dmarc",
    summary = "One report: its header and its rows about the domain",
    params(("domain" = String, Path, description = "the domain"), ("id" = i64, Path, description = "the report's id")),
    responses(
        (status = 200, description = "the report", body = ReportDetail),
        (status = 404, description = "no such domain in this account, or no such report about it", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn report(
    State(state): State<WebState>,
    caller: Caller,
    PathParam((domain, id)): PathParam<(String, i64)>,
) -> Result<Json<ReportDetail>, ApiError> {
    Ok(Json(state.service.dmarc_report(caller.account()?, &domain, id).await?))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dmarc/reports/{id}/xml", tag = "dmarc",
    summary = "A report's original XML, gzip-compressed",
    description = "Only for the report's own policy domain: the XML holds every row of the report, and rows about other domains under it are not this account's to read.",
    params(("domain" = String, Path, description = "the report's policy domain"), ("id" = i64, Path, description = "the report's id")),
    responses(
        (status = 200, description = "the XML, gzip", body = String, content_type = "application/gzip"),
        (status = 404, description = "no such domain in this account, no such report about it, or the domain is not its policy domain", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn report_xml(
    State(state): State<WebState>,
    caller: Caller,
    PathParam((domain, id)): PathParam<(String, i64)>,
) -> Result<Response, ApiError> {
    let xml = state.service.dmarc_report_xml(caller.account()?, &domain, id).await?;
    let disposition = format!("attachment; filename=\"dmarc-report-{id}.xml.gz\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/gzip")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        xml,
    )
        .into_response())
}
