//! senderauth's service: the background verifier that checks connected domains and moves them
//! through their lifecycle. The REST API and the web UI come next.

pub mod api;
pub mod authority;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod nameserver;
pub mod rotation;
pub mod sandbox;
pub mod serve;
pub mod smtp;
pub mod ui;
pub mod updates;
pub mod webhooks;
pub mod worker;
