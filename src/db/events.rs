//! The security event log: append-only for the app role, visible only to its member.

use sqlx::PgConnection;
use time::OffsetDateTime;

/// What happened, with the name stored and the label shown on `/activity`.
macro_rules! event_kinds {
    ($($kind:ident => $name:literal, $label:literal;)*) => {
        /// What happened.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventKind {
            $($kind,)*
        }

        impl EventKind {
            /// Every kind, in the order `/activity` offers them.
            pub const ALL: &[Self] = &[$(Self::$kind,)*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }

            /// The label shown on `/activity`.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$kind => $label,)*
                }
            }
        }
    };
}

event_kinds! {
    SignedUp => "signed_up", "Account created";
    SignIn => "sign_in", "Signed in";
    SignInFailed => "sign_in_failed", "Failed sign-in";
    SignInLocked => "sign_in_locked", "Sign-in locked";
    SignOut => "sign_out", "Signed out";
    PasswordChanged => "password_changed", "Password changed";
    PasswordReset => "password_reset", "Password reset";
    Reauthenticated => "reauthenticated", "Confirmed it was me";
    TwoFactorEnabled => "two_factor_enabled", "Two-factor authentication turned on";
    TwoFactorDisabled => "two_factor_disabled", "Two-factor authentication turned off";
    RecoveryCodeUsed => "recovery_code_used", "Recovery code used";
    RecoveryCodesRegenerated => "recovery_codes_regenerated", "New recovery codes";
    PasskeyAdded => "passkey_added", "Passkey added";
    PasskeyRemoved => "passkey_removed", "Passkey removed";
    SessionRevoked => "session_revoked", "Session signed out";
    CredentialAdded => "credential_added", "Credential added";
    CredentialRotated => "credential_rotated", "Credential rotated";
    CredentialDeleted => "credential_deleted", "Credential deleted";
    CredentialUsed => "credential_used", "Credential used";
    InviteCreated => "invite_created", "Invite created";
    InviteAccepted => "invite_accepted", "Invite accepted";
    MemberRemoved => "member_removed", "Member removed";
    ResetLinkCreated => "reset_link_created", "Reset link created";
    RoleChanged => "role_changed", "Role changed";
    PolicyChanged => "policy_changed", "Organization policy changed";
}

impl EventKind {
    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
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
