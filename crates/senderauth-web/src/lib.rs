//! senderauth's HTTP front ends on one router: the REST API (`api`, JSON under `/api/v1`) and
//! the web UI (`ui`, pages under `/ui`). Both call the service's use cases; neither knows SQL.

pub mod api;
pub mod server;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use axum::routing::get;
use senderauth_mail::Gateway;
use senderauth_service::Service;

/// What every handler can reach: the service, and the sending gateway for
/// `POST /api/v1/messages/prepare`.
#[derive(Clone)]
pub struct WebState {
    pub service: Service,
    pub gateway: Gateway,
    /// The service is reached over HTTPS (TLS terminated in front of it): the UI's cookies are
    /// marked Secure on every request, not only on those a proxy marks `X-Forwarded-Proto: https`.
    pub https: bool,
    /// The operator's name, logo, colour and support link on every page.
    pub brand: std::sync::Arc<ui::Brand>,
    /// Demo mode: the file holding the demo account's token, named on the sign-in page.
    pub demo_token_file: Option<std::path::PathBuf>,
}

impl WebState {
    /// The state for `service`, its gateway taking messages up to `size_limit` bytes with
    /// envelope senders on `bounce_domain`.
    pub fn new(service: Service, bounce_domain: String, size_limit: usize) -> WebState {
        let gateway = Gateway::new(service.clone(), bounce_domain, size_limit);
        WebState { service, gateway, https: false, brand: Default::default(), demo_token_file: None }
    }
}

/// The content security policy of every response: scripts, styles, images and form targets
/// from this origin only (no inline script or style), never framed.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every response carries: the content security policy, no framing, no content-type
/// sniffing, no referrer, and `Cache-Control: no-store` unless the route set its own (pages and
/// API answers hold account data).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Every route: the API, the UI, and `/` leading to the UI.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/domains") }))
        .merge(api::routes(&state))
        .merge(ui::routes())
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}
