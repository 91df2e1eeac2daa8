//! DMARC aggregate reports as stored: each report once (re-sends and copies through a second MX
//! counted on it), its rows with the class the platform gave them, the totals per From domain,
//! day and class, and the original XML (gzip). A report is written in one transaction while it
//! is read (`ReportWriter`), so a failure stores nothing and memory holds a batch, not a report.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use crate::{Store, StoreError, database, qualified};

/// What identifies a report (RFC 9990 section 3.1.1): a re-send has the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportIdentity {
    pub org_name: String,
    pub report_id: String,
    pub policy_domain: String,
    pub begin_at: i64,
    pub end_at: i64,
}

/// A report's header as stored.
#[derive(Clone, Debug)]
pub struct ReportHeaderRecord {
    pub identity: ReportIdentity,
    pub org_email: Option<String>,
    /// `rfc9990` or `rfc7489`.
    pub format: String,
    /// The whole header (policy published, deviations, errors) as JSON.
    pub header_json: String,
}

/// One row of a report, with its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRowRecord {
    pub header_from: String,
    /// Days since 1970 (the report's first day).
    pub day: i64,
    pub source_ip: String,
    pub message_count: i64,
    pub disposition: String,
    /// DMARC's own DKIM and SPF results (aligned pass or fail).
    pub dkim: String,
    pub spf: String,
    pub class: String,
    /// The authentication results and reasons as JSON.
    pub detail_json: String,
}

/// Messages that passed and failed DMARC for a From domain on a day, in one class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DailyTotal {
    pub header_from: String,
    pub day: i64,
    pub class: String,
    pub passed: i64,
    pub failed: i64,
}

/// What a finished report adds besides its rows.
#[derive(Clone, Debug)]
pub struct ReportTotals {
    /// SHA-256 of the rows as read, in hex: a re-send whose rows differ conflicts.
    pub digest: String,
    pub record_count: i64,
    pub message_count: i64,
    pub xml_gzip: Vec<u8>,
    pub daily: Vec<DailyTotal>,
    /// The receiving organization that sent the report (`senderauth_reports::receivers`).
    pub receiver: String,
}

/// How a report was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredReport {
    New {
        id: i64,
    },
    /// Already stored under this id; `conflicting` when this copy's rows differ.
    Duplicate {
        id: i64,
        conflicting: bool,
    },
}

/// A stored report as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSummary {
    pub id: i64,
    pub identity: ReportIdentity,
    pub org_email: Option<String>,
    pub format: String,
    pub record_count: i64,
    pub message_count: i64,
    pub source: String,
    pub received_at: i64,
    pub duplicates: i64,
    pub conflicts: i64,
    pub header_json: String,
}

/// A source of a From domain's mail over some days, added up over its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTotal {
    pub source_ip: String,
    pub class: String,
    pub passed: i64,
    pub failed: i64,
    pub last_day: i64,
    /// Its reverse DNS name, when looked up and confirmed.
    pub name: Option<String>,
}

/// A report being written: one transaction from the first row to `finish`; dropped unfinished,
/// nothing of it is stored.
pub struct ReportWriter<'s> {
    store: &'s Store,
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    state: WriterState,
}

enum WriterState {
    Unstarted,
    New(i64),
    Duplicate(i64),
}

/// A source's messages over some days, and the first and last of them.
struct SourceSpan {
    passed: i64,
    failed: i64,
    first_day: i64,
    last_day: i64,
}

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 100;

const REPORT_COLUMNS: &str = "id, org_name, report_id, policy_domain, begin_at, end_at, org_email, format, \
                              record_count, message_count, source, received_at, duplicates, conflicts, header_json";

impl Store {
    /// Starts writing a report.
    pub async fn report_writer(&self) -> Result<ReportWriter<'_>, StoreError> {
        Ok(ReportWriter { store: self, transaction: self.begin_write().await?, state: WriterState::Unstarted })
    }

    /// The reports with rows about `header_from`, newest first, at most `limit`.
    pub async fn reports_about(&self, header_from: &str, limit: i64) -> Result<Vec<ReportSummary>, StoreError> {
        let rows = sqlx::query(self.sql(format!(
            "SELECT {} FROM dmarc_report_domains d JOIN dmarc_reports r ON r.id = d.report_id \
             WHERE d.header_from = ? ORDER BY r.begin_at DESC, r.id DESC LIMIT {}",
            qualified(REPORT_COLUMNS, "r"),
            limit.max(0)
        )))
        .bind(header_from.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("listing reports"))?;
        Ok(rows.iter().map(report_summary).collect())
    }

    /// One report, if it has rows about `header_from`.
    pub async fn report_about(&self, header_from: &str, id: i64) -> Result<Option<ReportSummary>, StoreError> {
        let row = sqlx::query(self.sql(format!(
            "SELECT {} FROM dmarc_report_domains d JOIN dmarc_reports r ON r.id = d.report_id \
             WHERE d.header_from = ? AND r.id = ?",
            qualified(REPORT_COLUMNS, "r")
        )))
        .bind(header_from.to_string())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a report"))?;
        Ok(row.as_ref().map(report_summary))
    }

    /// A report's rows about `header_from`.
    pub async fn report_rows(&self, report_id: i64, header_from: &str) -> Result<Vec<ReportRowRecord>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT header_from, day, source_ip, message_count, disposition, dkim, spf, class, detail_json \
             FROM dmarc_rows WHERE report_id = ? AND header_from = ? ORDER BY id",
        ))
        .bind(report_id)
        .bind(header_from.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a report's rows"))?;
        Ok(rows
            .iter()
            .map(|row| ReportRowRecord {
                header_from: row.get(0),
                day: row.get(1),
                source_ip: row.get(2),
                message_count: row.get(3),
                disposition: row.get(4),
                dkim: row.get(5),
                spf: row.get(6),
                class: row.get(7),
                detail_json: row.get(8),
            })
            .collect())
    }

    /// The DKIM selectors the platform has issued for `domain` (in any account, in any state:
    /// a retired key's selector is still the platform's).
    pub async fn platform_selectors(&self, domain: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT DISTINCT k.selector FROM dkim_keys k JOIN domains d ON d.id = k.domain_id WHERE d.domain = ?",
        ))
        .bind(domain.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a domain's selectors"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Whether one of an account's domains has DKIM verified at its latest check: `None` when
    /// the account has no such domain.
    pub async fn dkim_verified(&self, account_id: i64, domain: &str) -> Result<Option<bool>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT r.dkim_status FROM domains d LEFT JOIN verification_results r ON r.domain_id = d.id \
             WHERE d.account_id = ? AND d.domain = ?",
        ))
        .bind(account_id)
        .bind(domain.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a domain's DKIM status"))?;
        Ok(row.map(|row| row.get::<Option<String>, _>(0).as_deref() == Some("verified")))
    }

    /// Whether an account has, with DKIM verified, `policy_domain` or a domain under it (what
    /// lets it hand in reports about that policy domain).
    pub async fn covers_policy_domain(&self, account_id: i64, policy_domain: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT 1 FROM domains d JOIN verification_results r ON r.domain_id = d.id \
             WHERE d.account_id = ? AND r.dkim_status = 'verified' AND (d.domain = ? OR substr(d.domain, length(d.domain) - CAST(? AS INTEGER) + 1) = ?) LIMIT 1",
        ))
        .bind(account_id)
        .bind(policy_domain.to_string())
        .bind(policy_domain.len() as i64 + 1)
        .bind(format!(".{policy_domain}"))
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading an account's domains"))?;
        Ok(row.is_some())
    }

    /// A report's original XML, gzip-compressed.
    pub async fn report_xml(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(self.sql("SELECT xml_gzip FROM dmarc_reports WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a report's XML"))?;
        Ok(row.map(|row| row.get(0)))
    }

    /// A From domain's totals per day and class from day `from` on.
    pub async fn daily_totals(&self, header_from: &str, from: i64) -> Result<Vec<DailyTotal>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT header_from, day, class, passed, failed FROM dmarc_daily \
             WHERE header_from = ? AND day >= ? ORDER BY day, class",
        ))
        .bind(header_from.to_string())
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading report totals"))?;
        Ok(rows
            .iter()
            .map(|row| DailyTotal {
                header_from: row.get(0),
                day: row.get(1),
                class: row.get(2),
                passed: row.get(3),
                failed: row.get(4),
            })
            .collect())
    }

    /// A From domain's sources from day `from` on, the most messages first, at most `limit`;
    /// `class` and `failing_only` narrow them.
    ///
    /// The candidates come from the sources' totals over all their days, the largest first, in
    /// growing batches; each is made exact for the window (from its days in the window, unless
    /// all its days are in it). A source's messages in the window are at most its total, so once
    /// the `limit`-th best so far has more than the last candidate's total, no later one can
    /// enter the list, and the answer is the same as adding up every source's days.
    pub async fn report_sources(
        &self,
        header_from: &str,
        from: i64,
        class: Option<&str>,
        failing_only: bool,
        limit: i64,
    ) -> Result<Vec<SourceTotal>, StoreError> {
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        let mut best: Vec<SourceTotal> = Vec::new();
        if limit == 0 {
            return Ok(best);
        }
        let (mut offset, mut batch) = (0_usize, (limit * 2).max(64));
        loop {
            let candidates = self.source_candidates(header_from, from, class, failing_only, batch, offset).await?;
            let Some(last) = candidates.last() else { break };
            let bound = last.total.passed + last.total.failed;
            // Those with days before the window: their days in it, added up.
            let partial: Vec<&str> = candidates
                .iter()
                .filter(|candidate| candidate.first_day < from)
                .map(|candidate| candidate.total.source_ip.as_str())
                .collect();
            let in_window = self.source_sums(header_from, from, class, &partial).await?;
            let count = candidates.len();
            for candidate in candidates {
                let total = if candidate.first_day >= from {
                    candidate.total
                } else {
                    match in_window.get(&(candidate.total.source_ip, candidate.total.class)) {
                        Some(window) => window.clone(),
                        None => continue,
                    }
                };
                if !failing_only || total.failed > 0 {
                    best.push(total);
                }
            }
            best.sort_by(|a, b| {
                (b.passed + b.failed).cmp(&(a.passed + a.failed)).then_with(|| a.source_ip.cmp(&b.source_ip))
            });
            best.truncate(limit);
            let settled = best.len() == limit && best.last().is_some_and(|worst| worst.passed + worst.failed > bound);
            if settled || count < batch {
                break;
            }
            offset += batch;
            batch *= 2;
        }
        self.add_source_names(&mut best).await?;
        Ok(best)
    }

    /// Sources of a From domain seen from day `from` on, by their totals over all their days,
    /// the largest first: `batch` of them after `offset`.
    async fn source_candidates(
        &self,
        header_from: &str,
        from: i64,
        class: Option<&str>,
        failing_only: bool,
        batch: usize,
        offset: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        let of_class = if class.is_some() { " AND class = ?" } else { "" };
        let failing = if failing_only { " AND failed > 0" } else { "" };
        let mut query = sqlx::query(self.sql(format!(
            "SELECT source_ip, class, passed, failed, last_day, first_day FROM dmarc_source_totals \
             WHERE header_from = ? AND last_day >= ?{of_class}{failing} \
             ORDER BY passed + failed DESC, source_ip, class LIMIT {batch} OFFSET {offset}"
        )))
        .bind(header_from.to_string())
        .bind(from);
        if let Some(class) = class {
            query = query.bind(class.to_string());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database("reading report sources"))?;
        Ok(rows.iter().map(|row| Candidate { total: source_total(row), first_day: row.get(5) }).collect())
    }

    /// The messages of `sources` (of a From domain) from day `from` on, by (source, class).
    async fn source_sums(
        &self,
        header_from: &str,
        from: i64,
        class: Option<&str>,
        sources: &[&str],
    ) -> Result<HashMap<(String, String), SourceTotal>, StoreError> {
        let of_class = if class.is_some() { " AND class = ?" } else { "" };
        let mut sums = HashMap::new();
        for chunk in sources.chunks(200) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.sql(format!(
                "SELECT source_ip, class, CAST(SUM(passed) AS BIGINT), CAST(SUM(failed) AS BIGINT), MAX(day) \
                 FROM dmarc_source_daily WHERE header_from = ? AND source_ip IN ({marks}) AND day >= ?{of_class} \
                 GROUP BY source_ip, class"
            )))
            .bind(header_from.to_string());
            for source in chunk {
                query = query.bind(source.to_string());
            }
            query = query.bind(from);
            if let Some(class) = class {
                query = query.bind(class.to_string());
            }
            for row in query.fetch_all(&self.pool).await.map_err(database("reading report sources"))? {
                let total = source_total(&row);
                sums.insert((total.source_ip.clone(), total.class.clone()), total);
            }
        }
        Ok(sums)
    }

    /// The confirmed reverse DNS names of `sources` (looked up in the background).
    async fn add_source_names(&self, sources: &mut [SourceTotal]) -> Result<(), StoreError> {
        if sources.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; sources.len()].join(", ");
        let mut query = sqlx::query(self.sql(format!(
            "SELECT source_ip, name FROM source_names WHERE status = 'confirmed' AND source_ip IN ({marks})"
        )));
        for source in sources.iter() {
            query = query.bind(source.source_ip.clone());
        }
        let names: HashMap<String, String> = query
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading source names"))?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        for source in sources {
            source.name = names.get(&source.source_ip).cloned();
        }
        Ok(())
    }
}

/// A source among a window's candidates: its totals over all its days, and its first day.
struct Candidate {
    total: SourceTotal,
    first_day: i64,
}

/// A source's (source, class, passed, failed, last day) columns, in that order.
fn source_total(row: &sqlx::any::AnyRow) -> SourceTotal {
    SourceTotal {
        source_ip: row.get(0),
        class: row.get(1),
        passed: row.get(2),
        failed: row.get(3),
        last_day: row.get(4),
        name: None,
    }
}

fn report_summary(row: &sqlx::any::AnyRow) -> ReportSummary {
    ReportSummary {
        id: row.get(0),
        identity: ReportIdentity {
            org_name: row.get(1),
            report_id: row.get(2),
            policy_domain: row.get(3),
            begin_at: row.get(4),
            end_at: row.get(5),
        },
        org_email: row.get(6),
        format: row.get(7),
        record_count: row.get(8),
        message_count: row.get(9),
        source: row.get(10),
        received_at: row.get(11),
        duplicates: row.get(12),
        conflicts: row.get(13),
        header_json: row.get(14),
    }
}

impl ReportWriter<'_> {
    /// Starts the report (before its first row, or at its end when it has none): `false` when
    /// it is already stored, and its rows are then not written again.
    pub async fn start(&mut self, header: &ReportHeaderRecord, source: &str, now: i64) -> Result<bool, StoreError> {
        if !matches!(self.state, WriterState::Unstarted) {
            return Ok(matches!(self.state, WriterState::New(_)));
        }
        let identity = &header.identity;
        let existing = sqlx::query(self.store.sql(
            "SELECT id FROM dmarc_reports WHERE org_name = ? AND report_id = ? AND policy_domain = ? \
             AND begin_at = ? AND end_at = ?",
        ))
        .bind(identity.org_name.clone())
        .bind(identity.report_id.clone())
        .bind(identity.policy_domain.clone())
        .bind(identity.begin_at)
        .bind(identity.end_at)
        .fetch_optional(&mut *self.transaction)
        .await
        .map_err(database("looking for the report"))?;
        if let Some(row) = existing {
            self.state = WriterState::Duplicate(row.get(0));
            return Ok(false);
        }
        let row = sqlx::query(self.store.sql(
            "INSERT INTO dmarc_reports (org_name, report_id, policy_domain, begin_at, end_at, org_email, format, \
             header_json, digest, record_count, message_count, source, received_at, xml_gzip) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0, ?, ?, ?) RETURNING id",
        ))
        .bind(identity.org_name.clone())
        .bind(identity.report_id.clone())
        .bind(identity.policy_domain.clone())
        .bind(identity.begin_at)
        .bind(identity.end_at)
        .bind(header.org_email.clone())
        .bind(header.format.clone())
        .bind(header.header_json.clone())
        .bind(source.to_string())
        .bind(now)
        .bind(Vec::<u8>::new())
        .fetch_one(&mut *self.transaction)
        .await
        .map_err(database("storing a report"))?;
        self.state = WriterState::New(row.get(0));
        Ok(true)
    }

    /// Writes rows of a new report (nothing for a duplicate).
    pub async fn add_rows(&mut self, rows: &[ReportRowRecord]) -> Result<(), StoreError> {
        let WriterState::New(report) = self.state else { return Ok(()) };
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.store.sql(format!(
                "INSERT INTO dmarc_rows (report_id, header_from, day, source_ip, message_count, disposition, dkim, \
                 spf, class, detail_json) VALUES {values}"
            )));
            for row in chunk {
                query = query
                    .bind(report)
                    .bind(row.header_from.clone())
                    .bind(row.day)
                    .bind(row.source_ip.clone())
                    .bind(row.message_count)
                    .bind(row.disposition.clone())
                    .bind(row.dkim.clone())
                    .bind(row.spf.clone())
                    .bind(row.class.clone())
                    .bind(row.detail_json.clone());
            }
            query.execute(&mut *self.transaction).await.map_err(database("storing a report's rows"))?;
        }
        // The batch added up per day, source and class, and the sources not seen before.
        let mut sources: BTreeMap<(&str, i64, &str, &str), (i64, i64)> = BTreeMap::new();
        for row in rows {
            let total = sources.entry((&row.header_from, row.day, &row.source_ip, &row.class)).or_default();
            if row.dkim == "pass" || row.spf == "pass" {
                total.0 = total.0.saturating_add(row.message_count);
            } else {
                total.1 = total.1.saturating_add(row.message_count);
            }
        }
        let sources: Vec<_> = sources.into_iter().collect();
        for chunk in sources.chunks(ROWS_PER_INSERT) {
            let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.store.sql(format!(
                "INSERT INTO dmarc_source_daily (header_from, day, source_ip, class, passed, failed) VALUES {values} \
                 ON CONFLICT (header_from, day, source_ip, class) DO UPDATE SET \
                 passed = dmarc_source_daily.passed + excluded.passed, failed = dmarc_source_daily.failed + excluded.failed"
            )));
            for ((header_from, day, source_ip, class), (passed, failed)) in chunk {
                query = query
                    .bind(header_from.to_string())
                    .bind(*day)
                    .bind(source_ip.to_string())
                    .bind(class.to_string())
                    .bind(*passed)
                    .bind(*failed);
            }
            query.execute(&mut *self.transaction).await.map_err(database("adding up a report's sources"))?;
            // Per (domain, source, class) once in a statement (PostgreSQL will not update a row
            // twice in one), with its first and last day.
            let mut totals: BTreeMap<(&str, &str, &str), SourceSpan> = BTreeMap::new();
            for ((header_from, day, source_ip, class), (passed, failed)) in chunk {
                let total = totals.entry((header_from, source_ip, class)).or_insert(SourceSpan {
                    passed: 0,
                    failed: 0,
                    first_day: *day,
                    last_day: *day,
                });
                total.passed = total.passed.saturating_add(*passed);
                total.failed = total.failed.saturating_add(*failed);
                total.first_day = total.first_day.min(*day);
                total.last_day = total.last_day.max(*day);
            }
            let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; totals.len()].join(", ");
            let mut query = sqlx::query(self.store.sql(format!(
                "INSERT INTO dmarc_source_totals (header_from, source_ip, class, passed, failed, first_day, last_day) \
                 VALUES {values} ON CONFLICT (header_from, source_ip, class) DO UPDATE SET \
                 passed = dmarc_source_totals.passed + excluded.passed, failed = dmarc_source_totals.failed + excluded.failed, \
                 first_day = CASE WHEN excluded.first_day < dmarc_source_totals.first_day THEN excluded.first_day \
                 ELSE dmarc_source_totals.first_day END, \
                 last_day = CASE WHEN excluded.last_day > dmarc_source_totals.last_day THEN excluded.last_day \
                 ELSE dmarc_source_totals.last_day END"
            )));
            for ((header_from, source_ip, class), span) in totals {
                query = query
                    .bind(header_from.to_string())
                    .bind(source_ip.to_string())
                    .bind(class.to_string())
                    .bind(span.passed)
                    .bind(span.failed)
                    .bind(span.first_day)
                    .bind(span.last_day);
            }
            query.execute(&mut *self.transaction).await.map_err(database("adding up a report's sources"))?;
            let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.store.sql(format!(
                "INSERT INTO dmarc_known_sources (header_from, source_ip, class, first_report) VALUES {values} \
                 ON CONFLICT (header_from, source_ip) DO NOTHING"
            )));
            for ((header_from, _, source_ip, class), _) in chunk {
                query = query
                    .bind(header_from.to_string())
                    .bind(source_ip.to_string())
                    .bind(class.to_string())
                    .bind(report);
            }
            query.execute(&mut *self.transaction).await.map_err(database("recording a report's sources"))?;
        }
        Ok(())
    }

    /// Finishes the report: a new one gets its final header, totals and XML; a copy of one
    /// already stored is counted on it (and as a conflict when its rows differ).
    pub async fn finish(
        mut self,
        header: &ReportHeaderRecord,
        source: &str,
        totals: &ReportTotals,
        now: i64,
    ) -> Result<StoredReport, StoreError> {
        self.start(header, source, now).await?;
        let stored = match self.state {
            WriterState::Unstarted => unreachable!("started above"),
            WriterState::Duplicate(id) => {
                let digest: String = sqlx::query(self.store.sql("SELECT digest FROM dmarc_reports WHERE id = ?"))
                    .bind(id)
                    .fetch_one(&mut *self.transaction)
                    .await
                    .map_err(database("reading the stored report"))?
                    .get(0);
                let conflicting = digest != totals.digest;
                sqlx::query(self.store.sql(
                    "UPDATE dmarc_reports SET duplicates = duplicates + 1, conflicts = conflicts + ? WHERE id = ?",
                ))
                .bind(i64::from(conflicting))
                .bind(id)
                .execute(&mut *self.transaction)
                .await
                .map_err(database("counting a copy of a report"))?;
                StoredReport::Duplicate { id, conflicting }
            }
            WriterState::New(id) => {
                let identity = &header.identity;
                sqlx::query(self.store.sql(
                    "UPDATE dmarc_reports SET org_name = ?, report_id = ?, policy_domain = ?, begin_at = ?, \
                     end_at = ?, org_email = ?, format = ?, header_json = ?, digest = ?, record_count = ?, \
                     message_count = ?, xml_gzip = ? WHERE id = ?",
                ))
                .bind(identity.org_name.clone())
                .bind(identity.report_id.clone())
                .bind(identity.policy_domain.clone())
                .bind(identity.begin_at)
                .bind(identity.end_at)
                .bind(header.org_email.clone())
                .bind(header.format.clone())
                .bind(header.header_json.clone())
                .bind(totals.digest.clone())
                .bind(totals.record_count)
                .bind(totals.message_count)
                .bind(totals.xml_gzip.clone())
                .bind(id)
                .execute(&mut *self.transaction)
                .await
                .map_err(database("storing a report"))?;
                let mut domains: Vec<&str> = totals.daily.iter().map(|total| total.header_from.as_str()).collect();
                domains.sort_unstable();
                domains.dedup();
                for domain in domains {
                    sqlx::query(self.store.sql(
                        "INSERT INTO dmarc_report_domains (header_from, report_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    ))
                    .bind(domain.to_string())
                    .bind(id)
                    .execute(&mut *self.transaction)
                    .await
                    .map_err(database("storing a report's domains"))?;
                }
                for total in &totals.daily {
                    sqlx::query(self.store.sql(
                        "INSERT INTO dmarc_daily (header_from, day, class, passed, failed) VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT (header_from, day, class) DO UPDATE \
                         SET passed = dmarc_daily.passed + excluded.passed, failed = dmarc_daily.failed + excluded.failed",
                    ))
                    .bind(total.header_from.clone())
                    .bind(total.day)
                    .bind(total.class.clone())
                    .bind(total.passed)
                    .bind(total.failed)
                    .execute(&mut *self.transaction)
                    .await
                    .map_err(database("adding up a report"))?;
                }
                // What this receiver reported per From domain and day, the platform's own mail apart.
                let mut receiver: BTreeMap<(&str, i64), (i64, i64)> = BTreeMap::new();
                for total in &totals.daily {
                    let entry = receiver.entry((&total.header_from, total.day)).or_default();
                    let messages = total.passed.saturating_add(total.failed);
                    entry.0 = entry.0.saturating_add(messages);
                    if matches!(total.class.as_str(), "platform_ok" | "platform_failing") {
                        entry.1 = entry.1.saturating_add(messages);
                    }
                }
                for ((header_from, day), (messages, platform)) in receiver {
                    sqlx::query(self.store.sql(
                        "INSERT INTO dmarc_receiver_daily (header_from, receiver, day, reports, messages, platform_messages) \
                         VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (header_from, receiver, day) DO UPDATE SET \
                         reports = dmarc_receiver_daily.reports + 1, \
                         messages = dmarc_receiver_daily.messages + excluded.messages, \
                         platform_messages = dmarc_receiver_daily.platform_messages + excluded.platform_messages",
                    ))
                    .bind(header_from.to_string())
                    .bind(totals.receiver.clone())
                    .bind(day)
                    .bind(messages)
                    .bind(platform)
                    .execute(&mut *self.transaction)
                    .await
                    .map_err(database("adding up a receiver's reports"))?;
                }
                StoredReport::New { id }
            }
        };
        self.transaction.commit().await.map_err(database("committing"))?;
        Ok(stored)
    }
}
