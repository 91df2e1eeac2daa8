//! The embedded authoritative DNS server: UDP and TCP listeners answering from the in-memory
//! [`Zone`], and the follower that applies the store's zone changes to it.
//!
//! UDP is served by plain threads blocking on the socket (one per core, the kernel hands each
//! datagram to one of them): no async machinery per query. TCP, for truncated answers and
//! clients that prefer it, runs on the async runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use senderauth_store::{NameContents, Store};

use crate::zone::Zone;

/// The zone shared by the listeners and the follower.
pub type SharedZone = Arc<RwLock<Zone>>;

/// How often the follower looks for changes: a change is served within about this long.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// A change id missing from the log for this long belonged to a transaction that rolled back.
const GAP_PATIENCE: Duration = Duration::from_secs(30);

/// How long a TCP client may stay silent before it is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Running listeners; dropping them does not stop them, [`Listeners::stop`] does.
pub struct Listeners {
    pub addresses: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Listeners {
    /// Stops the UDP threads (within their read timeout) and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Sockets bound for the DNS server, not answering yet (queries wait in the kernel's queues).
pub struct Bound {
    sockets: Vec<(TcpListener, UdpSocket)>,
}

impl Bound {
    /// The bound addresses (each the same for UDP and TCP).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.sockets.iter().filter_map(|(tcp, _)| tcp.local_addr().ok()).collect()
    }
}

/// Binds UDP and TCP on every address (port 0: any free port, the same for both).
pub async fn bind(addresses: &[SocketAddr]) -> std::io::Result<Bound> {
    let mut sockets = Vec::new();
    for &address in addresses {
        // TCP first, so that with port 0 the UDP socket takes the same port.
        let tcp = TcpListener::bind(address).await?;
        let udp = UdpSocket::bind(tcp.local_addr()?)?;
        udp.set_read_timeout(Some(Duration::from_millis(250)))?;
        sockets.push((tcp, udp));
    }
    Ok(Bound { sockets })
}

/// Starts answering on the bound sockets. TCP connections are served until `stopped` turns
/// true.
pub fn serve(bound: Bound, zone: SharedZone, stopped: watch::Receiver<bool>) -> std::io::Result<Listeners> {
    let addresses = bound.addresses();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let workers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    for (tcp, udp) in bound.sockets {
        for number in 0..workers {
            let (socket, zone, stop) = (udp.try_clone()?, zone.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("senderauth-dns-{number}"))
                    .spawn(move || serve_udp(&socket, &zone, &stop))?,
            );
        }
        tokio::spawn(serve_tcp(tcp, zone.clone(), stopped.clone()));
    }
    Ok(Listeners { addresses, stop, threads })
}

fn serve_udp(socket: &UdpSocket, zone: &SharedZone, stop: &AtomicBool) {
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let (length, peer) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(error) => {
                // An ICMP error from an earlier reply, or the like: keep serving.
                tracing::debug!(%error, "DNS UDP receive");
                continue;
            }
        };
        let answer = match zone.read() {
            Ok(zone) => zone.answer(&buffer[..length], true),
            Err(poisoned) => poisoned.into_inner().answer(&buffer[..length], true),
        };
        if let Some(answer) = answer
            && let Err(error) = socket.send_to(&answer, peer)
        {
            tracing::debug!(%error, %peer, "DNS UDP send");
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: SharedZone, mut stopped: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stopped| *stopped) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_tcp_connection(stream, zone.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "DNS TCP accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers length-prefixed messages (RFC 1035 4.2.2) until the client closes, sends something
/// that is not DNS, or stays idle.
async fn serve_tcp_connection(mut stream: TcpStream, zone: SharedZone) {
    let mut length = [0u8; 2];
    loop {
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut length)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(length))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut request)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let answer = match zone.read() {
            Ok(zone) => zone.answer(&request, false),
            Err(poisoned) => poisoned.into_inner().answer(&request, false),
        };
        let Some(answer) = answer else { return };
        let Ok(size) = u16::try_from(answer.len()) else { return };
        let mut framed = size.to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Applies the store's zone changes to `zone` until `stopped` turns true: every name logged as
/// changed is read again from the store. Change ids come from a sequence, and on PostgreSQL a
/// transaction may commit after a later one: an id missing from the log is looked for again
/// until it shows up, or for [`GAP_PATIENCE`] (then its transaction rolled back).
pub async fn follow_changes(store: Store, zone: SharedZone, mut stopped: watch::Receiver<bool>) {
    // The zone was read up to its serial; changes just before it may have committed after the
    // read began (PostgreSQL), so the last ones are applied again (harmless: a reload).
    let last_change = match zone.read() {
        Ok(zone) => zone.last_change(),
        Err(poisoned) => poisoned.into_inner().last_change(),
    };
    let mut follower = Follower::new((last_change - 100).max(0));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
            _ = stopped.wait_for(|stopped| *stopped) => return,
        }
        match follower.poll(&store).await {
            Ok(changes) => {
                if let Ok(mut zone) = zone.write() {
                    for (name, now) in &changes {
                        zone.replace(name, now);
                    }
                    zone.set_serial(follower.latest());
                }
            }
            Err(error) => tracing::warn!(%error, "reading the zone's changes; trying again"),
        }
    }
}

/// Where a reader of the change log is: which changes it has applied.
#[derive(Debug)]
pub struct Follower {
    /// Every change up to this id is applied.
    applied: i64,
    /// Changes after `applied` that are applied too.
    seen: BTreeSet<i64>,
    /// Ids after `applied` not seen yet, and since when.
    gaps: BTreeMap<i64, Instant>,
}

impl Follower {
    /// A follower that has applied every change up to `applied`.
    pub fn new(applied: i64) -> Follower {
        Follower { applied, seen: BTreeSet::new(), gaps: BTreeMap::new() }
    }

    /// Every change up to this id is applied (for saving progress).
    pub fn applied(&self) -> i64 {
        self.applied
    }

    /// The newest change applied (the zone's serial).
    pub fn latest(&self) -> i64 {
        self.applied.max(self.seen.last().copied().unwrap_or(0))
    }

    /// The names changed since the last poll, each with what it holds now. Once this returns,
    /// the changes count as applied: apply them.
    pub async fn poll(&mut self, store: &Store) -> Result<Vec<(String, NameContents)>, senderauth_store::StoreError> {
        let mut names = BTreeSet::new();
        let mut new_ids = Vec::new();
        // From the first id not applied, a page at a time; ids seen already are skipped.
        let mut cursor = self.applied;
        loop {
            let changes = store.zone_changes(cursor, 1000).await?;
            let full = changes.len() == 1000;
            for (id, name) in changes {
                cursor = id;
                if !self.seen.contains(&id) {
                    new_ids.push(id);
                    names.insert(name);
                }
            }
            if !full {
                break;
            }
        }
        let mut contents = Vec::with_capacity(names.len());
        for name in names {
            let now = store.name_contents(&name).await?;
            contents.push((name, now));
        }
        self.seen.extend(new_ids);
        self.advance(Instant::now());
        Ok(contents)
    }

    /// Moves `applied` over every id seen, or given up on, right after it.
    fn advance(&mut self, now: Instant) {
        let highest = self.seen.last().copied().unwrap_or(self.applied);
        for id in self.applied + 1..highest {
            if !self.seen.contains(&id) {
                self.gaps.entry(id).or_insert(now);
            }
        }
        self.gaps.retain(|id, since| {
            let waited_out = now.duration_since(*since) >= GAP_PATIENCE;
            if waited_out {
                self.seen.insert(*id);
            }
            !waited_out && !self.seen.contains(id)
        });
        while self.seen.remove(&(self.applied + 1)) {
            self.applied += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_commit_is_waited_for_and_a_rollback_given_up_on() {
        let start = Instant::now();
        let mut follower = Follower::new(10);
        // 11 and 13 committed; 12 not yet.
        follower.seen.extend([11, 13]);
        follower.advance(start);
        assert_eq!(follower.applied, 11);
        assert!(follower.gaps.contains_key(&12));
        // 12 commits later: everything up to 13 is applied.
        follower.seen.insert(12);
        follower.advance(start + Duration::from_secs(1));
        assert_eq!(follower.applied, 13);
        assert!(follower.gaps.is_empty() && follower.seen.is_empty());
        // 14 never commits: after the patience, 15 is no longer held back.
        follower.seen.insert(15);
        follower.advance(start + Duration::from_secs(2));
        assert_eq!(follower.applied, 13);
        follower.advance(start + Duration::from_secs(2) + GAP_PATIENCE);
        assert_eq!(follower.applied, 15);
    }
}
