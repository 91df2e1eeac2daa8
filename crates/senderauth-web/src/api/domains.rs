//! An account's sending domains: connect, list, show, the records to add, verify now, the
//! hosted DKIM keys and their rotation, remove.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use senderauth_core::plan::RecordPlan;
use senderauth_core::plan::to_zone_file;
use senderauth_service::domains::{ConnectedDomain, DomainKeys, DomainList, DomainView, VerifiedNow};
use serde::Deserialize;

use super::{ApiError, Body, Caller, PathParam, QueryString};
use crate::WebState;

/// Domains per page when the caller does not say.
const DEFAULT_PAGE: i64 = 50;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDomain {
    /// The From address the customer sends with (or just its domain).
    email: String,
    /// The algorithm of the domain's DKIM keys (rsa-2048, rsa-3072, rsa-4096, or ed25519 to sign
    /// with Ed25519 beside RSA); unset: the service's default.
    dkim_algorithm: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/domains", tag = "domains",
    summary = "Connect the domain of a From address",
    request_body = NewDomain,
    responses(
        (status = 201, description = "the domain and the records to add", body = ConnectedDomain),
        (status = 409, description = "already connected, or the account's limit is reached", body = super::ErrorBody),
        (status = 413, description = "body too large", body = super::ErrorBody),
        (status = 415, description = "not JSON", body = super::ErrorBody),
        (status = 422, description = "not a usable address or domain, or reserved", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn connect(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<NewDomain>,
) -> Result<(StatusCode, Json<ConnectedDomain>), ApiError> {
    let account = caller.account()?;
    let connected = state.service.connect(account, &request.email, request.dkim_algorithm.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(connected)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains",
    summary = "List the account's domains in name order",
    params(
        ("status" = Option<String>, Query, description = "only domains in this status"),
        ("after" = Option<String>, Query, description = "the `next` of the previous page"),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
    ),
    responses(
        (status = 200, description = "a page of domains", body = DomainList),
        (status = 400, description = "invalid query", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<WebState>,
    caller: Caller,
    QueryString(list_query): QueryString<ListQuery>,
) -> Result<Json<DomainList>, ApiError> {
    let account = caller.account()?;
    let limit = list_query.limit.unwrap_or(DEFAULT_PAGE);
    let page = state.service.domains(account, list_query.status.as_deref(), list_query.after.as_deref(), limit).await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains",
    summary = "A domain: records, latest result and status history",
    params(("domain" = String, Path, description = "the domain, as connected")),
    responses((status = 200, description = "the domain", body = DomainView), (status = 404, description = "no such domain in this account", body = super::ErrorBody), (status = 401, description = "no valid token", body = super::ErrorBody)))]
pub(super) async fn detail(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(state.service.domain(caller.account()?, &name, false).await?))
}

#[utoipa::path(post, path = "/api/v1/domains/{domain}/verify", tag = "domains",
    summary = "Check a domain now (a failed domain starts its setup window again); at most once every 10 s per domain",
    params(("domain" = String, Path, description = "the domain, as connected")),
    responses(
        (status = 200, description = "the domain after the check, with the full result", body = VerifiedNow),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 429, description = "verified less than 10 s ago", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn verify_now(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
) -> Result<Json<VerifiedNow>, ApiError> {
    Ok(Json(state.service.verify_now(caller.account()?, &name).await?))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains",
    summary = "Disconnect a domain with its results and history",
    params(("domain" = String, Path, description = "the domain, as connected")),
    responses((status = 204, description = "removed"), (status = 404, description = "no such domain in this account", body = super::ErrorBody), (status = 401, description = "no valid token", body = super::ErrorBody)))]
pub(super) async fn remove(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    state.service.remove(caller.account()?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordsQuery {
    format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/records", tag = "domains",
    summary = "The records to add, merged with what DNS holds now",
    params(("domain" = String, Path, description = "the domain, as connected"), ("format" = Option<String>, Query, description = "json (default) or zone")),
    responses(
        (status = 200, description = "the plan (JSON), or a BIND zone-file snippet with format=zone",
            content((RecordPlan = "application/json"), (String = "text/plain"))),
        (status = 400, description = "unknown format", body = super::ErrorBody),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn records(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
    QueryString(records_query): QueryString<RecordsQuery>,
) -> Result<Response, ApiError> {
    let account = caller.account()?;
    let plan = state.service.records(account, &name).await?;
    match records_query.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(plan).into_response()),
        "zone" => Ok(([("content-type", "text/plain; charset=utf-8")], to_zone_file(&plan)).into_response()),
        other => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_format", format!("format {other:?}: use json or zone")))
        }
    }
}

/// The DKIM keys the platform holds for one of the caller's domains: per selector, where the
/// key is published, its algorithm, state and dates, and the public record. Never the private
/// key.
#[utoipa::path(get, path = "/api/v1/domains/{domain}/dkim", tag = "domains",
    summary = "The DKIM keys the platform holds for the domain: per selector, where it is published, its algorithm, state and dates, and the public record (never the private key)",
    params(("domain" = String, Path, description = "the domain, as connected")),
    responses((status = 200, description = "the keys", body = DomainKeys), (status = 404, description = "no such domain in this account", body = super::ErrorBody), (status = 401, description = "no valid token", body = super::ErrorBody)))]
pub(super) async fn keys(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
) -> Result<Json<DomainKeys>, ApiError> {
    Ok(Json(state.service.keys(caller.account()?, &name).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateRequest {
    /// The new key's algorithm; unset: the signing key's.
    dkim_algorithm: Option<String>,
}

/// Rotates a domain's DKIM key now: the idle selector gets a new key, which signs once it has
/// been published long enough. 202 with the keys; 409 while a rotation is under way.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/dkim/rotate", tag = "domains",
    summary = "Rotate the domain's DKIM key now: the idle selector gets a new key, published at once, signing once it has been published for the TTL plus a margin; the key it replaces stays published for the grace period, then is revoked",
    params(("domain" = String, Path, description = "the domain, as connected")),
    request_body(content = Option<RotateRequest>, description = "optional: which pair to rotate (ed25519, or an RSA size)"),
    responses(
        (status = 202, description = "the rotation started; the keys", body = DomainKeys),
        (status = 409, description = "a rotation is under way (a key pending, or the previous key still published for mail in transit)", body = super::ErrorBody),
        (status = 422, description = "unknown or too weak key algorithm, or no Ed25519 keys to rotate", body = super::ErrorBody),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn rotate(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<DomainKeys>), ApiError> {
    let account = caller.account()?;
    // The body is optional: none, or a JSON object.
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", format!("the body is not valid: {error}"))
        })?
    };
    let keys = state.service.rotate(account, &name, request.dkim_algorithm.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(keys)))
}
