//! Fresh databases for tests: a SQLite file, or a database of its own on the PostgreSQL server
//! the test script starts (`SENDERAUTH_TEST_POSTGRES_URL`).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A test database, by URL. PostgreSQL ones should be dropped with [`TestDatabase::drop`].
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
}

/// A new, empty SQLite database in a temporary file.
pub fn sqlite() -> TestDatabase {
    let number = DATABASES.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("senderauth-test-{}-{number}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    TestDatabase { url: format!("sqlite://{}", path.display()), postgres_name: None }
}

/// A new, empty PostgreSQL database; `None` (skipped, said aloud) outside CI when no server was
/// started. In CI a missing server fails the test.
pub async fn postgres() -> Option<TestDatabase> {
    let Ok(base) = std::env::var("SENDERAUTH_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL tests: SENDERAUTH_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)"
        );
        eprintln!("SKIPPED on PostgreSQL: SENDERAUTH_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)");
        return None;
    };
    let name = format!("senderauth_test_{}_{}", std::process::id(), DATABASES.fetch_add(1, Ordering::Relaxed));
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connecting to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("creating a test database");
    let server = base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server);
    Some(TestDatabase { url: format!("{server}/{name}"), postgres_name: Some(name) })
}

impl TestDatabase {
    /// Removes a PostgreSQL test database (its connections are closed first).
    pub async fn drop(self) {
        let Some(name) = self.postgres_name else { return };
        let Ok(base) = std::env::var("SENDERAUTH_TEST_POSTGRES_URL") else { return };
        if let Ok(mut admin) = sqlx::PgConnection::connect(&base).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await;
        }
    }
}
