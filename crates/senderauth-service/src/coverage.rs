//! Report coverage and the DMARC events.
//!
//! The gateway counts the mail it signs per From domain, day and receiving organization
//! (`senderauth_core::dmarc::receivers`); the counts are kept in memory and written every few
//! seconds. A domain's summary sets them beside what each receiver reported: a receiver that
//! reported on the domain before, and was sent its mail after the last day it reported on, is
//! "reports missing" once that day is `MISSING_AFTER_DAYS` old (receivers send a day's report
//! within a day or two).
//!
//! Events, recorded for every connected domain with DKIM verified that the report is about, each
//! sent to the account's webhooks:
//! - `dmarc.platform_failing`: a new report has the platform's own mail failing DKIM at the
//!   receiver; the domain is also checked again at once, as after a failed check.
//! - `dmarc.new_source`: a new report has sources not seen before that are not the platform's
//!   (the domain's first report sets the baseline and raises none).
//! - `dmarc.reports_missing`: a receiver stopped reporting (announced once per last report).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use senderauth_core::dmarc::receivers::{receiver_label, receiver_of_recipient};
use senderauth_reports::SourceClass;
use senderauth_store::{SentCount, Store, StoreError};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::reports::{Announced, DAY, MAX_LISTED, date};
use crate::{Service, ServiceError};

/// Days a receiver takes to report on a day's mail: the mail of day `d` is in a report by the
/// end of day `d + REPORT_DELAY_DAYS` (receivers send a day's report during the next day).
pub const REPORT_DELAY_DAYS: i64 = 2;
/// How far back the search for silent receivers looks at what was sent.
const SILENCE_LOOKBACK_DAYS: i64 = 14;
/// How often the counts are written, and how often silent receivers are looked for.
const FLUSH_EVERY: Duration = Duration::from_secs(10);
const SILENCE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often the names of report sources are looked up.
const NAMES_EVERY: Duration = Duration::from_secs(30);

/// What the gateway sent and has not written yet: (From domain, receiver, day) → messages.
#[derive(Debug, Default)]
pub struct SentCounts(Mutex<HashMap<(String, String, i64), i64>>);

impl SentCounts {
    fn add(&self, key: (String, String, i64), messages: i64) {
        if let Ok(mut counts) = self.0.lock() {
            let count = counts.entry(key).or_default();
            *count = count.saturating_add(messages);
        }
    }

    fn take(&self) -> Vec<SentCount> {
        let taken = self.0.lock().map(|mut counts| std::mem::take(&mut *counts)).unwrap_or_default();
        taken
            .into_iter()
            .map(|((header_from, receiver, day), messages)| SentCount { header_from, receiver, day, messages })
            .collect()
    }
}

/// One receiving organization's side of a domain's mail over the summary's days.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReceiverCoverage {
    /// The receiver, named by the domain it reports from (`google.com`).
    pub receiver: String,
    /// Its name for people (`Google`).
    pub name: String,
    /// Messages the platform's gateway sent it.
    pub sent: i64,
    /// Of the messages it reported, those that came from the platform (`platform_ok`,
    /// `platform_failing`).
    pub reported_platform: i64,
    /// Every message it reported.
    pub reported: i64,
    pub reports: i64,
    /// The last day its reports covered (ever), `YYYY-MM-DD`.
    pub last_report: Option<String>,
    /// The last day the gateway sent it the domain's mail in these days.
    pub last_sent: Option<String>,
    /// `reporting`; `reports_missing` (it reported before, and the report on mail it was sent
    /// after its last report is overdue); or `no_reports` (sent mail, never reported: it may not
    /// send reports at all).
    pub state: String,
}

/// Whether a receiver whose reports last covered day `last_report` has stopped reporting, when
/// the last day it was sent mail on whose report is due by `today` is `last_due_sent`.
pub fn reports_missing(last_report: Option<i64>, last_due_sent: Option<i64>) -> bool {
    matches!((last_report, last_due_sent), (Some(report), Some(sent)) if sent > report)
}

impl Service {
    /// Counts a message the gateway signed as `from_domain` and relayed to `recipients`.
    pub fn count_sent<'a>(&self, from_domain: &str, recipients: impl IntoIterator<Item = &'a str>, now: i64) {
        let day = now.div_euclid(DAY);
        let from = from_domain.trim_end_matches('.').to_ascii_lowercase();
        let mut receivers: BTreeMap<String, i64> = BTreeMap::new();
        for recipient in recipients {
            let Some((_, domain)) = recipient.rsplit_once('@') else { continue };
            *receivers.entry(receiver_of_recipient(domain)).or_default() += 1;
        }
        // A message to several recipients at one receiver is one message for each of them in
        // its report, as receivers count.
        for (receiver, messages) in receivers {
            self.sent.add((from.clone(), receiver, day), messages);
        }
    }

    /// Writes the counts kept in memory; returns how many (domain, receiver, day) counts.
    /// When the store fails, the counts are kept for the next time.
    pub async fn flush_sent(&self) -> Result<usize, ServiceError> {
        let counts = self.sent.take();
        match self.worker.store.add_sent(&counts).await {
            Ok(()) => Ok(counts.len()),
            Err(error) => {
                for count in counts {
                    self.sent.add((count.header_from, count.receiver, count.day), count.messages);
                }
                Err(error.into())
            }
        }
    }

    /// What each receiver reported about `domain` against what the gateway sent it, from day
    /// `from` on, the receivers sent the most first.
    pub(crate) async fn receiver_coverage(
        &self,
        domain: &str,
        from: i64,
    ) -> Result<Vec<ReceiverCoverage>, ServiceError> {
        let today = self.now().div_euclid(DAY);
        let store = &self.worker.store;
        // Per receiver: messages, the last day sent, the last day sent whose report is due.
        let mut sent: BTreeMap<String, (i64, i64, Option<i64>)> = BTreeMap::new();
        for count in store.sent(domain, from).await? {
            let entry = sent.entry(count.receiver).or_default();
            entry.0 += count.messages;
            entry.1 = entry.1.max(count.day);
            if count.day <= today - REPORT_DELAY_DAYS {
                entry.2 = entry.2.max(Some(count.day));
            }
        }
        let mut coverage: Vec<ReceiverCoverage> = Vec::new();
        let mut reported: HashMap<String, senderauth_store::ReceiverReported> = store
            .receivers_reported(domain, from)
            .await?
            .into_iter()
            .map(|reported| (reported.receiver.clone(), reported))
            .collect();
        let names: BTreeSet<String> = sent.keys().chain(reported.keys()).cloned().collect();
        for receiver in names {
            let (sent_messages, last_sent, last_due) =
                sent.get(&receiver).copied().map_or((0, None, None), |(messages, day, due)| (messages, Some(day), due));
            let reports = reported.remove(&receiver);
            let last_report = reports.as_ref().map(|reports| reports.last_day);
            let state = if reports_missing(last_report, last_due) {
                "reports_missing"
            } else if last_report.is_none() {
                "no_reports"
            } else {
                "reporting"
            };
            coverage.push(ReceiverCoverage {
                name: receiver_label(&receiver).to_string(),
                sent: sent_messages,
                reported_platform: reports.as_ref().map_or(0, |reports| reports.platform_messages),
                reported: reports.as_ref().map_or(0, |reports| reports.messages),
                reports: reports.as_ref().map_or(0, |reports| reports.reports),
                last_report: last_report.map(date),
                last_sent: last_sent.map(date),
                state: state.to_string(),
                receiver,
            });
        }
        coverage
            .sort_by(|a, b| b.sent.cmp(&a.sent).then(b.reported.cmp(&a.reported)).then(a.receiver.cmp(&b.receiver)));
        Ok(coverage)
    }

    /// Looks for receivers that stopped reporting and raises `dmarc.reports_missing` for each,
    /// once; returns the events recorded.
    pub async fn check_report_coverage(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let today = now.div_euclid(DAY);
        let store = &self.worker.store;
        let mut events = 0;
        for silent in store.silent_receivers(today - SILENCE_LOOKBACK_DAYS, today - REPORT_DELAY_DAYS).await? {
            if !reports_missing(Some(silent.last_report_day), Some(silent.last_sent_day))
                || !store.note_missing(&silent.header_from, &silent.receiver, silent.last_report_day, now).await?
            {
                continue;
            }
            let detail = json!({
                "receiver": silent.receiver,
                "receiver_name": receiver_label(&silent.receiver),
                "last_report": date(silent.last_report_day),
                "last_sent": date(silent.last_sent_day),
            });
            tracing::info!(domain = %silent.header_from, receiver = %silent.receiver, "a receiver stopped sending DMARC reports");
            let recorded = store
                .add_domain_event(&silent.header_from, "dmarc.reports_missing", &detail.to_string(), now, false)
                .await?
                .len();
            self.worker.metrics.record_dmarc_events("dmarc.reports_missing", recorded);
            events += recorded;
        }
        Ok(events)
    }

    /// Writes the gateway's counts every few seconds, looks up the names of report sources
    /// every half minute, and every quarter of an hour looks for silent receivers and deletes the
    /// failure reports past their days, until `stopped`; the counts are written once more at the
    /// end.
    pub async fn run_coverage(self, mut stopped: watch::Receiver<bool>) {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut silence = tokio::time::interval(SILENCE_EVERY);
        let mut names = tokio::time::interval(NAMES_EVERY);
        loop {
            tokio::select! {
                _ = flush.tick() => {
                    if let Err(error) = self.flush_sent().await {
                        tracing::warn!(%error, "the gateway's sent counts were not written; kept for the next try");
                    }
                }
                _ = silence.tick() => {
                    if let Err(error) = self.check_report_coverage().await {
                        tracing::warn!(%error, "looking for receivers that stopped reporting failed");
                    }
                    match self.expire_failure_reports().await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "failure reports past their 7 days deleted"),
                        Err(error) => tracing::warn!(%error, "deleting old failure reports failed"),
                    }
                }
                _ = names.tick() => {
                    if let Err(error) = self.resolve_source_names().await {
                        tracing::warn!(%error, "looking up the names of report sources failed");
                    }
                }
                _ = stopped.changed() => break,
            }
        }
        if let Err(error) = self.flush_sent().await {
            tracing::warn!(%error, "the gateway's last sent counts were not written");
        }
    }
}

/// Records the events of a report just stored: the platform's mail failing (`failing`: per From
/// domain, the messages and some of their sources) and new sources.
pub(crate) async fn announce_report(
    store: &Store,
    report: &Announced<'_>,
    failing: &BTreeMap<String, (i64, BTreeSet<String>)>,
    now: i64,
    metrics: Option<&crate::metrics::Metrics>,
) -> Result<(), StoreError> {
    let count = |event: &str, recorded: usize| {
        if let Some(metrics) = metrics {
            metrics.record_dmarc_events(event, recorded);
        }
    };
    let about = |extra: serde_json::Value| {
        let mut detail = json!({
            "receiver": report.receiver,
            "receiver_name": receiver_label(report.receiver),
            "report": report.id,
            "org_name": report.header.org_name,
            "begin": report.header.begin,
            "end": report.header.end,
        });
        if let (Some(detail), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        detail.to_string()
    };
    for (domain, (messages, sources)) in failing {
        let detail = about(json!({ "failing_messages": messages, "sources": sources }));
        let events = store.add_domain_event(domain, "dmarc.platform_failing", &detail, now, true).await?;
        count("dmarc.platform_failing", events.len());
        if !events.is_empty() {
            tracing::warn!(%domain, receiver = %report.receiver, messages, "the platform's mail failed DKIM at a receiver");
        }
    }
    let domains: BTreeSet<&str> = report.totals.daily.iter().map(|total| total.header_from.as_str()).collect();
    for domain in domains {
        if !store.reported_before(domain, report.id).await? {
            continue;
        }
        let new: Vec<serde_json::Value> = store
            .new_sources(report.id, domain)
            .await?
            .into_iter()
            .filter(|(_, class)| {
                matches!(SourceClass::parse(class), Some(SourceClass::AuthorizedOther | SourceClass::Unauthenticated))
            })
            .map(|(source_ip, class)| json!({ "source_ip": source_ip, "class": class }))
            .collect();
        if new.is_empty() {
            continue;
        }
        let listed: Vec<_> = new.iter().take(MAX_LISTED).cloned().collect();
        let detail = about(json!({ "new_sources": new.len(), "sources": listed }));
        let events = store.add_domain_event(domain, "dmarc.new_source", &detail, now, false).await?;
        count("dmarc.new_source", events.len());
    }
    Ok(())
}
