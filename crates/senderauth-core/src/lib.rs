//! senderauth's core: the records a sending domain needs, the SPF, DKIM and DMARC rules, and
//! verification against DNS. It never touches HTTP, SQL or SMTP.

pub mod check;
pub mod cidr;
pub mod config;
pub mod dkim;
pub mod dmarc;
pub mod dns;
pub mod lifecycle;
pub mod mailbox;
pub mod name;
pub mod paste;
pub mod plan;
pub mod problem;
pub mod return_path;
pub mod sandbox;
pub mod spf;
pub mod status;
pub mod token;
pub mod verify;
