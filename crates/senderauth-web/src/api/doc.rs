//! The API's OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the types they take and return (the service's views derive their schemas), so it cannot drift
//! from what the server does. Served at `/api/v1/openapi.json`.

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, bounces, dmarc, domains, messages, ops, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "senderauth",
        description = "Email sending-domain authentication: connect a customer's From domain, get the DKIM, SPF and DMARC records to add, and follow its verification. Every route except the health, metrics and this document needs `Authorization: Bearer <token>`: an admin token for account and reserved-domain management, an account token for the account's domains."
    ),
    servers((url = "/", description = "this server")),
    paths(
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        accounts::create_account,
        accounts::own_account,
        accounts::change_account,
        accounts::list_reserved,
        accounts::reserve_domain,
        accounts::unreserve_domain,
        accounts::list_tokens,
        accounts::create_token,
        accounts::revoke_token,
        domains::connect,
        domains::list,
        domains::detail,
        domains::remove,
        domains::verify_now,
        domains::records,
        domains::keys,
        domains::rotate,
        webhooks::list,
        webhooks::create,
        webhooks::remove,
        webhooks::deliveries,
        messages::prepare,
        bounces::domain_bounces,
        bounces::message_fate,
        dmarc::hand_in,
        dmarc::summary,
        dmarc::sources,
        dmarc::reports,
        dmarc::failures,
        dmarc::report,
        dmarc::report_xml,
    ),
    modifiers(&Security),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The bearer scheme every authenticated operation names, and public operations without any.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description =
            Some("A token from POST /api/v1/accounts or /api/v1/tokens (sa_...), or the admin token.".to_string());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        // `security(())` on a public operation comes out as one empty requirement; no
        // requirement at all says the same more plainly.
        for item in openapi.paths.paths.values_mut() {
            for operation in
                [&mut item.get, &mut item.post, &mut item.delete, &mut item.put, &mut item.patch].into_iter().flatten()
            {
                if let Some(security) = &mut operation.security
                    && security.iter().all(|requirement| *requirement == Default::default())
                {
                    security.clear();
                }
            }
        }
    }
}

/// The document as JSON, made once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi().to_pretty_json().unwrap_or_else(|error| {
            tracing::error!(%error, "writing the OpenAPI document");
            "{}".to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_with_the_bearer_scheme() {
        let parsed: serde_json::Value = serde_json::from_str(document()).expect("JSON");
        assert_eq!(parsed["openapi"], "3.1.0");
        assert_eq!(parsed["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(parsed["paths"]["/healthz"]["get"]["security"], serde_json::json!([]));
        assert_eq!(parsed["security"], serde_json::json!([{ "bearer": [] }]));
    }
}
