//! Key lifecycle on the admin connection: status, start-up check, online rewrap.
//!
//! These run as the schema owner because they must see every member's
//! credentials; as the app role, row-level security would show them none.

use std::time::Duration;

use sqlx::PgPool;

use crate::{
    db::{self, credentials::Credential},
    seal::{KeyId, Sealer},
    vault,
};

/// Credentials per key id, and whether each id is in the keyring.
pub struct KeyCount {
    pub key_id: String,
    pub credentials: i64,
    pub in_keyring: bool,
}

/// Counts credentials per seal key id.
pub async fn status(admin: &PgPool, sealer: &dyn Sealer) -> sqlx::Result<Vec<KeyCount>> {
    Ok(db::credentials::count_by_key(admin)
        .await?
        .into_iter()
        .map(|(key_id, credentials)| KeyCount {
            in_keyring: KeyId::parse(&key_id).is_ok_and(|id| sealer.can_open(&id)),
            key_id,
            credentials,
        })
        .collect())
}

/// Refuses to start when some credential is sealed under a key missing from the keyring.
pub async fn check_keys_present(admin: &PgPool, sealer: &dyn Sealer) -> anyhow::Result<()> {
    let missing: Vec<String> = status(admin, sealer)
        .await?
        .into_iter()
        .filter(|k| !k.in_keyring)
        .map(|k| {
            format!(
                "{} credential(s) under key id `{}`",
                k.credentials, k.key_id
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to start: {} sealed under key ids missing from PADDOCK_SEAL_KEYS. Add those keys back to the keyring (after the new first key); remove an old key only once `paddock keys status` shows nothing under it",
        missing.join(", ")
    )
}

/// What a rewrap did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RewrapReport {
    pub rewrapped: u64,
    pub failed: u64,
    pub batches: u64,
}

/// Re-seals every credential not under the sealer's first key, in batches, each
/// batch its own transaction (rows locked with `skip locked`, so the server keeps
/// serving). Killing it loses at most the batch in flight; running it again
/// continues, and running it when nothing is left does nothing.
pub async fn rewrap(
    admin: &PgPool,
    sealer: &dyn Sealer,
    batch_size: i64,
    pause: Duration,
    mut progress: impl FnMut(&RewrapReport),
) -> anyhow::Result<RewrapReport> {
    let current = sealer.sealing_key_id().as_str().to_owned();
    let mut report = RewrapReport::default();
    let mut unopenable: Vec<uuid::Uuid> = Vec::new();
    loop {
        let mut tx = admin.begin().await?;
        let batch: Vec<Credential> =
            db::credentials::lock_batch_to_rewrap(&mut tx, &current, &unopenable, batch_size)
                .await?;
        if batch.is_empty() {
            tx.commit().await?;
            // Rows another transaction held were skipped, not done: wait for them.
            if db::credentials::count_to_rewrap(admin, &current, &unopenable).await? == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for credential in &batch {
            match vault::rewrap(sealer, credential) {
                Ok(sealed) => {
                    db::credentials::store_rewrapped(
                        &mut tx,
                        credential.id,
                        &sealed.key_id,
                        &sealed.secret,
                        &sealed.seal_key_version,
                    )
                    .await?;
                    report.rewrapped += 1;
                }
                Err(e) => {
                    tracing::error!(credential_id = %credential.id, error = %e, "cannot rewrap");
                    unopenable.push(credential.id.0);
                    report.failed += 1;
                }
            }
        }
        tx.commit().await?;
        report.batches += 1;
        progress(&report);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(report)
}
