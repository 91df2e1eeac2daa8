//! The account use cases: accounts and their tokens, the platform's reserved domains, the web
//! UI's sessions, and the service's readiness and metrics.

use serde::Serialize;

use senderauth_core::name::DomainName;
use senderauth_core::return_path::Fallback;
use senderauth_store::{Account, Principal, TokenInfo, UiSession};

use crate::error::ServiceError;
use crate::service::Service;

/// An account just made, with its first token (shown this once).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub id: i64,
    pub name: String,
    pub domain_limit: Option<i64>,
    pub token: String,
}

/// An account as its own token sees it: its limits and settings.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub domain_limit: Option<i64>,
    pub created_at: i64,
    /// What the gateway does with mail signed as a domain whose return-path is not in use:
    /// `bounce_domain` (send it with the platform's bounce domain; DKIM alone carries DMARC) or
    /// `reject` (refuse it with 550 5.7.1).
    pub return_path_fallback: Fallback,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> AccountView {
        AccountView {
            id: account.id,
            name: account.name,
            domain_limit: account.domain_limit,
            created_at: account.created_at,
            return_path_fallback: account.return_path_fallback,
        }
    }
}

/// An API token; its secret is never shown again after it is made.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<&TokenInfo> for TokenView {
    fn from(token: &TokenInfo) -> TokenView {
        TokenView {
            id: token.id,
            label: token.label.clone(),
            created_at: token.created_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A token just made, with its secret (shown this once; only its hash is kept).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub token: TokenView,
    #[serde(rename = "token")]
    pub secret: String,
}

/// A domain the platform keeps for itself.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Reservation {
    pub domain: String,
    pub reason: String,
}

/// Who a token belongs to: the admin, or an account (re-exported from the store's sessions).
pub type Caller = Principal;

/// A signed-in UI session: its account and the CSRF token its forms carry.
pub type Session = UiSession;

fn checked_text(text: &str, invalid: ServiceError) -> Result<&str, ServiceError> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 { Err(invalid) } else { Ok(text) }
}

impl Service {
    /// The caller's account and its settings.
    pub async fn account(&self, account: i64) -> Result<AccountView, ServiceError> {
        let found = self.worker.store.account(account).await?;
        found.map(AccountView::from).ok_or_else(|| ServiceError::Internal(format!("account {account} is gone")))
    }

    /// Sets what the gateway does with the account's mail signed as a domain whose return-path
    /// is not in use: at once on this node, within 30 seconds on others.
    pub async fn set_return_path_fallback(
        &self,
        account: i64,
        fallback: Fallback,
    ) -> Result<AccountView, ServiceError> {
        self.worker.store.set_return_path_fallback(account, fallback).await?;
        if let Ok(mut known) = self.fallbacks.lock() {
            known.remove(&account);
        }
        self.account(account).await
    }

    /// What the gateway does with the account's mail signed as a domain whose return-path is
    /// not in use; read from the store at most every 30 seconds per account.
    pub async fn return_path_fallback(&self, account: i64) -> Result<Fallback, ServiceError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(30);
        if let Ok(known) = self.fallbacks.lock()
            && let Some((at, fallback)) = known.get(&account)
            && at.elapsed() < FRESH
        {
            return Ok(*fallback);
        }
        let fallback =
            self.worker.store.account(account).await?.map(|found| found.return_path_fallback).unwrap_or_default();
        if let Ok(mut known) = self.fallbacks.lock() {
            if known.len() >= 100_000 {
                known.clear();
            }
            known.insert(account, (std::time::Instant::now(), fallback));
        }
        Ok(fallback)
    }

    /// Who a bearer token belongs to; `None` when it is unknown or revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ServiceError> {
        Ok(self.worker.store.authenticate(token).await?)
    }

    /// Makes an account (limited to `domain_limit` domains, or the service's default) and its
    /// first token.
    pub async fn create_account(&self, name: &str, domain_limit: Option<i64>) -> Result<NewAccount, ServiceError> {
        let name = checked_text(name, ServiceError::InvalidAccountName)?;
        if domain_limit.is_some_and(|limit| limit < 0) {
            return Err(ServiceError::InvalidDomainLimit);
        }
        let now = self.now();
        let limit = domain_limit.or(self.default_domain_limit);
        let store = &self.worker.store;
        let account = store.create_account(name, limit, now).await?;
        let (_, token) = store.create_token(Some(account.id), "created with the account", now).await?;
        Ok(NewAccount { id: account.id, name: account.name, domain_limit: account.domain_limit, token })
    }

    /// The tokens of an account, or the admin tokens (`owner` `None`).
    pub async fn tokens(&self, owner: Option<i64>) -> Result<Vec<TokenView>, ServiceError> {
        Ok(self.worker.store.tokens(owner).await?.iter().map(TokenView::from).collect())
    }

    /// Makes a token for an account, or an admin token (`owner` `None`).
    pub async fn create_token(&self, owner: Option<i64>, label: &str) -> Result<NewToken, ServiceError> {
        let label = checked_text(label, ServiceError::InvalidTokenLabel)?;
        let (token, secret) = self.worker.store.create_token(owner, label, self.now()).await?;
        Ok(NewToken { token: TokenView::from(&token), secret })
    }

    /// Revokes one of the owner's active tokens.
    pub async fn revoke_token(&self, owner: Option<i64>, id: i64) -> Result<(), ServiceError> {
        if self.worker.store.revoke_token(owner, id, self.now()).await? {
            Ok(())
        } else {
            Err(ServiceError::TokenNotFound(id))
        }
    }

    /// The domains reserved by the platform's operators.
    pub async fn reserved_domains(&self) -> Result<Vec<Reservation>, ServiceError> {
        let reserved = self.worker.store.reserved_domains().await?;
        Ok(reserved.into_iter().map(|(domain, reason)| Reservation { domain, reason }).collect())
    }

    /// Reserves a domain: no account may connect it.
    pub async fn reserve_domain(&self, domain: &str, reason: Option<&str>) -> Result<(), ServiceError> {
        let domain = DomainName::parse(domain).map_err(|error| ServiceError::InvalidDomain(error.to_string()))?;
        let reason = reason.unwrap_or("used by the platform");
        self.worker.store.reserve_domain(domain.as_str(), reason, self.now()).await?;
        Ok(())
    }

    /// Lifts a reservation.
    pub async fn unreserve_domain(&self, name: &str) -> Result<(), ServiceError> {
        let not_reserved = || ServiceError::NotReserved(name.to_string());
        let domain = DomainName::parse(name).map_err(|_| not_reserved())?;
        if self.worker.store.unreserve_domain(domain.as_str()).await? { Ok(()) } else { Err(not_reserved()) }
    }

    /// Starts a UI session for an account token, lasting `seconds`: its secret (for the cookie)
    /// and the session. `None` when the token is unknown, revoked or an admin token.
    pub async fn sign_in(&self, token: &str, seconds: i64) -> Result<Option<(String, Session)>, ServiceError> {
        Ok(self.worker.store.create_session(token.trim(), self.now(), seconds).await?)
    }

    /// The live session a cookie's secret names.
    pub async fn session(&self, secret: &str) -> Result<Option<Session>, ServiceError> {
        Ok(self.worker.store.session(secret, self.now()).await?)
    }

    /// Ends a session.
    pub async fn sign_out(&self, secret: &str) -> Result<(), ServiceError> {
        Ok(self.worker.store.end_session(secret, self.now()).await?)
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> bool {
        self.worker.store.reserved_domains().await.is_ok()
    }

    /// The Prometheus metrics text: checks, deliveries, domains per status and the queue's lag.
    pub async fn metrics_text(&self) -> Result<String, ServiceError> {
        let store = &self.worker.store;
        let now = self.now();
        let counts = store.status_counts().await?;
        let lag = store.oldest_due(now).await?.map_or(0, |due| (now - due).max(0));
        Ok(self.worker.metrics.render(&counts, lag))
    }
}
