//! The security event log: append-only for the app role, visible only to its member.

use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
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
    pub id: i64,
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

/// A place in the newest-first list: the last event of a page. Pages continue
/// strictly below it in `(created_at, id)` order, so rows inserted meanwhile
/// neither repeat nor shift a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: OffsetDateTime,
    pub id: i64,
}

impl Cursor {
    /// `<unix microseconds>_<id>`, for a URL.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.unix_timestamp_nanos() / 1000, self.id)
    }

    /// Reads [`Cursor::encode`]'s form; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('_')?;
        let micros: i64 = micros.parse().ok()?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
        Some(Self {
            at,
            id: id.parse().ok()?,
        })
    }
}

/// One page of events and, when there are more, where the next (older) one starts.
pub struct Page {
    pub events: Vec<Event>,
    pub older: Option<Cursor>,
}

/// The current member's events, newest first: `size` of them below `before`,
/// of one `kind` or all.
pub async fn page(
    conn: &mut PgConnection,
    kind: Option<EventKind>,
    before: Option<Cursor>,
    size: i64,
) -> sqlx::Result<Page> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "select id, kind, detail, ip, created_at from security_events where member_id = (select paddock_current_member())",
    );
    if let Some(kind) = kind {
        q.push(" and kind = ").push_bind(kind.as_str());
    }
    if let Some(cursor) = before {
        q.push(" and (created_at, id) < (")
            .push_bind(cursor.at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    q.push(" order by created_at desc, id desc limit ")
        .push_bind(size + 1);
    let rows: Vec<(i64, String, String, Option<String>, OffsetDateTime)> =
        q.build_query_as().fetch_all(conn).await?;
    let mut events: Vec<Event> = rows
        .into_iter()
        .map(|(id, kind, detail, ip, at)| Event {
            id,
            kind_label: EventKind::parse(&kind).map_or("Other", EventKind::label),
            detail,
            ip: ip.unwrap_or_default(),
            at,
        })
        .collect();
    let more = events.len() > usize::try_from(size).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(size).unwrap_or(0));
    let older = more
        .then(|| events.last().map(|e| Cursor { at: e.at, id: e.id }))
        .flatten();
    Ok(Page { events, older })
}

/// Retention: deletes up to `batch` `credential_used` events older than `days`
/// days, across all members; returns how many. Needs the owner role (the app
/// role cannot delete events).
pub async fn prune_key_uses(admin: &PgPool, days: u32, batch: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from security_events where id in (
             select id from security_events
             where kind = $1 and created_at < now() - make_interval(days => $2)
             limit $3)",
    )
    .bind(EventKind::CredentialUsed.as_str())
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .bind(batch)
    .execute(admin)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_stored_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::parse("nonsense"), None);
    }

    #[test]
    fn cursors_round_trip_to_the_microsecond_and_reject_junk() {
        let cursor = Cursor {
            at: time::macros::datetime!(2026-03-01 12:34:56.123456 UTC),
            id: 42,
        };
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        for junk in [
            "",
            "_",
            "12",
            "abc_1",
            "1_abc",
            "1_2_3",
            "99999999999999999999_1",
        ] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }
}
