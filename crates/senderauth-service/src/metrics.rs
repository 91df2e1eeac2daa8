//! The service's metrics, served at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use senderauth_core::status::DomainStatus;

/// Upper bounds of the check-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 8] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters the worker updates as it checks.
#[derive(Default)]
pub struct Metrics {
    checks: [AtomicU64; 4],
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_count: AtomicU64,
    duration_micros: AtomicU64,
    deliveries: [AtomicU64; 2],
    /// DMARC reports taken in: stored, copies of stored ones, refused.
    reports: [AtomicU64; 5],
    /// Messages the stored reports count, by class (in `SourceClass::ALL`'s order).
    report_messages: [AtomicU64; 5],
    dmarc_events: [AtomicU64; 3],
}

/// The DMARC events, as counted.
pub const DMARC_EVENTS: [&str; 3] = ["dmarc.platform_failing", "dmarc.new_source", "dmarc.reports_missing"];

/// What became of a DMARC report handed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    Stored,
    Duplicate,
    Refused,
    /// A failure report (kept redacted for 7 days).
    FailureReport,
    /// An SMTP TLS report.
    TlsReport,
}

const OUTCOMES: [(DomainStatus, &str); 4] = [
    (DomainStatus::Verified, "verified"),
    (DomainStatus::PartiallyVerified, "partially_verified"),
    (DomainStatus::NotVerified, "not_verified"),
    (DomainStatus::Unknown, "unknown"),
];

impl Metrics {
    /// Counts one check with its outcome and how long it took.
    pub fn record_check(&self, outcome: DomainStatus, duration: Duration) {
        if let Some(index) = OUTCOMES.iter().position(|(status, _)| *status == outcome) {
            self.checks[index].fetch_add(1, Ordering::Relaxed);
        }
        let seconds = duration.as_secs_f64();
        for (bucket, bound) in self.duration_buckets.iter().zip(DURATION_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_micros.fetch_add(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one webhook delivery attempt.
    pub fn record_delivery(&self, success: bool) {
        self.deliveries[usize::from(!success)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one DMARC report handed in.
    pub fn record_report(&self, outcome: ReportOutcome) {
        let index = match outcome {
            ReportOutcome::Stored => 0,
            ReportOutcome::Duplicate => 1,
            ReportOutcome::Refused => 2,
            ReportOutcome::FailureReport => 3,
            ReportOutcome::TlsReport => 4,
        };
        self.reports[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts DMARC events recorded (one per domain they were recorded for).
    pub fn record_dmarc_events(&self, event: &str, count: usize) {
        if let Some(index) = DMARC_EVENTS.iter().position(|known| *known == event) {
            self.dmarc_events[index].fetch_add(count as u64, Ordering::Relaxed);
        }
    }

    /// Counts the messages of a stored report's rows of one class.
    pub fn record_report_messages(&self, class: senderauth_reports::SourceClass, messages: u64) {
        if let Some(index) = senderauth_reports::SourceClass::ALL.iter().position(|known| *known == class) {
            self.report_messages[index].fetch_add(messages, Ordering::Relaxed);
        }
    }

    /// The metrics as Prometheus text, with the store's current domain counts and queue lag.
    pub fn render(&self, domains_per_status: &[(String, i64)], queue_lag_seconds: i64) -> String {
        let mut text = String::new();
        text.push_str("# HELP senderauth_checks_total Domain checks run, by outcome.\n");
        text.push_str("# TYPE senderauth_checks_total counter\n");
        for ((_, name), count) in OUTCOMES.iter().zip(&self.checks) {
            let _ = writeln!(text, "senderauth_checks_total{{outcome=\"{name}\"}} {}", count.load(Ordering::Relaxed));
        }
        text.push_str("# HELP senderauth_check_duration_seconds How long one domain check took.\n");
        text.push_str("# TYPE senderauth_check_duration_seconds histogram\n");
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            let _ = writeln!(
                text,
                "senderauth_check_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let _ = writeln!(text, "senderauth_check_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.duration_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(text, "senderauth_check_duration_seconds_sum {sum}");
        let _ = writeln!(text, "senderauth_check_duration_seconds_count {count}");
        text.push_str("# HELP senderauth_domains Connected domains, by status.\n");
        text.push_str("# TYPE senderauth_domains gauge\n");
        for (status, count) in domains_per_status {
            let _ = writeln!(text, "senderauth_domains{{status=\"{status}\"}} {count}");
        }
        text.push_str("# HELP senderauth_dmarc_reports_total Reports handed in, by outcome (aggregate reports stored, copies, refused; failure and TLS reports).\n");
        text.push_str("# TYPE senderauth_dmarc_reports_total counter\n");
        let outcomes = ["stored", "duplicate", "refused", "failure_report", "tls_report"];
        for (outcome, count) in outcomes.iter().zip(&self.reports) {
            let _ = writeln!(
                text,
                "senderauth_dmarc_reports_total{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        text.push_str("# HELP senderauth_dmarc_messages_total Messages the stored reports count, by class.\n");
        text.push_str("# TYPE senderauth_dmarc_messages_total counter\n");
        for (class, count) in senderauth_reports::SourceClass::ALL.iter().zip(&self.report_messages) {
            let _ = writeln!(
                text,
                "senderauth_dmarc_messages_total{{class=\"{}\"}} {}",
                class.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        text.push_str("# HELP senderauth_dmarc_events_total DMARC events recorded for connected domains, by event.\n");
        text.push_str("# TYPE senderauth_dmarc_events_total counter\n");
        for (event, count) in DMARC_EVENTS.iter().zip(&self.dmarc_events) {
            let _ =
                writeln!(text, "senderauth_dmarc_events_total{{event=\"{event}\"}} {}", count.load(Ordering::Relaxed));
        }
        text.push_str("# HELP senderauth_webhook_deliveries_total Webhook delivery attempts, by result.\n");
        text.push_str("# TYPE senderauth_webhook_deliveries_total counter\n");
        for (result, count) in ["delivered", "failed"].iter().zip(&self.deliveries) {
            let _ = writeln!(
                text,
                "senderauth_webhook_deliveries_total{{result=\"{result}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        text.push_str("# HELP senderauth_queue_lag_seconds How long the longest-waiting due domain has waited.\n");
        text.push_str("# TYPE senderauth_queue_lag_seconds gauge\n");
        let _ = writeln!(text, "senderauth_queue_lag_seconds {queue_lag_seconds}");
        text
    }
}
