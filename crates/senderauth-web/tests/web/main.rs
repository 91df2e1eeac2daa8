//! The HTTP front ends end to end: the REST API and webhooks against the real router on a
//! loopback port, with a real store and test DNS.

mod api;
mod webhooks;
