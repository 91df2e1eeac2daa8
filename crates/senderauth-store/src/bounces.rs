//! Bounces: each bounce message with the token it came back to, its recipients (hard or soft,
//! status code, diagnostic), the `message.bounced` event of a connected domain's bounce, and
//! the reads: a domain's bounces (filtered, paged), a message's by its token, the causes.

use sqlx::Row;

use crate::{Store, StoreError, database};

/// A bounce to store.
#[derive(Clone, Debug, Default)]
pub struct NewBounce {
    pub account_id: i64,
    /// The connected domain the bounced message was signed as; `None` for the variable domain.
    pub domain_id: Option<i64>,
    pub token: String,
    pub issued_at: i64,
    pub received_at: i64,
    /// How it read (`postfix`, `rfc3464`, ...); `None` when it did not.
    pub format: Option<String>,
    pub reporting_mta: Option<String>,
    pub original_message_id: Option<String>,
    /// Why it did not read; then the message is kept (`raw_gzip`).
    pub problem: Option<String>,
    pub raw_gzip: Option<Vec<u8>>,
    pub recipients: Vec<BounceRecipient>,
    /// The `message.bounced` event's data (JSON), for a connected domain's bounce.
    pub event_json: Option<String>,
}

/// A recipient a bounce reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BounceRecipient {
    pub address: String,
    pub action: String,
    pub kind: String,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic: Option<String>,
}

/// A stored bounce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceRecord {
    pub id: i64,
    pub domain_id: Option<i64>,
    pub token: String,
    pub issued_at: i64,
    pub received_at: i64,
    pub format: Option<String>,
    pub reporting_mta: Option<String>,
    pub original_message_id: Option<String>,
    pub problem: Option<String>,
}

/// A stored recipient of a bounce, with its bounce's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceRecipientRecord {
    pub id: i64,
    pub bounce_id: i64,
    pub token: String,
    pub received_at: i64,
    pub recipient: BounceRecipient,
}

/// Recipients bounced for one cause (kind and status code) since a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceCause {
    pub kind: String,
    pub status: Option<String>,
    pub recipients: i64,
    pub last_at: i64,
    /// The latest diagnostic of the cause.
    pub diagnostic: Option<String>,
}

const RECIPIENT_COLUMNS: &str = "r.id, r.bounce_id, b.token, r.received_at, r.address, r.action, r.kind, r.status, \
                                 r.remote_mta, r.diagnostic";

fn recipient_record(row: &sqlx::any::AnyRow) -> BounceRecipientRecord {
    BounceRecipientRecord {
        id: row.get(0),
        bounce_id: row.get(1),
        token: row.get(2),
        received_at: row.get(3),
        recipient: BounceRecipient {
            address: row.get(4),
            action: row.get(5),
            kind: row.get(6),
            status: row.get(7),
            remote_mta: row.get(8),
            diagnostic: row.get(9),
        },
    }
}

impl Store {
    /// Stores a bounce with its recipients, and for a connected domain's bounce with recipients
    /// its `message.bounced` event and webhook deliveries, in one transaction; returns its id.
    pub async fn add_bounce(&self, bounce: &NewBounce) -> Result<i64, StoreError> {
        Ok(self.add_bounces(std::slice::from_ref(bounce)).await?.pop().unwrap_or_default())
    }

    /// Stores bounces as [`Store::add_bounce`] does, all in one transaction (bounces arriving
    /// together share its cost); returns their ids in order.
    pub async fn add_bounces(&self, bounces: &[NewBounce]) -> Result<Vec<i64>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut ids = Vec::with_capacity(bounces.len());
        for bounce in bounces {
            ids.push(self.insert_bounce(&mut transaction, bounce).await?);
        }
        transaction.commit().await.map_err(database("committing"))?;
        Ok(ids)
    }

    async fn insert_bounce(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        bounce: &NewBounce,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query(self.sql(
            "INSERT INTO bounces (account_id, domain_id, token, issued_at, received_at, format, reporting_mta, \
             original_message_id, problem, raw_gzip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(bounce.account_id)
        .bind(bounce.domain_id)
        .bind(bounce.token.clone())
        .bind(bounce.issued_at)
        .bind(bounce.received_at)
        .bind(bounce.format.clone())
        .bind(bounce.reporting_mta.clone())
        .bind(bounce.original_message_id.clone())
        .bind(bounce.problem.clone())
        .bind(bounce.raw_gzip.clone())
        .fetch_one(&mut **transaction)
        .await
        .map_err(database("storing a bounce"))?
        .get(0);
        for recipient in &bounce.recipients {
            sqlx::query(self.sql(
                "INSERT INTO bounce_recipients (bounce_id, domain_id, received_at, address, action, kind, status, \
                 remote_mta, diagnostic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(id)
            .bind(bounce.domain_id)
            .bind(bounce.received_at)
            .bind(recipient.address.clone())
            .bind(recipient.action.clone())
            .bind(recipient.kind.clone())
            .bind(recipient.status.clone())
            .bind(recipient.remote_mta.clone())
            .bind(recipient.diagnostic.clone())
            .execute(&mut **transaction)
            .await
            .map_err(database("storing a bounce's recipient"))?;
        }
        if let (Some(domain_id), Some(event_json)) = (bounce.domain_id, &bounce.event_json) {
            let row = sqlx::query(self.sql(
                "INSERT INTO status_events (domain_id, at, from_status, to_status, event, detail_json) \
                 SELECT id, ?, status, status, 'message.bounced', ? FROM domains WHERE id = ? RETURNING id",
            ))
            .bind(bounce.received_at)
            .bind(event_json.clone())
            .bind(domain_id)
            .fetch_optional(&mut **transaction)
            .await
            .map_err(database("recording a bounce event"))?;
            if let Some(row) = row {
                self.queue_deliveries(transaction, row.get(0), domain_id, bounce.received_at).await?;
            }
        }
        Ok(id)
    }

    /// A domain's bounced recipients, newest first, optionally of one kind and status code,
    /// before recipient id `before`, at most `limit`.
    pub async fn domain_bounces(
        &self,
        domain_id: i64,
        kind: Option<&str>,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<BounceRecipientRecord>, StoreError> {
        let of_kind = if kind.is_some() { " AND r.kind = ?" } else { "" };
        let of_status = if status.is_some() { " AND r.status = ?" } else { "" };
        let text = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM bounce_recipients r JOIN bounces b ON b.id = r.bounce_id \
             WHERE r.domain_id = ? AND r.id < ?{of_kind}{of_status} ORDER BY r.id DESC LIMIT {}",
            limit.max(0)
        );
        let mut query = sqlx::query(self.sql(text)).bind(domain_id).bind(before.unwrap_or(i64::MAX));
        if let Some(kind) = kind {
            query = query.bind(kind.to_string());
        }
        if let Some(status) = status {
            query = query.bind(status.to_string());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database("reading bounces"))?;
        Ok(rows.iter().map(recipient_record).collect())
    }

    /// The bounces that came back for an account's token, oldest first, with their recipients.
    pub async fn token_bounces(
        &self,
        account_id: i64,
        token: &str,
    ) -> Result<Vec<(BounceRecord, Vec<BounceRecipientRecord>)>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, domain_id, token, issued_at, received_at, format, reporting_mta, original_message_id, problem \
             FROM bounces WHERE account_id = ? AND token = ? ORDER BY id LIMIT 100",
        ))
        .bind(account_id)
        .bind(token.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a message's bounces"))?;
        let mut bounces = Vec::with_capacity(rows.len());
        for row in &rows {
            let record = BounceRecord {
                id: row.get(0),
                domain_id: row.get(1),
                token: row.get(2),
                issued_at: row.get(3),
                received_at: row.get(4),
                format: row.get(5),
                reporting_mta: row.get(6),
                original_message_id: row.get(7),
                problem: row.get(8),
            };
            let recipients = sqlx::query(self.sql(format!(
                "SELECT {RECIPIENT_COLUMNS} FROM bounce_recipients r JOIN bounces b ON b.id = r.bounce_id \
                 WHERE r.bounce_id = ? ORDER BY r.id LIMIT 1000"
            )))
            .bind(record.id)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading a bounce's recipients"))?;
            bounces.push((record, recipients.iter().map(recipient_record).collect()));
        }
        Ok(bounces)
    }

    /// A domain's bounced recipients since `since`, grouped by kind and status code, the most
    /// frequent first (at most `limit` causes).
    pub async fn bounce_causes(&self, domain_id: i64, since: i64, limit: i64) -> Result<Vec<BounceCause>, StoreError> {
        let rows = sqlx::query(self.sql(format!(
            "SELECT r.kind, r.status, COUNT(*), MAX(r.received_at), \
             (SELECT latest.diagnostic FROM bounce_recipients latest WHERE latest.domain_id = ? AND latest.kind = r.kind \
              AND latest.status IS NOT DISTINCT FROM r.status AND latest.received_at >= ? ORDER BY latest.id DESC LIMIT 1) \
             FROM bounce_recipients r WHERE r.domain_id = ? AND r.received_at >= ? \
             GROUP BY r.kind, r.status ORDER BY COUNT(*) DESC, r.kind LIMIT {}",
            limit.max(0)
        )))
        .bind(domain_id)
        .bind(since)
        .bind(domain_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading bounce causes"))?;
        Ok(rows
            .iter()
            .map(|row| BounceCause {
                kind: row.get(0),
                status: row.get(1),
                recipients: row.get(2),
                last_at: row.get(3),
                diagnostic: row.get(4),
            })
            .collect())
    }
}
