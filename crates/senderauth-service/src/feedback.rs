//! The report address's other mail: failure reports (kept redacted for `FAILURE_DAYS` days, shown
//! to the accounts whose domain they are about, with DKIM verified) and SMTP TLS reports (kept as
//! received, for the operator). What is neither goes on to the aggregate report reader.

use senderauth_reports::{OtherReport, recognize};
use senderauth_store::TlsRecord;
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::ReportOutcome;
use crate::reports::{DAY, Ingested, ReportSource};
use crate::{Service, ServiceError};

/// How long a failure report is kept.
pub const FAILURE_DAYS: i64 = 7;

/// What a message sent to the report address was.
#[derive(Clone, Debug)]
pub enum Taken {
    Aggregate(Ingested),
    /// A failure report, stored under this id, about this domain.
    Failure {
        id: i64,
        domain: String,
    },
    /// A TLS report, stored under this id (the one stored before, for a copy).
    Tls {
        id: i64,
        duplicate: bool,
    },
}

/// A failure report as shown: what failed, from where, and the failed message's authentication
/// header fields, every address's local part redacted.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FailureView {
    pub id: i64,
    pub received_at: i64,
    pub source_ip: Option<String>,
    /// `dmarc`, `dkim` or `spf`.
    pub auth_failure: Option<String>,
    /// The report as read (redacted): feedback type, arrival date, DKIM domain and selector,
    /// Authentication-Results, the failed message's header fields.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl Service {
    /// Takes a message sent to the report address: a failure or TLS report is stored as such,
    /// anything else is read for aggregate reports ([`Service::ingest_reports`]).
    pub async fn take_report_message(&self, message: Vec<u8>, source: ReportSource) -> Result<Taken, ServiceError> {
        let (message, other) = tokio::task::spawn_blocking(move || {
            let other = recognize(&message);
            (message, other)
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("the report reader failed: {error}")))?;
        let now = self.now();
        let store = &self.worker.store;
        let metrics = &self.worker.metrics;
        match other {
            Some(OtherReport::Failure(report)) => {
                let domain = report.reported_domain.clone().unwrap_or_default();
                let detail = serde_json::to_string(&report).unwrap_or_default();
                let source_ip = report.source_ip.map(|ip| ip.to_string());
                let id = store
                    .add_failure_report(&domain, source_ip.as_deref(), report.auth_failure.as_deref(), &detail, now)
                    .await?;
                metrics.record_report(ReportOutcome::FailureReport);
                Ok(Taken::Failure { id, domain })
            }
            Some(OtherReport::Tls(report)) => {
                let record = TlsRecord {
                    organization: report.organization,
                    report_id: report.report_id,
                    start: report.start,
                    end: report.end,
                    policy_domains: report.policy_domains,
                    successful_sessions: report.successful_sessions,
                    failed_sessions: report.failed_sessions,
                    json_gzip: report.json_gzip,
                };
                let (id, duplicate) = store.add_tls_report(&record, now).await?;
                metrics.record_report(ReportOutcome::TlsReport);
                Ok(Taken::Tls { id, duplicate })
            }
            None => Ok(Taken::Aggregate(self.ingest_reports(message, source, None).await?)),
        }
    }

    /// The failure reports about one of the account's domains (DKIM verified), newest first.
    pub async fn failure_reports(
        &self,
        account: i64,
        domain: &str,
        limit: i64,
    ) -> Result<Vec<FailureView>, ServiceError> {
        let (name, verified) = self.verified_domain(account, domain).await?;
        if !verified {
            return Ok(Vec::new());
        }
        Ok(self
            .worker
            .store
            .failure_reports(&name, limit.clamp(1, 1000))
            .await?
            .into_iter()
            .map(|record| FailureView {
                id: record.id,
                received_at: record.received_at,
                source_ip: record.source_ip,
                auth_failure: record.auth_failure,
                detail: serde_json::from_str(&record.detail_json).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    /// Deletes the failure reports older than `FAILURE_DAYS`; returns how many.
    pub async fn expire_failure_reports(&self) -> Result<u64, ServiceError> {
        Ok(self.worker.store.expire_failure_reports(self.now() - FAILURE_DAYS * DAY).await?)
    }
}
