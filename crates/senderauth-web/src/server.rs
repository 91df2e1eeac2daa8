//! The HTTP listener: the router on hyper's HTTP/1.1 connections, with the limits a server
//! facing the internet keeps (axum's own `serve` has none of them): a deadline for a request's
//! header, which is also how long a kept-alive connection may sit idle; a cap on open
//! connections where the one silent longest makes room for a new one (so a flood of idle
//! connections cannot keep `/healthz` or a customer out); and a pause, not a spin, when
//! accepting fails (no file descriptors left). On shutdown it stops accepting and lets the
//! requests in flight finish, for at most ten seconds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use senderauth_service::connections::{AcceptPause, Slot, Slots};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the listener limits its clients.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// How long a client may take to send a request's header, and how long a connection may
    /// stay open between requests.
    pub header_read: Duration,
    /// The open connections.
    pub slots: Slots,
}

/// How long requests in flight may take to finish once shutdown has begun.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut pause = AcceptPause::new("http");
    loop {
        let slot = tokio::select! {
            slot = limits.slots.take() => slot,
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                pause.accepted();
                stream
            }
            Err(error) => {
                pause.failed(&error).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, app.clone(), limits.header_read, slot, stop.clone()));
    }
    let _ = stopping.send(true);
    // Every connection task holds a slot: the listener is drained when all are back.
    let drained = async {
        while limits.slots.open() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(DRAIN, drained).await;
    Ok(())
}

/// One client's connection, until it closes, is idle too long, gives way at the cap, or the
/// server stops.
async fn connection(
    stream: TcpStream,
    app: Router,
    header_read: Duration,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let slot = std::sync::Arc::new(slot);
    let io = TokioIo::new(Touching { inner: stream, slot: slot.clone() });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read).keep_alive(true);
    let served = builder.serve_connection(io, TowerToHyperService::new(app)).with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        () = slot.evicted() => {}
        () = stopped(&mut stop) => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, served.as_mut()).await;
        }
    }
}

/// Resolves once the server is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// A stream that tells its slot whenever the client sends something.
struct Touching<S> {
    inner: S,
    slot: std::sync::Arc<Slot>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Touching<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Touching<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
