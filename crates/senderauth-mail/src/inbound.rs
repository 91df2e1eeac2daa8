//! An SMTP session for mail that comes to the platform rather than through it (the DMARC
//! report address, the bounce hosts): EHLO, MAIL, RCPT for the addresses the listener takes,
//! DATA, with every refusal carrying its enhanced status code. What a listener takes and what
//! it does with a message is its [`Inbound`]; the client's 250 is whatever that returns, once it
//! is done (so a message is acknowledged only once it is stored).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use senderauth_core::mailbox::smtp_path;
use senderauth_service::connections::Slots;

use crate::message::{is_bare_line_end, line_fault};
use crate::smtp::{Wire, accept};

/// What an inbound listener takes, and what it does with a message.
pub(crate) trait Inbound: Clone + Send + Sync + 'static {
    /// What an accepted RCPT stands for.
    type Recipient: Send + 'static;
    /// The name in the greeting and the EHLO reply.
    fn hostname(&self) -> &str;
    /// What the greeting says after the name (`ESMTP senderauth DMARC reports`).
    fn banner(&self) -> &'static str;
    /// The largest message taken, in bytes.
    fn size_limit(&self) -> usize;
    /// The recipient `address` (lowercase) if taken, else the whole refusal reply.
    fn recipient(&self, address: String) -> impl Future<Output = Result<Self::Recipient, String>> + Send;
    /// Takes a message for `recipients`; returns the whole reply (a 250 only once it is kept).
    fn message(
        &self,
        recipients: Vec<Self::Recipient>,
        message: Vec<u8>,
        peer: SocketAddr,
    ) -> impl Future<Output = String> + Send;
}

/// Accepts connections until `stopped` turns true, each a session of `inbound`.
pub(crate) async fn serve_inbound<I: Inbound>(
    listener: TcpListener,
    inbound: I,
    name: &'static str,
    idle: Duration,
    slots: Slots,
    stopped: watch::Receiver<bool>,
) {
    accept(listener, slots.clone(), name, stopped, move |stream, peer, slot| {
        let session = Session {
            wire: Wire::new(stream, idle, slot),
            peer,
            inbound: inbound.clone(),
            mail: false,
            recipients: Vec::new(),
        };
        async move {
            if let Err(error) = session.run().await {
                tracing::debug!(%peer, %error, listener = name, "SMTP session ended");
            }
        }
    })
    .await;
}

/// The most recipients taken for one message.
const MAX_RECIPIENTS: usize = 100;

struct Session<S, I: Inbound> {
    wire: Wire<S>,
    peer: SocketAddr,
    inbound: I,
    /// MAIL was given.
    mail: bool,
    recipients: Vec<I::Recipient>,
}

impl<S: AsyncRead + AsyncWrite + Unpin, I: Inbound> Session<S, I> {
    async fn run(mut self) -> std::io::Result<()> {
        let greeting = format!("220 {} {}", self.inbound.hostname(), self.inbound.banner());
        self.wire.reply(&greeting).await?;
        while !self.wire.closing {
            let Some(line) = self.wire.command().await? else { return Ok(()) };
            match Request::parse(&mut line.iter()) {
                Ok(Request::Ehlo { .. }) => {
                    self.reset();
                    let text = format!(
                        "250-{}\r\n250-SIZE {}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                        self.inbound.hostname(),
                        self.inbound.size_limit()
                    );
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Helo { .. }) => {
                    self.reset();
                    let text = format!("250 {}", self.inbound.hostname());
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Mail { from }) => {
                    if self.mail {
                        self.wire.reply("503 5.5.1 Nested MAIL command").await?;
                    } else if from.size > self.inbound.size_limit() {
                        let text = format!("552 5.3.4 Message size exceeds the limit of {}", self.inbound.size_limit());
                        self.wire.reply(&text).await?;
                    } else {
                        self.mail = true;
                        self.wire.reply("250 2.1.0 OK").await?;
                    }
                }
                Ok(Request::Rcpt { to }) => {
                    let address = smtp_path(&to.address).map(|address| address.to_ascii_lowercase());
                    let text = match address {
                        _ if !self.mail => "503 5.5.1 MAIL first".to_string(),
                        None => "501 5.1.3 Syntax: RCPT TO:<address>".to_string(),
                        Some(_) if self.recipients.len() >= MAX_RECIPIENTS => {
                            "452 4.5.3 Too many recipients".to_string()
                        }
                        Some(address) => match self.inbound.recipient(address).await {
                            Ok(recipient) => {
                                self.recipients.push(recipient);
                                "250 2.1.5 OK".to_string()
                            }
                            Err(refusal) => refusal,
                        },
                    };
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Data) => self.data().await?,
                Ok(Request::Rset) => {
                    self.reset();
                    self.wire.reply("250 2.0.0 OK").await?;
                }
                Ok(Request::Noop { .. }) => self.wire.reply("250 2.0.0 OK").await?,
                Ok(Request::Quit) => {
                    self.wire.last_reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                Ok(request) => {
                    let text = format!("502 5.5.1 {} is not offered here", request.name());
                    self.wire.reply(&text).await?;
                }
                Err(_) => self.wire.reply("500 5.5.2 Syntax error").await?,
            }
        }
        self.wire.send_replies().await
    }

    fn reset(&mut self) {
        self.mail = false;
        self.recipients.clear();
    }

    async fn data(&mut self) -> std::io::Result<()> {
        if !self.mail {
            return self.wire.reply("503 5.5.1 MAIL first").await;
        }
        if self.recipients.is_empty() {
            return self.wire.reply("554 5.5.1 No valid recipients").await;
        }
        let message = self.wire.message(self.inbound.size_limit()).await?;
        let recipients = std::mem::take(&mut self.recipients);
        self.reset();
        let Some(message) = message else { return Ok(()) };
        // Long lines are taken here (reports and bounces come as their senders wrote them); a
        // bare line end is not.
        if let Some(fault) = line_fault(&message).filter(is_bare_line_end) {
            let text = format!("521 5.5.2 {fault}; closing the connection");
            return self.wire.last_reply(&text).await;
        }
        let reply = self.inbound.message(recipients, message, self.peer).await;
        self.wire.reply(&reply).await
    }
}

/// A reason as one short line of an SMTP reply.
pub(crate) fn single_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.chars().take(300).collect()
}
