//! senderauth's HTTP front ends on one router: the REST API (`api`, JSON under `/api/v1`) and
//! the web UI (`ui`, pages under `/ui`). Both call the service's use cases; neither knows SQL.

pub mod api;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::get;
use senderauth_mail::Gateway;
use senderauth_service::Service;

/// What every handler can reach: the service, and the sending gateway for
/// `POST /api/v1/messages/prepare`.
#[derive(Clone)]
pub struct WebState {
    pub service: Service,
    pub gateway: Gateway,
}

impl WebState {
    /// The state for `service`, its gateway taking messages up to `size_limit` bytes with
    /// envelope senders on `bounce_domain`.
    pub fn new(service: Service, bounce_domain: String, size_limit: usize) -> WebState {
        let gateway = Gateway::new(service.clone(), bounce_domain, size_limit);
        WebState { service, gateway }
    }
}

/// Every route: the API, the UI, and `/` leading to the UI.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/domains") }))
        .merge(api::routes(&state))
        .merge(ui::routes())
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .with_state(state)
}
