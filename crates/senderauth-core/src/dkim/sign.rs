//! DKIM signing (RFC 6376): relaxed header and simple body canonicalization, SHA-256, RSA
//! (PKCS#1 v1.5) over AWS-LC or Ed25519 (RFC 8463) over ring; the header fields present are
//! signed, and `From` once more than it occurs, so no From can be added without breaking the
//! signature. [`SigningKey`] is the one place that knows which library signs.
//!
//! RSA over AWS-LC (aws-lc-rs) rather than ring: both are constant-time, but on hosts with
//! AVX-512 IFMA AWS-LC signs RSA-2048 as fast as OpenSSL itself and ring about half as fast
//! (`bench/rsa-speed.sh`: 6,700 against 3,700 signatures a second on 2 cores); elsewhere they
//! are even. Ed25519 is ring's (60,000 a second; nothing to gain).
//!
//! Ours, not `mail-auth`'s (0.13.3, the version that builds with this toolchain), for measured
//! reasons. Speed was not one: both signed with ring, and interleaved runs of 10 KB messages on
//! both cores measured mail-auth at 1,664-1,674 RSA-2048 and 30,904-31,385 Ed25519 signatures a
//! second against ours at 1,498-1,703 and 29,913-29,953. What decides it: mail-auth fixes the
//! list of header names when a signer is built around its key (which cannot be cloned), and it
//! oversigns every listed name the message lacks. Signing what each message has, as here,
//! would mean opening the key (the RSA key check) for every message; a fixed list would
//! oversign Cc, Reply-To, List-Id and the rest, so a forwarder or a mailing list that adds one
//! breaks the signature. It also reads the wall clock for `t=` where this takes the service's
//! clock, and it would add mail-parser with every character set and hickory's TLS features to a
//! cold build. dkimpy and OpenDKIM verify what this signs (the gateway's tests).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::Ed25519KeyPair;
use sha2::{Digest, Sha256};

/// What signs: the library and how (for `senderauth keys speed` and the benchmarks).
pub const IMPLEMENTATION: &str = "aws-lc-rs 1.19 (AWS-LC, constant-time RSA PKCS#1 v1.5) and ring 0.17 (Ed25519)";

/// Relaxed header canonicalization of one field (RFC 6376 section 3.4.2), CRLF included.
fn relaxed_header(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let (name, value) = text.split_once(':').unwrap_or((&text, ""));
    let unfolded = value.replace("\r\n", "");
    let mut compact = String::with_capacity(unfolded.len());
    let mut space = false;
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !compact.is_empty() {
                compact.push(' ');
            }
            space = false;
            compact.push(c);
        }
    }
    format!("{}:{}\r\n", name.trim().to_ascii_lowercase(), compact).into_bytes()
}

/// Simple body canonicalization (RFC 6376 section 3.4.3): trailing empty lines removed, one CRLF
/// at the end. Returned in two parts (the body's bytes kept, then the CRLF), so it is hashed
/// without a copy.
fn simple_body(body: &[u8]) -> [&[u8]; 2] {
    let mut end = body.len();
    while end >= 2 && &body[end - 2..end] == b"\r\n" {
        end -= 2;
    }
    [&body[..end], b"\r\n"]
}

/// The header fields signed, when present; `From` is signed once more than it occurs.
const SIGNED_HEADERS: [&str; 15] = [
    "from",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
];

/// A stored private key that does not open as a signing key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {algorithm} private key is not a usable PKCS#8 key: {reason}")]
pub struct KeyRejected {
    pub algorithm: String,
    pub reason: String,
}

/// A private key ready to sign.
pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// From the PKCS#8 document the key maker made.
    pub fn from_pkcs8(algorithm: &str, pkcs8: &[u8]) -> Result<SigningKey, KeyRejected> {
        let rejected = |reason: String| KeyRejected { algorithm: algorithm.to_string(), reason };
        if algorithm == "ed25519" {
            Ed25519KeyPair::from_pkcs8(pkcs8).map(SigningKey::Ed25519).map_err(|error| rejected(error.to_string()))
        } else {
            RsaKeyPair::from_pkcs8(pkcs8).map(SigningKey::Rsa).map_err(|error| rejected(error.to_string()))
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            SigningKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), data, &mut signature)
                    .map_err(|_| "RSA signing failed".to_string())?;
                Ok(signature)
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
            SigningKey::Ed25519(pair) => Ok(pair.sign(&Sha256::digest(data)).as_ref().to_vec()),
        }
    }
}

/// Signs `fields` + `body` as `domain` with `selector`'s key at time `now`: the DKIM-Signature
/// header field (folded, CRLF included) to put first.
pub fn dkim_signature(
    fields: &[Vec<u8>],
    body: &[u8],
    domain: &str,
    selector: &str,
    key: &SigningKey,
    now: i64,
) -> Result<Vec<u8>, String> {
    let mut body_hasher = Sha256::new();
    for part in simple_body(body) {
        body_hasher.update(part);
    }
    let body_hash = BASE64.encode(body_hasher.finalize());
    // The fields to sign, each instance from the bottom up (RFC 6376 section 5.4.2).
    let names: Vec<String> = fields
        .iter()
        .map(|raw| {
            String::from_utf8_lossy(raw)
                .split_once(':')
                .map_or(String::new(), |(name, _)| name.trim().to_ascii_lowercase())
        })
        .collect();
    let mut signed_names = Vec::new();
    let mut data = Vec::new();
    for wanted in SIGNED_HEADERS {
        for (index, name) in names.iter().enumerate().rev() {
            if name == wanted {
                signed_names.push(wanted);
                data.extend(relaxed_header(&fields[index]));
            }
        }
    }
    // Once more than From occurs: an empty instance, so an added From breaks the signature.
    signed_names.push("from");
    let mut header = format!(
        "DKIM-Signature: v=1; a={}; c=relaxed/simple; d={domain}; s={selector};\r\n\tt={now}; h={};\r\n\tbh={body_hash};\r\n\tb=",
        key.tag(),
        signed_names.join(":"),
    );
    let mut canonical = relaxed_header(header.as_bytes());
    canonical.truncate(canonical.len() - 2); // the signature's own field is signed without its CRLF
    data.extend(canonical);
    let signature = BASE64.encode(key.sign(&data)?);
    for (index, chunk) in signature.as_bytes().chunks(72).enumerate() {
        if index > 0 {
            header.push_str("\r\n\t ");
        }
        header.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    header.push_str("\r\n");
    Ok(header.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalization_follows_rfc_6376() {
        // RFC 6376 section 3.4.5's example.
        assert_eq!(relaxed_header(b"A: X\r\n"), b"a:X\r\n");
        assert_eq!(relaxed_header(b"B : Y\t\r\n\tZ  \r\n"), b"b:Y Z\r\n");
        assert_eq!(simple_body(b" C \r\nD \t E\r\n\r\n\r\n").concat(), b" C \r\nD \t E\r\n");
        assert_eq!(simple_body(b"").concat(), b"\r\n");
    }
}
