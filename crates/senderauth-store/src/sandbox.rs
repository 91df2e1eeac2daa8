//! Demo mode's sandbox DNS host: customer zones hosted by the embedded DNS server, each owned
//! by one account, holding the records its customer typed in. Every change is logged in
//! `zone_changes` under the name it touches, so the DNS servers pick it up like the platform's
//! own records.

use sqlx::Row;

use crate::{StoreError, database};

/// A customer zone hosted in the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxZone {
    pub id: i64,
    pub apex: String,
    /// How many records it holds.
    pub records: i64,
}

/// A record to add to a sandbox zone: its full owner name, type and stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSandboxRecord {
    pub name: String,
    pub kind: String,
    pub value: String,
}

/// One record of a sandbox zone, as typed: `kind` is TXT, CNAME, A, AAAA, MX or NS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxRecord {
    pub id: i64,
    /// The full owner name, lowercase, without the trailing dot.
    pub name: String,
    pub kind: String,
    pub value: String,
}

fn record(row: &sqlx::any::AnyRow) -> SandboxRecord {
    SandboxRecord { id: row.get(0), name: row.get(1), kind: row.get(2), value: row.get(3) }
}

const ZONE_COLUMNS: &str =
    "z.id, z.apex, (SELECT COUNT(*) FROM sandbox_records r WHERE r.zone_id = z.id) FROM sandbox_zones z";

fn zone(row: &sqlx::any::AnyRow) -> SandboxZone {
    SandboxZone { id: row.get(0), apex: row.get(1), records: row.get(2) }
}

impl crate::Store {
    /// Hosts `apex` in the sandbox for `account_id`, or returns the account's zone if it already
    /// is. Another account's zone of that name is a conflict.
    pub async fn create_sandbox_zone(&self, account_id: i64, apex: &str, now: i64) -> Result<SandboxZone, StoreError> {
        let owner = sqlx::query(self.sql("SELECT account_id FROM sandbox_zones WHERE apex = ?"))
            .bind(apex)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a sandbox zone"))?;
        if let Some(owner) = owner {
            let owner: i64 = owner.get(0);
            if owner != account_id {
                return Err(StoreError::ZoneTaken { apex: apex.to_string(), account_id });
            }
        } else {
            let mut transaction = self.begin_write().await?;
            let inserted =
                sqlx::query(self.sql("INSERT INTO sandbox_zones (account_id, apex, created_at) VALUES (?, ?, ?)"))
                    .bind(account_id)
                    .bind(apex)
                    .bind(now)
                    .execute(&mut *transaction)
                    .await;
            match inserted {
                Ok(_) => {}
                // Made by a concurrent request meanwhile: read whose it is again.
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    drop(transaction);
                    return Box::pin(self.create_sandbox_zone(account_id, apex, now)).await;
                }
                Err(error) => return Err(database("hosting a sandbox zone")(error)),
            }
            self.log_zone_changes(&mut transaction, &[apex.to_string()], now).await?;
            transaction.commit().await.map_err(database("committing"))?;
        }
        self.sandbox_zone(account_id, apex)
            .await?
            .ok_or_else(|| StoreError::Gone { what: format!("sandbox zone {apex}") })
    }

    /// The account's sandbox zones, by name.
    pub async fn sandbox_zones(&self, account_id: i64) -> Result<Vec<SandboxZone>, StoreError> {
        let rows = sqlx::query(self.sql(format!("SELECT {ZONE_COLUMNS} WHERE z.account_id = ? ORDER BY z.apex")))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading sandbox zones"))?;
        Ok(rows.iter().map(zone).collect())
    }

    /// The account's sandbox zone `apex`; `None` when it has none of that name (another
    /// account's included).
    pub async fn sandbox_zone(&self, account_id: i64, apex: &str) -> Result<Option<SandboxZone>, StoreError> {
        let row = sqlx::query(self.sql(format!("SELECT {ZONE_COLUMNS} WHERE z.account_id = ? AND z.apex = ?")))
            .bind(account_id)
            .bind(apex)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a sandbox zone"))?;
        Ok(row.as_ref().map(zone))
    }

    /// A sandbox zone's records, by name and type.
    pub async fn sandbox_records(&self, zone_id: i64) -> Result<Vec<SandboxRecord>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT id, name, kind, value FROM sandbox_records WHERE zone_id = ? ORDER BY name, kind, id"),
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database("reading sandbox records"))?;
        Ok(rows.iter().map(record).collect())
    }

    /// Adds a record to a sandbox zone; its id.
    pub async fn add_sandbox_record(
        &self,
        zone_id: i64,
        name: &str,
        kind: &str,
        value: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let record = NewSandboxRecord { name: name.to_string(), kind: kind.to_string(), value: value.to_string() };
        let (_, ids) = self.change_sandbox_records(zone_id, &[], &[record], now).await?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }

    /// Removes a record from a sandbox zone; `false` when the zone holds no such record.
    pub async fn remove_sandbox_record(&self, zone_id: i64, record_id: i64, now: i64) -> Result<bool, StoreError> {
        let (removed, _) = self.change_sandbox_records(zone_id, &[record_id], &[], now).await?;
        Ok(removed == 1)
    }

    /// Removes records (by id; ids the zone does not hold are passed over) and adds others to a
    /// sandbox zone in one transaction, so the DNS server never serves the half-changed zone (an
    /// edit, a scenario). Returns how many were removed and the added records' ids.
    pub async fn change_sandbox_records(
        &self,
        zone_id: i64,
        remove: &[i64],
        add: &[NewSandboxRecord],
        now: i64,
    ) -> Result<(usize, Vec<i64>), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut names = Vec::new();
        for id in remove {
            let row = sqlx::query(self.sql("DELETE FROM sandbox_records WHERE zone_id = ? AND id = ? RETURNING name"))
                .bind(zone_id)
                .bind(*id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(database("removing a sandbox record"))?;
            names.extend(row.map(|row| row.get::<String, _>(0)));
        }
        let removed = names.len();
        let mut ids = Vec::new();
        for record in add {
            let row = sqlx::query(self.sql(
                "INSERT INTO sandbox_records (zone_id, name, kind, value, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(zone_id)
            .bind(&record.name)
            .bind(&record.kind)
            .bind(&record.value)
            .bind(now)
            .fetch_one(&mut *transaction)
            .await
            .map_err(database("adding a sandbox record"))?;
            ids.push(row.get(0));
            names.push(record.name.clone());
        }
        names.sort();
        names.dedup();
        self.log_zone_changes(&mut transaction, &names, now).await?;
        transaction.commit().await.map_err(database("committing"))?;
        Ok((removed, ids))
    }

    /// Every sandbox zone's apex and every record, for loading a DNS server.
    pub async fn sandbox_contents(&self) -> Result<(Vec<String>, Vec<SandboxRecord>), StoreError> {
        let apexes = sqlx::query(self.sql("SELECT apex FROM sandbox_zones"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading sandbox zones"))?;
        let records = sqlx::query(self.sql("SELECT id, name, kind, value FROM sandbox_records ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(database("reading sandbox records"))?;
        Ok((apexes.iter().map(|row| row.get(0)).collect(), records.iter().map(record).collect()))
    }

    /// Whether `name` is a sandbox zone's apex, and the sandbox records at it.
    pub(crate) async fn sandbox_name(&self, name: &str) -> Result<(bool, Vec<SandboxRecord>), StoreError> {
        let apex = sqlx::query(self.sql("SELECT 1 FROM sandbox_zones WHERE apex = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(database("reading a sandbox zone"))?;
        let records =
            sqlx::query(self.sql("SELECT id, name, kind, value FROM sandbox_records WHERE name = ? ORDER BY id"))
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(database("reading sandbox records"))?;
        Ok((apex.is_some(), records.iter().map(record).collect()))
    }
}
