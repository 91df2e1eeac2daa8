//! IMAP pull of the DMARC report mailbox, for operators whose report address delivers to a
//! mailbox elsewhere: every `interval`, the messages in `mailbox` are taken one at a time
//! (IMAPS, or STARTTLS before logging in: never in the clear), handed to the service like mail
//! at the report listener, and moved: to `processed` once their reports are stored, to
//! `unreadable` when they hold no report (kept there, never deleted, and logged). When the store
//! fails, the message stays where it is and the round ends: it is taken again next time.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt;
use rustls::pki_types::ServerName;
use senderauth_service::Service;
use senderauth_service::config::ImapSecurity;
use senderauth_service::feedback::Taken;
use senderauth_service::reports::ReportSource;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Where the report mailbox is and how to reach it.
#[derive(Clone)]
pub struct ImapSettings {
    /// The server's host name (checked against its certificate) and port.
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    pub password: String,
    pub mailbox: String,
    pub processed: String,
    pub unreadable: String,
    pub interval: Duration,
    /// The largest message taken, in bytes (larger ones go to `unreadable`).
    pub size_limit: usize,
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        formatter
            .debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("mailbox", &self.mailbox)
            .finish_non_exhaustive()
    }
}

/// Why a round stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("connecting to {server}: {source}")]
    Connect { server: String, source: std::io::Error },
    #[error("TLS with {server}: {reason}")]
    Tls { server: String, reason: String },
    #[error("the server refused the login of {username}: {reason}")]
    Login { username: String, reason: String },
    #[error("IMAP: {0}")]
    Protocol(String),
    #[error("the reports could not be stored now ({0}); the message stays in the mailbox")]
    Store(String),
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Messages whose reports were stored (or that were copies of stored ones).
    pub taken: usize,
    /// Messages with no report, moved to the unreadable folder.
    pub unreadable: usize,
}

/// Messages taken per round (the rest wait for the next).
const PER_ROUND: usize = 200;

fn protocol(error: async_imap::error::Error) -> ImapError {
    ImapError::Protocol(error.to_string())
}

/// A TLS client configuration trusting the system's roots and the certificates in `extra_pem`
/// (a private CA).
pub fn tls_client_config(extra_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_pem {
        use rustls::pki_types::pem::PemObject;
        let certificates: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|error| format!("the CA file holds no PEM certificates: {error}"))?;
        if certificates.is_empty() {
            return Err("the CA file holds no PEM certificates".to_string());
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| format!("a certificate of the CA file: {error}"))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects, secures and logs in.
async fn open(settings: &ImapSettings) -> Result<Session<TlsStream<TcpStream>>, ImapError> {
    let server = format!("{}:{}", settings.host, settings.port);
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .map_err(|source| ImapError::Connect { server: server.clone(), source })?;
    let tls_error = |reason: String| ImapError::Tls { server: server.clone(), reason };
    let name = ServerName::try_from(settings.host.clone()).map_err(|error| tls_error(error.to_string()))?;
    let connector = TlsConnector::from(settings.tls.clone());
    let tls = match settings.security {
        ImapSecurity::Tls => connector.connect(name, tcp).await.map_err(|error| tls_error(error.to_string()))?,
        ImapSecurity::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            client.read_response().await.map_err(|error| tls_error(error.to_string()))?;
            client.run_command_and_check_ok("STARTTLS", None).await.map_err(|error| {
                tls_error(format!("the server did not take STARTTLS ({error}); senderauth never logs in in the clear"))
            })?;
            connector.connect(name, client.into_inner()).await.map_err(|error| tls_error(error.to_string()))?
        }
    };
    let mut client = async_imap::Client::new(tls);
    if settings.security == ImapSecurity::Tls {
        client.read_response().await.map_err(|error| tls_error(error.to_string()))?;
    }
    client
        .login(&settings.username, &settings.password)
        .await
        .map_err(|(error, _)| ImapError::Login { username: settings.username.clone(), reason: error.to_string() })
}

/// One round: every message in the mailbox (up to `PER_ROUND`) taken and moved.
pub async fn pull_once(service: &Service, settings: &ImapSettings) -> Result<Pulled, ImapError> {
    let mut session = open(settings).await?;
    for folder in [&settings.processed, &settings.unreadable] {
        // Made once; "already exists" is what every later round hears.
        let _ = session.create(folder).await;
    }
    let can_move = session.capabilities().await.map_err(protocol)?.has_str("MOVE");
    session.select(&settings.mailbox).await.map_err(protocol)?;
    let mut uids: Vec<u32> = session.uid_search("ALL").await.map_err(protocol)?.into_iter().collect();
    uids.sort_unstable();
    let mut pulled = Pulled::default();
    let mut outcome = Ok(());
    for uid in uids.into_iter().take(PER_ROUND) {
        let uid_text = uid.to_string();
        let size: Option<u32> = {
            let fetched: Vec<_> = session
                .uid_fetch(&uid_text, "RFC822.SIZE")
                .await
                .map_err(protocol)?
                .try_collect()
                .await
                .map_err(protocol)?;
            fetched.first().and_then(|fetch| fetch.size)
        };
        // Whether its reports were stored (else it goes aside, kept).
        let taken = if size.is_some_and(|size| size as usize > settings.size_limit) {
            tracing::warn!(
                uid,
                size,
                limit = settings.size_limit,
                "a report mailbox message is too large; moved aside"
            );
            false
        } else {
            let fetched: Vec<_> = session
                .uid_fetch(&uid_text, "BODY.PEEK[]")
                .await
                .map_err(protocol)?
                .try_collect()
                .await
                .map_err(protocol)?;
            let Some(message) = fetched.first().and_then(|fetch| fetch.body()).map(<[u8]>::to_vec) else {
                continue;
            };
            match service.take_report_message(message, ReportSource::Imap).await {
                Ok(Taken::Aggregate(ingested)) if ingested.reports.is_empty() => {
                    let reasons: Vec<String> = ingested.refused.iter().map(|refused| refused.error.clone()).collect();
                    tracing::warn!(uid, reasons = %reasons.join("; "), "a report mailbox message holds no report that reads; moved aside");
                    false
                }
                Ok(_) => true,
                Err(senderauth_service::ServiceError::InvalidReport(reason)) => {
                    tracing::warn!(uid, %reason, "a report mailbox message holds no report; moved aside");
                    false
                }
                Err(error) => {
                    outcome = Err(ImapError::Store(error.to_string()));
                    break;
                }
            }
        };
        let destination = if taken {
            pulled.taken += 1;
            &settings.processed
        } else {
            pulled.unreadable += 1;
            &settings.unreadable
        };
        if can_move {
            session.uid_mv(&uid_text, destination).await.map_err(protocol)?;
        } else {
            session.uid_copy(&uid_text, destination).await.map_err(protocol)?;
            let _: Vec<_> = session
                .uid_store(&uid_text, "+FLAGS.SILENT (\\Deleted)")
                .await
                .map_err(protocol)?
                .try_collect()
                .await
                .map_err(protocol)?;
            let _: Vec<_> = session.expunge().await.map_err(protocol)?.try_collect().await.map_err(protocol)?;
        }
    }
    let _ = session.logout().await;
    outcome.map(|()| pulled)
}

/// Pulls every `interval` until `stopped`.
pub async fn run_pull(service: Service, settings: ImapSettings, mut stopped: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(settings.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                match pull_once(&service, &settings).await {
                    Ok(Pulled { taken: 0, unreadable: 0 }) => {}
                    Ok(pulled) => tracing::info!(taken = pulled.taken, unreadable = pulled.unreadable, "report mailbox pulled"),
                    Err(error) => tracing::warn!(%error, "pulling the report mailbox failed; trying again next time"),
                }
            }
            _ = stopped.changed() => break,
        }
    }
}
