//! The service's metrics, served at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use senderauth_core::status::DomainStatus;

use crate::coverage::DmarcEvent;

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
    /// Reports taken in, by outcome (in `ReportOutcome::ALL`'s order).
    reports: [AtomicU64; 5],
    /// Messages the stored reports count, by class (in `SourceClass::ALL`'s order).
    report_messages: [AtomicU64; 5],
    /// DMARC events recorded (in `DmarcEvent::ALL`'s order).
    dmarc_events: [AtomicU64; 3],
    /// Bounce messages taken in: read, unreadable (kept).
    bounces: [AtomicU64; 2],
    /// Recipients they report: hard, soft.
    bounced_recipients: [AtomicU64; 2],
}

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

impl ReportOutcome {
    const ALL: [ReportOutcome; 5] = [
        ReportOutcome::Stored,
        ReportOutcome::Duplicate,
        ReportOutcome::Refused,
        ReportOutcome::FailureReport,
        ReportOutcome::TlsReport,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ReportOutcome::Stored => "stored",
            ReportOutcome::Duplicate => "duplicate",
            ReportOutcome::Refused => "refused",
            ReportOutcome::FailureReport => "failure_report",
            ReportOutcome::TlsReport => "tls_report",
        }
    }
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
        if let Some(index) = ReportOutcome::ALL.iter().position(|known| *known == outcome) {
            self.reports[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts DMARC events recorded (one per domain they were recorded for).
    pub fn record_dmarc_events(&self, event: DmarcEvent, count: usize) {
        if let Some(index) = DmarcEvent::ALL.iter().position(|known| *known == event) {
            self.dmarc_events[index].fetch_add(count as u64, Ordering::Relaxed);
        }
    }

    /// Counts a bounce taken in, and the recipients it reports by kind.
    pub fn record_bounce(&self, taken: &crate::bounces::TakenBounce) {
        match taken {
            crate::bounces::TakenBounce::Read { recipients, hard } => {
                self.bounces[0].fetch_add(1, Ordering::Relaxed);
                self.bounced_recipients[0].fetch_add(*hard as u64, Ordering::Relaxed);
                self.bounced_recipients[1].fetch_add(recipients.saturating_sub(*hard) as u64, Ordering::Relaxed);
            }
            crate::bounces::TakenBounce::Unreadable { .. } => {
                self.bounces[1].fetch_add(1, Ordering::Relaxed);
            }
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
        counter_family(
            &mut text,
            "senderauth_checks_total",
            "Domain checks run, by outcome.",
            "outcome",
            OUTCOMES.iter().map(|(_, name)| *name).zip(&self.checks),
        );
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
        counter_family(
            &mut text,
            "senderauth_dmarc_reports_total",
            "Reports handed in, by outcome (aggregate reports stored, copies, refused; failure and TLS reports).",
            "outcome",
            ReportOutcome::ALL.iter().map(|outcome| outcome.as_str()).zip(&self.reports),
        );
        counter_family(
            &mut text,
            "senderauth_dmarc_messages_total",
            "Messages the stored reports count, by class.",
            "class",
            senderauth_reports::SourceClass::ALL.iter().map(|class| class.as_str()).zip(&self.report_messages),
        );
        counter_family(
            &mut text,
            "senderauth_dmarc_events_total",
            "DMARC events recorded for connected domains, by event.",
            "event",
            DmarcEvent::ALL.iter().map(|event| event.as_str()).zip(&self.dmarc_events),
        );
        counter_family(
            &mut text,
            "senderauth_bounces_total",
            "Bounce messages taken in, by result (read; unreadable, kept as received).",
            "result",
            ["read", "unreadable"].into_iter().zip(&self.bounces),
        );
        counter_family(
            &mut text,
            "senderauth_bounced_recipients_total",
            "Recipients the bounces report, by kind (hard: permanent; soft: delayed or temporary).",
            "kind",
            ["hard", "soft"].into_iter().zip(&self.bounced_recipients),
        );
        counter_family(
            &mut text,
            "senderauth_webhook_deliveries_total",
            "Webhook delivery attempts, by result.",
            "result",
            ["delivered", "failed"].into_iter().zip(&self.deliveries),
        );
        text.push_str("# HELP senderauth_queue_lag_seconds How long the longest-waiting due domain has waited.\n");
        text.push_str("# TYPE senderauth_queue_lag_seconds gauge\n");
        let _ = writeln!(text, "senderauth_queue_lag_seconds {queue_lag_seconds}");
        text
    }
}

/// One counter family in the text format: its HELP and TYPE lines and a sample per label value.
fn counter_family<'a>(
    text: &mut String,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, &'a AtomicU64)>,
) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} counter");
    for (value, count) in samples {
        let _ = writeln!(text, "{name}{{{label}=\"{value}\"}} {}", count.load(Ordering::Relaxed));
    }
}
