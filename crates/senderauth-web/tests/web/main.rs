//! The HTTP front ends end to end: the REST API, the web UI's forms and shared links, and webhooks against the real router on a
//! loopback port, with a real store and test DNS.

mod api;
mod dmarc;
mod ui;
mod webhooks;
