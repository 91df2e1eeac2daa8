//! The report address's SMTP listener: receivers' DMARC aggregate reports (and the failure and TLS
//! reports sent to the same address, recognized and kept as such), relayed by the
//! operator's MTA (the report host's MX points there). Mail only to the configured report
//! addresses; the client's 250 comes only once the reports in the message are stored (a store
//! failure is a 451, so the sender tries again and nothing is lost); every refusal carries its
//! enhanced status code.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use senderauth_service::connections::Slots;
use senderauth_service::feedback::Taken;
use senderauth_service::reports::ReportSource;
use senderauth_service::{Service, ServiceError};

use crate::inbound::{Inbound, serve_inbound, single_line};

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
    let (idle, slots) = (settings.idle, settings.slots.clone());
    serve_inbound(listener, ReportAddress { service, settings }, "reports", idle, slots, stopped).await;
}

/// The report address as an inbound listener.
#[derive(Clone)]
struct ReportAddress {
    service: Service,
    settings: ReportListenerSettings,
}

impl Inbound for ReportAddress {
    type Recipient = ();

    fn hostname(&self) -> &str {
        &self.settings.hostname
    }

    fn banner(&self) -> &'static str {
        "ESMTP senderauth DMARC reports"
    }

    fn size_limit(&self) -> usize {
        self.settings.size_limit
    }

    async fn recipient(&self, address: String) -> Result<(), String> {
        if self.settings.addresses.contains(&address) {
            Ok(())
        } else {
            Err(format!(
                "550 5.1.1 <{address}>: no such mailbox here; this server takes DMARC reports for {}",
                self.settings.addresses.join(", ")
            ))
        }
    }

    async fn message(&self, _: Vec<()>, message: Vec<u8>, peer: SocketAddr) -> String {
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
                tracing::error!(peer = %peer, %error, "a DMARC report could not be stored");
                "451 4.3.0 The report could not be stored now; try again later".to_string()
            }
        };
        tracing::info!(%peer, %reply, "DMARC report message");
        reply
    }
}
