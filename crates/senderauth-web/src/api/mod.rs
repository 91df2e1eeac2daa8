//! The REST API: JSON under `/api/v1`, every route but the health checks, the metrics and the
//! document authenticated with `Authorization: Bearer`. Errors are `{"code", "message"}` with a
//! fitting status, mapped once from the service's errors here; internal details are not sent.

mod accounts;
mod bounces;
mod dmarc;
mod doc;
mod domains;
mod messages;
mod ops;
mod webhooks;

pub use doc::document as openapi_document;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use senderauth_service::accounts::Caller as Principal;
use senderauth_service::{ErrorKind, ServiceError};
use serde::Serialize;

use crate::WebState;

/// Request bodies are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API's routes.
pub fn routes(state: &WebState) -> Router<WebState> {
    // Bodies past the gateway's limit are told so by the gateway, up to twice the limit.
    let message_limit = DefaultBodyLimit::max(state.gateway.size_limit.saturating_mul(2).max(MAX_BODY_BYTES));
    Router::new()
        .route("/api/v1/messages/prepare", post(messages::prepare).layer(message_limit))
        .route("/api/v1/dmarc/reports", post(dmarc::hand_in).layer(DefaultBodyLimit::max(dmarc::MAX_REPORT_BYTES)))
        .route("/api/v1/domains/{domain}/bounces", get(bounces::domain_bounces))
        .route("/api/v1/messages/{token}", get(bounces::message_fate))
        .route("/api/v1/domains/{domain}/dmarc", get(dmarc::summary))
        .route("/api/v1/domains/{domain}/dmarc/sources", get(dmarc::sources))
        .route("/api/v1/domains/{domain}/dmarc/reports", get(dmarc::reports))
        .route("/api/v1/domains/{domain}/dmarc/failures", get(dmarc::failures))
        .route("/api/v1/domains/{domain}/dmarc/reports/{id}", get(dmarc::report))
        .route("/api/v1/domains/{domain}/dmarc/reports/{id}/xml", get(dmarc::report_xml))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(ops::openapi))
        .route("/api/v1/accounts", post(accounts::create_account))
        .route("/api/v1/account", get(accounts::own_account).patch(accounts::change_account))
        .route("/api/v1/domains", post(domains::connect).get(domains::list))
        .route("/api/v1/domains/{domain}", get(domains::detail).delete(domains::remove))
        .route("/api/v1/domains/{domain}/verify", post(domains::verify_now))
        .route("/api/v1/domains/{domain}/records", get(domains::records))
        .route("/api/v1/domains/{domain}/dkim", get(domains::keys))
        .route("/api/v1/domains/{domain}/dkim/rotate", post(domains::rotate))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/v1/webhooks/{id}", delete(webhooks::remove))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/api/v1/tokens", get(accounts::list_tokens).post(accounts::create_token))
        .route("/api/v1/tokens/{id}", delete(accounts::revoke_token))
        .route("/api/v1/reserved-domains", get(accounts::list_reserved).post(accounts::reserve_domain))
        .route("/api/v1/reserved-domains/{domain}", delete(accounts::unreserve_domain))
}

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// What every error answers: a stable code and a message for a person.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// Stable, for programs: `domain_not_found`, `rate_limited`, ...
    code: &'a str,
    /// What went wrong and what to do, for a person.
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { code: self.code, message: &self.message })).into_response()
    }
}

/// The status code a kind of service error answers with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let kind = error.kind();
        if kind == ErrorKind::Internal {
            // The details go to the log; the client learns only that it failed.
            tracing::error!(%error, "request failed");
        }
        ApiError::new(status_of(kind), error.code(), error.public_message())
    }
}

/// A JSON body; what is wrong with one that does not read is said as an `ApiError`.
#[derive(FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub(crate) T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies may be at most {MAX_BODY_BYTES} bytes"),
            )
        } else if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_body",
                "send the body as JSON with Content-Type: application/json",
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", rejection.body_text())
        }
    }
}

/// A path parameter; one that does not parse (an id that is not a number) is a 400
/// `invalid_path`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct PathParam<T>(pub(crate) T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", rejection.body_text())
    }
}

/// A body taken as bytes (a message); one over the route's limit is a 413 `body_too_large`.
pub(crate) struct RawBody(pub(crate) axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<RawBody, ApiError> {
        Ok(RawBody(axum::body::Bytes::from_request(request, state).await?))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is over this route's size limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", rejection.body_text())
        }
    }
}

/// What an address that is no route answers: JSON under `/api/`, a page elsewhere.
pub async fn no_route(State(state): State<WebState>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let message = format!("there is no {} in the API; the routes are listed in /api/v1/openapi.json", uri.path());
        ApiError::new(StatusCode::NOT_FOUND, "no_such_route", message).into_response()
    } else {
        crate::ui::no_such_page(&state, StatusCode::NOT_FOUND, "There is no page at this address.")
    }
}

/// What a route answers to a method it does not take: JSON under `/api/`, a page elsewhere.
pub async fn wrong_method(State(state): State<WebState>, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let message =
            format!("{} does not take {method}; the methods it takes are in /api/v1/openapi.json", uri.path());
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message).into_response()
    } else {
        crate::ui::no_such_page(&state, StatusCode::METHOD_NOT_ALLOWED, "This page does not take that kind of request.")
    }
}

/// A query string; one that does not read is a 400 `invalid_query`.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub(crate) struct QueryString<T>(pub(crate) T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    }
}

/// The caller, from its bearer token.
pub struct Caller(Principal);

impl FromRequestParts<WebState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Caller, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send a valid token as Authorization: Bearer <token>",
            )
        };
        let token = bearer(&parts.headers).ok_or_else(unauthorized)?;
        match state.service.authenticate(token).await? {
            Some(principal) => Ok(Caller(principal)),
            None => Err(unauthorized()),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

/// A page size from a query: 100 when unset, else 1 to `max`.
pub(super) fn checked_limit(limit: Option<i64>, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_limit", format!("limit must be from 1 to {max}")))
    }
}

impl Caller {
    fn admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Principal::Admin => Ok(()),
            Principal::Account(_) => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this route needs an admin token"))
            }
        }
    }

    /// The account whose tokens this caller manages: its own, or the admin tokens.
    fn token_owner(&self) -> Option<i64> {
        match self.0 {
            Principal::Account(id) => Some(id),
            Principal::Admin => None,
        }
    }

    fn account(&self) -> Result<i64, ApiError> {
        match self.0 {
            Principal::Account(id) => Ok(id),
            Principal::Admin => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this route needs an account token"))
            }
        }
    }
}
