//! The delivery status notification (RFC 3464, RFC 6522) the gateway sends when the upstream
//! takes a message for some of its recipients and refuses the others: the client's 250 stands
//! for the recipients that got it, and the sender learns of the others the way any MTA tells
//! it, in a `multipart/report` with one `message/delivery-status` entry per refused recipient
//! and the original message's header.

use senderauth_core::token::random_hex;

/// The notification to `sender` about `refused` (each recipient with the upstream's reply) of
/// `original`, reported by `hostname` at `now` (Unix seconds).
pub fn report(hostname: &str, sender: &str, original: &[u8], refused: &[(String, String)], now: i64) -> Vec<u8> {
    let boundary = format!("=_senderauth_{}", random_hex("", 12).unwrap_or_else(|_| now.to_string()));
    let date = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_default();
    let id = random_hex("", 16).unwrap_or_else(|_| format!("{now}"));
    let header_end = original.windows(4).position(|window| window == b"\r\n\r\n").map_or(original.len(), |at| at + 2);
    let headers = String::from_utf8_lossy(&original[..header_end]);
    let mut text = String::new();
    text.push_str(&format!("From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"));
    text.push_str(&format!("To: <{sender}>\r\n"));
    text.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    text.push_str(&format!("Date: {date}\r\n"));
    text.push_str(&format!("Message-ID: <{id}@{hostname}>\r\n"));
    text.push_str("Auto-Submitted: auto-replied\r\n");
    text.push_str("MIME-Version: 1.0\r\n");
    text.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    text.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"));
    text.push_str(&format!(
        "The mail server your message was relayed to refused {} of its recipients; the others got it.\r\n\r\n",
        if refused.len() == 1 { "one".to_string() } else { refused.len().to_string() }
    ));
    for (recipient, reply) in refused {
        text.push_str(&format!("<{recipient}>: {}\r\n", one_line(reply)));
    }
    text.push_str(&format!("\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"));
    text.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    text.push_str(&format!("Arrival-Date: {date}\r\n"));
    for (recipient, reply) in refused {
        text.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\n",
            enhanced_status(reply),
            one_line(reply)
        ));
    }
    text.push_str(&format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
    text.push_str(&headers);
    text.push_str(&format!("\r\n--{boundary}--\r\n"));
    text.into_bytes()
}

/// The enhanced status code (RFC 3463) in an SMTP reply, or the reply class's generic one.
fn enhanced_status(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or_default();
    let given = words.next().filter(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..].iter().all(|part| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
    });
    match given {
        Some(status) => status.to_string(),
        None if code.starts_with('4') => "4.0.0".to_string(),
        None => "5.0.0".to_string(),
    }
}

/// `text` as one header-safe line: printable ASCII, at most 500 characters.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() { c } else { ' ' }).take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_refused_recipient_with_its_status() {
        let original = b"From: news@shop.example\r\nSubject: Hi\r\n\r\nBody\r\n";
        let refused = vec![
            ("gone@example.net".to_string(), "550 5.1.1 <gone@example.net>: unknown user".to_string()),
            ("full@example.net".to_string(), "452 mailbox full".to_string()),
        ];
        let report =
            String::from_utf8(report("mail.esp.example", "app@shop.example", original, &refused, 0)).expect("ASCII");
        assert!(report.contains("Content-Type: multipart/report; report-type=delivery-status;"), "{report}");
        assert!(report.contains("Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
        assert!(report.contains("Final-Recipient: rfc822; full@example.net\r\nAction: failed\r\nStatus: 4.0.0\r\n"));
        assert!(report.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"), "{report}");
        assert!(report.contains("text/rfc822-headers\r\n\r\nFrom: news@shop.example\r\nSubject: Hi\r\n"));
        assert!(!report.contains("Body"), "the header only, not the content");
        assert!(!report.contains("\n\n") && !report.replace("\r\n", "").contains('\n'), "CRLF only");
    }
}
