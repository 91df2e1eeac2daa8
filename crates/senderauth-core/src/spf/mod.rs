//! SPF (RFC 7208): parsing, evaluation, the include tree, and merging a customer's record.

pub mod eval;
pub mod merge;
pub mod parse;
pub mod tree;
pub mod verify;
