//! Report coverage and the DMARC events.
//!
//! The gateway counts the mail it signs per From domain, day and receiving organization
//! (`senderauth_core::dmarc::receivers`); the counts are kept in memory and written every few
//! seconds. A domain's summary sets them beside what each receiver reported: a receiver that
//! reported on the domain before is "reports missing" when it was sent the domain's mail on a
//! day after the last one it reported on, and that day's report is overdue
//! (`REPORT_DELAY_DAYS`).
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

use senderauth_core::dmarc::receivers::{receiver_label, receiver_of_recipient};
use senderauth_reports::SourceClass;
use senderauth_store::{SentCount, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::reports::{Announced, DAY, MAX_LISTED, date};
use crate::{Service, ServiceError};

/// Days a receiver takes to report on a day's mail: the mail of day `d` is in a report by the
/// end of day `d + REPORT_DELAY_DAYS` (receivers send a day's report during the next day).
pub const REPORT_DELAY_DAYS: i64 = 2;
/// How far back the search for silent receivers looks at what was sent.
const SILENCE_LOOKBACK_DAYS: i64 = 14;

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
    pub state: ReceiverState,
}

/// Whether a receiver's reports come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverState {
    Reporting,
    /// It reported before, and the report on mail it was sent after its last report is overdue.
    ReportsMissing,
    /// Sent mail, never reported: it may not send reports at all.
    NoReports,
}

impl ReceiverState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverState::Reporting => "reporting",
            ReceiverState::ReportsMissing => "reports_missing",
            ReceiverState::NoReports => "no_reports",
        }
    }
}

/// Whether a receiver whose reports last covered day `last_report` has stopped reporting, when
/// the last day it was sent mail on whose report is due by now is `last_due_sent`.
pub fn reports_missing(last_report: Option<i64>, last_due_sent: Option<i64>) -> bool {
    matches!((last_report, last_due_sent), (Some(report), Some(sent)) if sent > report)
}

/// The DMARC events, sent as webhooks beside the status changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmarcEvent {
    PlatformFailing,
    NewSource,
    ReportsMissing,
}

impl DmarcEvent {
    pub const ALL: [DmarcEvent; 3] = [DmarcEvent::PlatformFailing, DmarcEvent::NewSource, DmarcEvent::ReportsMissing];

    pub fn as_str(self) -> &'static str {
        match self {
            DmarcEvent::PlatformFailing => "dmarc.platform_failing",
            DmarcEvent::NewSource => "dmarc.new_source",
            DmarcEvent::ReportsMissing => "dmarc.reports_missing",
        }
    }
}

/// What a DMARC event raised by a stored report says (its `data`, beside the domain and
/// account), with what the event adds.
#[derive(Serialize)]
struct FromReport<'a, T: Serialize> {
    receiver: &'a str,
    receiver_name: &'a str,
    report: i64,
    org_name: &'a str,
    begin: i64,
    end: i64,
    #[serde(flatten)]
    about: T,
}

fn from_report<'a, T: Serialize>(report: &'a Announced<'_>, about: T) -> FromReport<'a, T> {
    FromReport {
        receiver: report.receiver,
        receiver_name: receiver_label(report.receiver),
        report: report.id,
        org_name: &report.header.org_name,
        begin: report.header.begin,
        end: report.header.end,
        about,
    }
}

#[derive(Serialize)]
struct PlatformFailing<'a> {
    failing_messages: i64,
    sources: &'a BTreeSet<String>,
}

#[derive(Serialize)]
struct NewSources {
    /// How many (the list holds at most `MAX_LISTED`).
    new_sources: usize,
    sources: Vec<NewSource>,
}

#[derive(Serialize)]
struct NewSource {
    source_ip: String,
    class: String,
}

#[derive(Serialize)]
struct ReportsMissing<'a> {
    receiver: &'a str,
    receiver_name: &'a str,
    last_report: String,
    last_sent: String,
}

/// Records `event` about `domain` (for each account with it connected and DKIM verified),
/// counted in the metrics; returns for how many domains.
async fn record_event(
    store: &Store,
    metrics: Option<&crate::metrics::Metrics>,
    domain: &str,
    event: DmarcEvent,
    detail: &impl Serialize,
    now: i64,
) -> Result<usize, StoreError> {
    let detail = serde_json::to_string(detail).unwrap_or_default();
    // The platform's own mail failing is checked again at once, as after a failed check.
    let check_now = event == DmarcEvent::PlatformFailing;
    let recorded = store.add_domain_event(domain, event.as_str(), &detail, now, check_now).await?;
    if let Some(metrics) = metrics {
        metrics.record_dmarc_events(event, recorded);
    }
    Ok(recorded)
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
                ReceiverState::ReportsMissing
            } else if last_report.is_none() {
                ReceiverState::NoReports
            } else {
                ReceiverState::Reporting
            };
            coverage.push(ReceiverCoverage {
                name: receiver_label(&receiver).to_string(),
                sent: sent_messages,
                reported_platform: reports.as_ref().map_or(0, |reports| reports.platform_messages),
                reported: reports.as_ref().map_or(0, |reports| reports.messages),
                reports: reports.as_ref().map_or(0, |reports| reports.reports),
                last_report: last_report.map(date),
                last_sent: last_sent.map(date),
                state,
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
        for seen in store.receiver_activity(today - SILENCE_LOOKBACK_DAYS, today - REPORT_DELAY_DAYS).await? {
            let Some(last_report) =
                seen.last_report_day.filter(|_| reports_missing(seen.last_report_day, Some(seen.last_sent_day)))
            else {
                continue;
            };
            if !store.note_missing(&seen.header_from, &seen.receiver, last_report, now).await? {
                continue;
            }
            let detail = ReportsMissing {
                receiver: &seen.receiver,
                receiver_name: receiver_label(&seen.receiver),
                last_report: date(last_report),
                last_sent: date(seen.last_sent_day),
            };
            tracing::info!(domain = %seen.header_from, receiver = %seen.receiver, "a receiver stopped sending DMARC reports");
            events += record_event(
                store,
                Some(&self.worker.metrics),
                &seen.header_from,
                DmarcEvent::ReportsMissing,
                &detail,
                now,
            )
            .await?;
        }
        Ok(events)
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
    for (domain, (messages, sources)) in failing {
        let detail = from_report(report, PlatformFailing { failing_messages: *messages, sources });
        if record_event(store, metrics, domain, DmarcEvent::PlatformFailing, &detail, now).await? > 0 {
            tracing::warn!(%domain, receiver = %report.receiver, messages, "the platform's mail failed DKIM at a receiver");
        }
    }
    let domains: BTreeSet<&str> = report.totals.daily.iter().map(|total| total.header_from.as_str()).collect();
    for domain in domains {
        if !store.reported_before(domain, report.id).await? {
            continue;
        }
        let new: Vec<NewSource> = store
            .new_sources(report.id, domain)
            .await?
            .into_iter()
            .filter(|(_, class)| {
                matches!(SourceClass::parse(class), Some(SourceClass::AuthorizedOther | SourceClass::Unauthenticated))
            })
            .map(|(source_ip, class)| NewSource { source_ip, class })
            .collect();
        if new.is_empty() {
            continue;
        }
        let count = new.len();
        let listed = new.into_iter().take(MAX_LISTED).collect();
        let detail = from_report(report, NewSources { new_sources: count, sources: listed });
        record_event(store, metrics, domain, DmarcEvent::NewSource, &detail, now).await?;
    }
    Ok(())
}
