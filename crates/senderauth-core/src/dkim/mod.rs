//! DKIM (RFC 6376): key records and the selector checks, the keys the platform publishes, and
//! signing.

pub mod key;
pub mod parse;
pub mod sign;
pub mod verify;
