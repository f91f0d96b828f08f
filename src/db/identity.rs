//! Who is asking, established by PostgreSQL itself.
//!
//! Every tenant transaction begins with `paddock_authenticate(secret)`: the
//! database checks the session cookie's secret against the live session and sets
//! an identity the row-level security policies trust (see the migration
//! `20261201000001_identity.sql`). Sign-in and sign-up go through their own
//! narrow functions, which never hand the app a password hash.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    db::{events::Origin, members::Member},
    domain::{Email, MemberId, OrganizationId, Role},
    token::Token,
};

/// The signed-in member and their session, as the database vouches for them.
#[derive(Clone, Debug)]
pub struct Identity {
    pub member: Member,
    /// The session's public id (never the cookie value).
    pub session_id: Uuid,
    /// The last time this session proved who it is (password, second factor).
    pub authenticated_at: OffsetDateTime,
    pub second_factors: SecondFactors,
}

/// The member's second factors and the organization's policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct SecondFactors {
    pub totp: bool,
    pub passkeys: i32,
    pub required: bool,
}

impl SecondFactors {
    /// Whether the member has any second factor.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// Whether the organization requires one and the member has none yet.
    pub fn missing(&self) -> bool {
        self.required && !self.any()
    }
}

/// What `paddock_authenticate` returns: who is asking.
#[derive(sqlx::FromRow)]
pub(crate) struct IdentityRow {
    pub(crate) member_id: MemberId,
    pub(crate) organization_id: OrganizationId,
    organization_name: String,
    email: String,
    role: String,
    session_id: Uuid,
    authenticated_at: OffsetDateTime,
    totp_enabled: bool,
    passkeys: i32,
    require_two_factor: bool,
}

/// Begins a tenant transaction for the session whose secret is `token`. `None`
/// when no live, signed-in session has that secret (the transaction is dropped,
/// which rolls it back).
pub async fn begin_request(
    pool: &PgPool,
    token: &Token,
) -> sqlx::Result<Option<(Transaction<'static, Postgres>, Identity)>> {
    let mut tx = pool.begin().await?;
    let row: Option<IdentityRow> = sqlx::query_as("select * from paddock_authenticate($1)")
        .bind(token.expose_bytes())
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row
        .and_then(|row| row.identity())
        .map(|identity| (tx, identity)))
}

impl IdentityRow {
    /// The identity; `None` for a role this build does not know.
    pub(crate) fn identity(&self) -> Option<Identity> {
        Some(Identity {
            member: Member {
                id: self.member_id,
                organization_id: self.organization_id,
                organization_name: self.organization_name.clone(),
                email: self.email.clone(),
                role: Role::parse(&self.role)?,
            },
            session_id: self.session_id,
            authenticated_at: self.authenticated_at,
            second_factors: SecondFactors {
                totp: self.totp_enabled,
                passkeys: self.passkeys,
                required: self.require_two_factor,
            },
        })
    }
}

/// Whether `token` is the secret of a live, signed-in session (one statement).
pub async fn is_signed_in(pool: &PgPool, token: &Token) -> sqlx::Result<bool> {
    let found: Option<MemberId> =
        sqlx::query_scalar("select member_id from paddock_authenticate($1)")
            .bind(token.expose_bytes())
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Ends the current identity's session (sign-out).
pub async fn end_session(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("select paddock_end_session()")
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes expired sessions and stale sign-in failures.
pub async fn sweep(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query("select paddock_sweep()").execute(pool).await?;
    Ok(())
}

/// Argon2id parameters as stored with a password.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashParams {
    pub salt: Vec<u8>,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub hash_length: usize,
}

/// What counting a sign-in attempt concluded.
pub enum Attempt {
    /// Too many failures: try again after this many seconds.
    Locked { retry_after: i64 },
    /// Counted; hash the candidate with these parameters.
    Counted { params: HashParams, ids: Vec<i64> },
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    retry_after: Option<i32>,
    salt: Option<Vec<u8>>,
    memory_kib: Option<i32>,
    iterations: Option<i32>,
    parallelism: Option<i32>,
    hash_length: Option<i32>,
    attempts: Option<Vec<i64>>,
}

/// Counts one attempt before any password is checked — against the trusted
/// device among `devices` (the browser's device cookies) that belongs to the
/// account, else against the account and `address` — and returns the salt and
/// parameters to hash the candidate with.
pub async fn sign_in_attempt(
    pool: &PgPool,
    email: &str,
    address: &str,
    devices: &[String],
) -> sqlx::Result<Attempt> {
    let row: AttemptRow = sqlx::query_as("select * from paddock_sign_in_attempt($1, $2, $3)")
        .bind(email)
        .bind(address)
        .bind(devices)
        .fetch_one(pool)
        .await?;
    if let Some(seconds) = row.retry_after {
        return Ok(Attempt::Locked {
            retry_after: i64::from(seconds.max(1)),
        });
    }
    let number = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    Ok(Attempt::Counted {
        params: HashParams {
            salt: row.salt.unwrap_or_default(),
            memory_kib: number(row.memory_kib),
            iterations: number(row.iterations),
            parallelism: number(row.parallelism),
            hash_length: number(row.hash_length) as usize,
        },
        ids: row.attempts.unwrap_or_default(),
    })
}

/// A device cookie entry for the member signed in under `token`, unless one of
/// `devices` already is this account's (or `token` opens no signed-in session).
pub async fn device_cookie(
    pool: &PgPool,
    token: &Token,
    devices: &[String],
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select paddock_device_cookie($1, $2)")
        .bind(token.expose_bytes())
        .bind(devices)
        .fetch_one(pool)
        .await
}

/// Who a matching password belongs to.
#[derive(sqlx::FromRow)]
pub struct SignedIn {
    pub member_id: MemberId,
    pub organization_id: OrganizationId,
    /// The session waits for a second factor (five minutes) before it is signed in.
    pub second_factor: bool,
}

/// Finishes a sign-in with the Argon2id output computed for the candidate: on a
/// match the database starts a session under `token` and returns the member.
#[allow(clippy::too_many_arguments)]
pub async fn sign_in(
    pool: &PgPool,
    email: &str,
    address: &str,
    hash: &[u8],
    attempts: &[i64],
    token: &Token,
    origin: &Origin,
) -> sqlx::Result<Option<SignedIn>> {
    sqlx::query_as("select * from paddock_sign_in($1, $2, $3, $4, $5, $6, $7)")
        .bind(email)
        .bind(address)
        .bind(hash)
        .bind(attempts)
        .bind(token.expose_bytes())
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_optional(pool)
        .await
}

/// Creates an organization with its first member, an owner, signed in under `token`.
pub async fn create_organization(
    pool: &PgPool,
    name: &str,
    email: &Email,
    password_hash: &str,
    token: &Token,
    origin: &Origin,
) -> sqlx::Result<(MemberId, OrganizationId)> {
    sqlx::query_as(
        "select member_id, organization_id from paddock_create_organization($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(token.expose_bytes())
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref())
    .fetch_one(pool)
    .await
}

/// Joins the organization of a valid, unused, unexpired invite, signed in under
/// `token`; `None` when the code is not valid.
pub async fn redeem_invite(
    pool: &PgPool,
    code_hash: &[u8],
    email: &Email,
    password_hash: &str,
    token: &Token,
    origin: &Origin,
) -> sqlx::Result<Option<(MemberId, OrganizationId)>> {
    sqlx::query_as(
        "select member_id, organization_id from paddock_redeem_invite($1, $2, $3, $4, $5, $6)",
    )
    .bind(code_hash)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(token.expose_bytes())
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref())
    .fetch_optional(pool)
    .await
}
