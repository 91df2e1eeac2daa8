//! Bounces read back: a domain's bounced recipients (filtered by kind and status code, paged)
//! and a message's fate by the token of its envelope sender. Another account's domain or token
//! is 404, as a missing one.

use axum::Json;
use axum::extract::State;
use senderauth_service::bounces::{BounceList, MessageFate};
use serde::Deserialize;

use super::{ApiError, Caller, PathParam, QueryString, checked_limit};
use crate::WebState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BouncesQuery {
    kind: Option<String>,
    status: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/bounces", tag = "bounces",
    summary = "The domain's bounced recipients, newest first",
    description = "One entry per recipient a bounce reported: hard (permanent, 5.x.x) or soft (delayed, or given up after a temporary failure), the RFC 3463 status code, the remote server and its reply, and the token of the message (GET /api/v1/messages/{token}).",
    params(
        ("domain" = String, Path, description = "the domain"),
        ("kind" = Option<String>, Query, description = "hard or soft"),
        ("status" = Option<String>, Query, description = "an enhanced status code, e.g. 5.1.1"),
        ("before" = Option<i64>, Query, description = "the `next` of the previous page"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
    ),
    responses(
        (status = 200, description = "a page of bounced recipients", body = BounceList),
        (status = 400, description = "a bad filter (invalid_filter) or limit (invalid_limit)", body = super::ErrorBody),
        (status = 404, description = "no such domain in this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn domain_bounces(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(domain): PathParam<String>,
    QueryString(query): QueryString<BouncesQuery>,
) -> Result<Json<BounceList>, ApiError> {
    let limit = checked_limit(query.limit, 1000)?;
    let account = caller.account()?;
    let list = state
        .service
        .domain_bounces(account, &domain, query.kind.as_deref(), query.status.as_deref(), query.before, limit)
        .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/messages/{token}", tag = "bounces",
    summary = "What became of a message: the bounces that came back to its envelope sender",
    description = "The token is the part after `b+<account>.` in the envelope sender the gateway gave the message (the `senderauth-envelope-from` header of /api/v1/messages/prepare, or the gateway's log). `no_bounce`: nothing came back; `delayed`: only delay notices so far; `bounced`: a recipient failed.",
    params(("token" = String, Path, description = "the message's token")),
    responses(
        (status = 200, description = "the message's fate", body = MessageFate),
        (status = 404, description = "no message with this token was sent from this account", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn message_fate(
    State(state): State<WebState>,
    caller: Caller,
    PathParam(token): PathParam<String>,
) -> Result<Json<MessageFate>, ApiError> {
    Ok(Json(state.service.message_fate(caller.account()?, &token).await?))
}
