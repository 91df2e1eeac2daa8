//! What the commands share: the provider configuration and DNS settings from the config file and
//! flags, reading a domain from an argument, and the exit code a status calls for.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use senderauth_core::config::ProviderConfig;
use senderauth_core::dns::ResolverSettings;
use senderauth_core::name::DomainName;
use senderauth_core::status::DomainStatus;

use crate::cli::{DnsArgs, EXIT_NOT_VERIFIED, EXIT_OK, EXIT_UNKNOWN};

/// The provider configuration and DNS settings, from the config file overridden by flags.
pub struct Setup {
    pub config: ProviderConfig,
    pub resolver: ResolverSettings,
    pub concurrency: usize,
}

pub fn setup(args: &DnsArgs, concurrency: Option<usize>) -> Result<Setup> {
    let config = match &args.config {
        Some(path) => ProviderConfig::load(path)?,
        None => ProviderConfig::default(),
    };
    let resolver = resolver_settings(args, &config)?;
    let concurrency = concurrency.unwrap_or(config.resolver.concurrency);
    if concurrency == 0 || concurrency > 10_000 {
        bail!("--concurrency {concurrency}: give a number from 1 to 10000");
    }
    Ok(Setup { config, resolver, concurrency })
}

/// DNS settings from the config file's `[resolver]` table, overridden by flags.
pub fn resolver_settings(args: &DnsArgs, config: &ProviderConfig) -> Result<ResolverSettings> {
    let nameserver = match args.nameserver {
        Some(address) => Some(address),
        None => {
            config.resolver.nameserver.as_deref().map(str::parse).transpose().context("reading resolver.nameserver")?
        }
    };
    let timeout = match args.timeout {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 600.0 => Duration::from_secs_f64(seconds),
        Some(seconds) => bail!("--timeout {seconds}: give a number of seconds greater than 0 and at most 600"),
        None => Duration::from_millis(config.resolver.timeout_ms),
    };
    let attempts = args.attempts.unwrap_or(config.resolver.attempts);
    if attempts == 0 {
        bail!("--attempts must be at least 1");
    }
    Ok(ResolverSettings { nameserver, timeout, attempts, cache: true })
}

/// A domain from a command-line argument: a domain name or a From address.
pub fn parse_domain(text: &str) -> Result<DomainName, senderauth_core::name::NameError> {
    if text.contains('@') { DomainName::from_email(text) } else { DomainName::parse(text) }
}

/// The exit code one domain's status calls for.
pub fn exit_code(status: DomainStatus) -> u8 {
    match status {
        DomainStatus::Verified => EXIT_OK,
        DomainStatus::PartiallyVerified | DomainStatus::NotVerified => EXIT_NOT_VERIFIED,
        DomainStatus::Unknown => EXIT_UNKNOWN,
    }
}
