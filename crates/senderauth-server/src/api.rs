//! The REST API: JSON under `/api/v1`, every route authenticated with `Authorization: Bearer`.
//! Errors are `{"code", "message"}` with a fitting status; internal details are not sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::plan::{PlanError, RecordPlan, plan_records, to_zone_file};
use senderauth_store::{DomainRecord, KeyGroup, KeyState, Principal, StoreError, TokenInfo};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::keys::{KeyAlgorithm, KeyError, KeyMaker, has_ed25519, published_record};
use crate::rotation::{self, RotateError, RotationPolicy};
use crate::webhooks::{Targets, refused_target};
use crate::worker::Worker;

/// The API's OpenAPI document; a test checks that every operation in it exists.
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

/// Request bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The shortest time between two verify-now requests for one domain.
const VERIFY_NOW_SECONDS: i64 = 10;
/// Page size limits for domain lists.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub worker: Worker,
    /// The current time in Unix seconds; tests substitute their own clock.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// When each domain (by id) was last verified on request, for the rate limit.
    verify_requests: Arc<Mutex<HashMap<i64, i64>>>,
    /// The domain limit of accounts created without one.
    pub default_domain_limit: Option<i64>,
    /// Where webhook URLs may point.
    pub webhook_targets: Targets,
    /// Makes the DKIM keys of newly connected domains.
    pub keys: KeyMaker,
    /// When rotated keys move on.
    pub rotation: RotationPolicy,
    /// Demo mode: connected domains get a zone at the sandbox DNS host, whose pages are served.
    pub demo: bool,
    /// A domain is checked on request at most once in this many seconds.
    pub verify_now_seconds: i64,
    /// The sending gateway's opened DKIM keys.
    pub mail_keys: crate::mail::KeyCache,
    /// Where relayed mail's envelope senders (and so bounces) go.
    pub bounce_domain: String,
    /// The largest message the gateway takes, in bytes.
    pub message_size_limit: usize,
}

impl AppState {
    pub fn new(worker: Worker, clock: Arc<dyn Fn() -> i64 + Send + Sync>, keys: KeyMaker) -> AppState {
        let bounce_domain = format!("bounces.{}", worker.provider.zone.trim_end_matches('.'));
        AppState {
            worker,
            clock,
            verify_requests: Arc::default(),
            default_domain_limit: None,
            webhook_targets: Targets::default(),
            keys,
            rotation: RotationPolicy::default(),
            demo: false,
            verify_now_seconds: VERIFY_NOW_SECONDS,
            mail_keys: crate::mail::KeyCache::default(),
            bounce_domain,
            message_size_limit: crate::mail::DEFAULT_SIZE_LIMIT,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    // Bodies past the gateway's limit are told so by the gateway, up to twice the limit.
    let message_limit = DefaultBodyLimit::max(state.message_size_limit.saturating_mul(2).max(MAX_BODY_BYTES));
    Router::new()
        .route("/api/v1/messages/prepare", post(prepare_message).layer(message_limit))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(|| async { ([("content-type", "application/json")], OPENAPI_DOCUMENT) }))
        .route("/api/v1/accounts", post(create_account))
        .route("/api/v1/domains", post(connect_domain).get(list_domains))
        .route("/api/v1/domains/{domain}", get(domain_detail).delete(delete_domain))
        .route("/api/v1/domains/{domain}/verify", post(verify_now))
        .route("/api/v1/domains/{domain}/records", get(domain_records))
        .route("/api/v1/domains/{domain}/dkim", get(domain_keys))
        .route("/api/v1/domains/{domain}/dkim/rotate", post(rotate_keys))
        .route("/api/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/api/v1/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhook_deliveries))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/reserved-domains", get(list_reserved).post(reserve_domain))
        .route("/api/v1/reserved-domains/{domain}", axum::routing::delete(unreserve_domain))
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// What went wrong, for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    /// A failure inside the server: the details go to the log, the client learns only that it
    /// failed.
    fn internal(detail: &str) -> ApiError {
        tracing::error!(detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the request could not be completed; try again",
        )
    }

    fn not_found(domain: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "domain_not_found", format!("no domain {domain} in this account"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "code": self.code, "message": self.message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            other => ApiError::internal(&other.to_string()),
        }
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
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
    })
}

/// The caller, from its bearer token.
pub struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send a valid token as Authorization: Bearer <token>",
            )
        };
        let token = bearer(&parts.headers).ok_or_else(unauthorized)?;
        match state.worker.store.authenticate(token).await? {
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

async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .worker
        .store
        .reserved_domains()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the database is not reachable"))?;
    Ok("ready")
}

/// Prometheus metrics. Like `/healthz` it needs no token: it holds only totals, no account's data.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = &state.worker.store;
    let now = state.now();
    let counts = store.status_counts().await?;
    let lag = store.oldest_due(now).await?.map_or(0, |due| (now - due).max(0));
    let text = state.worker.metrics.render(&counts, lag);
    Ok(([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: String,
    domain_limit: Option<i64>,
}

async fn create_account(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.admin()?;
    let request = json_body(body)?;
    let name = request.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "give the account a name of 1 to 200 characters",
        ));
    }
    if request.domain_limit.is_some_and(|limit| limit < 0) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_limit", "domain_limit must be 0 or more"));
    }
    let now = state.now();
    let limit = request.domain_limit.or(state.default_domain_limit);
    let account = state.worker.store.create_account(name, limit, now).await?;
    let (_, token) = state.worker.store.create_token(Some(account.id), "created with the account", now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": account.id, "name": account.name, "domain_limit": account.domain_limit, "token": token })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    email: String,
    /// The algorithm of the domain's DKIM keys; unset: the service's default.
    dkim_algorithm: Option<String>,
}

pub(crate) fn domain_json(record: &DomainRecord) -> Value {
    json!({
        "domain": record.domain,
        "status": record.status,
        "connected_at": record.created_at,
        "last_checked_at": record.last_checked_at,
        "next_check_at": record.next_check_at,
    })
}

/// The records a domain needs (with `ed25519`, its Ed25519 CNAMEs too). With `live`, planned
/// against what DNS holds now; when DNS cannot be read now, the records are still given,
/// without the merge.
async fn plan(
    state: &AppState,
    account_id: i64,
    domain: &DomainName,
    ed25519: bool,
    live: bool,
) -> Result<RecordPlan, ApiError> {
    let account = AccountId::parse(&account_id.to_string())
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "invalid account id"))?;
    let provider = &state.worker.provider;
    let planned = match plan_records(live.then_some(&state.worker.dns), provider, &account, domain, ed25519).await {
        Err(PlanError::Dns(_)) if live => plan_records(None, provider, &account, domain, ed25519).await,
        other => other,
    };
    planned.map_err(|error| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "domain_reserved", error.to_string()))
}

async fn records_json(state: &AppState, account_id: i64, domain: &DomainName, ed25519: bool, live: bool) -> Value {
    plan(state, account_id, domain, ed25519, live)
        .await
        .map_or(Value::Null, |plan| serde_json::to_value(plan.records).unwrap_or(Value::Null))
}

async fn connect_domain(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewDomain>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let account_id = caller.account()?;
    let request = json_body(body)?;
    let record = connect(&state, account_id, &request.email, request.dkim_algorithm.as_deref()).await?;
    let domain = DomainName::parse(&record.domain).map_err(|error| ApiError::internal(&error.to_string()))?;
    let ed25519 = has_ed25519(&state.worker.store.domain_keys(record.id).await?);
    let mut body = domain_json(&record);
    body["records"] = records_json(&state, account_id, &domain, ed25519, true).await;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Connects the domain of a From address to an account, with its hosted keys.
pub(crate) async fn connect(
    state: &AppState,
    account_id: i64,
    email: &str,
    dkim_algorithm: Option<&str>,
) -> Result<DomainRecord, ApiError> {
    let domain = DomainName::from_email(email)
        .map_err(|error| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_email", error.to_string()))?;
    let store = &state.worker.store;
    let reserved_by_config = senderauth_core::plan::is_reserved(&state.worker.provider, &domain);
    if reserved_by_config || store.is_reserved(domain.as_str()).await? {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "domain_reserved",
            format!(
                "{domain} is used by the platform for another purpose; connect a subdomain instead, like mail.{domain}"
            ),
        ));
    }
    let account = AccountId::parse(&account_id.to_string())
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string()))?;
    let algorithm = match dkim_algorithm {
        Some(text) => text.parse::<KeyAlgorithm>().map_err(|error| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_dkim_algorithm", error.to_string())
        })?,
        None => state.keys.algorithm,
    };
    let zone = state.keys.domain_zone(&state.worker.provider, &account, &domain, algorithm).await.map_err(|error| {
        tracing::error!(%error, "making DKIM keys");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "key_generation_failed",
            "the DKIM keys could not be made; try again",
        )
    })?;
    let record =
        store.add_domain_with(account_id, domain.as_str(), state.now(), &zone).await.map_err(|error| match error {
            StoreError::Conflict(message) if message.contains("already connected") => {
                ApiError::new(StatusCode::CONFLICT, "domain_exists", message)
            }
            StoreError::Conflict(message) if message.contains("limit") => {
                ApiError::new(StatusCode::CONFLICT, "domain_limit_reached", message)
            }
            other => other.into(),
        })?;
    if state.demo {
        crate::sandbox::host_connected_domain(state, account_id, &domain).await;
    }
    Ok(record)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

async fn list_domains(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let account_id = caller.account()?;
    let Query(query) =
        query.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_limit", format!("limit must be 1 to {MAX_PAGE}")));
    }
    let domains =
        state.worker.store.domains(account_id, query.status.as_deref(), query.after.as_deref(), limit).await?;
    let next = (domains.len() as i64 == limit).then(|| domains.last().map(|record| record.domain.clone())).flatten();
    Ok(Json(json!({ "domains": domains.iter().map(domain_json).collect::<Vec<_>>(), "next": next })))
}

/// One of the caller's domains, or 404 whether it is missing or another account's.
pub(crate) async fn owned_domain(
    state: &AppState,
    account_id: i64,
    name: &str,
) -> Result<(DomainName, DomainRecord), ApiError> {
    let domain = DomainName::parse(name).map_err(|_| ApiError::not_found(name))?;
    let record =
        state.worker.store.domain(account_id, domain.as_str()).await?.ok_or_else(|| ApiError::not_found(name))?;
    Ok((domain, record))
}

/// Puts what DNS held at the latest check, and each record's status, next to each required
/// record: `found` and `status` (absent before the first check).
fn annotate_records(records: &mut Value, result: &Value) {
    let Some(records) = records.as_array_mut() else { return };
    for record in records {
        let (found, status) = match record["method"].as_str() {
            Some("dkim") => {
                let selector = result["dkim"]["selectors"]
                    .as_array()
                    .and_then(|selectors| selectors.iter().find(|selector| selector["host"] == record["fqdn"]));
                match selector {
                    Some(selector) if selector["flattened"] == true => {
                        (json!("a copy of the key (the CNAME was flattened)"), selector["status"].clone())
                    }
                    Some(selector) => (selector["found_target"].clone(), selector["status"].clone()),
                    None => continue,
                }
            }
            Some("spf") => {
                let found = match result["spf"]["records_found"].as_array() {
                    Some(found) if found.len() > 1 => {
                        json!(found.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "))
                    }
                    _ => result["spf"]["record"].clone(),
                };
                (found, result["spf"]["status"].clone())
            }
            Some("dmarc") => {
                let found = match (result["dmarc"]["record"].as_str(), result["dmarc"]["location"].as_str()) {
                    (Some(text), Some(location)) if result["dmarc"]["inherited"] == true => {
                        json!(format!("{text} (inherited from _dmarc.{location})"))
                    }
                    (Some(text), _) => json!(text),
                    _ => Value::Null,
                };
                (found, result["dmarc"]["status"].clone())
            }
            _ => continue,
        };
        if status.is_null() {
            continue;
        }
        record["found"] = found;
        record["status"] = status;
    }
}

async fn domain_detail(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(domain_view(&state, caller.account()?, &name, false).await?))
}

/// One of the account's domains as the API shows it: the records with what DNS held at the
/// latest check, the latest result and the status history. With `live`, the records are
/// planned against what DNS holds now (the SPF record merged with the existing one, a DMARC
/// record inherited from the root domain recognized); without, from the configuration alone.
pub(crate) async fn domain_view(state: &AppState, account_id: i64, name: &str, live: bool) -> Result<Value, ApiError> {
    let domain = DomainName::parse(name).map_err(|_| ApiError::not_found(name))?;
    let store = &state.worker.store;
    let page = store.domain_page(account_id, domain.as_str()).await?.ok_or_else(|| ApiError::not_found(name))?;
    let mut body = domain_json(&page.record);
    body["records"] = records_json(state, account_id, &domain, page.ed25519, live).await;
    body["result"] = match page.result {
        Some(result) => serde_json::from_str(&result.result_json).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let result = body["result"].clone();
    annotate_records(&mut body["records"], &result);
    body["history"] = page
        .history
        .into_iter()
        .map(|event| json!({ "at": event.at, "from": event.from_status, "to": event.to_status, "event": event.event }))
        .collect();
    Ok(body)
}

/// The DKIM keys the platform holds for one of the caller's domains: per selector, where the
/// key is published, its algorithm, state and dates, and the public record. Never the private
/// key.
async fn domain_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account_id = caller.account()?;
    let (_, record) = owned_domain(&state, account_id, &name).await?;
    Ok(Json(keys_json(&state, &record).await?))
}

async fn keys_json(state: &AppState, record: &DomainRecord) -> Result<Value, ApiError> {
    let keys = state.worker.store.domain_keys(record.id).await?;
    let policy = &state.rotation;
    let keys: Vec<Value> = keys
        .iter()
        .filter(|key| key.state != KeyState::Removed)
        .map(|key| {
            json!({
                "selector": key.selector,
                "published_at": key.name,
                "algorithm": key.algorithm,
                "state": key.state.as_str(),
                "signing": key.state == KeyState::Active,
                "public_key": key.public_key,
                "record": published_record(key),
                "created_at": key.created_at,
                "active_at": key.active_at,
                "retired_at": key.retired_at,
                "revoked_at": key.revoked_at,
                "activates_at": policy.activates_at(key),
                "rotates_at": policy.rotates_at(key),
                "revokes_at": policy.revokes_at(key),
                "safe_to_remove": key.state == KeyState::Revoked,
            })
        })
        .collect();
    Ok(json!({ "domain": record.domain, "keys": keys }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// The new key's algorithm; unset: the signing key's.
    dkim_algorithm: Option<String>,
}

/// Rotates a domain's DKIM key now: the idle selector gets a new key, which signs once it has
/// been published long enough. 202 with the keys; 409 while a rotation is under way.
async fn rotate_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let account_id = caller.account()?;
    let (_, record) = owned_domain(&state, account_id, &name).await?;
    // The body is optional: none, or a JSON object.
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", format!("the body is not valid: {error}"))
        })?
    };
    let algorithm = request.dkim_algorithm.as_deref().map(str::parse::<KeyAlgorithm>).transpose().map_err(|error| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_dkim_algorithm", error.to_string())
    })?;
    let store = &state.worker.store;
    match rotation::start(store, &state.keys, &state.rotation, KeyGroup::Domain(record.id), algorithm, state.now())
        .await
    {
        Ok(_) => Ok((StatusCode::ACCEPTED, Json(keys_json(&state, &record).await?))),
        Err(RotateError::InProgress(message)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "rotation_in_progress", message))
        }
        Err(RotateError::NoKeys) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_hosted_keys",
            "this domain has no hosted keys to rotate (it was connected before senderauth hosted keys); connect it again",
        )),
        Err(error @ RotateError::NoEd25519) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_ed25519_keys", error.to_string()))
        }
        Err(RotateError::Key(KeyError::Algorithm(message))) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_dkim_algorithm", message))
        }
        Err(RotateError::Store(error)) => Err(error.into()),
        Err(RotateError::Key(error)) => {
            tracing::error!(%error, "rotating a key");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "key_generation_failed",
                "the new key could not be made; try again",
            ))
        }
    }
}

async fn verify_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(verify_domain_now(&state, caller.account()?, &name).await?))
}

/// Checks one of the account's domains now (at most once every `VERIFY_NOW_SECONDS` per
/// domain): the domain with the full result.
pub(crate) async fn verify_domain_now(state: &AppState, account_id: i64, name: &str) -> Result<Value, ApiError> {
    let (_, record) = owned_domain(state, account_id, name).await?;
    let now = state.now();
    {
        let mut requests =
            state.verify_requests.lock().map_err(|_| ApiError::internal("the rate limiter's lock is poisoned"))?;
        if let Some(last) = requests.get(&record.id)
            && now - last < state.verify_now_seconds
        {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("{name} was verified {}s ago; wait {}s between requests", now - last, state.verify_now_seconds),
            ));
        }
        requests.insert(record.id, now);
    }
    let (verification, _) = state.worker.check_domain(record, now, true).await?;
    let updated = state.worker.store.domain(account_id, verification.domain.as_str()).await?;
    let mut body = updated.as_ref().map_or(Value::Null, domain_json);
    body["result"] = serde_json::to_value(&verification).unwrap_or(Value::Null);
    Ok(body)
}

/// The gateway's treatment of one message, without relaying it: the message as it would be
/// relayed (signed as its domain, or rewritten to the variable domain and signed as that), with
/// the envelope sender and what was done in response headers.
async fn prepare_message(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let account_id = caller.account()?;
    let gateway = state.gateway();
    let arrival = crate::mail::Arrival { eight_bit: true, size_limit: state.message_size_limit };
    let prepared = crate::mail::prepare(&gateway, account_id, &body, arrival, state.now()).await.map_err(|error| {
        let status = if matches!(error, crate::mail::MailError::Temporary(_)) {
            StatusCode::SERVICE_UNAVAILABLE
        } else if matches!(error, crate::mail::MailError::TooBig { .. }) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, error.code(), error.to_string())
    })?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, "message/rfc822".to_string()),
        (axum::http::HeaderName::from_static("senderauth-envelope-from"), prepared.envelope_from.clone()),
        (
            axum::http::HeaderName::from_static("senderauth-signed-as"),
            prepared
                .selectors
                .iter()
                .map(|selector| format!("d={}; s={selector}", prepared.signed_as))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            axum::http::HeaderName::from_static("senderauth-from-rewritten"),
            prepared.rewritten_from.clone().unwrap_or_else(|| "no".to_string()),
        ),
    ];
    Ok((headers, prepared.message).into_response())
}

impl AppState {
    /// What the sending gateway needs, borrowed from the state.
    pub fn gateway(&self) -> crate::mail::Gateway<'_> {
        crate::mail::Gateway {
            store: &self.worker.store,
            master: &self.keys.master,
            keys: &self.mail_keys,
            variable_domain: self.worker.provider.variable_domain.trim_end_matches('.'),
            bounce_domain: &self.bounce_domain,
        }
    }
}

async fn delete_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_domain(&state, caller.account()?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of the account's domains (404 if it has none by that name).
pub(crate) async fn remove_domain(state: &AppState, account_id: i64, name: &str) -> Result<(), ApiError> {
    let (domain, _) = owned_domain(state, account_id, name).await?;
    state.worker.store.delete_domain(account_id, domain.as_str()).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    format: Option<String>,
}

async fn domain_records(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let account_id = caller.account()?;
    let Query(query) =
        query.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text()))?;
    let (domain, record) = owned_domain(&state, account_id, &name).await?;
    let keys = state.worker.store.domain_keys(record.id).await?;
    let plan = plan(&state, account_id, &domain, has_ed25519(&keys), true).await?;
    match query.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(serde_json::to_value(&plan).unwrap_or(Value::Null)).into_response()),
        "zone" => Ok(([("content-type", "text/plain; charset=utf-8")], to_zone_file(&plan)).into_response()),
        other => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_format", format!("format {other:?}: use json or zone")))
        }
    }
}

fn token_json(token: &TokenInfo) -> Value {
    json!({ "id": token.id, "label": token.label, "created_at": token.created_at, "revoked_at": token.revoked_at })
}

async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let tokens = state.worker.store.tokens(caller.token_owner()).await?;
    Ok(Json(json!({ "tokens": tokens.iter().map(token_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    label: String,
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = json_body(body)?;
    let label = request.label.trim();
    if label.is_empty() || label.len() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_label",
            "give the token a label of 1 to 200 characters",
        ));
    }
    let (token, secret) = state.worker.store.create_token(caller.token_owner(), label, state.now()).await?;
    let mut body = token_json(&token);
    // The secret is shown this once; only its hash is kept.
    body["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if state.worker.store.revoke_token(caller.token_owner(), id, state.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "token_not_found", format!("no active token {id} here")))
    }
}

async fn list_reserved(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let reserved = state.worker.store.reserved_domains().await?;
    let list: Vec<Value> =
        reserved.into_iter().map(|(domain, reason)| json!({ "domain": domain, "reason": reason })).collect();
    Ok(Json(json!({ "reserved_domains": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReservation {
    domain: String,
    reason: Option<String>,
}

async fn reserve_domain(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewReservation>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    let request = json_body(body)?;
    let domain = DomainName::parse(&request.domain)
        .map_err(|error| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_domain", error.to_string()))?;
    let reason = request.reason.unwrap_or_else(|| "used by the platform".to_string());
    state.worker.store.reserve_domain(domain.as_str(), &reason, state.now()).await?;
    Ok(StatusCode::CREATED)
}

async fn unreserve_domain(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    let domain = DomainName::parse(&name)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_reserved", format!("{name} is not reserved")))?;
    if state.worker.store.unreserve_domain(domain.as_str()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_reserved", format!("{name} is not reserved")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
}

async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewWebhook>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let account_id = caller.account()?;
    let request = json_body(body)?;
    let url = request.url.trim();
    let valid = reqwest::Url::parse(url)
        .is_ok_and(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some());
    if !valid || url.len() > 2000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    if let Some(refusal) = refused_target(url, state.webhook_targets) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "webhook_target_not_allowed", refusal));
    }
    let (endpoint, secret) = state.worker.store.add_webhook(account_id, url, state.now(), &*state.keys.master).await?;
    Ok((
        StatusCode::CREATED,
        // The secret is shown this once; every delivery is signed with it.
        Json(json!({ "id": endpoint.id, "url": endpoint.url, "created_at": endpoint.created_at, "secret": secret })),
    ))
}

async fn list_webhooks(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let account_id = caller.account()?;
    let webhooks = state.worker.store.webhooks(account_id).await?;
    let list: Vec<Value> = webhooks
        .iter()
        .map(|endpoint| json!({ "id": endpoint.id, "url": endpoint.url, "created_at": endpoint.created_at }))
        .collect();
    Ok(Json(json!({ "webhooks": list })))
}

async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let account_id = caller.account()?;
    if state.worker.store.delete_webhook(account_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "webhook_not_found", format!("no webhook {id} in this account")))
    }
}

async fn webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let account_id = caller.account()?;
    let Some(deliveries) = state.worker.store.deliveries(account_id, id, 100).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "webhook_not_found",
            format!("no webhook {id} in this account"),
        ));
    };
    let list: Vec<Value> = deliveries
        .iter()
        .map(|delivery| {
            json!({
                "id": delivery.id,
                "event_id": delivery.event_id,
                "state": delivery.state,
                "attempts": delivery.attempts,
                "next_attempt_at": delivery.next_attempt_at,
                "last_status": delivery.last_status,
                "last_error": delivery.last_error,
                "created_at": delivery.created_at,
                "delivered_at": delivery.delivered_at,
            })
        })
        .collect();
    Ok(Json(json!({ "deliveries": list })))
}
