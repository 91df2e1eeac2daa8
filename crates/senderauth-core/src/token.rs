//! Random tokens: API tokens, session secrets, CSRF tokens, bounce tokens. One helper, from the
//! operating system's random source.

/// The operating system gave no random bytes: no token can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct NoRandomness(String);

/// `prefix` followed by `bytes` random bytes in lowercase hex.
pub fn random_hex(prefix: &str, bytes: usize) -> Result<String, NoRandomness> {
    let mut random = vec![0_u8; bytes];
    fill_random(&mut random)?;
    let mut token = String::with_capacity(prefix.len() + 2 * bytes);
    token.push_str(prefix);
    push_hex(&mut token, &random);
    Ok(token)
}

/// Fills `bytes` from the operating system's random source.
pub fn fill_random(bytes: &mut [u8]) -> Result<(), NoRandomness> {
    getrandom::getrandom(bytes).map_err(|error| NoRandomness(error.to_string()))
}

/// `bytes` in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    push_hex(&mut text, bytes);
    text
}

fn push_hex(text: &mut String, bytes: &[u8]) {
    for byte in bytes {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
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

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
