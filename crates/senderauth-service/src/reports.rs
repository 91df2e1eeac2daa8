//! DMARC aggregate reports: taken in (from the report listener, the API, the CLI), stored once,
//! each row given its class (whose mail it was: `senderauth_reports::attribution`), and read
//! back per domain. A report about a domain is shown only to an account that has the domain
//! connected with DKIM verified (a domain that merely typed in sees nothing); everything else
//! stays for the operator.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use senderauth_core::cidr::IpNetwork;
use senderauth_core::dmarc::receivers::receiver_of_report;
use senderauth_core::token::hex;
use senderauth_reports::{ReportEvent, ReportHeader, ReportRecord, SourceClass, classify, passed, stream_reports};
use senderauth_store::{
    DailyTotal, ReportHeaderRecord, ReportIdentity, ReportRowRecord, ReportSummary, ReportTotals, ReportWriter,
    StoredReport,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domains::{DmarcFindings, LatestCheck, not_found};
use crate::metrics::ReportOutcome;
use crate::{Service, ServiceError};

/// Records handed from the parser to the store at a time.
const BATCH: usize = 500;
/// The most sources an event lists.
pub(crate) const MAX_LISTED: usize = 20;
/// Sources of a report counted while it is read (the rest are not named).
const MAX_SOURCES_COUNTED: usize = 10_000;
/// The largest sources of each report whose reverse DNS names are looked up.
const NAMED_SOURCES: usize = 25;
/// The most days a summary covers.
pub const MAX_DAYS: i64 = 400;
pub(crate) const DAY: i64 = 86_400;

/// How a report came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportSource {
    Smtp,
    Imap,
    Api,
    Import,
}

impl ReportSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportSource::Smtp => "smtp",
            ReportSource::Imap => "imap",
            ReportSource::Api => "api",
            ReportSource::Import => "import",
        }
    }
}

/// A report taken in.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IngestedReport {
    /// The stored report's id (the one stored before, for a copy).
    pub id: i64,
    pub org_name: String,
    pub report_id: String,
    pub policy_domain: String,
    pub begin: i64,
    pub end: i64,
    pub records: i64,
    pub messages: i64,
    /// A copy of a report already stored (a re-send, or a second MX): counted once.
    pub duplicate: bool,
    /// A copy whose rows differ from the stored report's.
    pub conflicting: bool,
    /// Where the report departs from the standard, as read.
    pub deviations: Vec<String>,
}

/// A report in the input that was not stored, and why.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RefusedReport {
    /// The attachment's file name, when it had one.
    pub file: Option<String>,
    pub error: String,
}

/// What one input (a file, a message) gave.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Ingested {
    pub reports: Vec<IngestedReport>,
    pub refused: Vec<RefusedReport>,
}

/// Messages of one class.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClassTotal {
    /// `platform_ok`, `platform_failing`, `forwarded_ours`, `authorized_other` or `unauthenticated`.
    pub class: String,
    pub passed: i64,
    pub failed: i64,
}

/// Messages on one day.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DayTotal {
    /// `YYYY-MM-DD` (UTC), the first day of the reports counted.
    pub day: String,
    pub passed: i64,
    pub failed: i64,
}

/// What receivers reported about a domain's mail over the last days.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DmarcSummary {
    pub domain: String,
    pub days: i64,
    /// Reports are shown once the domain's DKIM is verified; until then this is false and
    /// the totals are empty.
    pub available: bool,
    pub messages: i64,
    /// The share of the domain's mail that passed DMARC aligned, mail forwarded by others
    /// (`forwarded_ours`) left out; none without mail.
    pub pass_share: Option<f64>,
    pub classes: Vec<ClassTotal>,
    pub per_day: Vec<DayTotal>,
    /// Where receivers should send the reports (the `rua` the records carry).
    pub report_address: Option<String>,
    /// The way to enforcement, from the last 14 and 30 days.
    pub recommendation: Option<Recommendation>,
    /// What each receiving organization reported against what the platform sent it.
    pub receivers: Vec<crate::coverage::ReceiverCoverage>,
}

/// The thresholds of the way to enforcement: a product choice (the README says why), set in
/// `[service.reports]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnforcementThresholds {
    /// Messages reported over 14 days below which nothing is judged.
    pub min_messages: i64,
    /// The share of mail passing DMARC over 14 days that makes a domain ready for quarantine.
    pub quarantine_share: f64,
    /// The share over 30 days that makes a domain at quarantine ready for reject.
    pub reject_share: f64,
}

impl Default for EnforcementThresholds {
    fn default() -> Self {
        EnforcementThresholds { min_messages: 100, quarantine_share: 0.98, reject_share: 0.995 }
    }
}

/// Messages reported over a window of days.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Window {
    pub messages: i64,
    /// The share that passed DMARC, forwarded mail left out; none without mail.
    pub pass_share: Option<f64>,
    /// Messages from the platform whose signature did not pass.
    pub platform_failing: i64,
    /// Days with reports.
    pub days_reported: i64,
}

/// Whether a domain can move from `p=none` towards `p=reject`, and the evidence.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Recommendation {
    /// `not_enough_reports`, `stay_at_none`, `ready_for_quarantine`, `ready_for_reject` or
    /// `enforced` (already at `p=reject`).
    pub verdict: String,
    /// The policy that applies now, as of the latest check.
    pub current_policy: Option<String>,
    /// Why, in sentences.
    pub reasons: Vec<String>,
    /// The record to publish next, when the domain is ready and has a record of its own.
    pub next_record: Option<String>,
    pub last_14_days: Window,
    pub last_30_days: Window,
    /// Senders that failed DMARC over 30 days and are not the platform, most messages first.
    pub failing_senders: Vec<SourceView>,
}

/// A source of a domain's mail.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SourceView {
    pub source_ip: String,
    pub class: String,
    pub passed: i64,
    pub failed: i64,
    /// The last day it was reported (`YYYY-MM-DD`).
    pub last_seen: String,
    /// Its reverse DNS name, looked up in the background and shown once it resolves back to
    /// the address.
    pub name: Option<String>,
}

/// A stored report as listed.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub id: i64,
    pub org_name: String,
    pub org_email: Option<String>,
    pub report_id: String,
    pub policy_domain: String,
    pub begin: i64,
    pub end: i64,
    /// `dmarc2` (RFC 9990) or `rfc7489`.
    pub format: String,
    pub records: i64,
    pub messages: i64,
    /// `smtp`, `imap`, `api` or `import`.
    pub source: String,
    pub received_at: i64,
    /// Further copies received (counted once).
    pub duplicates: i64,
    /// Copies whose rows differed.
    pub conflicts: i64,
}

/// One row of a report about the domain.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RowView {
    pub source_ip: String,
    pub messages: i64,
    pub disposition: String,
    pub dkim: String,
    pub spf: String,
    pub class: String,
    /// The signatures' and SPF's own results and the receiver's reasons, as reported.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One report: its header and its rows about the domain.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReportDetail {
    pub report: ReportView,
    /// The policy published, the receiver's errors and the deviations read.
    #[schema(value_type = Object)]
    pub header: serde_json::Value,
    pub rows: Vec<RowView>,
}

/// The report being stored.
struct Current<'s> {
    writer: Option<ReportWriter<'s>>,
    /// Why it is not stored (not about one of the caller's domains).
    refused: Option<String>,
    digest: Sha256,
    records: i64,
    messages: i64,
    daily: BTreeMap<(String, i64, SourceClass), (i64, i64)>,
    /// Per From domain, the platform's failing messages and (some of) their sources.
    failing: BTreeMap<String, (i64, BTreeSet<String>)>,
    /// Messages per source, for the first `MAX_SOURCES_COUNTED` sources (whose names are looked
    /// up: the largest of them).
    sources: HashMap<std::net::IpAddr, i64>,
}

impl Service {
    /// Takes in every DMARC aggregate report in `input`: see [`Intake::ingest`].
    pub async fn ingest_reports(
        &self,
        input: Vec<u8>,
        source: ReportSource,
        account: Option<i64>,
    ) -> Result<Ingested, ServiceError> {
        let intake = Intake {
            store: &self.worker.store,
            provider: &self.worker.provider,
            now: self.now(),
            metrics: Some(&self.worker.metrics),
        };
        intake.ingest(input, source, account).await
    }
}

/// What taking reports in needs: the store and the platform's sending addresses (so that the
/// CLI's `dmarc import` needs no more than the store and the configuration).
pub struct Intake<'a> {
    pub store: &'a senderauth_store::Store,
    pub provider: &'a senderauth_core::config::ProviderConfig,
    /// The time the reports are received at.
    pub now: i64,
    /// Where what was taken in is counted (`/metrics`); the CLI has none.
    pub metrics: Option<&'a crate::metrics::Metrics>,
}

impl Intake<'_> {
    /// Takes in every DMARC aggregate report in `input` (XML, gzip, zip or a mail message), each
    /// stored in one transaction as it is read. `account`: the caller, for reports handed in
    /// through the API: only reports about its own domains (DKIM verified) are taken. Err: the
    /// input holds no report (`InvalidReport`), or the store failed (nothing of the report
    /// being written is kept).
    pub async fn ingest(
        &self,
        input: Vec<u8>,
        source: ReportSource,
        account: Option<i64>,
    ) -> Result<Ingested, ServiceError> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Parsed>(4);
        let reader = tokio::task::spawn_blocking(move || {
            stream_reports(&input, BATCH, |event| {
                let parsed = match event {
                    ReportEvent::Records { header, records } => Parsed::Records { header: header.clone(), records },
                    ReportEvent::Finished { header, xml_gzip } => Parsed::Finished { header: *header, xml_gzip },
                    ReportEvent::Failed { file, error } => Parsed::Failed { file, error },
                };
                sender.blocking_send(parsed).map_err(|_| "the report was not taken".to_string())
            })
        });
        let store = self.store;
        let networks = self.provider.sending_networks();
        let mut selectors: HashMap<String, Vec<String>> = HashMap::new();
        let mut ingested = Ingested::default();
        let mut current: Option<Current<'_>> = None;
        let outcome: Result<(), ServiceError> = async {
            while let Some(parsed) = receiver.recv().await {
                match parsed {
                    Parsed::Records { header, records } => {
                        let report = match &mut current {
                            Some(report) => report,
                            None => current.insert(self.start_report(&header, source, account).await?),
                        };
                        if report.refused.is_some() {
                            continue;
                        }
                        let day = header.begin.div_euclid(DAY);
                        let mut rows = Vec::with_capacity(records.len());
                        for record in &records {
                            let class = self.classify(record, &networks, &mut selectors).await?;
                            let ok = passed(record);
                            let counted = i64::try_from(record.count).unwrap_or(i64::MAX);
                            report.records += 1;
                            report.messages = report.messages.saturating_add(counted);
                            report.digest.update(serde_json::to_vec(record).unwrap_or_default());
                            let total =
                                report.daily.entry((record.header_from.to_ascii_lowercase(), day, class)).or_default();
                            if ok {
                                total.0 = total.0.saturating_add(counted);
                            } else {
                                total.1 = total.1.saturating_add(counted);
                            }
                            let known = report.sources.len() < MAX_SOURCES_COUNTED;
                            if let Some(count) = report.sources.get_mut(&record.source_ip) {
                                *count = count.saturating_add(counted);
                            } else if known {
                                report.sources.insert(record.source_ip, counted);
                            }
                            if class == SourceClass::PlatformFailing && !ok {
                                let failing =
                                    report.failing.entry(record.header_from.to_ascii_lowercase()).or_default();
                                failing.0 = failing.0.saturating_add(counted);
                                if failing.1.len() < MAX_LISTED {
                                    failing.1.insert(record.source_ip.to_string());
                                }
                            }
                            rows.push(row_record(record, day, class));
                        }
                        if let Some(writer) = &mut report.writer {
                            writer.add_rows(&rows).await?;
                        }
                    }
                    Parsed::Finished { header, xml_gzip } => {
                        let report = match current.take() {
                            Some(report) => report,
                            None => self.start_report(&header, source, account).await?,
                        };
                        if let Some(error) = report.refused {
                            self.count(ReportOutcome::Refused);
                            ingested.refused.push(RefusedReport { file: None, error });
                            continue;
                        }
                        let header_record = header_record(&header);
                        let receiver = receiver_of_report(&header.org_name, header.email.as_deref());
                        let totals = ReportTotals {
                            digest: hex(&report.digest.finalize()),
                            record_count: report.records,
                            message_count: report.messages,
                            xml_gzip,
                            daily: report
                                .daily
                                .into_iter()
                                .map(|((header_from, day, class), (passed, failed))| DailyTotal {
                                    header_from,
                                    day,
                                    class: class.as_str().to_string(),
                                    passed,
                                    failed,
                                })
                                .collect(),
                            receiver: receiver.clone(),
                        };
                        let writer = match report.writer {
                            Some(writer) => writer,
                            None => store.report_writer().await?,
                        };
                        let stored = writer.finish(&header_record, source.as_str(), &totals, self.now).await?;
                        let (id, duplicate, conflicting) = match stored {
                            StoredReport::New { id } => (id, false, false),
                            StoredReport::Duplicate { id, conflicting } => (id, true, conflicting),
                        };
                        if let Some(metrics) = self.metrics {
                            if duplicate {
                                metrics.record_report(ReportOutcome::Duplicate);
                            } else {
                                metrics.record_report(ReportOutcome::Stored);
                                for total in &totals.daily {
                                    if let Some(class) = SourceClass::parse(&total.class) {
                                        let messages = total.passed.saturating_add(total.failed);
                                        metrics.record_report_messages(class, u64::try_from(messages).unwrap_or(0));
                                    }
                                }
                            }
                        }
                        if !duplicate {
                            let about = Announced { id, receiver: &receiver, header: &header, totals: &totals };
                            self.announce(&about, &report.failing).await;
                            self.queue_names(report.sources).await;
                        }
                        if conflicting {
                            tracing::warn!(
                                org = %header.org_name, report = %header.report_id, domain = %header.policy.domain,
                                "a copy of a stored DMARC report has other rows; the first copy is kept"
                            );
                        }
                        ingested.reports.push(IngestedReport {
                            id,
                            org_name: header.org_name.clone(),
                            report_id: header.report_id.clone(),
                            policy_domain: header_record.identity.policy_domain.clone(),
                            begin: header.begin,
                            end: header.end,
                            records: totals.record_count,
                            messages: totals.message_count,
                            duplicate,
                            conflicting,
                            deviations: header.deviations.clone(),
                        });
                    }
                    Parsed::Failed { file, error } => {
                        // Whatever of it was written goes with its transaction.
                        current = None;
                        self.count(ReportOutcome::Refused);
                        ingested.refused.push(RefusedReport { file, error });
                    }
                }
            }
            Ok(())
        }
        .await;
        drop(current);
        // A failure above stops taking records: the reader then ends at its next send.
        drop(receiver);
        let read =
            reader.await.map_err(|error| ServiceError::Internal(format!("the report reader failed: {error}")))?;
        outcome?;
        if let Err(error) = read {
            self.count(ReportOutcome::Refused);
            return Err(ServiceError::InvalidReport(error.to_string()));
        }
        if ingested.reports.is_empty() && ingested.refused.is_empty() {
            self.count(ReportOutcome::Refused);
            return Err(ServiceError::InvalidReport("no DMARC aggregate report was found in the input".to_string()));
        }
        Ok(ingested)
    }

    /// Raises the DMARC events a new report gives (see `coverage`): the platform's mail failing,
    /// sources not seen before. The report is stored whatever happens here.
    async fn announce(&self, report: &Announced<'_>, failing: &BTreeMap<String, (i64, BTreeSet<String>)>) {
        if let Err(error) = crate::coverage::announce_report(self.store, report, failing, self.now, self.metrics).await
        {
            tracing::error!(%error, report = %report.header.report_id, "the events of a stored DMARC report were not recorded");
        }
    }

    /// Queues the report's largest sources for a reverse DNS lookup in the background.
    async fn queue_names(&self, sources: HashMap<std::net::IpAddr, i64>) {
        let mut largest: Vec<(std::net::IpAddr, i64)> = sources.into_iter().collect();
        largest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let names: Vec<String> = largest.iter().take(NAMED_SOURCES).map(|(ip, _)| ip.to_string()).collect();
        if let Err(error) = self.store.queue_source_names(&names).await {
            tracing::warn!(%error, "the sources of a stored DMARC report were not queued for their names");
        }
    }

    fn count(&self, outcome: ReportOutcome) {
        if let Some(metrics) = self.metrics {
            metrics.record_report(outcome);
        }
    }

    /// Starts storing a report, or says why it is not stored.
    async fn start_report(
        &self,
        header: &ReportHeader,
        source: ReportSource,
        account: Option<i64>,
    ) -> Result<Current<'_>, ServiceError> {
        let mut current = Current {
            writer: None,
            refused: None,
            digest: Sha256::new(),
            records: 0,
            messages: 0,
            daily: BTreeMap::new(),
            failing: BTreeMap::new(),
            sources: HashMap::new(),
        };
        let policy_domain = header.policy.domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(account) = account
            && !self.store.covers_policy_domain(account, &policy_domain).await?
        {
            current.refused = Some(format!(
                "the report is about {policy_domain}, which is not one of this account's domains with DKIM verified"
            ));
            return Ok(current);
        }
        let mut writer = self.store.report_writer().await?;
        writer.start(&header_record(header), source.as_str(), self.now).await?;
        current.writer = Some(writer);
        Ok(current)
    }

    /// A row's class: whether its source is one of the platform's addresses and its signatures
    /// the platform's selectors (looked up once per domain per input).
    async fn classify(
        &self,
        record: &ReportRecord,
        networks: &[IpNetwork],
        selectors: &mut HashMap<String, Vec<String>>,
    ) -> Result<SourceClass, ServiceError> {
        for signature in &record.dkim_results {
            let domain = signature.domain.trim_end_matches('.').to_ascii_lowercase();
            if !selectors.contains_key(&domain) && selectors.len() < 10_000 {
                let found = self.store.platform_selectors(&domain).await?;
                selectors.insert(domain, found.into_iter().map(|selector| selector.to_ascii_lowercase()).collect());
            }
        }
        let from_platform = networks.iter().any(|network| network.contains(record.source_ip));
        Ok(classify(record, from_platform, |domain, selector| {
            selectors
                .get(&domain.trim_end_matches('.').to_ascii_lowercase())
                .is_some_and(|issued| issued.iter().any(|issued| issued.eq_ignore_ascii_case(selector)))
        }))
    }
}

impl Service {
    /// One of the account's domains and whether its reports are shown (DKIM verified);
    /// another account's domain is not found.
    pub(crate) async fn verified_domain(&self, account: i64, domain: &str) -> Result<(String, bool), ServiceError> {
        let name = self.owned_domain(account, domain).await?.0.to_string();
        let verified = self.worker.store.dkim_verified(account, &name).await?.ok_or_else(|| not_found(domain))?;
        Ok((name, verified))
    }

    /// What receivers reported about one of the account's domains over the last `days`.
    pub async fn dmarc_summary(&self, account: i64, domain: &str, days: i64) -> Result<DmarcSummary, ServiceError> {
        check_days(days)?;
        let (name, verified) = self.verified_domain(account, domain).await?;
        let mut summary = DmarcSummary {
            domain: name.clone(),
            days,
            available: verified,
            messages: 0,
            pass_share: None,
            classes: Vec::new(),
            per_day: Vec::new(),
            report_address: self.worker.provider.report_address(),
            recommendation: None,
            receivers: Vec::new(),
        };
        if !verified {
            return Ok(summary);
        }
        let from = self.now().div_euclid(DAY) - days + 1;
        let totals = self.worker.store.daily_totals(&name, from).await?;
        let mut classes: BTreeMap<SourceClass, (i64, i64)> = BTreeMap::new();
        let mut per_day: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for total in &totals {
            let Some(class) = SourceClass::parse(&total.class) else { continue };
            let entry = classes.entry(class).or_default();
            entry.0 += total.passed;
            entry.1 += total.failed;
            let day = per_day.entry(total.day).or_default();
            day.0 += total.passed;
            day.1 += total.failed;
        }
        summary.messages = classes.values().map(|(passed, failed)| passed + failed).sum();
        let (counted_passed, counted) = classes
            .iter()
            .filter(|(class, _)| **class != SourceClass::ForwardedOurs)
            .fold((0, 0), |(p, all), (_, (passed, failed))| (p + passed, all + passed + failed));
        summary.pass_share = (counted > 0).then(|| counted_passed as f64 / counted as f64);
        summary.classes = classes
            .into_iter()
            .map(|(class, (passed, failed))| ClassTotal { class: class.as_str().to_string(), passed, failed })
            .collect();
        summary.per_day =
            per_day.into_iter().map(|(day, (passed, failed))| DayTotal { day: date(day), passed, failed }).collect();
        // The record that applies now, as of the latest check.
        let page = self.worker.store.domain_page(account, &name).await?;
        let latest: Option<LatestCheck> =
            page.and_then(|page| page.result).and_then(|result| serde_json::from_str(&result.result_json).ok());
        let dmarc = latest.map(|latest| latest.dmarc).unwrap_or_default();
        summary.recommendation = Some(self.recommendation(&name, &dmarc).await?);
        summary.receivers = self.receiver_coverage(&name, from).await?;
        Ok(summary)
    }

    /// The way to enforcement of a domain whose reports are shown (the caller checked), with
    /// `dmarc` what its latest check found: the verdict with its evidence from the last 14 and
    /// 30 days.
    pub async fn recommendation(&self, domain: &str, dmarc: &DmarcFindings) -> Result<Recommendation, ServiceError> {
        let today = self.now().div_euclid(DAY);
        let store = &self.worker.store;
        let totals = store.daily_totals(domain, today - 29).await?;
        let window = |days: i64| {
            let mut window = Window::default();
            let (mut passed, mut counted, mut reported) = (0, 0, std::collections::BTreeSet::new());
            for total in totals.iter().filter(|total| total.day > today - days) {
                let messages = total.passed + total.failed;
                window.messages += messages;
                reported.insert(total.day);
                match SourceClass::parse(&total.class) {
                    Some(SourceClass::ForwardedOurs) => {}
                    Some(class) => {
                        passed += total.passed;
                        counted += messages;
                        if class == SourceClass::PlatformFailing {
                            window.platform_failing += total.failed;
                        }
                    }
                    None => {}
                }
            }
            window.pass_share = (counted > 0).then(|| passed as f64 / counted as f64);
            window.days_reported = reported.len() as i64;
            window
        };
        let (recent, month) = (window(14), window(30));
        let failing_senders: Vec<SourceView> = store
            .report_sources(domain, today - 29, None, true, 50)
            .await?
            .into_iter()
            .map(source_view)
            .filter(|source| {
                matches!(
                    SourceClass::parse(&source.class),
                    Some(SourceClass::Unauthenticated | SourceClass::AuthorizedOther)
                )
            })
            .take(10)
            .collect();
        let current_policy = dmarc.policy.clone();
        let own_record = dmarc.record.clone().filter(|_| !dmarc.inherited);
        let thresholds = self.enforcement;
        let percent = |share: Option<f64>| share.map_or("no".to_string(), |share| format!("{:.1}%", share * 100.0));
        let senders = failing_senders
            .iter()
            .take(3)
            .map(|source| format!("{} ({} failing)", source.source_ip, source.failed))
            .collect::<Vec<_>>()
            .join(", ");
        let mut reasons = Vec::new();
        let (verdict, next_policy) = if current_policy.as_deref() == Some("reject") {
            reasons.push("The domain is at p=reject: receivers refuse mail that fails DMARC.".to_string());
            ("enforced", None)
        } else if recent.messages < thresholds.min_messages {
            reasons.push(format!(
                "Receivers reported {} messages from this domain in the last 14 days; at least {} are needed to judge. \
                 Stay at p=none meanwhile.",
                recent.messages, thresholds.min_messages
            ));
            ("not_enough_reports", None)
        } else if recent.platform_failing > 0 {
            reasons.push(format!(
                "{} messages the platform sent failed DKIM at receivers in the last 14 days: the keys or their DNS need \
                 a look before any enforcement (see the platform_failing sources).",
                recent.platform_failing
            ));
            ("stay_at_none", None)
        } else if recent.pass_share.unwrap_or(0.0) < thresholds.quarantine_share {
            reasons.push(format!(
                "{} of the domain's mail passed DMARC in the last 14 days; {:.1}% is needed before p=quarantine.",
                percent(recent.pass_share),
                thresholds.quarantine_share * 100.0
            ));
            if !senders.is_empty() {
                reasons.push(format!(
                    "Mail that fails comes from {senders}: set those senders up to sign for the domain (or send from \
                     the platform), or make sure they are not yours, before enforcing."
                ));
            }
            ("stay_at_none", None)
        } else if current_policy.as_deref() == Some("quarantine")
            && month.pass_share.unwrap_or(0.0) >= thresholds.reject_share
            && month.days_reported >= 21
        {
            reasons.push(format!(
                "{} of the domain's mail passed DMARC over the last 30 days ({} days reported) at p=quarantine: \
                 ready for p=reject.",
                percent(month.pass_share),
                month.days_reported
            ));
            ("ready_for_reject", Some("reject"))
        } else if current_policy.as_deref() == Some("quarantine") {
            reasons.push(format!(
                "At p=quarantine, {} passed over the last 30 days ({} days reported); p=reject wants {:.1}% over at \
                 least 21 days of reports.",
                percent(month.pass_share),
                month.days_reported,
                thresholds.reject_share * 100.0
            ));
            ("stay_at_quarantine", None)
        } else {
            reasons.push(format!(
                "{} of the domain's mail passed DMARC in the last 14 days, and the platform's own mail passes: ready for \
                 p=quarantine (receivers put failing mail in spam). After 30 days there, p=reject.",
                percent(recent.pass_share)
            ));
            ("ready_for_quarantine", Some("quarantine"))
        };
        let next_record =
            next_policy.and_then(|policy| own_record.as_deref().map(|record| with_policy(record, policy)));
        if next_policy.is_some() && next_record.is_none() {
            reasons
                .push("The record that applies is the organizational domain's: the change is made there.".to_string());
        }
        Ok(Recommendation {
            verdict: verdict.to_string(),
            current_policy,
            reasons,
            next_record,
            last_14_days: recent,
            last_30_days: month,
            failing_senders,
        })
    }

    /// The sources of a domain's mail over the last `days`, the most messages first.
    pub async fn dmarc_sources(
        &self,
        account: i64,
        domain: &str,
        days: i64,
        class: Option<&str>,
        failing_only: bool,
        limit: i64,
    ) -> Result<Vec<SourceView>, ServiceError> {
        check_days(days)?;
        if let Some(class) = class
            && SourceClass::parse(class).is_none()
        {
            return Err(ServiceError::InvalidSourceClass(class.to_string()));
        }
        let (name, verified) = self.verified_domain(account, domain).await?;
        if !verified {
            return Ok(Vec::new());
        }
        let from = self.now().div_euclid(DAY) - days + 1;
        let sources = self.worker.store.report_sources(&name, from, class, failing_only, limit).await?;
        Ok(sources.into_iter().map(source_view).collect())
    }

    /// The reports with rows about a domain, newest first.
    pub async fn dmarc_reports(&self, account: i64, domain: &str, limit: i64) -> Result<Vec<ReportView>, ServiceError> {
        let (name, verified) = self.verified_domain(account, domain).await?;
        if !verified {
            return Ok(Vec::new());
        }
        Ok(self.worker.store.reports_about(&name, limit).await?.into_iter().map(report_view).collect())
    }

    /// One report about a domain, with its rows about that domain.
    pub async fn dmarc_report(&self, account: i64, domain: &str, id: i64) -> Result<ReportDetail, ServiceError> {
        let (name, verified) = self.verified_domain(account, domain).await?;
        let report = match verified {
            true => self.worker.store.report_about(&name, id).await?,
            false => None,
        };
        let report = report.ok_or(ServiceError::ReportNotFound(id))?;
        let header = serde_json::from_str(&report.header_json).unwrap_or(serde_json::Value::Null);
        let rows = self.worker.store.report_rows(id, &name).await?;
        Ok(ReportDetail {
            report: report_view(report),
            header,
            rows: rows
                .into_iter()
                .map(|row| RowView {
                    source_ip: row.source_ip,
                    messages: row.message_count,
                    disposition: row.disposition,
                    dkim: row.dkim,
                    spf: row.spf,
                    class: row.class,
                    detail: serde_json::from_str(&row.detail_json).unwrap_or(serde_json::Value::Null),
                })
                .collect(),
        })
    }

    /// A report's original XML (gzip), for the account whose domain is its policy domain (the
    /// XML holds every row, and rows about other domains are not this account's to read).
    pub async fn dmarc_report_xml(&self, account: i64, domain: &str, id: i64) -> Result<Vec<u8>, ServiceError> {
        let (name, verified) = self.verified_domain(account, domain).await?;
        let report = match verified {
            true => self.worker.store.report_about(&name, id).await?,
            false => None,
        };
        if report.is_none_or(|report| report.identity.policy_domain != name) {
            return Err(ServiceError::ReportNotFound(id));
        }
        self.worker.store.report_xml(id).await?.filter(|xml| !xml.is_empty()).ok_or(ServiceError::ReportNotFound(id))
    }
}

/// A report just stored, as its events describe it.
pub(crate) struct Announced<'a> {
    pub id: i64,
    pub receiver: &'a str,
    pub header: &'a ReportHeader,
    pub totals: &'a ReportTotals,
}

/// What the parser hands the store.
enum Parsed {
    Records { header: ReportHeader, records: Vec<ReportRecord> },
    Finished { header: ReportHeader, xml_gzip: Vec<u8> },
    Failed { file: Option<String>, error: String },
}

/// A DMARC record with its `p=` set to `policy`, every other tag kept.
fn with_policy(record: &str, policy: &str) -> String {
    let parts: Vec<String> = record
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((tag, _)) if tag.trim().eq_ignore_ascii_case("p") => format!("p={policy}"),
            _ => part.to_string(),
        })
        .collect();
    format!("{};", parts.join("; "))
}

fn check_days(days: i64) -> Result<(), ServiceError> {
    if (1..=MAX_DAYS).contains(&days) { Ok(()) } else { Err(ServiceError::InvalidReportDays { max: MAX_DAYS }) }
}

fn header_record(header: &ReportHeader) -> ReportHeaderRecord {
    ReportHeaderRecord {
        identity: ReportIdentity {
            org_name: header.org_name.clone(),
            report_id: header.report_id.clone(),
            policy_domain: header.policy.domain.trim_end_matches('.').to_ascii_lowercase(),
            begin_at: header.begin,
            end_at: header.end,
        },
        org_email: header.email.clone(),
        format: match header.format {
            Some(senderauth_reports::aggregate::ReportFormat::Dmarc2) => "dmarc2",
            _ => "rfc7489",
        }
        .to_string(),
        header_json: serde_json::to_string(header).unwrap_or_default(),
    }
}

fn row_record(record: &ReportRecord, day: i64, class: SourceClass) -> ReportRowRecord {
    ReportRowRecord {
        header_from: record.header_from.to_ascii_lowercase(),
        day,
        source_ip: record.source_ip.to_string(),
        message_count: i64::try_from(record.count).unwrap_or(i64::MAX),
        disposition: record.disposition.clone(),
        dkim: record.dkim.clone(),
        spf: record.spf.clone(),
        class: class.as_str().to_string(),
        detail_json: serde_json::json!({
            "envelope_from": record.envelope_from,
            "envelope_to": record.envelope_to,
            "dkim": record.dkim_results,
            "spf": record.spf_results,
            "reasons": record.reasons,
        })
        .to_string(),
    }
}

fn report_view(report: ReportSummary) -> ReportView {
    ReportView {
        id: report.id,
        org_name: report.identity.org_name,
        org_email: report.org_email,
        report_id: report.identity.report_id,
        policy_domain: report.identity.policy_domain,
        begin: report.identity.begin_at,
        end: report.identity.end_at,
        format: report.format,
        records: report.record_count,
        messages: report.message_count,
        source: report.source,
        received_at: report.received_at,
        duplicates: report.duplicates,
        conflicts: report.conflicts,
    }
}

fn source_view(source: senderauth_store::SourceTotal) -> SourceView {
    SourceView {
        source_ip: source.source_ip,
        class: source.class,
        passed: source.passed,
        failed: source.failed,
        last_seen: date(source.last_day),
        name: source.name,
    }
}

/// A day since 1970 as `YYYY-MM-DD` (UTC).
pub fn date(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(DAY))
        .map(|at| format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day()))
        .unwrap_or_default()
}
