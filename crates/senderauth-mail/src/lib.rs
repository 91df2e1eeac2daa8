//! The sending gateway: what happens to a message (checks, sign as its domain or rewrite to the
//! variable domain) in `message`, and the SMTP listener that takes mail from accounts and
//! relays it to the platform's MTA in `smtp`; the report address's listener in `reports`, and
//! the pull of a report mailbox over IMAP in `imap`.

pub mod bounces;
pub mod dsn;
pub mod imap;
mod inbound;
pub mod message;
pub mod reports;
pub mod smtp;

pub use message::{Arrival, Gateway, MailError, Prepared, prepare};
