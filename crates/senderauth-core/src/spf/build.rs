//! The SPF records the platform publishes for itself (its include host, its bounce domain).

/// The SPF record of the platform's sending addresses: `v=spf1 ip4:... ip6:... -all`. Address
/// mechanisms cost no DNS lookups, so an include of it adds one lookup to a customer's record.
pub fn sending_addresses_record(sending_ips: &[String]) -> String {
    let mut record = String::from("v=spf1");
    for entry in sending_ips {
        let kind = if entry.contains(':') { "ip6" } else { "ip4" };
        record.push(' ');
        record.push_str(kind);
        record.push(':');
        record.push_str(entry);
    }
    record.push_str(" -all");
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_family_mechanism() {
        let record = sending_addresses_record(&["192.0.2.0/24".to_string(), "2001:db8::/32".to_string()]);
        assert_eq!(record, "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all");
        assert_eq!(sending_addresses_record(&[]), "v=spf1 -all");
    }
}
