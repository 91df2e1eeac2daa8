//! The provider configuration: the platform's zone, name templates, sending addresses and the
//! records to recommend. Read from TOML; every key has a default.

use std::path::Path;

use serde::Deserialize;

use crate::cidr::IpNetwork;
use crate::name::DomainName;

/// The platform that sends on behalf of its customers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// The platform's own DNS zone, which hosts DKIM keys and SPF includes.
    pub zone: String,
    /// The domain unauthenticated mail is sent from (`user=example.com@<variable_domain>`).
    pub variable_domain: String,
    /// The addresses and ranges the platform's mail servers send from.
    pub sending_ips: Vec<String>,
    /// Domains the platform uses for other purposes; customers cannot connect them.
    pub reserved_domains: Vec<String>,
    /// Mailbox providers' domains refused besides the built-in list (`data/mailbox_providers.txt`).
    pub mailbox_providers: Vec<String>,
    pub dkim: DkimConfig,
    pub spf: SpfConfig,
    pub dmarc: DmarcConfig,
    pub return_path: ReturnPathConfig,
    pub resolver: ResolverConfig,
}

/// The return-path (envelope sender) domain under each customer's domain, so that SPF passes
/// aligned with the From domain (issue 16).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnPathConfig {
    /// The host under the customer's domain (`{account}` allowed): `rp` makes `rp.<domain>`.
    pub host: String,
    /// Where the customer's CNAME points, in the platform's zone: the platform's DNS serves the
    /// SPF record and the MX there.
    pub target: String,
    /// The hosts that take bounces (the MX at each target; `{zone}` allowed).
    pub bounce_hosts: Vec<String>,
}

impl Default for ReturnPathConfig {
    fn default() -> Self {
        ReturnPathConfig {
            host: "rp".to_string(),
            target: "{domain_dashed}.rp.{zone}".to_string(),
            bounce_hosts: vec!["mx.bounces.{zone}".to_string()],
        }
    }
}

/// How checks reach DNS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResolverConfig {
    /// A nameserver `IP:PORT` to send every query to; unset uses the system's resolvers.
    pub nameserver: Option<String>,
    /// How long to wait for one answer, in milliseconds.
    pub timeout_ms: u64,
    /// How many times to send a query before calling it a temporary failure.
    pub attempts: usize,
    /// How many domains are checked at once in bulk.
    pub concurrency: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig { nameserver: None, timeout_ms: 3000, attempts: 2, concurrency: 64 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// The two selector templates.
    pub selectors: [String; 2],
    /// The two selector templates of a domain's Ed25519 keys, for domains that sign with
    /// Ed25519 alongside RSA (two more CNAMEs).
    pub ed25519_selectors: [String; 2],
    /// Where each customer CNAME points.
    pub target: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpfConfig {
    /// The host customers include.
    pub include: String,
    /// The `all` term to recommend when a record has none, or a permissive one: `-all` or `~all`.
    pub all: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmarcConfig {
    /// The record to recommend when no DMARC policy applies (the report address is added to
    /// its `rua`).
    pub record: String,
    /// Where receivers send the domains' aggregate reports (`{zone}` allowed); empty: the
    /// platform collects none and recommends no `rua`.
    pub reports: String,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            zone: "esp.example".to_string(),
            variable_domain: "send.esp.example".to_string(),
            sending_ips: vec!["192.0.2.0/24".to_string(), "2001:db8:5::/48".to_string()],
            reserved_domains: Vec::new(),
            mailbox_providers: Vec::new(),
            dkim: DkimConfig::default(),
            spf: SpfConfig::default(),
            dmarc: DmarcConfig::default(),
            return_path: ReturnPathConfig::default(),
            resolver: ResolverConfig::default(),
        }
    }
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            selectors: ["sa1-{account}".to_string(), "sa2-{account}".to_string()],
            ed25519_selectors: ["se1-{account}".to_string(), "se2-{account}".to_string()],
            target: "{selector}.{domain_dashed}.dkim.{zone}".to_string(),
        }
    }
}

impl Default for SpfConfig {
    fn default() -> Self {
        SpfConfig { include: "{account}.spf.{zone}".to_string(), all: "-all".to_string() }
    }
}

impl Default for DmarcConfig {
    fn default() -> Self {
        DmarcConfig { record: "v=DMARC1; p=none;".to_string(), reports: "dmarc@reports.{zone}".to_string() }
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}{}: key `{key}`: {message}", line.map(|line| format!(", line {line}")).unwrap_or_default())]
    Invalid { path: String, line: Option<usize>, key: String, message: String },
}

/// The values a name template may use.
pub struct TemplateValues<'a> {
    pub account: &'a str,
    pub domain: &'a DomainName,
    pub selector: Option<&'a str>,
    pub zone: &'a str,
}

const PLACEHOLDERS: [&str; 5] = ["{account}", "{domain}", "{domain_dashed}", "{zone}", "{selector}"];

/// Fills a name template's placeholders, in one pass (a value is never expanded again).
/// `{selector}` stays as it is when there is no selector.
///
/// Each domain's check fills about ten templates (selectors, their targets, the include); five
/// `str::replace` passes each were 2% of a bulk run.
pub fn expand_template(template: &str, values: &TemplateValues<'_>) -> String {
    let mut expanded = String::with_capacity(template.len() + 2 * values.domain.as_str().len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let tail = &rest[open..];
        rest = if let Some(after) = tail.strip_prefix("{account}") {
            expanded.extend(values.account.chars().map(|c| c.to_ascii_lowercase()));
            after
        } else if let Some(after) = tail.strip_prefix("{domain_dashed}") {
            expanded.push_str(&values.domain.dashed());
            after
        } else if let Some(after) = tail.strip_prefix("{domain}") {
            expanded.push_str(values.domain.as_str());
            after
        } else if let Some(after) = tail.strip_prefix("{zone}") {
            expanded.push_str(values.zone);
            after
        } else if let (Some(after), Some(selector)) = (tail.strip_prefix("{selector}"), values.selector) {
            expanded.push_str(selector);
            after
        } else {
            expanded.push('{');
            &tail[1..]
        };
    }
    expanded.push_str(rest);
    expanded
}

impl ProviderConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<ProviderConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        ProviderConfig::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<ProviderConfig, ConfigError> {
        let config: ProviderConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: origin.to_string(),
            message: error.to_string().trim_end().replace('\n', "\n  "),
        })?;
        config.validate(origin).map_err(|error| match error {
            ConfigError::Invalid { path, key, message, .. } => {
                ConfigError::Invalid { line: line_of_key(text, &key), path, key, message }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Checks values the types alone cannot.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: origin.to_string(),
            line: None,
            key: key.to_string(),
            message,
        };
        for (key, value) in [("zone", &self.zone), ("variable_domain", &self.variable_domain)] {
            DomainName::parse(value).map_err(|error| invalid(key, error.to_string()))?;
        }
        for domain in &self.reserved_domains {
            DomainName::parse(domain).map_err(|error| invalid("reserved_domains", error.to_string()))?;
        }
        for domain in &self.mailbox_providers {
            DomainName::parse(domain).map_err(|error| invalid("mailbox_providers", error.to_string()))?;
        }
        if self.sending_ips.is_empty() {
            return Err(invalid(
                "sending_ips",
                "list at least one address or range your mail servers send from".to_string(),
            ));
        }
        for network in &self.sending_ips {
            network.parse::<IpNetwork>().map_err(|message| invalid("sending_ips", message))?;
        }
        let templates = [
            ("dkim.selectors", &self.dkim.selectors[0]),
            ("dkim.selectors", &self.dkim.selectors[1]),
            ("dkim.ed25519_selectors", &self.dkim.ed25519_selectors[0]),
            ("dkim.ed25519_selectors", &self.dkim.ed25519_selectors[1]),
            ("dkim.target", &self.dkim.target),
            ("spf.include", &self.spf.include),
        ];
        for (key, template) in templates {
            check_template(template).map_err(|message| invalid(key, message))?;
        }
        if self.dkim.selectors[0] == self.dkim.selectors[1] {
            return Err(invalid("dkim.selectors", "the two selectors must differ".to_string()));
        }
        let [first, second] = &self.dkim.ed25519_selectors;
        if first == second || self.dkim.selectors.contains(first) || self.dkim.selectors.contains(second) {
            return Err(invalid(
                "dkim.ed25519_selectors",
                "the two Ed25519 selectors must differ from each other and from dkim.selectors".to_string(),
            ));
        }
        if !self.dkim.target.contains("{selector}") {
            return Err(invalid(
                "dkim.target",
                "must contain {selector} so the two selectors point at different keys".to_string(),
            ));
        }
        if !matches!(self.spf.all.as_str(), "-all" | "~all") {
            return Err(invalid(
                "spf.all",
                format!("{:?} is not allowed; use \"-all\" (fail) or \"~all\" (softfail)", self.spf.all),
            ));
        }
        if let Some(nameserver) = &self.resolver.nameserver {
            nameserver.parse::<std::net::SocketAddr>().map_err(|_| {
                invalid(
                    "resolver.nameserver",
                    format!("{nameserver:?} is not IP:PORT, like \"127.0.0.1:53\" or \"[::1]:53\""),
                )
            })?;
        }
        if self.resolver.timeout_ms == 0 || self.resolver.attempts == 0 || self.resolver.concurrency == 0 {
            return Err(invalid(
                "resolver",
                "timeout_ms, attempts and concurrency must each be at least 1".to_string(),
            ));
        }
        self.validate_return_path().map_err(|(key, message)| invalid(key, message))?;
        crate::dmarc::parse::parse_record(&self.dmarc.record)
            .map_err(|error| invalid("dmarc.record", error.to_string()))?;
        if let Some(address) = self.report_address() {
            let valid = address.rsplit_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
                    && DomainName::parse(domain).is_ok()
            });
            if !valid {
                return Err(invalid(
                    "dmarc.reports",
                    format!("{address:?} is not an email address, like \"dmarc@reports.{{zone}}\""),
                ));
            }
        }
        Ok(())
    }

    /// The address receivers send aggregate reports to, `{zone}` filled in; `None` when the
    /// platform collects none.
    pub fn report_address(&self) -> Option<String> {
        let address = self.dmarc.reports.trim();
        (!address.is_empty()).then(|| address.replace("{zone}", &self.zone).to_ascii_lowercase())
    }

    /// The DMARC record to recommend: the configured one with the report address in its `rua`.
    pub fn dmarc_record(&self) -> String {
        match self.report_address() {
            Some(address) => crate::dmarc::merge::with_report_address(&self.dmarc.record, &address).record,
            None => self.dmarc.record.clone(),
        }
    }

    fn validate_return_path(&self) -> Result<(), (&'static str, String)> {
        let host = &self.return_path.host;
        check_template(host).map_err(|message| ("return_path.host", message))?;
        let sample = host.replace("{account}", "x");
        if sample.is_empty() || sample.starts_with('.') || sample.ends_with('.') || !sample.chars().all(is_host_char) {
            return Err((
                "return_path.host",
                format!("{host:?} is not a host name like \"rp\" or \"bounces.{{account}}\""),
            ));
        }
        let target = &self.return_path.target;
        check_template(target).map_err(|message| ("return_path.target", message))?;
        if !(target.contains("{domain}") || target.contains("{domain_dashed}")) || !target.ends_with(".{zone}") {
            return Err((
                "return_path.target",
                format!(
                    "{target:?} must name each domain ({{domain_dashed}}) and end in .{{zone}}, where the platform's DNS serves it"
                ),
            ));
        }
        if self.return_path.bounce_hosts.is_empty() {
            return Err(("return_path.bounce_hosts", "list at least one host that takes bounces".to_string()));
        }
        for host in self.bounce_hosts() {
            DomainName::parse(&host).map_err(|error| ("return_path.bounce_hosts", error.to_string()))?;
        }
        Ok(())
    }

    /// The return-path host of `domain` (`rp.shop.example.com`).
    pub fn return_path_host(&self, account: &str, domain: &DomainName) -> String {
        let values = TemplateValues { account, domain, selector: None, zone: &self.zone };
        format!("{}.{domain}", expand_template(&self.return_path.host, &values)).to_ascii_lowercase()
    }

    /// Where `domain`'s return-path CNAME points, in the platform's zone.
    pub fn return_path_target(&self, account: &str, domain: &DomainName) -> String {
        let values = TemplateValues { account, domain, selector: None, zone: &self.zone };
        expand_template(&self.return_path.target, &values).to_ascii_lowercase()
    }

    /// The hosts that take bounces, `{zone}` filled in.
    pub fn bounce_hosts(&self) -> Vec<String> {
        self.return_path
            .bounce_hosts
            .iter()
            .map(|host| host.replace("{zone}", &self.zone).trim_end_matches('.').to_ascii_lowercase())
            .collect()
    }

    /// The SPF record a return-path target carries: the sending addresses, nothing else.
    pub fn return_path_spf(&self) -> String {
        crate::spf::build::sending_addresses_record(&self.sending_ips)
    }

    /// The sending networks, parsed (validated on load).
    pub fn sending_networks(&self) -> Vec<IpNetwork> {
        self.sending_ips.iter().filter_map(|network| network.parse().ok()).collect()
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// The 1-based line where a dotted key (`spf.all`) is set in TOML text, if it is set there.
fn line_of_key(text: &str, dotted_key: &str) -> Option<usize> {
    let (section, key) = dotted_key.rsplit_once('.').unwrap_or(("", dotted_key));
    let mut current_section = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            current_section = header.trim().to_string();
        } else if current_section == section
            && let Some((name, _)) = line.split_once('=')
            && name.trim() == key
        {
            return Some(index + 1);
        }
    }
    None
}

fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(|| format!("{template:?} has an unclosed '{{'"))?;
        let placeholder = &rest[open..open + close + 1];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "{template:?} uses unknown placeholder {placeholder}; allowed: {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    if template.is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_placeholder_once() {
        let domain = DomainName::parse("mail.my-shop.example").expect("a domain");
        let values =
            TemplateValues { account: "Acme7", domain: &domain, selector: Some("sa1-acme7"), zone: "platform.example" };
        assert_eq!(
            expand_template("{selector}.{domain_dashed}.dkim.{zone}", &values),
            "sa1-acme7.mail-my--shop-example.dkim.platform.example"
        );
        assert_eq!(expand_template("{account}.spf.{zone}", &values), "acme7.spf.platform.example");
        assert_eq!(expand_template("rp.{domain}", &values), "rp.mail.my-shop.example");
        // Anything else in braces is left as it is, and so is {selector} without a selector.
        assert_eq!(expand_template("{other}{{zone}}{", &values), "{other}{platform.example}{");
        let no_selector = TemplateValues { selector: None, ..values };
        assert_eq!(expand_template("{selector}.{zone}", &no_selector), "{selector}.platform.example");
        // A value is not expanded again.
        let odd_zone = TemplateValues { zone: "{account}", ..values };
        assert_eq!(expand_template("{zone}", &odd_zone), "{account}");
    }

    #[test]
    fn defaults_are_valid() {
        ProviderConfig::default().validate("defaults").expect("defaults validate");
    }

    #[test]
    fn the_example_file_documents_the_defaults() {
        let text = include_str!("../../../config/provider.example.toml");
        let example = ProviderConfig::from_toml(text, "provider.example.toml").expect("the example parses");
        assert_eq!(format!("{example:?}"), format!("{:?}", ProviderConfig::default()));
        // Every key is written out (the commented nameserver aside, which has no default).
        for key in [
            "zone",
            "variable_domain",
            "sending_ips",
            "reserved_domains",
            "mailbox_providers",
            "selectors",
            "ed25519_selectors",
            "target",
            "include",
            "all",
            "record",
            "reports",
            "timeout_ms",
            "attempts",
            "concurrency",
            "nameserver",
        ] {
            assert!(text.contains(&format!("{key} =")), "{key} is not documented in the example");
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_allowed_keys() {
        let error =
            ProviderConfig::from_toml("zone = \"esp.example\"\nzon = \"x\"\n", "p.toml").expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("p.toml"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("zon"), "{message}");
        assert!(message.contains("variable_domain"), "{message}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[spf]\nall = \"+all\"\n", "spf.all"),
            ("sending_ips = [\"192.0.2.0/33\"]\n", "sending_ips"),
            ("[dkim]\ntarget = \"{selektor}.x\"\n", "dkim.target"),
            ("zone = \"co.uk\"\n", "zone"),
            ("[dmarc]\nrecord = \"v=DMARC1; p=maybe\"\n", "dmarc.record"),
            ("[dmarc]\nreports = \"reports.esp.example\"\n", "dmarc.reports"),
            ("[dkim]\ned25519_selectors = [\"sa1-{account}\", \"e-{account}\"]\n", "dkim.ed25519_selectors"),
            ("[return_path]\nhost = \"rp.{domain}\"\n", "return_path.host"),
            ("[return_path]\nhost = \"rp bounce\"\n", "return_path.host"),
            ("[return_path]\ntarget = \"rp.{zone}\"\n", "return_path.target"),
            ("[return_path]\ntarget = \"{domain_dashed}.rp.example.net\"\n", "return_path.target"),
            ("[return_path]\nbounce_hosts = []\n", "return_path.bounce_hosts"),
            ("[return_path]\nbounce_hosts = [\"not a host\"]\n", "return_path.bounce_hosts"),
        ];
        for (text, key) in cases {
            let message = ProviderConfig::from_toml(text, "p.toml").expect_err(text).to_string();
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
            let line = text.lines().count();
            assert!(message.contains(&format!("p.toml, line {line}:")), "{text}: {message}");
        }
    }
}
