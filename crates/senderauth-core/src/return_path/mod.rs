//! The return-path: a host under the customer's domain (`rp.<domain>`) that the gateway uses as
//! the envelope sender, so that SPF passes for a name aligned with the From domain (RFC 7489
//! section 3.1.2: relaxed alignment is the same organizational domain). The customer adds one
//! CNAME to a name in the platform's zone, where the platform's DNS serves an SPF record of its
//! sending addresses and an MX to its bounce hosts (RFC 5321 section 5.1: the MX is found
//! through the CNAME).

pub mod verify;

use serde::{Deserialize, Serialize};

/// What the gateway does with mail signed as a domain whose return-path is not in use (the
/// CNAME missing, or lost): an account's choice, as Amazon SES's "behavior on MX failure".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Send it with the platform's bounce domain as the envelope sender: DKIM alone carries
    /// DMARC (SES's "use default MAIL FROM").
    #[default]
    BounceDomain,
    /// Refuse it with a 5xx that says why (SES's "reject message").
    Reject,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::BounceDomain => "bounce_domain",
            Fallback::Reject => "reject",
        }
    }

    pub fn parse(text: &str) -> Option<Fallback> {
        [Fallback::BounceDomain, Fallback::Reject].into_iter().find(|fallback| fallback.as_str() == text)
    }
}

pub use verify::{ReturnPathCheck, ReturnPathExpectation, strict_alignment_problem, verify_return_path};
