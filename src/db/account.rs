//! Second factors, step-up, password changes, sessions and owner actions, all
//! through the narrow functions of migration `20261201000002_account_security`.
//! Request-path functions run on the tenant transaction (they act for the
//! identity it proved); the second sign-in step and reset links, which come
//! before a member is known, take the pool.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    db::{events::Origin, identity::Attempt},
    domain::{MemberId, OrganizationId},
    token::Token,
};

/// A second factor the app checked, or a recovery code for the database to check.
pub enum Proof<'a> {
    /// A TOTP code of time step `step`, attested.
    Totp { step: i64, attestation: Vec<u8> },
    /// A passkey assertion, attested (`step` is the assertion's counter).
    Passkey { step: i64, attestation: Vec<u8> },
    /// A recovery code, compared by the database.
    Recovery(&'a str),
    /// The app found the code wrong: the attempt is settled as a failure.
    Wrong,
}

/// A [`Proof`] as the database functions take it.
struct ProofArgs<'p> {
    method: Option<&'static str>,
    step: Option<i64>,
    attestation: Option<&'p [u8]>,
    recovery: Option<&'p str>,
}

impl Proof<'_> {
    fn args(&self) -> ProofArgs<'_> {
        let none = ProofArgs {
            method: None,
            step: None,
            attestation: None,
            recovery: None,
        };
        match self {
            Self::Totp { step, attestation } => ProofArgs {
                method: Some("totp"),
                step: Some(*step),
                attestation: Some(attestation),
                ..none
            },
            Self::Passkey { step, attestation } => ProofArgs {
                method: Some("passkey"),
                step: Some(*step),
                attestation: Some(attestation),
                ..none
            },
            Self::Recovery(code) => ProofArgs {
                recovery: Some(code),
                ..none
            },
            Self::Wrong => none,
        }
    }
}

/// A session waiting for its second factor.
#[derive(sqlx::FromRow)]
pub struct Pending {
    pub member_id: MemberId,
    pub organization_id: OrganizationId,
    pub email: String,
    pub sealed_totp_secret: Option<Vec<u8>>,
    pub last_used_step: i64,
    pub passkeys: i32,
}

/// The pending second-factor session whose secret is `token`.
pub async fn pending(pool: &PgPool, token: &Token) -> sqlx::Result<Option<Pending>> {
    sqlx::query_as("select * from paddock_pending_second_factor($1)")
        .bind(token.expose_bytes())
        .fetch_optional(pool)
        .await
}

/// Counts a second-factor guess (per account and address); `None` when the
/// pending session is gone.
pub async fn second_factor_attempt(
    pool: &PgPool,
    token: &Token,
    address: &str,
) -> sqlx::Result<Option<Attempt>> {
    let row: Option<(Option<i32>, Option<Vec<i64>>)> =
        sqlx::query_as("select retry_after, attempts from paddock_second_factor_attempt($1, $2)")
            .bind(token.expose_bytes())
            .bind(address)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(retry, ids)| match retry {
        Some(seconds) => Attempt::Locked {
            retry_after: i64::from(seconds.max(1)),
        },
        None => Attempt::Counted {
            params: Default::default(),
            ids: ids.unwrap_or_default(),
        },
    }))
}

/// Finishes sign-in: the pending session becomes a signed-in one under
/// `new_token` when `proof` holds.
#[allow(clippy::too_many_arguments)]
pub async fn complete_second_factor(
    pool: &PgPool,
    token: &Token,
    new_token: &Token,
    attempts: &[i64],
    proof: &Proof<'_>,
    address: &str,
    origin: &Origin,
) -> sqlx::Result<bool> {
    let ProofArgs {
        method,
        step,
        attestation,
        recovery,
    } = proof.args();
    let row: Option<(MemberId, OrganizationId)> = sqlx::query_as(
        "select member_id, organization_id from paddock_complete_second_factor($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(token.expose_bytes())
    .bind(new_token.expose_bytes())
    .bind(attempts)
    .bind(method)
    .bind(step)
    .bind(attestation)
    .bind(recovery)
    .bind(address)
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// "Confirm it's you": the password's Argon2id output (for a counted attempt)
/// and, when TOTP is on, a second factor; or a passkey alone (then `hash` is
/// ignored). Marks the session freshly authenticated.
pub async fn reauthenticate(
    conn: &mut PgConnection,
    hash: &[u8],
    attempts: &[i64],
    proof: Option<&Proof<'_>>,
    origin: &Origin,
) -> sqlx::Result<bool> {
    let wrong = Proof::Wrong;
    let ProofArgs {
        method,
        step,
        attestation,
        recovery,
    } = proof.unwrap_or(&wrong).args();
    sqlx::query_scalar("select paddock_reauthenticate($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(hash)
        .bind(attempts)
        .bind(method)
        .bind(step)
        .bind(attestation)
        .bind(recovery)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// Changes the password after checking the current one; other sessions end and
/// this one moves to `new_token`.
pub async fn change_password(
    conn: &mut PgConnection,
    current_hash: &[u8],
    attempts: &[i64],
    new_password_hash: &str,
    new_token: &Token,
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_change_password($1, $2, $3, $4, $5, $6)")
        .bind(current_hash)
        .bind(attempts)
        .bind(new_password_hash)
        .bind(new_token.expose_bytes())
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// The member's TOTP row: the sealed secret and whether it is on.
pub struct Totp {
    pub sealed_secret: Vec<u8>,
    pub enabled: bool,
    pub last_used_step: i64,
}

/// The current member's TOTP secret, being set up or on.
pub async fn totp(conn: &mut PgConnection) -> sqlx::Result<Option<Totp>> {
    let row: Option<(Vec<u8>, bool, i64)> = sqlx::query_as(
        "select sealed_secret, enabled_at is not null, last_used_step from totp
         where member_id = (select paddock_current_member())",
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(sealed_secret, enabled, last_used_step)| Totp {
        sealed_secret,
        enabled,
        last_used_step,
    }))
}

/// Stores (or replaces, while not yet on) the secret being set up.
pub async fn store_totp_secret(
    conn: &mut PgConnection,
    sealed: &[u8],
    seal_key_version: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into totp (member_id, organization_id, sealed_secret, seal_key_version)
         values ((select paddock_current_member()), (select paddock_current_organization()), $1, $2)
         on conflict (member_id) do update
         set sealed_secret = excluded.sealed_secret, seal_key_version = excluded.seal_key_version",
    )
    .bind(sealed)
    .bind(seal_key_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Turns TOTP on (a code of time step `step` was checked) with new recovery codes.
pub async fn enable_totp(
    conn: &mut PgConnection,
    step: i64,
    recovery_hashes: &[Vec<u8>],
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_enable_totp($1, $2, $3, $4)")
        .bind(step)
        .bind(recovery_hashes)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// What turning TOTP off concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum Disabled {
    Done,
    /// The session must confirm it is the member first.
    StepUp,
    /// The organization requires a second factor and no passkey remains.
    Required,
}

/// Turns TOTP off and deletes the recovery codes.
pub async fn disable_totp(conn: &mut PgConnection, origin: &Origin) -> sqlx::Result<Disabled> {
    let outcome: String = sqlx::query_scalar("select paddock_disable_totp($1, $2)")
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await?;
    Ok(match outcome.as_str() {
        "done" => Disabled::Done,
        "required" => Disabled::Required,
        _ => Disabled::StepUp,
    })
}

/// Replaces the recovery codes (TOTP must be on).
pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    recovery_hashes: &[Vec<u8>],
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_replace_recovery_codes($1, $2, $3)")
        .bind(recovery_hashes)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// Unused recovery codes left.
pub async fn recovery_codes_left(conn: &mut PgConnection) -> sqlx::Result<i32> {
    sqlx::query_scalar("select paddock_recovery_codes_left()")
        .fetch_one(conn)
        .await
}

/// One of the member's live sessions.
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub session_id: Uuid,
    pub signed_in_at: OffsetDateTime,
    pub last_active_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// The current member's live sessions, this one first.
pub async fn sessions(conn: &mut PgConnection) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as("select * from paddock_sessions()")
        .fetch_all(conn)
        .await
}

/// Ends one other session (`Some`) or all others (`None`); how many ended.
pub async fn revoke_sessions(
    conn: &mut PgConnection,
    session: Option<Uuid>,
    origin: &Origin,
) -> sqlx::Result<i32> {
    sqlx::query_scalar("select paddock_revoke_sessions($1, $2, $3)")
        .bind(session)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// Owner action: removes a member of the organization (not oneself).
pub async fn remove_member(
    conn: &mut PgConnection,
    member: MemberId,
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_remove_member($1, $2, $3)")
        .bind(member)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// What a role change concluded.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleChange {
    Done,
    Unchanged,
    LastOwner,
}

/// Owner action: makes a member an owner or a plain member.
pub async fn set_role(
    conn: &mut PgConnection,
    member: MemberId,
    role: crate::domain::Role,
    origin: &Origin,
) -> sqlx::Result<RoleChange> {
    let outcome: String = sqlx::query_scalar("select paddock_set_role($1, $2, $3, $4)")
        .bind(member)
        .bind(role.as_str())
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await?;
    Ok(match outcome.as_str() {
        "done" => RoleChange::Done,
        "last_owner" => RoleChange::LastOwner,
        _ => RoleChange::Unchanged,
    })
}

/// Owner action: stores a reset link's hash for a member.
pub async fn create_reset_link(
    conn: &mut PgConnection,
    member: MemberId,
    code_hash: &[u8],
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_create_reset_link($1, $2, $3, $4)")
        .bind(member)
        .bind(code_hash)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(conn)
        .await
}

/// Owner action: the organization's two-factor policy.
pub async fn set_policy(
    conn: &mut PgConnection,
    require_two_factor: bool,
    origin: &Origin,
) -> sqlx::Result<()> {
    sqlx::query("select paddock_set_policy($1, $2, $3)")
        .bind(require_two_factor)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .execute(conn)
        .await?;
    Ok(())
}

/// The email a valid reset link is for.
pub async fn reset_link(pool: &PgPool, code_hash: &[u8]) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select paddock_reset_link($1)")
        .bind(code_hash)
        .fetch_one(pool)
        .await
}

/// Sets a new password with a reset link, once; every session of that member ends.
pub async fn reset_password(
    pool: &PgPool,
    code_hash: &[u8],
    password_hash: &str,
    origin: &Origin,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select paddock_reset_password($1, $2, $3, $4)")
        .bind(code_hash)
        .bind(password_hash)
        .bind(origin.ip.as_deref())
        .bind(origin.user_agent.as_deref())
        .fetch_one(pool)
        .await
}

/// Maintenance: TOTP secrets per seal key id.
pub async fn count_totp_by_key(admin: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("select seal_key_version, count(*) from totp group by 1 order by 1")
        .fetch_all(admin)
        .await
}

/// A TOTP secret as maintenance sees it.
#[derive(sqlx::FromRow)]
pub struct SealedTotp {
    pub member_id: MemberId,
    pub organization_id: OrganizationId,
    pub sealed_secret: Vec<u8>,
}

/// Maintenance: locks and returns up to `limit` TOTP secrets not sealed under
/// `current`, skipping rows another transaction holds and members in `skip`.
pub async fn lock_totp_to_rewrap(
    conn: &mut PgConnection,
    current: &str,
    skip: &[Uuid],
    limit: i64,
) -> sqlx::Result<Vec<SealedTotp>> {
    sqlx::query_as(
        "select member_id, organization_id, sealed_secret from totp
         where seal_key_version <> $1 and member_id <> all($2)
         order by member_id limit $3 for update skip locked",
    )
    .bind(current)
    .bind(skip)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Maintenance: TOTP secrets still not sealed under `current`.
pub async fn count_totp_to_rewrap(
    admin: &PgPool,
    current: &str,
    skip: &[Uuid],
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from totp where seal_key_version <> $1 and member_id <> all($2)",
    )
    .bind(current)
    .bind(skip)
    .fetch_one(admin)
    .await
}

/// Maintenance: stores a re-sealed TOTP secret.
pub async fn store_rewrapped_totp(
    conn: &mut PgConnection,
    member: MemberId,
    sealed: &[u8],
    seal_key_version: &str,
) -> sqlx::Result<()> {
    sqlx::query("update totp set sealed_secret = $2, seal_key_version = $3 where member_id = $1")
        .bind(member)
        .bind(sealed)
        .bind(seal_key_version)
        .execute(conn)
        .await?;
    Ok(())
}
