//! Single-use invite codes; only their hash is stored.

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

/// How long an invite stays valid.
pub const LIFETIME: Duration = Duration::days(7);

/// Stores a new invite for the current organization, created by the current member.
/// Row-level security allows this only for owners.
pub async fn create(conn: &mut PgConnection, code_hash: &[u8]) -> sqlx::Result<OffsetDateTime> {
    let expires_at = OffsetDateTime::now_utc() + LIFETIME;
    sqlx::query(
        "insert into invites (organization_id, code_hash, created_by, expires_at)
         values ((select paddock_current_organization()), $1, (select paddock_current_member()), $2)",
    )
    .bind(code_hash)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(expires_at)
}

/// The stored form of an invite code: its BLAKE2b-256 hash.
pub fn code_hash(code: &str) -> anyhow::Result<Vec<u8>> {
    let digest = orion::hash::digest(code.trim().as_bytes())
        .map_err(|_| anyhow::anyhow!("hashing the invite code failed"))?;
    Ok(digest.as_ref().to_vec())
}
