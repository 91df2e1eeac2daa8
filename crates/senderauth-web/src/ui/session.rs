//! Signing in and out, the session a request carries, and the CSRF tokens forms carry.
//!
//! A session is a row in the store named by the hash of a secret in an HttpOnly,
//! SameSite=Strict cookie; it is tied to the account token that opened it, so revoking the token
//! ends it. Every form carries the session's CSRF token; the sign-in form, before any session,
//! a double-submit one (the same random value in a cookie and in the form).

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use senderauth_core::token::random_hex;
use senderauth_service::accounts::Session;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Brand, Chrome, MessagePage, Nav, render, went_wrong};
use crate::WebState;

const SESSION_COOKIE: &str = "senderauth_session";
const SIGN_IN_COOKIE: &str = "senderauth_sign_in";
/// How long a session lasts.
const SESSION_SECONDS: i64 = 12 * 3600;
/// How long a sign-in form stays valid.
const SIGN_IN_SECONDS: i64 = 3600;

/// A cookie of the UI's: only for `/ui`, never readable by scripts, never sent cross-site, and
/// over HTTPS only when the page came over HTTPS.
fn ui_cookie(name: &'static str, value: String, seconds: i64, https: Https) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https.0)
        .max_age(time::Duration::seconds(seconds))
        .build()
}

/// Whether the request came over HTTPS: the operator says the service is reached only so
/// (`https = true`, TLS terminated in front of it), or the proxy says `X-Forwarded-Proto: https`.
/// (Trusting the header costs nothing: it can only make a cookie stricter.)
#[derive(Clone, Copy)]
pub(crate) struct Https(pub(crate) bool);

impl FromRequestParts<WebState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Https, Self::Rejection> {
        let forwarded = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Ok(Https(state.https || forwarded))
    }
}

/// Whether `given` is `expected`, without telling by its timing how much of it was.
fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// A signed-in customer: the session its cookie names.
pub struct Signed {
    pub(crate) session: Session,
    /// Demo mode: the sandbox DNS host's pages are offered.
    pub(crate) demo: bool,
    pub(crate) brand: std::sync::Arc<Brand>,
}

impl FromRequestParts<WebState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Signed, Response> {
        let to_sign_in = || Redirect::to("/ui/sign-in").into_response();
        let jar = CookieJar::from_headers(&parts.headers);
        let secret = jar.get(SESSION_COOKIE).map(|cookie| cookie.value().to_string()).ok_or_else(to_sign_in)?;
        match state.service.session(&secret).await {
            Ok(Some(session)) => Ok(Signed { session, demo: state.service.demo, brand: state.brand.clone() }),
            Ok(None) => Err(to_sign_in()),
            Err(error) => Err(went_wrong(Chrome::public(state), "reading a session", &error)),
        }
    }
}

impl Signed {
    /// The refusal of a form that does not carry this session's CSRF token; `None` when it does.
    pub(crate) fn refusal(&self, csrf: &str) -> Option<Response> {
        if same(csrf, &self.session.csrf_token) {
            return None;
        }
        let page = MessagePage {
            title: "Form expired",
            chrome: self.chrome(),
            heading: "This form has expired",
            text: "It was not sent from this session's page. Go back, reload the page and send it again.",
            back: false,
        };
        Some(render(StatusCode::FORBIDDEN, &page))
    }

    /// The CSRF token this session's forms carry.
    pub(crate) fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    /// The brand and the header's navigation for this session.
    pub(crate) fn chrome(&self) -> Chrome {
        Chrome { brand: self.brand.clone(), nav: Some(Nav { csrf: self.session.csrf_token.clone(), demo: self.demo }) }
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    title: &'a str,
    chrome: Chrome,
    csrf: &'a str,
    error: Option<&'a str>,
    /// Demo mode: the file with the demo account's token.
    demo_token_file: Option<String>,
}

fn sign_in_form(state: &WebState, status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    let demo_token_file = state.demo_token_file.as_ref().map(|path| path.display().to_string());
    render(status, &SignInPage { title: "Sign in", chrome: Chrome::public(state), csrf, error, demo_token_file })
}

/// The sign-in page, with a fresh double-submit CSRF cookie.
pub(super) async fn sign_in_page(State(state): State<WebState>, https: Https, jar: CookieJar) -> Response {
    let csrf = match random_hex("", 16) {
        Ok(csrf) => csrf,
        Err(error) => return went_wrong(Chrome::public(&state), "making a sign-in form", &error),
    };
    let page = sign_in_form(&state, StatusCode::OK, &csrf, None);
    (jar.add(ui_cookie(SIGN_IN_COOKIE, csrf, SIGN_IN_SECONDS, https)), page).into_response()
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

pub(super) async fn sign_in(
    State(state): State<WebState>,
    https: Https,
    jar: CookieJar,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = jar.get(SIGN_IN_COOKIE).map(|cookie| cookie.value().to_string()).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, &expected) {
        let expired = "This form has expired. Reload the page and sign in again.";
        return sign_in_form(&state, StatusCode::FORBIDDEN, &expected, Some(expired));
    }
    match state.service.sign_in(&form.token, SESSION_SECONDS).await {
        Ok(Some((secret, _))) => {
            let jar = jar.add(ui_cookie(SESSION_COOKIE, secret, SESSION_SECONDS, https)).add(ui_cookie(
                SIGN_IN_COOKIE,
                String::new(),
                0,
                https,
            ));
            (jar, Redirect::to("/ui/domains")).into_response()
        }
        Ok(None) => sign_in_form(
            &state,
            StatusCode::UNAUTHORIZED,
            &expected,
            Some("That token is not valid: it is unknown, revoked, or an admin token. Use an account token."),
        ),
        Err(error) => {
            tracing::error!(%error, "signing in");
            sign_in_form(&state, StatusCode::INTERNAL_SERVER_ERROR, &expected, Some("Something went wrong; try again."))
        }
    }
}

pub(super) async fn sign_out(
    State(state): State<WebState>,
    https: Https,
    signed: Signed,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = signed.refusal(&form.csrf) {
        return refused;
    }
    if let Some(secret) = jar.get(SESSION_COOKIE).map(|cookie| cookie.value().to_string())
        && let Err(error) = state.service.sign_out(&secret).await
    {
        tracing::error!(%error, "signing out");
    }
    (jar.add(ui_cookie(SESSION_COOKIE, String::new(), 0, https)), Redirect::to("/ui/sign-in")).into_response()
}
