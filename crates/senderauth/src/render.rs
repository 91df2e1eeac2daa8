//! Text for people: the record plan as a table, verification and check results.

use std::fmt::Write;

use senderauth_core::check::DomainReport;
use senderauth_core::plan::{Action, RecordPlan};
use senderauth_core::problem::{Problem, Severity};
use senderauth_core::status::{DomainStatus, MethodStatus};
use senderauth_core::verify::Verification;

fn action(action: Action) -> &'static str {
    match action {
        Action::Add => "add",
        Action::Replace => "replace existing",
        Action::AlreadyPresent => "already present",
        Action::NotNeeded => "not needed",
        Action::CannotMerge => "cannot merge",
    }
}

/// The records to add, one row each, with notes below.
pub fn plan_table(plan: &RecordPlan) -> String {
    let mut output = String::new();
    let _ = writeln!(
        output,
        "Records for {} (account {}), to add in the DNS zone {}:\n",
        plan.domain, plan.account, plan.zone
    );
    let host_width = plan.records.iter().map(|record| record.host.len()).max().unwrap_or(4).max(4);
    let value_width = plan.records.iter().map(|record| record.value.len()).max().unwrap_or(13).max(13);
    let _ = writeln!(
        output,
        "{:<6} {:<5}  {:<host_width$}  {:<value_width$}  STATUS",
        "METHOD", "TYPE", "HOST", "REQUIRED DATA"
    );
    for record in &plan.records {
        let method = format!("{:?}", record.method).to_uppercase();
        let _ = writeln!(
            output,
            "{method:<6} {:<5}  {:<host_width$}  {:<value_width$}  {}",
            record.record_type,
            record.host,
            if record.value.is_empty() { "-" } else { &record.value },
            action(record.action)
        );
    }
    output.push('\n');
    for record in &plan.records {
        for note in &record.notes {
            let _ = writeln!(output, "* {} {}: {note}", format!("{:?}", record.method).to_uppercase(), record.host);
        }
    }
    let _ = writeln!(output, "\nHosts are relative to {}; \"@\" means {} itself.", plan.zone, plan.zone);
    output
}

fn domain_status(status: DomainStatus) -> &'static str {
    match status {
        DomainStatus::Verified => "Verified",
        DomainStatus::PartiallyVerified => "Partially verified",
        DomainStatus::NotVerified => "Not verified",
        DomainStatus::Unknown => "Unknown (temporary DNS failure; check again later)",
    }
}

fn method_status(status: MethodStatus) -> &'static str {
    match status {
        MethodStatus::Verified => "verified",
        MethodStatus::NotVerified => "not verified",
        MethodStatus::Unknown => "unknown",
    }
}

fn problems(output: &mut String, problems: &[Problem]) {
    for problem in problems {
        let severity = match problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        let _ = writeln!(output, "  {severity:<7} {}: {}", problem.code, problem.message);
        let _ = writeln!(output, "          fix: {}", problem.fix);
    }
}

/// One verification, for a person.
pub fn verification(result: &Verification) -> String {
    let mut output = String::new();
    let _ = writeln!(output, "{} (account {}): {}", result.domain, result.account, domain_status(result.status));
    let _ = writeln!(output, "  DKIM   {}", method_status(result.dkim.status));
    for selector in &result.dkim.selectors {
        let found =
            selector.found_target.as_deref().unwrap_or(if selector.flattened { "(flattened key)" } else { "(none)" });
        let _ = writeln!(output, "         {} -> {found} [{}]", selector.host, method_status(selector.status));
    }
    let spf_detail = match (&result.spf.record, result.spf.lookups) {
        (Some(record), Some(lookups)) => format!("{record}  ({lookups} of 10 DNS lookups)"),
        (Some(record), None) => record.clone(),
        _ => "(no single SPF record)".to_string(),
    };
    let _ = writeln!(output, "  SPF    {}  {spf_detail}", method_status(result.spf.status));
    // Each range is evaluated at both ends: one line per range, both results when they differ.
    let mut networks: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for ip in &result.spf.sending_ips {
        match networks.iter_mut().find(|(network, _)| *network == ip.network) {
            Some((_, results)) => results.push((&ip.ip, ip.result.as_str())),
            None => networks.push((&ip.network, vec![(&ip.ip, ip.result.as_str())])),
        }
    }
    for (network, results) in networks {
        let shown = if results.iter().all(|(_, result)| *result == results[0].1) {
            results[0].1.to_string()
        } else {
            results.iter().map(|(ip, result)| format!("{ip} {result}")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(output, "         {network} -> {shown}");
    }
    let dmarc_detail = match (&result.dmarc.record, &result.dmarc.location) {
        (Some(record), Some(location)) => {
            format!("{record}  (at _dmarc.{location}{})", if result.dmarc.inherited { ", inherited" } else { "" })
        }
        _ => "(none applies)".to_string(),
    };
    let _ = writeln!(output, "  DMARC  {}  {dmarc_detail}", method_status(result.dmarc.status));
    problems(&mut output, &result.problems);
    output.push('\n');
    output
}

/// One record of an SPF include tree and what is below it, indented by depth.
fn spf_tree(output: &mut String, node: &senderauth_core::spf::tree::SpfNode, depth: usize) {
    let indent = "  ".repeat(depth);
    let cost = if node.lookups == 1 { "1 lookup".to_string() } else { format!("{} lookups", node.lookups) };
    let what = match (&node.record, &node.error) {
        (_, Some(error)) => format!("({error})"),
        (Some(record), None) => record.clone(),
        (None, None) => "(no SPF record)".to_string(),
    };
    let _ = writeln!(output, "         {indent}{} {}: {what}  [{cost}]", node.via, node.domain);
    for child in &node.children {
        spf_tree(output, child, depth + 1);
    }
}

/// One provider-independent report, for a person.
pub fn report(report: &DomainReport) -> String {
    let mut output = String::new();
    let _ = writeln!(output, "{}", report.domain);
    match &report.spf.record {
        Some(record) => {
            let lookups = report.spf.lookups.unwrap_or(0);
            let _ = writeln!(
                output,
                "  SPF    {record}\n         {lookups} DNS {} of 10, {} void of 2",
                if lookups == 1 { "lookup" } else { "lookups" },
                report.spf.void_lookups.unwrap_or(0)
            );
            if let Some(tree) = &report.spf.tree {
                for child in &tree.root.children {
                    spf_tree(&mut output, child, 1);
                }
            }
        }
        None => {
            let _ = writeln!(output, "  SPF    (no single valid record)");
        }
    }
    match (&report.dmarc.record, &report.dmarc.location) {
        (Some(record), Some(location)) => {
            let policy = report.dmarc.policy.map_or("?", |policy| policy.as_str());
            let _ = writeln!(output, "  DMARC  {record}\n         at _dmarc.{location}, policy {policy} applies");
        }
        _ => {
            let _ = writeln!(output, "  DMARC  (none applies)");
        }
    }
    if let Some(dkim) = &report.dkim {
        for selector in &dkim.selectors {
            let key = selector.key.as_ref().map_or("no usable key".to_string(), |key| match key.bits {
                Some(bits) => format!("{} key, {bits} bits", key.key_type),
                None => format!("{} key", key.key_type),
            });
            let _ = writeln!(output, "  DKIM   {}: {key}", selector.host);
        }
    }
    problems(&mut output, &report.problems);
    output.push('\n');
    output
}
