//! The app's word to the database for what only the app can check.
//!
//! A TOTP code is checked against a secret sealed with the app's keyring, a
//! passkey signature against a public key the app's WebAuthn library parses: the
//! database cannot check either, so it accepts them only with an attestation,
//! SHA-256(K ‖ SHA-256(K ‖ message)) under a key K it keeps in `paddock_private`.
//! The server reads K once at start-up through its owner connection; the app
//! role cannot read it, so an SQL injection cannot attest anything.

use std::{fmt, sync::Arc};

use anyhow::Context;
use orion::hazardous::hash::sha2::sha256::Sha256;
use secrecy::{ExposeSecret, SecretBox};
use sqlx::PgPool;

/// Holds K; cheap to clone.
#[derive(Clone)]
pub struct Attestor(Arc<SecretBox<Vec<u8>>>);

impl Attestor {
    /// Reads K through the owner (admin) connection.
    pub async fn load(admin: &PgPool) -> anyhow::Result<Self> {
        let key: Vec<u8> = sqlx::query_scalar(
            "select value from paddock_private.secrets where name = 'attestation'",
        )
        .fetch_one(admin)
        .await
        .context("reading the attestation key (run `paddock migrate`)")?;
        Ok(Self(Arc::new(SecretBox::new(Box::new(key)))))
    }

    /// The attestation of `message`.
    pub fn attest(&self, message: &str) -> Vec<u8> {
        let key = self.0.expose_secret();
        let inner = digest(&[key, message.as_bytes()].concat());
        digest(&[key.as_slice(), &inner].concat())
    }
}

impl fmt::Debug for Attestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attestor(..)")
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes)
        .map(|d| d.as_ref().to_vec())
        .unwrap_or_default()
}

/// Lowercase hex, as PostgreSQL's `encode(…, 'hex')` writes it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
