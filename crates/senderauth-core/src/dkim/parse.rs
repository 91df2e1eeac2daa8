//! DKIM key records (RFC 6376 section 3.6.1).
//!
//! Our own parser: the checks need the key's size read from the DER (an RSA key under 1024 bits
//! is refused by receivers), a revoked key (`p=` empty) told apart from a malformed one, and the
//! tag that is wrong, which a verifier's key parser does not report.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;

/// A DKIM public key record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DkimKey {
    /// `k=`: `rsa` (the default) or `ed25519`.
    pub key_type: String,
    /// `p=`, base64, without white space. Empty means the key was revoked. Not serialized:
    /// reports say which key (type, size), not the key itself.
    #[serde(skip)]
    pub public_key: String,
    /// The RSA modulus size in bits, when it could be read from the key.
    pub bits: Option<u32>,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
}

impl DkimKey {
    pub fn is_revoked(&self) -> bool {
        self.public_key.is_empty()
    }
}

/// Why a TXT record is not a usable DKIM key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DkimKeyError {
    pub message: String,
}

fn error(message: impl Into<String>) -> DkimKeyError {
    DkimKeyError { message: message.into() }
}

/// Whether a TXT record looks like a DKIM key record (has `v=DKIM1` or a `p=` tag).
pub fn looks_like_key(text: &str) -> bool {
    text.split(';').any(|part| {
        let part = part.trim();
        part.starts_with("v=DKIM1") || part.starts_with("p=") || part.starts_with("p =")
    })
}

/// Parses a DKIM key record: tag=value pairs; `v=DKIM1`, when present, first; `p=` required.
pub fn parse_key(text: &str) -> Result<DkimKey, DkimKeyError> {
    let mut key_type = "rsa".to_string();
    let mut public_key = None;
    let mut testing = false;
    for (index, part) in text.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (tag, value) = part.split_once('=').ok_or_else(|| error(format!("{part:?} is not a tag=value pair")))?;
        let tag = tag.trim();
        // Folded values (spaces inside p=) are rare; the common case is one copy.
        let value: String = if value.contains(char::is_whitespace) {
            value.chars().filter(|c| !c.is_whitespace()).collect()
        } else {
            value.to_string()
        };
        match tag {
            "v" if index != 0 => return Err(error("v=DKIM1 must be the first tag")),
            "v" if value != "DKIM1" => return Err(error(format!("v={value}: the only version is DKIM1"))),
            "k" => key_type = value.to_ascii_lowercase(),
            "p" => public_key = Some(value),
            "t" => testing = value.split(':').any(|flag| flag == "y"),
            _ => {}
        }
    }
    let public_key = public_key.ok_or_else(|| error("the p= tag (the public key) is missing"))?;
    let bytes = if public_key.is_empty() {
        Vec::new()
    } else {
        decode_base64(&public_key).ok_or_else(|| error("p= is not valid base64"))?
    };
    let bits = match key_type.as_str() {
        "rsa" if !bytes.is_empty() => {
            let bits = rsa_modulus_bits(&bytes).ok_or_else(|| error("p= is not an RSA public key"))?;
            // RFC 8301 section 3.2: verifiers must not accept signatures from keys under 1024 bits.
            if bits < 1024 {
                return Err(error(format!(
                    "the RSA key has {bits} bits; receivers ignore keys under 1024 bits (RFC 8301)"
                )));
            }
            Some(bits)
        }
        "rsa" => None,
        "ed25519" if bytes.is_empty() || bytes.len() == 32 => None,
        "ed25519" => return Err(error(format!("an Ed25519 key is 32 bytes; p= holds {}", bytes.len()))),
        other => return Err(error(format!("k={other}: key types are rsa and ed25519"))),
    };
    Ok(DkimKey { key_type, public_key, bits, testing })
}

/// Base64 as DKIM key records hold it: padding optional, bits after the last whole octet
/// ignored.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding optional: everything from the first `=` on is ignored, and a
/// last lone digit (six bits, no whole octet) adds nothing.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let digits = bytes.iter().position(|&byte| byte == b'=').map_or(bytes, |end| &bytes[..end]);
    let whole = match digits {
        // A lone digit is still checked, then dropped: the base64 crate refuses the length.
        [whole @ .., last] if digits.len() % 4 == 1 => {
            if !(last.is_ascii_alphanumeric() || *last == b'+' || *last == b'/') {
                return None;
            }
            whole
        }
        _ => digits,
    };
    KEY_BASE64.decode(whole).ok()
}

/// Reads one DER element: returns (tag, content, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0_usize, |length, byte| (length << 8) | usize::from(*byte));
        rest = &rest[count..];
        length
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// The modulus size of an RSA key given as SubjectPublicKeyInfo or as a bare RSAPublicKey.
fn rsa_modulus_bits(der: &[u8]) -> Option<u32> {
    let (tag, content, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (first_tag, first, rest) = der_element(content)?;
    let modulus = match first_tag {
        // RSAPublicKey: SEQUENCE { INTEGER modulus, INTEGER exponent }
        0x02 => first,
        // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING { RSAPublicKey } }
        0x30 => {
            let (bit_tag, bit_string, _) = der_element(rest)?;
            if bit_tag != 0x03 || bit_string.is_empty() {
                return None;
            }
            let (inner_tag, inner, _) = der_element(&bit_string[1..])?;
            if inner_tag != 0x30 {
                return None;
            }
            let (modulus_tag, modulus, _) = der_element(inner)?;
            if modulus_tag != 0x02 {
                return None;
            }
            modulus
        }
        _ => return None,
    };
    let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
    let leading = modulus.iter().find(|byte| **byte != 0)?;
    Some((significant as u32) * 8 - leading.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys() {
        let key = parse_key(&format!("v=DKIM1; k=rsa; p={}", senderauth_testkit::EXAMPLE_DKIM_KEY)).expect("valid");
        assert_eq!(key.bits, Some(1024));
        assert!(!key.is_revoked());
        assert!(parse_key("v=DKIM1; p=").expect("revoked key parses").is_revoked());
        let ed = parse_key("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").expect("ed25519");
        assert_eq!(ed.key_type, "ed25519");
    }

    #[test]
    fn decodes_base64_as_the_base64_crate_does() {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        let mut bytes = Vec::new();
        for length in 0..70_u8 {
            let encoded = STANDARD.encode(&bytes);
            assert_eq!(decode_base64(&encoded).as_deref(), Some(&bytes[..]), "{encoded}");
            assert_eq!(decode_base64(&STANDARD_NO_PAD.encode(&bytes)).as_deref(), Some(&bytes[..]));
            bytes.push(length.wrapping_mul(37) ^ 0xa5);
        }
        assert_eq!(decode_base64("TWFu=ignored!"), Some(b"Man".to_vec()), "what follows = is ignored");
        assert_eq!(decode_base64("TWFuT"), Some(b"Man".to_vec()), "a lone last digit holds no octet");
        for bad in ["TW!u", "TWFuTW-u", "TWFu TWFu", "TWF\u{e9}", "TWFu!"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_broken_keys() {
        for bad in [
            "v=DKIM1; k=rsa",
            "k=rsa; v=DKIM1; p=AAAA",
            "v=DKIM1; p=!!!",
            "v=DKIM1; p=AAAA",
            "v=DKIM1; k=dsa; p=AAAA",
            "garbage",
        ] {
            assert!(parse_key(bad).is_err(), "{bad}");
        }
    }
}
