//! Members and organizations.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::domain::{MemberId, OrganizationId, Role};

/// The signed-in member as the request sees them.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: MemberId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub email: String,
    pub role: Role,
}

/// A row of the organization's member list.
pub struct MemberRow {
    pub id: MemberId,
    pub email: String,
    pub role: Role,
    pub joined: OffsetDateTime,
}

/// Lists the members of the current organization, oldest first.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<MemberRow>> {
    let rows: Vec<(MemberId, String, String, OffsetDateTime)> = sqlx::query_as(
        "select id, email, role, created_at from members
         where organization_id = (select paddock_current_organization()) and removed_at is null
         order by created_at, email",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, email, role, joined)| {
            Some(MemberRow {
                id,
                email,
                role: Role::parse(&role)?,
                joined,
            })
        })
        .collect())
}
