//! Password rules and Argon2id (OWASP's m=19 MiB, t=2, p=1), stored as PHC strings.
//!
//! The app never reads a stored hash back: at sign-in the database hands out only
//! the salt and parameters, the app computes the candidate's Argon2id output with
//! [`derive`], and the database compares. Hashing is CPU- and memory-bound, so
//! callers run it on the blocking pool, never on the async runtime.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use secrecy::{ExposeSecret, SecretString};

use crate::db::identity::HashParams;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in characters.
pub const MAX_LEN: usize = 128;

/// OWASP's second Argon2id configuration: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Parameters beyond these are refused rather than computed (a tampered row
/// must not make sign-in allocate gigabytes).
const MAX_MEMORY_KIB: u32 = 262_144;
const MAX_ITERATIONS: u32 = 16;

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

/// Hashes a new password into a PHC string with a fresh salt. Blocking: call
/// from `spawn_blocking`.
pub fn hash(password: &SecretString) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    orion::util::secure_rand_bytes(&mut salt)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let params = HashParams {
        salt: salt.to_vec(),
        memory_kib: MEMORY_KIB,
        iterations: ITERATIONS,
        parallelism: PARALLELISM,
        hash_length: HASH_LEN,
    };
    let output = derive(password, &params)?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

/// The Argon2id output of `password` under `params`, for the database to compare
/// with the stored one. Blocking: call from `spawn_blocking`.
pub fn derive(password: &SecretString, params: &HashParams) -> anyhow::Result<Vec<u8>> {
    if params.memory_kib > MAX_MEMORY_KIB || params.iterations > MAX_ITERATIONS {
        anyhow::bail!("refusing Argon2id parameters beyond the supported range");
    }
    let argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(params.hash_length),
        )
        .map_err(|e| anyhow::anyhow!("invalid Argon2id parameters: {e}"))?,
    );
    let mut output = vec![0u8; params.hash_length];
    let mut blocks = work_memory(argon2.params().block_count());
    argon2
        .hash_password_into_with_memory(
            password.expose_secret().as_bytes(),
            &params.salt,
            &mut output,
            &mut blocks,
        )
        .map_err(|e| anyhow::anyhow!("Argon2id failed: {e}"))?;
    Ok(output)
}

/// Bytes reserved for Argon2's working memory, at least: above the largest
/// block glibc's malloc keeps for reuse once freed (32 MiB on 64-bit). A
/// freed block below that ceiling stays resident in the arena of the thread
/// that freed it — measured: 19 MiB per hashing thread and more, 300 MiB of
/// the server's resident memory after a few dozen sign-ins. A reservation
/// above it is a mapping of its own, unmapped when dropped; only the blocks
/// Argon2 uses are ever touched, so they alone are resident, and only while
/// hashing.
const RESERVED_BYTES: usize = 33 * 1024 * 1024;

/// Zeroed working memory of `count` blocks, in a reservation of at least
/// [`RESERVED_BYTES`].
fn work_memory(count: usize) -> Vec<Block> {
    let reserve = count.max(RESERVED_BYTES / std::mem::size_of::<Block>());
    let mut blocks = Vec::with_capacity(reserve);
    blocks.resize(count, Block::default());
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of(phc: &str) -> (HashParams, Vec<u8>) {
        let parts: Vec<&str> = phc.split('$').collect();
        let salt = STANDARD_NO_PAD.decode(parts[4]).expect("salt");
        let hash = STANDARD_NO_PAD.decode(parts[5]).expect("hash");
        let params = HashParams {
            salt,
            memory_kib: MEMORY_KIB,
            iterations: ITERATIONS,
            parallelism: PARALLELISM,
            hash_length: hash.len(),
        };
        (params, hash)
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_that_derive_reproduces() {
        let pw: SecretString = "correct horse battery staple".into();
        let stored = hash(&pw).expect("hashes");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let (params, expected) = params_of(&stored);
        assert_eq!(derive(&pw, &params).expect("derive"), expected);
        let wrong: SecretString = "wrong horse battery staple".into();
        assert_ne!(derive(&wrong, &params).expect("derive"), expected);
        assert_ne!(hash(&pw).expect("hashes"), stored, "a fresh salt each time");
    }

    #[test]
    fn hashes_made_by_orion_still_verify() {
        // A PHC string from the previous hasher (orion's pwhash, same parameters).
        let password = orion::pwhash::Password::try_from(&b"quiet violet harbor engine"[..])
            .expect("password");
        let old = orion::pwhash::hash_password(&password, &orion::pwhash::OWASP_ARGON2ID_2ND)
            .expect("orion");
        let (params, expected) = params_of(old.unprotected_as_ref());
        let pw: SecretString = "quiet violet harbor engine".into();
        assert_eq!(derive(&pw, &params).expect("derive"), expected);
    }

    #[test]
    fn absurd_parameters_are_refused_not_computed() {
        let params = HashParams {
            salt: vec![0; 16],
            memory_kib: 4_000_000,
            iterations: 2,
            parallelism: 1,
            hash_length: 32,
        };
        assert!(derive(&"x".repeat(12).into(), &params).is_err());
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
