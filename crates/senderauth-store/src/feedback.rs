//! Failure reports (redacted, kept 7 days), SMTP TLS reports (kept as received, once), and the
//! reverse DNS names of report sources.

use sqlx::Row;

use crate::{Store, StoreError, database};

/// A failure report as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRecord {
    pub id: i64,
    pub reported_domain: String,
    pub source_ip: Option<String>,
    pub auth_failure: Option<String>,
    pub received_at: i64,
    /// What the report said, its addresses redacted (JSON).
    pub detail_json: String,
}

/// A TLS report to store.
#[derive(Clone, Debug)]
pub struct TlsRecord {
    pub organization: String,
    pub report_id: String,
    pub start: String,
    pub end: String,
    pub policy_domains: Vec<String>,
    pub successful_sessions: i64,
    pub failed_sessions: i64,
    pub json_gzip: Vec<u8>,
}

impl Store {
    /// Stores a failure report; returns its id.
    pub async fn add_failure_report(
        &self,
        reported_domain: &str,
        source_ip: Option<&str>,
        auth_failure: Option<&str>,
        detail_json: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(self.sql(
            "INSERT INTO dmarc_failure_reports (reported_domain, source_ip, auth_failure, received_at, detail_json) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(reported_domain.to_string())
        .bind(source_ip.map(str::to_string))
        .bind(auth_failure.map(str::to_string))
        .bind(now)
        .bind(detail_json.to_string())
        .fetch_one(&self.writer)
        .await
        .map_err(database("storing a failure report"))?;
        Ok(row.get(0))
    }

    /// The failure reports about `domain`, newest first, at most `limit`.
    pub async fn failure_reports(&self, domain: &str, limit: i64) -> Result<Vec<FailureRecord>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, reported_domain, source_ip, auth_failure, received_at, detail_json FROM dmarc_failure_reports \
             WHERE reported_domain = ? ORDER BY id DESC LIMIT ?",
        ))
        .bind(domain.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading failure reports"))?;
        Ok(rows
            .iter()
            .map(|row| FailureRecord {
                id: row.get(0),
                reported_domain: row.get(1),
                source_ip: row.get(2),
                auth_failure: row.get(3),
                received_at: row.get(4),
                detail_json: row.get(5),
            })
            .collect())
    }

    /// Deletes the failure reports received before `before`; returns how many.
    pub async fn expire_failure_reports(&self, before: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(self.sql("DELETE FROM dmarc_failure_reports WHERE received_at < ?"))
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(database("deleting old failure reports"))?;
        Ok(result.rows_affected())
    }

    /// Stores a TLS report, or counts a copy of one stored: `(id, duplicate)`.
    pub async fn add_tls_report(&self, report: &TlsRecord, now: i64) -> Result<(i64, bool), StoreError> {
        let mut transaction = self.begin_write().await?;
        let existing = sqlx::query(self.sql(
            "UPDATE tls_reports SET duplicates = duplicates + 1 WHERE organization = ? AND report_id = ? RETURNING id",
        ))
        .bind(report.organization.clone())
        .bind(report.report_id.clone())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(database("counting a copy of a TLS report"))?;
        let stored = match existing {
            Some(row) => (row.get(0), true),
            None => {
                let row = sqlx::query(self.sql(
                    "INSERT INTO tls_reports (organization, report_id, start_text, end_text, policy_domains, \
                     successful_sessions, failed_sessions, received_at, json_gzip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     RETURNING id",
                ))
                .bind(report.organization.clone())
                .bind(report.report_id.clone())
                .bind(report.start.clone())
                .bind(report.end.clone())
                .bind(report.policy_domains.join(" "))
                .bind(report.successful_sessions)
                .bind(report.failed_sessions)
                .bind(now)
                .bind(report.json_gzip.clone())
                .fetch_one(&mut *transaction)
                .await
                .map_err(database("storing a TLS report"))?;
                (row.get(0), false)
            }
        };
        transaction.commit().await.map_err(database("committing"))?;
        Ok(stored)
    }

    /// Queues report sources for a reverse DNS lookup (those already known are left alone).
    pub async fn queue_source_names(&self, sources: &[String]) -> Result<(), StoreError> {
        for chunk in sources.chunks(100) {
            let values = vec!["(?, 'pending')"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.sql(format!(
                "INSERT INTO source_names (source_ip, status) VALUES {values} ON CONFLICT (source_ip) DO NOTHING"
            )));
            for source in chunk {
                query = query.bind(source.clone());
            }
            query.execute(&self.writer).await.map_err(database("queueing source names"))?;
        }
        Ok(())
    }

    /// Sources whose name is due: queued, failed before `retry_before`, or resolved before
    /// `refresh_before`; at most `limit`.
    pub async fn due_source_names(
        &self,
        retry_before: i64,
        refresh_before: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT source_ip FROM source_names WHERE status = 'pending' \
             OR (status = 'failed' AND resolved_at < ?) OR (status <> 'failed' AND resolved_at < ?) LIMIT ?",
        ))
        .bind(retry_before)
        .bind(refresh_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading due source names"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Records a source's name lookup: `status` `confirmed`, `unconfirmed`, `none` or `failed`.
    pub async fn set_source_name(
        &self,
        source_ip: &str,
        name: Option<&str>,
        status: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql("UPDATE source_names SET name = ?, status = ?, resolved_at = ? WHERE source_ip = ?"))
            .bind(name.map(str::to_string))
            .bind(status.to_string())
            .bind(now)
            .bind(source_ip.to_string())
            .execute(&self.writer)
            .await
            .map_err(database("recording a source name"))?;
        Ok(())
    }
}
