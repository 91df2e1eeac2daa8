//! A UDP transport for hickory-resolver that keeps sockets open between queries.
//!
//! hickory's own UDP transport binds a fresh socket for every query (socket, bind, register,
//! close), which costs more CPU than the query itself when thousands of domains are checked
//! against a nearby resolver. Here each query takes an idle connected socket from a pool,
//! or opens one, and returns it only after a matching answer: a socket whose query timed out
//! or failed is dropped, so a late answer can never be read by the next query. Sockets are
//! retired after a number of uses so their ephemeral ports keep changing. TCP (which hickory
//! switches to for truncated answers) stays hickory's own.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
            let pool = UdpPool {
                server: SocketAddr::new(ip, config.port),
                timeout: cx.options.timeout,
                idle: Mutex::new(Vec::new()),
            };
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
                Box::pin(async move { pool.exchange(request).await }).into()
            }
            Connection::Stream(exchange) => {
                let mut responses = exchange.send(request);
                Box::pin(async move { responses.next().await.unwrap_or(Err(NetError::Timeout)) }).into()
            }
        }
    }
}

/// Idle connected sockets to one server.
pub struct UdpPool {
    server: SocketAddr,
    timeout: Duration,
    idle: Mutex<Vec<(UdpSocket, u32)>>,
}

impl UdpPool {
    async fn checkout(&self) -> Result<(UdpSocket, u32), NetError> {
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
        Ok((socket, 0))
    }

    fn checkin(&self, socket: UdpSocket, uses: u32) {
        if uses >= USES_PER_SOCKET {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_SOCKETS
        {
            idle.push((socket, uses));
        }
    }

    async fn exchange(&self, request: DnsRequest) -> Result<DnsResponse, NetError> {
        let bytes = request.to_vec()?;
        let (socket, uses) = self.checkout().await?;
        match tokio::time::timeout(self.timeout, ask(&socket, &bytes, &request)).await {
            Ok(Ok(response)) => {
                self.checkin(socket, uses + 1);
                Ok(response)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(NetError::Timeout),
        }
    }
}

/// Sends one query and waits for its answer: the same ID and the same question (RFC 1035
/// section 7.3); anything else on the socket is ignored.
async fn ask(socket: &UdpSocket, bytes: &[u8], request: &DnsRequest) -> Result<DnsResponse, NetError> {
    let io = |error: std::io::Error| NetError::Io(Arc::new(error));
    socket.send(bytes).await.map_err(io)?;
    let mut buffer = vec![0_u8; RECEIVE_BUFFER];
    loop {
        let length = socket.recv(&mut buffer).await.map_err(io)?;
        if length < 12 || buffer[..2] != bytes[..2] {
            continue;
        }
        let Ok(response) = DnsResponse::from_buffer(buffer[..length].to_vec()) else { continue };
        if response.queries == request.queries {
            return Ok(response);
        }
    }
}
