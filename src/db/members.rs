//! Members and organizations.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::domain::{Email, MemberId, OrganizationId, Role};

/// The signed-in member as the request sees them.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: MemberId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub email: String,
    pub role: Role,
}

/// What sign-in needs to check a password.
pub struct SignInRecord {
    pub member_id: MemberId,
    pub organization_id: OrganizationId,
    pub password_hash: String,
}

/// A row of the organization's member list.
pub struct MemberRow {
    pub email: String,
    pub role: Role,
    pub joined: OffsetDateTime,
}

/// Loads the member named by the transaction's settings (row-level security applies).
pub async fn current(conn: &mut PgConnection) -> sqlx::Result<Option<Member>> {
    let row: Option<(MemberId, OrganizationId, String, String, String)> = sqlx::query_as(
        "select m.id, m.organization_id, o.name, m.email, m.role
         from members m join organizations o on o.id = m.organization_id
         where m.id = paddock_current_member()",
    )
    .fetch_optional(conn)
    .await?;
    Ok(
        row.and_then(|(id, organization_id, organization_name, email, role)| {
            Some(Member {
                id,
                organization_id,
                organization_name,
                email,
                role: Role::parse(&role)?,
            })
        }),
    )
}

/// Lists the members of the current organization, oldest first.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<MemberRow>> {
    let rows: Vec<(String, String, OffsetDateTime)> = sqlx::query_as(
        "select email, role, created_at from members
         where organization_id = paddock_current_organization()
         order by created_at, email",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(email, role, joined)| {
            Some(MemberRow {
                email,
                role: Role::parse(&role)?,
                joined,
            })
        })
        .collect())
}

/// Looks up the password hash for `email` through the narrow SECURITY DEFINER function.
pub async fn sign_in_lookup(
    conn: &mut PgConnection,
    email: &Email,
) -> sqlx::Result<Option<SignInRecord>> {
    let row: Option<(MemberId, OrganizationId, String)> = sqlx::query_as(
        "select member_id, organization_id, password_hash from paddock_sign_in_lookup($1)",
    )
    .bind(email.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(member_id, organization_id, password_hash)| SignInRecord {
            member_id,
            organization_id,
            password_hash,
        }),
    )
}

/// Creates an organization with its first member, an owner.
pub async fn create_organization(
    conn: &mut PgConnection,
    name: &str,
    email: &Email,
    password_hash: &str,
) -> sqlx::Result<(MemberId, OrganizationId)> {
    sqlx::query_as("select member_id, organization_id from paddock_create_organization($1, $2, $3)")
        .bind(name)
        .bind(email.as_str())
        .bind(password_hash)
        .fetch_one(conn)
        .await
}

/// Joins the organization of a valid, unused, unexpired invite; `None` otherwise.
pub async fn redeem_invite(
    conn: &mut PgConnection,
    code_hash: &[u8],
    email: &Email,
    password_hash: &str,
) -> sqlx::Result<Option<(MemberId, OrganizationId)>> {
    sqlx::query_as("select member_id, organization_id from paddock_redeem_invite($1, $2, $3)")
        .bind(code_hash)
        .bind(email.as_str())
        .bind(password_hash)
        .fetch_optional(conn)
        .await
}
