//! What the reports crate's test files share.

/// Whether a test may go on: a missing external tool skips it, except in CI, where it fails
/// (the README's test command installs it). As `senderauth_testkit::require_or_skip`, without
/// its dependencies.
pub fn require_or_skip(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is required in CI; the README's test command installs it");
    eprintln!("SKIPPED: {what} is not installed; run the README's test command to install it");
    false
}
