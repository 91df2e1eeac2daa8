//! The commands: each reads its flags, calls the core and prints.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use senderauth_core::check::check_domain;
use senderauth_core::dns::Dns;
use senderauth_core::name::{AccountId, DomainName};
use senderauth_core::plan::{plan_records, to_zone_file};
use senderauth_core::problem::{ProblemCode, Severity};
use senderauth_core::verify::verify_domain;
use senderauth_service::config::Settings;
use tokio::sync::Semaphore;

use crate::cli::{
    CheckArgs, Cli, Command, DmarcCommand, DmarcImportArgs, DnsArgs, EXIT_INVALID_INPUT, EXIT_NOT_VERIFIED, EXIT_OK,
    EXIT_UNKNOWN, KeysArgs, KeysCommand, OutputFormat, RecordsArgs, RecordsFormat, ServeArgs, SpeedArgs, StoreArgs,
    VerifyArgs, ZoneCommand, ZoneExportArgs,
};
use crate::render;
use crate::setup::{exit_code, parse_domain, resolver_settings, setup};

pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Records(args) => records(args).await,
        Command::Verify(args) => verify(args).await,
        Command::Check(args) => check(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Zone(ZoneCommand::Export(args)) => zone_export(args).await,
        Command::Keys(KeysCommand::Rewrap(args)) => keys_rewrap(args).await,
        Command::Keys(KeysCommand::Speed(args)) => keys_speed(args),
        Command::Dmarc(DmarcCommand::Parse(args)) => crate::reports::parse(args),
        Command::Dmarc(DmarcCommand::Import(args)) => dmarc_import(args).await,
    }
}

/// The service's settings: the config file, the environment, then the flags.
fn service_settings(dns: &DnsArgs, store: &StoreArgs) -> Result<Settings> {
    let mut settings = Settings::load(dns.config.as_deref())?;
    if let Some(data_dir) = &store.data_dir {
        settings.service.data_dir = data_dir.clone();
    }
    if let Some(url) = &store.database_url {
        settings.service.database_url = Some(url.clone());
    }
    Ok(settings)
}

async fn dmarc_import(args: DmarcImportArgs) -> Result<u8> {
    let settings = service_settings(&args.dns, &args.store)?;
    if settings.service.database_url.is_none() {
        // Reports may come before the service's first start: the store is made as it would be.
        std::fs::create_dir_all(&settings.service.data_dir)
            .with_context(|| format!("making the data directory {}", settings.service.data_dir.display()))?;
    }
    let store = settings.connect_store().await?;
    crate::reports::import(&args.files, &store, &settings.provider).await
}

async fn zone_export(args: ZoneExportArgs) -> Result<u8> {
    let settings = service_settings(&args.dns, &args.store)?;
    let store = settings.connect_store().await?;
    let zone = senderauth_dns::zone::Zone::load(crate::serve::zone_settings(&settings), &store).await?;
    let (text, unwritable) = zone.zone_file();
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    if unwritable.is_empty() {
        return Ok(EXIT_OK);
    }
    eprintln!(
        "senderauth: {} names in the store are not DNS names (a label over 63 octets or a name over 253) and are \
         not in the zone file; their domains can never verify: remove each and connect it again, which gives it \
         names that fit:",
        unwritable.len()
    );
    for name in &unwritable {
        eprintln!("  {name}");
    }
    Ok(EXIT_INVALID_INPUT)
}

fn keys_speed(args: SpeedArgs) -> Result<u8> {
    use senderauth_core::dkim::sign::{IMPLEMENTATION, SigningKey, dkim_signature};
    use senderauth_service::keys::{KeyAlgorithm, generate};
    let threads = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let fields: Vec<Vec<u8>> = [
        "From: Shop <news@shop.example.com>\r\n",
        "To: someone@example.net\r\n",
        "Subject: The weekly news\r\n",
        "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n",
        "Message-ID: <speed@shop.example.com>\r\n",
    ]
    .iter()
    .map(|field| field.as_bytes().to_vec())
    .collect();
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    let body = line.repeat(args.size / line.len() + 1).into_bytes();
    let duration = std::time::Duration::from_secs_f64(args.seconds.max(0.1));
    println!("senderauth: DKIM signatures per second, {threads} threads, {}-byte messages", args.size);
    println!("signed by          {IMPLEMENTATION}");
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Ed25519] {
        let generated = generate(algorithm)?;
        let key = SigningKey::from_pkcs8(algorithm.as_str(), &generated.private_pkcs8)?;
        let signed = std::sync::atomic::AtomicU64::new(0);
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while started.elapsed() < duration {
                        if dkim_signature(&fields, &body, "shop.example.com", "sa1", &key, 0).is_ok() {
                            signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let rate = signed.into_inner() as f64 / started.elapsed().as_secs_f64();
        println!("{:<10} {rate:>10.0}", algorithm.as_str());
    }
    Ok(EXIT_OK)
}

async fn keys_rewrap(args: KeysArgs) -> Result<u8> {
    let settings = service_settings(&args.dns, &args.store)?;
    let store = settings.connect_store().await?;
    let keys = settings.key_maker()?;
    let report = senderauth_service::keys::rewrap(&store, &keys.master).await?;
    println!(
        "senderauth: {} DKIM private keys sealed again under master key {}; {} already were",
        report.resealed,
        keys.master.current_id(),
        report.unchanged
    );
    if report.resealed > 0 || report.unchanged > 0 {
        println!("senderauth: master keys other than {} can now be removed", keys.master.current_id());
    }
    Ok(EXIT_OK)
}

async fn serve(args: ServeArgs) -> Result<u8> {
    let mut settings = service_settings(&args.dns, &args.store)?;
    if let Some(listen) = args.listen {
        settings.service.listen = listen;
    }
    if !args.dns_listen.is_empty() {
        settings.service.dns.listen = args.dns_listen.clone();
    }
    settings.service.demo |= args.demo;
    if args.smtp_listen.is_some() {
        settings.service.smtp.listen = args.smtp_listen;
    }
    if args.bounces_listen.is_some() {
        settings.service.bounces.listen = args.bounces_listen;
    }
    if args.reports_listen.is_some() {
        settings.service.reports.listen = args.reports_listen;
    }
    if args.smtp_upstream.is_some() {
        settings.service.smtp.upstream = args.smtp_upstream;
    }
    let demo_token = settings.service.demo.then(|| settings.service.data_dir.join("demo-token"));
    let resolver = resolver_settings(&args.dns, &settings.provider)?;
    let level = std::env::var("SENDERAUTH_LOG")
        .ok()
        .and_then(|level| level.parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // Lines are gathered and written together (see logs.rs); the guard writes the rest on the way out.
    let (writer, _flush_logs) = crate::logs::buffered_stderr();
    let logs = tracing_subscriber::fmt().with_writer(writer).with_max_level(level);
    match std::env::var("SENDERAUTH_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().init(),
        Ok("text") | Err(_) => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        Ok(other) => anyhow::bail!("SENDERAUTH_LOG_FORMAT is {other:?}: use text (the default) or json"),
    }
    crate::serve::run(settings, resolver, shutdown_signal(), |listening| {
        let address = listening.http;
        let mut lines = format!("senderauth: listening on http://{address}\n");
        for address in listening.dns {
            lines.push_str(&format!("senderauth: serving the platform's zone on {address} (UDP and TCP)\n"));
        }
        if let Some(smtp) = listening.smtp {
            lines.push_str(&format!("senderauth: SMTP gateway on {smtp}\n"));
        }
        if let Some(bounces) = listening.bounces {
            lines.push_str(&format!("senderauth: bounce listener (SMTP) on {bounces}\n"));
        }
        if let Some(reports) = listening.reports {
            lines.push_str(&format!("senderauth: DMARC report listener (SMTP) on {reports}\n"));
        }
        if let Some(token) = &demo_token {
            lines.push_str(&format!(
                "senderauth: demo mode: open http://{address}/ui and sign in with the token in {} (cat it); \
                 the sandbox DNS host is at http://{address}/ui/sandbox\n",
                token.display()
            ));
        }
        // One write, and a closed stdout (`senderauth serve | head -1`) is no reason to stop.
        let _ = std::io::stdout().lock().write_all(lines.as_bytes());
    })
    .await?;
    Ok(EXIT_OK)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

async fn records(args: RecordsArgs) -> Result<u8> {
    let setup = setup(&args.dns, None)?;
    let domain = parse_domain(&args.email)?;
    let account = AccountId::parse(&args.account)?;
    let dns = if args.offline { None } else { Some(Dns::new(&setup.resolver)?) };
    let plan = plan_records(dns.as_ref(), &setup.config, &account, &domain, args.ed25519, &[]).await.map_err(|error| match error {
        senderauth_core::plan::PlanError::Dns(failure) => anyhow::anyhow!(
            "{failure}; the current records could not be read. Try again, or use --offline to show the records without merging"
        ),
        other => other.into(),
    })?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        RecordsFormat::Table => stdout.write_all(render::plan_table(&plan).as_bytes())?,
        RecordsFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&plan)?)?,
        RecordsFormat::Zone => stdout.write_all(to_zone_file(&plan).as_bytes())?,
    }
    Ok(EXIT_OK)
}

async fn verify(args: VerifyArgs) -> Result<u8> {
    let setup = setup(&args.dns, args.concurrency)?;
    if let Some(input) = &args.input {
        return crate::bulk::run(&setup, input, args.output.as_deref(), args.account.as_deref(), args.quiet).await;
    }
    let Some(account) = &args.account else {
        bail!("--account is required when domains are given on the command line");
    };
    let account = AccountId::parse(account)?;
    let domains: Vec<DomainName> = args.domains.iter().map(|text| parse_domain(text)).collect::<Result<_, _>>()?;
    let dns = Dns::new(&setup.resolver)?;
    let config = Arc::new(setup.config);
    let permits = Arc::new(Semaphore::new(setup.concurrency));
    // Checked at once, up to --concurrency; printed in the order given.
    let checks: Vec<_> = domains
        .into_iter()
        .map(|domain| {
            let (dns, config, account, permits) = (dns.clone(), config.clone(), account.clone(), permits.clone());
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                verify_domain(&dns, &config, &account, &domain).await
            })
        })
        .collect();
    let mut worst = EXIT_OK;
    let mut stdout = std::io::stdout().lock();
    for check in checks {
        let result = check.await.context("a verification task failed")?;
        worst = worst.max(exit_code(result.status));
        match args.format {
            OutputFormat::Text => stdout.write_all(render::verification(&result).as_bytes())?,
            OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string(&result)?)?,
        }
    }
    Ok(worst)
}

async fn check(args: CheckArgs) -> Result<u8> {
    let setup = setup(&args.dns, None)?;
    let domains: Vec<DomainName> = args.domains.iter().map(|text| parse_domain(text)).collect::<Result<_, _>>()?;
    let dns = Dns::new(&setup.resolver)?;
    let mut stdout = std::io::stdout().lock();
    let mut exit = EXIT_OK;
    for domain in &domains {
        let report =
            check_domain(&dns, domain, &args.dkim_selectors, &setup.config.spf.all, &setup.config.dmarc.record).await;
        if args.json {
            writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
        } else {
            stdout.write_all(render::report(&report).as_bytes())?;
        }
        // Errors found: 1; a temporary DNS failure (nothing known for sure): 3, which wins.
        let temporary = report.problems.iter().any(|problem| problem.code == ProblemCode::DnsTemporaryFailure);
        let errors = report.problems.iter().any(|problem| problem.severity == Severity::Error);
        exit = exit.max(if temporary {
            EXIT_UNKNOWN
        } else if errors {
            EXIT_NOT_VERIFIED
        } else {
            EXIT_OK
        });
    }
    Ok(exit)
}
