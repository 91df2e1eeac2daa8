//! senderauth's service layer: [`Service`] and its use cases (connect, show, verify, remove,
//! tokens, webhooks, the sandbox), each returning a typed view or a [`ServiceError`]; and the
//! work behind them: the platform's DKIM keys and their rotation, the background verifier, webhook
//! deliveries, metrics and the configuration. It knows no HTTP, HTML, SMTP or DNS wire format:
//! the front ends (`senderauth-web`, `senderauth-mail`, the CLI) call it.

pub mod accounts;
pub mod bounces;
pub mod config;
pub mod connections;
pub mod coverage;
pub mod domains;
pub mod error;
pub mod feedback;
pub mod keys;
pub mod metrics;
pub mod names;
pub mod reports;
pub mod rotation;
pub mod sandbox;
mod service;
pub mod shares;
pub mod upkeep;
pub mod webhooks;
pub mod worker;

pub use error::{ErrorKind, ServiceError};
pub use service::{Clock, Service};
