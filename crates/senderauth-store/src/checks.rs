//! Checks: claiming due domains with a lease, recording finished checks (the latest result,
//! the schedule, status events and the run-length check log), and reading the log.

use sqlx::Row;

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::status::MethodStatus;

use crate::{
    Backend, DOMAIN_COLUMNS, DomainRecord, StatusEvent, Store, StoreError, database, domain_record, lifecycle_status,
    method_status,
};

/// The outcome of one check and the lifecycle's decision, to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRecord {
    pub checked_at: i64,
    /// The domain's status after this check (the lifecycle may keep the previous one).
    pub status: LifecycleStatus,
    /// The lifecycle event to announce with a status change (`domain.verified`, ...).
    pub event: Option<String>,
    pub setup_started_at: i64,
    pub degraded_since: Option<i64>,
    pub dkim_status: MethodStatus,
    pub spf_status: MethodStatus,
    pub dmarc_status: MethodStatus,
    pub result_json: String,
    /// The problem codes found, sorted, separated by spaces (the check log's summary).
    pub problem_codes: String,
    /// Asked for by the customer (Verify) rather than scheduled: of two checks started in the
    /// same second, a requested one is recorded even when the other was recorded first.
    pub requested: bool,
    pub next_check_at: Option<i64>,
    pub consecutive_failures: i64,
    pub return_path: ReturnPathRecord,
}

/// The return-path's part of a check: its status at the check and its own lifecycle after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnPathRecord {
    pub method_status: MethodStatus,
    pub status: LifecycleStatus,
    pub failures: i64,
    pub degraded_since: Option<i64>,
    /// The event to announce (`return_path.verified`, `return_path.lost`) and its data (JSON).
    pub event: Option<(String, String)>,
}

/// Consecutive checks of a domain with the same outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    pub id: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub checks: i64,
    pub status: LifecycleStatus,
    pub dkim_status: MethodStatus,
    pub spf_status: MethodStatus,
    pub dmarc_status: MethodStatus,
    pub problem_codes: String,
}

impl Store {
    /// Records a check: the latest result, the domain's schedule and, when the status changed,
    /// a status event. All or nothing. Returns the event when there was one.
    pub async fn record_check(&self, domain_id: i64, check: &CheckRecord) -> Result<Option<StatusEvent>, StoreError> {
        self.record_checks(&[(domain_id, check)]).await?.pop().unwrap_or(Ok(None))
    }

    /// Adds a check to the domain's check log: one more in its latest run when the outcome is
    /// the same, else a new run. On PostgreSQL in one statement (a round trip per check saved);
    /// on SQLite, in process, as an UPDATE and, when it changed nothing, an INSERT.
    async fn log_check(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        domain_id: i64,
        check: &CheckRecord,
    ) -> Result<(), StoreError> {
        const EXTEND: &str = "UPDATE check_runs SET last_at = ?, checks = checks + 1 \
             WHERE id = (SELECT MAX(id) FROM check_runs WHERE domain_id = ?) \
             AND status = ? AND dkim_status = ? AND spf_status = ? AND dmarc_status = ? AND problem_codes = ?";
        const COLUMNS: &str = "check_runs (domain_id, first_at, last_at, checks, status, dkim_status, spf_status, dmarc_status, problem_codes)";
        let extend = |text: String| {
            sqlx::query(self.sql(text))
                .bind(check.checked_at)
                .bind(domain_id)
                .bind(check.status.as_str())
                .bind(check.dkim_status.as_str())
                .bind(check.spf_status.as_str())
                .bind(check.dmarc_status.as_str())
                .bind(check.problem_codes.clone())
        };
        let new_run = |query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            query
                .bind(domain_id)
                .bind(check.checked_at)
                .bind(check.checked_at)
                .bind(check.status.as_str())
                .bind(check.dkim_status.as_str())
                .bind(check.spf_status.as_str())
                .bind(check.dmarc_status.as_str())
                .bind(check.problem_codes.clone())
        };
        if self.backend == Backend::Postgres {
            let text = format!(
                "WITH extended AS ({EXTEND} RETURNING id) INSERT INTO {COLUMNS} \
                 SELECT ?, ?, ?, 1, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM extended)"
            );
            new_run(extend(text)).execute(&mut **transaction).await.map_err(database("logging the check"))?;
            return Ok(());
        }
        let extended =
            extend(EXTEND.to_string()).execute(&mut **transaction).await.map_err(database("logging the check"))?;
        if extended.rows_affected() == 0 {
            new_run(sqlx::query(self.sql(format!("INSERT INTO {COLUMNS} VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)"))))
                .execute(&mut **transaction)
                .await
                .map_err(database("logging the check"))?;
        }
        Ok(())
    }

    /// An account's domain's check log, newest run first: at most `limit` runs older than the
    /// run `before` (all from the newest without it). Empty for another account's domain.
    pub async fn check_runs(
        &self,
        account_id: i64,
        domain: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<CheckRun>, StoreError> {
        // The limit in the text, not bound: see `domain_list`.
        let rows = sqlx::query(self.sql(format!(
            "SELECT r.id, r.first_at, r.last_at, r.checks, r.status, r.dkim_status, r.spf_status, r.dmarc_status, \
             r.problem_codes FROM check_runs r JOIN domains d ON d.id = r.domain_id \
             WHERE d.account_id = ? AND d.domain = ? AND r.id < ? ORDER BY r.id DESC LIMIT {}",
            limit.max(0)
        )))
        .bind(account_id)
        .bind(domain)
        .bind(before.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the check log"))?;
        rows.iter()
            .map(|row| {
                Ok(CheckRun {
                    id: row.get(0),
                    first_at: row.get(1),
                    last_at: row.get(2),
                    checks: row.get(3),
                    status: lifecycle_status(&row.get::<String, _>(4))?,
                    dkim_status: method_status(&row.get::<String, _>(5))?,
                    spf_status: method_status(&row.get::<String, _>(6))?,
                    dmarc_status: method_status(&row.get::<String, _>(7))?,
                    problem_codes: row.get(8),
                })
            })
            .collect()
    }

    /// Records several checks in one transaction, each as `record_check` does; the background
    /// verifier writes its finished checks this way, a transaction per batch instead of per
    /// domain. A domain removed since it was claimed gets `Err(Gone)` in its place while
    /// the others are recorded; a database error records none.
    pub async fn record_checks(
        &self,
        checks: &[(i64, &CheckRecord)],
    ) -> Result<Vec<Result<Option<StatusEvent>, StoreError>>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(checks.len());
        for &(domain_id, check) in checks {
            let previous = sqlx::query(self.sql("SELECT status, last_checked_at FROM domains WHERE id = ?"))
                .bind(domain_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(database("reading the domain"))?;
            let Some((previous, last_checked_at)) =
                previous.map(|row| (row.get::<String, _>(0), row.get::<Option<i64>, _>(1)))
            else {
                outcomes.push(Err(StoreError::Gone { what: format!("domain {domain_id}") }));
                continue;
            };
            let stale = last_checked_at
                .is_some_and(|last| last > check.checked_at || (last == check.checked_at && !check.requested));
            if stale {
                // A check that started later (or in the same second, unless this one was asked
                // for) was recorded while this one ran: a background check finishing after a
                // Verify. This one is stale; only its lease goes.
                sqlx::query(self.sql("UPDATE domains SET lease_until = NULL, leased_by = NULL WHERE id = ?"))
                    .bind(domain_id)
                    .execute(&mut *transaction)
                    .await
                    .map_err(database("releasing the domain"))?;
                outcomes.push(Ok(None));
                continue;
            }
            sqlx::query(self.sql(
                "UPDATE domains SET status = ?, last_checked_at = ?, next_check_at = ?, consecutive_failures = ?, \
                 setup_started_at = ?, degraded_since = ?, rp_status = ?, rp_failures = ?, rp_degraded_since = ?, \
                 lease_until = NULL, leased_by = NULL WHERE id = ?",
            ))
            .bind(check.status.as_str())
            .bind(check.checked_at)
            .bind(check.next_check_at)
            .bind(check.consecutive_failures)
            .bind(check.setup_started_at)
            .bind(check.degraded_since)
            .bind(check.return_path.status.as_str())
            .bind(check.return_path.failures)
            .bind(check.return_path.degraded_since)
            .bind(domain_id)
            .execute(&mut *transaction)
            .await
            .map_err(database("updating the domain"))?;
            sqlx::query(self.sql(
                "INSERT INTO verification_results (domain_id, checked_at, status, dkim_status, spf_status, dmarc_status, \
                 rp_status, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain_id) DO UPDATE SET \
                 checked_at = excluded.checked_at, status = excluded.status, dkim_status = excluded.dkim_status, \
                 spf_status = excluded.spf_status, dmarc_status = excluded.dmarc_status, rp_status = excluded.rp_status, \
                 result_json = excluded.result_json",
            ))
            .bind(domain_id)
            .bind(check.checked_at)
            .bind(check.status.as_str())
            .bind(check.dkim_status.as_str())
            .bind(check.spf_status.as_str())
            .bind(check.dmarc_status.as_str())
            .bind(check.return_path.method_status.as_str())
            .bind(&check.result_json)
            .execute(&mut *transaction)
            .await
            .map_err(database("saving the result"))?;
            self.log_check(&mut transaction, domain_id, check).await?;
            let event = if previous == check.status.as_str() {
                None
            } else {
                let row = sqlx::query(self.sql(
                    "INSERT INTO status_events (domain_id, at, from_status, to_status, event) VALUES (?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(domain_id)
                .bind(check.checked_at)
                .bind(&previous)
                .bind(check.status.as_str())
                .bind(&check.event)
                .fetch_one(&mut *transaction)
                .await
                .map_err(database("recording the status change"))?;
                let event_id: i64 = row.get(0);
                if check.event.is_some() {
                    self.queue_deliveries(&mut transaction, event_id, domain_id, check.checked_at).await?;
                }
                Some(StatusEvent {
                    id: event_id,
                    domain_id,
                    at: check.checked_at,
                    from_status: Some(lifecycle_status(&previous)?),
                    to_status: check.status,
                    event: check.event.clone(),
                })
            };
            if let Some((event, detail_json)) = &check.return_path.event {
                // Beside the status changes, as the DMARC events are: delivered, kept out of the
                // status history.
                let row = sqlx::query(self.sql(
                    "INSERT INTO status_events (domain_id, at, from_status, to_status, event, detail_json) \
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(domain_id)
                .bind(check.checked_at)
                .bind(check.status.as_str())
                .bind(check.status.as_str())
                .bind(event)
                .bind(detail_json)
                .fetch_one(&mut *transaction)
                .await
                .map_err(database("recording a return-path event"))?;
                self.queue_deliveries(&mut transaction, row.get(0), domain_id, check.checked_at).await?;
            }
            outcomes.push(Ok(event));
        }
        transaction.commit().await.map_err(database("committing"))?;
        Ok(outcomes)
    }

    /// One delivery of event `event_id` per webhook endpoint of the domain's account, made in
    /// the event's transaction.
    pub(crate) async fn queue_deliveries(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        event_id: i64,
        domain_id: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, state, next_attempt_at, created_at) \
             SELECT id, ?, 'pending', ?, ? FROM webhook_endpoints \
             WHERE account_id = (SELECT account_id FROM domains WHERE id = ?)",
        ))
        .bind(event_id)
        .bind(at)
        .bind(at)
        .bind(domain_id)
        .execute(&mut **transaction)
        .await
        .map_err(database("queueing webhook deliveries"))?;
        Ok(())
    }

    /// Claims up to `limit` domains due at `now` for `node`, the most overdue first, leased until
    /// `lease_until`. A domain leased by another node is skipped until its lease expires, so
    /// nodes sharing a database never check a domain twice at once, and a node that dies
    /// mid-check leaves its domains to the others once their leases run out.
    pub async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        let sql = self.claim_sql(&format!(
            "UPDATE domains SET lease_until = ?, leased_by = ? WHERE id IN (\
             SELECT id FROM domains WHERE next_check_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY next_check_at, id LIMIT ? {{lock}}) RETURNING {DOMAIN_COLUMNS}"
        ));
        let rows = sqlx::query(sql)
            .bind(lease_until)
            .bind(node)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await
            .map_err(database("claiming due domains"))?;
        let mut claimed: Vec<DomainRecord> = rows.iter().map(domain_record).collect::<Result<_, _>>()?;
        claimed.sort_by_key(|domain| (domain.next_check_at, domain.id));
        Ok(claimed)
    }

    /// When the longest-waiting due domain fell due (`None` when nothing is due at `now`).
    pub async fn oldest_due(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(self.sql("SELECT MIN(next_check_at) FROM domains WHERE next_check_at <= ?"))
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(database("finding the oldest due domain"))?;
        Ok(row.get(0))
    }

    /// Gives back a claim without a result (the check could not run), so the domain is due again.
    pub async fn release(&self, domain_id: i64, node: &str) -> Result<(), StoreError> {
        sqlx::query(self.sql("UPDATE domains SET lease_until = NULL, leased_by = NULL WHERE id = ? AND leased_by = ?"))
            .bind(domain_id)
            .bind(node)
            .execute(&self.writer)
            .await
            .map_err(database("releasing a domain"))?;
        Ok(())
    }
}
