//! The background verifier: claims due domains, verifies them, applies the lifecycle and
//! records the outcome. `run_once` is one round at a given time; `run_until_stopped` repeats it.

use std::sync::Arc;
use std::time::Duration;

use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::Dns;
use senderauth_core::lifecycle::{DomainState, LifecycleConfig, LifecycleStatus, after_check, verify_requested};
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::status::MethodStatus;
use senderauth_core::verify::{Verification, verify_domain};
use senderauth_store::{CheckRecord, DomainRecord, StatusEvent, Store, StoreError};
use tokio::sync::{Semaphore, watch};

use crate::metrics::Metrics;
use tokio::task::JoinSet;

/// What a worker needs.
#[derive(Clone)]
pub struct Worker {
    pub store: Store,
    pub dns: Dns,
    pub provider: Arc<ProviderConfig>,
    pub lifecycle: LifecycleConfig,
    /// This node's name in leases; unique among nodes sharing a database.
    pub node: String,
    /// Domains claimed per round.
    pub batch: i64,
    /// Checks running at once.
    pub concurrency: usize,
    /// How long a claim lasts; a node that dies mid-check loses its claims after this.
    pub lease: Duration,
    pub metrics: Arc<Metrics>,
}

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    pub checked: usize,
    /// Status changes, with their lifecycle events.
    pub events: Vec<StatusEvent>,
    /// Claims given back unchecked (a stored name that no longer parses, a failed write).
    pub released: usize,
}

fn method_status(status: MethodStatus) -> &'static str {
    match status {
        MethodStatus::Verified => "verified",
        MethodStatus::NotVerified => "not_verified",
        MethodStatus::Unknown => "unknown",
    }
}

impl Worker {
    /// A worker with the default lifecycle, a batch of 200, 64 checks at once and a two-minute
    /// lease; set the fields to change them.
    pub fn new(store: Store, dns: Dns, provider: ProviderConfig, node: impl Into<String>) -> Worker {
        Worker {
            store,
            dns,
            provider: Arc::new(provider),
            lifecycle: LifecycleConfig::default(),
            node: node.into(),
            batch: 200,
            concurrency: 64,
            lease: Duration::from_secs(120),
            metrics: Arc::default(),
        }
    }

    /// One round at `now` (Unix seconds): every due domain this node can claim, up to `batch`.
    pub async fn run_once(&self, now: i64) -> Result<Round, StoreError> {
        let lease_until = now + i64::try_from(self.lease.as_secs()).unwrap_or(i64::MAX / 2);
        let claimed = self.store.claim_due(&self.node, now, lease_until, self.batch).await?;
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut checks = JoinSet::new();
        for record in claimed {
            let worker = self.clone();
            let permits = permits.clone();
            checks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let id = record.id;
                let outcome = worker.check(record, now).await;
                (id, outcome)
            });
        }
        let mut round = Round::default();
        while let Some(joined) = checks.join_next().await {
            match joined {
                Ok((_, Ok(event))) => {
                    round.checked += 1;
                    if let Some(event) = &event {
                        tracing::info!(
                            domain_id = event.domain_id,
                            from = event.from_status.as_deref().unwrap_or(""),
                            to = %event.to_status,
                            event = event.event.as_deref().unwrap_or(""),
                            "status changed"
                        );
                    }
                    round.events.extend(event);
                }
                Ok((id, Err(error))) => {
                    tracing::warn!(domain_id = id, %error, "check not recorded; the domain is due again");
                    round.released += 1;
                    let _ = self.store.release(id, &self.node).await;
                }
                Err(error) => {
                    tracing::error!(%error, "a check task failed");
                    round.released += 1;
                }
            }
        }
        Ok(round)
    }

    async fn check(&self, record: DomainRecord, now: i64) -> Result<Option<StatusEvent>, StoreError> {
        Ok(self.check_domain(record, now, false).await?.1)
    }

    /// Checks one domain now and records the outcome. `requested`: the customer asked, which
    /// restarts the setup window of a `failed` domain.
    pub async fn check_domain(
        &self,
        record: DomainRecord,
        now: i64,
        requested: bool,
    ) -> Result<(Verification, Option<StatusEvent>), StoreError> {
        let (Ok(domain), Ok(account)) =
            (DomainName::parse(&record.domain), AccountId::parse(&record.account_id.to_string()))
        else {
            return Err(StoreError::Conflict(format!("stored domain {:?} cannot be checked", record.domain)));
        };
        let Some(status) = LifecycleStatus::parse(&record.status) else {
            return Err(StoreError::Conflict(format!("stored status {:?} is unknown", record.status)));
        };
        let started = std::time::Instant::now();
        let verification = verify_domain(&self.dns, &self.provider, &account, &domain).await;
        self.metrics.record_check(verification.status, started.elapsed());
        let mut state = DomainState {
            id: record.id,
            status,
            setup_started_at: record.setup_started_at,
            consecutive_failures: u32::try_from(record.consecutive_failures).unwrap_or(u32::MAX),
            degraded_since: record.degraded_since,
        };
        if requested {
            state = verify_requested(&state, now);
        }
        let transition = after_check(&self.lifecycle, &state, verification.status, now);
        let check = CheckRecord {
            checked_at: now,
            status: transition.state.status.as_str().to_string(),
            event: transition.event.map(|event| event.as_str().to_string()),
            setup_started_at: transition.state.setup_started_at,
            degraded_since: transition.state.degraded_since,
            dkim_status: method_status(verification.dkim.status).to_string(),
            spf_status: method_status(verification.spf.status).to_string(),
            dmarc_status: method_status(verification.dmarc.status).to_string(),
            result_json: serde_json::to_string(&verification).unwrap_or_default(),
            next_check_at: transition.next_check_at,
            consecutive_failures: i64::from(transition.state.consecutive_failures),
        };
        let event = self.store.record_check(record.id, &check).await?;
        Ok((verification, event))
    }

    /// Runs rounds until `stop` turns true: a round, then a pause (short while there was work).
    /// A round in progress finishes before it returns, so no check is left half-written.
    pub async fn run_until_stopped(&self, mut stop: watch::Receiver<bool>, idle_pause: Duration) {
        while !*stop.borrow() {
            let now = unix_now();
            let busy = match self.run_once(now).await {
                Ok(round) => round.checked > 0,
                Err(error) => {
                    tracing::warn!(%error, "a round of checks failed; retrying");
                    false
                }
            };
            let pause = if busy { Duration::from_millis(10) } else { idle_pause };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}
