//! The platform's DNS: the zone as served (`zone`: the hosted DKIM keys, each account's SPF
//! include, the variable and bounce domains, the sandbox's customer zones in demo mode), the
//! authoritative nameserver over UDP and TCP with the follower that keeps every node's copy
//! current (`server`), and RFC 2136 pushes to an operator's own primary (`updates`).
//!
//! It reads the store, never the service: the zone is data, not a use case.

pub mod server;
pub mod updates;
pub mod zone;
