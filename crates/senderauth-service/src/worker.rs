//! The background verifier: claims due domains, verifies them, applies the lifecycle and
//! records the outcome. `run_once` is one round at a given time; `run_until_stopped` repeats it.

use std::sync::Arc;
use std::time::Duration;

use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::Dns;
use senderauth_core::lifecycle::{
    DomainState, LifecycleConfig, LifecycleStatus, after_check, return_path_after_check, verify_requested,
};
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::verify::{Verification, verify_domain_with_keys};
use senderauth_store::{Backend, CheckRecord, DomainRecord, ReturnPathRecord, StatusEvent, Store, StoreError};
use tokio::sync::{Semaphore, watch};

use crate::keys::hosted_keys;
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

/// Finished checks written per transaction.
const WRITE_BATCH: usize = 50;
/// Batches of finished checks written at once. SQLite: several, queued for its one writer
/// connection so that it is never idle. PostgreSQL: one, since every batch in flight is a server
/// process at full priority competing with the API's queries for the cores (at 100,000
/// domains, 4 at once made the list page's p99 during a round 25-32 ms, one 14 ms, with the
/// round 96 s -> 138 s while the API was loaded).
fn writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 4,
        Backend::Postgres => 1,
    }
}

/// What a `return_path.verified` or `return_path.lost` event says beside the domain and account.
#[derive(serde::Serialize)]
struct ReturnPathEventData<'a> {
    host: &'a str,
    target: &'a str,
    /// The return-path's lifecycle status now.
    status: LifecycleStatus,
    /// What the check found wrong with it (`return_path_missing`, ...), if anything.
    problems: Vec<&'static str>,
}

/// The problem codes of a check, sorted and without repeats, separated by spaces.
fn problem_codes(verification: &Verification) -> String {
    let codes: std::collections::BTreeSet<&str> =
        verification.problems.iter().map(|problem| problem.code.as_str()).collect();
    codes.into_iter().collect::<Vec<_>>().join(" ")
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
    /// Finished checks are written together, up to `WRITE_BATCH` to a transaction.
    pub async fn run_once(&self, now: i64) -> Result<Round, StoreError> {
        let claimed = self.store.claim_due(&self.node, now, self.lease_until(now), self.batch).await?;
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut checks = JoinSet::new();
        self.spawn_checks(claimed, now, &permits, &mut checks);
        let mut round = Round::default();
        let mut finished: Vec<(i64, CheckRecord)> = Vec::new();
        while let Some(joined) = checks.join_next().await {
            if !self.finished(joined, &mut finished).await {
                round.released += 1;
            }
            if finished.len() >= WRITE_BATCH || (checks.is_empty() && !finished.is_empty()) {
                self.write(std::mem::take(&mut finished), &mut round).await;
            }
        }
        Ok(round)
    }

    /// When a claim made at `now` runs out.
    fn lease_until(&self, now: i64) -> i64 {
        now + i64::try_from(self.lease.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// Starts a check of each claimed domain, `permits` of them running at once.
    fn spawn_checks(
        &self,
        claimed: Vec<DomainRecord>,
        now: i64,
        permits: &Arc<Semaphore>,
        checks: &mut JoinSet<(i64, Result<CheckRecord, StoreError>)>,
    ) {
        for record in claimed {
            let worker = self.clone();
            let permits = permits.clone();
            checks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let id = record.id;
                (id, worker.evaluate(record, now, false).await.map(|(_, check)| check))
            });
        }
    }

    /// Takes a finished check task: its check joins `finished` to be written; a check that
    /// could not run is released (due again) and `false` returned.
    async fn finished(
        &self,
        joined: Result<(i64, Result<CheckRecord, StoreError>), tokio::task::JoinError>,
        finished: &mut Vec<(i64, CheckRecord)>,
    ) -> bool {
        match joined {
            Ok((id, Ok(check))) => {
                finished.push((id, check));
                true
            }
            Ok((id, Err(error))) => {
                tracing::warn!(domain_id = id, %error, "check not recorded; the domain is due again");
                let _ = self.store.release(id, &self.node).await;
                false
            }
            Err(error) => {
                tracing::error!(%error, "a check task failed");
                false
            }
        }
    }

    /// Writes finished checks in one transaction and accounts for them in `round`. Checks that
    /// could not be written are released, so the domains are due again.
    async fn write(&self, finished: Vec<(i64, CheckRecord)>, round: &mut Round) {
        let batch: Vec<(i64, &CheckRecord)> = finished.iter().map(|(id, check)| (*id, check)).collect();
        let outcomes = match self.store.record_checks(&batch).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!(checks = batch.len(), %error, "checks not recorded; the domains are due again");
                for (id, _) in &batch {
                    let _ = self.store.release(*id, &self.node).await;
                }
                round.released += batch.len();
                return;
            }
        };
        for ((id, _), outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(event) => {
                    round.checked += 1;
                    if let Some(event) = &event {
                        tracing::info!(
                            domain_id = event.domain_id,
                            from = event.from_status.map_or("", LifecycleStatus::as_str),
                            to = %event.to_status,
                            event = event.event.as_deref().unwrap_or(""),
                            "status changed"
                        );
                    }
                    round.events.extend(event);
                }
                Err(error) => {
                    tracing::warn!(domain_id = id, %error, "check not recorded");
                    round.released += 1;
                }
            }
        }
    }

    /// Checks one domain now and records the outcome. `requested`: the customer asked, which
    /// restarts the setup window of a `failed` domain.
    pub async fn check_domain(
        &self,
        record: DomainRecord,
        now: i64,
        requested: bool,
    ) -> Result<(Verification, Option<StatusEvent>), StoreError> {
        let id = record.id;
        let (verification, check) = self.evaluate(record, now, requested).await?;
        let event = self.store.record_check(id, &check).await?;
        Ok((verification, event))
    }

    /// Verifies a domain and works out what to record: its new lifecycle state and schedule.
    async fn evaluate(
        &self,
        record: DomainRecord,
        now: i64,
        requested: bool,
    ) -> Result<(Verification, CheckRecord), StoreError> {
        let (Ok(domain), Ok(account)) =
            (DomainName::parse(&record.domain), AccountId::parse(&record.account_id.to_string()))
        else {
            return Err(StoreError::Corrupt {
                what: format!("stored domain {:?}", record.domain),
                reason: "it is not a domain name this version can check".to_string(),
            });
        };
        let status = record.status;
        // The keys the platform publishes for the domain's selectors: the CNAMEs must lead to them.
        let hosted = hosted_keys(&self.store.domain_keys(record.id).await?);
        let started = std::time::Instant::now();
        // A check the customer asked for reads DNS as it is now, past the cache.
        let dns = if requested { self.dns.fresh() } else { self.dns.clone() };
        let verification = verify_domain_with_keys(&dns, &self.provider, &account, &domain, &hosted).await;
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
        let return_path = self.return_path_after_check(&record, &transition.state, &verification, now);
        // A return-path in use that failed a check is confirmed soon (the gateway must not keep
        // sending with a broken one for a day); otherwise the domain's schedule rules, and a
        // domain not checked any more takes its return-path with it.
        let next_check_at = match (transition.next_check_at, return_path.next_check_at) {
            (Some(domain), Some(confirm)) if return_path.state.status.in_use() => Some(domain.min(confirm)),
            (domain, _) => domain,
        };
        let event = return_path.event.map(|event| {
            let data = ReturnPathEventData {
                host: &verification.return_path.host,
                target: &verification.return_path.expected_target,
                status: return_path.state.status,
                problems: verification
                    .problems
                    .iter()
                    .filter(|problem| problem.method == senderauth_core::problem::Method::ReturnPath)
                    .map(|problem| problem.code.as_str())
                    .collect(),
            };
            (event.as_str().to_string(), serde_json::to_string(&data).unwrap_or_default())
        });
        let check = CheckRecord {
            checked_at: now,
            status: transition.state.status,
            event: transition.event.map(|event| event.as_str().to_string()),
            setup_started_at: transition.state.setup_started_at,
            degraded_since: transition.state.degraded_since,
            dkim_status: verification.dkim.status,
            spf_status: verification.spf.status,
            dmarc_status: verification.dmarc.status,
            result_json: serde_json::to_string(&verification).unwrap_or_default(),
            problem_codes: problem_codes(&verification),
            requested,
            next_check_at,
            consecutive_failures: i64::from(transition.state.consecutive_failures),
            return_path: ReturnPathRecord {
                method_status: verification.return_path.status,
                status: return_path.state.status,
                failures: i64::from(return_path.state.consecutive_failures),
                degraded_since: return_path.state.degraded_since,
                event,
            },
        };
        Ok((verification, check))
    }

    /// The return-path's lifecycle after a check: its own state, in the domain's setup window
    /// (`domain`: the domain's state after the check, a Verify request applied).
    fn return_path_after_check(
        &self,
        record: &DomainRecord,
        domain: &DomainState,
        verification: &Verification,
        now: i64,
    ) -> senderauth_core::lifecycle::ReturnPathTransition {
        let mut state = DomainState {
            id: record.id,
            status: record.return_path_status,
            setup_started_at: domain.setup_started_at,
            consecutive_failures: u32::try_from(record.return_path_failures).unwrap_or(u32::MAX),
            degraded_since: record.return_path_degraded_since,
        };
        if domain.setup_started_at != record.setup_started_at {
            // The customer asked to verify a failed domain again: its return-path starts over too.
            state = verify_requested(&state, now);
            state.setup_started_at = domain.setup_started_at;
        }
        return_path_after_check(&self.lifecycle, &state, verification.return_path.status, now)
    }

    /// Checks due domains until `stop` turns true, as a pipeline: claims are topped up while
    /// checks run (no waiting for a round's slowest check), and finished checks are written in
    /// batches by writer tasks while checking goes on. When nothing is due it pauses for
    /// `idle_pause`. On stop, claiming ends and the checks in flight finish and are written
    /// before it returns, so no check is left half-written.
    pub async fn run_until_stopped(&self, mut stop: watch::Receiver<bool>, idle_pause: Duration) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let batch = usize::try_from(self.batch.max(1)).unwrap_or(usize::MAX);
        let mut in_flight = JoinSet::new();
        let mut writes = JoinSet::new();
        let mut finished: Vec<(i64, CheckRecord)> = Vec::new();
        // When a claim last found fewer due domains than it asked for: the next waits a pause.
        let mut ran_dry: Option<std::time::Instant> = None;
        loop {
            let stopping = *stop.borrow();
            let may_claim = ran_dry.is_none_or(|at| at.elapsed() >= idle_pause);
            if !stopping && may_claim && in_flight.len() <= batch / 2 {
                let now = unix_now();
                let wanted = i64::try_from(batch - in_flight.len()).unwrap_or(i64::MAX);
                match self.store.claim_due(&self.node, now, self.lease_until(now), wanted).await {
                    Ok(claimed) => {
                        ran_dry =
                            (i64::try_from(claimed.len()).unwrap_or(i64::MAX) < wanted).then(std::time::Instant::now);
                        self.spawn_checks(claimed, now, &permits, &mut in_flight);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "claiming due domains failed; retrying");
                        ran_dry = Some(std::time::Instant::now());
                    }
                }
            }
            if in_flight.is_empty() {
                if !finished.is_empty() {
                    self.spawn_write(&mut writes, std::mem::take(&mut finished)).await;
                }
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(idle_pause) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            tokio::select! {
                Some(joined) = in_flight.join_next() => {
                    self.finished(joined, &mut finished).await;
                }
                _ = stop.changed(), if !stopping => {}
            }
            if finished.len() >= WRITE_BATCH {
                self.spawn_write(&mut writes, std::mem::take(&mut finished)).await;
            }
            // Writes done meanwhile are collected, so the set does not grow.
            while writes.try_join_next().is_some() {}
        }
        while writes.join_next().await.is_some() {}
    }

    /// Starts writing a batch of finished checks; at most [`writers`] batches are written at
    /// once (the pipeline waits for one to finish before starting another).
    async fn spawn_write(&self, writes: &mut JoinSet<()>, finished: Vec<(i64, CheckRecord)>) {
        while writes.len() >= writers(self.store.backend()) {
            writes.join_next().await;
        }
        let worker = self.clone();
        writes.spawn(async move {
            let mut round = Round::default();
            worker.write(finished, &mut round).await;
        });
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}
