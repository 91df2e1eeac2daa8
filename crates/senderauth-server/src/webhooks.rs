//! Webhook deliveries: every status change with a lifecycle event is sent as a signed JSON POST
//! to each endpoint of the domain's account, retried with backoff when it does not succeed.
//!
//! The signature header is `sha256=<hex>` of HMAC-SHA256 over `"{timestamp}.{body}"` with the
//! endpoint's secret; the timestamp travels in its own header, so receivers can refuse replays.

use std::sync::{Arc, Once};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use senderauth_store::{DueDelivery, Store, StoreError};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::worker::unix_now;

/// Seconds to wait after each failed attempt; after the last, the delivery is `failed`.
const BACKOFF_SECONDS: [i64; 7] = [30, 120, 600, 1_800, 3_600, 3 * 3_600, 12 * 3_600];
/// How long one attempt may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends due deliveries.
#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub node: String,
    pub metrics: Arc<Metrics>,
    client: reqwest::Client,
}

/// The signature of a delivery body.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|byte| format!("{byte:02x}")).collect::<String>())
}

/// The JSON a delivery carries.
pub fn payload(delivery: &DueDelivery) -> String {
    json!({
        "id": delivery.event_id,
        "type": delivery.event,
        "created_at": delivery.at,
        "data": {
            "domain": delivery.domain,
            "account": delivery.account_id,
            "from": delivery.from_status,
            "to": delivery.to_status,
        },
    })
    .to_string()
}

impl Deliverer {
    pub fn new(store: Store, node: String, metrics: Arc<Metrics>) -> Result<Deliverer, String> {
        static PROVIDER: Once = Once::new();
        PROVIDER.call_once(|| {
            // reqwest's TLS uses rustls with the ring provider, installed once per process.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot make the webhook HTTP client: {error}"))?;
        Ok(Deliverer { store, node, metrics, client })
    }

    /// Sends every delivery due at `now` that this node can claim; returns how many succeeded.
    pub async fn deliver_once(&self, now: i64) -> Result<usize, StoreError> {
        let due = self.store.claim_deliveries(&self.node, now, now + 60, 100).await?;
        let mut delivered = 0;
        for delivery in due {
            let body = payload(&delivery);
            let response = self
                .client
                .post(&delivery.url)
                .header("content-type", "application/json")
                .header("senderauth-event", &delivery.event)
                .header("senderauth-delivery", delivery.id.to_string())
                .header("senderauth-timestamp", now.to_string())
                .header("senderauth-signature", signature(&delivery.secret, now, &body))
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
