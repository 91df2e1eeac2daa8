//! Connected domains: adding one (with its hosted keys), reading one with its latest result and
//! history, the lists, and removing one.

use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::status::MethodStatus;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, DomainZone, Store, StoreError, database, qualified};

/// A connected domain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct DomainRecord {
    pub id: i64,
    pub account_id: i64,
    pub domain: String,
    pub status: LifecycleStatus,
    pub created_at: i64,
    pub setup_started_at: i64,
    pub last_checked_at: Option<i64>,
    /// `None`: not scheduled.
    pub next_check_at: Option<i64>,
    pub consecutive_failures: i64,
    pub degraded_since: Option<i64>,
    /// The return-path's own lifecycle status: the gateway sends with `rp.<domain>` as the
    /// envelope sender while it is usable (`LifecycleStatus::is_usable`).
    pub return_path_status: LifecycleStatus,
    /// The return-path's failed checks in a row, and since when it is degraded.
    pub return_path_failures: i64,
    pub return_path_degraded_since: Option<i64>,
}

/// Each method's status at a domain's latest check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodStatuses {
    pub dkim: MethodStatus,
    pub spf: MethodStatus,
    pub dmarc: MethodStatus,
    /// `None` for a check made before the return-path was checked.
    pub return_path: Option<MethodStatus>,
}

/// The latest check of a domain, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    pub checked_at: i64,
    pub status: LifecycleStatus,
    pub dkim_status: MethodStatus,
    pub spf_status: MethodStatus,
    pub dmarc_status: MethodStatus,
    pub result_json: String,
}

/// A domain with its latest result and its status changes, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPage {
    pub record: DomainRecord,
    pub result: Option<StoredResult>,
    pub history: Vec<StatusEvent>,
}

/// A change of a domain's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEvent {
    pub id: i64,
    pub domain_id: i64,
    pub at: i64,
    pub from_status: Option<LifecycleStatus>,
    pub to_status: LifecycleStatus,
    pub event: Option<String>,
}

/// The status a newly connected domain starts in.
pub const INITIAL_STATUS: LifecycleStatus = LifecycleStatus::NotVerified;

/// A stored status, or `Corrupt` for a name this version does not know.
pub(crate) fn lifecycle_status(text: &str) -> Result<LifecycleStatus, StoreError> {
    LifecycleStatus::parse(text).ok_or_else(|| StoreError::Corrupt {
        what: "a domain's status".to_string(),
        reason: format!("{text:?} is not a status this version knows"),
    })
}

pub(crate) fn domain_record(row: &AnyRow) -> Result<DomainRecord, StoreError> {
    Ok(DomainRecord {
        id: row.get(0),
        account_id: row.get(1),
        domain: row.get(2),
        status: lifecycle_status(&row.get::<String, _>(3))?,
        created_at: row.get(4),
        setup_started_at: row.get(5),
        last_checked_at: row.get(6),
        next_check_at: row.get(7),
        consecutive_failures: row.get(8),
        degraded_since: row.get(9),
        return_path_status: lifecycle_status(&row.get::<String, _>(10))?,
        return_path_failures: row.get(11),
        return_path_degraded_since: row.get(12),
    })
}

/// A stored result from the six columns of `verification_results` starting at `first`.
pub(crate) fn stored_result(row: &AnyRow, first: usize) -> Result<StoredResult, StoreError> {
    Ok(StoredResult {
        checked_at: row.get(first),
        status: lifecycle_status(&row.get::<String, _>(first + 1))?,
        dkim_status: method_status(&row.get::<String, _>(first + 2))?,
        spf_status: method_status(&row.get::<String, _>(first + 3))?,
        dmarc_status: method_status(&row.get::<String, _>(first + 4))?,
        result_json: row.get(first + 5),
    })
}

/// A stored method status, or `Corrupt` for a name this version does not know.
pub(crate) fn method_status(text: &str) -> Result<MethodStatus, StoreError> {
    MethodStatus::parse(text).ok_or_else(|| StoreError::Corrupt {
        what: "a check's method status".to_string(),
        reason: format!("{text:?} is not a status this version knows"),
    })
}

/// A domain row's columns, in `DomainRecord`'s field order.
pub(crate) const DOMAIN_COLUMNS: &str = "id, account_id, domain, status, created_at, setup_started_at, \
                                         last_checked_at, next_check_at, consecutive_failures, degraded_since, \
                                         rp_status, rp_failures, rp_degraded_since";

impl Store {
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
        .bind(INITIAL_STATUS.as_str())
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
        .bind(INITIAL_STATUS.as_str())
        .execute(&mut *transaction)
        .await
        .map_err(database("recording the domain's first status"))?;
        self.publish_domain_zone(&mut transaction, id, zone, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok(DomainRecord {
            id,
            account_id,
            domain: domain.to_string(),
            status: INITIAL_STATUS,
            created_at: now,
            setup_started_at: now,
            last_checked_at: None,
            next_check_at: Some(now),
            consecutive_failures: 0,
            degraded_since: None,
            return_path_status: INITIAL_STATUS,
            return_path_failures: 0,
            return_path_degraded_since: None,
        })
    }

    /// One of an account's domains. Another account's domain is `None`, exactly as a missing one.
    pub async fn domain(&self, account_id: i64, domain: &str) -> Result<Option<DomainRecord>, StoreError> {
        let row =
            sqlx::query(self.sql(format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE account_id = ? AND domain = ?")))
                .bind(account_id)
                .bind(domain)
                .fetch_optional(&self.pool)
                .await
                .map_err(database("reading a domain"))?;
        row.as_ref().map(domain_record).transpose()
    }

    /// One of an account's domains by its id.
    pub async fn domain_by_id(&self, account_id: i64, id: i64) -> Result<Option<DomainRecord>, StoreError> {
        let row =
            sqlx::query(self.sql(format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE account_id = ? AND id = ?")))
                .bind(account_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(database("reading a domain"))?;
        row.as_ref().map(domain_record).transpose()
    }

    /// One of an account's domains with its latest result and status history, in one query
    /// (the domain page).
    pub async fn domain_page(&self, account_id: i64, domain: &str) -> Result<Option<DomainPage>, StoreError> {
        // The history comes as a JSON array from a subquery; each backend spells it its own way.
        let history = match self.backend {
            Backend::Sqlite => {
                "(SELECT json_group_array(json_object('id', id, 'at', at, 'from', from_status, 'to', to_status, \
                 'event', event)) FROM status_events WHERE domain_id = d.id AND detail_json IS NULL)"
            }
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(json_build_object('id', id, 'at', at, 'from', from_status, 'to', to_status, \
                 'event', event)), '[]')::text FROM status_events WHERE domain_id = d.id AND detail_json IS NULL)"
            }
        };
        let row = sqlx::query(self.sql(format!(
            "SELECT {}, r.checked_at, r.status, r.dkim_status, r.spf_status, r.dmarc_status, r.result_json, {history} \
             FROM domains d LEFT JOIN verification_results r ON r.domain_id = d.id \
             WHERE d.account_id = ? AND d.domain = ?",
            qualified(DOMAIN_COLUMNS, "d")
        )))
        .bind(account_id)
        .bind(domain)
        .fetch_optional(&self.pool)
        .await
        .map_err(database("reading a domain"))?;
        let Some(row) = row else { return Ok(None) };
        let record = domain_record(&row)?;
        // No result joined (never checked): its columns are NULL.
        let result = row.get::<Option<i64>, _>(13).is_some().then(|| stored_result(&row, 13)).transpose()?;
        let events: Vec<serde_json::Value> = serde_json::from_str(&row.get::<String, _>(19)).map_err(|error| {
            StoreError::Corrupt { what: format!("the status history of {domain}"), reason: error.to_string() }
        })?;
        let text = |value: &serde_json::Value| value.as_str().map(str::to_string);
        let mut history: Vec<StatusEvent> = events
            .iter()
            .map(|event| {
                Ok(StatusEvent {
                    id: event["id"].as_i64().unwrap_or_default(),
                    domain_id: record.id,
                    at: event["at"].as_i64().unwrap_or_default(),
                    from_status: event["from"].as_str().map(lifecycle_status).transpose()?,
                    to_status: lifecycle_status(event["to"].as_str().unwrap_or_default())?,
                    event: text(&event["event"]),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        history.sort_by_key(|event| event.id);
        Ok(Some(DomainPage { record, result, history }))
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

    /// As `domains`, only those with a word of the name (between dots and dashes) beginning with
    /// `search` (case-insensitive).
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

    /// A page of an account's domains with a word of the name (the text between dots and
    /// dashes) beginning with `search` (`shop` finds shop.example.com and news.shop-2.example),
    /// through `domain_words`, a table of (account, word, name) in that order: the names with one
    /// word come in name order from one range of it, however many they have it, so a page is
    /// read, not sorted. A text that begins a few words (`ma`: mail, market) merges their ranges;
    /// one that begins many (`customer1`: customer1, customer10, ...) has its names sorted when
    /// they are few, and otherwise is looked for in the list read in order, where names that
    /// many words match are dense. A text of several words (`shop.exa`) is looked up by its first
    /// word, whole, and the names filtered. (Tried before, at 100,000 names: reading every name,
    /// 18 to 65 ms; trigram indexes, slow for the letters every name shares; an FTS5 word
    /// index, 100 ms for a word a third of the names have, all sorted by name.)
    async fn search_domains(
        &self,
        account_id: i64,
        status: Option<&str>,
        search: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        /// The name with each word after a dot: `.news.shop.2.example`.
        const WORDS: &str = "('.' || replace(d.domain, '-', '.'))";
        /// At most this many words a text begins are read as ranges of their own.
        const RANGES: i64 = 16;
        /// At most this many (word, name) entries are sorted by name; more, and the list is
        /// read in order first.
        const SORTED: i64 = 5000;
        /// How many names are read in order, when it comes to that.
        const SCAN: i64 = 5000;
        let search = search.to_ascii_lowercase().replace('-', ".");
        let search = search.trim_start_matches('.');
        let (first, several) = match search.split_once('.') {
            Some((first, _)) => (first, true),
            None => (search, false),
        };
        if first.is_empty() {
            return self.domain_page_list(account_id, status, Some(after), limit).await;
        }
        let limit = limit.max(0);
        let columns = qualified(DOMAIN_COLUMNS, "d");
        let of_status = if status.is_some() { " AND d.status = ?" } else { "" };
        // Several words: the name must have them in a row (the first whole, the last begun).
        let escaped: String =
            search.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
        let pattern = format!("%.{escaped}%");
        let of_words = if several { format!(" AND {WORDS} LIKE ? ESCAPE '\\'") } else { String::new() };
        // Binds the filters that follow a query's own conditions.
        let filters = |mut query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            if let Some(status) = status {
                query = query.bind(status.to_string());
            }
            if several {
                query = query.bind(pattern.clone());
            }
            query
        };
        // Every word from `first` (inclusive) to `end` (exclusive) begins with it.
        let end = format!("{first}{}", char::MAX);
        let words: Vec<String> = if several {
            vec![first.to_string()]
        } else {
            // Each next word is one step in the index (a loose index scan), not a read of all.
            let next =
                "SELECT word FROM domain_words WHERE account_id = ? AND word > ? AND word < ? ORDER BY word LIMIT 1";
            let first_word =
                "SELECT word FROM domain_words WHERE account_id = ? AND word >= ? AND word < ? ORDER BY word LIMIT 1";
            let text = format!(
                "WITH RECURSIVE found (word, n) AS (SELECT ({first_word}), 1 UNION ALL \
                 SELECT ({}), n + 1 FROM found WHERE found.word IS NOT NULL AND n <= {RANGES}) \
                 SELECT word FROM found WHERE word IS NOT NULL",
                next.replace("word > ?", "word > found.word")
            );
            let rows = sqlx::query(self.sql(text))
                .bind(account_id)
                .bind(first.to_string())
                .bind(end.clone())
                .bind(account_id)
                .bind(end.clone())
                .fetch_all(&self.pool)
                .await
                .map_err(database("searching domains"))?;
            rows.iter().map(|row| row.get::<String, _>(0)).collect()
        };
        if words.is_empty() {
            return Ok(Vec::new());
        }
        if words.len() as i64 <= RANGES {
            // One range per word, each in name order; together, the first of them by name.
            let range = format!(
                "SELECT {columns} FROM domain_words w CROSS JOIN domains d \
                 WHERE w.account_id = ? AND w.word = ? AND w.domain > ? \
                 AND d.account_id = w.account_id AND d.domain = w.domain{of_status}{of_words} \
                 ORDER BY w.domain LIMIT {limit}"
            );
            let text = if words.len() == 1 {
                range
            } else {
                let ranges: Vec<String> =
                    (0..words.len()).map(|index| format!("SELECT * FROM ({range}) range{index}")).collect();
                format!("{} ORDER BY domain LIMIT {limit}", ranges.join(" UNION "))
            };
            let mut query = sqlx::query(self.sql(text));
            for word in &words {
                query = filters(query.bind(account_id).bind(word.clone()).bind(after.to_string()));
            }
            let rows = query.fetch_all(&self.pool).await.map_err(database("searching domains"))?;
            return rows.iter().map(domain_record).collect();
        }
        // Many words: are their names few enough to sort?
        let entries: i64 = sqlx::query(self.sql(format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM domain_words \
             WHERE account_id = ? AND word >= ? AND word < ? AND domain > ? LIMIT {SORTED}) entries"
        )))
        .bind(account_id)
        .bind(first.to_string())
        .bind(end.clone())
        .bind(after.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(database("searching domains"))?
        .get(0);
        if entries >= SORTED {
            // Many names: likely some among the next SCAN of the list, read in name order up
            // to the last of them (a bound found first, so that the read is an index range).
            let bound: Option<String> = sqlx::query(self.sql(format!(
                "SELECT domain FROM domains WHERE account_id = ? AND domain > ? ORDER BY domain LIMIT 1 OFFSET {}",
                SCAN - 1
            )))
            .bind(account_id)
            .bind(after.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(database("searching domains"))?
            .map(|row| row.get(0));
            let up_to = if bound.is_some() { " AND d.domain <= ?" } else { "" };
            let scan = format!(
                "SELECT {columns} FROM domains d WHERE d.account_id = ? AND d.domain > ?{up_to} \
                 AND {WORDS} LIKE ? ESCAPE '\\'{of_status} ORDER BY d.domain LIMIT {limit}"
            );
            let mut query = sqlx::query(self.sql(scan)).bind(account_id).bind(after.to_string());
            if let Some(bound) = bound {
                query = query.bind(bound);
            }
            query = query.bind(pattern.clone());
            if let Some(status) = status {
                query = query.bind(status.to_string());
            }
            let rows = query.fetch_all(&self.pool).await.map_err(database("searching domains"))?;
            if rows.len() as i64 >= limit {
                return rows.iter().map(domain_record).collect();
            }
        }
        // Their names sorted, then the rows read. (The names first, on their own: asked with the
        // rows, PostgreSQL walked the whole list in name order.) Without filters, the first
        // names are the page.
        let first_names = if status.is_none() && !several { format!(" LIMIT {limit}") } else { String::new() };
        let sorted = format!(
            "SELECT {columns} FROM (SELECT DISTINCT w.domain FROM domain_words w \
             WHERE w.account_id = ? AND w.word >= ? AND w.word < ? AND w.domain > ? ORDER BY w.domain{first_names}) m \
             CROSS JOIN domains d WHERE d.account_id = ? AND d.domain = m.domain{of_status}{of_words} \
             ORDER BY d.domain LIMIT {limit}"
        );
        let query = sqlx::query(self.sql(sorted))
            .bind(account_id)
            .bind(first.to_string())
            .bind(end)
            .bind(after.to_string())
            .bind(account_id);
        let rows = filters(query).fetch_all(&self.pool).await.map_err(database("searching domains"))?;
        rows.iter().map(domain_record).collect()
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
        match search {
            Some(search) => self.search_domains(account_id, status, search, after.unwrap_or(""), limit).await,
            None => self.domain_page_list(account_id, status, after, limit).await,
        }
    }

    /// A page of an account's domains in name order, optionally of one status, read in one
    /// query.
    async fn domain_page_list(
        &self,
        account_id: i64,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        const COLUMNS: &str = DOMAIN_COLUMNS;
        // Clauses only when they filter, so that each variant gets its own plan (the status index
        // for a status). The limit is written into the text: SQLite prepares a statement again
        // at every run when its LIMIT is a bound parameter (it plans with the value).
        let of_status = if status.is_some() { "AND status = ? " } else { "" };
        let page = format!(
            "SELECT {COLUMNS} FROM domains WHERE account_id = ? {of_status}AND domain > ? \
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
        let rows = query.bind(after.unwrap_or("")).fetch_all(&self.pool).await.map_err(database("listing domains"))?;
        match self.backend {
            Backend::Postgres => rows.iter().map(domain_record).collect(),
            // Each domain comes as an array of the columns, in DomainRecord's field order.
            Backend::Sqlite => serde_json::from_str(
                &rows.first().map(|row| row.get::<String, _>(0)).unwrap_or_default(),
            )
            .map_err(|error| StoreError::Corrupt { what: "a page of domains".to_string(), reason: error.to_string() }),
        }
    }

    /// The latest check's status per method of each of `domain_ids` that has been checked, for a
    /// page of the domains list.
    pub async fn method_statuses(
        &self,
        domain_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, MethodStatuses>, StoreError> {
        if domain_ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let placeholders = vec!["?"; domain_ids.len()].join(", ");
        let text = format!(
            "SELECT domain_id, dkim_status, spf_status, dmarc_status, rp_status FROM verification_results \
             WHERE domain_id IN ({placeholders})"
        );
        let mut query = sqlx::query(self.sql(text));
        for id in domain_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database("reading the methods' statuses"))?;
        rows.iter()
            .map(|row| {
                let method = |index: usize| method_status(&row.get::<String, _>(index));
                let return_path = row.get::<Option<String>, _>(4).as_deref().map(method_status).transpose()?;
                Ok((row.get(0), MethodStatuses { dkim: method(1)?, spf: method(2)?, dmarc: method(3)?, return_path }))
            })
            .collect()
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

    /// How many of an account's domains are in each status, each counted up to `cap` (an
    /// account's list shows "1,000+" rather than count 100,000 names on every view). Statuses
    /// with none are left out.
    pub async fn account_status_counts(
        &self,
        account_id: i64,
        statuses: &[&str],
        cap: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        // One round trip: a capped count per status, each an index range (account, status).
        let counts: Vec<String> = statuses
            .iter()
            .map(|_| {
                format!(
                    "(SELECT COUNT(*) FROM (SELECT 1 FROM domains WHERE account_id = ? AND status = ? LIMIT {cap}) c)",
                    cap = cap.max(0)
                )
            })
            .collect();
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::query(self.sql(format!("SELECT {}", counts.join(", "))));
        for status in statuses {
            query = query.bind(account_id).bind(*status);
        }
        let row = query.fetch_one(&self.pool).await.map_err(database("counting an account's domains per status"))?;
        Ok(statuses
            .iter()
            .enumerate()
            .map(|(index, status)| (status.to_string(), row.get::<i64, _>(index)))
            .filter(|(_, count)| *count > 0)
            .collect())
    }

    /// How many domains are in each status.
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT status, COUNT(*) FROM domains GROUP BY status ORDER BY status"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("counting domains per status"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
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
        row.map(|row| stored_result(&row, 0)).transpose()
    }

    /// A domain's status changes, oldest first.
    pub async fn history(&self, domain_id: i64) -> Result<Vec<StatusEvent>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, domain_id, at, from_status, to_status, event FROM status_events WHERE domain_id = ? \
             AND detail_json IS NULL ORDER BY id",
        ))
        .bind(domain_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading the status history"))?;
        rows.iter()
            .map(|row| {
                Ok(StatusEvent {
                    id: row.get(0),
                    domain_id: row.get(1),
                    at: row.get(2),
                    from_status: row.get::<Option<String>, _>(3).as_deref().map(lifecycle_status).transpose()?,
                    to_status: lifecycle_status(&row.get::<String, _>(4))?,
                    event: row.get(5),
                })
            })
            .collect()
    }
}
