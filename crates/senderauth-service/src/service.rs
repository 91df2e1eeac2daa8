//! `Service`: what every front end (the REST API, the web UI, the SMTP gateway, the CLI) calls.
//! It holds the store, the verifier, the key maker and the clock; it knows no HTTP, HTML or SMTP.

use senderauth_core::name::normalize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::keys::KeyMaker;
use crate::rotation::RotationPolicy;
use crate::webhooks::delivery::Targets;
use crate::worker::Worker;

/// The current time in Unix seconds; tests substitute a clock they control.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The shortest time between two verify-now requests for one domain, in seconds.
const VERIFY_NOW_SECONDS: i64 = 10;

/// The service's state and its use cases (in `domains`, `accounts`, `webhooks`, `sandbox`).
#[derive(Clone)]
pub struct Service {
    pub worker: Worker,
    pub clock: Clock,
    /// When each domain (by id) was last verified on request, for the rate limit.
    pub(crate) verify_requests: Arc<Mutex<HashMap<i64, i64>>>,
    /// The domain limit of accounts created without one.
    pub default_domain_limit: Option<i64>,
    /// Where webhook URLs may point.
    pub webhook_targets: Targets,
    /// Makes the DKIM keys of newly connected domains.
    pub keys: KeyMaker,
    /// When rotated keys move on.
    pub rotation: RotationPolicy,
    /// Demo mode: connected domains get a zone at the sandbox DNS host.
    pub demo: bool,
    /// A domain is checked on request at most once in this many seconds.
    pub verify_now_seconds: i64,
    /// The platform's own domains (its zone and variable domain; `serve` adds the bounce
    /// domain), lowercase without the final dot: no account connects one of them or a name
    /// under one.
    pub platform_domains: Vec<String>,
    /// The thresholds of the DMARC reports' way to enforcement.
    pub enforcement: crate::reports::EnforcementThresholds,
    /// What the gateway sent per From domain, receiver and day, not written yet.
    pub sent: Arc<crate::coverage::SentCounts>,
    /// Each account's return-path fallback as last read, and when (see
    /// `Service::return_path_fallback`).
    pub(crate) fallbacks: Arc<Mutex<HashMap<i64, (std::time::Instant, senderauth_core::return_path::Fallback)>>>,
    /// The bounce writer's queue, started at the first bounce.
    pub(crate) bounce_writer: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::bounces::PendingBounce>>>,
}

impl Service {
    /// A service with the default limits; set the fields to change them.
    pub fn new(worker: Worker, clock: Clock, keys: KeyMaker) -> Service {
        let platform_domains =
            [&worker.provider.zone, &worker.provider.variable_domain].iter().map(|name| normalize(name)).collect();
        Service {
            worker,
            clock,
            verify_requests: Arc::default(),
            default_domain_limit: None,
            webhook_targets: Targets::default(),
            keys,
            rotation: RotationPolicy::default(),
            demo: false,
            verify_now_seconds: VERIFY_NOW_SECONDS,
            platform_domains,
            enforcement: crate::reports::EnforcementThresholds::default(),
            sent: Arc::default(),
            fallbacks: Arc::default(),
            bounce_writer: Arc::default(),
        }
    }

    /// The current time in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// The platform's own domain `domain` is, or is under, if any.
    pub fn platform_domain_of(&self, domain: &str) -> Option<&str> {
        self.platform_domains
            .iter()
            .find(|own| domain == own.as_str() || domain.ends_with(&format!(".{own}")))
            .map(String::as_str)
    }

    /// The platform's variable domain, without the final dot.
    pub fn variable_domain(&self) -> &str {
        self.worker.provider.variable_domain.trim_end_matches('.')
    }
}
