//! The verification lifecycle of a connected domain: after each check, its new status, when to
//! check it next, and the event to announce. A pure function of the state, the outcome and the
//! time, so the whole lifecycle is tested with a clock the test controls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::{DomainStatus, MethodStatus};

/// A connected domain's status in the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    /// Connected, not verified yet; checked at growing intervals during the setup window.
    /// (Named `pending` before; stored rows of that name read as this.)
    NotVerified,
    PartiallyVerified,
    Verified,
    /// Was verified or partially verified, then failed several checks in a row.
    TemporaryFailure,
    /// Not verified within the setup window, or not restored within the degraded window;
    /// checked again only when the customer asks.
    Failed,
}

impl LifecycleStatus {
    /// Every status, in the order a customer meets them.
    pub const ALL: [LifecycleStatus; 5] = [
        LifecycleStatus::NotVerified,
        LifecycleStatus::PartiallyVerified,
        LifecycleStatus::Verified,
        LifecycleStatus::TemporaryFailure,
        LifecycleStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStatus::NotVerified => "not_verified",
            LifecycleStatus::PartiallyVerified => "partially_verified",
            LifecycleStatus::Verified => "verified",
            LifecycleStatus::TemporaryFailure => "temporary_failure",
            LifecycleStatus::Failed => "failed",
        }
    }

    /// Whether what the status is about is in place for sending: verified or partially
    /// verified. A domain in use is signed as itself; a return-path in use is the envelope
    /// sender's domain. A degraded one (`temporary_failure`, after three failed checks in a row)
    /// is not.
    pub fn in_use(self) -> bool {
        matches!(self, LifecycleStatus::Verified | LifecycleStatus::PartiallyVerified)
    }

    pub fn parse(text: &str) -> Option<LifecycleStatus> {
        Some(match text {
            "not_verified" | "pending" => LifecycleStatus::NotVerified,
            "partially_verified" => LifecycleStatus::PartiallyVerified,
            "verified" => LifecycleStatus::Verified,
            "temporary_failure" => LifecycleStatus::TemporaryFailure,
            "failed" => LifecycleStatus::Failed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for LifecycleStatus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What is announced when a status changes (delivered to webhooks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Event {
    #[serde(rename = "domain.verified")]
    Verified,
    #[serde(rename = "domain.partially_verified")]
    PartiallyVerified,
    #[serde(rename = "domain.degraded")]
    Degraded,
    #[serde(rename = "domain.failed")]
    Failed,
    #[serde(rename = "domain.restored")]
    Restored,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Verified => "domain.verified",
            Event::PartiallyVerified => "domain.partially_verified",
            Event::Degraded => "domain.degraded",
            Event::Failed => "domain.failed",
            Event::Restored => "domain.restored",
        }
    }
}

/// What is announced when a domain's return-path comes into use by the gateway, or goes out of
/// use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ReturnPathEvent {
    #[serde(rename = "return_path.verified")]
    Verified,
    #[serde(rename = "return_path.lost")]
    Lost,
}

impl ReturnPathEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnPathEvent::Verified => "return_path.verified",
            ReturnPathEvent::Lost => "return_path.lost",
        }
    }
}

/// The lifecycle's timing. Every value has a default that follows the reference: DNS changes
/// take 15-80 minutes or more to show, so a new domain is checked for 72 hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// How long a new domain is checked before it is `failed`.
    pub setup_window: Duration,
    /// The first recheck of a new domain; intervals grow from here with the domain's age.
    pub first_interval: Duration,
    /// The longest interval between setup checks.
    pub max_setup_interval: Duration,
    /// How often a verified or partially verified domain is rechecked.
    pub monitor_interval: Duration,
    /// Consecutive definitive failures before a verified domain drops to `temporary_failure`.
    pub failures_before_degraded: u32,
    /// How soon a failure of a verified domain is checked again, to confirm it.
    pub confirm_interval: Duration,
    /// How often a domain in `temporary_failure` is rechecked.
    pub degraded_interval: Duration,
    /// How long a domain may stay in `temporary_failure` before it is `failed`.
    pub degraded_window: Duration,
    /// How soon a check that met a temporary DNS failure is repeated.
    pub retry_interval: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            setup_window: Duration::from_secs(72 * 3600),
            first_interval: Duration::from_secs(60),
            max_setup_interval: Duration::from_secs(2 * 3600),
            monitor_interval: Duration::from_secs(24 * 3600),
            failures_before_degraded: 3,
            confirm_interval: Duration::from_secs(10 * 60),
            degraded_interval: Duration::from_secs(15 * 60),
            degraded_window: Duration::from_secs(72 * 3600),
            retry_interval: Duration::from_secs(5 * 60),
        }
    }
}

/// What the lifecycle knows of a domain before a check. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainState {
    /// Used only to spread rechecks of many domains over time (a stable jitter).
    pub id: i64,
    pub status: LifecycleStatus,
    /// When the current setup window started: connection, or the last "verify again" request.
    pub setup_started_at: i64,
    pub consecutive_failures: u32,
    /// When the domain entered `temporary_failure`.
    pub degraded_since: Option<i64>,
}

/// The state after a check, when to check next, and what to announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub state: DomainState,
    /// `None`: not scheduled (a `failed` domain waits for the customer).
    pub next_check_at: Option<i64>,
    pub event: Option<Event>,
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// A stable spread of ±10% for a domain, so daily rechecks of many domains do not all fall due
/// together.
fn jittered(interval: Duration, id: i64) -> i64 {
    let base = seconds(interval);
    let spread = (id.unsigned_abs().wrapping_mul(2_654_435_761) % 2001) as i64 - 1000;
    base + base * spread / 10_000
}

/// The interval between setup checks: a quarter of the domain's age in setup, between the first
/// interval and the maximum, so checks are frequent while DNS changes are likely to appear.
fn setup_interval(config: &LifecycleConfig, age: i64) -> i64 {
    (age / 4).clamp(seconds(config.first_interval), seconds(config.max_setup_interval))
}

/// The lifecycle after one check with `outcome` at `now`.
pub fn after_check(config: &LifecycleConfig, state: &DomainState, outcome: DomainStatus, now: i64) -> Transition {
    let mut next = state.clone();
    let stay =
        |next_check_at: i64, state: DomainState| Transition { state, next_check_at: Some(next_check_at), event: None };
    if outcome == DomainStatus::Unknown {
        // A temporary DNS failure says nothing about the records: nothing changes.
        return stay(now + seconds(config.retry_interval), next);
    }
    let reached = match outcome {
        DomainStatus::Verified => Some(LifecycleStatus::Verified),
        DomainStatus::PartiallyVerified => Some(LifecycleStatus::PartiallyVerified),
        DomainStatus::NotVerified | DomainStatus::Unknown => None,
    };
    let in_setup = now - state.setup_started_at < seconds(config.setup_window);
    match state.status {
        LifecycleStatus::NotVerified | LifecycleStatus::Failed => match reached {
            Some(status) => {
                next.status = status;
                next.consecutive_failures = 0;
                let event =
                    if status == LifecycleStatus::Verified { Event::Verified } else { Event::PartiallyVerified };
                let interval = if status == LifecycleStatus::PartiallyVerified && in_setup {
                    setup_interval(config, now - state.setup_started_at)
                } else {
                    jittered(config.monitor_interval, state.id)
                };
                Transition { state: next, next_check_at: Some(now + interval), event: Some(event) }
            }
            None if in_setup => {
                next.status = LifecycleStatus::NotVerified;
                stay(now + setup_interval(config, now - state.setup_started_at), next)
            }
            None => {
                let event = (state.status != LifecycleStatus::Failed).then_some(Event::Failed);
                next.status = LifecycleStatus::Failed;
                Transition { state: next, next_check_at: None, event }
            }
        },
        LifecycleStatus::Verified | LifecycleStatus::PartiallyVerified => {
            // Losing DKIM, or a verified domain losing SPF or DMARC, is a failure.
            let worse = matches!(
                (state.status, reached),
                (_, None) | (LifecycleStatus::Verified, Some(LifecycleStatus::PartiallyVerified))
            );
            if !worse {
                let reached = reached.unwrap_or(state.status);
                let event = (reached != state.status).then_some(Event::Verified);
                next.status = reached;
                next.consecutive_failures = 0;
                let interval = if reached == LifecycleStatus::PartiallyVerified && in_setup {
                    setup_interval(config, now - state.setup_started_at)
                } else {
                    jittered(config.monitor_interval, state.id)
                };
                return Transition { state: next, next_check_at: Some(now + interval), event };
            }
            next.consecutive_failures = state.consecutive_failures + 1;
            if next.consecutive_failures < config.failures_before_degraded {
                return stay(now + seconds(config.confirm_interval), next);
            }
            next.status = LifecycleStatus::TemporaryFailure;
            next.degraded_since = Some(now);
            Transition {
                state: next,
                next_check_at: Some(now + seconds(config.degraded_interval)),
                event: Some(Event::Degraded),
            }
        }
        LifecycleStatus::TemporaryFailure => match reached {
            Some(status) => {
                next.status = status;
                next.consecutive_failures = 0;
                next.degraded_since = None;
                Transition {
                    state: next,
                    next_check_at: Some(now + jittered(config.monitor_interval, state.id)),
                    event: Some(Event::Restored),
                }
            }
            None => {
                next.consecutive_failures = state.consecutive_failures + 1;
                let since = state.degraded_since.unwrap_or(now);
                if now - since >= seconds(config.degraded_window) {
                    next.status = LifecycleStatus::Failed;
                    Transition { state: next, next_check_at: None, event: Some(Event::Failed) }
                } else {
                    stay(now + seconds(config.degraded_interval), next)
                }
            }
        },
    }
}

/// A return-path's state after a check, when it wants checking next, and what to announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnPathTransition {
    pub state: DomainState,
    pub next_check_at: Option<i64>,
    pub event: Option<ReturnPathEvent>,
}

/// The return-path's lifecycle after a check of it with `outcome`: the domain's rules on the
/// return-path's own state (verified at the first pass; one failed check changes nothing, three
/// in a row make it `temporary_failure`, restored at the next pass within 72 hours, `failed`
/// after), so a flapping answer never flips the gateway's envelope sender. An event only when it
/// comes into use or goes out of use ([`LifecycleStatus::in_use`]).
pub fn return_path_after_check(
    config: &LifecycleConfig,
    state: &DomainState,
    outcome: MethodStatus,
    now: i64,
) -> ReturnPathTransition {
    let outcome = match outcome {
        MethodStatus::Verified => DomainStatus::Verified,
        MethodStatus::NotVerified => DomainStatus::NotVerified,
        MethodStatus::Unknown => DomainStatus::Unknown,
    };
    let transition = after_check(config, state, outcome, now);
    let event = match (state.status.in_use(), transition.state.status.in_use()) {
        (false, true) => Some(ReturnPathEvent::Verified),
        (true, false) => Some(ReturnPathEvent::Lost),
        _ => None,
    };
    ReturnPathTransition { state: transition.state, next_check_at: transition.next_check_at, event }
}

/// The customer asked to verify again: a `failed` domain starts a new setup window.
pub fn verify_requested(state: &DomainState, now: i64) -> DomainState {
    let mut next = state.clone();
    if state.status == LifecycleStatus::Failed {
        next.status = LifecycleStatus::NotVerified;
        next.setup_started_at = now;
        next.consecutive_failures = 0;
        next.degraded_since = None;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use DomainStatus::{NotVerified, PartiallyVerified, Unknown, Verified};

    const HOUR: i64 = 3600;

    fn new_domain() -> DomainState {
        DomainState {
            id: 7,
            status: LifecycleStatus::NotVerified,
            setup_started_at: 0,
            consecutive_failures: 0,
            degraded_since: None,
        }
    }

    /// Runs checks at the times the lifecycle schedules, each with the outcome `outcome_at`
    /// gives for that time, until `until`; returns every transition.
    fn run(
        mut state: DomainState,
        from: i64,
        until: i64,
        outcome_at: impl Fn(i64) -> DomainStatus,
    ) -> Vec<(i64, Transition)> {
        let config = LifecycleConfig::default();
        let mut now = from;
        let mut transitions = Vec::new();
        while now <= until {
            let transition = after_check(&config, &state, outcome_at(now), now);
            state = transition.state.clone();
            let next = transition.next_check_at;
            transitions.push((now, transition));
            match next {
                Some(next) => now = next,
                None => break,
            }
        }
        transitions
    }

    #[test]
    fn pending_becomes_verified_when_the_records_appear() {
        // The records show up 50 minutes after the domain was connected.
        let transitions = run(new_domain(), 0, 10 * HOUR, |now| if now >= 50 * 60 { Verified } else { NotVerified });
        let (at, verified) = transitions.iter().find(|(_, t)| t.event.is_some()).expect("an event");
        assert_eq!(verified.event, Some(Event::Verified));
        assert_eq!(verified.state.status, LifecycleStatus::Verified);
        assert!(*at >= 50 * 60 && *at <= 70 * 60, "noticed within 20 minutes of appearing: {at}");
        // Checks grow sparser: every minute at first, about every 12 minutes after 50 minutes.
        let times: Vec<i64> = transitions.iter().map(|(at, _)| *at).collect();
        assert!(times[1] - times[0] == 60 && times.len() < 25, "{times:?}");
        // Once verified, the next check is about a day later.
        let next = verified.next_check_at.expect("scheduled") - at;
        assert!((21 * HOUR..=27 * HOUR).contains(&next), "{next}");
    }

    #[test]
    fn pending_fails_after_72_hours_and_a_request_starts_again() {
        let transitions = run(new_domain(), 0, 100 * HOUR, |_| NotVerified);
        let (at, last) = transitions.last().expect("checks");
        assert_eq!(last.event, Some(Event::Failed));
        assert_eq!(last.next_check_at, None, "a failed domain is not checked until asked");
        assert!(*at >= 72 * HOUR && *at <= 74 * HOUR, "{at}");
        assert!(transitions.len() < 80, "at most every 2 hours late in setup: {}", transitions.len());
        let again = verify_requested(&last.state, 200 * HOUR);
        assert_eq!((again.status, again.setup_started_at), (LifecycleStatus::NotVerified, 200 * HOUR));
        let next = after_check(&LifecycleConfig::default(), &again, NotVerified, 200 * HOUR);
        assert_eq!(next.next_check_at, Some(200 * HOUR + 60), "a new setup window starts with frequent checks");
    }

    #[test]
    fn a_verified_domain_drops_after_three_failures_and_is_restored() {
        let config = LifecycleConfig::default();
        let verified = DomainState { status: LifecycleStatus::Verified, ..new_domain() };
        let first = after_check(&config, &verified, NotVerified, 100 * HOUR);
        assert_eq!((first.state.status, first.event), (LifecycleStatus::Verified, None), "one failure changes nothing");
        assert_eq!(first.next_check_at, Some(100 * HOUR + 600), "but is confirmed soon");
        let second = after_check(&config, &first.state, NotVerified, 100 * HOUR + 600);
        assert_eq!(second.state.status, LifecycleStatus::Verified);
        let third = after_check(&config, &second.state, NotVerified, 100 * HOUR + 1200);
        assert_eq!((third.state.status, third.event), (LifecycleStatus::TemporaryFailure, Some(Event::Degraded)));
        let still = after_check(&config, &third.state, NotVerified, 101 * HOUR);
        assert_eq!((still.state.status, still.event), (LifecycleStatus::TemporaryFailure, None));
        let restored = after_check(&config, &still.state, Verified, 102 * HOUR);
        assert_eq!((restored.state.status, restored.event), (LifecycleStatus::Verified, Some(Event::Restored)));
        assert_eq!(restored.state.consecutive_failures, 0);
    }

    #[test]
    fn a_failure_between_successes_starts_the_count_again() {
        let config = LifecycleConfig::default();
        let mut state = DomainState { status: LifecycleStatus::Verified, ..new_domain() };
        for (now, outcome) in [(1, NotVerified), (2, NotVerified), (3, Verified), (4, NotVerified), (5, NotVerified)] {
            state = after_check(&config, &state, outcome, now * HOUR).state;
        }
        assert_eq!(state.status, LifecycleStatus::Verified, "never three in a row");
    }

    #[test]
    fn temporary_failure_becomes_failed_after_72_hours() {
        let degraded = DomainState {
            status: LifecycleStatus::TemporaryFailure,
            degraded_since: Some(10 * HOUR),
            consecutive_failures: 3,
            ..new_domain()
        };
        let transitions = run(degraded, 10 * HOUR, 100 * HOUR, |_| NotVerified);
        let (at, last) = transitions.last().expect("checks");
        assert_eq!((last.state.status, last.event), (LifecycleStatus::Failed, Some(Event::Failed)));
        assert!(*at >= 82 * HOUR && *at < 83 * HOUR, "{at}");
    }

    #[test]
    fn unknown_results_change_nothing() {
        let config = LifecycleConfig::default();
        for status in [
            LifecycleStatus::NotVerified,
            LifecycleStatus::Verified,
            LifecycleStatus::PartiallyVerified,
            LifecycleStatus::TemporaryFailure,
        ] {
            let state = DomainState { status, consecutive_failures: 2, degraded_since: Some(HOUR), ..new_domain() };
            // Even past every window, a temporary DNS failure neither fails nor degrades a domain.
            let transition = after_check(&config, &state, Unknown, 500 * HOUR);
            assert_eq!(transition.state, state, "{status:?}");
            assert_eq!(transition.event, None);
            assert_eq!(transition.next_check_at, Some(500 * HOUR + 300), "retried sooner");
        }
    }

    #[test]
    fn partially_verified_moves_to_verified_and_back_counts_as_failure() {
        let config = LifecycleConfig::default();
        let partial = after_check(&config, &new_domain(), PartiallyVerified, 600);
        assert_eq!(
            (partial.state.status, partial.event),
            (LifecycleStatus::PartiallyVerified, Some(Event::PartiallyVerified))
        );
        assert!(partial.next_check_at.expect("scheduled") - 600 <= 300, "still in setup: checked again soon");
        let verified = after_check(&config, &partial.state, Verified, 3600);
        assert_eq!((verified.state.status, verified.event), (LifecycleStatus::Verified, Some(Event::Verified)));
        let slipped = after_check(&config, &verified.state, PartiallyVerified, 100 * HOUR);
        assert_eq!((slipped.state.status, slipped.state.consecutive_failures), (LifecycleStatus::Verified, 1));
    }

    #[test]
    fn a_return_path_comes_into_use_at_once_and_goes_out_after_three_failures() {
        let config = LifecycleConfig::default();
        let verified = return_path_after_check(&config, &new_domain(), MethodStatus::Verified, HOUR);
        assert_eq!(
            (verified.state.status, verified.event),
            (LifecycleStatus::Verified, Some(ReturnPathEvent::Verified))
        );
        let mut state = verified.state;
        let mut events = Vec::new();
        for (now, outcome) in
            [(30, MethodStatus::NotVerified), (31, MethodStatus::Unknown), (32, MethodStatus::NotVerified)]
        {
            let next = return_path_after_check(&config, &state, outcome, now * HOUR);
            events.extend(next.event);
            state = next.state;
        }
        assert_eq!(
            (state.status, events.as_slice()),
            (LifecycleStatus::Verified, &[][..]),
            "two failures: still in use"
        );
        let lost = return_path_after_check(&config, &state, MethodStatus::NotVerified, 33 * HOUR);
        assert_eq!(
            (lost.state.status, lost.event, lost.next_check_at),
            (LifecycleStatus::TemporaryFailure, Some(ReturnPathEvent::Lost), Some(33 * HOUR + 900))
        );
        let back = return_path_after_check(&config, &lost.state, MethodStatus::Verified, 34 * HOUR);
        assert_eq!((back.state.status, back.event), (LifecycleStatus::Verified, Some(ReturnPathEvent::Verified)));
        // Never verified and past the setup window: failed, with nothing to announce.
        let never = return_path_after_check(&config, &new_domain(), MethodStatus::NotVerified, 100 * HOUR);
        assert_eq!((never.state.status, never.event), (LifecycleStatus::Failed, None));
    }

    #[test]
    fn daily_rechecks_are_spread_over_time() {
        let config = LifecycleConfig::default();
        let times: Vec<i64> = (0..100)
            .map(|id| {
                let state = DomainState { id, status: LifecycleStatus::Verified, ..new_domain() };
                after_check(&config, &state, Verified, 0).next_check_at.expect("scheduled")
            })
            .collect();
        let (min, max) = (times.iter().min().copied().unwrap_or(0), times.iter().max().copied().unwrap_or(0));
        assert!(min >= 21 * HOUR && max <= 27 * HOUR && max - min > 3 * HOUR, "{min}..{max}");
    }
}
