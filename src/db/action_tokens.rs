//! Single-use tokens of confirmation forms, stored hashed, one row per use.

use sqlx::PgConnection;

fn hash(token: &str) -> Vec<u8> {
    let mut input = b"paddock action token v1\0".to_vec();
    input.extend_from_slice(token.as_bytes());
    orion::hash::digest(&input)
        .map(|d| d.as_ref().to_vec())
        .unwrap_or(input)
}

/// Records that the member acts on the form carrying `token`; `false` when
/// that form was acted on before. Concurrent submissions of one form race on
/// the primary key, so exactly one gets `true`. Forgets the member's tokens
/// older than a day.
pub async fn use_once(conn: &mut PgConnection, token: &str) -> sqlx::Result<bool> {
    sqlx::query(
        "delete from action_tokens where member_id = (select paddock_current_member()) and created_at < now() - interval '1 day'",
    )
    .execute(&mut *conn)
    .await?;
    let inserted = sqlx::query(
        "insert into action_tokens (member_id, organization_id, token_hash)
         values (paddock_current_member(), paddock_current_organization(), $1)
         on conflict (member_id, token_hash) do nothing",
    )
    .bind(hash(token))
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
