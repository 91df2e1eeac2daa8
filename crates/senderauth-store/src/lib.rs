//! senderauth's store: accounts, API tokens, reserved domains, connected domains, their latest
//! verification and status history, on SQLite (one node) or PostgreSQL (several nodes).
//!
//! One `Store` serves both through sqlx's `Any` driver: every query is written once with `?`
//! placeholders, numbered `$1, $2, ...` for PostgreSQL. Times are Unix seconds, so both
//! backends store them the same way. No query needs a database at build time.

mod keys;
mod sandbox;

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row, SqlSafeStr};

pub use keys::{DomainZone, KeyGroup, KeyInfo, KeyState, NameContents, NewKey, SealedKey, SealedKind, ZoneContents};
pub use sandbox::{SandboxRecord, SandboxZone};

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

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store error: the database failed, or a request conflicts with what is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {url:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE")]
    UnsupportedUrl { url: String },
    #[error("database error while {action}: {source}")]
    Database { action: &'static str, source: sqlx::Error },
    #[error("migrating the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The account does not exist (it was never made, or a caller passed a wrong id).
    #[error("account {account_id} does not exist")]
    AccountMissing { account_id: i64 },
    /// The domain is already connected to this account.
    #[error("{domain} is already connected to this account")]
    DomainExists { domain: String },
    /// The account has as many domains as its limit allows.
    #[error("the account has {count} domains, its limit; remove one or ask for a higher limit")]
    DomainLimitReached { count: i64 },
    /// A sandbox zone of that name belongs to another account.
    #[error(
        "{apex} is already hosted in the sandbox by another account; use a domain of your own making, like shop-{account_id}.example"
    )]
    ZoneTaken { apex: String, account_id: i64 },
    /// A row the operation works on was removed meanwhile.
    #[error("{what} no longer exists")]
    Gone { what: String },
    /// A stored value does not read (the database holds something this version cannot decode).
    #[error("{what} does not read: {reason}")]
    Corrupt { what: String, reason: String },
    /// The sealer refused to seal a secret.
    #[error("sealing {what}: {reason}")]
    Sealing { what: &'static str, reason: String },
    #[error("cannot read random bytes for a token: {0}")]
    Random(String),
}

fn database(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { action, source }
}

/// An account of the platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    /// At most this many domains; `None` for no limit.
    pub domain_limit: Option<i64>,
    pub created_at: i64,
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
fn random_hex(prefix: &str, bytes: usize) -> Result<String, StoreError> {
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

/// A connected domain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct DomainRecord {
    pub id: i64,
    pub account_id: i64,
    pub domain: String,
    pub status: String,
    pub created_at: i64,
    pub setup_started_at: i64,
    pub last_checked_at: Option<i64>,
    /// `None`: not scheduled.
    pub next_check_at: Option<i64>,
    pub consecutive_failures: i64,
    pub degraded_since: Option<i64>,
}

/// The outcome of one check and the lifecycle's decision, to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRecord {
    pub checked_at: i64,
    /// The domain's status after this check (the lifecycle may keep the previous one).
    pub status: String,
    /// The lifecycle event to announce with a status change (`domain.verified`, ...).
    pub event: Option<String>,
    pub setup_started_at: i64,
    pub degraded_since: Option<i64>,
    pub dkim_status: String,
    pub spf_status: String,
    pub dmarc_status: String,
    pub result_json: String,
    /// The problem codes found, sorted, separated by spaces (the check log's summary).
    pub problem_codes: String,
    /// Asked for by the customer (Verify) rather than scheduled: of two checks started in the
    /// same second, a requested one is recorded even when the other was recorded first.
    pub requested: bool,
    pub next_check_at: Option<i64>,
    pub consecutive_failures: i64,
}

/// Consecutive checks of a domain with the same outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRun {
    pub id: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub checks: i64,
    pub status: String,
    pub dkim_status: String,
    pub spf_status: String,
    pub dmarc_status: String,
    pub problem_codes: String,
}

/// The latest check of a domain, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    pub checked_at: i64,
    pub status: String,
    pub dkim_status: String,
    pub spf_status: String,
    pub dmarc_status: String,
    pub result_json: String,
}

/// A domain with its latest result and its status changes, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPage {
    pub record: DomainRecord,
    pub result: Option<StoredResult>,
    pub history: Vec<StatusEvent>,
    /// Whether the domain has Ed25519 keys (it signs with them alongside RSA).
    pub ed25519: bool,
}

/// A change of a domain's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub id: i64,
    pub domain_id: i64,
    pub at: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub event: Option<String>,
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

/// The status a newly connected domain starts in.
pub const INITIAL_STATUS: &str = "pending";

/// A store over SQLite or PostgreSQL. Cheap to clone.
///
/// Reads and writes go through separate pools. SQLite allows one writer at a time: its writes
/// share a single connection and queue for it in the pool (instead of each holding a connection
/// while SQLite's busy handler sleeps), and reads (WAL) never wait behind them. On PostgreSQL
/// both are one pool.
/// Connections a store opens by default: twice the cores, at least 4. More only queue more
/// work on the same cores: at 1,000,000 domains on 2 cores, 16 connections to PostgreSQL
/// instead of 4 took the API's p99 under load from about 15 to 20-30 ms (docs/benchmarks.md).
pub fn default_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get() as u32);
    (cores * 2).max(4)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, "dkim keys", include_str!("../migrations/sqlite/0002_dkim_keys.sql")),
    (3, "key rotation", include_str!("../migrations/sqlite/0003_key_rotation.sql")),
    (4, "zone push", include_str!("../migrations/sqlite/0004_zone_push.sql")),
    (5, "platform keys", include_str!("../migrations/sqlite/0005_platform_keys.sql")),
    (6, "sealed webhook secrets", include_str!("../migrations/sqlite/0006_sealed_webhook_secrets.sql")),
    (7, "ui sessions", include_str!("../migrations/sqlite/0007_ui_sessions.sql")),
    (8, "sandbox", include_str!("../migrations/sqlite/0008_sandbox.sql")),
    (9, "check runs", include_str!("../migrations/sqlite/0009_check_runs.sql")),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "claim order indexes", include_str!("../migrations/postgres/0002_claim_order_indexes.sql")),
    (3, "dkim keys", include_str!("../migrations/postgres/0003_dkim_keys.sql")),
    (4, "key rotation", include_str!("../migrations/postgres/0004_key_rotation.sql")),
    (5, "zone push", include_str!("../migrations/postgres/0005_zone_push.sql")),
    (6, "platform keys", include_str!("../migrations/postgres/0006_platform_keys.sql")),
    (7, "sealed webhook secrets", include_str!("../migrations/postgres/0007_sealed_webhook_secrets.sql")),
    (8, "ui sessions", include_str!("../migrations/postgres/0008_ui_sessions.sql")),
    (9, "sandbox", include_str!("../migrations/postgres/0009_sandbox.sql")),
    (10, "check runs", include_str!("../migrations/postgres/0010_check_runs.sql")),
];

impl Store {
    /// Connects to `sqlite://PATH` (created if missing) or `postgres://...` with the default
    /// number of connections ([`default_connections`]) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, default_connections()).await
    }

    /// As [`Store::connect`], with at most `connections` connections for reads (PostgreSQL:
    /// for everything; SQLite adds its one writer).
    pub async fn connect_with(url: &str, connections: u32) -> Result<Store, StoreError> {
        let connections = connections.max(1);
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl { url: url.to_string() });
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let connect = |connections: u32| {
            let mut options = AnyPoolOptions::new().max_connections(connections);
            if backend == Backend::Sqlite {
                // WAL lets readers go on while a check is written; NORMAL is durable with WAL.
                options = options.after_connect(|connection, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *connection).await?;
                        Ok(())
                    })
                });
            }
            options.connect(&url)
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                // The writer first: it creates the file and turns WAL on.
                let writer = connect(1).await.map_err(database("connecting to the database"))?;
                (connect(connections).await.map_err(database("connecting to the database"))?, writer)
            }
            Backend::Postgres => {
                let pool = connect(connections).await.map_err(database("connecting to the database"))?;
                (pool.clone(), pool)
            }
        };
        let store = Store { pool, writer, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let sources = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = sources
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect();
        Migrator::with_migrations(migrations).run(&self.writer).await?;
        Ok(())
    }

    /// The query text for this backend: `?` placeholders become `$1, $2, ...` for PostgreSQL.
    fn sql(&self, text: impl Into<Cow<'static, str>>) -> AssertSqlSafe<Cow<'static, str>> {
        let text = text.into();
        if self.backend == Backend::Sqlite {
            return AssertSqlSafe(text);
        }
        let mut numbered = String::with_capacity(text.len() + 8);
        let mut index = 0;
        for character in text.chars() {
            if character == '?' {
                index += 1;
                numbered.push('$');
                numbered.push_str(&index.to_string());
            } else {
                numbered.push(character);
            }
        }
        AssertSqlSafe(Cow::Owned(numbered))
    }

    /// A claiming query: `{lock}` becomes `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent
    /// claims take disjoint rows (the outer UPDATE does not re-check a subquery's condition
    /// after waiting for a row); SQLite has one writer and needs nothing.
    fn claim_sql(&self, text: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        let lock = if self.backend == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
        self.sql(text.replace("{lock}", lock))
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first cannot upgrade once another writer
    /// has committed, and fails at once instead of waiting.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .map_err(database("starting a transaction"))
    }

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
        Ok(Account { id: row.get(0), name: name.to_string(), domain_limit, created_at: now })
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(self.sql("SELECT id, name, domain_limit, created_at FROM accounts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading an account"))?;
        Ok(row.map(|row| Account {
            id: row.get(0),
            name: row.get(1),
            domain_limit: row.get(2),
            created_at: row.get(3),
        }))
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

    /// Connects a domain to an account. The same domain twice in one account is a conflict;
    /// two accounts may connect the same domain. The account's domain limit is enforced in the
    /// same transaction.
    pub async fn add_domain(&self, account_id: i64, domain: &str, now: i64) -> Result<DomainRecord, StoreError> {
        self.add_domain_with(account_id, domain, now, &DomainZone::default()).await
    }

    /// Connects a domain as `add_domain` does, with what it publishes in the platform's zone
    /// (its keys and SPF include host), all in one transaction.
    pub async fn add_domain_with(
        &self,
        account_id: i64,
        domain: &str,
        now: i64,
        zone: &DomainZone,
    ) -> Result<DomainRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let limit: Option<i64> = sqlx::query(self.sql("SELECT domain_limit FROM accounts WHERE id = ?"))
            .bind(account_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(database("reading the account"))?
            .ok_or(StoreError::AccountMissing { account_id })?
            .get(0);
        if let Some(limit) = limit {
            let count: i64 = sqlx::query(self.sql("SELECT COUNT(*) FROM domains WHERE account_id = ?"))
                .bind(account_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(database("counting domains"))?
                .get(0);
            if count >= limit {
                return Err(StoreError::DomainLimitReached { count });
            }
        }
        let existing = sqlx::query(self.sql("SELECT 1 FROM domains WHERE account_id = ? AND domain = ?"))
            .bind(account_id)
            .bind(domain)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(database("checking for the domain"))?;
        if existing.is_some() {
            return Err(StoreError::DomainExists { domain: domain.to_string() });
        }
        let row = sqlx::query(self.sql(
            "INSERT INTO domains (account_id, domain, status, created_at, setup_started_at, next_check_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(account_id)
        .bind(domain)
        .bind(INITIAL_STATUS)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(database("connecting a domain"))?;
        let id: i64 = row.get(0);
        sqlx::query(
            self.sql("INSERT INTO status_events (domain_id, at, from_status, to_status) VALUES (?, ?, NULL, ?)"),
        )
        .bind(id)
        .bind(now)
        .bind(INITIAL_STATUS)
        .execute(&mut *transaction)
        .await
        .map_err(database("recording the domain's first status"))?;
        self.publish_domain_zone(&mut transaction, id, zone, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(DomainRecord {
            id,
            account_id,
            domain: domain.to_string(),
            status: INITIAL_STATUS.to_string(),
            created_at: now,
            setup_started_at: now,
            last_checked_at: None,
            next_check_at: Some(now),
            consecutive_failures: 0,
            degraded_since: None,
        })
    }

    /// One of an account's domains. Another account's domain is `None`, exactly as a missing one.
    pub async fn domain(&self, account_id: i64, domain: &str) -> Result<Option<DomainRecord>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT id, account_id, domain, status, created_at, setup_started_at, last_checked_at, next_check_at, \
             consecutive_failures, degraded_since \
             FROM domains WHERE account_id = ? AND domain = ?",
        ))
        .bind(account_id)
        .bind(domain)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a domain"))?;
        Ok(row.as_ref().map(domain_record))
    }

    /// One of an account's domains with its latest result and status history, in one query
    /// (the domain page).
    pub async fn domain_page(&self, account_id: i64, domain: &str) -> Result<Option<DomainPage>, StoreError> {
        // The history comes as a JSON array from a subquery; each backend spells it its own way.
        let history = match self.backend {
            Backend::Sqlite => {
                "(SELECT json_group_array(json_object('id', id, 'at', at, 'from', from_status, 'to', to_status, \
                 'event', event)) FROM status_events WHERE domain_id = d.id)"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(json_build_object('id', id, 'at', at, 'from', from_status, 'to', to_status, \
                 'event', event)), '[]')::text FROM status_events WHERE domain_id = d.id)"
            }
        };
        let row = sqlx::query(self.sql(format!(
            "SELECT d.id, d.account_id, d.domain, d.status, d.created_at, d.setup_started_at, d.last_checked_at, \
             d.next_check_at, d.consecutive_failures, d.degraded_since, \
             r.checked_at, r.status, r.dkim_status, r.spf_status, r.dmarc_status, r.result_json, {history}, \
             (SELECT COUNT(*) FROM dkim_keys k WHERE k.domain_id = d.id AND k.algorithm = 'ed25519' \
             AND k.state <> 'removed') \
             FROM domains d LEFT JOIN verification_results r ON r.domain_id = d.id \
             WHERE d.account_id = ? AND d.domain = ?"
        )))
        .bind(account_id)
        .bind(domain)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a domain"))?;
        let Some(row) = row else { return Ok(None) };
        let record = domain_record(&row);
        // No result joined (never checked): its columns are NULL.
        let result = row.get::<Option<i64>, _>(10).is_some().then(|| stored_result(&row, 10));
        let events: Vec<serde_json::Value> = serde_json::from_str(&row.get::<String, _>(16)).map_err(|error| {
            StoreError::Corrupt { what: format!("the status history of {domain}"), reason: error.to_string() }
        })?;
        let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
        let mut history: Vec<StatusEvent> = events
            .iter()
            .map(|event| StatusEvent {
                id: event["id"].as_i64().unwrap_or_default(),
                domain_id: record.id,
                at: event["at"].as_i64().unwrap_or_default(),
                from_status: text(&event["from"]),
                to_status: text(&event["to"]).unwrap_or_default(),
                event: text(&event["event"]),
            })
            .collect();
        history.sort_by_key(|event| event.id);
        let ed25519 = row.get::<i64, _>(17) > 0;
        Ok(Some(DomainPage { record, result, history, ed25519 }))
    }

    /// An account's domains in name order, optionally of one status, after `after` (keyset
    /// pagination), at most `limit`.
    pub async fn domains(
        &self,
        account_id: i64,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        self.domain_list(account_id, status, None, after, limit).await
    }

    /// As `domains`, only those whose name contains `search` (case-insensitive).
    pub async fn domains_matching(
        &self,
        account_id: i64,
        status: Option<&str>,
        search: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        self.domain_list(account_id, status, Some(search), after, limit).await
    }

    /// A page of an account's domains, optionally of one status and matching a search.
    async fn domain_list(
        &self,
        account_id: i64,
        status: Option<&str>,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        const COLUMNS: &str = "id, account_id, domain, status, created_at, setup_started_at, last_checked_at, \
                               next_check_at, consecutive_failures, degraded_since";
        // Clauses only when they filter, so that each variant gets its own plan (the status index
        // for a status). The limit is written into the text: SQLite prepares a statement again
        // at every run when its LIMIT is a bound parameter (it plans with the value).
        let of_status = if status.is_some() { "AND status = ? " } else { "" };
        let matching = if search.is_some() { "AND domain LIKE ? ESCAPE '\\' " } else { "" };
        let page = format!(
            "SELECT {COLUMNS} FROM domains WHERE account_id = ? {of_status}{matching}AND domain > ? \
             ORDER BY domain LIMIT {limit}",
            limit = limit.max(0)
        );
        // SQLite: the page as one row, aggregated into JSON. Row by row, its driver hands each
        // row across threads, and that, not the query, was most of a page's cost under load.
        // PostgreSQL's driver streams rows from the socket: plain rows.
        let text = match self.backend {
            Backend::Sqlite => {
                format!(
                    "SELECT COALESCE(json_group_array(json_array({COLUMNS}) ORDER BY domain), '[]') FROM ({page}) page"
                )
            }
            Backend::Postgres => page,
        };
        let mut query = sqlx::query(self.sql(text)).bind(account_id);
        if let Some(status) = status {
            query = query.bind(status);
        }
        if let Some(search) = search {
            let escaped: String = search
                .to_ascii_lowercase()
                .chars()
                .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
                .collect();
            query = query.bind(format!("%{escaped}%"));
        }
        let rows = query.bind(after.unwrap_or("")).fetch_all(&self.pool).await.map_err(database("listing domains"))?;
        match self.backend {
            Backend::Postgres => Ok(rows.iter().map(domain_record).collect()),
            // Each domain comes as an array of the columns, in DomainRecord's field order.
            Backend::Sqlite => serde_json::from_str(
                &rows.first().map(|row| row.get::<String, _>(0)).unwrap_or_default(),
            )
            .map_err(|error| StoreError::Corrupt { what: "a page of domains".to_string(), reason: error.to_string() }),
        }
    }

    /// The latest check's status per method (DKIM, SPF, DMARC) of each of `domain_ids` that has
    /// been checked, for a page of the domains list.
    pub async fn method_statuses(
        &self,
        domain_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, [String; 3]>, StoreError> {
        if domain_ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let placeholders = vec!["?"; domain_ids.len()].join(", ");
        let text = format!(
            "SELECT domain_id, dkim_status, spf_status, dmarc_status FROM verification_results WHERE domain_id IN ({placeholders})"
        );
        let mut query = sqlx::query(self.sql(text));
        for id in domain_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database("reading the methods' statuses"))?;
        Ok(rows.iter().map(|row| (row.get(0), [row.get(1), row.get(2), row.get(3)])).collect())
    }

    /// Removes one of an account's domains with its results and history; `false` when the
    /// account has no such domain.
    pub async fn delete_domain(&self, account_id: i64, domain: &str, now: i64) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        // Its keys (and perhaps its account's include) leave the platform's zone with it.
        let names = self.domain_zone_names(&mut transaction, account_id, domain).await?;
        let result = sqlx::query(self.sql("DELETE FROM domains WHERE account_id = ? AND domain = ?"))
            .bind(account_id)
            .bind(domain)
            .execute(&mut *transaction)
            .await
            .map_err(database("removing a domain"))?;
        self.log_zone_changes(&mut transaction, &names, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(result.rows_affected() == 1)
    }

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
                .bind(check.status.clone())
                .bind(check.dkim_status.clone())
                .bind(check.spf_status.clone())
                .bind(check.dmarc_status.clone())
                .bind(check.problem_codes.clone())
        };
        let new_run = |query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            query
                .bind(domain_id)
                .bind(check.checked_at)
                .bind(check.checked_at)
                .bind(check.status.clone())
                .bind(check.dkim_status.clone())
                .bind(check.spf_status.clone())
                .bind(check.dmarc_status.clone())
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
        Ok(rows
            .iter()
            .map(|row| CheckRun {
                id: row.get(0),
                first_at: row.get(1),
                last_at: row.get(2),
                checks: row.get(3),
                status: row.get(4),
                dkim_status: row.get(5),
                spf_status: row.get(6),
                dmarc_status: row.get(7),
                problem_codes: row.get(8),
            })
            .collect())
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
                 setup_started_at = ?, degraded_since = ?, lease_until = NULL, leased_by = NULL WHERE id = ?",
            ))
            .bind(&check.status)
            .bind(check.checked_at)
            .bind(check.next_check_at)
            .bind(check.consecutive_failures)
            .bind(check.setup_started_at)
            .bind(check.degraded_since)
            .bind(domain_id)
            .execute(&mut *transaction)
            .await
            .map_err(database("updating the domain"))?;
            sqlx::query(self.sql(
                "INSERT INTO verification_results (domain_id, checked_at, status, dkim_status, spf_status, dmarc_status, result_json) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain_id) DO UPDATE SET checked_at = excluded.checked_at, \
                 status = excluded.status, dkim_status = excluded.dkim_status, spf_status = excluded.spf_status, \
                 dmarc_status = excluded.dmarc_status, result_json = excluded.result_json",
            ))
            .bind(domain_id)
            .bind(check.checked_at)
            .bind(&check.status)
            .bind(&check.dkim_status)
            .bind(&check.spf_status)
            .bind(&check.dmarc_status)
            .bind(&check.result_json)
            .execute(&mut *transaction)
            .await
            .map_err(database("saving the result"))?;
            self.log_check(&mut transaction, domain_id, check).await?;
            let event = if previous == check.status {
                None
            } else {
                let row = sqlx::query(self.sql(
                    "INSERT INTO status_events (domain_id, at, from_status, to_status, event) VALUES (?, ?, ?, ?, ?) RETURNING id",
                ))
                .bind(domain_id)
                .bind(check.checked_at)
                .bind(&previous)
                .bind(&check.status)
                .bind(&check.event)
                .fetch_one(&mut *transaction)
                .await
                .map_err(database("recording the status change"))?;
                let event_id: i64 = row.get(0);
                if check.event.is_some() {
                    // One delivery per webhook endpoint of the domain's account, made with the event.
                    sqlx::query(self.sql(
                        "INSERT INTO webhook_deliveries (endpoint_id, event_id, state, next_attempt_at, created_at) \
                         SELECT id, ?, 'pending', ?, ? FROM webhook_endpoints \
                         WHERE account_id = (SELECT account_id FROM domains WHERE id = ?)",
                    ))
                    .bind(event_id)
                    .bind(check.checked_at)
                    .bind(check.checked_at)
                    .bind(domain_id)
                    .execute(&mut *transaction)
                    .await
                    .map_err(database("queueing webhook deliveries"))?;
                }
                Some(StatusEvent {
                    id: event_id,
                    domain_id,
                    at: check.checked_at,
                    from_status: Some(previous),
                    to_status: check.status.clone(),
                    event: check.event.clone(),
                })
            };
            outcomes.push(Ok(event));
        }
        transaction.commit().await.map_err(database("committing"))?;
        Ok(outcomes)
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
        let sql = self.claim_sql(
            "UPDATE domains SET lease_until = ?, leased_by = ? WHERE id IN (\
             SELECT id FROM domains WHERE next_check_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY next_check_at, id LIMIT ? {lock}) \
             RETURNING id, account_id, domain, status, created_at, setup_started_at, last_checked_at, next_check_at, \
             consecutive_failures, degraded_since",
        );
        let rows = sqlx::query(sql)
            .bind(lease_until)
            .bind(node)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await
            .map_err(database("claiming due domains"))?;
        let mut claimed: Vec<DomainRecord> = rows.iter().map(domain_record).collect();
        claimed.sort_by_key(|domain| (domain.next_check_at, domain.id));
        Ok(claimed)
    }

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
                 w.secret_sealed, w.secret_key_id, w.account_id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
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

    /// Whether the database reports itself sound (SQLite's integrity check; PostgreSQL: reachable).
    pub async fn integrity_ok(&self) -> Result<bool, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let row = sqlx::query("PRAGMA integrity_check")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(database("checking the database's integrity"))?;
                Ok(row.get::<String, _>(0) == "ok")
            }
            Backend::Postgres => {
                sqlx::query("SELECT 1").fetch_one(&self.pool).await.map_err(database("reaching the database"))?;
                Ok(true)
            }
        }
    }

    /// How many domains are in each status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT status, COUNT(*) FROM domains GROUP BY status ORDER BY status"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("counting domains per status"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
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

    /// The latest stored result of a domain.
    pub async fn latest_result(&self, domain_id: i64) -> Result<Option<StoredResult>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT checked_at, status, dkim_status, spf_status, dmarc_status, result_json \
             FROM verification_results WHERE domain_id = ?",
        ))
        .bind(domain_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading the latest result"))?;
        Ok(row.map(|row| stored_result(&row, 0)))
    }

    /// A domain's status changes, oldest first.
    pub async fn history(&self, domain_id: i64) -> Result<Vec<StatusEvent>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, domain_id, at, from_status, to_status, event FROM status_events WHERE domain_id = ? ORDER BY id",
        ))
        .bind(domain_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the status history"))?;
        Ok(rows
            .iter()
            .map(|row| StatusEvent {
                id: row.get(0),
                domain_id: row.get(1),
                at: row.get(2),
                from_status: row.get(3),
                to_status: row.get(4),
                event: row.get(5),
            })
            .collect())
    }
}

fn domain_record(row: &AnyRow) -> DomainRecord {
    DomainRecord {
        id: row.get(0),
        account_id: row.get(1),
        domain: row.get(2),
        status: row.get(3),
        created_at: row.get(4),
        setup_started_at: row.get(5),
        last_checked_at: row.get(6),
        next_check_at: row.get(7),
        consecutive_failures: row.get(8),
        degraded_since: row.get(9),
    }
}

/// A stored result from the six columns of `verification_results` starting at `first`.
fn stored_result(row: &AnyRow, first: usize) -> StoredResult {
    StoredResult {
        checked_at: row.get(first),
        status: row.get(first + 1),
        dkim_status: row.get(first + 2),
        spf_status: row.get(first + 3),
        dmarc_status: row.get(first + 4),
        result_json: row.get(first + 5),
    }
}

/// SHA-256 of a token: what is stored and looked up instead of the token.
fn token_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
