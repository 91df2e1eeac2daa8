//! DMARC record syntax (RFC 7489 section 6.3).
/// stub
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct DmarcSyntaxError;
pub fn parse_record(_text: &str) -> Result<(), DmarcSyntaxError> {
    Ok(())
}
