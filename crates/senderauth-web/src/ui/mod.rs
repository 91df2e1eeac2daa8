//! The web UI: the pages a customer uses to connect and verify sending domains, served by
//! `senderauth serve` under `/ui`. Server-rendered HTML from askama templates (`templates/`,
//! compile-checked, every value escaped), one stylesheet and one small script of its own (no CDN,
//! no font, no framework); every page works without the script but the Copy buttons.
//!
//! Sign-in takes an account token and starts a session (an HttpOnly, SameSite=Strict cookie
//! naming a server-side session). Every form carries the session's CSRF token (the sign-in
//! form a double-submit one) and is refused without it.

mod brand;
mod domains;
mod reports;
mod sandbox;
mod session;
mod setup;
mod share;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use senderauth_service::{ErrorKind, ServiceError};

use crate::WebState;
use crate::api::status_of;
pub use brand::{Brand, BrandError};
pub(crate) use session::{CsrfForm, Signed};

const STYLESHEET: &str = include_str!("app.css");
const SCRIPT: &str = include_str!("app.js");

/// The UI's routes.
/// A stylesheet or script: the same for everyone, so it may be cached for a few minutes.
fn asset(content_type: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], text).into_response()
}

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/domains") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/domains") }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/theme.css", get(theme))
        .route("/ui/logo", get(logo))
        .route("/ui/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/ui/sign-out", post(session::sign_out))
        .route("/ui/domains", get(domains::domains_page).post(domains::connect))
        .route("/ui/domains/{domain}", get(domains::domain_page))
        .route("/ui/domains/{domain}/state", get(domains::domain_state))
        .route("/ui/domains/{domain}/verify", post(domains::verify))
        .route("/ui/domains/{domain}/share", post(share::make))
        .route("/ui/domains/{domain}/share/{id}/revoke", post(share::revoke))
        .route("/ui/domains/{domain}/history", get(domains::history_page))
        .route("/ui/domains/{domain}/reports", get(reports::reports_page))
        .route("/ui/domains/{domain}/delete", post(domains::delete))
        .route("/share/{secret}", get(share::page))
        .route("/share/{secret}/state", get(share::state))
        .route("/ui/sandbox", get(sandbox::zones_page).post(sandbox::create_zone))
        .route("/ui/sandbox/{zone}", get(sandbox::zone_page))
        .route("/ui/sandbox/{zone}/records", post(sandbox::add_record))
        .route("/ui/sandbox/{zone}/records/{id}/delete", post(sandbox::remove_record))
        .route("/ui/sandbox/{zone}/records/{id}/edit", post(sandbox::edit_record))
        .route("/ui/sandbox/{zone}/scenario", post(sandbox::load_scenario))
}

/// The accent colour of `[service.ui]`, as a stylesheet.
async fn theme(State(state): State<WebState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        state.brand.theme(),
    )
        .into_response()
}

/// The logo of `[service.ui]`; 404 when none is set.
async fn logo(State(state): State<WebState>) -> Response {
    match &state.brand.logo {
        Some(logo) => (
            [(header::CONTENT_TYPE, logo.content_type), (header::CACHE_CONTROL, "public, max-age=300")],
            logo.bytes.clone(),
        )
            .into_response(),
        None => no_such_page(&state, StatusCode::NOT_FOUND, "No logo is set."),
    }
}

/// What a URL path segment or query value may carry as it is (RFC 3986's unreserved
/// characters); everything else is percent-encoded.
const URL_PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Part of a URL path or query made safe.
pub(crate) fn url_part(text: &str) -> String {
    utf8_percent_encode(text, URL_PART).to_string()
}

/// What every page shows around its content: the operator's brand, and the navigation when
/// signed in.
pub(crate) struct Chrome {
    pub(crate) brand: Arc<Brand>,
    pub(crate) nav: Option<Nav>,
}

impl Chrome {
    /// The chrome of a page for someone not signed in.
    pub(crate) fn public(state: &WebState) -> Chrome {
        Chrome { brand: state.brand.clone(), nav: None }
    }
}

/// The header's navigation when signed in: the sign-out form's CSRF token, and whether the
/// sandbox DNS host is offered.
pub(crate) struct Nav {
    pub(crate) csrf: String,
    pub(crate) demo: bool,
}

/// A page rendered with a status code; a template that fails to render is a 500.
pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; try again.").into_response()
        }
    }
}

/// A page that says one thing: an error, a refusal, what was not found.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    title: &'a str,
    chrome: Chrome,
    heading: &'a str,
    text: &'a str,
    /// Whether to offer the way back to the domains.
    back: bool,
}

/// The page for an address that is no page, signed in or not.
pub(crate) fn no_such_page(state: &WebState, status: StatusCode, text: &str) -> Response {
    let heading = status.canonical_reason().unwrap_or("Error");
    render(status, &MessagePage { title: heading, chrome: Chrome::public(state), heading, text, back: true })
}

/// The 404 page: what was not found, and the way back to the domains.
pub(crate) fn not_found(signed: &Signed, message: &str) -> Response {
    let page =
        MessagePage { title: "Not found", chrome: signed.chrome(), heading: "Not found", text: message, back: true };
    render(StatusCode::NOT_FOUND, &page)
}

/// The 500 page for a failure inside the server (logged with `what`; the details stay there).
pub(crate) fn went_wrong(chrome: Chrome, what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "{what}");
    let page = MessagePage { title: "Error", chrome, heading: "Something went wrong", text: "Try again.", back: false };
    render(StatusCode::INTERNAL_SERVER_ERROR, &page)
}

/// The page for a refused or failed request: 404 for what is not there, the reason for a
/// refusal, "something went wrong" for a failure inside the service.
pub(crate) fn error_page(signed: &Signed, error: &ServiceError) -> Response {
    match error.kind() {
        ErrorKind::NotFound => not_found(signed, &error.public_message()),
        ErrorKind::Internal => went_wrong(signed.chrome(), "a request", error),
        kind => {
            let message = error.public_message();
            let page =
                MessagePage { title: "Error", chrome: signed.chrome(), heading: "Error", text: &message, back: false };
            render(status_of(kind), &page)
        }
    }
}

/// What the customer is told when a use case refuses: the reason, or for a failure inside the
/// service only that it failed (the details are logged).
pub(crate) fn refusal_text(error: &ServiceError) -> String {
    if error.kind() == ErrorKind::Internal {
        tracing::error!(%error, "request failed");
    }
    error.public_message()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_are_encoded() {
        assert_eq!(url_part("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(url_part("shop.example-1.com_~"), "shop.example-1.com_~");
    }

    #[test]
    fn values_on_a_page_are_escaped() {
        let chrome = Chrome { brand: Arc::default(), nav: None };
        let page = MessagePage { title: "<t>", chrome, heading: "x", text: r#"<a href="x">'&'</a>"#, back: false };
        let html = page.render().expect("renders");
        assert!(html.contains("<p>&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;</p>"), "{html}");
        assert!(html.contains("<title>&#60;t&#62; · senderauth</title>"), "{html}");
    }
}
