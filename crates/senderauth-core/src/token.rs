//! Random tokens: API tokens, session secrets, CSRF tokens, bounce tokens. One helper, from the
//! operating system's random source.

/// The operating system gave no random bytes: no token can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct NoRandomness(String);

/// `prefix` followed by `bytes` random bytes in lowercase hex.
pub fn random_hex(prefix: &str, bytes: usize) -> Result<String, NoRandomness> {
    let mut random = vec![0_u8; bytes];
    getrandom::getrandom(&mut random).map_err(|error| NoRandomness(error.to_string()))?;
    let mut token = String::with_capacity(prefix.len() + 2 * bytes);
    token.push_str(prefix);
    for byte in random {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(token)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_hex_and_differ() {
        let first = random_hex("sa_", 16).expect("random bytes");
        assert!(first.starts_with("sa_") && first.len() == 3 + 32, "{first}");
        assert!(first[3..].bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()));
        assert_ne!(first, random_hex("sa_", 16).expect("random bytes"));
    }
}
