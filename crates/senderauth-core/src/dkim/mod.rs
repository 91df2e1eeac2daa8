//! DKIM (RFC 6376): key records and the selector checks.

pub mod parse;
pub mod verify;
