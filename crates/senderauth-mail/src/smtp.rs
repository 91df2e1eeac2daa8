//! The sending gateway's SMTP side (issue 6): a listener that takes mail from an account
//! (authenticated with its token), prepares each message ([`crate::message::prepare`]) and relays it
//! to the upstream MTA before answering, so the client's 250 means the upstream has it.
//!
//! Extensions: SIZE, PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS (with a configured
//! certificate), AUTH PLAIN and LOGIN (offered only over TLS or to clients on loopback). Every
//! command line is at most 1,000 octets and every read has a deadline, so a stalled or hostile
//! client ties up only its own connection. Failed AUTH attempts are answered after a delay and
//! end the session after a configured number. Towards the upstream, STARTTLS is used whenever it
//! is offered (opportunistic, like Postfix's `smtp_tls_security_level = may`: encrypted, the
//! certificate not checked).
//!
//! Commands are parsed and DATA is read with `smtp-proto` (Stalwart's parser): its data reader
//! ends a message only at CRLF `.` CRLF, so a dot after a bare LF or CR is message content, never
//! the end of data. On top of it, the policy is ours: a message holding a bare LF or CR anywhere
//! is refused with 521 and the connection closed (Postfix's `smtpd_forbid_bare_newline`), so no
//! byte sent after such a dot can run as a command (SMTP smuggling, CVE-2023-51764) and no bare
//! CR reaches an upstream that might end data at it.
//!
//! The session loop, the batching of replies to pipelined commands (RFC 2920 section 3.2) and
//! the upstream pool are ours and measured (docs/benchmarks.md, "The SMTP gateway"): one write
//! per reply with TCP_NODELAY took the gateway from 170 to 1,050 messages per second, pooled
//! and pipelined upstream connections (with the signer cache) to 1,540, and gathering the
//! replies to pipelined commands into one write from 63% to 66% of the raw signing rate.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use smtp_proto::{MailFrom, RcptTo, Request};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use senderauth_core::mailbox::smtp_path;
use senderauth_service::connections::{AcceptPause, Slot, Slots};
use senderauth_store::Principal;

use crate::message::{Arrival, Gateway, MailError, is_bare_line_end, line_fault, prepare};

/// The longest command line taken (RFC 5321 section 4.5.3.1.4), CRLF included.
const MAX_LINE: usize = 1000;
/// Recipients per message.
const MAX_RECIPIENTS: usize = 100;
/// The MAIL parameters taken: SIZE and BODY=7BIT or 8BITMIME (no DSN, SMTPUTF8, BINARYMIME...).
const MAIL_BODY_FLAGS: u64 = smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME;

/// How the listener behaves.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Where prepared mail is relayed (a smarthost); `None`: messages are refused with a 451.
    pub upstream: Option<SocketAddr>,
    /// How long a client may take to send a command or its message's next line.
    pub idle: Duration,
    /// The certificate STARTTLS presents; `None`: STARTTLS is not offered.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Failed AUTH attempts after which the session is closed (at least 1).
    pub auth_failures: u32,
    /// How long each failed AUTH attempt waits before its reply.
    pub auth_failure_delay: Duration,
    /// Connections to the upstream kept for the next messages.
    pub pool: UpstreamPool,
    /// The open sessions: at the cap, the one silent longest makes room for a new one.
    pub slots: Slots,
}

/// Why the listener's TLS setup could not be made from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    NotCertificates { path: String, reason: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("{path}: not a PEM private key: {reason}")]
    NotKey { path: String, reason: String },
    #[error("the certificate and key do not make a TLS setup: {0}")]
    Mismatch(rustls::Error),
}

/// The TLS setup of the listener from a PEM certificate chain and its PEM private key.
pub fn tls_config(certificate: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let shown = |path: &Path| path.display().to_string();
    let read = |path: &Path| std::fs::read(path).map_err(|source| TlsSetupError::Read { path: shown(path), source });
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(certificate)?)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsSetupError::NotCertificates { path: shown(certificate), reason: error.to_string() })?;
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate { path: shown(certificate) });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|error| TlsSetupError::NotKey { path: shown(key), reason: error.to_string() })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsSetupError::Mismatch)?;
    Ok(Arc::new(config))
}

/// Accepts connections until `stopped` turns true.
pub async fn serve(listener: TcpListener, gateway: Gateway, settings: SmtpSettings, stopped: watch::Receiver<bool>) {
    let slots = settings.slots.clone();
    accept(listener, slots, "smtp", stopped, move |stream, peer, slot| {
        connection(stream, peer, gateway.clone(), settings.clone(), slot)
    })
    .await;
}

/// The accept loop of an SMTP listener (`name` in its logs): a connection slot first, then a
/// connection, each served by `session` on a task of its own until `stopped` turns true.
pub(crate) async fn accept<F, Session>(
    listener: TcpListener,
    slots: Slots,
    name: &'static str,
    mut stopped: watch::Receiver<bool>,
    session: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<Slot>) -> Session,
    Session: std::future::Future<Output = ()> + Send + 'static,
{
    let mut pause = AcceptPause::new(name);
    loop {
        let slot = tokio::select! {
            slot = slots.take() => slot,
            _ = stopped.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                pause.accepted();
                accepted
            }
            Err(error) => {
                pause.failed(&error).await;
                continue;
            }
        };
        // Replies are whole lines written at once: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        let slot = Arc::new(slot);
        let serving = session(stream, peer, slot.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = serving => {}
                // Silent longest when a new client came at the cap: closed.
                () = slot.evicted() => tracing::debug!(%peer, listener = name, "SMTP session closed to make room"),
            }
        });
    }
}

/// One client's connection: in plain text, then after STARTTLS over TLS.
async fn connection(stream: TcpStream, peer: SocketAddr, gateway: Gateway, settings: SmtpSettings, slot: Arc<Slot>) {
    let tls = settings.tls.clone();
    let plain = Session::new(stream, peer, gateway.clone(), settings.clone(), false, slot.clone());
    let stream = match plain.run(tls.is_some()).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return,
        Err(error) => {
            tracing::debug!(%peer, %error, "SMTP session ended");
            return;
        }
    };
    let Some(tls) = tls else { return };
    let accepted = tokio::time::timeout(settings.idle, tokio_rustls::TlsAcceptor::from(tls).accept(stream)).await;
    match accepted {
        Ok(Ok(stream)) => {
            if let Err(error) = Session::new(stream, peer, gateway, settings, true, slot).run(false).await {
                tracing::debug!(%peer, %error, "SMTP session over TLS ended");
            }
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake stalled"),
    }
}

/// One message being received.
#[derive(Default)]
struct Envelope {
    /// The client's reverse-path (empty for `<>`): where a delivery status notification goes.
    sender: String,
    recipients: Vec<String>,
    eight_bit: bool,
}

struct Session<S> {
    wire: Wire<S>,
    peer: SocketAddr,
    gateway: Gateway,
    settings: SmtpSettings,
    /// Over TLS (after STARTTLS).
    secure: bool,
    account: Option<i64>,
    envelope: Option<Envelope>,
    /// Failed AUTH attempts so far.
    auth_failures: u32,
}

/// Bytes read from a client at a time: a typical message in one read (tokio's default, 8 KiB,
/// took two or more for each 10 KB message).
const READ_BUFFER: usize = 32 * 1024;

/// A connection as SMTP sees it: command lines in, replies out, DATA read. Replies to
/// pipelined commands are gathered while the client's next commands wait in the input, and
/// sent together (RFC 2920 section 3.2). Shared by the gateway and the report listener.
pub(crate) struct Wire<S> {
    reader: BufReader<ReadHalf<S>>,
    writer: WriteHalf<S>,
    /// How long the client may stay silent.
    idle: Duration,
    /// The session ends once the replies gathered so far are sent.
    pub(crate) closing: bool,
    /// Its place among the listener's connections, told of each line the client sends.
    slot: Arc<Slot>,
    /// Replies not sent yet.
    out: Vec<u8>,
}

/// A line read from the client.
enum Line {
    /// The line as sent, its line end included.
    Text(Vec<u8>),
    TooLong,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S, idle: Duration, slot: Arc<Slot>) -> Wire<S> {
        let (reader, writer) = tokio::io::split(stream);
        let reader = BufReader::with_capacity(READ_BUFFER, reader);
        Wire { reader, writer, idle, closing: false, slot, out: Vec::new() }
    }

    /// The next command line (its line end kept); a line over the limit is answered 500 and
    /// skipped; `None` when the client went away or stayed silent too long (told 421).
    pub(crate) async fn command(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            match self.line().await {
                Ok(Some(Line::Text(line))) => return Ok(Some(line)),
                Ok(Some(Line::TooLong)) => {
                    self.reply("500 5.5.6 Line too long: commands are at most 1,000 octets").await?;
                }
                Ok(None) => return Ok(None),
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = self.last_reply("421 4.4.2 Idle too long, closing").await;
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// After the 354: the message, or `None` when it was over `limit` (told 552, the rest
    /// read and dropped). Err: the client went away or stalled (told 421).
    pub(crate) async fn message(&mut self, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        self.send_replies().await?;
        match self.read_message(limit).await {
            Ok(Ok(message)) => Ok(Some(message)),
            Ok(Err(size)) => {
                let text = format!("552 5.3.4 Message size exceeds the limit of {limit} (at least {size} bytes sent)");
                self.reply(&text).await?;
                Ok(None)
            }
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                let _ = self.last_reply("421 4.4.2 Idle too long in DATA, closing").await;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The stream back (for STARTTLS); what the client sent after is dropped with the buffer.
    fn into_inner(self) -> S {
        self.reader.into_inner().unsplit(self.writer)
    }

    /// One reply, in one write (two small writes would wait on Nagle's algorithm).
    pub(crate) async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        if self.reader.buffer().is_empty() {
            self.send_replies().await?;
        }
        Ok(())
    }

    /// The last reply of the session: sent, and the session ends.
    pub(crate) async fn last_reply(&mut self, text: &str) -> std::io::Result<()> {
        self.closing = true;
        self.reply(text).await?;
        self.send_replies().await
    }

    /// Sends the gathered replies, in one write (small writes one after another would wait on
    /// Nagle's algorithm).
    pub(crate) async fn send_replies(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.writer.write_all(&self.out).await?;
        self.out.clear();
        self.writer.flush().await
    }

    /// One line as sent (its line end kept), within the idle deadline; `None` at end of input.
    async fn line(&mut self) -> std::io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let read =
            tokio::time::timeout(self.idle, (&mut self.reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut bytes))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stalled"))??;
        if read == 0 {
            return Ok(None);
        }
        self.slot.touch();
        if !bytes.ends_with(b"\n") {
            if read <= MAX_LINE {
                return Ok(None); // the input ended mid-line
            }
            // Over the limit: skip the rest of the line.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(self.idle, self.reader.read_until(b'\n', &mut rest)).await;
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(Line::Text(bytes)))
    }

    /// The message after DATA, read to CRLF `.` CRLF (dot-stuffing removed) and at most to the
    /// size limit `limit` (the rest is read and dropped); `None` when the client went away.
    async fn read_message(&mut self, limit: usize) -> std::io::Result<Result<Vec<u8>, usize>> {
        let mut receiver = DataReceiver::new();
        // The DATA command's CRLF comes before the first line: a first line "." ends the data.
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        let mut message = Vec::new();
        let mut dropping: Option<(DummyDataReceiver, usize)> = None;
        loop {
            let chunk = tokio::time::timeout(self.idle, self.reader.fill_buf())
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stalled in DATA"))??;
            if chunk.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "gone mid-message: nothing taken"));
            }
            let mut bytes = chunk.iter();
            let ended = match &mut dropping {
                Some((dropper, size)) => {
                    let ended = dropper.ingest(&mut bytes);
                    *size += chunk.len() - bytes.as_slice().len();
                    ended
                }
                None => receiver.ingest(&mut bytes, &mut message),
            };
            let used = chunk.len() - bytes.as_slice().len();
            self.reader.consume(used);
            self.slot.touch();
            if dropping.is_none() && message.len() > limit {
                // Over the limit: the rest is read to its end and dropped.
                dropping = Some((DummyDataReceiver::new_data(&receiver), message.len()));
                message = Vec::new();
            }
            if ended {
                return Ok(match dropping {
                    Some((_, size)) => Err(size),
                    None => Ok(message),
                });
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(
        stream: S,
        peer: SocketAddr,
        gateway: Gateway,
        settings: SmtpSettings,
        secure: bool,
        slot: Arc<Slot>,
    ) -> Session<S> {
        Session {
            wire: Wire::new(stream, settings.idle, slot),
            peer,
            gateway,
            settings,
            secure,
            account: None,
            envelope: None,
            auth_failures: 0,
        }
    }

    fn may_authenticate(&self) -> bool {
        self.secure || self.peer.ip().is_loopback()
    }

    /// Serves commands until QUIT or the end of input; the stream back after a STARTTLS (any
    /// command pipelined behind it is dropped unread, as RFC 3207 requires).
    async fn run(mut self, offer_tls: bool) -> std::io::Result<Option<S>> {
        if !self.secure {
            // After STARTTLS the client speaks first (EHLO again), without a new greeting.
            let greeting = format!("220 {} ESMTP senderauth", self.settings.hostname);
            self.wire.reply(&greeting).await?;
        }
        while !self.wire.closing {
            let Some(line) = self.wire.command().await? else { return Ok(None) };
            let request = Request::parse(&mut line.iter());
            match request {
                Ok(Request::Ehlo { host }) => {
                    self.envelope = None;
                    let mut lines = vec![
                        format!("250-{} greets {}", self.settings.hostname, printable(&host)),
                        format!("250-SIZE {}", self.gateway.size_limit),
                        "250-PIPELINING".to_string(),
                        "250-8BITMIME".to_string(),
                    ];
                    if offer_tls {
                        lines.push("250-STARTTLS".to_string());
                    }
                    if self.may_authenticate() {
                        lines.push("250-AUTH PLAIN LOGIN".to_string());
                    }
                    lines.push("250 ENHANCEDSTATUSCODES".to_string());
                    self.wire.reply(&lines.join("\r\n")).await?;
                }
                Ok(Request::Helo { .. }) => {
                    self.envelope = None;
                    let text = format!("250 {}", self.settings.hostname);
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Auth { mechanism, initial_response }) => {
                    let initial = (!initial_response.is_empty()).then(|| initial_response.into_owned());
                    self.authenticate(mechanism, initial).await?;
                }
                Ok(Request::Mail { from }) => self.mail(from).await?,
                Ok(Request::Rcpt { to }) => self.recipient(to, &line).await?,
                Ok(Request::Data) => self.data().await?,
                Ok(Request::Rset) => {
                    self.envelope = None;
                    self.wire.reply("250 2.0.0 OK").await?;
                }
                Ok(Request::Noop { .. }) => self.wire.reply("250 2.0.0 OK").await?,
                Ok(Request::Vrfy { .. }) => {
                    self.wire
                        .reply("252 2.5.0 Cannot verify the address; send the message and the upstream will try")
                        .await?
                }
                Ok(Request::Quit) => {
                    self.wire.last_reply("221 2.0.0 Bye").await?;
                    return Ok(None);
                }
                Ok(Request::StartTls) if offer_tls => {
                    self.wire.reply("220 2.0.0 Ready to start TLS").await?;
                    self.wire.send_replies().await?;
                    return Ok(Some(self.wire.into_inner()));
                }
                Ok(Request::StartTls) if self.secure => self.wire.reply("503 5.5.1 TLS is already active").await?,
                Ok(Request::StartTls) => {
                    self.wire.reply("502 5.5.1 STARTTLS is not offered: no certificate is configured").await?
                }
                Ok(request) => {
                    let text = format!("502 5.5.1 {} is not offered here", request.name());
                    self.wire.reply(&text).await?;
                }
                Err(error) => {
                    let text = syntax_reply(&error);
                    self.wire.reply(&text).await?;
                }
            }
        }
        self.wire.send_replies().await?;
        Ok(None)
    }

    async fn authenticate(&mut self, mechanism: u64, initial: Option<String>) -> std::io::Result<()> {
        if !self.may_authenticate() {
            return self.wire.reply("538 5.7.11 Encryption required for authentication: STARTTLS first").await;
        }
        if self.account.is_some() {
            return self.wire.reply("503 5.5.1 Already authenticated").await;
        }
        let token = match mechanism {
            smtp_proto::AUTH_PLAIN => {
                let response = match initial {
                    Some(response) => response,
                    None => {
                        self.wire.reply("334 ").await?;
                        self.text_line().await?
                    }
                };
                // authzid NUL authcid NUL password: the password is the account token.
                decode(&response).and_then(|plain| plain.rsplit('\0').next().map(str::to_string))
            }
            smtp_proto::AUTH_LOGIN => {
                self.wire.reply("334 VXNlcm5hbWU6").await?; // "Username:"
                let _user = self.text_line().await?;
                self.wire.reply("334 UGFzc3dvcmQ6").await?; // "Password:"
                let password = self.text_line().await?;
                decode(&password)
            }
            _ => return self.wire.reply("504 5.5.4 Use AUTH PLAIN or AUTH LOGIN").await,
        };
        let Some(token) = token else {
            return self.auth_failed("501 5.5.2 Cannot decode the response").await;
        };
        match self.gateway.service.authenticate(&token).await {
            Ok(Some(Principal::Account(id))) => {
                self.account = Some(id);
                self.wire.reply("235 2.7.0 Authentication successful").await
            }
            Ok(_) => self.auth_failed("535 5.7.8 Authentication credentials invalid: use an account token").await,
            Err(error) => {
                tracing::error!(%error, "SMTP authentication");
                self.wire.reply("454 4.7.0 Temporary authentication failure").await
            }
        }
    }

    /// A failed AUTH attempt: answered after the configured delay; the last one allowed ends
    /// the session.
    async fn auth_failed(&mut self, text: &str) -> std::io::Result<()> {
        self.auth_failures += 1;
        tracing::info!(peer = %self.peer, failures = self.auth_failures, "SMTP authentication failed");
        self.wire.send_replies().await?;
        tokio::time::sleep(self.settings.auth_failure_delay).await;
        if self.auth_failures >= self.settings.auth_failures.max(1) {
            let last = format!("{text}\r\n421 4.7.0 Too many failed authentications, closing");
            return self.wire.last_reply(&last).await;
        }
        self.wire.reply(text).await
    }

    /// A line of an AUTH exchange, without its line end ("" when the client went away or sent
    /// too much).
    async fn text_line(&mut self) -> std::io::Result<String> {
        Ok(match self.wire.line().await? {
            Some(Line::Text(text)) => String::from_utf8_lossy(&text).trim_end_matches(['\r', '\n']).to_string(),
            _ => String::new(),
        })
    }

    async fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> std::io::Result<()> {
        if self.account.is_none() {
            return self.wire.reply("530 5.7.0 Authentication required: AUTH with an account token").await;
        }
        if self.envelope.is_some() {
            return self.wire.reply("503 5.5.1 Nested MAIL command").await;
        }
        let unsupported = from.flags & !MAIL_BODY_FLAGS != 0
            || from.env_id.is_some()
            || from.trans_id.is_some()
            || from.solicit.is_some()
            || from.mtrk.is_some()
            || from.auth.is_some()
            || from.by != 0
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mt_priority != 0;
        if unsupported {
            return self.wire.reply("555 5.5.4 Unsupported MAIL parameter: only SIZE and BODY are taken").await;
        }
        if from.size > self.gateway.size_limit {
            let text = format!("552 5.3.4 Message size exceeds the limit of {}", self.gateway.size_limit);
            return self.wire.reply(&text).await;
        }
        let sender = if from.address.is_empty() {
            String::new()
        } else {
            match smtp_path(&from.address) {
                Some(path) => path,
                None => return self.wire.reply("501 5.1.7 The sender address is not valid").await,
            }
        };
        let eight_bit = from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0;
        let envelope = Envelope { sender, recipients: Vec::new(), eight_bit };
        self.envelope = Some(envelope);
        self.wire.reply("250 2.1.0 OK").await
    }

    /// RCPT TO; `line` is the command as sent (`<postmaster>`, which RFC 5321 section 4.5.1
    /// requires to be taken, has no domain for the parser).
    async fn recipient(&mut self, to: RcptTo<Cow<'_, str>>, line: &[u8]) -> std::io::Result<()> {
        let Some(envelope) = self.envelope.as_mut() else { return self.wire.reply("503 5.5.1 MAIL first").await };
        if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
            return self.wire.reply("555 5.5.4 Unsupported RCPT parameter: none are taken").await;
        }
        let address = if to.address.is_empty() {
            let command = String::from_utf8_lossy(line);
            let postmaster = command
                .trim_end()
                .split_once(':')
                .is_some_and(|(_, path)| path.trim().eq_ignore_ascii_case("<postmaster>"));
            if !postmaster {
                return self.wire.reply("501 5.1.3 Syntax: RCPT TO:<address>").await;
            }
            "postmaster".to_string()
        } else {
            match smtp_path(&to.address) {
                Some(path) => path,
                None => return self.wire.reply("501 5.1.3 Syntax: RCPT TO:<address>").await,
            }
        };
        if envelope.recipients.len() >= MAX_RECIPIENTS {
            return self.wire.reply("452 4.5.3 Too many recipients").await;
        }
        envelope.recipients.push(address);
        self.wire.reply("250 2.1.5 OK").await
    }

    async fn data(&mut self) -> std::io::Result<()> {
        let Some(envelope) = self.envelope.take() else { return self.wire.reply("503 5.5.1 MAIL first").await };
        if envelope.recipients.is_empty() {
            self.envelope = Some(envelope);
            return self.wire.reply("554 5.5.1 No valid recipients").await;
        }
        let limit = self.gateway.size_limit;
        let Some(message) = self.wire.message(limit).await? else { return Ok(()) };
        if let Some(fault) = line_fault(&message) {
            if !is_bare_line_end(&fault) {
                return self.refuse(&fault).await;
            }
            // The client and this server disagree on where lines end: nothing it sends after
            // this can be trusted to be a command (SMTP smuggling).
            let text = format!("521 5.5.2 {fault}; closing the connection");
            tracing::info!(peer = %self.peer, %fault, "SMTP message with a bare line end refused");
            return self.wire.last_reply(&text).await;
        }
        let account = self.account.unwrap_or_default();
        let arrival = Arrival { eight_bit: envelope.eight_bit, size_limit: limit, lines_checked: true };
        let mut prepared = match prepare(&self.gateway, account, &message, arrival, self.gateway.service.now()).await {
            Ok(prepared) => prepared,
            Err(error) => return self.refuse(&error).await,
        };
        let relayed = match self.settings.upstream {
            Some(upstream) => {
                let pool = &self.settings.pool;
                let data = dot_stuffed(std::mem::take(&mut prepared.message));
                relay(pool, upstream, &self.settings.hostname, &prepared.envelope_from, &envelope, &data)
                    .await
                    .unwrap_or_else(|error| {
                        Relayed::refusal(format!(
                            "451 4.4.1 The upstream mail server is unavailable ({error}); try again later"
                        ))
                    })
            }
            None => Relayed::refusal("451 4.3.5 No upstream mail server is configured; try again later".to_string()),
        };
        if relayed.reply.starts_with('2') && prepared.rewritten_from.is_none() {
            // Signed as the customer's domain: counted against what receivers report back.
            let domain = prepared.from.rsplit_once('@').map_or("", |(_, domain)| domain);
            let taken = envelope
                .recipients
                .iter()
                .filter(|recipient| !relayed.refused.iter().any(|(refused, _)| refused == *recipient))
                .map(String::as_str);
            self.gateway.service.count_sent(domain, taken, self.gateway.service.now());
        }
        let mut reply = relayed.reply;
        if !relayed.refused.is_empty() {
            // Taken for some recipients only: the client's 250 stands for those, and the others
            // are reported as an MTA reports them, in a delivery status notification (RFC 3464)
            // to the sender.
            let refused: Vec<String> =
                relayed.refused.iter().map(|(recipient, said)| format!("<{recipient}> {said}")).collect();
            reply.push_str(&format!("; refused: {}", refused.join(", ")));
            match (self.settings.upstream, envelope.sender.is_empty()) {
                (Some(upstream), false) => {
                    reply.push_str(&format!("; a delivery status notification goes to <{}>", envelope.sender));
                    let now = self.gateway.service.now();
                    let report =
                        crate::dsn::report(&self.settings.hostname, &envelope.sender, &message, &relayed.refused, now);
                    let notice =
                        Envelope { sender: String::new(), recipients: vec![envelope.sender.clone()], eight_bit: false };
                    let (pool, hostname) = (self.settings.pool.clone(), self.settings.hostname.clone());
                    tokio::spawn(async move {
                        let sent = relay(&pool, upstream, &hostname, "", &notice, &dot_stuffed(report)).await;
                        let reply = sent.map_or_else(|error| error.to_string(), |relayed| relayed.reply);
                        tracing::info!(to = %notice.recipients[0], %reply, "delivery status notification");
                    });
                }
                _ => reply.push_str("; the sender is <>, so no notification is sent"),
            }
        }
        tracing::info!(
            account,
            from = %prepared.from,
            signed_as = %prepared.signed_as,
            rewritten = prepared.rewritten_from.is_some(),
            bounce_token = %prepared.bounce_token,
            recipients = envelope.recipients.len(),
            reply = %reply,
            "message"
        );
        self.wire.reply(&reply).await
    }

    async fn refuse(&mut self, error: &MailError) -> std::io::Result<()> {
        let (code, enhanced) = error.smtp();
        let text = format!("{code} {enhanced} {error}");
        self.wire.reply(&text).await
    }
}

/// The reply to a command the parser did not take.
fn syntax_reply(error: &smtp_proto::Error) -> String {
    match error {
        smtp_proto::Error::UnknownCommand => "500 5.5.2 Unknown command".to_string(),
        smtp_proto::Error::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        smtp_proto::Error::InvalidSenderAddress => "501 5.1.7 The sender address is not valid".to_string(),
        smtp_proto::Error::InvalidRecipientAddress => "501 5.1.3 The recipient address is not valid".to_string(),
        smtp_proto::Error::InvalidParameter { param } => format!("501 5.5.4 Invalid value for {param}"),
        smtp_proto::Error::UnsupportedParameter { param } => {
            format!("555 5.5.4 Unsupported parameter {}", printable(param))
        }
        _ => "500 5.5.2 Syntax error".to_string(),
    }
}

/// Client text fit to echo in a reply: printable ASCII, at most 64 characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

fn decode(text: &str) -> Option<String> {
    BASE64.decode(text.trim()).ok().and_then(|bytes| String::from_utf8(bytes).ok())
}

/// A stream to the upstream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An SMTP connection to the upstream, greeted and ready for a transaction.
struct Upstream {
    reader: BufReader<ReadHalf<Box<dyn Stream>>>,
    writer: WriteHalf<Box<dyn Stream>>,
    /// The upstream takes pipelined commands (RFC 2920).
    pipelining: bool,
    /// Since when it has been idle in the pool.
    idle_since: std::time::Instant,
}

/// Connections kept for the next messages: at most this many, idle at most this long (below
/// the 300 s an MTA waits for a command, RFC 5321 section 4.5.3.2.7).
const POOL_SIZE: usize = 64;
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Idle connections to the upstream, reused for the next message (no connection, greeting and
/// EHLO per message).
#[derive(Clone, Default)]
pub struct UpstreamPool {
    idle: Arc<std::sync::Mutex<Vec<Upstream>>>,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map_or(0, |idle| idle.len());
        write!(formatter, "UpstreamPool {{ {idle} idle }}")
    }
}

impl UpstreamPool {
    fn take(&self) -> Option<Upstream> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(connection) = idle.pop() {
            if connection.idle_since.elapsed() < POOL_IDLE {
                return Some(connection);
            }
        }
        None
    }

    fn put(&self, mut connection: Upstream) {
        connection.idle_since = std::time::Instant::now();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL_SIZE
        {
            idle.push(connection);
        }
    }
}

/// How a transaction ended.
enum Ended {
    /// The outcome for the client; whether the connection can carry another message.
    Reply(Relayed, bool),
    /// The connection failed before the message was handed over (a pooled connection the
    /// upstream had closed): nothing was sent, try another.
    Unused(std::io::Error),
}

/// What became of a message at the upstream.
#[derive(Debug, Default)]
struct Relayed {
    /// The reply for the client.
    reply: String,
    /// Recipients the upstream refused while it took the message for the others, each with
    /// its reply.
    refused: Vec<(String, String)>,
}

impl Relayed {
    fn refusal(reply: String) -> Relayed {
        Relayed { reply, refused: Vec::new() }
    }
}

impl Upstream {
    fn new(stream: Box<dyn Stream>) -> Upstream {
        let (reader, writer) = tokio::io::split(stream);
        Upstream { reader: BufReader::new(reader), writer, pipelining: false, idle_since: std::time::Instant::now() }
    }

    /// A reply: its code and its lines' text joined.
    async fn reply(&mut self) -> std::io::Result<(u16, String)> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(300), self.reader.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
            if read == 0 || line.len() < 4 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed"));
            }
            let code = line[..3].parse::<u16>().map_err(|_| std::io::Error::other("not an SMTP reply"))?;
            text.push(line[4..].trim_end().to_string());
            if line.as_bytes()[3] != b'-' {
                return Ok((code, text.join(" ")));
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    async fn command(&mut self, line: &str) -> std::io::Result<(u16, String)> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// EHLO; `Ok(Err(reply))` when refused. Notes whether it pipelines; says whether it offers
    /// STARTTLS.
    async fn hello(&mut self, hostname: &str) -> std::io::Result<Result<bool, String>> {
        let (code, text) = self.command(&format!("EHLO {hostname}")).await?;
        let offers = |name: &str| text.split(' ').any(|word| word.eq_ignore_ascii_case(name));
        self.pipelining = offers("PIPELINING");
        let tls = offers("STARTTLS");
        Ok(expect((code, text), 250).map(|()| tls))
    }

    /// One mail transaction (MAIL, RCPT, DATA pipelined when the upstream takes it); `data` is
    /// the message as [`dot_stuffed`] sends it.
    async fn transaction(&mut self, envelope_from: &str, envelope: &Envelope, data: &[u8]) -> Ended {
        match self.exchange(envelope_from, envelope, data).await {
            Ok(ended) => ended,
            Err((error, false)) => Ended::Unused(error),
            Err((error, true)) => Ended::Reply(
                Relayed::refusal(format!(
                    "451 4.4.0 The upstream mail server failed mid-message ({error}); try again later"
                )),
                false,
            ),
        }
    }

    /// The transaction; an error says whether the message's data had been sent. Recipients
    /// the upstream refuses are left out and listed; the message goes to the others.
    async fn exchange(
        &mut self,
        envelope_from: &str,
        envelope: &Envelope,
        data: &[u8],
    ) -> Result<Ended, (std::io::Error, bool)> {
        let unsent = |error| (error, false);
        let body = if envelope.eight_bit { " BODY=8BITMIME" } else { "" };
        let mail = format!("MAIL FROM:<{envelope_from}>{body}");
        let recipients: Vec<String> =
            envelope.recipients.iter().map(|recipient| format!("RCPT TO:<{recipient}>")).collect();
        let (mail_reply, recipient_replies, data_reply) = if self.pipelining {
            let mut batch = format!("{mail}\r\n");
            for command in &recipients {
                batch.push_str(command);
                batch.push_str("\r\n");
            }
            batch.push_str("DATA\r\n");
            self.write(batch.as_bytes()).await.map_err(unsent)?;
            let mail_reply = self.reply().await.map_err(unsent)?;
            let mut replies = Vec::with_capacity(recipients.len());
            for _ in &recipients {
                replies.push(self.reply().await.map_err(unsent)?);
            }
            (mail_reply, replies, Some(self.reply().await.map_err(unsent)?))
        } else {
            let mail_reply = self.command(&mail).await.map_err(unsent)?;
            let mut replies = Vec::with_capacity(recipients.len());
            if mail_reply.0 == 250 {
                for command in &recipients {
                    replies.push(self.command(command).await.map_err(unsent)?);
                }
            }
            let any = replies.iter().any(|(code, _)| (200..300).contains(code));
            let data_reply = if any { Some(self.command("DATA").await.map_err(unsent)?) } else { None };
            (mail_reply, replies, data_reply)
        };
        let data_accepted = data_reply.as_ref().is_some_and(|(code, _)| *code == 354);
        let mut refused = Vec::new();
        let mut first_refusal = None;
        for (recipient, (code, text)) in envelope.recipients.iter().zip(&recipient_replies) {
            if !(200..300).contains(code) {
                // For the client, a temporary refusal wins: it sends again, and the permanent
                // ones are refused again then.
                if first_refusal.as_ref().is_none_or(|(first, _)| *first >= 500 && *code < 500) {
                    first_refusal = Some((*code, text.clone()));
                }
                refused.push((recipient.clone(), format!("{code} {text}")));
            }
        }
        let refusal = match (expect(mail_reply, 250), first_refusal) {
            (Err(reply), _) => Some(reply),
            (Ok(()), Some(reply)) if refused.len() == envelope.recipients.len() => expect(reply, 250).err(),
            (Ok(()), _) => data_reply.and_then(|reply| expect(reply, 354).err()),
        };
        if let Some(reply) = refusal {
            if data_accepted {
                // DATA was taken although a command before it failed: only closing the
                // connection ends that transaction without delivering an empty message.
                return Ok(Ended::Reply(Relayed::refusal(reply), false));
            }
            let reusable = self.command("RSET").await.is_ok_and(|(code, _)| code == 250);
            return Ok(Ended::Reply(Relayed::refusal(reply), reusable));
        }
        self.write(data).await.map_err(|error| (error, true))?;
        let reply = self.reply().await.map_err(|error| (error, true))?;
        Ok(match expect(reply.clone(), 250) {
            Ok(()) if refused.is_empty() => {
                Ended::Reply(Relayed::refusal(format!("250 2.0.0 Relayed: {}", reply.1)), true)
            }
            Ok(()) => {
                let taken = envelope.recipients.len() - refused.len();
                let reply =
                    format!("250 2.0.0 Relayed to {taken} of {} recipients: {}", envelope.recipients.len(), reply.1);
                Ended::Reply(Relayed { reply, refused }, true)
            }
            Err(reply) => Ended::Reply(Relayed::refusal(reply), true),
        })
    }
}

/// The message as DATA sends it: a dot doubled at the start of each line (RFC 5321 4.5.2),
/// ended with CRLF `.` CRLF. A message with no line starting with a dot (most) gets its end
/// mark in place, without a copy.
fn dot_stuffed(mut message: Vec<u8>) -> Vec<u8> {
    let mut line_feeds = memchr::memmem::find_iter(&message, b"\n.").peekable();
    if !message.starts_with(b".") && line_feeds.peek().is_none() {
        if !message.ends_with(b"\r\n") {
            message.extend_from_slice(b"\r\n");
        }
        message.extend_from_slice(b".\r\n");
        return message;
    }
    let mut stuffed = Vec::with_capacity(message.len() + 64);
    if message.starts_with(b".") {
        stuffed.push(b'.');
    }
    let mut start = 0;
    for line_feed in line_feeds {
        stuffed.extend_from_slice(&message[start..=line_feed]);
        stuffed.push(b'.');
        start = line_feed + 1;
    }
    stuffed.extend_from_slice(&message[start..]);
    if !stuffed.ends_with(b"\r\n") {
        stuffed.extend_from_slice(b"\r\n");
    }
    stuffed.extend_from_slice(b".\r\n");
    stuffed
}

/// `Ok` when the upstream answered `wanted`; else the reply for the client: the upstream's own
/// for a permanent failure, a 451 for anything else.
fn expect((code, text): (u16, String), wanted: u16) -> Result<(), String> {
    if code == wanted {
        Ok(())
    } else if code >= 500 {
        Err(format!("{code} {text}"))
    } else {
        Err(format!("451 4.4.0 The upstream mail server answered {code} {text}; try again later"))
    }
}

/// A new connection to the upstream, greeted, over TLS when it offers STARTTLS; `Ok(Err(reply))`
/// when it refuses, with the reply for the client.
async fn open(upstream: SocketAddr, hostname: &str) -> std::io::Result<Result<Upstream, String>> {
    let stream = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(upstream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))??;
    let _ = stream.set_nodelay(true);
    let mut plain = Upstream::new(Box::new(stream));
    if let Err(reply) = expect(plain.reply().await?, 220) {
        return Ok(Err(reply));
    }
    let offers_tls = match plain.hello(hostname).await? {
        Ok(offers_tls) => offers_tls,
        Err(reply) => return Ok(Err(reply)),
    };
    if !offers_tls {
        return Ok(Ok(plain));
    }
    if let Err(reply) = expect(plain.command("STARTTLS").await?, 220) {
        return Ok(Err(reply));
    }
    let stream = plain.reader.into_inner().unsplit(plain.writer);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Opportunistic(rustls::crypto::ring::default_provider())))
        .with_no_client_auth();
    let name = ServerName::IpAddress(upstream.ip().into());
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await?;
    let mut secure = Upstream::new(Box::new(stream));
    Ok(secure.hello(hostname).await?.map(|_| secure))
}

/// Relays one prepared message (`data`, as [`dot_stuffed`] sends it) on a pooled connection (or a new one); the reply for the client:
/// the upstream's when it accepted (250) or refused for good (5xx), a 451 when it could not take
/// it now.
async fn relay(
    pool: &UpstreamPool,
    upstream: SocketAddr,
    hostname: &str,
    envelope_from: &str,
    envelope: &Envelope,
    data: &[u8],
) -> std::io::Result<Relayed> {
    loop {
        let (mut connection, pooled) = match pool.take() {
            Some(connection) => (connection, true),
            None => match open(upstream, hostname).await? {
                Ok(connection) => (connection, false),
                Err(reply) => return Ok(Relayed::refusal(reply)),
            },
        };
        match connection.transaction(envelope_from, envelope, data).await {
            Ended::Reply(relayed, reusable) => {
                if reusable {
                    pool.put(connection);
                }
                return Ok(relayed);
            }
            // A pooled connection the upstream had closed meanwhile: nothing was sent; again on
            // another (the pool empties, so this ends with a new connection at the latest).
            Ended::Unused(_) if pooled => continue,
            Ended::Unused(error) => return Err(error),
        }
    }
}

/// Opportunistic TLS towards the upstream: any certificate is taken (the connection is
/// encrypted against eavesdropping, not authenticated), but the handshake's signatures are
/// still checked, so the session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct Opportunistic(rustls::crypto::CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for Opportunistic {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffed_data_reads_back_as_the_message_at_an_independent_receiver() {
        // smtp-proto's DATA reader, which nobody here wrote, removes the stuffing again.
        let read_back = |data: &[u8]| {
            let mut receiver = DataReceiver::new();
            let mut message = Vec::new();
            // The DATA command's CRLF comes first, as in read_message.
            receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
            let mut bytes = data.iter();
            let ended = receiver.ingest(&mut bytes, &mut message);
            (ended, bytes.count(), message)
        };
        let messages: [&[u8]; 6] = [
            b"Subject: a\r\n\r\nbody\r\n",
            b".\r\n",
            b"Subject: b\r\n\r\n.\r\n..two\r\n.three\r\nend",
            b"Subject: c\r\n\r\nline\r\n.",
            b"..\r\n.\r\n\r\n.\r\n",
            b"",
        ];
        for message in messages {
            let stuffed = dot_stuffed(message.to_vec());
            let (ended, left, back) = read_back(&stuffed);
            assert!(
                ended && left == 0,
                "{:?}: the end mark is the data's last bytes",
                String::from_utf8_lossy(message)
            );
            let mut expected = message.to_vec();
            if !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            assert_eq!(String::from_utf8_lossy(&back), String::from_utf8_lossy(&expected));
        }
    }
}
