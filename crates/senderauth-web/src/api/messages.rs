//! `POST /api/v1/messages/prepare`: the gateway's treatment of one message, without relaying
//! it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use senderauth_mail::{Arrival, MailError, prepare as prepare_message};

use super::{ApiError, Caller};
use crate::WebState;

/// The message as it would be relayed (signed as its domain, or rewritten to the variable
/// domain and signed as that), with the envelope sender and what was done in response headers.
pub(super) async fn prepare(State(state): State<WebState>, caller: Caller, body: Bytes) -> Result<Response, ApiError> {
    let account = caller.account()?;
    let gateway = &state.gateway;
    let arrival = Arrival { eight_bit: true, size_limit: gateway.size_limit };
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
