//! Read-only links to a domain's setup page ("send these instructions to a colleague"): the
//! account makes and revokes them; whoever holds one sees the records and their live status
//! until it expires, and nothing else of the account.

use senderauth_store::{ShareLink, SharedDomain};

use crate::domains::not_found;
use crate::{Service, ServiceError};

/// How long a share link opens by default, and at most, in days.
pub const SHARE_DAYS: i64 = 7;
pub const MAX_SHARE_DAYS: i64 = 30;

impl Service {
    /// Makes a share link to one of the account's domains for `days` days. Returns the link
    /// and its secret, which the URL carries and nothing keeps.
    pub async fn share(&self, account: i64, name: &str, days: i64) -> Result<(ShareLink, String), ServiceError> {
        if !(1..=MAX_SHARE_DAYS).contains(&days) {
            return Err(ServiceError::InvalidShareDays { max: MAX_SHARE_DAYS });
        }
        let (domain, _) = self.owned_domain(account, name).await?;
        let now = self.now();
        self.worker
            .store
            .create_share_link(account, domain.as_str(), now, now + days * 86_400)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// The share links of one of the account's domains that still open.
    pub async fn share_links(&self, account: i64, name: &str) -> Result<Vec<ShareLink>, ServiceError> {
        let (domain, _) = self.owned_domain(account, name).await?;
        Ok(self.worker.store.share_links(account, domain.as_str(), self.now()).await?)
    }

    /// Revokes a share link of one of the account's domains: it stops opening at once.
    pub async fn revoke_share(&self, account: i64, name: &str, id: i64) -> Result<(), ServiceError> {
        let (domain, _) = self.owned_domain(account, name).await?;
        if self.worker.store.revoke_share_link(account, domain.as_str(), id, self.now()).await? {
            Ok(())
        } else {
            Err(ServiceError::ShareLinkNotFound)
        }
    }

    /// The domain a share link opens; an unknown, expired or revoked link is `ShareLinkNotFound`
    /// (one answer for all three: the link says nothing about why).
    pub async fn shared(&self, secret: &str) -> Result<SharedDomain, ServiceError> {
        // A secret is 64 hex digits: anything else is not looked up.
        if secret.len() != 64 || !secret.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(ServiceError::ShareLinkNotFound);
        }
        self.worker.store.shared_domain(secret, self.now()).await?.ok_or(ServiceError::ShareLinkNotFound)
    }
}
