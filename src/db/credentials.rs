//! Sealed Alpaca credentials. Request-path functions run on the tenant transaction
//! (row-level security limits them to the member's own rows); the maintenance
//! functions at the bottom run on the admin connection and see every row.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::{
    domain::{CredentialId, Environment, MemberId, OrganizationId},
    seal::Sealed,
};

/// A stored credential: metadata plus the two sealed values.
#[derive(Clone, Debug)]
pub struct Credential {
    pub id: CredentialId,
    pub organization_id: OrganizationId,
    pub member_id: MemberId,
    pub label: String,
    pub environment: Environment,
    pub sealed_key_id: Sealed,
    pub sealed_secret: Sealed,
    pub key_id_last4: String,
    pub account_number: String,
    pub seal_key_version: String,
    pub created_at: OffsetDateTime,
    /// When an order action last changed the account (the version of cached reads).
    pub account_changed_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A credential about to be stored.
pub struct NewCredential<'a> {
    pub id: CredentialId,
    pub label: &'a str,
    pub environment: Environment,
    pub sealed_key_id: &'a Sealed,
    pub sealed_secret: &'a Sealed,
    pub key_id_last4: &'a str,
    pub account_number: &'a str,
    pub seal_key_version: &'a str,
}

/// A credentials row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub(super) id: CredentialId,
    pub(super) organization_id: OrganizationId,
    pub(super) member_id: MemberId,
    pub(super) label: String,
    pub(super) environment: String,
    pub(super) sealed_key_id: Vec<u8>,
    pub(super) sealed_secret: Vec<u8>,
    pub(super) key_id_last4: String,
    pub(super) account_number: String,
    pub(super) seal_key_version: String,
    pub(super) created_at: OffsetDateTime,
    pub(super) account_changed_at: Option<OffsetDateTime>,
    pub(super) last_used_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, organization_id, member_id, label, environment, sealed_key_id, sealed_secret, key_id_last4, account_number, seal_key_version, created_at, account_changed_at, last_used_at";

pub(super) fn from_row(row: Row) -> Option<Credential> {
    Some(Credential {
        id: row.id,
        organization_id: row.organization_id,
        member_id: row.member_id,
        label: row.label,
        environment: Environment::parse(&row.environment)?,
        sealed_key_id: Sealed::from_bytes(row.sealed_key_id),
        sealed_secret: Sealed::from_bytes(row.sealed_secret),
        key_id_last4: row.key_id_last4,
        account_number: row.account_number,
        seal_key_version: row.seal_key_version,
        created_at: row.created_at,
        account_changed_at: row.account_changed_at,
        last_used_at: row.last_used_at,
    })
}

/// The current member's credentials, oldest first.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Credential>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from credentials where member_id = (select paddock_current_member()) order by created_at, label"
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// One of the current member's credentials; `None` for unknown ids and other members' ids alike.
pub async fn find(conn: &mut PgConnection, id: CredentialId) -> sqlx::Result<Option<Credential>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from credentials where id = $1 and member_id = (select paddock_current_member())"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(from_row))
}

/// One of the current member's credentials by Alpaca account number.
pub async fn find_by_account(
    conn: &mut PgConnection,
    account_number: &str,
) -> sqlx::Result<Option<Credential>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from credentials where account_number = $1 and member_id = (select paddock_current_member())"
    ))
    .bind(account_number)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(from_row))
}

/// Stores a new credential for the current member.
pub async fn insert(conn: &mut PgConnection, new: &NewCredential<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into credentials (id, organization_id, member_id, label, environment, sealed_key_id, sealed_secret, key_id_last4, account_number, seal_key_version)
         values ($1, (select paddock_current_organization()), (select paddock_current_member()), $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new.id)
    .bind(new.label)
    .bind(new.environment.as_str())
    .bind(new.sealed_key_id.as_bytes())
    .bind(new.sealed_secret.as_bytes())
    .bind(new.key_id_last4)
    .bind(new.account_number)
    .bind(new.seal_key_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the sealed keys of one credential (rotation).
pub async fn replace_keys(
    conn: &mut PgConnection,
    id: CredentialId,
    sealed_key_id: &Sealed,
    sealed_secret: &Sealed,
    key_id_last4: &str,
    seal_key_version: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update credentials set sealed_key_id = $2, sealed_secret = $3, key_id_last4 = $4, seal_key_version = $5
         where id = $1 and member_id = (select paddock_current_member())",
    )
    .bind(id)
    .bind(sealed_key_id.as_bytes())
    .bind(sealed_secret.as_bytes())
    .bind(key_id_last4)
    .bind(seal_key_version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes one credential; returns its label if it existed and was the member's.
pub async fn delete(conn: &mut PgConnection, id: CredentialId) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "delete from credentials where id = $1 and member_id = (select paddock_current_member()) returning label",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Maintenance: how many credentials are sealed under each key id.
pub async fn count_by_key(admin: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select seal_key_version, count(*) from credentials group by seal_key_version order by seal_key_version",
    )
    .fetch_all(admin)
    .await
}

/// Maintenance: locks and returns up to `limit` credentials not sealed under
/// `current`, skipping rows another transaction holds and ids in `skip`.
pub async fn lock_batch_to_rewrap(
    conn: &mut PgConnection,
    current: &str,
    skip: &[uuid::Uuid],
    limit: i64,
) -> sqlx::Result<Vec<Credential>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from credentials
         where seal_key_version <> $1 and id <> all($2)
         order by id limit $3 for update skip locked"
    ))
    .bind(current)
    .bind(skip)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// Maintenance: how many credentials are still not sealed under `current`
/// (locked ones included), leaving out ids in `skip`.
pub async fn count_to_rewrap(
    admin: &PgPool,
    current: &str,
    skip: &[uuid::Uuid],
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from credentials where seal_key_version <> $1 and id <> all($2)",
    )
    .bind(current)
    .bind(skip)
    .fetch_one(admin)
    .await
}

/// Maintenance: stores re-sealed values for one credential.
pub async fn store_rewrapped(
    conn: &mut PgConnection,
    id: CredentialId,
    sealed_key_id: &Sealed,
    sealed_secret: &Sealed,
    seal_key_version: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update credentials set sealed_key_id = $2, sealed_secret = $3, seal_key_version = $4 where id = $1",
    )
    .bind(id)
    .bind(sealed_key_id.as_bytes())
    .bind(sealed_secret.as_bytes())
    .bind(seal_key_version)
    .execute(conn)
    .await?;
    Ok(())
}
