//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Every domain checked is verified (or, for `records` and `check`, the command succeeded).
pub const EXIT_OK: u8 = 0;
/// At least one domain is not verified or only partially verified.
pub const EXIT_NOT_VERIFIED: u8 = 1;
/// Bad flags, an unreadable config or input file, or another error that stopped the run.
pub const EXIT_ERROR: u8 = 2;
/// At least one domain's result is unknown because DNS failed temporarily: run again later.
pub const EXIT_UNKNOWN: u8 = 3;
/// At least one input line was invalid (reported in the output; the others were checked).
pub const EXIT_INVALID_INPUT: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "senderauth",
    version,
    about = "Email sending-domain authentication: the DKIM, SPF and DMARC records a platform's customers add, and their verification",
    after_help = "Exit codes: 0 all verified / success, 1 some domain not (fully) verified, 2 error, 3 some result unknown (temporary DNS failure), 4 some input lines invalid. When several apply, the highest wins."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the DNS records a customer adds for the From address they send with.
    Records(RecordsArgs),
    /// Verify connected domains: one or more on the command line, or in bulk from a file.
    Verify(VerifyArgs),
    /// Analyse any domain's SPF, DMARC and (for given selectors) DKIM, independent of a platform.
    Check(CheckArgs),
    /// Run the service: the REST API, the background verifier and the platform's DNS server.
    Serve(ServeArgs),
    /// The platform's zone, for operators who serve it from their own DNS servers.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// The DKIM private keys' master keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// DMARC aggregate reports.
    #[command(subcommand)]
    Dmarc(DmarcCommand),
}

#[derive(Subcommand, Debug)]
pub enum DmarcCommand {
    /// Read DMARC aggregate reports from files (XML, .gz, .zip, or mail messages with a report
    /// attached), offline, and print what they say: JSON Lines (a report per line) or CSV (a
    /// record per line, with its report's fields).
    Parse(DmarcParseArgs),
    /// Store DMARC aggregate reports from files into the service's store, as if they had
    /// arrived at the report address: each report once (a copy of one already stored is
    /// counted on it), its rows classed against the platform's keys and sending addresses.
    Import(DmarcImportArgs),
}

#[derive(Args, Debug)]
pub struct DmarcImportArgs {
    /// The report files (XML, .gz, .zip or mail messages); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(Args, Debug)]
pub struct DmarcParseArgs {
    /// The report files; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
}

/// How `dmarc parse` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
pub enum ZoneCommand {
    /// Write the platform's zone (the hosted DKIM keys, the SPF includes, the variable domain's
    /// records) as a standard zone file, from the store the service uses.
    Export(ZoneExportArgs),
}

#[derive(Args, Debug)]
pub struct ZoneExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Seal every DKIM private key again under the current master key (the first in the master
    /// key file or SENDERAUTH_MASTER_KEY), so that older master keys can be retired.
    Rewrap(KeysArgs),
    /// How many DKIM signatures this machine makes per second with each algorithm, on every
    /// core: the gateway's signing code (canonicalization, hashes, signature) on a message of the
    /// given size, in a loop. For sizing a gateway.
    Speed(SpeedArgs),
}

#[derive(Args, Debug)]
pub struct SpeedArgs {
    /// How long to sign with each algorithm, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// The message size in bytes.
    #[arg(long, default_value_t = 10_240)]
    pub size: usize,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Where the service keeps its data.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Where the SQLite database and the generated admin token are kept (default ./senderauth-data).
    #[arg(long, env = "SENDERAUTH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE (default: SQLite in the data directory).
    #[arg(long, env = "SENDERAUTH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the API listens (default 127.0.0.1:8080).
    #[arg(long, env = "SENDERAUTH_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
    /// Where the platform's DNS server answers, UDP and TCP (default 127.0.0.1:5353; repeat
    /// for several addresses).
    #[arg(long = "dns-listen", value_name = "IP:PORT")]
    pub dns_listen: Vec<SocketAddr>,
    /// Demo mode: the DNS server also hosts sandbox customer zones, edited in the web UI like a
    /// DNS host's control panel, and the verifier asks only it; a demo account's token is
    /// written to <data_dir>/demo-token. Try the whole flow on one machine, without internet.
    #[arg(long)]
    pub demo: bool,
    /// Where the SMTP gateway listens (default 127.0.0.1:2525).
    #[arg(long = "smtp-listen", value_name = "IP:PORT")]
    pub smtp_listen: Option<SocketAddr>,
    /// Where the report address's SMTP listener takes DMARC reports (default 127.0.0.1:2526;
    /// point the report host's MX there through your MTA).
    #[arg(long = "reports-listen", value_name = "IP:PORT")]
    pub reports_listen: Option<SocketAddr>,
    /// Where the bounce hosts' SMTP listener takes bounces (default 127.0.0.1:2527; point the
    /// bounce hosts' MX there through your MTA).
    #[arg(long = "bounces-listen", value_name = "IP:PORT")]
    pub bounces_listen: Option<SocketAddr>,
    /// The upstream mail server relayed mail goes to, IP:PORT.
    #[arg(long = "smtp-upstream", value_name = "IP:PORT")]
    pub smtp_upstream: Option<SocketAddr>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Options shared by every command that reads DNS.
#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Provider configuration file (TOML); defaults are used without one.
    #[arg(long, env = "SENDERAUTH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Send every DNS query to this nameserver, as IP:PORT (default: the system's resolvers).
    #[arg(long, env = "SENDERAUTH_NAMESERVER", value_name = "IP:PORT", global = true)]
    pub nameserver: Option<SocketAddr>,
    /// Seconds to wait for one DNS answer (default 3).
    #[arg(long, env = "SENDERAUTH_TIMEOUT", value_name = "SECONDS", global = true)]
    pub timeout: Option<f64>,
    /// Times to send a DNS query before calling it a temporary failure (default 2).
    #[arg(long, env = "SENDERAUTH_ATTEMPTS", global = true)]
    pub attempts: Option<usize>,
}

#[derive(Args, Debug)]
pub struct RecordsArgs {
    /// The From address the customer sends with, like news@example.com.
    pub email: String,
    /// The customer's account id (part of the DKIM selectors and the SPF include).
    #[arg(long)]
    pub account: String,
    #[arg(long, value_enum, default_value_t = RecordsFormat::Table)]
    pub format: RecordsFormat,
    /// Do not read the domain's current records; assume it has no SPF or DMARC record yet.
    #[arg(long)]
    pub offline: bool,
    /// The domain signs with Ed25519 alongside RSA: list its two Ed25519 CNAMEs too.
    #[arg(long)]
    pub ed25519: bool,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFormat {
    Table,
    Json,
    /// A BIND zone-file snippet.
    Zone,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Domains (or From addresses) to verify.
    #[arg(required_unless_present = "input", conflicts_with = "input")]
    pub domains: Vec<String>,
    /// The account the domains belong to; in bulk, the default for rows without one.
    #[arg(long)]
    pub account: Option<String>,
    /// Bulk input: JSON Lines ({"domain": ..., "account": ...}) or CSV (domain,account); - for stdin.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Bulk output, JSON Lines, one object per domain; - for stdout.
    #[arg(long, value_name = "FILE", requires = "input")]
    pub output: Option<PathBuf>,
    /// Output format for domains given on the command line.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Domains checked at once (default 64).
    #[arg(long, env = "SENDERAUTH_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Never show a progress bar, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Domains to analyse.
    #[arg(required = true)]
    pub domains: Vec<String>,
    /// A DKIM selector to check (repeatable).
    #[arg(long = "dkim-selector", value_name = "SELECTOR")]
    pub dkim_selectors: Vec<String>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dns: DnsArgs,
}
