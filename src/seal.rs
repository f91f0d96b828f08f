//! Sealing members' Alpaca API keys at rest.
//!
//! Every stored secret (an Alpaca API key id or API secret) is encrypted with
//! XChaCha20-Poly1305 under a key from a [`Keyring`] and bound, through the
//! AEAD associated data, to the exact place it lives (a [`Binding`]:
//! organization, member, credential and [`Field`]). A sealed value copied into
//! another row, or into the other field of the same row, fails to open with
//! [`SealError::Tampered`].
//!
//! # Keyring
//!
//! The keyring is configured as `id:base64,id:base64,...` where each key is the
//! standard (padded) base64 encoding of exactly 32 bytes and each id is 1–32
//! characters of `[A-Za-z0-9_-]`. The **first** key seals new values; **every**
//! key opens. Rotating means prepending a new entry, re-wrapping stored values
//! (see [`Sealer::rewrap`]) and finally removing the old entry.
//!
//! # Sealed format, version 1
//!
//! | offset            | length  | content                                        |
//! |-------------------|---------|------------------------------------------------|
//! | 0                 | 1       | format version, `0x01`                         |
//! | 1                 | 1       | `n`, length of the key id in bytes (1..=32)    |
//! | 2                 | `n`     | key id, ASCII `[A-Za-z0-9_-]`                  |
//! | 2 + n             | 24      | random XChaCha20 nonce (fresh for every seal)  |
//! | 26 + n            | `len`   | ciphertext, same length as the UTF-8 plaintext |
//! | 26 + n + len      | 16      | Poly1305 tag                                   |
//!
//! A sealed value is therefore exactly `2 + n + 24 + len + 16 = 42 + n + len`
//! bytes, where `len` is the UTF-8 length of the plaintext.
//!
//! # Associated data
//!
//! Not stored, recomputed from the [`Binding`] and the header on every seal and
//! open:
//!
//! | length | content                                               |
//! |--------|-------------------------------------------------------|
//! | 13     | domain separation `b"paddock.seal\0"`                 |
//! | 1      | format version, `0x01`                                |
//! | 16     | organization id (UUID bytes, big-endian as in RFC 9562) |
//! | 16     | member id                                             |
//! | 16     | credential id                                         |
//! | 1      | length `f` of the field name                          |
//! | `f`    | field name, `api_key_id` or `api_secret`              |
//! | 1      | length `n` of the key id                              |
//! | `n`    | key id                                                |
//!
//! Because the header's version and key id are part of the associated data,
//! they are authenticated too.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use orion::hazardous::aead::xchacha20poly1305::{Nonce, SecretKey, XChaCha20Poly1305};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Current sealed-format version byte.
const VERSION: u8 = 0x01;
/// Domain-separation prefix of the associated data.
const DOMAIN: &[u8] = b"paddock.seal\0";
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Key length in bytes.
const KEY_LEN: usize = 32;
/// Maximum key id length.
const MAX_KEY_ID_LEN: usize = 32;

/// Errors from sealing, opening and keyring parsing.
///
/// No variant carries plaintext or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The value names a key id that the keyring does not hold.
    #[error("sealed under key id `{0}`, which is not in the keyring")]
    UnknownKey(KeyId),
    /// The value is not a well-formed sealed value (bad header, too short,
    /// unknown version) or decrypted to invalid UTF-8.
    #[error("the sealed value is malformed")]
    Malformed,
    /// Authentication failed.
    #[error("the sealed value failed authentication: it was altered or belongs elsewhere")]
    Tampered,
    /// The keyring specification could not be parsed. The message never
    /// contains key material.
    #[error("invalid keyring: {0}")]
    BadKeyring(String),
    /// A cryptographic primitive (RNG, cipher) failed unexpectedly.
    #[error("cryptographic operation failed")]
    Crypto,
}

/// Identifier of a sealing key: 1–32 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates and wraps a key id.
    ///
    /// # Errors
    /// [`SealError::BadKeyring`] if `s` is empty, longer than 32 characters or
    /// contains characters outside `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Result<KeyId, SealError> {
        if Self::is_valid(s.as_bytes()) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(SealError::BadKeyring(
                "a key id must be 1-32 characters of [A-Za-z0-9_-]".to_owned(),
            ))
        }
    }

    fn is_valid(b: &[u8]) -> bool {
        !b.is_empty()
            && b.len() <= MAX_KEY_ID_LEN
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which column of a credential a sealed value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The Alpaca API key id.
    KeyId,
    /// The Alpaca API secret.
    Secret,
    /// A member's TOTP secret (its row is the member: `credential_id` is the member id).
    TotpSecret,
}

impl Field {
    /// The field name used in the associated data.
    pub fn as_str(&self) -> &'static str {
        match self {
            Field::KeyId => "api_key_id",
            Field::Secret => "api_secret",
            Field::TotpSecret => "totp_secret",
        }
    }
}

/// The place a sealed value lives; bound into the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    /// Owning organization.
    pub organization_id: Uuid,
    /// Owning member.
    pub member_id: Uuid,
    /// Credential row.
    pub credential_id: Uuid,
    /// Column within the credential row.
    pub field: Field,
}

impl Binding {
    /// Associated data for this binding under `key_id` (see module docs).
    fn associated_data(&self, key_id: &KeyId) -> Vec<u8> {
        let field = self.field.as_str().as_bytes();
        let kid = key_id.as_str().as_bytes();
        let mut ad = Vec::with_capacity(DOMAIN.len() + 1 + 48 + 2 + field.len() + kid.len());
        ad.extend_from_slice(DOMAIN);
        ad.push(VERSION);
        ad.extend_from_slice(self.organization_id.as_bytes());
        ad.extend_from_slice(self.member_id.as_bytes());
        ad.extend_from_slice(self.credential_id.as_bytes());
        // Both lengths are < 256: field names are constants, key ids <= 32.
        ad.push(field.len() as u8);
        ad.extend_from_slice(field);
        ad.push(kid.len() as u8);
        ad.extend_from_slice(kid);
        ad
    }
}

/// A sealed value as stored in the database (see module docs for the format).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

/// Parsed view of a sealed value.
struct Parts<'a> {
    key_id: KeyId,
    nonce: &'a [u8],
    ciphertext_with_tag: &'a [u8],
}

impl Sealed {
    /// Wraps stored bytes. No validation happens until [`Sealed::key_id`] or
    /// an open.
    pub fn from_bytes(bytes: Vec<u8>) -> Sealed {
        Sealed(bytes)
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the value, returning the stored bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The id of the key this value was sealed under, read from the header.
    ///
    /// # Errors
    /// [`SealError::Malformed`] if the header is invalid or the value is too
    /// short.
    pub fn key_id(&self) -> Result<KeyId, SealError> {
        self.parts().map(|p| p.key_id)
    }

    fn parts(&self) -> Result<Parts<'_>, SealError> {
        let b = self.0.as_slice();
        let (&version, rest) = b.split_first().ok_or(SealError::Malformed)?;
        if version != VERSION {
            return Err(SealError::Malformed);
        }
        let (&kid_len, rest) = rest.split_first().ok_or(SealError::Malformed)?;
        let kid_len = usize::from(kid_len);
        if rest.len() < kid_len + NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (kid, rest) = rest.split_at(kid_len);
        if !KeyId::is_valid(kid) {
            return Err(SealError::Malformed);
        }
        let kid = std::str::from_utf8(kid).map_err(|_| SealError::Malformed)?;
        let (nonce, ciphertext_with_tag) = rest.split_at(NONCE_LEN);
        Ok(Parts {
            key_id: KeyId(kid.to_owned()),
            nonce,
            ciphertext_with_tag,
        })
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Sealed");
        d.field("len", &self.0.len());
        match self.key_id() {
            Ok(id) => d.field("key_id", &id.as_str()),
            Err(_) => d.field("key_id", &"<malformed>"),
        };
        d.finish()
    }
}

/// Something that seals and opens values: the local [`Keyring`] today, an
/// external KMS (e.g. Vault transit) later.
pub trait Sealer: Send + Sync {
    /// Seals `plaintext` for the place `at`, under [`Sealer::sealing_key_id`].
    ///
    /// # Errors
    /// [`SealError::Crypto`] if the RNG or cipher fails.
    fn seal(&self, plaintext: &SecretString, at: &Binding) -> Result<Sealed, SealError>;

    /// Opens a value sealed for the place `at`.
    ///
    /// # Errors
    /// [`SealError::Malformed`], [`SealError::UnknownKey`] or
    /// [`SealError::Tampered`].
    fn open(&self, sealed: &Sealed, at: &Binding) -> Result<SecretString, SealError>;

    /// Id of the key new seals use.
    fn sealing_key_id(&self) -> &KeyId;

    /// Whether values sealed under `id` can be opened.
    fn can_open(&self, id: &KeyId) -> bool;

    /// Opens `sealed` and seals it again under the current sealing key (key
    /// rotation). The plaintext is zeroized afterwards.
    ///
    /// # Errors
    /// Any error from [`Sealer::open`] or [`Sealer::seal`].
    fn rewrap(&self, sealed: &Sealed, at: &Binding) -> Result<Sealed, SealError> {
        let plain = self.open(sealed, at)?;
        self.seal(&plain, at)
    }
}

/// Ordered list of `(KeyId, key)`. The first key seals; every key opens.
pub struct Keyring {
    keys: Vec<(KeyId, SecretKey)>,
}

impl Keyring {
    /// Parses `id:base64,id:base64,...` (standard base64 of exactly 32 bytes;
    /// whitespace around entries is trimmed).
    ///
    /// # Errors
    /// [`SealError::BadKeyring`] for an empty spec, an empty or malformed
    /// entry, an invalid id, bad base64, a key that is not 32 bytes, or a
    /// duplicate id. Messages name the 1-based entry index (and the id once it
    /// is valid), never the key text.
    pub fn parse(spec: &SecretString) -> Result<Keyring, SealError> {
        let spec = spec.expose_secret();
        if spec.trim().is_empty() {
            return Err(SealError::BadKeyring("the keyring is empty".to_owned()));
        }
        let mut keys: Vec<(KeyId, SecretKey)> = Vec::new();
        for (i, entry) in spec.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(SealError::BadKeyring(format!("entry {n} is empty")));
            }
            let (id, b64) = entry.split_once(':').ok_or_else(|| {
                SealError::BadKeyring(format!("entry {n} is not of the form `id:base64`"))
            })?;
            let id = KeyId::parse(id.trim()).map_err(|_| {
                SealError::BadKeyring(format!(
                    "entry {n} has an invalid key id (must be 1-32 characters of [A-Za-z0-9_-])"
                ))
            })?;
            if keys.iter().any(|(k, _)| *k == id) {
                return Err(SealError::BadKeyring(format!(
                    "entry {n}: duplicate key id `{id}`"
                )));
            }
            let bytes = Zeroizing::new(STANDARD.decode(b64.trim()).map_err(|_| {
                SealError::BadKeyring(format!(
                    "entry {n} (key id `{id}`): the key is not valid standard base64"
                ))
            })?);
            if bytes.len() != KEY_LEN {
                return Err(SealError::BadKeyring(format!(
                    "entry {n} (key id `{id}`): the key must decode to {KEY_LEN} bytes, got {}",
                    bytes.len()
                )));
            }
            let key = SecretKey::try_from(bytes.as_slice()).map_err(|_| SealError::Crypto)?;
            keys.push((id, key));
        }
        Ok(Keyring { keys })
    }

    /// A fresh keyring entry `id:base64` with 32 random bytes from orion's
    /// CSPRNG, ready to be prepended to the keyring spec.
    ///
    /// # Panics
    /// If the operating system's CSPRNG fails.
    pub fn generate_entry(id: &KeyId) -> SecretString {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        #[allow(clippy::expect_used)]
        orion::util::secure_rand_bytes(key.as_mut_slice()).expect("the OS CSPRNG failed");
        // Exact capacity so neither the encoding nor the conversion into
        // `SecretString` reallocates (which would leave an unzeroized copy).
        let b64_len = KEY_LEN.div_ceil(3) * 4;
        let mut s = String::with_capacity(id.as_str().len() + 1 + b64_len);
        s.push_str(id.as_str());
        s.push(':');
        STANDARD.encode_string(key.as_slice(), &mut s);
        SecretString::from(s)
    }

    /// A random key id: `k` followed by 8 lowercase hex characters.
    ///
    /// # Panics
    /// If the operating system's CSPRNG fails.
    pub fn new_random_id() -> KeyId {
        let mut b = [0u8; 4];
        #[allow(clippy::expect_used)]
        orion::util::secure_rand_bytes(&mut b).expect("the OS CSPRNG failed");
        let mut s = String::with_capacity(9);
        s.push('k');
        for byte in b {
            s.push_str(&format!("{byte:02x}"));
        }
        KeyId(s)
    }

    /// Id of the first key, which seals new values.
    pub fn sealing_key_id(&self) -> &KeyId {
        &self.sealing().0
    }

    /// Whether the keyring holds a key with this id.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// Key ids in keyring order (sealing key first).
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(k, _)| k)
    }

    fn sealing(&self) -> &(KeyId, SecretKey) {
        // `parse` is the only constructor and rejects an empty keyring.
        &self.keys[0]
    }

    fn key(&self, id: &KeyId) -> Option<&SecretKey> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    fn seal_bytes(&self, plaintext: &[u8], at: &Binding) -> Result<Sealed, SealError> {
        let (id, key) = self.sealing();
        let kid = id.as_str().as_bytes();
        let nonce = Nonce::generate().map_err(|_| SealError::Crypto)?;
        let header_len = 2 + kid.len() + NONCE_LEN;
        let mut out = vec![0u8; header_len + plaintext.len() + TAG_LEN];
        out[0] = VERSION;
        out[1] = kid.len() as u8;
        out[2..2 + kid.len()].copy_from_slice(kid);
        out[2 + kid.len()..header_len].copy_from_slice(nonce.as_ref());
        let ad = at.associated_data(id);
        XChaCha20Poly1305::seal(key, &nonce, plaintext, Some(&ad), &mut out[header_len..])
            .map_err(|_| SealError::Crypto)?;
        Ok(Sealed(out))
    }

    fn open_bytes(&self, sealed: &Sealed, at: &Binding) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let parts = sealed.parts()?;
        let key = self
            .key(&parts.key_id)
            .ok_or_else(|| SealError::UnknownKey(parts.key_id.clone()))?;
        let nonce = Nonce::try_from(parts.nonce).map_err(|_| SealError::Malformed)?;
        let ad = at.associated_data(&parts.key_id);
        let mut out = Zeroizing::new(vec![0u8; parts.ciphertext_with_tag.len() - TAG_LEN]);
        XChaCha20Poly1305::open(
            key,
            &nonce,
            parts.ciphertext_with_tag,
            Some(&ad),
            out.as_mut_slice(),
        )
        .map_err(|_| SealError::Tampered)?;
        Ok(out)
    }
}

impl Sealer for Keyring {
    fn seal(&self, plaintext: &SecretString, at: &Binding) -> Result<Sealed, SealError> {
        crate::metrics::seal_operation("seal");
        self.seal_bytes(plaintext.expose_secret().as_bytes(), at)
    }

    fn open(&self, sealed: &Sealed, at: &Binding) -> Result<SecretString, SealError> {
        crate::metrics::seal_operation("unseal");
        let mut out = self.open_bytes(sealed, at)?;
        // Take the buffer out of its zeroizing wrapper without copying; on
        // every path it is either moved into a `SecretString` (length ==
        // capacity, so no reallocation) or zeroized explicitly.
        let bytes = std::mem::take(&mut *out);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(SecretString::from(s)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(SealError::Malformed)
            }
        }
    }

    fn sealing_key_id(&self) -> &KeyId {
        Keyring::sealing_key_id(self)
    }

    fn can_open(&self, id: &KeyId) -> bool {
        self.contains(id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "ids",
                &self
                    .keys
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(ids: &[&str]) -> (Keyring, SecretString) {
        let spec = ids
            .iter()
            .map(|id| {
                Keyring::generate_entry(&KeyId::parse(id).unwrap())
                    .expose_secret()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join(",");
        let spec = SecretString::from(spec);
        (Keyring::parse(&spec).unwrap(), spec)
    }

    fn binding() -> Binding {
        Binding {
            organization_id: Uuid::new_v4(),
            member_id: Uuid::new_v4(),
            credential_id: Uuid::new_v4(),
            field: Field::Secret,
        }
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    const API_SECRET: &str = "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD";

    #[test]
    fn round_trip() {
        let (k, _) = ring(&["primary"]);
        let at = binding();
        let sealed = k.seal(&secret(API_SECRET), &at).unwrap();
        assert_eq!(sealed.as_bytes().len(), 2 + 7 + 24 + 40 + 16);
        assert_eq!(sealed.as_bytes()[0], 0x01);
        assert_eq!(sealed.key_id().unwrap().as_str(), "primary");
        assert!(
            !sealed
                .as_bytes()
                .windows(8)
                .any(|w| w == &API_SECRET.as_bytes()[..8])
        );
        let opened = k.open(&sealed, &at).unwrap();
        assert_eq!(opened.expose_secret(), API_SECRET);
        // Stored bytes round-trip too.
        let again = Sealed::from_bytes(sealed.clone().into_bytes());
        assert_eq!(k.open(&again, &at).unwrap().expose_secret(), API_SECRET);
        // Empty plaintext.
        let empty = k.seal(&secret(""), &at).unwrap();
        assert_eq!(k.open(&empty, &at).unwrap().expose_secret(), "");
    }

    #[test]
    fn flipping_any_byte_fails() {
        let (k, _) = ring(&["k1"]);
        let at = binding();
        let sealed = k.seal(&secret(API_SECRET), &at).unwrap();
        let header_len = 2 + 2;
        for i in 0..sealed.as_bytes().len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = sealed.as_bytes().to_vec();
                b[i] ^= mask;
                let r = k.open(&Sealed::from_bytes(b), &at);
                assert!(r.is_err(), "flip at {i} with {mask:#x} opened");
                if i >= header_len {
                    assert_eq!(r.unwrap_err(), SealError::Tampered, "position {i}");
                }
            }
        }
    }

    #[test]
    fn truncated_and_garbage_are_malformed() {
        let (k, _) = ring(&["k1"]);
        let at = binding();
        let sealed = k.seal(&secret("x"), &at).unwrap();
        let b = sealed.as_bytes();
        // Any truncation below the minimum size is malformed; above it, tampered.
        for len in 0..b.len() {
            let r = k.open(&Sealed::from_bytes(b[..len].to_vec()), &at);
            let min = 2 + 2 + NONCE_LEN + TAG_LEN;
            let want = if len < min {
                SealError::Malformed
            } else {
                SealError::Tampered
            };
            assert_eq!(r.unwrap_err(), want, "len {len}");
        }
        let mut v2 = b.to_vec();
        v2[0] = 0x02;
        assert_eq!(Sealed::from_bytes(v2).key_id(), Err(SealError::Malformed));
        let mut bad_id = b.to_vec();
        bad_id[2] = b'!';
        assert_eq!(
            Sealed::from_bytes(bad_id).key_id(),
            Err(SealError::Malformed)
        );
        let mut zero_len = b.to_vec();
        zero_len[1] = 0;
        assert_eq!(
            Sealed::from_bytes(zero_len).key_id(),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let (k, _) = ring(&["k1"]);
        let at = binding();
        let sealed = k.seal_bytes(&[0xff, 0xfe, b'a'], &at).unwrap();
        assert!(k.open_bytes(&sealed, &at).is_ok());
        assert_eq!(k.open(&sealed, &at).unwrap_err(), SealError::Malformed);
    }

    #[test]
    fn moved_to_another_place_is_tampered() {
        let (k, _) = ring(&["k1"]);
        let at = binding();
        let sealed = k.seal(&secret(API_SECRET), &at).unwrap();
        let elsewhere = [
            Binding {
                credential_id: Uuid::new_v4(),
                ..at
            },
            Binding {
                member_id: Uuid::new_v4(),
                ..at
            },
            Binding {
                organization_id: Uuid::new_v4(),
                ..at
            },
            Binding {
                field: Field::KeyId,
                ..at
            },
        ];
        for other in elsewhere {
            assert_eq!(
                k.open(&sealed, &other).unwrap_err(),
                SealError::Tampered,
                "{other:?}"
            );
        }
        assert!(k.open(&sealed, &at).is_ok());
    }

    #[test]
    fn unknown_key_is_named() {
        let (old, _) = ring(&["retired-1"]);
        let (current, _) = ring(&["current"]);
        let at = binding();
        let sealed = old.seal(&secret(API_SECRET), &at).unwrap();
        let err = current.open(&sealed, &at).unwrap_err();
        let id = KeyId::parse("retired-1").unwrap();
        assert_eq!(err, SealError::UnknownKey(id.clone()));
        assert!(err.to_string().contains("`retired-1`"), "{err}");
        assert!(!current.can_open(&id));
        assert!(old.can_open(&id));
    }

    #[test]
    fn same_id_different_key_is_tampered() {
        let (a, _) = ring(&["same"]);
        let (b, _) = ring(&["same"]);
        let at = binding();
        let sealed = a.seal(&secret(API_SECRET), &at).unwrap();
        assert_eq!(b.open(&sealed, &at).unwrap_err(), SealError::Tampered);
    }

    #[test]
    fn two_seals_differ() {
        let (k, _) = ring(&["k1"]);
        let at = binding();
        let a = k.seal(&secret(API_SECRET), &at).unwrap();
        let b = k.seal(&secret(API_SECRET), &at).unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes()[4..28], b.as_bytes()[4..28], "nonces differ");
    }

    #[test]
    fn rotation_keeps_old_key_opening() {
        let (old, old_spec) = ring(&["old"]);
        let at = binding();
        let sealed_old = old.seal(&secret(API_SECRET), &at).unwrap();

        let new_entry = Keyring::generate_entry(&KeyId::parse("new").unwrap());
        let rotated = Keyring::parse(&SecretString::from(format!(
            " {} , {} ",
            new_entry.expose_secret(),
            old_spec.expose_secret()
        )))
        .unwrap();
        assert_eq!(rotated.sealing_key_id().as_str(), "new");
        assert_eq!(
            rotated.ids().map(KeyId::as_str).collect::<Vec<_>>(),
            ["new", "old"]
        );
        assert_eq!(
            rotated.open(&sealed_old, &at).unwrap().expose_secret(),
            API_SECRET
        );
        let sealed_new = rotated.seal(&secret(API_SECRET), &at).unwrap();
        assert_eq!(sealed_new.key_id().unwrap().as_str(), "new");
        assert_eq!(
            old.open(&sealed_new, &at).unwrap_err(),
            SealError::UnknownKey(KeyId::parse("new").unwrap())
        );
        let rewrapped = rotated.rewrap(&sealed_old, &at).unwrap();
        assert_eq!(rewrapped.key_id().unwrap().as_str(), "new");
        assert_eq!(
            rotated.open(&rewrapped, &at).unwrap().expose_secret(),
            API_SECRET
        );
    }

    #[test]
    fn keyring_parse_errors_hide_key_text() {
        let good = STANDARD.encode([7u8; 32]);
        let short = STANDARD.encode([7u8; 31]);
        let long = STANDARD.encode([7u8; 33]);
        let bad_b64 = format!("{}!!", &good[..40]);
        let cases: Vec<(String, &str, Vec<&str>)> = vec![
            (format!("a:{bad_b64}"), "base64", vec![&bad_b64]),
            (format!("a:{short}"), "32 bytes", vec![&short]),
            (format!("a:{long}"), "32 bytes", vec![&long]),
            (format!("a:{good},a:{good}"), "duplicate", vec![&good]),
            (format!("bad id!:{good}"), "invalid key id", vec![&good]),
            (good.clone(), "id:base64", vec![&good]),
            (
                format!("a:{good},,b:{good}"),
                "entry 2 is empty",
                vec![&good],
            ),
            (String::new(), "empty", vec![]),
            ("   ".to_owned(), "empty", vec![]),
        ];
        for (spec, expect, secrets) in cases {
            let err = Keyring::parse(&SecretString::from(spec.clone())).unwrap_err();
            let SealError::BadKeyring(msg) = &err else {
                panic!("{spec:?} gave {err:?}");
            };
            assert!(msg.contains(expect), "{msg:?} should mention {expect:?}");
            let shown = format!("{err} {err:?}");
            for s in secrets {
                assert!(!shown.contains(s), "{shown:?} leaks key text");
                assert!(!shown.contains(&s[..8]), "{shown:?} leaks key text");
            }
        }
        // Whitespace and a valid spec.
        let k = Keyring::parse(&SecretString::from(format!("\n a:{good} ,\tb:{good}\n"))).unwrap();
        assert_eq!(k.ids().count(), 2);
        assert!(k.contains(&KeyId::parse("b").unwrap()));
    }

    #[test]
    fn key_id_rules() {
        assert!(KeyId::parse("k0123abcd").is_ok());
        assert!(KeyId::parse("A_b-9").is_ok());
        assert!(KeyId::parse(&"x".repeat(32)).is_ok());
        assert!(KeyId::parse(&"x".repeat(33)).is_err());
        assert!(KeyId::parse("").is_err());
        assert!(KeyId::parse("a b").is_err());
        assert!(KeyId::parse("a:b").is_err());
        assert!(KeyId::parse("é").is_err());
        let id = Keyring::new_random_id();
        assert_eq!(id.as_str().len(), 9);
        assert!(id.as_str().starts_with('k'));
        assert!(
            id.as_str()[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(Keyring::new_random_id(), Keyring::new_random_id());
        assert_eq!(format!("{}", KeyId::parse("abc").unwrap()), "abc");
    }

    #[test]
    fn debug_output_hides_key_bytes() {
        let (k, spec) = ring(&["first", "second"]);
        let dbg = format!("{k:?} {k:#?}");
        assert!(dbg.contains("first") && dbg.contains("second"), "{dbg}");
        for entry in spec.expose_secret().split(',') {
            let b64 = entry.split_once(':').unwrap().1;
            assert!(!dbg.contains(b64), "{dbg}");
            assert!(!dbg.contains(&b64[..10]), "{dbg}");
        }
        let at = binding();
        let sealed = k.seal(&secret(API_SECRET), &at).unwrap();
        let sdbg = format!("{sealed:?}");
        assert!(sdbg.contains("first") && sdbg.contains("len"), "{sdbg}");
        assert!(!sdbg.contains(API_SECRET));
        let opened = k.open(&sealed, &at).unwrap();
        assert!(!format!("{opened:?}").contains(API_SECRET));
    }

    #[test]
    fn generated_entry_parses() {
        let id = KeyId::parse("gen").unwrap();
        let e = Keyring::generate_entry(&id);
        let (eid, b64) = e.expose_secret().split_once(':').unwrap();
        assert_eq!(eid, "gen");
        assert_eq!(STANDARD.decode(b64).unwrap().len(), 32);
        assert_ne!(
            Keyring::generate_entry(&id).expose_secret(),
            e.expose_secret()
        );
        assert_eq!(Keyring::parse(&e).unwrap().sealing_key_id(), &id);
    }

    fn arb_binding() -> impl Strategy<Value = Binding> {
        (any::<u128>(), any::<u128>(), any::<u128>(), any::<bool>()).prop_map(|(o, m, c, f)| {
            Binding {
                organization_id: Uuid::from_u128(o),
                member_id: Uuid::from_u128(m),
                credential_id: Uuid::from_u128(c),
                field: if f { Field::Secret } else { Field::KeyId },
            }
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip_and_binding(
            chars in proptest::collection::vec(any::<char>(), 0..200),
            at in arb_binding(),
            other in arb_binding(),
        ) {
            prop_assume!(at != other);
            let (k, _) = ring(&["prop"]);
            let plain: String = chars.into_iter().collect();
            let sealed = k.seal(&SecretString::from(plain.clone()), &at).unwrap();
            let opened = k.open(&sealed, &at).unwrap();
            prop_assert_eq!(opened.expose_secret(), plain.as_str());
            prop_assert_eq!(k.open(&sealed, &other).unwrap_err(), SealError::Tampered);
        }
    }
}
