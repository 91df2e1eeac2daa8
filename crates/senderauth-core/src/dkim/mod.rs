//! DKIM (RFC 6376): key records and the selector checks, and the keys the platform publishes.

pub mod key;
pub mod parse;
pub mod verify;
