//! The platform's DKIM key algorithms and the key record it publishes for each key.

use std::fmt;

/// A DKIM key's algorithm and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

/// A key algorithm name that is not one of [`KeyAlgorithm::ALL`]; the message says which to use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownAlgorithm(pub String);

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 4] =
        [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096, KeyAlgorithm::Ed25519];

    /// The name used in configuration, the API and the store: `rsa-2048`, ..., `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// The key type as DKIM records name it (`k=`).
    pub fn dkim_type(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            _ => "rsa",
        }
    }

    /// The RSA modulus size in bits; `None` for Ed25519.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            KeyAlgorithm::Ed25519 => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(text: &str) -> Result<KeyAlgorithm, UnknownAlgorithm> {
        let wanted = text.trim().to_ascii_lowercase();
        if let Some(algorithm) = KeyAlgorithm::ALL.into_iter().find(|algorithm| algorithm.as_str() == wanted) {
            return Ok(algorithm);
        }
        let message = match wanted.as_str() {
            "rsa-1024" | "rsa-512" | "rsa-768" => format!(
                "{wanted} keys are too weak: receivers treat DKIM signatures with RSA keys under 2048 bits as \
                 failing; use rsa-2048 (the default), rsa-3072, rsa-4096 or ed25519"
            ),
            _ => format!("unknown key algorithm {text:?}: use rsa-2048 (the default), rsa-3072, rsa-4096 or ed25519"),
        };
        Err(UnknownAlgorithm(message))
    }
}

/// The DKIM key record's text: `v=DKIM1; k=rsa; p=...`; a revoked key has an empty `p=`
/// (RFC 6376 section 3.6.1), which tells verifiers the key was withdrawn.
pub fn dkim_record(algorithm: KeyAlgorithm, public_key: &str, revoked: bool) -> String {
    format!("v=DKIM1; k={}; p={}", algorithm.dkim_type(), if revoked { "" } else { public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_unknown_algorithms_are_refused_with_what_to_use() {
        assert_eq!("RSA-3072".parse::<KeyAlgorithm>(), Ok(KeyAlgorithm::Rsa3072));
        let weak = "rsa-1024".parse::<KeyAlgorithm>().expect_err("too weak");
        assert!(weak.0.contains("too weak"), "{weak}");
        let unknown = "dsa".parse::<KeyAlgorithm>().expect_err("unknown");
        assert!(unknown.0.contains("use rsa-2048"), "{unknown}");
    }

    #[test]
    fn a_revoked_key_publishes_an_empty_key() {
        assert_eq!(dkim_record(KeyAlgorithm::Ed25519, "abc", false), "v=DKIM1; k=ed25519; p=abc");
        assert_eq!(dkim_record(KeyAlgorithm::Rsa2048, "abc", true), "v=DKIM1; k=rsa; p=");
    }
}
