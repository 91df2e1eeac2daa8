//! The return-path: a host under the customer's domain (`rp.<domain>`) that the gateway uses as
//! the envelope sender, so that SPF passes for a name aligned with the From domain (RFC 7489
//! section 3.1.2: relaxed alignment is the same organizational domain). The customer adds one
//! CNAME to a name in the platform's zone, where the platform's DNS serves an SPF record of its
//! sending addresses and an MX to its bounce hosts (RFC 5321 section 5.1: the MX is found
//! through the CNAME).

pub mod verify;

pub use verify::{ReturnPathCheck, ReturnPathExpectation, verify_return_path};
