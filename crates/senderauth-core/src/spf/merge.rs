//! Merging the platform's include into a customer's existing SPF record(s).

use serde::Serialize;

use super::parse::parse_term;

/// The record to publish, and what was changed to get there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MergedSpf {
    pub record: String,
    /// One sentence per change the customer should know about.
    pub notes: Vec<String>,
    /// Whether the customer's record needs changing at all.
    pub changed: bool,
}

enum Token {
    All(char),
    Redirect(String),
    Modifier(String),
    Mechanism(String),
}

fn classify(token: &str) -> Token {
    let lower = token.to_ascii_lowercase();
    let (qualifier, body) = match lower.chars().next() {
        Some(c @ ('+' | '-' | '~' | '?')) => (c, &lower[1..]),
        _ => ('+', lower.as_str()),
    };
    if body == "all" {
        return Token::All(qualifier);
    }
    if let Some(target) = lower.strip_prefix("redirect=") {
        return Token::Redirect(target.to_string());
    }
    let name_end = token.find([':', '/', '=']).unwrap_or(token.len());
    if token[name_end..].starts_with('=') {
        return Token::Modifier(token.to_string());
    }
    Token::Mechanism(token.to_string())
}

/// Comparable form of a mechanism: lowercase, default `+` dropped, trailing dot dropped.
fn mechanism_key(token: &str) -> String {
    let lower = token.to_ascii_lowercase();
    let lower = lower.strip_prefix('+').unwrap_or(&lower);
    lower.strip_suffix('.').unwrap_or(lower).to_string()
}

/// How much an `all` lets through: `+all` and `?all` (unsafe, reported) over `~all` over `-all`.
fn leniency(qualifier: char) -> u8 {
    match qualifier {
        '-' => 0,
        '~' => 1,
        '?' => 2,
        _ => 3,
    }
}

/// Merges `include:<include>` into the existing SPF records of a domain.
///
/// One record results; `v=spf1` once at the start; the customer's mechanisms in their order;
/// the include after the existing includes; exactly one `all`, the customer's `-all`/`~all`
/// kept, a `+all`, `?all` or missing `all` replaced by `default_all`.
/// Without an include (a provider-independent check), the record is only normalized.
pub fn merge_spf(existing: &[String], include: Option<&str>, default_all: &str) -> MergedSpf {
    let include_term = include.map(|include| format!("include:{}", include.trim_end_matches('.').to_ascii_lowercase()));
    let mut notes = Vec::new();
    if existing.is_empty() {
        let record = match &include_term {
            Some(term) => format!("v=spf1 {term} {default_all}"),
            None => format!("v=spf1 mx {default_all}"),
        };
        return MergedSpf { record, notes, changed: true };
    }
    // With several records, the customer's own ones are those without the platform's include
    // (a second record is usually the proposal pasted beside the old one): their `all` is kept.
    let ours = |record: &String| {
        include_term.as_ref().is_some_and(|term| {
            record.split_whitespace().skip(1).any(|token| mechanism_key(token).trim_end_matches('.') == term.as_str())
        })
    };
    let own: Vec<&String> = existing.iter().filter(|record| !ours(record)).collect();
    let own = if own.is_empty() { existing.iter().collect() } else { own };
    if existing.len() > 1 {
        let keep = own[0];
        let delete: Vec<String> =
            existing.iter().filter(|record| *record != keep).map(|record| format!("\"{record}\"")).collect();
        notes.push(format!(
            "Your domain has {} SPF records; receivers treat that as an error. Both are merged into the one \
             proposed here: put it in place of \"{keep}\" and delete {}.",
            existing.len(),
            delete.join(" and ")
        ));
    }
    let mut mechanisms: Vec<String> = Vec::new();
    let mut modifiers: Vec<String> = Vec::new();
    let mut redirects: Vec<String> = Vec::new();
    // The `all` kept: the customer's own; of several, an unsafe one (+all, ?all) is reported
    // and replaced, else the most lenient, so that the merge never tightens their policy.
    let mut kept_all: Option<char> = None;
    for record in existing {
        let record_is_own = own.contains(&record);
        for token in record.split_whitespace().skip(1) {
            if let Err(reason) = parse_term(token) {
                notes.push(format!("The term {token:?} is invalid ({reason}) and is left out."));
                continue;
            }
            match classify(token) {
                Token::All(qualifier) => {
                    if record_is_own && kept_all.is_none_or(|current| leniency(qualifier) > leniency(current)) {
                        kept_all = Some(qualifier);
                    }
                }
                Token::Redirect(target) => {
                    if !redirects.contains(&target) {
                        redirects.push(target);
                    }
                }
                Token::Modifier(text) => {
                    if !modifiers.iter().any(|known| known.eq_ignore_ascii_case(&text)) {
                        modifiers.push(text);
                    }
                }
                Token::Mechanism(text) => {
                    if !mechanisms.iter().any(|known| mechanism_key(known) == mechanism_key(&text)) {
                        mechanisms.push(text);
                    }
                }
            }
        }
    }
    if let Some(include_term) = include_term
        && !mechanisms.iter().any(|mechanism| mechanism_key(mechanism) == include_term)
    {
        let position = mechanisms
            .iter()
            .rposition(|mechanism| mechanism_key(mechanism).starts_with("include:"))
            .map_or(mechanisms.len(), |index| index + 1);
        mechanisms.insert(position, include_term);
    }
    let mut tail: Vec<String> = Vec::new();
    match (kept_all, redirects.as_slice()) {
        (Some(qualifier @ ('-' | '~')), _) => {
            tail.push(format!("{qualifier}all"));
            if !redirects.is_empty() {
                notes.push(
                    "The redirect= modifier is dropped: with an \"all\" in the record it is never used.".to_string(),
                );
            }
        }
        (Some(qualifier), _) => {
            let shown = if qualifier == '+' { "+all".to_string() } else { format!("{qualifier}all") };
            notes.push(format!(
                "Your record ends in {shown}, which lets any server on the internet send as your domain; it is replaced by {default_all}."
            ));
            tail.push(default_all.to_string());
        }
        (None, [target]) => {
            notes.push(format!(
                "Your record hands the rest of the policy to {target} with redirect=; it is kept, so that record's \"all\" applies."
            ));
            tail.push(format!("redirect={target}"));
        }
        (None, _) => {
            notes.push(format!(
                "Your record has no \"all\" term; {default_all} is added so other servers are not authorized."
            ));
            tail.push(default_all.to_string());
        }
    }
    let mut terms = vec!["v=spf1".to_string()];
    terms.extend(mechanisms);
    terms.extend(tail);
    terms.extend(modifiers);
    let record = terms.join(" ");
    let changed = existing.len() != 1 || existing[0].split_whitespace().collect::<Vec<_>>().join(" ") != record;
    if record.len() > 255 {
        notes.push(
            "The record is longer than 255 characters: enter it as one TXT record; DNS hosts split it into strings for you."
                .to_string(),
        );
    }
    MergedSpf { record, notes, changed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(existing: &[&str]) -> MergedSpf {
        let existing: Vec<String> = existing.iter().map(|record| record.to_string()).collect();
        merge_spf(&existing, Some("123.spf.esp.example"), "-all")
    }

    #[test]
    fn two_records_are_merged_and_the_note_says_which_to_delete() {
        let merged = merge(&["v=spf1 ip4:192.0.2.10 ~all", "v=spf1 include:123.spf.esp.example -all"]);
        let note = merged.notes.join(" ");
        assert!(note.contains("in place of \"v=spf1 ip4:192.0.2.10 ~all\""), "{note}");
        assert!(note.contains("delete \"v=spf1 include:123.spf.esp.example -all\""), "{note}");
        assert!(merged.changed);
    }

    #[test]
    fn merges_as_the_reference_describes() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "v=spf1 include:123.spf.esp.example -all"),
            (
                &["v=spf1 ip4:198.51.100.1 include:_spf.google.com ~all"],
                "v=spf1 ip4:198.51.100.1 include:_spf.google.com include:123.spf.esp.example ~all",
            ),
            (&["v=spf1 a mx +all"], "v=spf1 a mx include:123.spf.esp.example -all"),
            (&["v=spf1 a ?all"], "v=spf1 a include:123.spf.esp.example -all"),
            (&["v=spf1 mx"], "v=spf1 mx include:123.spf.esp.example -all"),
            (
                &["v=spf1 include:a.example ~all", "v=spf1 include:b.example include:A.example -all"],
                "v=spf1 include:a.example include:b.example include:123.spf.esp.example ~all",
            ),
            // The proposal pasted as a second record beside the customer's own: their ~all stays.
            (
                &["v=spf1 ip4:192.0.2.10 ~all", "v=spf1 include:123.spf.esp.example -all"],
                "v=spf1 ip4:192.0.2.10 include:123.spf.esp.example ~all",
            ),
            (
                &["v=spf1 mx redirect=_spf.example.com"],
                "v=spf1 mx include:123.spf.esp.example redirect=_spf.example.com",
            ),
            (&["v=spf1 include:123.spf.esp.example. -all"], "v=spf1 include:123.spf.esp.example. -all"),
            (
                &["v=spf1 -all exp=explain.example.com"],
                "v=spf1 include:123.spf.esp.example -all exp=explain.example.com",
            ),
            (&["v=spf1 ip4:192.0.2.300 a:bad mx ~all"], "v=spf1 mx include:123.spf.esp.example ~all"),
        ];
        for (existing, expected) in cases {
            assert_eq!(merge(existing).record, *expected, "{existing:?}");
        }
        assert!(!merge(&["v=spf1 include:123.spf.esp.example -all"]).changed);
        assert!(merge(&["v=spf1 a +all"]).notes.iter().any(|note| note.contains("+all")));
        assert!(
            merge(&["v=spf1 ip4:192.0.2.300 -all"])
                .notes
                .iter()
                .any(|note| note.contains("\"ip4:192.0.2.300\" is invalid"))
        );
    }

    #[test]
    fn v_spf1_once_and_one_all() {
        let merged = merge(&["v=spf1 a -all", "v=spf1 mx ~all", "v=spf1 +all"]);
        assert_eq!(merged.record.matches("v=spf1").count(), 1);
        assert_eq!(merged.record.matches("all").count(), 1);
        assert!(merged.record.ends_with("-all"));
        super::super::parse::parse_record(&merged.record).expect("the merged record parses");
    }
}
