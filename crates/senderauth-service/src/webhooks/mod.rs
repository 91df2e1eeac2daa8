//! Webhooks: an account's endpoints and their delivery logs (the use cases here), and the
//! deliveries themselves (`delivery`: signed, retried, public addresses only).

pub mod delivery;

pub use delivery::{Deliverer, Targets, is_public, payload, refused_target, signature};

use crate::error::ServiceError;
use crate::service::Service;

/// A webhook endpoint of an account.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub created_at: i64,
}

/// An endpoint just added, with its signing secret (shown this once).
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NewWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}

/// One delivery of an event to an endpoint, as its log shows it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// The most deliveries an endpoint's log shows.
const DELIVERY_LOG: i64 = 100;

impl Service {
    /// Adds a webhook endpoint to an account: an http(s) URL whose host is allowed by the
    /// service's targets. Its signing secret is made here and shown this once.
    pub async fn add_webhook(&self, account: i64, url: &str) -> Result<NewWebhook, ServiceError> {
        let url = url.trim();
        let valid = reqwest::Url::parse(url)
            .is_ok_and(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some());
        if !valid || url.len() > 2000 {
            return Err(ServiceError::InvalidUrl { url: url.to_string() });
        }
        if let Some(refusal) = refused_target(url, self.webhook_targets) {
            return Err(ServiceError::WebhookTargetNotAllowed(refusal));
        }
        let (endpoint, secret) = self.worker.store.add_webhook(account, url, self.now(), &*self.keys.master).await?;
        Ok(NewWebhook {
            webhook: WebhookView { id: endpoint.id, url: endpoint.url, created_at: endpoint.created_at },
            secret,
        })
    }

    /// The account's webhook endpoints.
    pub async fn webhooks(&self, account: i64) -> Result<Vec<WebhookView>, ServiceError> {
        let endpoints = self.worker.store.webhooks(account).await?;
        Ok(endpoints
            .into_iter()
            .map(|endpoint| WebhookView { id: endpoint.id, url: endpoint.url, created_at: endpoint.created_at })
            .collect())
    }

    /// Removes one of the account's webhook endpoints.
    pub async fn remove_webhook(&self, account: i64, id: i64) -> Result<(), ServiceError> {
        if self.worker.store.delete_webhook(account, id).await? {
            Ok(())
        } else {
            Err(ServiceError::WebhookNotFound(id))
        }
    }

    /// The latest deliveries to one of the account's endpoints, newest first.
    pub async fn deliveries(&self, account: i64, id: i64) -> Result<Vec<DeliveryView>, ServiceError> {
        let deliveries =
            self.worker.store.deliveries(account, id, DELIVERY_LOG).await?.ok_or(ServiceError::WebhookNotFound(id))?;
        Ok(deliveries
            .into_iter()
            .map(|delivery| DeliveryView {
                id: delivery.id,
                event_id: delivery.event_id,
                state: delivery.state,
                attempts: delivery.attempts,
                next_attempt_at: delivery.next_attempt_at,
                last_status: delivery.last_status,
                last_error: delivery.last_error,
                created_at: delivery.created_at,
                delivered_at: delivery.delivered_at,
            })
            .collect())
    }
}
