//! Demo mode's sandbox DNS host (`senderauth serve --demo`): the account's customer zones and
//! their records, which the embedded DNS server serves. The rules for what a typed Host and
//! value mean are the core's (`senderauth_core::sandbox`); the pages are the web UI's.
//!
//! A sandbox zone is an organizational domain (example.com, not shop.example.com: its
//! subdomains' records go in it), owned by the account that made it; connecting a domain in
//! demo mode makes its zone.

use senderauth_core::name::DomainName;
use senderauth_core::sandbox::{KINDS, owner_name, scenario_names, scenario_records, typed_value};
use senderauth_store::{NewSandboxRecord, StoreError};
pub use senderauth_store::{SandboxRecord, SandboxZone};

use crate::error::ServiceError;
use crate::service::Service;

/// Why `apex` cannot be a sandbox zone; `None` when it can.
fn zone_refusal(service: &Service, apex: &DomainName) -> Option<String> {
    if !apex.is_organizational() {
        return Some(format!(
            "host the whole domain {} instead: its subdomains' records go in it",
            apex.organizational_domain()
        ));
    }
    let provider = &service.worker.provider;
    for platform in [&provider.zone, &provider.variable_domain] {
        let platform = platform.trim_end_matches('.').to_ascii_lowercase();
        let name = apex.as_str();
        if name == platform || platform.ends_with(&format!(".{name}")) || name.ends_with(&format!(".{platform}")) {
            return Some(format!("{name} holds the platform's own zone {platform}; pick another domain"));
        }
    }
    None
}

/// Why a record cannot join `existing`; `None` when it can. A CNAME stands alone at its name
/// (RFC 1034 section 3.6.2), and an exact duplicate is refused.
fn conflict(existing: &[SandboxRecord], name: &str, kind: &str, value: &str) -> Option<String> {
    let at_name: Vec<&SandboxRecord> = existing.iter().filter(|record| record.name == name).collect();
    if at_name.iter().any(|record| record.kind == kind && record.value == value) {
        return Some(format!("{name} already has this {kind} record"));
    }
    if kind == "CNAME" && !at_name.is_empty() {
        return Some(format!(
            "{name} already has records; a CNAME must be the only record at its name: remove them first"
        ));
    }
    if at_name.iter().any(|record| record.kind == "CNAME") {
        return Some(format!("{name} has a CNAME record, which must be the only record at its name: remove it first"));
    }
    None
}

impl Service {
    fn sandbox_on(&self) -> Result<(), ServiceError> {
        if self.demo { Ok(()) } else { Err(ServiceError::SandboxOff) }
    }

    /// Demo mode: hosts the zone of a domain just connected (its organizational domain), unless
    /// that zone is the platform's or another account's. Returns the zone's apex if it is the
    /// account's.
    pub(crate) async fn host_connected_domain(&self, account: i64, domain: &DomainName) -> Option<String> {
        let apex = domain.organizational_domain();
        if zone_refusal(self, &apex).is_some() {
            return None;
        }
        match self.worker.store.create_sandbox_zone(account, apex.as_str(), self.now()).await {
            Ok(zone) => Some(zone.apex),
            Err(StoreError::ZoneTaken { .. }) => None,
            Err(error) => {
                tracing::warn!(%error, "hosting a sandbox zone");
                None
            }
        }
    }

    /// The account's sandbox zones, by name.
    pub async fn sandbox_zones(&self, account: i64) -> Result<Vec<SandboxZone>, ServiceError> {
        self.sandbox_on()?;
        Ok(self.worker.store.sandbox_zones(account).await?)
    }

    /// Hosts a zone in the sandbox for the account (or returns it if the account hosts it).
    pub async fn create_sandbox_zone(&self, account: i64, domain: &str) -> Result<SandboxZone, ServiceError> {
        self.sandbox_on()?;
        let apex = DomainName::parse(domain).map_err(|error| ServiceError::SandboxRefused(error.to_string()))?;
        if let Some(refusal) = zone_refusal(self, &apex) {
            return Err(ServiceError::SandboxRefused(refusal));
        }
        self.worker.store.create_sandbox_zone(account, apex.as_str(), self.now()).await.map_err(|error| match error {
            error @ StoreError::ZoneTaken { .. } => ServiceError::ZoneTaken(error.to_string()),
            other => other.into(),
        })
    }

    /// The account's sandbox zone `apex`.
    pub async fn sandbox_zone(&self, account: i64, apex: &str) -> Result<SandboxZone, ServiceError> {
        self.sandbox_on()?;
        self.worker
            .store
            .sandbox_zone(account, &apex.to_ascii_lowercase())
            .await?
            .ok_or_else(|| ServiceError::ZoneNotFound(apex.to_string()))
    }

    /// Whether the account hosts `apex` in the sandbox (false outside demo mode).
    pub async fn hosts_sandbox_zone(&self, account: i64, apex: &str) -> bool {
        self.demo && matches!(self.worker.store.sandbox_zone(account, apex).await, Ok(Some(_)))
    }

    /// The records of a zone.
    pub async fn sandbox_records(&self, zone: &SandboxZone) -> Result<Vec<SandboxRecord>, ServiceError> {
        Ok(self.worker.store.sandbox_records(zone.id).await?)
    }

    /// Adds a record to one of the account's zones: the Host and value read as DNS hosts read
    /// them; refused with the reason when the type, Host or value is not valid, or when it
    /// clashes with the records there.
    pub async fn add_sandbox_record(
        &self,
        zone: &SandboxZone,
        kind: &str,
        host: &str,
        value: &str,
    ) -> Result<(), ServiceError> {
        self.change_sandbox_record(zone, None, kind, host, value).await
    }

    /// Changes one of a zone's records (the Edit action): checked as a new record would be,
    /// against the zone's other records, and swapped in one step.
    pub async fn edit_sandbox_record(
        &self,
        zone: &SandboxZone,
        id: i64,
        kind: &str,
        host: &str,
        value: &str,
    ) -> Result<(), ServiceError> {
        self.change_sandbox_record(zone, Some(id), kind, host, value).await
    }

    async fn change_sandbox_record(
        &self,
        zone: &SandboxZone,
        replacing: Option<i64>,
        kind: &str,
        host: &str,
        value: &str,
    ) -> Result<(), ServiceError> {
        let name = owner_name(&zone.apex, host).map_err(|refused| ServiceError::SandboxRefused(refused.0))?;
        if !KINDS.contains(&kind) {
            return Err(ServiceError::SandboxRefused(format!("pick one of the types {}", KINDS.join(", "))));
        }
        if kind == "NS" && name != zone.apex {
            return Err(ServiceError::SandboxRefused(format!(
                "NS records go at the zone itself (Host @): they say which DNS host serves {}",
                zone.apex
            )));
        }
        let value = typed_value(kind, value).map_err(|refused| ServiceError::SandboxRefused(refused.0))?;
        let store = &self.worker.store;
        let mut existing = store.sandbox_records(zone.id).await?;
        if let Some(id) = replacing {
            let before = existing.len();
            existing.retain(|record| record.id != id);
            if existing.len() == before {
                return Err(ServiceError::SandboxRefused("that record is gone: add it again".to_string()));
            }
        }
        if let Some(refusal) = conflict(&existing, &name, kind, &value) {
            return Err(ServiceError::SandboxRefused(refusal));
        }
        let record = NewSandboxRecord { name, kind: kind.to_string(), value };
        store.change_sandbox_records(zone.id, replacing.as_slice(), &[record], self.now()).await?;
        Ok(())
    }

    /// Puts one of the mistakes customers make (`senderauth_core::sandbox::SCENARIOS`) into a
    /// zone for one of the account's domains: the TXT and CNAME records at the domain's names
    /// (and addresses at its DKIM names) are replaced by the scenario's, in one step.
    pub async fn load_sandbox_scenario(
        &self,
        account: i64,
        zone: &SandboxZone,
        domain: &str,
        scenario: &str,
    ) -> Result<(), ServiceError> {
        let (name, record) = self.owned_domain(account, domain).await?;
        if name.organizational_domain().as_str() != zone.apex {
            return Err(ServiceError::SandboxRefused(format!("{domain} is not in the zone {}", zone.apex)));
        }
        let keys = self.worker.store.domain_keys(record.id).await?;
        let plan = self.plan(account, &name, &keys, false).await?;
        let key_texts: Vec<(String, String)> = self
            .keys(account, domain)
            .await?
            .keys
            .into_iter()
            .filter_map(|key| key.record.map(|text| (key.published_at, text)))
            .collect();
        let records = scenario_records(scenario, &zone.apex, &plan.records, &key_texts)
            .ok_or_else(|| ServiceError::SandboxRefused(format!("there is no scenario {scenario:?}")))?;
        let names = scenario_names(&zone.apex, &plan.records);
        let remove: Vec<i64> = self
            .worker
            .store
            .sandbox_records(zone.id)
            .await?
            .into_iter()
            .filter(|record| {
                // TXT and CNAME records at the domain's names; addresses only at DKIM names (a
                // proxied CNAME), never the website's.
                names.contains(&record.name)
                    && (matches!(record.kind.as_str(), "TXT" | "CNAME")
                        || (record.kind == "A" && record.name.contains("._domainkey.")))
            })
            .map(|record| record.id)
            .collect();
        let add: Vec<NewSandboxRecord> = records
            .into_iter()
            .map(|record| NewSandboxRecord { name: record.name, kind: record.kind.to_string(), value: record.value })
            .collect();
        self.worker.store.change_sandbox_records(zone.id, &remove, &add, self.now()).await?;
        Ok(())
    }

    /// Removes a record from one of the account's zones.
    pub async fn remove_sandbox_record(&self, zone: &SandboxZone, id: i64) -> Result<(), ServiceError> {
        self.worker.store.remove_sandbox_record(zone.id, id, self.now()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cname_stands_alone() {
        let record = |id, name: &str, kind: &str, value: &str| SandboxRecord {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
            value: value.to_string(),
        };
        let existing =
            [record(1, "shop.example.com", "TXT", "v=spf1 -all"), record(2, "a.example.com", "CNAME", "b.example.net")];
        assert!(conflict(&existing, "shop.example.com", "CNAME", "x.example.net").is_some());
        assert!(conflict(&existing, "a.example.com", "TXT", "hello").is_some());
        assert!(
            conflict(&existing, "shop.example.com", "TXT", "v=spf1 -all").expect("taken").contains("already has this")
        );
        assert!(conflict(&existing, "shop.example.com", "TXT", "other").is_none());
    }
}
