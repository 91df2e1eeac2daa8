//! `senderauth serve`: the service's configuration, startup (store, admin token, DNS), the HTTP
//! server and the background verifier side by side, and a graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use senderauth_core::config::{ConfigError, ProviderConfig};
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_core::lifecycle::LifecycleConfig;
use senderauth_store::{Store, StoreError};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{AppState, router};
use crate::metrics::Metrics;
use crate::webhooks::{Deliverer, Targets};
use crate::worker::{Worker, unix_now};

/// The `[service]` table of the configuration file. Every key has a default that works on a
/// fresh machine.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Where the SQLite database and the generated admin token live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; unset: `sqlite://<data_dir>/senderauth.db`.
    pub database_url: Option<String>,
    /// An admin token to accept (also `SENDERAUTH_ADMIN_TOKEN`); unset: one is generated on the
    /// first start and written to `<data_dir>/admin-token`.
    pub admin_token: Option<String>,
    /// This node's name in check leases; unset: host name and process id.
    pub node: Option<String>,
    /// Domains a worker claims per round, and checks running at once.
    pub worker_batch: i64,
    pub worker_concurrency: usize,
    /// How long a node holds a claimed domain; after a crash, its domains are checked again by
    /// any node once this has passed.
    pub lease_seconds: u64,
    /// The domain limit of accounts created without one; unset: no limit.
    pub default_domain_limit: Option<i64>,
    /// How long a new domain is checked before it is `failed`, in hours.
    pub setup_window_hours: u64,
    /// How often verified and partially verified domains are rechecked, in hours.
    pub recheck_interval_hours: u64,
    /// Consecutive failed checks before a verified domain drops to `temporary_failure`.
    pub failures_before_degraded: u32,
    /// How long a domain may stay in `temporary_failure` before it is `failed`, in hours.
    pub degraded_window_hours: u64,
    /// Whether webhook URLs may reach private, loopback and other non-public addresses.
    pub webhook_private_targets: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("senderauth-data"),
            database_url: None,
            admin_token: None,
            node: None,
            worker_batch: 200,
            worker_concurrency: 64,
            lease_seconds: 120,
            default_domain_limit: None,
            setup_window_hours: 72,
            recheck_interval_hours: 24,
            failures_before_degraded: 3,
            degraded_window_hours: 72,
            webhook_private_targets: false,
        }
    }
}

/// Everything `serve` is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub service: ServiceConfig,
    pub provider: ProviderConfig,
}

/// A service that could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{action}: {source}")]
    Io { action: String, source: std::io::Error },
    #[error("cannot set up {0}")]
    Dns(String),
}

impl ServiceConfig {
    /// Where webhooks may be sent.
    pub fn webhook_targets(&self) -> Targets {
        if self.webhook_private_targets { Targets::Any } else { Targets::PublicOnly }
    }

    /// The lifecycle's timing from these settings (the rest keeps its defaults).
    pub fn lifecycle(&self) -> LifecycleConfig {
        let hours = |value: u64| Duration::from_secs(value.max(1) * 3600);
        LifecycleConfig {
            setup_window: hours(self.setup_window_hours),
            monitor_interval: hours(self.recheck_interval_hours),
            failures_before_degraded: self.failures_before_degraded.max(1),
            degraded_window: hours(self.degraded_window_hours),
            ..LifecycleConfig::default()
        }
    }
}

impl Settings {
    /// Reads a configuration file: the provider's keys at the top level (as in
    /// `config/provider.example.toml`) and the service's in a `[service]` table.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let Some(path) = path else {
            return Ok(Settings { service: ServiceConfig::default(), provider: ProviderConfig::default() });
        };
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: origin.clone(), source })?;
        let parse_error = |message: String| ConfigError::Parse { path: origin.clone(), message };
        let mut table: toml::Table = toml::from_str(&text).map_err(|error| parse_error(error.to_string()))?;
        let service = match table.remove("service") {
            Some(section) => {
                section.try_into().map_err(|error: toml::de::Error| parse_error(format!("[service]: {error}")))?
            }
            None => ServiceConfig::default(),
        };
        let rest = toml::to_string(&table).map_err(|error| parse_error(error.to_string()))?;
        let provider = ProviderConfig::from_toml(&rest, &origin)?;
        Ok(Settings { service, provider })
    }

    fn database_url(&self) -> String {
        self.service
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.service.data_dir.join("senderauth.db").display()))
    }
}

/// Runs the service until `shutdown` completes: the API on `service.listen` and the worker.
/// `on_listening` is told the bound address (useful with port 0).
pub async fn run(
    settings: Settings,
    resolver: ResolverSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let data_dir = &settings.service.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| ServeError::Io {
        action: format!("creating the data directory {}", data_dir.display()),
        source,
    })?;
    let node = settings.service.node.clone().unwrap_or_else(default_node_name);
    let worker = connect_worker(&settings, &resolver, node, Arc::default()).await?;
    bootstrap_admin_token(&worker.store, &settings.service).await?;
    let listener = TcpListener::bind(settings.service.listen).await.map_err(|source| ServeError::Io {
        action: format!("listening on {} (is another process using it?)", settings.service.listen),
        source,
    })?;
    let address = listener
        .local_addr()
        .map_err(|source| ServeError::Io { action: "reading the listening address".to_string(), source })?;

    let (stop, stopped) = watch::channel(false);
    let background = start_background(&settings, &resolver, &worker, stopped).await?;
    tracing::info!(%address, node = %worker.node, "listening");
    on_listening(address);
    let mut state = AppState::new(worker, Arc::new(unix_now));
    state.default_domain_limit = settings.service.default_domain_limit;
    state.webhook_targets = settings.service.webhook_targets();
    let served = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    // The API has stopped taking requests; let the checks in flight finish and be written.
    let _ = stop.send(true);
    let _ = tokio::task::spawn_blocking(move || background.join()).await;
    tracing::info!("stopped");
    served.map_err(|source| ServeError::Io { action: "serving HTTP".to_string(), source })
}

/// A worker with its own database connections and resolver, configured from `settings`.
async fn connect_worker(
    settings: &Settings,
    resolver: &ResolverSettings,
    node: String,
    metrics: Arc<Metrics>,
) -> Result<Worker, ServeError> {
    let store = Store::connect(&settings.database_url()).await?;
    let dns = Dns::new(resolver).map_err(|error| ServeError::Dns(format!("DNS: {error}")))?;
    let mut worker = Worker::new(store, dns, settings.provider.clone(), node);
    worker.lifecycle = settings.service.lifecycle();
    worker.batch = settings.service.worker_batch.max(1);
    worker.concurrency = settings.service.worker_concurrency.max(1);
    worker.lease = Duration::from_secs(settings.service.lease_seconds.max(1));
    worker.metrics = metrics;
    Ok(worker)
}

/// How much lower the background work's CPU priority is than the API's, as a nice increment:
/// when both want the CPU, requests are served first and checks take what is left; when the
/// API is idle, checks have every core.
const BACKGROUND_NICE: i32 = 10;

/// Sets the calling thread's CPU priority `BACKGROUND_NICE` below the main thread's (Linux: a
/// thread's nice value is its own). Where that is refused, the thread keeps its priority.
fn lower_priority() {
    if let Ok(main) = rustix::process::getpriority_process(Some(rustix::process::getpid())) {
        let thread = rustix::thread::gettid();
        let _ = rustix::process::setpriority_process(Some(thread), (main + BACKGROUND_NICE).min(19));
    }
}

/// Starts the background work, the verifier and the webhook deliveries, on a runtime of its
/// own whose threads run at a lower CPU priority, with its own database connections and
/// resolver (so nothing a request waits for is driven by those threads). Returns once they
/// are connected; the thread ends when `stopped` turns true and the checks in flight are
/// written.
async fn start_background(
    settings: &Settings,
    resolver: &ResolverSettings,
    api_worker: &Worker,
    stopped: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let (ready, started) = tokio::sync::oneshot::channel::<Result<(), ServeError>>();
    let (settings, resolver) = (settings.clone(), resolver.clone());
    let (node, metrics) = (api_worker.node.clone(), api_worker.metrics.clone());
    let spawn_error = |source| ServeError::Io { action: "starting the background verifier".to_string(), source };
    let thread = std::thread::Builder::new()
        .name("senderauth-background".to_string())
        .spawn(move || {
            lower_priority();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .thread_name("senderauth-check")
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(source) => {
                    let _ = ready.send(Err(spawn_error(source)));
                    return;
                }
            };
            runtime.block_on(async move {
                let worker = match connect_worker(&settings, &resolver, node, metrics).await {
                    Ok(worker) => worker,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let targets = settings.service.webhook_targets();
                let deliverer =
                    match Deliverer::new(worker.store.clone(), worker.node.clone(), worker.metrics.clone(), targets) {
                        Ok(deliverer) => deliverer,
                        Err(error) => {
                            let _ = ready.send(Err(ServeError::Dns(error)));
                            return;
                        }
                    };
                let _ = ready.send(Ok(()));
                let pause = Duration::from_secs(1);
                tokio::join!(
                    worker.run_until_stopped(stopped.clone(), pause),
                    deliverer.run_until_stopped(stopped, pause)
                );
            });
        })
        .map_err(spawn_error)?;
    match started.await {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ServeError::Dns("the background verifier (its thread ended while starting)".to_string())),
    }
}

/// Accepts the configured admin token, or generates one on the first start and writes it to
/// `<data_dir>/admin-token` (readable by the owner only). The token itself is never logged.
async fn bootstrap_admin_token(store: &Store, service: &ServiceConfig) -> Result<(), ServeError> {
    let now = unix_now();
    if let Some(token) = &service.admin_token {
        store.ensure_token(None, "from configuration", token, now).await?;
        return Ok(());
    }
    if store.has_admin_token().await? {
        return Ok(());
    }
    let (_, token) = store.create_token(None, "generated on first start", now).await?;
    let path = service.data_dir.join("admin-token");
    write_private(&path, &format!("{token}\n")).map_err(|source| ServeError::Io {
        action: format!("writing the admin token to {}", path.display()),
        source,
    })?;
    tracing::info!(path = %path.display(), "generated an admin token; read it with: cat {}", path.display());
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

fn default_node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|name| name.trim().to_string()).unwrap_or_default();
    format!("{}-{}", if host.is_empty() { "node" } else { &host }, std::process::id())
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
        for key in [
            "listen",
            "data_dir",
            "database_url",
            "admin_token",
            "node",
            "worker_batch",
            "worker_concurrency",
            "lease_seconds",
            "default_domain_limit",
            "setup_window_hours",
            "recheck_interval_hours",
            "failures_before_degraded",
            "degraded_window_hours",
            "webhook_private_targets",
        ] {
            assert!(text.contains(&format!("{key} =")), "{key} is not documented in the example");
        }
    }

    #[test]
    fn service_and_provider_keys_share_one_file_and_typos_are_caught() {
        let path = std::env::temp_dir().join(format!("senderauth-service-{}.toml", std::process::id()));
        std::fs::write(&path, "zone = \"mail.example.net\"\n\n[service]\nrecheck_interval_hours = 6\n").expect("write");
        let settings = Settings::load(Some(&path)).expect("parses");
        assert_eq!(settings.provider.zone, "mail.example.net");
        assert_eq!(settings.service.lifecycle().monitor_interval, Duration::from_secs(6 * 3600));
        std::fs::write(&path, "[service]\nrecheck_interval_hour = 6\n").expect("write");
        let error = Settings::load(Some(&path)).expect_err("unknown key").to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("recheck_interval_hour") && error.contains("recheck_interval_hours"), "{error}");
    }
}
