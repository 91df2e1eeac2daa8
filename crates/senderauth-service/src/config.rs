//! The service's configuration: the `[service]` table and the provider's keys in one TOML file,
//! with `SENDERAUTH_*` environment variables over it. Every key has a default that works on a
//! fresh machine (`config/service.example.toml` documents them, a test keeps it true).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use senderauth_core::config::{ConfigError, ProviderConfig};
use senderauth_core::dkim::key::KeyAlgorithm;
use senderauth_core::lifecycle::LifecycleConfig;
use senderauth_store::{Store, StoreError};
use serde::Deserialize;

use crate::keys::{KeyError, KeyMaker, MasterKeys};
use crate::rotation::RotationPolicy;
use crate::webhooks::delivery::Targets;

/// The largest message the gateway takes by default, in bytes (Postfix's default
/// `message_size_limit`).
pub const DEFAULT_MESSAGE_SIZE_LIMIT: usize = 10_240_000;

/// The `[service]` table of the configuration file, with its subtables `[service.worker]`,
/// `[service.dns]`, `[service.keys]` and `[service.smtp]`. Every key has a default that works
/// on a fresh machine.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Open HTTP connections at most; at the cap, the one silent longest makes room.
    pub max_connections: usize,
    /// How long a client may take to send a request's header, and how long an HTTP connection
    /// may stay open between requests, in seconds.
    pub header_timeout_seconds: u64,
    /// The API and UI are reached over HTTPS, TLS terminated in front of the service (the
    /// service itself speaks plain HTTP): the UI's cookies are marked Secure.
    pub https: bool,
    /// Where the SQLite database and the generated admin token live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; unset: `sqlite://<data_dir>/senderauth.db`.
    pub database_url: Option<String>,
    /// Database connections for requests (and as many again for the background work); unset:
    /// twice the cores, at least 4.
    pub database_connections: Option<u32>,
    /// An admin token to accept (also `SENDERAUTH_ADMIN_TOKEN`); unset: one is generated on the
    /// first start and written to `<data_dir>/admin-token`.
    pub admin_token: Option<String>,
    /// This node's name in check leases; unset: host name and process id.
    pub node: Option<String>,
    /// The domain limit of accounts created without one; unset: no limit.
    pub default_domain_limit: Option<i64>,
    /// Whether webhook URLs may reach private, loopback and other non-public addresses.
    pub webhook_private_targets: bool,
    /// A file of master keys (`ID:BASE64` lines, the first one current) sealing the DKIM private
    /// keys; `SENDERAUTH_MASTER_KEY` (the same text) wins over it. Unset: `<data_dir>/master-key`,
    /// created on the first start.
    pub master_key_file: Option<PathBuf>,
    /// Demo mode: the embedded DNS server also hosts sandbox customer zones (edited at
    /// /ui/sandbox) and the verifier asks only it; a demo account's token is written to
    /// `<data_dir>/demo-token`.
    pub demo: bool,
    pub worker: WorkerConfig,
    pub dns: DnsConfig,
    pub keys: KeysConfig,
    pub smtp: SmtpConfig,
    pub reports: ReportsConfig,
    pub bounces: BouncesConfig,
    pub ui: UiConfig,
}

/// `[service.worker]`: the background verifier.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Domains a worker claims per round, and checks running at once.
    pub batch: i64,
    pub concurrency: usize,
    /// How long a node holds a claimed domain; after a crash, its domains are checked again by
    /// any node once this has passed.
    pub lease_seconds: u64,
    /// How long a new domain is checked before it is `failed`, in hours.
    pub setup_window_hours: u64,
    /// How often verified and partially verified domains are rechecked, in hours.
    pub recheck_interval_hours: u64,
    /// Consecutive failed checks before a verified domain drops to `temporary_failure`.
    pub failures_before_degraded: u32,
    /// How long a domain may stay in `temporary_failure` before it is `failed`, in hours.
    pub degraded_window_hours: u64,
}

/// `[service.dns]`: the platform's zone as the embedded server serves it, and pushes to an
/// external primary.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Where the embedded DNS server answers for the platform's zone (UDP and TCP); empty: no
    /// server (the zone is then served by an external primary, see `senderauth zone export`).
    pub listen: Vec<SocketAddr>,
    /// The zone's NS host names; empty: `ns1.<zone>`.
    pub nameservers: Vec<String>,
    /// The zone's SOA mailbox as a name; unset: `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// TTL of the zone's records, in seconds (a rotated key signs only after this has passed).
    pub ttl: u32,
    /// The DMARC record published for the variable domain.
    pub variable_domain_dmarc: String,
    /// An external primary to push the zone's changes to (RFC 2136 dynamic updates, TCP);
    /// unset: none. Set it on one node.
    pub update_primary: Option<SocketAddr>,
    /// The TSIG key (HMAC-SHA256) the updates are signed with: its name and its secret in base64.
    pub update_key_name: Option<String>,
    pub update_key_secret: Option<String>,
}

/// `[service.keys]`: the DKIM keys the platform makes, hosts and rotates.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The algorithm of new DKIM keys: rsa-2048, rsa-3072, rsa-4096 or ed25519.
    pub algorithm: String,
    /// How long a DKIM key signs before its domain is rotated, in days.
    pub rotation_days: u64,
    /// How long a new key is published beyond the TTL before it signs, in seconds.
    pub publish_margin_seconds: u64,
    /// How long a rotated-out key stays published for mail in transit, in days.
    pub grace_days: u64,
    /// The DKIM selectors of the variable domain's own keys (made on the first start, rotated
    /// like a domain's).
    pub variable_domain_selectors: [String; 2],
}

/// `[service.smtp]`: the sending gateway.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Where the SMTP gateway listens; unset: no SMTP listener.
    pub listen: Option<SocketAddr>,
    /// The upstream MTA (smarthost) relayed mail goes to; unset: messages get a 451.
    pub upstream: Option<SocketAddr>,
    /// The gateway's name in its greeting; unset: `mail.<zone>`.
    pub hostname: Option<String>,
    /// The largest message the sending gateway takes, in bytes.
    pub message_size_limit: usize,
    /// The domain of relayed mail's envelope senders (where bounces go); unset:
    /// `bounces.<zone>`, whose SPF record the embedded DNS server publishes.
    pub bounce_domain: Option<String>,
    /// How long an SMTP client may stay silent, in seconds.
    pub idle_seconds: u64,
    /// Open SMTP sessions at most; at the cap, the one silent longest makes room.
    pub max_connections: usize,
    /// Failed AUTH attempts after which an SMTP session is closed.
    pub auth_failures: u32,
    /// How long each failed AUTH attempt waits before its reply, in milliseconds.
    pub auth_failure_delay_ms: u64,
    /// The PEM certificate chain and private key STARTTLS presents; unset: no STARTTLS (and
    /// AUTH only for clients on loopback).
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `[service.reports]`: the SMTP listener of the DMARC report address.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Where it listens (the report host's MX points there through the operator's MTA); unset:
    /// no report listener.
    pub listen: Option<SocketAddr>,
    /// The name in its greeting; unset: the report address's domain.
    pub hostname: Option<String>,
    /// The largest report message taken, in bytes.
    pub message_size_limit: usize,
    /// Open sessions at most.
    pub max_connections: usize,
    /// The way to enforcement: messages reported over 14 days below which nothing is judged.
    pub min_messages: i64,
    /// The share of mail passing DMARC over 14 days that makes a domain ready for quarantine.
    pub quarantine_pass_share: f64,
    /// The share over 30 days that makes a domain at quarantine ready for reject.
    pub reject_pass_share: f64,
    /// `[service.reports.imap]`: a mailbox elsewhere to pull reports from; unset: none.
    pub imap: Option<ImapConfig>,
}

/// `[service.reports.imap]`: the report mailbox pulled over IMAP (IMAPS or STARTTLS; never in
/// the clear).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// `host:port` of the IMAP server (the host is checked against its certificate).
    pub server: String,
    /// `tls` (IMAPS, the default) or `starttls`.
    #[serde(default)]
    pub security: ImapSecurity,
    pub username: String,
    /// A file holding the password (only the password; the configuration never holds it).
    pub password_file: PathBuf,
    /// PEM certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The folder the reports arrive in.
    #[serde(default = "default_imap_mailbox")]
    pub mailbox: String,
    /// Where messages go once their reports are stored.
    #[serde(default = "default_imap_processed")]
    pub processed_folder: String,
    /// Where messages that hold no report go (kept, never deleted).
    #[serde(default = "default_imap_unreadable")]
    pub unreadable_folder: String,
    /// Seconds between two pulls.
    #[serde(default = "default_imap_interval")]
    pub interval_seconds: u64,
}

/// How the IMAP connection is secured; never in the clear.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// TLS from the first byte (IMAPS, usually port 993).
    #[default]
    Tls,
    /// STARTTLS before anything else is said (usually port 143).
    Starttls,
}

fn default_imap_mailbox() -> String {
    "INBOX".to_string()
}
fn default_imap_processed() -> String {
    "senderauth-processed".to_string()
}
fn default_imap_unreadable() -> String {
    "senderauth-unreadable".to_string()
}
fn default_imap_interval() -> u64 {
    300
}

/// `[service.bounces]`: the SMTP listener of the bounce hosts, where bounces to the envelope
/// senders the gateway gave come back.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BouncesConfig {
    /// Where it listens (the bounce hosts' MX points there through the operator's MTA); unset:
    /// no bounce listener.
    pub listen: Option<SocketAddr>,
    /// The name in its greeting; unset: the first bounce host.
    pub hostname: Option<String>,
    /// The largest bounce taken, in bytes (a bounce may carry the whole returned message).
    pub message_size_limit: usize,
    /// Open sessions at most.
    pub max_connections: usize,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 2527))),
            hostname: None,
            message_size_limit: 10 << 20,
            max_connections: 64,
        }
    }
}

impl Default for ReportsConfig {
    fn default() -> Self {
        let thresholds = crate::reports::EnforcementThresholds::default();
        ReportsConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 2526))),
            hostname: None,
            message_size_limit: 64 << 20,
            max_connections: 64,
            min_messages: thresholds.min_messages,
            quarantine_pass_share: thresholds.quarantine_share,
            reject_pass_share: thresholds.reject_share,
            imap: None,
        }
    }
}

impl ReportsConfig {
    /// The way to enforcement's thresholds.
    pub fn enforcement(&self) -> crate::reports::EnforcementThresholds {
        crate::reports::EnforcementThresholds {
            min_messages: self.min_messages.max(1),
            quarantine_share: self.quarantine_pass_share.clamp(0.0, 1.0),
            reject_share: self.reject_pass_share.clamp(0.0, 1.0),
        }
    }
}

/// `[service.ui]`: what customers see of the operator in the web UI (white label). Unset keys
/// show senderauth's own name and colours.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The product's name, in the header and every page title; unset: senderauth.
    pub product_name: Option<String>,
    /// An SVG, PNG, JPEG or WebP file shown in the header instead of the name (at most 256 KiB,
    /// served from the service itself).
    pub logo_file: Option<PathBuf>,
    /// The accent colour of links and buttons, `#rrggbb`, dark enough for white text on it
    /// (WCAG AA, 4.5:1).
    pub accent: Option<String>,
    /// Where customers get help: an `https://` or `mailto:` URL, linked on every page.
    pub support_url: Option<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 1024,
            header_timeout_seconds: 30,
            https: false,
            data_dir: PathBuf::from("senderauth-data"),
            database_url: None,
            database_connections: None,
            admin_token: None,
            node: None,
            default_domain_limit: None,
            webhook_private_targets: false,
            master_key_file: None,
            demo: false,
            worker: WorkerConfig::default(),
            dns: DnsConfig::default(),
            keys: KeysConfig::default(),
            smtp: SmtpConfig::default(),
            reports: ReportsConfig::default(),
            bounces: BouncesConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 200,
            concurrency: 64,
            lease_seconds: 120,
            setup_window_hours: 72,
            recheck_interval_hours: 24,
            failures_before_degraded: 3,
            degraded_window_hours: 72,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            nameservers: Vec::new(),
            hostmaster: None,
            ttl: 3600,
            variable_domain_dmarc: "v=DMARC1; p=reject;".to_string(),
            update_primary: None,
            update_key_name: None,
            update_key_secret: None,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            algorithm: "rsa-2048".to_string(),
            rotation_days: 180,
            publish_margin_seconds: 3600,
            grace_days: 7,
            variable_domain_selectors: ["sa1".to_string(), "sa2".to_string()],
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 2525))),
            upstream: None,
            hostname: None,
            message_size_limit: DEFAULT_MESSAGE_SIZE_LIMIT,
            bounce_domain: None,
            idle_seconds: 300,
            max_connections: 1024,
            auth_failures: 10,
            auth_failure_delay_ms: 1000,
            tls_certificate: None,
            tls_key: None,
        }
    }
}

/// Everything `serve` is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub service: ServiceConfig,
    pub provider: ProviderConfig,
}

impl ServiceConfig {
    /// When rotated DKIM keys move on.
    pub fn rotation(&self) -> RotationPolicy {
        let days = |value: u64| (value.max(1) * 86_400) as i64;
        RotationPolicy {
            interval: days(self.keys.rotation_days),
            activation_delay: i64::from(self.dns.ttl) + self.keys.publish_margin_seconds as i64,
            grace: days(self.keys.grace_days),
        }
    }

    /// Where webhooks may be sent.
    pub fn webhook_targets(&self) -> Targets {
        if self.webhook_private_targets { Targets::Any } else { Targets::PublicOnly }
    }

    /// The lifecycle's timing from these settings (the rest keeps its defaults).
    pub fn lifecycle(&self) -> LifecycleConfig {
        let hours = |value: u64| Duration::from_secs(value.max(1) * 3600);
        LifecycleConfig {
            setup_window: hours(self.worker.setup_window_hours),
            monitor_interval: hours(self.worker.recheck_interval_hours),
            failures_before_degraded: self.worker.failures_before_degraded.max(1),
            degraded_window: hours(self.worker.degraded_window_hours),
            ..LifecycleConfig::default()
        }
    }
}

/// Every key of the configuration file: its table (`""` for the top level), its name, and
/// whether its value is text. `SENDERAUTH_<KEY>` overrides a key at the top level or in
/// `[service]`, `SENDERAUTH_<TABLE>_<KEY>` one in another table: text as it is, anything else
/// written as in TOML (`SENDERAUTH_WORKER_BATCH=100`, `SENDERAUTH_SENDING_IPS='["192.0.2.1"]'`).
pub const SETTING_KEYS: &[(&str, &str, bool)] = &[
    ("service", "listen", true),
    ("service", "max_connections", false),
    ("service", "header_timeout_seconds", false),
    ("service", "https", false),
    ("service", "data_dir", true),
    ("service", "database_url", true),
    ("service", "database_connections", false),
    ("service", "admin_token", true),
    ("service", "node", true),
    ("service", "default_domain_limit", false),
    ("service", "webhook_private_targets", false),
    ("service", "master_key_file", true),
    ("service", "demo", false),
    ("service.worker", "batch", false),
    ("service.worker", "concurrency", false),
    ("service.worker", "lease_seconds", false),
    ("service.worker", "setup_window_hours", false),
    ("service.worker", "recheck_interval_hours", false),
    ("service.worker", "failures_before_degraded", false),
    ("service.worker", "degraded_window_hours", false),
    ("service.dns", "listen", false),
    ("service.dns", "nameservers", false),
    ("service.dns", "hostmaster", true),
    ("service.dns", "ttl", false),
    ("service.dns", "variable_domain_dmarc", true),
    ("service.dns", "update_primary", true),
    ("service.dns", "update_key_name", true),
    ("service.dns", "update_key_secret", true),
    ("service.keys", "algorithm", true),
    ("service.keys", "rotation_days", false),
    ("service.keys", "publish_margin_seconds", false),
    ("service.keys", "grace_days", false),
    ("service.keys", "variable_domain_selectors", false),
    ("service.smtp", "listen", true),
    ("service.smtp", "upstream", true),
    ("service.smtp", "hostname", true),
    ("service.smtp", "message_size_limit", false),
    ("service.smtp", "bounce_domain", true),
    ("service.smtp", "idle_seconds", false),
    ("service.smtp", "max_connections", false),
    ("service.smtp", "auth_failures", false),
    ("service.smtp", "auth_failure_delay_ms", false),
    ("service.smtp", "tls_certificate", true),
    ("service.smtp", "tls_key", true),
    ("service.reports", "listen", true),
    ("service.reports", "hostname", true),
    ("service.reports", "message_size_limit", false),
    ("service.reports", "max_connections", false),
    ("service.reports", "min_messages", false),
    ("service.reports", "quarantine_pass_share", false),
    ("service.reports", "reject_pass_share", false),
    ("service.bounces", "listen", true),
    ("service.bounces", "hostname", true),
    ("service.bounces", "message_size_limit", false),
    ("service.bounces", "max_connections", false),
    ("service.ui", "product_name", true),
    ("service.ui", "logo_file", true),
    ("service.ui", "accent", true),
    ("service.ui", "support_url", true),
    ("", "zone", true),
    ("", "variable_domain", true),
    ("", "sending_ips", false),
    ("", "reserved_domains", false),
    ("", "mailbox_providers", false),
    ("dkim", "selectors", false),
    ("dkim", "target", true),
    ("spf", "include", true),
    ("spf", "all", true),
    ("dmarc", "record", true),
    ("dmarc", "reports", true),
    ("resolver", "nameserver", true),
    ("resolver", "timeout_ms", false),
    ("resolver", "attempts", false),
    ("resolver", "concurrency", false),
];

/// Keys of the flat `[service]` table of earlier versions and where each lives now, so an old
/// file gets a message saying where to move a key rather than only "unknown field".
const MOVED_KEYS: &[(&str, &str)] = &[
    ("worker_batch", "[service.worker] batch"),
    ("worker_concurrency", "[service.worker] concurrency"),
    ("lease_seconds", "[service.worker] lease_seconds"),
    ("setup_window_hours", "[service.worker] setup_window_hours"),
    ("recheck_interval_hours", "[service.worker] recheck_interval_hours"),
    ("failures_before_degraded", "[service.worker] failures_before_degraded"),
    ("degraded_window_hours", "[service.worker] degraded_window_hours"),
    ("dns_listen", "[service.dns] listen"),
    ("dns_nameservers", "[service.dns] nameservers"),
    ("dns_hostmaster", "[service.dns] hostmaster"),
    ("dns_ttl", "[service.dns] ttl"),
    ("variable_domain_dmarc", "[service.dns] variable_domain_dmarc"),
    ("dns_update_primary", "[service.dns] update_primary"),
    ("dns_update_key_name", "[service.dns] update_key_name"),
    ("dns_update_key_secret", "[service.dns] update_key_secret"),
    ("dkim_algorithm", "[service.keys] algorithm"),
    ("dkim_rotation_days", "[service.keys] rotation_days"),
    ("dkim_publish_margin_seconds", "[service.keys] publish_margin_seconds"),
    ("dkim_grace_days", "[service.keys] grace_days"),
    ("variable_domain_selectors", "[service.keys] variable_domain_selectors"),
    ("smtp_listen", "[service.smtp] listen"),
    ("smtp_upstream", "[service.smtp] upstream"),
    ("smtp_hostname", "[service.smtp] hostname"),
    ("message_size_limit", "[service.smtp] message_size_limit"),
    ("bounce_domain", "[service.smtp] bounce_domain"),
    ("smtp_idle_seconds", "[service.smtp] idle_seconds"),
    ("smtp_tls_certificate", "[service.smtp] tls_certificate"),
    ("smtp_tls_key", "[service.smtp] tls_key"),
];

/// The environment variable that overrides a key of [`SETTING_KEYS`].
pub fn setting_variable(table: &str, key: &str) -> String {
    let table = table.strip_prefix("service").map_or(table, |rest| rest.trim_start_matches('.'));
    match table {
        "" => format!("SENDERAUTH_{}", key.to_uppercase()),
        _ => format!("SENDERAUTH_{}_{}", table.to_uppercase(), key.to_uppercase()),
    }
}

/// Puts the values of the `SENDERAUTH_*` variables `lookup` finds into `table` (a whole
/// configuration file's); returns the names of those it found.
fn apply_environment(
    table: &mut toml::Table,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    for &(section, key, text) in SETTING_KEYS {
        let variable = setting_variable(section, key);
        // An empty variable counts as unset; surrounding whitespace (a token read from a file
        // with its newline) is not part of the value.
        let Some(raw) = lookup(&variable).map(|raw| raw.trim().to_string()).filter(|raw| !raw.is_empty()) else {
            continue;
        };
        let value = if text {
            toml::Value::String(raw)
        } else {
            let parsed: toml::Table =
                toml::from_str(&format!("value = {raw}")).map_err(|error| ConfigError::Parse {
                    path: "the environment".to_string(),
                    message: format!("{variable}={raw:?} is not a TOML value ({})", error.message()),
                })?;
            parsed.get("value").cloned().unwrap_or(toml::Value::String(raw))
        };
        let mut target = &mut *table;
        for name in section.split('.').filter(|name| !name.is_empty()) {
            target = match target.entry(name).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(ConfigError::Parse {
                        path: "the configuration".to_string(),
                        message: format!("`{section}` must be a table"),
                    });
                }
            };
        }
        target.insert(key.to_string(), value);
        applied.push(variable);
    }
    Ok(applied)
}

impl Settings {
    /// Reads a configuration file (none: the defaults), the provider's keys at the top level
    /// (as in `config/provider.example.toml`) and the service's in a `[service]` table, with
    /// the `SENDERAUTH_*` environment variables of [`SETTING_KEYS`] over it.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load_with(path, |variable| std::env::var(variable).ok())
    }

    /// As [`Settings::load`], with the environment read through `lookup`.
    pub fn load_with(path: Option<&Path>, lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let (text, mut origin) = match path {
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: origin.clone(), source })?;
                (text, origin)
            }
            None => (String::new(), "the defaults".to_string()),
        };
        let mut table: toml::Table = toml::from_str(&text)
            .map_err(|error| ConfigError::Parse { path: origin.clone(), message: error.to_string() })?;
        let applied = apply_environment(&mut table, lookup)?;
        if !applied.is_empty() {
            origin = format!("{origin} with {}", applied.join(", "));
        }
        let parse_error = |message: String| ConfigError::Parse { path: origin.clone(), message };
        let service = match table.remove("service") {
            Some(section) => {
                if let Some((old, new)) = MOVED_KEYS.iter().find(|(old, _)| section.get(old).is_some()) {
                    return Err(parse_error(format!(
                        "[service]: `{old}` has moved: write it as {new} (the [service] table has subtables now, \
                         see config/service.example.toml)"
                    )));
                }
                section.try_into().map_err(|error: toml::de::Error| parse_error(format!("[service]: {error}")))?
            }
            None => ServiceConfig::default(),
        };
        let rest = toml::to_string(&table).map_err(|error| parse_error(error.to_string()))?;
        let provider = ProviderConfig::from_toml(&rest, &origin)?;
        Ok(Settings { service, provider })
    }

    /// The domain of relayed mail's envelope senders.
    pub fn bounce_domain(&self) -> String {
        match &self.service.smtp.bounce_domain {
            Some(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
            None => format!("bounces.{}", self.provider.zone.trim_end_matches('.').to_ascii_lowercase()),
        }
    }

    /// The master keys (created on the first start when none are configured) and the maker
    /// of new domains' keys.
    pub fn key_maker(&self) -> Result<KeyMaker, KeyError> {
        let algorithm: KeyAlgorithm = self.service.keys.algorithm.parse()?;
        let environment = std::env::var("SENDERAUTH_MASTER_KEY").ok();
        let (master, created) =
            MasterKeys::load(environment.as_deref(), self.service.master_key_file.as_deref(), &self.service.data_dir)?;
        if let Some(path) = created {
            tracing::warn!(
                path = %path.display(),
                "generated a master key for the DKIM private keys; back it up apart from the database"
            );
        }
        Ok(KeyMaker { master: Arc::new(master), algorithm })
    }

    /// Opens the store with the configured number of connections.
    pub async fn connect_store(&self) -> Result<Store, StoreError> {
        let connections = self.service.database_connections.unwrap_or_else(senderauth_store::default_connections);
        Store::connect_with(&self.database_url(), connections).await
    }

    fn database_url(&self) -> String {
        self.service
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.service.data_dir.join("senderauth.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_documents_the_service_defaults() {
        let text = include_str!("../../../config/service.example.toml");
        let path = std::env::temp_dir().join(format!("senderauth-service-example-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let settings = Settings::load(Some(&path)).expect("the example parses");
        let _ = std::fs::remove_file(&path);
        assert_eq!(format!("{:?}", settings.service), format!("{:?}", ServiceConfig::default()));
        for (table, key, _) in SETTING_KEYS.iter().filter(|(table, _, _)| table.starts_with("service")) {
            let section =
                &text[text.find(&format!("[{table}]\n")).unwrap_or_else(|| panic!("[{table}] in the example"))..];
            let section = &section[..section[1..].find("\n[").map_or(section.len(), |end| end + 1)];
            assert!(section.contains(&format!("{key} =")), "{key} is not documented in [{table}] of the example");
        }
        let mut variables: Vec<String> =
            SETTING_KEYS.iter().map(|(table, key, _)| setting_variable(table, key)).collect();
        variables.sort();
        let count = variables.len();
        variables.dedup();
        assert_eq!(variables.len(), count, "every key has its own environment variable");
    }

    #[test]
    fn service_and_provider_keys_share_one_file_and_typos_are_caught() {
        let path = std::env::temp_dir().join(format!("senderauth-service-{}.toml", std::process::id()));
        std::fs::write(&path, "zone = \"mail.example.net\"\n\n[service.worker]\nrecheck_interval_hours = 6\n")
            .expect("write");
        let settings = Settings::load(Some(&path)).expect("parses");
        assert_eq!(settings.provider.zone, "mail.example.net");
        assert_eq!(settings.service.lifecycle().monitor_interval, Duration::from_secs(6 * 3600));
        std::fs::write(&path, "[service.worker]\nrecheck_interval_hour = 6\n").expect("write");
        let error = Settings::load(Some(&path)).expect_err("unknown key").to_string();
        assert!(error.contains("recheck_interval_hour") && error.contains("recheck_interval_hours"), "{error}");
        // A key of the earlier flat [service] table says where it lives now.
        std::fs::write(&path, "[service]\nsmtp_listen = \"127.0.0.1:25\"\n").expect("write");
        let error = Settings::load(Some(&path)).expect_err("moved key").to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("smtp_listen") && error.contains("[service.smtp] listen"), "{error}");
    }

    #[test]
    fn every_setting_can_come_from_the_environment() {
        let environment = |variable: &str| {
            match variable {
                "SENDERAUTH_WORKER_BATCH" => Some("25"),
                "SENDERAUTH_NODE" => Some("123"),
                "SENDERAUTH_DATABASE_CONNECTIONS" => Some("3"),
                "SENDERAUTH_ZONE" => Some("mail.example.net"),
                "SENDERAUTH_SENDING_IPS" => Some(r#"["198.51.100.7"]"#),
                "SENDERAUTH_DKIM_TARGET" => Some("{selector}.{domain_dashed}.keys.{zone}"),
                "SENDERAUTH_RESOLVER_TIMEOUT_MS" => Some("900"),
                _ => None,
            }
            .map(str::to_string)
        };
        let path = std::env::temp_dir().join(format!("senderauth-environment-{}.toml", std::process::id()));
        std::fs::write(&path, "zone = \"esp.example\"\n[service.worker]\nbatch = 7\nlease_seconds = 30\n")
            .expect("write");
        let settings = Settings::load_with(Some(&path), environment).expect("loads");
        let _ = std::fs::remove_file(&path);
        // The environment wins over the file; what it does not set keeps the file's value.
        assert_eq!(settings.service.worker.batch, 25);
        assert_eq!(settings.service.worker.lease_seconds, 30);
        assert_eq!(settings.service.node.as_deref(), Some("123"));
        assert_eq!(settings.service.database_connections, Some(3));
        assert_eq!(settings.provider.zone, "mail.example.net");
        assert_eq!(settings.provider.sending_ips, ["198.51.100.7"]);
        assert_eq!(settings.provider.dkim.target, "{selector}.{domain_dashed}.keys.{zone}");
        assert_eq!(settings.provider.resolver.timeout_ms, 900);
        // Without a file, too.
        assert_eq!(Settings::load_with(None, environment).expect("loads").service.worker.batch, 25);

        // A bad value names the variable it came from.
        let error = Settings::load_with(None, |variable: &str| {
            (variable == "SENDERAUTH_WORKER_BATCH").then(|| "lots".to_string())
        })
        .expect_err("not a number")
        .to_string();
        assert!(error.contains("SENDERAUTH_WORKER_BATCH"), "{error}");
        let error = Settings::load_with(None, |variable: &str| {
            (variable == "SENDERAUTH_WORKER_LEASE_SECONDS").then(|| "\"soon\"".to_string())
        })
        .expect_err("a string where a number belongs")
        .to_string();
        assert!(error.contains("SENDERAUTH_WORKER_LEASE_SECONDS") && error.contains("lease_seconds"), "{error}");
    }
}
