//! DMARC (RFC 7489): parsing and policy discovery.

pub mod parse;
