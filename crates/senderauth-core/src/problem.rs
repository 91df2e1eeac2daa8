//! Problems a check finds: a stable code, a severity, what was found against what was expected,
//! and the fix.

use serde::{Deserialize, Serialize};

/// How much a problem matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// Which method a problem belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Domain,
    Dkim,
    Spf,
    Dmarc,
}

macro_rules! problem_codes {
    ($($variant:ident => $code:literal),* $(,)?) => {
        /// A stable identifier for a kind of problem; the string form never changes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode { $($variant),* }

        impl ProblemCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(ProblemCode::$variant => $code),* }
            }
        }
    };
}

problem_codes! {
    DomainNxdomain => "domain_nxdomain",
    DnsTemporaryFailure => "dns_temporary_failure",
    DkimSelectorMissing => "dkim_selector_missing",
    DkimWrongTarget => "dkim_wrong_target",
    DkimKeyMissing => "dkim_key_missing",
    DkimKeyInvalid => "dkim_key_invalid",
    DkimFlattened => "dkim_flattened",
    DkimFlattenedKeyMismatch => "dkim_flattened_key_mismatch",
    DkimKeyNotCurrent => "dkim_key_not_current",
    DkimHostDoubled => "dkim_host_doubled",
    DkimWrongType => "dkim_wrong_type",
    SpfMissing => "spf_missing",
    SpfHostDoubled => "spf_host_doubled",
    SpfMultipleRecords => "spf_multiple_records",
    SpfSyntaxError => "spf_syntax_error",
    SpfIncludeMissing => "spf_include_missing",
    SpfIncludeOfAnotherAccount => "spf_include_of_another_account",
    SpfIncludeTargetMissing => "spf_include_target_missing",
    SpfSendingIpNotAuthorized => "spf_sending_ip_not_authorized",
    SpfTooManyLookups => "spf_too_many_lookups",
    SpfTooManyVoidLookups => "spf_too_many_void_lookups",
    SpfLoop => "spf_loop",
    SpfPassAll => "spf_pass_all",
    SpfNeutralAll => "spf_neutral_all",
    SpfNoAll => "spf_no_all",
    SpfPtrMechanism => "spf_ptr_mechanism",
    DmarcMissing => "dmarc_missing",
    DmarcWrongName => "dmarc_wrong_name",
    DmarcMultipleRecords => "dmarc_multiple_records",
    DmarcSyntaxError => "dmarc_syntax_error",
    DmarcInherited => "dmarc_inherited",
    DmarcPolicyNone => "dmarc_policy_none",
    DmarcReportDestinationUnauthorized => "dmarc_report_destination_unauthorized",
    DmarcTreeWalkDiffers => "dmarc_tree_walk_differs",
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One thing wrong (or worth knowing) about a domain's setup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: ProblemCode,
    pub severity: Severity,
    pub method: Method,
    /// One line: what was found, against what was expected.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    pub fn new(
        code: ProblemCode,
        severity: Severity,
        method: Method,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem { code, severity, method, message: message.into(), fix: fix.into() }
    }

    pub fn error(code: ProblemCode, method: Method, message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem::new(code, Severity::Error, method, message, fix)
    }

    pub fn warning(code: ProblemCode, method: Method, message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem::new(code, Severity::Warning, method, message, fix)
    }

    pub fn info(code: ProblemCode, method: Method, message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem::new(code, Severity::Info, method, message, fix)
    }

    /// A DNS answer that could not be had; the check is `unknown`, not failed.
    pub fn temporary(method: Method, failure: &crate::dns::TemporaryFailure) -> Problem {
        Problem::warning(
            ProblemCode::DnsTemporaryFailure,
            method,
            format!("could not look up {} {}: {}", failure.record_type, failure.name, failure.reason),
            "This is usually passing; the check will be repeated. If it persists, check that the domain's nameservers answer.",
        )
    }
}
