//! Webhook endpoints (their secrets sealed through the service's `Sealer`) and their deliveries,
//! claimed like domains so each is sent once across nodes.

use sqlx::Row;

use crate::{Store, StoreError, database, random_hex};

/// Seals and opens the secrets the store keeps for the service (webhook signing secrets), so
/// that none is stored in the clear; `context` binds a sealed secret to its row.
pub trait Sealer: Send + Sync {
    /// The id of the key that sealed, and the sealed bytes.
    fn seal(&self, context: &str, secret: &[u8]) -> Result<(String, Vec<u8>), String>;
    fn open(&self, context: &str, key_id: &str, sealed: &[u8]) -> Result<Vec<u8>, String>;
}

/// What a webhook endpoint's sealed secret is bound to.
pub fn webhook_secret_context(account_id: i64, url: &str) -> String {
    format!("senderauth webhook secret for account {account_id} at {url}")
}

/// A webhook endpoint as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub account_id: i64,
    pub url: String,
    pub created_at: i64,
}

/// A delivery claimed for sending, with what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub url: String,
    /// The endpoint's signing secret, or why it could not be opened.
    pub secret: Result<String, String>,
    pub attempts: i64,
    pub event_id: i64,
    pub event: String,
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub domain: String,
    pub account_id: i64,
    /// What a DMARC event is about (JSON); none for a status change.
    pub detail_json: Option<String>,
}

/// A delivery as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl Store {
    /// Adds a webhook endpoint to an account; returns its id and the signing secret, shown once.
    /// The secret is stored sealed by `sealer`, never in the clear.
    pub async fn add_webhook(
        &self,
        account_id: i64,
        url: &str,
        now: i64,
        sealer: &dyn Sealer,
    ) -> Result<(WebhookEndpoint, String), StoreError> {
        let secret = random_hex("whsec_", 24)?;
        let (key_id, sealed) = sealer
            .seal(&webhook_secret_context(account_id, url), secret.as_bytes())
            .map_err(|error| StoreError::Sealing { what: "the webhook secret", reason: error.to_string() })?;
        let row = sqlx::query(self.sql(
            "INSERT INTO webhook_endpoints (account_id, url, secret, secret_sealed, secret_key_id, created_at) \
             VALUES (?, ?, '', ?, ?, ?) RETURNING id",
        ))
        .bind(account_id)
        .bind(url)
        .bind(sealed)
        .bind(key_id)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(database("adding a webhook"))?;
        Ok((WebhookEndpoint { id: row.get(0), account_id, url: url.to_string(), created_at: now }, secret))
    }

    /// An account's webhook endpoints.
    pub async fn webhooks(&self, account_id: i64) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT id, account_id, url, created_at FROM webhook_endpoints WHERE account_id = ? ORDER BY id"),
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database("listing webhooks"))?;
        Ok(rows
            .iter()
            .map(|row| WebhookEndpoint {
                id: row.get(0),
                account_id: row.get(1),
                url: row.get(2),
                created_at: row.get(3),
            })
            .collect())
    }

    /// Removes one of an account's webhook endpoints with its deliveries.
    pub async fn delete_webhook(&self, account_id: i64, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(self.sql("DELETE FROM webhook_endpoints WHERE id = ? AND account_id = ?"))
            .bind(id)
            .bind(account_id)
            .execute(&self.writer)
            .await
            .map_err(database("removing a webhook"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The deliveries to one of an account's endpoints, newest first (`None` when the account
    /// has no such endpoint).
    pub async fn deliveries(
        &self,
        account_id: i64,
        endpoint_id: i64,
        limit: i64,
    ) -> Result<Option<Vec<DeliveryRecord>>, StoreError> {
        let owned = sqlx::query(self.sql("SELECT 1 FROM webhook_endpoints WHERE id = ? AND account_id = ?"))
            .bind(endpoint_id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a webhook"))?;
        if owned.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(self.sql(
            "SELECT id, event_id, state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at \
             FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
        ))
        .bind(endpoint_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(database("listing deliveries"))?;
        Ok(Some(
            rows.iter()
                .map(|row| DeliveryRecord {
                    id: row.get(0),
                    event_id: row.get(1),
                    state: row.get(2),
                    attempts: row.get(3),
                    next_attempt_at: row.get(4),
                    last_status: row.get(5),
                    last_error: row.get(6),
                    created_at: row.get(7),
                    delivered_at: row.get(8),
                })
                .collect(),
        ))
    }

    /// Claims pending deliveries that are due, leased to `node` until `lease_until`, so each is
    /// sent by one node at a time.
    pub async fn claim_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        sealer: &dyn Sealer,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let claim = sqlx::query(self.claim_sql(
            "UPDATE webhook_deliveries SET lease_until = ?, leased_by = ? WHERE id IN (\
             SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at, id LIMIT ? {lock}) RETURNING id",
        ))
        .bind(lease_until)
        .bind(node)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.writer)
        .await
        .map_err(database("claiming deliveries"))?;
        let mut due = Vec::with_capacity(claim.len());
        for row in claim {
            let id: i64 = row.get(0);
            let row = sqlx::query(self.sql(
                "SELECT d.id, w.url, w.secret, d.attempts, e.id, e.event, e.at, e.from_status, e.to_status, m.domain, m.account_id, \
                 w.secret_sealed, w.secret_key_id, w.account_id, e.detail_json FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 JOIN status_events e ON e.id = d.event_id JOIN domains m ON m.id = e.domain_id WHERE d.id = ?",
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a delivery"))?;
            if let Some(row) = row {
                let url: String = row.get(1);
                // Sealed (every endpoint added since secrets are sealed), or from before, in the clear.
                let secret = match (row.get::<Option<Vec<u8>>, _>(11), row.get::<Option<String>, _>(12)) {
                    (Some(sealed), Some(key_id)) => sealer
                        .open(&webhook_secret_context(row.get(13), &url), &key_id, &sealed)
                        .and_then(|plain| String::from_utf8(plain).map_err(|_| "it is not text".to_string())),
                    _ => Ok(row.get(2)),
                };
                due.push(DueDelivery {
                    id: row.get(0),
                    url,
                    secret,
                    attempts: row.get(3),
                    event_id: row.get(4),
                    event: row.get::<Option<String>, _>(5).unwrap_or_default(),
                    at: row.get(6),
                    from_status: row.get(7),
                    to_status: row.get(8),
                    domain: row.get(9),
                    account_id: row.get(10),
                    detail_json: row.get(14),
                });
            }
        }
        Ok(due)
    }

    /// Records an attempt: delivered, retried at `next_attempt_at`, or given up (`failed`) when
    /// that is `None`.
    pub async fn record_delivery(
        &self,
        id: i64,
        delivered: bool,
        status: Option<i64>,
        error: Option<&str>,
        now: i64,
        next_attempt_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let state = if delivered {
            "delivered"
        } else if next_attempt_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        sqlx::query(self.sql(
            "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, \
             next_attempt_at = ?, delivered_at = ?, lease_until = NULL, leased_by = NULL WHERE id = ?",
        ))
        .bind(state)
        .bind(status)
        .bind(error)
        .bind(if delivered { None } else { next_attempt_at })
        .bind(delivered.then_some(now))
        .bind(id)
        .execute(&self.writer)
        .await
        .map_err(database("recording a delivery"))?;
        Ok(())
    }
}
