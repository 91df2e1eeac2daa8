//! The platform's zone in the store: DKIM keys per customer selector, each domain's SPF include
//! host, and the log of names whose records changed.

use senderauth_core::dkim::key::{KeyAlgorithm, dkim_record};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{StoreError, database};

/// A key to store with a domain. The private key arrives sealed; the store never sees it open.
#[derive(Clone)]
pub struct NewKey {
    pub selector: String,
    /// Where the public key is published.
    pub name: String,
    pub algorithm: String,
    pub public_key: String,
    pub sealed_private_key: Vec<u8>,
    pub master_key_id: String,
    pub state: KeyState,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NewKey")
            .field("selector", &self.selector)
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What connecting a domain publishes in the platform's zone.
#[derive(Clone, Debug, Default)]
pub struct DomainZone {
    /// The account's SPF include host given to the domain.
    pub spf_include: Option<String>,
    pub keys: Vec<NewKey>,
    /// The report authorization names the domain needs published (RFC 9990 section 4).
    pub report_authorizations: Vec<String>,
    /// The domain's return-path target in the platform's zone (issue 16).
    pub return_path: Option<String>,
}

/// Where a key is in its life. Every state but `Removed` is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published, never used: the second selector's key until its first rotation.
    Standby,
    /// Published, waiting for resolvers' caches to have it before it signs.
    Pending,
    /// Published and signing.
    Active,
    /// Published, no longer signing: messages signed with it in transit still verify.
    Retired,
    /// Published with an empty `p=`: withdrawn; safe to remove.
    Revoked,
    /// Replaced by a newer key at its selector; kept for the record, not published.
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Standby => "standby",
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<KeyState> {
        [
            KeyState::Standby,
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retired,
            KeyState::Revoked,
            KeyState::Removed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A stored key without its private half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub domain_id: i64,
    pub selector: String,
    pub name: String,
    pub algorithm: String,
    pub public_key: String,
    pub master_key_id: String,
    pub state: KeyState,
    pub created_at: i64,
    pub active_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The algorithm name of Ed25519 keys. A domain's Ed25519 keys are a pair of their own beside its
/// RSA pair (every other algorithm name is an RSA size), each pair signing and rotating apart.
pub const ED25519: &str = "ed25519";

impl KeyInfo {
    /// Whether this is one of the Ed25519 pair (else of the RSA pair).
    pub fn is_ed25519(&self) -> bool {
        self.algorithm == ED25519
    }

    /// The TXT record this key publishes; `None` once it is removed (or if its algorithm is not
    /// one this version knows).
    pub fn published_record(&self) -> Option<String> {
        let algorithm: KeyAlgorithm = self.algorithm.parse().ok()?;
        match self.state {
            KeyState::Removed => None,
            state => Some(dkim_record(algorithm, &self.public_key, state == KeyState::Revoked)),
        }
    }
}

const KEY_COLUMNS: &str = "id, domain_id, selector, name, algorithm, public_key, master_key_id, state, created_at, \
                           active_at, retired_at, revoked_at";

/// How many columns [`KEY_COLUMNS`] names.
const KEY_COLUMN_COUNT: usize = 12;

/// The platform's own keys in the shape of a domain's (domain id 0).
const PLATFORM_KEY_COLUMNS: &str = "id, CAST(0 AS BIGINT), selector, name, algorithm, public_key, master_key_id, state, created_at, \
                                    active_at, retired_at, revoked_at";

fn key_info(row: &AnyRow) -> KeyInfo {
    KeyInfo {
        id: row.get(0),
        domain_id: row.get(1),
        selector: row.get(2),
        name: row.get(3),
        algorithm: row.get(4),
        public_key: row.get(5),
        master_key_id: row.get(6),
        state: KeyState::parse(&row.get::<String, _>(7)).unwrap_or(KeyState::Removed),
        created_at: row.get(8),
        active_at: row.get(9),
        retired_at: row.get(10),
        revoked_at: row.get(11),
    }
}

/// Whose keys: a domain's, or the platform's own (the variable domain's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGroup {
    Domain(i64),
    Platform,
}

impl KeyGroup {
    /// The table, the condition selecting the group's rows (one placeholder), and its value.
    fn sql(self) -> (&'static str, &'static str, i64) {
        match self {
            KeyGroup::Domain(id) => ("dkim_keys", "domain_id = ?", id),
            KeyGroup::Platform => ("platform_keys", "? = 0", 0),
        }
    }

    fn domain_id(self) -> Option<i64> {
        match self {
            KeyGroup::Domain(id) => Some(id),
            KeyGroup::Platform => None,
        }
    }
}

/// Both key tables, with the expression naming each row's group.
const KEY_TABLES: [(&str, &str); 2] = [("dkim_keys", "domain_id"), ("platform_keys", "CAST(0 AS BIGINT)")];

/// What a sealed secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedKind {
    /// A domain's DKIM private key; `name` is where its public key is published.
    DomainKey,
    /// One of the platform's own DKIM private keys; `name` as for a domain's.
    PlatformKey,
    /// A webhook endpoint's signing secret; `name` is its sealing context.
    WebhookSecret,
}

/// A sealed private key (or webhook secret) as stored.
#[derive(Clone)]
pub struct SealedKey {
    pub id: i64,
    pub kind: SealedKind,
    pub name: String,
    pub master_key_id: String,
    pub sealed: Vec<u8>,
}

fn sealed_key(row: &AnyRow) -> SealedKey {
    let kind = match row.get::<i64, _>(4) {
        1 => SealedKind::PlatformKey,
        2 => SealedKind::WebhookSecret,
        _ => SealedKind::DomainKey,
    };
    let name: String = row.get(1);
    SealedKey {
        id: row.get(0),
        // A webhook row reads its URL and account: its context is made where it is sealed too.
        name: if kind == SealedKind::WebhookSecret { crate::webhook_secret_context(row.get(5), &name) } else { name },
        master_key_id: row.get(2),
        sealed: row.get(3),
        kind,
    }
}

/// What the platform's zone holds from the store.
#[derive(Clone, Debug, Default)]
pub struct ZoneContents {
    /// Every published key.
    pub keys: Vec<KeyInfo>,
    /// Every SPF include host in use.
    pub spf_includes: Vec<String>,
    /// Every report authorization name some domain needs.
    pub report_authorizations: Vec<String>,
    /// Every domain's return-path target.
    pub return_paths: Vec<String>,
    /// The newest change at the time of reading: changes after it are yet to be applied.
    pub last_change: i64,
}

/// What one name holds now.
#[derive(Clone, Debug, Default)]
pub struct NameContents {
    pub keys: Vec<KeyInfo>,
    pub spf_include: bool,
    /// Whether some domain needs the report authorization published at the name.
    pub report_authorization: bool,
    /// Whether the name is a domain's return-path target.
    pub return_path: bool,
    /// Demo mode: whether the name is a sandbox zone's apex, and the sandbox records at it.
    pub sandbox_apex: bool,
    pub sandbox_records: Vec<crate::SandboxRecord>,
}

impl crate::Store {
    /// Records that `names`' records changed, in the transaction making the change.
    pub(crate) async fn log_zone_changes(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        names: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        for name in names {
            sqlx::query(self.sql("INSERT INTO zone_changes (name, at) VALUES (?, ?)"))
                .bind(name.clone())
                .bind(now)
                .execute(&mut **transaction)
                .await
                .map_err(database("logging a zone change"))?;
        }
        Ok(())
    }

    /// Inserts a key in its state, published from `now` (and signing from `now` if active): a
    /// domain's, or with no domain the platform's own.
    async fn insert_key(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        domain_id: Option<i64>,
        key: &NewKey,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let (table, domain_column, domain_value) = match domain_id {
            Some(_) => ("dkim_keys", "domain_id, ", "?, "),
            None => ("platform_keys", "", ""),
        };
        let mut query = sqlx::query(self.sql(format!(
            "INSERT INTO {table} ({domain_column}selector, name, algorithm, public_key, private_key, master_key_id, \
             state, created_at, active_at) VALUES ({domain_value}?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )));
        if let Some(domain_id) = domain_id {
            query = query.bind(domain_id);
        }
        query
            .bind(key.selector.clone())
            .bind(key.name.clone())
            .bind(key.algorithm.clone())
            .bind(key.public_key.clone())
            .bind(key.sealed_private_key.clone())
            .bind(key.master_key_id.clone())
            .bind(key.state.as_str())
            .bind(now)
            .bind((key.state == KeyState::Active).then_some(now))
            .execute(&mut **transaction)
            .await?;
        Ok(())
    }

    /// Stores a domain's keys and include host, in the transaction connecting it.
    pub(crate) async fn publish_domain_zone(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        domain_id: i64,
        zone: &DomainZone,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(include) = &zone.spf_include {
            sqlx::query(self.sql("UPDATE domains SET spf_include = ? WHERE id = ?"))
                .bind(include.clone())
                .bind(domain_id)
                .execute(&mut **transaction)
                .await
                .map_err(database("storing the SPF include"))?;
        }
        for key in &zone.keys {
            self.insert_key(transaction, Some(domain_id), key, now).await.map_err(database("storing a DKIM key"))?;
        }
        self.add_report_authorizations(transaction, domain_id, &zone.report_authorizations).await?;
        if let Some(target) = &zone.return_path {
            sqlx::query(self.sql("INSERT INTO return_paths (domain_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"))
                .bind(domain_id)
                .bind(target.clone())
                .execute(&mut **transaction)
                .await
                .map_err(database("storing the return-path target"))?;
        }
        let names: Vec<String> = zone
            .keys
            .iter()
            .map(|key| key.name.clone())
            .chain(zone.spf_include.clone())
            .chain(zone.report_authorizations.iter().cloned())
            .chain(zone.return_path.clone())
            .collect();
        self.log_zone_changes(transaction, &names, now).await
    }

    async fn add_report_authorizations(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        domain_id: i64,
        names: &[String],
    ) -> Result<(), StoreError> {
        for name in names {
            sqlx::query(
                self.sql("INSERT INTO report_authorizations (domain_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"),
            )
            .bind(domain_id)
            .bind(name.clone())
            .execute(&mut **transaction)
            .await
            .map_err(database("storing a report authorization"))?;
        }
        Ok(())
    }

    /// Brings every domain's report authorizations in line with the report address: names
    /// not ending in `suffix` (`._report._dmarc.<report host>`; `None`: no report address) are
    /// withdrawn, and each domain without any gets what `names_for` says it needs (domains
    /// connected before there was a report address). Each change is logged for the DNS servers.
    /// Returns how many names changed. At a start with nothing to change, two queries.
    pub async fn sync_report_authorizations(
        &self,
        suffix: Option<&str>,
        names_for: impl Fn(&str) -> Vec<String>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut changed = 0;
        let stale_query = match suffix {
            Some(_) => {
                "SELECT DISTINCT name FROM report_authorizations \
                        WHERE substr(name, length(name) - CAST(? AS INTEGER) + 1) <> ?"
            }
            None => "SELECT DISTINCT name FROM report_authorizations",
        };
        let mut query = sqlx::query(self.sql(stale_query));
        if let Some(suffix) = suffix {
            query = query.bind(suffix.len() as i64).bind(suffix.to_string());
        }
        let stale: Vec<String> = query
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading report authorizations"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for names in stale.chunks(1000) {
            let mut transaction = self.begin_write().await?;
            for name in names {
                sqlx::query(self.sql("DELETE FROM report_authorizations WHERE name = ?"))
                    .bind(name.clone())
                    .execute(&mut *transaction)
                    .await
                    .map_err(database("withdrawing a report authorization"))?;
            }
            self.log_zone_changes(&mut transaction, names, now).await?;
            transaction.commit().await.map_err(database("committing"))?;
            changed += names.len();
        }
        let mut after = 0;
        loop {
            let rows = sqlx::query(self.sql(
                "SELECT id, domain FROM domains d WHERE id > ? \
                 AND NOT EXISTS (SELECT 1 FROM report_authorizations r WHERE r.domain_id = d.id) ORDER BY id LIMIT 1000",
            ))
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the domains"))?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            let wanted: Vec<(i64, String)> = rows
                .iter()
                .flat_map(|row| {
                    let id: i64 = row.get(0);
                    names_for(&row.get::<String, _>(1)).into_iter().map(move |name| (id, name))
                })
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut transaction = self.begin_write().await?;
            for chunk in wanted.chunks(200) {
                let values = vec!["(?, ?)"; chunk.len()].join(", ");
                let mut insert = sqlx::query(self.sql(format!(
                    "INSERT INTO report_authorizations (domain_id, name) VALUES {values} ON CONFLICT DO NOTHING"
                )));
                for (id, name) in chunk {
                    insert = insert.bind(*id).bind(name.clone());
                }
                insert.execute(&mut *transaction).await.map_err(database("storing report authorizations"))?;
            }
            let names: Vec<String> = wanted.into_iter().map(|(_, name)| name).collect();
            changed += self.commit_zone_names(transaction, names, now).await?;
        }
        Ok(changed)
    }

    /// Logs `names` (each once) as changed and commits; returns how many names.
    async fn commit_zone_names(
        &self,
        mut transaction: sqlx::Transaction<'static, sqlx::Any>,
        mut names: Vec<String>,
        now: i64,
    ) -> Result<usize, StoreError> {
        names.sort_unstable();
        names.dedup();
        self.log_zone_changes(&mut transaction, &names, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(names.len())
    }

    /// Brings every domain's return-path target in line with `target_for(account, domain)`
    /// (domains connected before there were return-paths, or a changed target template): the
    /// old name withdrawn, the new one published, each logged for the DNS servers. Returns how
    /// many names changed.
    pub async fn sync_return_paths(
        &self,
        target_for: impl Fn(i64, &str) -> Option<String>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut changed = 0;
        let mut after = 0;
        loop {
            let rows = sqlx::query(self.sql(
                "SELECT d.id, d.account_id, d.domain, p.name FROM domains d LEFT JOIN return_paths p ON p.domain_id = d.id \
                 WHERE d.id > ? ORDER BY d.id LIMIT 1000",
            ))
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the return-path targets"))?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            let mut fixes: Vec<(i64, Option<String>, Option<String>)> = Vec::new();
            for row in &rows {
                let (id, account, domain, stored): (i64, i64, String, Option<String>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                let wanted = target_for(account, &domain);
                if wanted != stored {
                    fixes.push((id, stored, wanted));
                }
            }
            if fixes.is_empty() {
                continue;
            }
            let mut transaction = self.begin_write().await?;
            let mut names = Vec::new();
            for (id, stored, wanted) in fixes {
                sqlx::query(self.sql("DELETE FROM return_paths WHERE domain_id = ?"))
                    .bind(id)
                    .execute(&mut *transaction)
                    .await
                    .map_err(database("withdrawing a return-path target"))?;
                if let Some(name) = &wanted {
                    sqlx::query(self.sql("INSERT INTO return_paths (domain_id, name) VALUES (?, ?)"))
                        .bind(id)
                        .bind(name.clone())
                        .execute(&mut *transaction)
                        .await
                        .map_err(database("storing a return-path target"))?;
                }
                names.extend(stored.into_iter().chain(wanted));
            }
            changed += self.commit_zone_names(transaction, names, now).await?;
        }
        Ok(changed)
    }

    /// The names a domain publishes, to log as changed when it is removed.
    pub(crate) async fn domain_zone_names(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        account_id: i64,
        domain: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT k.name FROM dkim_keys k JOIN domains d ON d.id = k.domain_id \
             WHERE d.account_id = ? AND d.domain = ? \
             UNION SELECT spf_include FROM domains WHERE account_id = ? AND domain = ? AND spf_include IS NOT NULL \
             UNION SELECT r.name FROM report_authorizations r JOIN domains d ON d.id = r.domain_id \
             WHERE d.account_id = ? AND d.domain = ? \
             UNION SELECT p.name FROM return_paths p JOIN domains d ON d.id = p.domain_id \
             WHERE d.account_id = ? AND d.domain = ?",
        ))
        .bind(account_id)
        .bind(domain)
        .bind(account_id)
        .bind(domain)
        .bind(account_id)
        .bind(domain)
        .bind(account_id)
        .bind(domain)
        .fetch_all(&mut **transaction)
        .await
        .map_err(database("reading a domain's zone names"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// A domain's keys, published or not, by selector, oldest first.
    pub async fn domain_keys(&self, domain_id: i64) -> Result<Vec<KeyInfo>, StoreError> {
        let rows = sqlx::query(
            self.sql(format!("SELECT {KEY_COLUMNS} FROM dkim_keys WHERE domain_id = ? ORDER BY selector, id")),
        )
        .bind(domain_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a domain's keys"))?;
        Ok(rows.iter().map(key_info).collect())
    }

    /// Everything the platform's zone publishes from the store.
    pub async fn zone_contents(&self) -> Result<ZoneContents, StoreError> {
        let mut keys = Vec::new();
        let mut contents = self.stream_zone(|key| keys.push(key)).await?;
        contents.keys = keys;
        Ok(contents)
    }

    /// As [`Store::zone_contents`], handing each published key to `visit` as it is read instead
    /// of collecting them (a million domains' keys are gigabytes as rows, a third of that in a
    /// zone). Returns the rest of the contents (no keys): the SPF include hosts, the report
    /// authorization names and the change the contents are as of.
    pub async fn stream_zone(&self, mut visit: impl FnMut(KeyInfo)) -> Result<ZoneContents, StoreError> {
        use futures_util::TryStreamExt;
        // The change log's end first: whatever changes while the rest is read is applied again.
        let last_change: i64 = sqlx::query(self.sql("SELECT COALESCE(MAX(id), 0) FROM zone_changes"))
            .fetch_one(&self.pool)
            .await
            .map_err(database("reading the zone's changes"))?
            .get(0);
        let query = self.sql(format!(
            "SELECT {KEY_COLUMNS} FROM dkim_keys WHERE state <> 'removed' \
             UNION ALL SELECT {PLATFORM_KEY_COLUMNS} FROM platform_keys WHERE state <> 'removed'"
        ));
        let mut rows = sqlx::query(query).fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(database("reading the published keys"))? {
            visit(key_info(&row));
        }
        drop(rows);
        let includes = sqlx::query(self.sql("SELECT DISTINCT spf_include FROM domains WHERE spf_include IS NOT NULL"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the SPF includes"))?;
        let authorizations = sqlx::query(self.sql("SELECT DISTINCT name FROM report_authorizations"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the report authorizations"))?;
        let return_paths = sqlx::query(self.sql("SELECT DISTINCT name FROM return_paths"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the return-path targets"))?;
        Ok(ZoneContents {
            keys: Vec::new(),
            spf_includes: includes.iter().map(|row| row.get(0)).collect(),
            report_authorizations: authorizations.iter().map(|row| row.get(0)).collect(),
            return_paths: return_paths.iter().map(|row| row.get(0)).collect(),
            last_change,
        })
    }

    /// Changes logged after `after`, oldest first, at most `limit`: `(id, name)`.
    pub async fn zone_changes(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT id, name FROM zone_changes WHERE id > ? ORDER BY id LIMIT ?"))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading the zone's changes"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Which of `names` a published key (a domain's or the platform's) is at now.
    pub async fn names_with_keys(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; names.len()].join(", ");
        let sql = self.sql(format!(
            "SELECT name FROM dkim_keys WHERE name IN ({marks}) AND state <> 'removed' \
             UNION SELECT name FROM platform_keys WHERE name IN ({marks}) AND state <> 'removed'"
        ));
        let mut query = sqlx::query(sql);
        for name in names.iter().chain(names) {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database("reading where keys are published"))?;
        let mut taken: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        taken.sort();
        Ok(taken)
    }

    /// What `name` holds now.
    pub async fn name_contents(&self, name: &str) -> Result<NameContents, StoreError> {
        let keys = sqlx::query(self.sql(format!(
            "SELECT {KEY_COLUMNS} FROM dkim_keys WHERE name = ? AND state <> 'removed' \
             UNION ALL SELECT {PLATFORM_KEY_COLUMNS} FROM platform_keys WHERE name = ? AND state <> 'removed'"
        )))
        .bind(name)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading a name's keys"))?;
        let include = sqlx::query(self.sql("SELECT 1 FROM domains WHERE spf_include = ? LIMIT 1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading an SPF include"))?;
        let authorization = sqlx::query(self.sql("SELECT 1 FROM report_authorizations WHERE name = ? LIMIT 1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a report authorization"))?;
        let return_path = sqlx::query(self.sql("SELECT 1 FROM return_paths WHERE name = ? LIMIT 1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a return-path target"))?;
        let (sandbox_apex, sandbox_records) = self.sandbox_name(name).await?;
        Ok(NameContents {
            keys: keys.iter().map(key_info).collect(),
            spf_include: include.is_some(),
            report_authorization: authorization.is_some(),
            return_path: return_path.is_some(),
            sandbox_apex,
            sandbox_records,
        })
    }

    /// Sealed secrets not sealed under `master_key_id` (domains' and the platform's DKIM private
    /// keys, webhook secrets), at most `limit` (for rewrapping).
    pub async fn keys_sealed_under_other(&self, master_key_id: &str, limit: i64) -> Result<Vec<SealedKey>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, name, master_key_id, private_key, CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM dkim_keys \
             WHERE master_key_id <> ? \
             UNION ALL SELECT id, name, master_key_id, private_key, CAST(1 AS BIGINT), CAST(0 AS BIGINT) \
             FROM platform_keys WHERE master_key_id <> ? \
             UNION ALL SELECT id, url, secret_key_id, secret_sealed, CAST(2 AS BIGINT), account_id \
             FROM webhook_endpoints WHERE secret_sealed IS NOT NULL AND secret_key_id <> ? \
             LIMIT ?",
        ))
        .bind(master_key_id)
        .bind(master_key_id)
        .bind(master_key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading sealed keys"))?;
        Ok(rows.iter().map(sealed_key).collect())
    }

    /// How many keys are sealed under `master_key_id`.
    pub async fn count_keys_sealed_under(&self, master_key_id: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query(self.sql(
            "SELECT (SELECT COUNT(*) FROM dkim_keys WHERE master_key_id = ?) \
             + (SELECT COUNT(*) FROM platform_keys WHERE master_key_id = ?) \
             + (SELECT COUNT(*) FROM webhook_endpoints WHERE secret_key_id = ?)",
        ))
        .bind(master_key_id)
        .bind(master_key_id)
        .bind(master_key_id)
        .fetch_one(&self.pool)
        .await
        .map_err(database("counting keys"))?
        .get(0);
        Ok(count.max(0) as u64)
    }

    /// Replaces a sealed secret, if it is still sealed as it was read.
    pub async fn reseal_key(&self, key: &SealedKey, master_key_id: &str, sealed: &[u8]) -> Result<bool, StoreError> {
        let (table, sealed_column, key_column) = match key.kind {
            SealedKind::DomainKey => ("dkim_keys", "private_key", "master_key_id"),
            SealedKind::PlatformKey => ("platform_keys", "private_key", "master_key_id"),
            SealedKind::WebhookSecret => ("webhook_endpoints", "secret_sealed", "secret_key_id"),
        };
        let result = sqlx::query(self.sql(format!(
            "UPDATE {table} SET {sealed_column} = ?, {key_column} = ? WHERE id = ? AND {key_column} = ?"
        )))
        .bind(sealed.to_vec())
        .bind(master_key_id)
        .bind(key.id)
        .bind(key.master_key_id.clone())
        .execute(&self.writer)
        .await
        .map_err(database("resealing a key"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The sealed private key of a stored key.
    pub async fn sealed_key(&self, id: i64) -> Result<Option<SealedKey>, StoreError> {
        let row = sqlx::query(
            self.sql(
                "SELECT id, name, master_key_id, private_key, CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM dkim_keys WHERE id = ?",
            ),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a sealed key"))?;
        Ok(row.as_ref().map(sealed_key))
    }

    /// The keys a group signs with now (its `active` ones: RSA, and Ed25519 for a domain that
    /// has it, in that order), each with its sealed private key; empty when it has none.
    pub async fn signing_keys(&self, group: KeyGroup) -> Result<Vec<(KeyInfo, SealedKey)>, StoreError> {
        let (table, condition, value) = group.sql();
        let columns = if table == "dkim_keys" { KEY_COLUMNS } else { PLATFORM_KEY_COLUMNS };
        let rows = sqlx::query(self.sql(format!(
            "SELECT {columns}, private_key FROM {table} WHERE {condition} AND state = 'active' \
             ORDER BY CASE WHEN algorithm = 'ed25519' THEN 1 ELSE 0 END, id DESC"
        )))
        .bind(value)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the signing keys"))?;
        let mut keys: Vec<(KeyInfo, SealedKey)> = rows
            .iter()
            .map(|row| {
                let info = key_info(row);
                let sealed = SealedKey {
                    id: info.id,
                    kind: if table == "dkim_keys" { SealedKind::DomainKey } else { SealedKind::PlatformKey },
                    name: info.name.clone(),
                    master_key_id: info.master_key_id.clone(),
                    sealed: row.get(KEY_COLUMN_COUNT),
                };
                (info, sealed)
            })
            .collect();
        // One of each kind: the newest.
        keys.dedup_by(|later, earlier| later.0.is_ed25519() == earlier.0.is_ed25519());
        Ok(keys)
    }

    /// A group's keys: a domain's (published or not), or the platform's published ones.
    pub async fn group_keys(&self, group: KeyGroup) -> Result<Vec<KeyInfo>, StoreError> {
        match group {
            KeyGroup::Domain(id) => self.domain_keys(id).await,
            KeyGroup::Platform => self.platform_keys().await,
        }
    }

    /// Starts a rotation: the key `replaced` (the idle selector's, in state `replaced_state`)
    /// is removed and `new` (pending) published in its place, in one transaction. `false` when
    /// `replaced` is no longer in that state or the domain already has a pending key (another
    /// node, or another request, got there first).
    pub async fn start_key_rotation(
        &self,
        group: KeyGroup,
        replaced: i64,
        replaced_state: KeyState,
        new: &NewKey,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (table, condition, value) = group.sql();
        let mut transaction = self.begin_write().await?;
        let removed = sqlx::query(
            self.sql(format!("UPDATE {table} SET state = 'removed' WHERE id = ? AND {condition} AND state = ?")),
        )
        .bind(replaced)
        .bind(value)
        .bind(replaced_state.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(database("replacing a key"))?;
        if removed.rows_affected() != 1 {
            return Ok(false);
        }
        let new = NewKey { state: KeyState::Pending, ..new.clone() };
        let inserted = self.insert_key(&mut transaction, group.domain_id(), &new, now).await;
        match inserted {
            Ok(_) => {}
            // The one-pending-key index: a rotation of this domain started meanwhile.
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(false),
            Err(error) => return Err(database("storing a new key")(error)),
        }
        self.log_zone_changes(&mut transaction, std::slice::from_ref(&new.name), now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(true)
    }

    /// Pending keys published at or before `published_by` start signing: each becomes active
    /// and its group's active key retired, a group per transaction. Returns how many.
    pub async fn activate_pending_keys(&self, published_by: i64, now: i64, limit: i64) -> Result<u64, StoreError> {
        let mut activated = 0;
        for (table, group_column) in KEY_TABLES {
            let due = sqlx::query(self.sql(format!(
                "SELECT id, {group_column}, algorithm FROM {table} WHERE state = 'pending' AND created_at <= ? \
                 ORDER BY created_at LIMIT ?"
            )))
            .bind(published_by)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading pending keys"))?;
            for row in due {
                let (id, group, algorithm): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
                // The key it replaces is the active one of its kind: a domain signing with
                // Ed25519 alongside RSA rotates each pair on its own.
                let same_kind = if algorithm == ED25519 { "algorithm = 'ed25519'" } else { "algorithm <> 'ed25519'" };
                let group = if table == "dkim_keys" { KeyGroup::Domain(group) } else { KeyGroup::Platform };
                let (_, condition, value) = group.sql();
                let mut transaction = self.begin_write().await?;
                let promoted = sqlx::query(self.sql(format!(
                    "UPDATE {table} SET state = 'active', active_at = ? WHERE id = ? AND state = 'pending'"
                )))
                .bind(now)
                .bind(id)
                .execute(&mut *transaction)
                .await
                .map_err(database("activating a key"))?;
                if promoted.rows_affected() != 1 {
                    continue; // another node did it
                }
                sqlx::query(self.sql(format!(
                    "UPDATE {table} SET state = 'retired', retired_at = ? \
                     WHERE {condition} AND state = 'active' AND {same_kind} AND id <> ?"
                )))
                .bind(now)
                .bind(value)
                .bind(id)
                .execute(&mut *transaction)
                .await
                .map_err(database("retiring a key"))?;
                transaction.commit().await.map_err(database("committing"))?;
                activated += 1;
            }
        }
        Ok(activated)
    }

    /// Retired keys retired at or before `retired_by` are revoked (published with an empty
    /// `p=`). Returns how many.
    pub async fn revoke_retired_keys(&self, retired_by: i64, now: i64, limit: i64) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut names = Vec::new();
        for (table, _) in KEY_TABLES {
            let due = sqlx::query(self.sql(format!(
                "SELECT id, name FROM {table} WHERE state = 'retired' AND retired_at <= ? ORDER BY retired_at LIMIT ?"
            )))
            .bind(retired_by)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await
            .map_err(database("reading retired keys"))?;
            for row in &due {
                sqlx::query(self.sql(format!(
                    "UPDATE {table} SET state = 'revoked', revoked_at = ? WHERE id = ? AND state = 'retired'"
                )))
                .bind(now)
                .bind(row.get::<i64, _>(0))
                .execute(&mut *transaction)
                .await
                .map_err(database("revoking a key"))?;
                names.push(row.get::<String, _>(1));
            }
        }
        self.log_zone_changes(&mut transaction, &names, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(names.len() as u64)
    }

    /// Whether the platform's own signing key has signed since `active_by` or earlier, with no
    /// rotation under way.
    pub async fn platform_due_for_rotation(&self, active_by: i64) -> Result<bool, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT 1 FROM platform_keys WHERE state = 'active' AND active_at <= ? \
             AND NOT EXISTS (SELECT 1 FROM platform_keys WHERE state IN ('pending', 'retired')) LIMIT 1",
        ))
        .bind(active_by)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading the platform's keys"))?;
        Ok(row.is_some())
    }

    /// Domains with an active key that has signed since `active_by` or earlier and that are
    /// not rotating already (no pending or retired key), with that key's algorithm, at most
    /// `limit`.
    pub async fn domains_due_for_rotation(&self, active_by: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT a.domain_id, a.algorithm FROM dkim_keys a WHERE a.state = 'active' AND a.active_at <= ? \
             AND NOT EXISTS (SELECT 1 FROM dkim_keys o WHERE o.domain_id = a.domain_id AND o.state IN ('pending', 'retired')) \
             ORDER BY a.active_at LIMIT ?",
        ))
        .bind(active_by)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading keys due for rotation"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// How far the zone's changes have been pushed to `target`; `None` before the first push.
    pub async fn push_progress(&self, target: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(self.sql("SELECT applied FROM zone_push_progress WHERE target = ?"))
            .bind(target)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading the push progress"))?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Records that every change up to `applied` has been pushed to `target`.
    pub async fn save_push_progress(&self, target: &str, applied: i64) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO zone_push_progress (target, applied) VALUES (?, ?) \
             ON CONFLICT (target) DO UPDATE SET applied = excluded.applied",
        ))
        .bind(target)
        .bind(applied)
        .execute(&self.writer)
        .await
        .map_err(database("saving the push progress"))?;
        Ok(())
    }

    /// The platform's own published keys (domain id 0).
    pub async fn platform_keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        let rows = sqlx::query(
            self.sql(format!("SELECT {PLATFORM_KEY_COLUMNS} FROM platform_keys WHERE state <> 'removed' ORDER BY id")),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the platform's keys"))?;
        Ok(rows.iter().map(key_info).collect())
    }

    /// Publishes a key of the platform's own, unless one is published at its name already (a
    /// node that started at the same time got there first): `false` then.
    pub async fn add_platform_key(&self, key: &NewKey, now: i64) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let inserted = self.insert_key(&mut transaction, None, key, now).await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(false),
            Err(error) => return Err(database("storing a platform key")(error)),
        }
        self.log_zone_changes(&mut transaction, std::slice::from_ref(&key.name), now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(true)
    }
}
