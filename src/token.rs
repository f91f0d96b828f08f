//! Bearer secrets handed to a browser: session cookies now, one-time codes later.
//! 32 random bytes, shown to the browser as unpadded base64url. PostgreSQL stores
//! only their SHA-256, so the database never holds anything a thief could replay.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::zeroize::Zeroize;

/// Bytes of randomness in a token.
pub const LEN: usize = 32;

/// A secret token. No `Debug` of its value, no `Display`; zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; LEN]);

impl Token {
    /// A fresh token from the system's secure random source.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; LEN];
        orion::util::secure_rand_bytes(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Ok(Self(bytes))
    }

    /// Parses the text form; `None` unless it is exactly a token's encoding.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 43 {
            return None;
        }
        let mut bytes = [0u8; LEN];
        let decoded = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes).ok()?;
        (decoded == LEN).then_some(Self(bytes))
    }

    /// The text form, for a cookie or a link shown once.
    pub fn expose_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The raw bytes, for the database function that hashes and checks them.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The SHA-256 of the token's bytes: how the database stores and finds it.
    pub fn sha256(&self) -> Vec<u8> {
        crate::attest::digest(&self.0)
    }

    /// A value derived from this token for `purpose` (BLAKE2b-256 over a domain
    /// separation string and the token), as unpadded base64url: safe to put in a
    /// page, since it does not reveal the token.
    pub fn derive(&self, purpose: &str) -> String {
        let mut input = Vec::with_capacity(purpose.len() + 1 + LEN);
        input.extend_from_slice(purpose.as_bytes());
        input.push(0);
        input.extend_from_slice(&self.0);
        let digest = orion::hash::digest(&input);
        input.zeroize();
        match digest {
            Ok(d) => URL_SAFE_NO_PAD.encode(d.as_ref()),
            // BLAKE2b over a short input cannot fail; an empty value matches nothing.
            Err(_) => String::new(),
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_their_text_and_hide_in_debug() {
        let token = Token::generate().expect("token");
        let text = token.expose_text();
        assert_eq!(text.len(), 43);
        assert_eq!(Token::parse(&text), Some(token.clone()));
        assert_eq!(format!("{token:?}"), "Token(..)");
        assert!(!format!("{token:?}").contains(&text));
    }

    #[test]
    fn malformed_text_is_no_token() {
        for bad in ["", "short", &"A".repeat(44), &"*".repeat(43)] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn derived_values_differ_by_purpose_and_token() {
        let a = Token::generate().expect("token");
        let b = Token::generate().expect("token");
        assert_eq!(a.derive("csrf"), a.derive("csrf"));
        assert_ne!(a.derive("csrf"), a.derive("flash"));
        assert_ne!(a.derive("csrf"), b.derive("csrf"));
        assert!(!a.derive("csrf").contains(&a.expose_text()));
    }
}
