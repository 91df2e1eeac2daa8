//! How many connections a listener (the HTTP API and UI, the SMTP gateway) holds at once, and
//! what happens at that cap: the connection silent longest gives way to the new one, so a flood
//! of idle connections cannot keep a health check or a real client out. Only when every
//! connection is busy does a new one wait, in the kernel's backlog. The front ends report each
//! connection's activity ([`Slot::touch`]) and close it when [`Slot::evicted`] resolves.
//!
//! Also the process's open-file limit, raised at start to what the system allows, from which
//! the caps are sized.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A connection silent at least this long may be closed for a new one at the cap.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// How often, at most, reaching the cap is logged.
const WARNING_EVERY: Duration = Duration::from_secs(60);

/// The open connections of one listener.
#[derive(Clone)]
pub struct Slots {
    name: &'static str,
    cap: usize,
    started: Instant,
    inner: Arc<Mutex<Inner>>,
    freed: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Held>,
    last_warning: Option<Instant>,
}

struct Held {
    /// Milliseconds after `started` of the connection's last activity.
    active_at: Arc<AtomicU64>,
    evict: Arc<Notify>,
    evicted: bool,
}

/// One connection's place; freed when dropped.
pub struct Slot {
    id: u64,
    slots: Slots,
    active_at: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Slots {{ {}: {} of {} }}", self.name, self.open(), self.cap)
    }
}

impl Slots {
    /// The slots of the listener `name` (for the log), at most `cap` connections (at least 1).
    pub fn new(name: &'static str, cap: usize) -> Slots {
        Slots { name, cap: cap.max(1), started: Instant::now(), inner: Arc::default(), freed: Arc::new(Notify::new()) }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// How many connections hold a slot now.
    pub fn open(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.open.len())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A slot for a new connection. At the cap, the connection silent longest (for at least
    /// [`EVICTABLE_AFTER`]) is told to close and its place taken; when every connection is
    /// busy, waits until one ends.
    pub async fn take(&self) -> Slot {
        loop {
            let freed = self.freed.notified();
            if let Some(slot) = self.try_take() {
                return slot;
            }
            // Every connection is busy: wait for one to end, or to fall silent.
            let _ = tokio::time::timeout(EVICTABLE_AFTER, freed).await;
        }
    }

    fn try_take(&self) -> Option<Slot> {
        let now = self.now_ms();
        let mut inner = self.inner.lock().ok()?;
        let live = inner.open.values().filter(|held| !held.evicted).count();
        if live >= self.cap {
            // Nobody has been silent that long before the listener is a second old.
            let silent_since = now.checked_sub(EVICTABLE_AFTER.as_millis() as u64)?;
            let oldest = inner
                .open
                .iter_mut()
                .filter(|(_, held)| !held.evicted && held.active_at.load(Ordering::Relaxed) <= silent_since)
                .min_by_key(|(_, held)| held.active_at.load(Ordering::Relaxed));
            let (_, held) = oldest?;
            held.evicted = true;
            held.evict.notify_one();
            let warn = inner.last_warning.is_none_or(|at| at.elapsed() >= WARNING_EVERY);
            if warn {
                inner.last_warning = Some(Instant::now());
                tracing::warn!(
                    listener = self.name,
                    cap = self.cap,
                    "connection cap reached: closing the connections silent longest to take new ones (raise the \
                     cap in the configuration, or the open-file limit, if this is real traffic)"
                );
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let active_at = Arc::new(AtomicU64::new(now));
        let evict = Arc::new(Notify::new());
        inner.open.insert(id, Held { active_at: active_at.clone(), evict: evict.clone(), evicted: false });
        Some(Slot { id, slots: self.clone(), active_at, evict })
    }
}

impl Slot {
    /// The connection did something (read a request or a command, wrote a reply).
    pub fn touch(&self) {
        self.active_at.store(self.slots.now_ms(), Ordering::Relaxed);
    }

    /// Resolves when the connection is to close to make room for a new one.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.slots.inner.lock() {
            inner.open.remove(&self.id);
        }
        self.slots.freed.notify_one();
    }
}

/// How a listener waits after `accept` fails (out of file descriptors, say): a pause growing
/// from 20 ms to 1.3 s, instead of spinning on the error; logged at the first failure and every
/// hundredth.
#[derive(Debug)]
pub struct AcceptPause {
    listener: &'static str,
    failures: u32,
}

impl AcceptPause {
    pub fn new(listener: &'static str) -> AcceptPause {
        AcceptPause { listener, failures: 0 }
    }

    /// A connection was accepted: the next failure pauses briefly again.
    pub fn accepted(&mut self) {
        self.failures = 0;
    }

    /// Accepting failed with `error`: waits before the next try.
    pub async fn failed(&mut self, error: &std::io::Error) {
        self.failures += 1;
        if self.failures == 1 || self.failures.is_multiple_of(100) {
            tracing::warn!(listener = self.listener, %error, failures = self.failures, "accepting a connection failed; pausing");
        }
        tokio::time::sleep(Duration::from_millis(10 << self.failures.min(7))).await;
    }
}

/// Raises the soft limit on open files to the hard limit (at most 1,048,576) and returns the
/// limit in force; `None` when it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    let wanted = limit.maximum.unwrap_or(1 << 20).min(1 << 20);
    if wanted <= current {
        return Some(current);
    }
    let raised = rustix::process::Rlimit { current: Some(wanted), maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some(wanted),
        Err(_) => Some(current),
    }
}

/// The connection caps of the HTTP and SMTP listeners within `open_files`: as configured when
/// they fit, else cut in proportion so that 256 files are left for the database, DNS, the
/// upstream and the files themselves (a warning says so).
pub fn fit_caps(http: usize, smtp: usize, open_files: Option<u64>) -> (usize, usize) {
    let Some(open_files) = open_files else { return (http, smtp) };
    let budget = (open_files as usize).saturating_sub(256).max(2);
    if http + smtp <= budget {
        return (http, smtp);
    }
    let scale = |cap: usize| (cap * budget / (http + smtp).max(1)).max(1);
    let (fitted_http, fitted_smtp) = (scale(http), scale(smtp));
    tracing::warn!(
        open_files,
        http = fitted_http,
        smtp = fitted_smtp,
        "the open-file limit is too low for the configured connection caps; they are cut to fit (raise the \
         limit, e.g. LimitNOFILE= in the systemd unit)"
    );
    (fitted_http, fitted_smtp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_connection_silent_longest_gives_way() {
        let slots = Slots::new("test", 2);
        let first = slots.take().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = slots.take().await;
        // Both busy just now: nobody gives way yet, the third waits.
        let waiting = tokio::time::timeout(Duration::from_millis(200), slots.take()).await;
        assert!(waiting.is_err(), "every connection was busy");
        tokio::time::sleep(EVICTABLE_AFTER).await;
        second.touch();
        let third = tokio::time::timeout(Duration::from_secs(2), slots.take()).await.expect("a slot");
        tokio::time::timeout(Duration::from_millis(100), first.evicted()).await.expect("the silent one is told");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), second.evicted()).await.is_err(),
            "not the active one"
        );
        drop(first);
        assert_eq!(slots.open(), 2);
        drop((second, third));
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn caps_are_cut_to_fit_the_open_file_limit() {
        assert_eq!(fit_caps(1024, 1024, Some(20_000)), (1024, 1024));
        assert_eq!(fit_caps(1024, 1024, Some(1024)), (384, 384));
        assert_eq!(fit_caps(1024, 1024, None), (1024, 1024));
    }
}
