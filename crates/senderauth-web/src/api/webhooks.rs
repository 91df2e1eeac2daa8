//! An account's webhook endpoints and their delivery logs.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use senderauth_service::webhooks::{DeliveryView, NewWebhook as CreatedWebhook, WebhookView};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, json_body};
use crate::WebState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewWebhook {
    url: String,
}

pub(super) async fn create(
    State(state): State<WebState>,
    caller: Caller,
    body: Result<Json<NewWebhook>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let account = caller.account()?;
    let request = json_body(body)?;
    // The secret is shown this once; every delivery is signed with it.
    Ok((StatusCode::CREATED, Json(state.service.add_webhook(account, &request.url).await?)))
}

#[derive(Serialize)]
pub(super) struct Webhooks {
    webhooks: Vec<WebhookView>,
}

pub(super) async fn list(State(state): State<WebState>, caller: Caller) -> Result<Json<Webhooks>, ApiError> {
    Ok(Json(Webhooks { webhooks: state.service.webhooks(caller.account()?).await? }))
}

pub(super) async fn remove(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.service.remove_webhook(caller.account()?, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(super) struct Deliveries {
    deliveries: Vec<DeliveryView>,
}

pub(super) async fn deliveries(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Deliveries>, ApiError> {
    Ok(Json(Deliveries { deliveries: state.service.deliveries(caller.account()?, id).await? }))
}
