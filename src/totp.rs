//! Authenticator-app codes (RFC 6238: HMAC-SHA-1, 30-second steps, 6 digits,
//! one step of clock skew either way) and recovery codes.
//!
//! The TOTP secret is sealed at rest like the Alpaca keys (its own associated
//! data field); here it only lives in a [`TotpSecret`], zeroized on drop.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use totp_rs::{Builder, Secret};

/// Bytes in a new TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_LEN: usize = 20;
/// Recovery codes shown at a time.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (5 bits each: 80 bits of entropy).
const RECOVERY_LEN: usize = 16;
/// Crockford-like alphabet without look-alikes (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A TOTP shared secret. Never `Debug`ged.
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = vec![0u8; SECRET_LEN];
        orion::util::secure_rand_bytes(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// A secret from its raw bytes (just unsealed).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A secret typed from its base32 text (spaces ignored), as a person would
    /// type it into an authenticator app.
    pub fn from_base32(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let secret = Secret::try_from_base32(compact.to_uppercase()).ok()?;
        Some(Self::from_bytes(secret.as_bytes().to_vec()))
    }

    /// The raw bytes, for sealing.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The secret in base32, as authenticator apps take it for manual entry,
    /// in groups of four for reading.
    pub fn base32(&self) -> SecretString {
        let encoded = Secret::new(self.expose_bytes().to_vec().into_boxed_slice()).to_base32();
        let grouped: Vec<String> = encoded
            .trim_end_matches('=')
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        grouped.join(" ").into()
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn uri(&self, account: &str) -> SecretString {
        let secret = Secret::new(self.expose_bytes().to_vec().into_boxed_slice()).to_base32();
        let label: String =
            form_urlencoded::byte_serialize(format!("Paddock:{account}").as_bytes())
                .collect::<String>()
                .replace('+', "%20");
        format!(
            "otpauth://totp/{label}?secret={}&issuer=Paddock&algorithm=SHA1&digits=6&period=30",
            secret.trim_end_matches('=')
        )
        .into()
    }

    /// The time step whose code `code` is, within one step of `unix_time`; `None`
    /// for a wrong or malformed code. The caller refuses steps already used.
    pub fn check(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = Builder::new()
            .with_secret(Secret::new(self.expose_bytes().to_vec().into_boxed_slice()))
            .build()
            .ok()?;
        totp.check(&code, unix_time)
    }

    /// The code for `unix_time` (what the authenticator app shows; used by tests).
    pub fn code_at(&self, unix_time: u64) -> Option<String> {
        let totp = Builder::new()
            .with_secret(Secret::new(self.expose_bytes().to_vec().into_boxed_slice()))
            .build()
            .ok()?;
        Some(totp.generate(unix_time).to_string())
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// The QR code of `text` as an inline SVG element (no XML declaration, scalable).
pub fn qr_svg(text: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes())?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000"))
        .light_color(qrcode::render::svg::Color("#fff"))
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" class=\"qr\" ",
        1,
    ))
}

/// Ten fresh recovery codes, shown once as `XXXX-XXXX-XXXX-XXXX`.
pub fn recovery_codes() -> anyhow::Result<Vec<String>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_LEN];
            orion::util::secure_rand_bytes(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
            let chars: Vec<u8> = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)])
                .collect();
            Ok(chars
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-"))
        })
        .collect()
}

/// Whether `code` has the shape of a recovery code (rather than a TOTP code).
pub fn looks_like_recovery_code(code: &str) -> bool {
    let compact: String = code
        .trim()
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect();
    compact.len() == RECOVERY_LEN && compact.chars().all(|c| c.is_ascii_alphanumeric())
}

/// How a recovery code is stored: SHA-256 of its normalized form (uppercase, no
/// dashes); the database computes the same to compare.
pub fn recovery_code_hash(code: &str) -> Vec<u8> {
    use orion::hazardous::hash::sha2::sha256::Sha256;
    let normalized = code.trim().replace('-', "").to_uppercase();
    Sha256::digest(normalized.as_bytes())
        .map(|d| d.as_ref().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc_6238_and_allow_one_step_of_skew() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890": 94287082 at
        // T=59 (8 digits), so the 6-digit code is 287082.
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at(59).as_deref(), Some("287082"));
        assert_eq!(secret.check("287082", 59), Some(1));
        assert_eq!(secret.check("287 082", 59 + 30), Some(1), "a step late");
        assert_eq!(secret.check("287082", 59 + 60), None, "two steps late");
        assert_eq!(secret.check("123456", 59), None);
        assert_eq!(secret.check("28708", 59), None);
    }

    #[test]
    fn the_uri_and_text_carry_the_same_secret_and_never_debug_it() {
        let secret = TotpSecret::generate().expect("secret");
        let text = secret.base32().expose_secret().replace(' ', "");
        let typed = TotpSecret::from_base32(secret.base32().expose_secret()).expect("base32");
        assert_eq!(typed.expose_bytes(), secret.expose_bytes());
        assert!(
            secret
                .uri("ada@example.com")
                .expose_secret()
                .contains(&text)
        );
        assert!(
            secret
                .uri("ada@example.com")
                .expose_secret()
                .starts_with("otpauth://totp/Paddock%3Aada%40example.com?")
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
        let svg = qr_svg(secret.uri("a@b.c").expose_secret()).expect("qr");
        assert!(svg.starts_with("<svg role=\"img\""));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_80_bit_codes() {
        let codes = recovery_codes().expect("codes");
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19);
            assert!(looks_like_recovery_code(code));
            assert_eq!(
                recovery_code_hash(code),
                recovery_code_hash(&code.to_lowercase())
            );
        }
        assert!(!looks_like_recovery_code("123456"));
    }
}
