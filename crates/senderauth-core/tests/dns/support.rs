//! Shared helpers for the DNS-backed tests.

use std::path::PathBuf;
use std::time::Duration;

use senderauth_core::dns::{Dns, ResolverSettings};
use senderauth_testkit::TestDns;

/// A client that asks only the test server, with short timeouts so injected timeouts are quick.
pub fn client(server: &TestDns) -> Dns {
    Dns::new(&ResolverSettings {
        nameserver: Some(server.address()),
        timeout: Duration::from_millis(400),
        attempts: 1,
        cache: false,
    })
    .expect("resolver for the test server")
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub use senderauth_testkit::require_or_skip;
