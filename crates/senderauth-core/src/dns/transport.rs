//! A UDP transport for hickory-resolver that keeps sockets open between queries.
//!
//! hickory's own UDP transport binds a fresh socket for every query (socket, bind, register,
//! close), which costs more CPU than the query itself when thousands of domains are checked
//! against a nearby resolver. Here each query takes an idle connected socket from a pool,
//! or opens one, and returns it only after a matching answer: a socket whose query timed out
//! or failed is dropped, so a late answer can never be read by the next query. A query left
//! unanswered for a few round trips is sent again within its timeout, as resolvers do. Sockets are
//! retired after a number of uses so their ephemeral ports keep changing. TCP (which hickory
//! switches to for truncated answers) stays hickory's own. `Dns` also uses a [`UdpPool`]
//! directly, without hickory's pool around it, when it has one nameserver to ask.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hickory_proto::op::{DnsRequest, DnsResponse};
use hickory_resolver::config::{ConnectionConfig, ProtocolConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsExchange, DnsHandle, DnsResponseStream};
use hickory_resolver::{ConnectionProvider, PoolContext};
use tokio::net::UdpSocket;

/// Queries a socket answers before it is closed and a new one (with a new port) opened.
const USES_PER_SOCKET: u32 = 500;
/// Idle sockets kept per server.
const MAX_IDLE_SOCKETS: usize = 1024;
/// Large enough for any EDNS answer hickory asks for (it advertises 1232 octets).
const RECEIVE_BUFFER: usize = 4096;
/// A query unanswered for this many smoothed round trips is sent again on its socket (same ID,
/// same question), within the attempt's timeout: a datagram the server's full socket buffer
/// dropped costs a few round trips instead of the whole timeout. Between the two bounds.
const RETRANSMIT_ROUND_TRIPS: u32 = 4;
const MIN_RETRANSMIT: Duration = Duration::from_millis(25);
const MAX_RETRANSMIT: Duration = Duration::from_millis(1000);

/// A server's round-trip time, smoothed as TCP does (RFC 6298, alpha 1/8), and when to send a
/// query again for want of an answer. Shared by the socket pool and the burst socket.
#[derive(Default)]
pub(super) struct RoundTrips {
    /// In microseconds; 0 until the first answer.
    smoothed_micros: AtomicU64,
}

impl RoundTrips {
    /// How long to wait for an answer before sending the query again.
    pub(super) fn retransmit_after(&self) -> Duration {
        let smoothed = Duration::from_micros(self.smoothed_micros.load(Ordering::Relaxed));
        if smoothed.is_zero() {
            return MAX_RETRANSMIT;
        }
        (smoothed * RETRANSMIT_ROUND_TRIPS).clamp(MIN_RETRANSMIT, MAX_RETRANSMIT)
    }

    /// One query's round trip; by Karn's rule, only of a query sent once.
    pub(super) fn record(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX);
        let smoothed = self.smoothed_micros.load(Ordering::Relaxed);
        let updated = if smoothed == 0 { sample } else { smoothed - smoothed / 8 + sample / 8 };
        self.smoothed_micros.store(updated.max(1), Ordering::Relaxed);
    }
}

/// Creates pooled UDP connections, and hickory's own for every other protocol.
#[derive(Clone, Default)]
pub struct PooledUdpProvider {
    runtime: TokioRuntimeProvider,
}

/// A connection to one name server.
#[derive(Clone)]
pub enum Connection {
    Udp(Arc<UdpPool>),
    Stream(DnsExchange<TokioRuntimeProvider>),
}

type ConnectionFuture = Pin<Box<dyn Future<Output = Result<Connection, NetError>> + Send>>;

impl ConnectionProvider for PooledUdpProvider {
    type Conn = Connection;
    type FutureConn = ConnectionFuture;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        if let ProtocolConfig::Udp = config.protocol {
            let pool = UdpPool::new(SocketAddr::new(ip, config.port), cx.options.timeout);
            return Ok(Box::pin(async move { Ok(Connection::Udp(Arc::new(pool))) }));
        }
        let connecting = self.runtime.new_connection(ip, config, cx)?;
        Ok(Box::pin(async move { Ok(Connection::Stream(connecting.await?)) }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.runtime
    }
}

impl DnsHandle for Connection {
    type Response = DnsResponseStream;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        match self {
            Connection::Udp(pool) => {
                let pool = pool.clone();
                Box::pin(async move { pool.exchange(&request).await }).into()
            }
            Connection::Stream(exchange) => {
                let mut responses = exchange.send(request);
                Box::pin(async move { responses.next().await.unwrap_or(Err(NetError::Timeout)) }).into()
            }
        }
    }
}

/// An idle connected socket, how many queries it has carried, and its receive buffer.
type IdleSocket = (UdpSocket, u32, Vec<u8>);

/// Idle connected sockets to one server.
pub struct UdpPool {
    server: SocketAddr,
    timeout: Duration,
    idle: Mutex<Vec<IdleSocket>>,
    round_trips: RoundTrips,
}

impl UdpPool {
    /// A pool of sockets to `server`, each query waiting at most `timeout` for its answer.
    pub(super) fn new(server: SocketAddr, timeout: Duration) -> UdpPool {
        UdpPool { server, timeout, idle: Mutex::new(Vec::new()), round_trips: RoundTrips::default() }
    }

    pub(super) fn server(&self) -> SocketAddr {
        self.server
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn checkout(&self) -> Result<IdleSocket, NetError> {
        if let Some(idle) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(idle);
        }
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.map_err(|error| NetError::Io(Arc::new(error)))?;
        // A connected socket only receives datagrams from the server.
        socket.connect(self.server).await.map_err(|error| NetError::Io(Arc::new(error)))?;
        Ok((socket, 0, vec![0_u8; RECEIVE_BUFFER]))
    }

    fn checkin(&self, socket: IdleSocket) {
        if socket.1 >= USES_PER_SOCKET {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_SOCKETS
        {
            idle.push(socket);
        }
    }

    /// Sends `request` and waits for its answer, sending it again after a few round trips
    /// without one, until the timeout.
    pub(super) async fn exchange(&self, request: &DnsRequest) -> Result<DnsResponse, NetError> {
        let bytes = request.to_vec()?;
        let (socket, uses, mut buffer) = self.checkout().await?;
        let asked = Instant::now();
        let deadline = asked + self.timeout;
        let mut wait = self.round_trips.retransmit_after();
        let mut sent_once = true;
        let io = |error: std::io::Error| NetError::Io(Arc::new(error));
        socket.send(&bytes).await.map_err(io)?;
        loop {
            let until = (Instant::now() + wait).min(deadline);
            match tokio::time::timeout_at(until.into(), answer(&socket, &bytes, request, &mut buffer)).await {
                Ok(Ok(response)) => {
                    // Karn's rule: a round trip of a query sent twice says nothing.
                    if sent_once {
                        self.round_trips.record(asked.elapsed());
                    }
                    self.checkin((socket, uses + 1, buffer));
                    return Ok(response);
                }
                Ok(Err(error)) => return Err(error),
                Err(_) if until >= deadline => return Err(NetError::Timeout),
                Err(_) => {
                    socket.send(&bytes).await.map_err(io)?;
                    sent_once = false;
                    wait *= 2;
                }
            }
        }
    }
}

/// Waits for the answer to a query: the same ID and the same question (RFC 1035 section 7.3);
/// anything else on the socket is ignored.
async fn answer(
    socket: &UdpSocket,
    bytes: &[u8],
    request: &DnsRequest,
    buffer: &mut [u8],
) -> Result<DnsResponse, NetError> {
    loop {
        let length = socket.recv(buffer).await.map_err(|error| NetError::Io(Arc::new(error)))?;
        if length < 12 || buffer[..2] != bytes[..2] {
            continue;
        }
        let Ok(response) = DnsResponse::from_buffer(buffer[..length].to_vec()) else { continue };
        if response.queries == request.queries {
            return Ok(response);
        }
    }
}
