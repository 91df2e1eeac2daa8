//! The outcome of a check, per method and for the whole domain.

use serde::{Deserialize, Serialize};

/// The outcome of checking one method (DKIM, SPF or DMARC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MethodStatus {
    Verified,
    NotVerified,
    /// DNS could not answer (timeout, SERVFAIL, REFUSED): neither verified nor missing.
    Unknown,
}

impl MethodStatus {
    /// The name stored and shown: `verified`, `not_verified`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodStatus::Verified => "verified",
            MethodStatus::NotVerified => "not_verified",
            MethodStatus::Unknown => "unknown",
        }
    }

    /// The status named `text` ([`MethodStatus::as_str`]); `None` for any other text.
    pub fn parse(text: &str) -> Option<MethodStatus> {
        [MethodStatus::Verified, MethodStatus::NotVerified, MethodStatus::Unknown]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// The domain's status, as the reference product shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    /// DKIM, SPF and DMARC all verified.
    Verified,
    /// DKIM verified; SPF or DMARC not yet.
    PartiallyVerified,
    NotVerified,
    /// A temporary DNS failure hides which of the others it is.
    Unknown,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Verified => "verified",
            DomainStatus::PartiallyVerified => "partially_verified",
            DomainStatus::NotVerified => "not_verified",
            DomainStatus::Unknown => "unknown",
        }
    }

    /// The reference's rule: verified when all three are; partially verified when DKIM is;
    /// otherwise not verified. An `unknown` method makes the domain `unknown` only when its
    /// answer could change the domain's status.
    pub fn from_methods(dkim: MethodStatus, spf: MethodStatus, dmarc: MethodStatus) -> DomainStatus {
        let resolve = |assume_verified: bool| {
            let verified = |status: MethodStatus| match status {
                MethodStatus::Verified => true,
                MethodStatus::NotVerified => false,
                MethodStatus::Unknown => assume_verified,
            };
            if verified(dkim) && verified(spf) && verified(dmarc) {
                DomainStatus::Verified
            } else if verified(dkim) {
                DomainStatus::PartiallyVerified
            } else {
                DomainStatus::NotVerified
            }
        };
        let best = resolve(true);
        if best == resolve(false) { best } else { DomainStatus::Unknown }
    }
}

#[cfg(test)]
mod tests {
    use super::MethodStatus::{NotVerified as N, Unknown as U, Verified as V};
    use super::*;

    #[test]
    fn domain_status_follows_the_reference() {
        let cases = [
            ((V, V, V), DomainStatus::Verified),
            ((V, N, V), DomainStatus::PartiallyVerified),
            ((V, V, N), DomainStatus::PartiallyVerified),
            ((N, V, V), DomainStatus::NotVerified),
            ((N, N, N), DomainStatus::NotVerified),
            ((N, U, U), DomainStatus::NotVerified),
            ((V, N, U), DomainStatus::PartiallyVerified),
            ((V, V, U), DomainStatus::Unknown),
            ((U, N, N), DomainStatus::Unknown),
        ];
        for ((dkim, spf, dmarc), expected) in cases {
            assert_eq!(DomainStatus::from_methods(dkim, spf, dmarc), expected, "{dkim:?} {spf:?} {dmarc:?}");
        }
    }
}
