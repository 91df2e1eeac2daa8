//! The slips of copying a value into a DNS host's form: quotation marks pasted with it, or a
//! character dropped, changed or added. The checks use these to say what differs from the
//! expected value, instead of only that it differs.

/// The record `text` would be without the quotation marks pasted around it (`"v=spf1 -all"`
/// typed into a field that keeps them); `None` when it has none.
pub fn unquoted(text: &[u8]) -> Option<&[u8]> {
    let trimmed = text.trim_ascii();
    let inner = trimmed.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.contains(&b'"')).then_some(inner.trim_ascii())
}

/// Where a found value first differs from the expected one when it is almost right (at most
/// three characters apart, in one place), as ` (a copying slip: "s" is missing at character
/// 1)`; empty when they are far apart.
pub fn copying_slip(found: &str, expected: &str) -> String {
    let (found_chars, expected_chars): (Vec<char>, Vec<char>) = (found.chars().collect(), expected.chars().collect());
    let at = found_chars.iter().zip(&expected_chars).take_while(|(a, b)| a == b).count();
    let same_end =
        found_chars[at..].iter().rev().zip(expected_chars[at..].iter().rev()).take_while(|(a, b)| a == b).count();
    let (found_middle, expected_middle) = (found_chars.len() - at - same_end, expected_chars.len() - at - same_end);
    if found_middle.max(expected_middle) > 3 || found_middle + expected_middle == 0 {
        return String::new();
    }
    let piece = |chars: &[char], length: usize| chars[at..at + length].iter().collect::<String>();
    let what = match (found_middle, expected_middle) {
        (0, _) => format!("\"{}\" is missing", piece(&expected_chars, expected_middle)),
        (_, 0) => format!("\"{}\" is extra", piece(&found_chars, found_middle)),
        _ => format!(
            "\"{}\" is there instead of \"{}\"",
            piece(&found_chars, found_middle),
            piece(&expected_chars, expected_middle)
        ),
    };
    format!(" (a copying slip: {what} at character {})", at + 1)
}

/// Whether `<domain>.<zone>` exists: where records typed with the full name land at a DNS host
/// that adds the zone itself. When it does not, nothing below it does either (RFC 8020), so the
/// checks for a doubled DKIM or DMARC host need no query of their own. Asks the same question
/// as the SPF check's doubled host, so a check sends it once.
pub async fn doubled_zone_exists(dns: &crate::dns::Dns, domain: &crate::name::DomainName) -> bool {
    let doubled = format!("{domain}.{}", domain.organizational_domain());
    !matches!(dns.txt(&doubled).await, Ok(crate::dns::Answer::NxDomain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copying_slip_is_pointed_at() {
        let expected = "sa1-1.shop-example-com.dkim.esp.example";
        assert_eq!(
            copying_slip("a1-1.shop-example-com.dkim.esp.example", expected),
            " (a copying slip: \"s\" is missing at character 1)"
        );
        assert_eq!(
            copying_slip("sa1-1.shop-exmple-com.dkim.esp.example", expected),
            " (a copying slip: \"a\" is missing at character 14)"
        );
        assert_eq!(
            copying_slip("sa1-1.shop-example-com.dkim.esp.exampel", expected),
            " (a copying slip: \"el\" is there instead of \"le\" at character 38)"
        );
        assert_eq!(
            copying_slip("sa1-1.shop-example-com.dkim.esp.examplee", expected),
            " (a copying slip: \"e\" is extra at character 40)"
        );
        assert_eq!(copying_slip("other.example.net", expected), "", "far apart: no slip to point at");
        assert_eq!(copying_slip(expected, expected), "", "the same: no slip");
    }

    #[test]
    fn quotation_marks_pasted_with_a_value_are_found() {
        assert_eq!(unquoted(b"\"v=spf1 -all\""), Some(&b"v=spf1 -all"[..]));
        assert_eq!(unquoted(b" \"v=DMARC1; p=none\" "), Some(&b"v=DMARC1; p=none"[..]));
        assert_eq!(unquoted(b"v=spf1 -all"), None);
        assert_eq!(unquoted(b"\"a\" \"b\""), None, "two strings are not one quoted value");
    }
}
