//! The report address's SMTP listener: receivers' DMARC aggregate reports (and the failure and TLS
//! reports sent to the same address, recognized and kept as such), relayed by the
//! operator's MTA (the report host's MX points there). Mail only to the configured report
//! addresses; the client's 250 comes only once the reports in the message are stored (a store
//! failure is a 451, so the sender tries again and nothing is lost); every refusal carries its
//! enhanced status code.

use std::net::SocketAddr;
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use senderauth_core::mailbox::smtp_path;
use senderauth_service::connections::Slots;
use senderauth_service::feedback::Taken;
use senderauth_service::reports::ReportSource;
use senderauth_service::{Service, ServiceError};

use crate::message::line_ending_fault;
use crate::smtp::{Wire, accept};

/// How the report listener behaves.
#[derive(Clone, Debug)]
pub struct ReportListenerSettings {
    /// The name in the greeting.
    pub hostname: String,
    /// The addresses mail is taken for (lowercase).
    pub addresses: Vec<String>,
    /// The largest message taken, in bytes.
    pub size_limit: usize,
    /// How long a client may stay silent.
    pub idle: Duration,
    pub slots: Slots,
}

/// Accepts connections until `stopped` turns true.
pub async fn serve_reports(
    listener: TcpListener,
    service: Service,
    settings: ReportListenerSettings,
    stopped: watch::Receiver<bool>,
) {
    let slots = settings.slots.clone();
    accept(listener, slots, "reports", stopped, move |stream, peer, slot| {
        let session = ReportSession {
            wire: Wire::new(stream, settings.idle, slot),
            peer,
            service: service.clone(),
            settings: settings.clone(),
            mail: false,
            recipients: 0,
        };
        async move {
            if let Err(error) = session.run().await {
                tracing::debug!(%peer, %error, "report SMTP session ended");
            }
        }
    })
    .await;
}

struct ReportSession<S> {
    wire: Wire<S>,
    peer: SocketAddr,
    service: Service,
    settings: ReportListenerSettings,
    /// MAIL was given.
    mail: bool,
    /// Recipients taken for this message.
    recipients: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReportSession<S> {
    async fn run(mut self) -> std::io::Result<()> {
        let greeting = format!("220 {} ESMTP senderauth DMARC reports", self.settings.hostname);
        self.wire.reply(&greeting).await?;
        while !self.wire.closing {
            let Some(line) = self.wire.command().await? else { return Ok(()) };
            match Request::parse(&mut line.iter()) {
                Ok(Request::Ehlo { .. }) => {
                    self.reset();
                    let text = format!(
                        "250-{}\r\n250-SIZE {}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                        self.settings.hostname, self.settings.size_limit
                    );
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Helo { .. }) => {
                    self.reset();
                    let text = format!("250 {}", self.settings.hostname);
                    self.wire.reply(&text).await?;
                }
                Ok(Request::Mail { from }) => {
                    if self.mail {
                        self.wire.reply("503 5.5.1 Nested MAIL command").await?;
                    } else if from.size > self.settings.size_limit {
                        let text = format!("552 5.3.4 Message size exceeds the limit of {}", self.settings.size_limit);
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
                        Some(address) if self.settings.addresses.contains(&address) => {
                            self.recipients += 1;
                            "250 2.1.5 OK".to_string()
                        }
                        Some(address) => format!(
                            "550 5.1.1 <{address}>: no such mailbox here; this server takes DMARC reports for {}",
                            self.settings.addresses.join(", ")
                        ),
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
        self.recipients = 0;
    }

    async fn data(&mut self) -> std::io::Result<()> {
        if !self.mail {
            return self.wire.reply("503 5.5.1 MAIL first").await;
        }
        if self.recipients == 0 {
            return self.wire.reply("554 5.5.1 No valid recipients").await;
        }
        let message = self.wire.message(self.settings.size_limit).await?;
        self.reset();
        let Some(message) = message else { return Ok(()) };
        if let Some(fault) = line_ending_fault(&message) {
            let text = format!("521 5.5.2 {fault}; closing the connection");
            return self.wire.last_reply(&text).await;
        }
        let reply = match self.service.take_report_message(message, ReportSource::Smtp).await {
            Ok(Taken::Failure { domain, .. }) => {
                format!(
                    "250 2.0.0 Failure report about {} taken (headers only, redacted, kept 7 days)",
                    single_line(&domain)
                )
            }
            Ok(Taken::Tls { duplicate, .. }) => {
                format!("250 2.0.0 TLS report taken{}", if duplicate { ", already stored" } else { "" })
            }
            Ok(Taken::Aggregate(ingested)) if !ingested.reports.is_empty() => {
                let copies = ingested.reports.iter().filter(|report| report.duplicate).count();
                let mut text = format!("250 2.0.0 {} report(s) taken", ingested.reports.len());
                if copies > 0 {
                    text.push_str(&format!(", {copies} of them already stored"));
                }
                if !ingested.refused.is_empty() {
                    text.push_str(&format!(", {} part(s) not read", ingested.refused.len()));
                }
                text
            }
            Ok(Taken::Aggregate(ingested)) => {
                let reasons: Vec<String> = ingested.refused.iter().map(|refused| refused.error.clone()).collect();
                format!("550 5.6.0 No DMARC aggregate report could be read: {}", single_line(&reasons.join("; ")))
            }
            Err(ServiceError::InvalidReport(reason)) => {
                format!("550 5.6.0 No DMARC aggregate report in the message: {}", single_line(&reason))
            }
            Err(error) => {
                tracing::error!(peer = %self.peer, %error, "a DMARC report could not be stored");
                "451 4.3.0 The report could not be stored now; try again later".to_string()
            }
        };
        tracing::info!(peer = %self.peer, %reply, "DMARC report message");
        self.wire.reply(&reply).await
    }
}

/// A reason as one short line of an SMTP reply.
fn single_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.chars().take(300).collect()
}
