//! SPF (RFC 7208): parsing, evaluation, the include tree, merging a customer's record, and the
//! platform's own records.

pub mod build;
pub mod eval;
pub mod merge;
pub mod parse;
pub mod tree;
pub mod verify;
