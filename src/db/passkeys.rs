//! The member's passkeys (WebAuthn credentials) and the ceremonies that add and
//! use them, through the narrow functions of migration `20261201300000_passkeys`.
//! Passkeys are readable only by their member (row-level security); ceremony
//! states live in `paddock_private`, bound to one session and taken once.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{db::events::Origin, token::Token};

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

/// The current member's passkeys as stored (JSON), oldest first.
pub async fn stored(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select passkey::text from passkeys
         where member_id = (select paddock_current_member()) order by created_at",
    )
    .fetch_all(conn)
    .await
}

/// The credential ids of the current member's passkeys.
pub async fn credential_ids(conn: &mut PgConnection) -> sqlx::Result<Vec<Vec<u8>>> {
    sqlx::query_scalar(
        "select credential_id from passkeys where member_id = (select paddock_current_member())",
    )
    .fetch_all(conn)
    .await
}

/// What a signed-in session's ceremony is for.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    Register,
    Reauthenticate,
}

impl Purpose {
    /// The name the database knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Reauthenticate => "reauthenticate",
        }
    }
}

/// Keeps the state of this session's ceremony (replacing an unfinished one);
/// `attestation` vouches for it. False when the database refused it.
pub async fn begin(
    conn: &mut PgConnection,
    purpose: Purpose,
    state: &str,
    attestation: &[u8],
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_begin_passkey_ceremony($1, $2, $3)")
        .bind(purpose.as_str())
        .bind(state)
        .bind(attestation)
        .fetch_one(conn)
        .await
}

/// Takes this session's ceremony state: once, and only within five minutes.
pub async fn take(conn: &mut PgConnection, purpose: Purpose) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select paddock_take_passkey_ceremony($1)")
        .bind(purpose.as_str())
        .fetch_one(conn)
        .await
}

/// The passkeys (JSON) of the member whose pending second-factor session has
/// the secret `token`.
pub async fn pending(pool: &PgPool, token: &Token) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select * from paddock_pending_passkeys($1)")
        .bind(token.expose_bytes())
        .fetch_all(pool)
        .await
}

/// Keeps the state of the pending session's passkey ceremony.
pub async fn begin_pending(
    pool: &PgPool,
    token: &Token,
    state: &str,
    attestation: &[u8],
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_begin_second_factor_passkey($1, $2, $3)")
        .bind(token.expose_bytes())
        .bind(state)
        .bind(attestation)
        .fetch_one(pool)
        .await
}

/// Takes the pending session's passkey ceremony state, once.
pub async fn take_pending(pool: &PgPool, token: &Token) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select paddock_take_second_factor_passkey($1)")
        .bind(token.expose_bytes())
        .fetch_one(pool)
        .await
}

/// What adding a passkey concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Done,
    /// The session must confirm it is the member first.
    StepUp,
    /// That authenticator's passkey is registered already.
    Duplicate,
    /// The member has the most passkeys allowed.
    TooMany,
    /// The attestation did not hold.
    Refused,
}

/// A passkey to add, as the app verified it.
pub struct NewPasskey<'a> {
    pub name: &'a str,
    pub credential_id: &'a [u8],
    pub passkey: &'a str,
    pub attestation: &'a [u8],
}

/// Adds a verified passkey for the current member (event `passkey_added`).
pub async fn add(
    conn: &mut PgConnection,
    new: &NewPasskey<'_>,
    origin: &Origin,
) -> sqlx::Result<Added> {
    let outcome: String = sqlx::query_scalar("select paddock_add_passkey($1, $2, $3, $4, $5, $6)")
        .bind(new.name)
        .bind(new.credential_id)
        .bind(new.passkey)
        .bind(new.attestation)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await?;
    Ok(match outcome.as_str() {
        "done" => Added::Done,
        "step_up" => Added::StepUp,
        "duplicate" => Added::Duplicate,
        "too_many" => Added::TooMany,
        _ => Added::Refused,
    })
}

/// Stores a passkey as it stands after a verified use (its counter) and the time.
pub async fn used(
    conn: &mut PgConnection,
    credential_id: &[u8],
    passkey: &str,
    attestation: &[u8],
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_passkey_used($1, $2, $3)")
        .bind(credential_id)
        .bind(passkey)
        .bind(attestation)
        .fetch_one(conn)
        .await
}

/// What removing a passkey concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Done,
    StepUp,
    /// The organization requires a second factor and this is the last one.
    Required,
    NotFound,
}

/// Removes one of the current member's passkeys (event `passkey_removed`).
pub async fn remove(conn: &mut PgConnection, id: Uuid, origin: &Origin) -> sqlx::Result<Removed> {
    let outcome: String = sqlx::query_scalar("select paddock_remove_passkey($1, $2, $3)")
        .bind(id)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await?;
    Ok(match outcome.as_str() {
        "done" => Removed::Done,
        "step_up" => Removed::StepUp,
        "required" => Removed::Required,
        _ => Removed::NotFound,
    })
}
