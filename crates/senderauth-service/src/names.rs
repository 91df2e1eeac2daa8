//! Reverse DNS names of report sources, looked up in the background (never while a report is
//! read, the mistake that makes parsedmarc take hours on large reports): each new report's
//! largest sources are queued, and `resolve_source_names` looks up a batch at a time, each
//! lookup under a short timeout. A name is shown only when it is forward-confirmed (its A or
//! AAAA records hold the address), since anyone can put any name in the PTR of their own
//! address. Names are looked up again after `REFRESH_DAYS`; a temporary failure after an hour.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use senderauth_core::dns::{Answer, Dns};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::reports::DAY;
use crate::{Service, ServiceError};

/// How long one source's lookups may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Lookups at once.
const CONCURRENCY: usize = 16;
/// Sources looked up per round.
const BATCH: i64 = 200;
/// When a found name is looked up again.
const REFRESH_DAYS: i64 = 30;
/// When a lookup that failed for the time being is tried again.
const RETRY_SECONDS: i64 = 3_600;

/// What a source's lookups found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameStatus {
    /// The name leads back to the address: shown.
    Confirmed,
    /// A PTR name whose addresses do not hold the address: not shown.
    Unconfirmed,
    /// No PTR record.
    None,
    /// DNS failed for now: tried again later.
    Failed,
}

impl NameStatus {
    fn as_str(self) -> &'static str {
        match self {
            NameStatus::Confirmed => "confirmed",
            NameStatus::Unconfirmed => "unconfirmed",
            NameStatus::None => "none",
            NameStatus::Failed => "failed",
        }
    }
}

/// A source's name, if any, and what its lookups found.
async fn look_up(dns: &Dns, address: IpAddr) -> (Option<String>, NameStatus) {
    let lookups = async {
        let names = match dns.ptr(address).await {
            Ok(Answer::Records(names)) => names,
            Ok(_) => return (None, NameStatus::None),
            Err(_) => return (None, NameStatus::Failed),
        };
        let Some(name) = names.into_iter().next() else { return (None, NameStatus::None) };
        match dns.addresses(&name, address.is_ipv6()).await {
            Ok(Answer::Records(addresses)) if addresses.contains(&address) => (Some(name), NameStatus::Confirmed),
            Ok(_) => (Some(name), NameStatus::Unconfirmed),
            Err(_) => (Some(name), NameStatus::Failed),
        }
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, lookups).await.unwrap_or((None, NameStatus::Failed))
}

impl Service {
    /// Looks up the names of the sources due (up to a batch); returns how many were looked up.
    pub async fn resolve_source_names(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let store = &self.worker.store;
        let due = store.due_source_names(now - RETRY_SECONDS, now - REFRESH_DAYS * DAY, BATCH).await?;
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut lookups = JoinSet::new();
        for source in due {
            let Ok(address) = source.parse::<IpAddr>() else {
                store.set_source_name(&source, None, NameStatus::None.as_str(), now).await?;
                continue;
            };
            let (dns, permits) = (self.worker.dns.clone(), permits.clone());
            lookups.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (source, look_up(&dns, address).await)
            });
        }
        let mut looked_up = 0;
        while let Some(done) = lookups.join_next().await {
            let Ok((source, (name, status))) = done else { continue };
            store.set_source_name(&source, name.as_deref(), status.as_str(), now).await?;
            looked_up += 1;
        }
        Ok(looked_up)
    }
}
