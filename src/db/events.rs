//! The security event log: append-only for the app role, visible only to its member.

use sqlx::PgConnection;
use time::OffsetDateTime;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    SignedUp,
    SignIn,
    SignInFailed,
    SignInLocked,
    SignOut,
    PasswordChanged,
    CredentialAdded,
    CredentialRotated,
    CredentialDeleted,
    CredentialUsed,
    InviteCreated,
    InviteAccepted,
}

impl EventKind {
    const ALL: [Self; 12] = [
        Self::SignedUp,
        Self::SignIn,
        Self::SignInFailed,
        Self::SignInLocked,
        Self::SignOut,
        Self::PasswordChanged,
        Self::CredentialAdded,
        Self::CredentialRotated,
        Self::CredentialDeleted,
        Self::CredentialUsed,
        Self::InviteCreated,
        Self::InviteAccepted,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedUp => "signed_up",
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignInLocked => "sign_in_locked",
            Self::SignOut => "sign_out",
            Self::PasswordChanged => "password_changed",
            Self::CredentialAdded => "credential_added",
            Self::CredentialRotated => "credential_rotated",
            Self::CredentialDeleted => "credential_deleted",
            Self::CredentialUsed => "credential_used",
            Self::InviteCreated => "invite_created",
            Self::InviteAccepted => "invite_accepted",
        }
    }

    /// The label shown on `/activity`.
    pub fn label(self) -> &'static str {
        match self {
            Self::SignedUp => "Account created",
            Self::SignIn => "Signed in",
            Self::SignInFailed => "Failed sign-in",
            Self::SignInLocked => "Sign-in locked",
            Self::SignOut => "Signed out",
            Self::PasswordChanged => "Password changed",
            Self::CredentialAdded => "Credential added",
            Self::CredentialRotated => "Credential rotated",
            Self::CredentialDeleted => "Credential deleted",
            Self::CredentialUsed => "Credential used",
            Self::InviteCreated => "Invite created",
            Self::InviteAccepted => "Invite accepted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a request came from, as recorded with each event.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One row of `/activity`.
pub struct Event {
    pub kind_label: &'static str,
    pub detail: String,
    pub ip: String,
    pub at: OffsetDateTime,
}

/// Appends an event for the current member (row-level security checks the owner).
pub async fn record(
    conn: &mut PgConnection,
    kind: EventKind,
    detail: &str,
    origin: &Origin,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into security_events (organization_id, member_id, kind, detail, ip, user_agent)
         values ((select paddock_current_organization()), (select paddock_current_member()), $1, $2, $3, $4)",
    )
    .bind(kind.as_str())
    .bind(detail)
    .bind(origin.ip.as_deref())
    .bind(origin.user_agent.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// The current member's most recent events, newest first.
pub async fn recent(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Event>> {
    let rows: Vec<(String, String, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "select kind, detail, ip, created_at from security_events
         where member_id = (select paddock_current_member())
         order by created_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, detail, ip, at)| Event {
            kind_label: EventKind::parse(&kind).map_or("Other", EventKind::label),
            detail,
            ip: ip.unwrap_or_default(),
            at,
        })
        .collect())
}
