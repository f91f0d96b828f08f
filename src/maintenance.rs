//! Key lifecycle on the admin connection: status, start-up check, online rewrap.
//!
//! These run as the schema owner because they must see every member's
//! credentials; as the app role, row-level security would show them none.

use std::time::Duration;

use sqlx::PgPool;

use crate::{
    db::{self, credentials::Credential},
    seal::{KeyId, Sealed, Sealer},
    vault,
};

/// Sealed values per key id, and whether each id is in the keyring.
pub struct KeyCount {
    pub key_id: String,
    pub credentials: i64,
    /// Members' TOTP secrets, sealed with the same keyring.
    pub totp_secrets: i64,
    pub in_keyring: bool,
}

/// Counts credentials and TOTP secrets per seal key id.
pub async fn status(admin: &PgPool, sealer: &dyn Sealer) -> sqlx::Result<Vec<KeyCount>> {
    let mut counts: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for (key_id, n) in db::credentials::count_by_key(admin).await? {
        counts.entry(key_id).or_default().0 += n;
    }
    for (key_id, n) in db::account::count_totp_by_key(admin).await? {
        counts.entry(key_id).or_default().1 += n;
    }
    Ok(counts
        .into_iter()
        .map(|(key_id, (credentials, totp_secrets))| KeyCount {
            in_keyring: KeyId::parse(&key_id).is_ok_and(|id| sealer.can_open(&id)),
            key_id,
            credentials,
            totp_secrets,
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
            let totp = if k.totp_secrets > 0 {
                format!(" and {} TOTP secret(s)", k.totp_secrets)
            } else {
                String::new()
            };
            format!(
                "{} credential(s){totp} under key id `{}`",
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
    rewrap_totp(admin, sealer, batch_size, &mut report).await?;
    progress(&report);
    Ok(report)
}

/// Re-seals the members' TOTP secrets not under the first key, the same way.
async fn rewrap_totp(
    admin: &PgPool,
    sealer: &dyn Sealer,
    batch_size: i64,
    report: &mut RewrapReport,
) -> anyhow::Result<()> {
    let current = sealer.sealing_key_id().as_str().to_owned();
    let mut unopenable: Vec<uuid::Uuid> = Vec::new();
    loop {
        let mut tx = admin.begin().await?;
        let batch =
            db::account::lock_totp_to_rewrap(&mut tx, &current, &unopenable, batch_size).await?;
        if batch.is_empty() {
            tx.commit().await?;
            if db::account::count_totp_to_rewrap(admin, &current, &unopenable).await? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for row in &batch {
            let sealed = Sealed::from_bytes(row.sealed_secret.clone());
            match vault::rewrap_totp(sealer, row.organization_id, row.member_id, &sealed) {
                Ok(sealed) => {
                    db::account::store_rewrapped_totp(
                        &mut tx,
                        row.member_id,
                        sealed.as_bytes(),
                        &current,
                    )
                    .await?;
                    report.rewrapped += 1;
                }
                Err(e) => {
                    tracing::error!(member_id = %row.member_id, error = %e, "cannot rewrap a TOTP secret");
                    unopenable.push(row.member_id.0);
                    report.failed += 1;
                }
            }
        }
        tx.commit().await?;
        report.batches += 1;
    }
}
