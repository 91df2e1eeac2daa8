//! An account's sending domains: connect, list, show, the records to add, verify now, the
//! hosted DKIM keys and their rotation, remove.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use senderauth_core::plan::to_zone_file;
use senderauth_service::domains::{ConnectedDomain, DomainKeys, DomainList, DomainView, VerifiedNow};
use serde::Deserialize;

use super::{ApiError, Caller, json_body, query};
use crate::WebState;

/// Domains per page when the caller does not say.
const DEFAULT_PAGE: i64 = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDomain {
    email: String,
    /// The algorithm of the domain's DKIM keys; unset: the service's default.
    dkim_algorithm: Option<String>,
}

pub(super) async fn connect(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<NewDomain>, JsonRejection>,
) -> Result<(StatusCode, Json<ConnectedDomain>), ApiError> {
    let account = caller.account()?;
    let request = json_body(body)?;
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

pub(super) async fn list(
    State(state): State<WebState>,
    caller: Caller,
    list_query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DomainList>, ApiError> {
    let account = caller.account()?;
    let list_query = query(list_query)?;
    let limit = list_query.limit.unwrap_or(DEFAULT_PAGE);
    let page = state.service.domains(account, list_query.status.as_deref(), list_query.after.as_deref(), limit).await?;
    Ok(Json(page))
}

pub(super) async fn detail(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(state.service.domain(caller.account()?, &name, false).await?))
}

pub(super) async fn verify_now(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<VerifiedNow>, ApiError> {
    Ok(Json(state.service.verify_now(caller.account()?, &name).await?))
}

pub(super) async fn remove(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.remove(caller.account()?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordsQuery {
    format: Option<String>,
}

pub(super) async fn records(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
    records_query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let account = caller.account()?;
    let records_query = query(records_query)?;
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
pub(super) async fn keys(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DomainKeys>, ApiError> {
    Ok(Json(state.service.keys(caller.account()?, &name).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// The new key's algorithm; unset: the signing key's.
    dkim_algorithm: Option<String>,
}

/// Rotates a domain's DKIM key now: the idle selector gets a new key, which signs once it has
/// been published long enough. 202 with the keys; 409 while a rotation is under way.
pub(super) async fn rotate(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
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
