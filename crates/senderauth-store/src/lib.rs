//! senderauth's store: accounts, API tokens, reserved domains, connected domains, their latest
//! verification and status history, on SQLite (one node) or PostgreSQL (several nodes).
//!
//! One `Store` serves both through sqlx's `Any` driver: every query is written once with `?`
//! placeholders, numbered `$1, $2, ...` for PostgreSQL. Times are Unix seconds, so both
//! backends store them the same way. No query needs a database at build time.
//!
//! This file opens the store (pools, migrations, the SQL dialect); each concern has its module:
//! `accounts` (accounts, tokens, sessions, reserved domains), `domains`, `checks` (claims, the
//! recorded checks and the check log), `webhooks`, `keys` (the platform's zone), `reports` (DMARC
//! reports), `feedback` (failure and TLS reports), `coverage` (what was sent and reported per
//! receiver, DMARC events), `sandbox`, `shares` (read-only links to a setup page) and `error`.

mod accounts;
mod bounces;
mod checks;
mod coverage;
mod domains;
mod error;
mod feedback;
mod keys;
mod reports;
mod sandbox;
mod shares;
mod webhooks;

use std::borrow::Cow;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row, SqlSafeStr};

pub(crate) use accounts::random_hex;
pub use accounts::{Account, Principal, TokenInfo, UiSession};
pub use bounces::{BounceCause, BounceRecipient, BounceRecipientRecord, BounceRecord, NewBounce};
pub use checks::{CheckRecord, CheckRun, ReturnPathRecord};
pub use coverage::{ReceiverActivity, ReceiverReported, SentCount};
pub(crate) use domains::{DOMAIN_COLUMNS, domain_record, lifecycle_status, method_status};
pub use domains::{DomainPage, DomainRecord, INITIAL_STATUS, MethodStatuses, StatusEvent, StoredResult};
pub use error::StoreError;
pub(crate) use error::database;
pub use feedback::{FailureRecord, TlsRecord};
pub use keys::{DomainZone, KeyGroup, KeyInfo, KeyState, NameContents, NewKey, SealedKey, SealedKind, ZoneContents};
pub use reports::{
    DailyTotal, ReportHeaderRecord, ReportIdentity, ReportRowRecord, ReportSummary, ReportTotals, ReportWriter,
    SourceTotal, StoredReport,
};
pub use sandbox::{NewSandboxRecord, SandboxRecord, SandboxZone};
pub use shares::{ShareLink, SharedDomain};
pub use webhooks::{DeliveryRecord, DueDelivery, Sealer, WebhookEndpoint, webhook_secret_context};

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

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

/// A list of columns (`id, name`) qualified by a table's alias (`d.id, d.name`).
pub(crate) fn qualified(columns: &str, alias: &str) -> String {
    columns.split(',').map(|column| format!("{alias}.{}", column.trim())).collect::<Vec<_>>().join(", ")
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
    (10, "not verified", include_str!("../migrations/sqlite/0010_not_verified.sql")),
    (11, "share links", include_str!("../migrations/sqlite/0011_share_links.sql")),
    (12, "domain search", include_str!("../migrations/sqlite/0012_domain_search.sql")),
    (13, "domain words", include_str!("../migrations/sqlite/0013_domain_words.sql")),
    (14, "domain word table", include_str!("../migrations/sqlite/0014_domain_word_table.sql")),
    (15, "dmarc reports", include_str!("../migrations/sqlite/0015_dmarc_reports.sql")),
    (16, "report authorizations", include_str!("../migrations/sqlite/0016_report_authorizations.sql")),
    (17, "dmarc coverage", include_str!("../migrations/sqlite/0017_dmarc_coverage.sql")),
    (18, "failure and tls reports", include_str!("../migrations/sqlite/0018_failure_and_tls_reports.sql")),
    (19, "dmarc source totals", include_str!("../migrations/sqlite/0019_dmarc_source_totals.sql")),
    (20, "return paths", include_str!("../migrations/sqlite/0020_return_paths.sql")),
    (21, "return path state", include_str!("../migrations/sqlite/0021_return_path_state.sql")),
    (22, "bounces", include_str!("../migrations/sqlite/0022_bounces.sql")),
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
    (11, "not verified", include_str!("../migrations/postgres/0011_not_verified.sql")),
    (12, "share links", include_str!("../migrations/postgres/0012_share_links.sql")),
    (13, "domain search", include_str!("../migrations/postgres/0013_domain_search.sql")),
    (14, "domain words", include_str!("../migrations/postgres/0014_domain_words.sql")),
    (15, "domain word table", include_str!("../migrations/postgres/0015_domain_word_table.sql")),
    (16, "dmarc reports", include_str!("../migrations/postgres/0016_dmarc_reports.sql")),
    (17, "report authorizations", include_str!("../migrations/postgres/0017_report_authorizations.sql")),
    (18, "dmarc coverage", include_str!("../migrations/postgres/0018_dmarc_coverage.sql")),
    (19, "failure and tls reports", include_str!("../migrations/postgres/0019_failure_and_tls_reports.sql")),
    (20, "dmarc source totals", include_str!("../migrations/postgres/0020_dmarc_source_totals.sql")),
    (21, "return paths", include_str!("../migrations/postgres/0021_return_paths.sql")),
    (22, "return path state", include_str!("../migrations/postgres/0022_return_path_state.sql")),
    (23, "bounces", include_str!("../migrations/postgres/0023_bounces.sql")),
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
    fn claim_sql(&self, text: &str) -> AssertSqlSafe<Cow<'static, str>> {
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
}
