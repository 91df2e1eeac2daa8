//! The service layer end to end: the background verifier against a real store and test DNS.

mod worker;
