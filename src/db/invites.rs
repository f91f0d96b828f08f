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
         values (paddock_current_organization(), $1, paddock_current_member(), $2)",
    )
    .bind(code_hash)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(expires_at)
}
