//! What operators and tools ask without a token: health, readiness, metrics, this document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::WebState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "The process is up",
    responses((status = 200, description = "ok", body = String, content_type = "text/plain")),
    security(()))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "The database is reachable",
    responses(
        (status = 200, description = "ready", body = String, content_type = "text/plain"),
        (status = 503, description = "not ready", body = super::ErrorBody),
    ),
    security(()))]
pub(super) async fn readyz(State(state): State<WebState>) -> Result<&'static str, ApiError> {
    if state.service.ready().await {
        Ok("ready")
    } else {
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the database is not reachable"))
    }
}

/// Prometheus metrics. Like `/healthz` it needs no token: it holds only totals, no account's data.
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics (totals only)",
    responses((status = 200, description = "text/plain metrics", body = String, content_type = "text/plain")),
    security(()))]
pub(super) async fn metrics(State(state): State<WebState>) -> Result<Response, ApiError> {
    let text = state.service.metrics_text().await?;
    Ok(([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", summary = "This document",
    responses((status = 200, description = "the OpenAPI document", body = Object)),
    security(()))]
pub(super) async fn openapi() -> Response {
    ([("content-type", "application/json")], super::doc::document()).into_response()
}
