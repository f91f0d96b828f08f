//! A page view's database work in as few round trips as the audit promise
//! allows: one statement says who is asking, returns their credentials and
//! records the page's key uses. It needs no transaction around it — it presents
//! the session's secret itself (see the migration
//! `20261201500000_one_statement_page_views.sql`), and row-level security still
//! decides what it reads and writes.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    db::{
        credentials::{self, Credential},
        events::Origin,
        identity::{Identity, IdentityRow},
    },
    domain::CredentialId,
    token::Token,
};

/// Who is asking, as the database vouches for them, and their credentials.
pub struct Opened {
    pub identity: Identity,
    /// Oldest first: those asked for that are the member's (all recorded, when
    /// uses were asked for).
    pub credentials: Vec<Credential>,
}

#[derive(sqlx::FromRow)]
struct OpenedRow {
    #[sqlx(flatten)]
    who: IdentityRow,
    credential_id: Option<CredentialId>,
    label: Option<String>,
    environment: Option<String>,
    sealed_key_id: Option<Vec<u8>>,
    sealed_secret: Option<Vec<u8>>,
    key_id_last4: Option<String>,
    account_number: Option<String>,
    seal_key_version: Option<String>,
    created_at: Option<OffsetDateTime>,
    account_changed_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
}

impl OpenedRow {
    fn credential(self) -> Option<Credential> {
        credentials::from_row(credentials::Row {
            id: self.credential_id?,
            organization_id: self.who.organization_id,
            member_id: self.who.member_id,
            label: self.label?,
            environment: self.environment?,
            sealed_key_id: self.sealed_key_id?,
            sealed_secret: self.sealed_secret?,
            key_id_last4: self.key_id_last4?,
            account_number: self.account_number?,
            seal_key_version: self.seal_key_version?,
            created_at: self.created_at?,
            account_changed_at: self.account_changed_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// What a page's one statement reads, and records.
pub struct Reads<'a> {
    /// `None`: all the member's credentials.
    pub credentials: Option<&'a [CredentialId]>,
    /// Also record one use of each credential read: its keys may be used once
    /// the statement has committed.
    pub uses: Option<KeyUses<'a>>,
}

/// What one page records about its key uses.
pub struct KeyUses<'a> {
    /// Why the keys are used, e.g. `portfolio`, `order`.
    pub purpose: &'a str,
    /// An order action: the account changes, so cached reads of it are stale.
    pub changes: bool,
    pub origin: &'a Origin,
}

/// Checks the session whose secret is `token`, reads the member's credentials
/// and, when asked, records their uses — one statement. Outside a transaction
/// it has committed when this returns; inside one, the uses count once the
/// transaction commits. `None` when no live, signed-in session has that secret.
pub async fn open(
    conn: &mut PgConnection,
    token: &Token,
    reads: &Reads<'_>,
) -> sqlx::Result<Option<Opened>> {
    let ids: Option<Vec<Uuid>> = reads
        .credentials
        .map(|ids| ids.iter().map(|c| c.0).collect());
    let uses = reads.uses.as_ref();
    let rows: Vec<OpenedRow> =
        sqlx::query_as("select * from paddock_open_request($1, $2, $3, $4, $5, $6)")
            .bind(token.expose_bytes())
            .bind(ids)
            .bind(uses.map(|u| u.purpose))
            .bind(uses.is_some_and(|u| u.changes))
            .bind(uses.and_then(|u| u.origin.ip.as_deref()))
            .bind(uses.and_then(|u| u.origin.user_agent.as_deref()))
            .fetch_all(conn)
            .await?;
    let Some(identity) = rows.first().and_then(|first| first.who.identity()) else {
        return Ok(None);
    };
    Ok(Some(Opened {
        identity,
        credentials: rows.into_iter().filter_map(OpenedRow::credential).collect(),
    }))
}
