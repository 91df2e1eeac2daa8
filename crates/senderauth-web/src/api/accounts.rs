//! Accounts (admin), tokens (either kind of caller, each its own) and reserved domains (admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use senderauth_core::return_path::Fallback;
use senderauth_service::accounts::{
    AccountView, NewAccount as CreatedAccount, NewToken as CreatedToken, Reservation, TokenView,
};
use serde::{Deserialize, Serialize};

use super::{ApiError, Body, Caller, PathParam};
use crate::WebState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    /// 1 to 200 characters.
    name: String,
    /// The most domains it may connect; unset: the service's default.
    domain_limit: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    summary = "Create an account and its first token (admin)",
    request_body = NewAccount,
    responses(
        (status = 201, description = "the account, with a token shown once", body = CreatedAccount),
        (status = 400, description = "invalid name or limit", body = super::ErrorBody),
        (status = 403, description = "not an admin token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn create_account(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<NewAccount>,
) -> Result<(StatusCode, Json<CreatedAccount>), ApiError> {
    caller.admin()?;
    let account = state.service.create_account(&request.name, request.domain_limit).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

#[utoipa::path(get, path = "/api/v1/account", tag = "accounts",
    summary = "The caller's account and its settings",
    responses(
        (status = 200, description = "the account", body = AccountView),
        (status = 403, description = "an admin token: this route needs an account token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn own_account(State(state): State<WebState>, caller: Caller) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(state.service.account(caller.account()?).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountSettings {
    /// What the gateway does with mail signed as a domain whose return-path is not in use:
    /// `bounce_domain` (the default: send it with the platform's bounce domain) or `reject`.
    #[schema(value_type = String)]
    return_path_fallback: Fallback,
}

#[utoipa::path(patch, path = "/api/v1/account", tag = "accounts",
    summary = "Change the caller's account settings",
    request_body = AccountSettings,
    responses(
        (status = 200, description = "the account as it is now", body = AccountView),
        (status = 400, description = "an unknown setting or value", body = super::ErrorBody),
        (status = 403, description = "an admin token: this route needs an account token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn change_account(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<AccountSettings>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(state.service.set_return_path_fallback(caller.account()?, request.return_path_fallback).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Tokens {
    tokens: Vec<TokenView>,
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    summary = "List the caller's tokens (an admin sees the admin tokens); secrets are never listed",
    responses((status = 200, description = "tokens", body = Tokens), (status = 401, description = "no valid token", body = super::ErrorBody)))]
pub(super) async fn list_tokens(State(state): State<WebState>, caller: Caller) -> Result<Json<Tokens>, ApiError> {
    Ok(Json(Tokens { tokens: state.service.tokens(caller.token_owner()).await? }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    /// 1 to 200 characters: what the token is for.
    label: String,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    summary = "Create a token for the caller's account (or an admin token); the secret is shown once",
    request_body = NewToken,
    responses(
        (status = 201, description = "the token with its secret", body = CreatedToken),
        (status = 400, description = "invalid label", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn create_token(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let token = state.service.create_token(caller.token_owner(), &request.label).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    summary = "Revoke one of the caller's tokens",
    params(("id" = i64, Path, description = "the token's id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such active token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn revoke_token(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_token(caller.token_owner(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Reserved {
    reserved_domains: Vec<Reservation>,
}

#[utoipa::path(get, path = "/api/v1/reserved-domains", tag = "reserved domains",
    summary = "List domains reserved for the platform's own use (admin)",
    responses(
        (status = 200, description = "reserved domains", body = Reserved),
        (status = 403, description = "not an admin token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn list_reserved(State(state): State<WebState>, caller: Caller) -> Result<Json<Reserved>, ApiError> {
    caller.admin()?;
    Ok(Json(Reserved { reserved_domains: state.service.reserved_domains().await? }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewReservation {
    domain: String,
    reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/reserved-domains", tag = "reserved domains",
    summary = "Reserve a domain (admin); its subdomains stay allowed",
    request_body = NewReservation,
    responses(
        (status = 201, description = "reserved"),
        (status = 422, description = "not a valid domain", body = super::ErrorBody),
        (status = 403, description = "not an admin token", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn reserve_domain(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<NewReservation>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    state.service.reserve_domain(&request.domain, request.reason.as_deref()).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(delete, path = "/api/v1/reserved-domains/{domain}", tag = "reserved domains",
    summary = "Stop reserving a domain (admin)",
    params(("domain" = String, Path, description = "the reserved domain")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "not reserved", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn unreserve_domain(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(name): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    state.service.unreserve_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
