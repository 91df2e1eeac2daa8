//! What a use case can refuse or fail with. Each front end maps it once: the API to an HTTP
//! status and `{"code", "message"}`, the UI to a page or a message beside the form, the SMTP
//! gateway to a reply code.

use senderauth_store::StoreError;

/// How a front end should treat an error: which HTTP status class it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is malformed (400).
    BadRequest,
    /// The request is well formed but cannot be done as asked (422).
    Unprocessable,
    /// The thing is not there, or belongs to another account (404).
    NotFound,
    /// It clashes with what exists (409).
    Conflict,
    /// Asked too often (429).
    RateLimited,
    /// A failure inside the service; the details are logged, never shown (500).
    Internal,
}

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("give the account a name of 1 to 200 characters")]
    InvalidAccountName,
    #[error("domain_limit must be 0 or more")]
    InvalidDomainLimit,
    #[error("limit must be 1 to {max}")]
    InvalidPageLimit { max: i64 },
    #[error("give the token a label of 1 to 200 characters")]
    InvalidTokenLabel,
    #[error("a share link lasts 1 to {max} days")]
    InvalidShareDays { max: i64 },
    #[error("{0:?} is not a status: use not_verified, partially_verified, verified, temporary_failure or failed")]
    InvalidStatus(String),
    #[error("{0}")]
    InvalidEmail(String),
    #[error("{0}")]
    InvalidDomain(String),
    #[error("{0}")]
    InvalidDkimAlgorithm(String),
    #[error("{url:?} is not an http:// or https:// URL")]
    InvalidUrl { url: String },
    #[error("{0}")]
    WebhookTargetNotAllowed(String),
    #[error("{0}")]
    DomainReserved(String),
    #[error("{0}")]
    DomainExists(String),
    /// The platform's own domain (its zone, variable domain, bounce domain) or one under it.
    #[error("{0}")]
    PlatformDomain(String),
    /// A mailbox provider's domain (gmail.com, ...): nobody connecting it owns it.
    #[error("{0}")]
    MailboxProvider(String),
    /// A name the domain's keys would be published at is another connected domain's.
    #[error("{0}")]
    KeyNamesTaken(String),
    /// A name the domain's keys would be published at is not a DNS name (too long).
    #[error("{0}")]
    KeyNameUnpublishable(String),
    #[error("{0}")]
    DomainLimitReached(String),
    #[error("no domain {0} in this account")]
    DomainNotFound(String),
    #[error("no message with token {0} was sent from this account")]
    MessageNotFound(String),
    #[error("{0}")]
    InvalidBounceFilter(String),
    #[error("no active token {0} here")]
    TokenNotFound(i64),
    #[error("{0} is not reserved")]
    NotReserved(String),
    #[error("no webhook {0} in this account")]
    WebhookNotFound(i64),
    /// An unknown, expired or revoked share link (one answer for all three).
    #[error("This link has expired or was revoked. Ask whoever sent it for a new one.")]
    ShareLinkNotFound,
    #[error("{domain} was verified {ago}s ago; wait {every}s between requests")]
    RateLimited { domain: String, ago: i64, every: i64 },
    #[error("{0}")]
    RotationInProgress(String),
    #[error(
        "this domain has no hosted keys to rotate (it was connected before senderauth hosted keys); connect it again"
    )]
    NoHostedKeys,
    #[error("{0}")]
    NoEd25519Keys(String),
    /// Generating DKIM keys failed; the cause is logged.
    #[error("the DKIM keys could not be made; try again")]
    KeyGeneration,
    /// The sandbox DNS host exists only in demo mode.
    #[error("The sandbox DNS host is part of demo mode: start the service with `senderauth serve --demo`.")]
    SandboxOff,
    #[error("You host no zone {0} in the sandbox.")]
    ZoneNotFound(String),
    /// The sandbox zone belongs to another account.
    #[error("{0}")]
    ZoneTaken(String),
    /// A zone the sandbox will not host, or a record it will not take; the message says why.
    #[error("{0}")]
    SandboxRefused(String),
    /// Bytes handed in as a DMARC report that hold none; the message says why.
    #[error("{0}")]
    InvalidReport(String),
    #[error("no report {0} about this domain")]
    ReportNotFound(i64),
    #[error(
        "{0:?} is not a source class; use platform_ok, platform_failing, forwarded_ours, authorized_other or unauthenticated"
    )]
    InvalidSourceClass(String),
    #[error("days must be from 1 to {max}")]
    InvalidReportDays { max: i64 },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A failure inside the service, with its detail for the log.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The stable code the API sends.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::InvalidAccountName => "invalid_name",
            ServiceError::InvalidDomainLimit | ServiceError::InvalidPageLimit { .. } => "invalid_limit",
            ServiceError::InvalidTokenLabel => "invalid_label",
            ServiceError::InvalidShareDays { .. } => "invalid_days",
            ServiceError::InvalidStatus(_) => "invalid_status",
            ServiceError::InvalidEmail(_) => "invalid_email",
            ServiceError::InvalidDomain(_) => "invalid_domain",
            ServiceError::InvalidDkimAlgorithm(_) => "invalid_dkim_algorithm",
            ServiceError::InvalidUrl { .. } => "invalid_url",
            ServiceError::WebhookTargetNotAllowed(_) => "webhook_target_not_allowed",
            ServiceError::DomainReserved(_) => "domain_reserved",
            ServiceError::DomainExists(_) => "domain_exists",
            ServiceError::PlatformDomain(_) => "platform_domain",
            ServiceError::MailboxProvider(_) => "mailbox_provider",
            ServiceError::KeyNamesTaken(_) => "key_names_taken",
            ServiceError::KeyNameUnpublishable(_) => "key_name_unpublishable",
            ServiceError::DomainLimitReached(_) => "domain_limit_reached",
            ServiceError::DomainNotFound(_) => "domain_not_found",
            ServiceError::MessageNotFound(_) => "message_not_found",
            ServiceError::InvalidBounceFilter(_) => "invalid_filter",
            ServiceError::TokenNotFound(_) => "token_not_found",
            ServiceError::NotReserved(_) => "not_reserved",
            ServiceError::WebhookNotFound(_) => "webhook_not_found",
            ServiceError::ShareLinkNotFound => "share_link_not_found",
            ServiceError::RateLimited { .. } => "rate_limited",
            ServiceError::RotationInProgress(_) => "rotation_in_progress",
            ServiceError::NoHostedKeys => "no_hosted_keys",
            ServiceError::NoEd25519Keys(_) => "no_ed25519_keys",
            ServiceError::KeyGeneration => "key_generation_failed",
            ServiceError::SandboxOff | ServiceError::ZoneNotFound(_) => "not_found",
            ServiceError::SandboxRefused(_) => "refused",
            ServiceError::ZoneTaken(_) => "zone_taken",
            ServiceError::InvalidReport(_) => "invalid_report",
            ServiceError::ReportNotFound(_) => "report_not_found",
            ServiceError::InvalidSourceClass(_) => "invalid_class",
            ServiceError::InvalidReportDays { .. } => "invalid_days",
            ServiceError::Store(_) | ServiceError::Internal(_) => "internal_error",
        }
    }

    /// Which status class the error stands for.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::InvalidAccountName
            | ServiceError::InvalidDomainLimit
            | ServiceError::InvalidPageLimit { .. }
            | ServiceError::InvalidTokenLabel
            | ServiceError::InvalidShareDays { .. }
            | ServiceError::InvalidStatus(_)
            | ServiceError::InvalidSourceClass(_)
            | ServiceError::InvalidReportDays { .. }
            | ServiceError::InvalidBounceFilter(_) => ErrorKind::BadRequest,
            ServiceError::InvalidEmail(_)
            | ServiceError::InvalidDomain(_)
            | ServiceError::InvalidDkimAlgorithm(_)
            | ServiceError::InvalidUrl { .. }
            | ServiceError::WebhookTargetNotAllowed(_)
            | ServiceError::DomainReserved(_)
            | ServiceError::PlatformDomain(_)
            | ServiceError::MailboxProvider(_)
            | ServiceError::KeyNameUnpublishable(_)
            | ServiceError::NoEd25519Keys(_)
            | ServiceError::SandboxRefused(_)
            | ServiceError::InvalidReport(_) => ErrorKind::Unprocessable,
            ServiceError::DomainNotFound(_)
            | ServiceError::MessageNotFound(_)
            | ServiceError::TokenNotFound(_)
            | ServiceError::NotReserved(_)
            | ServiceError::WebhookNotFound(_)
            | ServiceError::ShareLinkNotFound
            | ServiceError::SandboxOff
            | ServiceError::ZoneNotFound(_)
            | ServiceError::ReportNotFound(_) => ErrorKind::NotFound,
            ServiceError::DomainExists(_)
            | ServiceError::KeyNamesTaken(_)
            | ServiceError::DomainLimitReached(_)
            | ServiceError::RotationInProgress(_)
            | ServiceError::NoHostedKeys
            | ServiceError::ZoneTaken(_) => ErrorKind::Conflict,
            ServiceError::RateLimited { .. } => ErrorKind::RateLimited,
            ServiceError::KeyGeneration | ServiceError::Store(_) | ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// What a person may be shown: the message, except for failures inside the service, whose
    /// details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            ServiceError::Store(_) | ServiceError::Internal(_) => {
                "the request could not be completed; try again".to_string()
            }
            other => other.to_string(),
        }
    }
}
