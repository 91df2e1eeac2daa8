//! `senderauth serve`: startup (store, admin token, DNS), the HTTP server, the SMTP gateway,
//! the DNS server and the background verifier side by side, and a graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use senderauth_core::config::ConfigError;
use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_core::spf::build::sending_addresses_record;
use senderauth_dns::server::SharedZone;
use senderauth_dns::updates::UpdateTarget;
use senderauth_dns::zone::{Zone, ZoneSettings};
use senderauth_service::Service;
use senderauth_service::config::{ServiceConfig, Settings};
use senderauth_service::connections::{Slots, fit_caps, raise_open_file_limit};
use senderauth_service::keys::{KeyError, KeyMaker};
use senderauth_service::metrics::Metrics;
use senderauth_service::webhooks::Deliverer;
use senderauth_service::worker::{Worker, unix_now};
use senderauth_store::{Store, StoreError};
use senderauth_web::server::HttpLimits;
use senderauth_web::ui::{Brand, BrandError};
use senderauth_web::{WebState, router};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A service that could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cause is part of the message (not a `source`), so it is not printed twice.
    #[error("{action}: {cause}")]
    Io { action: String, cause: std::io::Error },
    #[error("cannot set up {0}")]
    Setup(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Brand(#[from] BrandError),
}

/// What the platform's zone publishes besides the store's keys.
pub fn zone_settings(settings: &Settings) -> ZoneSettings {
    let provider = &settings.provider;
    let zone = provider.zone.trim_end_matches('.').to_ascii_lowercase();
    let variable = provider.variable_domain.trim_end_matches('.').to_ascii_lowercase();
    let mut apexes = vec![zone.clone()];
    if variable != zone && !variable.ends_with(&format!(".{zone}")) {
        apexes.push(variable.clone());
    }
    let nameservers = if settings.service.dns.nameservers.is_empty() {
        vec![format!("ns1.{zone}")]
    } else {
        settings.service.dns.nameservers.clone()
    };
    let spf = sending_addresses_record(&provider.sending_ips);
    ZoneSettings {
        apexes,
        nameservers,
        hostmaster: settings.service.dns.hostmaster.clone().unwrap_or_else(|| format!("hostmaster.{zone}")),
        ttl: settings.service.dns.ttl.max(1),
        negative_ttl: settings.service.dns.ttl.clamp(1, 300),
        spf_include_record: spf.clone(),
        variable_domain: variable,
        variable_spf: spf,
        variable_dmarc: settings.service.dns.variable_domain_dmarc.clone(),
        bounce_domain: settings.bounce_domain(),
        return_path_spf: provider.return_path_spf(),
        bounce_hosts: provider.bounce_hosts(),
        sandbox: settings.service.demo,
    }
}

/// The external primary the zone's changes are pushed to, if one is configured.
fn update_target(settings: &Settings) -> Result<Option<UpdateTarget>, ServeError> {
    let Some(primary) = settings.service.dns.update_primary else { return Ok(None) };
    let (Some(name), Some(secret)) = (&settings.service.dns.update_key_name, &settings.service.dns.update_key_secret)
    else {
        return Err(ServeError::Setup(
            "updates to the primary: [service.dns] update_primary is set, so update_key_name and \
             update_key_secret (a TSIG key, HMAC-SHA256, secret in base64) are needed too"
                .to_string(),
        ));
    };
    UpdateTarget::new(primary, name, secret).map(Some).map_err(|error| ServeError::Setup(format!("updates: {error}")))
}

/// Makes the data directory the service's own: everything it creates from now on is readable
/// by its user only (umask 077: the directory 0700, the database, tokens and keys 0600), and a
/// directory or file there that others could read is tightened, with a warning.
fn private_data_dir(data_dir: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let io = |action: String| move |source| ServeError::Io { action, cause: source };
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating the data directory {}", data_dir.display())))?;
    let entries =
        std::fs::read_dir(data_dir).map_err(io(format!("reading the data directory {}", data_dir.display())))?;
    let files = entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.is_file());
    for path in std::iter::once(data_dir.to_path_buf()).chain(files) {
        let mode = std::fs::metadata(&path).map_err(io(format!("reading {}", path.display())))?.permissions().mode();
        if mode & 0o077 != 0 {
            let tightened = mode & 0o700;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(tightened))
                .map_err(io(format!("making {} private", path.display())))?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{:o}", mode & 0o777),
                now = format!("{tightened:o}"),
                "the data directory holds keys and tokens: made private to the service's user"
            );
        }
    }
    Ok(())
}

/// The addresses the service listens on, once bound (useful with port 0).
pub struct Listening<'a> {
    pub http: SocketAddr,
    pub dns: &'a [SocketAddr],
    /// The sending gateway.
    pub smtp: Option<SocketAddr>,
    /// The report address's listener.
    pub reports: Option<SocketAddr>,
    /// The bounce hosts' listener.
    pub bounces: Option<SocketAddr>,
}

/// Runs the service until `shutdown` completes: the API on `service.listen` and the worker.
/// `on_listening` is told the bound addresses.
pub async fn run(
    settings: Settings,
    resolver: ResolverSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(Listening<'_>),
) -> Result<(), ServeError> {
    // What customers see of the operator, refused before anything starts when it is wrong.
    let brand = Brand::from_config(&settings.service.ui)?;
    let data_dir = &settings.service.data_dir;
    private_data_dir(data_dir)?;
    let open_files = raise_open_file_limit();
    let (http_cap, smtp_cap) =
        fit_caps(settings.service.max_connections, settings.service.smtp.max_connections, open_files);
    let node = settings.service.node.clone().unwrap_or_else(default_node_name);
    // The DNS sockets first: in demo mode the verifier asks the server on them.
    let dns_sockets = if settings.service.dns.listen.is_empty() {
        None
    } else {
        Some(senderauth_dns::server::bind(&settings.service.dns.listen).await.map_err(|source| ServeError::Io {
            action: format!(
                "serving DNS on {:?} (is another process using it? set [service.dns] listen or --dns-listen)",
                settings.service.dns.listen
            ),
            cause: source,
        })?)
    };
    let mut resolver = resolver;
    if settings.service.demo {
        let Some(address) = dns_sockets.as_ref().and_then(|bound| bound.addresses().first().copied()) else {
            return Err(ServeError::Setup(
                "demo mode needs the embedded DNS server, which hosts the sandbox zones: set [service.dns] listen"
                    .to_string(),
            ));
        };
        // Everything is local: no cache, so a record typed at the sandbox counts at once.
        resolver.nameserver = Some(address);
        resolver.cache = false;
    }
    let worker = connect_worker(&settings, &resolver, node, Arc::default()).await?;
    bootstrap_admin_token(&worker.store, &settings.service).await?;
    if settings.service.demo {
        bootstrap_demo_account(&worker.store, &settings.service).await?;
    }
    let listener = TcpListener::bind(settings.service.listen).await.map_err(|source| ServeError::Io {
        action: format!("listening on {} (is another process using it?)", settings.service.listen),
        cause: source,
    })?;
    let address = listener
        .local_addr()
        .map_err(|source| ServeError::Io { action: "reading the listening address".to_string(), cause: source })?;

    let keys = settings.key_maker()?;
    let update_target = update_target(&settings)?;
    senderauth_service::keys::ensure_variable_domain_keys(
        &worker.store,
        &keys,
        &settings.provider.variable_domain,
        &settings.service.keys.variable_domain_selectors,
        unix_now(),
    )
    .await
    .map_err(|error| ServeError::Setup(format!("the variable domain's DKIM key: {error}")))?;

    // Domains connected before the report address was set (or under another one) get their
    // report authorizations, and before return-paths (or under another target template) their
    // return-path targets; the DNS servers follow the change log.
    {
        let store = worker.store.clone();
        let provider = worker.provider.clone();
        tokio::spawn(async move {
            match senderauth_service::keys::sync_report_authorizations(&store, &provider, unix_now()).await {
                Ok(0) => {}
                Ok(changed) => tracing::info!(changed, "report authorization names brought up to date"),
                Err(error) => tracing::error!(%error, "the report authorization names could not be brought up to date"),
            }
            match senderauth_service::keys::sync_return_paths(&store, &provider, unix_now()).await {
                Ok(0) => {}
                Ok(changed) => tracing::info!(changed, "return-path targets brought up to date"),
                Err(error) => tracing::error!(%error, "the return-path targets could not be brought up to date"),
            }
        });
    }
    let (stop, stopped) = watch::channel(false);
    let zone: SharedZone = Arc::new(std::sync::RwLock::new(Zone::load(zone_settings(&settings), &worker.store).await?));
    let nameserver = if let Some(bound) = dns_sockets {
        let listeners = senderauth_dns::server::serve(bound, zone.clone(), stopped.clone()).map_err(|source| {
            ServeError::Io { action: "starting the DNS server's threads".to_string(), cause: source }
        })?;
        tracing::info!(addresses = ?listeners.addresses, "serving the platform's zone");
        tokio::spawn(senderauth_dns::server::follow_changes(worker.store.clone(), zone.clone(), stopped.clone()));
        Some(listeners)
    } else {
        None
    };
    if let Some(target) = update_target {
        tracing::info!(primary = %target.primary, "pushing the zone's changes to the primary");
        tokio::spawn(senderauth_dns::updates::push_changes(
            worker.store.clone(),
            zone_settings(&settings),
            target,
            stopped.clone(),
        ));
    }
    let background = start_background(&settings, &resolver, &worker, &keys, stopped).await?;
    tracing::info!(%address, node = %worker.node, "listening");
    let mut service = Service::new(worker, Arc::new(unix_now), keys);
    service.default_domain_limit = settings.service.default_domain_limit;
    service.webhook_targets = settings.service.webhook_targets();
    service.rotation = settings.service.rotation();
    service.demo = settings.service.demo;
    service.enforcement = settings.service.reports.enforcement();
    service.platform_domains.push(settings.bounce_domain());
    if service.demo {
        // The sandbox is local: no limit on Verify, which follows each record added.
        service.verify_now_seconds = 0;
    }
    let mut state =
        WebState::new(service, settings.bounce_domain(), settings.service.smtp.message_size_limit.max(1024));
    state.https = settings.service.https;
    state.brand = Arc::new(brand);
    state.demo_token_file = settings.service.demo.then(|| settings.service.data_dir.join("demo-token"));
    // The DMARC reports' upkeep: the gateway's sent counts, source names, silent receivers, old
    // failure reports.
    let coverage = tokio::spawn(state.service.clone().run_report_upkeep(stop.subscribe()));
    if let Some(imap) = &settings.service.reports.imap {
        let pull = imap_settings(imap, settings.service.reports.message_size_limit)?;
        tracing::info!(server = %imap.server, username = %imap.username, mailbox = %imap.mailbox, "pulling DMARC reports over IMAP");
        tokio::spawn(senderauth_mail::imap::run_pull(state.service.clone(), pull, stop.subscribe()));
    }
    let smtp = match settings.service.smtp.listen {
        Some(smtp_address) => {
            let smtp_listener = TcpListener::bind(smtp_address).await.map_err(|source| ServeError::Io {
                action: format!("listening for SMTP on {smtp_address} (is another process using it? set [service.smtp] listen or --smtp-listen)"),
                cause: source,
            })?;
            let bound = smtp_listener
                .local_addr()
                .map_err(|source| ServeError::Io { action: "reading the SMTP address".to_string(), cause: source })?;
            let smtp_settings = senderauth_mail::smtp::SmtpSettings {
                hostname: settings
                    .service
                    .smtp
                    .hostname
                    .clone()
                    .unwrap_or_else(|| format!("mail.{}", settings.provider.zone.trim_end_matches('.'))),
                upstream: settings.service.smtp.upstream,
                idle: Duration::from_secs(settings.service.smtp.idle_seconds.max(1)),
                auth_failures: settings.service.smtp.auth_failures.max(1),
                auth_failure_delay: Duration::from_millis(settings.service.smtp.auth_failure_delay_ms),
                pool: senderauth_mail::smtp::UpstreamPool::default(),
                slots: Slots::new("smtp", smtp_cap),
                tls: match (&settings.service.smtp.tls_certificate, &settings.service.smtp.tls_key) {
                    (Some(certificate), Some(key)) => Some(
                        senderauth_mail::smtp::tls_config(certificate, key)
                            .map_err(|error| ServeError::Setup(format!("the SMTP gateway's TLS: {error}")))?,
                    ),
                    (None, None) => None,
                    _ => {
                        return Err(ServeError::Setup(
                            "set both smtp_tls_certificate and smtp_tls_key, or neither".to_string(),
                        ));
                    }
                },
            };
            tracing::info!(address = %bound, upstream = ?smtp_settings.upstream, "SMTP gateway listening");
            tokio::spawn(senderauth_mail::smtp::serve(
                smtp_listener,
                state.gateway.clone(),
                smtp_settings,
                stop.subscribe(),
            ));
            Some(bound)
        }
        None => None,
    };
    let reports = match settings.service.reports.listen {
        Some(reports_address) => {
            let reports_listener = TcpListener::bind(reports_address).await.map_err(|source| ServeError::Io {
                action: format!(
                    "listening for DMARC reports on {reports_address} (is another process using it? set \
                     [service.reports] listen or --reports-listen)"
                ),
                cause: source,
            })?;
            let bound = reports_listener
                .local_addr()
                .map_err(|source| ServeError::Io { action: "reading the report address".to_string(), cause: source })?;
            let report_settings = senderauth_mail::reports::ReportListenerSettings {
                hostname: settings.service.reports.hostname.clone().unwrap_or_else(|| {
                    settings
                        .provider
                        .report_address()
                        .and_then(|address| address.rsplit_once('@').map(|(_, host)| host.to_string()))
                        .unwrap_or_else(|| format!("reports.{}", settings.provider.zone.trim_end_matches('.')))
                }),
                addresses: settings.provider.report_address().into_iter().collect(),
                size_limit: settings.service.reports.message_size_limit.max(1024),
                idle: Duration::from_secs(settings.service.smtp.idle_seconds.max(1)),
                slots: Slots::new("reports", settings.service.reports.max_connections.max(1)),
            };
            tracing::info!(address = %bound, taking = ?report_settings.addresses, "DMARC report listener listening");
            tokio::spawn(senderauth_mail::reports::serve_reports(
                reports_listener,
                state.service.clone(),
                report_settings,
                stop.subscribe(),
            ));
            Some(bound)
        }
        None => None,
    };
    let bounces = match settings.service.bounces.listen {
        Some(bounces_address) => {
            let bounces_listener = TcpListener::bind(bounces_address).await.map_err(|source| ServeError::Io {
                action: format!(
                    "listening for bounces on {bounces_address} (is another process using it? set [service.bounces] \
                     listen or --bounces-listen)"
                ),
                cause: source,
            })?;
            let bound = bounces_listener
                .local_addr()
                .map_err(|source| ServeError::Io { action: "reading the bounce address".to_string(), cause: source })?;
            let bounce_settings = senderauth_mail::bounces::BounceListenerSettings {
                hostname: settings
                    .service
                    .bounces
                    .hostname
                    .clone()
                    .or_else(|| settings.provider.bounce_hosts().into_iter().next())
                    .unwrap_or_else(|| settings.bounce_domain()),
                bounce_domain: settings.bounce_domain(),
                size_limit: settings.service.bounces.message_size_limit.max(1024),
                idle: Duration::from_secs(settings.service.smtp.idle_seconds.max(1)),
                slots: Slots::new("bounces", settings.service.bounces.max_connections.max(1)),
            };
            tracing::info!(address = %bound, bounce_domain = %bounce_settings.bounce_domain, "bounce listener listening");
            tokio::spawn(senderauth_mail::bounces::serve_bounces(
                bounces_listener,
                state.service.clone(),
                bounce_settings,
                stop.subscribe(),
            ));
            Some(bound)
        }
        None => None,
    };
    on_listening(Listening {
        http: address,
        dns: nameserver.as_ref().map_or(&[][..], |listeners| &listeners.addresses),
        smtp,
        reports,
        bounces,
    });
    let limits = HttpLimits {
        header_read: Duration::from_secs(settings.service.header_timeout_seconds.max(1)),
        slots: Slots::new("http", http_cap),
    };
    let served = senderauth_web::server::serve(listener, router(state), limits, shutdown).await;
    // The API has stopped taking requests; let the checks in flight finish and be written.
    let _ = stop.send(true);
    let _ = coverage.await;
    let _ = tokio::task::spawn_blocking(move || background.join()).await;
    if let Some(listeners) = nameserver {
        let _ = tokio::task::spawn_blocking(move || listeners.stop()).await;
    }
    tracing::info!("stopped");
    served.map_err(|source| ServeError::Io { action: "serving HTTP".to_string(), cause: source })
}

/// The IMAP pull's settings from `[service.reports.imap]`: the password and CA files read now,
/// so that a mistake stops the start with its reason.
fn imap_settings(
    imap: &senderauth_service::config::ImapConfig,
    size_limit: usize,
) -> Result<senderauth_mail::imap::ImapSettings, ServeError> {
    use senderauth_mail::imap::{ImapSettings, tls_client_config};
    let setup = |message: String| ServeError::Setup(format!("[service.reports.imap]: {message}"));
    let (host, port) = imap
        .server
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse::<u16>().ok()?)))
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| setup(format!("server = {:?} is not host:port (e.g. imap.esp.example:993)", imap.server)))?;
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|error| setup(format!("{what} {}: {error}", path.display())))
    };
    let password = String::from_utf8(read(&imap.password_file, "password_file")?)
        .map_err(|_| setup(format!("password_file {} is not text", imap.password_file.display())))?
        .trim_end_matches(['\r', '\n'])
        .to_string();
    if password.is_empty() {
        return Err(setup(format!("password_file {} is empty", imap.password_file.display())));
    }
    let extra = imap.ca_file.as_deref().map(|path| read(path, "ca_file")).transpose()?;
    let tls = tls_client_config(extra.as_deref()).map_err(|error| setup(format!("ca_file: {error}")))?;
    Ok(ImapSettings {
        host: host.to_string(),
        port,
        security: imap.security,
        username: imap.username.clone(),
        password,
        mailbox: imap.mailbox.clone(),
        processed: imap.processed_folder.clone(),
        unreadable: imap.unreadable_folder.clone(),
        interval: Duration::from_secs(imap.interval_seconds.max(1)),
        size_limit,
        tls,
    })
}

/// A worker with its own database connections and resolver, configured from `settings`.
async fn connect_worker(
    settings: &Settings,
    resolver: &ResolverSettings,
    node: String,
    metrics: Arc<Metrics>,
) -> Result<Worker, ServeError> {
    let store = settings.connect_store().await?;
    let dns = Dns::new(resolver).map_err(|error| ServeError::Setup(format!("DNS: {error}")))?;
    let mut worker = Worker::new(store, dns, settings.provider.clone(), node);
    worker.lifecycle = settings.service.lifecycle();
    worker.batch = settings.service.worker.batch.max(1);
    worker.concurrency = settings.service.worker.concurrency.max(1);
    worker.lease = Duration::from_secs(settings.service.worker.lease_seconds.max(1));
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
    keys: &KeyMaker,
    stopped: watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    let keys = keys.clone();
    let (ready, started) = tokio::sync::oneshot::channel::<Result<(), ServeError>>();
    let (settings, resolver) = (settings.clone(), resolver.clone());
    let (node, metrics) = (api_worker.node.clone(), api_worker.metrics.clone());
    let spawn_error = |source| ServeError::Io { action: "starting the background verifier".to_string(), cause: source };
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
                let deliverer = match Deliverer::new(
                    worker.store.clone(),
                    worker.node.clone(),
                    worker.metrics.clone(),
                    targets,
                    keys.master.clone(),
                ) {
                    Ok(deliverer) => deliverer,
                    Err(error) => {
                        let _ = ready.send(Err(ServeError::Setup(error)));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let pause = Duration::from_secs(1);
                let rotation = senderauth_service::rotation::run_until_stopped(
                    worker.store.clone(),
                    keys,
                    settings.service.rotation(),
                    unix_now,
                    Duration::from_secs(60),
                    stopped.clone(),
                );
                tokio::join!(
                    worker.run_until_stopped(stopped.clone(), pause),
                    deliverer.run_until_stopped(stopped, pause),
                    rotation
                );
            });
        })
        .map_err(spawn_error)?;
    match started.await {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ServeError::Setup("the background verifier (its thread ended while starting)".to_string())),
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
    write_token(&path, &token, "the admin token")?;
    tracing::info!(path = %path.display(), "generated an admin token; read it with: cat {}", path.display());
    Ok(())
}

/// Demo mode: an account to try the UI with, its token written to `<data_dir>/demo-token` on
/// the first start (tokens are stored hashed, so the file is the only copy).
async fn bootstrap_demo_account(store: &Store, service: &ServiceConfig) -> Result<(), ServeError> {
    let path = service.data_dir.join("demo-token");
    if path.exists() {
        tracing::info!(path = %path.display(), "demo mode: sign in at /ui with the token in {}", path.display());
        return Ok(());
    }
    let now = unix_now();
    let account = store.create_account("Demo customer", None, now).await?;
    let (_, token) = store.create_token(Some(account.id), "demo", now).await?;
    write_token(&path, &token, "the demo account's token")?;
    tracing::info!(path = %path.display(), "demo mode: made a demo account; sign in at /ui with the token in {}", path.display());
    Ok(())
}

/// Writes a token generated on the first start to a file only its owner can read.
fn write_token(path: &Path, token: &str, what: &str) -> Result<(), ServeError> {
    write_private(path, &format!("{token}\n"))
        .map_err(|source| ServeError::Io { action: format!("writing {what} to {}", path.display()), cause: source })
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
