//! Report coverage and DMARC events: what the gateway sent each receiving organization per From
//! domain and day, what each receiver reported back, which receivers went silent (announced
//! once), and the DMARC events that travel as domain events with their webhook deliveries.

use sqlx::Row;

use crate::{Store, StoreError, database};

/// Messages the gateway sent for a From domain to one receiving organization on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCount {
    pub header_from: String,
    pub receiver: String,
    pub day: i64,
    pub messages: i64,
}

/// What one receiver reported about a From domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverReported {
    pub receiver: String,
    /// Reports, messages and the platform's own messages from day `from` on.
    pub reports: i64,
    pub messages: i64,
    pub platform_messages: i64,
    /// The last day any report of this receiver covered, ever.
    pub last_day: i64,
}

/// A receiver the gateway sent a From domain's mail to, with the last day it was sent and the
/// last day its reports on that domain covered (whether it stopped reporting is the service's
/// rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverActivity {
    pub header_from: String,
    pub receiver: String,
    /// The last day its reports covered; none when it never reported on the domain.
    pub last_report_day: Option<i64>,
    /// The last day the gateway sent to it, within the days asked for.
    pub last_sent_day: i64,
}

impl Store {
    /// Adds the gateway's sent counts.
    pub async fn add_sent(&self, counts: &[SentCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in counts.chunks(100) {
            let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut query = sqlx::query(self.sql(format!(
                "INSERT INTO dmarc_sent (header_from, receiver, day, messages) VALUES {values} \
                 ON CONFLICT (header_from, receiver, day) DO UPDATE SET messages = dmarc_sent.messages + excluded.messages"
            )));
            for count in chunk {
                query = query
                    .bind(count.header_from.clone())
                    .bind(count.receiver.clone())
                    .bind(count.day)
                    .bind(count.messages);
            }
            query.execute(&mut *transaction).await.map_err(database("counting sent messages"))?;
        }
        transaction.commit().await.map_err(database("committing"))
    }

    /// What the gateway sent for `header_from` from day `from` on, per receiver and day.
    pub async fn sent(&self, header_from: &str, from: i64) -> Result<Vec<SentCount>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT header_from, receiver, day, messages FROM dmarc_sent WHERE header_from = ? AND day >= ? \
             ORDER BY receiver, day",
        ))
        .bind(header_from.to_string())
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading sent counts"))?;
        Ok(rows
            .iter()
            .map(|row| SentCount {
                header_from: row.get(0),
                receiver: row.get(1),
                day: row.get(2),
                messages: row.get(3),
            })
            .collect())
    }

    /// What each receiver reported about `header_from` (totals from day `from` on, the last day
    /// ever reported).
    pub async fn receivers_reported(&self, header_from: &str, from: i64) -> Result<Vec<ReceiverReported>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT receiver, CAST(SUM(CASE WHEN day >= ? THEN reports ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN day >= ? THEN messages ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN day >= ? THEN platform_messages ELSE 0 END) AS BIGINT), MAX(day) \
             FROM dmarc_receiver_daily WHERE header_from = ? GROUP BY receiver ORDER BY receiver",
        ))
        .bind(from)
        .bind(from)
        .bind(from)
        .bind(header_from.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the receivers' reports"))?;
        Ok(rows
            .iter()
            .map(|row| ReceiverReported {
                receiver: row.get(0),
                reports: row.get(1),
                messages: row.get(2),
                platform_messages: row.get(3),
                last_day: row.get(4),
            })
            .collect())
    }

    /// Every (From domain, receiver) the gateway sent mail to between days `from` and `until`,
    /// with the last day sent and the last day reported.
    pub async fn receiver_activity(&self, from: i64, until: i64) -> Result<Vec<ReceiverActivity>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT s.header_from, s.receiver, MAX(s.day), \
             (SELECT MAX(r.day) FROM dmarc_receiver_daily r WHERE r.header_from = s.header_from AND r.receiver = s.receiver) \
             FROM dmarc_sent s WHERE s.day >= ? AND s.day <= ? GROUP BY s.header_from, s.receiver",
        ))
        .bind(from)
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading what receivers were sent and reported"))?;
        Ok(rows
            .iter()
            .map(|row| ReceiverActivity {
                header_from: row.get(0),
                receiver: row.get(1),
                last_sent_day: row.get(2),
                last_report_day: row.get(3),
            })
            .collect())
    }

    /// Notes that `receiver` stopped reporting on `header_from` after `last_day`: `true` the
    /// first time, `false` when it was noted already.
    pub async fn note_missing(
        &self,
        header_from: &str,
        receiver: &str,
        last_day: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(self.sql(
            "INSERT INTO dmarc_missing (header_from, receiver, last_day, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(header_from.to_string())
        .bind(receiver.to_string())
        .bind(last_day)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(database("noting a receiver that stopped reporting"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The sources first seen in report `report_id` for `header_from`, with their class.
    pub async fn new_sources(&self, report_id: i64, header_from: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT source_ip, class FROM dmarc_known_sources WHERE first_report = ? AND header_from = ? ORDER BY source_ip",
        ))
        .bind(report_id)
        .bind(header_from.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a report's new sources"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Whether a report other than `report_id` had rows about `header_from`.
    pub async fn reported_before(&self, header_from: &str, report_id: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(
            self.sql("SELECT 1 FROM dmarc_report_domains WHERE header_from = ? AND report_id <> ? LIMIT 1"),
        )
        .bind(header_from.to_string())
        .bind(report_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a domain's reports"))?;
        Ok(row.is_some())
    }

    /// Records `event` (with `detail_json`) for every connected domain named `header_from` whose
    /// DKIM is verified (the accounts its reports are shown to), with one webhook delivery per
    /// endpoint of each account; returns for how many domains. `check_now`: those domains are
    /// also checked again at once.
    pub async fn add_domain_event(
        &self,
        header_from: &str,
        event: &str,
        detail_json: &str,
        at: i64,
        check_now: bool,
    ) -> Result<usize, StoreError> {
        let mut transaction = self.begin_write().await?;
        let rows = sqlx::query(self.sql(
            "INSERT INTO status_events (domain_id, at, from_status, to_status, event, detail_json) \
             SELECT d.id, ?, d.status, d.status, ?, ? FROM domains d JOIN verification_results r ON r.domain_id = d.id \
             WHERE d.domain = ? AND r.dkim_status = 'verified' RETURNING id, domain_id",
        ))
        .bind(at)
        .bind(event.to_string())
        .bind(detail_json.to_string())
        .bind(header_from.to_string())
        .fetch_all(&mut *transaction)
        .await
        .map_err(database("recording a domain event"))?;
        for row in &rows {
            let (id, domain_id): (i64, i64) = (row.get(0), row.get(1));
            self.queue_deliveries(&mut transaction, id, domain_id, at).await?;
            if check_now {
                sqlx::query(self.sql("UPDATE domains SET next_check_at = ? WHERE id = ? AND next_check_at > ?"))
                    .bind(at)
                    .bind(domain_id)
                    .bind(at)
                    .execute(&mut *transaction)
                    .await
                    .map_err(database("scheduling a check"))?;
            }
        }
        transaction.commit().await.map_err(database("committing"))?;
        Ok(rows.len())
    }
}
