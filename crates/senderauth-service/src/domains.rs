//! The domain use cases: connect, list, show, the records to add, verify now, the hosted keys
//! and their rotation, remove. Each returns a typed view or a [`ServiceError`].

use serde::{Deserialize, Serialize};

use senderauth_core::dkim::key::KeyAlgorithm;
use senderauth_core::lifecycle::LifecycleStatus;
use senderauth_core::name::{AccountId, DomainName, check_name_fits, normalize};
pub use senderauth_core::plan::DnsHost;
use senderauth_core::plan::{PlanError, RecordPlan, RequiredRecord, dns_host_of, domain_selectors, plan_records};
use senderauth_core::problem::{Method, ProblemCode, Severity};
use senderauth_core::status::MethodStatus;
use senderauth_core::verify::Verification;
use senderauth_store::{CheckRun, DomainRecord, KeyGroup, KeyInfo, KeyState, MethodStatuses, StatusEvent, StoreError};

use crate::error::ServiceError;
use crate::keys::{KeyError, has_ed25519, hosted_keys};
use crate::rotation::{self, RotateError};
use crate::service::Service;

/// The list counts each status's domains up to this many.
pub const STATUS_COUNT_CAP: i64 = 1000;

/// The most domains one page of the list may hold.
pub const MAX_PAGE: i64 = 500;

/// A connected domain as lists show it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DomainSummary {
    pub domain: String,
    /// The lifecycle status.
    pub status: LifecycleStatus,
    pub connected_at: i64,
    pub last_checked_at: Option<i64>,
    pub next_check_at: Option<i64>,
}

impl From<&DomainRecord> for DomainSummary {
    fn from(record: &DomainRecord) -> DomainSummary {
        DomainSummary {
            domain: record.domain.clone(),
            status: record.status,
            connected_at: record.created_at,
            last_checked_at: record.last_checked_at,
            next_check_at: record.next_check_at,
        }
    }
}

/// A domain just connected, with the records to add.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectedDomain {
    #[serde(flatten)]
    pub domain: DomainSummary,
    /// The records to add; null only when no plan can be made (the domain became reserved
    /// meanwhile).
    pub records: Option<Vec<RequiredRecord>>,
}

/// One page of an account's domains.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub domains: Vec<DomainSummary>,
    /// The `after` of the next page; null on the last.
    pub next: Option<String>,
}

/// A row of the UI's domain list: the domain and each method's status at the latest check.
#[derive(Clone, Debug)]
pub struct DomainRow {
    pub domain: DomainSummary,
    /// Each method's status as of the latest check; `None` before the first.
    pub methods: Option<MethodStatuses>,
}

/// One record to add, next to what DNS held at the latest check.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    #[serde(flatten)]
    pub required: RequiredRecord,
    /// What DNS held at the latest check (absent before the first check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// This record's status at the latest check (absent before the first check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MethodStatus>,
}

/// A status change of a domain.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: i64,
    pub from: Option<LifecycleStatus>,
    pub to: LifecycleStatus,
    pub event: Option<String>,
}

impl From<&StatusEvent> for HistoryEntry {
    fn from(event: &StatusEvent) -> HistoryEntry {
        HistoryEntry { at: event.at, from: event.from_status, to: event.to_status, event: event.event.clone() }
    }
}

/// What the front ends show of the latest check: each method's status and findings, and the
/// problems. Read from the stored result (which keeps the whole verification).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LatestCheck {
    pub dkim: DkimFindings,
    pub spf: SpfFindings,
    pub dmarc: DmarcFindings,
    /// Absent from checks made before the return-path was checked.
    #[serde(default)]
    pub return_path: Option<ReturnPathFindings>,
    #[serde(default)]
    pub problems: Vec<ProblemView>,
}

/// The return-path findings of a check.
#[derive(Clone, Debug, Deserialize)]
pub struct ReturnPathFindings {
    pub status: MethodStatus,
    pub host: String,
    pub expected_target: String,
    pub found_target: Option<String>,
    #[serde(default)]
    pub flattened: bool,
}

/// The DKIM findings of a check.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DkimFindings {
    pub status: Option<MethodStatus>,
    #[serde(default)]
    pub selectors: Vec<SelectorFindings>,
}

/// What one selector's host held.
#[derive(Clone, Debug, Deserialize)]
pub struct SelectorFindings {
    pub host: String,
    pub found_target: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    pub status: MethodStatus,
}

/// The SPF findings of a check.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SpfFindings {
    pub status: Option<MethodStatus>,
    pub record: Option<String>,
    #[serde(default)]
    pub records_found: Vec<String>,
    /// The include tree under the record, with lookup counts.
    pub tree: Option<SpfTreeFindings>,
    /// Each sending address's check_host result.
    #[serde(default)]
    pub sending_ips: Vec<SendingIpFindings>,
}

/// The include tree of a check's SPF record.
#[derive(Clone, Debug, Deserialize)]
pub struct SpfTreeFindings {
    pub root: SpfNodeFindings,
    pub lookups: u32,
    pub void_lookups: u32,
}

/// One record of an SPF include tree.
#[derive(Clone, Debug, Deserialize)]
pub struct SpfNodeFindings {
    pub domain: String,
    /// `record`, `include` or `redirect`.
    pub via: String,
    pub record: Option<String>,
    pub lookups: u32,
    pub error: Option<String>,
    #[serde(default)]
    pub children: Vec<SpfNodeFindings>,
}

/// What check_host gave for one of the platform's sending addresses.
#[derive(Clone, Debug, Deserialize)]
pub struct SendingIpFindings {
    pub network: String,
    pub ip: String,
    pub result: String,
    pub reason: String,
}

/// The DMARC findings of a check: the record that applies and where it is.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DmarcFindings {
    pub status: Option<MethodStatus>,
    pub record: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub inherited: bool,
    pub policy: Option<String>,
}

/// One problem of a check, as shown.
#[derive(Clone, Debug, Deserialize)]
pub struct ProblemView {
    pub code: String,
    pub severity: Severity,
    pub method: Method,
    pub message: String,
    pub fix: String,
    /// The record it is about, when its method has several (a DKIM selector's name).
    #[serde(default)]
    pub host: Option<String>,
}

/// One of an account's domains with everything the setup page and `GET /domains/{domain}` show.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DomainView {
    #[serde(flatten)]
    pub domain: DomainSummary,
    /// The records to add, with what DNS held at the latest check; null when no plan can be made.
    pub records: Option<Vec<RecordView>>,
    /// The latest check's whole result, as the verifier wrote it.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Status changes, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The zone the customer manages, which record hosts are relative to.
    #[serde(skip)]
    pub zone: String,
    /// The latest check, typed for the pages.
    #[serde(skip)]
    pub latest: Option<LatestCheck>,
}

/// A domain after a check on request: its state and the whole result.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct VerifiedNow {
    #[serde(flatten)]
    pub domain: DomainSummary,
    #[schema(value_type = Object)]
    pub result: Verification,
}

/// One DKIM key the platform holds for a domain. Never the private key.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub selector: String,
    pub published_at: String,
    pub algorithm: String,
    pub state: &'static str,
    pub signing: bool,
    pub public_key: String,
    pub record: Option<String>,
    pub created_at: i64,
    pub active_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub activates_at: Option<i64>,
    pub rotates_at: Option<i64>,
    pub revokes_at: Option<i64>,
    pub safe_to_remove: bool,
}

/// A domain's hosted keys.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DomainKeys {
    pub domain: String,
    pub keys: Vec<KeyView>,
}

/// A domain's history page: the domain, its status changes (oldest first), and a page of its
/// check runs (newest first).
#[derive(Clone, Debug)]
pub struct DomainHistory {
    pub domain: DomainSummary,
    pub history: Vec<HistoryEntry>,
    pub runs: Vec<CheckRun>,
}

/// A status to filter a list by, as stored (`pending`, the earlier name, read as `not_verified`).
fn status_filter(status: Option<&str>) -> Result<Option<&'static str>, ServiceError> {
    status
        .map(|text| {
            LifecycleStatus::parse(text)
                .map(LifecycleStatus::as_str)
                .ok_or_else(|| ServiceError::InvalidStatus(text.to_string()))
        })
        .transpose()
}

fn account_id(account: i64) -> Result<AccountId, ServiceError> {
    AccountId::parse(&account.to_string()).map_err(|error| ServiceError::Internal(error.to_string()))
}

pub(crate) fn not_found(name: &str) -> ServiceError {
    ServiceError::DomainNotFound(name.to_string())
}

fn algorithm(text: &str) -> Result<KeyAlgorithm, ServiceError> {
    text.parse::<KeyAlgorithm>().map_err(|error| ServiceError::InvalidDkimAlgorithm(error.to_string()))
}

impl Service {
    /// The records a domain needs (with `ed25519`, its Ed25519 CNAMEs too). With `live`,
    /// planned against what DNS holds now (the SPF record merged with the existing one, an
    /// inherited DMARC record recognized); when DNS cannot be read now, the records are still
    /// given, without the merge.
    pub async fn plan(
        &self,
        account: i64,
        domain: &DomainName,
        keys: &[KeyInfo],
        live: bool,
    ) -> Result<RecordPlan, ServiceError> {
        let account = account_id(account)?;
        let provider = &self.worker.provider;
        let (ed25519, hosted) = (has_ed25519(keys), hosted_keys(keys));
        let dns = live.then_some(&self.worker.dns);
        let planned = match plan_records(dns, provider, &account, domain, ed25519, &hosted).await {
            Err(PlanError::Dns(_)) if live => plan_records(None, provider, &account, domain, ed25519, &hosted).await,
            other => other,
        };
        planned.map_err(|error| match error {
            PlanError::MailboxProvider { .. } => ServiceError::MailboxProvider(error.to_string()),
            other => ServiceError::DomainReserved(other.to_string()),
        })
    }

    /// Connects the domain of a From address to an account, with its hosted keys, and returns
    /// the records to add. `dkim_algorithm` unset: the service's default.
    pub async fn connect(
        &self,
        account: i64,
        email: &str,
        dkim_algorithm: Option<&str>,
    ) -> Result<ConnectedDomain, ServiceError> {
        let record = self.connect_domain(account, email, dkim_algorithm).await?;
        let domain = DomainName::parse(&record.domain).map_err(|error| ServiceError::Internal(error.to_string()))?;
        let keys = self.worker.store.domain_keys(record.id).await?;
        let records = self.plan(account, &domain, &keys, true).await.ok().map(|plan| plan.records);
        Ok(ConnectedDomain { domain: DomainSummary::from(&record), records })
    }

    async fn connect_domain(
        &self,
        account: i64,
        email: &str,
        dkim_algorithm: Option<&str>,
    ) -> Result<DomainRecord, ServiceError> {
        let domain = DomainName::from_email(email).map_err(|error| ServiceError::InvalidEmail(error.to_string()))?;
        let store = &self.worker.store;
        if let Some(own) = self.platform_domain_of(domain.as_str()) {
            return Err(ServiceError::PlatformDomain(format!(
                "{domain} is the platform's own domain{}; use an address at a domain you own",
                if own == domain.as_str() { String::new() } else { format!(" (under {own})") }
            )));
        }
        if let Some(provider) = senderauth_core::plan::mailbox_provider(&self.worker.provider, &domain) {
            let error = PlanError::MailboxProvider { domain: domain.to_string(), provider };
            return Err(ServiceError::MailboxProvider(error.to_string()));
        }
        let reserved_by_config = senderauth_core::plan::is_reserved(&self.worker.provider, &domain);
        if reserved_by_config || store.is_reserved(domain.as_str()).await? {
            return Err(ServiceError::DomainReserved(format!(
                "{domain} is used by the platform for another purpose; connect a subdomain instead, like mail.{domain}"
            )));
        }
        let account_name = account_id(account)?;
        let algorithm = match dkim_algorithm {
            Some(text) => algorithm(text)?,
            None => self.keys.algorithm,
        };
        self.check_key_names(account, &account_name, &domain, algorithm).await?;
        let zone =
            self.keys.domain_zone(&self.worker.provider, &account_name, &domain, algorithm).await.map_err(|error| {
                tracing::error!(%error, "making DKIM keys");
                ServiceError::KeyGeneration
            })?;
        let record =
            store.add_domain_with(account, domain.as_str(), self.now(), &zone).await.map_err(|error| match error {
                error @ StoreError::DomainExists { .. } => ServiceError::DomainExists(error.to_string()),
                error @ StoreError::DomainLimitReached { .. } => ServiceError::DomainLimitReached(error.to_string()),
                other => other.into(),
            })?;
        if self.demo {
            self.host_connected_domain(account, &domain).await;
        }
        Ok(record)
    }

    /// A page of the account's domains, by name after `after`, optionally of one status.
    pub async fn domains(
        &self,
        account: i64,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<DomainList, ServiceError> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ServiceError::InvalidPageLimit { max: MAX_PAGE });
        }
        let status = status_filter(status)?;
        let domains = self.worker.store.domains(account, status, after, limit).await?;
        let next =
            (domains.len() as i64 == limit).then(|| domains.last().map(|record| record.domain.clone())).flatten();
        Ok(DomainList { domains: domains.iter().map(DomainSummary::from).collect(), next })
    }

    /// Up to `limit` of the account's domains with a word of the name beginning with `search`
    /// (all when `None`), after `after`, optionally of one status, each with its methods' latest
    /// statuses.
    pub async fn domain_rows(
        &self,
        account: i64,
        status: Option<&str>,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DomainRow>, ServiceError> {
        let store = &self.worker.store;
        let status = status_filter(status)?;
        let domains = match search {
            Some(search) => store.domains_matching(account, status, search, after, limit).await?,
            None => store.domains(account, status, after, limit).await?,
        };
        let ids: Vec<i64> = domains.iter().map(|domain| domain.id).collect();
        let mut methods = match store.method_statuses(&ids).await {
            Ok(methods) => methods,
            // The list is still worth showing without the badges.
            Err(error) => {
                tracing::error!(%error, "reading the methods' statuses");
                std::collections::HashMap::new()
            }
        };
        Ok(domains
            .iter()
            .map(|record| DomainRow { domain: DomainSummary::from(record), methods: methods.remove(&record.id) })
            .collect())
    }

    /// One of the account's domains (404 whether it is missing or another account's).
    pub(crate) async fn owned_domain(
        &self,
        account: i64,
        name: &str,
    ) -> Result<(DomainName, DomainRecord), ServiceError> {
        let domain = DomainName::parse(name).map_err(|_| not_found(name))?;
        let record = self.worker.store.domain(account, domain.as_str()).await?.ok_or_else(|| not_found(name))?;
        Ok((domain, record))
    }

    /// Refuses a domain whose DKIM names cannot be published (a CNAME host or target too long
    /// for DNS) or are another connected domain's (a target template that maps two domains to
    /// one name), before any key is made.
    async fn check_key_names(
        &self,
        account: i64,
        account_name: &AccountId,
        domain: &DomainName,
        algorithm: KeyAlgorithm,
    ) -> Result<(), ServiceError> {
        let ed25519 = algorithm == KeyAlgorithm::Ed25519;
        let selectors = domain_selectors(&self.worker.provider, account_name, domain, ed25519, &[]);
        for selector in &selectors {
            let host = format!("{}._domainkey.{domain}", selector.selector);
            for name in [&host, &selector.target] {
                if let Err(error) = check_name_fits(name) {
                    return Err(ServiceError::KeyNameUnpublishable(format!(
                        "{domain} is too long for its DKIM records: {error}; connect a shorter domain, or send from \
                         a shorter subdomain"
                    )));
                }
            }
        }
        let targets: Vec<String> = selectors.iter().map(|selector| normalize(&selector.target)).collect();
        let taken = self.worker.store.names_with_keys(&targets).await?;
        if !taken.is_empty() {
            if self.worker.store.domain(account, domain.as_str()).await?.is_some() {
                return Err(ServiceError::DomainExists(
                    StoreError::DomainExists { domain: domain.to_string() }.to_string(),
                ));
            }
            return Err(ServiceError::KeyNamesTaken(format!(
                "the DKIM keys of {domain} would be published at {}, where another connected domain's keys are: \
                 the platform's DKIM target template gives both domains the same names; the platform has to \
                 change it (with {{domain}} or {{domain_dashed}} in it) before this domain can be connected",
                taken.join(", ")
            )));
        }
        Ok(())
    }

    /// One of the account's domains with the records to add (each next to what DNS held at the
    /// latest check), the latest result and the status history. With `live`, the records are
    /// planned against what DNS holds now; without, from the configuration alone.
    pub async fn domain(&self, account: i64, name: &str, live: bool) -> Result<DomainView, ServiceError> {
        let domain = DomainName::parse(name).map_err(|_| not_found(name))?;
        let page = self.worker.store.domain_page(account, domain.as_str()).await?.ok_or_else(|| not_found(name))?;
        let keys = self.worker.store.domain_keys(page.record.id).await?;
        let plan = self.plan(account, &domain, &keys, live).await.ok();
        let stored = page.result.as_ref().map(|result| result.result_json.as_str());
        let result: Option<serde_json::Value> = stored.and_then(|text| serde_json::from_str(text).ok());
        let mut latest: Option<LatestCheck> = stored.and_then(|text| serde_json::from_str(text).ok());
        if let Some(latest) = &mut latest {
            self.advise_enforcement(domain.as_str(), latest).await?;
        }
        let zone = plan.as_ref().map_or_else(|| domain.to_string(), |plan| plan.zone.to_string());
        let records = plan.map(|plan| {
            plan.records
                .into_iter()
                .map(|required| {
                    let (found, status) = latest.as_ref().and_then(|latest| found(&required, latest)).unzip();
                    RecordView { required, found: found.flatten(), status }
                })
                .collect()
        });
        Ok(DomainView {
            domain: DomainSummary::from(&page.record),
            records,
            result,
            history: page.history.iter().map(HistoryEntry::from).collect(),
            zone,
            latest,
        })
    }

    /// `dmarc_policy_none`'s advice from the domain's own reports (the way to enforcement),
    /// once they are shown to the account (DKIM verified), instead of a pointer to reports.
    async fn advise_enforcement(&self, domain: &str, latest: &mut LatestCheck) -> Result<(), ServiceError> {
        let code = ProblemCode::DmarcPolicyNone.as_str();
        // Reports are shown once DKIM is verified, as the latest check found.
        if !latest.problems.iter().any(|problem| problem.code == code)
            || latest.dkim.status != Some(MethodStatus::Verified)
        {
            return Ok(());
        }
        let recommendation = self.recommendation(domain, &latest.dmarc).await?;
        let mut advice = recommendation.reasons.join(" ");
        if let Some(record) = &recommendation.next_record {
            advice.push_str(&format!(" The record to publish: {record}"));
        }
        for problem in latest.problems.iter_mut().filter(|problem| problem.code == code) {
            problem.fix.clone_from(&advice);
        }
        Ok(())
    }

    /// A domain's status and its methods' as of the latest check: what an open page polls to
    /// learn that a check finished (two indexed reads).
    pub async fn domain_state(&self, account: i64, name: &str) -> Result<DomainRow, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        let methods = self.worker.store.method_statuses(&[record.id]).await?.remove(&record.id);
        Ok(DomainRow { domain: (&record).into(), methods })
    }

    /// How many of the account's domains are in each status, each counted up to
    /// [`STATUS_COUNT_CAP`]: what the list shows as "1,000+".
    pub async fn status_counts(&self, account: i64) -> Result<Vec<(LifecycleStatus, i64)>, ServiceError> {
        let statuses: Vec<&str> = LifecycleStatus::ALL.iter().map(|status| status.as_str()).collect();
        let counts = self.worker.store.account_status_counts(account, &statuses, STATUS_COUNT_CAP).await?;
        Ok(LifecycleStatus::ALL
            .iter()
            .filter_map(|status| {
                counts.iter().find(|(name, _)| name == status.as_str()).map(|(_, count)| (*status, *count))
            })
            .collect())
    }

    /// The DNS host of a customer's zone, told from its NS records; `None` when it is not one
    /// we know or DNS does not answer now.
    pub async fn dns_host(&self, zone: &str) -> Option<DnsHost> {
        let nameservers = self.worker.dns.ns(zone).await.ok()?.records();
        dns_host_of(&nameservers)
    }

    /// The records one of the account's domains needs, planned against DNS now.
    pub async fn records(&self, account: i64, name: &str) -> Result<RecordPlan, ServiceError> {
        let (domain, record) = self.owned_domain(account, name).await?;
        let keys = self.worker.store.domain_keys(record.id).await?;
        self.plan(account, &domain, &keys, true).await
    }

    /// A domain's history: its status changes and up to `limit` check runs before `before`.
    pub async fn history(
        &self,
        account: i64,
        name: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<DomainHistory, ServiceError> {
        let store = &self.worker.store;
        let page = store.domain_page(account, name).await?.ok_or_else(|| not_found(name))?;
        let runs = store.check_runs(account, name, before, limit).await?;
        Ok(DomainHistory {
            domain: DomainSummary::from(&page.record),
            history: page.history.iter().map(HistoryEntry::from).collect(),
            runs,
        })
    }

    /// Checks one of the account's domains now (at most once every `verify_now_seconds` per
    /// domain).
    pub async fn verify_now(&self, account: i64, name: &str) -> Result<VerifiedNow, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        let now = self.now();
        {
            let mut requests = self
                .verify_requests
                .lock()
                .map_err(|_| ServiceError::Internal("the rate limiter's lock is poisoned".to_string()))?;
            if let Some(last) = requests.get(&record.id)
                && now - last < self.verify_now_seconds
            {
                return Err(ServiceError::RateLimited {
                    domain: name.to_string(),
                    ago: now - last,
                    every: self.verify_now_seconds,
                });
            }
            requests.insert(record.id, now);
        }
        let (verification, _) = self.worker.check_domain(record, now, true).await?;
        let updated =
            self.worker.store.domain(account, verification.domain.as_str()).await?.ok_or_else(|| not_found(name))?;
        Ok(VerifiedNow { domain: DomainSummary::from(&updated), result: verification })
    }

    /// Removes one of the account's domains.
    pub async fn remove(&self, account: i64, name: &str) -> Result<(), ServiceError> {
        let (domain, _) = self.owned_domain(account, name).await?;
        self.worker.store.delete_domain(account, domain.as_str(), self.now()).await?;
        Ok(())
    }

    /// The DKIM keys the platform holds for one of the account's domains.
    pub async fn keys(&self, account: i64, name: &str) -> Result<DomainKeys, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        self.keys_of(&record).await
    }

    async fn keys_of(&self, record: &DomainRecord) -> Result<DomainKeys, ServiceError> {
        let keys = self.worker.store.domain_keys(record.id).await?;
        let keys = keys.iter().filter(|key| key.state != KeyState::Removed).map(|key| self.key_view(key)).collect();
        Ok(DomainKeys { domain: record.domain.clone(), keys })
    }

    fn key_view(&self, key: &KeyInfo) -> KeyView {
        let policy = &self.rotation;
        KeyView {
            selector: key.selector.clone(),
            published_at: key.name.clone(),
            algorithm: key.algorithm.clone(),
            state: key.state.as_str(),
            signing: key.state == KeyState::Active,
            public_key: key.public_key.clone(),
            record: key.published_record(),
            created_at: key.created_at,
            active_at: key.active_at,
            retired_at: key.retired_at,
            revoked_at: key.revoked_at,
            activates_at: policy.activates_at(key),
            rotates_at: policy.rotates_at(key),
            revokes_at: policy.revokes_at(key),
            safe_to_remove: key.state == KeyState::Revoked,
        }
    }

    /// Rotates a domain's DKIM keys now: the idle selector gets a new key, which signs once it
    /// has been published long enough. `dkim_algorithm` picks the pair (Ed25519 or RSA).
    pub async fn rotate(
        &self,
        account: i64,
        name: &str,
        dkim_algorithm: Option<&str>,
    ) -> Result<DomainKeys, ServiceError> {
        let (_, record) = self.owned_domain(account, name).await?;
        let algorithm = dkim_algorithm.map(algorithm).transpose()?;
        let store = &self.worker.store;
        let group = KeyGroup::Domain(record.id);
        match rotation::start(store, &self.keys, &self.rotation, group, algorithm, self.now()).await {
            Ok(_) => self.keys_of(&record).await,
            Err(RotateError::InProgress(message)) => Err(ServiceError::RotationInProgress(message)),
            Err(RotateError::NoKeys) => Err(ServiceError::NoHostedKeys),
            Err(error @ RotateError::NoEd25519) => Err(ServiceError::NoEd25519Keys(error.to_string())),
            Err(RotateError::Key(KeyError::Algorithm(message))) => Err(ServiceError::InvalidDkimAlgorithm(message)),
            Err(RotateError::Store(error)) => Err(error.into()),
            Err(RotateError::Key(error)) => {
                tracing::error!(%error, "rotating a key");
                Err(ServiceError::KeyGeneration)
            }
        }
    }
}

/// What DNS held for a required record at the latest check, and the record's status; `None`
/// when the check says nothing of it.
fn found(record: &RequiredRecord, latest: &LatestCheck) -> Option<(Option<String>, MethodStatus)> {
    match record.method {
        Method::Dkim => {
            let selector = latest.dkim.selectors.iter().find(|selector| selector.host == record.fqdn)?;
            let found = if selector.flattened {
                Some("a copy of the key (the CNAME was flattened)".to_string())
            } else {
                selector.found_target.clone()
            };
            Some((found, selector.status))
        }
        Method::Spf => {
            let found = match latest.spf.records_found.as_slice() {
                found if found.len() > 1 => Some(found.join(" | ")),
                _ => latest.spf.record.clone(),
            };
            Some((found, latest.spf.status?))
        }
        Method::Dmarc => {
            let dmarc = &latest.dmarc;
            let found = match (&dmarc.record, &dmarc.location) {
                (Some(text), Some(location)) if dmarc.inherited => {
                    Some(format!("{text} (inherited from _dmarc.{location})"))
                }
                (Some(text), _) => Some(text.clone()),
                _ => None,
            };
            Some((found, dmarc.status?))
        }
        Method::ReturnPath => {
            let return_path = latest.return_path.as_ref().filter(|found| found.host == record.fqdn)?;
            let found = if return_path.flattened {
                Some("a copy of the platform's SPF and MX records (the CNAME was flattened)".to_string())
            } else {
                return_path.found_target.clone()
            };
            Some((found, return_path.status))
        }
        Method::Domain => None,
    }
}
