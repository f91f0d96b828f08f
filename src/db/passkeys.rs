//! The member's passkeys (WebAuthn credentials): public keys, readable only by
//! their member through row-level security.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A passkey as listed on `/settings`.
#[derive(sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// The current member's passkeys, oldest first.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<PasskeyRow>> {
    sqlx::query_as(
        "select id, name, created_at, last_used_at from passkeys
         where member_id = (select paddock_current_member()) order by created_at, name",
    )
    .fetch_all(conn)
    .await
}
