//! Password rules and Argon2id hashing (orion's `pwhash`, OWASP's m=19 MiB, t=2, p=1).
//! Hashing is CPU-bound, so callers run it on the blocking pool, never on the runtime.

use std::sync::LazyLock;

use orion::pwhash::{self, Password, PasswordHash};
use secrecy::{ExposeSecret, SecretString};

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in characters.
pub const MAX_LEN: usize = 128;

/// Verified against when an email is unknown, so timing does not reveal which exist.
static DUMMY_HASH: LazyLock<Option<PasswordHash>> = LazyLock::new(|| {
    let password = Password::try_from(&b"paddock dummy password for timing"[..]).ok()?;
    pwhash::hash_password(&password, &pwhash::OWASP_ARGON2ID_2ND).ok()
});

/// Why a new password is refused, phrased for the person choosing it.
pub fn weakness(password: &SecretString, context: &[&str]) -> Option<String> {
    let pw = password.expose_secret();
    let len = pw.chars().count();
    if len < MIN_LEN {
        return Some(format!("Use at least {MIN_LEN} characters."));
    }
    if len > MAX_LEN {
        return Some(format!("Use at most {MAX_LEN} characters."));
    }
    let estimate = zxcvbn::zxcvbn(pw, context);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| format!(" ({w})")))
            .unwrap_or_default();
        return Some(format!(
            "This password is too easy to guess{hint}. Try a longer phrase of unrelated words."
        ));
    }
    None
}

/// Hashes a password into a PHC string. Blocking: call from `spawn_blocking`.
pub fn hash(password: &SecretString) -> anyhow::Result<String> {
    let password = Password::try_from(password.expose_secret().as_bytes())
        .map_err(|_| anyhow::anyhow!("password could not be prepared for hashing"))?;
    let hash = pwhash::hash_password(&password, &pwhash::OWASP_ARGON2ID_2ND)
        .map_err(|_| anyhow::anyhow!("password hashing failed"))?;
    Ok(hash.unprotected_as_ref::<str>().to_owned())
}

/// Checks a password against a stored PHC string, or against a dummy hash when
/// there is none. Blocking: call from `spawn_blocking`.
pub fn verify(stored: Option<&str>, password: &SecretString) -> bool {
    let Ok(candidate) = Password::try_from(password.expose_secret().as_bytes()) else {
        return false;
    };
    match stored.map(PasswordHash::try_from) {
        Some(Ok(expected)) => pwhash::hash_password_verify(&expected, &candidate).is_ok(),
        _ => {
            if let Some(dummy) = DUMMY_HASH.as_ref() {
                let _ = pwhash::hash_password_verify(dummy, &candidate);
            }
            false
        }
    }
}

/// Computes the dummy hash ahead of the first sign-in.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id_phc_strings() {
        let pw: SecretString = "correct horse battery staple".into();
        let stored = hash(&pw).expect("hashes");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(Some(&stored), &pw));
        assert!(!verify(Some(&stored), &"wrong horse battery staple".into()));
        assert!(!verify(None, &pw));
        assert!(!verify(Some("not a hash"), &pw));
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(weakness(&"short".into(), &[]).is_some_and(|w| w.contains("12")));
        assert!(weakness(&"password1234".into(), &[]).is_some_and(|w| w.contains("easy")));
        assert!(weakness(&"x".repeat(129).into(), &[]).is_some_and(|w| w.contains("128")));
        assert!(weakness(&"ada@example.com1".into(), &["ada@example.com"]).is_some());
        assert!(weakness(&"quiet violet harbor engine".into(), &[]).is_none());
    }
}
