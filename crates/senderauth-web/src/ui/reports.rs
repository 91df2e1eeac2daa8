//! A domain's DMARC reports page: what receivers reported over the last 30 days, each class of
//! mail, a chart of passing and failing mail per day (SVG drawn here, no script), the way to
//! enforcement with its evidence, and the sources with a class filter and a failing-only
//! switch.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use senderauth_service::reports::{DmarcSummary, Recommendation, SourceView, date};
use serde::Deserialize;

use super::{Chrome, Signed, error_page, render};
use crate::WebState;

/// The days the page covers.
const DAYS: i64 = 30;
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 160.0;

#[derive(Deserialize, Default)]
pub(super) struct ReportsQuery {
    class: Option<String>,
    failing: Option<String>,
}

/// One day's bar: passing mail below, failing mail stacked on it.
struct Bar {
    x: String,
    width: String,
    passed_y: String,
    passed_height: String,
    failed_y: String,
    failed_height: String,
    /// The day and its numbers, for the bar's tooltip and readers of the table.
    label: String,
}

struct ClassRow {
    label: &'static str,
    explanation: &'static str,
    passed: i64,
    failed: i64,
}

struct ClassOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage<'a> {
    title: &'a str,
    chrome: Chrome,
    domain: &'a str,
    summary: DmarcSummary,
    pass_share: String,
    classes: Vec<ClassRow>,
    bars: Vec<Bar>,
    /// The most messages on one day (the chart's top).
    peak: i64,
    first_day: String,
    last_day: String,
    recommendation: Option<Recommendation>,
    headline: String,
    sources: Vec<SourceView>,
    options: Vec<ClassOption>,
    failing: bool,
}

const CLASSES: [(&str, &str, &str); 5] = [
    ("platform_ok", "Sent by us, passing", "Signed with your domain's keys here and sent from our servers."),
    (
        "platform_failing",
        "Sent by us, failing",
        "From our servers, but the signature did not pass at the receiver: a key or DNS problem to fix.",
    ),
    (
        "forwarded_ours",
        "Our mail, forwarded",
        "Our signature seen from a forwarder or mailing list, which often breaks it.",
    ),
    ("authorized_other", "Your other senders", "Not sent by us, but passing DMARC: services you set up yourself."),
    (
        "unauthenticated",
        "Failing, not us",
        "Neither signed for your domain nor allowed by SPF: spoofing, or a service still to set up.",
    ),
];

fn label_of(class: &str) -> &'static str {
    CLASSES.iter().find(|(name, _, _)| *name == class).map_or("Other", |(_, label, _)| label)
}

/// The verdict in a sentence.
fn headline(recommendation: &Recommendation) -> String {
    match recommendation.verdict.as_str() {
        "enforced" => "Enforced: receivers refuse mail that fails DMARC.",
        "not_enough_reports" => "Not enough reports yet to judge: stay at p=none.",
        "stay_at_none" => "Stay at p=none for now.",
        "stay_at_quarantine" => "Stay at p=quarantine for now.",
        "ready_for_quarantine" => "Ready for p=quarantine.",
        "ready_for_reject" => "Ready for p=reject.",
        _ => "",
    }
    .to_string()
}

/// The chart's bars, one per day of the window, oldest first.
fn bars(summary: &DmarcSummary, today: i64) -> (Vec<Bar>, i64, String, String) {
    let days: Vec<(String, i64, i64)> = (today - DAYS + 1..=today)
        .map(|day| {
            let name = date(day);
            let (passed, failed) = summary
                .per_day
                .iter()
                .find(|total| total.day == name)
                .map_or((0, 0), |total| (total.passed, total.failed));
            (name, passed, failed)
        })
        .collect();
    let peak = days.iter().map(|(_, passed, failed)| passed + failed).max().unwrap_or(0).max(1);
    let slot = CHART_WIDTH / DAYS as f64;
    let scale = |count: i64| count as f64 / peak as f64 * CHART_HEIGHT;
    let bars = days
        .iter()
        .enumerate()
        .map(|(index, (name, passed, failed))| {
            let passed_height = scale(*passed);
            let failed_height = scale(*failed);
            Bar {
                x: format!("{:.1}", index as f64 * slot + 1.0),
                width: format!("{:.1}", slot - 2.0),
                passed_y: format!("{:.1}", CHART_HEIGHT - passed_height),
                passed_height: format!("{passed_height:.1}"),
                failed_y: format!("{:.1}", CHART_HEIGHT - passed_height - failed_height),
                failed_height: format!("{failed_height:.1}"),
                label: format!("{name}: {passed} passed, {failed} failed"),
            }
        })
        .collect();
    let first = days.first().map(|(name, _, _)| name.clone()).unwrap_or_default();
    let last = days.last().map(|(name, _, _)| name.clone()).unwrap_or_default();
    (bars, peak, first, last)
}

pub(super) async fn reports_page(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(query): Query<ReportsQuery>,
) -> Response {
    let account = signed.session.account_id;
    let summary = match state.service.dmarc_summary(account, &name, DAYS).await {
        Ok(summary) => summary,
        Err(error) => return error_page(&signed, &error),
    };
    let class = query.class.filter(|class| CLASSES.iter().any(|(name, _, _)| name == class));
    let failing = query.failing.is_some_and(|value| value == "1" || value == "on");
    let sources = if summary.available {
        match state.service.dmarc_sources(account, &name, DAYS, class.as_deref(), failing, 100).await {
            Ok(sources) => sources,
            Err(error) => return error_page(&signed, &error),
        }
    } else {
        Vec::new()
    };
    let classes = CLASSES
        .iter()
        .map(|(name, label, explanation)| {
            let (passed, failed) = summary
                .classes
                .iter()
                .find(|total| total.class == *name)
                .map_or((0, 0), |total| (total.passed, total.failed));
            ClassRow { label, explanation, passed, failed }
        })
        .collect();
    let options = CLASSES
        .iter()
        .map(|(value, label, _)| ClassOption { value, label, selected: class.as_deref() == Some(*value) })
        .collect();
    let (bars, peak, first_day, last_day) = bars(&summary, state.service.now().div_euclid(86_400));
    let pass_share = summary.pass_share.map_or("—".to_string(), |share| format!("{:.1}%", share * 100.0));
    let recommendation = summary.recommendation.clone();
    let headline = recommendation.as_ref().map(headline).unwrap_or_default();
    let domain = summary.domain.clone();
    let title = format!("DMARC reports of {domain}");
    let page = ReportsPage {
        title: &title,
        chrome: signed.chrome(),
        domain: &domain,
        summary,
        pass_share,
        classes,
        bars,
        peak,
        first_day,
        last_day,
        recommendation,
        headline,
        sources: sources
            .into_iter()
            .map(|source| SourceView { class: label_of(&source.class).to_string(), ..source })
            .collect(),
        options,
        failing,
    };
    render(StatusCode::OK, &page)
}
