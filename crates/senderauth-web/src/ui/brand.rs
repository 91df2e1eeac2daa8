//! White label: the operator's product name, logo, accent colour and support link
//! (`[service.ui]`), checked once at start and shown on every page. Nothing set: senderauth.

use std::path::Path;

use senderauth_service::config::UiConfig;

/// The largest logo file taken.
const MAX_LOGO_BYTES: usize = 256 * 1024;

/// The least contrast of white text on the accent colour (WCAG 2.1 AA, normal text).
const MIN_CONTRAST: f64 = 4.5;

/// What the pages show of the operator.
#[derive(Clone, Debug)]
pub struct Brand {
    pub name: String,
    pub logo: Option<Logo>,
    /// `#rrggbb`, already checked.
    pub accent: Option<String>,
    pub support_url: Option<String>,
}

/// A logo file's bytes and content type, served at `/ui/logo`.
#[derive(Clone, Debug)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

impl Default for Brand {
    fn default() -> Brand {
        Brand { name: "senderauth".to_string(), logo: None, accent: None, support_url: None }
    }
}

/// Why `[service.ui]` was refused.
#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("[service.ui] product_name must be 1 to 60 characters")]
    Name,
    #[error("[service.ui] logo_file {path}: {reason}")]
    Logo { path: String, reason: String },
    #[error("[service.ui] accent {0:?} is not a colour: write it as #rrggbb, like #0b57d0")]
    AccentSyntax(String),
    #[error(
        "[service.ui] accent {accent} is too light for white text on buttons (contrast {contrast:.1}:1, WCAG AA needs \
         4.5:1): choose a darker shade"
    )]
    AccentContrast { accent: String, contrast: f64 },
    #[error("[service.ui] support_url {0:?} must be an https:// or mailto: URL")]
    SupportUrl(String),
}

impl Brand {
    /// The brand `[service.ui]` describes, its logo read from disk.
    pub fn from_config(config: &UiConfig) -> Result<Brand, BrandError> {
        let mut brand = Brand::default();
        if let Some(name) = &config.product_name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 60 {
                return Err(BrandError::Name);
            }
            brand.name = name.to_string();
        }
        if let Some(path) = &config.logo_file {
            brand.logo = Some(read_logo(path)?);
        }
        if let Some(accent) = &config.accent {
            let accent = accent.trim().to_ascii_lowercase();
            let contrast = contrast_with_white(&accent).ok_or_else(|| BrandError::AccentSyntax(accent.clone()))?;
            if contrast < MIN_CONTRAST {
                return Err(BrandError::AccentContrast { accent, contrast });
            }
            brand.accent = Some(accent);
        }
        if let Some(url) = &config.support_url {
            let url = url.trim();
            let valid = (url.starts_with("https://") && url.len() > "https://".len())
                || (url.starts_with("mailto:") && url.contains('@'));
            if !valid || url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') {
                return Err(BrandError::SupportUrl(url.to_string()));
            }
            brand.support_url = Some(url.to_string());
        }
        Ok(brand)
    }

    /// The stylesheet that sets the accent colour (served at `/ui/theme.css`; the pages link it
    /// only when an accent is set).
    pub fn theme(&self) -> String {
        self.accent.as_ref().map(|accent| format!(":root {{ --accent: {accent}; }}\n")).unwrap_or_default()
    }
}

fn read_logo(path: &Path) -> Result<Logo, BrandError> {
    let failed = |reason: String| BrandError::Logo { path: path.display().to_string(), reason };
    let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or("").to_ascii_lowercase();
    let content_type = match extension.as_str() {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return Err(failed("use an .svg, .png, .jpg or .webp file".to_string())),
    };
    let size = std::fs::metadata(path).map_err(|error| failed(error.to_string()))?.len();
    if size > MAX_LOGO_BYTES as u64 {
        return Err(failed(format!("{size} bytes; a logo may have at most {MAX_LOGO_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(|error| failed(error.to_string()))?;
    Ok(Logo { bytes, content_type })
}

/// The contrast ratio of white on `#rrggbb` (WCAG 2.1 relative luminance); `None` when the text
/// is not such a colour.
fn contrast_with_white(colour: &str) -> Option<f64> {
    let hex = colour.strip_prefix('#').filter(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let channel = |index: usize| {
        let value = f64::from(u8::from_str_radix(&hex[index..index + 2], 16).ok()?) / 255.0;
        Some(if value <= 0.039_28 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) })
    };
    let luminance = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (luminance + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accent_must_carry_white_text() {
        // Reference values from the WCAG formula: #0b57d0 is 6.4:1, #767676 the lightest grey at 4.5:1.
        assert!((contrast_with_white("#0b57d0").expect("colour") - 6.4).abs() < 0.1);
        assert!(contrast_with_white("#767676").expect("colour") >= 4.5);
        let light = UiConfig { accent: Some("#7fb3ff".to_string()), ..UiConfig::default() };
        let error = Brand::from_config(&light).expect_err("too light").to_string();
        assert!(error.contains("too light") && error.contains("4.5:1"), "{error}");
        let named = UiConfig { accent: Some("blue".to_string()), ..UiConfig::default() };
        assert!(Brand::from_config(&named).expect_err("not hex").to_string().contains("#rrggbb"));
    }

    #[test]
    fn support_links_are_https_or_mail() {
        for bad in ["http://help.example", "javascript:alert(1)", "https://", "mailto:nobody"] {
            let config = UiConfig { support_url: Some(bad.to_string()), ..UiConfig::default() };
            assert!(Brand::from_config(&config).is_err(), "{bad} was taken");
        }
        let config = UiConfig { support_url: Some("mailto:help@esp.example".to_string()), ..UiConfig::default() };
        assert_eq!(Brand::from_config(&config).expect("taken").support_url.as_deref(), Some("mailto:help@esp.example"));
    }
}
