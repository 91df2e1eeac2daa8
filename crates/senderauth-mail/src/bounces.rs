//! The bounce hosts' SMTP listener: bounces coming back to the envelope senders the gateway
//! gave relayed mail (`b+<account>.<token>@` the platform's bounce domain or a domain's
//! return-path), relayed by the operator's MTA (the bounce hosts' MX points there). RCPT is
//! taken only for a token the platform issued, on the bounce domain or on the return-path of the
//! domain it was issued for: no sink for the world's backscatter. The client's 250 comes only once
//! the bounce is stored (a store failure is a 451, so the sender tries again); a bounce that does
//! not read is kept as received, and the reply says so.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use senderauth_service::Service;
use senderauth_service::bounces::{BounceAddress, TakenBounce};
use senderauth_service::connections::Slots;

use crate::inbound::{Inbound, serve_inbound, single_line};

/// How the bounce listener behaves.
#[derive(Clone, Debug)]
pub struct BounceListenerSettings {
    /// The name in the greeting.
    pub hostname: String,
    /// The platform's bounce domain (mail whose domain has no return-path in use).
    pub bounce_domain: String,
    /// The largest message taken, in bytes.
    pub size_limit: usize,
    /// How long a client may stay silent.
    pub idle: Duration,
    pub slots: Slots,
}

/// Accepts connections until `stopped` turns true.
pub async fn serve_bounces(
    listener: TcpListener,
    service: Service,
    settings: BounceListenerSettings,
    stopped: watch::Receiver<bool>,
) {
    let (idle, slots) = (settings.idle, settings.slots.clone());
    serve_inbound(listener, BounceHosts { service, settings }, "bounces", idle, slots, stopped).await;
}

#[derive(Clone)]
struct BounceHosts {
    service: Service,
    settings: BounceListenerSettings,
}

impl Inbound for BounceHosts {
    type Recipient = BounceAddress;

    fn hostname(&self) -> &str {
        &self.settings.hostname
    }

    fn banner(&self) -> &'static str {
        "ESMTP senderauth bounces"
    }

    fn size_limit(&self) -> usize {
        self.settings.size_limit
    }

    async fn recipient(&self, address: String) -> Result<BounceAddress, String> {
        match self.service.bounce_address(&address, &self.settings.bounce_domain).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(format!(
                "550 5.1.1 <{}>: no such address here; this server takes only bounces of mail the platform sent",
                single_line(&address)
            )),
            Err(error) => {
                tracing::error!(%error, "a bounce address could not be checked");
                Err("451 4.3.0 The address could not be checked now; try again later".to_string())
            }
        }
    }

    async fn message(&self, recipients: Vec<BounceAddress>, message: Vec<u8>, peer: SocketAddr) -> String {
        let mut said = Vec::new();
        for address in &recipients {
            match self.service.take_bounce(address, &message).await {
                Ok(TakenBounce::Read { recipients: 0, .. }) => {
                    said.push("a notification without failures, nothing recorded".to_string())
                }
                Ok(TakenBounce::Read { recipients, hard }) => {
                    said.push(format!("bounce recorded: {recipients} recipient(s), {hard} hard"))
                }
                Ok(TakenBounce::Unreadable { reason }) => {
                    said.push(format!("kept as received, it did not read as a bounce: {}", single_line(&reason)))
                }
                Err(error) => {
                    tracing::error!(%peer, %error, "a bounce could not be stored");
                    return "451 4.3.0 The bounce could not be stored now; try again later".to_string();
                }
            }
        }
        let reply = format!("250 2.0.0 {}", said.join("; "));
        tracing::info!(%peer, %reply, "bounce message");
        reply
    }
}
