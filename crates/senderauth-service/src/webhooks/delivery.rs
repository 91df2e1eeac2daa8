//! Webhook deliveries: every status change with a lifecycle event is sent as a signed JSON POST
//! to each endpoint of the domain's account, retried with backoff when it does not succeed.
//!
//! The signature header is `sha256=<hex>` of HMAC-SHA256 over `"{timestamp}.{body}"` with the
//! endpoint's secret; the timestamp travels in its own header, so receivers can refuse replays.
//!
//! A webhook URL is the customer's, so by default it may only reach public addresses: an
//! address literal in a private, loopback, link-local or other special-purpose range is
//! refused when the endpoint is registered and when it is called, and a host name is resolved
//! with those addresses left out at every delivery (a name re-pointed into the platform's
//! network after registration is caught too). Operators whose receivers are internal allow
//! them with `Targets::Any` (`webhook_private_targets = true`).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Once};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use senderauth_core::cidr::IpNetwork;
use senderauth_core::token::hex;
use senderauth_store::{DueDelivery, Sealer, Store, StoreError};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::worker::unix_now;

/// Seconds to wait after each failed attempt; after the last, the delivery is `failed`.
const BACKOFF_SECONDS: [i64; 7] = [30, 120, 600, 1_800, 3_600, 3 * 3_600, 12 * 3_600];
/// How long one attempt may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which addresses webhooks may be sent to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Targets {
    /// Public addresses only (the default).
    #[default]
    PublicOnly,
    /// Any address, private networks and loopback included.
    Any,
}

/// Special-purpose ranges (RFC 6890 and its registries) that are not the public internet,
/// the deprecated IPv4-compatible `::/96` and Teredo `2001::/32` (both lead to IPv4 hosts) among them.
/// IPv4-mapped IPv6 addresses are judged by their IPv4 address.
const NON_PUBLIC: [&str; 30] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:2::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Whether `address` is on the public internet.
pub fn is_public(address: IpAddr) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    !NON_PUBLIC.iter().filter_map(|network| network.parse::<IpNetwork>().ok()).any(|network| network.contains(address))
}

/// Why `url` may not be called under `targets`: its host is an address outside what they allow.
/// Host names are judged when resolved, at each delivery.
pub fn refused_target(url: &str, targets: Targets) -> Option<String> {
    if targets == Targets::Any {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    // An IPv6 literal comes bracketed; a host name does not parse as an address.
    let address: IpAddr = parsed.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    (!is_public(address)).then(|| {
        format!(
            "{address} is not a public address (private, loopback, link-local or reserved); webhooks are sent to \
             public addresses only unless the operator sets webhook_private_targets = true"
        )
    })
}

/// Resolves webhook hosts with the system's resolver, keeping only public addresses.
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.iter().copied().filter(|address| is_public(address.ip())).collect();
            if public.is_empty() {
                let found: Vec<String> = found.iter().map(|address| address.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves to no public address ({}); webhooks are sent to public addresses only \
                     unless the operator sets webhook_private_targets = true",
                    found.join(", ")
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sends due deliveries.
#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub node: String,
    pub metrics: Arc<Metrics>,
    targets: Targets,
    client: reqwest::Client,
    sealer: Arc<dyn Sealer>,
}

/// The signature of a delivery body.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", hex(&digest))
}

/// The JSON a delivery carries: a status change (`from`, `to`), or a DMARC event with what it
/// is about beside the domain and account.
pub fn payload(delivery: &DueDelivery) -> String {
    let mut data = serde_json::Map::new();
    data.insert("domain".into(), json!(delivery.domain));
    data.insert("account".into(), json!(delivery.account_id));
    match delivery.detail_json.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(serde_json::Value::Object(detail))) => data.extend(detail),
        _ => {
            data.insert("from".into(), json!(delivery.from_status));
            data.insert("to".into(), json!(delivery.to_status));
        }
    }
    json!({
        "id": delivery.event_id,
        "type": delivery.event,
        "created_at": delivery.at,
        "data": data,
    })
    .to_string()
}

impl Deliverer {
    /// `sealer` opens the endpoints' sealed signing secrets (the service's master keys).
    pub fn new(
        store: Store,
        node: String,
        metrics: Arc<Metrics>,
        targets: Targets,
        sealer: Arc<dyn Sealer>,
    ) -> Result<Deliverer, String> {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            // reqwest's TLS uses rustls with the ring provider, installed once per process.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut client =
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT).redirect(reqwest::redirect::Policy::none());
        if targets == Targets::PublicOnly {
            client = client.dns_resolver(PublicAddressesOnly);
        }
        let client = client.build().map_err(|error| format!("cannot make the webhook HTTP client: {error}"))?;
        Ok(Deliverer { store, node, metrics, targets, client, sealer })
    }

    /// Sends every delivery due at `now` that this node can claim; returns how many succeeded.
    pub async fn deliver_once(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.claim_deliveries(&self.node, now, now + 60, 100, &*self.sealer).await?;
        let mut delivered = 0;
        for delivery in due {
            let body = payload(&delivery);
            if let Some(refusal) = refused_target(&delivery.url, self.targets) {
                // Registered before the operator narrowed the targets: never called, given up.
                tracing::warn!(delivery = delivery.id, url = %delivery.url, "webhook target not allowed");
                self.metrics.record_delivery(false);
                self.store.record_delivery(delivery.id, false, None, Some(&refusal), now, None).await?;
                continue;
            }
            let secret = match &delivery.secret {
                Ok(secret) => secret,
                Err(reason) => {
                    // Sealed under a master key this node does not have: it cannot sign, so it
                    // does not send; the attempt is recorded like a failure, and retried.
                    let error = format!("the endpoint's secret does not open: {reason}");
                    tracing::warn!(delivery = delivery.id, %error, "webhook delivery failed");
                    let attempt = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
                    let next = BACKOFF_SECONDS.get(attempt).map(|wait| now + wait);
                    self.metrics.record_delivery(false);
                    self.store.record_delivery(delivery.id, false, None, Some(&error), now, next).await?;
                    continue;
                }
            };
            let response = self
                .client
                .post(&delivery.url)
                .header("content-type", "application/json")
                .header("senderauth-event", &delivery.event)
                .header("senderauth-delivery", delivery.id.to_string())
                .header("senderauth-timestamp", now.to_string())
                .header("senderauth-signature", signature(secret, now, &body))
                .body(body)
                .send()
                .await;
            let (success, status, error) = match response {
                Ok(response) if response.status().is_success() => {
                    (true, Some(i64::from(response.status().as_u16())), None)
                }
                Ok(response) => (
                    false,
                    Some(i64::from(response.status().as_u16())),
                    Some(format!("answered {}", response.status())),
                ),
                Err(error) => (false, None, Some(error.to_string())),
            };
            let attempt = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
            let next = (!success).then(|| BACKOFF_SECONDS.get(attempt).map(|wait| now + wait)).flatten();
            self.metrics.record_delivery(success);
            if !success {
                tracing::warn!(delivery = delivery.id, url = %delivery.url, error = error.as_deref().unwrap_or(""), retry_at = next, "webhook delivery failed");
            }
            self.store.record_delivery(delivery.id, success, status, error.as_deref(), now, next).await?;
            delivered += usize::from(success);
        }
        Ok(delivered)
    }

    /// Delivers until `stop` turns true.
    pub async fn run_until_stopped(&self, mut stop: watch::Receiver<bool>, idle_pause: Duration) {
        while !*stop.borrow() {
            if let Err(error) = self.deliver_once(unix_now()).await {
                tracing::warn!(%error, "a round of webhook deliveries failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(idle_pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::7f00:1",
            "::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(private.parse().expect("address")), "{private} is not public");
        }
        for public in
            ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:93.184.216.34", "2001:4860::8888"]
        {
            assert!(is_public(public.parse().expect("address")), "{public} is public");
        }
    }

    #[test]
    fn address_literals_are_judged_and_names_are_left_to_resolution() {
        assert!(refused_target("http://127.0.0.1:8080/hook", Targets::PublicOnly).is_some());
        assert!(refused_target("https://[::1]/hook", Targets::PublicOnly).is_some());
        assert!(refused_target("http://169.254.169.254/latest/meta-data", Targets::PublicOnly).is_some());
        assert!(refused_target("http://127.0.0.1:8080/hook", Targets::Any).is_none());
        assert!(refused_target("https://93.184.216.34/hook", Targets::PublicOnly).is_none());
        assert!(refused_target("https://hooks.example.com/x", Targets::PublicOnly).is_none());
    }
}
