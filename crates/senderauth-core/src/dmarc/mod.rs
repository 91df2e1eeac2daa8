//! DMARC (RFC 7489): parsing, policy discovery and verification.

pub mod discover;
pub mod merge;
pub mod parse;
pub mod receivers;
pub mod verify;
