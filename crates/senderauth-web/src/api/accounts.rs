//! Accounts (admin), tokens (either kind of caller, each its own) and reserved domains (admin).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use senderauth_service::accounts::{NewAccount as CreatedAccount, NewToken as CreatedToken, Reservation, TokenView};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, json_body};
use crate::WebState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    name: String,
    domain_limit: Option<i64>,
}

pub(super) async fn create_account(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedAccount>), ApiError> {
    caller.admin()?;
    let request = json_body(body)?;
    let account = state.service.create_account(&request.name, request.domain_limit).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

#[derive(Serialize)]
pub(super) struct Tokens {
    tokens: Vec<TokenView>,
}

pub(super) async fn list_tokens(State(state): State<WebState>, caller: Caller) -> Result<Json<Tokens>, ApiError> {
    Ok(Json(Tokens { tokens: state.service.tokens(caller.token_owner()).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    label: String,
}

pub(super) async fn create_token(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let request = json_body(body)?;
    let token = state.service.create_token(caller.token_owner(), &request.label).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

pub(super) async fn revoke_token(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_token(caller.token_owner(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(super) struct Reserved {
    reserved_domains: Vec<Reservation>,
}

pub(super) async fn list_reserved(State(state): State<WebState>, caller: Caller) -> Result<Json<Reserved>, ApiError> {
    caller.admin()?;
    Ok(Json(Reserved { reserved_domains: state.service.reserved_domains().await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewReservation {
    domain: String,
    reason: Option<String>,
}

pub(super) async fn reserve_domain(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<NewReservation>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    let request = json_body(body)?;
    state.service.reserve_domain(&request.domain, request.reason.as_deref()).await?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn unreserve_domain(
    State(state): State<WebState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    state.service.unreserve_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
