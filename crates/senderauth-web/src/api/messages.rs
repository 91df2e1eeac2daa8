//! `POST /api/v1/messages/prepare`: the gateway's treatment of one message, without relaying
//! it.

use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use senderauth_mail::{Arrival, MailError, prepare as prepare_message};

use super::{ApiError, Caller, RawBody};
use crate::WebState;

/// The message as it would be relayed (signed as its domain, or rewritten to the variable
/// domain and signed as that), with the envelope sender and what was done in response headers.
#[utoipa::path(post, path = "/api/v1/messages/prepare", tag = "messages",
    summary = "What the sending gateway would relay for a message, without relaying it",
    description = "DKIM-signed as its From domain when the account has it connected with DKIM in place (or a parent domain of it), else with the From rewritten to the variable domain (user=domain@variable domain, the original in Reply-To) and signed as that.",
    request_body(content = String, content_type = "message/rfc822",
        description = "the message (RFC 5322, CRLF line endings, at most message_size_limit bytes; 8-bit bodies taken, headers ASCII)"),
    responses(
        (status = 200, description = "the message exactly as it would be relayed, DKIM-Signature first",
            body = String, content_type = "message/rfc822",
            headers(
                ("senderauth-envelope-from" = String, description = "the envelope sender (MAIL FROM) on the bounce domain, b+ACCOUNT.TOKEN@bounce domain"),
                ("senderauth-signed-as" = String, description = "d=DOMAIN; s=SELECTOR of each signature, comma-separated (RSA first; a domain with Ed25519 keys is signed with both)"),
                ("senderauth-from-rewritten" = String, description = "the new From address, or no"),
            )),
        (status = 413, description = "over the size limit (message_too_big)", body = super::ErrorBody),
        (status = 422, description = "not a message the gateway takes: no_from, several_from_headers, several_from_addresses, bad_from, bare_line_feed, bare_carriage_return, line_too_long, nul_byte, eight_bit_header, malformed_header, undeclared_eight_bit", body = super::ErrorBody),
        (status = 503, description = "the signing key could not be read now; try again", body = super::ErrorBody),
        (status = 403, description = "an admin token: only an account sends", body = super::ErrorBody),
        (status = 401, description = "no valid token", body = super::ErrorBody),
    ))]
pub(super) async fn prepare(
    State(state): State<WebState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let account = caller.account()?;
    let gateway = &state.gateway;
    let arrival = Arrival { eight_bit: true, size_limit: gateway.size_limit, lines_checked: false };
    let prepared = prepare_message(gateway, account, &body, arrival, state.service.now()).await.map_err(|error| {
        let status = match error {
            MailError::Temporary(_) => StatusCode::SERVICE_UNAVAILABLE,
            MailError::TooBig { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    })?;
    let signed_as = prepared
        .selectors
        .iter()
        .map(|selector| format!("d={}; s={selector}", prepared.signed_as))
        .collect::<Vec<_>>()
        .join(", ");
    let headers = [
        (header::CONTENT_TYPE, "message/rfc822".to_string()),
        (HeaderName::from_static("senderauth-envelope-from"), prepared.envelope_from.clone()),
        (HeaderName::from_static("senderauth-signed-as"), signed_as),
        (
            HeaderName::from_static("senderauth-from-rewritten"),
            prepared.rewritten_from.clone().unwrap_or_else(|| "no".to_string()),
        ),
    ];
    Ok((headers, prepared.message).into_response())
}
