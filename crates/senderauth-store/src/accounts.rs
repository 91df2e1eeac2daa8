//! Accounts, API tokens (only their SHA-256 is kept), the web UI's sessions and the platform's
//! reserved domains.

use senderauth_core::return_path::Fallback;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Store, StoreError, database};

/// An account of the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    /// At most this many domains; `None` for no limit.
    pub domain_limit: Option<i64>,
    pub created_at: i64,
    /// What the gateway does with mail signed as a domain whose return-path is not in use.
    pub return_path_fallback: Fallback,
}

/// Who a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Account(i64),
}

/// A signed-in web UI session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiSession {
    pub account_id: i64,
    /// Every form of the session carries it back.
    pub csrf_token: String,
    pub expires_at: i64,
}

/// `prefix` and `bytes` random bytes in hex.
pub(crate) fn random_hex(prefix: &str, bytes: usize) -> Result<String, StoreError> {
    senderauth_core::token::random_hex(prefix, bytes).map_err(|error| StoreError::Random(error.to_string()))
}

/// A token as listed: never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub account_id: Option<i64>,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// SHA-256 of a token: what is stored and looked up instead of the token.
pub(crate) fn token_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl Store {
    /// Creates an account.
    pub async fn create_account(&self, name: &str, domain_limit: Option<i64>, now: i64) -> Result<Account, StoreError> {
        let row = sqlx::query(
            self.sql("INSERT INTO accounts (name, domain_limit, created_at) VALUES (?, ?, ?) RETURNING id"),
        )
        .bind(name)
        .bind(domain_limit)
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(database("creating an account"))?;
        Ok(Account {
            id: row.get(0),
            name: name.to_string(),
            domain_limit,
            created_at: now,
            return_path_fallback: Fallback::default(),
        })
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            self.sql("SELECT id, name, domain_limit, created_at, return_path_fallback FROM accounts WHERE id = ?"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading an account"))?;
        row.map(|row| {
            let fallback: String = row.get(4);
            Ok(Account {
                id: row.get(0),
                name: row.get(1),
                domain_limit: row.get(2),
                created_at: row.get(3),
                return_path_fallback: Fallback::parse(&fallback).ok_or_else(|| StoreError::Corrupt {
                    what: format!("account {id}'s return-path fallback"),
                    reason: format!("{fallback:?} is not one this version knows"),
                })?,
            })
        })
        .transpose()
    }

    /// Sets what the gateway does with an account's mail signed as a domain whose return-path
    /// is not in use; `false` when there is no such account.
    pub async fn set_return_path_fallback(&self, id: i64, fallback: Fallback) -> Result<bool, StoreError> {
        let done = sqlx::query(self.sql("UPDATE accounts SET return_path_fallback = ? WHERE id = ?"))
            .bind(fallback.as_str())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(database("changing an account's settings"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates a token for an account (or an admin token) and returns it with its secret,
    /// which is shown once: only its SHA-256 is stored.
    pub async fn create_token(
        &self,
        account_id: Option<i64>,
        label: &str,
        now: i64,
    ) -> Result<(TokenInfo, String), StoreError> {
        let secret = random_hex("sa_", 32)?;
        let row = sqlx::query(self.sql(
            "INSERT INTO api_tokens (account_id, label, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        ))
        .bind(account_id)
        .bind(label)
        .bind(token_hash(&secret))
        .bind(now)
        .fetch_one(&self.writer)
        .await
        .map_err(database("creating a token"))?;
        let info =
            TokenInfo { id: row.get(0), account_id, label: label.to_string(), created_at: now, revoked_at: None };
        Ok((info, secret))
    }

    /// Signs in to the web UI with an account token: a new session of `lifetime` seconds.
    /// Returns `None` for an unknown, revoked or admin token; else the session's secret (for
    /// the cookie; only its hash is stored) and its CSRF token.
    pub async fn create_session(
        &self,
        token: &str,
        now: i64,
        lifetime: i64,
    ) -> Result<Option<(String, UiSession)>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT id, account_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL AND account_id IS NOT NULL",
        ))
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(database("checking a token"))?;
        let Some(row) = row else { return Ok(None) };
        let (token_id, account_id): (i64, i64) = (row.get(0), row.get(1));
        let secret = random_hex("sas_", 32)?;
        let csrf = random_hex("", 24)?;
        sqlx::query(self.sql(
            "INSERT INTO ui_sessions (session_hash, token_id, account_id, csrf_token, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(token_hash(&secret))
        .bind(token_id)
        .bind(account_id)
        .bind(csrf.clone())
        .bind(now)
        .bind(now + lifetime)
        .execute(&self.writer)
        .await
        .map_err(database("starting a session"))?;
        Ok(Some((secret, UiSession { account_id, csrf_token: csrf, expires_at: now + lifetime })))
    }

    /// The session a cookie's secret names, if it has not expired and its token still stands.
    pub async fn session(&self, secret: &str, now: i64) -> Result<Option<UiSession>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT s.account_id, s.csrf_token, s.expires_at FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id \
             WHERE s.session_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
        ))
        .bind(token_hash(secret))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a session"))?;
        Ok(row.map(|row| UiSession { account_id: row.get(0), csrf_token: row.get(1), expires_at: row.get(2) }))
    }

    /// Ends a session (signing out), and any expired ones.
    pub async fn end_session(&self, secret: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(self.sql("DELETE FROM ui_sessions WHERE session_hash = ? OR expires_at <= ?"))
            .bind(token_hash(secret))
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(database("ending a session"))?;
        Ok(())
    }

    /// Makes sure a token with this secret exists (for an admin token given in configuration);
    /// does nothing when it does.
    pub async fn ensure_token(
        &self,
        account_id: Option<i64>,
        label: &str,
        secret: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let hash = token_hash(secret);
        let existing = sqlx::query(self.sql("SELECT 1 FROM api_tokens WHERE token_hash = ?"))
            .bind(hash.clone())
            .fetch_optional(&self.pool)
            .await
            .map_err(database("checking a token"))?;
        if existing.is_none() {
            sqlx::query(
                self.sql("INSERT INTO api_tokens (account_id, label, token_hash, created_at) VALUES (?, ?, ?, ?)"),
            )
            .bind(account_id)
            .bind(label)
            .bind(hash)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(database("saving a token"))?;
        }
        Ok(())
    }

    /// Whether any admin token is valid (not revoked).
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        let row =
            sqlx::query(self.sql("SELECT 1 FROM api_tokens WHERE account_id IS NULL AND revoked_at IS NULL LIMIT 1"))
                .fetch_optional(&self.pool)
                .await
                .map_err(database("checking for an admin token"))?;
        Ok(row.is_some())
    }

    /// Who a presented token belongs to, if it is known and not revoked. The token is looked
    /// up by its hash, so no stored secret is ever compared byte by byte.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, StoreError> {
        let row =
            sqlx::query(self.sql("SELECT account_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"))
                .bind(token_hash(secret))
                .fetch_optional(&self.pool)
                .await
                .map_err(database("checking a token"))?;
        Ok(row.map(|row| match row.get::<Option<i64>, _>(0) {
            Some(account_id) => Principal::Account(account_id),
            None => Principal::Admin,
        }))
    }

    /// The tokens of an account (`None`: the admin tokens), newest first.
    pub async fn tokens(&self, account_id: Option<i64>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = match account_id {
            Some(account_id) => sqlx::query(self.sql(
                "SELECT id, account_id, label, created_at, revoked_at FROM api_tokens WHERE account_id = ? ORDER BY id DESC",
            ))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await,
            None => sqlx::query(self.sql(
                "SELECT id, account_id, label, created_at, revoked_at FROM api_tokens WHERE account_id IS NULL ORDER BY id DESC",
            ))
            .fetch_all(&self.pool)
            .await,
        }
        .map_err(database("listing tokens"))?;
        Ok(rows
            .iter()
            .map(|row| TokenInfo {
                id: row.get(0),
                account_id: row.get(1),
                label: row.get(2),
                created_at: row.get(3),
                revoked_at: row.get(4),
            })
            .collect())
    }

    /// Revokes one of an account's tokens; `false` when it has no such token.
    pub async fn revoke_token(&self, account_id: Option<i64>, token_id: i64, now: i64) -> Result<bool, StoreError> {
        let result =
            match account_id {
                Some(account_id) => {
                    sqlx::query(self.sql(
                        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
                    ))
                    .bind(now)
                    .bind(token_id)
                    .bind(account_id)
                    .execute(&self.writer)
                    .await
                }
                None => sqlx::query(self.sql(
                    "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND account_id IS NULL AND revoked_at IS NULL",
                ))
                .bind(now)
                .bind(token_id)
                .execute(&self.writer)
                .await,
            }
            .map_err(database("revoking a token"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Reserves a domain for the platform's own use; reserving it again updates the reason.
    pub async fn reserve_domain(&self, domain: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO reserved_domains (domain, reason, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason",
        ))
        .bind(domain)
        .bind(reason)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(database("reserving a domain"))?;
        Ok(())
    }

    pub async fn unreserve_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(self.sql("DELETE FROM reserved_domains WHERE domain = ?"))
            .bind(domain)
            .execute(&self.writer)
            .await
            .map_err(database("removing a reserved domain"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The reserved domains with their reasons, alphabetically.
    pub async fn reserved_domains(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT domain, reason FROM reserved_domains ORDER BY domain"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("listing reserved domains"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Whether a domain is reserved (exactly; its subdomains are not).
    pub async fn is_reserved(&self, domain: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(self.sql("SELECT 1 FROM reserved_domains WHERE domain = ?"))
            .bind(domain)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("checking reserved domains"))?;
        Ok(row.is_some())
    }
}
