//! "Send these instructions to a colleague": the account makes a read-only link to a domain's
//! records (`POST /ui/domains/{domain}/share`) and revokes it; whoever opens `/share/{secret}`
//! sees the records table with its live status and the zone-file snippet, without signing in,
//! until the link expires or is revoked. The secret is in the path, never an account token.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;

use senderauth_service::ErrorKind;

use super::domains::{LiveState, readable, time};
use super::setup::{Setup, setup};
use super::{Chrome, CsrfForm, MessagePage, Signed, error_page, render, url_part, went_wrong};
use crate::WebState;

#[derive(Deserialize)]
pub(super) struct ShareForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
}

#[derive(Template)]
#[template(path = "share_made.html")]
struct ShareMadePage<'a> {
    title: &'a str,
    chrome: Chrome,
    domain: &'a str,
    url: String,
    expires: String,
}

/// The link's address as the browser reached this service (its Host header; a relative link
/// without one). Behind a TLS proxy (`https`), https.
fn link(headers: &HeaderMap, https: bool, secret: &str) -> String {
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).filter(|host| {
        !host.is_empty() && host.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
    });
    match host {
        Some(host) => format!("{}://{host}/share/{secret}", if https { "https" } else { "http" }),
        None => format!("/share/{secret}"),
    }
}

pub(super) async fn make(
    State(state): State<WebState>,
    signed: Signed,
    https: super::session::Https,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ShareForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    let days = form.days.trim().parse::<i64>().unwrap_or(0);
    match state.service.share(signed.session.account_id, &name, days).await {
        Ok((link_info, secret)) => {
            let page = ShareMadePage {
                title: "A link for your colleague",
                chrome: signed.chrome(),
                domain: &name,
                url: link(&headers, https.0, &secret),
                expires: time(Some(link_info.expires_at)),
            };
            render(StatusCode::OK, &page)
        }
        Err(error) => error_page(&signed, &error),
    }
}

pub(super) async fn revoke(
    State(state): State<WebState>,
    signed: Signed,
    Path((name, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    match state.service.revoke_share(signed.session.account_id, &name, id).await {
        Ok(()) => Redirect::to(&format!("/ui/domains/{}?notice=revoked", url_part(&name))).into_response(),
        Err(error) => error_page(&signed, &error),
    }
}

#[derive(Template)]
#[template(path = "share.html")]
struct SharedPage<'a> {
    title: &'a str,
    chrome: Chrome,
    domain: &'a str,
    unicode: Option<String>,
    secret: &'a str,
    expires: String,
    setup: Setup,
}

/// The page of a link that does not open (unknown, expired, revoked: one answer for all).
fn closed(state: &WebState, error: &senderauth_service::ServiceError) -> Response {
    if error.kind() == ErrorKind::Internal {
        return went_wrong(Chrome::public(state), "opening a share link", error);
    }
    let page = MessagePage {
        title: "Link closed",
        chrome: Chrome::public(state),
        heading: "This link no longer opens",
        text: &error.public_message(),
        back: false,
    };
    render(StatusCode::NOT_FOUND, &page)
}

/// `GET /share/{secret}`: the records and their status, read-only, without signing in.
pub(super) async fn page(State(state): State<WebState>, Path(secret): Path<String>) -> Response {
    let shared = match state.service.shared(&secret).await {
        Ok(shared) => shared,
        Err(error) => return closed(&state, &error),
    };
    let view = match state.service.domain(shared.account_id, &shared.domain, true).await {
        Ok(view) => view,
        Err(error) => return closed(&state, &error),
    };
    let domain = view.domain.domain.as_str();
    let page = SharedPage {
        title: domain,
        chrome: Chrome::public(&state),
        domain,
        unicode: readable(domain),
        secret: &secret,
        expires: time(Some(shared.expires_at)),
        setup: setup(&view),
    };
    render(StatusCode::OK, &page)
}

/// `GET /share/{secret}/state`: the live state, for the shared page's script.
pub(super) async fn state(State(state): State<WebState>, Path(secret): Path<String>) -> Response {
    let shared = match state.service.shared(&secret).await {
        Ok(shared) => shared,
        Err(error) => return closed(&state, &error),
    };
    match state.service.domain_state(shared.account_id, &shared.domain).await {
        Ok(row) => Json(LiveState::of(&row)).into_response(),
        Err(error) => closed(&state, &error),
    }
}
