//! Read-only links to a domain's setup page: made by the account, opened by anyone holding the
//! link until it expires or is revoked. The link carries a random secret (256 bits); only its
//! SHA-256 is stored, so the database alone cannot open a page.

use sqlx::Row;

use crate::accounts::token_hash;
use crate::{Store, StoreError, database, random_hex};

/// A share link as listed to its account: never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareLink {
    pub id: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What an open share link leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedDomain {
    pub account_id: i64,
    pub domain: String,
    pub expires_at: i64,
}

impl Store {
    /// Makes a share link to one of an account's domains, valid until `expires_at`. Returns the
    /// link and its secret (for the URL; only its hash is kept), or `None` when the account has
    /// no such domain.
    pub async fn create_share_link(
        &self,
        account_id: i64,
        domain: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<(ShareLink, String)>, StoreError> {
        let secret = random_hex("", 32)?;
        let row = sqlx::query(self.sql(
            "INSERT INTO share_links (secret_hash, domain_id, created_at, expires_at) \
             SELECT ?, id, ?, ? FROM domains WHERE account_id = ? AND domain = ? RETURNING id",
        ))
        .bind(token_hash(&secret))
        .bind(now)
        .bind(expires_at)
        .bind(account_id)
        .bind(domain)
        .fetch_optional(&self.writer)
        .await
        .map_err(database("making a share link"))?;
        Ok(row.map(|row| (ShareLink { id: row.get(0), created_at: now, expires_at }, secret)))
    }

    /// The share links of one of an account's domains that still open, newest first.
    pub async fn share_links(&self, account_id: i64, domain: &str, now: i64) -> Result<Vec<ShareLink>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT s.id, s.created_at, s.expires_at FROM share_links s JOIN domains d ON d.id = s.domain_id \
             WHERE d.account_id = ? AND d.domain = ? AND s.revoked_at IS NULL AND s.expires_at > ? ORDER BY s.id DESC",
        ))
        .bind(account_id)
        .bind(domain)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(database("listing share links"))?;
        Ok(rows
            .iter()
            .map(|row| ShareLink { id: row.get(0), created_at: row.get(1), expires_at: row.get(2) })
            .collect())
    }

    /// Revokes one of the share links of an account's domain; `false` when it has no such link
    /// (another account's link is no such link).
    pub async fn revoke_share_link(
        &self,
        account_id: i64,
        domain: &str,
        id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(self.sql(
            "UPDATE share_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND domain_id IN \
             (SELECT id FROM domains WHERE account_id = ? AND domain = ?)",
        ))
        .bind(now)
        .bind(id)
        .bind(account_id)
        .bind(domain)
        .execute(&self.writer)
        .await
        .map_err(database("revoking a share link"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The domain a share link's secret opens, if the link has neither expired nor been revoked.
    pub async fn shared_domain(&self, secret: &str, now: i64) -> Result<Option<SharedDomain>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT d.account_id, d.domain, s.expires_at FROM share_links s JOIN domains d ON d.id = s.domain_id \
             WHERE s.secret_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
        ))
        .bind(token_hash(secret))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("opening a share link"))?;
        Ok(row.map(|row| SharedDomain { account_id: row.get(0), domain: row.get(1), expires_at: row.get(2) }))
    }
}
