//! What the store can fail with: one variant for each failure a caller tells apart.

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

pub(crate) fn database(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { action, source }
}
