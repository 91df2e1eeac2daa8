//! An account's webhook endpoints and their delivery logs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use senderauth_service::webhooks::{DeliveryView, NewWebhook as CreatedWebhook, WebhookView};
use serde::{Deserialize, Serialize};

use super::{ApiError, Body, Caller, PathParam};
use crate::WebState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhook {
    /// An http:// or https:// URL.
    url: String,
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    summary = "Add a webhook endpoint",
    description = "Each status change (domain.verified, domain.partially_verified, domain.degraded, domain.failed, domain.restored) is POSTed as JSON with headers senderauth-event, senderauth-delivery, senderauth-timestamp and senderauth-signature: sha256=<hex HMAC-SHA256 of \"{timestamp}.{body}\" with the secret>. Failed deliveries are retried after 30 s, 2 min, 10 min, 30 min, 1 h, 3 h and 12 h, then given up.",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "the endpoint, with its signing secret shown once", body = CreatedWebhook),
        (status = 422, description = "not an http(s) URL (invalid_url), or an address literal outside the public internet while webhook_private_targets is off (webhook_target_not_allowed)", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    Body(request): Body<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let account = caller.account()?;
    // The secret is shown this once; every delivery is signed with it.
    Ok((StatusCode::CREATED, Json(state.service.add_webhook(account, &request.url).await?)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Webhooks {
    webhooks: Vec<WebhookView>,
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    summary = "List the account's webhook endpoints (without secrets)",
    responses((status = 200, description = "endpoints", body = Webhooks), (status = 401, description = "no valid token", body = super::ErrorBody)))]
pub(super) async fn list(State(state): State<WebState>, caller: Caller) -> Result<Json<Webhooks>, ApiError> {
    Ok(Json(Webhooks { webhooks: state.service.webhooks(caller.account()?).await? }))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    summary = "Remove a webhook endpoint",
    params(("id" = i64, Path, description = "the endpoint's id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "no such endpoint in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn remove(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.remove_webhook(caller.account()?, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Deliveries {
    deliveries: Vec<DeliveryView>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    summary = "The endpoint's delivery log, newest first",
    params(("id" = i64, Path, description = "the endpoint's id")),
    responses(
        (status = 200, description = "deliveries", body = Deliveries),
        (status = 404, description = "no such endpoint in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn deliveries(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
) -> Result<Json<Deliveries>, ApiError> {
    Ok(Json(Deliveries { deliveries: state.service.deliveries(caller.account()?, id).await? }))
}
