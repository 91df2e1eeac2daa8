//! UDP for bulk checks: every question of one thread's checks on one socket, sent in bursts.
//!
//! Against a nearby server, sending each query on its own (`transport`) costs a context switch
//! per query: the datagram wakes the server, which takes the CPU from the sender, answers that
//! one query and sleeps again. Here a query is queued, and one task sends all queued queries
//! with a single `sendmmsg` once the checks that are ready to run have run, so the server
//! wakes once for the whole burst and answers it in one go. Answers come back on the same
//! socket and are matched to their question by ID and by the question's exact bytes: the
//! name's letters are sent in random case (DNS 0x20, as resolvers do), so with the 16-bit ID
//! an off-path forger has to guess more than 32 bits, as with a random port per query.
//!
//! Its tasks run on the runtime that made it, so it is used only where one runtime makes and
//! uses it (a bulk check thread); they end when it is dropped.

use std::io::IoSlice;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{DnsRequest, DnsResponse};
use hickory_resolver::net::NetError;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, oneshot};

use super::transport::RoundTrips;

/// Queries sent with one `sendmmsg` at most.
const BURST: usize = 32;
/// Queries sent and not answered yet, at most: a server's socket buffer (208 KiB by default)
/// holds only a hundred or two small datagrams, shared by every thread asking (without a
/// limit, a run lost 5-10% of its queries there).
const WINDOW: usize = 96;
/// Answers waiting to be read; a burst's answers arrive together.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;
const MAX_DATAGRAM: usize = 4096;

/// A query waiting for its answer: its question's bytes (after the 12-octet header) and who
/// waits.
struct Waiting {
    /// Which query this is, so a query that gave up removes its own entry and not a later
    /// query's under the same ID.
    token: u64,
    question: Vec<u8>,
    answer: oneshot::Sender<Vec<u8>>,
    /// Datagrams of this query sent, and of those the ones no longer counted in the window
    /// (answered, or given up as lost).
    sent: usize,
    settled: usize,
}

impl Waiting {
    /// Takes this query's unsettled datagrams out of the window count.
    fn settle(&mut self, shared: &Shared) {
        let unsettled = self.sent - self.settled;
        self.settled = self.sent;
        if unsettled > 0 {
            let _ = shared
                .in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |count| Some(count.saturating_sub(unsettled)));
            shared.room.notify_one();
        }
    }
}

struct Shared {
    socket: UdpSocket,
    waiting: Mutex<super::FastMap<u16, Waiting>>,
    tokens: AtomicU64,
    /// A query unanswered for a few round trips is sent again, until its timeout.
    round_trips: RoundTrips,
    outgoing: Mutex<Vec<Vec<u8>>>,
    queued: Notify,
    /// Datagrams sent and not settled; `room` is told when some are.
    in_flight: AtomicUsize,
    room: Notify,
    /// The last thing the socket heard was a refusal (ICMP port unreachable): nothing listens.
    refused: AtomicBool,
}

/// One socket to one server, its sender and receiver tasks.
pub struct BurstUdp {
    shared: Arc<Shared>,
    timeout: Duration,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for BurstUdp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl BurstUdp {
    /// A socket to `server`; must be called inside the Tokio runtime that will use it.
    pub fn connect(server: SocketAddr, timeout: Duration) -> std::io::Result<BurstUdp> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = std::net::UdpSocket::bind(local)?;
        socket.connect(server)?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        // Best effort: the system's ceiling may be lower.
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, RECEIVE_BUFFER_BYTES);
        let shared = Arc::new(Shared {
            socket,
            waiting: Mutex::new(super::FastMap::default()),
            tokens: AtomicU64::new(0),
            round_trips: RoundTrips::default(),
            outgoing: Mutex::new(Vec::new()),
            queued: Notify::new(),
            in_flight: AtomicUsize::new(0),
            room: Notify::new(),
            refused: AtomicBool::new(false),
        });
        let tasks = [tokio::spawn(send_bursts(shared.clone())), tokio::spawn(receive(shared.clone()))];
        Ok(BurstUdp { shared, timeout, tasks })
    }

    /// Sends `request` (under its own ID, or a free one if that is in use) and waits for the answer, sending it again
    /// while none comes, until the timeout.
    pub async fn exchange(&self, request: &DnsRequest) -> Result<DnsResponse, NetError> {
        let mut bytes = request.to_vec()?;
        let Some(question) = question(&bytes).map(<[u8]>::to_vec) else {
            return Err(NetError::from("a query without a question"));
        };
        let (answer, mut answered) = oneshot::channel();
        let token = self.shared.tokens.fetch_add(1, Ordering::Relaxed);
        let id = {
            let Ok(mut waiting) = self.shared.waiting.lock() else { return Err(NetError::NoConnections) };
            // The request's own ID is random already; another only when that one is taken.
            let mut id = request.metadata.id;
            let mut draws = 0;
            while waiting.contains_key(&id) {
                let mut random = [0_u8; 2];
                draws += 1;
                if draws > 64 || getrandom::getrandom(&mut random).is_err() {
                    return Err(NetError::Busy);
                }
                id = u16::from_be_bytes(random);
            }
            // The ID is the message's first two octets.
            bytes[..2].copy_from_slice(&id.to_be_bytes());
            waiting.insert(id, Waiting { token, question, answer, sent: 0, settled: 0 });
            id
        };
        let asked = Instant::now();
        let deadline = asked + self.timeout;
        let mut wait = self.shared.round_trips.retransmit_after();
        let mut sent_once = true;
        let result = loop {
            self.queue(bytes.clone());
            let until = (Instant::now() + wait).min(deadline);
            match tokio::time::timeout_at(until.into(), &mut answered).await {
                Ok(Ok(answer)) => {
                    // Karn's rule: the round trip of a query sent twice says nothing.
                    if sent_once {
                        self.shared.round_trips.record(asked.elapsed());
                    }
                    break DnsResponse::from_buffer(answer).map_err(NetError::from);
                }
                Ok(Err(_)) => break Err(NetError::NoConnections),
                Err(_) if until >= deadline && self.shared.refused.load(Ordering::Relaxed) => {
                    break Err(NetError::NoConnections);
                }
                Err(_) if until >= deadline => break Err(NetError::Timeout),
                Err(_) => {
                    // What was sent is taken as lost.
                    if let Ok(mut waiting) = self.shared.waiting.lock()
                        && let Some(query) = waiting.get_mut(&id).filter(|query| query.token == token)
                    {
                        query.settle(&self.shared);
                    }
                    sent_once = false;
                    wait *= 2;
                }
            }
        };
        if let Ok(mut waiting) = self.shared.waiting.lock()
            && waiting.get(&id).is_some_and(|query| query.token == token)
            && let Some(mut query) = waiting.remove(&id)
        {
            query.settle(&self.shared);
        }
        result
    }

    fn queue(&self, bytes: Vec<u8>) {
        let first = match self.shared.outgoing.lock() {
            Ok(mut outgoing) => {
                outgoing.push(bytes);
                outgoing.len() == 1
            }
            Err(_) => false,
        };
        if first {
            self.shared.queued.notify_one();
        }
    }
}

/// The question section of a query: its name (uncompressed labels) and type and class.
fn question(message: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let length = usize::from(*message.get(at)?);
        at += 1 + length;
        if length == 0 {
            break;
        }
    }
    message.get(12..at + 4)
}

/// Sends what is queued, in bursts: woken by the first query queued, it runs after the tasks
/// already ready to run, which queue theirs meanwhile.
async fn send_bursts(shared: Arc<Shared>) {
    loop {
        shared.queued.notified().await;
        // Once more round the scheduler: the checks woken with this one queue their queries.
        tokio::task::yield_now().await;
        loop {
            let room = WINDOW.saturating_sub(shared.in_flight.load(Ordering::Relaxed));
            if room == 0 {
                shared.room.notified().await;
                continue;
            }
            let burst: Vec<Vec<u8>> = match shared.outgoing.lock() {
                Ok(mut outgoing) => {
                    let take = outgoing.len().min(room).min(BURST);
                    outgoing.drain(..take).collect()
                }
                Err(_) => return,
            };
            if burst.is_empty() {
                break;
            }
            if let Ok(mut waiting) = shared.waiting.lock() {
                for bytes in &burst {
                    if let Some(query) = waiting.get_mut(&u16::from_be_bytes([bytes[0], bytes[1]])) {
                        query.sent += 1;
                        shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            send(&shared, &burst).await;
            // The answers to this burst are read before the next goes out.
            tokio::task::yield_now().await;
        }
    }
}

/// One burst, with as few `sendmmsg` calls as the socket takes.
async fn send(shared: &Shared, burst: &[Vec<u8>]) {
    let mut sent = 0;
    while sent < burst.len() {
        let rest = &burst[sent..];
        let attempt = shared.socket.try_io(Interest::WRITABLE, || {
            let slices: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|bytes| [IoSlice::new(bytes)]).collect();
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                rest.iter().map(|_| SendAncillaryBuffer::default()).collect();
            let mut messages: Vec<MMsgHdr<'_>> =
                slices.iter().zip(controls.iter_mut()).map(|(slice, control)| MMsgHdr::new(slice, control)).collect();
            rustix::net::sendmmsg(&shared.socket, &mut messages, SendFlags::empty()).map_err(std::io::Error::from)
        });
        match attempt {
            Ok(count) => sent += count.max(1),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if shared.socket.writable().await.is_err() {
                    return;
                }
            }
            // A datagram the system refused (the server's port closed, say): its query
            // is sent again or times out.
            Err(_) => sent += 1,
        }
    }
}

/// Reads answers and hands each to the query it answers: the same ID and the same question,
/// byte for byte (letter case included). Anything else is dropped.
async fn receive(shared: Arc<Shared>) {
    let mut buffer = vec![0_u8; MAX_DATAGRAM];
    loop {
        let length = match shared.socket.recv(&mut buffer).await {
            Ok(length) => length,
            // An ICMP error for an earlier datagram: the queries concerned time out (with the
            // reason) or are sent again.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                shared.refused.store(true, Ordering::Relaxed);
                continue;
            }
            Err(_) => return,
        };
        shared.refused.store(false, Ordering::Relaxed);
        let answer = &buffer[..length];
        if length < 12 {
            continue;
        }
        let id = u16::from_be_bytes([answer[0], answer[1]]);
        let Ok(mut waiting) = shared.waiting.lock() else { return };
        let matches = waiting.get(&id).is_some_and(|query| {
            answer[4..6] == [0, 1] && answer.get(12..12 + query.question.len()) == Some(&query.question[..])
        });
        if matches && let Some(mut query) = waiting.remove(&id) {
            query.settle(&shared);
            let _ = query.answer.send(answer.to_vec());
        }
    }
}
