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
    ReturnPath,
}

macro_rules! problem_codes {
    ($($variant:ident => $code:literal, $summary:literal),* $(,)?) => {
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

            /// The problem in a few plain words, for a customer's page (the code is for programs).
            pub fn summary(self) -> &'static str {
                match self { $(ProblemCode::$variant => $summary),* }
            }

            /// The code of `text`, if it is one.
            pub fn parse(text: &str) -> Option<ProblemCode> {
                match text { $($code => Some(ProblemCode::$variant),)* _ => None }
            }
        }
    };
}

problem_codes! {
    DomainNxdomain => "domain_nxdomain", "the domain has no DNS records",
    DnsTemporaryFailure => "dns_temporary_failure", "DNS did not answer in time",
    DkimSelectorMissing => "dkim_selector_missing", "a DKIM record is missing",
    DkimWrongTarget => "dkim_wrong_target", "a DKIM record points to the wrong place",
    DkimKeyMissing => "dkim_key_missing", "no DKIM key behind a record",
    DkimKeyInvalid => "dkim_key_invalid", "a DKIM key is broken",
    DkimFlattened => "dkim_flattened", "a DKIM record is a copy, not a CNAME",
    DkimFlattenedKeyMismatch => "dkim_flattened_key_mismatch", "a DKIM record holds an old key",
    DkimKeyNotCurrent => "dkim_key_not_current", "a DKIM key is not the current one",
    DkimHostDoubled => "dkim_host_doubled", "a DKIM record's Host has the domain twice",
    DkimWrongType => "dkim_wrong_type", "a DKIM record has the wrong type",
    DkimProxied => "dkim_proxied", "a DKIM record is proxied",
    SpfMissing => "spf_missing", "the SPF record is missing",
    SpfHostDoubled => "spf_host_doubled", "the SPF record's Host has the domain twice",
    SpfMultipleRecords => "spf_multiple_records", "there are two SPF records",
    SpfSyntaxError => "spf_syntax_error", "the SPF record has an error",
    SpfIncludeMissing => "spf_include_missing", "the SPF record does not include the platform",
    SpfIncludeOfAnotherAccount => "spf_include_of_another_account", "the SPF record includes another account",
    SpfIncludeTargetMissing => "spf_include_target_missing", "an SPF include leads nowhere",
    SpfSendingIpNotAuthorized => "spf_sending_ip_not_authorized", "the platform's servers are not authorized",
    SpfTooManyLookups => "spf_too_many_lookups", "the SPF record needs too many lookups",
    SpfTooManyVoidLookups => "spf_too_many_void_lookups", "the SPF record has too many empty lookups",
    SpfLoop => "spf_loop", "the SPF record includes itself",
    SpfPassAll => "spf_pass_all", "the SPF record lets anyone send",
    SpfNeutralAll => "spf_neutral_all", "the SPF record ends in ?all",
    SpfNoAll => "spf_no_all", "the SPF record has no all",
    SpfPtrMechanism => "spf_ptr_mechanism", "the SPF record uses ptr",
    DmarcMissing => "dmarc_missing", "the DMARC record is missing",
    DmarcWrongName => "dmarc_wrong_name", "the DMARC record is at the wrong name",
    DmarcMultipleRecords => "dmarc_multiple_records", "there are two DMARC records",
    DmarcSyntaxError => "dmarc_syntax_error", "the DMARC record has an error",
    DmarcInherited => "dmarc_inherited", "DMARC comes from the root domain",
    DmarcPolicyNone => "dmarc_policy_none", "DMARC only monitors (p=none)",
    DmarcReportDestinationUnauthorized => "dmarc_report_destination_unauthorized", "a DMARC report address is not authorized",
    DmarcReportsNotReceived => "dmarc_reports_not_received", "the platform does not receive the DMARC reports",
    DmarcTreeWalkDiffers => "dmarc_tree_walk_differs", "newer receivers find another DMARC record",
    ReturnPathMissing => "return_path_missing", "the return-path CNAME is missing",
    ReturnPathWrongTarget => "return_path_wrong_target", "the return-path CNAME points elsewhere",
    ReturnPathFlattened => "return_path_flattened", "the return-path is a copy, not a CNAME",
    ReturnPathConflict => "return_path_conflict", "other records sit at the return-path host",
    ReturnPathStrictAlignment => "return_path_strict_alignment", "strict SPF alignment cannot use the return-path",
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
    /// The record's name (fully qualified) when the problem is about one of several records of
    /// its method (a DKIM selector), so that a page can show it in that record's row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Problem {
    pub fn new(
        code: ProblemCode,
        severity: Severity,
        method: Method,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem { code, severity, method, message: message.into(), fix: fix.into(), host: None }
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

    /// The problems pushed onto `problems` from `from` on are about the record at `host`.
    pub fn locate(problems: &mut [Problem], from: usize, host: &str) {
        for problem in problems.iter_mut().skip(from) {
            problem.host = Some(host.to_string());
        }
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
