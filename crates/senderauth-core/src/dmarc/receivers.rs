//! Receiving organizations: who reports on the mail sent to a recipient's domain, and who sent
//! an aggregate report, named the same way so that the two can be compared (report coverage).
//!
//! A receiver is named by the organizational domain it reports from. The large mailbox
//! providers host many recipient domains and report from one of their own (Gmail's mail is
//! reported by `google.com`, Outlook.com's by `microsoft.com`, AOL's by Yahoo): those are listed
//! here. Any other recipient domain is taken to be its own receiver (its organizational
//! domain), which is right for organizations that run their mail and report on it themselves,
//! and misses domains whose mail a provider hosts under another name (a Google Workspace
//! customer's domain is reported on by `google.com`); their mail shows as sent to a receiver
//! that never reports, never as "reports missing".

use crate::name::organizational_domain;

/// Providers that receive mail for domains other than the one they report from: (the domain
/// they report from, the receiver's name, the recipient domains they host).
const PROVIDERS: &[(&str, &str, &[&str])] = &[
    ("google.com", "Google", &["gmail.com", "googlemail.com"]),
    (
        "microsoft.com",
        "Microsoft",
        &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "passport.com",
            "windowslive.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "hotmail.it",
            "hotmail.es",
            "live.co.uk",
            "live.fr",
            "live.nl",
            "live.de",
            "outlook.fr",
            "outlook.de",
            "outlook.es",
            "outlook.it",
        ],
    ),
    (
        "yahoo.com",
        "Yahoo",
        &[
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.it",
            "yahoo.es",
            "yahoo.ca",
            "yahoo.com.au",
            "yahoo.com.br",
            "ymail.com",
            "rocketmail.com",
            "aol.com",
            "aim.com",
            "yahooinc.com",
        ],
    ),
    ("mail.ru", "Mail.ru", &["inbox.ru", "list.ru", "bk.ru"]),
    ("yandex.ru", "Yandex", &["yandex.com", "ya.ru"]),
    ("fastmail.com", "Fastmail", &["fastmail.fm"]),
];

/// The receiver that reports on mail to `recipient_domain` (a lowercase A-label name).
pub fn receiver_of_recipient(recipient_domain: &str) -> String {
    let domain = recipient_domain.trim_end_matches('.').to_ascii_lowercase();
    let organization = organizational_domain(&domain);
    PROVIDERS
        .iter()
        .find(|(own, _, hosted)| *own == organization || hosted.contains(&organization))
        .map_or_else(|| organization.to_string(), |(own, _, _)| own.to_string())
}

/// The receiver that sent a report: the organizational domain of its contact address, or of
/// its organization's name when that is a domain name (`org_name` is free text: "google.com",
/// "Outlook.com", "Yahoo"), or the name itself, lowercased.
pub fn receiver_of_report(org_name: &str, org_email: Option<&str>) -> String {
    let from_email = org_email
        .and_then(|email| email.trim().rsplit_once('@'))
        .map(|(_, domain)| domain.trim_end_matches(['.', '>']))
        .filter(|domain| domain.contains('.'));
    let name = org_name.trim().to_ascii_lowercase();
    let named = match from_email {
        Some(domain) => domain.to_ascii_lowercase(),
        None if name.contains('.') && !name.contains(' ') => name,
        None => {
            // "Yahoo", "Yahoo! Inc.", "Mail.Ru" and the like: a provider's name.
            return PROVIDERS
                .iter()
                .find(|(_, label, _)| name.starts_with(&label.to_ascii_lowercase()))
                .map_or(name, |(own, _, _)| own.to_string());
        }
    };
    receiver_of_recipient(&named)
}

/// A receiver's name for people: the provider's name, or the domain.
pub fn receiver_label(receiver: &str) -> &str {
    PROVIDERS.iter().find(|(own, _, _)| *own == receiver).map_or(receiver, |(_, label, _)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_and_reports_name_the_same_receiver() {
        assert_eq!(receiver_of_recipient("gmail.com"), "google.com");
        assert_eq!(receiver_of_recipient("Hotmail.co.uk."), "microsoft.com");
        assert_eq!(receiver_of_recipient("aol.com"), "yahoo.com");
        assert_eq!(receiver_of_recipient("mail.example.co.uk"), "example.co.uk");
        assert_eq!(receiver_of_report("google.com", Some("noreply-dmarc-support@google.com")), "google.com");
        assert_eq!(receiver_of_report("Outlook.com", Some("dmarcreport@microsoft.com")), "microsoft.com");
        assert_eq!(receiver_of_report("Enterprise Outlook", Some("dmarcreport@microsoft.com")), "microsoft.com");
        assert_eq!(receiver_of_report("Yahoo", Some("dmarchelp@yahooinc.com")), "yahoo.com");
        assert_eq!(receiver_of_report("Yahoo! Inc.", None), "yahoo.com");
        assert_eq!(receiver_of_report("Mail.Ru", Some("dmarc_support@corp.mail.ru")), "mail.ru");
        assert_eq!(receiver_of_report("example.net", None), "example.net");
        assert_eq!(
            receiver_of_report("Sample Reporter", Some("report_sender@example-reporter.com")),
            "example-reporter.com"
        );
        assert_eq!(receiver_of_report("Some Org", None), "some org");
        assert_eq!(receiver_label("microsoft.com"), "Microsoft");
        assert_eq!(receiver_label("example.net"), "example.net");
    }
}
